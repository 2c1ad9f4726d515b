import PBTFileSupport
import Foundation
import PBTSchedules

// The experiment's raw results, as the harness records them and the report
// reads them. Everything the report shows is computed from these values, so
// `results.json` alone is enough to redraw it (`pbtwave report render`).

/// One trial: a short piece of training that starts from its parent's
/// checkpoint (or from scratch) and ends with an evaluation.
///
/// Random search and the fixed learning rate are recorded as trials too: each
/// evaluation segment of a model trained from scratch is one trial whose
/// parent is the previous segment of the same model, with the same
/// hyperparameters.
public struct TrialResult: Codable, Sendable, Hashable {
    /// Unique within its run.
    public var id: Int
    /// The trial whose checkpoint this one started from; nil: from scratch.
    public var parent: Int?
    public var generation: Int
    /// For example `["lr": 0.003]`; the report reads `"lr"`.
    public var hyperparameters: [String: Double]
    /// Model iteration (global step along the lineage) at the start.
    public var startStep: Int
    /// Training steps this trial ran (its compute).
    public var steps: Int
    /// Validation NLL in bits per sample; nil or non-finite: failed or diverged.
    public var validationNLL: Double?
    /// Order in which trials finished within the run: 0, 1, 2, …
    public var completionIndex: Int
    public var worker: Int?
    /// Seconds since the run started when this trial finished.
    public var wallSeconds: Double?
    /// For a trial whose parent was chosen by a binary tournament (PBT only):
    /// the opponent the parent beat in that tournament. Stored on the child
    /// because one trial can win several tournaments against different
    /// opponents. nil for trials from scratch, non-PBT methods, or truncation
    /// selection.
    public var tournamentLoser: Int?

    public init(
        id: Int, parent: Int?, generation: Int, hyperparameters: [String: Double],
        startStep: Int, steps: Int, validationNLL: Double?, completionIndex: Int,
        worker: Int? = nil, wallSeconds: Double? = nil, tournamentLoser: Int? = nil
    ) {
        self.id = id
        self.parent = parent
        self.generation = generation
        self.hyperparameters = hyperparameters
        self.startStep = startStep
        self.steps = steps
        self.validationNLL = validationNLL
        self.completionIndex = completionIndex
        self.worker = worker
        self.wallSeconds = wallSeconds
        self.tournamentLoser = tournamentLoser
    }

    /// Model iteration at the end of the trial: the x of the model-iteration clock.
    public var endStep: Int { startStep + steps }

    /// The validation NLL when the trial succeeded (finite), else nil.
    public var finiteNLL: Double? {
        guard let nll = validationNLL, nll.isFinite else { return nil }
        return nll
    }

    /// The learning rate, `hyperparameters["lr"]`.
    public var learningRate: Double? { hyperparameters[LearningRateSchedule.hyperparameterName] }
}

/// A model scored on the whole validation set: every sample with a full
/// receptive field (`pbtwave evaluate --all`), not the run's fixed windows.
public struct WholeSetScore: Codable, Sendable, Hashable {
    /// The trial whose checkpoint was scored (nil for a replay).
    public var trial: Int?
    /// Mean NLL, bits per sample.
    public var nll: Double
    /// How many samples were scored.
    public var samples: Int

    public init(trial: Int?, nll: Double, samples: Int) {
        self.trial = trial
        self.nll = nll
        self.samples = samples
    }
}

/// One method run with one seed.
public struct MethodRun: Codable, Sendable {
    /// One of `MethodName`'s constants for the four standard methods.
    public var method: String
    public var seed: Int
    /// W: trials that run at the same time. The steps-per-worker clock is compute / W.
    public var workers: Int
    /// P: trials per generation (PBT-5x20: 20; the other methods: 5).
    public var population: Int
    public var trials: [TrialResult]
    public var wallSeconds: Double
    /// The run's final best model on the whole validation set: the trial
    /// with the lowest window NLL among those whose checkpoint the run kept
    /// (its final population). nil in results written before whole-set
    /// scores, or when every trial failed.
    public var wholeSet: WholeSetScore?

    public init(method: String, seed: Int, workers: Int, population: Int, trials: [TrialResult], wallSeconds: Double,
                wholeSet: WholeSetScore? = nil) {
        self.method = method
        self.seed = seed
        self.workers = workers
        self.population = population
        self.trials = trials
        self.wallSeconds = wallSeconds
        self.wholeSet = wholeSet
    }

    /// Whether this is a PBT run: `MethodName.isPBT(method)`.
    public var isPBT: Bool { MethodName.isPBT(method) }
}

/// Claim (d): a PBT run's learned schedule replayed in one plain training
/// run from scratch. The experiment replays the final best of every seed
/// of the winning method, so the claim has one pair per seed.
public struct ReplayResult: Codable, Sendable {
    /// The method and seed of the PBT run whose winner was replayed.
    public var method: String
    public var seed: Int
    /// On the run's fixed validation windows.
    public var pbtWinnerNLL: Double
    public var replayNLL: Double
    /// The replayed learning-rate schedule.
    public var schedule: LearningRateSchedule
    /// Both on the whole validation set (nil in results written before whole-set scores).
    public var pbtWinnerWholeSet: WholeSetScore?
    public var replayWholeSet: WholeSetScore?

    public init(method: String, seed: Int, pbtWinnerNLL: Double, replayNLL: Double, schedule: LearningRateSchedule,
                pbtWinnerWholeSet: WholeSetScore? = nil, replayWholeSet: WholeSetScore? = nil) {
        self.method = method
        self.seed = seed
        self.pbtWinnerNLL = pbtWinnerNLL
        self.replayNLL = replayNLL
        self.schedule = schedule
        self.pbtWinnerWholeSet = pbtWinnerWholeSet
        self.replayWholeSet = replayWholeSet
    }
}

/// Everything one `pbtwave experiment` produced: the input of the report.
public struct ExperimentResults: Codable, Sendable {
    /// The model as the report names it: its preset, and its precision when recorded.
    public var modelDescription: String { precision.map { "\(modelPreset) in \($0)" } ?? modelPreset }

    /// "quick" or "paper".
    public var preset: String
    /// The WaveNet preset, e.g. "tiny" or "compact".
    public var modelPreset: String
    /// The products' operand precision ("fp32" or "bf16"); nil in files
    /// written before it was recorded (those runs were fp32).
    public var precision: String?
    /// A short description of the machine, e.g. "2-core x86-64, Debian 12".
    public var machine: String
    /// S: training steps per trial.
    public var stepsPerTrial: Int
    /// The compute budget every method gets (training steps, all workers).
    public var totalStepsPerMethod: Int
    public var runs: [MethodRun]
    public var replays: [ReplayResult]
    /// ISO 8601 start time.
    public var startedAt: String
    public var wallSeconds: Double
    /// The claims as the report evaluated them when it wrote this file: a
    /// record for readers of results.json. The report recomputes them from
    /// the raw numbers above and never reads these back.
    public var claims: [ClaimRow]?

    public init(
        preset: String, modelPreset: String, machine: String, stepsPerTrial: Int, totalStepsPerMethod: Int,
        runs: [MethodRun], replays: [ReplayResult], startedAt: String, wallSeconds: Double, precision: String? = nil
    ) {
        self.preset = preset
        self.modelPreset = modelPreset
        self.precision = precision
        self.machine = machine
        self.stepsPerTrial = stepsPerTrial
        self.totalStepsPerMethod = totalStepsPerMethod
        self.runs = runs
        self.replays = replays
        self.startedAt = startedAt
        self.wallSeconds = wallSeconds
    }
}

/// The method names the report knows: it orders, colours and compares
/// methods by these strings. Other names are drawn after them.
public enum MethodName {
    public static let pbt5x5 = "PBT-5x5"
    public static let pbt5x20 = "PBT-5x20"
    public static let randomSearch = "Random search"
    public static let fixedLR = "Fixed LR"
    /// Beyond the paper: PBT-5x5 with PB2's GP-bandit explore.
    public static let pb2 = "PB2-5x5"
    /// Beyond the paper: PBT-5x5 whose explore may leave the prior's range.
    public static let pbtWideRange = "PBT-5x5 wide range"
    /// The paper's four methods, which its claims (a) to (c) are about.
    public static let paperMethods = [pbt5x5, pbt5x20, randomSearch, fixedLR]
    public static let standardOrder = paperMethods + [pb2, pbtWideRange]

    /// Whether `method` is a PBT method (PBT or PB2): only those compete for
    /// the overall winner and have a learned schedule.
    public static func isPBT(_ method: String) -> Bool { method.hasPrefix("PBT") || method.hasPrefix("PB2") }
}

extension ExperimentResults {
    /// The encoder `results.json` is written with. Non-finite numbers (a
    /// diverged trial's NLL) become the strings "nan", "inf", "-inf", which
    /// plain JSON cannot hold; decode with `jsonDecoder()`.
    public static func jsonEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// The decoder matching `jsonEncoder()`.
    public static func jsonDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    /// Reads a `results.json` written by `ExperimentReport.write`.
    public static func read(from url: URL) throws -> ExperimentResults {
        if PathKind(of: url.path) == .folder {
            let inside = url.appendingPathComponent("results.json").path
            throw ReportError.unreadable(path: url.path, reason: "it is a folder"
                + (FileManager.default.fileExists(atPath: inside) ? "; give its results.json: \(inside)" : ", not an experiment's results.json"))
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ReportError.unreadable(path: url.path, reason: FileErrorText.cause(of: error) ?? error.localizedDescription)
        }
        if let problem = JSONStrictnessProblem.first(in: data) { throw ReportError.malformedResults(path: url.path, reason: "\(problem)") }
        let results: ExperimentResults
        do {
            results = try jsonDecoder().decode(ExperimentResults.self, from: data)
        } catch {
            throw ReportError.malformedResults(path: url.path, reason: DecodingErrorText.sentence(for: error, data: data))
        }
        if let problem = results.inconsistency { throw ReportError.malformedResults(path: url.path, reason: problem) }
        return results
    }

    /// What makes these results impossible as `pbtwave experiment` writes
    /// them (a file edited by hand, or damaged), or nil: sizes below 1
    /// (steps per trial, the budget, a run's workers and population), an
    /// unknown precision, a method run twice with one seed, a trial id used
    /// twice in a run, a parent or tournament loser the run does not hold, a
    /// parent that is not an earlier trial (the trial itself, a cycle),
    /// negative steps or a learning rate that is not positive, a negative
    /// NLL (bits are never below 0), a whole-set NLL that is not finite, a whole-set score of a trial that did
    /// not finish, or a replay of a run the file does not
    /// hold (its claim would count seeds that are gone).
    public var inconsistency: String? {
        func negative(_ nll: Double?) -> Bool { nll.map { $0.isFinite && $0 < 0 } ?? false }
        for (field, value) in [("stepsPerTrial", stepsPerTrial), ("totalStepsPerMethod", totalStepsPerMethod)] where value < 1 {
            return "\(field) is \(value); it must be at least 1"
        }
        if let precision, !["fp32", "bf16"].contains(precision) { return "precision '\(precision)' is neither fp32 nor bf16" }
        var seen = Set<String>()
        for run in runs {
            let name = "\(run.method) seed \(run.seed)"
            guard seen.insert("\(run.method)\u{1F}\(run.seed)").inserted else { return "it holds \(name) twice" }
            for (field, value) in [("workers", run.workers), ("population", run.population)] where value < 1 {
                return "\(name): \(field) is \(value); it must be at least 1"
            }
            let ids = Set(run.trials.map(\.id))
            guard ids.count == run.trials.count else { return "\(name): a trial id appears twice" }
            for trial in run.trials {
                let what = "\(name), trial \(trial.id)"
                if let parent = trial.parent, !ids.contains(parent) { return "\(what): its parent \(parent) is not a trial of the run" }
                // A child is made after its parent ran, so its id is higher: a trial its own parent (or a cycle) was drawn (found by a helper).
                if let parent = trial.parent, parent >= trial.id {
                    return "\(what): its parent is \(parent == trial.id ? "itself" : "\(parent), a later trial"); a parent is always an earlier trial"
                }
                if let loser = trial.tournamentLoser, !ids.contains(loser) {
                    return "\(what): its tournament loser \(loser) is not a trial of the run"
                }
                for (field, value) in [("steps", trial.steps), ("startStep", trial.startStep), ("generation", trial.generation),
                                       ("completionIndex", trial.completionIndex)] where value < 0 {
                    return "\(what): \(field) is \(value); it is never negative"
                }
                if let lr = trial.learningRate, !(lr > 0 && lr.isFinite) { return "\(what): its learning rate \(lr) is not a positive number" }
            }
            if let trial = run.trials.first(where: { negative($0.validationNLL) }) {
                return "\(run.method) seed \(run.seed), trial \(trial.id): validation NLL \(trial.validationNLL!) is negative (bits per sample are never below 0)"
            }
            if negative(run.wholeSet?.nll) { return "\(run.method) seed \(run.seed): its whole-set NLL \(run.wholeSet!.nll) is negative" }
            // The scored checkpoint's loss was finite, and so are its weights: a NaN here ranked the method first (found by a helper).
            if let nll = run.wholeSet?.nll, !nll.isFinite {
                return "\(run.method) seed \(run.seed): its whole-set NLL \(nll) is not a finite number (drop the wholeSet score to use the windows' NLL)"
            }
            if let scored = run.wholeSet, !run.trials.contains(where: { $0.finiteNLL != nil && (scored.trial == nil || $0.id == scored.trial) }) {
                return "\(run.method) seed \(run.seed): its whole-set score is of "
                    + (scored.trial.map { "trial \($0), which is not a finished trial of the run" } ?? "a run none of whose trials finished")
            }
        }
        let held = Set(runs.map { "\($0.method)\u{1F}\($0.seed)" })
        if let orphan = replays.first(where: { !held.contains("\($0.method)\u{1F}\($0.seed)") }) {
            return "it replays \(orphan.method) seed \(orphan.seed), a run it does not hold"
        }
        if let bad = replays.first(where: { negative($0.replayNLL) || negative($0.pbtWinnerNLL) }) {
            return "the replay of \(bad.method) seed \(bad.seed) has a negative NLL"
        }
        return nil
    }

    /// The runs grouped by method, in `MethodName.standardOrder` and then in
    /// order of first appearance; each method's runs sorted by seed.
    public var runsByMethod: [(method: String, runs: [MethodRun])] { Self.grouped(byMethod: runs) }

    /// `runs` grouped as `runsByMethod` groups a results value's runs.
    static func grouped(byMethod runs: [MethodRun]) -> [(method: String, runs: [MethodRun])] {
        var order: [String] = []
        var groups: [String: [MethodRun]] = [:]
        for run in runs {
            if groups[run.method] == nil { order.append(run.method) }
            groups[run.method, default: []].append(run)
        }
        let known = MethodName.standardOrder.filter { groups[$0] != nil }
        let others = order.filter { !MethodName.standardOrder.contains($0) }
        return (known + others).map { method in
            (method, groups[method]!.sorted { $0.seed < $1.seed })
        }
    }
}

/// Errors a user can cause when writing or re-reading a report.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case malformedResults(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    /// The report's folder is a file.
    case notAFolder(path: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            "cannot read \(path): \(trimmed(reason)). Pass the results.json of an experiment run directory."
        case let .malformedResults(path, reason):
            "\(path) is not an experiment results file (\(trimmed(reason))). It must be the results.json that `pbtwave experiment` wrote."
        case let .notAFolder(path):
            "\(path) is a file, not a folder: give a folder for the report (it is created if missing)."
        case let .cannotWrite(path, reason):
            "cannot write \(path): \(trimmed(reason)). Check that the run directory is writable and the disk is not full."
        }
    }

    /// Foundation's messages end with a period; ours continue after them.
    private func trimmed(_ reason: String) -> String {
        reason.hasSuffix(".") ? String(reason.dropLast()) : reason
    }
}
