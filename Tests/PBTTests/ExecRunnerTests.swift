import Foundation
import Testing
import Synchronization

@testable import PBT

/// The exec runner on one trial at a time, with the Python toy: the
/// environment contract, the result, and every way a trial can fail.
@Suite struct ExecRunnerTests {
    static func trial(_ id: Int = 1, lr: Double = 0.01, momentum: Double = 0.9, start: Int = 0, steps: Int = 5,
                      extra: [String: HyperparameterValue] = [:]) -> TrialSpec {
        var values: [String: HyperparameterValue] = ["lr": .number(lr), "momentum": .number(momentum)]
        values.merge(extra) { $1 }
        return TrialSpec(id: id, generation: 0, parentID: nil, hyperparameters: Hyperparameters(values), startStep: start,
                         steps: steps, seed: 12_345_678_901_234_567_890)
    }

    static func output(_ dir: TemporaryDirectory, _ name: String = "trial") -> CheckpointRef {
        CheckpointRef(url: dir.url.appendingPathComponent(name))
    }

    /// Runs `trial` and returns the failure it must end in.
    static func failure(_ runner: ExecRunner, _ trial: TrialSpec = trial(), parent: CheckpointRef? = nil, output: CheckpointRef,
                        sourceLocation: SourceLocation = #_sourceLocation) -> ExecTrialFailure? {
        do {
            let outcome = try runner.run(trial, parent: parent, output: output)
            Issue.record("the trial succeeded with \(outcome.evaluation)", sourceLocation: sourceLocation)
            return nil
        } catch let failure as ExecTrialFailure {
            return failure
        } catch {
            Issue.record("not an ExecTrialFailure: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    @Test func aTrialWarmStartsFromItsParentsDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runner = try ExecToy.runner()
        let first = Self.output(dir, "first")
        let a = try runner.run(Self.trial(), parent: nil, output: first)
        for name in ["checkpoint.json", ExecRunner.resultFileName, ExecRunner.logFileName] {
            #expect(FileManager.default.fileExists(atPath: first.path + "/" + name), "\(name)")
        }
        let result = try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: first.url.appendingPathComponent("result.json")))
        #expect(result["objective"]?.double == a.evaluation)
        #expect(a.evaluation.isFinite && a.evaluation > 0)
        let log = try String(contentsOfFile: first.path + "/log.txt", encoding: .utf8)
        #expect(log.contains("trial 1: steps 0..5"), "the program's output goes to log.txt: \(log)")

        // The child continues from step 5; the same trial again gives the same bits.
        let child = Self.trial(2, lr: 0.001, start: 5)
        let b = try runner.run(child, parent: first, output: Self.output(dir, "second"))
        let again = try runner.run(child, parent: first, output: Self.output(dir, "third"))
        #expect(b.evaluation.bitPattern == again.evaluation.bitPattern)
        #expect(b.evaluation != a.evaluation)
        // A parent at another step is a contract violation the toy reports (exit 2).
        let wrong = Self.failure(runner, Self.trial(3, start: 10), output: Self.output(dir, "wrong"))
        #expect(wrong?.reason == .exitCode(2))
    }

    /// The environment holds the contract's variables (inherited ones of
    /// the contract's names, `PBT_HP_*` too, replaced or dropped) and
    /// everything else this process has, a user's own `PBT_*` too.
    @Test func theEnvironmentIsTheContract() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let script = #"env > "$PBT_TRIAL_DIR/env.txt"; echo '{"objective": 1.5, "steps": 5, "metrics": {"a": [1, "x"]}}' > "$PBT_TRIAL_DIR/result.json""#
        let runner = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", script]),
                                    environment: ExecToy.environment(["PBT_MINE": "1", "PBT_HP_old": "2", "PBT_TRIAL_ID": "99", "PBT_HYPERPARAMETERS": "{}",
                                                                                     "KEEP_ME": "yes"]))
        let parent = Self.output(dir, "parent")
        var trial = Self.trial(7, extra: ["batch": .number(32), "opt": .category("adam")])
        trial.startStep = 40
        let outcome = try runner.run(trial, parent: parent, output: Self.output(dir))
        #expect(outcome.evaluation == 1.5)
        let lines = try String(contentsOfFile: dir.url.appendingPathComponent("trial/env.txt").path, encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let pbt = Set(lines.filter { $0.hasPrefix("PBT_") })
        #expect(pbt == [
            "PBT_TRIAL_ID=7", "PBT_TRIAL_DIR=\(dir.url.appendingPathComponent("trial").path)", "PBT_PARENT_DIR=\(parent.path)",
            "PBT_START_STEP=40", "PBT_STEPS=5", "PBT_SEED=12345678901234567890",
            #"PBT_HYPERPARAMETERS={"batch":32,"lr":0.01,"momentum":0.9,"opt":"adam"}"#,
            "PBT_HP_batch=32", "PBT_HP_lr=0.01", "PBT_HP_momentum=0.9", "PBT_HP_opt=adam", "PBT_EXIT_PARENT_UNUSABLE=65",
            "PBT_MINE=1",
        ])
        #expect(lines.contains("KEEP_ME=yes"))

        // A fresh start has an empty PBT_PARENT_DIR.
        _ = try runner.run(Self.trial(), parent: nil, output: Self.output(dir, "fresh"))
        let fresh = try String(contentsOfFile: dir.url.appendingPathComponent("fresh/env.txt").path, encoding: .utf8)
        #expect(fresh.split(separator: "\n").contains("PBT_PARENT_DIR="))
    }

    /// A continuous hyperparameter clamped to a whole bound reaches the
    /// program as `1.0`, not `1` (a program read it as an integer); a
    /// numeric choice keeps its whole form. Without the space, whole values
    /// are integers as before.
    @Test func continuousValuesReachTheProgramWithAFraction() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let script = #"env > "$PBT_TRIAL_DIR/env.txt"; echo '{"objective": 1}' > "$PBT_TRIAL_DIR/result.json""#
        let space = SearchSpace([.uniform("momentum", 0.5, 1), .logUniform("lr", 1e-4, 1), .choice("batch", [16, 32])])
        func variables(_ runner: ExecRunner, _ name: String) throws -> Set<String> {
            let trial = Self.trial(lr: 1, momentum: 1, extra: ["batch": .number(32)])
            _ = try runner.run(trial, parent: nil, output: Self.output(dir, name))
            let text = try String(contentsOfFile: dir.url.appendingPathComponent("\(name)/env.txt").path, encoding: .utf8)
            return Set(text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("PBT_H") })
        }
        let knowing = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", script]), space: space,
                                     environment: ExecToy.environment([:]))
        #expect(knowing.realValued == ["momentum", "lr"])
        #expect(try variables(knowing, "real") == [
            #"PBT_HYPERPARAMETERS={"batch":32,"lr":1.0,"momentum":1.0}"#, "PBT_HP_batch=32", "PBT_HP_lr=1.0", "PBT_HP_momentum=1.0",
        ])
        let plain = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", script]), environment: ExecToy.environment([:]))
        #expect(try variables(plain, "plain").contains(#"PBT_HYPERPARAMETERS={"batch":32,"lr":1,"momentum":1}"#))
        // What JSON reads back is the value, either way.
        for x in [1.0, 100.0, 1e-5, 1e20, 0.1 + 0.2] {
            let text = HyperparameterValue.number(x).jsonText(real: true)
            #expect(text.contains(".") || text.contains("e"), "\(text)")
            #expect((try? JSONDecoder().decode(Double.self, from: Data(text.utf8))) == x, "\(text)")
        }
    }

    /// A program that writes its result but no checkpoint gets a note, once
    /// a run: a trial continuing from it would find nothing (it counted as
    /// a plain success). A program that saves anything gets none.
    @Test func aProgramThatWritesNoCheckpointGetsANoteOnce() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let notes = Locked<[String]>([])
        let stateless = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", #"echo '{"objective": 1}' > "$PBT_TRIAL_DIR/result.json""#]),
                                       environment: ExecToy.environment([:]), onNote: { note in notes.withLock { $0.append(note) } })
        for id in 1...3 { _ = try stateless.run(Self.trial(id), parent: nil, output: Self.output(dir, "stateless-\(id)")) }
        let said = notes.withLock { $0 }
        #expect(said.count == 1, "\(said)")
        #expect(said.first?.contains("trial 1's program wrote no checkpoint") == true && said.first?.contains("PBT_PARENT_DIR") == true)

        notes.withLock { $0 = [] }
        let saving = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", #"echo w > "$PBT_TRIAL_DIR/model.bin"; echo '{"objective": 1}' > "$PBT_TRIAL_DIR/result.json""#]),
                                    environment: ExecToy.environment([:]), onNote: { note in notes.withLock { $0.append(note) } })
        _ = try saving.run(Self.trial(), parent: nil, output: Self.output(dir, "saving"))
        #expect(notes.withLock { $0 }.isEmpty)
    }

    /// A program that cannot use its parent's checkpoint says so with exit
    /// code 65, and one that changes anything in PBT_PARENT_DIR fails: both
    /// retire the parent (the failure says why), where an ordinary failure
    /// of a child does not. Before, a child could overwrite the checkpoint
    /// its siblings start from, and an unusable parent used up the budget.
    @Test func aChildThatCannotUseOrChangesItsParentsCheckpointRetiresTheParent() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let parent = Self.output(dir, "parent")
        try FileManager.default.createDirectory(atPath: parent.path + "/sub", withIntermediateDirectories: true)
        try Data("weights".utf8).write(to: URL(fileURLWithPath: parent.path + "/sub/ck.bin"))
        let ok = #"echo '{"objective": 1}' > "$PBT_TRIAL_DIR/result.json"; echo s > "$PBT_TRIAL_DIR/state""#
        for (name, script, retired) in [
            ("unusable", #"exit "$PBT_EXIT_PARENT_UNUSABLE""#, "its checkpoint cannot be used: the program exited with code 65"),
            ("overwrites", #"echo x > "$PBT_PARENT_DIR/sub/ck.bin"; "# + ok, "its checkpoint changed while a trial that started from it ran (sub/ck.bin)"),
            ("adds", #"echo x > "$PBT_PARENT_DIR/new.bin"; "# + ok, "its checkpoint changed while a trial that started from it ran (new.bin)"),
            // A lock file made and removed: the folder's own time alone changed (found by a helper: "(. in PBT_PARENT_DIR)").
            ("touches", #"touch "$PBT_PARENT_DIR/.lock"; rm "$PBT_PARENT_DIR/.lock"; "# + ok,
             "its checkpoint changed while a trial that started from it ran (a file made or removed in the folder itself)"),
            ("plain failure", "exit 1", nil),
            ("reads", #"cat "$PBT_PARENT_DIR/sub/ck.bin" > /dev/null; "# + ok, nil),
        ] {
            let runner = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", script]), environment: ExecToy.environment([:]))
            var failure: ExecTrialFailure?
            do { _ = try runner.run(Self.trial(), parent: parent, output: Self.output(dir, name)) } catch { failure = error as? ExecTrialFailure }
            let retirement: String? = failure.flatMap { TrialRunnerError.parentRetirement($0) }
            #expect(retirement == retired, "\(name): \(String(describing: failure))")
            let unreadable = failure.map { TrialRunnerError.isParentUnreadable($0) } ?? false
            #expect(unreadable == (name == "unusable"), "\(name)")
            #expect((failure == nil) == (name == "reads"), "\(name)")
            if name == "overwrites" || name == "adds" || name == "touches" {
                #expect(failure?.description.contains("its parent's checkpoint changed while the program ran") == true, "\(String(describing: failure))")
                try Data("weights".utf8).write(to: URL(fileURLWithPath: parent.path + "/sub/ck.bin"))
                try? FileManager.default.removeItem(atPath: parent.path + "/new.bin")
            }
        }
        // A parent removed as a whole while the program ran is said as such (found by a helper: a worker cut off from the
        // store, whose parent another worker released, was told its program wrote into the parent).
        let gone = Self.output(dir, "gone-parent")
        try FileManager.default.createDirectory(atPath: gone.path, withIntermediateDirectories: true)
        try Data("weights".utf8).write(to: URL(fileURLWithPath: gone.path + "/ck.bin"))
        let remover = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", #"rm -rf "$PBT_PARENT_DIR"; "# + ok]),
                                     environment: ExecToy.environment([:]))
        let removed = Self.failure(remover, parent: gone, output: Self.output(dir, "after-gone"))
        #expect(removed?.reason == .parentRemoved && removed?.description.contains("was removed while the program ran") == true,
                "\(String(describing: removed))")
        // With no parent, exit code 65 is an ordinary failure.
        let fresh = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", "exit 65"]), environment: ExecToy.environment([:]))
        #expect(Self.failure(fresh, output: Self.output(dir, "fresh"))?.reason == .exitCode(65))
        // A parent whose program wrote no checkpoint (its folder holds result.json and log.txt alone): a child that
        // fails retires it, as exit 65 does (found by a helper: it kept winning, and every child failed); one that
        // copes with the empty folder does not fail.
        let bare = Self.output(dir, "bare-parent")
        try FileManager.default.createDirectory(atPath: bare.path, withIntermediateDirectories: true)
        for file in [ExecRunner.resultFileName, ExecRunner.logFileName] { try Data("{}".utf8).write(to: URL(fileURLWithPath: bare.path + "/" + file)) }
        let needing = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", #"[ -e "$PBT_PARENT_DIR/state" ] || exit 2; "# + ok]),
                                     environment: ExecToy.environment([:]))
        let orphaned = Self.failure(needing, parent: bare, output: Self.output(dir, "after-bare"))
        #expect(orphaned?.reason == .parentLeftNoCheckpoint(2) && orphaned.map { TrialRunnerError.isParentUnreadable($0) } == true,
                "\(String(describing: orphaned))")
        #expect(orphaned.flatMap { TrialRunnerError.parentRetirement($0) }?.hasPrefix("it left no checkpoint") == true)
        #expect(orphaned?.description.contains("PBT_PARENT_DIR holds no checkpoint (only result.json and log.txt)") == true, "\(String(describing: orphaned))")
        let coping = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", ok]), environment: ExecToy.environment([:]))
        #expect(try coping.run(Self.trial(), parent: bare, output: Self.output(dir, "coping")).evaluation == 1)
        // A parent with a checkpoint, and a child failing: an ordinary failure.
        let failing = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", "exit 2"]), environment: ExecToy.environment([:]))
        #expect(Self.failure(failing, parent: parent, output: Self.output(dir, "after-full"))?.reason == .exitCode(2))
    }

    /// A hyperparameter named with '-' reaches a shell program too (as
    /// `PBT_HP_lr_decay`; dash drops `PBT_HP_lr-decay` from its environment).
    @Test func aDashedNameReachesAShell() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let script = #"echo "$PBT_HP_lr_decay" > "$PBT_TRIAL_DIR/seen.txt"; echo '{"objective": 1}' > "$PBT_TRIAL_DIR/result.json""#
        let runner = try ExecRunner(command: ExecCommand(program: "/bin/sh", arguments: ["-c", script]), environment: ExecToy.environment([:]))
        _ = try runner.run(Self.trial(1, extra: ["lr-decay": .number(0.5)]), parent: nil, output: Self.output(dir))
        let seen = try String(contentsOfFile: dir.url.appendingPathComponent("trial/seen.txt").path, encoding: .utf8)
        #expect(seen == "0.5\n")
    }

    static let failureModes: [(String, ExecTrialFailure.Reason, String)] = [
        ("exit", .exitCode(3), "the program exited with code 3"),
        ("signal", .signal(SIGABRT), "the program was killed by SIGABRT"),
        ("noresult", .noResult, "without writing result.json"),
        ("nan", .nonFiniteObjective(.nan), "non-finite objective"),
    ]

    @Test(arguments: failureModes)
    func eachFailureHasItsReasonAndTheLogsLastLines(mode: String, reason: ExecTrialFailure.Reason, text: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let shown = Locked<[ExecTrialFailure]>([])
        let failure = Self.failure(try ExecToy.runner(["TOY_FAIL": mode], failures: shown), output: Self.output(dir))
        if case .nonFiniteObjective(let x) = failure?.reason {
            #expect(x.isNaN)
        } else {
            #expect(failure?.reason == reason)
        }
        let description = failure?.description ?? ""
        #expect(description.contains(text), "\(description)")
        #expect(description.contains("last lines of its log.txt") && description.contains("TOY_FAIL=\(mode)"), "\(description)")
        #expect(shown.withLock { $0.map(\.description) } == [description], "the failure was shown once")
    }

    @Test func badResultFilesAreInvalid() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let bad = Self.failure(try ExecToy.runner(["TOY_FAIL": "badjson"]), output: Self.output(dir, "badjson"))
        #expect(bad?.description.contains("result.json is invalid: not valid JSON") == true, "\(bad?.description ?? "")")
        for (json, fragment) in [
            (#"{"loss": 1}"#, #"it has no "objective""#),
            (#"{"objective": "low"}"#, #""objective" is not a number"#),
            (#"{"objective": 1, "steps": 4}"#, #"reported "steps": 4, but PBT_STEPS was 5"#),
            (#"[1, 2]"#, #"it is not a JSON object; write {"objective": <number>}"#),
            ("3.5", #"it is not a JSON object; write {"objective": <number>}"#),
            // Beyond a Double's range: infinite, a divergence as Infinity is (a user saw "not valid JSON", a program failure).
            (#"{"objective": 1e400}"#, "non-finite objective (inf)"),
            (#"{"objective": -2.5E+999, "steps": 5}"#, "non-finite objective (-inf)"),
            ("{\"objective\": 1" + String(repeating: "0", count: 400) + "}", "non-finite objective (inf)"),
            // "metrics" stay in the file: an object, whatever its values; a helper's failed the trial in Swift's words.
            (#"{"objective": 1, "metrics": [1, 2]}"#, #""metrics" is not valid: it must be a JSON object"#),
            // Found by a user: these said only "not valid JSON".
            (#"{"objective": 1, "steps": 1.5}"#, #""steps" is not an integer"#),
            (#"{"objective": 1e-400}"#, #""objective" is not a number"#),
            (#"{"objective": NaN, "steps": 5}"#, "non-finite objective (nan)"),
            (#"{"objective": Infinity}"#, "non-finite objective (inf)"),
            // JavaScript's JSON.stringify writes NaN as null: diverged too, not "invalid" (which counted as a program failure).
            (#"{"objective": null}"#, "non-finite objective (nan)"),
        ] {
            let runner = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", #"printf '%s' "$0" > "$PBT_TRIAL_DIR/result.json""#, json]))
            let failure = Self.failure(runner, output: Self.output(dir, "case"))
            #expect(failure?.description.contains(fragment) == true, "\(json): \(failure?.description ?? "")")
            #expect(failure?.description.contains("(its log is empty)") == true)
        }
        for json in [#"{"objective": 0.5, "metrics": {"x": 1e400, "y": [1, "a"], "z": {"w": -1e999}}}"#,
                     "{\"objective\": 0.5, \"metrics\": {\"x\": 1" + String(repeating: "0", count: 400) + "}}"] {
            let runner = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", #"printf '%s' "$0" > "$PBT_TRIAL_DIR/result.json""#, json]))
            let output = Self.output(dir, "metrics")
            #expect(try runner.run(Self.trial(), parent: nil, output: output).evaluation == 0.5, "\(json.prefix(80))")
        }
        // A result.json that is no file says what it is (found by a helper: "cannot be read"); exactly 16 MiB is refused, as the README says.
        for (script, fragment) in [(#"mkdir "$PBT_TRIAL_DIR/result.json""#, "result.json is invalid: a folder, not a file"),
                                   (#"mkfifo "$PBT_TRIAL_DIR/result.json""#, "result.json is invalid: a named pipe, not a file"),
                                   (#"head -c 16777216 /dev/zero > "$PBT_TRIAL_DIR/result.json""#, "16777216 bytes; it must be under 16 MiB")] {
            let runner = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", script]))
            let failure = Self.failure(runner, output: Self.output(dir, "odd"))
            #expect(failure?.description.contains(fragment) == true, "\(script): \(failure?.description ?? "")")
        }
        // A program that removes its trial folder (and its log in it), prints and fails: not "its log is empty".
        let wiping = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c",
            #"rm -rf "$PBT_TRIAL_DIR"; mkdir "$PBT_TRIAL_DIR"; echo 'Traceback: boom'; exit 1"#]))
        let wiped = Self.failure(wiping, output: Self.output(dir, "wiped"))
        #expect(wiped?.description.contains("log.txt is gone: the program removed it, or its trial folder") == true
                && wiped?.description.contains("(its log is empty)") == false, "\(wiped?.description ?? "")")
    }

    /// The toy's `sleep` mode starts a child in its process group and both
    /// sleep; `hang` also ignores SIGTERM. Timeout kills the whole group.
    @Test(.timeLimit(.minutes(1)), arguments: ["sleep", "hang"])
    func aTimeoutKillsTheWholeProcessGroup(mode: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let output = Self.output(dir)
        let runner = try ExecToy.runner(["TOY_FAIL": mode], timeout: .milliseconds(1500), grace: .milliseconds(500))
        let start = Date()
        let failure = Self.failure(runner, output: output)
        let elapsed = Date().timeIntervalSince(start)
        #expect(failure?.reason == .timedOut(1.5))
        #expect(failure?.description.contains("timed out after 1.5 s") == true)
        #expect(elapsed >= 1.5 && elapsed < 20, "\(elapsed) s")
        if mode == "hang" { #expect(elapsed >= 2.0, "SIGTERM was ignored: SIGKILL came after the grace period (\(elapsed) s)") }
        let pids = try String(contentsOfFile: output.path + "/pids.txt", encoding: .utf8).split(separator: "\n").compactMap { pid_t($0) }
        #expect(pids.count == 2)
        #expect(eventually(within: 5) { pids.allSatisfy(processIsGone) }, "the toy and its child are gone: \(pids)")
    }

    @Test(.timeLimit(.minutes(1))) func stoppingTheRunnerKillsItsProgramsAndFailsTheirTrials() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let output = Self.output(dir)
        let runner = try ExecToy.runner(["TOY_FAIL": "sleep"], grace: .milliseconds(500))
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) {
            runner.stop("a test stopped it")
        }
        let failure = Self.failure(runner, output: output)
        #expect(failure?.reason == .stopped("a test stopped it"))
        #expect(failure?.description.contains("the worker was stopped (a test stopped it)") == true)
        let pids = try String(contentsOfFile: output.path + "/pids.txt", encoding: .utf8).split(separator: "\n").compactMap { pid_t($0) }
        #expect(eventually(within: 5) { pids.allSatisfy(processIsGone) }, "\(pids)")
        // Once stopped, a trial fails at once, without starting the program.
        let later = Self.failure(runner, output: Self.output(dir, "later"))
        #expect(later?.reason == .stopped("a test stopped it"))
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("later/log.txt").path))
    }

    @Test func aProgramThatCannotRunIsRefusedUpFront() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        #expect(throws: ExecRunnerError.notFound("no-such-program-\(getpid())", searched: "/usr/bin:/bin")) {
            try ExecRunner(command: ExecCommand(program: "no-such-program-\(getpid())"), environment: ["PATH": "/usr/bin:/bin"])
        }
        #expect(throws: ExecRunnerError.notFound(dir.url.path + "/missing.py", searched: nil)) {
            try ExecRunner(command: ExecCommand(program: dir.url.path + "/missing.py"))
        }
        let script = dir.url.appendingPathComponent("train.py").path
        try "print(1)\n".write(toFile: script, atomically: true, encoding: .utf8)
        let error = #expect(throws: ExecRunnerError.self) { try ExecRunner(command: ExecCommand(program: script)) }
        #expect(error?.description.contains("chmod +x") == true && error?.description.contains("python3 \(script)") == true)
        // Found by a user: a folder was told to chmod +x, a path kept its "/./", and a program in this folder was told only "give its path".
        #expect(throws: ExecRunnerError.folder(dir.url.path)) { try ExecRunner(command: ExecCommand(program: dir.url.path + "/./")) }
        #expect(throws: ExecRunnerError.notExecutable(script)) {
            try ExecRunner(command: ExecCommand(program: dir.url.path + "/./train.py"))
        }
        let local = #expect(throws: ExecRunnerError.notOnPathButHere("train.py", searched: "/usr/bin:/bin")) {
            try ExecRunner.resolve("train.py", path: "/usr/bin:/bin", here: dir.url.path)
        }
        #expect(local?.description.contains("the one in this folder is ./train.py: give it so") == true)
        // A script whose #! interpreter is missing: the kernel says ENOENT, as for a missing file.
        let orphan = dir.url.appendingPathComponent("orphan.py").path
        try "#!/usr/bin/no-such-interpreter-\(getpid()) -u\nprint(1)\n".write(toFile: orphan, atomically: true, encoding: .utf8)
        chmod(orphan, 0o755)
        let cannot = Self.failure(try ExecRunner(command: ExecCommand(program: orphan)), output: Self.output(dir, "orphan"))
        #expect(cannot?.description.contains("cannot start \(orphan): its #! line names the interpreter /usr/bin/no-such-interpreter-\(getpid())") == true,
                "\(cannot?.description ?? "")")
        // A script without a #! line: the kernel says ENOEXEC ("Exec format error"), and the message says what to do.
        let bare = dir.url.appendingPathComponent("bare.sh").path
        try "echo hi\n".write(toFile: bare, atomically: true, encoding: .utf8)
        chmod(bare, 0o755)
        let format = Self.failure(try ExecRunner(command: ExecCommand(program: bare)), output: Self.output(dir, "bare"))
        #expect(format?.description.contains("begin it with a #! line") == true && format?.description.contains("-- python3 \(bare)") == true,
                "\(format?.description ?? "")")
        #expect(throws: ExecRunnerError.noProgram) { try ExecRunner(command: ExecCommand(program: "")) }
        #expect(throws: ExecRunnerError.invalidTimeout) { try ExecRunner(command: ExecCommand(program: "sh"), trialTimeout: .zero) }
    }

    /// A program that fails while its trial folder's file system is (all
    /// but) full met a full disk: `.outOfSpace`, which stops the run and
    /// records nothing (found by a helper: the trials were failed for good,
    /// "the program exited with code 1 (its log is empty)"). A stop, a
    /// divergence, or a disk with room, stay what they are.
    @Test func aProgramFailingOnAFullDiskIsOutOfSpace() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let failing = ExecCommand(program: "sh", arguments: ["-c", "echo 'OSError: No space left on device'; exit 1"])
        let full = try ExecRunner(command: failing, minimumFreeBytes: .max)
        do {
            _ = try full.run(Self.trial(), parent: nil, output: Self.output(dir, "full"))
            Issue.record("the trial succeeded")
        } catch {
            #expect(TrialRunnerError.isOutOfSpace(error), "\(error)")
            #expect("\(error)".contains("bytes free, and the program failed (the program exited with code 1)"), "\(error)")
        }
        let roomy = Self.failure(try ExecRunner(command: failing), output: Self.output(dir, "roomy"))
        #expect(roomy?.reason == .exitCode(1))
        let diverged = try ExecRunner(command: ExecCommand(program: "sh", arguments: ["-c", #"echo '{"objective": NaN}' > "$PBT_TRIAL_DIR/result.json""#]),
                                      minimumFreeBytes: .max)
        #expect(Self.failure(diverged, output: Self.output(dir, "nan")).map { TrialRunnerError.isDivergence($0) } == true)
        #expect(ExecRunner.freeBytes(dir.url.path).map { $0 > 0 } == true)
    }

    /// A space whose PBT_HYPERPARAMETERS no program could be started with
    /// is refused before any trial (found by a helper: every trial failed
    /// with "Argument list too long"); the longest a space can give is
    /// what the contract writes, at its widest values.
    @Test func aSpaceTooLongForTheEnvironmentIsRefused() throws {
        let long = SearchSpace((0 ..< 30).map { .uniform("n\($0)" + String(repeating: "a", count: 5000), 0, 1) })
        let bytes = ExecRunner.longestHyperparameters(long)
        #expect(throws: ExecRunnerError.hyperparametersTooLong(bytes)) { try ExecRunner(command: ExecCommand(program: "sh"), space: long) }
        #expect("\(ExecRunnerError.hyperparametersTooLong(bytes))".contains("shorten the hyperparameters' names"))
        let space = SearchSpace([.uniform("x", -1e300, 1e300), .choice("batch", [3e300, 1]), .categorical("opt", ["sgd", "adam-w"])])
        let widest = TrialSpec(id: 1, generation: 0, parentID: nil,
                               hyperparameters: Hyperparameters(["x": .number(-2.2250738585072014e-308), "batch": .number(3e300), "opt": .category("adam-w")]),
                               startStep: 0, steps: 1, seed: 1)
        let written = ExecRunner.contract(widest, parent: nil, directory: "/d", realValued: space.realValued).first { $0.hasPrefix("PBT_HYPERPARAMETERS=") }
        #expect(written?.utf8.count == ExecRunner.longestHyperparameters(space), "\(written ?? "")")
        _ = try ExecRunner(command: ExecCommand(program: "sh"), space: space)
    }

    @Test func wholeNumbersAreWrittenAsIntegers() {
        #expect(HyperparameterValue.number(32).jsonText(real: false) == "32")
        #expect(HyperparameterValue.number(-3).jsonText(real: false) == "-3")
        #expect(HyperparameterValue.number(0.5).jsonText(real: false) == "0.5")
        #expect(HyperparameterValue.number(1e-5).jsonText(real: false) == "1e-05")
        #expect(HyperparameterValue.number(1e16).jsonText(real: false) == "10000000000000000")
        #expect(HyperparameterValue.number(1e20).jsonText(real: false) == "100000000000000000000")
        #expect(HyperparameterValue.number(1e20).jsonText(real: true) == "1e+20")
        #expect(HyperparameterValue.category("adam").jsonText(real: false) == "\"adam\"")
        #expect(HyperparameterValue.category("a/b\tc").jsonText(real: false) == #""a/b\tc""#, "escaped: a stored run may hold what validate now refuses")
        // Each is what JSON reads back.
        for x in [32.0, 0.5, 1e-5, 1e16, 1e20, -1e300, 0.1 + 0.2] {
            let text = HyperparameterValue.number(x).jsonText(real: false)
            #expect((try? JSONDecoder().decode(Double.self, from: Data(text.utf8))) == x, "\(text)")
        }
    }

    @Test func theLogTailIsTheLastLines() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.url.appendingPathComponent("log.txt").path
        try ((1...100).map { "line \($0)" }.joined(separator: "\n") + "\n\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ExecRunner.tail(ofFile: path, lines: 3) == ["line 98", "line 99", "line 100"])
        try String(repeating: "x", count: 200_000).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ExecRunner.tail(ofFile: path, lines: 3) == [String(repeating: "x", count: 400) + "…"],
                "one line longer than 64 KiB: read whole (before: nothing, 'its log is empty')")
        try String(repeating: "y", count: 3_000_000).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ExecRunner.tail(ofFile: path, lines: 3) == ["…" + String(repeating: "y", count: 400)], "longer than 1 MiB: its end")
        // The error, then a line longer than 64 KiB: both shown.
        try ("Traceback: the real error\n" + String(repeating: "c", count: 70_000) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ExecRunner.tail(ofFile: path, lines: 3) == ["Traceback: the real error", String(repeating: "c", count: 400) + "…"])
        try "ok\n\u{1B}[31mred\u{07}\tend\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ExecRunner.tail(ofFile: path, lines: 3) == ["ok", "?[31mred?\tend"], "control characters are not sent to the terminal")
        #expect(ExecRunner.tail(ofFile: dir.url.appendingPathComponent("none").path, lines: 3).isEmpty)
    }
}

/// A recovery stops only the programs of the trials it re-queues when other
/// workers still run theirs (found by a user: with a worker attached, none
/// was stopped, and a killed pbt's program trained on beside its trial's new
/// attempt); with no live worker, every recorded one.
@Test func leftoverProgramsAreStoppedByTrial() throws {
    let dir = try TemporaryDirectory()
    defer { dir.cleanup() }
    // As the exec runner starts programs: each leads its own process group.
    func start(_ name: String) throws -> SpawnedProcess {
        try SpawnedProcess.spawn(executable: "/bin/sleep", arguments: ["sleep", "60"], environment: [], log: dir.url.path + "/\(name).log")
    }
    let (orphan, other) = (try start("orphan"), try start("other"))
    defer { for p in [orphan, other] { kill(-p.pid, SIGKILL); _ = p.reap() } }
    func alive(_ p: SpawnedProcess) -> Bool {
        // A zombie (stopped, not yet reaped) is not running: /proc says state Z.
        guard let stat = try? String(contentsOfFile: "/proc/\(p.pid)/stat", encoding: .utf8),
              let state = stat.split(separator: ")").last?.split(separator: " ").first else { return false }
        return state != "Z"
    }
    LeftoverPrograms.record(orphan.pid, for: dir.url.path + "/trial-1.1.ckpt")
    LeftoverPrograms.record(other.pid, for: dir.url.path + "/trial-2.1.ckpt")
    #expect(LeftoverPrograms.stop(in: dir.url.path, only: ["trial-1.1.ckpt"], grace: 1) == 1)
    #expect(!alive(orphan) && alive(other), "only the orphan's program is stopped")
    #expect(FileManager.default.fileExists(atPath: dir.url.path + "/trial-2.1.ckpt.program"), "the live worker's record stays")
    #expect(LeftoverPrograms.stop(in: dir.url.path, grace: 1) == 1)
    #expect(!alive(other))
}

/// A recovery that waits for a leftover program which ignores SIGTERM says
/// so, once (found by a helper: a resume sat silent for the 10 s grace).
@Test func waitingForALeftoverProgramIsSaid() throws {
    let dir = try TemporaryDirectory()
    defer { dir.cleanup() }
    let stubborn = try SpawnedProcess.spawn(executable: "/bin/sh", arguments: ["sh", "-c", "trap '' TERM; sleep 60 & wait"], environment: [],
                                            log: dir.url.path + "/stubborn.log")
    defer { kill(-stubborn.pid, SIGKILL); _ = stubborn.reap() }
    LeftoverPrograms.record(stubborn.pid, for: dir.url.path + "/trial-1.1.ckpt")
    let told = Mutex<[String]>([])
    #expect(LeftoverPrograms.stop(in: dir.url.path, grace: 2.5, waiting: { line in told.withLock { $0.append(line) } }) == 1)
    let lines = told.withLock { $0 }
    #expect(lines.count == 1 && lines[0].hasPrefix("waiting for 1 training program(s) a killed pbtwave left running to stop (SIGTERM sent; SIGKILL in "),
            "\(lines)")
}
