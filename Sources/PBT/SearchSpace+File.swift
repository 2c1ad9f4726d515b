import PBTFileSupport
import Foundation

/// The search-space file of `pbtwave pbt --space FILE.json`: one key per
/// hyperparameter, each with one prior:
///
///     {"lr": {"log_uniform": [1e-4, 3e-2]}, "momentum": {"uniform": [0.8, 0.99]},
///      "batch": {"choice": [16, 32, 64]}, "optimizer": {"choice": ["sgd", "adam"]}}
///
/// - `log_uniform: [min, max]`: uniform in log space (min > 0); explore
///   multiplies by 0.8 or 1.2, clamped to the bounds.
/// - `uniform: [min, max]`: uniform; explore as above.
/// - `choice: [a, b, …]`: one of a list of numbers or of names; explore moves
///   to a neighbour in the list's order.
///
/// JSON objects have no order, so the parameters are kept in name order: the
/// order of random draws (part of a run's identity) is then the same however
/// the file lists them.
extension SearchSpace {
    /// The priors a space file names (the key a file uses for each).
    enum Prior: String, CaseIterable {
        case logUniform = "log_uniform"
        case uniform
        case choice
    }

    /// Reads a space file's text. Throws `SearchSpaceFileError` naming the
    /// key and what is wrong with it, or `PBTConfigError` for bounds and
    /// choices the space cannot use (`validate()`).
    public init(specification data: Data) throws {
        let json: JSONValue
        do { json = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            // JSONSerialization says where the text is bad, which JSONDecoder does not.
            throw SearchSpaceFileError.notJSON(DecodingErrorText.syntaxError(data) ?? DecodingErrorText.sentence(for: error, data: data))
        }
        if let problem = JSONStrictnessProblem.first(in: data) { throw SearchSpaceFileError.notStrictJSON(problem) }
        guard case .object(let entries) = json else { throw SearchSpaceFileError.notAnObject }
        guard !entries.isEmpty else { throw SearchSpaceFileError.empty }
        self.init(try entries.keys.sorted().map { try Self.parameter($0, entries[$0]!) })
        try validate()
    }

    /// Reads the space file at `path`.
    public init(specificationFile path: String) throws {
        let data: Data
        do throws(SmallFile.Failure) { data = try SmallFile.read(path) } catch {
            throw SearchSpaceFileError.unreadable(path, reason: error.reason)
        }
        try self.init(specification: data)
    }

    /// The space in the file form `init(specification:)` reads.
    public var specification: JSONValue {
        var entries: [String: JSONValue] = [:]
        for p in parameters {
            switch p.domain {
            case .continuous(let lower, let upper, let scale):
                let prior = scale == .log ? Prior.logUniform : .uniform
                entries[p.name] = .object([prior.rawValue: .array([.number(lower), .number(upper)])])
            case .categorical(let choices):
                entries[p.name] = .object([Prior.choice.rawValue: .array(choices.map {
                    switch $0 {
                    case .number(let x): .number(x)
                    case .category(let c): .string(c)
                    }
                })])
            }
        }
        return .object(entries)
    }

    private static func parameter(_ name: String, _ value: JSONValue) throws(SearchSpaceFileError) -> Hyperparameter {
        func fail(_ problem: String) -> SearchSpaceFileError { .invalidParameter(name: name, problem: problem) }
        let known = Prior.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .object(let fields) = value, fields.count == 1, let (key, argument) = fields.first else {
            throw fail("must be an object with exactly one of \(known), e.g. {\"log_uniform\": [1e-4, 3e-2]} (got \(compactJSON(value)))")
        }
        guard let prior = Prior(rawValue: key) else { throw fail("unknown prior '\(key)'; use one of \(known)") }
        switch prior {
        case .logUniform, .uniform:
            guard case .array(let bounds) = argument, bounds.count == 2, let lower = bounds[0].double, let upper = bounds[1].double else {
                throw fail("\(key) needs [min, max], two numbers (got \(compactJSON(argument)))")
            }
            return prior == .logUniform ? .logUniform(name, lower, upper) : .uniform(name, lower, upper)
        case .choice:
            guard case .array(let items) = argument, !items.isEmpty else {
                throw fail("choice needs a non-empty list of numbers or of names (got \(compactJSON(argument)))")
            }
            // A whole number a Double cannot hold exactly would reach the program changed (found by a helper: …993 became …992).
            if let inexact = items.first(where: { item in
                switch item {
                case .integer(let i): return Int64(exactly: Double(i)) != i
                case .unsigned(let u): return UInt64(exactly: Double(u)) != u
                default: return false
                }
            }) {
                throw fail("the choice \(compactJSON(inexact)) is not held exactly (a choice is a double: whole numbers are exact up to "
                           + "2^53 = 9007199254740992); give a smaller number, or a name in quotes")
            }
            let numbers = items.compactMap(\.double)
            if numbers.count == items.count { return .choice(name, numbers) }
            let names = items.compactMap { item -> String? in if case .string(let s) = item { return s } else { return nil } }
            // true/false, null, a list or an object is neither a number nor a name (`[true, false]` was called "a mix").
            if let other = items.first(where: { $0.double == nil && !Self.isString($0) }) {
                throw fail("choice takes numbers or names, and \(compactJSON(other)) is neither (got \(compactJSON(argument)))"
                           + (Self.isBool(other) ? #"; for a switch write ["on", "off"] or [1, 0]"# : ""))
            }
            guard names.count == items.count else {
                throw fail("choice needs all numbers or all names, not a mix (got \(compactJSON(argument)))")
            }
            return .categorical(name, names)
        }
    }
}

extension SearchSpace {
    private static func isString(_ value: JSONValue) -> Bool { if case .string = value { true } else { false } }
    private static func isBool(_ value: JSONValue) -> Bool { if case .bool = value { true } else { false } }
}

extension JSONValue {
    /// The number this value holds (JSON integers included), else nil.
    var double: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .unsigned(let u): return Double(u)
        case .number(let x): return x
        default: return nil
        }
    }
}

/// A search-space file (`--space`) that cannot be read.
public enum SearchSpaceFileError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case unreadable(String, reason: String)
    case notJSON(String)
    case notAnObject
    case empty
    case invalidParameter(name: String, problem: String)
    case notStrictJSON(JSONStrictnessProblem)

    public var description: String {
        let example = #"{"lr": {"log_uniform": [1e-4, 3e-2]}, "momentum": {"uniform": [0.8, 0.99]}, "batch": {"choice": [16, 32, 64]}}"#
        switch self {
        case .unreadable(let path, let reason):
            return "cannot read the search space file \(path): \(reason)"
        case .notJSON(let reason): return "the search space file is not valid JSON: \(reason)"
        case .notAnObject: return "the search space must be a JSON object with one key per hyperparameter, e.g. \(example)"
        case .empty: return "the search space names no hyperparameter; give at least one, e.g. \(example)"
        case .invalidParameter(let name, let problem): return "hyperparameter '\(name)': \(problem)"
        case .notStrictJSON(let problem): return "the search space file: \(problem)"
        }
    }

    public var errorDescription: String? { description }
}
