import Foundation
import Synchronization

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

    /// What was read from pipes and devices, by the file's identity (its
    /// device and inode, not its path: `/dev/fd/5` names another pipe once
    /// the first is closed): such a file can be read only once, and a
    /// command reads its flags' files when it checks them and again when it
    /// runs (found by a helper: `--space <(…)` was empty the second time).
    private static let streams = Mutex<[FileIdentity: Data]>([:])

    private struct FileIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    /// The bytes at `path`, at most `limit` of them (more is a failure,
    /// found before the rest is read). A pipe, socket or device is read once in
    /// a process; later reads of the same file give what the first got.
    public static func read(_ path: String, limit: Int = 16 << 20) throws(Failure) -> Data {
        // A named pipe read before is not opened again: the open would wait for a new writer (found by the re-check helper).
        var named = stat()
        if stat(path, &named) == 0, named.st_mode & S_IFMT == S_IFIFO,
           let kept = streams.withLock({ $0[FileIdentity(device: UInt64(named.st_dev), inode: UInt64(named.st_ino))] }) {
            return kept
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(reason: errno == ENOENT ? "no such file or folder" : String(cString: strerror(errno)).lowercased())
        }
        defer { close(fd) }
        var info = stat()
        let statted = fstat(fd, &info) == 0
        if statted, (info.st_mode & S_IFMT) == S_IFDIR { throw Failure(reason: "it is a folder; give a file") }
        guard statted, [S_IFIFO, S_IFSOCK, S_IFCHR].contains(info.st_mode & S_IFMT) else { return try readAll(fd, limit: limit) }
        let identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if let kept = streams.withLock({ $0[identity] }) { return kept }
        let data = try readAll(fd, limit: limit)
        streams.withLock { $0[identity] = data }
        return data
    }

    private static func readAll(_ fd: Int32, limit: Int) throws(Failure) -> Data {
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
