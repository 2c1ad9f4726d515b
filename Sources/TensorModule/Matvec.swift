// Small matrix–vector products for incremental generation, where one sample
// costs one product per layer and a BLAS call's fixed overhead (~0.1 µs)
// would be a large share of the work.
//
// The matrix is stored transposed, (cols, rows): column c of W is row c of
// Wᵀ, contiguous, so y += x[c] · Wᵀ[c, :] streams the weights once with no
// horizontal sums.

/// y = bias + W·x for W of shape (rows, cols), given as `weightT` = Wᵀ with
/// shape (cols, rows) and row stride `ldw` (default `rows`; larger to use the
/// first `rows` outputs of a wider matrix). `bias` may be nil (zero). With
/// `accumulate`, the product is added to `y` instead (bias still added if
/// given). `y` must not overlap `x` or `weightT`. No allocation.
public func matvecTransposed(
    _ y: UnsafeMutablePointer<Float>, weightT: UnsafePointer<Float>, x: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, rows: Int, cols: Int, ldw: Int? = nil, accumulate: Bool = false
) {
    let ldw = ldw ?? rows
    precondition(ldw >= rows, "matvec: ldw \(ldw) < rows \(rows)")
    var r = 0
    // 32 outputs at a time: four accumulators in registers across all columns.
    while r + 32 <= rows {
        var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
        var w = weightT + r
        for c in 0..<cols {
            let xc = Float8(repeating: x[c])
            a0 = a0.addingProduct(xc, load8(w))
            a1 = a1.addingProduct(xc, load8(w + 8))
            a2 = a2.addingProduct(xc, load8(w + 16))
            a3 = a3.addingProduct(xc, load8(w + 24))
            w += ldw
        }
        if let bias {
            a0 += load8(bias + r); a1 += load8(bias + r + 8); a2 += load8(bias + r + 16); a3 += load8(bias + r + 24)
        }
        if accumulate {
            a0 += load8(y + r); a1 += load8(y + r + 8); a2 += load8(y + r + 16); a3 += load8(y + r + 24)
        }
        store8(a0, y + r); store8(a1, y + r + 8); store8(a2, y + r + 16); store8(a3, y + r + 24)
        r += 32
    }
    while r + 8 <= rows {
        var a = Float8()
        var w = weightT + r
        for c in 0..<cols { a = a.addingProduct(Float8(repeating: x[c]), load8(w)); w += ldw }
        if let bias { a += load8(bias + r) }
        if accumulate { a += load8(y + r) }
        store8(a, y + r)
        r += 8
    }
    while r < rows {
        var s: Float = 0
        for c in 0..<cols { s += x[c] * weightT[c * ldw + r] }
        if let bias { s += bias[r] }
        y[r] = accumulate ? y[r] + s : s
        r += 1
    }
}

/// Writes Wᵀ (cols, rows) for W (rows, cols), both row-major.
public func transpose(_ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = w[r * cols + c] } }
}
