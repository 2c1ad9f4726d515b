import Foundation

/// Mean and spread of one quantity over seeds.
public struct SeedStatistics: Codable, Sendable, Hashable {
    public var count: Int
    public var mean: Double
    /// Sample standard deviation (n − 1 in the denominator); 0 for one value.
    public var standardDeviation: Double
    public var minimum: Double
    public var maximum: Double

    /// nil for no values.
    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        count = values.count
        mean = StatisticalTests.mean(values)
        standardDeviation = values.count > 1 ? StatisticalTests.sampleVariance(values).squareRoot() : 0
        minimum = values.min()!
        maximum = values.max()!
    }

    public var range: Double { maximum - minimum }

    /// "mean ± std" with three decimals; one seed has no spread, so its value
    /// stands alone ("4.142, 1 seed"), not beside a "± 0.000" that reads as
    /// a measured agreement.
    var spreadText: String {
        count > 1 ? "\(bits(mean)) ± \(bits(standardDeviation))" : "\(bits(mean)), 1 seed"
    }
}

/// A point of a curve averaged over seeds.
public struct SpreadPoint: Codable, Sendable, Hashable {
    public var x: Double
    public var statistics: SeedStatistics
}

/// Best-so-far curves of several seeds of one method on a common grid.
///
/// The grid is the union of the seeds' x values, from the first x at which
/// every seed has a value (each has had a success) to the shortest seed's
/// `xEnd`, which is always a grid point. Each seed's curve is a step
/// function, so the mean is one too. Seeds whose every trial failed are left
/// out (`excludedSeeds` counts them). O(k·m log n) for k seeds, m grid points.
public struct AggregatedCurve: Sendable, Hashable {
    public var points: [SpreadPoint]
    public var includedSeeds: Int
    public var excludedSeeds: Int

    public init(_ curves: [BestCurve]) {
        let usable = curves.filter { !$0.points.isEmpty }
        includedSeeds = usable.count
        excludedSeeds = curves.count - usable.count
        guard let start = usable.map({ $0.points[0].x }).max(), let end = usable.map(\.xEnd).min(), start <= end else {
            points = []
            return
        }
        var grid = Set(usable.flatMap { $0.points.map(\.x) }.filter { $0 >= start && $0 <= end })
        grid.insert(end)
        points = grid.sorted().map { x in
            SpreadPoint(x: x, statistics: SeedStatistics(usable.map { $0.value(at: x)! })!)
        }
    }

    /// The statistics at x (a step function over the grid), nil before the first grid point.
    public func statistics(at x: Double) -> SeedStatistics? {
        points.last { $0.x <= x }?.statistics
    }
}

/// Total compute of every run, and whether all methods got the same budget.
public struct ComputeCheck: Sendable {
    public struct Entry: Sendable, Hashable {
        public var method: String
        public var seed: Int
        public var compute: Int
    }

    public var entries: [Entry]
    /// One trial's worth of steps: the largest difference still called equal.
    public var tolerance: Int
    /// Largest minus smallest total compute over all runs.
    public var maximumDifference: Int
    /// The budget the experiment set, for comparison.
    public var budget: Int

    /// `tolerance`: `results.stepsPerTrial` when positive, else the largest trial.
    public init(_ results: ExperimentResults) {
        entries = results.runsByMethod.flatMap { group in
            group.runs.map { Entry(method: group.method, seed: $0.seed, compute: $0.totalCompute) }
        }
        let largestTrial = results.runs.flatMap(\.trials).map(\.steps).max() ?? 0
        tolerance = results.stepsPerTrial > 0 ? results.stepsPerTrial : largestTrial
        let computes = entries.map(\.compute)
        maximumDifference = (computes.max() ?? 0) - (computes.min() ?? 0)
        budget = results.totalStepsPerMethod
    }

    /// True when every run's compute lies within one trial's worth of every other's.
    public var isEqual: Bool { maximumDifference <= tolerance }

    /// One line for the report.
    public var summary: String {
        let computes = entries.map(\.compute)
        guard let low = computes.min(), let high = computes.max() else { return "no runs" }
        if isEqual {
            return low == high
                ? "Equal compute: every run trained \(low.grouped) steps (budget \(budget.grouped))"
                : "Equal compute: runs trained between \(low.grouped) and \(high.grouped) steps, within one trial (\(tolerance.grouped) steps); budget \(budget.grouped)"
        }
        let lowest = entries.first { $0.compute == low }!
        let highest = entries.first { $0.compute == high }!
        return "UNEQUAL compute: \(lowest.method) seed \(lowest.seed) trained \(low.grouped) steps but \(highest.method) seed \(highest.seed) \(high.grouped), more than one trial (\(tolerance.grouped) steps) apart; budget \(budget.grouped)"
    }
}

extension Int {
    /// 12500 → "12,500".
    public var grouped: String {
        let digits = String(magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return self < 0 ? "-" + out : out
    }
}
