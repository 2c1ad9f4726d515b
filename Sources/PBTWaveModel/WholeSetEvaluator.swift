import Foundation
import Synchronization
import PBTWaveAudio
import PBTWaveTensor

/// The model's negative log-likelihood on every sample of a clip set that
/// has a full receptive field: for a clip of n codes and receptive field RF,
/// the targets are codes[j] for j in RF ..< n, each predicted from
/// codes[j − RF ..< j]. A clip of RF codes or fewer scores nothing. This is
/// the number a claim rests on; `Validator`'s fixed windows (about 1.5 % of
/// the validation set) are for cheap selection inside a PBT run.
///
/// How it stays cheap: the clips are laid end to end in one stream and
/// scored by long windows of `targetsPerWindow` targets, each with RF − 1
/// positions of context before them. Consecutive windows overlap by exactly
/// that context, so each target is computed once and the receptive field is
/// re-run once per window, not once per sample (compact model, 16,384
/// targets per window: 12.5 % extra). A window may span a clip boundary:
/// a target is scored only when its whole receptive field lies in its own
/// clip, and a causal model's outputs never see later codes, so the next
/// clip's codes change nothing. The last window is padded at the end.
///
/// `WaveNet`'s forward pass runs one sequence at a time, so batching windows
/// would only add memory; `score(_:threads:)` runs windows in parallel on
/// copies of the model instead. Memory: about 15 KB per window position per
/// thread for the compact model (≈ 285 MB at 16,384 targets).
public struct WholeSetEvaluator: Sendable {
    /// One model's score.
    public struct Score: Sendable, Hashable {
        /// Mean NLL over the targets, bits per sample.
        public var nllBits: Double
        /// The number of scored targets: Σ max(0, n − RF) over the clips.
        public var count: Int
    }

    public let receptiveField: Int
    public let targetsPerWindow: Int
    /// The clips end to end, padded so that the last window is whole.
    let stream: [Int32]
    /// Stream indices of the scored targets, as sorted, disjoint ranges (one per clip longer than RF).
    let scored: [Range<Int>]
    public let windowCount: Int

    /// Prepares the stream of `clips` for a model with `config`.
    ///
    /// Throws when no clip is longer than the receptive field (nothing would
    /// be scored) or `targetsPerWindow` is below 1. O(total samples).
    public init(clips: ClipSet, config: WaveNetConfig, targetsPerWindow: Int = 16_384) throws(WaveNetError) {
        guard targetsPerWindow >= 1 else {
            throw .invalidConfig("the whole-set score needs at least 1 target per window (got \(targetsPerWindow))")
        }
        try config.checkMatches(clips)
        let rf = config.receptiveField
        var stream: [Int32] = []
        stream.reserveCapacity(clips.sampleCount + targetsPerWindow + rf)
        var scored: [Range<Int>] = []
        for clip in clips.clips {
            if clip.codes.count > rf { scored.append(stream.count + rf ..< stream.count + clip.codes.count) }
            stream.append(contentsOf: clip.codes.lazy.map { Int32($0) })
        }
        guard !scored.isEmpty else {
            throw .clipsTooShort("no clip of \(clips.source) is longer than the model's receptive field (\(rf) samples), "
                + "so no sample has a full receptive field to be scored with; use a model with a smaller receptive field")
        }
        // Window w scores the stream targets w·C + RF ..< (w + 1)·C + RF.
        let windows = (stream.count - rf + targetsPerWindow - 1) / targetsPerWindow
        stream.append(contentsOf: repeatElement(0, count: windows * targetsPerWindow + rf - stream.count))
        receptiveField = rf
        self.targetsPerWindow = targetsPerWindow
        self.stream = stream
        self.scored = scored
        windowCount = windows
    }

    /// The number of targets `score` averages over.
    public var targetCount: Int { scored.reduce(0) { $0 + $1.count } }

    /// How often each code occurs among the targets `score` averages over
    /// (a unigram baseline on the very samples scored).
    public var targetHistogram: [Int] {
        var counts = [Int](repeating: 0, count: MuLaw.levels)
        for range in scored { for j in range { counts[Int(stream[j])] += 1 } }
        return counts
    }

    /// Positions each window's forward pass computes: RF − 1 of context, then the targets.
    public var windowTime: Int { receptiveField - 1 + targetsPerWindow }

    /// The mean NLL of `model` over every target. With `threads` > 1 the
    /// windows are shared among that many copies of the model (parameters
    /// only); the result does not depend on `threads` (each window's sum is
    /// kept and they are added in order). Does not change `model`.
    /// O(total samples × (1 + (RF − 1)/targetsPerWindow)) forward positions.
    /// `progress`, if given, hears (windows scored, windows in all) as
    /// windows finish, from the scoring threads (never two at once).
    /// About the bytes `score` needs at `threads` for a model of `config`:
    /// a copy of the model and one window's forward buffers per thread used.
    public func memoryBytes(_ config: WaveNetConfig, threads: Int) -> Int {
        let copy = WaveNet.makeLayout(config).count * 4 * 4
        let window = WaveNet.stepBytes(config, batch: 1, time: receptiveField - 1 + targetsPerWindow, training: false)
        let (each, overflow) = copy.addingReportingOverflow(window)
        let (all, more) = each.multipliedReportingOverflow(by: max(1, min(threads, windowCount)))
        return overflow || more ? Int.max : all
    }

    public func score(_ model: WaveNet, threads: Int = 1, progress: (@Sendable (Int, Int) -> Void)? = nil) throws(WaveNetError) -> Score {
        precondition(threads >= 1, "threads must be at least 1")
        guard model.config.receptiveField == receptiveField else {
            throw .invalidConfig("the whole-set evaluator was prepared for a receptive field of \(receptiveField), the model has \(model.config.receptiveField)")
        }
        let workers = min(threads, windowCount)
        var models = [model]
        for _ in 1..<max(1, workers) {
            let copy = try WaveNet(config: model.config, seed: 0)
            copy.parameters.copy(from: model.parameters)
            copy.precision = model.precision
            models.append(copy)
        }
        var sums = [Double](repeating: 0, count: windowCount)
        let done = Mutex(0), total = windowCount
        sums.withUnsafeMutableBufferPointer { sums in
            ThreadTeam(threads: max(1, workers)).run { worker in
                for window in stride(from: worker, to: windowCount, by: workers) {
                    sums[window] = windowNats(models[worker], window: window, losses: nil)
                    if let progress { done.withLock { $0 += 1; progress($0, total) } }
                }
            }
        }
        let count = targetCount
        return Score(nllBits: sums.reduce(0, +) / Double(count) / M_LN2, count: count)
    }

    /// Every target's NLL in nats, in stream order (clip by clip, j = RF ..< n):
    /// the positions and values `score` averages, for tests. One thread.
    func perTargetNats(_ model: WaveNet) -> [Float] {
        var losses = [Float](repeating: .nan, count: stream.count)
        losses.withUnsafeMutableBufferPointer { losses in
            for window in 0..<windowCount { _ = windowNats(model, window: window, losses: losses.baseAddress!) }
        }
        return scored.flatMap { losses[$0] }
    }

    /// The summed NLL (nats) of window `window`'s scored targets; with
    /// `losses`, each target's NLL is also written at its stream index.
    func windowNats(_ model: WaveNet, window: Int, losses: UnsafeMutablePointer<Float>?) -> Double {
        // Window w's inputs are stream[s ..< s + T] (s = w·C); row t predicts stream[s + t + 1].
        let start = window * targetsPerWindow
        let first = start + receptiveField, end = first + targetsPerWindow
        let classes = model.config.classes
        return stream.withUnsafeBufferPointer { stream in
            model.forwardOnly(windows: stream.baseAddress! + start, batch: 1, time: windowTime)
            let logits = model.lastLogits()!
            var nats = 0.0
            var index = firstScoredRange(endingAfter: first)
            while index < scored.count, scored[index].lowerBound < end {
                let lower = max(scored[index].lowerBound, first), upper = min(scored[index].upperBound, end)
                if lower < upper {
                    let row = lower - start - 1
                    if let losses {
                        for r in 0..<(upper - lower) {
                            let nat = model.kernels.softmaxCrossEntropyForward(
                                logits: logits + (row + r) * classes, targets: stream.baseAddress! + lower + r, rows: 1, classes: classes)
                            losses[lower + r] = Float(nat)
                            nats += nat
                        }
                    } else {
                        nats += model.kernels.softmaxCrossEntropyForward(
                            logits: logits + row * classes, targets: stream.baseAddress! + lower, rows: upper - lower, classes: classes)
                    }
                }
                index += 1
            }
            return nats
        }
    }

    /// The index of the first scored range whose end lies after `position` (binary search).
    func firstScoredRange(endingAfter position: Int) -> Int {
        var low = 0, high = scored.count
        while low < high {
            let middle = (low + high) / 2
            if scored[middle].upperBound <= position { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
