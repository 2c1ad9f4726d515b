import COpenBLAS

#if canImport(Glibc)
import Glibc
#endif

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

/// The same product as `gemm`, issued as several calls over blocks of columns
/// (or over tiles of C and blocks of K) when that lets OpenBLAS use its small-matrix kernel.
///
/// OpenBLAS (≥ 0.3.16, SkylakeX/Cooperlake/SapphireRapids kernels) computes
/// products with M·N·K ≤ 10⁶ with a kernel that reads the operands in place;
/// larger ones first copy ("pack") both operands. WaveNet's products have a
/// small K (32–64 channels) and a long time axis, so packing the activations
/// costs as much as a fifth of the multiply. Splitting the time axis into
/// blocks under the threshold avoids it (measured here: 64×32·32×8192 goes
/// from 66–69 to 79–81 GFLOP/s, a 32×64 input gradient from 68 to 91). Where that kernel is absent the blocks cost a
/// few percent, so blocking is only used when OpenBLAS reports one of those
/// cores. Results equal `gemm`'s up to the order of additions.
@inlinable
public func blockedGemm(
    _ c: UnsafeMutablePointer<Float>, ldc: Int,
    _ a: UnsafePointer<Float>, lda: Int, transA: Transpose = .none,
    _ b: UnsafePointer<Float>, ldb: Int, transB: Transpose = .none,
    m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0,
    smallKernelLimit limit: Int = GEMMBlocking.smallKernelLimit
) {
    if limit > 0, transB == .none, m * k > 0 {
        // Column blocks: C[:, j..] = op(A) · B[:, j..]; the blocks are independent.
        // Blocks are a multiple of 64 columns (others measured up to 20%
        // slower), and at least 64: with fewer the per-call cost wins
        // (64×640·640×T at 24 columns per block drops from 77 to 15 GFLOP/s).
        let nb = limit / (m * k) / 64 * 64
        // With a long K (the fused skip GEMM, K = 640) even 64 columns are over
        // the limit: then each 64-column tile also splits K, accumulating
        // (64×640·640×T: 76–79 → 87–89 GFLOP/s measured here).
        let kb = nb >= 64 || transA != .none ? 0 : limit / (m * 64) / 32 * 32
        if nb >= 64 || kb >= 32 {
            let width = nb >= 64 ? nb : 64
            var j = 0
            while j < n {
                let w = min(width, n - j)
                // OpenBLAS's small kernel mallocs a scratch buffer when a call's
                // width leaves 1–8 columns past a multiple of 16; those few
                // columns (only ever in the last block) are done here instead,
                // so a training step allocates nothing.
                let ragged = w % 16
                let bulk = (1...8).contains(ragged) ? w - ragged : w
                if bulk > 0 && nb >= 64 {
                    gemm(c + j, ldc: ldc, a, lda: lda, transA: transA, b + j, ldb: ldb, transB: .none,
                         m: m, n: bulk, k: k, alpha: alpha, beta: beta)
                } else if bulk > 0 {
                    var p = 0
                    while p < k {
                        let d = min(kb, k - p)
                        gemm(c + j, ldc: ldc, a + p, lda: lda, b + p * ldb + j, ldb: ldb,
                             m: m, n: bulk, k: d, alpha: alpha, beta: p == 0 ? beta : 1)
                        p += d
                    }
                }
                if bulk < w {
                    narrowGemm(c + j + bulk, ldc: ldc, a, lda: lda, transA: transA, b + j + bulk, ldb: ldb,
                               m: m, n: w - bulk, k: k, alpha: alpha, beta: beta)
                }
                j += w
            }
            return
        }
    } else if limit > 0, transA == .none, transB == .transposed, k >= 64 {
        // A weight gradient: C += A · Bᵀ with a long K (time). OpenBLAS's small
        // kernel takes this case only for C of at most 1200 elements, so C is
        // cut into tiles of at most 64 × 16 (a layer's 64 × 32 gradient went
        // from 65 to 101 GFLOP/s here, the 64 × 640 skip gradient from 69 to
        // 90), and each tile's K into blocks under the limit.
        let mb = m * n <= 1200 ? m : min(m, 64)
        let nb = m * n <= 1200 ? n : max(16, 1200 / mb / 16 * 16)
        let kb = limit / (mb * nb) / 64 * 64
        if kb >= 64 && (kb < k || mb < m || nb < n) {
            var i = 0
            while i < m {
                let h = min(mb, m - i)
                var j = 0
                while j < n {
                    let w = min(nb, n - j)
                    var p = 0
                    while p < k {
                        let d = min(kb, k - p)
                        gemm(c + i * ldc + j, ldc: ldc, a + i * lda + p, lda: lda, b + j * ldb + p, ldb: ldb, transB: .transposed,
                             m: h, n: w, k: d, alpha: alpha, beta: p == 0 ? beta : 1)
                        p += d
                    }
                    j += w
                }
                i += h
            }
            return
        }
    }
    gemm(c, ldc: ldc, a, lda: lda, transA: transA, b, ldb: ldb, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta)
}

/// When `blockedGemm` splits a product (see there).
public enum GEMMBlocking {
    /// M·N·K up to which OpenBLAS uses its small-matrix kernel on this CPU,
    /// or 0 if it has none (then `blockedGemm` never splits).
    /// `PBTWAVE_GEMM_BLOCKING=0` turns blocking off, for comparison.
    public static let smallKernelLimit: Int = {
        if let setting = getenv("PBTWAVE_GEMM_BLOCKING"), String(cString: setting) == "0" { return 0 }
        let core = BLAS.coreName.lowercased()
        return ["skylakex", "cooperlake", "sapphirerapids"].contains(core) ? 1_000_000 : 0
    }()
}

/// C = alpha·op(A)·B + beta·C for a few (≤ 8) columns of B and C, in plain
/// loops: the ragged edge of `blockedGemm`'s column blocks.
@usableFromInline
func narrowGemm(
    _ c: UnsafeMutablePointer<Float>, ldc: Int, _ a: UnsafePointer<Float>, lda: Int, transA: Transpose,
    _ b: UnsafePointer<Float>, ldb: Int, m: Int, n: Int, k: Int, alpha: Float, beta: Float
) {
    for i in 0..<m {
        for j in 0..<n {
            var s: Float = 0
            if transA == .none {
                for p in 0..<k { s += a[i * lda + p] * b[p * ldb + j] }
            } else {
                for p in 0..<k { s += a[p * lda + i] * b[p * ldb + j] }
            }
            c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j])
        }
    }
}
