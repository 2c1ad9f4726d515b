import ArgumentParser
import Foundation
import PBT
import PBTFileSupport
import PBTSchedules
import PBTWaveAudio
import PBTWaveTensor
import PBTWaveModel

/// `pbtwave train`: one plain training run on the corpus, with a constant
/// learning rate or a replayed schedule (e.g. one exported by PBT).
struct TrainCommand: ParsableCommand {
    /// The most steps a run trains to (`--steps`, a schedule's end_step).
    static let maxSteps = 1_000_000_000

    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a WaveNet on the speech corpus.",
        discussion: """
            The learning rate is constant (--lr) or follows a schedule file (--lr-schedule): the CSV or JSON that \
            `pbtwave schedule export` writes, change points (global step, lr). A JSON schedule also carries the recipe it \
            was learned with (model, windows, validation set, seed, corpus and its folder) and where it ends, so `pbtwave train \
            --lr-schedule FILE.json` with no other flag trains that way again (on that folder while it holds the same corpus, \
            unless --corpus or $PBTWAVE_CORPUS says otherwise); flags you give override the recipe, and the \
            command says which. --steps is the total number of steps the model should have taken, so --resume continues a \
            checkpointed run to the same end (its --steps), with its learning rate or schedule (as stored in the \
            checkpoint), batch, windows, --eval-every and --checkpoint-every unless you give those flags again, and --curve \
            then keeps the curve's earlier rows (the curve is written with each checkpoint, so a killed run keeps them too; \
            another run's curve is refused). Without --resume or --replace, an existing --checkpoint or --curve is refused, \
            never overwritten. SIGINT, SIGTERM or SIGHUP stops the run after the step it is \
            in, or during a validation, with --checkpoint written at that step (again: at once); it exits 128 + the \
            signal's number, also when the signal ends the last step's validation (`pbtwave evaluate` then validates the checkpoint).
            """)

    @OptionGroup var recipe: RecipeOptions<TrainDefaults>
    @OptionGroup var corpus: CorpusOptions

    @Option(parsing: .unconditional, help: "Total optimizer steps (default: the schedule file's end step, else 1000).") var steps: Int?
    @Option(parsing: .unconditional, help: "Constant learning rate (default 1e-3 when no --lr-schedule).") var lr: Double?
    @Option(name: .customLong("lr-schedule"), help: "Learning-rate schedule file (CSV 'step,lr', or JSON with its recipe).") var lrSchedule: String?
    @Option(parsing: .unconditional, help: "Seed for initialisation and window sampling (default: the schedule's recipe's, else 0).") var seed: UInt64?
    @Option(parsing: .unconditional, help: "Threads for one model's step.") var threads: Int = 1
    @Option(help: "Checkpoint file, written at the end (and every --checkpoint-every steps).", transform: writtenFilePath) var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional,
            help: "Also checkpoint every N steps (0: only at the end; default: a resumed run's, else 0).") var givenCheckpointEvery: Int?
    @Flag(help: "Continue from --checkpoint (weights, Adam state, step, data generator, and the learning rate, windows and intervals it was trained with).") var resume = false
    @Option(name: .customLong("eval-every"), parsing: .unconditional,
            help: "Validate every N steps (0: only at the end; default: a resumed run's, else \(Self.defaultEvalEvery)).") var givenEvalEvery: Int?
    @Option(help: "Write the learning curve (step, train loss, validation NLL, lr) as CSV here.", transform: writtenFilePath) var curve: String?
    @Flag(help: "Overwrite an existing --checkpoint or --curve (without it, train refuses to, so that a forgotten --resume loses nothing).") var replace = false
    @OptionGroup var display: ProgressOptions
    @Flag(help: "No progress line (the same as --progress none).") var quiet = false

    static let defaultEvalEvery = 250

    func validate() throws {
        guard (1...Self.maxSteps).contains(steps ?? 1) else { throw ValidationError("--steps must be at least 1 and at most 10^9") }
        guard lr == nil || lrSchedule == nil else { throw ValidationError("give --lr or --lr-schedule, not both") }
        if let lr {
            guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number (got \(lr))") }
            guard Float(lr) > 0 else { throw ValidationError("--lr \(lr) is below the smallest fp32 number (\(Float.leastNonzeroMagnitude)); give a larger one") }
            guard Float(lr).isFinite else { throw ValidationError("--lr \(lr) is above the largest fp32 number (\(Float.greatestFiniteMagnitude)); give a smaller one") }
        }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
        guard givenCheckpointEvery ?? 0 >= 0, givenEvalEvery ?? 0 >= 0 else { throw ValidationError("--checkpoint-every and --eval-every must be 0 or more") }
        guard givenCheckpointEvery ?? 0 == 0 || checkpoint != nil else { throw ValidationError("--checkpoint-every needs --checkpoint FILE to write to") }
        guard !resume || checkpoint != nil else { throw ValidationError("--resume needs --checkpoint FILE to resume from") }
    }

    func run() throws {
        // Every output location is checked before any work, so a typo cannot cost a training run.
        try OutputPath.distinct([("--checkpoint", checkpoint), ("--curve", curve), ("--lr-schedule", lrSchedule),
                                 ("--model-config", recipe.modelConfig)])
        for path in [checkpoint, curve].compactMap({ $0 }) { try OutputPath.check(path) }
        // A PBT trial's checkpoint is that run's record: trained on in place, it changed the run's
        // result under it (found by a user, following the checkpoint pbt printed).
        if let checkpoint, resume || replace, FileManager.default.fileExists(atPath: checkpoint),
           let run = RunMarker.runDirectory(holding: checkpoint) {
            throw CommandError("--checkpoint \(checkpoint) is a trial's checkpoint of the PBT run in \(run.path): training it in place would "
                               + "change that run's result; copy it and train the copy (cp \(shellQuoted(checkpoint)) mine.ckpt, then --checkpoint mine.ckpt)")
        }
        // One run at a time on a checkpoint or curve (found by a helper: a second run with --replace wrote over a
        // running one's files, and both said "done"): a lock beside each, `.NAME.lock`, gone when the run ends.
        let locks = try [checkpoint, curve].compactMap { $0 }.map { path in
            let url = URL(fileURLWithPath: path)
            return try FileLock(exclusive: url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".lock").path,
                                holder: path, removeOnRelease: true)
        }
        defer { withExtendedLifetime(locks) {} }
        // An earlier run's checkpoint or curve is not overwritten unless asked
        // (a rerun that forgot --resume replaced a trained model with a note).
        if let checkpoint, !resume, !replace, FileManager.default.fileExists(atPath: checkpoint) {
            throw CommandError("--checkpoint \(checkpoint) exists: give --resume to continue it, --replace to overwrite it with this run, or another path")
        }
        // A resume keeps a learning curve's earlier rows; anything else there is only replaced when asked.
        if let curve, !replace, let existing = try? String(contentsOfFile: curve, encoding: .utf8) {
            if !resume {
                throw CommandError("--curve \(curve) exists: give --replace to overwrite it, or another path (--resume keeps a curve's earlier rows)")
            }
            if existing.split(separator: "\n", maxSplits: 1).first.map(String.init) != TrainingReporter.curveHeader {
                throw CommandError("--curve \(curve) exists and is not a learning curve (its first line is not \(TrainingReporter.curveHeader)): "
                                   + "give --replace to overwrite it, or another path")
            }
        }
        var plan = try TrainingPlan(self)
        if let note = plan.recipeNote { printNote(note) }
        // What --resume continues from is checked before the corpus is loaded.
        let resumed = try resume ? checkpoint.map { try TrainingPlan.resumable($0) } : nil
        let resumedFrom = resumed?.model.step
        // A resumed run is its checkpoint's model, in its precision, unless
        // flags given again ask otherwise (a model then must match; another
        // precision is said).
        if let (loaded, _) = resumed, let checkpoint {
            if !recipe.given.contains("--preset"), !recipe.given.contains("--model-config"), loaded.config != plan.recipe.model {
                plan.recipe.model = loaded.config
                print("resuming with the checkpoint's model (\(loaded.config.shape))")
            }
            // Refused before any note on the model asked for (it printed one on the receptive field, then refused).
            guard loaded.config == plan.recipe.model else {
                let asked = recipe.modelConfig.map { "--model-config \($0)" } ?? recipe.preset.map { "--preset \($0)" } ?? "the default preset"
                let differences = loaded.config.differences(from: plan.recipe.model)
                throw CommandError("--resume: \(checkpoint) holds another model than \(asked) ("
                                   + differences.map { "\($0.field): the checkpoint's \($0.stored), \($0.given) asked" }.joined(separator: "; ")
                                   + "): drop --preset/--model-config to resume its model, or give a new --checkpoint")
            }
            if !recipe.given.contains("--precision") {
                plan.recipe.training.precision = loaded.precision
            } else if plan.recipe.training.precision != loaded.precision {
                printNote("note: the checkpoint was trained in \(loaded.precision); --precision \(plan.recipe.training.precision) trains in "
                      + "\(plan.recipe.training.precision) from here on")
            }
        }
        // A resumed run is the run it continues: the checkpoint's learning
        // rate and windows, unless flags given again change them.
        if let (_, header) = resumed, let note = try plan.continuing(header.metadata, given: Set(recipe.given + (steps != nil ? ["--steps"] : []) + (lr != nil ? ["--lr"] : [])
                                                                                    + (lrSchedule != nil ? ["--lr-schedule"] : [])),
                                                                     lrGiven: lr != nil || lrSchedule != nil) {
            printNote(note)
        }
        if let (loaded, _) = resumed, let checkpoint { try TrainingPlan.check(checkpoint, at: loaded.step, reaches: plan.steps) }
        // The intervals too: a resume without them stopped validating and checkpointing as the run did.
        var evalEvery = givenEvalEvery ?? Self.defaultEvalEvery
        var checkpointEvery = givenCheckpointEvery ?? 0
        if let (_, header) = resumed {
            var taken: [String] = []
            func stored(_ key: String) -> Int? { header.metadata[key].flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil } }
            if givenEvalEvery == nil, let value = stored("eval-every"), value != evalEvery {
                evalEvery = value
                taken.append("--eval-every \(value)")
            }
            if givenCheckpointEvery == nil, let value = stored("checkpoint-every"), value != checkpointEvery {
                checkpointEvery = value
                taken.append("--checkpoint-every \(value)")
            }
            if !taken.isEmpty { printNote("resuming with the checkpoint's \(taken.joined(separator: ", ")) (give a flag to change it)") }
        }
        let keepsCurve = resume && !replace
        if resume, replace, let curve, FileManager.default.fileExists(atPath: curve) {
            printNote("note: --replace: \(curve) starts afresh with this run's rows (its earlier rows are dropped)")
        }
        if keepsCurve, let curve, let (loaded, header) = resumed { try Self.checkCurve(curve, at: loaded.step, metadata: header.metadata) }
        // A resumed run trains on its checkpoint's corpus where that is still found (it looked in ./corpus, as
        // evaluate and generate no longer do: found by a helper), and not on another one unless told to.
        let source = resumed.map { corpus.orRecorded(checkpoint: $0.1.metadata) } ?? corpus.orRecorded(in: plan.recipe)
        let data = try source.load()
        try MemoryCheck.requireTraining(plan.recipe, on: data, windows: (.flag("--window", value: plan.recipe.training.window),
                                                                          .flag("--eval-targets", value: plan.recipe.evaluation.targets)))
        if let (_, header) = resumed, let checkpoint, let note = checkpointCorpusNote(checkpoint, header.metadata, data) {
            guard source.corpus != nil || ProcessInfo.processInfo.environment["PBTWAVE_CORPUS"] != nil || !keepsCurve || curve == nil else {
                throw CommandError("--resume: \(checkpoint) was trained on another corpus than \(data.directory), and its curve would mix "
                                   + "two validation sets: give the checkpoint's corpus with --corpus, or --corpus \(data.directory) "
                                   + "with --replace to train on this one from here (the curve then starts afresh)")
            }
            printNote(note)
        }
        if let learned = plan.recipe.corpus, learned != CorpusIdentity(data) {
            printNote("note: the schedule was learned on another corpus (\(learned.trainFiles) + \(learned.validationFiles) files) than \(data.directory)")
        }
        if let note = plan.recipe.training.receptiveFieldNote(for: plan.recipe.model) { printNote(note) }
        // The validation windows, built once (nil: too short for the clips, explained when training starts).
        let validator = try? plan.recipe.evaluation.validator(data, config: plan.recipe.model)
        if let note = validator?.overlapNote { printNote(note) }
        BLAS.setThreads(1)
        let progress = ProgressLine(label: "train", style: display.progress, quiet: quiet)
        let reporter = TrainingReporter(progress: progress, endStep: plan.steps, samplesPerStep: plan.recipe.training.batch * plan.recipe.training.window)
        // What the learning rate was, for a resume (`TrainingPlan.continuing`).
        // The validation windows too, so a resume scores on the same ones (one curve, one validation set).
        var metadata = plan.recipe.checkpointMetadata(corpus: CorpusIdentity(data), directory: data.directory)
        metadata["command"] = "train"
        // A resumed run keeps the seed it began with (--seed does not apply to it; it wrote 0: found by a helper).
        metadata["seed"] = resumed.flatMap { $0.1.metadata["seed"] } ?? "\(plan.recipe.seed)"
        // The run's end and intervals, so a resume without those flags goes on as the run did.
        metadata["steps"] = "\(plan.steps)"
        metadata["eval-every"] = "\(evalEvery)"
        metadata["checkpoint-every"] = "\(checkpointEvery)"
        // A resume that follows the checkpoint's stored schedule stores it again (found by a helper: the
        // first resume's checkpoint lost it, and the second trained at the default rate in silence).
        let followed = lr != nil ? nil : resumed.flatMap { r in r.1.metadata["lr-points"] != nil ? r.1.metadata["lr-schedule"] : nil }
        if let lrSchedule = lrSchedule ?? followed {
            metadata["lr-schedule"] = lrSchedule
            // The schedule itself, so a resume follows it without the file (it may have moved, or changed).
            metadata["lr-points"] = compactJSON(plan.schedule.points)
        } else if plan.schedule.points.count == 1 {
            metadata[LearningRateSchedule.hyperparameterName] = "\(plan.schedule.points[0].rate)"
        }
        let saving = checkpoint.map { CheckpointPlan(path: $0, every: checkpointEvery, metadata: metadata) }
        // The file --checkpoint names as it was before this run: after a
        // divergence, whether it holds this run's state or an older one's.
        let checkpointBefore = checkpoint.flatMap(Self.modified)
        // SIGINT, SIGTERM or SIGHUP: stop after the step, with the checkpoint
        // written there (nothing lost; --resume continues); again: at once.
        let signals = StopOnSignals { signal, again in
            if again {
                progress.message("train: \(signalName(signal)): stopping now")
                StopOnSignals.exitNow(signal)
            }
            progress.message("train: \(signalName(signal)): stopping after this step"
                             + (checkpoint.map { ", writing \($0)" } ?? " (no --checkpoint: nothing is kept)") + " (again: at once)")
        }
        defer { signals.cancel() }
        let stop = { signals.first != nil }
        // The curve is written with every checkpoint too (whole the first time, then the new rows
        // appended), so a run killed mid-way keeps the rows its checkpoint covers: a resume with
        // --curve goes on from them. (Every checkpoint: one skipped left a gap in the resumed curve.)
        var curveRowsWritten = 0
        let progressed = { (p: TrainingProgress) in
            reporter.step(p)
            guard let curve, let every = saving?.every, every > 0, p.step % every == 0 else { return }
            if curveRowsWritten == 0 {
                try? OutputPath.write(Self.curve(reporter.curveText, after: curve, from: keepsCurve ? resumedFrom : nil), to: curve)
            } else if let file = FileHandle(forWritingAtPath: curve) {
                _ = try? file.seekToEnd()
                try? file.write(contentsOf: Data(reporter.curveText(fromRow: curveRowsWritten).utf8))
                try? file.close()
            }
            curveRowsWritten = reporter.curveRowCount
        }
        let (summary, model) = try explainingShortClips(
            data, training: .flag("--window", value: plan.recipe.training.window), validation: .flag("--eval-targets", value: plan.recipe.evaluation.targets)
        ) { () throws -> (TrainingSummary, WaveNet) in
            if let (loaded, header) = resumed, let checkpoint {
                if seed != nil { printNote("note: --seed does not apply to a resumed run: it continues the checkpoint's window sampling") }
                let model = loaded
                loaded.threads = threads
                loaded.precision = plan.recipe.training.precision
                print("resuming \(checkpoint) at step \(model.step)")
                reporter.describe(model, data)
                let trainer = try Trainer(model: model, clips: data.train, options: plan.recipe.training,
                                          dataRNG: header.dataRNG ?? TrainingOptions.dataRNG(seed: plan.recipe.seed))
                return (try trainer.run(until: plan.steps, schedule: plan.schedule, validator: try validator ?? plan.recipe.evaluation.validator(data, config: model.config),
                                        evaluateEvery: evalEvery, checkpoint: saving, progress: progressed, stop: stop), model)
            } else {
                var started: WaveNet?
                let summary = try plan.recipe.replay(plan.schedule, until: plan.steps, on: data, threads: threads, evaluateEvery: evalEvery,
                                                     checkpoint: saving, started: { started = $0; reporter.describe($0, data) }, progress: progressed,
                                                     stop: stop, validator: validator)
                return (summary, started!)
            }
        }
        progress.finish()
        if let curve {
            try OutputPath.write(Self.curve(reporter.curveText, after: curve, from: keepsCurve ? resumedFrom : nil), to: curve)
            print("learning curve: \(curve)")
        }
        if let step = summary.stoppedAt, let signal = signals.first {
            // At the last step, the signal came during the final validation, which it ended.
            let last = step == plan.steps
            print("stopped at step \(step) of \(plan.steps) by \(signalName(signal))" + (last ? ", before its final validation" : "")
                  + (checkpoint.map {
                      last ? "; \($0) holds it, trained to the end: `pbtwave evaluate \($0)` validates it"
                          : "; \($0) holds it: the same command with --resume continues the run"
                  } ?? ""))
            throw ExitCode(128 + signal)
        }
        if let d = summary.divergence {
            var kept = ""
            if let checkpoint {
                let written = Self.modified(checkpoint).map { $0 != checkpointBefore } ?? false
                kept = written ? "; \(checkpoint) holds this run's last checkpoint before it"
                    : resumed != nil ? "; \(checkpoint) still holds the checkpoint this run resumed from"
                    : checkpointBefore != nil ? "; this run wrote no checkpoint before it (\(checkpoint) is an earlier run's, left as it was)"
                    : "; this run wrote no checkpoint before it"
            }
            throw CommandError("training diverged at step \(d.step) (loss \(d.loss.isNaN ? "nan" : "\(d.loss)")"
                               + (d.inState ? ", its optimizer state overflowed" : "") + ", learning rate \(d.learningRate)); "
                               + "try a smaller --lr" + kept)
        }
        let unigram = TrainingReporter.unigram(on: try validator ?? plan.recipe.evaluation.validator(data, config: model.config), data)
        print(String(format: "done: %ld steps, validation NLL %.4f bits/sample (unigram on the same windows %.3f)%@", model.step,
                     summary.validationNLL ?? .nan, unigram, checkpoint.map { ", checkpoint \($0)" }
                         ?? "; no checkpoint was written (give --checkpoint FILE to keep the model for evaluate, generate or --resume)"))
        if let warning = TrainingReporter.baselineWarning(nll: summary.validationNLL ?? .nan, unigram: unigram, what: "the model") {
            printNote(warning)
        }
    }

    /// Refuses to go on with a learning curve that is not the resumed
    /// checkpoint's (before: another run's rows were kept and this run's
    /// appended, one curve of two runs): its row at the checkpoint's `step`
    /// must hold the training loss the checkpoint recorded; a curve with no
    /// row there is refused too (a shorter run's was kept, and spliced).
    static func checkCurve(_ path: String, at step: Int, metadata: [String: String]) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let rows = text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let steps = rows.compactMap { $0.first.flatMap { Int($0) } }
        // Rows past the checkpoint's step (a run killed after it wrote them, or another run's longer curve: found by a
        // helper, they were dropped without a word) give way to this run's: said.
        if let last = steps.max(), last > step {
            printNote("note: --curve \(path) goes on to step \(last); its rows after the checkpoint's step \(step) are replaced by this run's "
                      + "(give another --curve to keep them)")
        }
        if let row = rows.first(where: { $0.first.flatMap { Int($0) } == step }) {
            guard let stored = metadata[CheckpointPlan.lossKey], row.count > 1, String(row[1]) != stored else { return }
            throw CommandError("--curve \(path) is not this checkpoint's learning curve: its row at step \(step) has a train loss of \(row[1]) "
                               + "bits, the checkpoint's step had \(stored); give the run's own curve, another path, or --replace to start it afresh")
        }
        // The curve is written with every checkpoint, so the run's own reaches the checkpoint's step.
        let reach = steps.max().map { "its rows stop at step \($0)" } ?? "it has no rows"
        throw CommandError("--curve \(path) is not this checkpoint's learning curve: \(reach), and the checkpoint is at step \(step); "
                           + "give the run's own curve, another path, or --replace to start it afresh")
    }

    /// When the file at `path` was last modified, nil if there is none.
    static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    /// The learning curve to write: `text` (this session's), after the rows
    /// up to step `from` of the curve already at `path` when the run resumed
    /// from that step, so a resumed run's curve covers the whole run.
    static func curve(_ text: String, after path: String, from: Int?) -> String {
        guard let from, let earlier = try? String(contentsOfFile: path, encoding: .utf8) else { return text }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let old = earlier.split(separator: "\n")
        guard let header = lines.first, old.first == header else { return text }
        let kept = old.dropFirst().filter { row in Int(row.split(separator: ",").first ?? "").map { $0 <= from } ?? false }
        return ([header] + kept + lines.dropFirst()).joined(separator: "\n")
    }
}
