import ArgumentParser
import Foundation
import PBT
import PBTPostgres

/// Where a run's trial store lives: `--store sqlite:PATH | postgres://…`.
public enum StoreLocation: ExpressibleByArgument, Sendable, Hashable, CustomStringConvertible {
    /// An SQLite file (one machine; the default is `RUN_DIR/pbt.sqlite`).
    case sqlite(path: String)
    /// A PostgreSQL server (`postgres://` or `postgresql://` URL), for
    /// worker processes on several machines.
    case postgres(url: String)

    public init?(argument: String) {
        if argument.hasPrefix("sqlite:") {
            let path = String(argument.dropFirst("sqlite:".count))
            guard !path.isEmpty else { return nil }
            self = .sqlite(path: path)
        } else if argument.hasPrefix("postgres://") || argument.hasPrefix("postgresql://") {
            self = .postgres(url: argument)
        } else {
            return nil
        }
    }

    public static var defaultCompletionKind: CompletionKind { .default }

    /// For messages: the path, or the URL with its password masked.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url): return redactedPostgresURL(url)
        }
    }

    /// The store, for a process that shares it with others (no run-directory
    /// lock is taken; see `PBTCommand` for the single-process SQLite case).
    public func open() throws -> any TrialStore {
        switch self {
        case .sqlite(let path): return try SQLiteTrialStore(path: path)
        case .postgres(let url): return try PostgresTrialStore(url: url)
        }
    }
}
