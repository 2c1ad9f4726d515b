import COpenBLAS

#if canImport(Glibc)
import Glibc
#endif

/// Side-by-side kernel measurements: our GEMM path and convolution against
/// raw `cblas_sgemm` calls on the same shapes, in the same process, taking
/// turns, so that a noisy shared machine affects both alike. Used by
/// `pbtwave bench kernels`; never by tests (no timing in tests).
public enum KernelBenchmark {
    public struct GEMMShape: Sendable, CustomStringConvertible {
        public var m, n, k: Int
        public var transA, transB: Transpose
        public var label: String
        public init(_ label: String, m: Int, n: Int, k: Int, transA: Transpose = .none, transB: Transpose = .none) {
            self.label = label; self.m = m; self.n = n; self.k = k; self.transA = transA; self.transB = transB
        }
        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
        public var description: String { "\(label) M\(m) N\(n) K\(k)" }
    }

    public struct Comparison: Sendable {
        public var label: String
        public var flops: Double
        /// Best (minimum) seconds per call over the repetitions.
        public var ours: Double
        public var raw: Double
        public var oursGFLOPS: Double { flops / ours / 1e9 }
        public var rawGFLOPS: Double { flops / raw / 1e9 }
        /// ours / raw throughput: ≥ 1 means ours is at least as fast.
        public var ratio: Double { raw / ours }
    }

    /// WaveNet's GEMM shapes: layer convolutions ((C × C)·(C × T)), their
    /// weight gradients ((C × T)·(T × C)) and input gradients.
    public static func waveNetShapes(times: [Int] = [1024, 4096, 16384]) -> [GEMMShape] {
        times.flatMap { t in
            [
                GEMMShape("fwd 64x64·64xT", m: 64, n: t, k: 64),
                GEMMShape("fwd 32x32·32xT", m: 32, n: t, k: 32),
                GEMMShape("fwd 64x32·32xT", m: 64, n: t, k: 32),
                GEMMShape("dW 64xT·Tx64", m: 64, n: 64, k: t, transB: .transposed),
                GEMMShape("dW 32xT·Tx32", m: 32, n: 32, k: t, transB: .transposed),
                GEMMShape("dX (64x32)ᵀ·64xT", m: 32, n: t, k: 64, transA: .transposed),
            ]
        }
    }

    /// Our `gemm` against a direct `cblas_sgemm` call on `shape`, alternating,
    /// `repetitions` rounds of enough calls to last ~`secondsPerRound`.
    public static func compareGEMM(_ s: GEMMShape, repetitions: Int = 7, secondsPerRound: Double = 0.05) -> Comparison {
        let (aRows, aCols) = s.transA == .none ? (s.m, s.k) : (s.k, s.m)
        let (bRows, bCols) = s.transB == .none ? (s.k, s.n) : (s.n, s.k)
        let a = Tensor(shape: [aRows, aCols]), b = Tensor(shape: [bRows, bCols]), c = Tensor(shape: [s.m, s.n])
        fillDeterministic(a); fillDeterministic(b)
        let ours = { gemm(c.baseAddress, ldc: s.n, a.baseAddress, lda: aCols, transA: s.transA, b.baseAddress, ldb: bCols, transB: s.transB,
                          m: s.m, n: s.n, k: s.k, beta: 1) }
        let raw = {
            cblas_sgemm(CblasRowMajor, s.transA == .none ? CblasNoTrans : CblasTrans, s.transB == .none ? CblasNoTrans : CblasTrans,
                        Int32(s.m), Int32(s.n), Int32(s.k), 1, a.baseAddress, Int32(aCols), b.baseAddress, Int32(bCols), 1,
                        c.baseAddress, Int32(s.n))
        }
        let (o, r) = alternate(ours, raw, repetitions: repetitions, secondsPerRound: secondsPerRound)
        return Comparison(label: s.description, flops: s.flops, ours: o, raw: r)
    }

    /// One dilated causal convolution (Cin = C, Cout = 2C as in WaveNet's gated
    /// layer, K = 2), forward + backward through our kernels, against the same
    /// GEMMs issued as raw `cblas_sgemm` calls alone (no bias, no row sums).
    public static func compareConvolution(
        channels C: Int, time T: Int, dilation d: Int = 64, repetitions: Int = 7, secondsPerRound: Double = 0.1
    ) -> Comparison {
        let K = 2, Cout = 2 * C
        let inp = Tensor(shape: [C, T]), w = Tensor(shape: [K, Cout, C]), bias = Tensor(shape: [Cout])
        let out = Tensor(shape: [Cout, T]), dout = Tensor(shape: [Cout, T])
        let dinp = Tensor(shape: [C, T]), dw = Tensor(shape: [K, Cout, C]), db = Tensor(shape: [Cout])
        fillDeterministic(inp); fillDeterministic(w); fillDeterministic(dout)
        let ours = {
            causalConvForward(out: out.baseAddress, inp: inp.baseAddress, weight: w.baseAddress, bias: bias.baseAddress,
                              batch: 1, inChannels: C, outChannels: Cout, time: T, kernelSize: K, dilation: d)
            causalConvBackward(dinp: dinp.baseAddress, dweight: dw.baseAddress, dbias: db.baseAddress, dout: dout.baseAddress,
                               inp: inp.baseAddress, weight: w.baseAddress,
                               batch: 1, inChannels: C, outChannels: Cout, time: T, kernelSize: K, dilation: d)
        }
        let raw = {
            for k in 0..<K {
                let s = (K - 1 - k) * d
                let wk = w.baseAddress + k * Cout * C
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(Cout), Int32(T - s), Int32(C), 1,
                            wk, Int32(C), inp.baseAddress, Int32(T), k == 0 ? 0 : 1, out.baseAddress + s, Int32(T))
            }
            for k in 0..<K {
                let s = (K - 1 - k) * d
                let wk = w.baseAddress + k * Cout * C
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(Cout), Int32(C), Int32(T - s), 1,
                            dout.baseAddress + s, Int32(T), inp.baseAddress, Int32(T), 1, dw.baseAddress + k * Cout * C, Int32(C))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(C), Int32(T - s), Int32(Cout), 1,
                            wk, Int32(C), dout.baseAddress + s, Int32(T), 1, dinp.baseAddress, Int32(T))
            }
        }
        var flops = 0.0
        for k in 0..<K { flops += 3 * 2 * Double(Cout * C) * Double(T - (K - 1 - k) * d) }
        let (o, r) = alternate(ours, raw, repetitions: repetitions, secondsPerRound: secondsPerRound)
        return Comparison(label: "conv fwd+bwd C\(C)→\(Cout) K2 d\(d) T\(T)", flops: flops, ours: o, raw: r)
    }

    /// Best seconds per call of `a` and of `b`, measured in alternating rounds.
    static func alternate(_ a: () -> Void, _ b: () -> Void, repetitions: Int, secondsPerRound: Double) -> (Double, Double) {
        a(); b()  // warm caches and OpenBLAS's buffers
        let t0 = now(); a(); let once = max(now() - t0, 1e-7)
        let calls = max(1, Int(secondsPerRound / once))
        var bestA = Double.infinity, bestB = Double.infinity
        for _ in 0..<repetitions {
            var s = now()
            for _ in 0..<calls { a() }
            bestA = min(bestA, (now() - s) / Double(calls))
            s = now()
            for _ in 0..<calls { b() }
            bestB = min(bestB, (now() - s) / Double(calls))
        }
        return (bestA, bestB)
    }

    static func fillDeterministic(_ t: Tensor) {
        for i in 0..<t.count { t.baseAddress[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
    }

    /// This core's fp32 FMA ceiling in GFLOP/s, measured now: twelve
    /// independent chains of 8-lane fused multiply-adds (as
    /// ../shared/peer/fma_peak.c does), best of five rounds of ~0.1 s. The
    /// denominator for "fraction of peak" figures, taken in the same run as
    /// the figure itself.
    public static func fmaPeakGFLOPS(iterations: Int = 50_000_000) -> Double {
        let a = Float8(repeating: 0.999_999), b = Float8(repeating: 1e-7)
        var best = 0.0
        var sink: Float = 0
        for _ in 0..<5 {
            var c0 = Float8(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0
            var c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0
            let t0 = now()
            for _ in 0..<iterations {
                c0 = b.addingProduct(c0, a); c1 = b.addingProduct(c1, a); c2 = b.addingProduct(c2, a)
                c3 = b.addingProduct(c3, a); c4 = b.addingProduct(c4, a); c5 = b.addingProduct(c5, a)
                c6 = b.addingProduct(c6, a); c7 = b.addingProduct(c7, a); c8 = b.addingProduct(c8, a)
                c9 = b.addingProduct(c9, a); c10 = b.addingProduct(c10, a); c11 = b.addingProduct(c11, a)
            }
            let seconds = now() - t0
            sink += ((c0 + c1 + c2 + c3) + (c4 + c5 + c6 + c7) + (c8 + c9 + c10 + c11)).sum()
            best = max(best, Double(iterations) * 12 * 16 / seconds / 1e9)
        }
        // The chains' result is used, so the loop cannot be dropped.
        return sink.isNaN ? 0 : best
    }

    /// Monotonic seconds.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
