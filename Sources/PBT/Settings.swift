import Foundation
import PBTSeededRNG

/// How much compute a run may spend.
public enum Budget: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Sum of all trials' training steps (the compute clock).
    case totalSteps(Int)
    /// Number of generations of `population` trials.
    case generations(Int)

    public var description: String {
        switch self {
        case .totalSteps(let n): return "--total-steps \(n)"
        case .generations(let n): return "--generations \(n)"
        }
    }
}

/// Which finished trials become parents.
public enum SelectionStrategy: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Li et al.'s initiator-based binary tournament (the default).
    case tournament
    /// Jaderberg et al.'s truncation: the bottom `fraction` copies the top `fraction`.
    case truncation(fraction: Double)
    /// No exploit and no explore: every trial continues its own lineage with
    /// its own hyperparameters — random search over the prior (or, with
    /// equal bounds, a hand-set fixed value), the baselines PBT is compared
    /// with. A failed lineage is replaced by a fresh draw trained from scratch.
    /// Each lineage trains `trialBudget / population` trials, whatever order
    /// results come in (a failure's refill takes one of the budget's).
    case independent

    public var description: String {
        switch self {
        case .tournament: return "tournament"
        case .truncation(let f): return "truncation(\(f))"
        case .independent: return "independent"
        }
    }
}

/// Everything that defines a PBT run's decisions. Stored with the run; a
/// resumed run must be started with equal settings.
public struct PBTSettings: Sendable, Hashable, Codable {
    /// P: trials per generation.
    public var population: Int
    /// W: trials run at once. P > W is budget mode (generational).
    public var workers: Int
    /// S: training steps per trial.
    public var trialSteps: Int
    public var budget: Budget
    public var searchSpace: SearchSpace
    public var selection: SelectionStrategy
    /// Opponents (and truncation rankings) come from the initiator's own
    /// generation (1) or its own and the previous one (2, the default).
    public var opponentGenerations: Int
    public var mutation: MutationPolicy
    /// How explore picks a child's hyperparameters (`perturb`: `mutation`, as in the paper).
    public var explore: ExploreMethod
    public var seed: UInt64
    /// Results are applied in trial-id order: lineage, hyperparameters and
    /// losses are then a function of the seed and the worker count alone.
    public var deterministic: Bool

    public init(
        population: Int, workers: Int, trialSteps: Int, budget: Budget,
        searchSpace: SearchSpace = .learningRate(), selection: SelectionStrategy = .tournament,
        opponentGenerations: Int = 2, mutation: MutationPolicy = MutationPolicy(), explore: ExploreMethod = .perturb,
        seed: UInt64 = 0, deterministic: Bool = false
    ) {
        self.population = population
        self.workers = workers
        self.trialSteps = trialSteps
        self.budget = budget
        self.searchSpace = searchSpace
        self.selection = selection
        self.opponentGenerations = opponentGenerations
        self.mutation = mutation
        self.explore = explore
        self.seed = seed
        self.deterministic = deterministic
    }

    /// Budget mode (P > W): generation g+1 is created only when P trials of
    /// generation g have finished. Otherwise (P == W) each finished trial
    /// reproduces at once (asynchronous PBT).
    public var isGenerational: Bool { population > workers }

    /// The number of trials the run may create, refills included:
    /// `floor(totalSteps / trialSteps)` or `generations × population`; with
    /// `independent` selection, rounded down to a multiple of the population,
    /// so that every model trains the same number of trials.
    public var trialBudget: Int {
        let trials: Int
        switch budget {
        case .totalSteps(let n): trials = n / trialSteps
        case .generations(let g):
            let (budget, overflow) = g.multipliedReportingOverflow(by: population)
            trials = overflow ? .max : budget
        }
        guard selection == .independent, trials >= population, population > 0 else { return trials }
        return trials / population * population
    }

    /// Worker threads in one process.
    public static let maxWorkers = 4096
    /// Trials in a run (population, generations, budget).
    public static let maxTrials = 1 << 24
    /// Training steps (per trial, and the global step any trial can reach).
    public static let maxSteps = 1 << 40

    /// Checks every setting, Ray Tune style: throws the first problem found
    /// with a message that says what to change.
    public func validate() throws(PBTConfigError) {
        guard workers >= 1 else { throw .invalidWorkers(workers) }
        guard population >= workers else { throw .populationBelowWorkers(population: population, workers: workers) }
        guard trialSteps >= 1 else { throw .invalidTrialSteps(trialSteps) }
        // Sizes past these limits are refused rather than overflowing (a
        // trial's global step is generation × trial steps) or allocating
        // without bound.
        guard workers <= Self.maxWorkers else { throw .tooLarge(field: "workers", value: workers, limit: Self.maxWorkers) }
        guard population <= Self.maxTrials else { throw .tooLarge(field: "population", value: population, limit: Self.maxTrials) }
        guard trialSteps <= Self.maxSteps else { throw .tooLarge(field: "trialSteps", value: trialSteps, limit: Self.maxSteps) }
        let generationSteps = trialSteps * population  // < 2^62: both are bounded above
        switch budget {
        case .totalSteps(let n):
            guard n >= generationSteps else {
                throw .budgetBelowOneGeneration(totalSteps: n, generationSteps: generationSteps)
            }
        case .generations(let g):
            guard g >= 1 else { throw .invalidGenerations(g) }
            guard g <= Self.maxTrials else { throw .tooLarge(field: "generations", value: g, limit: Self.maxTrials) }
        }
        guard trialBudget <= Self.maxTrials else { throw .tooLarge(field: "budget", value: trialBudget, limit: Self.maxTrials) }
        // The deepest lineage ends at (budget) × trial steps.
        guard trialBudget.multipliedReportingOverflow(by: trialSteps).overflow == false,
              trialBudget * trialSteps <= Self.maxSteps else {
            throw .tooLarge(field: "totalSteps", value: trialBudget &* trialSteps, limit: Self.maxSteps)
        }
        try searchSpace.validate()
        if case .truncation(let f) = selection {
            guard f.isFinite, f > 0, f <= 0.5 else { throw .invalidTruncationFraction(f) }
        }
        guard (1...2).contains(opponentGenerations) else { throw .invalidOpponentGenerations(opponentGenerations) }
        try mutation.validate()
    }

    /// Every setting as it is compared and shown: its field (the names of
    /// `differences`) and its value, the search space in `--space` form.
    public var fields: [(field: String, value: String)] {
        [("population", "\(population)"), ("workers", "\(workers)"), ("trialSteps", "\(trialSteps)"), ("budget", "\(budget)"),
         ("searchSpace", compactJSON(searchSpace.specification)), ("selection", "\(selection)"),
         ("opponentGenerations", "\(opponentGenerations)"), ("resampleProbability", "\(mutation.resampleProbability)"),
         ("perturbationFactors", "\(mutation.perturbationFactors)"), ("explore", "\(explore)"), ("seed", "\(seed)"),
         ("deterministic", "\(deterministic)")]
    }

    /// The settings whose values differ from `other`, named as in the stored
    /// config (`population`, `trialSteps`, …), for a resume error.
    public func differences(from other: PBTSettings) -> [SettingDifference] {
        var out: [SettingDifference] = []
        for (mine, theirs) in zip(fields, other.fields) {
            if mine.field == "searchSpace" {
                if searchSpace != other.searchSpace { out.append(searchSpaceDifference(from: other)) }
            } else if mine.value != theirs.value {
                out.append(SettingDifference(field: mine.field, stored: mine.value, given: theirs.value))
            }
        }
        return out
    }

    /// How `other`'s search space differs from this one's (they differ).
    private func searchSpaceDifference(from other: PBTSettings) -> SettingDifference {
        // In `--space` form, not as Swift prints the value; that form
        // has neither the parameters' order nor their mutation ranges,
        // so when it reads the same, say which of those differs.
        let (stored, given) = (compactJSON(searchSpace.specification), compactJSON(other.searchSpace.specification))
        if stored != given { return SettingDifference(field: "searchSpace", stored: stored, given: given) }
        if searchSpace.parameters.map(\.name) != other.searchSpace.parameters.map(\.name) {
            func order(_ s: SearchSpace) -> String { "the parameters in the order " + s.parameters.map(\.name).joined(separator: ", ") }
            return SettingDifference(field: "searchSpace", stored: order(searchSpace), given: order(other.searchSpace))
        }
        func ranges(_ s: SearchSpace) -> String {
            s.parameters.map { p in
                "\(p.name) mutated within \(p.mutationBounds.map { "[\($0.lowerBound), \($0.upperBound)]" } ?? "its prior")"
            }.joined(separator: ", ")
        }
        return SettingDifference(field: "mutationBounds", stored: ranges(searchSpace), given: ranges(other.searchSpace))
    }

    /// The seed handed to trial `id`'s runner: a fixed function of the run
    /// seed and the trial id, so a re-run after a crash trains identically.
    public func trialSeed(_ id: Int) -> UInt64 {
        var g = Xoshiro256(seed: seed ^ (UInt64(id) &* 0x9E37_79B9_7F4A_7C15))
        return g.next()
    }

    /// The controller's random stream at the start of a run.
    public var initialControllerRNG: Xoshiro256 { Xoshiro256(seed: seed).derived(0x5E1E_C7) }
}

extension PBTSettings {
    /// Decodes stored settings. `explore` may be missing: runs stored before
    /// it existed explored by perturbation.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            population: try c.decode(Int.self, forKey: .population), workers: try c.decode(Int.self, forKey: .workers),
            trialSteps: try c.decode(Int.self, forKey: .trialSteps), budget: try c.decode(Budget.self, forKey: .budget),
            searchSpace: try c.decode(SearchSpace.self, forKey: .searchSpace),
            selection: try c.decode(SelectionStrategy.self, forKey: .selection),
            opponentGenerations: try c.decode(Int.self, forKey: .opponentGenerations),
            mutation: try c.decode(MutationPolicy.self, forKey: .mutation),
            explore: try c.decodeIfPresent(ExploreMethod.self, forKey: .explore) ?? .perturb,
            seed: try c.decode(UInt64.self, forKey: .seed), deterministic: try c.decode(Bool.self, forKey: .deterministic))
    }
}

/// A setting whose stored value differs from the one given.
public struct SettingDifference: Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var stored: String
    public var given: String
    public var description: String { "\(field): run has \(stored), command has \(given)" }

    public init(field: String, stored: String, given: String) {
        self.field = field
        self.stored = stored
        self.given = given
    }
}

/// `value` as one line of JSON with sorted keys, for messages.
public func compactJSON<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
}
