/// Lineage queries over a run's trials (the store's rows are the
/// append-only log: nothing about a trial is ever deleted, only checkpoint
/// files are).
public enum Lineage {
    /// The final population: finished trials that have not reproduced (not
    /// been the initiator of a selection). At the end of a run in budget mode
    /// that is exactly the final generation; in asynchronous mode, where
    /// lineages run ahead of each other, it is each slot's latest trial
    /// (the highest generation number alone may hold one straggling-ahead
    /// lineage). During a run it is the part of the population waiting to
    /// reproduce.
    public static func finalPopulation(_ trials: [TrialRecord], _ selections: [SelectionRecord]) -> [TrialRecord] {
        let initiators = Set(selections.map(\.initiatorID))
        return trials.filter { $0.status == .finished && !initiators.contains($0.id) }
    }

    /// The lowest evaluation (then lowest id) among finished `trials`.
    public static func best(of trials: [TrialRecord]) -> TrialRecord? {
        trials.filter { $0.status == .finished }.min { ($0.evaluation!, $0.id) < ($1.evaluation!, $1.id) }
    }

    /// The run's result: the best trial of the final population, or, while
    /// every finished trial has already reproduced, the best finished trial.
    public static func bestOfFinalPopulation(_ trials: [TrialRecord], _ selections: [SelectionRecord]) -> TrialRecord? {
        best(of: finalPopulation(trials, selections)) ?? best(of: trials)
    }

    /// Trial `id` and its ancestors, generation 0 first.
    public static func ancestry(of id: Int, in trials: [TrialRecord]) throws(LineageError) -> [TrialRecord] {
        let byID = Dictionary(trials.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        guard var t = byID[id] else { throw .unknownTrial(id) }
        var chain = [t]
        while let pid = t.parentID {
            guard let p = byID[pid], chain.count <= trials.count else { throw .brokenLineage(trial: t.id, parent: pid) }
            chain.append(p)
            t = p
        }
        return chain.reversed()
    }

    /// The learned schedule along `ancestry` (generation 0 first): a change
    /// point wherever some hyperparameter's value changes, starting at the
    /// first trial's start step (0).
    public static func schedule(of ancestry: [TrialRecord]) -> LearnedSchedule {
        let names = ancestry.first?.hyperparameters.names ?? []
        var rows: [LearnedSchedule.Row] = []
        for t in ancestry {
            let values = names.map { t.hyperparameters[$0]! }
            if rows.last?.values != values { rows.append(.init(step: t.startStep, values: values)) }
        }
        return LearnedSchedule(names: names, rows: rows, endStep: ancestry.last?.endStep ?? 0)
    }
}

public enum LineageError: Error, Equatable, CustomStringConvertible {
    case unknownTrial(Int)
    case brokenLineage(trial: Int, parent: Int)

    public var description: String {
        switch self {
        case .unknownTrial(let id): return "no trial \(id) in this run"
        case .brokenLineage(let t, let p): return "trial \(t) names parent \(p), which is not in the store"
        }
    }
}

/// The schedule of every hyperparameter along one lineage.
public struct LearnedSchedule: Sendable, Hashable {
    public struct Row: Sendable, Hashable {
        public var step: Int
        public var values: [HyperparameterValue]
    }

    /// Hyperparameter names, sorted; the columns of `rows`.
    public var names: [String]
    public var rows: [Row]
    /// The global step the lineage's last trial ended at.
    public var endStep: Int

    /// The schedule of one numeric hyperparameter, in the replay format.
    public func single(_ name: String) -> LearningRateSchedule? {
        guard let column = names.firstIndex(of: name) else { return nil }
        var points: [LearningRateSchedule.Point] = []
        for row in rows {
            guard let x = row.values[column].number else { return nil }
            if points.last?.value != x { points.append(.init(step: row.step, value: x)) }
        }
        return try? LearningRateSchedule(hyperparameter: name, points: points)
    }

    /// `step,<name1>,<name2>…` then one row per change point. With a single
    /// numeric hyperparameter this is exactly `LearningRateSchedule.csvText`.
    public var csvText: String {
        "step," + names.joined(separator: ",") + "\n"
            + rows.map { "\($0.step)," + $0.values.map(\.description).joined(separator: ",") + "\n" }.joined()
    }

    /// For a single numeric hyperparameter exactly `LearningRateSchedule.jsonText`;
    /// otherwise `{"schedules":[<one such object per hyperparameter>]}`, with
    /// categorical values as strings.
    public var jsonText: String {
        if names.count == 1, let s = single(names[0]) { return s.jsonText }
        let objects = names.indices.map { column -> String in
            var points: [String] = []
            var last: HyperparameterValue?
            for row in rows where row.values[column] != last {
                last = row.values[column]
                let value: String
                switch row.values[column] {
                case .number(let x): value = x.description
                case .category(let c): value = "\"\(c)\""
                }
                points.append("{\"step\":\(row.step),\"value\":\(value)}")
            }
            return "{\"hyperparameter\":\"\(names[column])\",\"points\":[\(points.joined(separator: ","))]}"
        }
        return "{\"schedules\":[\(objects.joined(separator: ","))]}\n"
    }

    public func text(_ format: LearningRateSchedule.Format) -> String { format == .csv ? csvText : jsonText }
}
