import Synchronization
import PBTFileSupport
import Foundation

/// A PBT run on disk: `RUN_DIR/pbt.sqlite` (the trial store, one run named
/// `pbt`), `RUN_DIR/pbt-run.txt` (which run the directory belongs to),
/// `RUN_DIR/checkpoints/<run>/` (that run's checkpoints), and two locks that
/// the process driving the run holds with `flock`: `RUN_DIR/lock` and
/// `<store>-lock` beside the store file, so two processes never drive one
/// run directory, nor one store, at once (the OS drops the locks when the
/// process dies, even by SIGKILL).
public final class RunDirectory: Sendable {
    public static let storeFileName = "pbt.sqlite"
    public static let runName = "pbt"

    public let url: URL
    public let store: SQLiteTrialStore
    private let locks: [FileLock]

    public let storePath: String
    /// Whether this opening made the folder, and the store file.
    private let made: (folder: Bool, store: Bool)

    /// Opens `url`. With `create`, makes the directory and store if needed;
    /// without, a directory without a store is an error. With `lock`, takes
    /// the run directory's and the store's exclusive locks or throws
    /// `PBTStoreError.locked`. `storePath` puts the SQLite store elsewhere
    /// (default `RUN_DIR/pbt.sqlite`, `pbtwave pbt --store sqlite:PATH`).
    ///
    /// With `create` and a directory that already belongs to a run
    /// (`RunMarker`), a store file that is missing or empty is refused
    /// (`RunDirectoryError.storeLost`) before anything is created: the run's
    /// checkpoints are never handed to a new, empty run. `readingOnly` (not
    /// with `create` or `lock`): the store is opened for reading only
    /// (`SQLiteTrialStore(readingOnly:)`), also where this user cannot write.
    public init(_ url: URL, create: Bool, lock: Bool, storePath: String? = nil, readingOnly: Bool = false) throws {
        precondition(!readingOnly || (!create && !lock), "a store opened for reading only is neither created nor locked")
        self.url = url.standardizedFileURL
        let fm = FileManager.default
        let storePath = storePath ?? self.url.appendingPathComponent(Self.storeFileName).path
        self.storePath = storePath
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: self.url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw RunDirectoryError.notADirectory(self.url.path) }
            if !create, !fm.fileExists(atPath: storePath) {
                // The checkpoints of a run whose trials are in another store (PostgreSQL, --store sqlite:…).
                if let owner = try? RunMarker.read(self.url) { throw RunDirectoryError.runInAnotherStore(self.url.path, run: owner) }
                // An experiment's folder holds its runs one level down: name them.
                let inside = Self.runFolders(in: self.url)
                if !inside.isEmpty { throw RunDirectoryError.runsInside(self.url.path, runs: inside) }
                throw RunDirectoryError.noRun(self.url.path)
            }
        }
        let madeFolder = !fm.fileExists(atPath: self.url.path)
        if madeFolder {
            guard create else { throw RunDirectoryError.missing(self.url.path) }
            try Self.makeFolder(self.url)
        }
        let madeStore = !fm.fileExists(atPath: storePath)
        if create, let marker = try RunMarker.read(self.url) {
            let size = (try? fm.attributesOfItem(atPath: storePath)[.size] as? Int) ?? nil
            if size == nil || size == 0 {
                throw RunDirectoryError.storeLost(runDirectory: self.url.path, marker: marker,
                                                  store: "sqlite:" + storePath, reason: size == nil ? "it does not exist" : "it is empty")
            }
        }
        made = (madeFolder, madeStore)
        do {
            // A store given elsewhere: its folder, named as such.
            let storeFolder = (storePath as NSString).deletingLastPathComponent
            if !storeFolder.isEmpty, storeFolder != self.url.path {
                switch PathKind(of: storeFolder) {
                case .missing: throw RunDirectoryError.storeFolderUnusable(store: storePath, folder: storeFolder, reason: "does not exist")
                case .file: throw RunDirectoryError.storeFolderUnusable(store: storePath, folder: storeFolder, reason: "is a file")
                case .folder:
                    if create, access(storeFolder, W_OK) != 0 {
                        throw RunDirectoryError.storeFolderUnusable(store: storePath, folder: storeFolder, reason: "is not writable")
                    }
                }
            }
            var locks: [FileLock] = []
            if lock {
                locks.append(try FileLock(exclusive: self.url.appendingPathComponent("lock").path, holder: self.url.path))
                locks.append(try FileLock(exclusive: storePath + "-lock", holder: "sqlite:" + storePath))
            }
            self.locks = locks
            store = try readingOnly ? SQLiteTrialStore(readingOnly: storePath) : SQLiteTrialStore(path: storePath)
        } catch {
            Self.discard(self.url, made: made, storePath: storePath)
            throw error
        }
    }

    /// Takes back what opening made, for a command refused after it (found
    /// by a helper: a refused `pbt` left a new RUN_DIR holding only its
    /// `lock`): a store file it created, then a folder it created if
    /// nothing else is in it. A directory or store that existed is kept, and
    /// so is everything once the directory names its run (`RunMarker`).
    public func discardIfNew() { Self.discard(url, made: made, storePath: storePath) }

    private static func discard(_ url: URL, made: (folder: Bool, store: Bool), storePath: String) {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent(RunMarker.fileName).path) { return }
        if made.store { for suffix in ["", "-wal", "-shm", "-journal", "-lock"] { unlink(storePath + suffix) } }
        if made.folder {
            unlink(url.appendingPathComponent("lock").path)
            rmdir(url.path)  // only if empty
        }
    }
}

extension RunDirectory {
    /// Makes the folder `url` (and its parents) if missing; throws
    /// `RunDirectoryError` in a sentence for a file there or a folder
    /// that cannot be made.
    static func makeFolder(_ url: URL) throws {
        switch PathKind(of: url.path) {
        case .folder: return
        case .file: throw RunDirectoryError.notADirectory(url.path)
        case .missing:
            do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
                throw RunDirectoryError.cannotCreate(url.path, reason: FileErrorText.cause(of: error) ?? "\(error)")
            }
        }
    }
}

extension RunDirectory {
    /// Makes `folder` if missing and takes the exclusive lock on its
    /// `lock` file, held while the returned object lives (a whole
    /// experiment's folder: two `experiment` commands on one folder both
    /// replayed and wrote the report, found by a helper). Throws
    /// `PBTStoreError.locked` when another process holds it.
    public static func lockFolder(_ folder: URL) throws -> FileLock {
        try makeFolder(folder)
        return try FileLock(exclusive: folder.appendingPathComponent("lock").path, holder: folder.path)
    }
}

extension RunDirectory {
    /// The folders of `folder` that hold a run (their own store file), sorted:
    /// an experiment's runs, one level down.
    public static func runFolders(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted().filter {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).appendingPathComponent(storeFileName).path)
        }
    }

    /// Whether a process drives the run in `url` now (holds its lock), for
    /// readers that take no lock; nil when the directory has no lock file
    /// (never driven here, or its store is elsewhere and shared).
    public static func isDriven(_ url: URL) -> Bool? {
        lockIsHeld(url.appendingPathComponent("lock").path)
    }
}

/// An exclusive `flock` on a file, held until this object goes away (or
/// the process dies).
public final class FileLock: Sendable {
    private let descriptor: Int32
    /// The lock file, removed on release (nil: kept).
    private let removed: String?

    /// Takes the lock on `path` (created if needed) without waiting; throws
    /// `PBTStoreError.locked(path: holder)` if another process holds it.
    /// With `removeOnRelease`, the file goes when the lock does (a lock
    /// beside a user's file, not in a folder of pbtwave's own).
    public init(exclusive path: String, holder: String, removeOnRelease: Bool = false) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunDirectoryError.notWritable((path as NSString).deletingLastPathComponent) }
        var info = stat()
        let file = fstat(fd, &info) == 0 ? [UInt64(info.st_dev), UInt64(info.st_ino)] : []
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            // The holder may be this very process (found by a library user: "another pbtwave process … kill it").
            throw Self.held.withLock { $0.contains(file) } ? PBTStoreError.lockedByThisProcess(path: holder) : PBTStoreError.locked(path: holder)
        }
        descriptor = fd
        removed = removeOnRelease ? path : nil
        self.file = file
        _ = Self.held.withLock { $0.insert(file) }
    }

    /// The lock file's device and inode, and those of every lock this process holds.
    private let file: [UInt64]
    private static let held = Mutex<Set<[UInt64]>>([])

    deinit {
        _ = Self.held.withLock { $0.remove(file) }
        if let removed { unlink(removed) }
        close(descriptor)
    }
}

/// Which run a directory belongs to: its name and creation time as the store
/// records them (two runs of one name, in two stores or one after another,
/// differ in creation time).
public struct RunIdentity: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var createdAt: Double

    public init(name: String, createdAt: Double) {
        self.name = name
        self.createdAt = createdAt
    }

    public init(_ run: RunRecord) { self.init(name: run.name, createdAt: run.createdAt) }

    public var description: String { "run '\(name)' created \(Self.date(createdAt))" }

    /// `seconds` since 1970 as a UTC date to the millisecond, for people.
    static func date(_ seconds: Double) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}

/// `RUN_DIR/pbt-run.txt`: names the run whose checkpoints the directory
/// holds. Written once, when a run first uses the directory, and never
/// replaced: a process given a directory that is not its run's (a typo, a
/// mount missing on that machine, another run's, a lost or emptied store)
/// stops at once instead of overwriting, failing on, or sweeping another
/// run's checkpoints.
public enum RunMarker {
    public static let fileName = "pbt-run.txt"

    /// The run directory whose checkpoints `path` is among
    /// (`RUN_DIR/checkpoints/…` with `RUN_DIR/pbt-run.txt`), or nil.
    public static func runDirectory(holding path: String) -> URL? {
        var folder = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
        while folder.path != "/" {
            if folder.lastPathComponent == CheckpointDirectory.folderName {
                let run = folder.deletingLastPathComponent()
                if FileManager.default.fileExists(atPath: run.appendingPathComponent(fileName).path) { return run }
            }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }

    /// The run's name and creation time (exact, as the store holds it), and
    /// the time as a date for people (not read back).
    static func text(_ run: RunIdentity) -> String { "run \(run.name)\ncreated \(run.createdAt)\ndate \(RunIdentity.date(run.createdAt))\n" }

    /// The run the directory belongs to, or nil if it has no marker.
    /// Throws for a marker that cannot be read or parsed.
    public static func read(_ runDirectory: URL) throws -> RunIdentity? {
        let file = runDirectory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        guard let data = FileManager.default.contents(atPath: file.path), let text = String(data: data, encoding: .utf8),
              let identity = parse(text)
        else { throw RunDirectoryError.unreadableMarker(file.path) }
        return identity
    }

    static func parse(_ text: String) -> RunIdentity? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 2, lines[0].hasPrefix("run "), lines[1].hasPrefix("created "),
              let created = Double(lines[1].dropFirst("created ".count))
        else { return nil }
        return RunIdentity(name: String(lines[0].dropFirst("run ".count)), createdAt: created)
    }

    /// Makes `runDirectory` run `run`'s: writes the marker if there is none
    /// (exclusively: of two processes racing, one wins and the other is
    /// refused), or checks that the one there names `run`. A directory
    /// without a marker must hold no checkpoints but `run`'s own; anything
    /// else there belongs to no known run and is refused, never deleted.
    /// `trials` are the run's trials as the store has them (they tell the
    /// flat checkpoint files of runs from before namespaces from others).
    public static func claim(_ runDirectory: URL, for run: RunRecord, trials: [TrialRecord]) throws {
        try claim(runDirectory, as: RunIdentity(run), trials: trials)
    }

    /// `claim` for a run known by its identity: a run about to be created
    /// (its name and creation time) claims the directory before it exists
    /// in the store, so that a directory without a marker is never a
    /// created run's (found by a helper: two commands creating one run at
    /// the same moment, each with a run directory of its own, both went on,
    /// and the run's checkpoints were split between the two).
    static func claim(_ runDirectory: URL, as identity: RunIdentity, trials: [TrialRecord]) throws {
        if let found = try read(runDirectory) {
            guard found == identity else { throw RunDirectoryError.belongsToAnotherRun(runDirectory.path, owner: found, run: identity) }
            return
        }
        try checkUnclaimed(runDirectory, run: identity, trials: trials)
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        let file = runDirectory.appendingPathComponent(fileName).path
        let temporary = AtomicFile.temporaryPath(for: file)
        try AtomicFile.write(Data(text(identity).utf8), toPath: temporary, durable: true)
        defer { unlink(temporary) }
        // link(2) never replaces an existing file: the first writer wins.
        if link(temporary, file) != 0 {
            guard errno == EEXIST else { throw RunDirectoryError.notWritable(runDirectory.path) }
            try claim(runDirectory, as: identity, trials: trials)
        }
    }

    /// Takes back a claim of a run that was not created after all: removes
    /// the marker if it names `identity` and the directory holds no checkpoints.
    static func release(_ runDirectory: URL, claimedAs identity: RunIdentity) {
        guard (try? read(runDirectory)) == identity, CheckpointDirectory.entries(in: runDirectory).isEmpty else { return }
        unlink(runDirectory.appendingPathComponent(fileName).path)
    }

    /// How long a command waits for a run whose marker it found to appear in
    /// the store (another command claimed the directory and is creating it).
    static let creationWait: Double = 5

    /// The run named `identity.name` once `store` holds it, waiting up to
    /// ``creationWait`` seconds; nil if it does not appear.
    static func awaitCreation(of identity: RunIdentity, in store: any TrialStore) throws -> RunRecord? {
        let deadline = Date().addingTimeInterval(creationWait)
        while true {
            if let run = try store.run(named: identity.name) { return run }
            if Date() >= deadline { return nil }
            usleep(50_000)
        }
    }

    /// Before joining `run` (not created by this command) with
    /// `runDirectory`: throws unless the directory's marker is there, or
    /// the run is from before markers and keeps its checkpoints here.
    /// (Whichever command created the run claimed its directory first.)
    static func requireForJoining(_ runDirectory: URL, run: RunRecord, trials: [TrialRecord]) throws {
        if try read(runDirectory) != nil || holdsLiveCheckpoint(runDirectory, of: trials) { return }
        throw RunDirectoryError.notTheRunsDirectory(runDirectory.path, run: RunIdentity(run))
    }

    /// Whether a live checkpoint of `trials` is in `runDirectory`.
    private static func holdsLiveCheckpoint(_ runDirectory: URL, of trials: [TrialRecord]) -> Bool {
        trials.contains { t in
            t.checkpointLive && t.checkpointPath.map { access(runDirectory.appendingPathComponent($0).path, F_OK) == 0 } == true
        }
    }

    /// Throws unless every checkpoint entry in `runDirectory` can be `run`'s
    /// (nil: a run not created yet, which owns nothing).
    static func checkUnclaimed(_ runDirectory: URL, run: RunIdentity?, trials: [TrialRecord]) throws {
        let entries = CheckpointDirectory.entries(in: runDirectory)
        let present = Set(entries)
        let recordedPresent = trials.contains { $0.checkpointPath.map(present.contains) == true }
        let namespace = run.map(CheckpointDirectory.namespace(for:))
        let unclaimed = entries.filter { entry in
            namespace.map { !CheckpointDirectory.belongs(entry, namespace: $0, trials: trials, recordedPresent: recordedPresent) } ?? true
        }
        guard unclaimed.isEmpty else { throw RunDirectoryError.unclaimedCheckpoints(runDirectory.path, entries: unclaimed) }
    }

    /// Throws unless `runDirectory`'s marker names `run` (for workers, which
    /// join a run and never create one).
    public static func check(_ runDirectory: URL, run: RunRecord) throws {
        guard let found = try read(runDirectory) else { throw RunDirectoryError.notTheRunsDirectory(runDirectory.path, run: RunIdentity(run)) }
        guard found == RunIdentity(run) else {
            throw RunDirectoryError.belongsToAnotherRun(runDirectory.path, owner: found, run: RunIdentity(run))
        }
    }

    /// Before a run named `name` is opened or created in `store` with
    /// `runDirectory` for its checkpoints: throws if the directory belongs
    /// to a run that `store` does not hold (the store is new, emptied,
    /// replaced or mistyped, or the run is another one), or holds
    /// checkpoints of no run the store knows, so nothing is created in the
    /// store and nothing is deleted from the directory.
    public static func checkBeforeOpening(_ store: any TrialStore, location: String, name: String, runDirectory: URL) throws {
        let existing = try store.run(named: name)
        guard let marker = try read(runDirectory) else {
            let trials = try existing.map { try store.trials(runID: $0.id) } ?? []
            // A run that has checkpoints, none of which is here, keeps them
            // elsewhere; so does a run whose trials have started (its
            // directory was named when it was created), even before any
            // checkpoint is written. A run from before markers has its
            // checkpoints here.
            let hasLive = trials.contains { $0.checkpointLive && $0.checkpointPath != nil }
            let started = trials.contains { $0.status != .queued || $0.attempt > 1 }
            if let existing, hasLive || started, !holdsLiveCheckpoint(runDirectory, of: trials) {
                throw RunDirectoryError.notTheRunsDirectory(runDirectory.path, run: RunIdentity(existing))
            }
            return try checkUnclaimed(runDirectory, run: existing.map(RunIdentity.init), trials: trials)
        }
        guard marker.name == name else {
            throw RunDirectoryError.belongsToAnotherRun(runDirectory.path, owner: marker, run: nil)
        }
        guard let existing else {
            // A claim with no checkpoints: a command creating the run now, or
            // one that stopped before creating it (then nothing is lost).
            if CheckpointDirectory.entries(in: runDirectory).isEmpty {
                if let created = try awaitCreation(of: marker, in: store) {
                    guard RunIdentity(created) == marker else {
                        throw RunDirectoryError.belongsToAnotherRun(runDirectory.path, owner: marker, run: RunIdentity(created))
                    }
                    return
                }
                release(runDirectory, claimedAs: marker)
                return
            }
            throw RunDirectoryError.storeLost(runDirectory: runDirectory.path, marker: marker, store: location,
                                              reason: "it holds no run named '\(name)'")
        }
        guard RunIdentity(existing) == marker else {
            throw RunDirectoryError.belongsToAnotherRun(runDirectory.path, owner: marker, run: RunIdentity(existing))
        }
    }
}

public enum RunDirectoryError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case missing(String)
    case notADirectory(String)
    case noRun(String)
    /// No run, but folders inside hold runs (an experiment's folder).
    case runsInside(String, runs: [String])
    /// The directory holds the checkpoints of a run whose store is elsewhere.
    case runInAnotherStore(String, run: RunIdentity)
    case notWritable(String)
    /// The folder an SQLite store given elsewhere (`--store sqlite:PATH`)
    /// would be in is missing or not writable (it was called the run directory).
    case storeFolderUnusable(store: String, folder: String, reason: String)
    /// The folder cannot be made (`reason`: a parent that is a file, no permission…).
    case cannotCreate(String, reason: String)
    case unreadableMarker(String)
    /// The directory's marker names another run (`run`: the one asked for, if known).
    case belongsToAnotherRun(String, owner: RunIdentity, run: RunIdentity?)
    /// The directory belongs to a run its store no longer holds.
    case storeLost(runDirectory: String, marker: RunIdentity, store: String, reason: String)
    /// The directory has no marker but holds checkpoints of no known run.
    case unclaimedCheckpoints(String, entries: [String])
    /// A worker was given a directory with no marker.
    case notTheRunsDirectory(String, run: RunIdentity)

    public var description: String {
        switch self {
        case .missing(let p): return "run directory \(p) does not exist; start a run there with `pbtwave pbt --run-dir \(p)`"
        case .notADirectory(let p): return "\(p) is a file, not a run directory"
        case .noRun(let p): return "\(p) holds no PBT run (no \(RunDirectory.storeFileName)); start one with `pbtwave pbt --run-dir \(p)`"
        case let .runsInside(p, runs):
            let shown = runs.prefix(6).map { "\(p)/\($0)" }.joined(separator: ", ") + (runs.count > 6 ? ", …" : "")
            let schedule = FileManager.default.fileExists(atPath: p + "/schedule.json") ? "; the learned schedule it exported is \(p)/schedule.json" : ""
            return "\(p) holds no PBT run itself, but its folders do (an experiment's folder): give one of them, e.g. \(shown)\(schedule)"
        case let .runInAnotherStore(p, run):
            return "\(p) holds the checkpoints of \(run), whose trials are in another store (no \(RunDirectory.storeFileName) here): "
                + "give that store with --store and --run \(shellQuoted(run.name))"
        case .notWritable(let p): return "cannot write in run directory \(p)"
        case let .storeFolderUnusable(store, folder, reason):
            return "cannot use the trial store sqlite:\(store): its folder \(folder) \(reason); make the folder, or give another --store"
        case let .cannotCreate(p, reason): return "cannot create the run directory \(p): \(reason)"
        case .unreadableMarker(let p): return "\(p) is damaged (it should name the run the directory belongs to); restore it or choose another --run-dir"
        case let .belongsToAnotherRun(p, owner, run):
            return "\(p) belongs to another run (\(p)/\(RunMarker.fileName) names \(owner)"
                + (run.map { ", this is \($0)" } ?? "") + "); nothing was changed. Give that run's --store and --run, or choose another --run-dir"
        case let .storeLost(p, marker, store, reason):
            return """
                \(p) holds the checkpoints of \(marker), but the store \(store) cannot be that run's: \(reason). Nothing was \
                created or deleted. Give the run's store (--store, --run), restore it from a backup, or choose another --run-dir \
                (move \(p) aside to start over there)
                """
        case let .unclaimedCheckpoints(p, entries):
            let shown = entries.prefix(3).joined(separator: ", ") + (entries.count > 3 ? ", …" : "")
            return """
                \(p) holds \(entries.count) checkpoint file(s) of no known run (\(shown)) and no \(RunMarker.fileName); nothing \
                was deleted. Move them away, or choose another --run-dir
                """
        case let .notTheRunsDirectory(p, run):
            return """
                \(p) is not the directory of run '\(run.name)' (no \(RunMarker.fileName)): give --run-dir the directory the run was \
                created with, as this machine mounts it (a shared file system)
                """
        }
    }

    public var errorDescription: String? { description }
}
