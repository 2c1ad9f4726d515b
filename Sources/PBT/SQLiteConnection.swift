import CPBTSQLite
import PBTFileSupport
import Foundation

/// One result row of a statement being stepped.
public struct SQLiteRow: SQLRow {
    let statement: OpaquePointer

    public func isNull(_ i: Int32) -> Bool { sqlite3_column_type(statement, i) == SQLITE_NULL }
    public func int64(_ i: Int32) -> Int64 { sqlite3_column_int64(statement, i) }
    public func double(_ i: Int32) -> Double { sqlite3_column_double(statement, i) }
    public func text(_ i: Int32) -> String {
        guard let p = sqlite3_column_text(statement, i) else { return "" }
        return String(cString: p)
    }
}

/// SQLITE_TRANSIENT: SQLite copies bound text before `bind` returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One sqlite3 connection with a prepared-statement cache. Not thread-safe:
/// `SQLiteDatabase` keeps it behind a lock.
public final class SQLiteConnection: SQLConnection {
    let db: OpaquePointer
    let path: String
    private var statements: [String: OpaquePointer] = [:]

    /// `readOnly`: opened for reading only (`immutable`: as a file nothing
    /// changes, which a WAL store in a folder this user cannot write needs).
    init(path: String, readOnly: Bool = false, immutable: Bool = false, busyTimeoutMilliseconds: Int32 = 30_000) throws(PBTStoreError) {
        // Read only, SQLite opens a folder and fails at the first read with
        // "disk I/O error" (found by a helper: `lineage --store RUN_DIR`).
        if PathKind(of: path) == .folder {
            let store = (path as NSString).appendingPathComponent(RunDirectory.storeFileName)
            throw .cannotOpen(path: path, reason: "it is a folder" + (PathKind(of: store) == .file
                ? " (a run directory? its trial store is \(store))" : ""))
        }
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
            | (immutable ? SQLITE_OPEN_URI : 0)
        let name = immutable ? "file:" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path) + "?immutable=1" : path
        let rc = sqlite3_open_v2(name, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close_v2(handle) }
            if rc == SQLITE_CANTOPEN {
                // Say why in the user's terms: most often the folder is missing.
                let folder = (path as NSString).deletingLastPathComponent
                let reason = switch (PathKind(of: folder.isEmpty ? "." : folder), PathKind(of: path)) {
                case (.missing, _): "the folder \(folder) does not exist"
                case (.file, _): "\(folder) is not a folder"
                case (_, .folder): "it is a folder"
                default: "it cannot be opened or created there (permissions?)"
                }
                throw .cannotOpen(path: path, reason: reason)
            }
            throw .sqlite(code: rc, message: message, context: "opening \(path)")
        }
        db = handle
        self.path = path
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
    }

    deinit {
        for s in statements.values { sqlite3_finalize(s) }
        sqlite3_close_v2(db)
    }

    private func error(_ rc: Int32, _ context: String) -> PBTStoreError {
        let message = String(cString: sqlite3_errmsg(db))
        if rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT {
            return .notAStore(path: path, reason: message)
        }
        return .sqlite(code: rc, message: message, context: context)
    }

    /// Runs one or more statements without parameters or results.
    func exec(_ sql: String) throws(PBTStoreError) {
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql) }
    }

    private func prepared(_ sql: String, _ args: [SQLValue]) throws(PBTStoreError) -> OpaquePointer {
        let statement: OpaquePointer
        if let s = statements[sql] {
            statement = s
        } else {
            var s: OpaquePointer?
            let rc = sqlite3_prepare_v2(db, sql, -1, &s, nil)
            guard rc == SQLITE_OK, let s else { throw error(rc, sql) }
            statements[sql] = s
            statement = s
        }
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        for (i, arg) in args.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch arg {
            case .int(let x): rc = sqlite3_bind_int64(statement, index, x)
            case .double(let x): rc = sqlite3_bind_double(statement, index, x)
            case .text(let x): rc = sqlite3_bind_text(statement, index, x, -1, transient)
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw error(rc, sql) }
        }
        return statement
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ args: [SQLValue] = []) throws(PBTStoreError) -> Int {
        let statement = try prepared(sql, args)
        defer { sqlite3_reset(statement) }
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw error(rc, sql) }
        return Int(sqlite3_changes(db))
    }

    /// Runs a query and maps each row.
    public func query<T>(_ sql: String, _ args: [SQLValue] = [], _ map: (SQLiteRow) throws -> T) throws -> [T] {
        let statement = try prepared(sql, args)
        defer { sqlite3_reset(statement) }
        var rows: [T] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            rows.append(try map(SQLiteRow(statement: statement)))
        }
        return rows
    }

    /// `body` inside `BEGIN IMMEDIATE … COMMIT` (the write lock is taken at
    /// the start, so two writers never deadlock on a lock upgrade), rolled
    /// back if it throws.
    func immediateTransaction<T>(_ body: () throws -> T) throws -> T {
        try exec("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try exec("COMMIT")
            return result
        } catch {
            try? exec("ROLLBACK")
            throw error
        }
    }
}
