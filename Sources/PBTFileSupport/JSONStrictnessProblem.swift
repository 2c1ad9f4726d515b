import Foundation

/// What a strict JSON reader refuses and `JSONDecoder` lets pass: a key
/// written twice in one object (`JSONDecoder` and `JSONSerialization` keep
/// one of the two without a word, so a file a person wrote, `{"lr": …,
/// "lr": …}`, would run with half of what it says), or a comma before an
/// object's or array's end (`[1, 2,]`: Foundation's decoder reads it, Python's
/// `json` and every other strict reader refuse it, so such a file works here
/// only).
public struct JSONStrictnessProblem: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        case duplicateKey(String)
        case trailingComma
        /// A number written as non-zero that a 64-bit float holds only as
        /// zero (`1e-400`): the decoders read it as 0 without a word.
        case underflow(String)
    }

    public var kind: Kind
    /// Where the object is: "" at the top, else `model`, `points[2]`, ….
    public var path: String

    public init(key: String, path: String) {
        kind = .duplicateKey(key)
        self.path = path
    }

    public init(_ kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    /// The key written twice (nil: a trailing comma).
    public var key: String? { if case .duplicateKey(let key) = kind { key } else { nil } }

    /// Whether `number` is written as non-zero but a Double holds it only
    /// as 0 (`1e-400`): for any text format's numbers (a CSV schedule too).
    public static func readsAsZero(_ number: some StringProtocol) -> Bool {
        Double(String(number)) == 0 && number.prefix { $0 != "e" && $0 != "E" }.contains { $0 >= "1" && $0 <= "9" }
    }

    /// The bytes of a JSON number after its first.
    private static let numberBytes = Set("0123456789+-.eE".utf8)

    public var description: String {
        switch kind {
        case .duplicateKey(let key):
            return "key '\(key)' appears twice in " + (path.isEmpty ? "the top-level object" : "the object at \(path)")
                + "; JSON keeps only one of them: remove the other"
        case .trailingComma:
            return "a comma ends " + (path.isEmpty ? "the top-level object or list" : "the object or list at \(path)")
                + " with nothing after it, which JSON does not allow: remove it"
        case .underflow(let number):
            return "the number \(number)" + (path.isEmpty ? "" : " at \(path)")
                + " is too small for a 64-bit float (the smallest is about 5e-324) and would be read as 0: write 0, or a larger value"
        }
    }

    /// The first key written twice in one object of `data`, or comma
    /// before an object's or list's end, or nil (also for text that is not
    /// JSON: the decoder then says what is wrong). Keys are compared as JSON
    /// strings, escapes decoded (`"l\u0072"` is `"lr"`).
    /// `trailingCommas`: let those pass (JSON5 allows them). `underflow`:
    /// also refuse a non-zero number that reads as 0 (`1e-400`).
    public static func first(in data: Data, trailingCommas: Bool = false, underflow: Bool = true) -> JSONStrictnessProblem? {
        /// An open object (its keys so far, the last one, whether a key
        /// comes next) or array (the index of the current element).
        struct Frame {
            var isObject: Bool
            var path: String
            var keys: Set<String> = []
            var last = ""
            var expectingKey = true
            var index = 0
            /// The path of a value starting now inside this container.
            var childPath: String { isObject ? (path.isEmpty ? last : path + "." + last) : "\(path)[\(index)]" }
        }
        var stack: [Frame] = []
        let bytes = [UInt8](data)
        var i = 0
        // The last byte outside strings that is not white space.
        var previous: UInt8 = 0
        while i < bytes.count {
            let byte = bytes[i]
            defer { if ![UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r")].contains(byte) { previous = byte } }
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                stack.append(Frame(isObject: bytes[i] == UInt8(ascii: "{"), path: stack.last?.childPath ?? ""))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !trailingCommas, previous == UInt8(ascii: ","), let frame = stack.last { return JSONStrictnessProblem(.trailingComma, path: frame.path) }
                guard stack.popLast() != nil else { return nil }
            case UInt8(ascii: ","):
                guard !stack.isEmpty else { return nil }
                if stack[stack.count - 1].isObject { stack[stack.count - 1].expectingKey = true } else { stack[stack.count - 1].index += 1 }
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                guard i < bytes.count else { return nil }
                guard stack.last.map({ $0.isObject && $0.expectingKey }) == true else { break }
                let raw = bytes[(start + 1)..<i]
                // Escapes are rare in keys: only those go through a decoder.
                let decoded = raw.contains(UInt8(ascii: "\\")) ? try? JSONDecoder().decode(String.self, from: Data(bytes[start...i]))
                    : String(decoding: raw, as: UTF8.self)
                guard let key = decoded else { return nil }
                // In place (no copy of the frame is held): the set is not copied as it grows.
                guard stack[stack.count - 1].keys.insert(key).inserted else { return JSONStrictnessProblem(key: key, path: stack[stack.count - 1].path) }
                stack[stack.count - 1].last = key
                stack[stack.count - 1].expectingKey = false
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = i
                while i + 1 < bytes.count, Self.numberBytes.contains(bytes[i + 1]) { i += 1 }
                guard underflow else { break }
                let token = String(decoding: bytes[start...i], as: UTF8.self)
                if Self.readsAsZero(token) { return JSONStrictnessProblem(.underflow(token), path: stack.last?.childPath ?? "") }
            default:
                break
            }
            i += 1
        }
        return nil
    }
}
