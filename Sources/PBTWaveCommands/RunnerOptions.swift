import ArgumentParser
import PBT
import PBTExamples
import Schedules
import TensorModule
import WaveNetModule
import WaveNetPBT

/// The models `pbtwave pbt --model` can tune.
///
/// To add a model: add a case, put its options in an `@OptionGroup` of
/// `RunnerOptions`, and add a branch to `RunnerOptions.stored` (options that
/// change results, stored with the run and compared on resume) and
/// `RunnerOptions.makeRunner`.
public enum PBTModel: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// The WaveNet on the speech corpus.
    case wavenet
    /// A noisy quadratic (`ToyQuadraticRunner`), for trying PBT in seconds.
    case toy
    /// Does no training (`NoOpRunner`): for measuring PBT's own overhead.
    case noop
}

/// `--model` and the options of each model.
struct RunnerOptions: ParsableArguments {
    @Option(help: "The model to tune: wavenet (on the speech corpus), toy (a noisy quadratic, for trying PBT in seconds), noop.")
    var model: PBTModel = .wavenet

    @OptionGroup(title: "WaveNet (--model wavenet)")
    var wavenet: RecipeOptions<PBTDefaults>

    @OptionGroup
    var corpus: CorpusOptions

    @Option(name: .customLong("toy-trial-ms"), help: ArgumentHelp(
        "Toy model: sleep this many milliseconds per trial, to stand in for real training.", visibility: .hidden))
    var toyMilliseconds: Int = 0

    func validate() throws {
        guard toyMilliseconds >= 0 else { throw ValidationError("--toy-trial-ms must be 0 or more (got \(toyMilliseconds))") }
        if model == .wavenet, let preset = wavenet.preset { try WaveNetConfig.checkPreset(preset, option: "--preset") }
    }

    /// The runner options that change results, stored with a run.
    var stored: [String: String] {
        model == .wavenet ? Self.stored(try? wavenet.recipe(seed: 0)) : [:]
    }

    static func stored(_ recipe: TrainingRecipe?) -> [String: String] {
        guard let r = recipe else { return [:] }
        let preset = WaveNetConfig.presets.first { $0.value == r.model }?.key
        return ["preset": preset ?? "custom", "batch": "\(r.training.batch)", "window": "\(r.training.window)",
                "eval-windows": "\(r.evaluation.windows)", "eval-targets": "\(r.evaluation.targets)"]
    }

    /// The runner and the run's configuration (with its replay recipe).
    func makeRunner(settings: PBTSettings) throws -> (runner: any TrialRunner, configuration: RunConfiguration) {
        var configuration = RunConfiguration(settings: settings, model: model.rawValue, modelOptions: stored)
        switch model {
        case .toy:
            return (ToyQuadraticRunner(simulatedWork: .milliseconds(toyMilliseconds)), configuration)
        case .noop:
            return (NoOpRunner(), configuration)
        case .wavenet:
            let (runner, recipe) = try Self.wavenetRunner(try wavenet.recipe(seed: settings.seed), corpus: corpus)
            configuration.recipe = recipe
            return (runner, configuration)
        }
    }

    /// The runner of an existing run, rebuilt from its stored configuration
    /// (for `pbtwave worker`): the recipe it stored, on this machine's corpus.
    static func makeRunner(stored configuration: RunConfiguration, corpus: CorpusOptions, toyMilliseconds: Int) throws -> any TrialRunner {
        switch PBTModel(rawValue: configuration.model) {
        case .toy: return ToyQuadraticRunner(simulatedWork: .milliseconds(toyMilliseconds))
        case .noop: return NoOpRunner()
        case .wavenet:
            guard let json = configuration.recipe, let recipe = try? json.decoded(as: TrainingRecipe.self) else {
                throw CommandError("the run stores no WaveNet recipe; it was made by an older pbtwave: use that build, or start a new run")
            }
            return try wavenetRunner(recipe, corpus: corpus).runner
        case nil:
            throw CommandError("the run was created with model '\(configuration.model)', which this pbtwave does not know "
                               + "(it knows \(PBTModel.allCases.map(\.rawValue).joined(separator: ", "))); use the same pbtwave build on every machine")
        }
    }

    /// Loads the corpus and builds the WaveNet runner (one model per worker
    /// thread, single-threaded BLAS: parallelism comes from the workers),
    /// with the recipe naming that corpus.
    static func wavenetRunner(_ recipe: TrainingRecipe, corpus: CorpusOptions) throws -> (runner: WaveNetRunner, recipe: JSONValue) {
        BLAS.setThreads(1)
        let data = try corpus.load()
        var recipe = recipe
        recipe.corpus = CorpusIdentity(data)
        return (try WaveNetRunner(recipe: recipe, corpus: data), try recipe.json)
    }
}
