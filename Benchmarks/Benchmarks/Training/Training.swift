import Benchmark
import PBTSeededRNG
import PBTWaveTensor
import PBTWaveModel

// One WaveNet training step (compact preset, batch 1 × 8192, one thread, the
// default kernel variant) and incremental generation, with malloc counts:
// after warm-up a training step must allocate nothing (the buffers are
// reused), also with two threads.
//
//     cd Benchmarks && swift package benchmark --target Training

let samplesPerSecond = BenchmarkMetric.custom("samples/s", polarity: .prefersLarger, useScalingFactor: false)

/// Synthetic windows: the codes do not change the cost.
func windows(batch: Int, time: Int) -> [Int32] {
    var rng = Xoshiro256(seed: 1)
    return (0..<(batch * (time + 1))).map { _ in Int32(rng.next() % 256) }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

let benchmarks: @Sendable () -> Void = {
    BLAS.setThreads(1)
    let runs: [(preset: String, threads: Int, precision: Precision)] = [
        ("compact", 1, .fp32), ("compact", 2, .fp32), ("tiny", 1, .fp32), ("compact", 1, .bf16),
    ]
    for (preset, threads, precision) in runs {
        Benchmark(
            "train step \(preset) B1 T8192 \(threads) thread(s)" + (precision == .fp32 ? "" : " \(precision)"),
            configuration: .init(metrics: [.wallClock, .mallocCountTotal, .memoryLeaked, samplesPerSecond],
                                 warmupIterations: 2, maxDuration: .seconds(10), maxIterations: 60)
        ) { benchmark in
            let model = try WaveNet(config: WaveNetConfig.presets[preset]!, seed: 0)
            model.threads = threads
            model.precision = precision
            let codes = windows(batch: 1, time: 8192)
            codes.withUnsafeBufferPointer { w in
                // Warm-up outside the measurement: the first step allocates the buffers.
                model.trainStep(windows: w.baseAddress!, batch: 1, time: 8192, learningRate: 1e-3)
                let start = ContinuousClock.now
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(model.trainStep(windows: w.baseAddress!, batch: 1, time: 8192, learningRate: 1e-3))
                }
                benchmark.stopMeasurement()
                benchmark.measurement(samplesPerSecond, Int(Double(8192 * benchmark.scaledIterations.count) / seconds(since: start)))
            }
        }
    }

    Benchmark(
        "generate compact 16000 samples",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal, samplesPerSecond], warmupIterations: 1,
                             maxDuration: .seconds(10), maxIterations: 20)
    ) { benchmark in
        let model = try WaveNet(config: .compact, seed: 0)
        let generator = WaveNetGenerator(model: model)
        var rng = Xoshiro256(seed: 3)
        let start = ContinuousClock.now
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            generator.reset()
            var code: Int32 = 128
            for _ in 0..<16000 {
                generator.step(code: code)
                code = generator.sample(temperature: 1, rng: &rng)
            }
            blackHole(code)
        }
        benchmark.stopMeasurement()
        benchmark.measurement(samplesPerSecond, Int(Double(16000 * benchmark.scaledIterations.count) / seconds(since: start)))
    }
}
