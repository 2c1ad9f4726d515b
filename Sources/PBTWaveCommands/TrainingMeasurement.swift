// What `bench train` runs and times: our training on synthetic windows, and
// the PyTorch peer.
import ArgumentParser
import Foundation
import SeededRNG
import SpeechAudio
import Synchronization
import TensorModule
import WaveNetModule

/// One run of the PyTorch peer (wavenet_torch.py, given as --peer-script), which prints one JSON line.
enum PeerRun {
    static func run(python: String, script: String, arguments: [String]) throws -> (version: String, median: Double, best: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = String(data: data, encoding: .utf8)?.split(separator: "\n").last,
              let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let median = json["samples_per_s_median"] as? Double else {
            throw ValidationError("the peer failed (exit \(process.terminationStatus)); run it by hand to see why")
        }
        return (json["torch"] as? String ?? "?", median, json["samples_per_s_best"] as? Double ?? median)
    }
}

/// Training throughput of one model on synthetic windows.
enum TrainingMeasurement {
    struct Result: Sendable {
        var steps: Int
        var samplesPerStep: Int
        /// Seconds per step, sorted ascending.
        var stepSeconds: [Double]
        var medianSamplesPerSecond: Double { Double(samplesPerStep) / stepSeconds[stepSeconds.count / 2] }
        var bestSamplesPerSecond: Double { Double(samplesPerStep) / stepSeconds[0] }
        /// Samples/s of the step at `quantile` of the step times (0: fastest).
        func samplesPerSecond(quantile: Double) -> Double {
            Double(samplesPerStep) / stepSeconds[min(stepSeconds.count - 1, Int(quantile * Double(stepSeconds.count)))]
        }
        var lossFirst: Double
        var lossLast: Double
    }

    /// Trains `config` on batch × time windows for about `seconds` (at least
    /// three timed steps), or exactly `steps` timed steps, after `warmup` steps.
    static func run(
        config: WaveNetConfig, kernels: Kernels, batch: Int, time: Int, seconds: Double, steps: Int? = nil, warmup: Int = 3, threads: Int = 1,
        precision: Precision = .fp32
    ) throws -> Result {
        let model = try WaveNet(config: config, seed: 0)
        model.kernels = kernels
        model.precision = precision
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
            times.reserveCapacity(4096)
            var last = 0.0
            let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            while steps.map({ times.count < $0 }) ?? (ContinuousClock.now < end || times.count < 3) {
                times.append(BenchClock.seconds {
                    last = model.trainStep(windows: w.baseAddress!, batch: batch, time: time, learningRate: 1e-3)
                })
            }
            return Result(steps: times.count, samplesPerStep: batch * time, stepSeconds: times.sorted(), lossFirst: first, lossLast: last)
        }
    }

    /// Trains one model per thread at the same time (each with its own
    /// buffers, one thread each) and returns each worker's result.
    static func runConcurrently(
        workers: Int, config: WaveNetConfig, kernels: Kernels, batch: Int, time: Int, seconds: Double, precision: Precision = .fp32
    ) throws -> [Result] {
        let results = Mutex<[Int: Swift.Result<Result, any Error>]>([:])
        let done = DispatchGroup()
        for w in 0..<workers {
            done.enter()
            let thread = Thread {
                let r = Swift.Result { try run(config: config, kernels: kernels, batch: batch, time: time, seconds: seconds, precision: precision) }
                results.withLock { $0[w] = r }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return try results.withLock { all in try (0..<workers).map { try all[$0]!.get() } }
    }
}
