import PBTFileSupport
import ArgumentParser
import Foundation
import PBT

/// `pbtwave worker`: joins an existing run and works on it until it is done.
public struct WorkerCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Join a PBT run in a shared store and claim, run and report its trials until the run is done.",
        discussion: """
            The run must exist: create it with `pbtwave pbt --store postgres://… --run NAME --run-dir DIR …` (add \
            --local-workers 0 to only create it). The worker rebuilds the runner from the run's stored model and recipe, \
            so only options that do not change results are given here (--corpus; for a training program, `--exec -- PROGRAM \
            ARGS` where the run's program and files live on this machine: the same file names in other folders and the same \
            other arguments; and --trial-timeout). RUN_DIR must be the run's checkpoint \
            directory as this machine sees it (a shared file system). Every claim is leased; a heartbeat renews it every \
            quarter lease. If this process dies, its trials are re-run by other workers once their leases expire, and a \
            result it reports after losing a trial is ignored. Start as many workers, on as many machines, as you like.
            """)

    @Option(help: ArgumentHelp("Trial store holding the run: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or sqlite:PATH, or the path alone, on one machine).",
                               valueName: "store"))
    var store: StoreLocation

    @Option(name: .customLong("run"), help: "Name of the run in the store.")
    var runName: String

    @Option(help: "The run's directory for checkpoints, reachable from every worker.", transform: nonEmptyPath)
    var runDir: String

    @Option(parsing: .unconditional, help: "Worker threads in this process.")
    var workers: Int = 1

    @Option(parsing: .unconditional, help: "Seconds a claimed trial stays leased without a heartbeat (heartbeats come every quarter lease); after that another worker may re-run it. At least 1.")
    var leaseSeconds: Double = 60

    @Option(parsing: .unconditional, help: "An idle worker (nothing claimable yet) asks the store again after this many seconds; each ask is a small transaction, so thousands of workers want a longer wait.")
    var pollSeconds: Double = 0.1

    @OptionGroup var failures: FailureLimitOptions

    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var progress: ProgressOptions
    @OptionGroup(title: "A run that tunes a training program (--exec)") var exec: ExecOptions

    @Option(name: .customLong("toy-trial-ms"), parsing: .unconditional, help: ArgumentHelp("Toy model: milliseconds per trial.", visibility: .hidden))
    var toyMilliseconds: Int = 0

    public init() {}

    public func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        // Before the run is joined and said so (found by a helper: "joining … 100000 thread(s)", then the refusal).
        guard workers <= PBTSettings.maxWorkers else { throw ValidationError("--workers must be at most \(PBTSettings.maxWorkers) (got \(workers))") }
        try StoreLocation.check(store)
        try StoreOptions.checkLease(leaseSeconds)
        guard pollSeconds > 0, pollSeconds.isFinite else { throw ValidationError("--poll-seconds must be positive") }
    }

    public func run() throws {
        let trialStore = try store.open(mustExist: true)
        guard let record = try trialStore.run(named: runName) else {
            throw CommandError("""
                \(store) holds no run named '\(runName)'; create it first with
                  pbtwave pbt --store \(shellQuoted(store.description)) --run \(shellQuoted(runName)) --run-dir \(shellQuoted(runDir)) --local-workers 0 [settings…]
                """)
        }
        let runDirectory = URL(fileURLWithPath: runDir).standardizedFileURL
        // Before opening, which creates the run's checkpoint folder: a
        // mistyped or unmounted RUN_DIR is refused with nothing created.
        try RunMarker.check(runDirectory, run: record)
        let coordinator = try PBTCoordinator.open(store: trialStore, name: runName, runDirectory: runDirectory, explorers: .pbtwave)
        let configuration = coordinator.configuration
        let line = ProgressLine(label: "pbt", style: progress.progress)
        let runner = try RunnerOptions.makeRunner(stored: configuration, corpus: corpus, toyMilliseconds: toyMilliseconds, exec: exec,
                                                  show: line.message)
        // Progress reads counts over the whole run from the store: once a
        // second is plenty, and never with --progress none.
        var options = DriverOptions(workers: workers, leaseSeconds: leaseSeconds, maxIdleWaitSeconds: pollSeconds, progressInterval: 1,
                                    maxFailuresInARow: failures.maxFailuresInARow, notice: { line.message("pbt: \($0)") })
        options.trialLogCommand = StoreLocation.trialLogCommand(store.lineageArguments(runName: runName))
        print("worker \(options.workerIDPrefix): joining run '\(runName)' in \(store) (model \(configuration.model), "
              + "P=\(configuration.settings.population), budget \(configuration.settings.trialBudget) trials), \(workers) thread(s), "
              + "checkpoints in \(coordinator.checkpoints.runDirectory.path)")
        let (result, stopSignal) = try PBTSession.drive(runner, coordinator: coordinator, options: options, line: line)
        // The worker that sees the run complete writes its schedule, and removes what dead workers left.
        try PBTSession.printSummary(result, coordinator: coordinator, exportTo: result.done ? runDirectory : nil)
        if let stopSignal { throw ExitCode(128 + stopSignal) }
        if result.done { try PBTSession.sweep(coordinator) }
        try PBTSession.failIfFailed(result)
    }
}
