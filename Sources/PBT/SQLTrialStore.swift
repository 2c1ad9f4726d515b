import PBTSeededRNG

/// The trial store on an SQL database, every statement written once for
/// SQLite and PostgreSQL (see `TrialStore` for the concurrency contract and
/// how each backend meets it).
///
/// The SQL is the common subset of both (`RETURNING` included: SQLite has it
/// since 3.35); locking clauses come from the backend's `SQLDialect`.
public final class SQLTrialStore<Database: SQLDatabase>: TrialStore {
    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    private var dialect: SQLDialect { database.dialect }

    public func now() -> Double { database.now() }

    public func stopRetrying() { database.stopRetrying() }

    /// `body` in a transaction, given 0 on its first run and, when a
    /// transient failure ran it again (a server out of reach), the seconds
    /// that have passed since: times computed before the transaction (a
    /// claim's lease) are moved by them, so what commits after an outage is
    /// as fresh as it would have been without one (found by a helper: a
    /// claim that waited out an outage committed a lease that had already
    /// ended, and another worker took the trial at once, so it ran twice).
    private func transactionShifted<T>(_ body: (Database.Connection, Double) throws -> T) throws -> T {
        let start = database.now()
        return try database.transaction(noting: { c, again in try body(c, again ? max(0, database.now() - start) : 0) })
    }

    // MARK: - Rows

    static func trial(_ r: Database.Connection.Row) throws -> TrialRecord {
        guard let status = TrialStatus(rawValue: r.text(9)) else {
            throw PBTStoreError.malformedRecord("trial \(r.text(0)) has status '\(r.text(9))'")
        }
        var t = TrialRecord(
            spec: TrialSpec(
                id: try r.int(0), generation: try r.int(1), parentID: try r.optionalInt(2),
                hyperparameters: try Hyperparameters(jsonText: r.text(3)), startStep: try r.int(4), steps: try r.int(5),
                seed: UInt64(bitPattern: try r.int64(6)), operations: r.text(7), refillOf: try r.optionalInt(8)),
            createdAt: try r.double(15))
        t.status = status
        t.evaluation = try r.optionalDouble(10)
        // Every finished trial was reported with a finite loss (a non-finite one fails it).
        guard status != .finished || t.evaluation?.isFinite == true else {
            throw PBTStoreError.malformedRecord("trial \(t.id) is finished but has no loss")
        }
        t.checkpointPath = r.optionalText(11)
        t.checkpointLive = try r.int(12) != 0
        t.workerID = r.optionalText(13)
        t.attempt = try r.int(14)
        t.startedAt = try r.optionalDouble(16)
        t.finishedAt = try r.optionalDouble(17)
        t.leaseUntil = try r.optionalDouble(18)
        t.failure = r.optionalText(19)
        return t
    }

    static func run(_ r: Database.Connection.Row) throws -> RunRecord {
        RunRecord(id: try r.int64(0), name: r.text(1), configJSON: r.text(2), seed: UInt64(bitPattern: try r.int64(3)),
                  createdAt: try r.double(4), schemaVersion: try r.int(5),
                  state: ControllerState(rng: try ControllerState.rng(fromText: r.text(6)), trialsCreated: try r.int(7),
                                         selectionsMade: try r.int(8), reproducedThrough: try r.int(9), done: try r.int(10) != 0))
    }

    static func selection(_ r: Database.Connection.Row) throws -> SelectionRecord {
        guard let kind = SelectionKind(rawValue: r.text(1)) else { throw PBTStoreError.malformedRecord("selection kind '\(r.text(1))'") }
        return SelectionRecord(id: try r.int(0), kind: kind, generation: try r.int(2), initiatorID: try r.int(3),
                               opponentID: try r.optionalInt(4), winnerID: try r.int(5), loserID: try r.optionalInt(6),
                               childID: try r.int(7))
    }

    static func insert(_ trials: [TrialSpec], runID: Int64, createdAt: Double, _ c: Database.Connection) throws {
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
                          trials: [TrialSpec], now: Double) throws -> RunRecord {
        do {
            return try database.transaction { c in
                guard try c.query("SELECT id FROM runs WHERE name = ?", [.text(name)], { try $0.int64(0) }).isEmpty else {
                    throw PBTStoreError.runExists(name)
                }
                let run = try c.query("""
                    INSERT INTO runs (name, config_json, seed, created_at, schema_version, rng_state, trials_created,
                        selections_made, reproduced_through, done)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    RETURNING \(TrialStoreSchema.runColumns)
                    """,
                    [.text(name), .text(configJSON), .int(Int64(bitPattern: seed)), .double(now), .int(TrialStoreSchema.version),
                     .text(state.rngText), .int(state.trialsCreated), .int(state.selectionsMade),
                     .int(state.reproducedThrough), .int(state.done ? 1 : 0)], Self.run)[0]
                try Self.insert(trials, runID: run.id, createdAt: now, c)
                return run
            }
        } catch where database.isUniqueViolation(error) {
            throw PBTStoreError.runExists(name)  // another process created it at the same moment
        }
    }

    public func run(named name: String) throws -> RunRecord? {
        try database.read { c in try c.query("SELECT \(TrialStoreSchema.runColumns) FROM runs WHERE name = ?", [.text(name)], Self.run).first }
    }

    /// Names of all runs in the store, oldest first.
    public func runNames() throws -> [String] {
        try database.read { c in try c.query("SELECT name FROM runs ORDER BY id", []) { $0.text(0) } }
    }

    public func claim(runID: Int64, workerID: String, now: Double, leaseUntil: Double, below: Int?) throws -> TrialRecord? {
        try transactionShifted { c, shift in
            try Self.claim(c, dialect: dialect, runID: runID, workerID: workerID, now: now + shift, leaseUntil: leaseUntil + shift, below: below)
        }
    }

    /// Picks the trial to hand out and leases it. With row locks (PostgreSQL)
    /// a trial another transaction is claiming or deciding on is passed
    /// over, never waited for.
    static func claim(
        _ c: Database.Connection, dialect: SQLDialect, runID: Int64, workerID: String, now: Double, leaseUntil: Double, below: Int? = nil
    ) throws -> TrialRecord? {
        // Only trials below `below`, if given (an Int, so no injection; "no
        // bound" is no clause, as the id column may be 32-bit).
        let idBound = below.map { " AND id < \($0)" } ?? ""
        // The oldest trial that is queued or whose lease has expired (its
        // worker died): an expired one is taken as soon as its lease ends,
        // not after every newer queued trial (in asynchronous mode the queue
        // is never empty before the end, and its slot would stand still).
        // Two lookups, each along the (run, status, id) index: the OR of the
        // two took the primary key in id order and read every finished trial
        // before the queue's first, so a claim cost O(trials) and a long run
        // O(trials²) (found by a helper: 16,000 one-step toy trials, 33 s).
        let expired = try c.query("""
            SELECT id FROM trials WHERE run_id = ? AND status = 'running' AND lease_until < ?\(idBound)
            ORDER BY id LIMIT 1\(dialect.forUpdateSkipLocked)
            """, [.int(runID), .double(now)]) { try $0.int(0) }.first
        let queuedBound = expired.map { " AND id < \($0)" } ?? ""
        let queued = try c.query("""
            SELECT id FROM trials WHERE run_id = ? AND status = 'queued'\(idBound)\(queuedBound)
            ORDER BY id LIMIT 1\(dialect.forUpdateSkipLocked)
            """, [.int(runID)]) { try $0.int(0) }.first
        guard let id = queued ?? expired else { return nil }
        return try c.query("""
            UPDATE trials SET status = 'running', worker_id = ?, attempt = attempt + 1, started_at = ?, lease_until = ?
            WHERE run_id = ? AND id = ?
            RETURNING \(TrialStoreSchema.trialColumns)
            """, [.text(workerID), .double(now), .double(leaseUntil), .int(runID), .int(id)], trial).first
    }

    public func renewLease(runID: Int64, trialID: Int, attempt: Int, workerID: String, until: Double) throws -> Bool {
        try transactionShifted { c, shift in
            try c.run("""
                UPDATE trials SET lease_until = ?
                WHERE run_id = ? AND id = ? AND status = 'running' AND attempt = ? AND worker_id = ?
                """, [.double(until + shift), .int(runID), .int(trialID), .int(attempt), .text(workerID)]) == 1
        }
    }

    public func releaseClaim(runID: Int64, trialID: Int, attempt: Int, workerID: String) throws -> Bool {
        try database.transaction { c in
            try c.run("""
                UPDATE trials SET status = 'queued', worker_id = NULL, lease_until = NULL
                WHERE run_id = ? AND id = ? AND status = 'running' AND attempt = ? AND worker_id = ?
                """, [.int(runID), .int(trialID), .int(attempt), .text(workerID)]) == 1
        }
    }

    public func requeueRunning(runID: Int64) throws -> Int {
        try database.transaction { c in
            try c.run("""
                UPDATE trials SET status = 'queued', worker_id = NULL, lease_until = NULL
                WHERE run_id = ? AND status = 'running'
                """, [.int(runID)])
        }
    }

    public func withDecision<T: Sendable>(runID: Int64, _ body: (any DecisionTransaction) throws -> T) throws -> T {
        try database.transaction { c in
            // Decisions on one run are serialized by the run row's lock
            // (SQLite: by the transaction's database lock).
            guard try !c.query("SELECT id FROM runs WHERE id = ?\(dialect.forUpdate)", [.int(runID)], { try $0.int64(0) }).isEmpty else {
                throw PBTStoreError.runNotFound("#\(runID)")
            }
            return try body(Decision(c: c, dialect: dialect, runID: runID))
        }
    }

    public func trials(runID: Int64) throws -> [TrialRecord] {
        try database.read { c in
            try c.query("SELECT \(TrialStoreSchema.trialColumns) FROM trials WHERE run_id = ? ORDER BY id", [.int(runID)], Self.trial)
        }
    }

    public func trial(runID: Int64, id: Int) throws -> TrialRecord? {
        try database.read { c in try Self.trial(c, runID: runID, id: id, lock: "") }
    }

    static func trial(_ c: Database.Connection, runID: Int64, id: Int, lock: String) throws -> TrialRecord? {
        try c.query("SELECT \(TrialStoreSchema.trialColumns) FROM trials WHERE run_id = ? AND id = ?\(lock)", [.int(runID), .int(id)], trial).first
    }

    public func selections(runID: Int64) throws -> [SelectionRecord] {
        try database.read { c in
            try c.query("""
                SELECT id, kind, generation, initiator_id, opponent_id, winner_id, loser_id, child_id
                FROM selections WHERE run_id = ? ORDER BY id
                """, [.int(runID)], Self.selection)
        }
    }

    public func progress(runID: Int64) throws -> RunProgress {
        // One transaction, so the counts and the best are one snapshot's.
        try database.transaction { c in
            var p = RunProgress()
            for (status, count) in try c.query("SELECT status, COUNT(*) FROM trials WHERE run_id = ? GROUP BY status",
                                                [.int(runID)], { ($0.text(0), try $0.int(1)) }) {
                try p.setCount(status: status, count: count)
            }
            p.latestGeneration = try Self.latestFinishedGeneration(c, runID: runID)
            p.best = try c.query("""
                SELECT id, evaluation FROM trials WHERE run_id = ? AND status = 'finished' AND failure IS NULL ORDER BY evaluation, id LIMIT 1
                """, [.int(runID)]) { RunProgress.Best(id: try $0.int(0), evaluation: try $0.double(1)) }.first
            return p
        }
    }

    static func latestFinishedGeneration(_ c: Database.Connection, runID: Int64) throws -> Int {
        try c.query("SELECT MAX(generation) FROM trials WHERE run_id = ? AND status = 'finished'", [.int(runID)]) {
            try $0.optionalInt(0)
        }.first.flatMap { $0 } ?? -1
    }

    public func hasPendingTrial(runID: Int64, before id: Int) throws -> Bool {
        try database.read { c in
            try !c.query("""
                SELECT id FROM trials WHERE run_id = ? AND id < ? AND status IN ('queued', 'running') LIMIT 1
                """, [.int(runID), .int(id)]) { try $0.int(0) }.isEmpty
        }
    }

    /// The decision transaction's reads and writes, on the transaction's connection.
    private struct Decision: DecisionTransaction {
        let c: Database.Connection
        let dialect: SQLDialect
        let runID: Int64

        func state() throws -> ControllerState {
            guard let run = try c.query("SELECT \(TrialStoreSchema.runColumns) FROM runs WHERE id = ?", [.int(runID)], SQLTrialStore.run).first
            else { throw PBTStoreError.runNotFound("#\(runID)") }
            return run.state
        }

        func setState(_ s: ControllerState) throws {
            try c.run("""
                UPDATE runs SET rng_state = ?, trials_created = ?, selections_made = ?, reproduced_through = ?, done = ? WHERE id = ?
                """, [.text(s.rngText), .int(s.trialsCreated), .int(s.selectionsMade),
                      .int(s.reproducedThrough), .int(s.done ? 1 : 0), .int(runID)])
        }

        /// Locks the row (PostgreSQL): the coordinator reads the reported
        /// trial here before writing its result, so a claim cannot take the
        /// trial away in between.
        func trial(id: Int) throws -> TrialRecord? {
            try SQLTrialStore.trial(c, runID: runID, id: id, lock: dialect.forUpdate)
        }

        func trials(inGenerations generations: ClosedRange<Int>) throws -> [TrialRecord] {
            try c.query("""
                SELECT \(TrialStoreSchema.trialColumns) FROM trials WHERE run_id = ? AND generation >= ? AND generation <= ? ORDER BY id
                """, [.int(runID), .int(generations.lowerBound), .int(generations.upperBound)], SQLTrialStore.trial)
        }

        func pendingTrials() throws -> [TrialRecord] {
            // No ORDER BY: with it SQLite's planner walks the primary key (all
            // trials); without, it uses trials_by_status. Sorted here instead.
            try c.query("""
                SELECT \(TrialStoreSchema.trialColumns) FROM trials WHERE run_id = ? AND status IN ('queued', 'running')
                """, [.int(runID)], SQLTrialStore.trial).sorted { $0.id < $1.id }
        }

        func pendingGenerationsAndParents() throws -> (minGeneration: Int?, parentIDs: Set<Int>) {
            var low: Int?
            var parents = Set<Int>()
            for (generation, parent) in try c.query("""
                SELECT generation, parent_id FROM trials WHERE run_id = ? AND status IN ('queued', 'running')
                """, [.int(runID)], { (try $0.int(0), try $0.optionalInt(1)) }) {
                low = min(low ?? generation, generation)
                if let parent { parents.insert(parent) }
            }
            return (low, parents)
        }

        func finishedCount(generation: Int) throws -> Int {
            try c.query("SELECT COUNT(*) FROM trials WHERE run_id = ? AND generation = ? AND status = 'finished'",
                        [.int(runID), .int(generation)]) { try $0.int(0) }.first ?? 0
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

        func insert(_ trials: [TrialSpec], createdAt: Double) throws {
            try SQLTrialStore.insert(trials, runID: runID, createdAt: createdAt, c)
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

        func selections(initiatorGenerations generations: ClosedRange<Int>) throws -> [SelectionRecord] {
            try c.query("""
                SELECT id, kind, generation, initiator_id, opponent_id, winner_id, loser_id, child_id
                FROM selections WHERE run_id = ? AND generation >= ? AND generation <= ? ORDER BY id
                """, [.int(runID), .int(generations.lowerBound), .int(generations.upperBound)], SQLTrialStore.selection)
        }

        func setConfiguration(_ json: String) throws {
            try c.run("UPDATE runs SET config_json = ? WHERE id = ?", [.text(json), .int(runID)])
        }

        func releasableCheckpoints(belowGeneration generation: Int) throws -> [(id: Int, path: String)] {
            // Each live trial below `generation` that initiated a selection, whether a child of its
            // finished, and whether one failed. (Correlated subqueries, so that the plan starts from
            // the few live trials: a join let SQLite's planner walk every selection of the run.)
            func child(_ status: TrialStatus) -> String {
                """
                CASE WHEN EXISTS (SELECT 1 FROM selections s JOIN trials k ON k.run_id = s.run_id AND k.id = s.child_id
                    WHERE s.run_id = t.run_id AND s.initiator_id = t.id AND k.status = '\(status.rawValue)') THEN 1 ELSE 0 END
                """
            }
            let rows = try c.query("""
                SELECT t.id, t.checkpoint_path, \(child(.finished)), \(child(.failed)) FROM trials t
                WHERE t.run_id = ? AND t.generation < ? AND t.checkpoint_live = 1
                  AND EXISTS (SELECT 1 FROM selections s WHERE s.run_id = t.run_id AND s.initiator_id = t.id)
                ORDER BY t.id
                """, [.int(runID), .int(generation)]) { (id: try $0.int(0), path: $0.text(1), finished: try $0.int(2) == 1, failed: try $0.int(3) == 1) }
            var releasable: [(id: Int, path: String)] = []
            for row in rows {
                var filled = row.finished
                if !filled, row.failed {
                    // A failed child's place goes to its refill (and a failed refill's to its own).
                    var failed = try c.query("""
                        SELECT k.id FROM selections s JOIN trials k ON k.run_id = s.run_id AND k.id = s.child_id
                        WHERE s.run_id = ? AND s.initiator_id = ? AND k.status = 'failed'
                        """, [.int(runID), .int(row.id)]) { try $0.int(0) }
                    while !filled, let child = failed.popLast() {
                        for (refill, status) in try c.query("SELECT id, status FROM trials WHERE run_id = ? AND refill_of = ?",
                                                            [.int(runID), .int(child)], { (try $0.int(0), $0.text(1)) }) {
                            if status == TrialStatus.finished.rawValue { filled = true } else if status == TrialStatus.failed.rawValue { failed.append(refill) }
                        }
                    }
                }
                if filled { releasable.append((row.id, row.path)) }
            }
            return releasable
        }

        func releaseCheckpoints(_ ids: [Int]) throws {
            for id in ids {
                try c.run("UPDATE trials SET checkpoint_live = 0 WHERE run_id = ? AND id = ?", [.int(runID), .int(id)])
            }
        }

        func retire(trialID: Int, reason: String) throws {
            try c.run("""
                UPDATE trials SET checkpoint_live = 0, failure = ?
                WHERE run_id = ? AND id = ? AND status = 'finished' AND failure IS NULL
                """, [.text(reason), .int(runID), .int(trialID)])
        }

        func claim(workerID: String, now: Double, leaseUntil: Double) throws -> TrialRecord? {
            try SQLTrialStore.claim(c, dialect: dialect, runID: runID, workerID: workerID, now: now, leaseUntil: leaseUntil)
        }

        func latestFinishedGeneration() throws -> Int {
            try SQLTrialStore.latestFinishedGeneration(c, runID: runID)
        }
    }
}
