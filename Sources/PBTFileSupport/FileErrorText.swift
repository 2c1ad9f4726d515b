import Foundation

/// Foundation's file errors in one sentence that names the file and the
/// cause, instead of `The operation could not be completed.
/// (NSCocoaErrorDomain error 256.)`.
public enum FileErrorText {
    /// `error` as "cannot read PATH: cause" if it is a Foundation file
    /// error, else nil.
    public static func sentence(for error: any Error) -> String? {
        guard let error = error as? CocoaError, let cause = cause(of: error) else { return nil }
        let path = error.filePath ?? error.url?.path ?? "a file"
        let verb = error.code == .fileNoSuchFile ? "open" : error.code.rawValue >= CocoaError.Code.fileWriteUnknown.rawValue ? "write" : "read"
        return "cannot \(verb) \(path): \(cause)"
    }

    /// Why a Foundation file operation failed, in a few words ("no such
    /// file or folder", "is a directory"), or nil for other errors.
    public static func cause(of error: any Error) -> String? {
        guard let error = error as? CocoaError else { return nil }
        switch error.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or folder"
        case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
        case .fileWriteOutOfSpace: return "the disk is full"
        case .fileWriteVolumeReadOnly: return "the file system is read-only"
        case .fileWriteFileExists: return "it already exists"
        case .fileReadInapplicableStringEncoding: return "it is not UTF-8 text"
        default: return posixCode(error).map { String(cString: strerror($0)).lowercased() } ?? "error \(error.code.rawValue)"
        }
    }

    /// The POSIX error under a Foundation error, if it names one.
    static func posixCode(_ error: CocoaError) -> Int32? {
        guard let underlying = error.userInfo[NSUnderlyingErrorKey] else { return nil }
        let ns = (underlying as? NSError) ?? (underlying as? any Error).map { $0 as NSError }
        guard let ns, ns.domain == NSPOSIXErrorDomain else { return nil }
        return Int32(ns.code)
    }
}

/// A `JSONDecoder` failure in one sentence that names the field, instead of
/// Swift's dump of the error (`typeMismatch(Swift.Int, Swift.DecodingError.Context(…`).
public enum DecodingErrorText {
    /// "field residualChannels: expected a whole number", "missing field
    /// dilations", "not valid JSON (…)"; other errors as they describe themselves.
    /// `data`, the bytes that were decoded, tells a number that does not
    /// fit its field from broken JSON (Foundation reports both alike).
    public static func sentence(for error: any Error, data: Data? = nil) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        if let syntax = data.flatMap(syntaxError) { return "not valid JSON (\(syntax))" }
        func field(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case let .keyNotFound(key, context):
            let parent = field(context)
            return "missing field \(parent.isEmpty ? "" : parent + ".")\(key.stringValue)"
        case let .valueNotFound(type, context):
            return "field \(field(context)) is null; expected \(kind(type))"
        case let .typeMismatch(type, context):
            return context.codingPath.isEmpty ? "expected \(kind(type)) at the top level" : "field \(field(context)): expected \(kind(type))"
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                if let data {  // valid JSON (checked above), so a value did not fit
                    // Foundation names no field here: name the numbers that could be the one.
                    let suspects = unusualNumbers(in: data)
                    return "a number does not fit its field (a fraction where a whole number is expected, or beyond the field's range)"
                        + (suspects.isEmpty ? "" : "; look at " + suspects.prefix(3).joined(separator: ", "))
                }
                let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                return "not valid JSON" + (underlying.map { " (\($0))" } ?? "")
            }
            // Foundation's text here is e.g. "Parsed JSON number <8.5> does not fit in Int."
            return "field \(field(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// The fields of `data` that hold a fraction or a number beyond ±2^53
    /// ("residualChannels (8.5)"), in the order found.
    static func unusualNumbers(in data: Data) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: data) else { return [] }
        var found: [String] = []
        func walk(_ value: Any, _ path: String) {
            if let dictionary = value as? [String: Any] {
                for key in dictionary.keys.sorted() { walk(dictionary[key]!, path.isEmpty ? key : path + "." + key) }
            } else if let array = value as? [Any] {
                for (i, element) in array.enumerated() { walk(element, path + "[\(i)]") }
            } else if let number = value as? NSNumber {  // (true and false are 1 and 0: never unusual)
                let x = number.doubleValue
                if x.rounded() != x || abs(x) > 9_007_199_254_740_992 { found.append("\(path.isEmpty ? "the value" : path) (\(number))") }
            }
        }
        walk(object, "")
        return found
    }

    /// What JSONSerialization finds wrong with `data` as JSON ("Unexpected
    /// end of file during JSON parse.", "Number 1e400 is not representable
    /// in Swift."), or nil when it is valid. JSONDecoder says only "The
    /// given data was not valid JSON." for all of these.
    public static func syntaxError(_ data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        }
    }

    private static func kind(_ type: Any.Type) -> String {
        switch type {
        case is any BinaryInteger.Type: "a whole number"
        case is any BinaryFloatingPoint.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default: String(describing: type).hasPrefix("Array") ? "a list" : String(describing: type).hasPrefix("Dictionary") ? "an object" : "\(type)"
        }
    }
}
