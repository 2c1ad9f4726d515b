import CSampleRate

/// libsamplerate converters, best first.
public enum ResamplingQuality: Sendable, Hashable {
    case best, medium, fastest

    var converter: Int32 {
        switch self {
        case .best: Int32(SRC_SINC_BEST_QUALITY)
        case .medium: Int32(SRC_SINC_MEDIUM_QUALITY)
        case .fastest: Int32(SRC_SINC_FASTEST)
        }
    }
}

/// Resamples mono `samples` from `sourceRate` to `targetRate` Hz with
/// libsamplerate's band-limited sinc converter (`SRC_SINC_MEDIUM_QUALITY` by
/// default).
///
/// The result has `round(samples.count × targetRate / sourceRate)` samples
/// (give or take one, as libsamplerate flushes its filter) and is aligned in
/// time with the input: libsamplerate compensates the filter's delay.
/// Equal rates return the input unchanged.
///
/// Throws ``AudioError/resampleFailed(path:fromRate:toRate:reason:)`` (with an
/// empty path) when libsamplerate refuses, e.g. a ratio beyond 1/256…256.
public func resample(
    _ samples: [Float], from sourceRate: Int, to targetRate: Int, quality: ResamplingQuality = .medium
) throws(AudioError) -> [Float] {
    precondition(sourceRate > 0 && targetRate > 0, "sample rates must be positive")
    if sourceRate == targetRate || samples.isEmpty { return samples }
    let ratio = Double(targetRate) / Double(sourceRate)
    let capacity = Int((Double(samples.count) * ratio).rounded(.up)) + 16
    var output = [Float](repeating: 0, count: capacity)
    var status: Int32 = 0
    var generated = 0
    samples.withUnsafeBufferPointer { input in
        output.withUnsafeMutableBufferPointer { out in
            var data = SRC_DATA()
            data.data_in = input.baseAddress
            data.data_out = out.baseAddress
            data.input_frames = input.count
            data.output_frames = out.count
            data.end_of_input = 1
            data.src_ratio = ratio
            status = src_simple(&data, quality.converter, 1)
            generated = data.output_frames_gen
        }
    }
    guard status == 0 else {
        throw AudioError.resampleFailed(path: "", fromRate: sourceRate, toRate: targetRate, reason: String(cString: src_strerror(status)))
    }
    output.removeSubrange(generated...)
    return output
}
