import Foundation

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
    /// round-trips bit-exactly; a whole number is written without ".0", as
    /// JSON writes it, so a batch of 64 reads `64` in every file and log),
    /// as used in schedule files and logs.
    public var description: String {
        switch self {
        case .number(let x):
            if x.rounded() == x, abs(x) < 0x1p53, !(x == 0 && x.sign == .minus) { return String(Int64(x)) }
            return x.description
        case .category(let c): return c
        }
    }

    /// `description`, but a whole number with a fraction (`1.0`) if `real`:
    /// a continuous hyperparameter's value, which explore may clamp to a
    /// whole bound, written as every trial's program read it.
    public func text(real: Bool) -> String {
        if real, case .number(let x) = self, x.isFinite { return x.description }
        return description
    }

    /// The value as JSON: a whole number without a fraction, so a program
    /// can read `32` (and `10000000000000000`, found by a helper: it was
    /// `1e+16`) as an integer, unless `real` (a continuous hyperparameter's
    /// value: `1.0`, as Swift writes a Double); a category as a JSON string,
    /// escaped (`isValidCategory` refuses the characters that need it, but a
    /// run stored before it did may hold them). A number that is not finite is `null`.
    public func jsonText(real: Bool) -> String {
        switch self {
        case .number(let x) where !real && x.isFinite && x == x.rounded():
            return abs(x) < 0x1p63 ? String(Int64(x)) : String(format: "%.0f", x)
        case .number(let x): return x.isFinite ? x.description : "null"
        case .category(let c):
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            return (try? encoder.encode(c)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
        }
    }
}

extension HyperparameterValue {
    /// Whether `name` can name a hyperparameter, in a run and in a schedule
    /// file: non-empty letters, digits, `_` or `-`, and not `step` (the
    /// files' first column).
    public static func isValidName(_ name: String) -> Bool {
        // ASCII: a program reads each as the variable PBT_HP_<name>, which shells spell so only.
        !name.isEmpty && name != "step" && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// Whether `c` can be a category: one that reads back from a schedule
    /// file (CSV too) as the same category. Non-empty, without `,`, `"`,
    /// `\` or a line break, without white space at either end, and not a
    /// number (`"64"`, `"inf"`: a CSV file would read those as numbers).
    public static func isValidCategory(_ c: String) -> Bool {
        guard let first = c.first, let last = c.last, !first.isWhitespace, !last.isWhitespace else { return false }
        // A control character (tab, ESC, NUL) broke strict JSON readers of PBT_HYPERPARAMETERS, and a NUL the store (found by a helper).
        return !c.contains { $0 == "," || $0 == "\"" || $0 == "\\" || $0.isNewline } && Double(c) == nil
            && !c.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// What `isValidCategory` asks, for messages.
    public static let categoryRule = "non-empty, without ',', '\"', '\\', a line break or another control character (a tab, ESC, NUL), without white space at either end, and not a number"
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
