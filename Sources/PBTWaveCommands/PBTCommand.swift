import ArgumentParser
import Foundation
import PBT
import PBTExperiment
import PBTPostgres

extension ProgressStyle: ExpressibleByArgument {}

public enum SelectionName: String, ExpressibleByArgument, CaseIterable, Sendable {
    case tournament, truncation, independent

    func strategy(truncationFraction: Double?) -> SelectionStrategy {
        switch self {
        case .tournament: return .tournament
        case .truncation: return .truncation(fraction: truncationFraction ?? 0.25)
        case .independent: return .independent
        }
    }
}

/// `pbtwave pbt`: run (or resume) Population Based Training of a model's
/// learning-rate schedule.
public struct PBTCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pbt",
        abstract: "Tune a learning-rate schedule with Population Based Training.",
        discussion: """
            Runs W worker threads on a population of P trials of --trial-steps steps each, until the budget
            (--total-steps summed over all trials, or --generations of P trials) is spent. P > W is budget
            mode: a generation is complete when P of its trials have finished. Everything is kept in
            RUN_DIR (pbt.sqlite, checkpoints/); re-running the same command on RUN_DIR resumes the run.
            At the end the best trial of the final generation is reported and its learned schedule is
            written to RUN_DIR/schedule.csv and RUN_DIR/schedule.json.

            Several machines: --store postgres://… keeps the trials on a PostgreSQL server and RUN_DIR holds
            only the checkpoints, so RUN_DIR must be a directory every machine reaches (a shared file system).
            This command creates the run (or joins it) and runs --local-workers threads; `pbtwave worker
            --store … --run NAME --run-dir RUN_DIR` on any machine adds workers. --local-workers 0 only
            creates the run.
            """)

    @Option(help: "Run directory: checkpoints and the learned schedule; with the default store also the trials (created if needed; an existing run there is resumed).")
    public var runDir: String

    @Option(help: ArgumentHelp(
        "Trial store: sqlite:PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (default: RUN_DIR/pbt.sqlite).",
        valueName: "store"))
    public var store: StoreLocation?

    @Option(name: .customLong("run"), help: "Name of the run in the store (a PostgreSQL store can hold many runs).")
    public var runName: String = RunDirectory.runName

    @Option(help: "Worker threads in this process (default: --workers). 0: only create the run, for `pbtwave worker` processes.")
    public var localWorkers: Int?

    @Option(help: "Seconds a claimed trial stays leased without a heartbeat (heartbeats come every quarter lease); after that another worker may re-run it.")
    public var leaseSeconds: Double = 60

    @Option(help: "The model to tune: wavenet (on the speech corpus), toy (a noisy quadratic, for trying PBT in seconds), noop.")
    public var model: PBTModel = .wavenet

    @Option(help: "Worker threads W.")
    public var workers: Int = 5

    @Option(help: "Population P (default: the number of workers).")
    public var population: Int?

    @Option(help: "Training steps per trial.")
    public var trialSteps: Int = 100

    @Option(help: "Budget: training steps summed over all trials (the compute clock).")
    public var totalSteps: Int?

    @Option(help: "Budget: generations of P trials (default 10 when --total-steps is not given).")
    public var generations: Int?

    @Option(help: "Lower bound of the log-uniform learning-rate prior.")
    public var lrMin: Double = 1e-4

    @Option(help: "Upper bound of the log-uniform learning-rate prior.")
    public var lrMax: Double = 3e-2

    @Option(help: "Selection: tournament (Li et al.), truncation (Jaderberg et al.), or independent (no exploit: random search; with --lr-min = --lr-max, a fixed learning rate).")
    public var selection: SelectionName = .tournament

    @Option(help: "Truncation selection: the bottom fraction copies the top fraction; in (0, 0.5] (default 0.25).")
    public var truncationFraction: Double?

    @Option(help: "Opponents come from the initiator's generation (1) or its and the previous one (2).")
    public var opponentGenerations: Int = 2

    @Option(help: "Probability that explore resamples a value from the prior instead of multiplying it by 0.8 or 1.2.")
    public var resampleProbability: Double = 0.25

    @Option(help: "Seed of the run (controller and every trial's seed).")
    public var seed: UInt64 = 0

    @Flag(help: "Apply results in trial-id order, so lineage, hyperparameters and losses depend only on the seed and the worker count.")
    public var deterministic = false

    @Flag(help: "Require an existing run in --run-dir (re-running without it also resumes).")
    public var resume = false

    @Option(help: "Progress display: auto, line (rewritten in place), plain (a line every few seconds), none.")
    public var progress: ProgressStyle = .auto

    @OptionGroup(title: "Toy model")
    public var toy: ToyModelOptions

    @OptionGroup(title: "WaveNet model (--model wavenet)")
    public var wavenet: WaveNetModelOptions

    public init() {}

    /// The run's configuration as given by the flags.
    public func runConfiguration() -> RunConfiguration {
        let budget: Budget = totalSteps.map(Budget.totalSteps) ?? .generations(generations ?? 10)
        let selection = self.selection.strategy(truncationFraction: truncationFraction)
        let settings = PBTSettings(
            population: population ?? workers, workers: workers, trialSteps: trialSteps, budget: budget,
            searchSpace: .learningRate(min: lrMin, max: lrMax), selection: selection,
            opponentGenerations: opponentGenerations, mutation: MutationPolicy(resampleProbability: resampleProbability),
            seed: seed, deterministic: deterministic)
        return RunConfiguration(settings: settings, model: model.rawValue, modelOptions: PBTRunnerFactory.options(model, toy: toy, wavenet: wavenet))
    }

    public func validate() throws {
        if let localWorkers, localWorkers < 0 { throw ValidationError("--local-workers must be 0 or more") }
        guard leaseSeconds > 0, leaseSeconds.isFinite else { throw ValidationError("--lease-seconds must be positive") }
        guard totalSteps == nil || generations == nil else {
            throw ValidationError("give either --total-steps or --generations, not both")
        }
        if truncationFraction != nil, selection != .truncation {
            throw ValidationError("--truncation-fraction applies only to --selection truncation")
        }
        do { try runConfiguration().settings.validate() } catch {
            throw ValidationError("\(Self.flag(for: error)): \(error)")
        }
    }

    /// The flag a user changes to fix `error`.
    static func flag(for error: PBTConfigError) -> String {
        switch error {
        case .invalidWorkers: return "--workers"
        case .populationBelowWorkers: return "--population"
        case .invalidTrialSteps: return "--trial-steps"
        case .budgetBelowOneGeneration: return "--total-steps"
        case .invalidGenerations: return "--generations"
        case .invalidBounds, .nonPositiveLogBound, .emptySearchSpace, .invalidHyperparameterName,
             .duplicateHyperparameter, .invalidChoices:
            return "--lr-min/--lr-max"
        case .invalidTruncationFraction: return "--truncation-fraction"
        case .invalidOpponentGenerations: return "--opponent-generations"
        case .invalidResampleProbability: return "--resample-probability"
        case .invalidPerturbationFactors: return "perturbation factors"
        }
    }

    /// The flag that sets a stored configuration field.
    static func flag(forField field: String) -> String {
        switch field {
        case "population": return "--population"
        case "workers": return "--workers"
        case "trialSteps": return "--trial-steps"
        case "budget": return "--total-steps/--generations"
        case "searchSpace": return "--lr-min/--lr-max"
        case "selection": return "--selection/--truncation-fraction"
        case "opponentGenerations": return "--opponent-generations"
        case "resampleProbability": return "--resample-probability"
        case "seed": return "--seed"
        case "deterministic": return "--deterministic"
        case "model": return "--model"
        default: return field.hasPrefix("model.") ? "--" + field.dropFirst(6) : field
        }
    }

    public func run() throws {
        if case .postgres(let url) = store {
            return try runOnPostgres(url)
        }
        let url = URL(fileURLWithPath: runDir)
        var storePath: String?
        if case .sqlite(let path) = store { storePath = URL(fileURLWithPath: path).standardizedFileURL.path }
        let storeFile = storePath ?? url.appendingPathComponent(RunDirectory.storeFileName).path
        if resume, !FileManager.default.fileExists(atPath: storeFile) {
            throw CommandError("--resume: \(runDir) holds no PBT run to resume (no \(storeFile))")
        }
        let directory = try RunDirectory(url, create: true, lock: true, storePath: storePath)
        let configuration = runConfiguration()
        let (coordinator, created) = try open(directory.store, runDirectory: directory.url, configuration: configuration)
        let recovered = try coordinator.recoverAfterCrash()
        printStart(coordinator, created: created, extra: recovered.requeued > 0 ? "; re-queued \(recovered.requeued) interrupted trial(s)" : "")
        guard localWorkers != 0 else { return }
        let runner = try PBTRunnerFactory.makeRunner(model, toy: toy, wavenet: wavenet)
        let line = PBTProgressLine(style: progress)
        let result = try drive(runner, coordinator: coordinator, progress: line)
        try printSummary(result, runDirectory: directory.url, settings: coordinator.settings)
        if let wavenet = runner as? WaveNetRunner, result.time.totalSeconds > 0 {
            let t = result.time
            print(String(format: "WaveNet workers: training+validation %.1f%%, checkpoint load+save %.2f%% of worker time; "
                         + "controller+store+checkpoint together %.2f%%",
                         100 * wavenet.timing.computeSeconds / t.totalSeconds, 100 * wavenet.timing.checkpointSeconds / t.totalSeconds,
                         100 * (wavenet.timing.checkpointSeconds + t.coordinationSeconds) / t.totalSeconds))
        }
    }

    /// The run on a PostgreSQL server: no run-directory lock and no crash
    /// recovery (other processes may be working on it; leases re-queue the
    /// trials of dead workers), checkpoints in RUN_DIR.
    private func runOnPostgres(_ url: String) throws {
        let runDirectory = URL(fileURLWithPath: runDir).standardizedFileURL
        let store = try PostgresTrialStore(url: url)
        if resume, try store.run(named: runName) == nil {
            throw CommandError("--resume: \(store.displayURL) holds no run named '\(runName)'")
        }
        let configuration = runConfiguration()
        let opened: (coordinator: PBTCoordinator, created: Bool)
        do {
            opened = try open(store, runDirectory: runDirectory, configuration: configuration)
        } catch PBTStoreError.runExists {
            opened = try open(store, runDirectory: runDirectory, configuration: configuration)  // created by another process just now
        }
        let coordinator = opened.coordinator
        try SharedRunMarker.write(runDirectory, run: coordinator.run)
        printStart(coordinator, created: opened.created, extra: "")
        let threads = localWorkers ?? coordinator.settings.workers
        guard threads > 0 else {
            print("pbt: run '\(runName)' is ready in \(store.displayURL); add workers on any machine with:")
            print("  pbtwave worker --store '\(store.displayURL)' --run \(runName) --run-dir \(runDirectory.path)")
            return
        }
        let runner = try PBTRunnerFactory.makeRunner(model, toy: toy, wavenet: wavenet)
        let line = PBTProgressLine(style: progress)
        let result = try drive(runner, coordinator: coordinator, progress: line, threads: threads)
        try printSummary(result, runDirectory: runDirectory, settings: coordinator.settings)
        if result.done {
            // Nothing will run again: files of killed workers (temporaries,
            // outputs never reported) can go. A worker still writing a late
            // result loses its file, but that result would be ignored anyway.
            let live = Set(result.trials.compactMap { $0.checkpointLive ? $0.checkpointPath : nil })
            let removed = coordinator.checkpoints.sweep(keeping: live)
            if removed > 0 { print("pbt: removed \(removed) checkpoint file(s) left by workers that died") }
        }
    }

    /// Opens (or creates) the run, explaining a configuration mismatch flag by flag.
    private func open(_ store: any TrialStore, runDirectory: URL, configuration: RunConfiguration) throws -> (PBTCoordinator, Bool) {
        do {
            return try PBTCoordinator.open(store: store, name: runName, configuration: configuration, runDirectory: runDirectory)
        } catch PBTStoreError.configMismatch(_, let differences) {
            let lines = differences.map { "  \(Self.flag(forField: $0.field)): the run has \($0.stored), this command has \($0.given)" }
            throw CommandError("""
                \(store is PostgresTrialStore ? "run '\(runName)' in \(self.store!) was" : runDir + " holds a run") created with other settings:
                \(lines.joined(separator: "\n"))
                Re-run with the run's flags to resume it, or choose a new \(store is PostgresTrialStore ? "--run" : "--run-dir").
                """)
        }
    }

    private func printStart(_ coordinator: PBTCoordinator, created: Bool, extra: String) {
        let settings = coordinator.settings
        let mode = settings.isGenerational ? "budget mode (generational)" : "asynchronous"
        let verb = created ? "starting" : "resuming"
        let place = store.map { "run '\(runName)' in \($0), checkpoints in \(runDir)" } ?? runDir
        print("pbt: \(verb) \(place): model \(coordinator.configuration.model), P=\(settings.population) W=\(settings.workers), "
              + "\(settings.trialSteps) steps/trial, budget \(settings.trialBudget) trials, \(settings.selection), \(mode)"
              + (settings.deterministic ? ", deterministic" : "") + extra)
    }

    private func drive<R: TrialRunner>(_ runner: R, coordinator: PBTCoordinator, progress: PBTProgressLine,
                                       threads: Int? = nil) throws -> PBTRunResult {
        let options = DriverOptions(workers: threads ?? localWorkers, leaseSeconds: leaseSeconds)
        var callback: (@Sendable (PBTProgress) -> Void)?
        if !progress.isOff { callback = { progress.update($0) } }
        return try PBTDriver(coordinator: coordinator, runner: runner, options: options).run(progress: callback)
    }

    private func printSummary(_ result: PBTRunResult, runDirectory: URL, settings: PBTSettings) throws {
        let failed = result.trials.filter { $0.status == .failed }.count
        print("pbt: \(result.done ? "run complete" : "run stopped"): \(result.trials.count)/\(settings.trialBudget) trials"
              + (failed > 0 ? " (\(failed) failed)" : "") + ", \(result.completedThisSession) in this session")
        let t = result.time
        if t.totalSeconds > 0 {
            print(String(format: "worker time: runner %.1f%%, controller+store %.2f%%, idle %.1f%% (%.1f s summed over workers)",
                         100 * t.runnerSeconds / t.totalSeconds, 100 * t.coordinationFraction, 100 * t.idleSeconds / t.totalSeconds,
                         t.totalSeconds))
        }
        guard let best = result.best else {
            print("pbt: no trial finished; nothing to export")
            return
        }
        print("best trial of the final population: #\(best.id), generation \(best.generation), global step \(best.endStep), loss \(best.evaluation!)")
        print("checkpoint: \(result.bestCheckpoint?.path ?? "(released)")")
        let schedule = Lineage.schedule(of: try Lineage.ancestry(of: best.id, in: result.trials))
        for format in LearningRateSchedule.Format.allCases {
            let file = runDirectory.appendingPathComponent("schedule.\(format.rawValue)")
            try AtomicFile.write(Data(schedule.text(format).utf8), to: file)
        }
        let lr = schedule.single("lr")
        let trend = lr.map { s in " (lr \(s.points.first!.value) at step 0 → \(s.points.last!.value) from step \(s.points.last!.step))" } ?? ""
        print("schedule: \(runDirectory.appendingPathComponent("schedule.csv").path), schedule.json: "
              + "\(schedule.rows.count) change point(s)\(trend)")
    }
}

/// An error a user caused, with a message that says what to do.
public struct CommandError: Error, CustomStringConvertible, LocalizedError {
    public var description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}
