import Dispatch
import Foundation
@testable import PBTPostgres
import PBTSeededRNG
import Synchronization
import Testing

@testable import PBT
import PBTExamples

/// The PostgreSQL backend against a real server (see `PostgresTestServer`):
/// the generic store contract, the same deterministic run as SQLite, leases,
/// concurrency across connection pools (as across processes), and errors.
/// `swift test --filter PBTPostgres` runs exactly these.
@Suite(.postgresServer) struct PBTPostgresTests {
    /// Every form of a password is masked in messages (no server needed).
    @Test func passwordsAreMaskedInEveryForm() {
        let cases = [
            ("postgres://u:secret@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgresql://u@h/db?password=hunter2", "postgresql://u@h/db?password=***"),
            ("postgresql://u@h/db?sslmode=require&password=hunter2&x=1", "postgresql://u@h/db?sslmode=require&password=***&x=1"),
            ("postgresql://u:hunt@er2@h:1/db", "postgresql://u:***@h:1/db"),
            ("postgresql://u:a:b@h/db?PASSWORD=c", "postgresql://u:***@h/db?password=***"),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
        ]
        for (url, masked) in cases {
            #expect(redactedPostgresURL(url) == masked, "\(url)")
            for secret in ["secret", "hunter2", "hunt", "er2", "a:b"] where url.contains(secret) && !masked.contains(secret) {
                #expect(!redactedPostgresURL(url).contains(secret), "\(url)")
            }
        }
    }

    @Test func conformance() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        try TrialStoreConformance.check { try stores.makeStore() }
    }

    @Test func aCompleteRunsBudgetIsRaised() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        try BudgetRaiseChecks.check { try stores.makeStore() }
    }

    /// The run `configuration` describes, on SQLite in `dir`/sqlite with the
    /// toy runner: the reference the PostgreSQL runs are compared with.
    func sqliteReferenceRun(_ configuration: RunConfiguration, in dir: TemporaryDirectory) throws
        -> (PBTRunResult, RunDirectory, PBTCoordinator) {
        let sqliteDir = dir.url.appendingPathComponent("sqlite")
        let directory = try RunDirectory(sqliteDir, create: true, lock: true)
        let (coordinator, _) = try PBTCoordinator.open(store: directory.store, name: "r", configuration: configuration, runDirectory: sqliteDir)
        return (try PBTDriver(coordinator: coordinator, runner: ToyQuadraticRunner()).run(), directory, coordinator)
    }

    /// Same settings, same seed, deterministic mode: the SQLite and the
    /// PostgreSQL store produce the same trial and selection tables, bit for
    /// bit (times, workers and attempts aside).
    @Test(arguments: [(8, 4), (4, 4)])
    func deterministicRunMatchesSQLite(population: Int, workers: Int) throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: population, workers: workers, trialSteps: 20, budget: .generations(8), seed: 9,
                                    deterministic: true)
        let configuration = RunConfiguration(settings: settings, model: "toy")

        let (a, directory, onSQLite) = try sqliteReferenceRun(configuration, in: dir)

        let postgres = try stores.makeStore()
        let (onPostgres, _) = try PBTCoordinator.open(store: postgres, name: "r", configuration: configuration,
                                                       runDirectory: dir.url.appendingPathComponent("postgres"))
        let b = try PBTDriver(coordinator: onPostgres, runner: ToyQuadraticRunner()).run()

        #expect(a.done && b.done)
        #expect(b.trials.count == settings.trialBudget)
        expectSameRows(a.trials.map(\.lineageFields), b.trials.map(\.lineageFields))
        #expect(try directory.store.selections(runID: onSQLite.run.id) == postgres.selections(runID: onPostgres.run.id))
        #expect(try directory.store.run(named: "r")?.state == postgres.run(named: "r")?.state, "controller state, RNG included")
        #expect(a.best?.id == b.best?.id)
        expectConsistentRun(b.trials, try postgres.selections(runID: onPostgres.run.id), settings: settings)
    }

    /// Deterministic mode across processes: a worker elsewhere claimed the
    /// first trial and died. The workers here finish later ids, wait to
    /// report in id order, and take the orphan over once its lease expires:
    /// the run ends with the same decisions as a run on SQLite nobody killed.
    @Test func deterministicWorkersTakeOverADeadWorkersTrial() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 4, workers: 3, trialSteps: 10, budget: .generations(4), seed: 13, deterministic: true)
        let configuration = RunConfiguration(settings: settings, model: "toy")
        let (clean, _, _) = try sqliteReferenceRun(configuration, in: dir)

        let postgres = try stores.makeStore()
        let (c, _) = try PBTCoordinator.open(store: postgres, name: "r", configuration: configuration,
                                             runDirectory: dir.url.appendingPathComponent("postgres"))
        let now = Date().timeIntervalSince1970
        let orphan = try #require(try postgres.claim(runID: c.run.id, workerID: "elsewhere:1/w0", now: now, leaseUntil: now + 0.5))
        let driver = PBTDriver(coordinator: c, runner: ToyQuadraticRunner(), options: DriverOptions(leaseSeconds: 5))
        guard let result = try runWithin(30, driver, what: "the workers, waiting for the dead worker's trial") else { return }
        #expect(result.done)
        #expect(result.trials.first { $0.id == orphan.id }?.attempt == 2)
        expectSameRows(decisionFields(result.trials), decisionFields(clean.trials))
    }

    /// A worker dies holding a trial: once its lease expires another worker
    /// gets the trial (attempt 2); the dead worker's late report is ignored
    /// and its output deleted; the new attempt's report counts.
    @Test func leaseExpiryRequeuesADeadWorkersTrialAndItsLateReportIsIgnored() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try stores.makeStore()
        let (c, _) = try PBTCoordinator.open(store: store, name: "r", configuration: RunConfiguration(settings: testSettings(population: 2, workers: 2), model: "test"),
                                             runDirectory: dir.url, now: 1000)
        guard case .trial(let dead) = try c.claim(workerID: "dead", now: 1000, leaseSeconds: 30) else { throw TestFailure("no trial") }
        guard case .trial(let other) = try c.claim(workerID: "alive", now: 1000, leaseSeconds: 30) else { throw TestFailure("no trial") }
        #expect(dead.spec.id == 1 && other.spec.id == 2)

        // Before the lease runs out nothing is claimable; heartbeats keep a live worker's lease.
        #expect(try c.claim(workerID: "late", now: 1029, leaseSeconds: 30) == .wait)
        #expect(try store.renewLease(runID: c.run.id, trialID: 2, attempt: 1, workerID: "alive", until: 2000))
        #expect(try store.renewLease(runID: c.run.id, trialID: 1, attempt: 1, workerID: "alive", until: 2000) == false,
                "only the holder renews")

        // Trial 1's lease (until 1030) has expired, trial 2's (renewed) has not.
        guard case .trial(let rerun) = try c.claim(workerID: "late", now: 1031, leaseSeconds: 30) else {
            throw TestFailure("the expired trial was not re-claimed")
        }
        #expect(rerun.spec.id == 1)
        #expect(rerun.attempt == 2)
        #expect(rerun.output != dead.output)
        #expect(try c.claim(workerID: "late2", now: 1031, leaseSeconds: 30) == .wait, "trial 2 is still leased")
        #expect(try store.renewLease(runID: c.run.id, trialID: 1, attempt: 1, workerID: "dead", until: 3000) == false,
                "the dead worker's heartbeat no longer renews anything")

        // The "dead" worker was only slow: its result arrives late and is ignored.
        _ = try NoOpRunner().run(dead.spec, parent: nil, output: dead.output)
        let late = try c.report(dead, result: .success(TrialOutcome(evaluation: 0.125)), now: 1040)
        #expect(!late.accepted)
        #expect(!FileManager.default.fileExists(atPath: dead.output.path), "the late output is deleted")
        let stillRunning = try #require(try store.trial(runID: c.run.id, id: 1))
        #expect(stillRunning.status == .running && stillRunning.attempt == 2 && stillRunning.workerID == "late")

        _ = try NoOpRunner().run(rerun.spec, parent: nil, output: rerun.output)
        let fresh = try c.report(rerun, result: .success(TrialOutcome(evaluation: 0.25)), now: 1050)
        #expect(fresh.accepted)
        let t = try #require(try store.trial(runID: c.run.id, id: 1))
        #expect(t.status == .finished && t.evaluation == 0.25 && t.attempt == 2)
        #expect(t.checkpointPath == "\(c.checkpoints.namespace)/trial-1.2.ckpt")
        #expect(FileManager.default.fileExists(atPath: rerun.output.path))
        // A second, duplicate report of the same attempt changes nothing either.
        #expect(try c.report(rerun, result: .success(TrialOutcome(evaluation: 0.5)), now: 1060).accepted == false)
        #expect(try store.trial(runID: c.run.id, id: 1)?.evaluation == 0.25)
    }

    /// While a decision is recording a trial's result, a claim on another
    /// connection cannot re-claim that trial even if its lease has expired:
    /// the decision's read locks the row and the claim skips locked rows.
    /// So the coordinator's "does this worker still hold the attempt?" check
    /// and the result it writes cannot be split by a claim.
    @Test func aClaimCannotTakeATrialAwayFromADecisionInProgress() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let store = try stores.makeStore()
        let other = try PostgresTrialStore(url: store.pool.url)
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 0, state: TrialStoreConformance.state(1),
                                      trials: [TrialStoreConformance.planned(1)], now: 0)
        _ = try store.claim(runID: run.id, workerID: "slow", now: 0, leaseUntil: 10)
        let duringDecision = try store.withDecision(runID: run.id) { tx -> TrialRecord? in
            let held = try tx.trial(id: 1)
            #expect(held?.workerID == "slow" && held?.attempt == 1)
            let stolen = try other.claim(runID: run.id, workerID: "thief", now: 20, leaseUntil: 30)  // lease expired at 10
            try tx.complete(trialID: 1, status: .finished, evaluation: 0.5, checkpointPath: "checkpoints/trial-1.1.ckpt",
                            finishedAt: 20, failure: nil)
            return stolen
        }
        #expect(duringDecision == nil, "the locked trial was skipped")
        #expect(try other.claim(runID: run.id, workerID: "thief", now: 21, leaseUntil: 30) == nil, "and is finished now")
        let t = try #require(try other.trial(runID: run.id, id: 1))
        #expect(t.status == .finished && t.attempt == 1 && t.workerID == "slow")
    }

    /// Many threads on several connection pools (as if several processes)
    /// claim at once: no trial is handed out twice.
    @Test func concurrentClaimsFromManyThreadsNeverDuplicate() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let first = try stores.makeStore()
        let url = first.pool.url
        let pools = [first, try PostgresTrialStore(url: url), try PostgresTrialStore(url: url)]
        let trials = (1...600).map { TrialStoreConformance.planned($0) }
        let run = try first.createRun(name: "r", configJSON: "{}", seed: 0, state: TrialStoreConformance.state(600), trials: trials, now: 0)
        let claimed = Mutex<[Int: [String]]>([:])
        let failures = Mutex<[String]>([])
        // Real threads (concurrentPerform would use one per core), released together.
        let ready = DispatchGroup(), go = DispatchSemaphore(value: 0), done = DispatchGroup()
        for worker in 0..<12 {
            ready.enter()
            done.enter()
            Thread {
                let store = pools[worker % pools.count]
                ready.leave()
                go.wait()
                do {
                    while let t = try store.claim(runID: run.id, workerID: "w\(worker)", now: 0, leaseUntil: 1e9) {
                        claimed.withLock { $0[t.id, default: []].append("w\(worker)") }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
                done.leave()
            }.start()
        }
        ready.wait()
        for _ in 0..<12 { go.signal() }
        done.wait()
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let byTrial = claimed.withLock { $0 }
        #expect(byTrial.keys.sorted() == Array(1...600))
        let twice = byTrial.filter { $0.value.count > 1 }
        #expect(twice.isEmpty, "handed out more than once: \(twice.keys.sorted().prefix(10))")
        let stored = try first.trials(runID: run.id)
        #expect(stored.allSatisfy { $0.status == .running && $0.attempt == 1 })
        let holders = Dictionary(uniqueKeysWithValues: stored.map { ($0.id, [$0.workerID!]) })
        #expect(holders == byTrial, "the stored holder is the one that got it")
    }

    /// Two drivers on separate connection pools run one run to the end at
    /// once (two "processes" of 4 threads): every trial finishes exactly
    /// once, decisions are consistent, the budget is used exactly.
    @Test(arguments: [(4, 8), (12, 8)])
    func twoProcessesShareOneRun(population: Int, workersEach: Int) throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: population, workers: min(population, 4), trialSteps: 1, budget: .totalSteps(240), seed: 3)
        let configuration = RunConfiguration(settings: settings, model: "noop")
        let storeA = try stores.makeStore()
        let storeB = try PostgresTrialStore(url: storeA.pool.url)
        let (a, _) = try PBTCoordinator.open(store: storeA, name: "r", configuration: configuration, runDirectory: dir.url)
        let b = try PBTCoordinator.open(store: storeB, name: "r", runDirectory: dir.url)
        let results = Mutex<[Result<PBTRunResult, any Error>]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let options = DriverOptions(workers: workersEach / 2, workerIDPrefix: "process\(i)")
            let result = Result { try PBTDriver(coordinator: i == 0 ? a : b, runner: NoOpRunner(), options: options).run() }
            results.withLock { $0.append(result) }
        }
        let finished = try results.withLock { $0 }.map { try $0.get() }
        #expect(finished.allSatisfy { $0.done })
        #expect(finished.map(\.completedThisSession).reduce(0, +) == 240, "each trial reported once, by one process")
        let trials = try storeA.trials(runID: a.run.id)
        #expect(trials.allSatisfy { $0.status == .finished && $0.attempt == 1 })
        expectConsistentRun(trials, try storeA.selections(runID: a.run.id), settings: settings)
    }

    /// A server-side disconnect (here `pg_terminate_backend`, as in a
    /// server restart) between transactions is retried on a new connection,
    /// and the store says so: once when the server stops answering, once when
    /// it answers again.
    @Test func aLostConnectionIsRetried() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let name = "pbtretry\(UInt32.random(in: 0 ... .max))"
        let notices = Locked<[String]>([])
        let store = try stores.makeStore(applicationName: name, notice: { text in notices.withLock { $0.append(text) } })
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 0, state: TrialStoreConformance.state(2),
                                      trials: [TrialStoreConformance.planned(1), TrialStoreConformance.planned(2)], now: 0)
        let admin = try PostgresConnection(url: stores.server.url)
        let killed = try admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                                     [.text(name)]) { $0.text(0) }
        #expect(killed == ["t"], "the store's one idle connection was terminated")
        #expect(notices.withLock { $0 }.isEmpty, "nothing to say while the server answers")
        #expect(try store.claim(runID: run.id, workerID: "w", now: 0, leaseUntil: 10)?.id == 1)
        #expect(try store.trials(runID: run.id).map(\.status) == [.running, .queued])
        let said = notices.withLock { $0 }
        #expect(said.count == 2, "\(said)")
        #expect(said.first?.hasPrefix("PostgreSQL at postgresql://") == true && said.first?.contains("is out of reach (") == true
                && said.first?.contains("retrying for up to about 3 minutes before giving up (a stop signal gives up at once)") == true, "\(said)")
        #expect(said.last?.contains("answers again, after ") == true, "\(said)")
        // A client frozen inside a transaction cannot hold the run row's lock for long.
        #expect(try store.pool.withConnection { try $0.query("SHOW idle_in_transaction_session_timeout") { $0.text(0) } } == ["1min"])
        // The retried claim's lease is moved by the time the retry took (found by a helper: a claim that waited out an
        // outage committed a lease that had already ended, and another worker took the trial at once).
        let lease = try #require(try store.trials(runID: run.id).first?.leaseUntil)
        #expect(lease > 10, "the lease runs from when the claim committed: \(lease)")
        // A process asked to stop does not wait for a server out of reach: the next lost connection is not retried.
        // An outage a call gave up on ends at the next success, even a first-time one (found by a helper: it stayed
        // on for good, and the next short outage was then fatal at once, as if it had lasted since).
        let briefName = "pbtbrief\(UInt32.random(in: 0 ... .max))"
        let briefNotices = Locked<[String]>([])
        let (briefURL, briefSchema) = try stores.server.freshSchemaURL(applicationName: briefName)
        defer { stores.server.dropSchemas([briefSchema]) }
        let brief = try PostgresTrialStore(url: briefURL, retry: .init(maxAttempts: 1, initialDelaySeconds: 0, maxDelaySeconds: 0),
                                           notice: { text in briefNotices.withLock { $0.append(text) } })
        _ = try admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [.text(briefName)]) { $0.text(0) }
        let exhausted = #expect(throws: PostgresError.self) { try brief.runNames() }
        // Said with what became of the run and how to go on (found by a helper: only that it failed).
        if case .retriesExhausted = exhausted {
            #expect("\(exhausted!)".contains("the same command goes on with the run once the server is back"), "\(exhausted!)")
        } else { Issue.record("\(String(describing: exhausted))") }
        #expect(try brief.runNames() == [], "the server answers again")
        #expect(briefNotices.withLock { $0 }.last?.contains("answers again") == true, "the outage ended: \(briefNotices.withLock { $0 })")

        (store as any TrialStore).stopRetrying()  // as the command's signal handler reaches it
        _ = try admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [.text(name)]) { $0.text(0) }
        let stopped = #expect(throws: PostgresError.self) { try store.claim(runID: run.id, workerID: "w", now: 0, leaseUntil: 10) }
        if case .stoppedRetrying = stopped {} else { Issue.record("\(String(describing: stopped))") }
    }

    /// A machine whose clock is off the server's is told so when it opens
    /// the store (the times its programs print are off; its leases are not,
    /// they are times on the server's clock); one in step is not. The skew of this machine to the test server is measured for real.
    @Test func aClockFarOffTheServersIsNoted() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let notices = Locked<[String]>([])
        let store = try stores.makeStore(notice: { text in notices.withLock { $0.append(text) } })
        let skew = try store.database.measureClockSkew()
        #expect(abs(skew.seconds) < 1 && skew.uncertainty < 1, "the test server runs on this machine: \(skew)")
        #expect(notices.withLock { $0 }.isEmpty, "no note for a clock in step: \(notices.withLock { $0 })")

        #expect(PostgresDatabase.clockSkewNote((seconds: 1.5, uncertainty: 0.01)) == nil)
        #expect(PostgresDatabase.clockSkewNote((seconds: 2.5, uncertainty: 1)) == nil, "not surely beyond 2 s")
        let ahead = try #require(PostgresDatabase.clockSkewNote((seconds: 42.3, uncertainty: 0.01)))
        #expect(ahead.hasPrefix("this machine's clock is 42.3 s ahead of the PostgreSQL server's"), "\(ahead)")
        #expect(ahead.contains("Leases are timed on the server's clock"))
        let behind = try #require(PostgresDatabase.clockSkewNote((seconds: -7, uncertainty: 0.5)))
        #expect(behind.hasPrefix("this machine's clock is 7.0 s behind the PostgreSQL server's"), "\(behind)")
    }

    /// The store's clock is the server's, whatever this machine's says: it
    /// reads the server's clock, carries the reading on with the time that
    /// passes here (a local clock set off by days changes nothing), reads it
    /// again after `clockReadingSeconds`, and a claim leases on it.
    @Test func theStoresClockIsTheServers() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let local = Locked<Double>(3 * 86_400)
        let database = try PostgresDatabase(url: try stores.makeURL(), retry: .standard, timeouts: .standard, notice: nil,
                                            localClock: { local.withLock { $0 } })
        let store = PostgresTrialStore(database: database)
        func serverNow() throws -> Double {
            try #require(try store.pool.withConnection {
                try $0.query("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8") { try $0.double(0) }
            }.first)
        }
        let before = try serverNow()
        let read = store.now()
        #expect(abs(read - before) < 1, "the server's clock: \(read) against \(before)")
        // The reading goes on with the time that passes here, and is not taken again ...
        local.withLock { $0 += 30 }
        #expect(abs(store.now() - (read + 30)) < 1e-6)
        // ... until it is older than clockReadingSeconds.
        local.withLock { $0 += PostgresDatabase.clockReadingSeconds }
        let again = store.now()
        #expect(abs(again - (try serverNow())) < 1, "read again: \(again)")

        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (c, _) = try PBTCoordinator.open(store: store, name: "clock", configuration: RunConfiguration(settings: testSettings(), model: "test"),
                                             runDirectory: dir.url)
        guard case .trial(let claimed) = try c.claim(workerID: "w", leaseSeconds: 60) else { throw TestFailure("nothing to claim") }
        let trial = try #require(try store.trial(runID: c.run.id, id: claimed.spec.id))
        let lease = try #require(trial.leaseUntil), started = try #require(trial.startedAt)
        #expect(abs(lease - started - 60) < 1e-6)
        #expect(abs(started - again) < 1, "leased on the store's clock: started \(started), the store's now \(again)")
    }

    @Test func errorsSayWhatIsWrong() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        // Nobody listens on this port.
        let port = try PostgresTestServer.freeLoopbackPort()
        #expect {
            try PostgresTrialStore(url: "postgresql://someone:secret@127.0.0.1:\(port)/db", retry: .init(maxAttempts: 1, initialDelaySeconds: 0, maxDelaySeconds: 0))
        } throws: { error in
            guard case PostgresError.cannotConnect(let url, _) = error else { return false }
            return url == "postgresql://someone:***@127.0.0.1:\(port)/db" && "\(error)".contains("cannot connect to PostgreSQL")
                && !"\(error)".contains("secret")
        }

        // A database with someone else's `runs` table is not taken over.
        let (foreign, schema) = try stores.server.freshSchemaURL()
        defer { stores.server.dropSchemas([schema]) }
        try PostgresConnection(url: foreign).exec("CREATE TABLE runs (title TEXT)")
        #expect {
            try PostgresTrialStore(url: foreign)
        } throws: { error in
            guard case PostgresError.notAStore(_, let reason) = error else { return false }
            return reason.contains("runs")
        }

        // Opened to use a store, not make one (a worker, lineage), an empty schema is refused and left empty
        // (found by a helper: lineage on a mistyped database made our tables in it).
        let (empty, emptySchema) = try stores.server.freshSchemaURL()
        defer { stores.server.dropSchemas([emptySchema]) }
        #expect(throws: PostgresError.noStore(url: redactedPostgresURL(empty))) { try PostgresTrialStore(url: empty, creatingSchema: false) }
        let tables = try PostgresConnection(url: empty).query("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
                                                              [.text(emptySchema)]) { try $0.int(0) }
        #expect(tables == [0], "nothing was made")

        let store = try stores.makeStore()
        // Opening an existing store again keeps its data; two runs of one name cannot be created.
        let reopened = try PostgresTrialStore(url: store.pool.url, creatingSchema: false)
        _ = try store.createRun(name: "x", configJSON: "{}", seed: 0, state: TrialStoreConformance.state(0), trials: [], now: 0)
        #expect(try reopened.runNames() == ["x"])
        #expect(throws: PBTStoreError.runExists("x")) {
            try reopened.createRun(name: "x", configJSON: "{}", seed: 0, state: TrialStoreConformance.state(0), trials: [], now: 0)
        }

        // A newer schema is refused.
        try PostgresConnection(url: store.pool.url).exec("UPDATE schema_version SET version = 99")
        #expect(throws: PostgresError.schemaVersion(url: store.displayURL, found: 99, supported: 1)) {
            try PostgresTrialStore(url: store.pool.url)
        }

        // Statement errors carry the server's SQLSTATE and message.
        #expect {
            try PostgresConnection(url: stores.server.url).exec("SELECT * FROM no_such_table")
        } throws: { error in
            (error as? PostgresError)?.sqlState == "42P01" && "\(error)".contains("no_such_table")
        }
    }
}

/// The scale-out command line as a user runs it: `pbtwave pbt --store
/// postgres://… --local-workers 0` creates the run, two `pbtwave worker`
/// processes finish it, `pbt` again prints the result, `lineage --store`
/// reads it.
extension PBTPostgresTests {
    @Test func workerProcessesFinishARunCreatedOnTheCommandLine() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let url = try stores.makeURL()
        let runDir = dir.url.appendingPathComponent("shared").path
        let common = ["--store", url, "--run", "cli", "--run-dir", runDir]
        let settings = ["--model", "toy", "--workers", "2", "--population", "4", "--trial-steps", "5", "--generations", "3",
                        "--progress", "none"]
        let create = try runPBTWave(["pbt"] + common + settings + ["--local-workers", "0"])
        #expect(create.status == 0, "\(create.stderr)")
        #expect(create.stdout.contains("pbtwave worker --store"))
        #expect(!FileManager.default.fileExists(atPath: runDir + "/" + RunDirectory.storeFileName), "no SQLite store is made")

        let missing = try runPBTWave(["worker"] + ["--store", url, "--run", "nope", "--run-dir", runDir])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("holds no run named 'nope'"), "\(missing.stderr)")

        let elsewhere = try runPBTWave(["worker", "--store", url, "--run", "cli", "--run-dir", dir.url.appendingPathComponent("other").path])
        #expect(elsewhere.status != 0)
        #expect(elsewhere.stderr.contains("is not the directory of run 'cli' (no pbt-run.txt)"), "\(elsewhere.stderr)")

        // Two worker processes at once, output to files (a pipe each would need draining while both run).
        let workers = try (0..<2).map { i -> (Process, URL) in
            let log = dir.url.appendingPathComponent("worker\(i).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let process = Process()
            process.executableURL = try pbtwaveExecutable()
            process.arguments = ["worker"] + common + ["--workers", "2", "--progress", "none"]
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            return (process, log)
        }
        for (process, log) in workers {
            process.waitUntilExit()
            let output = try String(contentsOf: log, encoding: .utf8)
            #expect(process.terminationStatus == 0, "\(output)")
            #expect(output.contains("run complete"), "\(output)")
        }

        let again = try runPBTWave(["pbt"] + common + settings)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("run complete: 12/12 trials, 0 in this session"), "\(again.stdout)")
        #expect(FileManager.default.fileExists(atPath: runDir + "/schedule.csv"))
        // (A larger budget would raise the complete run's: BudgetRaiseChecks.)
        let other = try runPBTWave(["pbt"] + common + settings.map { $0 == "3" ? "2" : $0 })
        #expect(other.status != 0)
        #expect(other.stderr.contains("--total-steps/--generations: the run has --generations 3, this command has --generations 2"))

        let lineage = try runPBTWave(["lineage", "--store", url, "--run", "cli", "--tree"])
        #expect(lineage.status == 0, "\(lineage.stderr)")
        #expect(lineage.stdout.split(separator: "\n").count == 12)
        let store = try PostgresTrialStore(url: url)
        let run = try #require(try store.run(named: "cli"))
        let trials = try store.trials(runID: run.id)
        #expect(trials.allSatisfy { $0.status == .finished && $0.attempt == 1 })
        #expect(Set(trials.map { $0.workerID!.split(separator: "/")[0] }).count <= 2)
    }
}

/// The server's errors for the usual setup mistakes say what to do, and a
/// long statement does not bury the message (no server needed).
@Suite struct PostgresErrorTextTests {
    @Test func setupMistakesSayWhatToDo() {
        let create = "CREATE TABLE schema_version (version INTEGER NOT NULL); " + String(repeating: "CREATE TABLE runs (id BIGINT); ", count: 20)
        let text = PostgresError.server(sqlState: "3F000", message: "no schema has been selected to create in", detail: nil, statement: create).description
        #expect(text.contains("search_path names a schema that does not exist: create it (CREATE SCHEMA name)"), "\(text)")
        #expect(text.count < 400 && text.hasSuffix("..."), "the statement is cut: \(text)")
        let other = PostgresError.server(sqlState: "23505", message: "duplicate key", detail: nil, statement: "INSERT").description
        #expect(other == "PostgreSQL error 23505: duplicate key during: INSERT")
    }
}
