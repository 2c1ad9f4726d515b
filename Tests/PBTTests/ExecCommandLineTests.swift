import Foundation
import PBTFileSupport
import Testing

@testable import PBT

/// `pbtwave pbt -- PROGRAM ARGS` as a user runs it: the built executable in
/// a child process, on the Python toy.
@Suite struct ExecCommandLineTests {
    /// The process ids the toy's `sleep` mode wrote (itself and its child)
    /// into each trial folder under `checkpoints`.
    static func programPids(in checkpoints: String) -> [pid_t] {
        var pids: [pid_t] = []
        for namespace in (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? [] {
            for trial in (try? FileManager.default.contentsOfDirectory(atPath: checkpoints + "/" + namespace)) ?? [] {
                let text = (try? String(contentsOfFile: checkpoints + "/" + namespace + "/" + trial + "/pids.txt", encoding: .utf8)) ?? ""
                pids += text.split(separator: "\n").compactMap { pid_t($0) }
            }
        }
        return pids
    }

    static func flags(_ dir: TemporaryDirectory, generations: Int = 4) throws -> [String] {
        ["--space", try ExecRunTests.spaceFile(dir), "--workers", "3", "--trial-steps", "5", "--generations", "\(generations)",
         "--progress", "plain"]
    }

    /// Found by a user: a resume without --trial-timeout ran with none, and
    /// another one replaced the run's without a word.
    @Test func aResumeKeepsTheRunsTrialTimeoutUnlessGivenAnother() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let program = ["--", "sh", "-c", #"sleep 3; echo '{"objective": 1}' > "$PBT_TRIAL_DIR/result.json""#]
        let flags = ["pbt", "--run-dir", runDir, "--space", try ExecRunTests.spaceFile(dir), "--workers", "1", "--trial-steps", "1",
                     "--generations", "1", "--progress", "none"]
        #expect(try runPBTWave(flags + ["--trial-timeout", "1", "--local-workers", "0"] + program).status == 0)
        let longer = try runPBTWave(flags + ["--trial-timeout", "30", "--local-workers", "0"] + program)
        #expect(longer.stderr.contains("note: this process's trials time out after 30.0 s; the run was started with 1.0 s"), "\(longer.stderr)")
        let kept = try runPBTWave(flags + program)
        #expect(kept.stderr.contains("the trial timed out after 1.0 s") && !kept.stderr.contains("note: this process's trials time out"),
                "\(kept.stderr)")
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
        // The summary names every hyperparameter's course, not lr's alone (found by a helper).
        let summary = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("schedule: ") })
        for name in schedule.names {
            let points = try #require(schedule.column(name))
            #expect(summary.contains(points.count == 1 ? "\(name) \(points[0].value) throughout" : "\(name) \(points[0].value) at step 0 → "),
                    "\(summary)")
        }
        #expect(schedule.endStep.map { $0 >= 5 && $0 % 5 == 0 } == true, "whole trials of 5 steps (lineages drift apart when asynchronous)")
        let recipe = try #require(try schedule.recipe?.decoded(as: ExecRecipe.self))
        #expect(recipe.command == toy)
        #expect(recipe.trialSteps == 5)
        #expect(try SearchSpace(specification: JSONEncoder().encode(recipe.searchSpace)) == ExecToy.space)
        #expect(try HyperparameterSchedule(csvText: runPBTWave(["schedule", "export", runDir]).stdout).rows == schedule.rows)
        // Found by a user: `train` took it for a WaveNet recipe ("missing field model").
        let replay = try runPBTWave(["train", "--lr-schedule", runDir + "/schedule.json", "--steps", "1"])
        #expect(replay.status != 0 && replay.stderr.contains("was learned by a run of a training program (\(toy.program)")
                && replay.stderr.contains("replay it with that program"), "\(replay.stderr)")
    }

    /// `kill -9` of pbtwave leaves its programs running (nothing can catch
    /// it); found by a user, a resume then re-ran their trials beside them.
    /// The resume now stops them first, and says so.
    @Test(.timeLimit(.minutes(2))) func aResumeStopsTheProgramsAKilledRunLeft() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let toy = try ExecToy.command()
        let program = (try Self.flags(dir, generations: 2)) + ["--", toy.program] + toy.arguments
        let process = Process()
        process.executableURL = try pbtwaveExecutable()
        process.arguments = ["pbt", "--run-dir", runDir] + program
        process.environment = ExecToy.environment(["TOY_FAIL": "sleep"])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        func readPids() -> [pid_t] { Self.programPids(in: runDir + "/checkpoints") }
        #expect(eventually(within: 60) { readPids().count == 6 })
        let pids = readPids()
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(pids.count == 6 && !pids.allSatisfy(processIsGone), "the programs outlive a SIGKILL")
        let resumed = try runPBTWave(["pbt", "--run-dir", runDir] + program)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("re-queued 3 interrupted trial(s); stopped 3 training program(s) a killed pbtwave left running"),
                "\(resumed.stdout)")
        #expect(pids.allSatisfy(processIsGone), "every program and its child is gone: \(pids)")
        #expect(resumed.stdout.contains("run complete: 6/6 trials"), "\(resumed.stdout)")
    }

    /// SIGINT stops the run cleanly: the running programs (and the children
    /// they started) are killed, their trials are not failed but run again
    /// when the run resumes, the summary is printed, and the exit status is
    /// 128 + SIGINT. The resumed run ends as an uninterrupted one does.
    @Test(.timeLimit(.minutes(2))) func sigintStopsTheRunAndKillsThePrograms() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let toy = try ExecToy.command()
        let process = Process()
        process.executableURL = try pbtwaveExecutable()
        process.arguments = ["pbt", "--run-dir", runDir] + (try Self.flags(dir)) + ["--deterministic", "--", toy.program] + toy.arguments
        process.environment = ExecToy.environment(["TOY_FAIL": "sleep"])
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Wait until all three programs have written their pids.
        let checkpoints = runDir + "/checkpoints"
        func pidFiles() -> [String] {
            // checkpoints/<run>/trial-N.A/pids.txt
            var files: [String] = []
            for namespace in (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? [] {
                let folder: String = checkpoints + "/" + namespace
                for trial in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                    let file: String = folder + "/" + trial + "/pids.txt"
                    if FileManager.default.fileExists(atPath: file) { files.append(file) }
                }
            }
            return files
        }
        func readPids() -> [pid_t] {
            pidFiles().flatMap { file in
                ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
            }
        }
        // Each program writes its own pid and its child's.
        #expect(eventually(within: 60) { readPids().count == 6 })
        let pids = readPids()
        kill(process.processIdentifier, SIGINT)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGINT, "\(stdout)\n\(stderr)")
        #expect(stdout.contains("run stopped"), "\(stdout)")
        #expect(stderr.contains("pbt: SIGINT: stopping"), "\(stderr)")
        #expect(stderr.contains("stopped; it goes back to the queue"), "\(stderr)")
        #expect(stdout.contains("created and waiting to run"), "the stopped trials are not counted as run: \(stdout)")
        #expect(pids.count == 6)
        #expect(eventually(within: 5) { pids.allSatisfy(processIsGone) }, "every program and its child is gone: \(pids)")
        let store = try SQLiteTrialStore(path: runDir + "/" + RunDirectory.storeFileName)
        let trials = try store.trials(runID: try #require(try store.run(named: RunDirectory.runName)).id)
        #expect(!trials.contains { $0.status == .failed }, "a stop fails nothing: \(trials.map { ($0.id, $0.status, $0.failure ?? "") })")
        #expect(trials.filter { $0.status == .queued && $0.attempt == 1 }.count == 3,
                "the stopped trials are given back to the queue: \(trials.map { ($0.id, $0.status, $0.attempt) })")
        #expect(!trials.contains { $0.status == .running }, "\(trials.map { ($0.id, $0.status) })")

        // Resumed (without the sleep), the run ends as one never stopped.
        let program = (try Self.flags(dir)) + ["--deterministic", "--", toy.program] + toy.arguments
        let resumed = try runPBTWave(["pbt", "--run-dir", runDir] + program)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("run complete: 12/12 trials, "), "\(resumed.stdout)")
        let after = try store.trials(runID: try #require(try store.run(named: RunDirectory.runName)).id)
        #expect(after.count == 12 && after.allSatisfy { $0.status == .finished }, "\(after.map { ($0.id, $0.status) })")
        #expect(after.filter { $0.attempt == 2 }.count == 3, "the three stopped trials ran again")
        let plainDir = dir.url.appendingPathComponent("plain").path
        #expect(try runPBTWave(["pbt", "--run-dir", plainDir] + program).status == 0)
        let plainStore = try SQLiteTrialStore(path: plainDir + "/" + RunDirectory.storeFileName)
        let plain = try plainStore.trials(runID: try #require(try plainStore.run(named: RunDirectory.runName)).id)
        #expect(after.map { [$0.id, $0.parentID ?? 0] } == plain.map { [$0.id, $0.parentID ?? 0] })
        #expect(after.map(\.evaluation) == plain.map(\.evaluation), "deterministic: the same losses as a run never stopped")
    }

    /// Found by a helper: `--space <(…)` (a pipe, as the README shows it)
    /// was read when the flags were checked and found empty when the run
    /// started. A pipe is read once, and what it held is used both times.
    @Test func aSpaceFromAPipeIsReadOnce() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let space = try ExecRunTests.spaceFile(dir)
        let program = #"sh -c 'echo "{\"objective\": 1}" > "$PBT_TRIAL_DIR/result.json"'"#
        let line = "exec \(shellQuoted(try pbtwaveExecutable().path)) pbt --run-dir \(shellQuoted(runDir)) --space <(cat \(shellQuoted(space))) "
            + "--workers 2 --trial-steps 1 --generations 2 --progress none -- \(program)"
        let piped = try runPBTWave(["-c", line], executable: URL(fileURLWithPath: "/bin/bash"))
        #expect(piped.status == 0, "\(piped.stdout)\(piped.stderr)")
        #expect(piped.stdout.contains("run complete: 4/4 trials"), "\(piped.stdout)")
        let settings = try runPBTWave(["lineage", runDir, "--settings"])
        #expect(settings.stdout.contains(#""lr""#) || settings.stdout.contains("lr"), "\(settings.stdout)")
    }

    /// Resuming a program's run with another program, or another space, is
    /// refused, naming both in the form they were given (the winner's
    /// recipe would otherwise name a program that did not train it).
    @Test func resumingWithAnotherProgramOrSpaceIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let toy = try ExecToy.command()
        let flags = try Self.flags(dir, generations: 1)
        #expect(try runPBTWave(["pbt", "--run-dir", runDir] + flags + ["--", toy.program] + toy.arguments).status == 0)
        let other = try runPBTWave(["pbt", "--run-dir", runDir] + flags + ["--", "sh", "-c", "exit 0"])
        #expect(other.status == 1)
        #expect(other.stderr.contains(#"the program after --: the run has ""# + toy.program + #"", this command has "sh""#), "\(other.stderr)")
        #expect(other.stderr.contains(#"the program's arguments after --: the run has "# + compactJSON(toy.arguments) + #", this command has ["-c","exit 0"]"#),
                "\(other.stderr)")
        // …and says where to read the run's flags, which lineage --settings lists (it showed no program, no flags).
        #expect(other.stderr.contains("`pbtwave lineage \(runDir) --settings` lists them"), "\(other.stderr)")
        let settings = try runPBTWave(["lineage", runDir, "--settings"])
        #expect(settings.status == 0, "\(settings.stderr)")
        for line in ["--workers 3", "--trial-steps 5", "--generations 1", "program: " + ([toy.program] + toy.arguments).joined(separator: " ")] {
            #expect(settings.stdout.contains(line), "\(line) in \(settings.stdout)")
        }
        #expect(settings.stdout.contains(#"--space FILE holding '{"#) && settings.stdout.contains("--selection tournament\n"), "\(settings.stdout)")
        #expect(!settings.stdout.contains("--deterministic") && !settings.stdout.contains("--selection/"), "flags that can be given back: \(settings.stdout)")
        let space = dir.url.appendingPathComponent("other.json").path
        try Data(#"{"lr": {"log_uniform": [0.001, 0.1]}}"#.utf8).write(to: URL(fileURLWithPath: space))
        let moved = try runPBTWave(["pbt", "--run-dir", runDir, "--space", space] + flags.dropFirst(2) + ["--", toy.program] + toy.arguments)
        #expect(moved.status == 1)
        #expect(moved.stderr.contains("--space or --lr-min/--lr-max: the run has {"), "\(moved.stderr)")
        #expect(!moved.stderr.contains("SearchSpace("), "no Swift internals: \(moved.stderr)")
    }

    /// A run whose program is named relative to the folder it was started
    /// in, resumed from another folder: the error (a program path) or the
    /// warning (a script an interpreter reads) names the folder it was
    /// started in. Before, "the program ./prog.sh does not exist" alone,
    /// or nothing until every trial had failed.
    @Test func resumingFromAnotherFolderNamesTheFolderTheRunWasStartedIn() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (start, elsewhere) = (dir.url.appendingPathComponent("start"), dir.url.appendingPathComponent("elsewhere"))
        for folder in [start, elsewhere] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let script = start.appendingPathComponent("prog.sh")
        try Data("#!/bin/sh\necho '{\"objective\": 1}' > \"$PBT_TRIAL_DIR/result.json\"\necho w > \"$PBT_TRIAL_DIR/state\"\n".utf8).write(to: script)
        #expect(chmod(script.path, 0o755) == 0)
        for (name, program) in [("direct", ["./prog.sh"]), ("interpreted", ["sh", "prog.sh"])] {
            let runDir = dir.url.appendingPathComponent(name).path
            let flags = ["--run-dir", runDir, "--space", try ExecRunTests.spaceFile(dir), "--workers", "2", "--trial-steps", "1", "--progress", "none"]
            let first = try runPBTWave(["pbt"] + flags + ["--generations", "1", "--"] + program, currentDirectory: start)
            #expect(first.status == 0, "\(first.stderr)")
            // The same files by their absolute paths, from anywhere: the run's program (it was refused as another).
            let absolute = program.map { $0.hasSuffix("prog.sh") ? start.appendingPathComponent("prog.sh").path : $0 }
            let same = try runPBTWave(["pbt"] + flags + ["--generations", "1", "--"] + absolute, currentDirectory: elsewhere)
            #expect(same.status == 0 && same.stderr.contains("note: running the run's program as"), "\(name): \(same.stderr)")
            let resumed = try runPBTWave(["pbt"] + flags + ["--generations", "1", "--"] + program, currentDirectory: elsewhere)
            #expect(resumed.stderr.contains("relative to \(start.standardizedFileURL.path), where it was started"), "\(name): \(resumed.stderr)")
            if name == "direct" {
                #expect(resumed.status == 1 && resumed.stderr.contains("the program ./prog.sh does not exist;"), "\(resumed.stderr)")
            } else {
                // The script an interpreter reads, missing: refused (found by a user: a warning, then every trial failed).
                #expect(resumed.status == 1 && resumed.stderr.contains("the run's program needs prog.sh") && resumed.stderr.contains("so every trial would fail"),
                        "\(resumed.stderr)")
                let store = "sqlite:" + runDir + "/" + RunDirectory.storeFileName
                let worker = try runPBTWave(["worker", "--store", store, "--run", RunDirectory.runName, "--run-dir", runDir, "--progress", "none"],
                                            currentDirectory: elsewhere)
                #expect(worker.status == 1 && worker.stderr.contains("start this worker in \(start.standardizedFileURL.path)"), "\(worker.stderr)")
            }
            // Another folder with a program of the same name: refused, not run (it ran the other program).
            let other = dir.url.appendingPathComponent("other-\(name)")
            try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
            try Data("#!/bin/sh\necho '{\"objective\": 42}' > \"$PBT_TRIAL_DIR/result.json\"\n".utf8).write(to: other.appendingPathComponent("prog.sh"))
            #expect(chmod(other.appendingPathComponent("prog.sh").path, 0o755) == 0)
            let elsewhereRun = try runPBTWave(["pbt"] + flags + ["--generations", "1", "--"] + program, currentDirectory: other)
            #expect(elsewhereRun.status == 1, "\(elsewhereRun.stdout)")
            #expect(elsewhereRun.stderr.contains("from \(other.standardizedFileURL.path) that is another file, so the run would go on with other code: "
                                                 + "resume it in \(start.standardizedFileURL.path)"), "\(name): \(elsewhereRun.stderr)")
            // A worker started there is refused too (found by a user: a warning, then it ran the other program to the run's end).
            let store = "sqlite:" + runDir + "/" + RunDirectory.storeFileName
            let otherWorker = try runPBTWave(["worker", "--store", store, "--run", RunDirectory.runName, "--run-dir", runDir, "--progress", "none"],
                                             currentDirectory: other)
            #expect(otherWorker.status == 1 && otherWorker.stderr.contains("that is another file, so the run would go on with other code: "
                                                                           + "start this worker in \(start.standardizedFileURL.path)"), "\(name): \(otherWorker.stderr)")
        }
    }

    /// `--explore pb2` with a categorical hyperparameter is refused before
    /// the run directory or its store is made (it left a store with no run,
    /// which `lineage` then called "no run named 'pbt'").
    @Test func anExploreTheSpaceCannotHaveLeavesNothingBehind() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let space = dir.url.appendingPathComponent("space.json").path
        try Data(#"{"lr": {"log_uniform": [0.001, 0.1]}, "opt": {"choice": ["sgd", "adam"]}}"#.utf8).write(to: URL(fileURLWithPath: space))
        let runDir = dir.url.appendingPathComponent("run")
        let refused = try runPBTWave(["pbt", "--run-dir", runDir.path, "--space", space, "--explore", "pb2", "--workers", "2", "--population", "2",
                                      "--generations", "1", "--trial-steps", "1", "--", "sh", "-c", "exit 0"])
        #expect(refused.status == 1 && refused.stderr.contains("--explore: explore pb2 cannot be used here")
                && refused.stderr.contains("the search space's 'opt' is a choice"), "named by its flag: \(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: runDir.path), "nothing made on disk")
    }

    /// A worker runs the stored program, or the one given after `--` (the
    /// same program elsewhere on that machine); `--exec` on a run of a
    /// compiled model is refused.
    /// Creates run `name` of the Python toy in an SQLite store in `dir`,
    /// with no worker of its own; returns the store and the arguments of a
    /// `pbtwave worker` that joins it.
    static func sharedRun(_ dir: TemporaryDirectory, name: String, generations: Int = 4) throws -> (store: String, worker: [String]) {
        let runDir = dir.url.appendingPathComponent("run").path
        let store = "sqlite:" + dir.url.appendingPathComponent("trials.sqlite").path
        let toy = try ExecToy.command()
        let create = try runPBTWave(["pbt", "--run-dir", runDir, "--store", store, "--run", name, "--local-workers", "0"]
                                    + (try flags(dir, generations: generations)) + ["--", toy.program] + toy.arguments)
        #expect(create.status == 0, "\(create.stderr)")
        return (store, ["worker", "--store", store, "--run", name, "--run-dir", runDir, "--progress", "none"])
    }

    /// Found by a helper: a `pbtwave worker` killed by SIGKILL left its
    /// programs running; the worker that finished the run (their trials ran
    /// again once the leases ended) deleted their folders under them and
    /// left them running. It stops them now, and says so.
    @Test(.timeLimit(.minutes(2))) func theWorkerThatEndsARunStopsAKilledWorkersPrograms() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (_, joining) = try Self.sharedRun(dir, name: "ends", generations: 1)
        let killed = Process()
        killed.executableURL = try pbtwaveExecutable()
        killed.arguments = joining + ["--lease-seconds", "1", "--workers", "3"]
        killed.environment = ExecToy.environment(["TOY_FAIL": "sleep"])
        killed.standardOutput = FileHandle.nullDevice
        killed.standardError = FileHandle.nullDevice
        try killed.run()
        func readPids() -> [pid_t] { Self.programPids(in: dir.url.appendingPathComponent("run/checkpoints").path) }
        #expect(eventually(within: 60) { readPids().count == 6 })
        let pids = readPids()
        kill(killed.processIdentifier, SIGKILL)
        killed.waitUntilExit()
        #expect(!pids.allSatisfy(processIsGone), "the programs outlive a SIGKILL")
        let ends = try runPBTWave(joining, environment: ExecToy.environment([:]))
        #expect(ends.status == 0 && ends.stdout.contains("run complete: 3/3 trials"), "\(ends.stdout)\(ends.stderr)")
        #expect(ends.stdout.contains("pbt: stopped 3 training programs of workers that died or were cut off from the store and still ran (their trials ran again)"), "\(ends.stdout)")
        #expect(pids.allSatisfy(processIsGone), "every program and its child is gone: \(pids)")
    }

    @Test func workersRunTheStoredProgramOrTheirOwn() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (store, joining) = try Self.sharedRun(dir, name: "mine", generations: 2)
        let worker = joining + ["--exec"]
        // Another program is refused (it ran, and the run mixed two programs' results under one recipe)…
        let another = try runPBTWave(worker + ["--", "sh", "-c", #"echo '{"objective": 0.25}' > "$PBT_TRIAL_DIR/result.json""#])
        #expect(another.status == 1 && another.stderr.contains(#"the program after --: the run has [""#)
                && another.stderr.contains(#"this worker has ["sh","-c","#) && another.stderr.contains("not another program"), "\(another.stderr)")
        let toy = try ExecToy.command()
        let dropped = try runPBTWave(worker + ["--", toy.program])
        #expect(dropped.status == 1 && dropped.stderr.contains("not another program"), "an argument dropped: \(dropped.stderr)")
        // …the run's program where it lives on this machine runs: here a script of the same name in another folder.
        let copy = dir.url.appendingPathComponent("elsewhere/" + URL(fileURLWithPath: ExecToy.script).lastPathComponent)
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("""
            import json, os
            open(os.path.join(os.environ["PBT_TRIAL_DIR"], "state"), "w").write("x")
            json.dump({"objective": 0.25}, open(os.path.join(os.environ["PBT_TRIAL_DIR"], "result.json"), "w"))
            """.utf8).write(to: copy)
        let elsewhere = try runPBTWave(worker + ["--", toy.program, copy.path])
        #expect(elsewhere.status == 0, "\(elsewhere.stderr)")
        #expect(elsewhere.stderr.contains("note: this worker runs the run's program as"), "\(elsewhere.stderr)")
        // Where this machine has the run's own script too, a copy that differs is said to (found by a helper: it ran in silence).
        #expect(elsewhere.stderr.contains("warning: \(copy.path) is not the same file as the run's ")
                && elsewhere.stderr.contains("their contents differ"), "\(elsewhere.stderr)")
        #expect(elsewhere.stdout.contains("run complete: 6/6 trials"), "\(elsewhere.stdout)")
        // The worker that completed the run wrote its schedule (no process did), and the creating command, run again, sums it up.
        let runDir = dir.url.appendingPathComponent("run")
        #expect(FileManager.default.fileExists(atPath: runDir.appendingPathComponent("schedule.json").path), "\(elsewhere.stdout)")
        try FileManager.default.removeItem(at: runDir.appendingPathComponent("schedule.json"))
        let again = try runPBTWave(["pbt", "--run-dir", runDir.path, "--store", store, "--run", "mine", "--local-workers", "0"]
                                   + (try Self.flags(dir, generations: 2)) + ["--", (try ExecToy.command()).program] + (try ExecToy.command()).arguments)
        #expect(again.status == 0 && again.stdout.contains("run complete: 6/6 trials") && !again.stdout.contains("add workers"), "\(again.stdout)")
        #expect(FileManager.default.fileExists(atPath: runDir.appendingPathComponent("schedule.json").path))
        let trials = try SQLiteTrialStore(path: dir.url.appendingPathComponent("trials.sqlite").path)
        #expect(try trials.trials(runID: try #require(try trials.run(named: "mine")).id).allSatisfy { $0.evaluation == 0.25 },
                "the program given to the worker ran")

        let compiled = dir.url.appendingPathComponent("toy").path
        #expect(try runPBTWave(["pbt", "--run-dir", compiled, "--store", store, "--run", "toy", "--model", "toy", "--local-workers", "0"]).status == 0)
        let refused = try runPBTWave(["worker", "--store", store, "--run", "toy", "--run-dir", compiled, "--exec"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the run tunes --model toy, not a training program"), "\(refused.stderr)")
    }

    /// A worker whose program fails every trial (here: a missing module)
    /// stops after --max-failures-in-a-row, having used up only that many
    /// trials of the budget; a working worker then finishes the run.
    @Test func aWorkerWhoseProgramFailsStopsBeforeTheBudgetIsGone() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (store, worker) = try Self.sharedRun(dir, name: "r")
        // The run's program as this machine has it (the same name in another folder), broken here.
        let copy = dir.url.appendingPathComponent("broken/" + URL(fileURLWithPath: ExecToy.script).lastPathComponent)
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("import sys\nprint('ModuleNotFoundError: torch', file=sys.stderr)\nsys.exit(3)\n".utf8).write(to: copy)
        let broken = try runPBTWave(worker + ["--max-failures-in-a-row", "2", "--exec", "--", try ExecToy.python(), copy.path])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("the last 2 trials this process ran all failed in the training program"), "\(broken.stderr)")
        #expect(broken.stderr.contains("2× runner error: the program exited with code 3 (#"), "\(broken.stderr)")
        #expect(broken.stderr.contains("ModuleNotFoundError: torch"), "each failure's log is shown: \(broken.stderr)")
        // Where each trial's log is, for this store (it said `pbtwave lineage RUN_DIR --trial N`, and RUN_DIR holds no store).
        #expect(broken.stderr.contains("(each trial's log: `pbtwave lineage --store \(store) --run r --trial N`)"), "\(broken.stderr)")
        let failed = try #require(broken.stderr.firstMatch(of: #/code 3 \(#(\d+)/#).map { String($0.1) })
        let log = try runPBTWave(["lineage", "--store", store, "--run", "r", "--trial", failed])
        #expect(log.status == 0 && log.stdout.contains("ModuleNotFoundError: torch"), "\(log.stdout)\(log.stderr)")
        // A worker may set its own --trial-timeout without repeating the program (it was refused without `--exec -- …`).
        let working = try runPBTWave(worker + ["--trial-timeout", "600"])
        #expect(working.status == 0, "\(working.stderr)")
        #expect(working.stdout.contains("run complete: 12/12 trials (2 failed)"), "\(working.stdout)")
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
