import Foundation
import PBTFileSupport
import PBTSchedules
import PBTSeededRNG
import PBTWaveAudio

/// Everything that decides how a model trains, besides its learning rate:
/// the architecture, the training windows, the validation set, the seed and
/// the corpus. A learned schedule is exported with its recipe (the JSON
/// schedule file's `recipe`), so that `pbtwave train --lr-schedule FILE.json`
/// and the experiment's replay train the winner's way, through one function
/// (`replay`).
public struct TrainingRecipe: Codable, Sendable, Hashable {
    public var model: WaveNetConfig
    public var training: TrainingOptions
    public var evaluation: EvaluationOptions
    /// Initialises the model; `TrainingOptions.dataRNG(seed:)` draws the windows.
    public var seed: UInt64
    /// The corpus the schedule was learned on (nil: not recorded).
    public var corpus: CorpusIdentity?
    /// Where that corpus was (an absolute path), so that a replay on the
    /// same machine finds it without --corpus (nil: not recorded).
    public var corpusDirectory: String?

    /// What a PBT resume does not compare (`RunConfiguration.recipeFieldsNotCompared`):
    /// where the corpus was (it may move; `corpus` says which audio it is)
    /// and the seed (the run's settings hold it).
    public static let fieldsNotCompared: Set<String> = ["corpusDirectory", "seed"]

    public init(model: WaveNetConfig, training: TrainingOptions, evaluation: EvaluationOptions, seed: UInt64,
                corpus: CorpusIdentity? = nil) {
        self.model = model
        self.training = training
        self.evaluation = evaluation
        self.seed = seed
        self.corpus = corpus
    }

    /// What a checkpoint records of the recipe it was trained with: the
    /// training windows, the validation windows and the digest of `corpus`
    /// (the corpus trained on), so that a resume continues with them and
    /// `pbtwave evaluate` scores as training did.
    /// With `directory`, also where that corpus was (`CorpusIdentity.directoryMetadataKey`),
    /// so that `pbtwave evaluate` finds it without --corpus.
    public func checkpointMetadata(corpus: CorpusIdentity, directory: String? = nil) -> [String: String] {
        training.checkpointMetadata.merging(evaluation.checkpointMetadata) { $1 }.merging([CorpusIdentity.metadataKey: corpus.digest]) { $1 }
            .merging(directory.map { [CorpusIdentity.directoryMetadataKey: URL(fileURLWithPath: $0).standardizedFileURL.path] } ?? [:]) { $1 }
    }

    /// The recipe as a schedule file's `recipe` value.
    public var json: JSONValue {
        get throws { try JSONValue(encoding: self) }
    }

    /// The recipe a schedule file carries, or nil if it has none. Throws
    /// when it has one that is not a WaveNet recipe.
    /// A recipe with a field it does not know (a typo, a hand edit), or
    /// with values out of bounds, is refused, naming it.
    public init?(_ file: HyperparameterSchedule) throws {
        guard let recipe = file.recipe else { return nil }
        do { self = try recipe.decoded(as: TrainingRecipe.self) } catch {
            // With the recipe's bytes, a number that does not fit its field (a negative seed) is told from broken JSON.
            throw WaveNetError.invalidConfig("the schedule's recipe is not a WaveNet training recipe: "
                                             + DecodingErrorText.sentence(for: error, data: try? JSONEncoder().encode(recipe)))
        }
        // Known: every field the recipe encodes, the precision too, which it leaves out at fp32
        // (found by a helper: "precision": "fp32" was refused as an unknown field).
        var known = self
        known.training.precision = .bf16
        let unknown = recipe.keys(notIn: try JSONValue(encoding: known))
        guard unknown.isEmpty else {
            throw WaveNetError.invalidConfig("the schedule's recipe has unknown field\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", "))")
        }
        do { try validate() } catch {
            // The inner error's own "invalid WaveNet configuration: " is said once.
            let what = if case .invalidConfig(let inner) = error { inner } else { "\(error)" }
            throw WaveNetError.invalidConfig("the schedule's recipe: \(what)")
        }
    }

    /// Checks the model, the training windows and the validation windows.
    public func validate() throws(WaveNetError) {
        try model.validate()
        try training.validate()
        try evaluation.validate()
    }

    /// A fresh model, trainer and validator for this recipe on `corpus`.
    public func start(on corpus: SpeechCorpus, validator: Validator? = nil) throws -> (trainer: Trainer, validator: Validator) {
        let model = try WaveNet(config: model, seed: seed)
        let trainer = try Trainer(model: model, clips: corpus.train, options: training, dataRNG: TrainingOptions.dataRNG(seed: seed))
        return (trainer, try validator ?? evaluation.validator(corpus, config: self.model))
    }

    /// Trains a fresh model from scratch along `schedule` to `endStep` and
    /// validates it at the end: the replay of a learned schedule, for
    /// `pbtwave train` and the experiment alike. The other arguments are
    /// `Trainer.run`'s and do not change the result (`started` sees the
    /// fresh model before the first step); `threads` changes it only
    /// through the order of a sum. `validator`: the recipe's validation
    /// windows on `corpus` when the caller has built them already.
    public func replay(
        _ schedule: LearningRateSchedule, until endStep: Int, on corpus: SpeechCorpus, threads: Int = 1, evaluateEvery: Int = 0,
        checkpoint: CheckpointPlan? = nil, started: ((WaveNet) -> Void)? = nil, progress: ((TrainingProgress) -> Void)? = nil,
        stop: (() -> Bool)? = nil, validator built: Validator? = nil
    ) throws -> TrainingSummary {
        let (trainer, validator) = try start(on: corpus, validator: built)
        trainer.model.threads = threads
        started?(trainer.model)
        return try trainer.run(until: endStep, schedule: schedule, validator: validator, evaluateEvery: evaluateEvery,
                               checkpoint: checkpoint, progress: progress, stop: stop)
    }
}

/// Which validation windows score a model: `windows` windows of `targets`
/// scored samples each, evenly spaced over the validation clips.
public struct EvaluationOptions: Codable, Sendable, Hashable {
    public var windows: Int
    public var targets: Int

    public init(windows: Int = 16, targets: Int = 4096) {
        self.windows = windows
        self.targets = targets
    }

    /// The most windows, and scored samples a window, `validate()` accepts
    /// (the command line's bounds too).
    public static let limits = (windows: 1 << 20, targets: 1 << 24)

    public func validate() throws(WaveNetError) {
        guard (1...Self.limits.windows).contains(windows) else {
            throw .invalidConfig("evaluation windows must be 1 to \(Self.limits.windows) (got \(windows))")
        }
        guard (1...Self.limits.targets).contains(targets) else {
            throw .invalidConfig("evaluation targets must be 1 to \(Self.limits.targets) (got \(targets))")
        }
    }

    public func validator(_ corpus: SpeechCorpus, config: WaveNetConfig) throws -> Validator {
        try Validator(clips: corpus.validation, config: config, count: windows, targets: targets)
    }

    /// The validation windows as a checkpoint's metadata (`eval-windows`,
    /// `eval-targets`), so that a resume and `pbtwave evaluate` score on the
    /// windows training scored on.
    public var checkpointMetadata: [String: String] { ["eval-windows": "\(windows)", "eval-targets": "\(targets)"] }

    /// The validation windows a checkpoint's metadata records, each nil
    /// where it records none (a checkpoint from before they were recorded)
    /// or one out of bounds.
    public static func recorded(in metadata: [String: String]) -> (windows: Int?, targets: Int?) {
        let windows = metadata["eval-windows"].flatMap(Int.init).flatMap { (1...limits.windows).contains($0) ? $0 : nil }
        let targets = metadata["eval-targets"].flatMap(Int.init).flatMap { (1...limits.targets).contains($0) ? $0 : nil }
        return (windows, targets)
    }
}

/// What identifies a corpus: a digest of its manifest's file names and
/// checksums and of its split, so a schedule can say which audio it was
/// learned on without naming a folder.
public struct CorpusIdentity: Codable, Sendable, Hashable {
    /// SHA-256 over the train and validation lists with each file's checksum.
    public var digest: String
    public var trainFiles: Int
    public var validationFiles: Int

    public init(_ corpus: SpeechCorpus) { self.init(manifest: corpus.manifest) }

    /// The identity from the manifest alone (no audio read).
    public init(manifest m: CorpusManifest) {
        let text = (m.train.map { "train\t\($0.file)\t\($0.sha256)\n" } + m.validation.map { "validation\t\($0.file)\t\($0.sha256)\n" })
            .joined()
        digest = Array(text.utf8).withUnsafeBytes { SHA256Digest.hex(of: $0) }
        trainFiles = m.train.count
        validationFiles = m.validation.count
    }

    /// The key of a checkpoint's metadata that holds the digest of the
    /// corpus it was trained on.
    public static let metadataKey = "corpus"
    /// The key of a checkpoint's metadata that holds the folder of that
    /// corpus (an absolute path; absent in older checkpoints).
    public static let directoryMetadataKey = "corpus-directory"

    /// Whether a checkpoint's `metadata` records another corpus than this
    /// one (false where it records none).
    public func differs(fromRecordedIn metadata: [String: String]) -> Bool {
        metadata[Self.metadataKey].map { $0 != digest } ?? false
    }
}

// MARK: - Memory

extension WaveNet {
    /// About the bytes of the buffers one pass over `batch` windows of
    /// `time` positions allocates (the embedding, every layer's input,
    /// gate and gated output, the skip sum, the head and the logits; with
    /// `training`, the backward pass's), so a size no machine holds is
    /// refused before it is allocated (found by a helper: a large --window
    /// ended in a crash). fp32's sizes: bf16 keeps fewer fp32 tensors and
    /// adds half-size copies, so this is about right for both. Saturates
    /// rather than overflows.
    public static func stepBytes(_ c: WaveNetConfig, batch: Int, time: Int, training: Bool) -> Int {
        let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels, L = c.dilations.count
        let perPosition = R + L * (R + 3 * D) + S + H + c.classes + (training ? S + 2 * R + H : 0)
        let (positions, o1) = batch.multipliedReportingOverflow(by: time)
        let (floats, o2) = positions.multipliedReportingOverflow(by: perPosition)
        return o1 || o2 || floats > Int.max / 4 ? Int.max : floats * 4
    }
}

extension TrainingRecipe {
    /// About the bytes one model of this recipe holds while it trains:
    /// its parameters with their gradients and Adam's two moments, and the
    /// buffers of a training step and of a validation window.
    public var memoryBytes: Int {
        let parameters = WaveNet.makeLayout(model).count * 4 * 4
        let context = model.receptiveField - 1
        let step = WaveNet.stepBytes(model, batch: training.batch, time: training.window + training.context, training: true)
        let validation = WaveNet.stepBytes(model, batch: 1, time: context + evaluation.targets, training: false)
        let (sum, overflow) = step.addingReportingOverflow(validation)
        return overflow || sum > Int.max - parameters ? Int.max : sum + parameters
    }
}
