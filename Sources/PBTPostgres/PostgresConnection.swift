import CPBTLibPQ
import Foundation
import PBT

/// Parameters are sent in text format. Doubles are written with Swift's
/// shortest round-trip form, which PostgreSQL's `float8` input parses back
/// to the same bits (and its output, since version 12, is the shortest exact
/// form too), so evaluations and times survive bit for bit.
extension SQLValue {
    var postgresText: String? {
        switch self {
        case .int(let x): return String(x)
        case .double(let x): return x.isFinite ? "\(x)" : (x.isNaN ? "NaN" : (x > 0 ? "Infinity" : "-Infinity"))
        case .text(let x): return x
        case .null: return nil
        }
    }
}

/// One result row; columns are read by index, in the SELECT's order, from
/// PostgreSQL's text format.
public struct PostgresRow: SQLRow {
    let result: OpaquePointer
    let row: Int32

    public func isNull(_ i: Int32) -> Bool { PQgetisnull(result, row, i) != 0 }
    public func text(_ i: Int32) -> String { String(cString: PQgetvalue(result, row, i)) }
    public func int64(_ i: Int32) throws(PostgresError) -> Int64 {
        guard let x = Int64(text(i)) else { throw .unexpectedResult("column \(i) is '\(text(i))', not an integer") }
        return x
    }
    public func double(_ i: Int32) throws(PostgresError) -> Double {
        let s = text(i)
        switch s {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            guard let x = Double(s) else { throw .unexpectedResult("column \(i) is '\(s)', not a number") }
            return x
        }
    }
}

/// How long a PostgreSQL client waits before it gives a server up.
public struct PostgresTimeouts: Sendable, Hashable {
    /// Connecting (libpq's `connect_timeout`; at least 2).
    public var connectSeconds: Int
    /// A command's reply; also the server's `statement_timeout`.
    public var replySeconds: Double

    public init(connectSeconds: Int, replySeconds: Double) {
        self.connectSeconds = connectSeconds
        self.replySeconds = replySeconds
    }

    /// 10 s to connect, 60 s for a reply: far above any statement of ours
    /// (milliseconds), far below "for ever".
    public static let standard = PostgresTimeouts(connectSeconds: 10, replySeconds: 60)
}

/// One libpq connection (`PGconn`) with a cache of prepared statements.
///
/// libpq connections are not thread-safe: a connection is used by one
/// thread at a time (`PostgresConnectionPool` hands each to one user), which
/// is why it is `@unchecked Sendable`: it may move between threads, never be
/// shared by two at once. `deinit` closes it.
public final class PostgresConnection: SQLConnection, @unchecked Sendable {
    private let conn: OpaquePointer
    /// The URL with any password masked, for messages.
    public let displayURL: String
    private var statements: [String: String] = [:]

    /// Connects to `url` (`postgres://…` or `postgresql://…`, or a libpq
    /// `key=value` string). The client encoding is UTF-8; server notices
    /// (e.g. "relation already exists, skipping") are not printed.
    ///
    /// A server that stops answering (frozen, partitioned away) cannot block
    /// a caller for ever: every command waits at most
    /// `timeouts.replySeconds` for its reply, after which the connection is
    /// closed and `.connectionLost` thrown (the pool retries on a new
    /// connection, so work goes on once the server is back); connecting
    /// waits at most `timeouts.connectSeconds`; TCP keepalives and
    /// `tcp_user_timeout` notice a vanished host; and the server cancels a
    /// statement that runs longer than the reply timeout.
    public init(url: String, timeouts: PostgresTimeouts = .standard,
                idleInTransactionTimeoutSeconds: Int = PostgresConnection.idleInTransactionTimeoutSeconds) throws(PostgresError) {
        displayURL = redactedPostgresURL(url)
        replyTimeoutSeconds = timeouts.replySeconds
        // Earlier entries are defaults that the URL overrides; later ones override the URL.
        // Both arrays end with NULL, as PQconnectdbParams requires.
        let keywords: [String?] = ["connect_timeout", "fallback_application_name", "keepalives", "keepalives_idle",
                                   "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname", "client_encoding", nil]
        let values: [String?] = ["\(timeouts.connectSeconds)", "pbtwave", "1", "10", "5", "3", "\(Int(timeouts.replySeconds * 1000))",
                                 url, "UTF8", nil]
        let c = withCStrings(keywords) { k in withCStrings(values) { v in PQconnectdbParams(k, v, 1) } }
        guard let c else { throw .cannotConnect(url: displayURL, message: "out of memory") }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c))
            PQfinish(c)
            throw .cannotConnect(url: displayURL, message: message)
        }
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        conn = c
        // A client that stops inside a transaction (a frozen machine, a
        // network partition) would otherwise hold its row locks, the run
        // row's among them, until TCP notices, which can take hours: the
        // server ends such a session after this long. Our transactions never
        // wait on the client for more than milliseconds.
        try exec("SET idle_in_transaction_session_timeout = \(idleInTransactionTimeoutSeconds * 1000); "
                 + "SET statement_timeout = \(Int(timeouts.replySeconds * 1000))")
    }

    /// How long a command waits for the server's reply.
    public let replyTimeoutSeconds: Double
    /// Set when a reply did not come in time: the connection's state is
    /// unknown, so it is never used again.
    private var abandoned = false

    /// Seconds a session may sit idle inside a transaction before the server ends it.
    public static let idleInTransactionTimeoutSeconds = 60

    deinit { PQfinish(conn) }

    /// False once the connection has broken; it is then thrown away.
    public var isUsable: Bool { !abandoned && PQstatus(conn) == CONNECTION_OK }

    /// Whether a transaction is open (or failed and awaiting ROLLBACK).
    public var inTransaction: Bool {
        let s = PQtransactionStatus(conn)
        return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE
    }

    private var lastMessage: String { String(cString: PQerrorMessage(conn)) }

    /// Turns a result into an error, or returns it (the caller clears it).
    private func check(_ result: OpaquePointer?, _ statement: String) throws(PostgresError) -> OpaquePointer {
        guard let result else {
            if !isUsable { throw .connectionLost(message: lastMessage, statement: statement) }
            throw .server(sqlState: "", message: lastMessage, detail: nil, statement: statement)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return result
        default:
            func field(_ code: UInt8) -> String? { PQresultErrorField(result, Int32(code)).map { String(cString: $0) } }
            let state = field(UInt8(ascii: "C"))
            let message = field(UInt8(ascii: "M")) ?? String(cString: PQresultErrorMessage(result))
            let detail = field(UInt8(ascii: "D"))
            PQclear(result)
            if state == nil || !isUsable { throw .connectionLost(message: message.isEmpty ? lastMessage : message, statement: statement) }
            throw .server(sqlState: state!, message: message, detail: detail, statement: statement)
        }
    }

    /// Runs one or more statements without parameters (simple protocol).
    public func exec(_ sql: String) throws(PostgresError) {
        PQclear(try check(try reply(sent: PQsendQuery(conn, sql), sql), sql))
    }

    /// The result of the command just sent (`sent`: the send call's
    /// return), like `PQexec`'s: the first error result, else the last one.
    /// Waits at most `replyTimeoutSeconds` for the server (polling the
    /// socket; libpq's blocking calls would wait for ever).
    private func reply(sent: Int32, _ statement: String) throws(PostgresError) -> OpaquePointer? {
        guard !abandoned, sent == 1 else { return nil }
        let deadline = ContinuousClock.now + .milliseconds(Int(replyTimeoutSeconds * 1000))
        var kept: OpaquePointer?
        while true {
            while PQisBusy(conn) == 1 {
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else {
                    abandoned = true
                    if let kept { PQclear(kept) }
                    throw .connectionLost(message: "the server did not answer within \(replyTimeoutSeconds) s", statement: statement)
                }
                var socket = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(min(1000, max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
                if poll(&socket, 1, milliseconds) < 0, errno != EINTR { break }
                if PQconsumeInput(conn) == 0 { break }  // the connection broke: PQgetResult reports it
            }
            guard let result = PQgetResult(conn) else { return kept }
            let failed = ![PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY].contains(PQresultStatus(result))
            if let previous = kept {
                let previousFailed = ![PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY].contains(PQresultStatus(previous))
                if previousFailed && !failed { PQclear(result); continue }
                PQclear(previous)
            }
            kept = result
        }
    }

    /// Runs `sql` as a prepared statement, preparing it on first use on this
    /// connection, and maps each row. Placeholders are `?`, numbered `$1`,
    /// `$2`, … in order when the statement is prepared (our SQL has no `?`
    /// inside string literals). Returns the rows and the number of rows the
    /// statement changed.
    @discardableResult
    public func execute<T>(_ sql: String, _ args: [SQLValue] = [],
                           _ map: (PostgresRow) throws -> T) throws -> (rows: [T], changed: Int) {
        let name: String
        if let cached = statements[sql] {
            name = cached
        } else {
            name = "pbt\(statements.count)"
            let numbered = sql.split(separator: "?", omittingEmptySubsequences: false).enumerated()
                .map { $0.offset == 0 ? String($0.element) : "$\($0.offset)" + $0.element }.joined()
            PQclear(try check(try reply(sent: PQsendPrepare(conn, name, numbered, Int32(args.count), nil), sql), sql))
            statements[sql] = name
        }
        let sent = withCStrings(args.map(\.postgresText)) { values in
            PQsendQueryPrepared(conn, name, Int32(args.count), values, nil, nil, 0)
        }
        let result = try check(try reply(sent: sent, sql), sql)
        defer { PQclear(result) }
        var rows: [T] = []
        let n = PQntuples(result)
        rows.reserveCapacity(Int(n))
        for i in 0..<n { rows.append(try map(PostgresRow(result: result, row: i))) }
        let changed = Int(String(cString: PQcmdTuples(result))) ?? 0
        return (rows, changed)
    }

    /// Runs a query and maps each row.
    public func query<T>(_ sql: String, _ args: [SQLValue] = [], _ map: (PostgresRow) throws -> T) throws -> [T] {
        try execute(sql, args, map).rows
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ args: [SQLValue] = []) throws -> Int {
        try execute(sql, args) { _ in () }.changed
    }

    /// `body` between `BEGIN` and `COMMIT` (read committed), rolled back if
    /// it throws. A `COMMIT` that the server turns into a rollback (the
    /// transaction had failed) throws; a connection that breaks during
    /// `COMMIT` throws `.commitOutcomeUnknown`.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try exec("BEGIN")
        let result: T
        do {
            result = try body()
        } catch {
            if isUsable { try? exec("ROLLBACK") }
            throw error
        }
        let sent = PQsendQuery(conn, "COMMIT")
        let committed: OpaquePointer?
        do { committed = try reply(sent: sent, "COMMIT") } catch { throw PostgresError.commitOutcomeUnknown(message: "\(error)") }
        guard let r = committed else { throw PostgresError.commitOutcomeUnknown(message: lastMessage) }
        defer { PQclear(r) }
        if PQresultStatus(r) != PGRES_COMMAND_OK {
            let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = String(cString: PQresultErrorMessage(r))
            if state == nil || !isUsable { throw PostgresError.commitOutcomeUnknown(message: message.isEmpty ? lastMessage : message) }
            // A serialization failure at commit: rolled back, safe to retry.
            throw PostgresError.server(sqlState: state!, message: message, detail: nil, statement: "COMMIT")
        }
        guard String(cString: PQcmdStatus(r)) == "COMMIT" else {
            throw PostgresError.unexpectedResult("COMMIT rolled the transaction back (a statement in it had failed)")
        }
        return result
    }
}

/// Calls `body` with a C array of C strings (nil entries stay NULL), valid
/// only during the call.
func withCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) throws -> R) rethrows -> R {
    let copies = strings.map { $0.flatMap { strdup($0) } }
    defer { for p in copies { free(p) } }
    return try body(copies.map { $0.map { UnsafePointer($0) } })
}
