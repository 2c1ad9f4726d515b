import ArgumentParser
import Foundation
import PBT
import PBTWaveAudio
import PBTWaveModel

/// `pbtwave generate`: audio from a checkpoint by incremental sampling.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate speech-like audio from a checkpoint (queue-based incremental sampling) and write a WAV file.",
        discussion: "SIGINT, SIGTERM or SIGHUP stops the generation and writes the samples so far (again: at once, writing nothing).")

    @Argument(help: "A checkpoint.") var checkpoint: String
    @Option(help: "Output WAV file (default: generated.wav in the current folder).", transform: writtenFilePath) var output: String = "generated.wav"
    @Flag(help: "Overwrite an existing --output (without it, generate refuses to).") var replace = false
    @Option(parsing: .unconditional, help: "Seconds of audio, above 0 and at most 3600.") var seconds: Double = 2
    @Option(parsing: .unconditional, help: "Sampling temperature (0: always the most likely sample).") var temperature: Double = 1
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0
    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
        // Read as a Double, so that a number beyond fp32 is shown as given (3.5e38 was "got inf"; found by a helper).
        guard temperature >= 0, temperature <= Double(Float.greatestFiniteMagnitude) else {
            throw ValidationError("--temperature must be a finite fp32 number, 0 or more (got \(temperature))")
        }
        guard output.lowercased().hasSuffix(".wav") else {
            throw ValidationError("--output \(output): generate writes 16-bit WAV; give a path ending in .wav (convert it afterwards if you need another format)")
        }
    }

    func run() throws {
        // Before the generation, not after it; never over the checkpoint it reads.
        try OutputPath.distinct([("the checkpoint", checkpoint), ("--output", output)])
        try OutputPath.check(output, flag: "--output", replace: replace)
        let (model, _) = try WaveNet.load(from: checkpoint)
        guard model.config.classes == MuLaw.levels else {
            throw ValidationError("\(checkpoint): the model predicts \(model.config.classes) classes; generate writes 8-bit mu-law "
                + "audio and needs a model of \(MuLaw.levels)")
        }
        let history = model.config.generationHistoryFloats
        guard history <= WaveNetGenerator.maxHistoryFloats else {
            throw ValidationError("""
                \(checkpoint): generating keeps each layer's past inputs, \(history) floats \
                (\(history / (1 << 18)) MiB) for this model's dilations and \(model.config.residualChannels) residual channels; \
                generate holds at most \(WaveNetGenerator.maxHistoryFloats / (1 << 18)) MiB
                """)
        }
        let generator = WaveNetGenerator(model: model)
        // The nearest whole sample (1.001 s at 16 kHz was 16,015 samples, one short: found by a helper).
        let count = Int((seconds * Double(model.config.sampleRate)).rounded())
        guard count >= 1 else {
            throw ValidationError("--seconds \(seconds) is less than one sample at \(model.config.sampleRate) Hz; give at least \(0.5 / Double(model.config.sampleRate)) (half a sample rounds to one)")
        }
        let start = ContinuousClock.now
        let line = ProgressLine(label: "generate", style: progress.progress)
        // SIGINT, SIGTERM or SIGHUP: stop within 4,096 samples and write what was generated
        // (found by a user: an hour's generation stopped kept nothing); again: at once.
        let signals = StopOnSignals { signal, again in
            if again {
                line.message("generate: \(signalName(signal)): stopping now")
                StopOnSignals.exitNow(signal)
            }
            line.message("generate: \(signalName(signal)): stopping, writing the samples so far to \(output) (again: at once)")
        }
        defer { signals.cancel() }
        let codes = generator.generate(count: count, temperature: Float(temperature), seed: seed, progress: { done in
            let elapsed = elapsedSeconds(since: start)
            line.update(String(format: "%ld/%ld samples (%.0f %%), %.0f samples/s, ETA %@", done, count, 100 * Double(done) / Double(count),
                               Double(done) / elapsed, ProgressLine.duration(elapsed * Double(count - done) / Double(done))), now: elapsed)
        }, stop: { signals.first != nil })
        line.finish()
        let elapsed = elapsedSeconds(since: start)
        try writeMuLawWAV(codes: codes, sampleRate: model.config.sampleRate, to: output)
        let rate = Double(model.config.sampleRate)
        print(String(format: "%@: %ld sample%@ (%.4g s) in %.2f s, %.0f samples/s (%.1f× real time)", output, codes.count, codes.count == 1 ? "" : "s",
                     Double(codes.count) / rate, elapsed, Double(codes.count) / elapsed, Double(codes.count) / elapsed / rate))
        if codes.count < count, let signal = signals.first {
            print("stopped at \(codes.count) of \(count) samples by \(signalName(signal))")
            throw ExitCode(128 + signal)
        }
    }
}
