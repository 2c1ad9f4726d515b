// What `bench train` runs and times: our training on synthetic windows, and
// the PyTorch peer.
import ArgumentParser
import Dispatch
import PBTFileSupport
import Foundation
import PBT
import PBTSeededRNG
import PBTWaveAudio
import Synchronization
import PBTWaveTensor
import PBTWaveModel

/// One run of the PyTorch peer (wavenet_torch.py, given as --peer-script), which prints one JSON line.
enum PeerRun {
    struct Result { var version: String, median: Double, best: Double }

    /// The peer for one model and thread count: interpreter, script, and the flags but --seconds and --bf16.
    struct Command { var python: String, script: String, arguments: [String] }

    /// Runs the peer for `seconds` (in bf16 under autocast with `bf16`).
    /// It is killed if it runs far past that (`timeLimit`), or when
    /// pbtwave gets SIGINT, SIGTERM or SIGHUP, so it never outlives the
    /// benchmark; a failure shows the command and the end of its output.
    static func run(_ peer: Command, seconds: Double, bf16: Bool, limit: Double? = nil) throws -> Result {
        let arguments = [peer.script] + peer.arguments + ["--seconds", "\(seconds)"] + (bf16 ? ["--bf16"] : [])
        let commandLine = ([peer.python] + arguments).joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: peer.python)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        // Standard error to a file: two pipes could fill while the other is read.
        let errorLog = FileManager.default.temporaryDirectory.appendingPathComponent("pbtwave-peer-\(getpid())-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
        let errorHandle = try FileHandle(forWritingTo: errorLog)
        defer {
            try? errorHandle.close()
            try? FileManager.default.removeItem(at: errorLog)
        }
        process.standardError = errorHandle
        do { try process.run() } catch {
            throw CommandError("cannot start the peer (\(commandLine)): \(FileErrorText.cause(of: error) ?? error.localizedDescription)")
        }
        let stopped = Mutex<String?>(nil)
        let pid = process.processIdentifier
        let limit = limit ?? timeLimit(seconds: seconds)
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + limit)
        timer.setEventHandler {
            stopped.withLock { $0 = $0 ?? "it was still running after \(Int(limit)) s" }
            kill(pid, SIGKILL)
        }
        timer.resume()
        let signals = StopOnSignals { signal, _ in
            stopped.withLock { $0 = $0 ?? "pbtwave got \(signalName(signal))" }
            kill(pid, SIGKILL)
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        signals.cancel()
        if let why = stopped.withLock({ $0 }) { throw CommandError("the peer was killed: \(why) (\(commandLine))") }
        let stdout = String(decoding: data, as: UTF8.self)
        if process.terminationStatus == 0, let line = stdout.split(separator: "\n").last,
           let out = try? JSONDecoder().decode(Output.self, from: Data(line.utf8)) {
            return Result(version: out.torch ?? "?", median: out.median, best: out.best ?? out.median)
        }
        let stderr = (try? String(contentsOf: errorLog, encoding: .utf8)) ?? ""
        let tail = (stderr + stdout).split(separator: "\n").suffix(8).map { "  | " + $0.prefix(300) }.joined(separator: "\n")
        let what = process.terminationStatus != 0 ? "exited with code \(process.terminationStatus)"
            : "ended without the JSON result line a wavenet_torch.py prints (is --peer-script the peer?)"
        throw CommandError("the peer \(what): \(commandLine)" + (tail.isEmpty ? " (it printed nothing)" : "; its last output:\n" + tail))
    }

    /// How long the peer may run for `seconds` of timing: its start (torch's
    /// import, the model) and warm-up take seconds to a minute on a slow host.
    static func timeLimit(seconds: Double) -> Double { 180 + 3 * seconds }

    /// The fields of the peer's JSON line that the benchmark reads.
    private struct Output: Decodable {
        var torch: String?
        var median: Double
        var best: Double?
        enum CodingKeys: String, CodingKey {
            case torch, median = "samples_per_s_median", best = "samples_per_s_best"
        }
    }
}

/// Training throughput of one model on synthetic windows.
enum TrainingMeasurement {
    struct Result: Sendable {
        var samplesPerStep: Int
        /// Seconds per step, sorted ascending.
        var stepSeconds: [Double]
        var steps: Int { stepSeconds.count }
        var medianSamplesPerSecond: Double { Double(samplesPerStep) / stepSeconds[stepSeconds.count / 2] }
        var bestSamplesPerSecond: Double { Double(samplesPerStep) / stepSeconds[0] }
        /// Samples/s of the step at `quantile` of the step times (0: fastest).
        func samplesPerSecond(quantile: Double) -> Double {
            Double(samplesPerStep) / stepSeconds[min(stepSeconds.count - 1, Int(quantile * Double(stepSeconds.count)))]
        }
        init(samplesPerStep: Int, stepSeconds: [Double]) {
            self.samplesPerStep = samplesPerStep
            self.stepSeconds = stepSeconds.sorted()
        }
    }

    /// One model training on batch × time synthetic windows, timed in slices
    /// (so that a benchmark can alternate it with what it is compared to).
    final class Session: @unchecked Sendable {
        let model: WaveNet
        let batch: Int, time: Int
        /// The synthetic windows every step trains on (codes < the model's classes).
        let windows: [Int32]
        /// Every timed step so far, in order.
        private(set) var stepSeconds: [Double] = []
        private(set) var lossFirst = 0.0, lossLast = 0.0

        /// A model of `config`, trained `warmup` steps (untimed) before the first slice.
        init(config: WaveNetConfig, kernels: Kernels, batch: Int, time: Int, threads: Int = 1,
             precision: Precision = .fp32, warmup: Int = 3) throws {
            model = try WaveNet(config: config, seed: 0)
            model.kernels = kernels
            model.precision = precision
            model.threads = threads
            self.batch = batch
            self.time = time
            // Sum of two sines plus noise, mu-law encoded, like the PyTorch
            // peer; for a model of fewer classes than the 256 levels, the
            // codes scaled down to its range (the cost does not depend on them).
            var rng = Xoshiro256(seed: 1)
            let levels = MuLaw.levels, classes = config.classes
            windows = (0..<batch * (time + 1)).map { i in
                let t = Double(i % (time + 1))
                let x = 0.4 * sin(2 * .pi * 220 * t / 16000) + 0.2 * sin(2 * .pi * 1234 * t / 16000) + 0.05 * rng.nextGaussian()
                let code = Int(MuLaw.encode(Float(x)))  // clamps to ±1
                return Int32(classes >= levels ? code : code * classes / levels)
            }
            for i in 0..<warmup {
                let l = step()
                if i == 0 { lossFirst = l }
            }
        }

        private func step() -> Double {
            windows.withUnsafeBufferPointer { w in
                model.trainStep(windows: w.baseAddress!, batch: batch, time: time, learningRate: 1e-3)
            }
        }

        /// Times steps for about `seconds` (at least three), or exactly
        /// `steps`; returns this slice's result.
        @discardableResult
        func time(seconds: Double, steps: Int? = nil) -> Result {
            var times: [Double] = []
            times.reserveCapacity(4096)
            let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            while steps.map({ times.count < $0 }) ?? (ContinuousClock.now < end || times.count < 3) {
                times.append(BenchClock.seconds { lossLast = step() })
            }
            stepSeconds += times
            return Result(samplesPerStep: batch * time, stepSeconds: times)
        }

        /// All slices so far.
        var result: Result { Result(samplesPerStep: batch * time, stepSeconds: stepSeconds) }
    }

    /// Times every session at the same time, one thread each, for about
    /// `seconds`; returns each one's slice.
    static func timeConcurrently(_ sessions: [Session], seconds: Double) -> [Result] {
        let results = Mutex<[Int: Result]>([:])
        let done = DispatchGroup()
        for (w, session) in sessions.enumerated() {
            done.enter()
            let thread = Thread {
                let r = session.time(seconds: seconds)
                results.withLock { $0[w] = r }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return results.withLock { all in (0..<sessions.count).map { all[$0]! } }
    }
}
