import Foundation

/// The durable record of PBT runs: runs, trials, selections and the
/// controller's state. `SQLTrialStore` implements it once for SQLite
/// (`SQLiteTrialStore`, one machine, embedded) and PostgreSQL
/// (`PostgresTrialStore` in PBTPostgres, several machines).
///
/// A backend supplies storage and locking only; every PBT decision is made
/// by `PBTCoordinator` (which calls the pure `PBTController`) inside
/// `withDecision`, so all backends decide identically.
///
/// Concurrency contract, which the PostgreSQL backend maps as noted:
/// - `claim` is atomic per trial and never hands one trial to two workers
///   at once (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `SELECT … ORDER BY id
///   LIMIT 1 FOR UPDATE SKIP LOCKED` then `UPDATE`). Claims need not be
///   serialized with decisions: decisions only read whether a trial is
///   pending, which a claim does not change.
/// - `withDecision` bodies on one run are serialized and atomic (SQLite:
///   `BEGIN IMMEDIATE`; PostgreSQL: `SELECT … FROM runs WHERE id = $1 FOR
///   UPDATE` at the start of the transaction). A thrown error rolls back.
/// - Times are seconds since 1970 as `Double`, passed in by the caller, so
///   tests control the clock and machines need no shared clock for ordering.
///   Callers take them from `now()`, the store's clock, so that the leases
///   of workers on several machines are times on one clock.
public protocol TrialStore: Sendable {
    /// The time for leases and records, in seconds since 1970, on the
    /// store's clock: this machine's for a local store (the default), the
    /// server's for a store on a server, so that a worker whose clock is off
    /// neither takes over live trials nor waits too long for dead ones.
    func now() -> Double
    /// Gives up retrying a store that is out of reach, now and from now on
    /// (a process asked to stop: its trials come back through their
    /// leases). A requirement, so that it reaches the store through `any
    /// TrialStore`; a local store has nothing to give up (the default).
    func stopRetrying()

    /// Creates run `name` with its controller state and first trials in one
    /// transaction. Throws `PBTStoreError.runExists` if the name is taken.
    func createRun(name: String, configJSON: String, seed: UInt64, state: ControllerState,
                   trials: [TrialSpec], now: Double) throws -> RunRecord

    func run(named name: String) throws -> RunRecord?
    /// Names of all runs in the store, oldest first (for messages).
    func runNames() throws -> [String]

    /// Hands the lowest-id queued trial — or, if none, the lowest-id running
    /// trial whose lease has expired (its worker is presumed dead) — to
    /// `workerID`: status running, attempt + 1, started now, lease until
    /// `leaseUntil`. Returns nil when nothing is claimable. With `below`,
    /// only trials with a lower id are considered (deterministic mode: a
    /// worker waiting to report trial k takes over a lower id whose worker
    /// died).
    func claim(runID: Int64, workerID: String, now: Double, leaseUntil: Double, below: Int?) throws -> TrialRecord?

    /// Extends the lease of a trial this worker still holds (same attempt).
    /// False if the trial was taken away (lease expired and re-claimed).
    func renewLease(runID: Int64, trialID: Int, attempt: Int, workerID: String, until: Double) throws -> Bool

    /// Gives back a trial this worker holds (same attempt) without a
    /// result: queued again, so any worker can claim it now instead of
    /// after its lease expires (a worker that stops, or fails for a reason
    /// that is no fault of the trial). False if it was no longer held.
    func releaseClaim(runID: Int64, trialID: Int, attempt: Int, workerID: String) throws -> Bool

    /// Puts every running trial of the run back in the queue. Only for a
    /// process that knows it is the run's sole user (e.g. holds the run
    /// directory's lock) and is resuming after a crash.
    func requeueRunning(runID: Int64) throws -> Int

    /// Runs `body` as one decision transaction on the run (see above).
    func withDecision<T: Sendable>(runID: Int64, _ body: (any DecisionTransaction) throws -> T) throws -> T

    /// Every trial of the run, in id order.
    func trials(runID: Int64) throws -> [TrialRecord]
    func trial(runID: Int64, id: Int) throws -> TrialRecord?
    /// Every selection of the run, in id order.
    func selections(runID: Int64) throws -> [SelectionRecord]
    func progress(runID: Int64) throws -> RunProgress

    /// Whether some trial with an id below `id` is still queued or running:
    /// deterministic mode reports results only in id order.
    func hasPendingTrial(runID: Int64, before id: Int) throws -> Bool
}

extension TrialStore {
    /// This machine's clock.
    public func now() -> Double { Date().timeIntervalSince1970 }

    /// Nothing to give up: a local store is not retried.
    public func stopRetrying() {}

    /// `claim(…, below: nil)`: any claimable trial.
    public func claim(runID: Int64, workerID: String, now: Double, leaseUntil: Double) throws -> TrialRecord? {
        try claim(runID: runID, workerID: workerID, now: now, leaseUntil: leaseUntil, below: nil)
    }
}

/// The reads and writes a decision needs, all inside one transaction.
public protocol DecisionTransaction {
    func state() throws -> ControllerState
    func setState(_ state: ControllerState) throws
    func trial(id: Int) throws -> TrialRecord?
    /// Every trial whose generation is in `generations`, any status, in id order.
    func trials(inGenerations generations: ClosedRange<Int>) throws -> [TrialRecord]
    /// Every queued or running trial.
    func pendingTrials() throws -> [TrialRecord]
    /// The queued and running trials' lowest generation (nil: none) and
    /// their parents' ids: what releasing checkpoints needs of them,
    /// without reading their records.
    func pendingGenerationsAndParents() throws -> (minGeneration: Int?, parentIDs: Set<Int>)
    /// How many trials of `generation` are finished (retired ones included).
    func finishedCount(generation: Int) throws -> Int
    /// Records a running trial's end. `checkpointPath` (finished only) makes
    /// its checkpoint live.
    func complete(trialID: Int, status: TrialStatus, evaluation: Double?, checkpointPath: String?,
                  finishedAt: Double, failure: String?) throws
    func insert(_ trials: [TrialSpec], createdAt: Double) throws
    func insert(_ selections: [SelectionRecord]) throws
    /// The selections whose initiators are of `generations` (all of them: `0...Int(Int32.max)`), in id order.
    func selections(initiatorGenerations generations: ClosedRange<Int>) throws -> [SelectionRecord]
    /// Replaces the run's stored configuration (a raised budget).
    func setConfiguration(_ json: String) throws
    /// Trials below `generation` whose checkpoint is still live and whose
    /// place in the population a finished successor has taken: the child of
    /// a selection they initiated, or a refill of that child (of a refill …)
    /// when it failed. Trials that have not reproduced, or whose child is
    /// still pending or failed unreplaced, are the population's current or
    /// final members (`Lineage.finalPopulation`), and keep their files
    /// (found by a helper: a member whose child failed when the budget was
    /// spent lost its checkpoint, the run's best among them). In id order.
    func releasableCheckpoints(belowGeneration generation: Int) throws -> [(id: Int, path: String)]
    /// Marks checkpoints released; the caller deletes the files after commit.
    func releaseCheckpoints(_ ids: [Int]) throws
    /// Retires a finished trial whose checkpoint cannot be read: its
    /// checkpoint is no longer live and `reason` is kept as its `failure`
    /// (`TrialRecord.isRetired`). A trial already retired keeps its first reason.
    func retire(trialID: Int, reason: String) throws
    /// The highest generation with a finished trial (-1: none).
    func latestFinishedGeneration() throws -> Int
    /// `TrialStore.claim` inside this transaction, so a worker's report and
    /// its next claim commit together.
    func claim(workerID: String, now: Double, leaseUntil: Double) throws -> TrialRecord?
}

/// The trial store's tables. Types are the common subset of SQLite and
/// PostgreSQL (`BIGINT`, `DOUBLE PRECISION`, `TEXT`); booleans are 0/1. Only
/// the runs' id column differs (SQLite's rowid alias, PostgreSQL's identity
/// column), so it comes from the dialect.
public enum TrialStoreSchema {
    /// The schema version this build reads and writes.
    public static let version = 1

    /// The trials table's columns in the order `SQLTrialStore` decodes them.
    public static let trialColumns = """
        id, generation, parent_id, hyperparameters, start_step, steps, seed, operations, refill_of, status, evaluation,
        checkpoint_path, checkpoint_live, worker_id, attempt, created_at, started_at, finished_at, lease_until, failure
        """
    /// The runs table's columns in the order `SQLTrialStore` decodes them.
    public static let runColumns =
        "id, name, config_json, seed, created_at, schema_version, rng_state, trials_created, selections_made, reproduced_through, done"

    /// Throws `PBTStoreError.schemaVersion` unless `version` is this build's.
    public static func check(version found: Int, location: String) throws(PBTStoreError) {
        guard found == version else { throw .schemaVersion(path: location, found: found, supported: version) }
    }

    /// The statements that create the current schema (version 1).
    public static func create(_ dialect: SQLDialect) -> String {
        """
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        CREATE TABLE runs (
            \(dialect.runIDColumn),
            name TEXT NOT NULL UNIQUE,
            config_json TEXT NOT NULL,
            seed BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            schema_version INTEGER NOT NULL,
            rng_state TEXT NOT NULL,
            trials_created INTEGER NOT NULL,
            selections_made INTEGER NOT NULL,
            reproduced_through INTEGER NOT NULL,
            done INTEGER NOT NULL
        );
        CREATE TABLE trials (
            run_id BIGINT NOT NULL REFERENCES runs (id),
            id INTEGER NOT NULL,
            generation INTEGER NOT NULL,
            parent_id INTEGER,
            hyperparameters TEXT NOT NULL,
            start_step BIGINT NOT NULL,
            steps BIGINT NOT NULL,
            seed BIGINT NOT NULL,
            operations TEXT NOT NULL,
            refill_of INTEGER,
            status TEXT NOT NULL,
            evaluation DOUBLE PRECISION,
            checkpoint_path TEXT,
            checkpoint_live INTEGER NOT NULL,
            worker_id TEXT,
            attempt INTEGER NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            lease_until DOUBLE PRECISION,
            failure TEXT,
            PRIMARY KEY (run_id, id)
        );
        CREATE INDEX trials_by_status ON trials (run_id, status, id);
        CREATE INDEX trials_by_generation ON trials (run_id, generation);
        CREATE INDEX trials_with_live_checkpoints ON trials (run_id, checkpoint_live, generation);
        CREATE TABLE selections (
            run_id BIGINT NOT NULL REFERENCES runs (id),
            id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            generation INTEGER NOT NULL,
            initiator_id INTEGER NOT NULL,
            opponent_id INTEGER,
            winner_id INTEGER NOT NULL,
            loser_id INTEGER,
            child_id INTEGER NOT NULL,
            PRIMARY KEY (run_id, id)
        );
        CREATE INDEX selections_by_initiator ON selections (run_id, initiator_id);
        """
    }
}

/// An error of a store that has stopped trying (a server out of reach for
/// longer than its retries, or a process asked to stop): the driver then
/// gives up the trials it holds rather than let their programs run on with
/// no store to report to.
public protocol StoreGaveUp: Error {
    var storeGaveUp: Bool { get }
}
