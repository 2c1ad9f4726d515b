import Foundation
import PBT
import Report
import Schedules

/// The sizes of one reproduction of the paper's WaveNet study.
public struct ExperimentPreset: Codable, Sendable, Hashable {
    public var name: String
    /// WaveNet preset (`WaveNetConfig.presets`).
    public var model: String
    public var batch: Int
    public var window: Int
    public var evalWindows: Int
    public var evalTargets: Int
    /// S: training steps per trial (and between evaluations of the baselines).
    public var trialSteps: Int
    /// Training steps every method spends, summed over its trials.
    public var totalSteps: Int
    public var seeds: Int
    public var workers: Int
    public var lrMin: Double
    public var lrMax: Double
    /// The hand-set learning rate of the fixed-LR baseline.
    public var fixedLR: Double

    public init(
        name: String, model: String, batch: Int, window: Int, evalWindows: Int, evalTargets: Int, trialSteps: Int,
        totalSteps: Int, seeds: Int, workers: Int, lrMin: Double, lrMax: Double, fixedLR: Double
    ) {
        self.name = name
        self.model = model
        self.batch = batch
        self.window = window
        self.evalWindows = evalWindows
        self.evalTargets = evalTargets
        self.trialSteps = trialSteps
        self.totalSteps = totalSteps
        self.seeds = seeds
        self.workers = workers
        self.lrMin = lrMin
        self.lrMax = lrMax
        self.fixedLR = fixedLR
    }

    /// The README's main job: the tiny model, two seeds, a few minutes on
    /// two cores. Small but honest: every method gets the same compute.
    public static let quick = ExperimentPreset(
        name: "quick", model: "tiny", batch: 2, window: 2048, evalWindows: 8, evalTargets: 4096,
        trialSteps: 50, totalSteps: 6000, seeds: 2, workers: 5, lrMin: 1e-4, lrMax: 3e-2, fixedLR: 1e-3)

    /// The full comparison: the compact model (the PyTorch peer's), five
    /// seeds, about two hours on the two-core machine.
    public static let paper = ExperimentPreset(
        name: "paper", model: "compact", batch: 1, window: 4096, evalWindows: 8, evalTargets: 4096,
        trialSteps: 100, totalSteps: 8000, seeds: 5, workers: 5, lrMin: 1e-4, lrMax: 3e-2, fixedLR: 1e-3)

    /// A very small run for tests and CI smoke checks.
    public static let smoke = ExperimentPreset(
        name: "smoke", model: "tiny", batch: 1, window: 512, evalWindows: 2, evalTargets: 512,
        trialSteps: 5, totalSteps: 200, seeds: 2, workers: 5, lrMin: 1e-4, lrMax: 3e-2, fixedLR: 1e-3)

    public static let all: [String: ExperimentPreset] = ["quick": .quick, "paper": .paper, "smoke": .smoke]

    /// The methods compared, in report order.
    public var methods: [ExperimentMethod] {
        [
            ExperimentMethod(name: MethodName.pbt5x5, slug: "pbt-5x5", population: workers, selection: .tournament,
                             lrMin: lrMin, lrMax: lrMax),
            ExperimentMethod(name: MethodName.pbt5x20, slug: "pbt-5x20", population: 4 * workers, selection: .tournament,
                             lrMin: lrMin, lrMax: lrMax),
            ExperimentMethod(name: MethodName.randomSearch, slug: "random-search", population: workers, selection: .independent,
                             lrMin: lrMin, lrMax: lrMax),
            ExperimentMethod(name: MethodName.fixedLR, slug: "fixed-lr", population: workers, selection: .independent,
                             lrMin: fixedLR, lrMax: fixedLR),
        ]
    }

    public func validate() throws {
        guard seeds >= 1, workers >= 1, trialSteps >= 1, batch >= 1, window >= 1, evalWindows >= 1, evalTargets >= 1 else {
            throw ExperimentError.invalidPreset("\(name): seeds, workers, trial steps and sizes must be at least 1")
        }
        guard totalSteps >= trialSteps * 4 * workers else {
            throw ExperimentError.invalidPreset("\(name): the budget (\(totalSteps) steps) must cover one generation of PBT-5x20 "
                + "(\(trialSteps * 4 * workers) steps)")
        }
        guard lrMin > 0, lrMin <= lrMax, fixedLR > 0 else { throw ExperimentError.invalidPreset("\(name): learning rates must be positive, min ≤ max") }
    }
}

/// One compared method: PBT with some population, or independent lineages.
public struct ExperimentMethod: Sendable, Hashable {
    public var name: String
    public var slug: String
    public var population: Int
    public var selection: SelectionStrategy
    public var lrMin: Double
    public var lrMax: Double

    /// The PBT settings of this method for `seed`: the same compute for all.
    public func settings(_ preset: ExperimentPreset, seed: Int) -> PBTSettings {
        PBTSettings(population: population, workers: preset.workers, trialSteps: preset.trialSteps,
                    budget: .totalSteps(preset.totalSteps), searchSpace: .learningRate(min: lrMin, max: lrMax),
                    selection: selection, seed: UInt64(seed))
    }
}

public enum ExperimentError: Error, CustomStringConvertible, LocalizedError {
    case invalidPreset(String)
    case noResult(String)

    public var description: String {
        switch self {
        case .invalidPreset(let m): return "invalid experiment preset: \(m)"
        case .noResult(let m): return m
        }
    }

    public var errorDescription: String? { description }
}

/// What the harness reports as it goes.
public struct ExperimentProgress: Sendable {
    public var method: String
    public var seed: Int
    /// Index of this run among all runs (0-based) and how many there are.
    public var runIndex: Int
    public var runCount: Int
    public var pbt: PBTProgress?
    public var message: String?
}

/// Runs every method for every seed (each method a PBT run in its own
/// directory, so an interrupted experiment resumes run by run and trial by
/// trial), replays the winner's learned schedule in one plain training run,
/// and writes the report.
///
/// Generic over the runner, so tests can drive it with the toy model.
public struct ExperimentHarness<Runner: TrialRunner> {
    public let preset: ExperimentPreset
    public let directory: URL
    public let runner: Runner
    /// Model name and options stored with each run (a resume must match them).
    public let model: String
    public let modelOptions: [String: String]
    /// The runner's replay recipe for a run with this seed (stored with the
    /// run and exported with its schedule).
    public let recipe: @Sendable (UInt64) throws -> JSONValue?
    /// Trains one model from scratch along an exported schedule (with its
    /// recipe and end step) and returns its validation NLL: claim (d). The
    /// same replay as `pbtwave train --lr-schedule FILE.json`.
    public let replay: @Sendable (HyperparameterSchedule) throws -> Double
    public let machine: String

    public init(
        preset: ExperimentPreset, directory: URL, runner: Runner, model: String, modelOptions: [String: String],
        machine: String, recipe: @escaping @Sendable (UInt64) throws -> JSONValue? = { _ in nil },
        replay: @escaping @Sendable (HyperparameterSchedule) throws -> Double
    ) throws {
        try preset.validate()
        self.preset = preset
        self.directory = directory
        self.runner = runner
        self.model = model
        self.modelOptions = modelOptions
        self.machine = machine
        self.recipe = recipe
        self.replay = replay
    }

    public func run(progress: (@Sendable (ExperimentProgress) -> Void)? = nil) throws -> ExperimentResults {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let started = Date()
        let plan = (0..<preset.seeds).flatMap { seed in preset.methods.map { (seed, $0) } }
        var runs: [MethodRun] = []
        for (index, (seed, method)) in plan.enumerated() {
            let runURL = directory.appendingPathComponent("\(method.slug)-seed\(seed)")
            let runDirectory = try RunDirectory(runURL, create: true, lock: true)
            let configuration = RunConfiguration(settings: method.settings(preset, seed: seed), model: model, modelOptions: modelOptions,
                                                 recipe: try recipe(UInt64(seed)))
            let (coordinator, _) = try PBTCoordinator.open(store: runDirectory.store, name: RunDirectory.runName,
                                                           configuration: configuration, runDirectory: runURL)
            _ = try coordinator.recoverAfterCrash()
            let base = ExperimentProgress(method: method.name, seed: seed, runIndex: index, runCount: plan.count)
            let result = try PBTDriver(coordinator: coordinator, runner: runner).run { p in
                var e = base
                e.pbt = p
                progress?(e)
            }
            guard result.done else { throw ExperimentError.noResult("\(method.name) seed \(seed) stopped before its budget was spent") }
            let selections = try runDirectory.store.selections(runID: coordinator.run.id)
            runs.append(Self.methodRun(method: method, seed: seed, settings: configuration.settings, trials: result.trials,
                                       selections: selections))
        }
        let replays = try replayWinner(runs, progress: progress)
        let results = ExperimentResults(
            preset: preset.name, modelPreset: preset.model, machine: machine, stepsPerTrial: preset.trialSteps,
            totalStepsPerMethod: preset.totalSteps, runs: runs, replays: replays,
            startedAt: ISO8601DateFormatter().string(from: started), wallSeconds: runs.reduce(0) { $0 + $1.wallSeconds })
        try ExperimentReport.write(results, to: directory)
        return results
    }

    /// The report's view of one PBT run's trial table.
    static func methodRun(
        method: ExperimentMethod, seed: Int, settings: PBTSettings, trials: [TrialRecord], selections: [SelectionRecord]
    ) -> MethodRun {
        let terminal = trials.filter { $0.status.isTerminal }.sorted { ($0.finishedAt ?? 0, $0.id) < ($1.finishedAt ?? 0, $1.id) }
        let order = Dictionary(uniqueKeysWithValues: terminal.enumerated().map { ($1.id, $0) })
        let workers = Array(Set(trials.compactMap(\.workerID))).sorted()
        let workerIndex = Dictionary(uniqueKeysWithValues: workers.enumerated().map { ($1, $0) })
        let start = trials.map(\.createdAt).min() ?? 0
        let losers = Dictionary(selections.filter { $0.kind == .tournament }.map { ($0.childID, $0.loserID) },
                                uniquingKeysWith: { a, _ in a })
        let records = terminal.map { t in
            TrialResult(
                id: t.id, parent: t.parentID, generation: t.generation,
                hyperparameters: t.hyperparameters.values.compactMapValues(\.number),
                startStep: t.startStep, steps: t.steps, validationNLL: t.status == .finished ? t.evaluation : nil,
                completionIndex: order[t.id]!, worker: t.workerID.flatMap { workerIndex[$0] },
                wallSeconds: t.finishedAt.map { $0 - start }, tournamentLoser: losers[t.id] ?? nil)
        }
        let end = terminal.compactMap(\.finishedAt).max() ?? start
        return MethodRun(method: method.name, seed: seed, workers: settings.workers, population: settings.population,
                         trials: records, wallSeconds: end - start)
    }

    /// Claim (d): the best PBT trial's learned schedule, exported with its
    /// recipe to `schedule.json` and replayed from scratch in one plain
    /// training run. Cached in `replay.json`.
    func replayWinner(_ runs: [MethodRun], progress: (@Sendable (ExperimentProgress) -> Void)?) throws -> [ReplayResult] {
        let cache = directory.appendingPathComponent("replay.json")
        guard let winner = Winner(runs: runs), let method = preset.methods.first(where: { $0.name == winner.method }) else { return [] }
        let runDirectory = try RunDirectory(directory.appendingPathComponent("\(method.slug)-seed\(winner.seed)"), create: false, lock: false)
        let coordinator = try PBTCoordinator.open(store: runDirectory.store, name: RunDirectory.runName, runDirectory: runDirectory.url)
        let file = try Lineage.export(trial: winner.trial.id, of: try runDirectory.store.trials(runID: coordinator.run.id),
                                      configuration: coordinator.configuration)
        try file.write(to: directory.appendingPathComponent("schedule.json"), format: .json)
        let schedule = try LearningRateSchedule(file)
        let winnerNLL = winner.trial.finiteNLL!
        if let data = try? Data(contentsOf: cache),
           let cached = try? ExperimentResults.jsonDecoder().decode(ReplayResult.self, from: data),
           cached.method == winner.method, cached.seed == winner.seed, cached.pbtWinnerNLL == winnerNLL {
            return [cached]
        }
        progress?(ExperimentProgress(method: winner.method, seed: winner.seed, runIndex: 0, runCount: 0, pbt: nil,
                                     message: "replaying the winner's schedule (\(winner.method) seed \(winner.seed), "
                                         + "trial \(winner.trial.id), \(winner.endStep) steps) in one plain training run"))
        let nll = try replay(file)
        let result = ReplayResult(method: winner.method, seed: winner.seed, pbtWinnerNLL: winnerNLL, replayNLL: nll,
                                  schedule: schedule)
        try AtomicFile.write(try ExperimentResults.jsonEncoder().encode(result), to: cache)
        return [result]
    }
}
