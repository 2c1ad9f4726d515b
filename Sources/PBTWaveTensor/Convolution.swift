import CPBTWaveKernels

// Dilated causal 1-D convolution over time-major activations.
//
// Notation (this file and Pointwise.swift):
//   T  time steps of one sequence,  Cin / Cout  channels,
//   K  kernel width (taps),  d  dilation,  D  gated channels (Cout = 2D).
// An activation is (T, C) row-major: row t (one time step's channels) starts
// at x + t·stride, stride ≥ C. Weights are (K, Cout, Cin): tap k is a plain
// (Cout, Cin) matrix. Tap k looks back s_k = (K − 1 − k)·d steps; tap K − 1
// is the present:
//
//   out[t, o] = bias[o] + Σ_k Σ_c W[k, o, c] · inp[t − s_k, c]
//
// with inp = 0 before t = 0 (causal zero padding). Every kernel computes a
// range of rows, so threads can split the time axis: the forward pass and the
// weight gradient read only rows at or before their own, the input gradient
// gathers from rows at or after them.
//
// The forward products and the weight gradients also take a negative d: tap
// k then reads row t + (K − 1 − k)·|d|, and every such row must exist (no
// padding). That sums K blocks of |d| rows stored one after another as K
// taps: WaveNet's skip product over each layer's z rows (block K − 1 − k
// holding layer k's), read where the gated forward wrote them.

/// A convolution weight (K, Cout, Cin) and bias rearranged for the kernels.
///
/// The forward form holds, for each tap and input channel, all outputs as
/// consecutive vectors (padded to 16 floats), with the bias after the taps;
/// the backward form holds each output's inputs, padded. Pack again after
/// every change of the weight: the kernels read only the packed copy.
/// Cost of `pack`: one pass over the weight.
public final class PackedConv {
    public let kernelSize: Int
    public let inChannels: Int
    public let outChannels: Int
    /// Whether the outputs are WaveNet's gated pair [a | g] (Cout = 2D).
    public let gated: Bool
    /// The operands the products take: fp32 weights for the fp32 kernels,
    /// or words of two bf16 (rounded to nearest-even) for the `…BF16` ones.
    public let precision: Precision
    let forward: Tensor
    let backward: Tensor

    public init(kernelSize K: Int, inChannels Cin: Int, outChannels Cout: Int, gated: Bool = false, precision: Precision = .fp32) {
        precondition(K >= 1 && Cin >= 1 && Cout >= 1, "convolution sizes must be positive (K \(K) Cin \(Cin) Cout \(Cout))")
        precondition(!gated || Cout % 2 == 0, "a gated convolution needs an even Cout, got \(Cout)")
        kernelSize = K
        inChannels = Cin
        outChannels = Cout
        self.gated = gated
        self.precision = precision
        let (k, i, o, g) = (Int32(K), Int32(Cin), Int32(Cout), Int32(gated ? 2 : 1))
        switch precision {
        case .fp32:
            forward = Tensor(shape: [ck_packed_forward_count(k, i, o, g)])
            backward = Tensor(shape: [ck_packed_backward_count(k, i, o)])
        case .bf16:
            forward = Tensor(shape: [ck_packed_forward_count_bf16(k, i, o, g)])
            backward = Tensor(shape: [ck_packed_backward_count_bf16(k, i, o)])
        }
    }

    /// Copies `weight` (K, Cout, Cin) and `bias` (Cout; nil for none) in
    /// (for bf16, the weight rounded to nearest-even; the bias stays fp32).
    public func pack(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?) {
        let (k, i, o, g) = (Int32(kernelSize), Int32(inChannels), Int32(outChannels), Int32(gated ? 2 : 1))
        switch precision {
        case .fp32:
            ck_pack_forward(forward.baseAddress, weight, bias, k, i, o, g)
            ck_pack_backward(backward.baseAddress, weight, k, i, o)
        case .bf16:
            ck_pack_forward_bf16(forward.baseAddress, weight, bias, k, i, o, g)
            ck_pack_backward_bf16(backward.baseAddress, weight, k, i, o)
        }
    }

    /// Columns of the forward form (Cout padded, per group).
    var forwardColumns: Int { (gated ? 2 : 1) * ((outChannels / (gated ? 2 : 1) + 15) / 16 * 16) }
    /// Columns of the backward form (Cin padded).
    var backwardColumns: Int { (inChannels + 15) / 16 * 16 }
    /// Tap k of the backward form: Cout rows (bf16: Cout/2 pairs of rows), `backwardColumns` apart.
    func backwardTap(_ k: Int) -> UnsafePointer<Float> {
        UnsafePointer(backward.baseAddress + k * (precision == .bf16 ? (outChannels + 1) / 2 : outChannels) * backwardColumns)
    }
    /// The packed bias (forwardColumns floats; fp32 packing only).
    var packedBias: UnsafePointer<Float> { UnsafePointer(forward.baseAddress + kernelSize * inChannels * forwardColumns) }
}

extension Kernels {
    /// Causal convolution, forward, for the time steps `rows`:
    /// `out[t] = add[t] + bias + Σ_k W_k · inp[t − s_k]`, then ReLU if `relu`.
    ///
    /// `inp` is (T, Cin), `out` and `add` are (T, Cout); `add` may be nil
    /// (zero) or `out` itself (accumulate). Reads `inp` rows ≤ the last of
    /// `rows` only (with d < 0, the rows t + (K − 1 − k)·|d|, which must
    /// exist: see the top of this file). Cost: 2·K·Cin·Cout flops per row; no allocation.
    public func convForward(
        out: UnsafeMutablePointer<Float>, outStride: Int,
        adding add: UnsafePointer<Float>? = nil, addStride: Int = 0,
        inp: UnsafePointer<Float>, inStride: Int,
        weight w: PackedConv, rows: Range<Int>, dilation d: Int = 1, relu: Bool = false
    ) {
        precondition(!w.gated, "a gated weight goes to convGatedForward")
        precondition(w.precision == .fp32, "a bf16-packed weight takes bf16 activations")
        precondition(rows.lowerBound >= 0 && d != 0, "conv forward: rows \(rows) must start at ≥ 0, dilation \(d) ≠ 0")
        precondition(outStride >= w.outChannels && inStride >= w.inChannels && (add == nil || addStride >= w.outChannels),
                     "conv forward: a stride is shorter than its row")
        if rows.isEmpty { return }
        if variant == .blas {
            return blasConvForward(out: out, outStride: outStride, add: add, addStride: addStride, inp: inp, inStride: inStride,
                                   weight: w, rows: rows, dilation: d, relu: relu)
        }
        ck_conv_forward(table, out, outStride, add, addStride, inp, inStride, w.forward.baseAddress,
                        rows.lowerBound, rows.upperBound, Int32(w.inChannels), Int32(w.outChannels), Int32(w.kernelSize), d, relu ? 1 : 0)
    }

    /// Gated causal convolution, forward: the convolution into [a | g] (2D
    /// channels, bias included) and WaveNet's gated unit, in one pass:
    /// `gate[t] = [tanh(a) | σ(g)]` (2D floats, what `gatedBackward` needs)
    /// and `z[t] = tanh(a)·σ(g)` (D floats), for the time steps `rows`.
    /// `weight` must be packed with `gated: true`. Cost as `convForward` plus
    /// two rational functions (tanh and σ, 17 vector operations each) per z;
    /// no allocation.
    public func convGatedForward(
        gate: UnsafeMutablePointer<Float>, gateStride: Int, z: UnsafeMutablePointer<Float>, zStride: Int,
        inp: UnsafePointer<Float>, inStride: Int, weight w: PackedConv, rows: Range<Int>, dilation d: Int = 1
    ) {
        precondition(w.gated, "convGatedForward needs a weight packed with gated: true")
        precondition(w.precision == .fp32, "a bf16-packed weight takes bf16 activations")
        let D = w.outChannels / 2
        precondition(rows.lowerBound >= 0 && d >= 1, "gated conv: rows \(rows) must start at ≥ 0, dilation \(d) ≥ 1")
        precondition(gateStride >= 2 * D && zStride >= D && inStride >= w.inChannels, "gated conv: a stride is shorter than its row")
        if rows.isEmpty { return }
        if variant == .blas {
            // The pre-activations go where the gate values will be, then the unit runs in place.
            blasConvForward(out: gate, outStride: gateStride, add: nil, addStride: 0, inp: inp, inStride: inStride,
                            weight: w, rows: rows, dilation: d, relu: false)
            let at = gate + rows.lowerBound * gateStride
            return ck_gated_pointwise_forward(table, at, gateStride, z + rows.lowerBound * zStride, zStride, at, gateStride, nil,
                                              rows.count, Int32(D))
        }
        ck_conv_gated_forward(table, gate, gateStride, z, zStride, inp, inStride, w.forward.baseAddress,
                              rows.lowerBound, rows.upperBound, Int32(w.inChannels), Int32(D), Int32(w.kernelSize), d)
    }

    /// Causal convolution, input gradient, for the time steps `rows` of a
    /// sequence of `time` steps: `dinp[t] (+)= Σ_k W_kᵀ · dout[t + s_k]`.
    ///
    /// Gathers from `dout` rows ≥ t (each `dinp` row is written by one call),
    /// so threads may split the rows once `dout` is complete. With
    /// `accumulate`, adds to `dinp`; else overwrites. Cost: 2·K·Cin·Cout
    /// flops per row; no allocation.
    public func convBackwardInput(
        dinp: UnsafeMutablePointer<Float>, dinpStride: Int, accumulate: Bool,
        dout: UnsafePointer<Float>, doutStride: Int, weight w: PackedConv, rows: Range<Int>, time T: Int, dilation d: Int = 1
    ) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= T && d >= 1, "conv input gradient: rows \(rows) outside 0..<\(T)")
        precondition(w.precision == .fp32, "a bf16-packed weight takes a bf16 gradient")
        precondition(dinpStride >= w.inChannels && doutStride >= w.outChannels, "conv input gradient: a stride is shorter than its row")
        if rows.isEmpty { return }
        if variant == .blas {
            return blasConvBackwardInput(dinp: dinp, dinpStride: dinpStride, accumulate: accumulate, dout: dout, doutStride: doutStride,
                                         weight: w, rows: rows, time: T, dilation: d)
        }
        ck_conv_backward_input(table, dinp, dinpStride, accumulate ? 1 : 0, dout, doutStride, w.backward.baseAddress,
                               rows.lowerBound, rows.upperBound, T, Int32(w.inChannels), Int32(w.outChannels), Int32(w.kernelSize), d)
    }

    /// Causal convolution, weight and bias gradients over the time steps
    /// `rows`, accumulated (+=): `dweight[k, o, c] += Σ_t dout[t, o]·inp[t − s_k, c]`,
    /// `dbias[o] += Σ_t dout[t, o]` (dbias may be nil).
    ///
    /// `dweight` is (K, Cout, Cin) like the weight; a negative d reads later
    /// rows, as `convForward`'s. The reduction runs over
    /// time in blocks of rows that stay in L1. Cost: 2·K·Cin·Cout flops per
    /// row; no allocation.
    ///
    /// With `operands: .bf16` (mixed precision) the products take `dout` and
    /// `inp` rounded to bf16 and accumulate in fp32, two rows at a time in
    /// `vdpbf16ps`'s order: `acc = (acc + dout[t+1]·inp[t+1−s]) + dout[t]·inp[t−s]`
    /// for t = first row, first + 2, … (a missing row of a pair is zero). The
    /// operands stay fp32 rows: the kernel rounds each block of rows into
    /// that pairing itself, on its stack. `dbias` sums the fp32 `dout`.
    /// (Operands already in bf16: the bf16-rows `convBackwardWeight`.)
    public func convBackwardWeight(
        dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
        dout: UnsafePointer<Float>, doutStride: Int, inp: UnsafePointer<Float>, inStride: Int,
        rows: Range<Int>, inChannels Cin: Int, outChannels Cout: Int, kernelSize K: Int, dilation d: Int = 1,
        operands: Precision = .fp32
    ) {
        checkWeightGradient(rows: rows, doutStride: doutStride, inStride: inStride, inChannels: Cin, outChannels: Cout, kernelSize: K, dilation: d)
        if rows.isEmpty { return }
        if operands == .bf16 {
            return ck_conv_backward_weight_bf16(table, dweight, dbias, dout, nil, doutStride, inp, nil, inStride,
                                                rows.lowerBound, rows.upperBound, Int32(Cin), Int32(Cout), Int32(K), d)
        }
        if variant == .blas {
            return blasConvBackwardWeight(dweight: dweight, dbias: dbias, dout: dout, doutStride: doutStride, inp: inp, inStride: inStride,
                                          rows: rows, inChannels: Cin, outChannels: Cout, kernelSize: K, dilation: d)
        }
        ck_conv_backward_weight(table, dweight, dbias, dout, doutStride, inp, inStride, rows.lowerBound, rows.upperBound,
                                Int32(Cin), Int32(Cout), Int32(K), d)
    }

    /// The sizes and strides every weight gradient takes (fp32 or bf16 rows).
    func checkWeightGradient(rows: Range<Int>, doutStride: Int, inStride: Int, inChannels Cin: Int, outChannels Cout: Int,
                             kernelSize K: Int, dilation d: Int) {
        precondition(rows.lowerBound >= 0 && K >= 1 && d != 0 && Cin >= 1 && Cout >= 1, "conv weight gradient: bad sizes")
        precondition(doutStride >= Cout && inStride >= Cin, "conv weight gradient: a stride is shorter than its row")
    }
}

// MARK: The OpenBLAS path (variant `blas`)
//
// The same operations as one `cblas_sgemm` per tap on the rows that tap sees,
// for comparing our kernels with OpenBLAS (speed, and learning seed for seed).

extension Kernels {
    func blasConvForward(
        out: UnsafeMutablePointer<Float>, outStride: Int, add: UnsafePointer<Float>?, addStride: Int,
        inp: UnsafePointer<Float>, inStride: Int, weight w: PackedConv, rows: Range<Int>, dilation d: Int, relu: Bool
    ) {
        let K = w.kernelSize, Cin = w.inChannels, np = w.forwardColumns
        // The packed columns are the outputs, in groups for a gated weight.
        let groups = w.gated ? 2 : 1, G = w.outChannels / groups, P = np / groups
        // Rows start as add + bias (the packed bias has each group padded to P).
        let bias = w.packedBias
        for t in rows {
            let o = out + t * outStride
            for g in 0..<groups {
                let og = o + g * G, bg = bias + g * P
                if let add {
                    let ag = add + t * addStride + g * G
                    for j in 0..<G { og[j] = bg[j] + ag[j] }
                } else {
                    og.update(from: bg, count: G)
                }
            }
        }
        for k in 0..<K {
            let s = (K - 1 - k) * d
            let first = max(rows.lowerBound, s)
            if first >= rows.upperBound { continue }
            for g in 0..<groups {
                gemm(out + first * outStride + g * G, ldc: outStride, inp + (first - s) * inStride, lda: inStride,
                     w.forward.baseAddress + k * Cin * np + g * P, ldb: np, m: rows.upperBound - first, n: G, k: Cin, beta: 1)
            }
        }
        if relu {
            let at = out + rows.lowerBound * outStride
            ck_bias_relu(table, at, outStride, at, outStride, nil, rows.count, Int32(w.outChannels))
        }
    }

    func blasConvBackwardInput(
        dinp: UnsafeMutablePointer<Float>, dinpStride: Int, accumulate: Bool,
        dout: UnsafePointer<Float>, doutStride: Int, weight w: PackedConv, rows: Range<Int>, time T: Int, dilation d: Int
    ) {
        let K = w.kernelSize, Cin = w.inChannels, Cout = w.outChannels, np = w.backwardColumns
        // The present tap (no shift) covers every row, so it goes first and
        // sets the rows unless accumulating.
        for k in (0..<K).reversed() {
            let s = (K - 1 - k) * d
            let last = min(rows.upperBound, T - s)
            if last <= rows.lowerBound { continue }
            gemm(dinp + rows.lowerBound * dinpStride, ldc: dinpStride, dout + (rows.lowerBound + s) * doutStride, lda: doutStride,
                 w.backward.baseAddress + k * Cout * np, ldb: np, m: last - rows.lowerBound, n: Cin, k: Cout,
                 beta: accumulate || k != K - 1 ? 1 : 0)
        }
    }

    func blasConvBackwardWeight(
        dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
        dout: UnsafePointer<Float>, doutStride: Int, inp: UnsafePointer<Float>, inStride: Int,
        rows: Range<Int>, inChannels Cin: Int, outChannels Cout: Int, kernelSize K: Int, dilation d: Int
    ) {
        if let dbias {
            ck_column_sums(table, dbias, dout + rows.lowerBound * doutStride, doutStride, rows.count, Int32(Cout))
        }
        for k in 0..<K {
            let s = (K - 1 - k) * d
            let first = max(rows.lowerBound, s)
            if first >= rows.upperBound { continue }
            // dW_k (Cout, Cin) += dout[first..]ᵀ · inp[first − s ..]
            gemm(dweight + k * Cout * Cin, ldc: Cin, dout + first * doutStride, lda: doutStride, transA: .transposed,
                 inp + (first - s) * inStride, ldb: inStride, m: Cout, n: Cin, k: rows.upperBound - first, beta: 1)
        }
    }
}
