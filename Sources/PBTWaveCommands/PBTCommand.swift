import ArgumentParser
import Foundation
import PBT
import PBTExperiment

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
            """)

    @Option(help: "Run directory (created if needed; an existing run there is resumed).")
    public var runDir: String

    @Option(help: "The model to tune.")
    public var model: PBTModel = .toy

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
        let url = URL(fileURLWithPath: runDir)
        if resume, !FileManager.default.fileExists(atPath: url.appendingPathComponent(RunDirectory.storeFileName).path) {
            throw CommandError("--resume: \(runDir) holds no PBT run to resume (no \(RunDirectory.storeFileName))")
        }
        let directory = try RunDirectory(url, create: true, lock: true)
        let configuration = runConfiguration()
        let coordinator: PBTCoordinator
        let created: Bool
        do {
            (coordinator, created) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                                             configuration: configuration, runDirectory: directory.url)
        } catch PBTStoreError.configMismatch(_, let differences) {
            let lines = differences.map { "  \(Self.flag(forField: $0.field)): the run has \($0.stored), this command has \($0.given)" }
            throw CommandError("""
                \(runDir) holds a run created with other settings:
                \(lines.joined(separator: "\n"))
                Re-run with the run's flags to resume it, or choose a new --run-dir.
                """)
        }
        let recovered = try coordinator.recoverAfterCrash()
        let settings = coordinator.settings
        let mode = settings.isGenerational ? "budget mode (generational)" : "asynchronous"
        let verb = created ? "starting" : "resuming"
        print("pbt: \(verb) \(runDir): model \(configuration.model), P=\(settings.population) W=\(settings.workers), "
              + "\(settings.trialSteps) steps/trial, budget \(settings.trialBudget) trials, \(settings.selection), \(mode)"
              + (settings.deterministic ? ", deterministic" : "")
              + (recovered.requeued > 0 ? "; re-queued \(recovered.requeued) interrupted trial(s)" : ""))

        let runner = try PBTRunnerFactory.makeRunner(model, toy: toy, wavenet: wavenet)
        let line = PBTProgressLine(style: progress)
        let result = try drive(runner, coordinator: coordinator, progress: line)
        try printSummary(result, directory: directory, settings: settings)
        if let wavenet = runner as? WaveNetRunner, result.time.totalSeconds > 0 {
            let t = result.time
            print(String(format: "WaveNet workers: training+validation %.1f%%, checkpoint load+save %.2f%% of worker time; "
                         + "controller+store+checkpoint together %.2f%%",
                         100 * wavenet.timing.computeSeconds / t.totalSeconds, 100 * wavenet.timing.checkpointSeconds / t.totalSeconds,
                         100 * (wavenet.timing.checkpointSeconds + t.coordinationSeconds) / t.totalSeconds))
        }
    }

    private func drive<R: TrialRunner>(_ runner: R, coordinator: PBTCoordinator, progress: PBTProgressLine) throws -> PBTRunResult {
        try PBTDriver(coordinator: coordinator, runner: runner).run { progress.update($0) }
    }

    private func printSummary(_ result: PBTRunResult, directory: RunDirectory, settings: PBTSettings) throws {
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
            let file = directory.url.appendingPathComponent("schedule.\(format.rawValue)")
            try AtomicFile.write(Data(schedule.text(format).utf8), to: file)
        }
        let lr = schedule.single("lr")
        let trend = lr.map { s in " (lr \(s.points.first!.value) at step 0 → \(s.points.last!.value) from step \(s.points.last!.step))" } ?? ""
        print("schedule: \(directory.url.appendingPathComponent("schedule.csv").path), schedule.json: "
              + "\(schedule.rows.count) change point(s)\(trend)")
    }
}

/// An error a user caused, with a message that says what to do.
public struct CommandError: Error, CustomStringConvertible, LocalizedError {
    public var description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}
