import CPBTSampleRate

/// libsamplerate's band-limited sinc converters, best first: all keep 97 dB
/// of signal-to-noise; they pass 97 %, 90 % and 80 % of the output's
/// bandwidth, and `fastest` costs about a third of `medium`.
public enum ResamplingQuality: String, Sendable, Hashable, CaseIterable {
    case best, medium, fastest

    var converter: Int32 {
        switch self {
        case .best: Int32(SRC_SINC_BEST_QUALITY)
        case .medium: Int32(SRC_SINC_MEDIUM_QUALITY)
        case .fastest: Int32(SRC_SINC_FASTEST)
        }
    }

    /// What loading audio uses unless told otherwise (``resample(_:from:to:quality:)``,
    /// ``readMonoAudio(path:sampleRate:quality:maximumSamples:)``, and
    /// ``SpeechCorpus/load(directory:verifyChecksums:requireBothSplits:)``
    /// for a corpus not at 16 kHz): `medium`.
    public static let loadingDefault = ResamplingQuality.medium

    /// What `pbtwave corpus build` uses unless told otherwise: `fastest`
    /// (80 % of the bandwidth, 6.4 kHz at 16 kHz, enough for speech; a third
    /// of `medium`'s CPU).
    public static let corpusBuildDefault = ResamplingQuality.fastest
}

/// Resamples mono `samples` from `sourceRate` to `targetRate` Hz with
/// libsamplerate's band-limited sinc filter (``ResamplingQuality/loadingDefault``,
/// `medium`, unless `quality` says otherwise).
///
/// The result has exactly `⌊samples.count × targetRate / sourceRate⌋`
/// samples (3.0 s at any rate gives 3.0 s) and is aligned in time with the
/// input: output `n` is the input at time `n × sourceRate / targetRate`.
/// Equal rates return the input unchanged.
///
/// Throws ``AudioError/resampleFailed(path:fromRate:toRate:reason:)`` (with an
/// empty path) for a ratio beyond libsamplerate's 1/256…256, checked before
/// anything is allocated, or when libsamplerate refuses.
public func resample(
    _ samples: [Float], from sourceRate: Int, to targetRate: Int, quality: ResamplingQuality = .loadingDefault
) throws(AudioError) -> [Float] {
    try resample(samples, from: sourceRate, to: targetRate, quality: quality, path: "", maximumSamples: Int.max / 16)
}

/// ``resample(_:from:to:quality:)`` with errors naming `path`, refusing
/// (before allocating) an output of more than `maximumSamples`.
func resample(
    _ samples: [Float], from sourceRate: Int, to targetRate: Int, quality: ResamplingQuality = .loadingDefault,
    path: String, maximumSamples: Int = AudioLimits.defaultMaximumSamples
) throws(AudioError) -> [Float] {
    precondition(sourceRate > 0 && targetRate > 0, "sample rates must be positive")
    if sourceRate == targetRate || samples.isEmpty { return samples }
    let stream = try LibsamplerateStream(from: sourceRate, to: targetRate, quality: quality, path: path)
    let ratio = Double(targetRate) / Double(sourceRate)
    let exact = Double(samples.count) * ratio
    let bound = exact < Double(Int.max / 4) ? Int(exact.rounded(.up)) + 16 : Int.max / 4
    guard bound <= maximumSamples else {
        throw AudioError.tooLong(path: path, samples: bound, limit: maximumSamples)
    }
    var output: [Float] = []
    output.reserveCapacity(bound)
    try samples.withUnsafeBufferPointer { input throws(AudioError) in
        try stream.process(input, last: true) { output.append(contentsOf: $0) }
    }
    return output
}

extension ResamplingQuality {
    /// Names the conversion in a corpus build's identity.
    var resamplerName: String { "libsamplerate \(String(cString: src_get_name(converter)))" }
}

/// A mono resampling stream through libsamplerate's converter, the one
/// every resampling in PBTWave goes through: feed blocks of any size,
/// receive converted blocks, flush with the last one. libsamplerate keeps
/// its position across calls, so the samples produced do not depend on how
/// the input is cut. Not `Sendable`: one thread uses a stream.
///
/// Owns the `SRC_STATE` (freed in `deinit`) and one output block; memory
/// does not depend on the length of the stream.
final class LibsamplerateStream {
    let sourceRate: Int
    let targetRate: Int
    let ratio: Double
    private let path: String
    private let state: OpaquePointer
    private var block: [Float]
    /// Where `data_in` points when no input is left (libsamplerate refuses a
    /// null pointer even with 0 frames).
    private let empty: UnsafeMutablePointer<Float>
    /// Samples fed and handed out so far: the stream's output ends at exactly
    /// `⌊fed × targetRate / sourceRate⌋` (libsamplerate's own count, from its
    /// ratio in floating point, was sometimes one fewer: 3.0 s of 44.1 kHz
    /// became 47,999 samples at 16 kHz).
    private var fed = 0, handedOut = 0

    /// Throws ``AudioError/resampleFailed(path:fromRate:toRate:reason:)``
    /// for a ratio beyond 1/256…256 (before allocating anything).
    init(from sourceRate: Int, to targetRate: Int, quality: ResamplingQuality = .loadingDefault, path: String) throws(AudioError) {
        precondition(sourceRate > 0 && targetRate > 0, "sample rates must be positive")
        let ratio = Double(targetRate) / Double(sourceRate)
        guard src_is_valid_ratio(ratio) != 0 else {
            throw AudioError.resampleFailed(path: path, fromRate: sourceRate, toRate: targetRate,
                                            reason: "the ratio is beyond libsamplerate's 1/256…256")
        }
        var error: Int32 = 0
        guard let state = src_new(quality.converter, 1, &error) else {
            throw AudioError.resampleFailed(path: path, fromRate: sourceRate, toRate: targetRate, reason: cleanMessage(String(cString: src_strerror(error))))
        }
        self.sourceRate = sourceRate
        self.targetRate = targetRate
        self.ratio = ratio
        self.path = path
        self.state = state
        block = [Float](repeating: 0, count: 16_384)
        empty = .allocate(capacity: 1)
        empty.initialize(to: 0)
    }

    deinit {
        src_delete(state)
        empty.deallocate()
    }

    /// Converts `input` and hands every produced block to `sink`; with
    /// `last`, also flushes the filter (the stream is then finished).
    func process(
        _ input: UnsafeBufferPointer<Float>, last: Bool,
        sink: (UnsafeBufferPointer<Float>) throws(AudioError) -> Void
    ) throws(AudioError) {
        fed += input.count
        guard last else {
            return try convert(input, last: false) { (block) throws(AudioError) in
                handedOut += block.count
                try sink(block)
            }
        }
        // The filter reads zeros past the end of the input; a few more zeros fed
        // as input give the samples libsamplerate's end would round away, and
        // the output is cut at the exact count.
        let expected = fed.multipliedReportingOverflow(by: targetRate).overflow ? Int(Double(fed) * ratio) : fed * targetRate / sourceRate
        func upToExpected(_ block: UnsafeBufferPointer<Float>) throws(AudioError) {
            let kept = min(block.count, max(0, expected - handedOut))
            handedOut += kept
            if kept > 0 { try sink(UnsafeBufferPointer(rebasing: block[0 ..< kept])) }
        }
        try convert(input, last: false, sink: upToExpected)
        let zeros = [Float](repeating: 0, count: sourceRate / targetRate + 4)
        try zeros.withUnsafeBufferPointer { (padding) throws(AudioError) in try convert(padding, last: false, sink: upToExpected) }
        try convert(UnsafeBufferPointer(start: nil, count: 0), last: true, sink: upToExpected)
    }

    private func convert(
        _ input: UnsafeBufferPointer<Float>, last: Bool,
        sink: (UnsafeBufferPointer<Float>) throws(AudioError) -> Void
    ) throws(AudioError) {
        var consumed = 0
        while true {
            var data = SRC_DATA()
            var status: Int32 = 0
            let remaining = input.count - consumed
            block.withUnsafeMutableBufferPointer { out in
                data.data_in = remaining > 0 ? UnsafePointer(input.baseAddress! + consumed) : UnsafePointer(empty)
                data.input_frames = remaining
                data.data_out = out.baseAddress
                data.output_frames = out.count
                data.end_of_input = last ? 1 : 0
                data.src_ratio = ratio
                status = src_process(state, &data)
            }
            guard status == 0 else {
                throw AudioError.resampleFailed(path: path, fromRate: sourceRate, toRate: targetRate, reason: cleanMessage(String(cString: src_strerror(status))))
            }
            consumed += data.input_frames_used
            let produced = data.output_frames_gen
            if produced > 0 {
                try block.withUnsafeBufferPointer { out throws(AudioError) in try sink(UnsafeBufferPointer(rebasing: out[0 ..< produced])) }
            }
            // Without `last`, libsamplerate keeps a filter's length of input
            // buffered; it returns once it has used all input it can.
            if consumed >= input.count && (produced == 0 || !last && produced < block.count) { return }
        }
    }
}
