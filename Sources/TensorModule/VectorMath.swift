// Vectorised transcendental functions on SIMD8<Float> (one AVX2 register).
//
// glibc's scalar expf/tanhf cost 5–20 ns each; a WaveNet training step needs
// ~1,300 of them per sample (20 gated layers) plus 256 for the softmax, so the
// scalar versions alone would be slower than all the GEMMs. These are the
// Cephes single-precision polynomials: exp has ≤ 2 ulp error on [-87, 88];
// tanh and sigmoid built on it have absolute error below 1e-6 (tests compare
// them with the libm versions).

public typealias Float8 = SIMD8<Float>

@usableFromInline let expHi: Float = 88.376_262_664_794_9
@usableFromInline let expLo: Float = -87.336_544_750_553_1

/// e^x, lane-wise. Inputs are clamped to [-87.3, 88.4] (so results stay finite
/// and normal); NaN lanes give NaN.
///
/// Written with comparisons, `replacing` and explicit `addingProduct` (FMA)
/// because the generic SIMD helpers (`clamped`, rounding conversions) compile
/// to out-of-line calls.
@_transparent
public func fastExp(_ x: Float8) -> Float8 {
    let nanMask = x .!= x
    var x = x.replacing(with: expHi, where: x .> expHi)
    x = x.replacing(with: expLo, where: x .< expLo)
    // x = n·ln2 + r, |r| ≤ ln2/2. Adding 1.5·2^23 rounds x·log2(e) to the
    // nearest integer n and leaves n in the low mantissa bits.
    let magic: Float = 12_582_912
    let t = (x * 1.442_695_040_888_963_4) + magic
    let n = t - magic
    // ln2 split in two so that n·ln2_hi is exact.
    x = x.addingProduct(n, -0.693_359_375)
    x = x.addingProduct(n, 2.121_944_400_546_905_8e-4)
    let r2 = x * x
    var p = Float8(repeating: 1.987_569_150_0e-4)
    p = Float8(repeating: 1.398_199_950_7e-3).addingProduct(p, x)
    p = Float8(repeating: 8.333_451_907_3e-3).addingProduct(p, x)
    p = Float8(repeating: 4.166_579_589_4e-2).addingProduct(p, x)
    p = Float8(repeating: 1.666_666_545_9e-1).addingProduct(p, x)
    p = Float8(repeating: 5.000_000_120_1e-1).addingProduct(p, x)
    p = (x + 1).addingProduct(p, r2)
    // 2^n from the exponent bits: n sits in the low bits of t.
    let nBits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- SIMD8<Int32>(repeating: 0x4B40_0000)
    let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: Float8.self)
    return (p * scale).replacing(with: .nan, where: nanMask)
}

/// tanh(x), lane-wise: 1 − 2 / (e^{2x} + 1). Absolute error < 1e-6.
@_transparent
public func fastTanh(_ x: Float8) -> Float8 {
    let e = fastExp(x + x)
    return 1 - 2 / (e + 1)
}

/// σ(x) = 1 / (1 + e^{−x}), lane-wise. Absolute error < 1e-6.
@_transparent
public func fastSigmoid(_ x: Float8) -> Float8 {
    1 / (1 + fastExp(-x))
}

@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Float8 {
    UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
}

@inlinable @inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
}

/// Loads up to 8 elements, filling the missing lanes with `fill`.
@inlinable @inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, fill: Float = 0) -> Float8 {
    var v = Float8(repeating: fill)
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inlinable @inline(__always)
func storePartial(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { p[i] = v[i] }
}

/// Lane-wise exp over a buffer, for callers outside the kernels (and tests).
public func fastExp(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count n: Int) {
    mapLanes(out, inp, n, fastExp)
}

/// Lane-wise tanh over a buffer.
public func fastTanh(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count n: Int) {
    mapLanes(out, inp, n, fastTanh)
}

/// Lane-wise sigmoid over a buffer.
public func fastSigmoid(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count n: Int) {
    mapLanes(out, inp, n, fastSigmoid)
}

@inlinable @inline(__always)
func mapLanes(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ n: Int, _ f: (Float8) -> Float8) {
    var i = 0
    while i + 8 <= n {
        store8(f(load8(inp + i)), out + i)
        i += 8
    }
    if i < n { storePartial(f(loadPartial(inp + i, n - i)), out + i, n - i) }
}
