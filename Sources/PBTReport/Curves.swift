import Foundation

/// The three clocks best-so-far validation NLL is measured against
/// (the design's "Outputs": compute, wall and model iteration).
public enum Clock: String, CaseIterable, Codable, Sendable {
    /// Training steps summed over all trials, in completion order.
    case compute
    /// compute / W: elapsed time when W workers train at the same speed.
    case stepsPerWorker = "steps_per_worker"
    /// A trial's own end step along its lineage: how long the model trained.
    case modelIteration = "model_iteration"

    /// The x-axis label, with units.
    public var axisLabel: String {
        switch self {
        case .compute: "compute (training steps summed over all workers)"
        case .stepsPerWorker: "steps per worker (elapsed time with W workers, in steps)"
        case .modelIteration: "model iteration (the model's own global step)"
        }
    }
}

/// One point of a best-so-far curve: from `x` on, the best validation NLL is `best`.
public struct CurvePoint: Codable, Sendable, Hashable {
    public var x: Double
    public var best: Double

    public init(x: Double, best: Double) {
        self.x = x
        self.best = best
    }
}

/// A best-so-far curve: a right-continuous, non-increasing step function.
///
/// `points` have strictly increasing x; the value at x is the `best` of the
/// last point with `point.x <= x`, undefined before the first point (no trial
/// had succeeded yet). `xEnd` is how far the run went on this clock, which
/// can lie beyond the last point.
public struct BestCurve: Sendable, Hashable {
    public var points: [CurvePoint]
    public var xEnd: Double

    public init(points: [CurvePoint], xEnd: Double) {
        self.points = points
        self.xEnd = xEnd
    }

    /// The best NLL reached by `x`, nil if no trial had succeeded by then.
    /// O(log n).
    public func value(at x: Double) -> Double? {
        var low = 0
        var high = points.count // first index with points[i].x > x
        while low < high {
            let middle = (low + high) / 2
            if points[middle].x <= x { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : points[low - 1].best
    }
}

extension MethodRun {
    /// Training steps summed over all trials, failed ones included.
    public var totalCompute: Int { trials.reduce(0) { $0 + $1.steps } }

    /// The trial with the lowest finite validation NLL (ties: the one that
    /// finished first), nil if every trial failed.
    public var bestTrial: TrialResult? {
        trials.filter { $0.finiteNLL != nil }.min { a, b in
            (a.finiteNLL!, a.completionIndex) < (b.finiteNLL!, b.completionIndex)
        }
    }

    /// The final best validation NLL of the run, nil if every trial failed.
    public var finalBest: Double? { bestTrial?.finiteNLL }

    /// Best-so-far validation NLL against `clock`. O(n log n) in the trials.
    ///
    /// Compute: trials in completion order, x = cumulative steps after each
    /// one; failed trials advance x but never set a best. Steps per worker:
    /// the same divided by `workers`. Model iteration: x = a trial's end step
    /// (`startStep + steps`), best over trials whose end step is at most x.
    /// Points are emitted at every x after the first success, also where the
    /// best did not change.
    public func bestCurve(_ clock: Clock) -> BestCurve {
        precondition(workers > 0, "MethodRun \(method) seed \(seed): workers must be positive")
        // Each trial with the x at which it finished, in finishing order.
        let finished: [(trial: TrialResult, x: Double)]
        switch clock {
        case .compute, .stepsPerWorker:
            let scale = clock == .compute ? 1.0 : 1.0 / Double(workers)
            var cumulative = 0
            finished = trials.sorted { ($0.completionIndex, $0.id) < ($1.completionIndex, $1.id) }.map { trial in
                cumulative += trial.steps
                return (trial, Double(cumulative) * scale)
            }
        case .modelIteration:
            finished = trials.sorted { ($0.endStep, $0.id) < ($1.endStep, $1.id) }.map { ($0, Double($0.endStep)) }
        }
        var points: [CurvePoint] = []
        var best: Double?
        for (trial, x) in finished {
            if let nll = trial.finiteNLL, best.map({ nll < $0 }) ?? true { best = nll }
            guard let best else { continue }
            // x never decreases; a point at the same x replaces the previous
            // one (zero-step trials, or several trials ending at the same
            // model iteration).
            if points.last?.x == x { points.removeLast() }
            points.append(CurvePoint(x: x, best: best))
        }
        return BestCurve(points: points, xEnd: finished.last?.x ?? 0)
    }
}
