import ArgumentParser
import Foundation
import PBT

/// `pbtwave bench …`: quick in-tree measurements (the kernel benchmarks live
/// in the Benchmarks/ package).
public struct BenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Quick measurements.",
        subcommands: [PBTOverheadBenchCommand.self])
    public init() {}
}

/// `pbtwave bench pbt-overhead`: trial completions per second through the
/// controller and the SQLite store, with a runner that does nothing.
public struct PBTOverheadBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pbt-overhead",
        abstract: "Trial completions/s of the PBT controller and SQLite store with a no-op runner (target ≥ 1000/s).")

    @Option(help: "Worker threads.")
    public var workers: Int = 4

    @Option(help: "Population (default: the number of workers; larger is budget mode).")
    public var population: Int?

    @Option(help: "Trials to complete.")
    public var trials: Int = 5000

    @Option(help: "tournament or truncation.")
    public var selection: SelectionName = .tournament

    @Option(help: "Run directory (default: a fresh temporary directory, deleted afterwards).")
    public var runDir: String?

    @Flag(help: "Write a new 8-byte checkpoint file per trial (temp + rename) instead of hard-linking one template file; then the file system's inode allocation is measured too.")
    public var writeFiles = false

    public init() {}

    public func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard (population ?? workers) >= workers else { throw ValidationError("--population must be at least --workers") }
        guard trials >= (population ?? workers) else { throw ValidationError("--trials must be at least the population") }
    }

    public func run() throws {
        let fm = FileManager.default
        let url = runDir.map { URL(fileURLWithPath: $0) }
            ?? fm.temporaryDirectory.appendingPathComponent("pbt-overhead-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        if fm.fileExists(atPath: url.appendingPathComponent(RunDirectory.storeFileName).path) {
            throw CommandError("\(url.path) already holds a run; give a new --run-dir")
        }
        defer { if runDir == nil { try? fm.removeItem(at: url) } }
        let settings = PBTSettings(
            population: population ?? workers, workers: workers, trialSteps: 1, budget: .totalSteps(trials),
            selection: selection == .tournament ? .tournament : .truncation(fraction: 0.25))
        let directory = try RunDirectory(url, create: true, lock: true)
        let (coordinator, _) = try PBTCoordinator.open(
            store: directory.store, name: RunDirectory.runName,
            configuration: RunConfiguration(settings: settings, model: "noop"), runDirectory: url)
        var template: String?
        if !writeFiles {
            template = url.appendingPathComponent("noop-checkpoint").path
            try AtomicFile.write(Data(count: 8), toPath: template!)
        }
        let result = try PBTDriver(coordinator: coordinator, runner: NoOpRunner(template: template)).run()
        let rate = Double(result.completedThisSession) / result.elapsedSeconds
        print(String(format: "pbt-overhead: %d trials, %d workers, population %d, %@, checkpoints %@: %.3f s, %.0f completions/s, "
                     + "%.0f µs of worker time per trial in controller+store (summed over workers, lock waits included)",
                     result.completedThisSession, workers, settings.population, "\(settings.selection)",
                     writeFiles ? "written" : "hard-linked", result.elapsedSeconds, rate,
                     1e6 * result.time.coordinationSeconds / Double(max(result.completedThisSession, 1))))
    }
}
