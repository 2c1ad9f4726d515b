import Foundation
import PBT
import SeededRNG
import SpeechAudio
import WaveNetModule

/// The WaveNet as PBT's black box. A trial trains `steps` steps on the
/// corpus at its learning rate, warm-started from its parent's checkpoint
/// (weights, Adam moments, step), then reports the validation NLL in bits
/// per sample (lower is better) and writes its own checkpoint.
///
/// Each worker thread owns one model and its buffers (`makeWorker`); the
/// clip sets and validation windows are immutable and shared. A trial's
/// result depends only on its spec and its parent: the model's
/// initialisation and the training windows are drawn from `trial.seed`.
public struct WaveNetRunner: TrialRunner {
    public let config: WaveNetConfig
    public let options: TrainingOptions
    public let train: ClipSet
    public let validator: Validator
    /// Name of the hyperparameter that is the learning rate.
    public let learningRateName: String

    public init(config: WaveNetConfig, options: TrainingOptions, train: ClipSet, validator: Validator, learningRateName: String = "lr") throws {
        try config.validate()
        try options.validate()
        guard train.windowStartCount(length: options.windowLength) > 0 else {
            throw AudioError.noClipLongEnough(source: train.source, length: options.windowLength, longest: train.longestClip)
        }
        self.config = config
        self.options = options
        self.train = train
        self.validator = validator
        self.learningRateName = learningRateName
    }

    public func makeWorker(index: Int) throws -> Worker { try Worker(runner: self) }

    /// For callers without a worker of their own (builds one per call).
    public func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        var worker = try makeWorker(index: 0)
        return try worker.run(trial, parent: parent, output: output)
    }

    /// One thread's model, trainer and buffers.
    public struct Worker: TrialWorker {
        let runner: WaveNetRunner
        let model: WaveNet
        let trainer: Trainer
        /// Seconds spent in checkpoint reads and writes, and in training and
        /// evaluation, for the overhead measurement.
        public private(set) var checkpointSeconds = 0.0
        public private(set) var computeSeconds = 0.0

        init(runner: WaveNetRunner) throws {
            self.runner = runner
            model = try WaveNet(config: runner.config, seed: 0)
            trainer = try Trainer(model: model, clips: runner.train, options: runner.options, dataRNG: Xoshiro256(seed: 0))
        }

        public mutating func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
            guard let lr = trial.hyperparameters[runner.learningRateName]?.number, lr > 0, lr.isFinite else {
                throw WaveNetError.invalidConfig("trial \(trial.id) has no positive '\(runner.learningRateName)' hyperparameter")
            }
            var t0 = Self.now()
            if let parent {
                try model.load(from: parent.path)
                guard model.step == trial.startStep else {
                    throw WaveNetError.checkpoint(path: parent.path, reason: "is at step \(model.step), trial \(trial.id) expects \(trial.startStep)")
                }
            } else {
                model.reinitialize(seed: trial.seed)
            }
            var t1 = Self.now()
            checkpointSeconds += t1 - t0
            trainer.dataRNG = Xoshiro256(seed: trial.seed).derived(1)
            for _ in 0..<trial.steps {
                let loss = try trainer.step(learningRate: Float(lr))
                if !loss.isFinite {
                    computeSeconds += Self.now() - t1
                    return TrialOutcome(evaluation: .nan)  // diverged: no checkpoint, never a parent
                }
            }
            let nll = runner.validator.nllBits(model)
            t0 = Self.now()
            computeSeconds += t0 - t1
            try trainer.saveCheckpoint(to: output.path, metadata: ["trial": "\(trial.id)", "lr": "\(lr)", "nll": "\(nll)"])
            t1 = Self.now()
            checkpointSeconds += t1 - t0
            return TrialOutcome(evaluation: nll)
        }

        static func now() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }
    }
}
