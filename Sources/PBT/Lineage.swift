/// Lineage queries over a run's trials (the store's rows are the
/// append-only log: nothing about a trial is ever deleted, only checkpoint
/// files are).
public enum Lineage {
    /// The final population: each slot's latest finished trial, i.e. the
    /// finished trials whose place no finished successor has taken (the
    /// child of a selection they initiated, or a refill of that child when
    /// it failed). At the end of a run in budget mode that is exactly the
    /// final generation; in asynchronous mode, where lineages run ahead of
    /// each other, it is each slot's latest trial (the highest generation
    /// number alone may hold one straggling-ahead lineage). A slot whose
    /// child failed and was never replaced (the budget ran out on failures)
    /// keeps its last finished trial. During a run it also holds trials
    /// whose children are still running.
    public static func finalPopulation(_ trials: [TrialRecord], _ selections: [SelectionRecord]) -> [TrialRecord] {
        let finished = Set(trials.filter { $0.status == .finished }.map(\.id))
        // A failed trial's refill, which takes its place in the population.
        let refills = Dictionary(trials.compactMap { t in t.refillOf.map { ($0, t.id) } }, uniquingKeysWith: max)
        /// Whether `child`, or a refill of it (of a refill …), finished.
        func filled(_ child: Int) -> Bool {
            var id = child
            for _ in 0 ... trials.count {
                if finished.contains(id) { return true }
                guard let next = refills[id] else { return false }
                id = next
            }
            return false
        }
        let succeeded = Set(selections.filter { filled($0.childID) }.map(\.initiatorID))
        return trials.filter { $0.status == .finished && !succeeded.contains($0.id) }
    }

    /// The lowest evaluation (then lowest id) among finished `trials`.
    public static func best(of trials: [TrialRecord]) -> TrialRecord? {
        trials.filter { $0.status == .finished }.min { ($0.evaluation!, $0.id) < ($1.evaluation!, $1.id) }
    }

    /// The run's result: the best trial of the final population, or, while
    /// every finished trial has already reproduced, the best finished trial.
    /// A retired trial (its checkpoint changed or unusable since it scored)
    /// is the result only when no trial there is live: found by a user, a
    /// retired trial was reported best beside a live one.
    public static func bestOfFinalPopulation(_ trials: [TrialRecord], _ selections: [SelectionRecord]) -> TrialRecord? {
        let final = finalPopulation(trials, selections)
        func live(_ ts: [TrialRecord]) -> [TrialRecord] { ts.filter { !$0.isRetired } }
        return best(of: live(final)) ?? best(of: final) ?? best(of: live(trials)) ?? best(of: trials)
    }

    /// Trial `id` and its ancestors, generation 0 first.
    public static func ancestry(of id: Int, in trials: [TrialRecord]) throws(LineageError) -> [TrialRecord] {
        let byID = Dictionary(trials.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        guard var t = byID[id] else { throw .unknownTrial(id) }
        var chain = [t]
        while let pid = t.parentID {
            guard chain.count <= trials.count else { throw .parentCycle(trial: id) }
            guard let p = byID[pid] else { throw .brokenLineage(trial: t.id, parent: pid) }
            chain.append(p)
            t = p
        }
        return chain.reversed()
    }

    /// The learned schedule of trial `id` with the run's replay recipe: what
    /// `pbtwave schedule export` and the end of `pbtwave pbt` write. Throws
    /// unless the trial finished.
    public static func export(trial id: Int, of trials: [TrialRecord], configuration: RunConfiguration) throws -> HyperparameterSchedule {
        let ancestry = try ancestry(of: id, in: trials)
        guard let last = ancestry.last, last.status == .finished else {
            throw LineageError.notFinished(trial: id, status: ancestry.last?.status ?? .queued)
        }
        var schedule = try schedule(of: ancestry, recipe: configuration.recipe)
        schedule.realValued = configuration.settings.searchSpace.realValued
        return schedule
    }

    /// The learned schedule along `ancestry` (generation 0 first): a row
    /// wherever some hyperparameter's value changes, starting at the first
    /// trial's start step (0), ending at the last trial's end step.
    public static func schedule(of ancestry: [TrialRecord], recipe: JSONValue? = nil) throws(ScheduleFileError) -> HyperparameterSchedule {
        let names = ancestry.first?.hyperparameters.names ?? []
        var rows: [HyperparameterSchedule.Row] = []
        for t in ancestry {
            let values = names.map { t.hyperparameters[$0]! }
            if rows.last?.values != values { rows.append(.init(step: t.startStep, values: values)) }
        }
        return try HyperparameterSchedule(names: names, rows: rows, endStep: ancestry.last?.endStep, recipe: recipe)
    }
}

public enum LineageError: Error, Equatable, CustomStringConvertible {
    case unknownTrial(Int)
    case brokenLineage(trial: Int, parent: Int)
    /// Following trial's parents comes back to a trial already passed.
    case parentCycle(trial: Int)
    case notFinished(trial: Int, status: TrialStatus)

    public var description: String {
        switch self {
        case .notFinished(let t, let s): return "trial \(t) is \(s.rawValue); only a finished trial has a learned schedule"
        case .unknownTrial(let id): return "no trial \(id) in this run"
        case .brokenLineage(let t, let p): return "trial \(t) names parent \(p), which is not in the store"
        case .parentCycle(let t): return "trial \(t)'s parents lead back to one of themselves: the trial store is damaged"
        }
    }
}
