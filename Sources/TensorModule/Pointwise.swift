// Pointwise kernels over (rows, cols) row-major blocks and (B, C, T)
// activations (notation in CausalConv.swift). All are single vectorised passes
// with no allocation. Backward kernels *write* their activation gradient
// unless they say they accumulate; parameter gradients always accumulate.

/// out[r, c] = values[r] for every column: initialises a (rows, cols) block
/// with a per-row bias.
public func fillRows(_ out: UnsafeMutablePointer<Float>, values: UnsafePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows { (out + r * cols).update(repeating: values[r], count: cols) }
}

/// out[r, c] += bias[r].
public func addRowBias(_ out: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols: Int) {
    addRowBias(out, inp: out, bias: bias, rows: rows, cols: cols)
}

/// out[r, c] = inp[r, c] + bias[r]: a copy and a bias in one pass. `out`
/// may be `inp`.
public func addRowBias(_ out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = out + r * cols, src = inp + r * cols
        let v = Float8(repeating: bias[r])
        var c = 0
        while c + 8 <= cols { store8(load8(src + c) + v, row + c); c += 8 }
        while c < cols { row[c] = src[c] + bias[r]; c += 1 }
    }
}

/// sums[r] += Σ_c x[r, c]: the bias gradient of a (rows, cols) output gradient.
public func addRowSums(_ sums: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows { sums[r] += rowSum(x + r * cols, cols) }
}

@inlinable @inline(__always)
func rowSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = Float8(), acc1 = Float8()
    var c = 0
    while c + 16 <= n { acc0 += load8(x + c); acc1 += load8(x + c + 8); c += 16 }
    if c + 8 <= n { acc0 += load8(x + c); c += 8 }
    var total = (acc0 + acc1).sum()
    while c < n { total += x[c]; c += 1 }
    return total
}

/// out = a + b, elementwise over `count` elements. `out` may alias `a` or `b`.
public func add(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) {
    var i = 0
    while i + 8 <= n { store8(load8(a + i) + load8(b + i), out + i); i += 8 }
    while i < n { out[i] = a[i] + b[i]; i += 1 }
}

/// out += x, elementwise over `count` elements.
public func accumulate(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
    add(out, out, x, count: n)
}

// MARK: Gated activation

/// WaveNet's gated unit, forward.
///
/// ```
///   pre (B, 2C, T) ─┬─ rows 0..<C   (filter a) ── tanh ──┐
///                   │                                    ×── z (B, C, T)
///                   └─ rows C..<2C  (gate g)  ── σ ─────┘
/// ```
/// `z = tanh(a) · σ(g)`. Also stores `th = tanh(a)` and `sg = σ(g)`, each
/// (B, C, T), which the backward pass needs. `z` may not alias `pre`.
/// With `bias` (2C), the convolution's bias is added here, on the way in
/// (a[c] + bias[c], g[c] + bias[C + c]), saving the convolution a pass.
public func gatedForward(
    z: UnsafeMutablePointer<Float>, th: UnsafeMutablePointer<Float>, sg: UnsafeMutablePointer<Float>,
    pre: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil, batch B: Int, channels C: Int, time T: Int
) {
    let n = C * T
    for b in 0..<B {
        let a = pre + b * 2 * n, g = a + n
        let zb = z + b * n, thb = th + b * n, sgb = sg + b * n
        if let bias {
            // One bias value per row of T.
            for c in 0..<C {
                gatedSpan(zb + c * T, thb + c * T, sgb + c * T, a + c * T, g + c * T, count: T, biasA: bias[c], biasG: bias[C + c])
            }
        } else {
            // No bias: the C·T elements are one contiguous span (at T = 1, as in
            // generation, that is what keeps the vectors full).
            gatedSpan(zb, thb, sgb, a, g, count: n, biasA: 0, biasG: 0)
        }
    }
}

/// The gated unit over `count` contiguous elements, with `biasA` added to
/// every a and `biasG` to every g.
@inline(__always)
func gatedSpan(
    _ z: UnsafeMutablePointer<Float>, _ th: UnsafeMutablePointer<Float>, _ sg: UnsafeMutablePointer<Float>,
    _ a: UnsafePointer<Float>, _ g: UnsafePointer<Float>, count n: Int, biasA: Float, biasG: Float
) {
    let ba = Float8(repeating: biasA), bg = Float8(repeating: biasG)
    var i = 0
    while i + 8 <= n {
        let t = fastTanh(load8(a + i) + ba), s = fastSigmoid(load8(g + i) + bg)
        store8(t, th + i); store8(s, sg + i); store8(t * s, z + i)
        i += 8
    }
    if i < n {
        let r = n - i
        let t = fastTanh(loadPartial(a + i, r) + ba), s = fastSigmoid(loadPartial(g + i, r) + bg)
        storePartial(t, th + i, r); storePartial(s, sg + i, r); storePartial(t * s, z + i, r)
    }
}

/// WaveNet's gated unit, backward. Writes `dpre` (B, 2C, T):
/// `da = dz · σ(g) · (1 − tanh²(a))`, `dg = dz · tanh(a) · σ(g) · (1 − σ(g))`.
public func gatedBackward(
    dpre: UnsafeMutablePointer<Float>,
    dz: UnsafePointer<Float>, th: UnsafePointer<Float>, sg: UnsafePointer<Float>,
    batch B: Int, channels C: Int, time T: Int
) {
    let n = C * T
    for b in 0..<B {
        let da = dpre + b * 2 * n, dg = da + n
        let dzb = dz + b * n, thb = th + b * n, sgb = sg + b * n
        var i = 0
        while i + 8 <= n {
            let g = load8(dzb + i), t = load8(thb + i), s = load8(sgb + i)
            store8(g * s * (1 - t * t), da + i)
            store8(g * t * s * (1 - s), dg + i)
            i += 8
        }
        while i < n {
            let g = dzb[i], t = thb[i], s = sgb[i]
            da[i] = g * s * (1 - t * t)
            dg[i] = g * t * s * (1 - s)
            i += 1
        }
    }
}

// MARK: ReLU

/// out[r, c] = max(x[r, c] + bias[r], 0) for a (rows, cols) block: a
/// convolution's bias and the ReLU after it in one pass. `out` may alias `x`.
public func biasReLUForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols: Int) {
    let zero = Float8()
    for r in 0..<rows {
        let src = x + r * cols, dst = out + r * cols
        let b = Float8(repeating: bias[r])
        var i = 0
        while i + 8 <= cols {
            let v = load8(src + i) + b
            store8(v.replacing(with: zero, where: v .< zero), dst + i)
            i += 8
        }
        while i < cols { dst[i] = max(src[i] + bias[r], 0); i += 1 }
    }
}

/// out = max(x, 0) over `count` elements; `out` may alias `x`.
public func reluForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
    var i = 0
    let zero = Float8()
    while i + 8 <= n {
        let v = load8(x + i)
        store8(v.replacing(with: zero, where: v .< zero), out + i)
        i += 8
    }
    while i < n { out[i] = max(x[i], 0); i += 1 }
}

/// dx = dout where the ReLU's *output* `y` was positive, else 0. Writes `dx`,
/// which may alias `dout`.
public func reluBackward(_ dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, y: UnsafePointer<Float>, count n: Int) {
    var i = 0
    let zero = Float8()
    while i + 8 <= n {
        let g = load8(dout + i)
        store8(g.replacing(with: zero, where: load8(y + i) .<= zero), dx + i)
        i += 8
    }
    while i < n { dx[i] = y[i] > 0 ? dout[i] : 0; i += 1 }
}
