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
    @OptionGroup var corpus: CorpusOptions
    @Option(name: .customLong("eval-windows"), help: "Validation windows, fixed and evenly spaced over the validation files.")
    var evalWindows: Int = 16
    @Option(name: .customLong("eval-targets"), help: "Scored samples per validation window; each also gets a full receptive field of context.")
    var evalTargets: Int = 4096
    @Option(help: "BLAS threads.") var threads: Int = 1

    func validate() throws {
        guard evalWindows >= 1, evalTargets >= 1 else { throw ValidationError("--eval-windows and --eval-targets must be at least 1") }
        guard evalWindows <= 1 << 20, evalTargets <= 1 << 24, (1...256).contains(threads) else {
            throw ValidationError("--eval-windows must be at most \(1 << 20), --eval-targets at most \(1 << 24), --threads 1 to 256")
        }
    }

    func run() throws {
        BLAS.setThreads(max(1, threads))
        let (model, header) = try WaveNet.load(from: checkpoint)
        let data = try corpus.load()
        let validator = try EvaluationOptions(windows: evalWindows, targets: evalTargets).validator(data, config: model.config)
        let nll = validator.nllBits(model)
        let unigram = crossEntropyBits(histogram: data.validation.codeHistogram(), model: data.train.codeHistogram())
        print(String(format: "%@: step %d, validation NLL %.4f bits/sample over %d windows × %d samples (unigram baseline %.3f)",
                     checkpoint, header.step, nll, validator.windows.count, validator.targets, unigram))
    }
}
