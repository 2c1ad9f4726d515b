import Foundation
import PBT
import Synchronization
import SeededRNG
import SpeechAudio
import TensorModule
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
    /// Where the workers' time went, summed over all of them.
    public let timing = RunnerTiming()

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

        init(runner: WaveNetRunner) throws {
            self.runner = runner
            model = try WaveNet(config: runner.config, seed: 0)
            trainer = try Trainer(model: model, clips: runner.train, options: runner.options, dataRNG: Xoshiro256(seed: 0))
        }

        public mutating func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
            guard let lr = trial.hyperparameters[runner.learningRateName]?.number, lr > 0, lr.isFinite else {
                throw WaveNetError.invalidConfig("trial \(trial.id) has no positive '\(runner.learningRateName)' hyperparameter")
            }
            var t0 = KernelBenchmark.now()
            if let parent {
                try model.load(from: parent.path)
                guard model.step == trial.startStep else {
                    throw WaveNetError.checkpoint(path: parent.path, reason: "is at step \(model.step), trial \(trial.id) expects \(trial.startStep)")
                }
            } else {
                model.reinitialize(seed: trial.seed)
            }
            let t1 = KernelBenchmark.now()
            runner.timing.add(checkpoint: t1 - t0)
            trainer.dataRNG = Xoshiro256(seed: trial.seed).derived(1)
            for _ in 0..<trial.steps {
                let loss = try trainer.step(learningRate: Float(lr))
                if !loss.isFinite {
                    runner.timing.add(compute: KernelBenchmark.now() - t1)
                    return TrialOutcome(evaluation: .nan)  // diverged: no checkpoint, never a parent
                }
            }
            let nll = runner.validator.nllBits(model)
            t0 = KernelBenchmark.now()
            runner.timing.add(compute: t0 - t1)
            try trainer.saveCheckpoint(to: output.path, metadata: ["trial": "\(trial.id)", "lr": "\(lr)", "nll": "\(nll)"])
            runner.timing.add(checkpoint: KernelBenchmark.now() - t0)
            return TrialOutcome(evaluation: nll)
        }
    }
}

/// Seconds the WaveNet workers spent loading and saving checkpoints (PBT's
/// exploit: copying a parent's weights and optimizer state) and computing
/// (training and validation), summed over workers. Thread-safe.
public final class RunnerTiming: Sendable {
    private let seconds = Mutex((checkpoint: 0.0, compute: 0.0))

    public init() {}

    public func add(checkpoint: Double = 0, compute: Double = 0) {
        seconds.withLock { $0.checkpoint += checkpoint; $0.compute += compute }
    }

    public var checkpointSeconds: Double { seconds.withLock { $0.checkpoint } }
    public var computeSeconds: Double { seconds.withLock { $0.compute } }
}
