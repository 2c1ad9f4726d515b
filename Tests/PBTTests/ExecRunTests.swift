import Foundation
import Testing

@testable import PBT

/// Whole PBT runs of the Python toy through the exec runner: failures
/// recorded and refilled, the disk bound, determinism, leases.
@Suite struct ExecRunTests {
    static func settings(population: Int = 3, workers: Int = 3, generations: Int = 3, seed: UInt64 = 4,
                         deterministic: Bool = false) -> PBTSettings {
        testSettings(population: population, workers: workers, trialSteps: 5, budget: .generations(generations), seed: seed,
                     deterministic: deterministic, space: ExecToy.space)
    }

    /// A new exec run in `dir`, its directory locked.
    static func open(_ settings: PBTSettings, dir: URL) throws -> (RunDirectory, PBTCoordinator) {
        let directory = try RunDirectory(dir, create: true, lock: true)
        let (c, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                             configuration: RunConfiguration(settings: settings, model: "exec"), runDirectory: dir)
        return (directory, c)
    }

    static func run(_ settings: PBTSettings, runner: ExecRunner, threads: Int? = nil, leaseSeconds: Double = 300,
                    dir: URL) throws -> (PBTRunResult, [SelectionRecord]) {
        let (directory, c) = try open(settings, dir: dir)
        let result = try PBTDriver(coordinator: c, runner: runner, options: DriverOptions(workers: threads, leaseSeconds: leaseSeconds)).run()
        return (result, try directory.store.selections(runID: c.run.id))
    }

    /// The trial directories on disk are exactly the live checkpoints.
    static func expectOnlyLiveDirectories(_ result: PBTRunResult, in dir: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try DriverTests.checkpointFiles(dir) == Set(result.trials.filter(\.checkpointLive).map { $0.checkpointPath! }),
                sourceLocation: sourceLocation)
        for t in result.trials where t.checkpointLive {
            var isDirectory: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: dir.path + "/" + t.checkpointPath! + "/checkpoint.json", isDirectory: &isDirectory),
                    sourceLocation: sourceLocation)
        }
    }

    /// A program that reports a non-finite objective diverged: it ran, so
    /// its trials do not count towards `maxFailuresInARow` (as for the
    /// WaveNet runner's NaN), and the run goes through its budget. (Before,
    /// a limit of 1 stopped the run at the first NaN.)
    @Test func aProgramThatDivergesDoesNotStopTheRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = Self.settings(population: 2, workers: 1, generations: 2)
        let (_, c) = try Self.open(settings, dir: dir.url)
        let runner = try ExecToy.runner(["TOY_FAIL": "nan"])
        let result = try PBTDriver(coordinator: c, runner: runner, options: DriverOptions(workers: 1, maxFailuresInARow: 1)).run()
        #expect(result.done)
        #expect(result.trials.count == settings.trialBudget)
        // Recorded as a divergence, as the WaveNet runner's NaN is (lineage said "runner error").
        #expect(result.trials.allSatisfy { $0.status == .failed && $0.failure?.hasPrefix("diverged: ") == true
                    && $0.failure?.contains("non-finite objective (nan)") == true },
                "\(result.trials.map { $0.failure ?? "" })")
    }

    /// A program that cannot use trial 1's checkpoint (the best) says so
    /// with exit code 65: trial 1 is retired, the refills start from other
    /// trials, and the run goes through its budget without stopping for
    /// failures in a row (before, one bad parent used up the budget).
    @Test func aParentTheProgramCannotUseIsRetired() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = Self.settings(population: 2, workers: 1, generations: 4)
        let (_, c) = try Self.open(settings, dir: dir.url)
        let script = #"""
            case "$PBT_PARENT_DIR" in */trial-1.*) echo "cannot load $PBT_PARENT_DIR"; exit "$PBT_EXIT_PARENT_UNUSABLE";; esac
            objective=1; [ "$PBT_TRIAL_ID" = 1 ] && objective=0
            echo state > "$PBT_TRIAL_DIR/state"; echo "{\"objective\": $objective}" > "$PBT_TRIAL_DIR/result.json"
            """#
        let runner = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", script]), environment: ExecToy.environment([:]))
        let result = try PBTDriver(coordinator: c, runner: runner, options: DriverOptions(workers: 1, maxFailuresInARow: 2)).run()
        #expect(result.done)
        let first = try #require(result.trials.first { $0.id == 1 })
        #expect(first.isRetired && first.failure?.contains("retired: its checkpoint cannot be used: the program exited with code 65") == true,
                "\(first.failure ?? "not retired")")
        let failed = result.trials.filter { $0.status == .failed }
        #expect(!failed.isEmpty && failed.allSatisfy { $0.spec.parentID == 1 })
        #expect(result.trials.contains { $0.status == .finished && $0.spec.parentID != nil && $0.spec.parentID != 1 },
                "refills start from another parent: \(result.trials.map { ($0.id, $0.spec.parentID ?? 0, $0.status) })")
    }

    @Test func failedProgramsAreRecordedWithTheirReasonAndRefilled() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        // Deterministic, so whether the budget still allows a refill of trial 5
        // does not depend on which worker finished first.
        let settings = Self.settings(deterministic: true)
        let runner = try ExecToy.runner(["TOY_FAIL": "exit", "TOY_FAIL_TRIALS": "2,5"])
        let (result, selections) = try Self.run(settings, runner: runner, dir: dir.url)
        #expect(result.done)
        expectConsistentRun(result.trials, selections, settings: settings)
        let failed = result.trials.filter { $0.status == .failed }
        #expect(failed.map(\.id) == [2, 5])
        for t in failed {
            let text = t.failure ?? ""
            #expect(text.contains("trial \(t.id): the program exited with code 3"), "\(text)")
            #expect(text.contains("| toy_quadratic: failing on purpose (TOY_FAIL=exit)"), "the log's last lines are stored: \(text)")
        }
        #expect(result.trials.filter { $0.refillOf != nil }.map(\.refillOf) == [2, 5])
        try Self.expectOnlyLiveDirectories(result, in: dir.url)
    }

    /// A deterministic exec run is the same twice, and with one worker
    /// thread instead of three (results are applied in id order; the toy
    /// is a function of its inputs).
    @Test func deterministicExecRunsAreIdenticalAcrossRunsAndThreadCounts() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = Self.settings(generations: 4, seed: 21, deterministic: true)
        let runner = try ExecToy.runner()
        let (a, sa) = try Self.run(settings, runner: runner, dir: dir.url.appendingPathComponent("a"))
        let (b, sb) = try Self.run(settings, runner: runner, dir: dir.url.appendingPathComponent("b"))
        let (c, sc) = try Self.run(settings, runner: runner, threads: 1, dir: dir.url.appendingPathComponent("c"))
        #expect(a.done && b.done && c.done)
        #expect(a.trials.allSatisfy { $0.status == .finished })
        expectSameRows(a.trials.map(\.lineageFields), b.trials.map(\.lineageFields))
        expectSameRows(a.trials.map(\.lineageFields), c.trials.map(\.lineageFields))
        #expect(sa == sb && sa == sc)
        #expect(Set(a.trials.compactMap(\.workerID)).count > 1, "several workers took part")
        // The programs' own files agree too, byte for byte.
        // (Each run has its own checkpoint folder, checkpoints/<run>-<hash>/.)
        let bestA = try #require(a.best?.checkpointPath), bestC = try #require(c.best?.checkpointPath)
        #expect(try Data(contentsOf: dir.url.appendingPathComponent("a/" + bestA + "/checkpoint.json"))
                == Data(contentsOf: dir.url.appendingPathComponent("c/" + bestC + "/checkpoint.json")))
    }

    /// Trials of 1.5 s under 0.5 s leases, in budget mode (an idle worker
    /// waits at the generation boundary and would take over a trial whose
    /// lease lapsed): the heartbeat keeps every program's lease.
    @Test(.timeLimit(.minutes(2))) func heartbeatsKeepRunningProgramsLeased() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = Self.settings(population: 3, workers: 2, generations: 2)
        let runner = try ExecToy.runner(["TOY_STEP_SECONDS": "0.3"])
        let (result, _) = try Self.run(settings, runner: runner, leaseSeconds: 0.5, dir: dir.url)
        #expect(result.done)
        #expect(result.trials.allSatisfy { $0.status == .finished && $0.attempt == 1 }, "attempts: \(result.trials.map(\.attempt))")
    }

    /// A worker whose lease lapsed while its program ran (the store out of
    /// reach, the process stalled) finds at its next heartbeat that another
    /// worker took the trial over. Its program is killed at once instead of
    /// running to its end for a result the store would ignore; nothing is
    /// recorded for it, its directory goes, and the worker goes on with the
    /// next trial. (The toy's trials here take 100 s each.)
    @Test(.timeLimit(.minutes(2))) func aWorkerWhoseTrialWasTakenOverKillsItsProgramAndGoesOn() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = Self.settings(population: 2, workers: 1, generations: 2)
        let failures = Locked<[ExecTrialFailure]>([])
        let runner = try ExecToy.runner(["TOY_STEP_SECONDS": "20"], grace: .seconds(1), failures: failures)
        let (directory, c) = try Self.open(settings, dir: dir.url)
        let notices = Locked<[String]>([])
        let driver = PBTDriver(coordinator: c, runner: runner, options: DriverOptions(workers: 1, leaseSeconds: 0.4,
                                                                                       notice: { text in notices.withLock { $0.append(text) } }))
        let outcome = Locked<Result<PBTRunResult, any Error>?>(nil)
        let thread = Thread { outcome.withLock { $0 = Result { try driver.run() } } }
        thread.start()
        defer {
            driver.requestStop()
            runner.stop("the test ends", immediately: true)
            _ = eventually(within: 30) { outcome.withLock { $0 != nil } }
        }
        func running() -> [TrialRecord] { (try? directory.store.trials(runID: c.run.id).filter { $0.status == .running }) ?? [] }
        #expect(eventually(within: 30) { running().count == 1 }, "no trial ran")
        let mine = try #require(running().first)
        // Another worker claims it, as it would once the lease had lapsed
        // (its clock far ahead: every lease of this run has expired for it).
        let later = Date().timeIntervalSince1970 + 1e6
        let taken = try #require(try directory.store.claim(runID: c.run.id, workerID: "other", now: later, leaseUntil: later + 1e6, below: mine.id + 1))
        #expect(taken.id == mine.id && taken.attempt == mine.attempt + 1)

        #expect(eventually(within: 30) { running().contains { $0.id != mine.id && $0.workerID == mine.workerID } },
                "the worker did not go on to the next trial: \(running().map { ($0.id, $0.workerID ?? "") })")
        let abandoned = failures.withLock { $0 }.filter { $0.trialID == mine.id }
        #expect(abandoned.count == 1, "\(abandoned)")
        if case .abandoned(let why)? = abandoned.first?.reason {
            #expect(why.contains("lapsed") && why.contains("attempt \(taken.attempt) by other"), "\(why)")
        } else {
            Issue.record("the trial's program was not killed as abandoned: \(abandoned)")
        }
        let said = notices.withLock { $0 }
        #expect(said.contains { $0.hasPrefix("trial \(mine.id) given up: another worker took it over (attempt \(mine.attempt)'s lease of 0.4 s lapsed; "
                                             + "attempt \(taken.attempt) by other); its run is stopped, and this worker goes on") }, "\(said)")
        let now = try #require(try directory.store.trial(runID: c.run.id, id: mine.id))
        #expect(now.status == .running && now.workerID == "other" && now.failure == nil, "\(now)")
        let left = c.checkpoints.ref(relativePath: c.checkpoints.relativePath(trialID: mine.id, attempt: mine.attempt)).path
        #expect(!FileManager.default.fileExists(atPath: left), "the abandoned attempt's directory is left: \(left)")
    }

    /// Workers with nothing to claim while another process's worker holds
    /// a trial (here one that died with it: nobody renews its lease) say what
    /// they wait for, and take the trial over when its lease ends.
    @Test(.timeLimit(.minutes(1))) func waitingWorkersSayForWhichTrialsOfOtherWorkers() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = Self.settings(population: 2, workers: 1, generations: 1)
        let (directory, c) = try Self.open(settings, dir: dir.url)
        let now = Date().timeIntervalSince1970
        let held = try #require(try directory.store.claim(runID: c.run.id, workerID: "elsewhere:7/w0", now: now, leaseUntil: now + 3, below: nil))
        let notices = Locked<[String]>([])
        var options = DriverOptions(workers: 1, leaseSeconds: 30, notice: { text in notices.withLock { $0.append(text) } })
        options.waitNoticeSeconds = 0.2
        let result = try PBTDriver(coordinator: c, runner: try ExecToy.runner(), options: options).run()
        #expect(result.done)
        let trial = try #require(result.trials.first { $0.id == held.id })
        #expect(trial.status == .finished && trial.attempt == 2 && trial.workerID?.hasPrefix(options.workerIDPrefix) == true)
        let said = notices.withLock { $0 }
        #expect(said.count == 1, "one notice while the same trial is awaited: \(said)")
        #expect(said.first?.hasPrefix("waiting for a trial other workers run: trial \(held.id) (attempt 1, on elsewhere:7/w0, its lease ends in ") == true
                && said.first?.hasSuffix("A trial whose worker died is run again here once its lease ends") == true, "\(said)")
    }

    /// A `pbtwave worker` killed with SIGKILL while its program runs: the
    /// trial is re-run by another worker once its lease expires, and only it.
    @Test(.timeLimit(.minutes(2))) func aKilledWorkersTrialIsReRunAfterItsLeaseExpires() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let storePath = dir.url.appendingPathComponent("trials.sqlite").path
        let toy = try ExecToy.command()
        let create = try runPBTWave(["pbt", "--run-dir", runDir, "--store", "sqlite:" + storePath, "--run", "exec", "--space", Self.spaceFile(dir),
                                     "--workers", "2", "--trial-steps", "5", "--generations", "2", "--local-workers", "0", "--",
                                     toy.program] + toy.arguments)
        #expect(create.status == 0, "\(create.stderr)")

        func worker() throws -> Process {
            let p = Process()
            p.executableURL = try pbtwaveExecutable()
            p.arguments = ["worker", "--store", "sqlite:" + storePath, "--run", "exec", "--run-dir", runDir, "--lease-seconds", "2",
                           "--progress", "none"]
            p.environment = ExecToy.environment(["TOY_STEP_SECONDS": "0.3"])
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let store = try SQLiteTrialStore(path: storePath)
        let run = try #require(try store.run(named: "exec"))
        let victim = try worker()
        var held: TrialRecord?
        let sawIt = eventually(within: 60) {
            held = try? store.trials(runID: run.id).first { $0.status == .running && $0.workerID?.contains(":\(victim.processIdentifier)/") == true }
            return held != nil
        }
        #expect(sawIt, "the first worker never ran a trial")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        let survivor = try worker()
        survivor.waitUntilExit()
        #expect(survivor.terminationStatus == 0)

        let trials = try store.trials(runID: run.id)
        #expect(trials.count == 4 && trials.allSatisfy { $0.status == .finished }, "\(trials.map { ($0.id, $0.status) })")
        let killed = try #require(trials.first { $0.id == held?.id })
        #expect(killed.attempt == 2 && killed.workerID?.contains(":\(survivor.processIdentifier)/") == true)
        #expect(killed.checkpointPath?.hasSuffix(".2.ckpt") == true)
        #expect(trials.filter { $0.id != killed.id }.allSatisfy { $0.attempt == 1 }, "no other trial ran twice")
        #expect(try store.run(named: "exec")?.state.done == true)
    }

    /// The toy's space as a `--space` file in `dir`.
    static func spaceFile(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.url.appendingPathComponent("space.json").path
        try JSONEncoder().encode(ExecToy.space.specification).write(to: URL(fileURLWithPath: path))
        return path
    }
}
