import Foundation

/// A key written twice in one JSON object. `JSONDecoder` and
/// `JSONSerialization` keep one of the two without a word, so a file a
/// person wrote (`{"lr": …, "lr": …}`) would run with half of what it says.
public struct JSONDuplicateKey: Equatable, Sendable, CustomStringConvertible {
    public var key: String
    /// Where the object is: "" at the top, else `model`, `points[2]`, ….
    public var path: String

    public init(key: String, path: String) {
        self.key = key
        self.path = path
    }

    public var description: String {
        "key '\(key)' appears twice in " + (path.isEmpty ? "the top-level object" : "the object at \(path)")
            + "; JSON keeps only one of them: remove the other"
    }

    /// The first key written twice in one object of `data`, or nil (also
    /// for text that is not JSON: the decoder then says what is wrong).
    /// Keys are compared as JSON strings, escapes decoded (`"l\u0072"` is `"lr"`).
    public static func first(in data: Data) -> JSONDuplicateKey? {
        enum Container { case object(keys: Set<String>, last: String?, expectingKey: Bool, path: String), array(index: Int, path: String) }
        var stack: [Container] = []
        let bytes = [UInt8](data)
        var i = 0
        /// The path of a value starting now, inside the innermost container.
        func childPath() -> String {
            switch stack.last {
            case .object(_, let last, _, let path)?: return path.isEmpty ? (last ?? "") : path + "." + (last ?? "")
            case .array(let index, let path)?: return "\(path)[\(index)]"
            case nil: return ""
            }
        }
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "{"):
                stack.append(.object(keys: [], last: nil, expectingKey: true, path: childPath()))
            case UInt8(ascii: "["):
                stack.append(.array(index: 0, path: childPath()))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard !stack.isEmpty else { return nil }
                stack.removeLast()
            case UInt8(ascii: ","):
                switch stack.last {
                case .object(let keys, let last, _, let path)?: stack[stack.count - 1] = .object(keys: keys, last: last, expectingKey: true, path: path)
                case .array(let index, let path)?: stack[stack.count - 1] = .array(index: index + 1, path: path)
                case nil: return nil
                }
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                guard i < bytes.count else { return nil }
                if case .object(var keys, _, true, let path)? = stack.last {
                    stack[stack.count - 1] = .array(index: 0, path: "")  // `keys` alone holds the set now: inserted in place
                    let raw = bytes[(start + 1)..<i]
                    // Escapes are rare in keys: only those go through a decoder.
                    let decoded = raw.contains(UInt8(ascii: "\\")) ? try? JSONDecoder().decode(String.self, from: Data(bytes[start...i]))
                        : String(decoding: raw, as: UTF8.self)
                    guard let key = decoded else { return nil }
                    if !keys.insert(key).inserted { return JSONDuplicateKey(key: key, path: path) }
                    stack[stack.count - 1] = .object(keys: keys, last: key, expectingKey: false, path: path)
                }
            default:
                break
            }
            i += 1
        }
        return nil
    }
}
