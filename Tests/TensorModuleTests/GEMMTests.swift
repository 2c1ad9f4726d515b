import COpenBLAS
import SeededRNG
import Testing
import TensorModule
import TestSupport

extension Tensor {
    convenience init(_ values: [Float]) { self.init(shape: [values.count], values: values) }
}

@Suite struct BLASLinkTests {
    @Test func linkedBLASIsOpenBLAS() {
        // openblas_get_config exists only in OpenBLAS; a wrong pkg-config name
        // would only warn and link the reference BLAS, which has no such symbol.
        let config = BLAS.configuration
        print("BLAS: \(config), core \(BLAS.coreName)")
        #expect(config.hasPrefix("OpenBLAS"), "linked BLAS reports \(config)")
        #expect(!BLAS.coreName.isEmpty)
    }

    @Test func threadCountCanBeSet() {
        let before = BLAS.threads
        BLAS.setThreads(1)
        #expect(BLAS.threads == 1)
        BLAS.setThreads(before)
    }
}

@Suite struct GEMMTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var m, n, k: Int
        var transA, transB: Transpose
        var pad: Int
        var alpha, beta: Float
        var testDescription: String { "M\(m) N\(n) K\(k) \(transA)/\(transB) pad \(pad) α\(alpha) β\(beta)" }
    }

    static let cases: [Case] = {
        var out: [Case] = []
        let shapes = [(1, 1, 1), (7, 5, 3), (64, 33, 32), (31, 64, 17), (3, 200, 64)]
        for (i, (m, n, k)) in shapes.enumerated() {
            for ta in [Transpose.none, .transposed] {
                for tb in [Transpose.none, .transposed] {
                    out.append(Case(m: m, n: n, k: k, transA: ta, transB: tb, pad: i % 3, alpha: i.isMultiple(of: 2) ? 1 : 0.5,
                                    beta: [0, 1, -0.75][i % 3]))
                }
            }
        }
        return out
    }()

    @Test(arguments: cases)
    func matchesNaive(_ c: Case) {
        var rng = Xoshiro256(seed: UInt64(c.m * 1000 + c.n * 10 + c.k))
        let (aRows, aCols) = c.transA == .none ? (c.m, c.k) : (c.k, c.m)
        let (bRows, bCols) = c.transB == .none ? (c.k, c.n) : (c.n, c.k)
        let lda = aCols + c.pad, ldb = bCols + c.pad, ldc = c.n + c.pad
        let a = randomArray(aRows * lda, rng: &rng)
        let b = randomArray(bRows * ldb, rng: &rng)
        let c0 = randomArray(c.m * ldc, rng: &rng)
        let fast = Tensor(c0)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                gemm(fast.baseAddress, ldc: ldc, ap.baseAddress!, lda: lda, transA: c.transA, bp.baseAddress!, ldb: ldb, transB: c.transB,
                     m: c.m, n: c.n, k: c.k, alpha: c.alpha, beta: c.beta)
            }
        }
        var naive = c0
        Reference.gemm(&naive, ldc: ldc, a, lda: lda, transA: c.transA, b, ldb: ldb, transB: c.transB,
                       m: c.m, n: c.n, k: c.k, alpha: c.alpha, beta: c.beta)
        expectClose(fast.array, naive, tolerance: 1e-4 * Float(c.k).squareRoot() + 1e-5, "gemm \(c.testDescription)")
        // The padding columns of C are never written.
        for i in 0..<c.m { for j in c.n..<ldc { #expect(fast[i * ldc + j] == c0[i * ldc + j]) } }
    }

    @Test func emptySizesAreNoOps() {
        let c = Tensor([1, 2, 3])
        let a = Tensor([1]), b = Tensor([1])
        gemm(c.baseAddress, ldc: 3, a.baseAddress, lda: 1, b.baseAddress, ldb: 3, m: 0, n: 3, k: 1)
        #expect(c.array == [1, 2, 3])
    }
}

@Suite struct BlockedGEMMTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var m, n, k: Int
        var transA, transB: Transpose
        var limit: Int
        var beta: Float
        var testDescription: String { "M\(m) N\(n) K\(k) \(transA)/\(transB) limit \(limit) β\(beta)" }
    }

    // Limits chosen so that blocks of 64–128 columns (or K blocks) occur,
    // with ragged last blocks of 1–8 and 9–15 columns; limit 0 = no blocking.
    static let cases: [Case] = [
        Case(m: 8, n: 300, k: 16, transA: .none, transB: .none, limit: 8 * 16 * 128, beta: 0),     // 128+128+44
        Case(m: 8, n: 261, k: 16, transA: .none, transB: .none, limit: 8 * 16 * 64, beta: 1),      // last block 5 → narrow
        Case(m: 7, n: 203, k: 9, transA: .transposed, transB: .none, limit: 7 * 9 * 64, beta: 0.5), // last 11
        Case(m: 5, n: 70, k: 12, transA: .none, transB: .none, limit: 5 * 12 * 64, beta: 1),       // last 6
        Case(m: 4, n: 5, k: 300, transA: .none, transB: .transposed, limit: 4 * 5 * 64, beta: 1),  // K blocks
        // C over 1200 elements: tiles of 64 × 16 rows/columns with ragged 6 and
        // 8, K blocks of 64 with a ragged 8.
        Case(m: 70, n: 40, k: 200, transA: .none, transB: .transposed, limit: 64 * 16 * 64, beta: 1),
        Case(m: 70, n: 40, k: 200, transA: .none, transB: .transposed, limit: 64 * 16 * 64, beta: 0),
        Case(m: 6, n: 40, k: 20, transA: .none, transB: .none, limit: 0, beta: 0),
        // K too long for 64-column blocks: 64-column tiles with K blocks of 32
        // (ragged 4), last tile 22 (16 + narrow 6) or 13 columns.
        Case(m: 6, n: 150, k: 100, transA: .none, transB: .none, limit: 6 * 64 * 32, beta: 0),
        Case(m: 6, n: 141, k: 100, transA: .none, transB: .none, limit: 6 * 64 * 32, beta: 1),
    ]

    @Test(arguments: cases)
    func matchesNaive(_ c: Case) {
        var rng = Xoshiro256(seed: UInt64(c.m * 7 + c.n * 3 + c.k))
        let (aRows, aCols) = c.transA == .none ? (c.m, c.k) : (c.k, c.m)
        let (bRows, bCols) = c.transB == .none ? (c.k, c.n) : (c.n, c.k)
        let a = randomArray(aRows * aCols, rng: &rng), b = randomArray(bRows * bCols, rng: &rng)
        let c0 = randomArray(c.m * c.n, rng: &rng)
        let out = Tensor(c0), at = Tensor(a), bt = Tensor(b)
        blockedGemm(out.baseAddress, ldc: c.n, at.baseAddress, lda: aCols, transA: c.transA, bt.baseAddress, ldb: bCols,
                    transB: c.transB, m: c.m, n: c.n, k: c.k, beta: c.beta, smallKernelLimit: c.limit)
        var naive = c0
        Reference.gemm(&naive, ldc: c.n, a, lda: aCols, transA: c.transA, b, ldb: bCols, transB: c.transB,
                       m: c.m, n: c.n, k: c.k, alpha: 1, beta: c.beta)
        expectClose(out.array, naive, tolerance: 1e-4 * Float(c.k).squareRoot(), "blocked gemm \(c.testDescription)")
    }
}
