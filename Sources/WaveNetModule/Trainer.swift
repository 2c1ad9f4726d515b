import Foundation
import SeededRNG
import SpeechAudio

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

    public init(batch: Int = 1, window: Int = 8192, context: Int = 0) {
        self.batch = batch
        self.window = window
        self.context = context
    }

    public func validate() throws(WaveNetError) {
        guard batch >= 1 else { throw .invalidConfig("batch must be at least 1 (got \(batch))") }
        guard window >= 1 else { throw .invalidConfig("window must be at least 1 position (got \(window))") }
        guard context >= 0 else { throw .invalidConfig("context must not be negative (got \(context))") }
    }

    /// Codes per window: context + window + 1.
    public var windowLength: Int { ClipSet.windowLength(context: context, targets: window) }
}

/// Trains one model on windows drawn from a clip set. Owns the window
/// buffer and the data generator, so a step allocates nothing.
public final class Trainer {
    public let model: WaveNet
    public let options: TrainingOptions
    /// Draws the training windows; saved in checkpoints for exact resumes.
    public var dataRNG: Xoshiro256
    let clips: ClipSet
    var windows: [Int32]

    public init(model: WaveNet, clips: ClipSet, options: TrainingOptions, dataRNG: Xoshiro256) throws {
        try options.validate()
        let needed = options.windowLength
        guard clips.windowStartCount(length: needed) > 0 else {
            throw AudioError.noClipLongEnough(source: clips.source, length: needed, longest: clips.longestClip)
        }
        self.model = model
        self.options = options
        self.dataRNG = dataRNG
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

    /// Trains `steps` steps, taking each step's learning rate from `schedule`
    /// (called with the model's global step before the update). Stops early,
    /// returning the losses so far, if a loss is not finite (divergence).
    public func train(steps: Int, schedule: (Int) -> Float, onStep: ((Int, Double) -> Void)? = nil) throws -> [Double] {
        var losses: [Double] = []
        losses.reserveCapacity(steps)
        for _ in 0..<steps {
            let lr = schedule(model.step)
            let loss = try step(learningRate: lr)
            losses.append(loss)
            onStep?(model.step, loss)
            if !loss.isFinite { break }
        }
        return losses
    }

    /// Writes the model and this trainer's data generator to `path`.
    public func saveCheckpoint(to path: String, metadata: [String: String] = [:]) throws(WaveNetError) {
        try CheckpointFile.write(model, dataRNG: dataRNG, metadata: metadata, to: path)
    }
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
        context = config.receptiveField - 1
        self.targets = targets
        windows = try clips.evenlySpacedWindows(length: ClipSet.windowLength(context: context, targets: targets), count: count)
    }

    /// Mean NLL in bits per sample over all scored positions; one window per
    /// forward pass. Does not change the model's parameters or optimizer.
    public func nllBits(_ model: WaveNet) -> Double {
        var nats = 0.0, count = 0
        windows.codes.withUnsafeBufferPointer { codes in
            for i in 0..<windows.count {
                let r = model.evaluate(windows: codes.baseAddress! + i * windows.length, batch: 1,
                                       time: context + targets, context: context)
                nats += r.nats
                count += r.count
            }
        }
        return nats / Double(count) / M_LN2
    }
}
