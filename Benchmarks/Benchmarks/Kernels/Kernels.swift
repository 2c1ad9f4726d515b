import Benchmark
import TensorModule

// GEMM at WaveNet's shapes and the dilated causal convolution, forward and
// backward, reported as time per call and GFLOP/s (custom metric), with the
// malloc count proving the kernels allocate nothing.
//
//     cd Benchmarks && swift package benchmark --target Kernels

let gflops = BenchmarkMetric.custom("GFLOP/s", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, gflops],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )
    BLAS.setThreads(1)

    for shape in KernelBenchmark.waveNetShapes() {
        Benchmark("gemm \(shape)") { benchmark in
            let (aRows, aCols) = shape.transA == .none ? (shape.m, shape.k) : (shape.k, shape.m)
            let (bRows, bCols) = shape.transB == .none ? (shape.k, shape.n) : (shape.n, shape.k)
            let a = Tensor(shape: [aRows, aCols]), b = Tensor(shape: [bRows, bCols]), c = Tensor(shape: [shape.m, shape.n])
            a.fill(0.5); b.fill(0.25)
            let start = KernelBenchmark.now()
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                gemm(c.baseAddress, ldc: shape.n, a.baseAddress, lda: aCols, transA: shape.transA,
                     b.baseAddress, ldb: bCols, transB: shape.transB, m: shape.m, n: shape.n, k: shape.k)
            }
            benchmark.stopMeasurement()
            let seconds = KernelBenchmark.now() - start
            benchmark.measurement(gflops, Int(shape.flops * Double(benchmark.scaledIterations.count) / seconds / 1e9))
        }
    }

    for channels in [32, 64] {
        for direction in ["forward", "backward"] {
            Benchmark("conv \(direction) C\(channels)→\(2 * channels) K2 d64 T4096") { benchmark in
                let C = channels, Cout = 2 * channels, T = 4096, K = 2, d = 64
                let inp = Tensor(shape: [C, T]), w = Tensor(shape: [K, Cout, C]), bias = Tensor(shape: [Cout])
                let out = Tensor(shape: [Cout, T]), dinp = Tensor(shape: [C, T]), dw = Tensor(shape: [K, Cout, C])
                let db = Tensor(shape: [Cout])
                inp.fill(0.5); w.fill(0.1); out.fill(0.2)
                let flops = (direction == "forward" ? 2.0 : 4.0) * Double(Cout * C) * Double(2 * T - d)
                let start = KernelBenchmark.now()
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    if direction == "forward" {
                        causalConvForward(out: out.baseAddress, inp: inp.baseAddress, weight: w.baseAddress, bias: bias.baseAddress,
                                          batch: 1, inChannels: C, outChannels: Cout, time: T, kernelSize: K, dilation: d)
                    } else {
                        causalConvBackward(dinp: dinp.baseAddress, dweight: dw.baseAddress, dbias: db.baseAddress,
                                           dout: out.baseAddress, inp: inp.baseAddress, weight: w.baseAddress,
                                           batch: 1, inChannels: C, outChannels: Cout, time: T, kernelSize: K, dilation: d)
                    }
                }
                benchmark.stopMeasurement()
                let seconds = KernelBenchmark.now() - start
                benchmark.measurement(gflops, Int(flops * Double(benchmark.scaledIterations.count) / seconds / 1e9))
            }
        }
    }
}
