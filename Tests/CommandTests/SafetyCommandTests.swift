import ArgumentParser
import PBTFileSupport
import Foundation
import PBT
import PBTReport
import ReportFixtures
@testable import PBTWaveCommands
import Testing
import PBTWaveModel
import PBTWaveAudio
@testable import PBTWaveModel

/// Issue 15, items 5–6 and the oversized inputs, as the commands see them.
@Suite struct SafetyCommandTests {
    let errors = CommandErrorTests()

    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("safety-\(getpid())-\(UInt32.random(in: 0 ... .max))-\(name)").path
    }

    /// A tiny model's checkpoint at `step`.
    static func checkpoint(step: Int) throws -> String {
        let path = temporary("at\(step).ckpt")
        let model = try WaveNet(config: .tiny, seed: 1)
        model.step = step
        try CheckpointFile.write(model, dataRNG: nil, to: path)
        return path
    }

    @Test func resumingFromAMissingCheckpointFails() throws {
        let missing = Self.temporary("missing.ckpt")
        let message = try errors.runError(["train", "--preset", "tiny", "--resume", "--checkpoint", missing, "--corpus", "/nonexistent"])
        #expect(message?.contains("--resume: \(missing) does not exist") == true, "\(message ?? "no error")")
    }

    @Test func resumingPastTheEndSaysSo() throws {
        let path = try Self.checkpoint(step: 30)
        defer { unlink(path) }
        let message = try errors.runError(["train", "--preset", "tiny", "--resume", "--checkpoint", path, "--steps", "5",
                                           "--corpus", "/nonexistent"])
        #expect(message?.contains("already at step 30") == true && message?.contains("--steps above 30") == true, "\(message ?? "no error")")
    }

    @Test func evaluatingANonFiniteCheckpointFails() throws {
        let model = try WaveNet(config: .tiny, seed: 1)
        let path = Self.temporary("nan.ckpt")
        defer { unlink(path) }
        // Written by hand: CheckpointFile.write itself refuses a non-finite model.
        var bytes = try CheckpointFile.encode(model, dataRNG: nil, path: path)
        let header = Int(CheckpointFile.readLE(bytes, at: 12))
        CheckpointFile.appendLE(&bytes, 0)  // room, then rewrite the float and checksum
        bytes.removeLast(4 + 32)
        let nan = Float.nan.bitPattern
        for k in 0..<4 { bytes[16 + header + 4 * 10 + k] = UInt8(truncatingIfNeeded: nan >> (8 * k)) }
        bytes += bytes.withUnsafeBytes { SHA256Digest.digest(of: $0) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let message = try errors.runError(["evaluate", path, "--corpus", "/nonexistent"])
        #expect(message?.contains("non-finite value") == true, "\(message ?? "no error")")
    }

    static let oversized: [([String], String)] = [
        (["train", "--steps", "1000000000000"], "--steps must be at least 1 and at most 10^9"),
        (["train", "--window", "\(Int.max)"], "at most"),
        (["train", "--context", "\(Int.max)"], "at most"),
        (["train", "--batch", "\(Int.max)"], "--batch must be at most"),
        (["train", "--eval-windows", "\(Int.max)"], "at most"),
        (["train", "--eval-targets", "\(Int.max)"], "at most"),
        (["pbt", "--run-dir", "/tmp/x", "--model", "toy", "--generations", "\(Int.max)"], "generations must be at most"),
        (["pbt", "--run-dir", "/tmp/x", "--model", "toy", "--trial-steps", "\(Int.max)"], "trial steps must be at most"),
        (["pbt", "--run-dir", "/tmp/x", "--model", "toy", "--total-steps", "\(Int.max)"], "must be at most"),
        (["pbt", "--run-dir", "/tmp/x", "--model", "toy", "--population", "\(Int.max / 2)"], "population must be at most"),
        (["pbt", "--run-dir", "/tmp/x", "--model", "toy", "--workers", "100000"], "workers must be at most"),
        (["pbt", "--run-dir", "/tmp/x", "--model", "toy", "--total-steps", "1000000000000", "--trial-steps", "1"], "at most"),
    ]

    @Test(arguments: oversized)
    func oversizedFlagsAreRefused(_ c: ([String], String)) {
        let message = errors.parseError(c.0)
        #expect(message?.contains(c.1) == true, "\(c.0): \(message ?? "accepted")")
    }

    @Test func oversizedModelConfigsAreRefused() throws {
        let path = Self.temporary("huge.json")
        defer { unlink(path) }
        var config = WaveNetConfig.tiny
        config.residualChannels = 1 << 40
        try JSONEncoder().encode(config).write(to: URL(fileURLWithPath: path))
        let message = try errors.runError(["train", "--model-config", path, "--corpus", "/nonexistent"])
        #expect(message?.contains("residualChannels must be at most 4096 (got \(1 << 40))") == true, "\(message ?? "no error")")
        // Fields that do not decode are named, not dumped.
        for (json, text) in [(#"{"residualChannels": 8.5}"#, "a number does not fit its field (a fraction where a whole number is expected, or beyond the field's range); look at residualChannels (8.5)"), (#"{"classes": 256}"#, "missing field "),
                             (#"{"dilations": "1,2"}"#, "field dilations: expected a list"), ("{", "not valid JSON")] {
            var fields = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(WaveNetConfig.tiny)) as? [String: Any])
            if let patch = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] {
                fields.merge(patch) { $1 }
                if json.contains("classes") { fields["residualChannels"] = nil }
            }
            let text2 = json == "{" ? Data("{".utf8) : try JSONSerialization.data(withJSONObject: fields)
            try text2.write(to: URL(fileURLWithPath: path))
            let bad = try errors.runError(["train", "--model-config", path, "--corpus", "/nonexistent"]) ?? errors.parseError(["train", "--model-config", path])
            #expect(bad?.contains(text) == true && bad?.contains("DecodingError") == false, "\(json): \(bad ?? "no error")")
        }
        var extra = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(WaveNetConfig.tiny)) as? [String: Any])
        extra["dropout"] = 0.1
        try JSONSerialization.data(withJSONObject: extra).write(to: URL(fileURLWithPath: path))
        let unknown = try errors.runError(["train", "--model-config", path, "--corpus", "/nonexistent"])
        #expect(unknown?.contains("unknown field dropout; a WaveNet config has ") == true, "\(unknown ?? "no error")")
        var zero = WaveNetConfig.tiny
        zero.skipChannels = 0
        try JSONEncoder().encode(zero).write(to: URL(fileURLWithPath: path))
        let none = try errors.runError(["train", "--model-config", path, "--corpus", "/nonexistent"])
        #expect(none?.contains("skipChannels must be at least 1 (got 0)") == true, "\(none ?? "no error")")
    }

    /// Found by a user: `report render --output` into another experiment's
    /// folder overwrote its results.json. Refused; a folder of its own, or
    /// the same experiment's, is written.
    @Test func aReportIsNotRenderedOverAnotherExperiment() throws {
        let (mine, other, fresh) = (Self.temporary("report-mine"), Self.temporary("report-other"), Self.temporary("report-fresh"))
        defer { for folder in [mine, other, fresh] { try? FileManager.default.removeItem(atPath: folder) } }
        try ExperimentReport.write(.demo(seeds: 2), to: URL(fileURLWithPath: mine))
        try ExperimentReport.write(.demo(seeds: 3), to: URL(fileURLWithPath: other))
        let before = try Data(contentsOf: URL(fileURLWithPath: other + "/results.json"))
        let refused = try errors.runError(["report", "render", "--results", mine + "/results.json", "--output", other])
        #expect(refused?.contains("--output \(other) holds another experiment's results.json") == true, "\(refused ?? "no error")")
        #expect(try Data(contentsOf: URL(fileURLWithPath: other + "/results.json")) == before)
        #expect(try errors.runError(["report", "render", "--results", mine + "/results.json", "--output", fresh]) == nil)
        #expect(try errors.runError(["report", "render", "--results", mine + "/results.json", "--output", mine]) == nil)
        // An experiment stopped before its end (run folders, no results.json) is said to be one (found by a helper: "no such file").
        let stopped = Self.temporary("report-stopped")
        defer { try? FileManager.default.removeItem(atPath: stopped) }
        try FileManager.default.createDirectory(atPath: stopped + "/pbt-5x5-seed0", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: stopped + "/pbt-5x5-seed0/pbt.sqlite", contents: Data())
        let unfinished = try errors.runError(["report", "render", "--results", stopped + "/results.json"])
        #expect(unfinished?.contains("the experiment in \(stopped) has not finished (1 run folder(s), no results.json)") == true, "\(unfinished ?? "no error")")
    }

    /// Foundation's errors in our words: no "NSCocoaErrorDomain" dumps.
    @Test func foundationErrorsAreSentences() throws {
        let folder = Self.temporary("a-folder")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let schedule = try errors.runError(["train", "--lr-schedule", folder, "--corpus", "/nonexistent"])
        #expect(schedule == "cannot read schedule \(folder): it is a folder; give a file", "\(schedule ?? "no error")")
        let file = Self.temporary("a-file")
        _ = FileManager.default.createFile(atPath: file, contents: Data())
        defer { unlink(file) }
        let runDir = try errors.runError(["pbt", "--run-dir", file + "/run", "--model", "toy"])
        #expect(runDir == "cannot create the run directory \(file)/run: not a directory", "\(runDir ?? "no error")")
        // A folder given as results.json, and a trial store that is not there.
        let report = try errors.runError(["report", "render", "--results", folder])
        #expect(report?.contains("\(folder): it is a folder, not an experiment's results.json") == true, "\(report ?? "no error")")
        let absent = "\(folder)/absent.sqlite"
        let worker = try errors.runError(["worker", "--store", "sqlite:\(absent)", "--run", "pbt", "--run-dir", folder])
        #expect(worker?.contains("no trial store at \(absent)") == true, "\(worker ?? "no error")")
        #expect(!FileManager.default.fileExists(atPath: absent), "a worker creates no store")
        for message in [schedule, runDir, report, worker] {
            #expect(message?.contains("NSCocoaErrorDomain") == false && message?.contains("SQLite error") == false)
        }
    }

    /// generate writes WAV only, and at least one sample.
    @Test func generateRefusesAnotherFormatOrNoSample() throws {
        let flac = errors.parseError(["generate", "x.ckpt", "--output", "x.flac"])
        #expect(flac?.contains("--output x.flac: generate writes 16-bit WAV; give a path ending in .wav") == true, "\(flac ?? "accepted")")
        let checkpoint = Self.temporary("tiny.ckpt")
        defer { unlink(checkpoint) }
        try CheckpointFile.write(try WaveNet(config: .tiny, seed: 1), dataRNG: nil, to: checkpoint)
        let tiny = try errors.runError(["generate", checkpoint, "--seconds", "0.00001", "--output", Self.temporary("g.wav")])
        #expect(tiny?.contains("--seconds 1e-05 is less than one sample at 16000 Hz") == true, "\(tiny ?? "no error")")
    }

    /// Found by a user: generate wrote over any file named .wav, the
    /// checkpoint it read among them. An existing --output is overwritten
    /// only with --replace, and the checkpoint never.
    @Test func generateOverwritesOnlyWhenAskedAndNeverItsCheckpoint() throws {
        let checkpoint = Self.temporary("model.wav")
        let output = Self.temporary("out.wav")
        defer { unlink(checkpoint); unlink(output) }
        try CheckpointFile.write(try WaveNet(config: .tiny, seed: 1), dataRNG: nil, to: checkpoint)
        let itself = try errors.runError(["generate", checkpoint, "--output", checkpoint, "--replace", "--seconds", "0.01"])
        #expect(itself?.contains("the checkpoint and --output name the same file") == true, "\(itself ?? "no error")")
        #expect((try? WaveNet.load(from: checkpoint)) != nil, "the checkpoint is intact")
        try Data("mine".utf8).write(to: URL(fileURLWithPath: output))
        let exists = try errors.runError(["generate", checkpoint, "--output", output, "--seconds", "0.01"])
        #expect(exists?.contains("--output \(output) exists: give --replace to overwrite it, or another path") == true, "\(exists ?? "no error")")
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "mine")
        #expect(try errors.runError(["generate", checkpoint, "--output", output, "--seconds", "0.01", "--replace", "--progress", "none"]) == nil)
        #expect(try readMonoAudio(path: output).count == 160)
        // The nearest whole sample: 1.001 × 16,000 is 16,016 (it was 16,015, found by a helper).
        #expect(try errors.runError(["generate", checkpoint, "--output", output, "--seconds", "0.001001", "--replace", "--progress", "none"]) == nil)
        #expect(try readMonoAudio(path: output).count == 16)
        // A file where a folder should be is said so (it said the folder did not exist).
        let inFile = try errors.runError(["generate", checkpoint, "--output", output + "/x.wav"])
        #expect(inFile?.contains("\(output) is a file, not a folder") == true, "\(inFile ?? "no error")")
    }
}

/// Issue 15 items that main had fixed already, pinned by tests.
@Suite struct FixedOnMainCommandTests {
    let errors = CommandErrorTests()

    /// Output folders are checked before any work (the corpus is not even loaded).
    @Test(arguments: ["--curve", "--checkpoint"])
    func outputFoldersAreCheckedFirst(_ flag: String) throws {
        let message = try errors.runError(["train", flag, "/nonexistent-\(getpid())/out", "--corpus", "/nonexistent"])
        #expect(message?.contains("the folder /nonexistent-\(getpid()) does not exist") == true, "\(message ?? "no error")")
    }

    @Test func aLearningRateThatRoundsToZeroIsRefused() {
        #expect(errors.parseError(["train", "--lr", "1e-46"])?.contains("--lr 1e-46 is below the smallest fp32 number") == true)
    }

    @Test func aNonFiniteModelIsNeverWritten() throws {
        let model = try WaveNet(config: .tiny, seed: 1)
        model.parameters.baseAddress[3] = .nan
        let path = SafetyCommandTests.temporary("never.ckpt")
        #expect(throws: WaveNetError.self) { try CheckpointFile.write(model, dataRNG: nil, to: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}

@Suite struct BaselineWarningTests {
    /// A run that ends no better than the unigram baseline says so (it ended without a word).
    @Test func aModelNoBetterThanTheBaselineIsCalledOut() {
        #expect(TrainingReporter.baselineWarning(nll: 7.9, unigram: 7.5, what: "the best trial")?.contains("no better than the unigram baseline") == true)
        #expect(TrainingReporter.baselineWarning(nll: 7.5, unigram: 7.5, what: "the model") != nil)
        #expect(TrainingReporter.baselineWarning(nll: 6.2, unigram: 7.5, what: "the model") == nil)
        #expect(TrainingReporter.baselineWarning(nll: .nan, unigram: 7.5, what: "the model") == nil)
    }

    /// A worker started in another folder than the run, whose program names
    /// files relative to the run's folder, is warned (before: 5 trials
    /// failed on "can't open file" first).
    @Test func aWorkerElsewhereIsWarnedOfRelativePaths() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("relative-\(getpid())-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: base + "/start", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/elsewhere", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try "print(1)".write(toFile: base + "/start/train.py", atomically: true, encoding: .utf8)
        let settings = PBTSettings(population: 2, workers: 2, trialSteps: 1, budget: .generations(1), searchSpace: .learningRate(min: 1e-3, max: 0.1))
        let recipe = ExecRecipe(command: ExecCommand(program: "python3", arguments: ["train.py", "--fast"]), workingDirectory: base + "/start",
                                trialTimeout: nil, settings: settings)
        let note = ExecOptions.relativePathNote(recipe, here: base + "/elsewhere")
        #expect(note?.contains("the run's program names train.py relative to \(base)/start") == true, "\(note ?? "no warning")")
        #expect(ExecOptions.relativePathNote(recipe, here: base + "/start") == nil, "in the run's folder")
        try "print(2)".write(toFile: base + "/elsewhere/train.py", atomically: true, encoding: .utf8)
        #expect(ExecOptions.relativePathNote(recipe, here: base + "/elsewhere") == nil, "a train.py here too")
        // …but another train.py: a resume there is refused (it ran the other file).
        #expect(ExecOptions.placeMessages(recipe, here: base + "/elsewhere", worker: false).error?.description.contains("names train.py relative to") == true)
        #expect(ExecOptions.placeMessages(recipe, here: base + "/start", worker: true).error == nil)
    }
}

/// A retired trial (a child could not read its checkpoint) shows as such in
/// `pbtwave lineage`, with why, next to its loss; a live one does not.
@Test func lineageMarksARetiredTrialAndWhy() {
    var t = TrialRecord(spec: TrialSpec(id: 7, generation: 1, parentID: 2, hyperparameters: Hyperparameters(["lr": .number(0.01)]),
                                        startStep: 10, steps: 10, seed: 7, operations: "", refillOf: nil), createdAt: 0)
    t.status = .finished
    t.evaluation = 1.25
    #expect(LineageCommand.describe(t, nil) == "#7 gen 1 | steps 10..20 | \(t.hyperparameters) | loss 1.25")
    t.failure = "retired: its checkpoint trial-7.ckpt is missing"
    #expect(LineageCommand.describe(t, nil) == "#7 gen 1 | steps 10..20 | \(t.hyperparameters) | loss 1.25, RETIRED (its checkpoint trial-7.ckpt is missing)")
    // A failed program's trial shows its log's last line, not a dangling "last lines of its log.txt:" (found by a user).
    t.status = .failed
    t.evaluation = nil
    t.failure = "runner error: trial 7: the program exited with code 7; last lines of its log.txt:\n  | loading\n  | KeyError: 'x'"
    #expect(LineageCommand.describe(t, nil).hasSuffix("| FAILED (runner error: trial 7: the program exited with code 7; its log.txt ends: KeyError: 'x')"),
            "\(LineageCommand.describe(t, nil))")
    t.failure = "runner error: trial 7: the program exited with code 7 (its log is empty)"
    #expect(LineageCommand.describe(t, nil).hasSuffix("| FAILED (runner error: trial 7: the program exited with code 7 (its log is empty))"))
}

/// `lineage --tree` walks without recursion (a 20,000-generation run
/// overflowed the stack, found by a helper), caps its indentation (that run
/// printed 218 MB, mostly spaces), and lists trials no root reaches (a
/// damaged store's cycle) instead of leaving them out.
@Test func theLineageTreeIsIterativeBoundedAndComplete() {
    func trial(_ id: Int, parent: Int?) -> TrialRecord {
        var t = TrialRecord(spec: TrialSpec(id: id, generation: parent == nil ? 0 : id, parentID: parent,
                                            hyperparameters: Hyperparameters(["lr": .number(0.01)]), startStep: 0, steps: 1, seed: 1,
                                            operations: "", refillOf: nil), createdAt: 0)
        t.status = .finished
        t.evaluation = 1
        return t
    }
    // Two roots; 1 has children 3 and 4, and 3 has 5: depth first, in id order.
    let small = [trial(1, parent: nil), trial(2, parent: nil), trial(3, parent: 1), trial(4, parent: 1), trial(5, parent: 3)]
    let lines = LineageCommand.treeLines(small, [:])
    #expect(lines.map { $0.prefix { $0 != "|" } } == ["#1 gen 0 ", "  #3 gen 3 ", "    #5 gen 5 ", "  #4 gen 4 ", "#2 gen 0 "], "\(lines)")
    // A chain of 50,000 generations: no overflow, and no line longer than the cap's indentation allows.
    let deep = [trial(1, parent: nil)] + (2...50_000).map { trial($0, parent: $0 - 1) }
    let deepLines = LineageCommand.treeLines(deep, [:], indentLimit: 4)
    #expect(deepLines.count == 50_000)
    #expect(deepLines[4].hasPrefix("        #5 gen 5") && deepLines[5].hasPrefix("        [depth 5] #6 gen 6"), "\(deepLines[4...5])")
    #expect(deepLines.last!.hasPrefix("        [depth 49999] #50000"))
    // 6 → 7 → 6: not reached from any root, said at the end.
    let cycle = small + [trial(6, parent: 7), trial(7, parent: 6)]
    #expect(LineageCommand.treeLines(cycle, [:]).last
            == "not reached from generation 0 (their parents lead back to one of themselves: the trial store is damaged): #6, #7")
}

/// A run whose trials all failed is not told "no finished trial yet", as if
/// it might still get one (found by a user); a run still going on is.
@Test func aRunWhoseTrialsAllFailedSaysSo() throws {
    func trial(_ id: Int, _ status: TrialStatus) -> TrialRecord {
        var t = TrialRecord(spec: TrialSpec(id: id, generation: 0, parentID: nil, hyperparameters: Hyperparameters(["lr": .number(0.01)]),
                                            startStep: 0, steps: 10, seed: UInt64(id), operations: "", refillOf: nil), createdAt: 0)
        t.status = status
        return t
    }
    let source = try RunSource.parse(["runs/x"])
    #expect {
        try source.trial(nil, in: [trial(1, .failed), trial(2, .failed)], [])
    } throws: { "\($0)" == "runs/x: the run has no finished trial: all 2 of its trials failed (`pbtwave lineage … --tree` shows why)" }
    #expect {
        try source.trial(nil, in: [trial(1, .failed), trial(2, .running)], [])
    } throws: { "\($0)" == "runs/x: the run has no finished trial yet" }
}
