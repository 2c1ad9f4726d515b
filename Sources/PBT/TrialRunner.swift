@_exported import PBTFileSupport  // AtomicFile, for runners writing their checkpoints
@_exported import PBTSchedules  // HyperparameterValue, the schedule files
@_exported import PBTSeededRNG  // Xoshiro256, in ExploreStrategy and SearchSpace.sample
import Foundation

/// Where a checkpoint lives. Runners read `parent` and write `output`; the
/// store keeps the path relative to the run directory.
public struct CheckpointRef: Sendable, Hashable, CustomStringConvertible {
    /// Absolute file path (kept as a string: `URL` path handling showed up in
    /// the per-trial overhead profile).
    public var path: String
    public init(path: String) { self.path = path }
    public init(url: URL) { self.path = url.path }
    public var url: URL { URL(fileURLWithPath: path) }
    public var description: String { path }
}

/// One piece of training, as the controller planned it: what a runner
/// needs (hyperparameters, steps, start step, seed, parent) and how the
/// trial came about (explore's operations, the failed trial it replaces).
public struct TrialSpec: Sendable, Hashable {
    /// Unique within the run, assigned by the controller (1, 2, …).
    public var id: Int
    public var generation: Int
    public var parentID: Int?
    public var hyperparameters: Hyperparameters
    /// The global step the parent ended at (0 from scratch): the model's own
    /// iteration count, used to index schedules and data.
    public var startStep: Int
    /// Steps to train in this trial.
    public var steps: Int
    /// A fixed function of the run seed and `id` (`PBTSettings.trialSeed`).
    public var seed: UInt64
    /// What explore did (empty for prior samples and unmutated continues).
    public var operations: String
    /// The failed trial this one replaces, if it is a refill.
    public var refillOf: Int?

    public init(
        id: Int, generation: Int, parentID: Int?, hyperparameters: Hyperparameters,
        startStep: Int, steps: Int, seed: UInt64, operations: String = "", refillOf: Int? = nil
    ) {
        self.id = id
        self.generation = generation
        self.parentID = parentID
        self.hyperparameters = hyperparameters
        self.startStep = startStep
        self.steps = steps
        self.seed = seed
        self.operations = operations
        self.refillOf = refillOf
    }

    /// The global step this trial ends at.
    public var endStep: Int { startStep + steps }
}

/// Runner errors that PBT acts on, beyond failing the trial.
public enum TrialRunnerError: Error, Hashable, CustomStringConvertible {
    /// The parent's checkpoint is missing or cannot be read: the trial
    /// fails and the parent is retired from selection (a missing file is
    /// noticed without this error, too).
    case parentUnreadable(path: String, reason: String)
    /// The disk is full (or over quota): the run stops at once with this
    /// message; the trial is not recorded as failed and runs again when the
    /// run is resumed.
    case outOfSpace(path: String, reason: String)
    /// The run was given up because another worker holds the trial now
    /// (`TrialRunner.abandon`): nothing is recorded for it.
    case abandoned(trial: Int, reason: String)
    /// The trial was not run: its parent was retired from selection after
    /// it was planned (`ClaimedTrial.parentRetired`). No fault of the runner.
    case parentRetired(parent: Int, reason: String)

    public var description: String {
        switch self {
        case let .parentRetired(parent, reason): return "not run: its parent #\(parent) was \(reason)"
        case let .parentUnreadable(path, reason): return "parent checkpoint \(path) cannot be read: \(reason)"
        case let .outOfSpace(path, reason): return "cannot write \(path): \(reason)"
        case let .abandoned(trial, reason): return "trial \(trial) given up: another worker took it over (\(reason))"
        }
    }

    /// Whether `error` says the disk is full: `.outOfSpace`, or an
    /// `AtomicFileError` from ENOSPC or EDQUOT.
    public static func isOutOfSpace(_ error: any Error) -> Bool {
        if case .outOfSpace? = error as? TrialRunnerError { return true }
        return (error as? AtomicFileError)?.isOutOfSpace == true
    }

    /// Whether `error` is `.parentUnreadable`, or a training program that
    /// said it cannot use its parent's checkpoint: the parent's fault, not
    /// the runner's.
    public static func isParentUnreadable(_ error: any Error) -> Bool {
        if case .parentUnreadable? = error as? TrialRunnerError { return true }
        if case .parentRetired? = error as? TrialRunnerError { return true }
        if case .parentUnusable? = (error as? ExecTrialFailure)?.reason { return true }
        if case .parentLeftNoCheckpoint? = (error as? ExecTrialFailure)?.reason { return true }
        return false
    }

    /// Why the parent of a trial that failed with `error` is retired from
    /// selection, or nil: its checkpoint cannot be read or used, or the
    /// trial's program changed it.
    public static func parentRetirement(_ error: any Error) -> String? {
        if case let .parentUnreadable(_, reason)? = error as? TrialRunnerError { return "its checkpoint cannot be read: \(reason)" }
        switch (error as? ExecTrialFailure)?.reason {
        case .parentUnusable?: return "its checkpoint cannot be used: the program exited with code \(ExecRunner.parentUnusableExitCode)"
        case .parentLeftNoCheckpoint?: return "it left no checkpoint (only \(ExecRunner.resultFileName) and \(ExecRunner.logFileName)), and a trial that started from it failed"
        case let .wroteIntoParent(file)?: return "its checkpoint changed while a trial that started from it ran (\(ExecTrialFailure.Reason.changeText(file)))"
        default: return nil
        }
    }

    /// Whether `error` is a trial's program killed because the run is
    /// stopping (`ExecRunner.stop`, on SIGINT, SIGTERM or SIGHUP): no fault
    /// of the trial, so it is not recorded and runs again on resume.
    public static func isStop(_ error: any Error) -> Bool {
        if case .stopped? = (error as? ExecTrialFailure)?.reason { return true }
        return false
    }

    /// Whether `error` is a program's non-finite objective: the program ran
    /// and its trial diverged (as a runner's NaN evaluation does), no fault
    /// of the program or the machine.
    public static func isDivergence(_ error: any Error) -> Bool {
        if case .nonFiniteObjective? = (error as? ExecTrialFailure)?.reason { return true }
        return false
    }
}

/// What a trial achieved.
public struct TrialOutcome: Sendable, Hashable {
    /// Lower is better. NaN or ±inf marks a diverged trial (recorded as failed).
    public var evaluation: Double
    public init(evaluation: Double) { self.evaluation = evaluation }
}

/// The per-thread object that actually trains. Created on the worker thread
/// by `TrialRunner.makeWorker(index:)` and never shared, so it may own a model
/// and its buffers and mutate them freely.
public protocol TrialWorker {
    /// Same contract as `TrialRunner.run`.
    mutating func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome
}

/// The black box PBT tunes. A runner is shared by all worker threads; each
/// thread calls `makeWorker(index:)` once and then uses only its worker.
///
/// The result must be a function of `trial` (hyperparameters, steps,
/// startStep, seed) and the parent checkpoint alone — not of how often the
/// trial was attempted, the worker or the time — so a re-run after a crash, and a deterministic
/// run, reproduce it bit-exactly.
public protocol TrialRunner: Sendable {
    associatedtype Worker: TrialWorker = SharedRunnerWorker<Self>

    /// Train `trial.steps` steps with `trial.hyperparameters`, warm-started
    /// from `parent` (nil: from scratch), save the result to `output` (write
    /// atomically: temp + rename, e.g. with `AtomicFile.write`), return its
    /// evaluation (lower is better; NaN/inf = diverged).
    func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome

    /// Per-thread state for worker `index` (0..<W). The default forwards to
    /// `run`; a runner with a model and buffers returns its own worker type.
    func makeWorker(index: Int) throws -> Worker

    /// Called from another thread while `trial` runs into `output`, when this
    /// process no longer holds it: its lease lapsed (the store was out of
    /// reach, or this process stalled) and another worker took it over.
    /// Whatever this run returns is ignored, so stop it if you can: throw
    /// soon, write nothing more to `output`. The default does nothing (the
    /// trial runs to its end, then its result is dropped); `ExecRunner` kills
    /// the program's process group.
    func abandon(_ trial: TrialSpec, output: CheckpointRef, because reason: String)
}

extension TrialRunner {
    public func abandon(_ trial: TrialSpec, output: CheckpointRef, because reason: String) {}
}

/// The default worker: no per-thread state, forwards to the shared runner.
public struct SharedRunnerWorker<Runner: TrialRunner>: TrialWorker {
    public let runner: Runner
    public init(runner: Runner) { self.runner = runner }
    public mutating func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        try runner.run(trial, parent: parent, output: output)
    }
}

extension TrialRunner where Worker == SharedRunnerWorker<Self> {
    public func makeWorker(index: Int) throws -> SharedRunnerWorker<Self> { SharedRunnerWorker(runner: self) }
}

/// An error as a sentence: what a `LocalizedError` says (`errorDescription`),
/// or a `CustomStringConvertible`'s description, or an `NSError`'s
/// `localizedDescription`, before Swift's dump of its fields (found by a
/// library user: a runner's `LocalizedError` was recorded as
/// `MyError(detail: "…")`, an NSError as `Error Domain=… "(null)" UserInfo=…`).
func runnerErrorText(_ error: any Error) -> String {
    if let text = (error as? any LocalizedError)?.errorDescription { return text }
    if type(of: error) is NSError.Type { return (error as NSError).localizedDescription }
    return String(describing: error)  // a CustomStringConvertible's description
}
