import Foundation
import PBTSchedules

/// One method over its seeds: the numbers of the per-method results table
/// and the curves of the figures.
public struct MethodSummary: Sendable {
    public var method: String
    public var seeds: [Int]
    public var workers: Int
    public var population: Int
    /// Final best NLL per seed, in seed order; nil where every trial failed.
    public var finalBest: [Double?]
    /// Over the seeds that have a final best.
    public var finalStatistics: SeedStatistics?
    /// The final best model of each seed on the whole validation set, in
    /// seed order; nil where it was not scored there.
    public var wholeSet: [Double?]
    /// Over the seeds scored on the whole set.
    public var wholeSetStatistics: SeedStatistics?
    public var computePerSeed: [Int]
    public var failedTrials: Int
    public var trialCount: Int
    public var meanWallSeconds: Double
    public var curves: [Clock: AggregatedCurve]

    /// `runs`: the runs of one method.
    public init(method: String, runs: [MethodRun]) {
        self.method = method
        let runs = runs.sorted { $0.seed < $1.seed }
        seeds = runs.map(\.seed)
        workers = runs.first?.workers ?? 0
        population = runs.first?.population ?? 0
        finalBest = runs.map(\.finalBest)
        finalStatistics = SeedStatistics(finalBest.compactMap { $0 })
        wholeSet = runs.map { $0.wholeSet?.nll }
        wholeSetStatistics = SeedStatistics(wholeSet.compactMap { $0 })
        computePerSeed = runs.map(\.totalCompute)
        failedTrials = runs.reduce(0) { $0 + $1.trials.filter { $0.finiteNLL == nil }.count }
        trialCount = runs.reduce(0) { $0 + $1.trials.count }
        meanWallSeconds = runs.isEmpty ? 0 : runs.reduce(0) { $0 + $1.wallSeconds } / Double(runs.count)
        curves = Dictionary(uniqueKeysWithValues: Clock.allCases.map { clock in (clock, AggregatedCurve(runs.map { $0.bestCurve(clock) })) })
    }

    /// Every method of `results`, in report order.
    public static func all(_ results: ExperimentResults) -> [MethodSummary] {
        results.runsByMethod.map { MethodSummary(method: $0.method, runs: $0.runs) }
    }

    /// The per-seed final NLLs a claim compares: on the whole set when every
    /// seed was scored there, else the fixed windows' final best (results
    /// written before whole-set scores). Seeds without a result are left out.
    public var finalValues: (values: [Double], wholeSet: Bool) {
        if !wholeSet.isEmpty, wholeSet.allSatisfy({ $0 != nil }) { return (wholeSet.map { $0! }, true) }
        return (finalBest.compactMap { $0 }, false)
    }

    /// "W×P", e.g. "5×20".
    public var shape: String { "\(workers)×\(population)" }
}

/// The overall winner: the best final trial over all PBT runs, with its
/// lineage and learned schedule.
public struct Winner: Sendable {
    public var method: String
    public var seed: Int
    public var trial: TrialResult
    /// From the trial trained from scratch to the winner, following parents.
    /// Stops early (at a trial from scratch or a parent id missing from the run).
    public var lineage: [TrialResult]
    /// The learning rate along the lineage: the first trial's start step and
    /// every start step where the rate changes (nil if the lineage has no
    /// valid learning rate).
    public var schedule: LearningRateSchedule?

    /// The model iteration the winner reached: where its schedule ends.
    public var endStep: Int { trial.endStep }

    /// Lowest finite NLL over all trials of all PBT runs; ties go to the
    /// earlier method in report order, then the lower seed, then the trial
    /// that finished first. nil when there is no PBT run with a success.
    public init?(_ results: ExperimentResults) {
        self.init(runs: results.runs)
    }

    /// The winner over `runs`, as `init?(_:)` finds it in a results value
    /// holding these runs.
    public init?(runs: [MethodRun]) {
        var found: (run: MethodRun, trial: TrialResult)?
        for group in ExperimentResults.grouped(byMethod: runs) {
            for run in group.runs where run.isPBT {
                guard let best = run.bestTrial else { continue }
                if let current = found, current.trial.finiteNLL! <= best.finiteNLL! { continue }
                found = (run, best)
            }
        }
        guard let found else { return nil }
        method = found.run.method
        seed = found.run.seed
        trial = found.trial
        lineage = Self.lineage(of: found.trial, in: found.run)
        schedule = Self.schedule(of: lineage)
    }

    /// Parents followed back from `trial`, returned root first. Guards
    /// against a cycle in malformed data by stopping at a repeated id.
    public static func lineage(of trial: TrialResult, in run: MethodRun) -> [TrialResult] {
        let byID = Dictionary(run.trials.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var chain = [trial]
        var seen: Set<Int> = [trial.id]
        var current = trial
        while let parentID = current.parent, let parent = byID[parentID], !seen.contains(parentID) {
            chain.append(parent)
            seen.insert(parentID)
            current = parent
        }
        return chain.reversed()
    }

    /// (start step, lr) of every lineage trial whose learning rate differs
    /// from the previous one's; trials without an "lr" are skipped.
    public static func schedule(of lineage: [TrialResult]) -> LearningRateSchedule? {
        var points: [LearningRateSchedule.Point] = []
        for trial in lineage {
            guard let lr = trial.learningRate else { continue }
            if points.last?.rate != lr { points.append(.init(step: trial.startStep, rate: lr)) }
        }
        return try? LearningRateSchedule(points: points)
    }
}

extension ExperimentResults {
    /// The distinct learning rates a non-PBT method used, over all its seeds,
    /// ascending (random search: its fixed rates; fixed LR: the one rate).
    public func learningRates(of method: String) -> [Double] {
        let rates = runs.filter { $0.method == method }.flatMap(\.trials).compactMap(\.learningRate)
        return Set(rates).sorted()
    }
}
