import RealModule
import PBTSeededRNG

/// One assignment of values to the named hyperparameters of a search space.
/// Stored in the trial store as a flat JSON object (`{"lr":0.001}`).
public struct Hyperparameters: Sendable, Hashable, CustomStringConvertible {
    public var values: [String: HyperparameterValue]

    public init(_ values: [String: HyperparameterValue] = [:]) { self.values = values }

    public subscript(name: String) -> HyperparameterValue? {
        get { values[name] }
        set { values[name] = newValue }
    }

    /// Names in sorted order, so that text forms are canonical.
    public var names: [String] { values.keys.sorted() }

    public var description: String { text(realValued: []) }

    /// `name=value …`, the values of `realValued` names with a fraction (`1.0`).
    public func text(realValued: Set<String>) -> String {
        names.map { "\($0)=\(values[$0]!.text(real: realValued.contains($0)))" }.joined(separator: " ")
    }
}

/// How a continuous hyperparameter is sampled and perturbed.
public enum ParameterScale: String, Sendable, Codable, Hashable {
    /// Uniform in log space (bounds must be positive): the learning rate.
    case log
    /// Uniform in the value itself.
    case linear
}

/// A named hyperparameter: its prior (where generation 0 and resampling
/// draw from) and, for a continuous one, the range explore may move it in.
public struct Hyperparameter: Sendable, Hashable, Codable {
    public enum Domain: Sendable, Hashable, Codable {
        /// A real value in `[lower, upper]`, sampled uniformly on `scale`.
        case continuous(lower: Double, upper: Double, scale: ParameterScale)
        /// One of an ordered list of choices, all category names or all
        /// numbers (e.g. batch sizes); the order defines neighbours.
        case categorical([HyperparameterValue])
    }

    public var name: String
    /// The prior.
    public var domain: Domain
    /// Where explore may take a continuous value (perturbation is clamped to
    /// it); it must contain the prior's bounds. nil: the prior's bounds, as
    /// in the paper. A wider range lets PBT leave the range it started in,
    /// e.g. a learning rate that decays below the prior late in training.
    public var mutationBounds: ClosedRange<Double>?

    public init(name: String, domain: Domain, mutationBounds: ClosedRange<Double>? = nil) {
        self.name = name
        self.domain = domain
        self.mutationBounds = mutationBounds
    }

    public static func logUniform(_ name: String, _ lower: Double, _ upper: Double, mutateWithin: ClosedRange<Double>? = nil) -> Hyperparameter {
        Hyperparameter(name: name, domain: .continuous(lower: lower, upper: upper, scale: .log), mutationBounds: mutateWithin)
    }

    public static func uniform(_ name: String, _ lower: Double, _ upper: Double, mutateWithin: ClosedRange<Double>? = nil) -> Hyperparameter {
        Hyperparameter(name: name, domain: .continuous(lower: lower, upper: upper, scale: .linear), mutationBounds: mutateWithin)
    }

    public static func categorical(_ name: String, _ choices: [String]) -> Hyperparameter {
        Hyperparameter(name: name, domain: .categorical(choices.map(HyperparameterValue.category)))
    }

    /// One of a list of numbers (e.g. batch sizes), kept as numbers.
    public static func choice(_ name: String, _ values: [Double]) -> Hyperparameter {
        Hyperparameter(name: name, domain: .categorical(values.map(HyperparameterValue.number)))
    }

    /// Checks the prior; throws the first problem found.
    public func validate() throws(PBTConfigError) {
        guard HyperparameterValue.isValidName(name) else {
            throw .invalidHyperparameterName(name)
        }
        switch domain {
        case .continuous(let lower, let upper, let scale):
            guard lower.isFinite, upper.isFinite, lower <= upper, (upper - lower).isFinite else {
                throw .invalidBounds(name: name, lower: lower, upper: upper)
            }
            if scale == .log, lower <= 0 { throw .nonPositiveLogBound(name: name, lower: lower) }
            if let range = mutationBounds {
                guard range.lowerBound.isFinite, range.upperBound.isFinite, (range.upperBound - range.lowerBound).isFinite,
                      range.lowerBound <= lower, range.upperBound >= upper else {
                    throw .invalidMutationBounds(name: name, reason: "[\(range.lowerBound), \(range.upperBound)] must be finite (its width too) and contain the prior [\(lower), \(upper)]")
                }
                if scale == .log, range.lowerBound <= 0 {
                    throw .invalidMutationBounds(name: name, reason: "it is log-scaled, so the lower bound must be positive (got \(range.lowerBound))")
                }
            }
        case .categorical(let choices):
            if mutationBounds != nil { throw .invalidMutationBounds(name: name, reason: "only a continuous hyperparameter has a mutation range") }
            let numbers = choices.compactMap(\.number)
            let categories = choices.compactMap(\.category)
            // Said as what it is (a helper found the whole rule list given for a duplicate).
            if let twice = choices.indices.first(where: { i in choices[..<i].contains(choices[i]) }), numbers.isEmpty || categories.isEmpty {
                throw .duplicateChoice(name: name, choice: choices[twice].category.map { "'\($0)'" } ?? choices[twice].description)
            }
            guard !choices.isEmpty, numbers.isEmpty || categories.isEmpty,
                  numbers.allSatisfy(\.isFinite),
                  categories.allSatisfy(HyperparameterValue.isValidCategory)
            else {
                throw .invalidChoices(name: name, choices: choices.map(\.description))
            }
        }
    }

    /// A draw from the prior. Consumes exactly one random word.
    public func sample(using rng: inout Xoshiro256) -> HyperparameterValue {
        let u = rng.nextUnitDouble()
        switch domain {
        case .continuous(let lower, let upper, let scale):
            let x: Double
            switch scale {
            case .log:
                let (a, b) = (Double.log(lower), Double.log(upper))
                x = Double.exp(a + u * (b - a))
            case .linear:
                x = lower + u * (upper - lower)
            }
            return .number(min(max(x, lower), upper))
        case .categorical(let choices):
            return choices[min(Int(u * Double(choices.count)), choices.count - 1)]
        }
    }

    /// A continuous value's range under explore: `mutationBounds`, else the
    /// prior's bounds. nil for a categorical hyperparameter.
    public var evolutionRange: ClosedRange<Double>? {
        guard case .continuous(let lower, let upper, _) = domain else { return nil }
        return mutationBounds ?? lower...upper
    }

    /// `value` forced into the domain: numbers clamped to `evolutionRange`
    /// (NaN to its lower bound), values that are not a choice replaced by the first.
    public func clamped(_ value: HyperparameterValue) -> HyperparameterValue {
        switch (evolutionRange, domain, value) {
        case (let range?, _, .number(let x)):
            return .number(x.isNaN ? range.lowerBound : min(max(x, range.lowerBound), range.upperBound))
        case (let range?, _, _):
            return .number(range.lowerBound)
        case (nil, .categorical(let choices), _) where choices.contains(value):
            return value
        case (nil, .categorical(let choices), _):
            return choices[0]
        case (nil, .continuous, _):
            preconditionFailure("a continuous hyperparameter always has an evolution range")
        }
    }

    /// Whether explore could produce `value`: a number in `evolutionRange`, or one of the choices.
    public func contains(_ value: HyperparameterValue) -> Bool {
        switch (domain, value) {
        case (.continuous, .number(let x)): return evolutionRange!.contains(x)
        case (.categorical(let choices), _): return choices.contains(value)
        default: return false
        }
    }
}

/// The hyperparameters PBT tunes: an ordered list of named priors. The order
/// fixes the order of random draws, so it is part of a run's identity.
public struct SearchSpace: Sendable, Hashable, Codable {
    public var parameters: [Hyperparameter]

    public init(_ parameters: [Hyperparameter]) { self.parameters = parameters }

    /// The continuous hyperparameters' names: their values are written with
    /// a fraction (`1.0`) wherever a program or a file reads them.
    public var realValued: Set<String> { Set(parameters.filter { $0.evolutionRange != nil }.map(\.name)) }

    /// The experiment's space: only the learning rate, log-uniform, explored
    /// within `mutateWithin` (nil: within the prior).
    public static func learningRate(min lower: Double = 1e-4, max upper: Double = 3e-2, mutateWithin: ClosedRange<Double>? = nil) -> SearchSpace {
        SearchSpace([.logUniform("lr", lower, upper, mutateWithin: mutateWithin)])
    }

    public func validate() throws(PBTConfigError) {
        guard !parameters.isEmpty else { throw .emptySearchSpace }
        var seen = Set<String>()
        var shellNames: [String: String] = [:]
        for p in parameters {
            try p.validate()
            guard seen.insert(p.name).inserted else { throw .duplicateHyperparameter(p.name) }
            // A program reads `a-b` as PBT_HP_a_b too (shells cannot read '-').
            let shellName = p.name.replacingOccurrences(of: "-", with: "_")
            if let other = shellNames.updateValue(p.name, forKey: shellName) {
                throw .collidingHyperparameterNames(other, p.name, shellName: shellName)
            }
        }
    }

    /// A draw from the prior: one random word per parameter, in order.
    public func sample(using rng: inout Xoshiro256) -> Hyperparameters {
        var h = Hyperparameters()
        for p in parameters { h[p.name] = p.sample(using: &rng) }
        return h
    }

    public func contains(_ h: Hyperparameters) -> Bool {
        h.values.count == parameters.count && parameters.allSatisfy { p in h[p.name].map(p.contains) ?? false }
    }
}

// MARK: - Random helpers with a fixed algorithm

extension Xoshiro256 {
    /// Uniform in `0..<n` by rejection sampling. Written out (rather than
    /// `Int.random(in:using:)`) so the sequence never changes with the
    /// standard library's algorithm: deterministic runs stay reproducible.
    mutating func uniformIndex(_ n: Int) -> Int {
        precondition(n > 0, "uniformIndex needs a non-empty range")
        let bound = UInt64(n)
        let limit = UInt64.max - UInt64.max % bound
        while true {
            let x = next()
            if x < limit { return Int(x % bound) }
        }
    }
}
