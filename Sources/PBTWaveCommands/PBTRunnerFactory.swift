import ArgumentParser
import PBT
import PBTExperiment
import SpeechAudio
import TensorModule
import WaveNetModule

/// The models `pbtwave pbt --model` can tune: the hook for new runners.
///
/// To add a model (e.g. `wavenet`): add a case here, put its options in an
/// `@OptionGroup` on `PBTCommand` (as `ToyModelOptions`), and add a branch to
/// `PBTRunnerFactory.options` (options that change results, stored with the
/// run and compared on resume) and `PBTRunnerFactory.makeRunner`.
public enum PBTModel: String, ExpressibleByArgument, CaseIterable, Sendable {
    case toy
    case wavenet
    /// Does no training (`NoOpRunner`): for measuring PBT's own overhead.
    case noop
}

/// Options of the WaveNet model on the speech corpus (see `WaveNetRunner`).
public struct WaveNetModelOptions: ParsableArguments {
    @Option(help: "WaveNet: model preset (\(WaveNetConfig.presets.keys.sorted().joined(separator: ", "))).")
    public var preset: String = "tiny"
    @Option(help: "WaveNet: windows per step.") public var batch: Int = 2
    @Option(help: "WaveNet: scored samples per training window.") public var window: Int = 2048
    @Option(help: "WaveNet: validation windows.") public var evalWindows: Int = 8
    @Option(help: "WaveNet: scored samples per validation window.") public var evalTargets: Int = 4096
    @Option(help: "WaveNet: corpus folder (default: $PBTWAVE_CORPUS, else ./corpus).") public var corpus: String?

    public init() {}

    public func validate() throws {
        try WaveNetConfig.checkPreset(preset, option: "--preset")
        guard batch >= 1, window >= 1, evalWindows >= 1, evalTargets >= 1 else {
            throw ValidationError("--batch, --window, --eval-windows and --eval-targets must be at least 1")
        }
    }

    /// The options that change results, as stored with a run.
    public var stored: [String: String] {
        Self.stored(preset: preset, batch: batch, window: window, evalWindows: evalWindows, evalTargets: evalTargets)
    }

    public static func stored(preset: String, batch: Int, window: Int, evalWindows: Int, evalTargets: Int) -> [String: String] {
        ["preset": preset, "batch": "\(batch)", "window": "\(window)", "eval-windows": "\(evalWindows)", "eval-targets": "\(evalTargets)"]
    }

    /// Options read back from a stored run (for workers that join it).
    public init(stored: [String: String], corpus: String?) throws {
        func int(_ key: String) throws -> Int {
            guard let v = stored[key].flatMap(Int.init) else { throw CommandError("the run's stored WaveNet options lack '\(key)'") }
            return v
        }
        guard let preset = stored["preset"] else { throw CommandError("the run's stored WaveNet options lack 'preset'") }
        self.preset = preset
        batch = try int("batch")
        window = try int("window")
        evalWindows = try int("eval-windows")
        evalTargets = try int("eval-targets")
        self.corpus = corpus
        try validate()
    }

    /// Loads the corpus and builds the runner (one model per worker thread,
    /// single-threaded BLAS: parallelism comes from the workers).
    public func makeRunner() throws -> WaveNetRunner {
        BLAS.setThreads(1)
        let config = WaveNetConfig.presets[preset]!
        let data = try SpeechCorpus.load(directory: corpus ?? SpeechCorpus.defaultDirectory(), verifyChecksums: false)
        let validator = try Validator(clips: data.validation, config: config, count: evalWindows, targets: evalTargets)
        return try WaveNetRunner(config: config, options: TrainingOptions(batch: batch, window: window), train: data.train,
                                 validator: validator)
    }
}

/// Options of the toy model (a noisy quadratic, see `ToyQuadraticRunner`).
public struct ToyModelOptions: ParsableArguments {
    @Option(name: .customLong("toy-trial-ms"), help: ArgumentHelp(
        "Toy model: sleep this many milliseconds per trial, to stand in for real training.", visibility: .hidden))
    public var trialMilliseconds: Int = 0

    public init() {}

    public func validate() throws {
        guard trialMilliseconds >= 0 else { throw ValidationError("--toy-trial-ms must be 0 or more (got \(trialMilliseconds))") }
    }
}

public enum PBTRunnerFactory {
    /// Runner options that change results; stored with the run and compared
    /// on resume, reported as `--<key>` when they differ.
    public static func options(_ model: PBTModel, toy: ToyModelOptions, wavenet: WaveNetModelOptions) -> [String: String] {
        switch model {
        case .toy: return [:]  // --toy-trial-ms changes timing only
        case .wavenet: return wavenet.stored
        case .noop: return [:]
        }
    }

    public static func makeRunner(_ model: PBTModel, toy: ToyModelOptions, wavenet: WaveNetModelOptions) throws -> any TrialRunner {
        switch model {
        case .toy: return ToyQuadraticRunner(simulatedWork: .milliseconds(toy.trialMilliseconds))
        case .wavenet: return try wavenet.makeRunner()
        case .noop: return NoOpRunner()
        }
    }

    /// The runner of an existing run, rebuilt from its stored model name and
    /// options (for `pbtwave worker`). `corpus` and `toy` are the options
    /// that do not change results and so are not stored.
    public static func makeRunner(stored configuration: RunConfiguration, toy: ToyModelOptions, corpus: String?) throws -> any TrialRunner {
        guard let model = PBTModel(rawValue: configuration.model) else {
            throw CommandError("the run was created with model '\(configuration.model)', which this pbtwave does not know "
                               + "(it knows \(PBTModel.allCases.map(\.rawValue).joined(separator: ", "))); use the same pbtwave build on every machine")
        }
        let wavenet = model == .wavenet ? try WaveNetModelOptions(stored: configuration.modelOptions, corpus: corpus) : WaveNetModelOptions()
        return try makeRunner(model, toy: toy, wavenet: wavenet)
    }
}
