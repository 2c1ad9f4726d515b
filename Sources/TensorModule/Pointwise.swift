import CKernels

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

    /// tanh(x) = 1 − 2/(e^{2x} + 1), lane-wise; absolute error < 1e-6.
    public func tanh(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        ck_vtanh(table, out, inp, count)
    }

    /// σ(x) = 1/(1 + e^{−x}), lane-wise; absolute error < 1e-6.
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
