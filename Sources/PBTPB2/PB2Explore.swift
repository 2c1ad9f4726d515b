import Foundation
import PBT
import PBTSeededRNG

/// PB2 as PBT's explore step (`ExploreMethod.pb2`): selection is PBT's
/// (a tournament's winner is still the parent), but the child's
/// hyperparameters are `PB2Bandit`'s suggestion instead of a random
/// perturbation of the parent's.
///
/// What the bandit sees, all read from the trials of the decision's window
/// (the controller's `population`), so the controller stays pure:
/// - one observation per finished trial whose parent is in the window and
///   finished: time = its end step (model iteration), context = its
///   parent's loss, point = its hyperparameters normalised to
///   [0, 1] over each one's `evolutionRange` (log scale for a log
///   hyperparameter), reward change = (parent's loss − its loss) per step,
///   halved (the bandit's standardisation is scale-free, and the half
///   keeps two finite losses' difference finite);
/// - pending points: trials of the window still queued or running, and the
///   children already planned in this decision;
/// - the query: time = the parent's end step + one trial, context = the parent's loss.
///
/// With fewer than `minimumObservations` observations (generation 1: the
/// parents trained from scratch) or when the bandit throws (a kernel matrix
/// LAPACK cannot factor), it explores by perturbation, as Ray Tune's PB2
/// falls back to random exploration before it has data; the trial's log
/// then shows perturbation's operations.
public struct PB2Explore: ExploreStrategy {
    public let bandit: PB2Bandit
    /// Fewer observations than this: explore by perturbation.
    public static let minimumObservations = 2

    public var method: ExploreMethod { .pb2 }

    /// Throws when a hyperparameter is categorical (PB2 models continuous
    /// ones) or `pb2` is invalid.
    public init(settings: PBTSettings, pb2: PB2Settings = PB2Settings()) throws {
        if let categorical = settings.searchSpace.parameters.first(where: { $0.evolutionRange == nil }) {
            throw PBTConfigError.exploreUnsupported(
                method: .pb2, reason: "PB2 models continuous hyperparameters only, and the search space's '\(categorical.name)' is a choice; use explore perturb")
        }
        bandit = try PB2Bandit(settings: pb2)
    }

    public func explore(_ request: ExploreRequest, using rng: inout Xoshiro256) -> (Hyperparameters, [MutationOperation]) {
        let space = request.settings.searchSpace
        let observations = Self.observations(request.population, space)
        let parent = request.parent
        guard observations.count >= Self.minimumObservations, let parentLoss = parent.evaluation else {
            return Perturbation().explore(request, using: &rng)
        }
        let pending = request.population.filter { !$0.status.isTerminal }.map(\.hyperparameters) + request.planned
        let suggestion: PB2Suggestion
        do {
            suggestion = try bandit.suggest(
                observations: observations, time: Double(parent.endStep + request.settings.trialSteps), context: [parentLoss],
                pending: pending.map { Self.point($0, space) }, using: &rng)
        } catch {
            return Perturbation().explore(request, using: &rng)
        }
        var child = Hyperparameters()
        var operations: [MutationOperation] = []
        let how = String(format: "pb2(ucb %.3g, n %d)", suggestion.upperConfidenceBound, suggestion.observationsUsed)
        for (p, coordinate) in zip(space.parameters, suggestion.point) {
            let value = HyperparameterValue.number(Self.value(coordinate, of: p))
            child[p.name] = value
            operations.append(.suggested(name: p.name, from: p.clamped(parent.hyperparameters[p.name] ?? value), to: value, how: how))
        }
        return (child, operations)
    }

    /// One observation per finished trial of `population` whose parent is
    /// there and finished, in trial-id order.
    static func observations(_ population: [TrialRecord], _ space: SearchSpace) -> [PB2Observation] {
        let byID = Dictionary(population.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return population.sorted { $0.id < $1.id }.compactMap { trial in
            guard trial.status == .finished, let loss = trial.evaluation, trial.steps > 0,
                  let parent = trial.parentID.flatMap({ byID[$0] }), parent.status == .finished, let parentLoss = parent.evaluation
            else { return nil }
            // Halved first, so two losses near ±1.8e308 do not overflow their difference (the bandit threw, and PB2 fell back
            // to perturbation for the whole run: found by a helper); the standardisation is scale-free.
            let change = (parentLoss / 2 - loss / 2) / Double(trial.steps)
            guard change.isFinite else { return nil }
            return PB2Observation(time: Double(trial.endStep), context: [parentLoss], point: point(trial.hyperparameters, space),
                                  rewardChange: change)
        }
    }

    /// The hyperparameters in [0, 1]^d: each continuous value placed in its
    /// `evolutionRange`, on a log scale for a log hyperparameter.
    static func point(_ hyperparameters: Hyperparameters, _ space: SearchSpace) -> [Double] {
        space.parameters.map { p in
            let range = p.evolutionRange!
            let x = p.clamped(hyperparameters[p.name] ?? .number(range.lowerBound)).number!
            let (lower, upper, value) = isLog(p) ? (log(range.lowerBound), log(range.upperBound), log(x)) : (range.lowerBound, range.upperBound, x)
            return upper > lower ? min(1, max(0, (value - lower) / (upper - lower))) : 0
        }
    }

    /// The inverse of `point` for one coordinate, clamped to the range.
    static func value(_ coordinate: Double, of p: Hyperparameter) -> Double {
        let range = p.evolutionRange!
        let x = isLog(p)
            ? exp(log(range.lowerBound) + coordinate * (log(range.upperBound) - log(range.lowerBound)))
            : range.lowerBound + coordinate * (range.upperBound - range.lowerBound)
        return min(max(x, range.lowerBound), range.upperBound)
    }

    static func isLog(_ p: Hyperparameter) -> Bool {
        if case .continuous(_, _, .log) = p.domain { return true }
        return false
    }
}

extension ExploreStrategies {
    /// The built-in strategies and PB2's GP bandit (`ExploreMethod.pb2`):
    /// pass it to `PBTCoordinator.open(…, explorers:)` to run with
    /// `settings.explore = .pb2`.
    public static let withPB2 = ExploreStrategies.builtIn.adding(.pb2) { try PB2Explore(settings: $0) }
}
