import PBTSeededRNG

// Training windows.
//
// A window is `length = context + targets + 1` consecutive codes of one clip
// (never across clips). With C = context and T = targets, a model reads
// the first C + T codes as inputs and predicts the last T codes:
//
//     window   w[0] w[1] … w[C-1] w[C]  w[C+1] … w[C+T-1] w[C+T]
//     inputs   w[0] ………………………………… w[C]  ………………  w[C+T-1]          (C + T)
//     targets                        w[C+1] ………………………… w[C+T]    (T)
//
//     input position i predicts w[i+1]; the outputs at positions C … C+T-1
//     are scored: target j (0 ≤ j < T) is w[C+1+j], predicted from
//     w[0 … C+j], i.e. from at least C+1 past samples.
//
// For a causal model with receptive field R (each output sees R inputs, itself
// included), `context = R - 1` gives every scored output a full receptive
// field with no zero padding.

/// Where a window starts: clip index in the set, sample offset in the clip.
public struct WindowOrigin: Sendable, Hashable {
    public var clip: Int
    public var start: Int

    public init(clip: Int, start: Int) {
        self.clip = clip
        self.start = start
    }
}

/// A fixed set of windows, e.g. for validation.
public struct WindowBatch: Sendable {
    /// Number of windows.
    public let count: Int
    /// Codes per window.
    public let length: Int
    /// `count × length` codes, row-major: window `i` is
    /// `codes[i * length ..< (i + 1) * length]`.
    public let codes: [Int32]
    /// Where each window comes from.
    public let origins: [WindowOrigin]

    /// The codes of window `i`.
    public func window(_ i: Int) -> ArraySlice<Int32> {
        precondition(i >= 0 && i < count, "window \(i) out of 0..<\(count)")
        return codes[i * length ..< (i + 1) * length]
    }
}

extension ClipSet {
    /// Codes per window for `context` past samples and `targets` predictions:
    /// `context + targets + 1` (see the layout above).
    public static func windowLength(context: Int, targets: Int) -> Int {
        precondition(context >= 0 && targets > 0, "context must be ≥ 0 and targets > 0")
        return context + targets + 1
    }

    /// How many distinct windows of `length` the set holds: the sum over
    /// clips of `count - length + 1` (clips shorter than `length` give none).
    public func windowStartCount(length: Int) -> Int {
        precondition(length > 0, "window length must be positive")
        return clips.reduce(0) { $0 + max(0, $1.codes.count - length + 1) }
    }

    /// Throws ``AudioError/noClipLongEnough(source:length:longest:)`` unless
    /// some clip holds a window of `length` codes: checked before the
    /// windows' memory is counted, whose estimate a window no clip holds
    /// makes huge for the wrong reason.
    public func requireWindow(length: Int) throws(AudioError) {
        guard length <= longestClip else { throw AudioError.noClipLongEnough(source: source, length: length, longest: longestClip) }
    }

    /// Copies a random window of `length` codes into `buffer` (its count must
    /// be `length`) and returns where it came from.
    ///
    /// Uniform over all valid windows of all clips, so a clip is drawn in
    /// proportion to `count - length + 1`; clips shorter than `length` are
    /// never drawn. Draws exactly one bounded number from `rng` (Lemire's
    /// method: a few `next()` calls), so the sequence of windows is a pure
    /// function of the seed and the set. No allocation. O(clips + length).
    ///
    /// Throws ``AudioError/noClipLongEnough(source:length:longest:)`` when no
    /// clip holds `length` codes.
    @discardableResult
    public func sampleWindow(
        length: Int, rng: inout Xoshiro256, into buffer: UnsafeMutableBufferPointer<Int32>
    ) throws(AudioError) -> WindowOrigin {
        precondition(length > 0 && buffer.count == length, "window buffer holds \(buffer.count) codes, length is \(length)")
        let total = windowStartCount(length: length)
        guard total > 0 else { throw AudioError.noClipLongEnough(source: source, length: length, longest: longestClip) }
        let origin = locate(Int(uniform(below: UInt64(total), rng: &rng)), length: length)
        copyWindow(origin, length: length, into: buffer)
        return origin
    }

    /// Fills `buffer` (count `count × length`) with `count` random windows,
    /// row-major, as `count` calls of ``sampleWindow(length:rng:into:)``.
    public func sampleWindows(
        length: Int, count: Int, rng: inout Xoshiro256, into buffer: UnsafeMutableBufferPointer<Int32>
    ) throws(AudioError) {
        precondition(count > 0 && buffer.count == count * length, "window buffer holds \(buffer.count) codes, need \(count) × \(length)")
        for i in 0 ..< count {
            try sampleWindow(length: length, rng: &rng, into: UnsafeMutableBufferPointer(rebasing: buffer[i * length ..< (i + 1) * length]))
        }
    }

    /// A fixed, deterministic set of `count` windows of `length`, evenly
    /// spaced over all valid windows: number the valid windows 0 ..< N clip by
    /// clip (as ``sampleWindow(length:rng:into:)`` does); window `i` is number
    /// `floor((2i + 1) · N / (2 · count))`, the middle of the i-th of `count`
    /// equal parts. Longer clips get proportionally more windows; windows may
    /// overlap when `count × length` exceeds the audio. Depends only on the
    /// set, `count` and `length`: the same windows on every call.
    ///
    /// Throws ``AudioError/noClipLongEnough(source:length:longest:)`` when no
    /// clip holds `length` codes.
    public func evenlySpacedWindows(length: Int, count: Int) throws(AudioError) -> WindowBatch {
        precondition(count > 0, "window count must be positive")
        let total = windowStartCount(length: length)
        guard total > 0 else { throw AudioError.noClipLongEnough(source: source, length: length, longest: longestClip) }
        var codes = [Int32](repeating: 0, count: count * length)
        var origins: [WindowOrigin] = []
        origins.reserveCapacity(count)
        codes.withUnsafeMutableBufferPointer { buffer in
            for i in 0 ..< count {
                let index = (2 * i + 1) * total / (2 * count)
                let origin = locate(index, length: length)
                copyWindow(origin, length: length, into: UnsafeMutableBufferPointer(rebasing: buffer[i * length ..< (i + 1) * length]))
                origins.append(origin)
            }
        }
        return WindowBatch(count: count, length: length, codes: codes, origins: origins)
    }

    /// Clip and offset of valid window number `index` (numbered clip by clip).
    private func locate(_ index: Int, length: Int) -> WindowOrigin {
        var remaining = index
        for (c, clip) in clips.enumerated() where clip.codes.count >= length {
            let starts = clip.codes.count - length + 1
            if remaining < starts { return WindowOrigin(clip: c, start: remaining) }
            remaining -= starts
        }
        preconditionFailure("window index \(index) beyond the set")
    }

    private func copyWindow(_ origin: WindowOrigin, length: Int, into buffer: UnsafeMutableBufferPointer<Int32>) {
        clips[origin.clip].codes.withUnsafeBufferPointer { codes in
            for i in 0 ..< length { buffer[i] = Int32(codes[origin.start + i]) }
        }
    }
}

/// Uniform in 0 ..< bound (bound > 0) without modulo bias, by Lemire's
/// multiply-and-reject method. Spelled out here rather than using the
/// standard library's `next(upperBound:)`, so that the draws, and therefore
/// checkpointed runs, cannot change with the Swift version.
@inline(__always)
func uniform(below bound: UInt64, rng: inout Xoshiro256) -> UInt64 {
    var product = rng.next().multipliedFullWidth(by: bound)
    if product.low < bound {
        let threshold = (0 &- bound) % bound
        while product.low < threshold { product = rng.next().multipliedFullWidth(by: bound) }
    }
    return product.high
}
