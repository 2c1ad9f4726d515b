import Foundation
import PBTSeededRNG
import Synchronization
import Testing

@testable import PBT
import PBTExamples

/// A runner that fails some trials: throws for ids divisible by `throwEvery`,
/// returns NaN for ids divisible by `nanEvery`, else behaves like NoOpRunner.
struct FlakyRunner: TrialRunner {
    var throwEvery = 7
    var nanEvery = 11

    struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }

    func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        if trial.id % throwEvery == 0 { throw Boom() }
        let outcome = try NoOpRunner().run(trial, parent: parent, output: output)
        return trial.id % nanEvery == 0 ? TrialOutcome(evaluation: .nan) : outcome
    }
}

/// A runner with per-worker state: counts how many trials each worker ran.
struct CountingRunner: TrialRunner {
    final class Worker: TrialWorker {
        let index: Int
        let counts: Locked<[Int: Int]>
        var ran = 0
        init(index: Int, counts: Locked<[Int: Int]>) { self.index = index; self.counts = counts }
        func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
            ran += 1
            counts.withLock { $0[index] = ran }
            return try NoOpRunner().run(trial, parent: parent, output: output)
        }
    }
    let counts = Locked<[Int: Int]>([:])
    func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        try NoOpRunner().run(trial, parent: parent, output: output)
    }
    func makeWorker(index: Int) throws -> Worker { Worker(index: index, counts: counts) }
}

/// Checks the invariants every finished run must satisfy.
func expectConsistentRun(_ trials: [TrialRecord], _ selections: [SelectionRecord], settings: PBTSettings,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(trials.map(\.id) == Array(1...trials.count), "ids are 1...n without gaps", sourceLocation: sourceLocation)
    #expect(trials.count == settings.trialBudget, "the budget is used exactly", sourceLocation: sourceLocation)
    let byID = Dictionary(uniqueKeysWithValues: trials.map { ($0.id, $0) })
    for t in trials {
        #expect(t.status.isTerminal, "trial \(t.id) is \(t.status)", sourceLocation: sourceLocation)
        #expect(settings.searchSpace.contains(t.hyperparameters), sourceLocation: sourceLocation)
        #expect(t.seed == settings.trialSeed(t.id), sourceLocation: sourceLocation)
        if t.status == .finished {
            #expect(t.evaluation?.isFinite == true && t.checkpointPath != nil, sourceLocation: sourceLocation)
        } else {
            #expect(t.evaluation == nil && t.checkpointPath == nil && t.failure != nil, sourceLocation: sourceLocation)
        }
        if let pid = t.parentID {
            let parent = byID[pid]
            #expect(parent?.status == .finished, "trial \(t.id)'s parent \(pid) must be finished", sourceLocation: sourceLocation)
            #expect(parent.map { $0.generation < t.generation } == true, sourceLocation: sourceLocation)
            #expect(parent?.endStep == t.startStep, sourceLocation: sourceLocation)
        } else {
            #expect(t.generation == 0 && t.startStep == 0, sourceLocation: sourceLocation)
        }
    }
    #expect(Set(selections.map(\.childID)).count == selections.count, "one selection per child", sourceLocation: sourceLocation)
    #expect(Set(selections.map(\.initiatorID)).count == selections.count, "each trial initiates at most once", sourceLocation: sourceLocation)
    for s in selections {
        #expect(byID[s.initiatorID]?.status == .finished && byID[s.winnerID]?.status == .finished, sourceLocation: sourceLocation)
        #expect(byID[s.childID]?.parentID == s.winnerID, sourceLocation: sourceLocation)
        #expect(byID[s.childID]?.generation == s.generation + 1, sourceLocation: sourceLocation)
    }
    let refills = trials.filter { $0.refillOf != nil }.count
    #expect(selections.count + refills + min(settings.population, settings.trialBudget) == trials.count,
            "every trial is generation 0, a selection's child or a refill", sourceLocation: sourceLocation)
}

@Suite struct CoordinatorTests {
    func open(_ settings: PBTSettings, _ dir: TemporaryDirectory) throws -> PBTCoordinator {
        try PBTCoordinator.open(store: try SQLiteTrialStore(path: ":memory:"), name: "r",
                                configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: dir.url).coordinator
    }

    func claimed(_ c: PBTCoordinator, _ worker: String = "w") throws -> ClaimedTrial {
        guard case .trial(let t) = try c.claim(workerID: worker) else { throw TestFailure("nothing to claim") }
        return t
    }

    /// A dead worker's trial is taken again as soon as its lease expires,
    /// before newer queued trials (before: only once the queue was empty,
    /// which in asynchronous mode, where every result queues a successor,
    /// was the end of the run: that slot of the population stood still).
    @Test func anExpiredTrialIsTakenBeforeNewerQueuedOnes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let c = try open(testSettings(population: 2, workers: 2), dir)  // asynchronous: P = W
        let now = Date().timeIntervalSince1970
        guard case .trial(let dead) = try c.claim(workerID: "dead", now: now, leaseSeconds: 5),
              case .trial(let live) = try c.claim(workerID: "live", now: now, leaseSeconds: 5) else { throw TestFailure("nothing to claim") }
        _ = try NoOpRunner().run(live.spec, parent: nil, output: live.output)
        let receipt = try c.report(live, result: .success(TrialOutcome(evaluation: 0.5)), now: now + 1)
        #expect(receipt.newTrialIDs.count == 1, "the live worker's result queued a successor")
        guard case .trial(let next) = try c.claim(workerID: "live", now: now + 10, leaseSeconds: 5) else { throw TestFailure("nothing to claim") }
        #expect(next.spec.id == dead.spec.id && next.attempt == 2, "the expired trial first: got \(next.spec.id)")
    }

    @Test func aLateResultFromALostClaimIsIgnored() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let c = try open(testSettings(population: 2, workers: 2), dir)
        let first = try claimed(c, "a")
        #expect(try c.store.requeueRunning(runID: c.run.id) == 1)  // as if a's lease had expired
        let second = try claimed(c, "b")
        #expect(second.spec.id == first.spec.id)
        #expect(second.attempt == 2)
        #expect(second.output != first.output, "attempts write to different files")

        _ = try NoOpRunner().run(first.spec, parent: nil, output: first.output)
        let stale = try c.report(first, result: .success(TrialOutcome(evaluation: 0.5)))
        #expect(!stale.accepted)
        #expect(try c.store.trial(runID: c.run.id, id: first.spec.id)?.status == .running)
        #expect(!FileManager.default.fileExists(atPath: first.output.path), "the stale output is deleted")

        _ = try NoOpRunner().run(second.spec, parent: nil, output: second.output)
        let fresh = try c.report(second, result: .success(TrialOutcome(evaluation: 0.25)))
        #expect(fresh.accepted)
        #expect(fresh.newTrialIDs.count == 1)
        let t = try #require(try c.store.trial(runID: c.run.id, id: first.spec.id))
        #expect(t.status == .finished)
        #expect(t.evaluation == 0.25)
        #expect(t.checkpointPath == "\(c.checkpoints.namespace)/trial-\(t.id).2.ckpt")
    }

    @Test func failuresAreRecordedAndTheirOutputsRemoved() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let c = try open(testSettings(population: 3, workers: 3), dir)
        let nan = try claimed(c), thrown = try claimed(c), missing = try claimed(c)
        _ = try NoOpRunner().run(nan.spec, parent: nil, output: nan.output)
        let r1 = try c.report(nan, result: .success(TrialOutcome(evaluation: .infinity)))
        let r2 = try c.report(thrown, result: .failure(FlakyRunner.Boom()))
        let r3 = try c.report(missing, result: .success(TrialOutcome(evaluation: 0.1)))
        for r in [r1, r2, r3] {
            #expect(r.status == .failed)
            #expect(r.newTrialIDs.count == 1, "each failure is refilled")
        }
        #expect(!FileManager.default.fileExists(atPath: nan.output.path))
        let trials = try c.store.trials(runID: c.run.id)
        #expect(trials[0].failure == "diverged: evaluation inf")
        #expect(trials[1].failure == "runner error: boom")
        #expect(trials[2].failure?.contains("without writing its checkpoint") == true)
        #expect(trials[3...].map(\.refillOf) == [1, 2, 3])
        #expect(trials[3...].allSatisfy { $0.generation == 0 && $0.parentID == nil })
    }

    /// Runs the whole budget with `workers` claims outstanding, reporting a
    /// random one each time, and after every report checks the checkpoint
    /// directory against the store: every live checkpoint exists, nothing
    /// else does, and the number kept is bounded: (w + 1) × P in budget mode
    /// (w = opponentGenerations); in asynchronous mode (d + w + 1) × P, where
    /// d is how far the lineages have drifted apart in generation number.
    @Test(arguments: [(20, 5, SelectionStrategy.tournament), (6, 6, .tournament), (8, 4, .truncation(fraction: 0.25))])
    func checkpointsAreCollectedAndTheFinalPopulationKept(population: Int, workers: Int, selection: SelectionStrategy) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: population, workers: workers, budget: .generations(8), selection: selection)
        let c = try open(settings, dir)
        var order = Xoshiro256(seed: 3)
        var outstanding: [ClaimedTrial] = []
        var maxLive = 0
        while true {
            while outstanding.count < workers, case .trial(let t) = try c.claim(workerID: "w") {
                _ = try NoOpRunner().run(t.spec, parent: t.parent, output: t.output)
                outstanding.append(t)
            }
            guard !outstanding.isEmpty else { break }
            let t = outstanding.remove(at: order.uniformIndex(outstanding.count))
            try c.report(t, result: .success(TrialOutcome(evaluation: order.nextUnitDouble())))
            let trials = try c.store.trials(runID: c.run.id)
            let live = Set(trials.filter(\.checkpointLive).map { $0.checkpointPath! })
            let files = c.checkpoints.files()
            let inFlightFiles = Set(outstanding.map { c.checkpoints.relativePath(trialID: $0.spec.id, attempt: $0.attempt) })
            #expect(files == live.union(inFlightFiles), "files on disk are exactly the live checkpoints and the in-flight outputs")
            maxLive = max(maxLive, live.count)
            let pending = trials.filter { !$0.status.isTerminal }
            if let minPending = pending.map(\.generation).min() {
                let drift = trials.map(\.generation).max()! - minPending
                let w = settings.opponentGenerations
                #expect(live.count <= (drift + w + 1) * population, "\(live.count) live checkpoints with drift \(drift)")
                if settings.isGenerational { #expect(drift <= 1 && live.count <= (w + 1) * population) }
                // Exactly what may still become a parent is kept.
                let parents = Set(pending.compactMap(\.parentID))
                let members = Set(Lineage.finalPopulation(trials, try c.store.selections(runID: c.run.id)).map(\.id))
                for t in trials where t.checkpointLive {
                    #expect(t.generation >= minPending - w + 1 || parents.contains(t.id) || members.contains(t.id))
                }
            }
        }
        #expect(try c.claim(workerID: "w") == .done)
        let trials = try c.store.trials(runID: c.run.id), selections = try c.store.selections(runID: c.run.id)
        expectConsistentRun(trials, selections, settings: settings)
        let final = Lineage.finalPopulation(trials, selections)
        #expect(final.count == population)
        #expect(final.allSatisfy { $0.checkpointLive }, "the final population keeps its checkpoints")
        let best = try #require(Lineage.bestOfFinalPopulation(trials, selections))
        #expect(FileManager.default.fileExists(atPath: c.checkpoints.ref(relativePath: best.checkpointPath!).path))
        #expect(trials.filter { $0.checkpointLive }.count < trials.count / 2, "old checkpoints were released")
    }

    /// Asynchronous truncation (P = W, one opponent generation) ranks each
    /// slot's latest result, which stays ranked while its child runs even
    /// after it was exploited and its checkpoint released: the donor is
    /// always a trial whose checkpoint is live (found by a helper: a
    /// released one was picked, and the run stopped, every resume alike).
    /// With failures (`failing`), a child planned from a donor below the
    /// failed trial's window is refilled (found by a helper's resume: the
    /// refill's parent was not among the trials read, and a precondition
    /// stopped the process).
    @Test(arguments: [2, 3, 5], [false, true])
    func asynchronousTruncationExploitsOnlyLiveCheckpoints(population: Int, failing: Bool) throws {
        let runner = ClosureRunner { trial, parent, output in
            if failing, trial.id % 4 == 0, trial.refillOf == nil { throw FlakyRunner.Boom() }
            return try ToyQuadraticRunner().run(trial, parent: parent, output: output)
        }
        for seed in UInt64(0)..<6 {
            for selection in [SelectionStrategy.truncation(fraction: 0.25), .tournament] {
                let dir = try TemporaryDirectory()
                defer { dir.cleanup() }
                let settings = testSettings(population: population, workers: population, trialSteps: 3, budget: .generations(20),
                                            selection: selection, opponentGenerations: 1, seed: seed, deterministic: true)
                let c = try open(settings, dir)
                let result = try PBTDriver(coordinator: c, runner: runner, options: DriverOptions()).run()
                #expect(result.done, "P \(population), seed \(seed)")
                let selections = try c.store.selections(runID: c.run.id)
                expectConsistentRun(result.trials, selections, settings: settings)
                if case .truncation = selection {
                    #expect(selections.contains { $0.kind == .exploit }, "P \(population), seed \(seed): the run exploited")
                }
                // The final population keeps its files, also a member whose child failed when the budget was spent
                // (found by a helper: the run's best was printed with "checkpoint: (released)").
                for member in Lineage.finalPopulation(result.trials, selections) {
                    #expect(member.checkpointLive && FileManager.default.fileExists(atPath: c.checkpoints.ref(relativePath: member.checkpointPath!).path),
                            "P \(population), seed \(seed), \(selection): final member \(member.id)")
                }
            }
        }
    }

    @Test func reopeningChecksTheConfiguration() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try SQLiteTrialStore(path: ":memory:")
        let config = RunConfiguration(settings: testSettings(), model: "toy")
        let (_, created) = try PBTCoordinator.open(store: store, name: "r", configuration: config, runDirectory: dir.url)
        #expect(created)
        let (again, createdAgain) = try PBTCoordinator.open(store: store, name: "r", configuration: config, runDirectory: dir.url)
        #expect(!createdAgain)
        #expect(try store.trials(runID: again.run.id).count == 4, "generation 0 is created once")
        var other = config
        other.settings.trialSteps = 11
        other.model = "wavenet"
        #expect(throws: PBTStoreError.configMismatch(run: "r", differences: [
            SettingDifference(field: "trialSteps", stored: "10", given: "11"), SettingDifference(field: "model", stored: "toy", given: "wavenet"),
        ])) { try PBTCoordinator.open(store: store, name: "r", configuration: other, runDirectory: dir.url) }
        var invalid = config
        invalid.settings.population = 2
        #expect(throws: PBTConfigError.populationBelowWorkers(population: 2, workers: 4)) {
            try PBTCoordinator.open(store: store, name: "s", configuration: invalid, runDirectory: dir.url)
        }
    }

    /// A run's recipe is compared field by field on reopening: nested
    /// fields by their dotted path, not the fields the given configuration
    /// names as places or copies, nor fields one side does not have (a run
    /// of an older build stores fewer).
    @Test func reopeningComparesTheRecipeFieldByField() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try SQLiteTrialStore(path: ":memory:")
        let recipe: JSONValue = .object(["training": .object(["batch": .integer(1), "window": .integer(256)]),
                                         "folder": .string("/here"), "old": .string("kept"), "dilations": .array([.integer(1), .integer(2)])])
        let config = RunConfiguration(settings: testSettings(), model: "toy", recipe: recipe, recipeFieldsNotCompared: ["folder"])
        _ = try PBTCoordinator.open(store: store, name: "r", configuration: config, runDirectory: dir.url)
        var moved = config
        moved.recipe = .object(["training": .object(["batch": .integer(1), "window": .integer(256)]), "folder": .string("/moved"),
                                "dilations": .array([.integer(1), .integer(2)]), "new": .bool(true)])
        let (reopened, created) = try PBTCoordinator.open(store: store, name: "r", configuration: moved, runDirectory: dir.url)
        #expect(!created && reopened.configuration.recipe == recipe, "another folder, a field gone and one added: the same run")
        var other = config
        other.recipe = .object(["training": .object(["batch": .integer(2), "window": .integer(256)]), "folder": .string("/here"),
                                "dilations": .array([.integer(1), .integer(4)])])
        #expect(throws: PBTStoreError.configMismatch(run: "r", differences: [
            SettingDifference(field: "recipe.dilations", stored: "[1,2]", given: "[1,4]"),
            SettingDifference(field: "recipe.training.batch", stored: "1", given: "2"),
        ])) { try PBTCoordinator.open(store: store, name: "r", configuration: other, runDirectory: dir.url) }
        other.recipeFieldsNotCompared = []
        other.recipe = .object(["folder": .string("/moved")])
        #expect(throws: PBTStoreError.configMismatch(run: "r", differences: [SettingDifference(field: "recipe.folder", stored: #""/here""#, given: #""/moved""#)])) {
            try PBTCoordinator.open(store: store, name: "r", configuration: other, runDirectory: dir.url)
        }
    }

    @Test func recoveryRequeuesAndSweepsOrphans() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let c = try open(testSettings(population: 3, workers: 3), dir)
        let a = try claimed(c), b = try claimed(c)
        _ = try NoOpRunner().run(a.spec, parent: nil, output: a.output)
        try c.report(a, result: .success(TrialOutcome(evaluation: 1)))
        _ = try NoOpRunner().run(b.spec, parent: nil, output: b.output)  // written, never reported: the process "died"
        try Data("half".utf8).write(to: c.checkpoints.directory.appendingPathComponent(".trial-9.1.ckpt.123.tmp"))
        let (requeued, removed, _) = try c.recoverAfterCrash()
        #expect(requeued == 1)
        #expect(removed == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: c.checkpoints.directory.path) == ["trial-1.1.ckpt"])
        let again = try claimed(c)
        #expect(again.spec.id == b.spec.id)
        #expect(again.attempt == 2)
    }

    /// Re-running `pbtwave pbt` while `pbtwave worker` processes work on the
    /// same SQLite store: their trials are theirs, not a crash's leftovers,
    /// and their half-written outputs are not swept.
    @Test func recoveryLeavesLiveWorkersTrialsAlone() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let c = try open(testSettings(population: 3, workers: 3), dir)
        let dead = try claimed(c, "dead"), live = try claimed(c, "live")
        _ = try NoOpRunner().run(live.spec, parent: nil, output: live.output)  // the live worker's output, not yet reported
        let (requeued, removed, _) = try c.recoverAfterCrash(isAlive: { $0 == "live" })
        #expect(requeued == 1 && removed == 0)
        #expect(try c.store.trial(runID: c.run.id, id: dead.spec.id)?.status == .queued)
        #expect(try c.store.trial(runID: c.run.id, id: live.spec.id)?.status == .running)
        #expect(FileManager.default.fileExists(atPath: live.output.path))
        #expect(try c.report(live, result: .success(TrialOutcome(evaluation: 1))).accepted, "the live worker's result counts")
    }

    @Test func aLiveLocalWorkerIsTheIdOfARunningProcessHere() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["30"]
        try child.run()
        let host = DriverOptions.hostName()
        #expect(DriverOptions.isLiveLocalWorker("\(host):\(child.processIdentifier)/w3"))
        #expect(!DriverOptions.isLiveLocalWorker("\(host):\(getpid())/w0"), "this process is not another worker")
        #expect(!DriverOptions.isLiveLocalWorker("elsewhere-\(host):\(child.processIdentifier)/w0"), "another machine's")
        #expect(!DriverOptions.isLiveLocalWorker("custom-prefix/w0") && !DriverOptions.isLiveLocalWorker(""))
        child.terminate()
        child.waitUntilExit()
        #expect(!DriverOptions.isLiveLocalWorker("\(host):\(child.processIdentifier)/w3"), "gone once it exited")
    }
}

@Suite struct DriverTests {
    func runDriver<R: TrialRunner>(_ settings: PBTSettings, runner: R, threads: Int? = nil, dir: URL,
                                   progress: (@Sendable (PBTProgress) -> Void)? = nil) throws -> (PBTRunResult, [SelectionRecord]) {
        let directory = try RunDirectory(dir, create: true, lock: true)
        let (c, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                             configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: dir)
        let result = try PBTDriver(coordinator: c, runner: runner, options: DriverOptions(workers: threads)).run(progress: progress)
        return (result, try directory.store.selections(runID: c.run.id))
    }

    /// Same seed, threads racing: identical trial tables, whatever the timing.
    @Test(arguments: [(8, 4), (4, 4)])
    func deterministicRunsAreIdentical(population: Int, workers: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: population, workers: workers, trialSteps: 20, budget: .generations(10), seed: 5,
                                    deterministic: true)
        // The toy runner with a little sleep, so trials finish out of order.
        let runner = ToyQuadraticRunner(simulatedWork: .microseconds(300))
        let (a, sa) = try runDriver(settings, runner: runner, dir: dir.url.appendingPathComponent("a"))
        let (b, sb) = try runDriver(settings, runner: runner, dir: dir.url.appendingPathComponent("b"))
        // One thread applies results in id order too: the same decisions.
        let (c, sc) = try runDriver(settings, runner: runner, threads: 1, dir: dir.url.appendingPathComponent("c"))
        #expect(a.done && b.done && c.done)
        #expect(a.trials.count == settings.trialBudget)
        expectSameRows(a.trials.map(\.lineageFields), b.trials.map(\.lineageFields))
        expectSameRows(a.trials.map(\.lineageFields), c.trials.map(\.lineageFields))
        #expect(sa == sb)
        #expect(sa == sc)
        expectConsistentRun(a.trials, sa, settings: settings)
        #expect(Set(a.trials.compactMap(\.workerID)).count > 1, "several workers took part")
    }

    /// 16 threads, a no-op runner, thousands of trials: the store stays consistent.
    @Test(arguments: [(16, 3_000), (64, 2_048)])
    func sixteenWorkersKeepTheStoreConsistent(population: Int, trials: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: population, workers: 16, trialSteps: 1, budget: .totalSteps(trials))
        let runner = CountingRunner()
        let (result, selections) = try runDriver(settings, runner: runner, dir: dir.url)
        #expect(result.done)
        #expect(result.completedThisSession == trials)
        expectConsistentRun(result.trials, selections, settings: settings)
        #expect(result.trials.allSatisfy { $0.attempt == 1 && $0.status == .finished }, "no trial ran twice")
        let counts = runner.counts.withLock { $0 }
        #expect(counts.values.reduce(0, +) == trials, "every trial ran in exactly one worker")
        #expect(counts.count > 1)
        let files = try DriverTests.checkpointFiles(dir.url)
        #expect(files == Set(result.trials.filter { $0.checkpointLive }.map { $0.checkpointPath! }))
    }

    @Test func failingTrialsDoNotStopTheRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 6, workers: 3, trialSteps: 1, budget: .totalSteps(300))
        let seen = Locked<[PBTProgress]>([])
        let (result, selections) = try runDriver(settings, runner: FlakyRunner(), dir: dir.url) { p in seen.withLock { $0.append(p) } }
        #expect(result.done)
        expectConsistentRun(result.trials, selections, settings: settings)
        let failed = result.trials.filter { $0.status == .failed }
        #expect(failed.count >= 40)
        #expect(failed.contains { $0.failure == "runner error: boom" })
        #expect(failed.contains { $0.failure == "diverged: evaluation nan" })
        let last = try #require(seen.withLock { $0.last })
        #expect(last.isFinal)
        #expect(last.run.completed == 300)
        #expect(last.run.failed == failed.count)
        #expect(last.trialBudget == 300)
        #expect(result.best.map { $0.status == .finished } == true)
    }

    /// Leases far shorter than a trial: only the heartbeat keeps idle
    /// workers (at the budget-mode generation boundary) from re-claiming
    /// trials that are still running. (Without it the run livelocks: every
    /// attempt is re-claimed before it ends; hence the time limit.)
    @Test(.timeLimit(.minutes(1))) func heartbeatsKeepLongTrialsLeased() throws {
        struct SlowRunner: TrialRunner {
            func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
                Thread.sleep(forTimeInterval: trial.id % 3 == 0 ? 0.4 : 0.1)
                return try NoOpRunner().run(trial, parent: parent, output: output)
            }
        }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 3, workers: 2, trialSteps: 1, budget: .totalSteps(9))
        let directory = try RunDirectory(dir.url, create: true, lock: true)
        let (c, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                             configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: dir.url)
        let result = try PBTDriver(coordinator: c, runner: SlowRunner(), options: DriverOptions(leaseSeconds: 0.1)).run()
        #expect(result.done)
        #expect(result.trials.count == 9)
        #expect(result.trials.allSatisfy { $0.attempt == 1 }, "attempts: \(result.trials.map(\.attempt))")
    }

    /// Leases are times on the store's clock, not this machine's. A worker
    /// whose clock is a day behind the store's (a PostgreSQL server's) keeps
    /// its trial leased through its heartbeats, so a worker on the store's
    /// clock cannot take the trial over while it runs. (Before, such a
    /// worker's leases ended a day before they began, on the store's clock.)
    @Test(.timeLimit(.minutes(1))) func leasesAreTimesOnTheStoresClock() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let directory = try RunDirectory(dir.url, create: true, lock: true)
        let store = OverriddenStore.onAnotherClock(directory.store, ahead: 86_400)
        let settings = testSettings(population: 1, workers: 1, trialSteps: 1, budget: .totalSteps(1))
        let (c, _) = try PBTCoordinator.open(store: store, name: RunDirectory.runName,
                                             configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: dir.url)
        let runID = c.run.id
        // While it first runs (past the first heartbeats), another worker
        // asks; what it takes, it gives back (so that a failure ends).
        let takenOver = Locked<[TrialRecord?]>([])
        let runner = ClosureRunner { trial, parent, output in
            if takenOver.withLock({ $0.isEmpty }) {
                let lease = try #require(try store.trial(runID: runID, id: trial.id)?.leaseUntil)
                #expect(abs(lease - (store.now() + 0.4)) < 0.3, "the lease ends 0.4 s from now on the store's clock")
                Thread.sleep(forTimeInterval: 0.5)
                let now = store.now()
                let other = try store.claim(runID: runID, workerID: "elsewhere/w0", now: now, leaseUntil: now + 10)
                takenOver.withLock { $0.append(other) }
                if let other { _ = try store.releaseClaim(runID: runID, trialID: other.id, attempt: other.attempt, workerID: "elsewhere/w0") }
            }
            return try NoOpRunner().run(trial, parent: parent, output: output)
        }
        let driver = PBTDriver(coordinator: c, runner: runner, options: DriverOptions(leaseSeconds: 0.4))
        guard let result = try runWithin(30, driver, what: "the run") else { return }
        #expect(takenOver.withLock { $0 }.count == 1)
        #expect(takenOver.withLock { $0 }.allSatisfy { $0 == nil }, "another worker took the live trial over: \(takenOver.withLock { $0 })")
        #expect(result.done)
        #expect(result.trials.map(\.attempt) == [1])
        let started = try #require(result.trials.first?.startedAt)
        #expect(abs(started - store.now()) < 60, "times on the store's clock: started \(started), the store's now \(store.now())")
    }

    /// A store that gives up (a server out of reach beyond its retries) ends
    /// the run with its error, and the trials this process holds are stopped
    /// at once, not left to run out (found by a helper: a worker with 400 s
    /// programs lived on, silent, after its store had given up).
    @Test(.timeLimit(.minutes(1))) func aStoreThatGivesUpStopsTheRunningTrials() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let directory = try RunDirectory(dir.url, create: true, lock: true)
        let store = OverriddenStore.givingUp(directory.store)
        let settings = testSettings(population: 2, workers: 2, trialSteps: 1, budget: .generations(2))
        let (c, _) = try PBTCoordinator.open(store: store, name: RunDirectory.runName,
                                             configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: dir.url)
        let runner = RunsUntilAbandoned()
        #expect(throws: OverriddenStore.GaveUp()) { try PBTDriver(coordinator: c, runner: runner, options: DriverOptions(leaseSeconds: 1)).run() }
        #expect(runner.abandoned.withLock { $0 }.sorted() == [1, 2], "both running trials stopped when the store gave up")
    }

    /// Deterministic mode with a worker that died elsewhere: the first trial
    /// is claimed (by "another process") and never reported. This process's
    /// workers finish later ids and wait to report in id order; once the
    /// orphan's lease expires, a waiting worker takes it over, so the run
    /// ends — with the same results as a run nobody killed. (Before, every
    /// worker waited for the orphan forever.)
    @Test func deterministicWorkersTakeOverADeadWorkersLowerTrial() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 4, workers: 2, trialSteps: 10, budget: .generations(4), seed: 9, deterministic: true)
        let runner = ToyQuadraticRunner(simulatedWork: .microseconds(200))
        let (clean, _) = try runDriver(settings, runner: runner, dir: dir.url.appendingPathComponent("clean"))

        let url = dir.url.appendingPathComponent("killed")
        let directory = try RunDirectory(url, create: true, lock: true)
        let (c, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                             configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: url)
        let now = Date().timeIntervalSince1970
        let orphan = try #require(try directory.store.claim(runID: c.run.id, workerID: "elsewhere:1/w0", now: now, leaseUntil: now + 0.5))
        #expect(orphan.id == clean.trials.map(\.id).min())
        // The bug this guards against is a hang: give the driver 30 s.
        let driver = PBTDriver(coordinator: c, runner: runner, options: DriverOptions(leaseSeconds: 5))
        guard let result = try runWithin(30, driver, what: "the workers, waiting for the dead worker's trial") else { return }
        #expect(result.done)
        let first = try #require(result.trials.first { $0.id == orphan.id })
        #expect(first.attempt == 2 && first.status == .finished, "taken over after the lease expired")
        #expect(first.workerID?.hasPrefix("elsewhere") == false)
        // The same decisions as the clean run (checkpoint paths carry the attempt).
        expectSameRows(decisionFields(result.trials), decisionFields(clean.trials))
    }

    /// Deterministic workers that wait to report in id order, for a lower
    /// trial another process's worker holds, say so once they have waited
    /// `waitNoticeSeconds`, naming that trial and its lease (they said
    /// nothing before, and seemed hung until its lease ended).
    @Test(.timeLimit(.minutes(1))) func deterministicWorkersSayForWhichLowerTrialTheyWait() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 4, workers: 2, trialSteps: 10, budget: .generations(2), seed: 9, deterministic: true)
        let directory = try RunDirectory(dir.url, create: true, lock: true)
        let (c, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                             configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: dir.url)
        let now = directory.store.now()
        let orphan = try #require(try directory.store.claim(runID: c.run.id, workerID: "elsewhere:1/w0", now: now, leaseUntil: now + 2))
        let notices = Locked<[String]>([])
        var options = DriverOptions(leaseSeconds: 5, notice: { text in notices.withLock { $0.append(text) } })
        options.waitNoticeSeconds = 0.2
        let driver = PBTDriver(coordinator: c, runner: ToyQuadraticRunner(simulatedWork: .microseconds(200)), options: options)
        guard let result = try runWithin(30, driver, what: "the workers, waiting for the dead worker's trial") else { return }
        #expect(result.done)
        let said = notices.withLock { $0 }
        #expect(said.count == 1, "one notice while the same trial is awaited: \(said)")
        #expect(said.first?.hasPrefix("""
            waiting for a trial other workers run (deterministic mode reports results in id order): \
            trial \(orphan.id) (attempt 1, on elsewhere:1/w0, its lease ends in
            """) == true, "\(said)")
    }

    /// A worker whose trial's program was killed by a stop gives the trial
    /// back: queued, not failed, and not left running under a lease that
    /// another process's workers would have to wait out (5 minutes by default).
    @Test func aStoppedTrialIsQueuedAgainAtOnce() throws {
        // As on SIGTERM: the stop is requested, then the running programs
        // are killed, and their trials fail with `.stopped`.
        struct StoppingRunner: TrialRunner {
            let requestStop = Locked<(@Sendable () -> Void)?>(nil)
            func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
                if trial.id >= 3 {
                    requestStop.withLock { $0 }?()
                    throw ExecTrialFailure(trialID: trial.id, reason: .stopped("SIGTERM"), logTail: [])
                }
                return try NoOpRunner().run(trial, parent: parent, output: output)
            }
        }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 4, workers: 2, trialSteps: 10, budget: .generations(2), seed: 3, deterministic: false)
        let directory = try RunDirectory(dir.url, create: true, lock: true)
        let (c, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                             configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: dir.url)
        let runner = StoppingRunner()
        let driver = PBTDriver(coordinator: c, runner: runner, options: DriverOptions(workers: 2))
        runner.requestStop.withLock { $0 = { driver.requestStop() } }
        let result = try driver.run()
        #expect(!result.done)
        let stopped = result.trials.filter { $0.id >= 3 && $0.attempt > 0 }
        #expect(!stopped.isEmpty && stopped.allSatisfy { $0.status == .queued && $0.workerID == nil && $0.leaseUntil == nil },
                "\(result.trials.map { ($0.id, $0.status, $0.attempt, $0.workerID ?? "-") })")
        // (A worker still claiming when the stop came may have taken a
        // trial given back and run it once more: attempts may be 2.)
        #expect(stopped.allSatisfy { $0.failure == nil }, "failed nothing")
        #expect(!result.trials.contains { $0.status == .running || $0.status == .failed })
    }

    @Test func aRunDirectoryCanBeDrivenByOneProcessAtATime() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let held = try RunDirectory(dir.url, create: true, lock: true)
        // Held by this very process: said so (found by a library user: "another pbtwave process … kill it first").
        #expect(throws: PBTStoreError.lockedByThisProcess(path: dir.url.standardizedFileURL.path)) {
            try RunDirectory(dir.url, create: true, lock: true)
        }
        _ = try RunDirectory(dir.url, create: false, lock: false)  // readers need no lock
        _ = held
        #expect(throws: RunDirectoryError.missing(dir.url.appendingPathComponent("nope").path)) {
            try RunDirectory(dir.url.appendingPathComponent("nope"), create: false, lock: false)
        }
        let empty = dir.url.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect(throws: RunDirectoryError.noRun(empty.path)) { try RunDirectory(empty, create: false, lock: false) }
        // A folder whose folders hold runs (an experiment's) names them.
        _ = try RunDirectory(empty.appendingPathComponent("pbt-5x5-seed0"), create: true, lock: false)
        #expect(throws: RunDirectoryError.runsInside(empty.path, runs: ["pbt-5x5-seed0"])) { try RunDirectory(empty, create: false, lock: false) }
        #expect("\(RunDirectoryError.runsInside(empty.path, runs: ["pbt-5x5-seed0"]))".contains("give one of them, e.g. \(empty.path)/pbt-5x5-seed0"))
    }
}

/// A runner's error is recorded as the sentence it gives (found by a
/// library user: `MyError(detail: "…")`, and an NSError's field dump).
@Test func aRunnersErrorIsRecordedAsItsSentence() {
    struct Localized: LocalizedError { var detail: String; var errorDescription: String? { "my training failed: \(detail)" } }
    struct Described: Error, CustomStringConvertible { var description: String { "described" } }
    struct Plain: Error { var code = 7 }
    #expect(runnerErrorText(Localized(detail: "exploded at step 3")) == "my training failed: exploded at step 3")
    #expect(runnerErrorText(NSError(domain: "MyTraining", code: 42, userInfo: [NSLocalizedDescriptionKey: "my training blew up"])) == "my training blew up")
    #expect(runnerErrorText(Described()) == "described")
    #expect(runnerErrorText(Plain()) == "Plain(code: 7)")
    #expect(runnerErrorText(TrialRunnerError.outOfSpace(path: "/x", reason: "full")) == "cannot write /x: full")
}
