import Foundation

/// The SQL database a trial store runs on: SQLite (`SQLiteDatabase`, one
/// machine) or PostgreSQL (`PostgresDatabase` in PBTPostgres, many).
/// `SQLTrialStore` writes every statement once, with `?` placeholders; a
/// backend supplies connections, transactions and the few clauses that
/// differ (`SQLDialect`).

/// A bound statement parameter.
public enum SQLValue: Sendable, Hashable {
    case int(Int64)
    case double(Double)
    case text(String)
    case null

    public static func int(_ x: Int) -> SQLValue { .int(Int64(x)) }
    public static func optionalInt(_ x: Int?) -> SQLValue { x.map { .int(Int64($0)) } ?? .null }
    public static func optionalDouble(_ x: Double?) -> SQLValue { x.map(SQLValue.double) ?? .null }
    public static func optionalText(_ x: String?) -> SQLValue { x.map(SQLValue.text) ?? .null }
}

/// One result row; columns are read by index, in the SELECT's order.
/// Reading a column of the wrong type throws.
public protocol SQLRow {
    func isNull(_ i: Int32) -> Bool
    func text(_ i: Int32) -> String
    func int64(_ i: Int32) throws -> Int64
    func double(_ i: Int32) throws -> Double
}

extension SQLRow {
    public func int(_ i: Int32) throws -> Int { Int(try int64(i)) }
    public func optionalInt(_ i: Int32) throws -> Int? { isNull(i) ? nil : try int(i) }
    public func optionalDouble(_ i: Int32) throws -> Double? { isNull(i) ? nil : try double(i) }
    public func optionalText(_ i: Int32) -> String? { isNull(i) ? nil : text(i) }
}

/// One connection, used by one thread at a time.
public protocol SQLConnection: AnyObject {
    associatedtype Row: SQLRow
    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    func run(_ sql: String, _ args: [SQLValue]) throws -> Int
    /// Runs a query and maps each row.
    func query<T>(_ sql: String, _ args: [SQLValue], _ map: (Row) throws -> T) throws -> [T]
}

/// What the backends spell differently.
public struct SQLDialect: Sendable {
    /// The runs table's id column.
    public var runIDColumn: String
    /// Appended to a SELECT that must lock the rows it reads until the
    /// transaction ends ("" where the transaction locks the whole database).
    public var forUpdate: String
    /// Appended to the SELECT that picks a trial to claim: lock it, and pass
    /// over rows another transaction holds instead of waiting for them.
    public var forUpdateSkipLocked: String

    public init(runIDColumn: String, forUpdate: String, forUpdateSkipLocked: String) {
        self.runIDColumn = runIDColumn
        self.forUpdate = forUpdate
        self.forUpdateSkipLocked = forUpdateSkipLocked
    }
}

/// A database the trial store can run on.
public protocol SQLDatabase: Sendable {
    associatedtype Connection: SQLConnection
    var dialect: SQLDialect { get }
    /// The file path or the URL (password masked), for messages.
    var location: String { get }
    /// `body` as one write transaction: serialized with every other write
    /// transaction on the run's rows, committed if it returns, rolled back
    /// if it throws. A backend may run it again after a transient failure,
    /// so `body` must have no effects outside the transaction.
    func transaction<T>(_ body: (Connection) throws -> T) throws -> T
    /// `transaction`, telling `body` whether it runs again after a
    /// transient failure (false on the first attempt).
    func transaction<T>(noting body: (Connection, _ again: Bool) throws -> T) throws -> T
    /// `body` for reads; each statement sees committed data.
    func read<T>(_ body: (Connection) throws -> T) throws -> T
    /// Whether `error` is a unique-constraint violation (two processes
    /// created the same run at once).
    func isUniqueViolation(_ error: any Error) -> Bool
    /// The database's clock in seconds since 1970 (`TrialStore.now()`).
    func now() -> Double
    /// `TrialStore.stopRetrying()`.
    func stopRetrying()
}

extension SQLDatabase {
    /// This machine's clock: the database is on it.
    public func now() -> Double { Date().timeIntervalSince1970 }
    /// Nothing to give up: a local database is not retried.
    public func stopRetrying() {}
    /// Never again: a local database is not retried.
    public func transaction<T>(noting body: (Connection, _ again: Bool) throws -> T) throws -> T {
        try transaction { try body($0, false) }
    }
}
