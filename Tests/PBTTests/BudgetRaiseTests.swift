import Foundation
import PBTExamples
import Testing

@testable import PBT

/// Raising a complete run's budget (`PBTCoordinator.raiseBudget`), written
/// against the store protocol so that SQLite here and PostgreSQL in
/// `PBTPostgresTests` run the same checks: `makeStore` returns a fresh,
/// empty store.
enum BudgetRaiseChecks {
    static func check(_ makeStore: () throws -> any TrialStore) throws {
        try aRaisedRunGoesOnAsOneBegunWithTheLargerBudget(makeStore(), makeStore(), from: .generations(3), to: .generations(6))
        try aRaisedRunGoesOnAsOneBegunWithTheLargerBudget(makeStore(), makeStore(), from: .totalSteps(140), to: .totalSteps(250),
                                                          same: false)
        try anAsynchronousRunUsesTheWholeRaisedBudget(makeStore())
        try onlyACompleteRunsBudgetIsRaised(makeStore())
        try anAsynchronousRunEndedOnFailuresIsRaised(makeStore)
    }

    /// Asynchronous mode (P = W) ended with failed trials the budget left
    /// unreplaced: the raise refills them though their parents' checkpoints
    /// were released at the end (found by a helper: the refill named a
    /// released parent, and the run could be neither resumed nor raised).
    static func anAsynchronousRunEndedOnFailuresIsRaised(_ makeStore: () throws -> any TrialStore) throws {
        var releasedParents = 0
        for seed in UInt64(0)..<4 {
            let store = try makeStore()
            let dir = try TemporaryDirectory()
            defer { dir.cleanup() }
            let small = testSettings(population: 3, workers: 3, trialSteps: 2, budget: .generations(8), seed: seed, deterministic: true)
            var large = small
            large.budget = .generations(9)
            // Fails 40 % of the trials, by id.
            let runner = ClosureRunner { trial, parent, output in
                var draw = Xoshiro256(seed: UInt64(trial.id) &* 7919)
                let r = draw.nextUnitDouble()
                if r < 0.4 { throw FlakyRunner.Boom() }
                _ = try NoOpRunner().run(trial, parent: parent, output: output)
                return TrialOutcome(evaluation: r)
            }
            func drive(_ settings: PBTSettings) throws -> PBTRunResult {
                let (c, _) = try PBTCoordinator.open(store: store, name: "r", configuration: RunConfiguration(settings: settings, model: "toy"),
                                                     runDirectory: dir.url)
                return try PBTDriver(coordinator: c, runner: runner, options: DriverOptions()).run()
            }
            let first = try drive(small)
            let refilled = Set(first.trials.compactMap(\.refillOf))
            let byID = Dictionary(uniqueKeysWithValues: first.trials.map { ($0.id, $0) })
            releasedParents += first.trials.filter {
                $0.status == .failed && !refilled.contains($0.id) && $0.parentID.map { byID[$0]?.checkpointLive == false } == true
            }.count
            _ = try #require(try raise(store, to: large))
            let after = try drive(large)
            #expect(after.done, "seed \(seed)")
            let id = try #require(try store.run(named: "r")).id
            for t in after.trials where t.refillOf != nil && !first.trials.contains(where: { $0.id == t.id }) {
                let parent = try #require(after.trials.first { $0.id == t.parentID })
                #expect(!parent.isRetired, "seed \(seed): refill \(t.id) starts from a usable trial")
            }
            expectConsistentRun(after.trials, try store.selections(runID: id), settings: large)
        }
        #expect(releasedParents > 0, "some run ended with a failed trial whose parent was released")
    }

    /// Drives run "r" of `settings` in `store` to its end with the toy runner.
    @discardableResult
    static func drive(_ settings: PBTSettings, _ store: any TrialStore, _ dir: URL, workers: Int? = nil) throws -> PBTRunResult {
        let (c, _) = try PBTCoordinator.open(store: store, name: "r", configuration: RunConfiguration(settings: settings, model: "toy"),
                                             runDirectory: dir)
        return try PBTDriver(coordinator: c, runner: ToyQuadraticRunner(simulatedWork: .microseconds(200)),
                             options: DriverOptions(workers: workers)).run()
    }

    static func raise(_ store: any TrialStore, to settings: PBTSettings) throws -> PBTCoordinator.BudgetRaise? {
        try PBTCoordinator.raiseBudget(store: store, name: "r", to: RunConfiguration(settings: settings, model: "toy"))
    }

    /// Budget mode, deterministic: a run of 3 generations raised to 6 ends
    /// with the trial and selection tables of a run begun with 6 (`same`).
    /// A budget cut in the middle of a generation's reproduction (14 trials
    /// of 4) goes on too, to the whole new budget, but not as that run: the
    /// generation before the cut one had its checkpoints released at the
    /// end, so the rest of the cut generation meets only live opponents.
    static func aRaisedRunGoesOnAsOneBegunWithTheLargerBudget(_ store: any TrialStore, _ reference: any TrialStore, from: Budget,
                                                              to: Budget, same: Bool = true) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let small = testSettings(population: 4, workers: 2, trialSteps: 10, budget: from, seed: 3, deterministic: true)
        var large = small
        large.budget = to
        let first = try drive(small, store, dir.url.appendingPathComponent("raised"))
        #expect(first.done && first.trials.count == small.trialBudget)
        let raised = try #require(try raise(store, to: large))
        #expect(raised.from == from && raised.to == to && raised.fromTrials == small.trialBudget && raised.toTrials == large.trialBudget)
        #expect(raised.newTrials > 0 && raised.newTrials <= small.population, "\(raised)")
        let runRecord = try #require(try store.run(named: "r"))
        #expect(try RunConfiguration(jsonText: runRecord.configJSON).settings == large, "the run stores the new budget")
        #expect(!runRecord.state.done)
        let after = try drive(large, store, dir.url.appendingPathComponent("raised"))
        let direct = try drive(large, reference, dir.url.appendingPathComponent("direct"))
        #expect(after.done && after.trials.count == large.trialBudget)
        let id = try #require(try store.run(named: "r")).id, referenceID = try #require(try reference.run(named: "r")).id
        if same {
            expectSameRows(after.trials.map(\.lineageFields), direct.trials.map(\.lineageFields))
            #expect(try store.selections(runID: id) == reference.selections(runID: referenceID))
        }
        expectConsistentRun(after.trials, try store.selections(runID: id), settings: large)
    }

    /// Asynchronous mode (P = W): the raised run spends the whole new budget,
    /// every trial of the old final population goes on, and the tables stay
    /// consistent.
    static func anAsynchronousRunUsesTheWholeRaisedBudget(_ store: any TrialStore) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let small = testSettings(population: 4, workers: 4, trialSteps: 10, budget: .generations(2), seed: 4)
        var large = small
        large.budget = .generations(5)
        let first = try drive(small, store, dir.url)
        let id = try #require(try store.run(named: "r")).id
        let cut = Set(first.trials.map(\.id)).subtracting(try store.selections(runID: id).map(\.initiatorID))
        let raised = try #require(try raise(store, to: large))
        #expect(raised.newTrials == cut.count, "each trial the old budget left without a child reproduces")
        let after = try drive(large, store, dir.url)
        #expect(after.done && after.trials.count == large.trialBudget)
        let selections = try store.selections(runID: id)
        #expect(cut.isSubset(of: Set(selections.map(\.initiatorID))))
        expectConsistentRun(after.trials, selections, settings: large)
    }

    /// A run that is not complete is refused (its workers decide under the
    /// budget they opened it with), and a budget that does not grow, or any
    /// other change, is no raise (nil: `open` names the differences).
    static func onlyACompleteRunsBudgetIsRaised(_ store: any TrialStore) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 4, workers: 2, trialSteps: 10, budget: .generations(2), seed: 5)
        let (c, _) = try PBTCoordinator.open(store: store, name: "r", configuration: RunConfiguration(settings: settings, model: "toy"),
                                             runDirectory: dir.url)
        guard case .trial = try c.claim(workerID: "w") else { throw TestFailure("nothing to claim") }
        var larger = settings
        larger.budget = .generations(4)
        #expect(throws: PBTStoreError.budgetRaisedBeforeTheEnd(run: "r", done: 0, budget: 8)) { try raise(store, to: larger) }
        #expect(try store.trials(runID: c.run.id).count == 4, "nothing was made")
        _ = try store.requeueRunning(runID: c.run.id)
        try drive(settings, store, dir.url)
        var smaller = settings
        smaller.budget = .generations(1)
        #expect(try raise(store, to: smaller) == nil)
        #expect(try raise(store, to: settings) == nil, "the same budget")
        var other = larger
        other.trialSteps = 11
        #expect(try raise(store, to: other) == nil, "a budget and another setting")
        #expect(throws: PBTStoreError.self) {
            try PBTCoordinator.open(store: store, name: "r", configuration: RunConfiguration(settings: smaller, model: "toy"), runDirectory: dir.url)
        }
        #expect(try store.run(named: "r")?.state.done == true)
    }
}

@Suite struct BudgetRaiseTests {
    @Test func aCompleteRunsBudgetIsRaisedOnSQLite() throws {
        try BudgetRaiseChecks.check { try SQLiteTrialStore(path: ":memory:") }
    }
}

/// A store whose disk is full says so, and that what it holds is intact
/// (found by a helper: the bare "SQLite error 13 (database or disk is full)
/// during COMMIT"). SQLite's own limit on the database's pages makes the
/// same error as a full disk.
@Test func aFullStoreSaysTheDiskIsFull() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("full-\(UUID().uuidString).sqlite").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    let connection = try SQLiteConnection(path: path)
    try connection.exec("CREATE TABLE t (x BLOB)")
    try connection.exec("PRAGMA max_page_count = 3")
    do {
        try connection.exec("INSERT INTO t VALUES (zeroblob(100000))")
        Issue.record("the insert fitted")
    } catch {
        guard case .sqlite(let code, _, _) = error else { Issue.record("\(error)"); return }
        #expect(code & 0xFF == 13)
        #expect("\(error)".hasPrefix("the disk holding the trial store is full (SQLite error 13, database or disk is full, during "), "\(error)")
        #expect("\(error)".hasSuffix("Free some space, then run the same command again"))
    }
    #expect("\(PBTStoreError.sqlite(code: 5, message: "database is locked", context: "COMMIT"))" == "SQLite error 5 (database is locked) during COMMIT")
}
