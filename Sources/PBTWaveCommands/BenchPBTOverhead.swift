import ArgumentParser
import Foundation
import Synchronization
import PBT
import PBTExamples

/// `pbtwave bench pbt-overhead`: trial completions per second through the
/// controller and a trial store, with a runner that does nothing.
public struct PBTOverheadBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pbt-overhead",
        abstract: "Trial completions/s of the PBT controller and a trial store with a no-op runner (target ≥ 1000/s).",
        discussion: """
            By default: --workers threads in this process on a fresh SQLite store. With --store, the run is made in that store (a new run named pbt-overhead-<pid>-<random>; a PostgreSQL store keeps it afterwards). With --processes N, N `pbtwave worker` processes of --workers threads each do the work, as on N machines; the rate is then completions over the span from the first claim to the last report, as recorded in the store.
            """)

    @Option(help: "Worker threads (per process with --processes).")
    public var workers: Int = 4

    @Option(help: "Worker processes (`pbtwave worker`); 0: threads in this process.")
    public var processes: Int = 0

    @Option(help: ArgumentHelp("Trial store: sqlite:PATH (or the path alone) or postgres://… (default: a fresh SQLite store in the run directory).",
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
        // A stop ends the worker processes or threads; the measurement then ends and the temporary folder is removed
        // (found by a helper: the worker processes went on, busy, with init as their parent, and the folder stayed).
        let stopper = BenchStopper()
        let signals = StopOnSignals { signal, _ in
            writeToStandardError("pbt-overhead: \(signalName(signal)): stopped\n")
            stopper.stop()
        }
        defer { signals.cancel() }
        do {
            try measure(url: url, stopper: stopper)
            if signals.first == nil { return }
        } catch where signals.first == nil {
            throw error
        } catch {}
        if runDir == nil { try? fm.removeItem(at: url) }
        StopOnSignals.exitNow(signals.first!)
    }

    private func measure(url: URL, stopper: BenchStopper) throws {
        let fm = FileManager.default
        let settings = PBTSettings(
            population: population ?? totalWorkers, workers: totalWorkers, trialSteps: 1, budget: .totalSteps(trials),
            selection: selection.strategy(truncationFraction: nil))
        let configuration = RunConfiguration(settings: settings, model: PBTModel.noop.rawValue)
        guard store != nil || processes > 0 else {
            let directory = try RunDirectory(url, create: true, lock: true)
            let (coordinator, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                                           configuration: configuration, runDirectory: url)
            return try measureInProcess(coordinator, settings: settings, place: "SQLite", stopper: stopper)
        }
        let location = store ?? .sqlite(path: url.appendingPathComponent(RunDirectory.storeFileName).path)
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
        let trialStore = try location.open()
        let name = "pbt-overhead-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let (coordinator, _) = try PBTCoordinator.open(store: trialStore, name: name, configuration: configuration, runDirectory: url)
        let place = location.description.hasPrefix("sqlite:") ? "SQLite" : "PostgreSQL"
        guard processes > 0 else { return try measureInProcess(coordinator, settings: settings, place: place, stopper: stopper) }

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
            stopper.add(child.processIdentifier)
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

    private func measureInProcess(_ coordinator: PBTCoordinator, settings: PBTSettings, place: String, stopper: BenchStopper) throws {
        var template: String?
        if !writeFiles {
            template = coordinator.checkpoints.runDirectory.appendingPathComponent("noop-checkpoint").path
            try AtomicFile.write(Data(count: 8), toPath: template!)
        }
        let driver = PBTDriver(coordinator: coordinator, runner: NoOpRunner(template: template), options: DriverOptions(workers: workers))
        stopper.driving { driver.requestStop() }
        let result = try driver.run()
        if stopper.stopped { return }
        let rate = Double(result.completedThisSession) / result.elapsedSeconds
        print(String(format: "pbt-overhead: %d trials, %d workers, population %d, %@, %@ store, checkpoints %@: %.3f s, %.0f completions/s, "
                     + "%.0f µs of worker time per trial in controller+store (summed over workers, lock waits included)",
                     result.completedThisSession, workers, settings.population, "\(settings.selection)", place,
                     writeFiles ? "written" : "hard-linked", result.elapsedSeconds, rate,
                     1e6 * result.time.coordinationSeconds / Double(max(result.completedThisSession, 1))))
    }
}

/// What a stop of the bench ends: its worker processes, or its driver's threads.
private final class BenchStopper: Sendable {
    private let state = Mutex<(pids: [pid_t], stopDriver: (@Sendable () -> Void)?, stopped: Bool)>(([], nil, false))
    // (One begun after a stop is ended at once.)
    func add(_ pid: pid_t) { if state.withLock({ s in s.pids.append(pid); return s.stopped }) { kill(pid, SIGKILL) } }
    func driving(_ stop: @escaping @Sendable () -> Void) { if state.withLock({ s in s.stopDriver = stop; return s.stopped }) { stop() } }
    var stopped: Bool { state.withLock { $0.stopped } }
    func stop() {
        let (pids, stopDriver) = state.withLock { s in
            s.stopped = true
            return (s.pids, s.stopDriver)
        }
        for pid in pids { kill(pid, SIGKILL) }
        stopDriver?()
    }
}
