import Foundation
import Testing

@testable import PBT
import PBTExamples

/// Issue 15, items 1–3: a run directory's checkpoints are never deleted or
/// overwritten by a run that does not own them, whatever happened to the
/// store; and one store with one run has one owner.
@Suite struct RunDirectorySafetyTests {
    static func toyRun(_ runDir: String, _ extra: [String] = [], trialMilliseconds: Int = 0) -> [String] {
        ["pbt", "--run-dir", runDir, "--model", "toy", "--workers", "2", "--population", "4", "--trial-steps", "5",
         "--total-steps", "200", "--seed", "3", "--progress", "none", "--toy-trial-ms", "\(trialMilliseconds)"] + extra
    }

    /// Every file under `dir`, with its contents, so a test can tell that
    /// nothing was deleted or changed.
    static func snapshot(_ dir: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: dir.path)
        while let path = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let full = dir.appendingPathComponent(path).path
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[path] = FileManager.default.contents(atPath: full)
            }
        }
        return files
    }

    static func checkpoints(_ files: [String: Data]) -> [String: Data] { files.filter { $0.key.hasPrefix("checkpoints/") } }

    /// A finished toy run in a fresh directory.
    static func finishedRun(_ dir: TemporaryDirectory) throws -> URL {
        let runDir = dir.url.appendingPathComponent("run")
        let first = try runPBTWave(toyRun(runDir.path))
        #expect(first.status == 0, "\(first.stderr)")
        #expect(!checkpoints(try snapshot(runDir)).isEmpty)
        return runDir
    }

    static func removeStore(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

    /// Item 1, three ways: a zero-byte store, a removed store, a mistyped
    /// `--store`. Each is refused with a message, and every checkpoint is
    /// still there, byte for byte (before: a new run started and its crash
    /// recovery deleted them all).
    @Test(arguments: ["zero-byte", "removed", "typo", "typo --resume", "removed --resume"])
    func checkpointsNoStoreKnowsAreNeverDeleted(_ way: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = try Self.finishedRun(dir)
        let store = runDir.appendingPathComponent(RunDirectory.storeFileName).path
        var extra: [String] = way.hasSuffix("--resume") ? ["--resume"] : []
        switch way.split(separator: " ")[0] {
        case "zero-byte":
            Self.removeStore(store)
            _ = FileManager.default.createFile(atPath: store, contents: Data())
        case "removed":
            Self.removeStore(store)
        default:
            extra += ["--store", "sqlite:" + runDir.appendingPathComponent("typo.sqlite").path]
        }
        let before = Self.checkpoints(try Self.snapshot(runDir))
        let again = try runPBTWave(Self.toyRun(runDir.path, extra))
        #expect(again.status != 0, "\(way): the run was not refused: \(again.stdout)")
        #expect(again.stderr.contains("belongs to") || again.stderr.contains("cannot be that run's")
                || again.stderr.contains("holds no PBT run to resume"), "\(way): \(again.stderr)")
        let after = Self.checkpoints(try Self.snapshot(runDir))
        #expect(after == before, "\(way): checkpoints changed: \(Set(before.keys).symmetricDifference(after.keys))")
        #expect(!FileManager.default.fileExists(atPath: runDir.appendingPathComponent("typo.sqlite").path), "no store was created")
        if way.hasPrefix("zero-byte") {
            #expect((try FileManager.default.attributesOfItem(atPath: store)[.size] as? Int) == 0, "the empty store was left as it was")
        }
    }

    /// Item 1 in the library: crash recovery sweeps only the run's own
    /// files, never another run's namespace, stray files, or the flat files
    /// of trials the store does not know.
    @Test func recoverySweepsOnlyTheRunsOwnFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let foreign = ["checkpoints/other-0badf00d/trial-1.1.ckpt", "checkpoints/trial-99.1.ckpt", "checkpoints/notes.txt"]
        for path in foreign {
            let url = dir.url.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("someone else's".utf8).write(to: url)
        }
        let directory = try RunDirectory(dir.url, create: true, lock: true)
        let configuration = RunConfiguration(settings: testSettings(population: 2, workers: 2), model: "test")
        // A new run in a directory holding files of no known run: refused
        // by `open` itself, before the store changes.
        #expect(throws: RunDirectoryError.self) {
            try RunMarker.checkBeforeOpening(directory.store, location: "test", name: "pbt", runDirectory: dir.url)
        }
        let refusal = #expect(throws: RunDirectoryError.self) {
            try PBTCoordinator.open(store: directory.store, name: "pbt", configuration: configuration, runDirectory: dir.url)
        }
        #expect(refusal.map { "\($0)".contains("3 checkpoint file(s) of no known run") && "\($0)".contains("nothing was deleted") } == true,
                "\(String(describing: refusal))")
        #expect(try directory.store.runNames().isEmpty, "no run was created")
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent(RunMarker.fileName).path), "the directory was not claimed")
        for path in foreign { #expect(FileManager.default.fileExists(atPath: dir.url.appendingPathComponent(path).path), "\(path)") }

        // With the files moved away the run claims the directory; then a
        // run's own orphans go, a file in another namespace stays.
        for path in foreign { try FileManager.default.removeItem(at: dir.url.appendingPathComponent(path)) }
        let (c, _) = try PBTCoordinator.open(store: directory.store, name: "pbt", configuration: configuration, runDirectory: dir.url)
        #expect(try RunMarker.read(dir.url) == RunIdentity(c.run), "open names the run in the directory's marker")
        let kept = dir.url.appendingPathComponent("checkpoints/other-0badf00d/trial-1.1.ckpt")
        _ = try c.recoverAfterCrash()
        try Data("late".utf8).write(to: kept)
        let t = try #require(try { if case .trial(let t) = try c.claim(workerID: "w") { return t } else { return nil } }())
        _ = try NoOpRunner().run(t.spec, parent: nil, output: t.output)  // written, never reported
        try FileManager.default.createDirectory(atPath: c.checkpoints.directory.appendingPathComponent("trial-7.1").path,
                                                withIntermediateDirectories: true)
        try Data("a trial's folder".utf8).write(to: c.checkpoints.directory.appendingPathComponent("trial-7.1/state.bin"))
        let (requeued, removed, _) = try c.recoverAfterCrash()
        #expect(requeued == 1 && removed == 2, "the unreported output and the orphan folder: \(removed)")
        #expect(FileManager.default.fileExists(atPath: kept.path), "another namespace is never swept")
        #expect(c.checkpoints.files().isEmpty)
    }

    /// Item 2: two runs in one run directory. Each run has its own
    /// namespace, and the second is refused (before: both wrote
    /// `checkpoints/trial-N.A.ckpt` and the marker was replaced).
    @Test func aRunDirectoryBelongsToOneRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("shared")
        let a = dir.url.appendingPathComponent("a.sqlite").path, b = dir.url.appendingPathComponent("b.sqlite").path
        #expect(try runPBTWave(Self.toyRun(runDir.path, ["--store", "sqlite:" + a])).status == 0)
        let before = try Self.snapshot(runDir)
        let second = try runPBTWave(Self.toyRun(runDir.path, ["--store", "sqlite:" + b, "--seed", "4"]))
        #expect(second.status != 0)
        #expect(second.stderr.contains("cannot be that run's") || second.stderr.contains("belongs to"), "\(second.stderr)")
        #expect(Self.checkpoints(try Self.snapshot(runDir)) == Self.checkpoints(before))
        // Another run name in the same store: refused too.
        let other = try runPBTWave(Self.toyRun(runDir.path, ["--store", "sqlite:" + a, "--run", "second"]))
        #expect(other.status != 0 && other.stderr.contains("belongs to another run"), "\(other.stderr)")
        // The first run still resumes (and has nothing left to do).
        let resumed = try runPBTWave(Self.toyRun(runDir.path, ["--store", "sqlite:" + a, "--resume"]))
        #expect(resumed.status == 0 && resumed.stdout.contains("run complete"), "\(resumed.stderr)")
    }

    /// What a library caller can get wrong when opening a run: each is a
    /// sentence, and nothing is created in the store.
    @Test func badRunsAndDirectoriesAreRefusedBeforeTheStoreChanges() throws {
        let store = try SQLiteTrialStore(path: ":memory:")
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let configuration = RunConfiguration(settings: testSettings(), model: "test")
        func refusal(_ name: String, _ runDirectory: URL) -> String? {
            do {
                _ = try PBTCoordinator.open(store: store, name: name, configuration: configuration, runDirectory: runDirectory)
                return nil
            } catch { return "\(error)" }
        }
        for name in ["a\nb", "tab\there"] {
            let message = refusal(name, dir.url.appendingPathComponent("n"))
            #expect(message?.contains("a run needs a name without line breaks or other control characters") == true, "\(String(reflecting: name)): \(message ?? "opened")")
        }
        // An empty name is called empty (a helper was told of control characters).
        for name in ["", "  "] {
            let message = refusal(name, dir.url.appendingPathComponent("n"))
            #expect(message?.contains("a run needs a name, not an empty one") == true, "\(String(reflecting: name)): \(message ?? "opened")")
        }
        let file = dir.url.appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        #expect(refusal("r", file) == "\(file.path) is a file, not a run directory")
        let below = file.appendingPathComponent("run")
        #expect(refusal("r", below)?.hasPrefix("cannot create the run directory \(below.path): ") == true, "\(refusal("r", below) ?? "opened")")
        #expect(try store.runNames().isEmpty, "no run was created")
        #expect(throws: PBTStoreError.self) { try SQLiteTrialStore(path: "") }
    }

    /// A shared store: a run whose trials have started is refused another,
    /// unmarked directory even before any checkpoint exists (before: a
    /// second `pbt --run-dir` accepted it, claimed it, and the run's
    /// checkpoints were split between two directories, parents missing).
    @Test func aStartedRunIsRefusedAnotherDirectory() throws {
        let store = try SQLiteTrialStore(path: ":memory:")
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let configuration = RunConfiguration(settings: testSettings(), model: "test")
        let a = dir.url.appendingPathComponent("a"), b = dir.url.appendingPathComponent("b")
        let c = try PBTCoordinator.open(store: store, name: "r", configuration: configuration, runDirectory: a).coordinator
        // Not started yet: the check before opening lets it by, but opening
        // refuses: the run's creator claimed its directory before creating it,
        // so an unmarked one is not the run's (found by a helper: two commands
        // creating one run at once, each with a directory of its own, both went
        // on and split its checkpoints).
        #expect(throws: Never.self) { try RunMarker.checkBeforeOpening(store, location: "test", name: "r", runDirectory: b) }
        let early = #expect(throws: RunDirectoryError.self) {
            try PBTCoordinator.open(store: store, name: "r", configuration: configuration, runDirectory: b)
        }
        #expect(early.map { "\($0)".contains("is not the directory of run 'r'") } == true, "\(String(describing: early))")
        guard case .trial = try c.claim(workerID: "w") else { Issue.record("no trial"); return }
        let refusal = #expect(throws: RunDirectoryError.self) {
            try PBTCoordinator.open(store: store, name: "r", configuration: configuration, runDirectory: b)
        }
        #expect(refusal.map { "\($0)".contains("is not the directory of run 'r'") } == true, "\(String(describing: refusal))")
        #expect(!FileManager.default.fileExists(atPath: b.appendingPathComponent(RunMarker.fileName).path), "b was not claimed")
        #expect(throws: Never.self) { try PBTCoordinator.open(store: store, name: "r", configuration: configuration, runDirectory: a) }
    }

    /// Two commands creating one run in one directory at once: the one
    /// that finds the other's claim waits for the run and joins it; a claim
    /// whose creator stopped before creating the run (no checkpoints) is
    /// taken over; a command refused a directory creates nothing in the store.
    @Test func aClaimAheadOfItsRunIsJoinedOrTakenOver() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.url.appendingPathComponent("s.sqlite").path
        let store = try SQLiteTrialStore(path: path)
        let configuration = RunConfiguration(settings: testSettings(), model: "test")
        let shared = dir.url.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        // Another command's claim, its run created half a second later.
        let identity = RunIdentity(name: "r", createdAt: 1_000)
        try RunMarker.claim(shared, as: identity, trials: [])
        let creator = Thread {
            usleep(500_000)
            let other = try! SQLiteTrialStore(path: path)
            let controller = PBTController(settings: configuration.settings, explorer: try! ExploreStrategies.builtIn.strategy(for: configuration.settings))
            var state = controller.initialState
            let first = controller.start(&state)
            _ = try! other.createRun(name: "r", configJSON: try! configuration.jsonText(), seed: configuration.settings.seed, state: state,
                                     trials: first, now: 1_000)
        }
        creator.start()
        let joined = try PBTCoordinator.open(store: store, name: "r", configuration: configuration, runDirectory: shared, adjustingBudget: false)
        #expect(!joined.created && RunIdentity(joined.coordinator.run) == identity)

        // A stale claim (its command stopped before creating the run): taken over after the wait.
        let stale = dir.url.appendingPathComponent("stale")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        try RunMarker.claim(stale, as: RunIdentity(name: "t", createdAt: 5), trials: [])
        let taken = try PBTCoordinator.open(store: store, name: "t", configuration: configuration, runDirectory: stale, now: 7)
        let marker = try RunMarker.read(stale)
        #expect(taken.created && marker == RunIdentity(name: "t", createdAt: 7))

        // A directory claimed for another run: refused, and nothing created in the store.
        let refused = #expect(throws: RunDirectoryError.self) {
            try PBTCoordinator.open(store: store, name: "u", configuration: configuration, runDirectory: stale, now: 8)
        }
        #expect(refused.map { "\($0)".contains("belongs to another run") } == true)
        #expect(try store.runNames() == ["r", "t"])
    }

    /// Each run of a store has a directory of its own (the library's
    /// `open` refuses a second run in one), and a namespace of its own in it.
    @Test func runsHaveTheirOwnNamespaces() throws {
        let store = try SQLiteTrialStore(path: ":memory:")
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let configuration = RunConfiguration(settings: testSettings(), model: "test")
        let a = try PBTCoordinator.open(store: store, name: "r", configuration: configuration, runDirectory: dir.url, now: 1).coordinator
        let second = #expect(throws: RunDirectoryError.self) {
            try PBTCoordinator.open(store: store, name: "s", configuration: configuration, runDirectory: dir.url, now: 1)
        }
        #expect(second.map { "\($0)".contains("belongs to another run") } == true, "\(String(describing: second))")
        #expect(try store.runNames() == ["r"], "the refused run was not created")
        let b = try PBTCoordinator.open(store: store, name: "r/../x y", configuration: configuration,
                                        runDirectory: dir.url.appendingPathComponent("b"), now: 1).coordinator
        #expect(a.checkpoints.namespace != b.checkpoints.namespace)
        #expect(a.checkpoints.relativePath(trialID: 1, attempt: 1) != b.checkpoints.relativePath(trialID: 1, attempt: 1))
        #expect(b.checkpoints.namespace.hasPrefix("checkpoints/r____x_y-"), "\(b.checkpoints.namespace)")
        #expect(CheckpointDirectory.namespace(for: RunIdentity(name: "r", createdAt: 1))
                != CheckpointDirectory.namespace(for: RunIdentity(name: "r", createdAt: 2)), "a new run of the same name")
    }

    /// Runs from before namespaces (flat `checkpoints/trial-N.A.ckpt`,
    /// paths stored so) still resume: their files are recognised as theirs.
    @Test func runsFromBeforeNamespacesStillResume() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let directory = try RunDirectory(dir.url, create: true, lock: true)
        let configuration = RunConfiguration(settings: testSettings(population: 2, workers: 2), model: "test")
        let (c, _) = try PBTCoordinator.open(store: directory.store, name: "pbt", configuration: configuration, runDirectory: dir.url)
        // Trial 1 finished the old way; trial 2 was running and left its output.
        guard case .trial(let t1) = try c.claim(workerID: "w"), case .trial(let t2) = try c.claim(workerID: "w") else {
            Issue.record("no trials")
            return
        }
        try directory.store.withDecision(runID: c.run.id) { tx in
            try tx.complete(trialID: t1.spec.id, status: .finished, evaluation: 1, checkpointPath: "checkpoints/trial-1.1.ckpt",
                            finishedAt: 1, failure: nil)
        }
        try FileManager.default.removeItem(at: c.checkpoints.directory)
        for name in ["trial-1.1.ckpt", "trial-2.1.ckpt"] {
            _ = try NoOpRunner().run(t2.spec, parent: nil, output: CheckpointRef(path: dir.url.appendingPathComponent("checkpoints/" + name).path))
        }
        let reopened = try PBTCoordinator.open(store: directory.store, name: "pbt", configuration: configuration, runDirectory: dir.url)
        let (requeued, removed, _) = try reopened.coordinator.recoverAfterCrash()
        #expect(requeued == 1 && removed == 1, "trial 2's unreported flat output is the run's own orphan")
        #expect(FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("checkpoints/trial-1.1.ckpt").path))
        #expect(try RunMarker.read(dir.url) == RunIdentity(c.run))
    }

    /// Item 3: two processes on one SQLite store with different run
    /// directories. The second is refused while the first runs (before:
    /// both exited 0, the second re-queued the first one's trials).
    @Test func oneStoreHasOneOwner() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = "sqlite:" + dir.url.appendingPathComponent("shared.sqlite").path
        let first = Process()
        first.executableURL = try pbtwaveExecutable()
        first.arguments = Self.toyRun(dir.url.appendingPathComponent("one").path, ["--store", store], trialMilliseconds: 100)
        let output = Pipe()
        first.standardOutput = output
        first.standardError = FileHandle.nullDevice
        try first.run()
        let started = Date()
        while !FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("one/pbt-run.txt").path),
              Date().timeIntervalSince(started) < 30 { usleep(10_000) }
        let second = try runPBTWave(Self.toyRun(dir.url.appendingPathComponent("two").path, ["--store", store], trialMilliseconds: 100))
        #expect(first.isRunning, "the first process was still running")
        let firstOutput = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        first.waitUntilExit()
        #expect(second.status != 0)
        #expect(second.stderr.contains("in use by another pbtwave process"), "\(second.stderr)")
        #expect(first.terminationStatus == 0 && firstOutput.contains("run complete"), "\(firstOutput)")
        #expect(!firstOutput.contains("re-queued"))
        // Afterwards the run's checkpoints are in "one": "two" is not its directory.
        let later = try runPBTWave(Self.toyRun(dir.url.appendingPathComponent("two").path, ["--store", store], trialMilliseconds: 100))
        #expect(later.status != 0 && later.stderr.contains("is not the directory of run 'pbt'"), "\(later.stderr)")
        // Neither refusal left a "two" behind (it held only its lock).
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("two").path))
        // A refusal in a folder that was there keeps it and what it holds.
        let mine = dir.url.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: mine.appendingPathComponent("notes.txt"))
        let inMine = try runPBTWave(Self.toyRun(mine.path, ["--store", store], trialMilliseconds: 100))
        #expect(inMine.status != 0 && inMine.stderr.contains("is not the directory of run 'pbt'"), "\(inMine.stderr)")
        #expect(FileManager.default.fileExists(atPath: mine.appendingPathComponent("notes.txt").path))
    }
}
