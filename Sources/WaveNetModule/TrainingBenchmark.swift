import SeededRNG
import SpeechAudio
import TensorModule

#if canImport(Glibc)
import Glibc
#endif

import Foundation
import Synchronization

/// Training-throughput measurement of one model on synthetic windows (the
/// codes do not change the cost). Used by `pbtwave bench train`; not a test.
public enum TrainingBenchmark {
    /// Trains one model per worker thread at the same time (each with its own
    /// buffers, BLAS single-threaded) and returns each worker's result.
    public static func runConcurrently(
        workers: Int, config: WaveNetConfig, batch: Int, time: Int, seconds: Double
    ) throws -> [Result] {
        let results = Mutex<[Int: Swift.Result<Result, any Error>]>([:])
        let done = DispatchGroup()
        for w in 0..<workers {
            done.enter()
            let thread = Thread {
                let r = Swift.Result { try run(config: config, batch: batch, time: time, seconds: seconds) }
                results.withLock { $0[w] = r }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return try results.withLock { all in try (0..<workers).map { try all[$0]!.get() } }
    }

    /// Incremental generation speed: samples per second for `count` samples.
    public static func generation(config: WaveNetConfig, count: Int) throws -> Double {
        let model = try WaveNet(config: config, seed: 0)
        let generator = WaveNetGenerator(model: model)
        _ = generator.generate(count: 1000, temperature: 1, seed: 1)  // warm up
        let t0 = KernelBenchmark.now()
        _ = generator.generate(count: count, temperature: 1, seed: 2)
        return Double(count) / (KernelBenchmark.now() - t0)
    }

    public struct Result: Sendable {
        public var steps: Int
        public var samplesPerStep: Int
        /// Seconds per step, sorted ascending.
        public var stepSeconds: [Double]
        public var medianSamplesPerSecond: Double { Double(samplesPerStep) / stepSeconds[stepSeconds.count / 2] }
        public var bestSamplesPerSecond: Double { Double(samplesPerStep) / stepSeconds[0] }
        public var lossFirst: Double
        public var lossLast: Double
    }

    /// Trains `config` on batch × time windows for about `seconds` (at least
    /// three timed steps) — or exactly `steps` timed steps, if given — after
    /// `warmup` steps, single model, caller's thread.
    public static func run(
        config: WaveNetConfig, batch: Int, time: Int, seconds: Double, steps: Int? = nil, warmup: Int = 3, threads: Int = 1
    ) throws -> Result {
        let model = try WaveNet(config: config, seed: 0)
        model.threads = threads
        // Sum of two sines plus noise, mu-law encoded, like the PyTorch peer.
        var rng = Xoshiro256(seed: 1)
        let n = batch * (time + 1)
        var windows = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            let t = Double(i % (time + 1))
            let x = 0.4 * sin(2 * .pi * 220 * t / 16000) + 0.2 * sin(2 * .pi * 1234 * t / 16000) + 0.05 * rng.nextGaussian()
            windows[i] = Int32(MuLaw.encode(Float(x)))  // clamps to ±1
        }
        return windows.withUnsafeBufferPointer { w in
            var first = 0.0
            for i in 0..<warmup {
                let l = model.trainStep(windows: w.baseAddress!, batch: batch, time: time, learningRate: 1e-3)
                if i == 0 { first = l }
            }
            var times: [Double] = []
            times.reserveCapacity(1024)
            var last = 0.0
            let end = KernelBenchmark.now() + seconds
            while steps.map({ times.count < $0 }) ?? (KernelBenchmark.now() < end || times.count < 3) {
                let t0 = KernelBenchmark.now()
                last = model.trainStep(windows: w.baseAddress!, batch: batch, time: time, learningRate: 1e-3)
                times.append(KernelBenchmark.now() - t0)
            }
            return Result(steps: times.count, samplesPerStep: batch * time, stepSeconds: times.sorted(), lossFirst: first, lossLast: last)
        }
    }
}
