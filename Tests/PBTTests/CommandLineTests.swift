import Foundation
import Testing

@testable import PBT
import PBTExamples

/// `pbtwave pbt`, `schedule export` and `lineage` as a user runs them: the
/// built executable in a child process.
@Suite struct CommandLineTests {
    static let quick = ["--model", "toy", "--workers", "2", "--population", "4", "--trial-steps", "20", "--generations", "5",
                        "--progress", "plain"]

    @Test func aRunExportsItsBestScheduleAndResumesAsANoOp() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let first = try runPBTWave(["pbt", "--run-dir", runDir] + Self.quick)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("pbt: starting"))
        #expect(first.stdout.contains("run complete: 20/20 trials"))
        #expect(first.stdout.contains("best trial of the final population: #"))
        #expect(first.stderr.contains("pbt: gen"), "plain progress lines on a pipe")
        #expect(!first.stderr.contains("\u{1B}["), "no terminal control codes when not on a terminal")

        let csv = try LearningRateSchedule.read(from: URL(fileURLWithPath: runDir + "/schedule.csv"))
        let json = try LearningRateSchedule.read(from: URL(fileURLWithPath: runDir + "/schedule.json"))
        #expect(csv == json)
        #expect(csv.points.first?.step == 0)

        let exported = try runPBTWave(["schedule", "export", runDir])
        #expect(exported.status == 0)
        #expect(try LearningRateSchedule(HyperparameterSchedule(csvText: exported.stdout)) == csv)
        // `--output -` is standard output, as for most tools (it had written a file named "-").
        let dash = try runPBTWave(["schedule", "export", runDir, "--output", "-"], currentDirectory: dir.url)
        #expect(dash.status == 0, "\(dash.stderr)")
        #expect(dash.stdout == exported.stdout)
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("-").path))
        // Nor over the run's own files, --replace or not (found by a helper: a checkpoint and the marker were overwritten).
        let checkpoint = try #require(FileManager.default.subpathsOfDirectory(atPath: runDir + "/checkpoints").first { $0.hasSuffix(".ckpt") })
        for (target, what) in [(runDir + "/pbt-run.txt", "marker (pbt-run.txt)"), (runDir + "/checkpoints/" + checkpoint, "checkpoints"),
                               (runDir + "/lock", "lock file")] {
            let before = FileManager.default.contents(atPath: target)
            let over = try runPBTWave(["schedule", "export", runDir, "--output", target, "--replace"])
            #expect(over.status != 0 && over.stderr.contains("would overwrite the \(what) of the run in \(runDir)"), "\(over.stderr)")
            #expect(FileManager.default.contents(atPath: target) == before)
        }
        let out = dir.url.appendingPathComponent("s.json").path
        #expect(try runPBTWave(["schedule", "export", runDir, "--format", "json", "--output", out, "--trial", "1"]).status == 0)
        #expect(try LearningRateSchedule.read(from: URL(fileURLWithPath: out)).points.count == 1, "trial 1 is a generation-0 trial")

        let lineage = try runPBTWave(["lineage", runDir])
        #expect(lineage.status == 0)
        #expect(lineage.stdout.split(separator: "\n").first?.contains("gen 0") == true)
        let tree = try runPBTWave(["lineage", runDir, "--tree"])
        #expect(tree.stdout.split(separator: "\n").count == 20)

        let again = try runPBTWave(["pbt", "--run-dir", runDir, "--resume"] + Self.quick)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("pbt: resuming"))
        #expect(again.stdout.contains("0 in this session"))
    }

    /// Found by a helper: `lineage --settings` printed a learning-rate run's
    /// space as `--space FILE holding …`, which has no mutation range, so a
    /// resume given what it printed was refused.
    @Test func settingsGiveTheLearningRatesFlagsWithTheirMutationRange() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let run = ["pbt", "--run-dir", runDir, "--model", "toy", "--workers", "2", "--population", "2", "--trial-steps", "5", "--generations", "2",
                   "--progress", "none"]
        #expect(try runPBTWave(run + ["--lr-min", "1e-3", "--lr-max", "1e-2", "--lr-mutate-max", "1"]).status == 0)
        let settings = try runPBTWave(["lineage", runDir, "--settings"])
        let line = try #require(settings.stdout.split(separator: "\n").first { $0.hasPrefix("--lr-min") }, "\(settings.stdout)")
        #expect(line == "--lr-min 0.001 --lr-max 0.01 --lr-mutate-min 0.001 --lr-mutate-max 1.0")
        let resumed = try runPBTWave(run + line.split(separator: " ").map(String.init))
        #expect(resumed.status == 0 && resumed.stdout.contains("0 in this session"), "\(resumed.stderr)")
    }

    /// `--store sqlite:PATH` keeps the trials outside the run directory.
    /// Standard error into a pipe whose reader went away (`2>&1 | head`):
    /// the run goes on to its end (it died of SIGILL: FileHandle's write
    /// traps on EPIPE, and SIGPIPE is ignored), with progress lines and a
    /// summary on the way.
    /// Found by a helper: healthy runs printed "given up: another worker
    /// took it over" (7–9 times in 3,000 trials at a 1-s lease): a heartbeat
    /// renewing a trial its worker had just reported saw the renewal fail.
    @Test func aHealthyRunGivesUpNoTrial() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let run = try runPBTWave(["pbt", "--model", "toy", "--run-dir", dir.url.appendingPathComponent("run").path, "--workers", "5",
                                  "--population", "100", "--trial-steps", "1", "--generations", "30", "--lease-seconds", "1", "--progress", "none"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!run.stderr.contains("given up"), "\(run.stderr)")
    }

    @Test func aClosedStandardErrorDoesNotStopTheRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let process = Process()
        process.executableURL = try pbtwaveExecutable()
        process.arguments = ["pbt", "--run-dir", dir.url.appendingPathComponent("run").path] + Self.quick
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try errors.fileHandleForReading.close()
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0,
                "\(process.terminationReason == .exit ? "exit" : "signal") \(process.terminationStatus)")
        #expect(FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("run/schedule.json").path))
    }

    @Test func theSQLiteStoreCanLiveElsewhere() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let storePath = dir.url.appendingPathComponent("trials.sqlite").path
        let r = try runPBTWave(["pbt", "--run-dir", runDir, "--store", "sqlite:" + storePath, "--run", "mine"] + Self.quick)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("run complete: 20/20 trials"))
        #expect(FileManager.default.fileExists(atPath: storePath))
        #expect(!FileManager.default.fileExists(atPath: runDir + "/" + RunDirectory.storeFileName))
        let lineage = try runPBTWave(["lineage", "--store", "sqlite:" + storePath, "--run", "mine", "--tree"])
        #expect(lineage.stdout.split(separator: "\n").count == 20)
        let bad = try runPBTWave(["pbt", "--run-dir", runDir, "--store", "mysql://x"] + Self.quick)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--store"))
    }

    @Test(arguments: [
        (["--workers", "0"], "--workers: workers must be at least 1"),
        (["--workers", "-1"], "--workers: workers must be at least 1 (got -1)"),
        (["--generations", "-2"], "--generations: generations must be at least 1 (got -2)"),
        (["--trial-steps", "-5"], "--trial-steps: trial steps must be at least 1 (got -5)"),
        (["--trial-timeout", "-1", "--", "python3", "x.py"], "--trial-timeout must be a number of seconds above 0 and at most 1e9, about 32 years (got -1.0)"),
        (["--workers", "5", "--population", "3"], "--population: population (3) must be at least the number of workers (5)"),
        (["--trial-steps", "0"], "--trial-steps"),
        (["--total-steps", "100", "--trial-steps", "50", "--workers", "5"], "--total-steps: total steps (100) must cover at least one generation"),
        (["--total-steps", "1000", "--generations", "3"], "either --total-steps or --generations, not both"),
        (["--generations", "0"], "--generations"),
        (["--lr-min", "0"], "--lr-min/--lr-max: hyperparameter 'lr' is log-scaled, so its lower bound must be positive"),
        (["--lr-min", "nan"], "--lr-min must be a finite number (got nan)"),
        (["--lr-min", "0.1", "--lr-max", "0.01"], "--lr-min/--lr-max: hyperparameter 'lr': bounds must be finite with min ≤ max"),
        (["--selection", "truncation", "--truncation-fraction", "0.7"], "--truncation-fraction: truncation fraction must be in (0, 0.5]"),
        (["--truncation-fraction", "0.2"], "--truncation-fraction applies only to --selection truncation"),
        (["--selection", "independent", "--explore", "pb2"], "--explore pb2 has nothing to do under --selection independent"),
        (["--resample-probability", "2"], "--resample-probability: resample probability must be in [0, 1]"),
        (["--opponent-generations", "3"], "--opponent-generations"),
        (["--selection", "best"], "--selection"),
        (["--model", "resnet"], "--model"),
        (["--workers", "many"], "--workers"),
        (["--exec"], "--exec needs the training program after `--`"),
        (["--model", "exec"], "--exec needs the training program after `--`"),
        (["--model", "toy", "--", "python3", "x.py"], "is the model itself; drop --model toy"),
        (["--model", "toy", "--trial-timeout", "5"], "--trial-timeout applies only to a training program"),
        (["--preset", "tiny", "--", "python3", "x.py"], "--preset applies only to --model wavenet, not to a training program: drop it"),
        (["--model", "toy", "--batch", "2", "--corpus", "c"], "--batch, --corpus apply only to --model wavenet, not to --model toy: drop them"),
        (["--trial-timeout", "0", "--", "python3", "x.py"], "--trial-timeout must be a number of seconds above 0"),
        (["--trial-timeout", "1e300", "--", "python3", "x.py"], "--trial-timeout must be a number of seconds above 0 and at most 1e9"),
        (["--space", "s.json", "--lr-min", "1e-3", "--", "python3", "x.py"], "give --space or --lr-min/--lr-max, not both"),
        (["--space", "/nonexistent/s.json", "--", "python3", "x.py"], "--space /nonexistent/s.json: cannot read the search space file"),
    ])
    func badFlagsAreRejectedBeforeAnythingRuns(flags: [String], message: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let r = try runPBTWave(["pbt", "--run-dir", runDir] + flags)
        #expect(r.status == 64, "usage errors exit with EX_USAGE")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: runDir), "nothing was created")
    }

    /// A finished run re-run after its best checkpoint was deleted says so,
    /// instead of naming a file that is not there.
    @Test func aDeletedBestCheckpointIsSaid() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let first = try runPBTWave(["pbt", "--run-dir", runDir] + Self.quick)
        let path = try #require(first.stdout.firstMatch(of: /checkpoint: (\S+)\n/).map { String($0.1) }, "\(first.stdout)")
        try FileManager.default.removeItem(atPath: path)
        let again = try runPBTWave(["pbt", "--run-dir", runDir] + Self.quick)
        #expect(again.stdout.contains("checkpoint: \(path) (deleted since: not on disk)"), "\(again.stdout)\(again.stderr)")
    }

    @Test func aTotalThatIsNotWholeTrialsIsNoted() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let r = try runPBTWave(["pbt", "--run-dir", dir.url.appendingPathComponent("run").path, "--model", "toy", "--workers", "2",
                                "--trial-steps", "100", "--total-steps", "1234", "--progress", "none"])
        // Notes go to standard error: the results on standard output stay clean.
        #expect(r.status == 0 && r.stderr.contains("note: --total-steps 1234 is 12 whole trials of 100 steps (1200 steps); the last 34 are not trained"),
                "\(r.stdout)\(r.stderr)")
        #expect(!r.stdout.contains("note:"), "\(r.stdout)")
        // Found by a user: a budget of a generation and a half, and more local workers than W, went without a word.
        let half = try runPBTWave(["pbt", "--run-dir", dir.url.appendingPathComponent("half").path, "--model", "toy", "--workers", "2",
                                   "--population", "4", "--trial-steps", "5", "--total-steps", "30", "--local-workers", "3", "--progress", "none"])
        #expect(half.status == 0 && half.stderr.contains("note: --total-steps 30 buys 6 trials, 1 whole generation of 4 and 2 more: "
                                                          + "the final population mixes two generations (--total-steps 20 or 40 gives whole ones)"),
                "\(half.stderr)")
        #expect(half.stderr.contains("note: --local-workers 3 runs more trials at once than the run's --workers 2"), "\(half.stderr)")
    }

    /// `lineage` and `schedule export` read a run this user cannot write
    /// (a colleague's, a read-only mount): they failed asking SQLite for its
    /// WAL journal. Run as `nobody` when the tests run as root (who may
    /// write anywhere), else with the folder made read-only.
    @Test func aRunThatCannotBeWrittenIsStillRead() throws {
        let dir = try TemporaryDirectory()
        defer {
            _ = chmod(dir.url.appendingPathComponent("run").path, 0o755)
            dir.cleanup()
        }
        let runDir = dir.url.appendingPathComponent("run").path
        #expect(try runPBTWave(["pbt", "--run-dir", runDir] + Self.quick).status == 0)
        let expected = try runPBTWave(["lineage", runDir, "--tree"]).stdout
        #expect(chmod(dir.url.path, 0o755) == 0 && chmod(runDir, 0o555) == 0 && chmod(runDir + "/pbt.sqlite", 0o444) == 0)
        let asNobody = getuid() == 0
        // A copy nobody may run (the build folder may be in root's home).
        let copy = dir.url.appendingPathComponent("pbtwave").path
        if asNobody {
            try FileManager.default.copyItem(atPath: try pbtwaveExecutable().path, toPath: copy)
            #expect(chmod(copy, 0o755) == 0)
        }
        func read(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            guard asNobody else { return try runPBTWave(arguments) }
            return try runPBTWave(["--reuid=nobody", "--regid=nogroup", "--clear-groups", copy] + arguments,
                                  executable: URL(fileURLWithPath: "/usr/bin/setpriv"), currentDirectory: URL(fileURLWithPath: "/"))
        }
        let tree = try read(["lineage", runDir, "--tree"])
        #expect(tree.status == 0 && tree.stdout == expected, "\(tree.stderr)")
        let schedule = try read(["schedule", "export", runDir])
        #expect(schedule.status == 0 && schedule.stdout.hasPrefix("step,lr\n"), "\(schedule.stderr)")
    }

    /// A complete run given a larger budget goes on to it (found by
    /// users: it was refused as other settings), says so, and re-exports
    /// its schedule; a budget given with another setting is still refused.
    @Test func aCompleteRunGoesOnWithALargerBudget() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let first = try runPBTWave(["pbt", "--run-dir", runDir] + Self.quick)
        #expect(first.status == 0 && first.stdout.contains("run complete: 20/20 trials"), "\(first.stdout)")
        let raised = try runPBTWave(["pbt", "--run-dir", runDir, "--progress", "none", "--model", "toy", "--generations", "7"])
        #expect(raised.status == 0, "\(raised.stderr)")
        #expect(raised.stdout.contains("its budget raised from --generations 5 (20 trials) to --generations 7 (28 trials), 4 new trials queued"),
                "\(raised.stdout)")
        #expect(raised.stdout.contains("run complete: 28/28 trials, 8 in this session"), "\(raised.stdout)")
        #expect(raised.stdout.contains("best trial of the final population: #") && raised.stdout.contains("generation 6"), "\(raised.stdout)")
        let schedule = try LearningRateSchedule.read(from: URL(fileURLWithPath: runDir + "/schedule.csv"))
        #expect(schedule.points.count >= 1 && schedule.points.allSatisfy { $0.step < 7 * 20 })
        let settings = try runPBTWave(["lineage", runDir, "--settings"])
        #expect(settings.stdout.contains("--generations 7"), "\(settings.stdout)")
        let again = try runPBTWave(["pbt", "--run-dir", runDir, "--progress", "none", "--model", "toy"])
        #expect(again.status == 0 && again.stdout.contains("run complete: 28/28 trials, 0 in this session"), "\(again.stdout)")
        // The same trials in another form is the run's own budget (found by a helper: refused, with a hint that it was lower).
        let same = try runPBTWave(["pbt", "--run-dir", runDir, "--progress", "none", "--total-steps", "\(28 * 20)"])
        #expect(same.status == 0 && same.stdout.contains("--total-steps 560 buys the run's 28 trials, as its --generations 7 does"),
                "\(same.stdout)\(same.stderr)")
        #expect(same.stdout.contains("run complete: 28/28 trials, 0 in this session"), "--model left out: the run's (toy)")
        // An unfinished run is not raised: it says how to go on.
        let made = dir.url.appendingPathComponent("made").path
        #expect(try runPBTWave(["pbt", "--run-dir", made, "--local-workers", "0"] + Self.quick).status == 0)
        let early = try runPBTWave(["pbt", "--run-dir", made, "--progress", "none", "--generations", "9"])
        #expect(early.status == 1 && early.stderr.contains("holds a run that is not complete (0 of its 20 trials done)")
                && early.stderr.contains("resume it to its end with its own --generations 5 first (the same command without --generations), "
                                         + "then give --generations 9 again"), "\(early.stderr)")
        let mixed = try runPBTWave(["pbt", "--run-dir", runDir, "--progress", "none", "--model", "toy", "--generations", "9", "--seed", "4"])
        #expect(mixed.status == 1 && mixed.stderr.contains("--seed: the run has 0, this command has 4"), "\(mixed.stderr)")
        #expect(try runPBTWave(["lineage", runDir, "--tree"]).stdout.split(separator: "\n").count == 28, "the refused command made nothing")
    }

    @Test func resumingWithOtherSettingsNamesTheFlags() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        #expect(try runPBTWave(["pbt", "--run-dir", runDir] + Self.quick).status == 0)
        let r = try runPBTWave(["pbt", "--run-dir", runDir, "--seed", "3", "--selection", "truncation"] + Self.quick)
        #expect(r.status == 1)
        #expect(r.stderr.contains("holds a run created with other settings"))
        #expect(r.stderr.contains("--selection/--truncation-fraction: the run has tournament, this command has truncation(0.25)"))
        #expect(r.stderr.contains("--seed: the run has 0, this command has 3"))
        #expect(r.stderr.contains("choose a new --run-dir"))
        // Flags not given take the run's values (found by users: every flag had to be given again,
        // and the defaults were refused as other settings; with one flag given, the others still were).
        let partial = try runPBTWave(["pbt", "--run-dir", runDir, "--progress", "none", "--model", "toy", "--generations", "4", "--seed", "0"])
        #expect(partial.status == 1 && partial.stderr.contains("--total-steps/--generations: the run has --generations 5, this command has --generations 4"),
                "\(partial.stderr)")
        #expect(partial.stderr.contains("(a budget is never lowered: the run's buys 20 trials, this command's 16)"), "\(partial.stderr)")
        #expect(!partial.stderr.contains("note: resuming with"), "no note before a refusal: \(partial.stderr)")
        // --selection given as the run has it: its opponent generations are the run's too (a user was told of a flag not given).
        let one = dir.url.appendingPathComponent("one").path
        #expect(try runPBTWave(["pbt", "--run-dir", one, "--opponent-generations", "1"] + Self.quick).status == 0)
        let same = try runPBTWave(["pbt", "--run-dir", one, "--progress", "none", "--model", "toy", "--selection", "tournament"])
        #expect(same.status == 0 && same.stderr.contains("for the flags not given: ") && same.stderr.contains("--opponent-generations 1")
                && !same.stderr.contains("this command has"), "\(same.stderr)")
        for flag in ["--workers", "--population", "--trial-steps", "--seed"] {
            #expect(!partial.stderr.contains("  \(flag):"), "only what was given and differs: \(partial.stderr)")
        }
        // A field worked out from a flag given is said so (a helper was told of a --population never given).
        let more = try runPBTWave(["pbt", "--run-dir", runDir, "--progress", "none", "--model", "toy", "--workers", "3"])
        #expect(more.status == 1 && more.stderr.contains("--population: the run has 4, this command has 3 (not given: from --workers 3: "
                                                         + "a population is at least its workers)"), "\(more.stderr)")
        let bare = try runPBTWave(["pbt", "--run-dir", runDir, "--progress", "none", "--model", "toy", "--trial-steps", "20"])
        #expect(bare.status == 0 && bare.stderr.contains("note: resuming with the run's own settings for the flags not given: --population 4, --workers 2, --generations 5"),
                "\(bare.stderr)")
        #expect(bare.stdout.contains("run complete"), "\(bare.stdout)")
        // Without a run, the defaults; a population below them is refused, naming the default.
        let below = try runPBTWave(["pbt", "--run-dir", dir.url.appendingPathComponent("new").path, "--model", "toy", "--population", "3",
                                    "--local-workers", "2"])
        #expect(below.status == 1 && below.stderr.contains("(W is --workers, default 5; --local-workers is this machine's share)"), "\(below.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("new").path), "nothing was created")
    }

    /// Found by a user: exporting a run that is still going printed a
    /// schedule with no word that it was provisional.
    @Test func exportingARunThatIsNotCompleteSaysSo() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let directory = try RunDirectory(dir.url, create: true, lock: false)
        let settings = testSettings(population: 2, workers: 2, budget: .generations(3))
        let c = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                        configuration: RunConfiguration(settings: settings, model: "toy"), runDirectory: dir.url).coordinator
        func runOne() throws {
            guard case .trial(let t) = try c.claim(workerID: "w") else { throw TestFailure("nothing to claim") }
            try c.report(t, result: .success(try ToyQuadraticRunner().run(t.spec, parent: t.parent, output: t.output)))
        }
        try runOne()
        // A trial held by a worker is running, not waiting (a helper read "2 waiting" beside a tree that showed them running).
        guard case .trial = try c.claim(workerID: "w") else { throw TestFailure("nothing to claim") }
        let held = try runPBTWave(["lineage", dir.url.path])
        #expect(held.stderr.contains("note: the run is not complete (1 of 6 trials ran, 1 running, 1 queued)"), "\(held.stderr)")
        _ = try c.store.requeueRunning(runID: c.run.id)
        let partial = try runPBTWave(["schedule", "export", dir.url.path])
        #expect(partial.status == 0 && partial.stdout.hasPrefix("step,lr\n"), "\(partial.stderr)")
        #expect(partial.stderr.contains("note: the run is not complete (1 of 6 trials ran, 2 queued)"), "\(partial.stderr)")
        // lineage says it too (a stopped run's best so far looked like its result).
        let lineage = try runPBTWave(["lineage", dir.url.path])
        #expect(lineage.status == 0 && lineage.stderr.contains("note: the run is not complete (1 of 6 trials ran, 2 queued): this is trial "),
                "\(lineage.stderr)")
        // An existing --output is overwritten only with --replace, and never the run's own trial store.
        let out = dir.url.appendingPathComponent("mine.csv").path
        try Data("precious\n".utf8).write(to: URL(fileURLWithPath: out))
        let refused = try runPBTWave(["schedule", "export", dir.url.path, "--output", out])
        #expect(refused.status == 1 && refused.stderr.contains("--output \(out) exists: give --replace to overwrite it"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "precious\n")
        #expect(try runPBTWave(["schedule", "export", dir.url.path, "--output", out, "--replace"]).status == 0)
        #expect(try String(contentsOfFile: out, encoding: .utf8).hasPrefix("step,lr\n"))
        let store = dir.url.appendingPathComponent(RunDirectory.storeFileName).path
        // A store given as a path alone is an SQLite file (it was "invalid").
        let byPath = try runPBTWave(["schedule", "export", "--store", store])
        #expect(byPath.status == 0 && byPath.stdout.hasPrefix("step,lr\n"), "\(byPath.stderr)")
        let overStore = try runPBTWave(["schedule", "export", dir.url.path, "--output", store, "--replace"])
        #expect(overStore.status == 1 && overStore.stderr.contains("the run's trial store and --output name the same file"), "\(overStore.stderr)")
        while try c.store.hasPendingTrial(runID: c.run.id, before: Int.max) { try runOne() }
        let done = try runPBTWave(["schedule", "export", dir.url.path])
        #expect(done.status == 0 && done.stderr.isEmpty, "\(done.stderr)")
        let whole = try runPBTWave(["lineage", dir.url.path])
        #expect(whole.status == 0 && whole.stderr.isEmpty, "\(whole.stderr)")
    }

    @Test func missingOrBrokenRunDirectoriesGiveClearErrors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let missing = dir.url.appendingPathComponent("missing").path
        let r1 = try runPBTWave(["pbt", "--run-dir", missing, "--resume"] + Self.quick)
        #expect(r1.status == 1)
        #expect(r1.stderr.contains("holds no PBT run to resume"))
        #expect(!FileManager.default.fileExists(atPath: missing))
        // With the default model (no program, no --model): the missing run, not a missing corpus.
        let bare = try runPBTWave(["pbt", "--run-dir", missing, "--resume"], environment: ["PBTWAVE_CORPUS": missing + "/corpus"])
        #expect(bare.status == 1 && bare.stderr.contains("holds no PBT run to resume") && !bare.stderr.contains("corpus"), "\(bare.stderr)")

        // --resume of a run the store does not hold names the store and the runs it does.
        let store = dir.url.appendingPathComponent("s.sqlite").path
        #expect(try runPBTWave(["pbt", "--run-dir", dir.url.appendingPathComponent("first").path, "--store", "sqlite:" + store] + Self.quick).status == 0)
        let other = try runPBTWave(["pbt", "--run-dir", dir.url.appendingPathComponent("second").path, "--store", "sqlite:" + store,
                                    "--run", "other", "--resume"] + Self.quick)
        #expect(other.status == 1 && other.stderr.contains("--resume: the store sqlite:\(store) holds no run named 'other' to resume (it holds: pbt)"),
                "\(other.stderr)")

        let r2 = try runPBTWave(["schedule", "export", missing])
        #expect(r2.status == 1)
        #expect(r2.stderr.contains("does not exist"))
        let r3 = try runPBTWave(["lineage", dir.url.path])
        #expect(r3.status == 1)
        #expect(r3.stderr.contains("holds no PBT run"))
        // A store file with no run, or without the run asked for, says so (not "no pbt.sqlite").
        let empty = dir.url.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        _ = try SQLiteTrialStore(path: empty.appendingPathComponent(RunDirectory.storeFileName).path)
        let noRun = try runPBTWave(["schedule", "export", empty.path])
        #expect(noRun.status == 1)
        #expect(noRun.stderr.contains("holds no run named 'pbt' (it holds no run at all"), "\(noRun.stderr)")
        let toy = dir.url.appendingPathComponent("toy").path
        #expect(try runPBTWave(["pbt", "--run-dir", toy] + Self.quick).status == 0)
        let otherRun = try runPBTWave(["lineage", toy, "--run", "other"])
        #expect(otherRun.status == 1)
        #expect(otherRun.stderr.contains("holds no run named 'other'; it holds 'pbt': give one with --run"), "\(otherRun.stderr)")

        let corrupt = dir.url.appendingPathComponent("corrupt")
        try FileManager.default.createDirectory(at: corrupt, withIntermediateDirectories: true)
        try Data(repeating: 0x5A, count: 4096).write(to: corrupt.appendingPathComponent(RunDirectory.storeFileName))
        let r4 = try runPBTWave(["pbt", "--run-dir", corrupt.path] + Self.quick)
        #expect(r4.status == 1)
        #expect(r4.stderr.contains("is not a PBTWave trial store"), "\(r4.stderr)")
        let r5 = try runPBTWave(["schedule", "export", corrupt.path])
        #expect(r5.stderr.contains("is not a PBTWave trial store"))

        let fresh = dir.url.appendingPathComponent("fresh").path
        #expect(try runPBTWave(["pbt", "--run-dir", fresh] + Self.quick).status == 0)
        let r6 = try runPBTWave(["schedule", "export", fresh, "--trial", "999"])
        #expect(r6.status == 1)
        #expect(r6.stderr.contains("--trial 999: no such trial"))
        // lineage as schedule export: the ids, a negative id read as a number, and a run directory beside --store refused (found by a user).
        for id in ["999", "-1"] {
            let r7 = try runPBTWave(["lineage", fresh, "--trial", id])
            #expect(r7.status == 1 && r7.stderr.contains("--trial \(id): no such trial in \(fresh) (ids run from 1 to "), "\(r7.stderr)")
        }
        // A corpus that is not there, named by PBTWAVE_CORPUS with a space in it: the variable is named, the commands paste as written.
        let absent = dir.url.appendingPathComponent("no corpus").path
        let noCorpus = try runPBTWave(["train", "--steps", "1"], environment: ["PBTWAVE_CORPUS": absent])
        #expect(noCorpus.status == 1 && noCorpus.stderr.contains("note: the corpus folder \(absent) is what $PBTWAVE_CORPUS names")
                && noCorpus.stderr.contains("bash datasets/build-corpus.sh '\(absent)'"), "\(noCorpus.stderr)")
        let both = try runPBTWave(["lineage", fresh, "--store", "sqlite:" + fresh + "/pbt.sqlite"])
        #expect(both.status != 0 && both.stderr.contains("give a run directory or --store, not both"), "\(both.stderr)")
    }

    @Test func benchReportsARate() throws {
        let r = try runPBTWave(["bench", "pbt-overhead", "--workers", "2", "--trials", "200"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("completions/s"))
        #expect(r.stdout.contains("200 trials"))
    }
}
