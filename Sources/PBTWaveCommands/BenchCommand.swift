import ArgumentParser
import Foundation
import PBT
import PBTExamples
import TensorModule
import WaveNetModule

/// `pbtwave bench …`: speed measurements printed as ratios against a peer
/// measured in the same run. Not tests: the numbers depend on the machine.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed side by side with a reference, in one run.",
        subcommands: [BenchKernels.self, BenchTrain.self, BenchGenerate.self, PBTOverheadBenchCommand.self, BenchCorpus.self, BenchExecCommand.self]
    )
}

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Our GEMM path and convolution against raw cblas_sgemm calls on WaveNet's shapes.",
        discussion: """
        Each comparison alternates rounds of our call and the raw call and keeps the best round of \
        each, so a busy machine slows both alike. Single-threaded BLAS unless --threads says otherwise.
        """
    )

    @Option(help: "Time steps T for the GEMM shapes (comma-separated).")
    var times: String = "1024,4096,16384"

    @Option(help: "Alternating rounds per comparison (the best round counts).")
    var repetitions: Int = 7

    @Option(help: "BLAS threads.")
    var threads: Int = 1

    func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard parsedTimes != nil else { throw ValidationError("--times must be positive integers separated by commas, e.g. 1024,4096") }
    }

    var parsedTimes: [Int]? {
        let values = times.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return values.map { $0! }
    }

    func run() throws {
        BLAS.setThreads(threads)
        print("BLAS: \(BLAS.configuration) (core \(BLAS.coreName), \(threads) thread\(threads == 1 ? "" : "s"))")
        print(pad("shape", 34) + pad("ours GFLOP/s", 14) + pad("raw GFLOP/s", 14) + "ours/raw")
        var worst = Double.infinity
        for shape in KernelBenchmark.waveNetShapes(times: parsedTimes!) {
            let c = KernelBenchmark.compareGEMM(shape, repetitions: repetitions)
            worst = min(worst, c.ratio)
            print(row(c))
        }
        print(String(format: "GEMM path: worst ratio %.3f (goal ≥ 0.97)", worst))
        print("")
        print(pad("convolution (forward + backward)", 34) + pad("ours GFLOP/s", 14) + pad("sgemm alone", 14) + "ours/raw")
        for c in [32, 64] {
            let r = KernelBenchmark.compareConvolution(channels: c, time: 4096, repetitions: repetitions)
            print(row(r))
        }
        print("(goal: conv forward+backward at C=32, T=4096 ≥ 0.80 of the raw sgemm calls alone)")
    }

    func row(_ c: KernelBenchmark.Comparison) -> String {
        pad(c.label, 34) + pad(String(format: "%.1f", c.oursGFLOPS), 14) + pad(String(format: "%.1f", c.rawGFLOPS), 14)
            + String(format: "%.3f", c.ratio)
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "WaveNet training throughput (samples/s), optionally against the PyTorch peer in the same run.",
        discussion: """
        With --peer-python and --peer-script, runs ../shared/peer/wavenet_torch.py with the same model, \
        batch, window and thread count right after our measurement, and prints the ratio. Also measures \
        this core's fp32 FMA peak (as ../shared/peer/fma_peak.c does) and prints our fraction of it.
        """
    )

    @Option(help: "Model preset: \(WaveNetConfig.presets.keys.sorted().joined(separator: ", ")).")
    var preset: String = "compact"
    @Option(help: "Windows per step.") var batch: Int = 1
    @Option(help: "Positions per window (T).") var time: Int = 8192
    @Option(help: "Threads: BLAS threads, and the batch's windows split among threads (the peer gets the same thread count).") var threads: Int = 1
    @Option(help: "Seconds to time each side.") var seconds: Double = 10
    @Option(help: "Time exactly this many steps instead of --seconds (for instruction counts under callgrind).") var steps: Int?
    @Flag(inversion: .prefixedNo, help: "Measure this core's FMA peak and print our fraction of it.") var peak = true
    @Option(help: "Also train this many models at once, one per thread, and print the scaling against one.") var workers: Int = 1
    @Option(help: "Python interpreter with torch installed, for the peer.") var peerPython: String?
    @Option(help: "Path to wavenet_torch.py.") var peerScript: String?

    func validate() throws {
        try WaveNetConfig.checkPreset(preset)
        guard batch >= 1, time >= 2, threads >= 1, seconds > 0 else {
            throw ValidationError("--batch, --threads must be ≥ 1, --time ≥ 2, --seconds > 0")
        }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard steps.map({ $0 >= 1 }) ?? true else { throw ValidationError("--steps must be at least 1") }
        guard (peerPython == nil) == (peerScript == nil) else {
            throw ValidationError("give both --peer-python and --peer-script, or neither")
        }
    }

    func run() throws {
        BLAS.setThreads(threads)
        let config = WaveNetConfig.presets[preset]!
        let r = try TrainingBenchmark.run(config: config, batch: batch, time: time, seconds: seconds, steps: steps, threads: threads)
        let flops = Double(config.forwardMACsPerSample) * 6
        print(String(format: "ours:  %@ B%d T%d, %d thread(s): median %.0f samples/s (best %.0f), %.1f GFLOP/s median, %d steps, loss %.3f → %.3f",
                     preset, batch, time, threads, r.medianSamplesPerSecond, r.bestSamplesPerSecond,
                     r.medianSamplesPerSecond * flops / 1e9, r.steps, r.lossFirst, r.lossLast))
        if peak {
            let peak = KernelBenchmark.fmaPeakGFLOPS()
            print(String(format: "peak:  this core's fp32 FMA peak, measured now: %.1f GFLOP/s; ours is %.0f %% of %d core(s)' peak",
                         peak, 100 * r.medianSamplesPerSecond * flops / 1e9 / (peak * Double(threads)), threads))
        }
        if workers > 1 {
            let all = try TrainingBenchmark.runConcurrently(workers: workers, config: config, batch: batch, time: time, seconds: seconds)
            let total = all.reduce(0) { $0 + $1.medianSamplesPerSecond }
            print(String(format: "ours:  %d workers at once: %@ samples/s each (median), %.0f in all = %.2f× one worker",
                         workers, all.map { String(format: "%.0f", $0.medianSamplesPerSecond) }.joined(separator: ", "),
                         total, total / r.medianSamplesPerSecond))
        }
        guard let peerPython, let peerScript else { return }
        guard preset == "compact" else { throw ValidationError("the PyTorch peer implements the compact preset only") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: peerPython)
        process.arguments = [peerScript, "--threads", "\(threads)", "--batch", "\(batch)", "--T", "\(time)", "--seconds", "\(seconds)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = String(data: data, encoding: .utf8)?.split(separator: "\n").last,
              let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let peer = json["samples_per_s_median"] as? Double else {
            throw ValidationError("the peer failed (exit \(process.terminationStatus)); run it by hand to see why")
        }
        let best = json["samples_per_s_best"] as? Double ?? peer
        print(String(format: "peer:  torch %@: median %.0f samples/s (best %.0f)", json["torch"] as? String ?? "?", peer, best))
        print(String(format: "ratio ours/peer: %.2f× median, %.2f× best", r.medianSamplesPerSecond / peer, r.bestSamplesPerSecond / best))
    }
}

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Incremental (queue-based) generation speed in samples/s on one thread.")

    @Option(help: "Model preset.") var preset: String = "compact"
    @Option(help: "Samples to generate.") var samples: Int = 160_000
    @Option(help: "Repetitions (the best counts).") var repetitions: Int = 3

    func validate() throws {
        try WaveNetConfig.checkPreset(preset)
        guard samples >= 1000, repetitions >= 1 else { throw ValidationError("--samples must be ≥ 1000 and --repetitions ≥ 1") }
    }

    func run() throws {
        BLAS.setThreads(1)
        let config = WaveNetConfig.presets[preset]!
        var rates: [Double] = []
        for _ in 0..<repetitions { rates.append(try TrainingBenchmark.generation(config: config, count: samples)) }
        let best = rates.max()!
        print(String(format: "generate %@: best %.0f samples/s (%.1f× real time at %d Hz; runs: %@)", preset, best,
                     best / Double(config.sampleRate), config.sampleRate, rates.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
    }
}

/// `pbtwave bench pbt-overhead`: trial completions per second through the
/// controller and a trial store, with a runner that does nothing.
public struct PBTOverheadBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pbt-overhead",
        abstract: "Trial completions/s of the PBT controller and a trial store with a no-op runner (target ≥ 1000/s).",
        discussion: """
            By default: --workers threads in this process on a fresh SQLite store. With --store, the run is made             in that store (a new run named pbt-overhead-<pid>-<random>; a PostgreSQL store keeps it afterwards).             With --processes N, N `pbtwave worker` processes of --workers threads each do the work, as on N             machines; the rate is then completions over the span from the first claim to the last report, as             recorded in the store.
            """)

    @Option(help: "Worker threads (per process with --processes).")
    public var workers: Int = 4

    @Option(help: "Worker processes (`pbtwave worker`); 0: threads in this process.")
    public var processes: Int = 0

    @Option(help: ArgumentHelp("Trial store: sqlite:PATH or postgres://… (default: a fresh SQLite store in the run directory).",
                               valueName: "store"))
    public var store: StoreLocation?

    @Option(help: "Population (default: the number of workers in all; larger is budget mode).")
    public var population: Int?

    @Option(help: "Trials to complete.")
    public var trials: Int = 5000

    @Option(help: "tournament or truncation.")
    public var selection: SelectionName = .tournament

    @Option(help: "Run directory (default: a fresh temporary directory, deleted afterwards).")
    public var runDir: String?

    @Flag(help: "Write a new 8-byte checkpoint file per trial (temp + rename) instead of hard-linking one template file; then the file system's inode allocation is measured too. Always so with --processes.")
    public var writeFiles = false

    public init() {}

    var totalWorkers: Int { workers * max(processes, 1) }

    public func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard processes >= 0 else { throw ValidationError("--processes must be 0 or more") }
        guard (population ?? totalWorkers) >= totalWorkers else { throw ValidationError("--population must be at least the workers in all") }
        guard trials >= (population ?? totalWorkers) else { throw ValidationError("--trials must be at least the population") }
    }

    public func run() throws {
        let fm = FileManager.default
        let url = runDir.map { URL(fileURLWithPath: $0) }
            ?? fm.temporaryDirectory.appendingPathComponent("pbt-overhead-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        if store == nil, fm.fileExists(atPath: url.appendingPathComponent(RunDirectory.storeFileName).path) {
            throw CommandError("\(url.path) already holds a run; give a new --run-dir")
        }
        defer { if runDir == nil { try? fm.removeItem(at: url) } }
        let settings = PBTSettings(
            population: population ?? totalWorkers, workers: totalWorkers, trialSteps: 1, budget: .totalSteps(trials),
            selection: selection.strategy(truncationFraction: nil))
        let configuration = RunConfiguration(settings: settings, model: PBTModel.noop.rawValue)
        guard store != nil || processes > 0 else {
            let directory = try RunDirectory(url, create: true, lock: true)
            let (coordinator, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                                           configuration: configuration, runDirectory: url)
            return try measureInProcess(coordinator, settings: settings, place: "SQLite")
        }
        let location = store ?? .sqlite(path: url.appendingPathComponent(RunDirectory.storeFileName).path)
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
        let trialStore = try location.open()
        let name = "pbt-overhead-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let (coordinator, _) = try PBTCoordinator.open(store: trialStore, name: name, configuration: configuration, runDirectory: url)
        let place = location.description.hasPrefix("sqlite:") ? "SQLite" : "PostgreSQL"
        guard processes > 0 else { return try measureInProcess(coordinator, settings: settings, place: place) }
        try SharedRunMarker.write(url, run: coordinator.run)

        let start = Date()
        var children: [Process] = []
        for _ in 0..<processes {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            child.arguments = ["worker", "--store", storeArgument(location), "--run", name, "--run-dir", url.path,
                               "--workers", "\(workers)", "--progress", "none"]
            child.standardOutput = FileHandle.nullDevice
            try child.run()
            children.append(child)
        }
        for child in children { child.waitUntilExit() }
        let wall = Date().timeIntervalSince(start)
        let failed = children.filter { $0.terminationStatus != 0 }
        guard failed.isEmpty else { throw CommandError("\(failed.count) worker process(es) failed (exit \(failed.map(\.terminationStatus)))") }
        let rows = try trialStore.trials(runID: coordinator.run.id)
        guard rows.count == trials, rows.allSatisfy({ $0.status.isTerminal }) else {
            throw CommandError("the run did not complete: \(rows.filter { $0.status.isTerminal }.count) of \(trials) trials")
        }
        let span = rows.compactMap(\.finishedAt).max()! - rows.compactMap(\.startedAt).min()!
        let perWorker = Dictionary(grouping: rows, by: { $0.workerID?.split(separator: "/").first.map(String.init) ?? "?" })
        print(String(format: "pbt-overhead: %d trials, %d processes × %d worker thread(s), population %d, %@, %@ store, checkpoints written: "
                     + "%.0f completions/s (%.3f s from first claim to last report; %.2f s wall with process start-up); "
                     + "trials per process %@; %d re-run(s)",
                     rows.count, processes, workers, settings.population, "\(settings.selection)", place,
                     Double(rows.count) / span, span, wall,
                     perWorker.values.map { "\($0.count)" }.sorted().joined(separator: "/"),
                     rows.filter { $0.attempt > 1 }.count))
    }

    /// The worker's `--store` argument (with the password: it is a child of ours).
    private func storeArgument(_ location: StoreLocation) -> String {
        switch location {
        case .sqlite(let path): return "sqlite:" + path
        case .postgres(let url): return url
        }
    }

    private func measureInProcess(_ coordinator: PBTCoordinator, settings: PBTSettings, place: String) throws {
        var template: String?
        if !writeFiles {
            template = coordinator.checkpoints.runDirectory.appendingPathComponent("noop-checkpoint").path
            try AtomicFile.write(Data(count: 8), toPath: template!)
        }
        let result = try PBTDriver(coordinator: coordinator, runner: NoOpRunner(template: template),
                                   options: DriverOptions(workers: workers)).run()
        let rate = Double(result.completedThisSession) / result.elapsedSeconds
        print(String(format: "pbt-overhead: %d trials, %d workers, population %d, %@, %@ store, checkpoints %@: %.3f s, %.0f completions/s, "
                     + "%.0f µs of worker time per trial in controller+store (summed over workers, lock waits included)",
                     result.completedThisSession, workers, settings.population, "\(settings.selection)", place,
                     writeFiles ? "written" : "hard-linked", result.elapsedSeconds, rate,
                     1e6 * result.time.coordinationSeconds / Double(max(result.completedThisSession, 1))))
    }
}
