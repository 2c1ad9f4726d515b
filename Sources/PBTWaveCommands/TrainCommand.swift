import ArgumentParser
import Foundation
import PBT
import SeededRNG
import SpeechAudio
import TensorModule
import WaveNetModule

/// `pbtwave train`: one plain training run on the corpus, with a constant
/// learning rate or a replayed schedule (e.g. one exported by PBT).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a WaveNet on the speech corpus.",
        discussion: """
        The learning rate is constant (--lr) or follows a schedule file (--lr-schedule), the CSV or JSON \
        that `pbtwave schedule export` writes: change points (global step, lr). --steps is the total number \
        of steps the model should have taken, so `--resume` continues a checkpointed run to the same end.
        """
    )

    @OptionGroup var model: ModelChoice
    @OptionGroup var corpus: CorpusChoice
    @OptionGroup var validation: ValidationChoice

    @Option(help: "Total optimizer steps.") var steps: Int = 1000
    @Option(help: "Constant learning rate (default 1e-3 when no --lr-schedule).") var lr: Float?
    @Option(name: .customLong("lr-schedule"), help: "Learning-rate schedule file (CSV 'step,lr' or JSON).") var lrSchedule: String?
    @Option(help: "Windows per step.") var batch: Int = 1
    @Option(help: "Scored samples per training window.") var window: Int = 8192
    @Option(help: "Unscored leading samples per training window (0: zero padding, as the PyTorch reference).") var context: Int = 0
    @Option(help: "Seed for initialisation and window sampling.") var seed: UInt64 = 0
    @Option(help: "Threads: the windows of a batch are split among them (data parallel), so use --batch ≥ --threads.") var threads: Int = 1
    @Option(help: "Checkpoint file, written at the end (and every --checkpoint-every steps).") var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), help: "Also checkpoint every N steps (0: only at the end).") var checkpointEvery: Int = 0
    @Flag(help: "Continue from --checkpoint (weights, Adam state, step, data generator).") var resume = false
    @Option(name: .customLong("eval-every"), help: "Validate every N steps (0: only at the end).") var evalEvery: Int = 250
    @Option(help: "Write the learning curve (step, train loss, validation NLL, lr) as CSV here.") var curve: String?
    @Flag(help: "No progress line.") var quiet = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard lr == nil || lrSchedule == nil else { throw ValidationError("give --lr or --lr-schedule, not both") }
        if let lr { guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number (got \(lr))") } }
        guard batch >= 1, window >= 1, context >= 0 else { throw ValidationError("--batch and --window must be at least 1, --context at least 0") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard checkpointEvery >= 0, evalEvery >= 0 else { throw ValidationError("--checkpoint-every and --eval-every must be 0 or more") }
        guard !resume || checkpoint != nil else { throw ValidationError("--resume needs --checkpoint FILE to resume from") }
    }

    func run() throws {
        BLAS.setThreads(1)
        let schedule = try learningRateSchedule()
        let data = try corpus.load()
        let requested = try model.config()
        let net: WaveNet
        var dataRNG = Xoshiro256(seed: seed &+ 0x5EED)
        if resume, let checkpoint, FileManager.default.fileExists(atPath: checkpoint) {
            let (loaded, header) = try WaveNet.load(from: checkpoint)
            guard loaded.config == requested || model.modelConfig == nil && WaveNetConfig.presets[model.preset] == loaded.config else {
                throw ValidationError("--resume: \(checkpoint) holds a different model than --preset \(model.preset)")
            }
            net = loaded
            dataRNG = header.dataRNG ?? dataRNG
            print("resuming \(checkpoint) at step \(net.step)")
        } else {
            net = try WaveNet(config: requested, seed: seed)
        }
        net.threads = threads
        if threads > batch { print("note: --threads \(threads) > --batch \(batch): only \(batch) thread(s) have a window to train") }
        let options = TrainingOptions(batch: batch, window: window, context: context)
        let trainer = try Trainer(model: net, clips: data.train, options: options, dataRNG: dataRNG)
        let validator = try validation.validator(data, config: net.config)
        let unigram = crossEntropyBits(histogram: data.validation.codeHistogram(), model: data.train.codeHistogram())
        print("model: \(net.parameterCount) parameters, receptive field \(net.config.receptiveField) samples; "
              + "corpus: \(String(format: "%.1f", data.train.seconds / 60)) min train, \(String(format: "%.1f", data.validation.seconds / 60)) min validation")
        print(String(format: "baseline: unigram mu-law cross-entropy of the validation set %.3f bits/sample", unigram))
        var rows: [String] = ["step,train_bits,validation_bits,lr"]
        let progress = ProgressLine(label: "train", quiet: quiet)
        let start = KernelBenchmark.now()
        let firstStep = net.step
        var recentLoss = Double.nan
        var lastValidation = Double.nan
        while net.step < steps {
            let lrNow = schedule(net.step)
            let loss = try trainer.step(learningRate: lrNow)
            guard loss.isFinite else {
                progress.finish()
                throw ValidationError("training diverged at step \(net.step) (loss \(loss), learning rate \(lrNow)); try a smaller --lr")
            }
            recentLoss = recentLoss.isNaN ? loss : 0.9 * recentLoss + 0.1 * loss
            let elapsed = KernelBenchmark.now() - start
            let done = net.step - firstStep
            let rate = Double(done * batch * window) / elapsed
            let eta = Double(steps - net.step) * elapsed / Double(done)
            progress.update(String(format: "step %d/%d  loss %.3f bits  lr %.3g  %.0f samples/s  ETA %@",
                                   net.step, steps, recentLoss, lrNow, rate, ProgressLine.duration(eta)), now: elapsed)
            let evaluate = net.step == steps || (evalEvery > 0 && net.step % evalEvery == 0)
            if evaluate {
                lastValidation = validator.nllBits(net)
                progress.finish()
                print(String(format: "step %d: train loss %.3f bits, validation NLL %.4f bits/sample", net.step, recentLoss, lastValidation))
            }
            rows.append("\(net.step),\(loss),\(evaluate ? String(lastValidation) : ""),\(lrNow)")
            if let checkpoint, net.step == steps || (checkpointEvery > 0 && net.step % checkpointEvery == 0) {
                try trainer.saveCheckpoint(to: checkpoint, metadata: ["command": "train", "seed": "\(seed)"])
            }
        }
        progress.finish()
        if let curve {
            try rows.joined(separator: "\n").appending("\n").write(toFile: curve, atomically: true, encoding: .utf8)
            print("learning curve: \(curve)")
        }
        if firstStep == steps { lastValidation = validator.nllBits(net) }
        print(String(format: "done: %d steps, validation NLL %.4f bits/sample (unigram baseline %.3f)%@", net.step, lastValidation, unigram,
                     checkpoint.map { ", checkpoint \($0)" } ?? ""))
    }

    /// The learning rate for each global step.
    func learningRateSchedule() throws -> (Int) -> Float {
        guard let lrSchedule else {
            let constant = lr ?? 1e-3
            return { _ in constant }
        }
        let schedule = try LearningRateSchedule.read(from: URL(fileURLWithPath: lrSchedule))
        guard schedule.hyperparameter == "lr" else {
            throw ValidationError("--lr-schedule \(lrSchedule) schedules '\(schedule.hyperparameter)', not 'lr'")
        }
        guard schedule.points.allSatisfy({ $0.value > 0 }) else {
            throw ValidationError("--lr-schedule \(lrSchedule) has a learning rate that is not positive")
        }
        return { Float(schedule.value(atStep: $0)) }
    }
}
