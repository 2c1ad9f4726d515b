import Foundation

/// Any JSON value, kept as it was read: the replay recipe a schedule file
/// carries for the program that trains (PBT stores and exports it without
/// knowing its fields).
///
/// Integers are kept apart from other numbers, so a 64-bit seed survives a
/// round trip exactly.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .integer(i)
        } else if let u = try? c.decode(UInt64.self) {
            self = .unsigned(u)
        } else if let x = try? c.decode(Double.self) {
            self = .number(x)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .integer(let i): try c.encode(i)
        case .unsigned(let u): try c.encode(u)
        case .number(let x): try c.encode(x)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

extension JSONValue {
    /// The object keys of this value that `known` lacks at the same place,
    /// as paths (`model.foo`): what a decoder skipped without a word.
    public func keys(notIn known: JSONValue, path: String = "") -> [String] {
        switch (self, known) {
        case let (.object(mine), .object(theirs)):
            return mine.keys.sorted().flatMap { key -> [String] in
                let here = path.isEmpty ? key : path + "." + key
                guard let other = theirs[key] else { return [here] }
                return mine[key]!.keys(notIn: other, path: here)
            }
        case let (.array(mine), .array(theirs)):
            return zip(mine, theirs).enumerated().flatMap { $1.0.keys(notIn: $1.1, path: "\(path)[\($0)]") }
        default:
            return []
        }
    }

    /// `value` as JSON (what `JSONEncoder` would write, read back).
    public init<T: Encodable>(encoding value: T) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(value))
    }

    /// This JSON decoded as `type`.
    public func decoded<T: Decodable>(as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: try JSONEncoder().encode(self))
    }
}
