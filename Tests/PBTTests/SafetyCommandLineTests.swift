import Foundation
import Testing

@testable import PBT

/// Issue 15's command-line failures, run as a user runs them.
@Suite struct SafetyCommandLineTests {
    /// Runs `script` in /bin/sh with `$PBTWAVE` set; kills it after `seconds`.
    static func shell(_ script: String, seconds: Double) throws -> (status: Int32, stderr: String, timedOut: Bool) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.environment = ProcessInfo.processInfo.environment.merging(["PBTWAVE": try pbtwaveExecutable().path]) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        let timedOut = process.isRunning
        if timedOut { kill(-process.processIdentifier, SIGKILL); process.terminate() }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stderr, timedOut)
    }

    /// `train` on the tiny model with the smallest windows, on the built corpus: quick runs for these tests.
    static func tinyTraining() -> [String] {
        ["train", "--preset", "tiny", "--window", "256", "--eval-windows", "1", "--eval-targets", "64", "--quiet", "--corpus", corpusDirectory()]
    }

    /// Found by a helper: a second `train --replace` on a running run's
    /// checkpoint wrote over it, and both runs said "done … checkpoint X".
    @Test func aRunningTrainingsCheckpointIsNotTakenByAnother() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let checkpoint = dir.url.appendingPathComponent("m.ckpt").path
        let first = Process()
        first.executableURL = try pbtwaveExecutable()
        first.arguments = Self.tinyTraining() + ["--steps", "100000", "--checkpoint", checkpoint]
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL); first.waitUntilExit() } }
        let lock = dir.url.appendingPathComponent(".m.ckpt.lock").path
        #expect(eventually(within: 30) { FileManager.default.fileExists(atPath: lock) })
        let second = try runPBTWave(Self.tinyTraining() + ["--steps", "2", "--checkpoint", checkpoint, "--replace"])
        #expect(second.status != 0 && second.stderr.contains("\(checkpoint) is in use by another pbtwave process"), "\(second.stderr)")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        // Once no run holds it, the next one goes on, and leaves no lock file behind.
        let third = try runPBTWave(Self.tinyTraining() + ["--steps", "2", "--checkpoint", checkpoint, "--replace"])
        #expect(third.status == 0, "\(third.stderr)")
        #expect(!FileManager.default.fileExists(atPath: lock))
    }

    /// Found by a helper: a stopped `bench exec-overhead` left its program
    /// running (in a group of its own, with init as its parent), and
    /// `bench pbt-overhead --processes` its busy worker processes; both left
    /// their temporary folder. A stop now ends them and removes it.
    @Test func aStoppedBenchLeavesNoProcessOrFolderBehind() throws {
        let mark = "\(getpid() % 100_000 + 900_000)"
        let run = try Self.shell("""
            tmp=$(mktemp -d); export TMPDIR=$tmp
            "$PBTWAVE" bench exec-overhead --workers 1 --trials 1 --repetitions 1 -- sleep \(mark) 2>/dev/null & pid=$!
            for i in $(seq 200); do pgrep -f "^sleep \(mark)$" > /dev/null && break; sleep 0.05; done
            kill -TERM $pid; wait $pid; echo "exec status $?" >&2
            "$PBTWAVE" bench pbt-overhead --processes 2 --workers 1 --trials 200000 2>/dev/null & pid=$!
            for i in $(seq 200); do [ "$(pgrep -P $pid -c)" = 2 ] && break; sleep 0.05; done
            sleep 0.5; kill -TERM $pid; wait $pid; echo "pbt status $?" >&2
            sleep 0.5
            pgrep -f "^sleep \(mark)$" > /dev/null && echo "a program is left" >&2
            pgrep -f "[p]btwave worker .*pbt-overhead" > /dev/null && echo "a worker is left" >&2
            [ -z "$(ls -A $tmp)" ] || echo "left in TMPDIR: $(ls $tmp)" >&2
            rm -rf $tmp
            """, seconds: 60)
        #expect(!run.timedOut)
        #expect(run.stderr.contains("exec status 143") && run.stderr.contains("pbt status 143"), "\(run.stderr)")
        #expect(!run.stderr.contains("left"), "\(run.stderr)")
    }

    /// `train` takes `--progress` as the other commands do (it had only
    /// `--quiet`, which stays as `--progress none`).
    @Test func trainTakesProgressLikeTheOtherCommands() throws {
        let common = Self.tinyTraining().filter { $0 != "--quiet" } + ["--steps", "2", "--eval-every", "0"]
        let plain = try runPBTWave(common + ["--progress", "plain"])
        #expect(plain.status == 0 && plain.stderr.contains("train: "), "\(plain.stderr)")
        for quiet in [["--progress", "none"], ["--quiet"]] {
            let run = try runPBTWave(common + quiet)
            #expect(run.status == 0 && !run.stderr.contains("train: "), "\(quiet): \(run.stderr)")
        }
    }

    /// A validation error found after parsing: the message, no usage, exit 1 (was 64).
    @Test func validationErrorsAfterParsingExitOne() throws {
        let run = try runPBTWave(["train", "--model-config", "/nonexistent/model.json", "--corpus", "/nonexistent"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("cannot read --model-config /nonexistent/model.json"), "\(run.stderr)")
        #expect(!run.stderr.contains("Usage:"), "\(run.stderr)")
        let parse = try runPBTWave(["train", "--steps", "0"])
        #expect(parse.status == 64 && parse.stderr.contains("Usage:"), "parse errors keep ArgumentParser's usage and code")
    }

    /// Found by users: an empty path (an unset shell variable) put a whole
    /// run, experiment or corpus build in the current directory; `train`
    /// without --checkpoint threw the model away without a word.
    @Test func anEmptyPathIsRefusedAndAnUnkeptModelIsNamed() throws {
        let folders = [["pbt", "--run-dir", ""], ["experiment", "--run-dir", ""], ["corpus", "build", "--from", "", "--output", "x"],
                       ["corpus", "build", "--from", ".", "--output", ""], ["report", "render", "--results", "r.json", "--output", ""],
                       ["worker", "--store", "sqlite:x", "--run", "r", "--run-dir", ""]]
        // A file flag asks for a file name, not "a directory or file" (`generate --output ''` did).
        let files = [["train", "--checkpoint", ""], ["generate", "x.ckpt", "--output", ""], ["schedule", "export", ".", "--output", ""],
                     ["corpus", "build", "--files", "", "--output", "x"]]
        for (commands, advice) in [(folders, "give a directory"), (files, "give a file name")] {
            for command in commands {
                let run = try runPBTWave(command)
                #expect(run.status == 64 && run.stderr.contains("the path is empty; \(advice)"), "\(command): \(run.stderr)")
            }
        }
        // "-" is not standard output for a file these write (it named a file "-").
        for command in [["train", "--checkpoint", "-"], ["train", "--curve", "-"], ["generate", "x.ckpt", "--output", "-"]] {
            let run = try runPBTWave(command)
            #expect(run.status == 64 && run.stderr.contains("'-' (standard output) is not supported here"), "\(command): \(run.stderr)")
        }
        let train = try runPBTWave(Self.tinyTraining() + ["--steps", "2"])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("no checkpoint was written (give --checkpoint FILE"), "\(train.stdout)")
    }

    /// Standard output closed early (`pbtwave train … | head -1`): the run
    /// goes on and writes its checkpoint (before: SIGPIPE killed it at the
    /// next line, exit 141, no checkpoint, no word).
    @Test func aClosedOutputDoesNotLoseTheRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let checkpoint = dir.url.appendingPathComponent("m.ckpt").path
        let run = try Self.shell("""
            "$PBTWAVE" train --preset tiny --window 256 --eval-windows 1 --eval-targets 64 --steps 40 --eval-every 5 \
              --corpus '\(corpusDirectory())' --checkpoint '\(checkpoint)' | head -c 1 > /dev/null
            """, seconds: 120)
        #expect(!run.timedOut, "\(run.stderr)")
        #expect(FileManager.default.fileExists(atPath: checkpoint), "the run's checkpoint: \(run.stderr)")
    }

    /// A run that diverges says whether --checkpoint holds its own state:
    /// here an earlier run's file, which it must not pass off as this run's
    /// (before: "holds the last checkpoint before it, if any").
    @Test func aDivergenceSaysWhoseCheckpointIsThere() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let checkpoint = dir.url.appendingPathComponent("m.ckpt").path
        let common = Self.tinyTraining() + ["--checkpoint", checkpoint]
        #expect(try runPBTWave(common + ["--steps", "2"]).status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        let diverged = try runPBTWave(common + ["--steps", "20", "--lr", "1e30", "--replace"])
        #expect(diverged.status == 1 && diverged.stderr.contains("training diverged at step"), "\(diverged.stderr)")
        #expect(diverged.stderr.contains("this run wrote no checkpoint before it (\(checkpoint) is an earlier run's, left as it was)"),
                "\(diverged.stderr)")
        #expect(!diverged.stderr.contains("-nan"), "\(diverged.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == before)
    }

    /// Resuming a program's run without the program is named as such
    /// (before: "corpus not found", from the default WaveNet model).
    @Test func resumingAProgramsRunWithoutItSaysSo() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let space = dir.url.appendingPathComponent("space.json").path
        try #"{"lr": {"log_uniform": [1e-3, 0.3]}}"#.write(toFile: space, atomically: true, encoding: .utf8)
        let runDir = dir.url.appendingPathComponent("run").path
        let sizes = ["--workers", "2", "--population", "2", "--trial-steps", "1", "--generations", "1", "--progress", "none"]
        let first = try runPBTWave(["pbt", "--run-dir", runDir, "--space", space] + sizes
                                   + ["--", "/bin/sh", "-c", #"echo '{"objective": 1}' > "$PBT_TRIAL_DIR/result.json""#])
        #expect(first.status == 0, "\(first.stderr)")
        let again = try runPBTWave(["pbt", "--run-dir", runDir, "--corpus", "/nonexistent"] + sizes)
        // No --model was given: the message says the default is meant (it said "--model wavenet" as if given: found by a helper).
        #expect(again.status == 1 && again.stderr.contains("holds a run of a training program, not of the default --model wavenet: to resume it, give its program"),
                "\(again.stderr)")
        let named = try runPBTWave(["pbt", "--run-dir", runDir, "--model", "wavenet", "--corpus", "/nonexistent"] + sizes)
        #expect(named.status == 1 && named.stderr.contains("holds a run of a training program, not of --model wavenet: to resume it"), "\(named.stderr)")
    }

    /// A `--space` with no program after `--` (left out by mistake) tunes
    /// the built-in WaveNet; when its corpus is missing, the error says that
    /// no program was given, and how to give one (before: only "corpus not
    /// found", found by a user).
    @Test func aSpaceWithoutAProgramSaysThatNoneWasGiven() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let space = dir.url.appendingPathComponent("space.json").path
        try #"{"lr": {"log_uniform": [1e-3, 0.3]}}"#.write(toFile: space, atomically: true, encoding: .utf8)
        let result = try runPBTWave(["pbt", "--run-dir", dir.url.appendingPathComponent("run").path, "--space", space, "--progress", "none", "--"],
                                    environment: ["PBTWAVE_CORPUS": dir.url.appendingPathComponent("no-corpus").path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("corpus not found at") && result.stderr.contains("No training program was given after `--`"),
                "\(result.stderr)")
    }

    /// Fixed-window `evaluate` says what it scores (before: seconds of
    /// silence with any --progress), and nothing with --progress none.
    @Test func evaluateShowsWhatItScores() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let checkpoint = dir.url.appendingPathComponent("m.ckpt").path
        #expect(try runPBTWave(Self.tinyTraining() + ["--steps", "2", "--checkpoint", checkpoint]).status == 0)
        let common = ["evaluate", checkpoint, "--corpus", corpusDirectory(), "--eval-windows", "2", "--eval-targets", "256"]
        let plain = try runPBTWave(common + ["--progress", "plain"])
        #expect(plain.status == 0 && plain.stderr.contains("evaluate: scoring 2 validation windows × 256 samples"), "\(plain.stderr)")
        let none = try runPBTWave(common + ["--progress", "none"])
        #expect(none.status == 0 && none.stderr.isEmpty, "\(none.stderr)")
        // --threads runs the model's own threads on fixed windows (it set BLAS threads the model does not use): the same score.
        let two = try runPBTWave(common + ["--progress", "none", "--threads", "2"])
        func nll(_ text: String) -> String? { text.range(of: #"validation NLL [0-9.]+"#, options: .regularExpression).map { String(text[$0]) } }
        #expect(two.status == 0 && nll(two.stdout) != nil && nll(two.stdout) == nll(none.stdout), "\(two.stdout) \(none.stdout)")
    }

    /// 1000 workers under a memory limit: refused before any thread starts,
    /// with a message (before: it hung after every trial; then, in optimised
    /// builds, an allocation failed before a thread did and the process
    /// crashed without one).
    /// Sizes the memory cannot hold are refused with a message before they
    /// are allocated (found by a helper: a crash with a backtrace, exit 134).
    @Test func sizesBeyondMemoryFailClearly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let checkpoint = dir.url.appendingPathComponent("m.ckpt").path
        #expect(try runPBTWave(Self.tinyTraining() + ["--steps", "1", "--checkpoint", checkpoint]).status == 0)
        let corpus = corpusDirectory()
        for (command, says) in [
            ("train --preset compact --corpus '\(corpus)' --window 1000000 --steps 1 --eval-windows 1 --eval-targets 16",
             "training a model at --batch 1 × --window 1000000"),
            ("bench train --time 2000000 --steps 1 --no-peak", "timing --batch 1 × --time 2000000"),
            // Found by a helper: an abort in the allocator, and a trap on overflow.
            ("bench kernels --time 100000000 --repetitions 1", "timing the products at --time 100000000"),
            ("bench kernels --time 4611686018427387904 --repetitions 1", "needs about more than 8 EiB"),
            ("evaluate '\(checkpoint)' --corpus '\(corpus)' --eval-windows 1000000 --eval-targets 4096", "scoring --eval-windows 1000000"),
            ("evaluate '\(checkpoint)' --corpus '\(corpus)' --all --threads 256", "scoring the whole set on --threads 256"),
        ] {
            let run = try Self.shell("ulimit -v 3000000; exec \"$PBTWAVE\" \(command)", seconds: 120)
            #expect(!run.timedOut && run.status == 1, "\(command): \(run.status) \(run.stderr)")
            #expect(run.stderr.contains(says) && run.stderr.contains("of memory, more than what is left of this process's address-space limit (ulimit -v)")
                    && !run.stderr.contains("Fatal error"), "\(command): \(run.stderr)")
        }
    }

    /// A receptive field longer than every clip is named as the cause, not
    /// the memory its windows would take (found by a helper: the memory
    /// error's advice, a smaller --window, could not help; a field a third
    /// as long got the right message).
    @Test func aReceptiveFieldLongerThanEveryClipIsNamedBeforeMemory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let config = dir.url.appendingPathComponent("rf.json").path
        let dilations = Array(repeating: "1048576", count: 15).joined(separator: ", ")
        try #"{"residualChannels": 3, "skipChannels": 5, "headChannels": 7, "dilations": [DILATIONS]}"#
            .replacingOccurrences(of: "DILATIONS", with: dilations).write(toFile: config, atomically: true, encoding: .utf8)
        let corpus = corpusDirectory()
        for command in [
            "train --corpus '\(corpus)' --model-config '\(config)' --steps 1 --window 1 --eval-windows 1 --eval-targets 1 --quiet",
            "pbt --run-dir '\(dir.url.path)/run' --model wavenet --corpus '\(corpus)' --model-config '\(config)' --workers 1 --trial-steps 1 --generations 1 --progress none",
        ] {
            let run = try Self.shell("exec \"$PBTWAVE\" \(command)", seconds: 120)
            #expect(!run.timedOut && run.status != 0, "\(command): \(run.status) \(run.stderr)")
            #expect(run.stderr.contains("the receptive field alone is longer than every clip") && !run.stderr.contains("of memory"),
                    "\(command): \(run.stderr)")
        }
    }

    @Test func tooManyWorkersFailClearly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let run = try Self.shell("""
            ulimit -v 3000000; exec "$PBTWAVE" pbt --run-dir '\(dir.url.path)/run' --model toy --workers 1000 --population 1000 \
            --trial-steps 1 --generations 2 --progress none
            """, seconds: 120)
        #expect(!run.timedOut, "pbt --workers 1000 hung")
        #expect(run.status == 1)
        #expect(run.stderr.contains("--workers 1000 needs") && run.stderr.contains("ulimit -v") && run.stderr.contains("fewer --workers"),
                "\(run.stderr)")
    }
}

/// Issue 15 items that main had fixed already, pinned by tests.
@Suite struct FixedOnMainTests {
    /// `pbtwave worker --store sqlite:…` joins a run whose store is SQLite
    /// (it was refused: "no pbt-run.txt"), and the worker hint shell-quotes
    /// the run name.
    @Test func aWorkerJoinsAnSQLiteRunAndTheHintIsQuoted() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let store = "sqlite:" + dir.url.appendingPathComponent("store.sqlite").path
        let create = try runPBTWave(RunDirectorySafetyTests.toyRun(runDir, ["--store", store, "--run", "my run", "--local-workers", "0"]))
        #expect(create.status == 0, "\(create.stderr)")
        #expect(create.stdout.contains("--run 'my run'"), "\(create.stdout)")
        let worker = try runPBTWave(["worker", "--store", store, "--run", "my run", "--run-dir", runDir, "--workers", "2", "--progress", "none"])
        #expect(worker.status == 0 && worker.stdout.contains("run complete"), "\(worker.stderr)")
    }

    /// `lineage` or `schedule export` on the directory of a run whose store
    /// is elsewhere says whose it is and what to give (it said to start a
    /// new run there), and names times as dates.
    @Test func aRunDirectoryOfAnotherStoreSaysWhoseItIs() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let store = "sqlite:" + dir.url.appendingPathComponent("store.sqlite").path
        #expect(try runPBTWave(RunDirectorySafetyTests.toyRun(runDir, ["--store", store, "--run", "elsewhere", "--local-workers", "0"])).status == 0)
        for command in [["lineage", runDir], ["schedule", "export", runDir]] {
            let r = try runPBTWave(command)
            #expect(r.status != 0 && r.stderr.contains("holds the checkpoints of run 'elsewhere' created 20")
                    && r.stderr.contains("give that store with --store and --run elsewhere"), "\(command): \(r.stderr)")
        }
        let marker = try String(contentsOfFile: runDir + "/pbt-run.txt", encoding: .utf8)
        #expect(marker.contains("\ndate 20") && marker.hasSuffix(" UTC\n"), "\(marker)")
    }

    /// A worker given a mistyped (or unmounted) RUN_DIR is refused with
    /// nothing created there; leases too short to hold and an empty run
    /// name are refused before anything runs.
    @Test func aRefusedWorkerCreatesNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let store = "sqlite:" + dir.url.appendingPathComponent("store.sqlite").path
        #expect(try runPBTWave(RunDirectorySafetyTests.toyRun(runDir, ["--store", store, "--run", "r", "--local-workers", "0"])).status == 0)
        let typo = dir.url.appendingPathComponent("rnu/sub").path
        let refused = try runPBTWave(["worker", "--store", store, "--run", "r", "--run-dir", typo, "--progress", "none"])
        #expect(refused.status != 0 && !refused.stderr.isEmpty, "\(refused.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("rnu").path), "nothing created at the typo")
        let lease = try runPBTWave(["worker", "--store", store, "--run", "r", "--run-dir", runDir, "--lease-seconds", "0.01"])
        #expect(lease.status != 0 && lease.stderr.contains("--lease-seconds must be a finite number, at least 1 (got 0.01)"), "\(lease.stderr)")
        for command in [["worker", "--store", store, "--run", "r", "--run-dir", runDir], RunDirectorySafetyTests.toyRun(runDir, [])] {
            let limit = try runPBTWave(command + ["--max-failures-in-a-row", "-1"])
            #expect(limit.status != 0 && limit.stderr.contains("--max-failures-in-a-row must be 0 (never stop) or more"), "\(limit.stderr)")
        }
        let unnamed = try runPBTWave(RunDirectorySafetyTests.toyRun(dir.url.appendingPathComponent("x").path, ["--store", store, "--run", ""]))
        #expect(unnamed.status != 0 && unnamed.stderr.contains("--run: a run needs a name"), "\(unnamed.stderr)")
    }

    /// Found by a helper: a second `experiment` on a folder started while
    /// the first replayed ran the same replays and wrote the same report;
    /// the folder is now held for the whole command.
    @Test(.timeLimit(.minutes(3))) func oneExperimentAtATimeOnAFolder() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let folder = dir.url.appendingPathComponent("exp").path
        let arguments = ["experiment", "--preset", "smoke", "--corpus", corpusDirectory(), "--run-dir", folder, "--progress", "none"]
        let first = Process()
        first.executableURL = try pbtwaveExecutable()
        first.arguments = arguments
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        // Until its first run has a store: the folder is held by then.
        #expect(eventually(within: 60) {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains { $0.hasSuffix("-seed0") }
        })
        let second = try runPBTWave(arguments)
        let stillRunning = first.isRunning
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(stillRunning, "the first experiment still ran when the second started")
        #expect(second.status != 0 && second.stderr.contains("\(folder) is in use by another pbtwave process"), "\(second.stderr)")
        let again = try runPBTWave(arguments)
        #expect(again.status == 0, "after the first, a second runs (resumes): \(again.stderr)")
    }
}
