import Foundation
import PBT
@testable import PBTWaveCommands
import PBTSchedules
import PBTWaveAudio
import Testing
import TestSupport
import PBTWaveModel

/// A learned schedule replays the same way everywhere: `pbtwave pbt` on the
/// tiny WaveNet, `schedule export`, then `pbtwave train --lr-schedule
/// schedule.json` with no other flag trains the winner's recipe, and its
/// validation NLL equals the in-process replay (the experiment's) bit for bit.
@Suite(.serialized) struct ReplayTests {
    let corpus = realCorpusDirectory()

    /// Runs a command in this process, as `pbtwave ARGS` would.
    func run(_ arguments: [String]) throws {
        var command = try PBTWave.parseAsRoot(arguments)
        try command.run()
    }

    /// A small PBT run and its exported schedule (JSON, with the recipe).
    func exportedSchedule(in dir: URL, extra: [String] = []) throws -> URL {
        let runDir = dir.appendingPathComponent("run").path
        try run(["pbt", "--run-dir", runDir, "--model", "wavenet", "--preset", "tiny", "--batch", "1", "--window", "256",
                 "--eval-windows", "2", "--eval-targets", "256", "--workers", "2", "--population", "2", "--trial-steps", "4",
                 "--generations", "3", "--seed", "7", "--corpus", corpus, "--progress", "none"] + extra)
        let file = dir.appendingPathComponent("schedule.json")
        try run(["schedule", "export", runDir, "--format", "json", "--output", file.path])
        return file
    }

    /// The validation NLL on the last row of a learning curve, as written (full precision).
    func lastValidation(_ curve: URL) throws -> String {
        let last = try #require(try String(contentsOf: curve, encoding: .utf8).split(separator: "\n").last)
        return String(last.split(separator: ",", omittingEmptySubsequences: false)[2])
    }

    @Test func trainReplaysAnExportedScheduleBitForBit() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = try exportedSchedule(in: dir)
        let schedule = try HyperparameterSchedule.read(from: file)
        let recipe = try #require(try TrainingRecipe(schedule))
        #expect(recipe.model == .tiny && recipe.training.window == 256 && recipe.evaluation.targets == 256 && recipe.seed == 7)
        #expect(recipe.corpus != nil, "the recipe names its corpus")
        #expect(recipe.corpusDirectory == URL(fileURLWithPath: corpus).standardizedFileURL.path, "and where it was")
        let endStep = try #require(schedule.endStep)

        let curve = dir.appendingPathComponent("curve.csv")
        try run(["train", "--lr-schedule", file.path, "--corpus", corpus, "--curve", curve.path, "--quiet", "--eval-every", "0"])
        let fromCommand = try lastValidation(curve)

        let data = try SpeechCorpus.load(directory: corpus, verifyChecksums: false)
        let inProcess = try recipe.replay(try LearningRateSchedule(schedule), until: endStep, on: data)
        let nll = try #require(inProcess.validationNLL)
        print("replay: train --lr-schedule \(fromCommand) bits, in-process \(nll) bits, \(endStep) steps")
        #expect(fromCommand == "\(nll)", "bit for bit")
    }

    /// `train --resume` with no flag repeated continues the run it resumes
    /// (it fell back to the default learning rate and windows), and its
    /// curve covers the whole run: the same rows as a run never stopped.
    @Test func aResumedTrainingRunIsTheRunItContinues() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = ["--preset", "tiny", "--eval-every", "2", "--corpus", corpus, "--quiet"]
        let flags = ["--lr", "0.01", "--window", "256", "--batch", "2", "--context", "3", "--eval-windows", "2", "--eval-targets", "256", "--seed", "7"]
        let (whole, resumed) = (dir.appendingPathComponent("whole.csv").path, dir.appendingPathComponent("resumed.csv").path)
        try run(["train", "--steps", "6", "--curve", whole] + flags + common)
        let checkpoint = dir.appendingPathComponent("c.ckpt").path
        try run(["train", "--steps", "4", "--checkpoint", checkpoint, "--curve", resumed] + flags + common)
        try run(["train", "--steps", "6", "--checkpoint", checkpoint, "--resume", "--curve", resumed] + common)
        // The resumed checkpoint keeps the seed its run began with (found by a helper: it wrote 0).
        #expect(try WaveNet.load(from: checkpoint).1.metadata["seed"] == "7")
        let (a, b) = (try String(contentsOfFile: whole, encoding: .utf8), try String(contentsOfFile: resumed, encoding: .utf8))
        #expect(a.split(separator: "\n").count == 7, "a header and steps 1-6: \(a)")
        #expect(a == b, "resumed without the flags, the same curve, bit for bit:\n\(a)\nvs\n\(b)")
        var plan = try TrainingPlan(try PBTWave.parseAsRoot(["train"] + common) as! TrainCommand)
        let note = try plan.continuing(["lr": "0.01", "batch": "2", "window": "256", "context": "3", "eval-windows": "2", "eval-targets": "256"],
                                       given: [], lrGiven: false)
        #expect(note == "resuming with the checkpoint's --batch 2, --window 256, --context 3, --eval-windows 2, --eval-targets 256, --lr 0.01 "
                + "(give a flag to change it)")
        #expect(plan.recipe.evaluation == EvaluationOptions(windows: 2, targets: 256), "the same validation windows")
        var kept = try TrainingPlan(try PBTWave.parseAsRoot(["train", "--batch", "4"] + common) as! TrainCommand)
        let changed = try kept.continuing(["batch": "2"], given: ["--batch"], lrGiven: false)
        #expect(changed == "note: going on with --batch 4 (the checkpoint's run: 2)" && kept.recipe.training.batch == 4, "a flag given wins, said")
        var windows = try TrainingPlan(try PBTWave.parseAsRoot(["train", "--eval-windows", "4"] + common) as! TrainCommand)
        #expect(try windows.continuing(["eval-windows": "2"], given: ["--eval-windows"], lrGiven: false)?
            .contains("--eval-windows 4 (the checkpoint's run: 2; validation numbers from here on are on other windows)") == true)
    }

    /// A run along --lr-schedule resumed twice without it follows the
    /// schedule to the end (found by a helper: the first resume's
    /// checkpoint no longer stored it, and the second trained at 1e-3 in
    /// silence): the same curve as the run never stopped.
    @Test func aScheduledRunResumedTwiceKeepsItsSchedule() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let schedule = dir.appendingPathComponent("s.csv").path
        try "step,lr\n0,0.01\n3,0.002\n5,0.0005\n".write(toFile: schedule, atomically: true, encoding: .utf8)
        let common = ["--preset", "tiny", "--eval-every", "2", "--window", "256", "--eval-windows", "2", "--eval-targets", "256",
                      "--corpus", corpus, "--quiet"]
        let (whole, resumed) = (dir.appendingPathComponent("whole.csv").path, dir.appendingPathComponent("resumed.csv").path)
        try run(["train", "--steps", "7", "--lr-schedule", schedule, "--curve", whole] + common)
        let checkpoint = dir.appendingPathComponent("c.ckpt").path
        try run(["train", "--steps", "2", "--lr-schedule", schedule, "--checkpoint", checkpoint, "--curve", resumed] + common)
        try run(["train", "--steps", "4", "--checkpoint", checkpoint, "--resume", "--curve", resumed] + common)
        #expect(try WaveNet.load(from: checkpoint).1.metadata["lr-points"] != nil, "the resumed run's checkpoint stores the schedule")
        try run(["train", "--steps", "7", "--checkpoint", checkpoint, "--resume", "--curve", resumed] + common)
        let (a, b) = (try String(contentsOfFile: whole, encoding: .utf8), try String(contentsOfFile: resumed, encoding: .utf8))
        #expect(a.split(separator: "\n").count == 8, "a header and steps 1-7: \(a)")
        #expect(a == b, "resumed twice, the same curve, bit for bit:\n\(a)\nvs\n\(b)")
    }

    /// Found by users: a rerun that forgot --resume replaced a trained
    /// checkpoint and its curve with a note; a resume given another run's
    /// curve kept that run's rows and appended its own; a resume validated
    /// and checkpointed at the defaults, not at the run's intervals.
    @Test func aResumeGuardsItsCheckpointAndCurveAndKeepsItsIntervals() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = ["--preset", "tiny", "--corpus", corpus, "--quiet", "--window", "256", "--eval-windows", "2", "--eval-targets", "256"]
        let checkpoint = dir.appendingPathComponent("c.ckpt").path
        let (curve, other) = (dir.appendingPathComponent("k.csv").path, dir.appendingPathComponent("other.csv").path)
        try run(["train", "--steps", "4", "--lr", "0.01", "--checkpoint", checkpoint, "--curve", curve, "--eval-every", "2",
                 "--checkpoint-every", "2"] + common)
        let (trained, curveBefore) = (try Data(contentsOf: URL(fileURLWithPath: checkpoint)), try String(contentsOfFile: curve, encoding: .utf8))
        let refusals: [([String], String)] = [
            (["--checkpoint", checkpoint], "--checkpoint \(checkpoint) exists: give --resume to continue it, --replace to overwrite it"),
            (["--curve", curve], "--curve \(curve) exists: give --replace to overwrite it"),
        ]
        for (flags, message) in refusals {
            let error = #expect(throws: (any Error).self) { try run(["train", "--steps", "2"] + flags + common) }
            #expect(error.map { "\($0)" }?.contains(message) == true, "\(String(describing: error))")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == trained && String(contentsOfFile: curve, encoding: .utf8) == curveBefore,
                "nothing was overwritten")
        // Another run's curve, with a row at the checkpoint's step: refused, not spliced.
        try run(["train", "--steps", "4", "--lr", "0.02", "--curve", other, "--eval-every", "0"] + common)
        let spliced = #expect(throws: (any Error).self) { try run(["train", "--steps", "8", "--checkpoint", checkpoint, "--resume", "--curve", other] + common) }
        #expect(spliced.map { "\($0)" }?.contains("--curve \(other) is not this checkpoint's learning curve: its row at step 4") == true,
                "\(String(describing: spliced))")

        // A shorter run's curve, with no row at the checkpoint's step: refused too (it was kept, with a note on the gap).
        let short = dir.appendingPathComponent("short.csv").path
        try run(["train", "--steps", "2", "--lr", "0.02", "--curve", short, "--eval-every", "0"] + common)
        let gap = #expect(throws: (any Error).self) { try run(["train", "--steps", "8", "--checkpoint", checkpoint, "--resume", "--curve", short] + common) }
        #expect(gap.map { "\($0)" }?.contains("--curve \(short) is not this checkpoint's learning curve: its rows stop at step 2, and the checkpoint is at step 4") == true,
                "\(String(describing: gap))")
        // Its own curve: the run goes on at its intervals (validation at step 6, not only at the end).
        try run(["train", "--steps", "8", "--checkpoint", checkpoint, "--resume", "--curve", curve] + common)
        let rows = try String(contentsOfFile: curve, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(rows.map { Int($0[0]) } == Array(1...8), "\(rows)")
        #expect(rows.filter { !$0[2].isEmpty }.map { Int($0[0]) } == [2, 4, 6, 8], "validated every 2 steps, as the run did")
        let header = try WaveNet.load(from: checkpoint).header
        #expect(header.metadata["checkpoint-every"] == "2" && header.metadata["eval-every"] == "2", "\(header.metadata)")
        // --replace overwrites, as asked.
        try run(["train", "--steps", "2", "--checkpoint", checkpoint, "--curve", curve, "--replace"] + common)
        #expect(try WaveNet.load(from: checkpoint).model.step == 2)
        #expect(try String(contentsOfFile: curve, encoding: .utf8).split(separator: "\n").count == 3)
    }

    /// A corpus with some of the real one's files: other audio, another digest.
    func smallerCorpus(in dir: URL) throws -> String {
        let out = dir.appendingPathComponent("smaller")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let source = URL(fileURLWithPath: corpus)
        func lines(_ name: String) throws -> [Substring] {
            try String(contentsOf: source.appendingPathComponent(name), encoding: .utf8).split(separator: "\n")
        }
        let manifest = try lines("manifest.tsv")
        let kept = Array(manifest.dropFirst().dropLast(40))
        let names = Set(kept.map { String($0.split(separator: "\t")[0]) })
        try (([manifest[0]] + kept).joined(separator: "\n") + "\n").write(to: out.appendingPathComponent("manifest.tsv"), atomically: true, encoding: .utf8)
        for split in ["train.txt", "validation.txt"] {
            try (try lines(split).filter { names.contains(String($0)) }.joined(separator: "\n") + "\n")
                .write(to: out.appendingPathComponent(split), atomically: true, encoding: .utf8)
        }
        for name in names {
            let target = out.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: target, withDestinationURL: source.appendingPathComponent(name))
        }
        return out.path
    }

    /// A run goes on only on the corpus it was created on: a resume or a
    /// worker on other audio would mix losses from two validation sets, and
    /// the exported recipe would name a corpus its trials did not use.
    @Test func aRunGoesOnOnlyOnItsOwnCorpus() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let other = try smallerCorpus(in: dir)
        let runDir = dir.appendingPathComponent("run").path
        let store = "sqlite:" + dir.appendingPathComponent("store.sqlite").path
        let flags = ["--model", "wavenet", "--preset", "tiny", "--batch", "1", "--window", "256", "--eval-windows", "2", "--eval-targets", "256",
                     "--workers", "2", "--population", "2", "--trial-steps", "2", "--generations", "2", "--seed", "7", "--progress", "none"]
        try run(["pbt", "--run-dir", runDir, "--store", store, "--run", "r", "--local-workers", "0", "--corpus", corpus] + flags)
        for command in [["pbt", "--run-dir", runDir, "--store", store, "--run", "r"] + flags,
                        ["worker", "--run-dir", runDir, "--store", store, "--run", "r", "--progress", "none"]] {
            let error = #expect(throws: (any Error).self) { try run(command + ["--corpus", other]) }
            let text = error.map { "\($0)" } ?? ""
            #expect(text.contains("--corpus: the run was created on another corpus") && text.contains("Give the run's corpus"), "\(text)")
        }
        try run(["worker", "--run-dir", runDir, "--store", store, "--run", "r", "--progress", "none", "--corpus", corpus])
        // A trial's checkpoint is the run's record: train refuses to continue or replace it in place.
        let folder = try #require(FileManager.default.enumerator(atPath: runDir + "/checkpoints")?.compactMap { $0 as? String }
            .first { $0.hasSuffix(".ckpt") })
        let trial = runDir + "/checkpoints/" + folder
        for flag in ["--resume", "--replace"] {
            let error = #expect(throws: (any Error).self) {
                try run(["train", "--checkpoint", trial, flag, "--steps", "100", "--corpus", corpus, "--quiet"])
            }
            #expect(error.map { "\($0)" }?.contains("is a trial's checkpoint of the PBT run in \(URL(fileURLWithPath: runDir).standardizedFileURL.path)") == true,
                    "\(String(describing: error))")
        }
    }

    /// Found by a user: a schedule learned on their own corpus, replayed
    /// "with no other flag", looked for ./corpus. The replay takes the
    /// folder the recipe records while it holds the same corpus; --corpus,
    /// $PBTWAVE_CORPUS and a changed folder keep the usual default.
    @Test func aReplayFindsTheCorpusTheScheduleWasLearnedOn() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let other = try smallerCorpus(in: dir)
        var recipe = TrainingRecipe(model: .tiny, training: TrainingOptions(), evaluation: EvaluationOptions(), seed: 1,
                                    corpus: CorpusIdentity(manifest: try CorpusManifest.read(directory: other)))
        recipe.corpusDirectory = other
        let plain = try #require(try PBTWave.parseAsRoot(["train", "--lr-schedule", "s.json"]) as? TrainCommand)
        #expect(plain.corpus.orRecorded(in: recipe, environment: [:]).directory == other)
        #expect(plain.corpus.orRecorded(in: recipe, environment: ["PBTWAVE_CORPUS": corpus]).directory != other, "the variable wins")
        let given = try #require(try PBTWave.parseAsRoot(["train", "--lr-schedule", "s.json", "--corpus", corpus]) as? TrainCommand)
        #expect(given.corpus.orRecorded(in: recipe, environment: [:]).directory == corpus, "--corpus wins")
        // `lineage --settings` names it too (it named no corpus: a resume on the wrong one was refused with no clue).
        let settings = PBTSettings(population: 2, workers: 2, trialSteps: 1, budget: .generations(1), searchSpace: .learningRate(min: 1e-3, max: 0.1))
        let configuration = RunConfiguration(settings: settings, model: "wavenet", recipe: try recipe.json)
        #expect(LineageCommand.settingsLines(configuration).contains { $0.hasPrefix("--corpus \(other) (") && $0.contains("validation files, digest") },
                "\(LineageCommand.settingsLines(configuration))")
        recipe.corpus = CorpusIdentity(manifest: try CorpusManifest.read(directory: corpus))
        #expect(plain.corpus.orRecorded(in: recipe, environment: [:]).directory != other, "a folder that holds another corpus now is not taken")
        // A checkpoint records its corpus's folder beside its digest; `evaluate` takes it the same way
        // (found by a user: a PBT trial's checkpoint was scored against ./corpus, or not at all).
        let learned = CorpusIdentity(manifest: try CorpusManifest.read(directory: other))
        let metadata = recipe.checkpointMetadata(corpus: learned, directory: other)
        #expect(metadata[CorpusIdentity.directoryMetadataKey] == URL(fileURLWithPath: other).standardizedFileURL.path)
        let evaluate = try #require(try PBTWave.parseAsRoot(["evaluate", "x.ckpt"]) as? EvaluateCommand)
        #expect(evaluate.corpus.orRecorded(checkpoint: metadata, environment: [:]).directory == metadata[CorpusIdentity.directoryMetadataKey])
        #expect(evaluate.corpus.orRecorded(checkpoint: metadata, environment: ["PBTWAVE_CORPUS": corpus]).directory != other, "the variable wins")
        var another = metadata
        another[CorpusIdentity.metadataKey] = CorpusIdentity(manifest: try CorpusManifest.read(directory: corpus)).digest
        #expect(evaluate.corpus.orRecorded(checkpoint: another, environment: [:]).directory != other, "not a folder holding another corpus")
    }

    /// Found by a user: a resumed WaveNet run took the defaults for the
    /// recipe flags not given (a run made with --context trained on with
    /// none, and recorded the first), and took another --model-config for
    /// the same model (every checkpoint then failed to load, the run was
    /// spent). It now goes on with its own recipe and refuses other flags.
    @Test func aResumedWaveNetRunKeepsItsRecipe() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let runDir = dir.appendingPathComponent("run").path
        func config(_ residual: Int) throws -> String {
            let file = dir.appendingPathComponent("m\(residual).json")
            try Data(#"{"residualChannels": \#(residual), "skipChannels": 16, "headChannels": 16, "dilations": [1, 2, 4]}"#.utf8).write(to: file)
            return file.path
        }
        let flags = ["--model", "wavenet", "--model-config", try config(8), "--batch", "1", "--window", "256", "--context", "7",
                     "--eval-windows", "2", "--eval-targets", "256", "--workers", "2", "--population", "2", "--trial-steps", "2",
                     "--generations", "2", "--seed", "7", "--progress", "none", "--corpus", corpus]
        try run(["pbt", "--run-dir", runDir, "--local-workers", "0"] + flags)
        let bare = ["pbt", "--run-dir", runDir, "--corpus", corpus, "--progress", "none"]
        for (extra, message) in [(["--model-config", try config(12)], "--preset/--model-config (residualChannels): the run has 8, this command has 12"),
                                 (["--context", "0"], "--context: the run has 7, this command has 0")] {
            let error = #expect(throws: (any Error).self) { try run(bare + extra) }
            #expect(error.map { "\($0)" }?.contains(message) == true, "\(String(describing: error))")
        }
        try run(bare)
        let store = try SQLiteTrialStore(path: runDir + "/" + RunDirectory.storeFileName)
        let record = try #require(try store.run(named: RunDirectory.runName))
        #expect(try store.trials(runID: record.id).allSatisfy { $0.status == .finished }, "the run went on with its own recipe")
        let recipe = try #require(try RunConfiguration(jsonText: record.configJSON).recipe?.decoded(as: TrainingRecipe.self))
        #expect(recipe.training.context == 7 && recipe.model.residualChannels == 8)
        // `lineage --settings` lists the recipe as flags that can be given back (it printed "--preset custom").
        let lines = LineageCommand.settingsLines(try RunConfiguration(jsonText: record.configJSON))
        #expect(lines.contains("--context 7") && lines.contains("--window 256") && !lines.contains { $0.hasPrefix("--preset") }, "\(lines)")
        let prefix = "--model-config FILE holding '"
        let holding = try #require(lines.first { $0.hasPrefix(prefix) }, "\(lines)")
        let file = dir.appendingPathComponent("given-back.json")
        try Data(holding.dropFirst(prefix.count).dropLast().utf8).write(to: file)
        try run(bare + ["--model-config", file.path, "--context", "7", "--window", "256"])
    }

    @Test func flagsOverTheRecipeAreReportedAndApplied() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = try exportedSchedule(in: dir)
        let command = try #require(try PBTWave.parseAsRoot(["train", "--lr-schedule", file.path, "--batch", "2", "--seed", "3",
                                                            "--steps", "5"]) as? TrainCommand)
        let plan = try TrainingPlan(command)
        #expect(plan.recipeNote?.contains("overridden by --batch, --seed, --steps") == true, "\(plan.recipeNote ?? "no note")")
        #expect(plan.recipe.training.batch == 2 && plan.recipe.seed == 3 && plan.steps == 5)
        #expect(plan.recipe.training.window == 256 && plan.recipe.model == .tiny, "the rest comes from the recipe")
        let plain = try #require(try PBTWave.parseAsRoot(["train", "--lr-schedule", file.path]) as? TrainCommand)
        #expect(try TrainingPlan(plain).recipeNote?.contains("replayed as learned") == true)
    }

    /// `train --resume` without --lr-schedule follows the schedule the
    /// checkpoint was trained along, as it was then, to the run's end step
    /// (it trained on at the default 0.001, to 1000 steps).
    @Test func aResumeFollowsTheCheckpointsSchedule() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let schedule = dir.appendingPathComponent("s.csv").path
        try "step,lr\n0,0.003\n4,0.0002\n".write(toFile: schedule, atomically: true, encoding: .utf8)
        let common = ["--preset", "tiny", "--window", "256", "--batch", "1", "--eval-windows", "1", "--eval-targets", "64", "--eval-every", "1",
                      "--corpus", corpus, "--quiet"]
        let (whole, resumed) = (dir.appendingPathComponent("whole.csv").path, dir.appendingPathComponent("resumed.csv").path)
        try run(["train", "--lr-schedule", schedule, "--steps", "7", "--curve", whole] + common)
        let checkpoint = dir.appendingPathComponent("c.ckpt").path
        try run(["train", "--lr-schedule", schedule, "--steps", "3", "--checkpoint", checkpoint, "--curve", resumed] + common)
        try FileManager.default.removeItem(atPath: schedule)  // followed as stored, not read again
        try run(["train", "--steps", "7", "--checkpoint", checkpoint, "--resume", "--curve", resumed] + common)
        let (a, b) = (try String(contentsOfFile: whole, encoding: .utf8), try String(contentsOfFile: resumed, encoding: .utf8))
        #expect(a == b, "the same curve as a run never stopped:\n\(a)\nvs\n\(b)")

        var plan = try TrainingPlan(try PBTWave.parseAsRoot(["train"] + common) as! TrainCommand)
        let note = try plan.continuing(["lr-schedule": "s.csv", "lr-points": #"[{"step":0,"lr":0.003},{"step":4,"lr":0.0002}]"#, "steps": "9"],
                                       given: [], lrGiven: false)
        #expect(plan.steps == 9 && plan.schedule.points == [.init(step: 0, rate: 0.003), .init(step: 4, rate: 0.0002)])
        #expect(note?.contains("--steps 9, learning-rate schedule (of --lr-schedule s.csv, 2 change points)") == true, "\(note ?? "no note")")
        // --lr given again over the learned schedule replaces it, said (found by a helper: said nothing).
        var constant = try TrainingPlan(try PBTWave.parseAsRoot(["train", "--lr", "0.05"] + common) as! TrainCommand)
        let replaced = try constant.continuing(["lr-schedule": "s.csv", "lr-points": #"[{"step":0,"lr":0.003},{"step":4,"lr":0.0002}]"#],
                                               given: ["--lr"], lrGiven: true)
        #expect(replaced?.contains("note: going on with --lr 0.05 (the checkpoint's run followed --lr-schedule s.csv, which this one does not)")
                == true, "\(replaced ?? "no note")")
        #expect(constant.schedule.points == [.init(step: 0, rate: 0.05)])
        // And over a constant one; the same rate again is no change.
        var other = try TrainingPlan(try PBTWave.parseAsRoot(["train", "--lr", "0.01"] + common) as! TrainCommand)
        let changed = try other.continuing(["lr": "0.003"], given: ["--lr"], lrGiven: true)
        #expect(changed?.contains("note: going on with --lr 0.01 (the checkpoint's run: 0.003)") == true, "\(changed ?? "no note")")
        var same = try TrainingPlan(try PBTWave.parseAsRoot(["train", "--lr", "0.003"] + common) as! TrainCommand)
        #expect(try same.continuing(["lr": "0.003"], given: ["--lr"], lrGiven: true) == nil)
    }

    /// A schedule with other columns than lr: train follows lr and says it
    /// drops the rest.
    @Test func columnsTrainDoesNotFollowAreNamed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("s.csv").path
        try "step,lr,momentum\n0,0.001,0.9\n10,0.0005,0.95\n".write(toFile: file, atomically: true, encoding: .utf8)
        let command = try #require(try PBTWave.parseAsRoot(["train", "--lr-schedule", file]) as? TrainCommand)
        let plan = try TrainingPlan(command)
        #expect(plan.recipeNote?.contains("also schedules momentum; train follows only lr") == true, "\(plan.recipeNote ?? "no note")")
        try "step,lr\n0,0.001\n".write(toFile: file, atomically: true, encoding: .utf8)
        let plain = try #require(try PBTWave.parseAsRoot(["train", "--lr-schedule", file]) as? TrainCommand)
        // A schedule without a recipe trains with the defaults, and says so (it said nothing).
        let note = try TrainingPlan(plain).recipeNote ?? ""
        #expect(note.hasPrefix("note: \(file) carries no training recipe") && !note.contains("momentum"), "\(note)")
    }

    /// `schedule export --output FILE.json` writes JSON, with the recipe
    /// (it wrote CSV, and a replay of it trained the default model).
    @Test func anExportToAJSONFileIsJSON() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = try exportedSchedule(in: dir)
        let runDir = dir.appendingPathComponent("run").path
        for (name, format) in [("by-name.json", nil), ("BY-NAME.JSON", nil), ("by-name.csv", nil), ("asked.json", "csv")] as [(String, String?)] {
            let file = dir.appendingPathComponent(name)
            try run(["schedule", "export", runDir, "--output", file.path] + (format.map { ["--format", $0] } ?? []))
            let text = try String(contentsOf: file, encoding: .utf8)
            let isJSON = name.lowercased().hasSuffix(".json") && format == nil
            #expect(text.hasPrefix("{") == isJSON, "\(name): \(text.prefix(40))")
            if isJSON { #expect(try TrainingRecipe(try HyperparameterSchedule.read(from: file)) == TrainingRecipe(try HyperparameterSchedule.read(from: json))) }
        }
    }

    /// --precision bf16 reaches the checkpoints of `train` and of a PBT run,
    /// a resume without --precision keeps the checkpoint's, and the exported
    /// recipe replays in bf16.
    @Test func bf16CarriesThroughTrainResumeAndPBT() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoint = dir.appendingPathComponent("bf16.ckpt").path
        let common = ["--preset", "tiny", "--batch", "1", "--window", "256", "--eval-windows", "2", "--eval-targets", "256",
                      "--corpus", corpus, "--quiet", "--eval-every", "0", "--checkpoint", checkpoint]
        try run(["train", "--precision", "bf16", "--steps", "2"] + common)
        #expect(try WaveNet.load(from: checkpoint).model.precision == .bf16)
        try run(["train", "--steps", "4", "--resume"] + common)
        let resumed = try WaveNet.load(from: checkpoint).model
        #expect(resumed.step == 4 && resumed.precision == .bf16, "a resume keeps the checkpoint's precision")
        // Another model is refused, naming the fields that differ and only the flag that chose the model.
        let other = try CommandErrorTests().runError(["train", "--steps", "6", "--resume"] + common.map { $0 == "tiny" ? "small" : $0 })
        #expect(other?.contains("holds another model than --preset small (residualChannels: the checkpoint's 16, 24 asked; ") == true
                && other?.contains("dilations: the checkpoint's [1, 2, 4, 8, 1, 2, 4, 8], 16 layers, [1, 2, 4, 8]… asked") == true,
                "\(other ?? "no error")")
        // Without --preset or --model-config the resume is the checkpoint's model (before: the default preset's, refused).
        let noPreset = Array(common.dropFirst(2))
        try run(["train", "--steps", "5", "--resume"] + noPreset)
        let own = try WaveNet.load(from: checkpoint).model
        #expect(own.step == 5 && own.config == .tiny && own.precision == .bf16)
        // --precision given again changes it from there on.
        try run(["train", "--steps", "6", "--resume", "--precision", "fp32"] + noPreset)
        #expect(try WaveNet.load(from: checkpoint).model.precision == .fp32)

        let file = try exportedSchedule(in: dir, extra: ["--precision", "bf16"])
        let recipe = try #require(try TrainingRecipe(try HyperparameterSchedule.read(from: file)))
        #expect(recipe.training.precision == .bf16)
        let plain = try #require(try PBTWave.parseAsRoot(["train", "--lr-schedule", file.path]) as? TrainCommand)
        #expect(try TrainingPlan(plain).recipe.training.precision == .bf16, "the replay trains in bf16")
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// `evaluate` scores a checkpoint on the validation windows its training
    /// scored on unless flags say otherwise (it took `train`'s defaults,
    /// so a PBT trial's checkpoint scored other windows than its run), and
    /// notes when it is given another corpus than the one trained on.
    @Test func evaluateScoresOnTheCheckpointsWindowsAndNotesAnotherCorpus() throws {
        let recorded = ["eval-windows": "3", "eval-targets": "700"]
        let (taken, note) = EvaluateCommand.windows(given: (nil, nil), metadata: recorded)
        #expect(taken == EvaluationOptions(windows: 3, targets: 700))
        #expect(note == "scoring on the windows the checkpoint's training scored on: --eval-windows 3, --eval-targets 700 (give a flag to change it)")
        let (mixed, mixedNote) = EvaluateCommand.windows(given: (nil, 64), metadata: recorded)
        #expect(mixed == EvaluationOptions(windows: 3, targets: 64))
        #expect(mixedNote?.contains("--eval-windows 3 (") == true)
        let (own, ownNote) = EvaluateCommand.windows(given: (5, 64), metadata: recorded)
        #expect(own == EvaluationOptions(windows: 5, targets: 64) && ownNote == nil)
        // A checkpoint that records none scores on train's defaults; one that records nonsense too, and says so.
        let (defaults, none) = EvaluateCommand.windows(given: (nil, nil), metadata: [:])
        #expect(defaults == TrainDefaults.evaluation && none == nil)
        let (fallback, said) = EvaluateCommand.windows(given: (nil, nil), metadata: ["eval-windows": "0", "eval-targets": "many"])
        #expect(fallback == TrainDefaults.evaluation)
        #expect(said?.contains("the checkpoint records eval-windows '0', not a whole number from 1 to") == true
                && said?.contains("scoring with --eval-targets \(TrainDefaults.evaluation.targets), the default") == true, "\(said ?? "no note")")
        let (flagged, quiet) = EvaluateCommand.windows(given: (4, 32), metadata: ["eval-windows": "0", "eval-targets": "many"])
        #expect(flagged == EvaluationOptions(windows: 4, targets: 32) && quiet == nil, "flags given: nothing to say of the record")

        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoint = dir.appendingPathComponent("c.ckpt").path
        try run(["train", "--preset", "tiny", "--steps", "1", "--window", "256", "--eval-windows", "2", "--eval-targets", "256",
                 "--eval-every", "0", "--checkpoint", checkpoint, "--corpus", corpus, "--quiet"])
        let metadata = try WaveNet.load(from: checkpoint).header.metadata
        #expect(EvaluationOptions.recorded(in: metadata) == (2, 256))
        let data = try SpeechCorpus.load(directory: corpus, verifyChecksums: false)
        #expect(checkpointCorpusNote(checkpoint, metadata, data) == nil, "the corpus trained on")
        var other = metadata
        other[CorpusIdentity.metadataKey] = String(repeating: "0", count: 64)
        let otherNote = try #require(checkpointCorpusNote(checkpoint, other, data))
        #expect(otherNote.contains("was trained on another corpus than \(data.directory)"))
        other[CorpusIdentity.metadataKey] = nil
        #expect(checkpointCorpusNote(checkpoint, other, data) == nil, "a checkpoint that records no corpus")
    }
}
