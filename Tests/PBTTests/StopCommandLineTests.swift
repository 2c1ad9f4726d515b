import Foundation
import Testing

@testable import PBT

/// SIGINT, SIGTERM and SIGHUP on `pbtwave pbt` with an in-process model (the
/// toy; WaveNet stops the same way): the first lets the running trials
/// finish and report, the second stops at once and gives them back to the
/// queue. Before, the default action killed the process and its trials
/// stayed running until their leases expired (a minute on a shared store).
@Suite struct StopCommandLineTests {
    static func start(_ runDir: String, trialMilliseconds: Int) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = try pbtwaveExecutable()
        process.arguments = ["pbt", "--run-dir", runDir, "--model", "toy", "--toy-trial-ms", "\(trialMilliseconds)", "--workers", "2",
                             "--population", "2", "--trial-steps", "5", "--generations", "4", "--seed", "3", "--progress", "plain"]
        let (out, err) = (Pipe(), Pipe())
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    static func trials(_ runDir: String) throws -> [TrialRecord] {
        let store = try SQLiteTrialStore(path: runDir + "/" + RunDirectory.storeFileName)
        guard let run = try store.run(named: RunDirectory.runName) else { return [] }
        return try store.trials(runID: run.id)
    }

    static func running(_ runDir: String) -> Int {
        ((try? trials(runDir)) ?? []).filter { $0.status == .running }.count
    }

    @Test(.timeLimit(.minutes(1)), arguments: [SIGINT, SIGTERM])
    func aSignalLetsTheRunningTrialsFinish(signal: Int32) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let (process, out, err) = try Self.start(runDir, trialMilliseconds: 600)
        #expect(eventually(within: 20) { Self.running(runDir) == 2 })
        kill(process.processIdentifier, signal)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + signal, "\(stdout)\n\(stderr)")
        #expect(stderr.contains("stopping after the running trials"), "\(stderr)")
        #expect(stdout.contains("run stopped"), "\(stdout)")
        #expect(stdout.contains("best trial so far (the run is not complete)") && stdout.contains("schedule so far"), "\(stdout)")
        // The best so far is named so, never schedule.* (found by a helper: a stopped run's schedule.json stayed,
        // unmarked, while a resumed run went on); a session that goes on removes it, the complete run writes schedule.*.
        let files = { (Set(try FileManager.default.contentsOfDirectory(atPath: runDir)).intersection(
            ["schedule.csv", "schedule.json", "schedule-so-far.csv", "schedule-so-far.json"])) }
        #expect(try files() == ["schedule-so-far.csv", "schedule-so-far.json"])
        #expect(try LearningRateSchedule.read(from: URL(fileURLWithPath: runDir + "/schedule-so-far.json")).points.first?.step == 0)
        let trials = try Self.trials(runDir)
        #expect(!trials.contains { $0.status == .running || $0.status == .failed }, "\(trials.map { ($0.id, $0.status) })")
        #expect(trials.filter { $0.status == .finished }.count >= 2, "the two running trials finished and were reported")
        let resumed = try runPBTWave(["pbt", "--run-dir", runDir, "--model", "toy", "--workers", "2", "--population", "2",
                                      "--trial-steps", "5", "--generations", "4", "--seed", "3", "--progress", "none"])
        #expect(resumed.status == 0 && resumed.stdout.contains("run complete: 8/8 trials"), "\(resumed.stdout)\(resumed.stderr)")
        #expect(try files() == ["schedule.csv", "schedule.json"])
    }

    @Test(.timeLimit(.minutes(1))) func aSecondSignalStopsAtOnceAndGivesTheTrialsBack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let (process, out, err) = try Self.start(runDir, trialMilliseconds: 60_000)
        #expect(eventually(within: 20) { Self.running(runDir) == 2 })
        let start = Date()
        kill(process.processIdentifier, SIGINT)
        usleep(200_000)
        kill(process.processIdentifier, SIGINT)
        _ = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(start) < 30, "not after the minute-long trials")
        #expect(process.terminationStatus == 128 + SIGINT, "\(stderr)")
        #expect(stderr.contains("stopping now; 2 running trial(s) given back to the queue"), "\(stderr)")
        let trials = try Self.trials(runDir)
        #expect(trials.filter { $0.status == .queued && $0.attempt == 1 }.count == 2, "\(trials.map { ($0.id, $0.status, $0.attempt) })")
        #expect(!trials.contains { $0.status == .running })
    }

    /// Found by a helper: after a kill -9, `lineage` called the dead run's
    /// trials "running"; it says they were, when no process holds the run.
    @Test(.timeLimit(.minutes(1))) func aKilledRunsTrialsAreSaidToHaveBeenRunning() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let (process, out, err) = try Self.start(runDir, trialMilliseconds: 60_000)
        #expect(eventually(within: 20) { Self.running(runDir) == 2 })
        let live = try runPBTWave(["lineage", runDir, "--tree"])
        #expect(live.stderr.contains("2 running)") && !live.stderr.contains("no process is running it"), "\(live.stderr)")
        kill(process.processIdentifier, SIGKILL)
        _ = out.fileHandleForReading.readDataToEndOfFile()
        _ = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let dead = try runPBTWave(["lineage", runDir, "--tree"])
        #expect(dead.stderr.contains("2 were running when it stopped") && dead.stderr.contains("no pbtwave process drives it now (training programs a killed one started may still run"), "\(dead.stderr)")
    }

    /// Found by a helper: `experiment` stopped by a signal while its PBT
    /// run trained crashed in 2 of 6 tries (exit 139, a crash report): its
    /// handler called exit(), whose handlers tore down OpenSSL under the
    /// threads hashing checkpoints. It exits with 128 + signal, no crash.
    @Test(.timeLimit(.minutes(2))) func anExperimentStoppedMidRunExitsCleanly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        for attempt in 0..<3 {
            let runDir = dir.url.appendingPathComponent("e\(attempt)").path
            let process = Process()
            process.executableURL = try pbtwaveExecutable()
            process.arguments = ["experiment", "--preset", "smoke", "--seeds", "1", "--methods", "pbt-5x5", "--corpus", corpusDirectory(),
                                 "--run-dir", runDir, "--progress", "none"]
            let (out, err) = (Pipe(), Pipe())
            process.standardOutput = out
            process.standardError = err
            try process.run()
            // Once trials write checkpoints (and hash them): the threads are busy.
            #expect(eventually(within: 60) {
                (FileManager.default.enumerator(atPath: runDir)?.allObjects as? [String] ?? []).contains { $0.hasSuffix(".ckpt") }
            })
            let signal = attempt == 1 ? SIGINT : SIGTERM
            kill(process.processIdentifier, signal)
            _ = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 128 + signal, "\(stderr)")
            #expect(stderr.contains("stopped; run the same command again to resume") && !stderr.contains("crashed"), "\(stderr)")
            guard attempt == 2 else { continue }
            // Run again, it says it resumes (its header was a fresh start's), and finishes.
            let resumed = try runPBTWave(Array(process.arguments!))
            #expect(resumed.status == 0 && resumed.stdout.contains("resuming: 1 of 1 runs were begun before"), "\(resumed.stdout)\(resumed.stderr)")
        }
        // A corpus that is not there leaves no experiment folder behind (it left one holding a lock file).
        let nowhere = dir.url.appendingPathComponent("nowhere").path
        let refused = try runPBTWave(["experiment", "--preset", "smoke", "--corpus", dir.url.appendingPathComponent("no-corpus").path,
                                      "--run-dir", nowhere, "--progress", "none"])
        #expect(refused.status == 1 && !FileManager.default.fileExists(atPath: nowhere), "\(refused.stderr)")
    }

    /// A PBTWAVE_ISA that names no variant is an error for every command,
    /// not a silent run on the best one (a typo in an A/B comparison).
    @Test func aBogusKernelVariantIsAnError() throws {
        let process = Process()
        process.executableURL = try pbtwaveExecutable()
        process.arguments = ["corpus", "info", "--corpus", "/nonexistent"]
        var environment = ProcessInfo.processInfo.environment
        environment["PBTWAVE_ISA"] = "avx5122"
        process.environment = environment
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0 && stderr.contains("PBTWAVE_ISA=avx5122 is not a kernel variant"), "\(stderr)")
    }

    /// `train` on SIGINT stops after the step with its checkpoint written
    /// there (it was killed, keeping only the last --checkpoint-every one),
    /// and says how to go on; also when the signal comes twice at once, as
    /// from `timeout -s INT` (it then stopped at once, keeping nothing).
    @Test(.timeLimit(.minutes(2)), arguments: [1, 2]) func trainStopsOnASignalWithItsCheckpoint(copies: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let corpus = corpusDirectory()
        let checkpoint = dir.url.appendingPathComponent("c.ckpt").path
        let process = Process()
        process.executableURL = try pbtwaveExecutable()
        process.arguments = ["train", "--preset", "tiny", "--window", "256", "--eval-windows", "1", "--eval-targets", "64", "--steps", "1000000",
                             "--checkpoint", checkpoint, "--checkpoint-every", "1000", "--quiet", "--corpus", corpus]
        let (out, err) = (Pipe(), Pipe())
        process.standardOutput = out
        process.standardError = err
        try process.run()
        #expect(eventually(within: 60) { FileManager.default.fileExists(atPath: checkpoint) })
        for _ in 0 ..< copies { kill(process.processIdentifier, SIGINT) }
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGINT, "\(stdout)\n\(stderr)")
        let step = try #require(stdout.firstMatch(of: /stopped at step (\d+) of 1000000 by SIGINT/).map { Int($0.1)! }, "\(stdout)")
        #expect(step >= 1000, "stopped after the first periodic checkpoint was written")
        #expect(stdout.contains("the same command with --resume continues the run"), "\(stdout)")
        let evaluated = try runPBTWave(["evaluate", checkpoint, "--eval-windows", "1", "--eval-targets", "64", "--corpus", corpus])
        #expect(evaluated.stdout.contains("step \(step),"), "the checkpoint is at the step it stopped at: \(evaluated.stdout)\(evaluated.stderr)")
    }

    /// `train --curve` writes the curve with its checkpoints, so a run
    /// killed outright (SIGKILL) keeps the rows its checkpoint covers, and
    /// the resume's curve has every step (before, the curve was written only
    /// at the end: the resumed curve started at the checkpoint's step).
    @Test(.timeLimit(.minutes(2))) func aKilledTrainingRunKeepsItsCurveUpToItsCheckpoint() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let corpus = corpusDirectory()
        let checkpoint = dir.url.appendingPathComponent("c.ckpt").path
        let curve = dir.url.appendingPathComponent("curve.csv").path
        let flags = ["train", "--preset", "tiny", "--window", "256", "--eval-windows", "1", "--eval-targets", "64", "--checkpoint", checkpoint,
                     "--checkpoint-every", "20", "--curve", curve, "--quiet", "--corpus", corpus]
        let process = Process()
        process.executableURL = try pbtwaveExecutable()
        process.arguments = flags + ["--steps", "1000000"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        #expect(eventually(within: 60) { FileManager.default.fileExists(atPath: curve) && FileManager.default.fileExists(atPath: checkpoint) })
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let evaluated = try runPBTWave(["evaluate", checkpoint, "--eval-windows", "1", "--eval-targets", "64", "--corpus", corpus])
        let step = try #require(evaluated.stdout.firstMatch(of: /step (\d+),/).map { Int($0.1)! }, "\(evaluated.stdout)\(evaluated.stderr)")
        let written = try String(contentsOfFile: curve, encoding: .utf8).split(separator: "\n").dropFirst()
            .compactMap { Int($0.split(separator: ",")[0]) }.max() ?? 0
        let resumed = try runPBTWave(flags + ["--resume", "--steps", "\(step + 5)"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        // Rows the killed run wrote past its checkpoint give way to the resumed run's, said (a helper saw them dropped silently).
        #expect(resumed.stderr.contains("its rows after the checkpoint's step \(step) are replaced by this run's") == (written > step),
                "curve to \(written), checkpoint at \(step): \(resumed.stderr)")
        let rows = try String(contentsOfFile: curve, encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(rows.compactMap { Int($0.split(separator: ",")[0]) } == Array(1 ... step + 5), "steps 1 to \(step + 5): \(rows.prefix(3))…")
    }
}
