import Foundation
import PBT
import PBTReport
import PBTSchedules
import Synchronization

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

/// What one replay of a learned schedule reached.
public struct ReplayScore: Sendable, Hashable {
    /// Validation NLL on the recipe's fixed windows (NaN: diverged).
    public var windows: Double
    /// The replayed model on the whole validation set (nil: not scored there).
    public var wholeSet: WholeSetScore?

    public init(windows: Double, wholeSet: WholeSetScore? = nil) {
        self.windows = windows
        self.wholeSet = wholeSet
    }
}

/// Runs every method for every seed (each method a PBT run in its own
/// directory, so an interrupted experiment resumes run by run and trial by
/// trial), scores each run's final best model on the whole validation set,
/// replays the final best schedule of every seed of the winning method in
/// one plain training run each, and writes the report.
///
/// Generic over the runner, so tests can drive it with the toy model.
public struct ExperimentHarness<Runner: TrialRunner> {
    public let preset: ExperimentPreset
    /// The methods compared, in report order (default: the paper's four).
    public let methods: [ExperimentMethod]
    public let directory: URL
    public let runner: Runner
    /// Model name and options stored with each run (a resume must match them).
    public let model: String
    public let modelOptions: [String: String]
    /// The explore strategies the methods may ask for (PB2 is the command layer's to add).
    public let explorers: ExploreStrategies
    /// The runner's replay recipe for a run with this seed (stored with the
    /// run and exported with its schedule).
    public let recipe: @Sendable (UInt64) throws -> JSONValue?
    /// The recipe's fields a resume does not compare (`RunConfiguration.recipeFieldsNotCompared`).
    public let recipeFieldsNotCompared: Set<String>
    /// Scores a trial's checkpoint on the whole validation set (nil: no
    /// whole-set scores; the claims then use the fixed windows).
    public let rescore: (@Sendable (CheckpointRef) throws -> WholeSetScore)?
    /// Trains one model from scratch along an exported schedule (with its
    /// recipe and end step) and scores it: claim (d). The same replay as
    /// `pbtwave train --lr-schedule FILE.json`. Called from several threads
    /// at once (one replay each).
    public let replay: @Sendable (HyperparameterSchedule) throws -> ReplayScore
    public let machine: String
    /// The products' operand precision, recorded in results.json (nil: not recorded).
    public let precision: String?

    public init(
        preset: ExperimentPreset, methods: [ExperimentMethod]? = nil, directory: URL, runner: Runner, model: String,
        modelOptions: [String: String], machine: String, explorers: ExploreStrategies = .builtIn,
        recipe: @escaping @Sendable (UInt64) throws -> JSONValue? = { _ in nil }, recipeFieldsNotCompared: Set<String> = [],
        rescore: (@Sendable (CheckpointRef) throws -> WholeSetScore)? = nil,
        replay: @escaping @Sendable (HyperparameterSchedule) throws -> ReplayScore, precision: String? = nil
    ) throws {
        try preset.validate()
        self.preset = preset
        self.methods = try preset.methods(slugs: (methods ?? preset.methods).map(\.slug))
        // Refuse a method whose explore strategy is missing before any run starts.
        for method in self.methods { _ = try explorers.strategy(for: method.settings(preset, seed: 0)) }
        self.directory = directory
        self.runner = runner
        self.model = model
        self.modelOptions = modelOptions
        self.machine = machine
        self.precision = precision
        self.explorers = explorers
        self.recipe = recipe
        self.recipeFieldsNotCompared = recipeFieldsNotCompared
        self.rescore = rescore
        self.replay = replay
    }

    public func run(progress: (@Sendable (ExperimentProgress) -> Void)? = nil) throws -> ExperimentResults {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let started = Date()
        let plan = (0..<preset.seeds).flatMap { seed in methods.map { (seed, $0) } }
        var runs: [MethodRun] = []
        for (index, (seed, method)) in plan.enumerated() {
            let runURL = runDirectory(method, seed: seed)
            let runDirectory = try RunDirectory(runURL, create: true, lock: true)
            let configuration = RunConfiguration(settings: method.settings(preset, seed: seed), model: model, modelOptions: modelOptions,
                                                 recipe: try recipe(UInt64(seed)), recipeFieldsNotCompared: recipeFieldsNotCompared)
            let coordinator: PBTCoordinator
            do {
                coordinator = try PBTCoordinator.open(store: runDirectory.store, name: RunDirectory.runName,
                                                      configuration: configuration, runDirectory: runURL, explorers: explorers).coordinator
            } catch PBTStoreError.configMismatch(_, let differences) {
                // The recipe's too, the corpus above all (found by a user: a resume on another
                // corpus mixed two validation sets in one report).
                throw ExperimentError.otherSettings(runDirectory: runURL.path, differences: differences)
            }
            _ = try coordinator.recoverAfterCrash()
            let base = ExperimentProgress(method: method.name, seed: seed, runIndex: index, runCount: plan.count)
            let result = try PBTDriver(coordinator: coordinator, runner: runner).run { p in
                var e = base
                e.pbt = p
                progress?(e)
            }
            guard result.done else { throw ExperimentError.noResult("\(method.name) seed \(seed) stopped before its budget was spent") }
            let selections = try runDirectory.store.selections(runID: coordinator.run.id)
            var run = Self.methodRun(method: method, seed: seed, settings: configuration.settings, trials: result.trials,
                                     selections: selections)
            if let rescore, let final = Self.finalBest(result.trials) {
                run.wholeSet = try cached(runURL.appendingPathComponent("whole-set.json"), valid: { $0.trial == final.id }) {
                    // Said only when it is computed: a resumed experiment reuses the score.
                    var message = base
                    message.message = "scoring \(method.name) seed \(seed)'s final best (trial \(final.id)) on the whole validation set"
                    progress?(message)
                    var score = try rescore(coordinator.checkpoints.ref(relativePath: final.checkpointPath!))
                    score.trial = final.id
                    return score
                }
            }
            runs.append(run)
        }
        let replays = try replayFinalBests(runs, progress: progress)
        var results = ExperimentResults(
            preset: preset.name, modelPreset: preset.model, machine: machine, stepsPerTrial: preset.trialSteps,
            totalStepsPerMethod: preset.totalSteps, runs: runs, replays: replays,
            // The whole command, scoring and replays included (the runs' own
            // times leave those out); a resumed experiment times its last session.
            startedAt: ISO8601DateFormatter().string(from: started), wallSeconds: Date().timeIntervalSince(started),
            precision: precision)
        // Re-run once finished, the experiment finds the same results: it
        // keeps when it ran and how long it took (it would say "0 s").
        if let previous = try? ExperimentResults.read(from: directory.appendingPathComponent("results.json")) {
            var same = results
            (same.startedAt, same.wallSeconds, same.claims) = (previous.startedAt, previous.wallSeconds, previous.claims)
            let encoder = ExperimentResults.jsonEncoder()
            if let a = try? encoder.encode(same), let b = try? encoder.encode(previous), a == b { results = same }
        }
        try ExperimentReport.write(results, to: directory)
        return results
    }

    func runDirectory(_ method: ExperimentMethod, seed: Int) -> URL {
        directory.appendingPathComponent("\(method.slug)-seed\(seed)")
    }

    /// A run's final best: the finished trial with the lowest (window) loss
    /// among those whose checkpoint the run kept — its final population, as
    /// garbage collection keeps the last generations — and can still read
    /// (not retired). nil if none.
    static func finalBest(_ trials: [TrialRecord]) -> TrialRecord? {
        Lineage.best(of: trials.filter { !$0.isRetired && $0.checkpointLive && $0.checkpointPath != nil })
    }

    /// The value in `file` when it decodes and passes `valid`, else `compute()`
    /// written there (so a resumed experiment does not score or replay twice).
    func cached<Value: Codable>(_ file: URL, valid: (Value) -> Bool, _ compute: () throws -> Value) throws -> Value {
        if let data = try? Data(contentsOf: file), let value = try? ExperimentResults.jsonDecoder().decode(Value.self, from: data),
           valid(value) {
            return value
        }
        let value = try compute()
        try AtomicFile.write(try ExperimentResults.jsonEncoder().encode(value), to: file)
        return value
    }

    /// The report's view of one PBT run's trial table.
    static func methodRun(
        method: ExperimentMethod, seed: Int, settings: PBTSettings, trials: [TrialRecord], selections: [SelectionRecord]
    ) -> MethodRun {
        let terminal = trials.filter { $0.status.isTerminal }.sorted { ($0.finishedAt ?? 0, $0.id) < ($1.finishedAt ?? 0, $1.id) }
        let order = Dictionary(uniqueKeysWithValues: terminal.enumerated().map { ($1.id, $0) })
        // A worker is its thread's slot ("…/w3"): a resumed run's second session reuses the slots (it showed 10 workers of 5).
        let workers = Array(Set(trials.compactMap(\.workerID))).sorted()
        let workerIndex = Dictionary(uniqueKeysWithValues: workers.enumerated().map { index, id in
            (id, id.firstMatch(of: #//w(\d+)$/#).flatMap { Int($0.1) } ?? index)
        })
        let start = trials.map(\.createdAt).min() ?? 0
        // The run's clock runs while a trial of it does: the time a stopped experiment stood (a night, between a
        // stop and a resume) counts for nothing (found by a helper: 33 s of "wall time" for 1 s of training).
        let clock = ActiveClock(trials.compactMap { t in t.finishedAt.map { ((t.startedAt ?? t.createdAt), $0) } }, start: start)
        let losers = Dictionary(selections.filter { $0.kind == .tournament }.map { ($0.childID, $0.loserID) },
                                uniquingKeysWith: { a, _ in a })
        let records = terminal.map { t in
            TrialResult(
                id: t.id, parent: t.parentID, generation: t.generation,
                hyperparameters: t.hyperparameters.values.compactMapValues(\.number),
                startStep: t.startStep, steps: t.steps, validationNLL: t.status == .finished ? t.evaluation : nil,
                completionIndex: order[t.id]!, worker: t.workerID.flatMap { workerIndex[$0] },
                wallSeconds: t.finishedAt.map(clock.seconds(at:)), tournamentLoser: losers[t.id] ?? nil)
        }
        let end = terminal.compactMap(\.finishedAt).max() ?? start
        return MethodRun(method: method.name, seed: seed, workers: settings.workers, population: settings.population,
                         trials: records, wallSeconds: clock.seconds(at: end))
    }

    /// Claim (d): for every seed of the winning method (the method of the
    /// best PBT trial overall), the final best trial's learned schedule,
    /// exported with its recipe, replayed from scratch in one plain training
    /// run; replays run in parallel, one per core. Each is cached in
    /// `replays/<method>-seed<k>.json`; the winner's seed's schedule is also
    /// written to `schedule.json` and its replay to `replay.json`, so that
    /// `pbtwave train --lr-schedule schedule.json` can be checked against it.
    func replayFinalBests(_ runs: [MethodRun], progress: (@Sendable (ExperimentProgress) -> Void)?) throws -> [ReplayResult] {
        guard let winner = Winner(runs: runs), let method = methods.first(where: { $0.name == winner.method }) else { return [] }
        let cacheDirectory = directory.appendingPathComponent("replays")
        try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        // What to replay, per seed: the final best trial, its schedule file, and the cache.
        var jobs: [(run: MethodRun, trial: TrialRecord, file: HyperparameterSchedule, cache: URL)] = []
        for run in runs where run.method == method.name {
            let directory = try RunDirectory(runDirectory(method, seed: run.seed), create: false, lock: false)
            let coordinator = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName, runDirectory: directory.url,
                                                      explorers: explorers)
            let trials = try directory.store.trials(runID: coordinator.run.id)
            guard let final = Self.finalBest(trials) else { continue }
            let file = try Lineage.export(trial: final.id, of: trials, configuration: coordinator.configuration)
            if run.seed == winner.seed { try file.write(to: self.directory.appendingPathComponent("schedule.json"), format: .json) }
            jobs.append((run, final, file, cacheDirectory.appendingPathComponent("\(method.slug)-seed\(run.seed).json")))
        }
        let results = Mutex<[Int: Result<ReplayResult, any Error>]>([:])
        let planned = jobs
        DispatchQueue.concurrentPerform(iterations: planned.count) { index in
            let job = planned[index]
            let outcome = Result { () throws -> ReplayResult in
                let winnerNLL = job.trial.evaluation!
                return try cached(job.cache, valid: { (cached: ReplayResult) in
                    cached.method == job.run.method && cached.seed == job.run.seed && cached.pbtWinnerNLL == winnerNLL
                        && cached.pbtWinnerWholeSet == job.run.wholeSet
                }) {
                    progress?(ExperimentProgress(method: job.run.method, seed: job.run.seed, runIndex: 0, runCount: 0, pbt: nil,
                                                 message: "replaying \(job.run.method) seed \(job.run.seed)'s final best schedule (trial "
                                                     + "\(job.trial.id), \(job.trial.endStep) steps) in one plain training run"))
                    let score = try replay(job.file)
                    return ReplayResult(method: job.run.method, seed: job.run.seed, pbtWinnerNLL: winnerNLL, replayNLL: score.windows,
                                        schedule: try LearningRateSchedule(job.file), pbtWinnerWholeSet: job.run.wholeSet,
                                        replayWholeSet: score.wholeSet)
                }
            }
            results.withLock { $0[index] = outcome }
        }
        let replays = try results.withLock { $0 }.sorted { $0.key < $1.key }.map { try $0.value.get() }
        if let own = replays.first(where: { $0.seed == winner.seed }) {
            try AtomicFile.write(try ExperimentResults.jsonEncoder().encode(own), to: directory.appendingPathComponent("replay.json"))
        }
        return replays
    }
}

extension ExperimentHarness: Sendable {}

/// Seconds of a run's time while some trial of it ran: the union of the
/// trials' [start, finish] intervals, measured from the run's start up to
/// a moment. Gaps no trial covers (a stopped run waiting to be resumed)
/// are left out; a run that never stopped has no such gap but the moments
/// between one trial's end and the next one's start, a few milliseconds.
struct ActiveClock {
    /// Disjoint, sorted intervals.
    let spans: [(start: Double, end: Double)]
    let start: Double

    init(_ intervals: [(Double, Double)], start: Double) {
        var merged: [(start: Double, end: Double)] = []
        // The first trial's start is the run's: creation to first start is the run's own setup.
        for (a, b) in intervals.map({ (min($0.0, $0.1), $0.1) }).sorted(by: { $0.0 < $1.0 }) {
            let a = merged.isEmpty ? min(a, start) : a
            if let last = merged.last, a <= last.end { merged[merged.count - 1].end = max(last.end, b) } else { merged.append((a, b)) }
        }
        spans = merged
        self.start = start
    }

    /// Active seconds from the run's start to `moment`.
    func seconds(at moment: Double) -> Double {
        spans.reduce(0) { $0 + max(0, min($1.end, moment) - max($1.start, start)) }
    }
}
