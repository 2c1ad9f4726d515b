import ArgumentParser
import PBT
import PBTFileSupport
import Foundation
import PBTSchedules
import PBTWaveAudio
import PBTWaveModel

/// What `pbtwave train` will do: the schedule, the recipe (a schedule file's,
/// with the flags given applied over it) and the end step.
struct TrainingPlan {
    var schedule: LearningRateSchedule
    var recipe: TrainingRecipe
    var steps: Int
    /// Where the recipe came from and which flags overrode it, and the
    /// schedule file's columns train does not follow (nil: nothing to say).
    var recipeNote: String?

    init(_ command: TrainCommand) throws {
        guard let path = command.lrSchedule else {
            schedule = try LearningRateSchedule(constant: command.lr ?? 1e-3)
            recipe = try command.recipe.recipe(seed: command.seed ?? 0)
            steps = command.steps ?? 1000
            return
        }
        let file = try HyperparameterSchedule.read(from: URL(fileURLWithPath: path))
        do { schedule = try LearningRateSchedule(file) } catch { throw ScheduleFileError.inFile(path: path, error) }
        steps = command.steps ?? file.endStep ?? 1000
        if command.steps == nil, let end = file.endStep, !(1...TrainCommand.maxSteps).contains(end) {
            throw CommandError("\(path): end_step \(end) cannot be trained to (1 to 10^9 steps); give --steps")
        }
        // train follows the learning rate alone; say so rather than drop the rest unseen.
        let ignored = file.names.filter { $0 != LearningRateSchedule.hyperparameterName }
        let ignoredNote = ignored.isEmpty ? nil
            : "note: \(path) also schedules \(ignored.joined(separator: ", ")); train follows only \(LearningRateSchedule.hyperparameterName) "
              + "(a schedule learned with a training program replays with that program)"
        // A schedule a training program learned replays with that program (found by a user: "missing field model").
        if let exec = try? file.recipe?.decoded(as: ExecRecipe.self), exec.runner == "exec" {
            let program = ([exec.command.program] + exec.command.arguments).joined(separator: " ")
            throw CommandError("\(path) was learned by a run of a training program (\(program), run in \(exec.workingDirectory)), "
                               + "not of WaveNet: replay it with that program (each row gives a step and the hyperparameters from it on); "
                               + "`pbtwave train --lr-schedule` replays schedules learned with --model wavenet")
        }
        let fromFile: TrainingRecipe?
        do { fromFile = try TrainingRecipe(file) } catch { throw CommandError("\(path): \(error)") }
        guard let learned = fromFile else {
            recipe = try command.recipe.recipe(seed: command.seed ?? 0)
            // Said, so that a replay that is not one does not pass unseen (a CSV written as schedule.json).
            // (A resume trains the checkpoint's model whatever this says: it is not named here.)
            let none = "note: \(path) carries no training recipe (a CSV schedule, or JSON without \"recipe\"), so this run trains "
                + (command.resume ? "with the checkpoint's model and windows" : "\(recipe.model == .compact ? "the compact model" : "the model") with the flags given and the defaults")
                + ", not as the schedule was learned; `pbtwave schedule export RUN_DIR --format json` writes a schedule with its recipe"
            recipeNote = ([none] + (ignoredNote.map { [$0] } ?? [])).joined(separator: "\n")
            return
        }
        recipe = try command.recipe.apply(to: learned)
        if let seed = command.seed { recipe.seed = seed }
        let overrides = command.recipe.given + (command.seed != nil ? ["--seed"] : []) + (command.steps != nil ? ["--steps"] : [])
        recipeNote = "recipe: from \(path)" + (overrides.isEmpty ? " (replayed as learned)" : "; overridden by \(overrides.joined(separator: ", "))")
            + (ignoredNote.map { "\n" + $0 } ?? "")
    }
}

extension TrainingPlan {
    /// On `--resume`: takes the checkpoint's learning rate (a constant one,
    /// or the schedule it was trained along, as it was then), end step and
    /// windows (`metadata`, as `train` and PBT trials write it) for those
    /// flags not given again (`given`: the recipe flags and `--steps`
    /// given), so a resumed run continues the run it resumes; returns what
    /// it took, as a note (nil: nothing). A checkpoint of a build that did
    /// not store its schedule has it only named.
    mutating func continuing(_ metadata: [String: String], given: Set<String>, lrGiven: Bool) throws -> String? {
        var taken: [String] = []
        for (flag, key, path) in [("--batch", "batch", \TrainingOptions.batch), ("--window", "window", \TrainingOptions.window),
                                  ("--context", "context", \TrainingOptions.context)] where !given.contains(flag) {
            if let stored = metadata[key].flatMap(Int.init), stored != recipe.training[keyPath: path] {
                recipe.training[keyPath: path] = stored
                taken.append("\(flag) \(stored)")
            }
        }
        if !given.contains("--steps"), let stored = metadata["steps"].flatMap(Int.init), (1...TrainCommand.maxSteps).contains(stored), stored != steps {
            steps = stored
            taken.append("--steps \(stored)")
        }
        let recorded = EvaluationOptions.recorded(in: metadata)
        for (flag, value, path) in [("--eval-windows", recorded.windows, \EvaluationOptions.windows),
                                    ("--eval-targets", recorded.targets, \EvaluationOptions.targets)] where !given.contains(flag) {
            if let stored = value, stored != recipe.evaluation[keyPath: path] {
                recipe.evaluation[keyPath: path] = stored
                taken.append("\(flag) \(stored)")
            }
        }
        var notes: [String] = []
        // Flags given again with other values win, and say so (a changed validation set went unsaid,
        // and the curve's validation column mixed two).
        var changed: [String] = []
        for (flag, key, value) in [("--batch", "batch", recipe.training.batch), ("--window", "window", recipe.training.window),
                                   ("--context", "context", recipe.training.context)] where given.contains(flag) {
            if let stored = metadata[key].flatMap(Int.init), stored != value { changed.append("\(flag) \(value) (the checkpoint's run: \(stored))") }
        }
        for (flag, value, stored) in [("--eval-windows", recipe.evaluation.windows, recorded.windows),
                                      ("--eval-targets", recipe.evaluation.targets, recorded.targets)] where given.contains(flag) {
            if let stored, stored != value {
                changed.append("\(flag) \(value) (the checkpoint's run: \(stored); validation numbers from here on are on other windows)")
            }
        }
        // A learning rate given again over a learned schedule replaces it: said, as other changed flags are (found by a helper).
        if given.contains("--lr"), let file = metadata["lr-schedule"] {
            changed.append("--lr \(schedule.rate(atStep: 0)) (the checkpoint's run followed --lr-schedule \(file), which this one does not)")
        }
        // And over a constant one (found by a helper: every other changed flag had its note, the learning rate none).
        if given.contains("--lr"), metadata["lr-schedule"] == nil,
           let stored = metadata[LearningRateSchedule.hyperparameterName].flatMap(Double.init), stored != schedule.rate(atStep: 0) {
            changed.append("--lr \(schedule.rate(atStep: 0)) (the checkpoint's run: \(stored))")
        }
        if !changed.isEmpty { notes.append("note: going on with " + changed.joined(separator: ", ")) }
        if !lrGiven {
            if let stored = metadata[LearningRateSchedule.hyperparameterName].flatMap(Double.init), stored != schedule.rate(atStep: 0) {
                schedule = try LearningRateSchedule(constant: stored)
                taken.append("--lr \(stored)")
            } else if let file = metadata["lr-schedule"], let text = metadata["lr-points"],
                      let points = try? JSONDecoder().decode([LearningRateSchedule.Point].self, from: Data(text.utf8)),
                      let stored = try? LearningRateSchedule(points: points) {
                schedule = stored
                taken.append("learning-rate schedule (of --lr-schedule \(file), \(points.count) change point\(points.count == 1 ? "" : "s"))")
            } else if let file = metadata["lr-schedule"] {
                notes.append("note: the checkpoint was trained along --lr-schedule \(file); give it again to follow it "
                             + "(this run trains at --lr \(schedule.rate(atStep: 0)))")
            }
        }
        if !taken.isEmpty {
            notes.insert("resuming with the checkpoint's \(taken.joined(separator: ", ")) (give a flag to change it)", at: 0)
        }
        return notes.isEmpty ? nil : notes.joined(separator: "\n")
    }

    /// The checkpoint `--resume` continues from, loaded: a missing file is
    /// an error (before: training from scratch).
    static func resumable(_ path: String) throws -> (model: WaveNet, header: CheckpointHeader) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError("--resume: \(path) does not exist; give the checkpoint to continue, or drop --resume to start afresh")
        }
        return try WaveNet.load(from: path)
    }

    /// Refuses to resume a checkpoint at `step` that is already at or past
    /// `steps`, the total to reach (before: a "nan" result).
    static func check(_ path: String, at step: Int, reaches steps: Int) throws {
        guard step < steps else {
            throw CommandError("""
                --resume: \(path) is already at step \(step), and --steps \(steps) is the total to reach: \
                give --steps above \(step) to train on
                """)
        }
    }
}

/// The progress line, the learning curve and the summary lines of a run.
final class TrainingReporter {
    let progress: ProgressLine
    let endStep: Int
    let samplesPerStep: Int
    private let start = ContinuousClock.now
    private var firstStep: Int?
    private var recentLoss = Double.nan
    static let curveHeader = "step,train_bits,validation_bits,lr"
    private var rows = [curveHeader]
    private(set) var unigram = Double.nan

    init(progress: ProgressLine, endStep: Int, samplesPerStep: Int) {
        self.progress = progress
        self.endStep = endStep
        self.samplesPerStep = samplesPerStep
    }

    var curveText: String { rows.joined(separator: "\n") + "\n" }
    /// The curve's rows, the header first.
    var curveRowCount: Int { rows.count }
    /// The curve's rows from `row` on (0: the header), as text.
    func curveText(fromRow row: Int) -> String { rows[row...].map { $0 + "\n" }.joined() }

    /// The unigram baseline on the samples `validator` scores: the NLL a
    /// model must beat there (the whole set's can differ by tenths of a bit
    /// from a few fixed windows').
    static func unigram(on validator: Validator, _ corpus: SpeechCorpus) -> Double {
        crossEntropyBits(histogram: validator.scoredCodeHistogram(), model: corpus.train.codeHistogram())
    }

    /// A warning when a model ends no better than the unigram baseline on
    /// the same validation windows (it learned nothing: the learning rate
    /// was far off, or training too short), or nil.
    static func baselineWarning(nll: Double, unigram: Double, what: String) -> String? {
        guard nll.isFinite, unigram.isFinite, nll >= unigram else { return nil }
        return String(format: "warning: %@ has a validation NLL of %.4f bits/sample, no better than the unigram baseline on the same "
                      + "validation windows (%.3f): the model learned nothing; try other learning rates or more steps", what, nll, unigram)
    }

    /// The model and corpus, and the unigram baseline the NLL is read against.
    func describe(_ model: WaveNet, _ corpus: SpeechCorpus) {
        unigram = crossEntropyBits(histogram: corpus.validation.codeHistogram(), model: corpus.train.codeHistogram())
        print("model: \(model.parameterCount) parameters, receptive field \(model.config.receptiveField) sample\(model.config.receptiveField == 1 ? "" : "s"), \(model.precision); "
              + String(format: "corpus: %.1f min train, %.1f min validation", corpus.train.seconds / 60, corpus.validation.seconds / 60))
        if let warning = model.precisionWarning { printNote(warning) }
        print(String(format: "baseline: unigram mu-law cross-entropy of the validation set %.3f bits/sample", unigram))
    }

    func step(_ p: TrainingProgress) {
        let first = firstStep ?? p.step - 1
        firstStep = first
        recentLoss = recentLoss.isNaN ? p.loss : 0.9 * recentLoss + 0.1 * p.loss
        let elapsed = elapsedSeconds(since: start)
        let done = Double(p.step - first)
        progress.update(String(format: "step %ld/%ld  loss %.3f bits  lr %.3g  %.0f samples/s  ETA %@", p.step, endStep, recentLoss,
                               p.learningRate, done * Double(samplesPerStep) / elapsed,
                               ProgressLine.duration(Double(endStep - p.step) * elapsed / done)), now: elapsed)
        if let nll = p.validationNLL {
            progress.finish()
            print(String(format: "step %ld: train loss %.3f bits (recent average), validation NLL %.4f bits/sample", p.step, recentLoss, nll))
        }
        let validation = p.validationNLL.map { "\($0)" } ?? ""
        rows.append("\(p.step),\(p.loss),\(validation),\(p.learningRate)")
    }
}

/// Output files: checked before the work that produces them, written atomically.
enum OutputPath {
    /// Throws unless `path`'s folder exists and is writable, and `path` is not
    /// a folder; with `replace` false (`flag` names it), also when it exists:
    /// an output is overwritten only when asked (found by users: a schedule
    /// written over its run's trial store, a WAV over the checkpoint it came from).
    static func check(_ path: String, flag: String? = nil, replace: Bool = true) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandError("cannot write \(path): " + (FileManager.default.fileExists(atPath: folder)
                ? "\(folder) is a file, not a folder" : "the folder \(folder) does not exist"))
        }
        // A device, pipe or a process's stream is no file to replace, --replace or not.
        let target = try AtomicFile.destination(for: path)
        if !replace, let flag, FileManager.default.fileExists(atPath: path) {
            throw CommandError("\(flag) \(path) exists: give --replace to overwrite it, or another path")
        }
        guard access(folder, W_OK) == 0 else { throw CommandError("cannot write \(path): the folder \(folder) is not writable") }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CommandError("cannot write \(path): it is a folder")
        }
        // Root passes access() where it still cannot create a file (/proc, a read-only mount): try it.
        let probe = AtomicFile.temporaryPath(for: target)
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            // Where the file would land: a symbolic link's target may be in another folder.
            throw CommandError("cannot write \(path): cannot create a file in \(URL(fileURLWithPath: target).deletingLastPathComponent().path): "
                               + String(cString: strerror(errno)))
        }
        close(fd)
        unlink(probe)
    }

    /// Throws when two of `paths` (flag, path; nil: not given) name the
    /// same file, e.g. the checkpoint and the curve, or an input and an
    /// output: one would overwrite the other.
    static func distinct(_ paths: [(flag: String, path: String?)]) throws {
        var seen: [String: String] = [:]
        for case let (flag, path?) in paths {
            let key = (try? AtomicFile.destination(for: path)).map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? path
            if let other = seen[key] {
                throw CommandError("\(other) and \(flag) name the same file, \(path): one would overwrite the other; give each its own")
            }
            seen[key] = flag
        }
    }

    static func write(_ text: String, to path: String) throws {
        try AtomicFile.write(Data(text.utf8), to: URL(fileURLWithPath: path))
    }
}

/// A note when the checkpoint at `path` records (in `metadata`) that it was
/// trained on another corpus than `data`: its losses there do not compare
/// with the ones its training reported. Nil for the same corpus, or a
/// checkpoint that records none.
func checkpointCorpusNote(_ path: String, _ metadata: [String: String], _ data: SpeechCorpus) -> String? {
    guard CorpusIdentity(data).differs(fromRecordedIn: metadata) else { return nil }
    return "note: \(path) was trained on another corpus than \(data.directory): its losses here do not compare with its training's"
}
