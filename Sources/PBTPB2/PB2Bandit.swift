import Foundation
import PBTSeededRNG

/// One interval of one trial, as PB2's GP sees it.
public struct PB2Observation: Sendable, Hashable, Codable {
    /// When the interval ended, on any increasing clock (e.g. training steps).
    public var time: Double
    /// Extra inputs PB2 conditions on, raw; Ray Tune passes the reward
    /// before the interval. May be empty; the same length everywhere.
    public var context: [Double]
    /// The hyperparameters used during the interval, each normalised to
    /// [0, 1] by the caller (a learning rate on a log scale).
    public var point: [Double]
    /// How much the reward rose during the interval, per unit of time
    /// (higher is better: for a loss, pass its decrease).
    public var rewardChange: Double

    public init(time: Double, context: [Double] = [], point: [Double], rewardChange: Double) {
        self.time = time
        self.context = context
        self.point = point
        self.rewardChange = rewardChange
    }
}

/// PB2's tunables.
public struct PB2Settings: Sendable, Hashable, Codable {
    /// Uniform random points in [0, 1]^d scored per suggestion (the observed points are scored too).
    public var candidates: Int
    /// How many of the best-scoring candidates a compass search refines.
    public var refinements: Int
    /// Only the most recent observations (by time) are used, which bounds
    /// the O(n³) fit; Ray Tune keeps up to 1,000 and chooses 200+ by likelihood.
    public var maximumObservations: Int
    public var grid: HyperparameterGrid
    /// β_t = c1 · log(c2 · n) for n observations (Ray Tune's 0.2 and 0.4).
    public var c1: Double
    public var c2: Double

    public init(candidates: Int = 256, refinements: Int = 3, maximumObservations: Int = 250,
                grid: HyperparameterGrid = .standard, c1: Double = 0.2, c2: Double = 0.4) {
        self.candidates = candidates
        self.refinements = refinements
        self.maximumObservations = maximumObservations
        self.grid = grid
        self.c1 = c1
        self.c2 = c2
    }

    public func validate() throws(PB2Error) {
        guard candidates >= 1 else { throw .invalidSetting(name: "candidates", requirement: "at least 1") }
        guard refinements >= 0 else { throw .invalidSetting(name: "refinements", requirement: "at least 0") }
        guard maximumObservations >= 1 else { throw .invalidSetting(name: "maximumObservations", requirement: "at least 1") }
        guard c1 >= 0, c1.isFinite, c2 > 0, c2.isFinite else { throw .invalidSetting(name: "c1, c2", requirement: "c1 ≥ 0 and c2 > 0, finite") }
        try grid.validate()
    }
}

/// What `PB2Bandit.suggest` chose, with the numbers behind it for the log.
public struct PB2Suggestion: Sendable, Hashable, Codable {
    /// The next hyperparameters, in [0, 1]^d.
    public var point: [Double]
    /// The GP's mean at `point`, in standardised reward-change units.
    public var mean: Double
    /// The GP's standard deviation at `point` (pending points included).
    public var standardDeviation: Double
    /// mean + √β · standardDeviation, the score that was maximised.
    public var upperConfidenceBound: Double
    public var beta: Double
    /// The fitted kernel hyperparameters.
    public var hyperparameters: GPHyperparameters
    /// How many observations the GP was fitted to.
    public var observationsUsed: Int
}

/// PB2's explore step (Parker-Holder et al., NeurIPS 2020): a GP bandit
/// that picks a trial's next hyperparameters by the upper confidence bound
/// of the reward change they are predicted to bring, under a time-varying
/// kernel, instead of PBT's random perturbation.
///
/// Follows Ray Tune's `pb2.py` / `pb2_utils.py` in what the GP sees: inputs
/// (time, context, hyperparameters) with time and context min–max
/// normalised over the observations used (a constant column becomes 0, where
/// Ray divides by zero), hyperparameters already in [0, 1]; targets
/// standardised, (y − mean)/(std + 1e-8) after scaling them to a largest
/// magnitude of 1 (Ray's is not scaled, so its result depends on the
/// objective's units), and clipped to [−2, 2]. It departs
/// from Ray in three stated ways: σ_f², ℓ, ε and the noise come from a grid
/// search with σ_f² profiled (not GPy's L-BFGS on all four); the score uses
/// the standard deviation, μ + √β·σ as in GP-UCB (Ray's code multiplies √β
/// by the variance); and the pending points reduce σ within the same
/// hyperparameters (GP-BUCB, Desautels et al. 2014), where Ray refits a
/// second GP to them.
public struct PB2Bandit: Sendable {
    public let settings: PB2Settings

    public init(settings: PB2Settings = PB2Settings()) throws(PB2Error) {
        try settings.validate()
        self.settings = settings
    }

    /// The next point in [0, 1]^d for a trial that continues from `time` with
    /// `context` (the parent's, when it was just copied), given the observed
    /// intervals and the points of trials already running in this round
    /// (`pending`). PB2 treats those as observed at (`time`, `context`) with
    /// the GP's own predicted mean, which leaves the mean unchanged and
    /// shrinks σ near them, so a round does not pick the same point twice.
    ///
    /// Maximises the UCB over `settings.candidates` uniform draws from `rng`
    /// plus the observed points, then refines the best `settings.refinements`
    /// by compass search (steps 0.1 halving to 1e-4, inside the cube). The
    /// same inputs and generator state give the same suggestion.
    /// O(|grid|·n³ + (candidates + observations)·n²) for n observations used.
    public func suggest(
        observations: [PB2Observation], time: Double, context: [Double] = [], pending: [[Double]] = [],
        using rng: inout Xoshiro256
    ) throws(PB2Error) -> PB2Suggestion {
        try Self.validate(observations: observations, time: time, context: context, pending: pending)
        // Most recent by time; ties keep the caller's order.
        let used = observations.enumerated()
            .sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }
            .suffix(settings.maximumObservations).map(\.element)
        let timeScale = MinMax(used.map(\.time))
        let contextScales = (0..<context.count).map { c in MinMax(used.map { $0.context[c] }) }
        func features(_ context: [Double], _ point: [Double]) -> [Double] {
            zip(contextScales, context).map { $0.normalise($1) } + point
        }
        let times = used.map { timeScale.normalise($0.time) }
        let inputs = used.map { features($0.context, $0.point) }
        let gp = try TimeVaryingGP.fit(times: times, features: inputs, targets: Self.standardise(used.map(\.rewardChange)),
                                       grid: settings.grid)

        let queryTime = timeScale.normalise(time)
        var model = gp
        if !pending.isEmpty {
            let pendingInputs = pending.map { features(context, $0) }
            let believed = gp.predict(times: pendingInputs.map { _ in queryTime }, features: pendingInputs).map(\.mean)
            model = try TimeVaryingGP(times: times + pendingInputs.map { _ in queryTime }, features: inputs + pendingInputs,
                                      targets: gp.targets + believed, hyperparameters: gp.hyperparameters)
        }
        let beta = max(0, settings.c1 * log(settings.c2 * Double(used.count)))
        func scores(_ points: [[Double]]) -> [(mean: Double, sd: Double, ucb: Double)] {
            model.predict(times: points.map { _ in queryTime }, features: points.map { features(context, $0) }).map {
                let sd = $0.variance.squareRoot()
                return ($0.mean, sd, $0.mean + beta.squareRoot() * sd)
            }
        }

        let d = observations[0].point.count
        let candidates = (0..<settings.candidates).map { _ in (0..<d).map { _ in rng.nextUnitDouble() } } + used.map(\.point)
        let candidateScores = scores(candidates)
        let ranked = candidates.indices.sorted { (candidateScores[$0].ucb, $1) > (candidateScores[$1].ucb, $0) }
        var best = (point: candidates[ranked[0]], score: candidateScores[ranked[0]])
        for index in ranked.prefix(settings.refinements) {
            let refined = Self.compassSearch(from: candidates[index], score: candidateScores[index]) { scores([$0])[0] }
            if refined.score.ucb > best.score.ucb { best = refined }
        }
        return PB2Suggestion(point: best.point, mean: best.score.mean, standardDeviation: best.score.sd,
                             upperConfidenceBound: best.score.ucb, beta: beta, hyperparameters: gp.hyperparameters,
                             observationsUsed: used.count)
    }

    /// Hill-climbs the UCB from `start` along the coordinate axes, inside
    /// [0, 1]^d: try ±step on each coordinate, keep any improvement, halve the
    /// step when none helps; stop below 1e-4 or after 500 evaluations.
    static func compassSearch(
        from start: [Double], score: (mean: Double, sd: Double, ucb: Double),
        _ evaluate: ([Double]) -> (mean: Double, sd: Double, ucb: Double)
    ) -> (point: [Double], score: (mean: Double, sd: Double, ucb: Double)) {
        var point = start, current = score, step = 0.1, evaluations = 0
        while step >= 1e-4 && evaluations < 500 {
            var improved = false
            for c in point.indices {
                for direction in [1.0, -1.0] {
                    var trial = point
                    trial[c] = min(1, max(0, point[c] + direction * step))
                    guard trial[c] != point[c] else { continue }
                    let s = evaluate(trial)
                    evaluations += 1
                    if s.ucb > current.ucb {
                        (point, current, improved) = (trial, s, true)
                    }
                }
            }
            if !improved { step /= 2 }
        }
        return (point, current)
    }

    /// PB2's target normalisation: (y − mean)/(std + 1e-8) with the
    /// population standard deviation, clipped to [−2, 2].
    public static func standardise(_ values: [Double]) -> [Double] {
        // Scaled to a largest magnitude of 1 first, so the result does not
        // depend on the objective's units: Ray's absolute 1e-8 flattened reward
        // changes of SD 1e-7 towards 0, and squares overflowed above 1e154
        // (found by a helper). The 1e-8 is then relative to the largest change.
        let scale = values.map(\.magnitude).max() ?? 0
        let scaled = scale > 0 && scale.isFinite ? values.map { $0 / scale } : values
        let mean = scaled.reduce(0, +) / Double(scaled.count)
        let sd = (scaled.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(scaled.count)).squareRoot()
        return scaled.map { min(2, max(-2, ($0 - mean) / (sd + 1e-8))) }
    }

    static func validate(observations: [PB2Observation], time: Double, context: [Double], pending: [[Double]]) throws(PB2Error) {
        guard let first = observations.first else { throw .noObservations }
        let d = first.point.count, c = first.context.count
        guard d >= 1 else { throw .emptyPoint }
        func checkPoint(_ point: [Double], _ what: String) throws(PB2Error) {
            guard point.count == d else { throw .dimensionMismatch(what: what, expected: d, got: point.count) }
            guard point.allSatisfy(\.isFinite) else { throw .notFinite(what: what) }
            guard point.allSatisfy({ (0...1).contains($0) }) else { throw .outsideUnitCube(what: what) }
        }
        func checkContext(_ values: [Double], _ what: String) throws(PB2Error) {
            guard values.count == c else { throw .dimensionMismatch(what: what, expected: c, got: values.count) }
            guard values.allSatisfy(\.isFinite) else { throw .notFinite(what: what) }
        }
        for (i, o) in observations.enumerated() {
            try checkPoint(o.point, "observation \(i)'s point")
            try checkContext(o.context, "observation \(i)'s context")
            guard o.time.isFinite else { throw .notFinite(what: "observation \(i)'s time") }
            guard o.rewardChange.isFinite else { throw .notFinite(what: "observation \(i)'s reward change") }
        }
        guard time.isFinite else { throw .notFinite(what: "the query time") }
        try checkContext(context, "the query context")
        for (i, p) in pending.enumerated() { try checkPoint(p, "pending point \(i)") }
    }
}

/// Min–max normalisation fitted on some values; a constant column maps to 0.
struct MinMax {
    /// Halves of the lowest value and of the range, so that values near
    /// ±1.8e308 normalise without overflow.
    let halfLow: Double, halfRange: Double

    init(_ values: [Double]) {
        halfLow = values.min()! / 2
        halfRange = values.max()! / 2 - halfLow
    }

    func normalise(_ value: Double) -> Double { halfRange > 0 ? (value / 2 - halfLow) / halfRange : 0 }
}
