import Foundation
import Synchronization

/// How often a transaction that failed transiently is run again.
public struct PostgresRetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included.
    public var maxAttempts: Int
    /// The wait before the first retry; it doubles, up to `maxDelaySeconds`.
    public var initialDelaySeconds: Double
    public var maxDelaySeconds: Double

    /// 30 attempts, waits of 25 ms doubling to at most 8 s (each shortened
    /// by a random jitter of up to half): 1.5–3 minutes of retrying in all,
    /// enough for a server restart, a minor upgrade or a failover, so a
    /// fleet of workers rides them out; a server gone for longer stops the
    /// workers (their trials come back through the leases). (It was 8
    /// attempts to 2 s, about 5 s: a restart stopped every worker.) The
    /// first connection, when a store is opened, is not retried: a wrong
    /// URL or a server that is down is reported at once.
    public static let standard = PostgresRetryPolicy(maxAttempts: 30, initialDelaySeconds: 0.025, maxDelaySeconds: 8)

    public init(maxAttempts: Int, initialDelaySeconds: Double, maxDelaySeconds: Double) {
        precondition(maxAttempts >= 1, "maxAttempts must be at least 1")
        self.maxAttempts = maxAttempts
        self.initialDelaySeconds = initialDelaySeconds
        self.maxDelaySeconds = maxDelaySeconds
    }

    /// The wait before retry `n` (1 = the first retry).
    func delay(beforeRetry n: Int) -> Double {
        min(maxDelaySeconds, initialDelaySeconds * Double(1 << min(n - 1, 20)))
    }

    /// The longest a transaction waits in all before it gives up (the
    /// jitter shortens each wait by up to half).
    public var longestWaitSeconds: Double {
        (1..<maxAttempts).map(delay(beforeRetry:)).reduce(0, +)
    }
}

/// Connections to one server, each used by one thread at a time (libpq
/// connections are not thread-safe). A user takes an idle connection or
/// opens a new one, and gives it back afterwards unless it broke; so there
/// are as many connections as threads that have used the pool at once.
public final class PostgresConnectionPool: Sendable {
    public let url: String
    public let retry: PostgresRetryPolicy
    /// Told when the server stops answering and when it answers again
    /// (once an outage for all threads), e.g. to show it: retries
    /// otherwise ride an outage out in silence.
    public let notice: (@Sendable (String) -> Void)?
    /// When the current outage began (monotonic clock), if one is on.
    private let outageStart = Mutex<ContinuousClock.Instant?>(nil)
    /// Set by `stopRetrying()`.
    private let stopping = Mutex(false)
    private let idle = Mutex<[PostgresConnection]>([])
    /// Idle connections beyond this are closed rather than kept.
    private let maxIdle = 32

    /// Opens one connection at once, so a wrong URL or a server that is
    /// down is reported here rather than at the first transaction.
    public let timeouts: PostgresTimeouts

    public init(url: String, retry: PostgresRetryPolicy = .standard, timeouts: PostgresTimeouts = .standard,
                notice: (@Sendable (String) -> Void)? = nil) throws {
        self.url = url
        self.retry = retry
        self.notice = notice
        self.timeouts = timeouts
        let first = try PostgresConnection(url: url, timeouts: timeouts)
        idle.withLock { $0.append(first) }
    }

    /// `body` with a connection of its own.
    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try idle.withLock { $0.popLast() } ?? PostgresConnection(url: url, timeouts: timeouts)
        defer {
            if connection.isUsable, !connection.inTransaction {
                idle.withLock { if $0.count < maxIdle { $0.append(connection) } }
            }
        }
        return try body(connection)
    }

    /// `body` as one transaction, run again (on a fresh connection if the
    /// old one broke) after a transient failure: serialization failure
    /// (40001), deadlock (40P01), server shutdown (57P0x), a lost connection
    /// before `COMMIT`, or no connection at all, up to `retry.maxAttempts`
    /// times in all. `body` must have no effects outside the transaction.
    /// A connection lost during `COMMIT` is not retried (the outcome is
    /// unknown): `PostgresError.commitOutcomeUnknown` is thrown.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try transaction(noting: { c, _ in try body(c) })
    }

    /// `transaction`, telling `body` whether this is a retry (false on the
    /// first attempt, even where that failed before `body` ran).
    public func transaction<T>(noting body: (PostgresConnection, _ again: Bool) throws -> T) throws -> T {
        try retrying { attempt in try withConnection { c in try c.transaction { try body(c, attempt > 1) } } }
    }

    /// `body` on a connection in autocommit mode (each statement its own
    /// transaction), for reads; retried like `transaction`.
    public func read<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try retrying { _ in try withConnection(body) }
    }

    /// Makes every retry give up at once, now and from now on, while the
    /// server is out of reach (`PostgresError.stoppedRetrying`): for a
    /// process asked to stop, which should not wait minutes for a server
    /// (found by a helper: two SIGINTs left a worker retrying for 4.5
    /// minutes). A statement that succeeds is not affected.
    public func stopRetrying() { stopping.withLock { $0 = true } }

    /// `operation`, run again after a transient error. The retries of one
    /// outage end together: every call gives up once the outage has lasted
    /// the policy's `longestWaitSeconds` (found by a helper: each call's 30
    /// attempts, one call after another, kept a worker retrying for 15
    /// minutes against an announced 3).
    private func retrying<T>(_ operation: (_ attempt: Int) throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                let result = try operation(attempt)
                // On any success, not only a retried one: a call that gave up ended its outage unended, and the
                // next short one was then fatal at once (found by a helper).
                outageEnded()
                return result
            } catch let error as PostgresError where error.isTransient {
                // A stop gives up on a server out of reach, not on a conflict (serialization failure, deadlock),
                // which the next attempt resolves: a graceful stop's reports still go through.
                if error.isOutage || error.isConnectionFailure, stopping.withLock({ $0 }) { throw PostgresError.stoppedRetrying(last: error.description) }
                if error.isOutage { outageBegan(error) }
                let outageSeconds = outageStart.withLock { $0 }.map { (ContinuousClock.now - $0) / .seconds(1) } ?? 0
                guard attempt < retry.maxAttempts, outageSeconds < retry.longestWaitSeconds else {
                    throw PostgresError.retriesExhausted(attempts: attempt, last: error.description)
                }
                if error.isConnectionFailure { closeIdle() }
                // Slept in slices, so that a stop is heard within a tenth of a second.
                let wake = ContinuousClock.now + .seconds(retry.delay(beforeRetry: attempt) * Double.random(in: 0.5...1))
                while ContinuousClock.now < wake, !stopping.withLock({ $0 }) {
                    Thread.sleep(forTimeInterval: min(0.1, max(0, (wake - ContinuousClock.now) / .seconds(1))))
                }
                attempt += 1
            }
        }
    }

    private func outageBegan(_ error: PostgresError) {
        let first = outageStart.withLock { start in
            defer { if start == nil { start = .now } }
            return start == nil
        }
        guard first, let notice else { return }
        let minutes = Int((retry.longestWaitSeconds / 60).rounded(.up))
        notice("""
            PostgreSQL at \(redactedPostgresURL(url)) is out of reach (\(error.firstLine)); \
            retrying for up to about \(minutes) minute\(minutes == 1 ? "" : "s") before giving up (a stop signal gives up at once)
            """)
    }

    private func outageEnded() {
        let start = outageStart.withLock { start in
            defer { start = nil }
            return start
        }
        guard let start, let notice else { return }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        notice("PostgreSQL at \(redactedPostgresURL(url)) answers again, after \(String(format: "%.1f", seconds)) s; carrying on")
    }

    /// Closes the idle connections (those in use are closed or kept when
    /// their users give them back). After a lost connection all of them go:
    /// the server has probably restarted, and libpq notices that an idle
    /// connection is dead only when it next uses it.
    public func closeIdle() {
        idle.withLock { $0.removeAll() }
    }
}
