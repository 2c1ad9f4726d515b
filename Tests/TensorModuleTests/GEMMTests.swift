import CPBTOpenBLAS
import PBTSeededRNG
import Testing
import PBTWaveTensor
import KernelReferences
import TestSupport

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
