import ArgumentParser
import Foundation
import Synchronization
import PBTReport
import PBTWaveAudio
import PBTWaveTensor
import PBTWaveModel

/// `pbtwave evaluate`: validation NLL of a checkpoint.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Validation negative log-likelihood (bits/sample) of a checkpoint, next to the unigram baseline.",
        discussion: """
            By default the checkpoint is scored on fixed validation windows (--eval-windows × --eval-targets, the \
            cheap set PBT selects with). With --all it is scored on the whole validation set: every sample that has a \
            full receptive field (for a file of n samples and receptive field RF, samples RF to n − 1, each predicted \
            from the RF samples before it), the number claims and comparisons should rest on.
            """)

    @Argument(help: "A checkpoint written by `pbtwave train` or `pbtwave pbt`.") var checkpoint: String
    @OptionGroup var corpus: CorpusOptions
    @Flag(name: .customLong("all"), help: "Score every validation sample that has a full receptive field, instead of fixed windows.")
    var wholeSet = false
    @Option(name: .customLong("eval-windows"), parsing: .unconditional, help: "Validation windows, fixed and evenly spaced over the validation files (default: the number the checkpoint's training scored on, else \(TrainDefaults.evaluation.windows)).")
    var givenWindows: Int?
    @Option(name: .customLong("eval-targets"), parsing: .unconditional, help: "Scored samples per validation window; each also gets a full receptive field of context (default: the checkpoint's training's, else \(TrainDefaults.evaluation.targets)).")
    var givenTargets: Int?

    var evalWindows: Int { givenWindows ?? TrainDefaults.evaluation.windows }
    var evalTargets: Int { givenTargets ?? TrainDefaults.evaluation.targets }

    /// The validation windows to score on: those given, else the ones the
    /// checkpoint's training scored on (its `metadata`), else `train`'s
    /// defaults; with a note when some come from the checkpoint.
    static func windows(given: (windows: Int?, targets: Int?), metadata: [String: String]) -> (EvaluationOptions, note: String?) {
        let recorded = EvaluationOptions.recorded(in: metadata)
        let options = EvaluationOptions(windows: given.windows ?? recorded.windows ?? TrainDefaults.evaluation.windows,
                                        targets: given.targets ?? recorded.targets ?? TrainDefaults.evaluation.targets)
        let taken = [given.windows == nil ? recorded.windows.map { "--eval-windows \($0)" } : nil,
                     given.targets == nil ? recorded.targets.map { "--eval-targets \($0)" } : nil].compactMap { $0 }
        var notes = taken.isEmpty ? [] : ["scoring on the windows the checkpoint's training scored on: \(taken.joined(separator: ", ")) (give a flag to change it)"]
        // A recorded value out of bounds (a hand-edited checkpoint) is said, not replaced by the default in silence (found by a helper).
        let limits = EvaluationOptions.limits
        for (key, flag, given, usable, limit, used) in [("eval-windows", "--eval-windows", given.windows, recorded.windows, limits.windows, options.windows),
                                                         ("eval-targets", "--eval-targets", given.targets, recorded.targets, limits.targets, options.targets)]
        where given == nil && usable == nil {
            if let stored = metadata[key] {
                notes.append("note: the checkpoint records \(key) '\(stored)', not a whole number from 1 to \(limit): scoring with \(flag) \(used), the default")
            }
        }
        return (options, notes.isEmpty ? nil : notes.joined(separator: "\n"))
    }
    @Option(parsing: .unconditional, help: "Threads: for fixed windows, the model's own threads (as train --threads); with --all, copies of the model scoring in parallel.")
    var threads: Int = 1
    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        if wholeSet, givenWindows != nil || givenTargets != nil {
            throw ValidationError("--all scores every validation sample; --eval-windows and --eval-targets choose fixed windows instead: give one or the other")
        }
        guard evalWindows >= 1, evalTargets >= 1 else { throw ValidationError("--eval-windows and --eval-targets must be at least 1") }
        let limits = EvaluationOptions.limits
        guard evalWindows <= limits.windows else { throw ValidationError("--eval-windows must be at most \(limits.windows) (got \(evalWindows))") }
        guard evalTargets <= limits.targets else { throw ValidationError("--eval-targets must be at most \(limits.targets) (got \(evalTargets))") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256 (got \(threads))") }
    }

    func run() throws {
        BLAS.setThreads(1)
        let (model, header) = try WaveNet.load(from: checkpoint)
        // Fixed windows run on the model's own threads (found by a helper: the flag set BLAS threads, which the model's products do not use).
        if !wholeSet { model.threads = threads }
        let data = try corpus.orRecorded(checkpoint: header.metadata).load()
        if let note = checkpointCorpusNote(checkpoint, header.metadata, data) { printNote(note) }
        let unigram = crossEntropyBits(histogram: data.validation.codeHistogram(), model: data.train.codeHistogram())
        if wholeSet {
            let start = ContinuousClock.now
            let evaluator = try WholeSetEvaluator(clips: data.validation, config: model.config)
            // A copy of the model per thread (found by a helper: --threads 40 under a 4 GB limit crashed allocating).
            try MemoryCheck.require(evaluator.memoryBytes(model.config, threads: threads) + threads * MemoryCheck.perThreadBytes,
                                    for: "scoring the whole set on --threads \(threads) (a copy of the model and a window's buffers each)",
                                    advice: "give fewer --threads")
            let line = ProgressLine(label: "evaluate", style: progress.progress)
            let shown = Mutex(-Double.infinity)
            let score = try evaluator.score(model, threads: threads) { done, total in
                let now = elapsedSeconds(since: start)
                // A window takes milliseconds: redraw a few times a second.
                let due = shown.withLock { last -> Bool in
                    guard done == total || now - last >= 0.25 else { return false }
                    last = now
                    return true
                }
                guard due else { return }
                line.update(String(format: "%ld/%ld windows (%.0f %%), ETA %@", done, total, 100 * Double(done) / Double(total),
                                   ProgressLine.duration(now * Double(total - done) / Double(done))), now: now)
            }
            line.finish()
            let seconds = elapsedSeconds(since: start)
            // The baseline on the samples scored (a long receptive field leaves out each clip's start).
            let baseline = crossEntropyBits(histogram: evaluator.targetHistogram, model: data.train.codeHistogram())
            print(String(format: "%@: step %ld, %@, whole-set validation NLL %.4f bits/sample over %@ samples (every validation sample "
                         + "with a full receptive field of %ld; unigram baseline on the same samples %.3f) in %.1f s on %ld thread%@",
                         checkpoint, header.step, model.precision.rawValue, score.nllBits, score.count.grouped, model.config.receptiveField, baseline,
                         seconds, threads, threads == 1 ? "" : "s"))
            return
        }
        let (options, note) = Self.windows(given: (givenWindows, givenTargets), metadata: header.metadata)
        if let note { printNote(note) }
        // The windows' codes and one window's buffers (--eval-windows may be 2^20 × 2^24 samples).
        let length = model.config.receptiveField - 1 + options.targets
        // evaluate draws no training windows; only --eval-targets sets a window here.
        let targets = WindowSetting.flag("--eval-targets", value: options.targets)
        try explainingShortClips(data, training: targets, validation: targets) {
            try data.validation.requireWindow(length: Validator.windowLength(model.config, targets: options.targets))
        }
        let (codes, overflow) = options.windows.multipliedReportingOverflow(by: length * 4)
        let step = WaveNet.stepBytes(model.config, batch: 1, time: length, training: false)
        try MemoryCheck.require(overflow || codes > Int.max - step ? Int.max : codes + step,
                                for: "scoring --eval-windows \(options.windows) × --eval-targets \(options.targets)",
                                advice: "give fewer --eval-windows or --eval-targets (or --all, which scores every sample once)")
        let validator = try explainingShortClips(data, training: targets, validation: targets) {
            try options.validator(data, config: model.config)
        }
        // One pass over the windows, seconds for a large model: say what runs.
        let line = ProgressLine(label: "evaluate", style: progress.progress)
        if let note = validator.overlapNote { printNote(note) }
        line.update("scoring \(validator.windows.count) validation window\(validator.windows.count == 1 ? "" : "s") × \(validator.targets) sample\(validator.targets == 1 ? "" : "s") …", now: 0, force: true)
        let nll = validator.nllBits(model)
        line.finish()
        print(String(format: "%@: step %ld, %@, validation NLL %.4f bits/sample over %ld window%@ × %ld sample%@ (unigram on the same windows "
                     + "%.3f; on the whole set %.3f)", checkpoint, header.step, model.precision.rawValue, nll, validator.windows.count, validator.windows.count == 1 ? "" : "s",
                     validator.targets, validator.targets == 1 ? "" : "s", TrainingReporter.unigram(on: validator, data), unigram))
    }
}
