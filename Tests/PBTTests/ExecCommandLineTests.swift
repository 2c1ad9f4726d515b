import Foundation
import Testing

@testable import PBT

/// `pbtwave pbt -- PROGRAM ARGS` as a user runs it: the built executable in
/// a child process, on the Python toy.
@Suite struct ExecCommandLineTests {
    static func flags(_ dir: TemporaryDirectory, generations: Int = 4) throws -> [String] {
        ["--space", try ExecRunTests.spaceFile(dir), "--workers", "3", "--trial-steps", "5", "--generations", "\(generations)",
         "--progress", "plain"]
    }

    @Test func anExecRunExportsEveryHyperparameterAndHowItWasLearned() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let toy = try ExecToy.command()
        let r = try runPBTWave(["pbt", "--run-dir", runDir] + (try Self.flags(dir)) + ["--", toy.program] + toy.arguments)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("model exec") && r.stdout.contains("run complete: 12/12 trials"), "\(r.stdout)")

        let csv = try String(contentsOfFile: runDir + "/schedule.csv", encoding: .utf8)
        #expect(csv.hasPrefix("step,lr,momentum\n"), "\(csv)")
        let schedule = try HyperparameterSchedule.read(from: URL(fileURLWithPath: runDir + "/schedule.json"))
        #expect(schedule.names == ["lr", "momentum"])
        #expect(schedule.endStep == 20)
        let recipe = try #require(try schedule.recipe?.decoded(as: ExecRecipe.self))
        #expect(recipe.command == toy)
        #expect(recipe.trialSteps == 5)
        #expect(try SearchSpace(specification: JSONEncoder().encode(recipe.searchSpace)) == ExecToy.space)
        #expect(try HyperparameterSchedule(csvText: runPBTWave(["schedule", "export", runDir]).stdout).rows == schedule.rows)
    }

    /// SIGINT stops the run cleanly: the running programs (and the children
    /// they started) are killed, their trials fail as stopped, the summary
    /// is printed, and the exit status is 128 + SIGINT.
    @Test(.timeLimit(.minutes(2))) func sigintStopsTheRunAndKillsThePrograms() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let toy = try ExecToy.command()
        let process = Process()
        process.executableURL = try pbtwaveExecutable()
        process.arguments = ["pbt", "--run-dir", runDir] + (try Self.flags(dir)) + ["--", toy.program] + toy.arguments
        process.environment = ExecToy.environment(["TOY_FAIL": "sleep"])
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Wait until all three programs have written their pids.
        let checkpoints = runDir + "/checkpoints"
        func pidFiles() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? [])
                .map { checkpoints + "/" + $0 + "/pids.txt" }.filter { FileManager.default.fileExists(atPath: $0) }
        }
        #expect(eventually(within: 60) { pidFiles().count == 3 })
        let pids = pidFiles().flatMap { file in
            ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
        }
        kill(process.processIdentifier, SIGINT)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGINT, "\(stdout)\n\(stderr)")
        #expect(stdout.contains("run stopped"), "\(stdout)")
        #expect(stderr.contains("pbt: SIGINT: stopping"), "\(stderr)")
        #expect(stderr.contains("the worker was stopped (pbtwave got SIGINT)"), "\(stderr)")
        #expect(pids.count == 6)
        #expect(eventually(within: 5) { pids.allSatisfy(processIsGone) }, "every program and its child is gone: \(pids)")
        let store = try SQLiteTrialStore(path: runDir + "/" + RunDirectory.storeFileName)
        let trials = try store.trials(runID: try #require(try store.run(named: RunDirectory.runName)).id)
        let stopped = trials.filter { $0.failure?.contains("the worker was stopped") == true }
        #expect(stopped.count == 3, "\(trials.map { ($0.id, $0.status, $0.failure ?? "") })")
    }

    @Test(arguments: [
        (["--exec"], "--exec needs the training program after `--`"),
        (["--model", "exec"], "--exec needs the training program after `--`"),
        (["--model", "toy", "--", "python3", "x.py"], "is the model itself; drop --model toy"),
        (["--model", "toy", "--trial-timeout", "5"], "--trial-timeout applies only to a training program"),
        (["--trial-timeout", "0", "--", "python3", "x.py"], "--trial-timeout must be a positive number of seconds"),
        (["--space", "s.json", "--lr-min", "1e-3", "--", "python3", "x.py"], "give --space or --lr-min/--lr-max, not both"),
        (["--space", "/nonexistent/s.json", "--", "python3", "x.py"], "--space /nonexistent/s.json: cannot read the search space file"),
    ])
    func badExecFlagsAreRejectedBeforeAnythingRuns(flags: [String], message: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let r = try runPBTWave(["pbt", "--run-dir", runDir] + flags)
        #expect(r.status == 64, "usage errors exit with EX_USAGE: \(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: runDir), "nothing was created")
    }

    @Test func aProgramThatCannotRunOrASpaceTheModelCannotUseIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let missing = try runPBTWave(["pbt", "--run-dir", runDir, "--", "no-such-trainer-\(getpid())"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot find the program 'no-such-trainer-\(getpid())' on PATH"), "\(missing.stderr)")
        let toy = try runPBTWave(["pbt", "--run-dir", runDir, "--model", "toy", "--space", try ExecRunTests.spaceFile(dir)])
        #expect(toy.status == 1)
        #expect(toy.stderr.contains("--model toy tunes the learning rate 'lr' alone"), "\(toy.stderr)")
        #expect(!FileManager.default.fileExists(atPath: runDir + "/" + RunDirectory.storeFileName), "no run was created")
    }
}
