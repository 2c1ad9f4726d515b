import CPBTWaveKernels

// Small matrix–vector products for incremental generation, where one sample
// costs one product per layer and a BLAS call's fixed overhead (~0.1 µs)
// would be a large share of the work.
//
// The matrix is stored transposed, (cols, rows): column c of W is row c of
// Wᵀ, contiguous, so y += x[c] · Wᵀ[c, :] streams the weights once with no
// horizontal sums.

extension Kernels {
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
        precondition(ldw >= rows && rows >= 0 && cols >= 0, "matvec: ldw \(ldw) < rows \(rows)")
        ck_matvec(table, y, weightT, ldw, x, bias, Int32(rows), Int32(cols), accumulate ? 1 : 0)
    }
}

/// Writes Wᵀ (cols, rows) for W (rows, cols), both row-major.
public func transpose(_ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = w[r * cols + c] } }
}
