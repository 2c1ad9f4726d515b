import CSQLite
import Foundation
import SeededRNG

/// The embedded trial store: one SQLite file (system libsqlite3), WAL
/// journal, `synchronous = NORMAL` (a killed process loses nothing that was
/// committed; a power cut may lose the last commits, never consistency),
/// a busy timeout, and `BEGIN IMMEDIATE` for every write transaction.
///
/// Within a process all threads share one connection behind a lock, so
/// claims and decisions are serialized without SQLite lock contention. The
/// lock is a blocking pthread mutex (`NSLock`) rather than `Mutex`, whose
/// spinning wasted ~8 % of the CPU with more worker threads than cores. Other
/// processes (e.g. `pbtwave lineage` during a run) may open the same file;
/// SQLite's locks and the busy timeout serialize them.
///
/// The SQL is deliberately plain (no UPSERT, no RETURNING, no JSON
/// functions); `PostgresTrialStore` mirrors these statements with `$n`
/// placeholders and its own locking clauses.
public final class SQLiteTrialStore: TrialStore, @unchecked Sendable {
    public static let schemaVersion = 1
    public let path: String
    // Guarded by `lock`: used only inside `locked`.
    private let connection: SQLiteConnection
    private let lock = NSLock()

    /// Opens (creating if needed) the store at `path` (`:memory:` for a
    /// private in-memory store). Throws `PBTStoreError.notAStore` for a file
    /// that is not an SQLite database or has no PBTWave schema, and
    /// `.schemaVersion` for a newer schema.
    public init(path: String) throws {
        self.path = path
        let c = try SQLiteConnection(path: path)
        if path != ":memory:" {
            // journal_mode returns a row; exec discards it.
            try c.exec("PRAGMA journal_mode = WAL")
            try c.exec("PRAGMA synchronous = NORMAL")
        }
        try Self.migrate(c)
        connection = c
    }

    private static func migrate(_ c: SQLiteConnection) throws {
        try c.immediateTransaction {
            let tables = try c.query("SELECT name FROM sqlite_master WHERE type = 'table'") { $0.text(0) }
            if tables.contains("schema_version") {
                let versions = try c.query("SELECT version FROM schema_version") { $0.int(0) }
                guard let v = versions.first else { throw PBTStoreError.notAStore(path: c.path, reason: "empty schema_version table") }
                guard v == schemaVersion else { throw PBTStoreError.schemaVersion(path: c.path, found: v, supported: schemaVersion) }
                return
            }
            guard tables.isEmpty else {
                throw PBTStoreError.notAStore(path: c.path, reason: "an SQLite database without a schema_version table")
            }
            try c.exec(Self.schema)
            try c.run("INSERT INTO schema_version (version) VALUES (?)", [.int(schemaVersion)])
        }
    }

    /// Version 1 of the schema (see `TrialStoreSchema`).
    static let schema = TrialStoreSchema.version1(runID: "id INTEGER PRIMARY KEY")

    private func locked<T>(_ body: (SQLiteConnection) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(connection)
    }

    // MARK: - Rows

    static let trialColumns = TrialStoreSchema.trialColumns

    static func trial(_ r: SQLRow) throws(PBTStoreError) -> TrialRecord {
        guard let status = TrialStatus(rawValue: r.text(9)) else { throw .malformedRecord("trial \(r.int(0)) has status '\(r.text(9))'") }
        var t = TrialRecord(
            planned: PlannedTrial(
                id: r.int(0), generation: r.int(1), parentID: r.optionalInt(2),
                hyperparameters: try Hyperparameters(jsonText: r.text(3)), startStep: r.int(4), steps: r.int(5),
                seed: UInt64(bitPattern: r.int64(6)), operations: r.text(7), refillOf: r.optionalInt(8)),
            createdAt: r.double(15))
        t.status = status
        t.evaluation = r.optionalDouble(10)
        t.checkpointPath = r.optionalText(11)
        t.checkpointLive = r.int(12) != 0
        t.workerID = r.optionalText(13)
        t.attempt = r.int(14)
        t.startedAt = r.optionalDouble(16)
        t.finishedAt = r.optionalDouble(17)
        t.leaseUntil = r.optionalDouble(18)
        t.failure = r.optionalText(19)
        return t
    }

    static let runColumns = TrialStoreSchema.runColumns

    static func run(_ r: SQLRow) throws(PBTStoreError) -> RunRecord {
        RunRecord(id: r.int64(0), name: r.text(1), configJSON: r.text(2), seed: UInt64(bitPattern: r.int64(3)),
                  createdAt: r.double(4), schemaVersion: r.int(5),
                  state: ControllerState(rng: try ControllerState.rng(fromText: r.text(6)), trialsCreated: r.int(7), selectionsMade: r.int(8),
                                         reproducedThrough: r.int(9), done: r.int(10) != 0))
    }

    static func insert(_ trials: [PlannedTrial], runID: Int64, createdAt: Double, _ c: SQLiteConnection) throws {
        for t in trials {
            try c.run("""
                INSERT INTO trials (run_id, id, generation, parent_id, hyperparameters, start_step, steps, seed, operations,
                    refill_of, status, checkpoint_live, attempt, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, 0, ?)
                """,
                [.int(runID), .int(t.id), .int(t.generation), .optionalInt(t.parentID), .text(t.hyperparameters.jsonText),
                 .int(t.startStep), .int(t.steps), .int(Int64(bitPattern: t.seed)), .text(t.operations),
                 .optionalInt(t.refillOf), .double(createdAt)])
        }
    }

    // MARK: - TrialStore

    public func createRun(name: String, configJSON: String, seed: UInt64, state: ControllerState,
                          trials: [PlannedTrial], now: Double) throws -> RunRecord {
        try locked { c in
            try c.immediateTransaction {
                guard try c.query("SELECT id FROM runs WHERE name = ?", [.text(name)], { $0.int(0) }).isEmpty else {
                    throw PBTStoreError.runExists(name)
                }
                try c.run("""
                    INSERT INTO runs (name, config_json, seed, created_at, schema_version, rng_state, trials_created,
                        selections_made, reproduced_through, done)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.text(name), .text(configJSON), .int(Int64(bitPattern: seed)), .double(now), .int(Self.schemaVersion),
                     .text(state.rngText), .int(state.trialsCreated), .int(state.selectionsMade),
                     .int(state.reproducedThrough), .int(state.done ? 1 : 0)])
                let run = try c.query("SELECT \(Self.runColumns) FROM runs WHERE name = ?", [.text(name)], Self.run)[0]
                try Self.insert(trials, runID: run.id, createdAt: now, c)
                return run
            }
        }
    }

    public func run(named name: String) throws -> RunRecord? {
        try locked { c in try c.query("SELECT \(Self.runColumns) FROM runs WHERE name = ?", [.text(name)], Self.run).first }
    }

    /// Names of all runs in the store, oldest first.
    public func runNames() throws -> [String] {
        try locked { c in try c.query("SELECT name FROM runs ORDER BY id") { $0.text(0) } }
    }

    public func claim(runID: Int64, workerID: String, now: Double, leaseUntil: Double, below: Int?) throws -> TrialRecord? {
        try locked { c in
            try c.immediateTransaction {
                try Self.claim(c, runID: runID, workerID: workerID, now: now, leaseUntil: leaseUntil, below: below)
            }
        }
    }

    static func claim(
        _ c: SQLiteConnection, runID: Int64, workerID: String, now: Double, leaseUntil: Double, below: Int? = nil
    ) throws -> TrialRecord? {
        // Only trials below `below`, if given (an Int, so no injection).
        let idBound = below.map { " AND id < \($0)" } ?? ""
        var id = try c.query("SELECT id FROM trials WHERE run_id = ? AND status = 'queued'\(idBound) ORDER BY id LIMIT 1",
                             [.int(runID)]) { $0.int(0) }.first
        if id == nil {
            id = try c.query("""
                SELECT id FROM trials WHERE run_id = ? AND status = 'running' AND lease_until < ?\(idBound) ORDER BY id LIMIT 1
                """, [.int(runID), .double(now)]) { $0.int(0) }.first
        }
        guard let id else { return nil }
        try c.run("""
            UPDATE trials SET status = 'running', worker_id = ?, attempt = attempt + 1, started_at = ?, lease_until = ?
            WHERE run_id = ? AND id = ?
            """, [.text(workerID), .double(now), .double(leaseUntil), .int(runID), .int(id)])
        return try c.query("SELECT \(trialColumns) FROM trials WHERE run_id = ? AND id = ?", [.int(runID), .int(id)], trial).first
    }

    public func renewLease(runID: Int64, trialID: Int, attempt: Int, workerID: String, until: Double) throws -> Bool {
        try locked { c in
            try c.immediateTransaction {
                try c.run("""
                    UPDATE trials SET lease_until = ?
                    WHERE run_id = ? AND id = ? AND status = 'running' AND attempt = ? AND worker_id = ?
                    """, [.double(until), .int(runID), .int(trialID), .int(attempt), .text(workerID)]) == 1
            }
        }
    }

    public func requeueRunning(runID: Int64) throws -> Int {
        try locked { c in
            try c.immediateTransaction {
                try c.run("""
                    UPDATE trials SET status = 'queued', worker_id = NULL, lease_until = NULL
                    WHERE run_id = ? AND status = 'running'
                    """, [.int(runID)])
            }
        }
    }

    public func withDecision<T: Sendable>(runID: Int64, _ body: (any DecisionTransaction) throws -> T) throws -> T {
        try locked { c in
            try c.immediateTransaction { try body(SQLiteDecision(c: c, runID: runID)) }
        }
    }

    public func trials(runID: Int64) throws -> [TrialRecord] {
        try locked { c in try c.query("SELECT \(Self.trialColumns) FROM trials WHERE run_id = ? ORDER BY id", [.int(runID)], Self.trial) }
    }

    public func trial(runID: Int64, id: Int) throws -> TrialRecord? {
        try locked { c in
            try c.query("SELECT \(Self.trialColumns) FROM trials WHERE run_id = ? AND id = ?", [.int(runID), .int(id)], Self.trial).first
        }
    }

    public func selections(runID: Int64) throws -> [SelectionRecord] {
        try locked { c in
            try c.query("""
                SELECT id, kind, generation, initiator_id, opponent_id, winner_id, loser_id, child_id
                FROM selections WHERE run_id = ? ORDER BY id
                """, [.int(runID)]) { (r: SQLRow) throws(PBTStoreError) -> SelectionRecord in
                guard let kind = SelectionKind(rawValue: r.text(1)) else { throw .malformedRecord("selection kind '\(r.text(1))'") }
                return SelectionRecord(id: r.int(0), kind: kind, generation: r.int(2), initiatorID: r.int(3), opponentID: r.optionalInt(4),
                                       winnerID: r.int(5), loserID: r.optionalInt(6), childID: r.int(7))
            }
        }
    }

    public func progress(runID: Int64) throws -> RunProgress {
        try locked { c in
            var p = RunProgress()
            for (status, count) in try c.query("SELECT status, COUNT(*) FROM trials WHERE run_id = ? GROUP BY status",
                                                [.int(runID)], { ($0.text(0), $0.int(1)) }) {
                try p.setCount(status: status, count: count)
            }
            p.latestGeneration = try c.query("SELECT MAX(generation) FROM trials WHERE run_id = ? AND status = 'finished'",
                                             [.int(runID)]) { $0.optionalInt(0) }.first.flatMap { $0 } ?? -1
            p.best = try c.query("""
                SELECT id, evaluation FROM trials WHERE run_id = ? AND status = 'finished' ORDER BY evaluation, id LIMIT 1
                """, [.int(runID)]) { RunProgress.Best(id: $0.int(0), evaluation: $0.double(1)) }.first
            return p
        }
    }

    public func hasPendingTrial(runID: Int64, before id: Int) throws -> Bool {
        try locked { c in
            try !c.query("""
                SELECT id FROM trials WHERE run_id = ? AND id < ? AND status IN ('queued', 'running') LIMIT 1
                """, [.int(runID), .int(id)]) { $0.int(0) }.isEmpty
        }
    }
}

/// The decision transaction's reads and writes, on the locked connection.
private struct SQLiteDecision: DecisionTransaction {
    let c: SQLiteConnection
    let runID: Int64

    func state() throws -> ControllerState {
        guard let run = try c.query("SELECT \(SQLiteTrialStore.runColumns) FROM runs WHERE id = ?", [.int(runID)], SQLiteTrialStore.run).first
        else { throw PBTStoreError.runNotFound("#\(runID)") }
        return run.state
    }

    func setState(_ s: ControllerState) throws {
        try c.run("""
            UPDATE runs SET rng_state = ?, trials_created = ?, selections_made = ?, reproduced_through = ?, done = ? WHERE id = ?
            """, [.text(s.rngText), .int(s.trialsCreated), .int(s.selectionsMade),
                  .int(s.reproducedThrough), .int(s.done ? 1 : 0), .int(runID)])
    }

    func trial(id: Int) throws -> TrialRecord? {
        try c.query("SELECT \(SQLiteTrialStore.trialColumns) FROM trials WHERE run_id = ? AND id = ?",
                    [.int(runID), .int(id)], SQLiteTrialStore.trial).first
    }

    func trials(inGenerations generations: ClosedRange<Int>) throws -> [TrialRecord] {
        try c.query("""
            SELECT \(SQLiteTrialStore.trialColumns) FROM trials WHERE run_id = ? AND generation >= ? AND generation <= ? ORDER BY id
            """, [.int(runID), .int(generations.lowerBound), .int(generations.upperBound)], SQLiteTrialStore.trial)
    }

    func pendingTrials() throws -> [TrialRecord] {
        // No ORDER BY: with it the planner walks the primary key (all trials);
        // without, it uses trials_by_status. Sorted here instead.
        try c.query("""
            SELECT \(SQLiteTrialStore.trialColumns) FROM trials WHERE run_id = ? AND status IN ('queued', 'running')
            """, [.int(runID)], SQLiteTrialStore.trial).sorted { $0.id < $1.id }
    }

    func complete(trialID: Int, status: TrialStatus, evaluation: Double?, checkpointPath: String?,
                  finishedAt: Double, failure: String?) throws {
        try c.run("""
            UPDATE trials SET status = ?, evaluation = ?, checkpoint_path = ?, checkpoint_live = ?, finished_at = ?,
                lease_until = NULL, failure = ?
            WHERE run_id = ? AND id = ?
            """, [.text(status.rawValue), .optionalDouble(evaluation), .optionalText(checkpointPath),
                  .int(checkpointPath == nil ? 0 : 1), .double(finishedAt), .optionalText(failure), .int(runID), .int(trialID)])
    }

    func insert(_ trials: [PlannedTrial], createdAt: Double) throws {
        try SQLiteTrialStore.insert(trials, runID: runID, createdAt: createdAt, c)
    }

    func insert(_ selections: [SelectionRecord]) throws {
        for s in selections {
            try c.run("""
                INSERT INTO selections (run_id, id, kind, generation, initiator_id, opponent_id, winner_id, loser_id, child_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.int(runID), .int(s.id), .text(s.kind.rawValue), .int(s.generation), .int(s.initiatorID),
                      .optionalInt(s.opponentID), .int(s.winnerID), .optionalInt(s.loserID), .int(s.childID)])
        }
    }

    func releasableCheckpoints(belowGeneration generation: Int) throws -> [(id: Int, path: String)] {
        try c.query("""
            SELECT t.id, t.checkpoint_path FROM trials t
            WHERE t.run_id = ? AND t.generation < ? AND t.checkpoint_live = 1
              AND EXISTS (SELECT 1 FROM selections s WHERE s.run_id = t.run_id AND s.initiator_id = t.id)
            ORDER BY t.id
            """, [.int(runID), .int(generation)]) { (id: $0.int(0), path: $0.text(1)) }
    }

    func releaseCheckpoints(_ ids: [Int]) throws {
        for id in ids {
            try c.run("UPDATE trials SET checkpoint_live = 0 WHERE run_id = ? AND id = ?", [.int(runID), .int(id)])
        }
    }

    func claim(workerID: String, now: Double, leaseUntil: Double) throws -> TrialRecord? {
        try SQLiteTrialStore.claim(c, runID: runID, workerID: workerID, now: now, leaseUntil: leaseUntil)
    }

    func latestFinishedGeneration() throws -> Int {
        try c.query("SELECT MAX(generation) FROM trials WHERE run_id = ? AND status = 'finished'", [.int(runID)]) {
            $0.optionalInt(0)
        }.first.flatMap { $0 } ?? -1
    }
}
