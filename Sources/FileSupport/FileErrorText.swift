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
