import Foundation

/// Whole-file writes that a crash cannot leave half done: the bytes go to a
/// temporary file beside the destination, which is then renamed over it, so
/// a reader sees the old file or the complete new one, never a torn one.
/// (rename is atomic within one directory on every POSIX file system, local
/// or NFS.) With `durable`, the file and its directory are also fsynced, so
/// the write survives power loss; without, it survives any process crash.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL, durable: Bool = false) throws(AtomicFileError) {
        try write(data, toPath: url.path, durable: durable)
    }

    /// Writes `bytes` (`Data`, `[UInt8]`, …) to `path`.
    public static func write(_ bytes: some ContiguousBytes, toPath path: String, durable: Bool = false) throws(AtomicFileError) {
        var failure: AtomicFileError?
        bytes.withUnsafeBytes { raw in
            do throws(AtomicFileError) { try write(raw, toPath: path, durable: durable) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// A fresh temporary path beside `path`: a hidden file in the same
    /// directory (so folder listings skip it and rename stays atomic), for
    /// writers that produce the file themselves and then rename it over `path`.
    /// A name too long for that (a file system takes 255 bytes) is cut to
    /// its first characters (a 247-byte name could not be written: found
    /// by a helper).
    public static func temporaryPath(for path: String) -> String {
        let (directory, name) = split(path)
        let suffix = ".\(getpid()).\(UInt32.random(in: 0 ... .max)).tmp"
        var kept = Substring(name)
        while kept.utf8.count + suffix.utf8.count + 1 > 255 { kept = kept.dropLast() }
        return "\(directory).\(kept)\(suffix)"
    }

    /// Where a write to `path` lands: `path`, or for a symbolic link the
    /// file it points to (so the link stays a link, as `cp` and editors
    /// leave it). Throws when that exists and is not a regular file — a
    /// device such as /dev/null, a pipe, a socket or a folder — which
    /// renaming a new file over it would silently replace.
    public static func destination(for path: String) throws(AtomicFileError) -> String {
        if let stream = processStream(path) {
            throw AtomicFileError(path: path, reason: "it is \(stream), a file a process has open, which writing a file there would "
                                  + "replace (and what else was written to it be lost); give the path of a file", code: EINVAL)
        }
        var target = path
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK {
            if let resolved = realpath(path, nil) {
                target = String(cString: resolved)
                free(resolved)
            } else if let text = symbolicLinkTarget(path) {
                // A dangling link: the file it names, created by the write.
                target = text.hasPrefix("/") ? text : split(path).directory + text
            }
        }
        if stat(target, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            let kind = nonRegularFileText(mode: info.st_mode)
            throw AtomicFileError(path: path, reason: "it is \(kind), which writing a file there would replace; give the path of a file", code: EINVAL)
        }
        return target
    }

    /// What `path` names if it, or a symbolic link on the way to its file,
    /// is one of a process's open files (`/dev/stdout`, `/dev/fd/N`,
    /// `/proc/self/fd/N`), or nil. Such a link resolves to the file a shell
    /// redirected, and a new file renamed over that would replace it (found
    /// by a helper: `--output /dev/stdout --replace >> log` emptied the log).
    /// Each hop's folder is resolved first, so a link to a folder on the
    /// way (`ln -s /dev/fd devfd`, then `devfd/1`) is seen through (found by
    /// the re-check helper).
    static func processStream(_ path: String) -> String? {
        var hop = path
        for _ in 0..<40 {
            let (directory, name) = split(hop)
            if let resolved = realpath(directory.isEmpty ? "." : directory, nil) {
                hop = String(cString: resolved) + "/" + name
                free(resolved)
            }
            if hop.hasPrefix("/dev/fd/") || hop.hasPrefix("/proc/") && hop.contains("/fd/")
                || ["/dev/stdin", "/dev/stdout", "/dev/stderr"].contains(hop) {
                return hop == path ? path : "\(path) (\(hop))"
            }
            guard let next = symbolicLinkTarget(hop) else { return nil }
            hop = next.hasPrefix("/") ? next : split(hop).directory + next
        }
        return nil
    }

    static func split(_ path: String) -> (directory: String, name: String) {
        let slash = path.lastIndex(of: "/")
        return (slash.map { String(path[...$0]) } ?? "", slash.map { String(path[path.index(after: $0)...]) } ?? path)
    }

    public static func write(_ bytes: UnsafeRawBufferPointer, toPath given: String, durable: Bool) throws(AtomicFileError) {
        try write(bytes, toPath: given, durable: durable, permissionsOf: nil)
    }

    /// The permission bits of the regular file at `path` (nil: none there).
    /// A file written over keeps them, as `cp` over it would: a private 0600
    /// file stays private, a read-only 0444 one read-only (the new file
    /// was 0644 whatever the old one had).
    static func permissions(ofFileAt path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return info.st_mode & 0o7777
    }

    /// Gives the file at `temporary` the permissions of the regular file at
    /// `path`, if there is one: for writers that make the file themselves
    /// (`temporaryPath(for:)`) before renaming it over `path`.
    public static func keepPermissions(of path: String, on temporary: String) {
        if let mode = permissions(ofFileAt: path) { _ = chmod(temporary, mode) }
    }

    /// Writes `bytes` over `given` (through `destination`), the new file with
    /// the permissions of `permissionsOf`'s file if it exists, else of the
    /// file written over, else 0644 less the umask.
    static func write(_ bytes: UnsafeRawBufferPointer, toPath given: String, durable: Bool,
                      permissionsOf model: String?) throws(AtomicFileError) {
        let path = try destination(for: given)
        let directory = split(path).directory
        let temporary = temporaryPath(for: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AtomicFileError(path: path, reason: "cannot create a file in \(directory.isEmpty ? "." : directory): \(errorText())",
                                  code: errno)
        }
        var offset = 0
        var failure: (reason: String, code: Int32)?
        if let mode = permissions(ofFileAt: model ?? path), fchmod(fd, mode) != 0 {
            failure = ("cannot give the new file the old one's permissions \(String(mode, radix: 8)): \(errorText())", errno)
        }
        while failure == nil, offset < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = ("write failed: \(errorText())", n == 0 ? ENOSPC : errno); break }
            offset += n
        }
        if failure == nil, durable, fsync(fd) != 0 { failure = ("fsync failed: \(errorText())", errno) }
        // close can report a delayed write error (NFS, quotas).
        if close(fd) != 0, failure == nil { failure = ("close failed: \(errorText())", errno) }
        if failure == nil, rename(temporary, path) != 0 { failure = ("rename into place failed: \(errorText())", errno) }
        if let failure {
            unlink(temporary)
            throw AtomicFileError(path: path, reason: failure.reason, code: failure.code)
        }
        if durable {
            let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
            if dfd >= 0 { fsync(dfd); close(dfd) }
        }
    }

    /// Writes several files all or nothing, as far as a file system allows:
    /// every file is first written in full beside its destination, and only
    /// then are they renamed into place. If any write fails (a full disk),
    /// the files written so far are removed and every destination keeps its
    /// old contents. (Renames need no space, so the second phase does not
    /// fail for lack of it.)
    public static func writeAll(_ files: [(path: String, data: Data)], durable: Bool = false) throws(AtomicFileError) {
        var staged: [(temporary: String, path: String)] = []
        func discard(_ from: Int = 0) { for s in staged[from...] { unlink(s.temporary) } }
        for file in files {
            let target: String
            do throws(AtomicFileError) { target = try destination(for: file.path) } catch {
                discard()
                throw error
            }
            let temporary = temporaryPath(for: target)
            var failed: AtomicFileError?
            file.data.withUnsafeBytes { raw in
                do throws(AtomicFileError) { try write(raw, toPath: temporary, durable: durable, permissionsOf: target) } catch { failed = error }
            }
            if let error = failed {
                discard()
                throw AtomicFileError(path: file.path, reason: error.reason, code: error.code)
            }
            staged.append((temporary, target))
        }
        for (i, s) in staged.enumerated() where rename(s.temporary, s.path) != 0 {
            let failure = AtomicFileError(path: s.path, reason: "rename into place failed: \(errorText())", code: errno)
            discard(i)
            throw failure
        }
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}

/// A failed atomic write: which file, and why.
public struct AtomicFileError: Error, Hashable, CustomStringConvertible, LocalizedError {
    public var path: String
    public var reason: String
    /// The `errno` of the failed call (0: unknown).
    public var code: Int32

    public init(path: String, reason: String, code: Int32 = 0) {
        self.path = path
        self.reason = reason
        self.code = code
    }

    /// The disk (or the user's quota) is full.
    public var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT }
    public var description: String { "cannot write \(path): \(reason)" }
    public var errorDescription: String? { description }
}
