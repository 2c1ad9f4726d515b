import Foundation
import PBTSchedules
import PBTSeededRNG
import PBTWaveAudio
import PBTWaveTensor

extension WaveNetConfig {
    /// Throws unless this model can learn from (or be scored on) `clips`: it
    /// must predict their 8-bit mu-law codes (256 classes) at their sample
    /// rate. A corpus always holds 256-level codes, at 16 kHz.
    public func checkMatches(_ clips: ClipSet) throws(WaveNetError) {
        guard classes == MuLaw.levels else {
            throw .invalidConfig("the model predicts \(classes) classes, but \(clips.source) holds 8-bit mu-law codes "
                + "(\(MuLaw.levels) levels); set \"classes\": \(MuLaw.levels) in the model config")
        }
        guard sampleRate == clips.sampleRate else {
            throw .invalidConfig("the model's sample rate is \(sampleRate) Hz, but \(clips.source) is loaded at \(clips.sampleRate) Hz "
                + "(a corpus's files are resampled to that when loaded, whatever their own rate); "
                + "set \"sampleRate\": \(clips.sampleRate) in the model config")
        }
    }
}

/// How training windows are drawn. Separate from the architecture.
public struct TrainingOptions: Codable, Sendable, Hashable {
    /// Windows per step.
    public var batch: Int
    /// Scored positions per window (T).
    public var window: Int
    /// Extra leading positions per window that feed the model but are not
    /// scored. 0 (the default) matches the PyTorch reference: every position
    /// is a target, with zero padding before the window.
    public var context: Int
    /// The products' operands (see `WaveNet.precision`); fp32 by default.
    public var precision: Precision

    public init(batch: Int = 1, window: Int = 8192, context: Int = 0, precision: Precision = .fp32) {
        self.batch = batch
        self.window = window
        self.context = context
        self.precision = precision
    }

    enum CodingKeys: String, CodingKey { case batch, window, context, precision }

    /// A recipe without a precision (written before bf16 existed) trains in fp32.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(batch: try c.decode(Int.self, forKey: .batch), window: try c.decode(Int.self, forKey: .window),
                  context: try c.decode(Int.self, forKey: .context),
                  precision: try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32)
    }

    /// fp32 is left out, so an fp32 recipe reads as it did before bf16 existed.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(batch, forKey: .batch)
        try c.encode(window, forKey: .window)
        try c.encode(context, forKey: .context)
        if precision != .fp32 { try c.encode(precision, forKey: .precision) }
    }

    public func validate() throws(WaveNetError) {
        guard batch >= 1 else { throw .invalidConfig("batch must be at least 1 (got \(batch))") }
        guard window >= 1 else { throw .invalidConfig("window must be at least 1 position (got \(window))") }
        guard context >= 0 else { throw .invalidConfig("context must not be negative (got \(context))") }
        let l = Self.limits
        guard batch <= l.batch else { throw .invalidConfig("batch must be at most \(l.batch) (got \(batch))") }
        guard window <= l.samples, context <= l.samples else {
            throw .invalidConfig("window and context must be at most \(l.samples) samples (got \(window) and \(context))")
        }
    }

    /// The largest batch, and window or context in samples, `validate()`
    /// accepts (the command line's bounds too).
    public static let limits = (batch: 4096, samples: 1 << 24)

    /// The windows as a checkpoint's metadata (`batch`, `window`,
    /// `context`), so that a resume can continue with them.
    public var checkpointMetadata: [String: String] { ["batch": "\(batch)", "window": "\(window)", "context": "\(context)"] }

    /// Codes per window: context + window + 1.
    public var windowLength: Int { ClipSet.windowLength(context: context, targets: window) }

    /// A note when `config`'s receptive field is longer than a training
    /// window's inputs (context + window): the farthest taps of even the
    /// last target then reach before the window, so in training they see
    /// only the zero padding, while evaluation and generation feed them
    /// audio. Nil when the windows cover the receptive field.
    public func receptiveFieldNote(for config: WaveNetConfig) -> String? {
        let field = config.receptiveField
        guard field > context + window else { return nil }
        return """
            note: the model's receptive field (\(field) samples) is longer than a training window (--window \(window) + \
            --context \(context) = \(context + window)): its farthest taps train on zero padding only, though evaluation \
            and generation feed them audio. Make --window + --context at least \(field) if the clips allow it
            """
    }

    /// The generator that draws the training windows of a run seeded with
    /// `seed` (the model's initialisation uses `seed` itself). One derivation
    /// for `pbtwave train`, every PBT trial and every replay.
    public static func dataRNG(seed: UInt64) -> Xoshiro256 { Xoshiro256(seed: seed).derived(1) }
}

/// Trains one model on windows drawn from a clip set: the one training loop
/// of the package (`run`), used by `pbtwave train`, every PBT trial and the
/// replay of a learned schedule. Owns the window buffer and the data
/// generator, so a step allocates nothing.
public final class Trainer {
    public let model: WaveNet
    public let options: TrainingOptions
    /// Draws the training windows; saved in checkpoints for exact resumes.
    public var dataRNG: Xoshiro256
    let clips: ClipSet
    var windows: [Int32]

    public init(model: WaveNet, clips: ClipSet, options: TrainingOptions, dataRNG: Xoshiro256) throws {
        try options.validate()
        try model.config.checkMatches(clips)
        let needed = options.windowLength
        guard clips.windowStartCount(length: needed) > 0 else {
            throw AudioError.noClipLongEnough(source: clips.source, length: needed, longest: clips.longestClip)
        }
        self.model = model
        self.options = options
        self.dataRNG = dataRNG
        model.precision = options.precision
        self.clips = clips
        windows = [Int32](repeating: 0, count: options.batch * needed)
    }

    /// One optimizer step at `learningRate`; returns the mean training loss in
    /// bits per sample.
    @discardableResult
    public func step(learningRate: Float) throws -> Double {
        let length = options.windowLength
        let o = options
        return try windows.withUnsafeMutableBufferPointer { buffer in
            try clips.sampleWindows(length: length, count: o.batch, rng: &dataRNG, into: buffer)
            let nats = model.trainStep(windows: buffer.baseAddress!, batch: o.batch, time: o.context + o.window,
                                       context: o.context, learningRate: learningRate)
            return nats / M_LN2
        }
    }

    /// Trains until the model's global step reaches `endStep`, each step at
    /// `schedule(model.step)`. Validates with `validator` every
    /// `evaluateEvery` steps (0: never in between) and at the end; writes
    /// `checkpoint` every `checkpoint.every` steps (0: only at the end) and
    /// at the end. Stops at the first non-finite loss (divergence) without
    /// writing a checkpoint, so a checkpoint never holds a diverged model;
    /// and where it would write one, or ends, at a non-finite weight or
    /// Adam moment (their checkpoint could not be read).
    /// `progress` is called after every step. `stop`, asked after every
    /// step, ends the run early (a signal): the checkpoint is written at that
    /// step and `stoppedAt` set, so a resume continues from it. It is also
    /// asked between a validation's windows: a stop there ends the
    /// validation (that step has none) and the run, at the last step too
    /// (`stoppedAt` is then `endStep`; a run to the same end only validates).
    public func run(
        until endStep: Int, schedule: LearningRateSchedule, validator: Validator? = nil, evaluateEvery: Int = 0,
        checkpoint: CheckpointPlan? = nil, progress: ((TrainingProgress) -> Void)? = nil, stop: (() -> Bool)? = nil
    ) throws -> TrainingSummary {
        var summary = TrainingSummary(firstStep: model.step)
        func due(_ every: Int) -> Bool { model.step == endStep || (every > 0 && model.step % every == 0) }
        // Where a checkpoint is written, or the run ends: a state that has overflowed is a divergence too.
        func overflowed(_ loss: Double, _ lr: Float) -> Bool {
            guard !model.stateIsFinite else { return false }
            summary.divergence = TrainingSummary.Divergence(step: model.step, loss: loss, learningRate: lr, inState: true)
            return true
        }
        while model.step < endStep {
            let lr = schedule(model.step)
            let loss = try step(learningRate: lr)
            summary.lastLoss = loss
            guard loss.isFinite else {
                summary.divergence = TrainingSummary.Divergence(step: model.step, loss: loss, learningRate: lr)
                progress?(TrainingProgress(step: model.step, endStep: endStep, loss: loss, learningRate: lr, validationNLL: nil))
                return summary
            }
            var validation: Double?
            // A stop during a validation ends it (a long one ran on for minutes, then the last step's said "done"; found by a helper).
            var cutShort = false
            if let validator, due(evaluateEvery) {
                validation = validator.nllBits(model, stop: stop)
                cutShort = validation == nil
                if let validation { summary.validationNLL = validation }
            }
            progress?(TrainingProgress(step: model.step, endStep: endStep, loss: loss, learningRate: lr, validationNLL: validation))
            if let checkpoint, due(checkpoint.every) {
                if overflowed(loss, lr) { return summary }
                try saveCheckpoint(to: checkpoint.path, metadata: checkpoint.metadata(loss: loss))
            }
            // (With a checkpoint plan, the end was checked above: it is always due.)
            if checkpoint == nil, model.step == endStep, overflowed(loss, lr) { return summary }
            if model.step < endStep || cutShort, stop?() == true {
                if let checkpoint, !due(checkpoint.every) {
                    if overflowed(loss, lr) { return summary }
                    try saveCheckpoint(to: checkpoint.path, metadata: checkpoint.metadata(loss: loss))
                }
                summary.stoppedAt = model.step
                return summary
            }
        }
        if summary.firstStep == model.step, let validator {
            summary.validationNLL = validator.nllBits(model, stop: stop)
            if summary.validationNLL == nil { summary.stoppedAt = model.step }
        }
        return summary
    }

    /// Writes the model and this trainer's data generator to `path`.
    public func saveCheckpoint(to path: String, metadata: [String: String] = [:]) throws(WaveNetError) {
        try CheckpointFile.write(model, dataRNG: dataRNG, metadata: metadata, to: path)
    }
}

/// Where and how often `Trainer.run` checkpoints.
public struct CheckpointPlan: Sendable {
    public var path: String
    /// Also every this many steps (0: only at the end).
    public var every: Int
    public var metadata: [String: String]

    public init(path: String, every: Int = 0, metadata: [String: String] = [:]) {
        self.path = path
        self.every = every
        self.metadata = metadata
    }

    /// The key of the training loss (bits per sample) of the step a
    /// checkpoint was written at, as `TrainingProgress.loss` gave it: what
    /// ties a learning curve's row to the checkpoint (`train --resume`).
    public static let lossKey = "train-bits"

    /// `metadata` with the step's training loss.
    func metadata(loss: Double) -> [String: String] {
        metadata.merging([Self.lossKey: "\(loss)"]) { _, new in new }
    }
}

/// One step of `Trainer.run`, for a progress line or a learning curve.
public struct TrainingProgress: Sendable {
    /// The model's global step after this step.
    public var step: Int
    public var endStep: Int
    /// This step's training loss in bits per sample.
    public var loss: Double
    public var learningRate: Float
    /// Set on the steps where the run validated.
    public var validationNLL: Double?
}

/// How `Trainer.run` ended.
public struct TrainingSummary: Sendable {
    public struct Divergence: Sendable, Hashable {
        public var step: Int
        public var loss: Double
        public var learningRate: Float
        /// The loss was finite, but the weights or Adam's moments were not
        /// (the second moment overflows before the loss does).
        public var inState = false
    }

    /// The model's global step when the run started.
    public var firstStep: Int
    public var lastLoss = Double.nan
    /// The last validation, if the run validated.
    public var validationNLL: Double?
    /// Set when a loss, or the model's state, was not finite; the run stopped there.
    public var divergence: Divergence?
    /// The step at which `stop` ended the run before its end (nil: it ran to the end).
    public var stoppedAt: Int?

    public var diverged: Bool { divergence != nil }
}

/// A fixed set of validation windows and the model's negative log-likelihood
/// on them, in bits per sample. Every scored prediction sees its full
/// receptive field (context = receptive field − 1), so the number is the
/// model's, not the padding's.
public struct Validator: Sendable {
    public let windows: WindowBatch
    public let context: Int
    public let targets: Int

    /// `count` windows of `targets` scored samples each, evenly spaced over
    /// `clips` (deterministic: the same windows every time).
    public init(clips: ClipSet, config: WaveNetConfig, count: Int = 16, targets: Int = 4096) throws {
        guard count >= 1, targets >= 1 else { throw WaveNetError.invalidConfig("validation needs at least one window of one sample") }
        try config.checkMatches(clips)
        context = config.receptiveField - 1
        self.targets = targets
        windows = try clips.evenlySpacedWindows(length: Self.windowLength(config, targets: targets), count: count)
    }

    /// A validation window's length: `targets` scored samples after the
    /// model's receptive field of context.
    public static func windowLength(_ config: WaveNetConfig, targets: Int) -> Int {
        ClipSet.windowLength(context: config.receptiveField - 1, targets: targets)
    }

    /// How many distinct samples the windows score: fewer than windows ×
    /// targets when they overlap (a validation set shorter than they are),
    /// so some samples count more than once in the NLL.
    public var distinctTargets: Int {
        var ranges: [Int: [Range<Int>]] = [:]
        for origin in windows.origins {
            ranges[origin.clip, default: []].append(origin.start + context + 1 ..< origin.start + windows.length)
        }
        var total = 0
        for spans in ranges.values {
            var end = Int.min
            for span in spans.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                total += max(0, span.upperBound - max(span.lowerBound, end))
                end = max(end, span.upperBound)
            }
        }
        return total
    }

    /// A note when the windows overlap (`distinctTargets`), or nil.
    public var overlapNote: String? {
        let (scored, distinct) = (windows.count * targets, distinctTargets)
        guard distinct < scored else { return nil }
        return "note: the \(windows.count) validation windows overlap (the validation set is short): they score \(distinct) "
            + "distinct samples, not \(scored), so some count more than once (fewer --eval-windows, or evaluate --all, scores each once)"
    }

    /// How often each code is a scored target (w[C+1 … C+T] of each window,
    /// the samples `nllBits` averages over): with the train set's
    /// histogram, the unigram baseline on exactly these samples.
    public func scoredCodeHistogram() -> [Int] {
        var counts = [Int](repeating: 0, count: MuLaw.levels)
        for i in 0..<windows.count {
            for code in windows.window(i).dropFirst(context + 1) { counts[Int(code)] += 1 }
        }
        return counts
    }

    /// Mean NLL in bits per sample over all scored positions; one window per
    /// forward pass. Does not change the model's parameters or optimizer.
    public func nllBits(_ model: WaveNet) -> Double { nllBits(model, stop: nil)! }

    /// `nllBits`, or nil if `stop` (asked before each window) said to stop.
    public func nllBits(_ model: WaveNet, stop: (() -> Bool)?) -> Double? {
        var nats = 0.0, count = 0
        let stopped: Bool = windows.codes.withUnsafeBufferPointer { codes in
            for i in 0..<windows.count {
                if stop?() == true { return true }
                let r = model.evaluate(windows: codes.baseAddress! + i * windows.length, batch: 1,
                                       time: context + targets, context: context)
                nats += r.nats
                count += r.count
            }
            return false
        }
        return stopped ? nil : nats / Double(count) / M_LN2
    }
}
