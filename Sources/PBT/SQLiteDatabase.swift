import CPBTSQLite
import Foundation

/// The embedded store: `SQLTrialStore` on one SQLite file.
public typealias SQLiteTrialStore = SQLTrialStore<SQLiteDatabase>

extension SQLTrialStore where Database == SQLiteDatabase {
    /// Opens (creating if needed) the store at `path` (`:memory:` for a
    /// private in-memory store). Throws `PBTStoreError.notAStore` for a file
    /// that is not an SQLite database or has no PBTWave schema, and
    /// `.schemaVersion` for a newer schema.
    public convenience init(path: String) throws {
        self.init(database: try SQLiteDatabase(path: path))
    }

    /// Opens the existing store at `path` for reading only (`lineage`,
    /// `schedule export`), also where this user cannot write: a run
    /// directory of another user, a read-only mount, an archived copy
    /// (opening it for writing failed there, asking for the WAL journal).
    public convenience init(readingOnly path: String) throws {
        self.init(database: try SQLiteDatabase(readingOnly: path))
    }

    public var path: String { database.path }
}

/// One SQLite file (system libsqlite3): WAL journal, `synchronous = NORMAL`
/// (a killed process loses nothing that was committed; a power cut may lose
/// the last commits, never consistency), a busy timeout, and `BEGIN
/// IMMEDIATE` for every write transaction, which takes the database's write
/// lock at once, so there are no row locks to ask for (`SQLDialect`'s
/// locking clauses are empty).
///
/// Within a process all threads share one connection behind a lock, so
/// claims and decisions are serialized without SQLite lock contention. The
/// lock is a blocking pthread mutex (`NSLock`) rather than `Mutex`, whose
/// spinning wasted ~8 % of the CPU with more worker threads than cores.
/// Other processes (e.g. `pbtwave lineage` during a run) may open the same
/// file; SQLite's locks and the busy timeout serialize them.
public final class SQLiteDatabase: SQLDatabase, @unchecked Sendable {
    public let path: String
    // Guarded by `lock`.
    private let connection: SQLiteConnection
    private let lock = NSLock()

    public let dialect = SQLiteDatabase.sqliteDialect
    static let sqliteDialect = SQLDialect(runIDColumn: "id INTEGER PRIMARY KEY", forUpdate: "", forUpdateSkipLocked: "")
    public var location: String { path }

    public init(path: String) throws {
        // SQLite takes "" for a private temporary database, gone at exit:
        // a run stored there could never be resumed. ":memory:" says it.
        guard !path.isEmpty else { throw PBTStoreError.cannotOpen(path: "\"\"", reason: "give the SQLite file's path (\":memory:\" for a store that lives only in this process)") }
        self.path = path
        let c = try SQLiteConnection(path: path)
        if path != ":memory:" {
            try Self.useWAL(c)
            try c.exec("PRAGMA synchronous = NORMAL")
        }
        try c.immediateTransaction {
            guard try !Self.checkSchema(c, path: path) else { return }
            try c.exec(TrialStoreSchema.create(Self.sqliteDialect))
            try c.run("INSERT INTO schema_version (version) VALUES (?)", [.int(TrialStoreSchema.version)])
        }
        connection = c
    }

    /// The store at `path`, for reading only: its schema is checked, never
    /// made. A WAL store whose `-shm` and `-wal` files are gone, in a folder
    /// this user cannot write, cannot be opened read-only as such; then it is
    /// opened as immutable (no run can be writing there: its files would be).
    public init(readingOnly path: String) throws {
        self.path = path
        func open(immutable: Bool) throws -> SQLiteConnection {
            let c = try SQLiteConnection(path: path, readOnly: true, immutable: immutable)
            guard try Self.checkSchema(c, path: path) else { throw PBTStoreError.notAStore(path: path, reason: "an empty SQLite database") }
            return c
        }
        do { connection = try open(immutable: false) } catch PBTStoreError.sqlite(let code, _, _) where code == SQLITE_CANTOPEN || code == SQLITE_READONLY {
            connection = try open(immutable: true)
        }
    }

    /// Whether `c` holds the trial-store schema (checked: this build's
    /// version); false for an empty database, which only a writer fills.
    /// Throws `notAStore` for a database of something else.
    private static func checkSchema(_ c: SQLiteConnection, path: String) throws -> Bool {
        let tables = try c.query("SELECT name FROM sqlite_master WHERE type = 'table'") { $0.text(0) }
        guard tables.contains("schema_version") else {
            guard tables.isEmpty else { throw PBTStoreError.notAStore(path: path, reason: "an SQLite database without a schema_version table") }
            return false
        }
        let versions = try c.query("SELECT version FROM schema_version") { try $0.int(0) }
        guard let v = versions.first else { throw PBTStoreError.notAStore(path: path, reason: "empty schema_version table") }
        try TrialStoreSchema.check(version: v, location: path)
        return true
    }

    /// `PRAGMA journal_mode = WAL` (it returns a row; exec discards it).
    /// Two processes opening a new store at once (a `pbt` and a `worker`)
    /// both ask for WAL, and SQLite answers one of them BUSY at once,
    /// without the busy timeout: ask again for as long as that timeout.
    private static func useWAL(_ c: SQLiteConnection) throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            do {
                try c.exec("PRAGMA journal_mode = WAL")
                return
            } catch {
                guard case .sqlite(let code, _, _) = error, code == SQLITE_BUSY, ContinuousClock.now < deadline else { throw error }
                usleep(UInt32.random(in: 5_000 ... 20_000))
            }
        }
    }

    private func locked<T>(_ body: (SQLiteConnection) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(connection)
    }

    public func transaction<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try locked { c in try c.immediateTransaction { try body(c) } }
    }

    public func read<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try locked(body)
    }

    /// Never: a run's name is checked inside the same `BEGIN IMMEDIATE`
    /// transaction that inserts it.
    public func isUniqueViolation(_ error: any Error) -> Bool { false }
}
