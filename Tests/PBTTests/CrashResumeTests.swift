import Foundation
import PBTSeededRNG
import Testing

@testable import PBT
import PBTExamples

/// Kill -9 at random moments, resume each time: nothing finished is lost or
/// changed, no checkpoint is torn, the budget completes, and — the run being
/// deterministic — the result equals an uninterrupted run's.
@Suite struct CrashResumeTests {
    static func arguments(_ runDir: String) -> [String] {
        ["pbt", "--run-dir", runDir, "--model", "toy", "--workers", "3", "--population", "6", "--trial-steps", "20",
         "--total-steps", "\(20 * 600)", "--toy-trial-ms", "4", "--deterministic", "--seed", "11", "--progress", "none"]
    }

    /// Reads the store of a stopped run and checks it; `seen` accumulates
    /// every trial that has ever been seen finished or failed.
    static func check(_ runDir: String, _ seen: inout [Int: LineageFields], sourceLocation: SourceLocation = #_sourceLocation) throws -> [TrialRecord] {
        let store = try SQLiteTrialStore(path: runDir + "/" + RunDirectory.storeFileName)
        let run = try #require(try store.run(named: RunDirectory.runName), sourceLocation: sourceLocation)
        let trials = try store.trials(runID: run.id)
        for t in trials where t.status.isTerminal {
            if let before = seen[t.id] {
                #expect(t.lineageFields == before, "trial \(t.id) changed after a kill", sourceLocation: sourceLocation)
            } else {
                seen[t.id] = t.lineageFields
            }
        }
        #expect(seen.keys.allSatisfy { id in trials.contains { $0.id == id && $0.status.isTerminal } },
                "a trial that had finished is missing or no longer finished", sourceLocation: sourceLocation)
        for t in trials where t.checkpointLive {
            let checkpoint = try ToyCheckpoint.read(from: URL(fileURLWithPath: runDir + "/" + t.checkpointPath!))
            #expect(checkpoint.step == t.endStep, "checkpoint of trial \(t.id)", sourceLocation: sourceLocation)
        }
        #expect(trials.count <= 600, sourceLocation: sourceLocation)
        return trials
    }

    /// Finished or failed trials in the run so far (0 before the store exists).
    static func completed(_ runDir: String) throws -> Int {
        let path = runDir + "/" + RunDirectory.storeFileName
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        let store = try SQLiteTrialStore(path: path)
        guard let run = try store.run(named: RunDirectory.runName) else { return 0 }
        return try store.progress(runID: run.id).completed
    }

    @Test func tenKillsLoseNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("killed").path
        let executable = try pbtwaveExecutable()
        var rng = Xoshiro256(seed: 2024)
        var seen: [Int: LineageFields] = [:]
        var kills = 0
        var early: String?  // how a child that ended on its own ended
        let errorLog = dir.url.appendingPathComponent("child-stderr.txt")
        while kills < 10 {
            let process = Process()
            process.executableURL = executable
            process.arguments = Self.arguments(runDir)
            process.standardOutput = FileHandle.nullDevice
            _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
            let errorHandle = try FileHandle(forWritingTo: errorLog)
            process.standardError = errorHandle
            try process.run()
            // Kill at a random moment once the child is under way (it has
            // completed a trial this time), however loaded the machine is.
            let before = seen.count
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning, Date() < deadline, try Self.completed(runDir) <= before { usleep(2_000) }
            usleep(UInt32(rng.uniformIndex(150_000)))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? errorHandle.close()
            guard process.terminationReason == .uncaughtSignal else {
                let stderr = (try? String(contentsOf: errorLog, encoding: .utf8)) ?? ""
                early = "exit status \(process.terminationStatus), \(try Self.completed(runDir)) trials completed, stderr: \(stderr.suffix(2000))"
                break
            }
            kills += 1
            if FileManager.default.fileExists(atPath: runDir + "/" + RunDirectory.storeFileName) {
                _ = try Self.check(runDir, &seen)
            }
        }
        #expect(kills == 10, "the run finished after \(kills) kills; make it longer")
        #expect(early == nil, "a child ended before it was killed: \(early ?? "")")
        #expect(seen.count >= 10, "progress was made between kills")

        let last = try runPBTWave(Self.arguments(runDir))
        #expect(last.status == 0, "\(last.stderr)")
        #expect(last.stdout.contains("run complete: 600/600 trials"))
        let trials = try Self.check(runDir, &seen)
        #expect(trials.count == 600)
        #expect(trials.allSatisfy { $0.status == .finished })
        #expect(trials.contains { $0.attempt > 1 }, "some kills interrupted running trials, which were re-run")

        // Only live checkpoints remain on disk.
        let files = try DriverTests.checkpointFiles(URL(fileURLWithPath: runDir))
        #expect(files == Set(trials.filter { $0.checkpointLive }.map { $0.checkpointPath! }))

        // Deterministic: the same table as a run that was never interrupted
        // (checkpoint file names carry the attempt number, so they differ).
        let referenceDir = dir.url.appendingPathComponent("reference").path
        #expect(try runPBTWave(Self.arguments(referenceDir)).status == 0)
        var none: [Int: LineageFields] = [:]
        let reference = try Self.check(referenceDir, &none)
        func comparable(_ t: TrialRecord) -> LineageFields {
            var f = t.lineageFields
            f.checkpointPath = nil
            return f
        }
        expectSameRows(trials.map(comparable), reference.map(comparable))
    }
}
