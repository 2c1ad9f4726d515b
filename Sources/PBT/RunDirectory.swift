import Foundation

/// A PBT run on disk: `RUN_DIR/pbt.sqlite` (the trial store, one run named
/// `pbt`), `RUN_DIR/checkpoints/`, and `RUN_DIR/lock`, which the process
/// driving the run holds with `flock` so two processes never drive one run
/// directory at once (the OS drops the lock when the process dies, even by
/// SIGKILL).
public final class RunDirectory: Sendable {
    public static let storeFileName = "pbt.sqlite"
    public static let runName = "pbt"

    public let url: URL
    public let store: SQLiteTrialStore
    private let lockDescriptor: Int32?

    public let storePath: String

    /// Opens `url`. With `create`, makes the directory and store if needed;
    /// without, a directory without a store is an error. With `lock`, takes
    /// the run directory's exclusive lock or throws `PBTStoreError.locked`.
    /// `storePath` puts the SQLite store elsewhere (default
    /// `RUN_DIR/pbt.sqlite`, `pbtwave pbt --store sqlite:PATH`).
    public init(_ url: URL, create: Bool, lock: Bool, storePath: String? = nil) throws {
        self.url = url.standardizedFileURL
        let fm = FileManager.default
        let storePath = storePath ?? self.url.appendingPathComponent(Self.storeFileName).path
        self.storePath = storePath
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: self.url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw RunDirectoryError.notADirectory(self.url.path) }
            if !create, !fm.fileExists(atPath: storePath) { throw RunDirectoryError.noRun(self.url.path) }
        } else {
            guard create else { throw RunDirectoryError.missing(self.url.path) }
            try fm.createDirectory(at: self.url, withIntermediateDirectories: true)
        }
        if lock {
            let fd = open(self.url.appendingPathComponent("lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw RunDirectoryError.notWritable(self.url.path) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                close(fd)
                throw PBTStoreError.locked(path: self.url.path)
            }
            lockDescriptor = fd
        } else {
            lockDescriptor = nil
        }
        do {
            store = try SQLiteTrialStore(path: storePath)
        } catch {
            if let fd = lockDescriptor { close(fd) }
            throw error
        }
    }

    deinit {
        if let fd = lockDescriptor { close(fd) }
    }
}

public enum RunDirectoryError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case missing(String)
    case notADirectory(String)
    case noRun(String)
    case notWritable(String)

    public var description: String {
        switch self {
        case .missing(let p): return "run directory \(p) does not exist; start a run there with `pbtwave pbt --run-dir \(p)`"
        case .notADirectory(let p): return "\(p) is a file, not a run directory"
        case .noRun(let p): return "\(p) holds no PBT run (no \(RunDirectory.storeFileName)); start one with `pbtwave pbt --run-dir \(p)`"
        case .notWritable(let p): return "cannot write in run directory \(p)"
        }
    }

    public var errorDescription: String? { description }
}
