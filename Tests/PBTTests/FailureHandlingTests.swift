import Foundation
import Testing

@testable import PBT
import PBTExamples

/// Issue 15, item 4: an unreadable parent is retired instead of burning the
/// budget; a full disk stops the run and loses nothing; a run that ends on
/// failures says so and exits non-zero.
@Suite struct FailureHandlingTests {
    func claimed(_ c: PBTCoordinator) throws -> ClaimedTrial {
        guard case .trial(let t) = try c.claim(workerID: "w") else { throw TestFailure("nothing to claim") }
        return t
    }

    /// The pure controller: a retired trial is never an opponent, and a
    /// refill whose parent is retired starts from a trial whose checkpoint is
    /// live instead (never a released one: found by the chaos test).
    @Test func retiredTrialsAreNeverSelected() {
        let controller = PBTController(settings: testSettings(population: 3, workers: 3, opponentGenerations: 1))
        var retired = finishedTrial(1, generation: 0, loss: 0.1)
        retired.failure = "retired: its checkpoint is missing"
        let live = [finishedTrial(2, generation: 0, loss: 0.5), finishedTrial(3, generation: 0, loss: 0.7)]
        #expect(live[0].checkpointLive && live[1].checkpointLive)
        // Finished, but its checkpoint released: no substitute either.
        var released = finishedTrial(5, generation: 0, loss: 0.05)
        released.checkpointLive = false
        let failed = finishedTrial(4, generation: 1, loss: nil, parent: 1)
        for seed: UInt64 in 1...20 {
            var state = ControllerState(rng: .init(seed: seed), trialsCreated: 4)
            let refill = controller.decide(after: failed, population: [retired, released] + live + [failed], state: &state)
            #expect(refill.newTrials.count == 1)
            #expect(refill.newTrials.first.map { [2, 3].contains($0.parentID) } == true, "seed \(seed): \(refill.newTrials)")
            #expect(refill.newTrials.first?.refillOf == 4)
            // Tournament: the retired trial, the best by loss, never wins (nor plays).
            var s2 = ControllerState(rng: .init(seed: seed), trialsCreated: 4)
            let next = controller.decide(after: live[0], population: [retired] + live, state: &s2)
            #expect(next.selections.allSatisfy { $0.opponentID != 1 && $0.winnerID != 1 })
        }
        // The retired parent's window (generation 0 here, opponent
        // generations 1) has nothing live, but the failed trial's previous
        // generation has: the refill starts from there.
        let later = finishedTrial(6, generation: 1, loss: 0.4, parent: 2)
        let failedLater = finishedTrial(7, generation: 2, loss: nil, parent: 1)
        var s3 = ControllerState(rng: .init(seed: 3), trialsCreated: 7)
        let fromLater = controller.decide(after: failedLater, population: [retired, released, later, failedLater], state: &s3)
        #expect(fromLater.newTrials.first?.parentID == 6, "\(fromLater.newTrials)")
        // With no live trial left, the failed trial is not replaced.
        var state = ControllerState(rng: .init(seed: 1), trialsCreated: 4)
        #expect(controller.decide(after: failed, population: [retired, released, failed], state: &state).newTrials.isEmpty)
    }

    /// A parent's checkpoint deleted under a running run: the child fails,
    /// the parent is retired with the reason, and the refill has another
    /// parent. Before, every refill retried the same parent until the
    /// budget was gone.
    @Test(arguments: ["missing", "damaged"])
    func anUnreadableParentIsRetired(_ how: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 3, workers: 3, budget: .generations(4), opponentGenerations: 1)
        let c = try PBTCoordinator.open(store: try SQLiteTrialStore(path: ":memory:"), name: "r",
                                        configuration: RunConfiguration(settings: settings, model: "toy"), runDirectory: dir.url).coordinator
        let runner = ToyQuadraticRunner()
        var children: [ClaimedTrial] = []
        for _ in 0..<3 {
            let t = try claimed(c)
            try c.report(t, result: .success(try runner.run(t.spec, parent: t.parent, output: t.output)))
        }
        for _ in 0..<3 { children.append(try claimed(c)) }
        let victim = try #require(children.first { $0.parent != nil })
        let parentID = try #require(victim.spec.parentID)
        if how == "missing" {
            try FileManager.default.removeItem(atPath: victim.parent!.path)
        } else {
            try Data("not a checkpoint".utf8).write(to: victim.parent!.url)
        }
        let result = Result { try runner.run(victim.spec, parent: victim.parent, output: victim.output) }
        let receipt = try c.report(victim, result: result)
        #expect(receipt.status == .failed)
        let parent = try #require(try c.store.trial(runID: c.run.id, id: parentID))
        #expect(parent.isRetired && !parent.checkpointLive)
        #expect(parent.failure?.contains(how == "missing" ? "is missing" : "cannot be read") == true, "\(parent.failure ?? "")")
        let refillID = try #require(receipt.newTrialIDs.first)
        let refill = try #require(try c.store.trial(runID: c.run.id, id: refillID))
        #expect(refill.refillOf == victim.spec.id)
        #expect(refill.parentID != nil && refill.parentID != parentID, "the refill starts from a live trial")
        if how == "damaged" {
            let othersNeedIt = try c.store.trials(runID: c.run.id).contains { !$0.status.isTerminal && $0.parentID == parentID }
            #expect(FileManager.default.fileExists(atPath: victim.parent!.path) == othersNeedIt,
                    "a retired checkpoint is deleted once no pending trial names it")
            // Siblings claimed before the retirement: the last one's report deletes it (found by a helper: it stayed).
            for sibling in children where sibling.spec.id != victim.spec.id && sibling.spec.parentID == parentID {
                try c.report(sibling, result: Result { try runner.run(sibling.spec, parent: sibling.parent, output: sibling.output) })
            }
            #expect(!FileManager.default.fileExists(atPath: victim.parent!.path), "deleted at the last sibling's report")
        }
    }

    /// A run of P = 3 (one opponent generation) whose generation 0 has
    /// reported, and a planned trial of generation 1 with its parent.
    func firstGenerationRun(_ dir: TemporaryDirectory) throws -> (PBTCoordinator, TrialRecord, Int) {
        let settings = testSettings(population: 3, workers: 3, budget: .generations(3), opponentGenerations: 1)
        let c = try PBTCoordinator.open(store: try SQLiteTrialStore(path: ":memory:"), name: "r",
                                        configuration: RunConfiguration(settings: settings, model: "toy"), runDirectory: dir.url).coordinator
        for _ in 0..<3 {
            let t = try claimed(c)
            try c.report(t, result: .success(try ToyQuadraticRunner().run(t.spec, parent: t.parent, output: t.output)))
        }
        let planned = try #require(try c.store.trials(runID: c.run.id).first { $0.status == .queued && $0.parentID != nil })
        return (c, planned, try #require(planned.parentID))
    }

    /// A trial planned from a parent retired since (found by a user: a
    /// program changed its parent's checkpoint, and a sibling planned before
    /// ran from the changed files, succeeded and won) is not run: it fails
    /// naming the parent, its refill starts from another, and the run goes on.
    @Test func aTrialWhoseParentWasRetiredSinceItWasPlannedIsNotRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (c, planned, parentID) = try firstGenerationRun(dir)
        try c.store.withDecision(runID: c.run.id) { tx in try tx.retire(trialID: parentID, reason: "retired: its checkpoint changed") }
        struct Recording: TrialRunner {
            let ran = Locked<[Int]>([])
            func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
                ran.withLock { $0.append(trial.id) }
                return try ToyQuadraticRunner().run(trial, parent: parent, output: output)
            }
        }
        let runner = Recording()
        // One worker: trials run in id order, so the planned trial comes up while the budget still has room for its refill.
        let result = try PBTDriver(coordinator: c, runner: runner, options: DriverOptions(workers: 1)).run()
        #expect(result.done)
        #expect(!runner.ran.withLock { $0 }.contains(planned.id), "the trial was not run")
        let record = try #require(try c.store.trial(runID: c.run.id, id: planned.id))
        #expect(record.status == .failed && record.failure?.contains("not run: its parent #\(parentID) was retired: its checkpoint changed") == true,
                "\(record.failure ?? "no failure")")
        let refill = try #require(try c.store.trials(runID: c.run.id).first { $0.refillOf == planned.id })
        #expect(refill.parentID != nil && refill.parentID != parentID, "the refill starts from a live trial")
        #expect(runner.ran.withLock { $0 }.contains(refill.id))
        // Once no pending trial names it, the retired checkpoint is deleted, not kept until a resume's sweep.
        let parentPath = try #require(try c.store.trial(runID: c.run.id, id: parentID)?.checkpointPath)
        #expect(!FileManager.default.fileExists(atPath: c.checkpoints.ref(relativePath: parentPath).path))
        #expect(try DriverTests.checkpointFiles(dir.url) == Set(result.trials.filter(\.checkpointLive).map { $0.checkpointPath! }))
    }

    /// A trial planned from a parent whose checkpoint was released (a store
    /// left so by an older pbtwave: its claims threw "has no live
    /// checkpoint", every resume alike) is not run: it fails naming the
    /// release, and its refill starts from a live trial.
    @Test func aTrialWhoseParentWasReleasedIsRefilledFromALiveOne() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (c, planned, parentID) = try firstGenerationRun(dir)
        let parentPath = try #require(try c.store.trial(runID: c.run.id, id: parentID)?.checkpointPath)
        try c.store.withDecision(runID: c.run.id) { tx in try tx.releaseCheckpoints([parentID]) }
        try FileManager.default.removeItem(atPath: c.checkpoints.ref(relativePath: parentPath).path)
        let result = try PBTDriver(coordinator: c, runner: ToyQuadraticRunner(), options: DriverOptions(workers: 1)).run()
        #expect(result.done)
        let record = try #require(try c.store.trial(runID: c.run.id, id: planned.id))
        #expect(record.status == .failed && record.failure?.contains("not run: its parent #\(parentID) was released") == true,
                "\(record.failure ?? "no failure")")
        let refill = try #require(try c.store.trials(runID: c.run.id).first { $0.refillOf == planned.id })
        let refillParentID = try #require(refill.parentID)
        let refillParent = try #require(try c.store.trial(runID: c.run.id, id: refillParentID))
        #expect(refillParent.id != parentID && refillParent.status == .finished && !refillParent.isRetired)
    }

    /// A runner that writes into a folder that can fill up: with `fullAfter`
    /// set, every write after that many fails as a full disk would.
    struct FillingRunner: TrialRunner {
        let writes = Locked(0)
        var fullAfter: Int

        func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
            let n = writes.withLock { $0 += 1; return $0 }
            if n > fullAfter { throw AtomicFileError(path: output.path, reason: "write failed: No space left on device", code: ENOSPC) }
            return try ToyQuadraticRunner().run(trial, parent: parent, output: output)
        }
    }

    /// ENOSPC stops the run with a clear message: no trial is marked failed
    /// or lost, and a resume finishes the same run as one with a big disk.
    @Test func aFullDiskStopsTheRunAndLosesNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 4, workers: 2, budget: .generations(5), seed: 4, deterministic: true)
        let configuration = RunConfiguration(settings: settings, model: "toy")
        let directory = try RunDirectory(dir.url.appendingPathComponent("full"), create: true, lock: true)
        let c = try PBTCoordinator.open(store: directory.store, name: "pbt", configuration: configuration,
                                        runDirectory: directory.url).coordinator
        #expect {
            try PBTDriver(coordinator: c, runner: FillingRunner(fullAfter: 7)).run()
        } throws: { error in
            guard case .outOfSpace = error as? PBTRunError else { return false }
            return "\(error)".contains("the disk is full") && "\(error)".contains("resume")
        }
        let stopped = try directory.store.trials(runID: c.run.id)
        #expect(!stopped.contains { $0.status == .failed }, "nothing was marked failed")
        #expect(stopped.filter { $0.status == .finished }.count <= 7)
        // Space freed: the same run resumes and ends as an uninterrupted one.
        _ = try c.recoverAfterCrash()
        let resumed = try PBTDriver(coordinator: c, runner: FillingRunner(fullAfter: .max)).run()
        #expect(resumed.done && resumed.failureSummary == nil)
        let cleanDirectory = try RunDirectory(dir.url.appendingPathComponent("clean"), create: true, lock: true)
        let clean = try PBTCoordinator.open(store: cleanDirectory.store, name: "pbt", configuration: configuration,
                                            runDirectory: cleanDirectory.url).coordinator
        let reference = try PBTDriver(coordinator: clean, runner: ToyQuadraticRunner()).run()
        expectSameRows(decisionFields(resumed.trials), decisionFields(reference.trials))
        #expect(resumed.best?.id == reference.best?.id && resumed.best?.generation == reference.best?.generation)
    }

    /// The same with a real full disk: a 1 MiB tmpfs (needs root; the
    /// injected failure above covers machines without it).
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func aRealFullDiskStopsTheRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let mount = dir.url.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        let mounted = Process()
        mounted.executableURL = URL(fileURLWithPath: "/bin/mount")
        mounted.arguments = ["-t", "tmpfs", "-o", "size=160k", "tmpfs", mount.path]
        try mounted.run()
        mounted.waitUntilExit()
        try #require(mounted.terminationStatus == 0, "mount -t tmpfs failed")
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = [mount.path]
            try? unmount.run()
            unmount.waitUntilExit()
        }
        // The store on the real disk, checkpoints on the small one; a runner
        // with 40 KB checkpoints fills it after a few trials.
        struct BigRunner: TrialRunner {
            func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
                if let parent { _ = try Data(contentsOf: parent.url) }
                try AtomicFile.write(Data(count: 40_000), toPath: output.path)
                return TrialOutcome(evaluation: Double(trial.seed % 1000) / 1000)
            }
        }
        let store = try SQLiteTrialStore(path: dir.url.appendingPathComponent("store.sqlite").path)
        let settings = testSettings(population: 3, workers: 1, budget: .generations(6))
        let c = try PBTCoordinator.open(store: store, name: "pbt", configuration: RunConfiguration(settings: settings, model: "big"),
                                        runDirectory: mount).coordinator
        #expect(throws: PBTRunError.self) { try PBTDriver(coordinator: c, runner: BigRunner()).run() }
        let trials = try store.trials(runID: c.run.id)
        #expect(!trials.contains { $0.status == .failed })
        for t in trials where t.checkpointLive {
            #expect(try Data(contentsOf: c.checkpoints.ref(relativePath: t.checkpointPath!).url).count == 40_000)
        }
    }

    /// A runner that fails the trials `fails` picks as a broken program or
    /// machine would (it throws), and else writes a checkpoint; `nan` makes
    /// every other trial diverge instead.
    struct BrokenRunner: TrialRunner {
        var fails: @Sendable (Int) -> Bool
        var nan = false
        struct ExitCode: Error, CustomStringConvertible { var description: String { "the program exited with code 127" } }
        func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
            if fails(trial.id) { throw ExitCode() }
            let outcome = try NoOpRunner().run(trial, parent: parent, output: output)
            return nan ? TrialOutcome(evaluation: .nan) : outcome
        }
    }

    func open(_ dir: URL, _ settings: PBTSettings) throws -> (RunDirectory, PBTCoordinator) {
        let directory = try RunDirectory(dir, create: true, lock: true)
        let c = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                        configuration: RunConfiguration(settings: settings, model: "test"), runDirectory: dir).coordinator
        return (directory, c)
    }

    /// A program that fails every trial stops the process after
    /// `maxFailuresInARow` failures, not after the whole budget; nothing is
    /// left running, and once it works the same run goes on to the end.
    /// (Before, a broken worker failed trial after trial until the budget
    /// was gone.)
    @Test(arguments: [1, 2])
    func aBrokenProgramStopsTheProcessBeforeTheBudgetIsGone(workers: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 4, workers: 2, budget: .generations(10))
        let (directory, c) = try open(dir.url, settings)
        let broken = PBTDriver(coordinator: c, runner: BrokenRunner { _ in true },
                               options: DriverOptions(workers: workers, maxFailuresInARow: 3))
        #expect {
            try broken.run()
        } throws: { error in
            guard case .failuresInARow(let count, let limit, let reasons, let over, _)? = error as? PBTRunError, !over else { return false }
            return count >= 3 && limit == 3 && reasons.first?.contains("× runner error: the program exited with code 127 (#") == true
                && "\(error)".contains("before a broken program or machine used up the run's budget")
                && (count == 3 || "\(error)".contains("(3 in a row is the limit; the other \(count - 3) \(count == 4 ? "was" : "were") running when it was reached)"))
        }
        let stopped = try directory.store.trials(runID: c.run.id)
        let failed = stopped.filter { $0.status == .failed }.count
        #expect((3...2 + workers).contains(failed), "\(failed) failed: the limit, plus those the other workers were running")
        #expect(!stopped.contains { $0.status == .running }, "what was running went back to the queue")
        #expect(stopped.filter { $0.status == .finished }.isEmpty)
        let resumed = try PBTDriver(coordinator: c, runner: BrokenRunner { _ in false }, options: DriverOptions(workers: workers)).run()
        #expect(resumed.done)
        #expect(resumed.trials.filter { $0.status == .finished }.count == settings.trialBudget - failed,
                "only the failures before the stop were lost from the budget")
    }

    /// What does not stop the process: a streak shorter than the limit, a
    /// diverged trial (its program ran), and a limit of 0. One worker, so
    /// trials run in id order.
    @Test func onlyFailuresInARowUpToTheLimitStopTheProcess() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: 3, workers: 1, budget: .generations(4))
        func run(_ name: String, _ runner: BrokenRunner, limit: Int) throws -> PBTRunResult {
            let (_, c) = try open(dir.url.appendingPathComponent(name), settings)
            return try PBTDriver(coordinator: c, runner: runner, options: DriverOptions(workers: 1, maxFailuresInARow: limit)).run()
        }
        // Two failures, then a success, all along: a limit of 3 is never
        // reached, 2 is (the same runner: the test can fail).
        let twoInARow = BrokenRunner { $0 % 3 != 0 }
        let below = try run("below", twoInARow, limit: 3)
        #expect(below.done && below.trials.filter { $0.status == .failed }.count >= 6)
        #expect(throws: PBTRunError.failuresInARow(count: 2, limit: 2, reasons: ["  2× runner error: the program exited with code 127 (#1, #2)"])) {
            try run("at", twoInARow, limit: 2)
        }
        // The failures that stop it use up the budget: the message says the run is over (it said
        // "run the same command again: the run goes on", and the rerun found it complete).
        let (_, small) = try open(dir.url.appendingPathComponent("over"), testSettings(population: 2, workers: 1, budget: .generations(1)))
        #expect {
            try PBTDriver(coordinator: small, runner: BrokenRunner { _ in true }, options: DriverOptions(workers: 1, maxFailuresInARow: 2)).run()
        } throws: { error in
            guard case .failuresInARow(_, _, _, let over, _)? = error as? PBTRunError else { return false }
            return over && "\(error)".contains("they used up the run's budget: the run is over") && !"\(error)".contains("the run goes on where it stopped")
        }
        // Every trial diverges: the run goes through its budget and says so.
        let diverged = try run("nan", BrokenRunner(fails: { _ in false }, nan: true), limit: 1)
        #expect(diverged.done && diverged.failureSummary?.contains("every trial failed (\(settings.trialBudget))") == true,
                "\(diverged.failureSummary ?? "")")
        // 0: never stop, even when nothing works.
        let never = try run("never", BrokenRunner { _ in true }, limit: 0)
        #expect(never.done && never.trials.count == settings.trialBudget && never.trials.allSatisfy { $0.status == .failed })
    }

    /// One failure, and one beyond the limit, in words (a user read "the
    /// last 1 trials" and "the other 1 were").
    @Test func oneFailureIsCountedInTheSingular() {
        #expect("\(PBTRunError.failuresInARow(count: 1, limit: 1, reasons: []))".hasPrefix("the last trial this process ran failed in the training program, so"))
        #expect("\(PBTRunError.failuresInARow(count: 3, limit: 2, reasons: []))".hasPrefix(
            "the last 3 trials this process ran all failed in the training program (2 in a row is the limit; the other 1 was running when it was reached)"))
    }

    @Test func aRunThatEndsOnFailuresHasASummary() throws {
        var failed = finishedTrial(1, generation: 0, loss: nil)
        failed.failure = "runner error: boom"
        let finished = finishedTrial(2, generation: 0, loss: 0.5)
        var refilled = finishedTrial(3, generation: 0, loss: nil)
        refilled.failure = "diverged: evaluation nan"
        var refill = finishedTrial(4, generation: 0, loss: 0.25)
        refill.spec.refillOf = 3
        func result(_ trials: [TrialRecord], done: Bool = true) -> PBTRunResult {
            PBTRunResult(trials: trials, best: nil, bestCheckpoint: nil, completedThisSession: 0, elapsedSeconds: 0, done: done,
                         time: WorkerTime())
        }
        #expect(result([finished, refilled, refill]).failureSummary == nil, "every failure was replaced")
        #expect(result([failed, finished], done: false).failureSummary == nil, "a stopped run may still refill")
        let ended = try #require(result([failed, finished, refilled, refill]).failureSummary)
        #expect(ended.contains("1 failed trial(s) were never replaced") && ended.contains("1× runner error: boom"), "\(ended)")
        let all = try #require(result([failed, refilled], done: false).failureSummary)
        #expect(all.contains("every trial failed (2)") && all.contains("diverged"), "\(all)")
        // Failures of one kind count together, whatever their trial: the
        // first line without the trial's number, and the trials named.
        let exits = [5, 6].map { id in
            var t = finishedTrial(id, generation: 1, loss: nil)
            t.failure = "runner error: trial \(id): the program exited with code 7; last lines of its log.txt:\n  | trial \(id) at /a/long/path"
            return t
        }
        let grouped = try #require(result([finished] + exits).failureSummary)
        #expect(grouped.contains("2 failed trial(s) were never replaced (#5, #6)"), "\(grouped)")
        #expect(grouped.contains("2× runner error: the program exited with code 7 (#5, #6)"), "no dangling 'last lines of its log.txt:': \(grouped)")
        #expect(!grouped.contains("/a/long/path"), "the log tail is shown when a trial fails, not in the summary: \(grouped)")
        // A reason that names the trial's own output counts as one kind too.
        let unwritten = [7, 8].map { id in
            var t = finishedTrial(id, generation: 1, loss: nil)
            t.failure = "runner returned 1.0 without writing its checkpoint /runs/a/checkpoints/pbt-1a2b3c4d/trial-\(id).1.ckpt"
            return t
        }
        let outputs = try #require(result([finished] + unwritten).failureSummary)
        #expect(outputs.contains("2× runner returned 1.0 without writing its checkpoint /runs/a/checkpoints/pbt-1a2b3c4d/trial-N.A.ckpt (#7, #8)"),
                "\(outputs)")
    }

    /// The command: a run whose trials diverge until the budget is gone
    /// exits non-zero with the reasons (before: exit 0).
    @Test func aRunWhoseTrialsAllFailExitsNonZero() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let run = try runPBTWave(["pbt", "--run-dir", dir.url.path, "--model", "toy", "--workers", "2", "--population", "2",
                                  "--trial-steps", "50", "--generations", "2", "--lr-min", "5", "--lr-max", "10", "--progress", "none"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("failed trial(s) were never replaced") || run.stderr.contains("every trial failed"), "\(run.stderr)")
        #expect(run.stderr.contains("diverged: evaluation"), "\(run.stderr)")
    }
}
