import CPBTWaveKernels

// Pointwise kernels over (rows, C) row-major blocks (notation in
// Convolution.swift). Single vectorised passes, no allocation. Backward
// kernels *write* their activation gradient; parameter gradients accumulate.

extension Kernels {
    /// WaveNet's gated unit alone, for `rows` rows:
    /// ```
    ///   pre = [a | g] (2D) ─┬─ a + bias[0..<D]  ── tanh ──┐
    ///                       │                             ×── z (D)
    ///                       └─ g + bias[D..<2D] ── σ ────┘
    /// ```
    /// Writes `gate = [tanh | σ]` (2D floats a row; nil to skip) and `z`.
    /// `bias` (2D) may be nil. `gate` may be `pre` (in place).
    public func gatedForward(
        gate: UnsafeMutablePointer<Float>?, gateStride: Int = 0, z: UnsafeMutablePointer<Float>, zStride: Int,
        pre: UnsafePointer<Float>, preStride: Int, bias: UnsafePointer<Float>? = nil, rows: Int, channels D: Int
    ) {
        precondition(rows >= 0 && D >= 1 && preStride >= 2 * D && zStride >= D && (gate == nil || gateStride >= 2 * D),
                     "gated forward: bad sizes or strides")
        ck_gated_pointwise_forward(table, gate, gateStride, z, zStride, pre, preStride, bias, rows, Int32(D))
    }

    /// The gated unit's backward for `rows` rows: from `gate = [tanh(a) | σ(g)]`
    /// and `dz`, writes `dpre = [dz·σ·(1 − tanh²) | dz·tanh·σ·(1 − σ)]`.
    /// `dpre` may be `gate` (in place).
    public func gatedBackward(
        dpre: UnsafeMutablePointer<Float>, dpreStride: Int, dz: UnsafePointer<Float>, dzStride: Int,
        gate: UnsafePointer<Float>, gateStride: Int, rows: Int, channels D: Int
    ) {
        precondition(rows >= 0 && D >= 1 && dpreStride >= 2 * D && dzStride >= D && gateStride >= 2 * D,
                     "gated backward: bad sizes or strides")
        ck_gated_backward(table, dpre, dpreStride, dz, dzStride, gate, gateStride, rows, Int32(D))
    }

    /// WaveNet's layer backward up to its gated unit, for the time steps
    /// `rows`. The layer's z fed two 1x1 products, the skip sum (this layer's
    /// tap `skipTap` of `skipWeight`, the layers' (S, D) weights as taps, as
    /// the skip product takes them) and
    /// the residual path (`residualWeight`, (R, D)), so
    ///
    ///     dz[t]   = dskip[t] · W_skip[:, layer] + dres[t] · W_res
    ///     dpre[t] = [dz·σ·(1 − tanh²) | dz·tanh·σ·(1 − σ)]   from gate[t] = [tanh | σ]
    ///
    /// in one pass: dz never goes to memory. `residualGradient` and
    /// `residualWeight` may be nil (the last layer has no residual output);
    /// `dpre` may be `gate` (in place). Cost: 2·(S + R)·D flops a row.
    public func gatedBackward(
        dpre: UnsafeMutablePointer<Float>, dpreStride: Int, gate: UnsafePointer<Float>, gateStride: Int,
        skipGradient dskip: UnsafePointer<Float>, skipStride: Int, skipWeight ws: PackedConv, skipTap: Int,
        residualGradient dres: UnsafePointer<Float>?, residualStride: Int, residualWeight wr: PackedConv?,
        rows: Range<Int>, channels D: Int
    ) {
        precondition(ws.inChannels == D && skipTap >= 0 && skipTap < ws.kernelSize, "gated backward: no skip tap \(skipTap) of D = \(D) inputs")
        precondition(ws.precision == .fp32 && wr?.precision ?? .fp32 == .fp32, "bf16-packed weights take bf16 gradients")
        precondition((dres == nil) == (wr == nil) && (wr.map { $0.kernelSize == 1 && $0.inChannels == D } ?? true),
                     "gated backward: the residual gradient and weight go together, with D inputs")
        precondition(rows.lowerBound >= 0 && dpreStride >= 2 * D && gateStride >= 2 * D && skipStride >= ws.outChannels
                     && (dres == nil || residualStride >= wr!.outChannels), "gated backward: bad rows or strides")
        if rows.isEmpty { return }
        if variant == .blas {
            return blasGatedBackward(dpre: dpre, dpreStride: dpreStride, gate: gate, gateStride: gateStride, dskip: dskip, skipStride: skipStride,
                                     ws: ws, skipTap: skipTap, dres: dres, residualStride: residualStride, wr: wr, rows: rows, channels: D)
        }
        ck_gated_backward_product(table, dpre, dpreStride, gate, gateStride, dskip, skipStride,
                                  ws.backwardTap(skipTap), ws.backwardColumns, Int32(ws.outChannels),
                                  dres, residualStride, wr?.backward.baseAddress, wr?.backwardColumns ?? 0, Int32(wr?.outChannels ?? 0),
                                  rows.lowerBound, rows.upperBound, Int32(D))
    }

    /// The `blas` path of `gatedBackward`: dz by `cblas_sgemm` in blocks of
    /// rows (on the stack), then the pointwise backward.
    func blasGatedBackward(
        dpre: UnsafeMutablePointer<Float>, dpreStride: Int, gate: UnsafePointer<Float>, gateStride: Int,
        dskip: UnsafePointer<Float>, skipStride: Int, ws: PackedConv, skipTap: Int,
        dres: UnsafePointer<Float>?, residualStride: Int, wr: PackedConv?, rows: Range<Int>, channels D: Int
    ) {
        let block = 64
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block * D) { dz in
            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: block) {
                let n = min(block, rows.upperBound - start)
                gemm(dz.baseAddress!, ldc: D, dskip + start * skipStride, lda: skipStride, ws.backwardTap(skipTap),
                     ldb: ws.backwardColumns, m: n, n: D, k: ws.outChannels, beta: 0)
                if let dres, let wr {
                    gemm(dz.baseAddress!, ldc: D, dres + start * residualStride, lda: residualStride, wr.backward.baseAddress,
                         ldb: wr.backwardColumns, m: n, n: D, k: wr.outChannels, beta: 1)
                }
                ck_gated_backward(table, dpre + start * dpreStride, dpreStride, dz.baseAddress!, D, gate + start * gateStride, gateStride,
                                  n, Int32(D))
            }
        }
    }

    /// out[r, c] = max(inp[r, c] + bias[c], 0); `bias` may be nil, `out` may be `inp`.
    /// NaN stays NaN.
    public func biasReLU(
        out: UnsafeMutablePointer<Float>, outStride: Int, inp: UnsafePointer<Float>, inStride: Int,
        bias: UnsafePointer<Float>?, rows: Int, channels C: Int
    ) {
        precondition(rows >= 0 && C >= 1 && outStride >= C && inStride >= C, "bias ReLU: bad sizes or strides")
        ck_bias_relu(table, out, outStride, inp, inStride, bias, rows, Int32(C))
    }

    /// dx = dy where the ReLU's output `y` was positive, else 0. `dx` may be `dy`.
    public func reluBackward(
        dx: UnsafeMutablePointer<Float>, dxStride: Int, dy: UnsafePointer<Float>, dyStride: Int,
        y: UnsafePointer<Float>, yStride: Int, rows: Int, channels C: Int
    ) {
        precondition(rows >= 0 && C >= 1 && dxStride >= C && dyStride >= C && yStride >= C, "ReLU backward: bad sizes or strides")
        ck_relu_backward(table, dx, dxStride, dy, dyStride, y, yStride, rows, Int32(C))
    }

    /// sums[c] += Σ_r x[r, c]: the bias gradient of a (rows, C) output gradient.
    public func addColumnSums(_ sums: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, stride: Int, rows: Int, channels C: Int) {
        precondition(rows >= 0 && C >= 1 && stride >= C, "column sums: bad sizes or stride")
        ck_column_sums(table, sums, x, stride, rows, Int32(C))
    }

    /// e^x, lane-wise over `count` floats: Cephes' polynomial, ≤ 2 ulp on
    /// [−87.3, 88.4]; inputs are clamped to that range; NaN stays NaN.
    public func exp(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        ck_vexp(table, out, inp, count)
    }

    /// tanh(x), lane-wise: a rational function x·P(x²)/Q(x²) (Eigen's float
    /// tanh) on [−7.9988, 7.9988], ±1 beyond; within 3.2e-7 of the exact
    /// value, absolute and relative; NaN stays NaN.
    public func tanh(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        ck_vtanh(table, out, inp, count)
    }

    /// σ(x) = 1/2 + tanh(x/2)/2, lane-wise, by the same rational function;
    /// absolute error < 2e-7 (tiny values of σ are not relatively accurate:
    /// σ(x) for x < −16 comes out near 1e-7).
    public func sigmoid(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        ck_vsigmoid(table, out, inp, count)
    }
}

/// out = a + b, elementwise over `count` floats. `out` may alias `a` or `b`.
/// (A plain loop: the compiler vectorises it for any target.)
public func add(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { out[i] = a[i] + b[i] }
}

/// out += x, elementwise over `count` floats.
public func accumulate(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
    add(out, out, x, count: n)
}
