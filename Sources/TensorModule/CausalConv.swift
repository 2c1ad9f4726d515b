// Dilated causal 1-D convolution as GEMMs over time.
//
// Notation (this file and Pointwise.swift):
//   B  sequences in a batch,  T  time steps,  Cin / Cout  channels,
//   K  kernel width (taps),   d  dilation.
// Activations are (B, C, T): per sequence a (C, T) matrix whose rows are
// channels and whose columns are time, so one row is contiguous in time.
// Weights are (K, Cout, Cin): tap k is a plain (Cout, Cin) matrix.
//
// Tap k looks back s_k = (K − 1 − k)·d steps; tap K − 1 is the present:
//
//   out[b, o, t] = bias[o] + Σ_k Σ_c W[k, o, c] · inp[b, c, t − s_k]
//
// with inp = 0 before t = 0 (causal zero padding). Each tap is therefore one
// GEMM on shifted column ranges — no im2col copy, no per-sample loop:
//
//   out_b[:, s_k ..< T] += W_k · inp_b[:, 0 ..< T − s_k]
//
// and a tap with s_k ≥ T sees only padding and is skipped.

/// Forward pass of a dilated causal convolution (K = 1 is the 1x1 convolution).
///
/// `out` is (B, Cout, T), `inp` is (B, Cin, T), `weight` is (K, Cout, Cin),
/// `bias` is (Cout) or nil. With `accumulate`, the result is added to `out`
/// instead of overwriting it. `out` must not overlap `inp`.
/// Cost: B·K GEMMs of (Cout × Cin)·(Cin × ≤T); no allocation.
public func causalConvForward(
    out: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    batch B: Int, inChannels Cin: Int, outChannels Cout: Int, time T: Int,
    kernelSize K: Int, dilation d: Int, accumulate: Bool = false
) {
    precondition(B >= 0 && Cin >= 1 && Cout >= 1 && T >= 0, "causal conv: bad sizes B \(B) Cin \(Cin) Cout \(Cout) T \(T)")
    precondition(K >= 1 && d >= 1, "causal conv: kernel size \(K) and dilation \(d) must be ≥ 1")
    for b in 0..<B {
        let outB = out + b * Cout * T
        let inpB = inp + b * Cin * T
        // The present tap (no shift) covers every column, so it goes first
        // and, unless accumulating, overwrites: no zeroing pass.
        for k in (0..<K).reversed() {
            let s = (K - 1 - k) * d
            if s >= T { continue }
            blockedGemm(outB + s, ldc: T,
                 weight + k * Cout * Cin, lda: Cin,
                 inpB, ldb: T,
                 m: Cout, n: T - s, k: Cin, beta: accumulate || k != K - 1 ? 1 : 0)
        }
        if let bias { addRowBias(outB, bias: bias, rows: Cout, cols: T) }
    }
}

/// Backward pass of `causalConvForward`. Accumulates (+=) into every gradient.
///
/// `dout` is (B, Cout, T); `dinp` (B, Cin, T), `dweight` (K, Cout, Cin) and
/// `dbias` (Cout) receive their gradients; pass nil for any that is not needed.
/// With `overwriteInputGradient`, `dinp` is overwritten instead (saving the
/// caller a zeroing pass). `inp` and `weight` are the forward's.
/// Cost: up to 2·B·K GEMMs; no allocation.
public func causalConvBackward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    batch B: Int, inChannels Cin: Int, outChannels Cout: Int, time T: Int,
    kernelSize K: Int, dilation d: Int, overwriteInputGradient: Bool = false
) {
    precondition(B >= 0 && Cin >= 1 && Cout >= 1 && T >= 0, "causal conv: bad sizes B \(B) Cin \(Cin) Cout \(Cout) T \(T)")
    precondition(K >= 1 && d >= 1, "causal conv: kernel size \(K) and dilation \(d) must be ≥ 1")
    for b in 0..<B {
        let doutB = dout + b * Cout * T
        let inpB = inp + b * Cin * T
        if let dbias { addRowSums(dbias, doutB, rows: Cout, cols: T) }
        // The present tap (k = K − 1, no shift) covers every column of dinp,
        // so it goes first: with `overwriteInputGradient` it sets, the others add.
        for k in (0..<K).reversed() {
            let s = (K - 1 - k) * d
            if s >= T { continue }
            if let dweight {
                // dW_k (Cout, Cin) += dout_b[:, s..<T] · inp_b[:, 0..<T−s]ᵀ
                blockedGemm(dweight + k * Cout * Cin, ldc: Cin,
                     doutB + s, lda: T,
                     inpB, ldb: T, transB: .transposed,
                     m: Cout, n: Cin, k: T - s, beta: 1)
            }
            if let dinp {
                // dinp_b[:, 0..<T−s] += W_kᵀ · dout_b[:, s..<T]
                blockedGemm(dinp + b * Cin * T, ldc: T,
                     weight + k * Cout * Cin, lda: Cin, transA: .transposed,
                     doutB + s, ldb: T,
                     m: Cin, n: T - s, k: Cout, beta: overwriteInputGradient && k == K - 1 ? 0 : 1)
            }
        }
    }
}
