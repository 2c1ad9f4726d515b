import ArgumentParser
import Foundation
@testable import PBTWaveCommands
import Testing
import TestSupport
import PBTWaveModel
import PBTSchedules

/// Every bad input a user can give the training commands gets an error that
/// says what is wrong — at parse time where possible, else when run.
@Suite struct CommandErrorTests {
    /// The message ArgumentParser would print for `arguments`, or nil if they parse.
    func parseError(_ arguments: [String]) -> String? { parseFailure(arguments)?.message }

    /// That message and the exit status it comes with, or nil if they parse.
    func parseFailure(_ arguments: [String]) -> (message: String, exit: ExitCode)? {
        do {
            _ = try PBTWave.parseAsRoot(arguments)
            return nil
        } catch {
            return (PBTWave.message(for: error), PBTWave.exitCode(for: error))
        }
    }

    init() {}

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("errors-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The error `run()` throws for `arguments` (which must parse).
    func runError(_ arguments: [String]) throws -> String? {
        var command = try PBTWave.parseAsRoot(arguments)
        do {
            try command.run()
            return nil
        } catch {
            return PBTWave.userMessage(for: error)
        }
    }

    static let parseCases: [([String], String)] = [
        (["train", "--lr", "0"], "--lr must be a positive number"),
        (["train", "--lr", "1e-50"], "--lr 1e-50 is below the smallest fp32 number"),
        (["train", "--lr", "1e300"], "--lr 1e+300 is above the largest fp32 number"),
        (["lineage", "r", "--tree", "--trial", "3"], "give one of --trial, --tree and --settings, not --tree and --trial"),
        (["experiment", "--methods", "pbt-5x5,,fixed-lr"], "--methods 'pbt-5x5,,fixed-lr' has an empty item"),
        // A negative number is a value, not a flag: the real message, not "Missing value".
        (["train", "--steps", "-1"], "--steps must be at least 1"),
        (["train", "--eval-every", "-1"], "--checkpoint-every and --eval-every must be 0 or more"),
        (["train", "--checkpoint-every", "10"], "--checkpoint-every needs --checkpoint FILE to write to"),
        (["generate", "x.ckpt", "--seconds", "-1"], "--seconds must be in (0, 3600]"),
        (["generate", "x.ckpt", "--temperature", "-1"], "--temperature must be a finite fp32 number, 0 or more"),
        (["generate", "x.ckpt", "--temperature", "3.5e38"], "--temperature must be a finite fp32 number, 0 or more (got 3.5e+38)"),
        (["train", "--lr", "1e-3", "--lr-schedule", "s.csv"], "give --lr or --lr-schedule, not both"),
        (["train", "--resume"], "--resume needs --checkpoint"),
        (["train", "--preset", "huge"], "unknown --preset 'huge'"),
        (["train", "--steps", "0"], "--steps must be at least 1"),
        (["train", "--batch", "0"], "--batch and --window must be at least 1"),
        (["train", "--eval-windows", "0"], "--eval-windows and --eval-targets must be at least 1"),
        (["generate", "x.ckpt", "--seconds", "0"], "--seconds must be in (0, 3600]"),
        (["generate", "x.ckpt", "--temperature=-1"], "--temperature must be a finite fp32 number, 0 or more"),
        (["experiment", "--preset", "huge"], "unknown --preset 'huge'"),
        (["experiment", "--seeds", "0"], "--seeds must be at least 1"),
        (["experiment", "--methods", "pbt-5x5,pbt2"], "--methods: unknown method 'pbt2'; choose from pbt-5x5, pbt-5x20, random-search, fixed-lr, pb2-5x5, pbt-5x5-wide"),
        (["experiment", "--methods", "pb2-5x5,pb2-5x5"], "--methods: name each method once"),
        (["pbt", "--run-dir", "/tmp/x", "--lr-mutate-min", "1e-3"], "--lr-mutate-min must be at most --lr-min"),
        (["pbt", "--run-dir", "/tmp/x", "--lr-mutate-max", "1e-3"], "--lr-mutate-min must be at most --lr-min and --lr-mutate-max at least --lr-max"),
        (["pbt", "--run-dir", "/tmp/x", "--space", "s.json", "--lr-mutate-min", "1e-6"], "--lr-mutate-min/--lr-mutate-max apply to the learning rate alone"),
        (["pbt", "--run-dir", "/tmp/x", "--explore", "bandit"], "The value 'bandit' is invalid for '--explore <explore>'"),
        (["evaluate", "x.ckpt", "--all", "--threads", "0"], "--threads must be 1 to 256 (got 0)"),
        (["evaluate", "x.ckpt", "--all", "--eval-windows", "4"], "--all scores every validation sample; --eval-windows and --eval-targets choose fixed windows instead"),
        (["bench", "train", "--workers", "0"], "--workers must be at least 1"),
        (["worker", "--store", "postgres://alice:p@ss@127.0.0.1:5432/db", "--run", "r", "--run-dir", "/tmp/x"], "--store: the URL has more than one '@' before its host: percent-encode"),
        (["bench", "train", "--steps", "1", "--workers", "2"], "--steps times our model alone"),
        (["worker", "--store", "postgres://u@h/db", "--run", "r", "--run-dir", "/tmp/x", "--workers", "100000"], "--workers must be at most 4096 (got 100000)"),
        (["bench", "train", "--peer-python", "/usr/bin/python3"], "give both --peer-python and --peer-script"),
        (["bench", "train", "--preset", "huge"], "unknown --preset 'huge'; choose one of "),
        (["bench", "generate", "--preset", "huge"], "unknown --preset 'huge'; choose one of "),
        (["pbt", "--run-dir", "/tmp/x", "--model", "wavenet", "--preset", "huge"], "unknown --preset 'huge'"),
        (["bench", "train", "--precision", "int8"], "--precision: 'int8' is not a precision; use fp32 or bf16"),
        (["experiment", "--precision", "tf32"], "--precision: 'tf32' is not a precision; use fp32 or bf16"),
        (["train", "--precision", "fp16"], "--precision: 'fp16' is not a precision; use fp32 or bf16"),
        (["pbt", "--run-dir", "/tmp/x", "--model", "wavenet", "--precision", "half"], "--precision: 'half' is not a precision; use fp32 or bf16"),
    ]

    /// Each is a usage error: the message, then the exit status of one
    /// (64, EX_USAGE), as for a flag the parser itself refuses.
    @Test(arguments: parseCases)
    func badFlagsAreRejectedWithAMessage(_ c: ([String], String)) {
        let failure = parseFailure(c.0)
        #expect(failure?.message.contains(c.1) == true, "\(c.0): got \(failure?.message ?? "no error")")
        #expect(failure?.exit == .validationFailure, "\(c.0): exit \(failure.map { "\($0.exit.rawValue)" } ?? "none")")
    }

    /// A worker command printed with a masked password says where the password goes; one without a password needs no word.
    @Test func aMaskedPasswordIsKnown() {
        #expect(StoreLocation(argument: "postgres://alice:secret@db.example/runs")?.masksPassword == true)
        #expect(StoreLocation(argument: "postgres://alice@db.example/runs?password=secret")?.masksPassword == true)
        #expect(StoreLocation(argument: "postgres://alice@db.example/runs")?.masksPassword == false)
        #expect(StoreLocation(argument: "sqlite:/tmp/pbt.sqlite")?.masksPassword == false)
    }

    @Test func missingFilesAreNamed() throws {
        let missing = "/nonexistent-\(getpid())"
        let schedule = try runError(["train", "--lr-schedule", "\(missing)/s.csv", "--corpus", missing])
        #expect(schedule?.contains("\(missing)/s.csv") == true, "got \(schedule ?? "no error")")
        let corpus = try runError(["train", "--corpus", missing, "--steps", "1"])
        #expect(corpus?.contains(missing) == true && corpus?.contains("build-corpus.sh") == true, "got \(corpus ?? "no error")")
        let checkpoint = try runError(["evaluate", "\(missing)/a.ckpt", "--corpus", missing])
        #expect(checkpoint?.contains("no such file") == true, "got \(checkpoint ?? "no error")")
        let folder = try runError(["evaluate", NSTemporaryDirectory(), "--corpus", missing])
        #expect(folder?.contains("it is a folder, not a checkpoint file") == true, "got \(folder ?? "no error")")
        let generate = try runError(["generate", "\(missing)/a.ckpt"])
        #expect(generate?.contains("\(missing)/a.ckpt") == true, "got \(generate ?? "no error")")
    }

    /// Output paths that would destroy something are refused before any
    /// training: a named pipe or device (the write would replace it), one
    /// file for two outputs, or an output over the schedule read.
    @Test func outputsThatWouldDestroySomethingAreRefused() throws {
        let dir = NSTemporaryDirectory() + "pbtwave-outputs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let corpus = "/nonexistent-\(getpid())"  // never reached: the outputs are checked first
        let fifo = dir + "/" + "pipe"
        #expect(mkfifo(fifo, 0o644) == 0)
        let piped = try runError(["train", "--corpus", corpus, "--curve", fifo])
        #expect(piped?.contains("cannot write \(fifo): it is a named pipe, which writing a file there would replace") == true, "got \(piped ?? "no error")")
        var info = stat()
        #expect(stat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "the pipe is still a pipe")
        let device = try runError(["train", "--corpus", corpus, "--checkpoint", "/dev/null"])
        #expect(device?.contains("it is a device") == true, "got \(device ?? "no error")")
        let same = dir + "/" + "out"
        let twice = try runError(["train", "--corpus", corpus, "--checkpoint", same, "--curve", same])
        #expect(twice?.contains("--checkpoint and --curve name the same file") == true, "got \(twice ?? "no error")")
        let schedule = dir + "/" + "s.csv"
        try "step,lr\n0,0.001\n".write(toFile: schedule, atomically: true, encoding: .utf8)
        let link = dir + "/" + "link.csv"
        #expect(symlink(schedule, link) == 0)
        let over = try runError(["train", "--corpus", corpus, "--lr-schedule", schedule, "--curve", link])
        #expect(over?.contains("--curve and --lr-schedule name the same file") == true, "through a link too: got \(over ?? "no error")")
        let config = dir + "/" + "model.json"
        try "{}".write(toFile: config, atomically: true, encoding: .utf8)
        let overConfig = try runError(["train", "--corpus", corpus, "--model-config", config, "--checkpoint", config])
        #expect(overConfig?.contains("--checkpoint and --model-config name the same file") == true, "got \(overConfig ?? "no error")")
        #expect(try String(contentsOfFile: config, encoding: .utf8) == "{}", "the model's config is untouched")
    }

    /// `train` with a model config whose classes are not the corpus's 256
    /// mu-law levels stops with a message naming the field, not a crash.
    @Test func aModelConfigThatDoesNotMatchTheCorpusIsRefused() throws {
        let corpus = realCorpusDirectory()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("classes64-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"classes": 64, "residualChannels": 8, "dilationChannels": 8, "skipChannels": 8, "headChannels": 8, "kernelSize": 2, "inputKernelSize": 2, "dilations": [1, 2], "sampleRate": 16000}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let message = try runError(["train", "--model-config", path, "--corpus", corpus, "--steps", "1", "--window", "64", "--eval-targets", "64"])
        #expect(message?.contains("predicts 64 classes") == true && message?.contains("\"classes\": 256") == true,
                "got \(message ?? "no error")")
    }

    /// Found by a user: an experiment re-run in the same folder with fewer
    /// methods left the earlier one's runs, schedule and replay beside a
    /// report that knows nothing of them, without a word. They are named.
    @Test func anEarlierExperimentsFilesAreNamed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for run in ["pbt-5x5-seed0", "fixed-lr-seed0", "notes-seed1"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(run), withIntermediateDirectories: true)
        }
        for file in ["pbt-5x5-seed0/pbt.sqlite", "fixed-lr-seed0/pbt.sqlite", "schedule.csv", "replay.json"] {
            try Data().write(to: dir.appendingPathComponent(file))
        }
        let earlier = { (ran: Set<String>, learned: Bool) in ExperimentCommand.earlierExperimentsFiles(in: dir, ran: ran, learned: learned) }
        #expect(earlier(["fixed-lr-seed0"], false) == "pbt-5x5-seed0, schedule.csv, replay.json")
        #expect(earlier(["fixed-lr-seed0"], true) == "pbt-5x5-seed0", "a learned schedule rewrote them")
        #expect(earlier(["fixed-lr-seed0", "pbt-5x5-seed0"], true) == nil, "a folder without a run is not one")
        // Replays of seeds not run now (found by a helper: kept in replays/ without a word).
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("replays"), withIntermediateDirectories: true)
        for file in ["replays/pbt-5x5-seed0.json", "replays/pbt-5x5-seed2.json"] { try Data().write(to: dir.appendingPathComponent(file)) }
        #expect(earlier(["fixed-lr-seed0", "pbt-5x5-seed0"], true) == "replays/pbt-5x5-seed2.json")
    }

    /// A schedule's recipe gets the command line's bounds: a hand-edited
    /// file cannot allocate without bound (it crashed), train for 0 steps
    /// or for ever, or carry a field nothing reads.
    @Test func aScheduleRecipeIsCheckedLikeTheFlags() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = #""model":{"classes":256,"dilationChannels":8,"dilations":[1,2],"headChannels":8,"inputKernelSize":2,"kernelSize":2,"residualChannels":8,"sampleRate":16000,"skipChannels":8"#
        func schedule(end: Int = 5, windows: Int = 1, batch: Int = 1, extra: String = "", seed: Int = 0) -> String {
            #"{"end_step":\#(end),"hyperparameters":["lr"],"points":[{"lr":0.001,"step":0}],"recipe":{"evaluation":{"targets":128,"windows":\#(windows)},"#
                + model + extra + #"},"seed":\#(seed),"training":{"batch":\#(batch),"context":0,"window":256}}}"#
        }
        let cases: [(String, String)] = [
            (schedule(windows: 100_000_000), "evaluation windows must be 1 to 1048576 (got 100000000)"),
            (schedule(batch: 100_000), "batch must be at most 4096 (got 100000)"),
            (schedule(extra: #","foo":1"#), "the schedule's recipe has unknown field model.foo"),
            (schedule(end: 0), "end_step 0 cannot be trained to (1 to 10^9 steps); give --steps"),
            (schedule(end: Int.max), "cannot be trained to"),
            // Found by a user: this said "not valid JSON".
            (schedule(seed: -5), "a number does not fit its field"),
        ]
        // A field at its default value is no unknown field (found by a helper: "precision": "fp32" was refused).
        for precision in ["fp32", "bf16"] {
            let text = schedule().replacingOccurrences(of: #""context":0"#, with: #""context":0,"precision":"\#(precision)""#)
            let recipe = try TrainingRecipe(try HyperparameterSchedule(jsonText: text))
            #expect(recipe?.training.precision.rawValue == precision, "\(text)")
        }
        for (index, (text, expected)) in cases.enumerated() {
            let file = dir.appendingPathComponent("s\(index).json")
            try text.write(to: file, atomically: true, encoding: .utf8)
            let message = try runError(["train", "--lr-schedule", file.path, "--corpus", realCorpusDirectory()])
            #expect(message?.contains(expected) == true && message?.contains(file.path) == true, "\(expected): got \(message ?? "no error")")
            #expect(message?.components(separatedBy: "invalid WaveNet configuration").count ?? 0 <= 2, "said once: \(message ?? "")")
        }
    }

    /// `generate` holds each layer's past inputs: a small checkpoint whose
    /// dilations are huge is refused with the size, not a crash allocating
    /// gigabytes; and an output that cannot be written is refused before
    /// the generation, not after it.
    @Test func generateRefusesWhatItCannotHoldOrWrite() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = WaveNetConfig.tiny
        config.residualChannels = 64
        config.dilations = Array(repeating: 1 << 20, count: 15)
        let path = dir.appendingPathComponent("deep.ckpt").path
        try CheckpointFile.write(try WaveNet(config: config, seed: 1), dataRNG: nil, to: path)
        let message = try runError(["generate", path, "--seconds", "0.01", "--output", dir.appendingPathComponent("x.wav").path])
        #expect(message?.contains("generate holds at most 1024 MiB") == true, "got \(message ?? "no error")")
        let tiny = dir.appendingPathComponent("tiny.ckpt").path
        try CheckpointFile.write(try WaveNet(config: .tiny, seed: 1), dataRNG: nil, to: tiny)
        let unwritable = try runError(["generate", tiny, "--seconds", "0.01", "--output", dir.appendingPathComponent("no/x.wav").path])
        #expect(unwritable?.contains("does not exist") == true, "got \(unwritable ?? "no error")")
    }

    /// The WaveNet trains with a positive learning rate: a space whose lr
    /// can be 0, negative or a name is refused before any trial runs.
    @Test func aWaveNetSpaceNeedsAPositiveLearningRate() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (index, space) in [#"{"lr": {"choice": ["fast", "slow"]}}"#, #"{"lr": {"choice": [0.001, -0.003]}}"#,
                               #"{"lr": {"uniform": [0, 0.01]}}"#].enumerated() {
            let file = dir.appendingPathComponent("space\(index).json")
            try space.write(to: file, atomically: true, encoding: .utf8)
            let message = try runError(["pbt", "--run-dir", dir.appendingPathComponent("run\(index)").path, "--model", "wavenet",
                                        "--space", file.path, "--corpus", realCorpusDirectory(), "--progress", "none"])
            #expect(message?.contains("trains with a positive learning rate") == true, "\(space): got \(message ?? "no error")")
        }
    }

    /// A --context longer than every clip is named as the cause (the
    /// advice was about the receptive field, which had nothing to do with it).
    @Test func aContextLongerThanEveryClipIsNamed() throws {
        let message = try runError(["train", "--preset", "tiny", "--context", "2000000", "--steps", "1", "--quiet", "--corpus", realCorpusDirectory()])
        #expect(message?.contains("plus --context 2000000 and the first input sample") == true
                && message?.contains("--context 2000000 leaves no room for the window: give --context") == true, "got \(message ?? "no error")")
    }

    @Test func aResumeMismatchNamesTheDefaultPrecision() {
        #expect(StoreOptions.shown("the default", "model.precision") == "fp32")
        #expect(StoreOptions.shown("bf16", "model.precision") == "bf16")
        #expect(StoreOptions.shown("the default", "model.window") == "the default")
    }

    /// Truncation ranks the current generation by default (two generations
    /// let older, less-trained trials crowd its bottom fraction, so few of
    /// the current losers were replaced); tournament keeps Li et al.'s two.
    @Test func truncationRanksOneGenerationByDefault() throws {
        func opponents(_ flags: [String]) throws -> Int {
            let command = try #require(try PBTWave.parseAsRoot(["pbt", "--run-dir", "r"] + flags) as? PBTCommand)
            return try command.settings.settings().opponentGenerations
        }
        #expect(try opponents(["--selection", "truncation"]) == 1)
        #expect(try opponents([]) == 2)
        #expect(try opponents(["--selection", "truncation", "--opponent-generations", "2"]) == 2)
    }

    @Test func aModelConfigWithAKeyTwiceIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("twice.json").path
        try #"{"classes": 256, "residualChannels": 4, "residualChannels": 8, "dilationChannels": 8, "skipChannels": 8, "headChannels": 8, "kernelSize": 2, "inputKernelSize": 2, "dilations": [1, 2], "sampleRate": 16000}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let parsed = parseError(["train", "--model-config", path])
        let message = try parsed ?? runError(["train", "--model-config", path, "--corpus", realCorpusDirectory()])
        #expect(message?.contains("key 'residualChannels' appears twice") == true, "got \(message ?? "no error")")
    }

    /// A `--model-config` needs only the widths and the dilations (it said
    /// "missing field classes"); the rest take the presets' values, the gate
    /// width the residual one. A width left out is still named.
    @Test func aModelConfigMayLeaveOutWhatEveryPresetShares() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let short = dir.appendingPathComponent("short.json").path
        try #"{"residualChannels": 20, "skipChannels": 40, "headChannels": 48, "dilations": [1, 2, 4]}"#.write(toFile: short, atomically: true, encoding: .utf8)
        #expect(try WaveNetConfig.read(from: short) == WaveNetConfig(classes: 256, residualChannels: 20, dilationChannels: 20, skipChannels: 40,
                                                                    headChannels: 48, kernelSize: 2, inputKernelSize: 2, dilations: [1, 2, 4],
                                                                    sampleRate: 16000))
        let gate = dir.appendingPathComponent("gate.json").path
        try #"{"residualChannels": 20, "dilationChannels": 12, "skipChannels": 40, "headChannels": 48, "kernelSize": 3, "dilations": [1]}"#
            .write(toFile: gate, atomically: true, encoding: .utf8)
        let read = try WaveNetConfig.read(from: gate)
        #expect(read.dilationChannels == 12 && read.kernelSize == 3 && read.inputKernelSize == 2)
        let noSkip = dir.appendingPathComponent("noskip.json").path
        try #"{"residualChannels": 20, "headChannels": 48, "dilations": [1]}"#.write(toFile: noSkip, atomically: true, encoding: .utf8)
        let message = try runError(["train", "--model-config", noSkip, "--corpus", realCorpusDirectory()])
        #expect(message?.contains("skipChannels") == true, "got \(message ?? "no error")")
        // A typo is named as such, not as the field it leaves missing.
        let typo = dir.appendingPathComponent("typo.json").path
        try #"{"residualChannels": 20, "skipChanels": 40, "headChannels": 48, "dilations": [1]}"#.write(toFile: typo, atomically: true, encoding: .utf8)
        let typoMessage = try runError(["train", "--model-config", typo, "--corpus", realCorpusDirectory()])
        #expect(typoMessage?.contains("unknown field skipChanels") == true, "got \(typoMessage ?? "no error")")
    }

    /// `generate` writes 8-bit mu-law audio, so it refuses a checkpoint of a
    /// model with other than 256 classes (it used to stop at the first code
    /// past 255).
    @Test func generateRefusesAModelOfOtherThan256Classes() throws {
        var config = WaveNetConfig.tiny
        config.classes = 300
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("classes300-\(getpid()).ckpt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CheckpointFile.write(try WaveNet(config: config, seed: 1), dataRNG: nil, to: path)
        let message = try runError(["generate", path, "--seconds", "0.01", "--output", path + ".wav"])
        #expect(message?.contains("predicts 300 classes") == true && message?.contains(path) == true, "got \(message ?? "no error")")
        #expect(!FileManager.default.fileExists(atPath: path + ".wav"))
    }

    /// Found by a user: a single PBT run's folder was taken as an
    /// experiment's, and its runs nested inside it.
    @Test func anExperimentRefusesAPBTRunsFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pbtrun-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("run\n".utf8).write(to: dir.appendingPathComponent("pbt-run.txt"))
        let message = try runError(["experiment", "--preset", "smoke", "--run-dir", dir.path])
        #expect(message?.contains("is the folder of a single PBT run (it holds pbt-run.txt), not of an experiment") == true, "\(message ?? "no error")")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["pbt-run.txt"], "nothing made in it")
    }

    /// Found by a helper: files named as the report's, in a folder that
    /// holds no experiment, were overwritten without a word.
    @Test func anExperimentRefusesAFolderOfOtherFilesNamedAsItsReport() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("notes-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("my notes\n".utf8).write(to: dir.appendingPathComponent("report.md"))
        try Data("{\"mine\": 1}\n".utf8).write(to: dir.appendingPathComponent("results.json"))
        let message = try runError(["experiment", "--preset", "smoke", "--run-dir", dir.path])
        #expect(message?.contains("holds report.md, results.json but no experiment's runs: the report would overwrite them") == true,
                "\(message ?? "no error")")
        #expect(try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8) == "my notes\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["report.md", "results.json"], "nothing made in it")
    }

    @Test func badScheduleFilesAreRejected() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sched-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text, fragment) in [
            ("negative.csv", "step,lr\n0,-0.001\n", "not a positive number"),
            ("momentum.csv", "step,momentum\n0,0.9\n", "schedules 'momentum', not 'lr'"),
            ("garbage.csv", "hello\n", "header must be 'step,<name>'"),
            ("late.csv", "step,lr\n10,0.001\n", "first point must be at step 0"),
        ] {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let message = try runError(["train", "--lr-schedule", path, "--corpus", "/nonexistent"])
            #expect(message?.contains(fragment) == true, "\(name): got \(message ?? "no error")")
        }
    }
}
