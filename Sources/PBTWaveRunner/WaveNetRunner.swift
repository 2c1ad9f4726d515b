import Foundation
import PBT
import PBTSchedules
import PBTWaveAudio
import Synchronization
import PBTWaveModel

/// The WaveNet as PBT's black box. A trial trains `steps` steps on the
/// corpus at its learning rate, warm-started from its parent's checkpoint
/// (weights, Adam moments, step), then reports the validation NLL in bits
/// per sample (lower is better) and writes its own checkpoint.
///
/// Each worker thread owns one model and its buffers (`makeWorker`); the
/// corpus and validation windows are immutable and shared. A trial's result
/// depends only on its spec and its parent: the model's initialisation and
/// the training windows are drawn from `trial.seed`, as `pbtwave train`
/// draws them from its seed.
public struct WaveNetRunner: TrialRunner {
    /// The model, windows and validation set of every trial (its seed is
    /// the run's, used only when the learned schedule is replayed).
    public let recipe: TrainingRecipe
    public let corpus: SpeechCorpus
    public let validator: Validator
    /// What every trial's checkpoint records of the recipe and corpus.
    let checkpointMetadata: [String: String]
    /// Where the workers' time went, summed over all of them.
    public let timing = RunnerTiming()
    /// The outputs of trials another worker took over (`abandon`), with why:
    /// their training stops at the next step.
    private let abandoned = AbandonedTrials()

    public init(recipe: TrainingRecipe, corpus: SpeechCorpus) throws {
        try recipe.model.validate()
        try recipe.training.validate()
        let length = recipe.training.windowLength
        guard corpus.train.windowStartCount(length: length) > 0 else {
            throw AudioError.noClipLongEnough(source: corpus.train.source, length: length, longest: corpus.train.longestClip)
        }
        self.recipe = recipe
        self.corpus = corpus
        validator = try recipe.evaluation.validator(corpus, config: recipe.model)
        checkpointMetadata = recipe.checkpointMetadata(corpus: CorpusIdentity(corpus), directory: corpus.directory)
    }

    public func makeWorker(index: Int) throws -> Worker { try Worker(runner: self) }

    /// Stops the training of `trial` at its next step (another worker holds
    /// the trial now): its run throws `TrialRunnerError.abandoned`.
    public func abandon(_ trial: TrialSpec, output: CheckpointRef, because reason: String) {
        abandoned.mark(output.path, reason)
    }

    /// For callers without a worker of their own (builds one per call).
    public func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        var worker = try makeWorker(index: 0)
        return try worker.run(trial, parent: parent, output: output)
    }

    /// One thread's model, trainer and buffers.
    public struct Worker: TrialWorker {
        let runner: WaveNetRunner
        let trainer: Trainer

        init(runner: WaveNetRunner) throws {
            self.runner = runner
            trainer = try Trainer(model: try WaveNet(config: runner.recipe.model, seed: 0), clips: runner.corpus.train,
                                  options: runner.recipe.training, dataRNG: TrainingOptions.dataRNG(seed: 0))
        }

        public mutating func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
            let name = LearningRateSchedule.hyperparameterName
            let schedule: LearningRateSchedule
            do { schedule = try LearningRateSchedule(constant: trial.hyperparameters[name]?.number ?? .nan) } catch {
                throw WaveNetError.invalidConfig("trial \(trial.id) has no usable '\(name)' hyperparameter: \(error)")
            }
            let model = trainer.model
            let clock = ContinuousClock()
            var start = clock.now
            if let parent {
                // A parent that cannot be read is retired by the coordinator.
                do { try model.load(from: parent.path) } catch {
                    throw TrialRunnerError.parentUnreadable(path: parent.path, reason: FileErrorText.cause(of: error) ?? "\(error)")
                }
                guard model.step == trial.startStep else {
                    throw TrialRunnerError.parentUnreadable(path: parent.path, reason: "it is at step \(model.step), trial \(trial.id) expects \(trial.startStep)")
                }
            } else {
                model.reinitialize(seed: trial.seed)
            }
            runner.timing.add(checkpoint: start.duration(to: clock.now))
            start = clock.now
            trainer.dataRNG = TrainingOptions.dataRNG(seed: trial.seed)
            let abandoned = runner.abandoned
            defer { abandoned.clear(output.path) }
            let summary = try trainer.run(until: trial.endStep, schedule: schedule, validator: runner.validator,
                                          stop: { abandoned.reason(output.path) != nil })
            runner.timing.add(compute: start.duration(to: clock.now))
            if summary.stoppedAt != nil {
                throw TrialRunnerError.abandoned(trial: trial.id, reason: abandoned.reason(output.path) ?? "")
            }
            // Diverged: no checkpoint, never a parent.
            guard !summary.diverged, let nll = summary.validationNLL else { return TrialOutcome(evaluation: .nan) }
            start = clock.now
            let bytes = try CheckpointFile.encode(model, dataRNG: trainer.dataRNG,
                                                  metadata: runner.checkpointMetadata.merging(
                                                      ["trial": "\(trial.id)", name: "\(schedule.points[0].rate)", "nll": "\(nll)"]) { $1 },
                                                  path: output.path)
            // Written here, not by the trainer, so a full disk stays an AtomicFileError (and stops the run).
            try AtomicFile.write(bytes, toPath: output.path, durable: true)
            runner.timing.add(checkpoint: start.duration(to: clock.now))
            return TrialOutcome(evaluation: nll)
        }
    }
}

/// The outputs of the trials given up, with why (thread-safe).
final class AbandonedTrials: Sendable {
    private let marks = Mutex<[String: String]>([:])
    func mark(_ output: String, _ reason: String) { marks.withLock { $0[output] = reason } }
    func reason(_ output: String) -> String? { marks.withLock { $0[output] } }
    func clear(_ output: String) { marks.withLock { $0[output] = nil } }
}

/// Time the WaveNet workers spent loading and saving checkpoints (PBT's
/// exploit: copying a parent's weights and optimizer state) and computing
/// (training and validation), summed over workers. Thread-safe.
public final class RunnerTiming: Sendable {
    private let time = Mutex((checkpoint: Duration.zero, compute: Duration.zero))

    public init() {}

    public func add(checkpoint: Duration = .zero, compute: Duration = .zero) {
        time.withLock { $0.checkpoint += checkpoint; $0.compute += compute }
    }

    public var checkpointSeconds: Double { time.withLock { $0.checkpoint } / .seconds(1) }
    public var computeSeconds: Double { time.withLock { $0.compute } / .seconds(1) }
}
