import Synchronization

/// libsamplerate's `SRC_SINC_MEDIUM_QUALITY` filter for one pair of rates,
/// laid out for a polyphase FIR.
///
/// For rates in the ratio L/M (in lowest terms), output `n` lies at input
/// time `n·M/L`: phase `p = n·M mod L`, base sample `b = ⌊n·M/L⌋`, and
///
///     y[n] = Σ_{t<T} coefficients[p·T + t] · x[b − K + t]      (x = 0 outside the input)
///
/// The coefficients are not designed here: they are measured from
/// libsamplerate itself, as its responses to unit impulses (it is linear),
/// so the filter is exactly the one libsamplerate applies (its window,
/// bandwidth, fixed-point table positions and gain), rounded once to Float.
/// Running it as a dense dot product per output instead of libsamplerate's
/// scalar, interpolated, assert-checked loop is what makes it 10-20× faster.
struct PolyphaseFilter: Sendable {
    /// L: outputs per M inputs.
    let up: Int
    /// M.
    let down: Int
    /// K: taps before the base sample.
    let left: Int
    /// T: taps per phase, a multiple of 8.
    let taps: Int
    /// L × T, phase-major.
    let coefficients: [Float]

    /// Pairs of rates with L or M above this (odd ones such as 44,101 →
    /// 16,000 Hz; every usual rate has M ≤ 441) are not measured:
    /// libsamplerate runs them directly. Bounds a filter to 1024 phases of at
    /// most 600 taps (2.4 MB) and its measurement to about 1 M input samples.
    static let maximumFactor = 1024

    /// Measures the filter for `sourceRate` → `targetRate` from libsamplerate;
    /// nil for L or M above ``maximumFactor``. Cost: libsamplerate
    /// run over M impulses (e.g. 120,000 samples for 44.1 → 16 kHz, a few ms).
    static func measure(from sourceRate: Int, to targetRate: Int) throws(AudioError) -> PolyphaseFilter? {
        let divisor = greatestCommonDivisor(sourceRate, targetRate)
        let up = targetRate / divisor, down = sourceRate / divisor
        let ratio = Double(targetRate) / Double(sourceRate)
        // libsamplerate's medium filter spans ±45.7 zero crossings, stretched
        // by 1/ratio when decimating; a margin of 3 taps, checked below.
        let left = Int((47 / min(ratio, 1)).rounded(.up)) + 3
        let taps = (2 * left + 1 + 7) / 8 * 8
        guard up <= maximumFactor, down <= maximumFactor else { return nil }

        // Impulses `spacing` apart (more than the filter's span, so their
        // responses never overlap), at positions covering every residue mod M.
        var spacing = 2 * left + 8
        while greatestCommonDivisor(spacing, down) != 1 { spacing += 1 }
        var impulses = [Float](repeating: 0, count: spacing * (down + 2))
        for j in 0 ..< down { impulses[spacing * (j + 1)] = 1 }
        var responses: [Float] = []
        let converter = try LibsamplerateStream(from: sourceRate, to: targetRate, quality: .medium, path: "")
        try impulses.withUnsafeBufferPointer { input throws(AudioError) in
            try converter.process(input, last: true) { responses.append(contentsOf: $0) }
        }

        // Output n of impulse k0 is h((n·M − k0·L)/L): with m = n·M − k0·L =
        // p + q·L, that is the tap at offset −q of phase p.
        var coefficients = [Float](repeating: 0, count: up * taps)
        var covered = [Bool](repeating: false, count: up * taps)
        for (n, value) in responses.enumerated() {
            let position = n * down
            let j = Int((Double(position) / Double(up) / Double(spacing)).rounded()) - 1
            guard j >= 0, j < down else { continue }
            let m = position - spacing * (j + 1) * up
            let phase = ((m % up) + up) % up
            let offset = -((m - phase) / up)
            let tap = offset + left
            guard tap >= 0, tap < taps else {
                // Outside the span we assumed: the filter must be zero there.
                guard value == 0 else { return nil }
                continue
            }
            coefficients[phase * taps + tap] = value
            covered[phase * taps + tap] = true
        }
        // Every tap of the span [−K, K] was measured (the padding to a
        // multiple of 8 lies beyond it and stays 0).
        for phase in 0 ..< up {
            for tap in 0 ... 2 * left where !covered[phase * taps + tap] { return nil }
        }
        return PolyphaseFilter(up: up, down: down, left: left, taps: taps, coefficients: coefficients)
    }

    /// Filters measured so far, by (source rate, target rate), at most
    /// ``cacheSize`` of them (a folder of files at many odd rates must not
    /// fill memory with filters): the oldest is dropped first.
    private static let cache = Mutex<[(rates: [Int], filter: PolyphaseFilter?)]>([])
    static let cacheSize = 16

    /// ``measure(from:to:)``, once per pair of rates while it stays cached.
    static func cached(from sourceRate: Int, to targetRate: Int) throws(AudioError) -> PolyphaseFilter? {
        try cache.withLock { (filters) throws(AudioError) -> PolyphaseFilter? in
            if let known = filters.first(where: { $0.rates == [sourceRate, targetRate] }) { return known.filter }
            let filter = try measure(from: sourceRate, to: targetRate)
            if filters.count >= cacheSize { filters.removeFirst() }
            filters.append(([sourceRate, targetRate], filter))
            return filter
        }
    }
}

/// ``PolyphaseFilter`` as a stream: input blocks of any size in, output
/// blocks out; the result does not depend on how the input is cut.
///
/// Output count: every output whose time plus one output period lies within
/// the input, `⌊N·L/M⌋` for N input samples, libsamplerate's own rule (its
/// double-precision position sometimes gives one fewer when N·L/M is an
/// integer). Memory: the filter, the input not yet consumed (about one
/// block plus T samples), one output block.
final class PolyphaseStream: ResamplingStream {
    let filter: PolyphaseFilter
    /// Input samples from absolute index `start` on (K zeros before the
    /// first input sample, so output 0 sees silence before the start).
    private var history: [Float]
    private var start: Int
    private var inputCount = 0
    /// Next output: its index, phase and base sample.
    private var n = 0
    private var phase = 0
    private var base = 0
    private var block = [Float](repeating: 0, count: 16_384)
    private var finished = false

    init(filter: PolyphaseFilter) {
        self.filter = filter
        history = [Float](repeating: 0, count: filter.left)
        start = -filter.left
    }

    func process(
        _ input: UnsafeBufferPointer<Float>, last: Bool,
        sink: (UnsafeBufferPointer<Float>) throws(AudioError) -> Void
    ) throws(AudioError) {
        precondition(!finished, "process called after the last block")
        history.append(contentsOf: input)
        inputCount += input.count
        let total = last ? inputCount * filter.up / filter.down : Int.max
        if last {
            finished = true
            history.append(contentsOf: repeatElement(0, count: filter.taps))
        }
        try produce(until: total, sink: sink)
        // Drop what no later output reads.
        let keepFrom = base - filter.left - start
        if keepFrom > 0, keepFrom >= history.count / 2 {
            history.removeSubrange(0 ..< keepFrom)
            start += keepFrom
        }
    }

    /// Computes outputs while their window lies in `history` and `n < total`.
    private func produce(until total: Int, sink: (UnsafeBufferPointer<Float>) throws(AudioError) -> Void) throws(AudioError) {
        let taps = filter.taps, left = filter.left
        let stepBase = filter.down / filter.up, stepPhase = filter.down % filter.up, up = filter.up
        while true {
            var produced = 0
            history.withUnsafeBufferPointer { x in
                filter.coefficients.withUnsafeBufferPointer { h in
                    block.withUnsafeMutableBufferPointer { out in
                        let available = start + x.count
                        while produced < out.count, n < total, base - left + taps <= available {
                            out[produced] = dot(h.baseAddress! + phase * taps, x.baseAddress! + (base - left - start), taps)
                            produced += 1
                            n += 1
                            phase += stepPhase
                            base += stepBase
                            if phase >= up {
                                phase -= up
                                base += 1
                            }
                        }
                    }
                }
            }
            if produced > 0 {
                try block.withUnsafeBufferPointer { out throws(AudioError) in try sink(UnsafeBufferPointer(rebasing: out[0 ..< produced])) }
            }
            if produced < block.count { return }
        }
    }
}

/// Σ a[i]·b[i] for i < count (a multiple of 8), in four SIMD8 accumulators.
@inline(__always)
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
    var i = 0
    let stride = MemoryLayout<Float>.stride
    while i + 32 <= count {
        s0 = s0.addingProduct(ra.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<Float>.self))
        s1 = s1.addingProduct(ra.loadUnaligned(fromByteOffset: (i + 8) * stride, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: (i + 8) * stride, as: SIMD8<Float>.self))
        s2 = s2.addingProduct(ra.loadUnaligned(fromByteOffset: (i + 16) * stride, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: (i + 16) * stride, as: SIMD8<Float>.self))
        s3 = s3.addingProduct(ra.loadUnaligned(fromByteOffset: (i + 24) * stride, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: (i + 24) * stride, as: SIMD8<Float>.self))
        i += 32
    }
    while i < count {
        s0 = s0.addingProduct(ra.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<Float>.self))
        i += 8
    }
    return ((s0 + s1) + (s2 + s3)).sum()
}

private func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
    var (a, b) = (a, b)
    while b != 0 { (a, b) = (b, a % b) }
    return a
}
