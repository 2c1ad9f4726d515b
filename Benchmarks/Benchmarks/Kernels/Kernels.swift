import Benchmark
import PBTWaveTensor

// WaveNet's products through our kernels (PBTWAVE_ISA, else the widest
// variant) and through OpenBLAS (the `blas` variant), reported as time per
// call and GFLOP/s (custom metric), with the malloc count proving the kernels
// allocate nothing. `pbtwave bench kernels` prints the same comparison as
// ratios measured in alternating rounds.
//
//     cd Benchmarks && swift package benchmark --target Kernels

let gflops = BenchmarkMetric.custom("GFLOP/s", polarity: .prefersLarger, useScalingFactor: false)

/// One product of the compact model at T = 8192: (name, Cin, Cout, K, gated).
let shapes: [(String, Int, Int, Int, Bool)] = [
    ("dilated+gate forward 32→64 K2", 32, 64, 2, true),
    ("residual forward 32→32", 32, 32, 1, false),
    ("skip (all layers) forward 640→64", 640, 64, 1, false),
    ("head 2 forward 64→256", 64, 256, 1, false),
]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, gflops],
        warmupIterations: 3,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )
    BLAS.setThreads(1)
    let T = 8192, d = 64
    for variant in [Kernels.default.variant, .blas] {
        let k = try! Kernels(variant)
        for (name, cin, cout, taps, gated) in shapes {
            for direction in ["forward", "input grad", "weight grad"] {
                Benchmark("\(variant) \(name) \(direction)") { benchmark in
                    let w = PackedConv(kernelSize: taps, inChannels: cin, outChannels: cout, gated: gated)
                    let weight = Tensor(shape: [taps * cout * cin]), bias = Tensor(shape: [cout])
                    weight.fill(0.01); bias.fill(0.1)
                    w.pack(weight: weight.baseAddress, bias: bias.baseAddress)
                    let inp = Tensor(shape: [T, cin]), out = Tensor(shape: [T, cout]), z = Tensor(shape: [T, cout])
                    let dweight = Tensor(shape: [taps * cout * cin]), dbias = Tensor(shape: [cout])
                    inp.fill(0.5); out.fill(0.25)
                    let flops = 2 * Double(taps * cin * cout * T) * Double(benchmark.scaledIterations.count)
                    let start = ContinuousClock.now
                    benchmark.startMeasurement()
                    for _ in benchmark.scaledIterations {
                        switch direction {
                        case "forward" where gated:
                            k.convGatedForward(gate: out.baseAddress, gateStride: cout, z: z.baseAddress, zStride: cout / 2,
                                               inp: inp.baseAddress, inStride: cin, weight: w, rows: 0..<T, dilation: d)
                        case "forward":
                            k.convForward(out: out.baseAddress, outStride: cout, inp: inp.baseAddress, inStride: cin, weight: w,
                                          rows: 0..<T, dilation: d)
                        case "input grad":
                            k.convBackwardInput(dinp: inp.baseAddress, dinpStride: cin, accumulate: false, dout: out.baseAddress,
                                                doutStride: cout, weight: w, rows: 0..<T, time: T, dilation: d)
                        default:
                            k.convBackwardWeight(dweight: dweight.baseAddress, dbias: dbias.baseAddress, dout: out.baseAddress,
                                                 doutStride: cout, inp: inp.baseAddress, inStride: cin, rows: 0..<T,
                                                 inChannels: cin, outChannels: cout, kernelSize: taps, dilation: d)
                        }
                    }
                    benchmark.stopMeasurement()
                    let elapsed = ContinuousClock.now - start
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                    benchmark.measurement(gflops, Int(flops / seconds / 1e9))
                }
            }
        }
    }
}
