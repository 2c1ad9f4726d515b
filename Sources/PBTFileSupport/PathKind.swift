import Foundation

/// What is at a path, for the checks that refuse a file where a folder is
/// wanted or the reverse (links followed, as `stat` does).
public enum PathKind: Sendable, Hashable {
    case missing, file, folder

    public init(of path: String) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            self = .missing
            return
        }
        self = isFolder.boolValue ? .folder : .file
    }
}

/// What a file that is not a regular one is, for messages, from its
/// `stat` mode: "a folder", "a device", "a named pipe", "a socket", else
/// "not a regular file".
public func nonRegularFileText(mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: "a folder"
    case S_IFCHR, S_IFBLK: "a device"
    case S_IFIFO: "a named pipe"
    case S_IFSOCK: "a socket"
    default: "not a regular file"
    }
}

/// The text of the symbolic link at `path` (its target as written, maybe
/// relative), or nil when `path` is not a link.
public func symbolicLinkTarget(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink(path, &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: buffer[0 ..< count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
