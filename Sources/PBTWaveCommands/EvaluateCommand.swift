import ArgumentParser
import Foundation
import SpeechAudio
import TensorModule
import WaveNetModule

/// `pbtwave evaluate`: validation NLL of a checkpoint.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Validation negative log-likelihood (bits/sample) of a checkpoint, next to the unigram baseline.")

    @Argument(help: "A checkpoint written by `pbtwave train` or `pbtwave pbt`.") var checkpoint: String
    @OptionGroup var corpus: CorpusChoice
    @OptionGroup var validation: ValidationChoice
    @Option(help: "BLAS threads.") var threads: Int = 1

    func run() throws {
        BLAS.setThreads(max(1, threads))
        let (model, header) = try WaveNet.load(from: checkpoint)
        let data = try corpus.load()
        let validator = try validation.validator(data, config: model.config)
        let nll = validator.nllBits(model)
        let unigram = crossEntropyBits(histogram: data.validation.codeHistogram(), model: data.train.codeHistogram())
        print(String(format: "%@: step %d, validation NLL %.4f bits/sample over %d windows × %d samples (unigram baseline %.3f)",
                     checkpoint, header.step, nll, validator.windows.count, validator.targets, unigram))
    }
}

/// `pbtwave generate`: audio from a checkpoint by incremental sampling.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate speech-like audio from a checkpoint (queue-based incremental sampling) and write a WAV file.")

    @Argument(help: "A checkpoint.") var checkpoint: String
    @Option(help: "Output WAV file.") var output: String = "generated.wav"
    @Option(help: "Seconds of audio.") var seconds: Double = 2
    @Option(help: "Sampling temperature (0: always the most likely sample).") var temperature: Float = 1
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func validate() throws {
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 or more") }
    }

    func run() throws {
        let (model, _) = try WaveNet.load(from: checkpoint)
        let generator = WaveNetGenerator(model: model)
        let count = Int(seconds * Double(model.config.sampleRate))
        let start = KernelBenchmark.now()
        let codes = generator.generate(count: count, temperature: temperature, seed: seed)
        let elapsed = KernelBenchmark.now() - start
        try writeMuLawWAV(codes: codes, sampleRate: model.config.sampleRate, to: output)
        print(String(format: "%@: %d samples (%.2f s) in %.2f s, %.0f samples/s (%.1f× real time)", output, count, seconds, elapsed,
                     Double(count) / elapsed, Double(count) / elapsed / Double(model.config.sampleRate)))
    }
}
