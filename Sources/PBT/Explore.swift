import PBTSeededRNG

/// How explore picks a child's hyperparameters: a run's setting
/// (`PBTSettings.explore`), stored and compared on resume. The code behind
/// a method is an `ExploreStrategy`, found by `ExploreStrategies` when a run
/// is opened: PB2's lives in the PBTPB2 module, which PBT does not import (it
/// needs LAPACKE).
public enum ExploreMethod: String, Sendable, Hashable, Codable, CaseIterable {
    /// Multiply by a perturbation factor or resample from the prior
    /// (`explore(_:in:policy:using:)`): the paper's PBT.
    case perturb
    /// PB2 (Parker-Holder et al., NeurIPS 2020): a GP bandit over the
    /// hyperparameters, fitted to how much each finished trial improved.
    case pb2
}

/// What an explore strategy may look at: the trial the child continues
/// from, and the trials the controller sees for this decision.
public struct ExploreRequest: Sendable {
    /// The trial whose checkpoint the child starts from: a tournament's
    /// winner, a truncation donor, a failed trial's parent.
    public var parent: TrialRecord
    /// Every trial of the decision's window (`PBTController.window(for:)`),
    /// of any status, in id order.
    public var population: [TrialRecord]
    /// The hyperparameters of children already planned in this decision
    /// (not in `population` yet): a budget-mode generation is planned at once.
    public var planned: [Hyperparameters]
    public var settings: PBTSettings

    public init(parent: TrialRecord, population: [TrialRecord], planned: [Hyperparameters], settings: PBTSettings) {
        self.parent = parent
        self.population = population
        self.planned = planned
        self.settings = settings
    }
}

/// PBT's explore step. Must be a pure function of the request and the
/// generator's state (the controller is replayed from its seed), return
/// hyperparameters inside `settings.searchSpace`, and say what it did.
public protocol ExploreStrategy: Sendable {
    /// The setting this strategy implements.
    var method: ExploreMethod { get }

    /// The child's hyperparameters and the operations applied (one per
    /// hyperparameter, for the trial's log).
    func explore(_ request: ExploreRequest, using rng: inout Xoshiro256) -> (Hyperparameters, [MutationOperation])
}

/// The paper's explore: `explore(_:in:policy:using:)` on the parent's hyperparameters.
public struct Perturbation: ExploreStrategy {
    public init() {}

    public var method: ExploreMethod { .perturb }

    public func explore(_ request: ExploreRequest, using rng: inout Xoshiro256) -> (Hyperparameters, [MutationOperation]) {
        PBT.explore(request.parent.hyperparameters, in: request.settings.searchSpace, policy: request.settings.mutation, using: &rng)
    }
}

/// The explore strategies a program provides, by method: `builtIn` has
/// `Perturbation`; `ExploreStrategies.withPB2` (the PB2 library) adds PB2.
public struct ExploreStrategies: Sendable {
    /// Builds the strategy for a run's settings; throws when it cannot work with them.
    public typealias Factory = @Sendable (PBTSettings) throws -> any ExploreStrategy

    var factories: [ExploreMethod: Factory]

    public static let builtIn = ExploreStrategies(factories: [.perturb: { _ in Perturbation() }])

    /// These strategies and `factory` for `method`.
    public func adding(_ method: ExploreMethod, _ factory: @escaping Factory) -> ExploreStrategies {
        var copy = self
        copy.factories[method] = factory
        return copy
    }

    /// The strategy for `settings.explore`. Throws
    /// `PBTConfigError.exploreUnavailable` when this program has none, or
    /// the factory's error when the settings do not suit it.
    public func strategy(for settings: PBTSettings) throws -> any ExploreStrategy {
        guard let factory = factories[settings.explore] else { throw PBTConfigError.exploreUnavailable(settings.explore) }
        let strategy = try factory(settings)
        guard strategy.method == settings.explore else {
            throw PBTConfigError.exploreUnsupported(method: settings.explore,
                                                    reason: "the strategy given for it says it implements \(strategy.method.rawValue)")
        }
        return strategy
    }
}
