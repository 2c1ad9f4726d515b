import PBTSeededRNG

/// How PBT's explore step changes a parent's hyperparameters.
public struct MutationPolicy: Sendable, Hashable, Codable {
    /// Probability of replacing a value by a fresh draw from its prior
    /// (Ray Tune's `resample_probability`; the paper's 0.25 by default).
    public var resampleProbability: Double
    /// Factors a continuous value is multiplied by, one chosen uniformly.
    public var perturbationFactors: [Double]

    public init(resampleProbability: Double = 0.25, perturbationFactors: [Double] = [0.8, 1.2]) {
        self.resampleProbability = resampleProbability
        self.perturbationFactors = perturbationFactors
    }

    public func validate() throws(PBTConfigError) {
        guard resampleProbability.isFinite, (0...1).contains(resampleProbability) else {
            throw .invalidResampleProbability(resampleProbability)
        }
        guard !perturbationFactors.isEmpty, perturbationFactors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw .invalidPerturbationFactors(perturbationFactors)
        }
    }
}

/// What explore did to one hyperparameter, for the trial's log.
public enum MutationOperation: Sendable, Hashable, CustomStringConvertible {
    /// Multiplied by `factor`; `clamped` when the product left the bounds.
    case perturbed(name: String, factor: Double, from: Double, to: Double, clamped: Bool)
    /// Replaced by a draw from the prior.
    case resampled(name: String, from: HyperparameterValue, to: HyperparameterValue)
    /// Categorical: moved to the neighbouring choice on a side drawn at
    /// random (kept, `from == to`, when that side is past the end).
    case shifted(name: String, from: HyperparameterValue, to: HyperparameterValue)
    /// Chosen by a model of the population (e.g. PB2's GP bandit); `how` says how.
    case suggested(name: String, from: HyperparameterValue, to: HyperparameterValue, how: String)

    public var name: String {
        switch self {
        case .perturbed(let n, _, _, _, _), .resampled(let n, _, _), .shifted(let n, _, _), .suggested(let n, _, _, _): return n
        }
    }

    /// One-line form, e.g. `lr*1.2 0.001->0.0012` or `lr~prior 0.001->0.02`.
    public var description: String {
        switch self {
        case .perturbed(let n, let f, let a, let b, let c):
            return "\(n)*\(f) \(a)->\(b)\(c ? " (clamped)" : "")"
        case .resampled(let n, let a, let b):
            return "\(n)~prior \(a)->\(b)"
        case .shifted(let n, let a, let b):
            return "\(n)~neighbour \(a)->\(b)\(a == b ? " (kept: at the end)" : "")"
        case .suggested(let n, let a, let b, let how):
            return "\(n)~\(how) \(a)->\(b)"
        }
    }
}

/// PBT's explore step as a pure function: `config` mutated under `policy`,
/// with the list of operations applied (one per hyperparameter, in the
/// search space's order).
///
/// Continuous values are resampled from the prior with probability
/// `policy.resampleProbability`, otherwise multiplied by one of
/// `policy.perturbationFactors`; categorical values are resampled with the
/// same probability, otherwise moved to a neighbouring choice (or kept, at
/// an end). Every result is
/// clamped to the space (a continuous value to its `evolutionRange`), so the
/// returned configuration is always inside it.
/// Consumes two random words per hyperparameter, whatever the outcome, so a
/// run's random stream does not depend on which branch was taken.
public func explore(
    _ config: Hyperparameters, in space: SearchSpace, policy: MutationPolicy, using rng: inout Xoshiro256
) -> (Hyperparameters, [MutationOperation]) {
    var result = Hyperparameters()
    var operations: [MutationOperation] = []
    for p in space.parameters {
        let current = p.clamped(config[p.name] ?? p.sample(using: &rng))
        let resample = rng.nextUnitDouble() < policy.resampleProbability
        let choice = rng.next()
        if resample {
            var sub = Xoshiro256(seed: choice)
            let fresh = p.sample(using: &sub)
            result[p.name] = fresh
            operations.append(.resampled(name: p.name, from: current, to: fresh))
            continue
        }
        switch (p.domain, current) {
        case (.continuous, .number(let x)):
            let factor = policy.perturbationFactors[Int(choice % UInt64(policy.perturbationFactors.count))]
            let raw = x * factor
            let range = p.evolutionRange!
            let y = min(max(raw, range.lowerBound), range.upperBound)
            result[p.name] = .number(y)
            operations.append(.perturbed(name: p.name, factor: factor, from: x, to: y, clamped: y != raw))
        case (.categorical(let choices), let c):
            // The neighbour on the side `choice` picks; past an end, the value stays (as Ray Tune's PBT shifts, and as
            // a number is clamped at its bound): moving to the only neighbour instead flipped a two-choice
            // value at nearly every explore, so the choice a winner had never stuck.
            let i = choices.firstIndex(of: c)!
            let step = choice & 1 == 0 ? -1 : 1
            let j = min(max(i + step, 0), choices.count - 1)
            result[p.name] = choices[j]
            operations.append(.shifted(name: p.name, from: c, to: choices[j]))
        default:
            preconditionFailure("clamped(_:) returns a value of the parameter's own kind")
        }
    }
    return (result, operations)
}

extension Array where Element == MutationOperation {
    /// The operations as one line, as stored with the trial.
    public var logText: String { map(\.description).joined(separator: "; ") }
}
