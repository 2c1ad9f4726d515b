import CPBTOpenBLAS

/// Facts about, and control of, the linked BLAS.
public enum BLAS {
    /// OpenBLAS's build configuration string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH …".
    /// Calling it proves that OpenBLAS (and not another BLAS) was linked: the
    /// symbol exists only in OpenBLAS.
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The CPU kernel family OpenBLAS chose at run time, e.g. "Zen" or "SkylakeX".
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The number of threads OpenBLAS uses for one call.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Sets the number of threads OpenBLAS uses for one call. PBT workers use 1:
    /// parallelism comes from workers, each owning its model.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "BLAS thread count must be at least 1, got \(n)")
        openblas_set_num_threads(Int32(n))
    }
}

/// Whether a GEMM operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed

    @usableFromInline var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// C = alpha · op(A) · op(B) + beta · C, all row-major.
///
/// op(A) is (M, K), op(B) is (K, N), C is (M, N). `lda`, `ldb`, `ldc` are the
/// row strides of A, B and C as stored (so for a transposed A stored as (K, M),
/// lda ≥ M). A thin, allocation-free wrapper over `cblas_sgemm`: its cost is
/// one call. Sizes may be zero (then nothing happens).
///
/// - Precondition: M, N, K ≥ 0 and the leading dimensions cover their rows.
@inlinable
public func gemm(
    _ c: UnsafeMutablePointer<Float>, ldc: Int,
    _ a: UnsafePointer<Float>, lda: Int, transA: Transpose = .none,
    _ b: UnsafePointer<Float>, ldb: Int, transB: Transpose = .none,
    m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm sizes must be ≥ 0 (M \(m), N \(n), K \(k))")
    precondition(ldc >= max(n, 1), "gemm ldc \(ldc) < N \(n)")
    precondition(lda >= max(transA == .none ? k : m, 1), "gemm lda \(lda) too small")
    precondition(ldb >= max(transB == .none ? n : k, 1), "gemm ldb \(ldb) too small")
    if m == 0 || n == 0 { return }
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas,
        Int32(m), Int32(n), Int32(k), alpha,
        a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
