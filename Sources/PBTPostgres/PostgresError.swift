import Foundation
import PBT

/// What went wrong talking to PostgreSQL, with the server's own message.
public enum PostgresError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The server could not be reached or refused the login.
    case cannotConnect(url: String, message: String)
    /// The server rejected a statement (`sqlState` is the five-character
    /// SQLSTATE, e.g. 40001 serialization failure, 23505 unique violation).
    case server(sqlState: String, message: String, detail: String?, statement: String)
    /// The connection broke during a statement (server restart, network).
    case connectionLost(message: String, statement: String)
    /// The connection broke while `COMMIT` was in flight: the transaction
    /// may or may not have been committed, so it is not retried.
    case commitOutcomeUnknown(message: String)
    /// A transient error persisted through every retry.
    case retriesExhausted(attempts: Int, last: String)
    /// The server was out of reach when this process was asked to stop
    /// (`PostgresConnectionPool.stopRetrying()`), so it stopped retrying.
    case stoppedRetrying(last: String)
    /// A result that the statement cannot have produced (a bug, or a
    /// different schema under the same table names).
    case unexpectedResult(String)
    /// The database holds tables named like ours that are not a PBTWave store.
    case notAStore(url: String, reason: String)
    /// The database holds no store, and was opened to use one, not make one.
    case noStore(url: String)
    /// The store was created by a newer PBTWave.
    case schemaVersion(url: String, found: Int, supported: Int)

    /// Errors after which the whole transaction can be run again safely:
    /// the server rolled it back (serialization failure, deadlock, shutdown)
    /// or the connection broke before `COMMIT` was sent.
    public var isTransient: Bool {
        switch self {
        case .server(let state, _, _, _):
            return state == "40001" || state == "40P01" || state.hasPrefix("08")
                || state == "57P01" || state == "57P02" || state == "57P03"
        case .connectionLost, .cannotConnect:
            return true
        default:
            return false
        }
    }

    /// The server's SQLSTATE, for `.server` errors.
    public var sqlState: String? {
        if case .server(let state, _, _, _) = self { return state }
        return nil
    }

    /// The server is out of reach: no connection could be made, or the one
    /// in use broke (a restart, the network).
    var isOutage: Bool {
        if case .cannotConnect = self { return true }
        return isConnectionFailure
    }

    /// The description's first line, for a one-line notice.
    var firstLine: String { String(description.split(separator: "\n", maxSplits: 1).first ?? "") }

    /// The connection (not just the transaction) is gone.
    var isConnectionFailure: Bool {
        switch self {
        case .server(let state, _, _, _): return state.hasPrefix("08") || state.hasPrefix("57P")
        case .connectionLost: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .cannotConnect(let url, let message):
            return "cannot connect to PostgreSQL at \(url): \(message.trimmed); check that the server runs and the URL "
                + "(postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE) is right"
        case .server(let state, let message, let detail, let statement):
            // What the user can do about the common setup mistakes, before the statement.
            let hint = [
                "3F000": "; the URL's search_path names a schema that does not exist: create it (CREATE SCHEMA name) or drop the option",
                "42501": "; the user lacks a privilege on the database or schema: GRANT it, or use the database's owner",
            ][state] ?? ""
            return "PostgreSQL error \(state): \(message.trimmed)" + (detail.map { " (\($0.trimmed))" } ?? "") + hint
                + " during: \(statement.oneLine)"
        case .connectionLost(let message, let statement):
            return "lost the connection to PostgreSQL (\(message.trimmed)) during: \(statement.oneLine)"
        case .commitOutcomeUnknown(let message):
            return "lost the connection to PostgreSQL while committing (\(message.trimmed)); the transaction may or may not "
                + "have been committed, so this worker stops. Restart it: leases re-queue whatever it held"
        case .retriesExhausted(let attempts, let last):
            // What became of the run, and how to go on (found by a helper: it said only that it failed).
            return "PostgreSQL kept failing after \(attempts) attempts, so this process stopped; last error: \(last). "
                + "Nothing the store recorded is lost: the trials this process held go back to the queue when their leases lapse, "
                + "and the same command goes on with the run once the server is back"
        case .stoppedRetrying(let last):
            return "stopped retrying PostgreSQL, which is out of reach, as this process was asked to stop (leases re-queue what it held); last error: \(last)"
        case .unexpectedResult(let m):
            return "unexpected result from PostgreSQL: \(m)"
        case .notAStore(let url, let reason):
            return "\(url) is not a PBTWave trial store (\(reason)); use a dedicated database, or a schema of its own "
                + "(?options=-csearch_path%3DNAME in the URL)"
        case .noStore(let url):
            return "\(url) holds no PBTWave trial store (none of its tables): check the database (and search_path) in the URL; "
                + "the first run started on it makes one. Nothing was changed"
        case .schemaVersion(let url, let found, let supported):
            return "\(url) has trial-store schema version \(found), this build supports \(supported)"
        }
    }

    public var errorDescription: String? { description }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
    /// The statement on one line, shortened, for error messages.
    var oneLine: String {
        let words = split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return words.count > 160 ? String(words.prefix(157)) + "..." : words
    }
}

/// `url` with any password replaced by `***`, for messages and logs: the
/// user-info's (up to the authority's last `@`, so a password holding an
/// unescaped `@` is masked whole) and a `password=` parameter's.
public func redactedPostgresURL(_ url: String) -> String {
    // postgres://user:secret@host/db?password=secret  →  postgres://user:***@host/db?password=***
    let masked = url.replacingOccurrences(of: #"(?i)password\s*=\s*[^&\s]+"#, with: "password=***", options: .regularExpression)
    guard let scheme = masked.range(of: "://") else { return masked }
    let rest = masked[scheme.upperBound...]
    let authority = rest[..<(rest.firstIndex(of: "?") ?? rest.endIndex)]
    guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return masked }
    return String(masked[..<colon]) + ":***" + String(masked[at...])
}

extension PostgresError: StoreGaveUp {
    /// The retries of an outage ran out, or a stop ended them.
    public var storeGaveUp: Bool {
        switch self {
        case .retriesExhausted, .stoppedRetrying: true
        default: false
        }
    }
}
