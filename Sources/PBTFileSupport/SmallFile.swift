import Foundation

/// Reads a small file a person gives on the command line (a search space,
/// a model config, a schedule): a regular file, and a pipe or a device too
/// (`--space <(…)`, `/dev/stdin`), which `FileManager.contents(atPath:)`
/// called unreadable (found by a helper).
public enum SmallFile {
    /// Why `read` failed, in a few words ("no such file or folder").
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// The bytes at `path`, at most `limit` of them (more is a failure,
    /// found before the rest is read).
    public static func read(_ path: String, limit: Int = 16 << 20) throws(Failure) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(reason: errno == ENOENT ? "no such file or folder" : String(cString: strerror(errno)).lowercased())
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { throw Failure(reason: "it is a folder; give a file") }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw Failure(reason: String(cString: strerror(errno)).lowercased()) }
            if n == 0 { return data }
            data.append(contentsOf: buffer[0 ..< n])
            if data.count > limit { throw Failure(reason: "it holds more than \(limit) bytes") }
        }
    }
}
