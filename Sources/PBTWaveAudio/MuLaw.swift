#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// 8-bit mu-law companding (mu = 255, 256 levels), as WaveNet uses it:
/// the model predicts one of 256 classes per sample.
///
/// Encoding is exactly the PyTorch reference (the peer model `wavenet_torch.py`, given to `bench train --peer-script`):
///
///     y    = sign(x) · log1p(mu·|x|) / log1p(mu)
///     code = floor((y + 1) / 2 · mu + 0.5), clamped to [0, mu]
///
/// computed in Float in the same order of operations. Decoding is its
/// inverse at the bin centres:
///
///     y = 2·code/mu − 1;   x = sign(y) · ((1 + mu)^|y| − 1) / mu
///
/// Edge cases: −1 → 0, +1 → 255, 0 → 128 (0 sits on the edge between bins
/// 127 and 128; there is no zero code, `decode(128)` is +8.6e-5). Inputs
/// beyond ±1, including ±infinity, are clamped to ±1. NaN is treated as 0
/// (silence) rather than trapping, so damaged audio cannot crash a run; file
/// readers reject non-finite samples before they get here.
///
/// The array versions write into caller-provided buffers and never allocate.
public enum MuLaw {
    /// The mu of mu-law: 255.
    public static let mu = 255
    /// Number of codes: 256.
    public static let levels = 256

    @usableFromInline static let muFloat: Float = 255
    /// `log1p(mu)` rounded to Float, as PyTorch divides a float32 tensor by it.
    @usableFromInline static let logOnePlusMu = Float(log1p(255.0))

    /// The Float sample each code decodes to (bin centres), computed in Double.
    public static let decodingTable: [Float] = (0 ..< 256).map { code in
        let y = 2 * Double(code) / 255 - 1
        let magnitude = (pow(256, abs(y)) - 1) / 255
        return Float(y < 0 ? -magnitude : magnitude)
    }

    /// The code of one sample.
    @inlinable
    public static func encode(_ sample: Float) -> UInt8 {
        let x = sample.isNaN ? 0 : min(max(sample, -1), 1)
        let magnitude = logOnePlusMuTimes(abs(x)) / logOnePlusMu
        let y = x < 0 ? -magnitude : magnitude
        let v = (y + 1) / 2 * muFloat + 0.5
        return UInt8(min(max(v.rounded(.down), 0), muFloat))
    }

    /// The sample a code decodes to. Traps if `code` is outside 0…255.
    @inlinable
    public static func decode<Code: BinaryInteger>(_ code: Code) -> Float {
        decodingTable[Int(code)]
    }

    /// `log1p(mu · m)` in Float (kept out of line: the C function is not
    /// visible to inlinable code in other modules otherwise).
    @usableFromInline
    static func logOnePlusMuTimes(_ m: Float) -> Float {
        log1pf(muFloat * m)
    }

    // MARK: Buffers (no allocation)

    /// Encodes `samples` into `codes` (same count): `UInt8`, or `Int32`, the
    /// class indices a model consumes. O(n), no allocation.
    public static func encode<Code: FixedWidthInteger>(_ samples: UnsafeBufferPointer<Float>, into codes: UnsafeMutableBufferPointer<Code>) {
        precondition(samples.count == codes.count, "mu-law encode: \(samples.count) samples into \(codes.count) codes")
        for i in 0 ..< samples.count { codes[i] = Code(encode(samples[i])) }
    }

    /// Decodes `codes` (each 0…255; checked, traps otherwise) into
    /// `samples` (same count). O(n), no allocation.
    public static func decode<Code: FixedWidthInteger>(_ codes: UnsafeBufferPointer<Code>, into samples: UnsafeMutableBufferPointer<Float>) {
        precondition(samples.count == codes.count, "mu-law decode: \(codes.count) codes into \(samples.count) samples")
        decodingTable.withUnsafeBufferPointer { table in
            for i in 0 ..< codes.count {
                let code = Int(codes[i])
                precondition(code >= 0 && code < 256, "mu-law code \(code) outside 0...255")
                samples[i] = table[code]
            }
        }
    }

    // MARK: Arrays (convenient, allocate the result)

    /// The codes of `samples`.
    public static func encode(_ samples: [Float]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: samples.count) { codes, count in
            samples.withUnsafeBufferPointer { encode($0, into: codes) }
            count = samples.count
        }
    }

    /// The samples of `codes` (each 0…255; traps otherwise).
    public static func decode<Code: FixedWidthInteger>(_ codes: [Code]) -> [Float] {
        [Float](unsafeUninitializedCapacity: codes.count) { samples, count in
            codes.withUnsafeBufferPointer { decode($0, into: samples) }
            count = codes.count
        }
    }
}
