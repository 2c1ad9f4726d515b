/// The value of one hyperparameter: a number (continuous parameters) or a
/// category name (categorical parameters).
///
/// In JSON a number is a JSON number and a category a JSON string.
public enum HyperparameterValue: Sendable, Hashable, CustomStringConvertible {
    case number(Double)
    case category(String)

    public var number: Double? {
        if case .number(let x) = self { return x }
        return nil
    }

    public var category: String? {
        if case .category(let c) = self { return c }
        return nil
    }

    /// Shortest text that reads back to the same value (`Double.description`
    /// round-trips bit-exactly), as used in schedule files and logs.
    public var description: String {
        switch self {
        case .number(let x): return x.description
        case .category(let c): return c
        }
    }
}

extension HyperparameterValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let x = try? container.decode(Double.self) {
            self = .number(x)
        } else {
            self = .category(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let x): try container.encode(x)
        case .category(let c): try container.encode(c)
        }
    }
}
