import ArgumentParser
import Foundation
import PBT
import PBTExamples
import PBTSchedules
import PBTWaveTensor
import PBTWaveModel
import PBTWaveRunner
import PBTWaveAudio

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
    /// Any training program, given after `--` (`ExecRunner`).
    case exec
}

/// `--model` and the options of each model.
struct RunnerOptions: ParsableArguments {
    @Option(name: .customLong("model"), help: "The model to tune: wavenet (on the speech corpus; the default), toy (a noisy quadratic, for trying PBT in seconds), noop, or exec (a training program after `--`; the default when one is given).")
    var chosenModel: PBTModel?

    @OptionGroup(title: "Any training program (--exec)")
    var exec: ExecOptions

    @OptionGroup(title: "WaveNet (--model wavenet)")
    var wavenet: RecipeOptions<PBTDefaults>

    @OptionGroup
    var corpus: CorpusOptions

    @Option(name: .customLong("toy-trial-ms"), parsing: .unconditional, help: ArgumentHelp(
        "Toy model: sleep this many milliseconds per trial, to stand in for real training.", visibility: .hidden))
    var toyMilliseconds: Int = 0

    var model: PBTModel { chosenModel ?? (exec.isExec ? .exec : .wavenet) }

    func validate() throws {
        guard toyMilliseconds >= 0 else { throw ValidationError("--toy-trial-ms must be 0 or more (got \(toyMilliseconds))") }
        if exec.isExec, model != .exec {
            throw ValidationError("a training program (--exec, or a program after --) is the model itself; drop --model \(model.rawValue)")
        }
        // WaveNet's options would be silently ignored by any other model.
        let wavenetFlags = wavenet.given + (corpus.corpus != nil ? ["--corpus"] : [])
        if model != .wavenet, !wavenetFlags.isEmpty {
            throw ValidationError("\(wavenetFlags.joined(separator: ", ")) \(wavenetFlags.count == 1 ? "applies" : "apply") only to --model wavenet, "
                                  + "not to \(model == .exec ? "a training program" : "--model \(model.rawValue)"): drop \(wavenetFlags.count == 1 ? "it" : "them")")
        }
        if exec.trialTimeout != nil, model != .exec { throw ValidationError(ExecOptions.timeoutNeedsAProgram) }
        if model == .exec, exec.command.isEmpty {
            throw ValidationError("--exec needs the training program after `--`, e.g. `pbtwave pbt --run-dir runs/mine --exec -- python3 train.py`")
        }
    }

    /// These options for going on with a run of model `stored`: the run's
    /// model when neither --model, a program nor a WaveNet flag was given
    /// (a toy run resumed without --model was refused as not WaveNet's,
    /// though flags left out take the run's values). A program's run still
    /// needs its program after `--`.
    func resuming(_ stored: String?) -> RunnerOptions {
        guard chosenModel == nil, !exec.isExec, wavenet.given.isEmpty, corpus.corpus == nil, let stored,
              let model = PBTModel(rawValue: stored), model == .toy || model == .noop else { return self }
        var options = self
        options.chosenModel = model
        return options
    }

    /// The runner options that change results, stored with a run.
    var stored: [String: String] {
        model == .wavenet ? Self.stored(try? wavenet.recipe(seed: 0)) : [:]
    }

    static func stored(_ recipe: TrainingRecipe?) -> [String: String] {
        guard let r = recipe else { return [:] }
        let preset = WaveNetConfig.presets.first { $0.value == r.model }?.key
        var stored = ["preset": preset ?? "custom", "batch": "\(r.training.batch)", "window": "\(r.training.window)",
                      "eval-windows": "\(r.evaluation.windows)", "eval-targets": "\(r.evaluation.targets)"]
        // Only when not the default, so runs stored before bf16 existed still match.
        if r.training.precision != .fp32 { stored["precision"] = r.training.precision.rawValue }
        return stored
    }

    /// The runner and the run's configuration (with its replay recipe);
    /// `show` shows a failed trial of a training program.
    /// `resuming`: the stored configuration of the run this command goes on
    /// with, if it exists. A WaveNet run then trains its own recipe: the
    /// flags given must agree with it, and those not given take its values
    /// (before, they took the defaults: a resume without --context trained
    /// with none, and another --model-config was taken for the same model,
    /// whose checkpoints then could not be read).
    func makeRunner(settings: PBTSettings, resuming: RunConfiguration? = nil,
                    show: @escaping @Sendable (String) -> Void) throws -> (runner: any TrialRunner, configuration: RunConfiguration) {
        var configuration = RunConfiguration(settings: settings, model: model.rawValue, modelOptions: stored)
        if model == .toy || model == .wavenet, settings.searchSpace.parameters.map(\.name) != [LearningRateSchedule.hyperparameterName] {
            throw CommandError("--model \(model.rawValue) tunes the learning rate 'lr' alone; a --space with other hyperparameters "
                               + "needs a training program that reads them (`--exec -- PROGRAM ARGS`)")
        }
        if model == .toy || model == .wavenet, let lr = settings.searchSpace.parameters.first {
            let positive: Bool
            switch lr.domain {
            case .continuous(let lower, _, _): positive = lower > 0
            case .categorical(let choices): positive = choices.allSatisfy { ($0.number ?? 0) > 0 }
            }
            guard positive else {
                throw CommandError("--space: --model \(model.rawValue) trains with a positive learning rate, so 'lr' must be "
                                   + "log_uniform or uniform with min > 0, or a choice of positive numbers (got \(compactJSON(settings.searchSpace.specification)))")
            }
        }
        switch model {
        case .exec:
            let command = exec.given!
            // The run's program given by other paths to the same files (found by a user: an absolute
            // path was refused as another program): run as given, recorded as the run has it.
            var recorded = command
            var timeout = exec.timeout
            if let resuming, let stored = try? resuming.recipe?.decoded(as: ExecRecipe.self) {
                if stored.command != command, ExecOptions.sameFiles(command, as: stored, here: FileManager.default.currentDirectoryPath) {
                    show("note: running the run's program as \(ExecOptions.words(command)) (the run has \(ExecOptions.words(stored.command)), the same files)")
                    recorded = stored.command
                }
                // Not given: the run's (a resume without it ran with none). Given otherwise: this process's trials, said.
                if timeout == nil { timeout = stored.trialTimeout }
                if timeout != stored.trialTimeout {
                    show("note: this process's trials time out after " + (timeout.map { "\($0 / .seconds(1)) s" } ?? "no time")
                         + "; the run was started with " + (stored.trialTimeout.map { "\($0 / .seconds(1)) s" } ?? "none")
                         + ", which `pbtwave worker` processes keep unless given --trial-timeout")
                }
            }
            configuration.recipe = try JSONValue(encoding: ExecRecipe(command: recorded, trialTimeout: timeout, settings: settings))
            configuration.recipeFieldsNotCompared = ExecRecipe.fieldsNotCompared
            return (try ExecOptions.runner(command, timeout: timeout, space: settings.searchSpace, show: show), configuration)
        case .toy:
            return (ToyQuadraticRunner(simulatedWork: .milliseconds(toyMilliseconds)), configuration)
        case .noop:
            return (NoOpRunner(), configuration)
        case .wavenet:
            var recipe = try wavenet.recipe(seed: settings.seed)
            var storedCorpus: CorpusIdentity?
            if let resuming, resuming.model == PBTModel.wavenet.rawValue, var own = try? resuming.recipe?.decoded(as: TrainingRecipe.self) {
                own.seed = settings.seed
                let given = try wavenet.apply(to: own)
                let differences = RunConfiguration.recipeDifferences(stored: try own.json, given: try given.json, notCompared: TrainingRecipe.fieldsNotCompared)
                guard differences.isEmpty else {
                    throw CommandError("the run was created with another recipe than this command's flags give:\n"
                                       + differences.map { "  \(PBTSettingsOptions.flag($0.field)): the run has \($0.stored), this command has \($0.given)" }
                                           .joined(separator: "\n")
                                       + "\nDrop those flags to go on with the run's own (`pbtwave lineage RUN_DIR --settings` lists it), or choose a new --run-dir")
                }
                recipe = given
                storedCorpus = own.corpus
                configuration.modelOptions = Self.stored(recipe)
            }
            let (runner, stored): (WaveNetRunner, JSONValue)
            do {
                (runner, stored) = try Self.wavenetRunner(recipe, corpus: resuming == nil ? corpus : corpus.orRecorded(in: recipe), windows: (
                    .flag("--window", value: recipe.training.window), .flag("--eval-targets", value: recipe.evaluation.targets)),
                    sameCorpusAs: storedCorpus)
            } catch AudioError.corpusNotFound(let directory) where chosenModel == nil && corpus.corpus == nil {
                // Perhaps a training program was meant and left out.
                throw CommandError("\(AudioError.corpusNotFound(directory: directory)). (No training program was given after `--`, "
                                   + "so pbt tunes its built-in WaveNet, which trains on that corpus; to tune a program of your own, "
                                   + "give it after `--`: pbtwave pbt --run-dir RUN_DIR --space space.json -- python3 train.py)")
            }
            configuration.recipe = stored
            configuration.recipeFieldsNotCompared = TrainingRecipe.fieldsNotCompared
            return (runner, configuration)
        }
    }

    /// The runner of an existing run, rebuilt from its stored configuration
    /// (for `pbtwave worker`): the recipe it stored, on this machine's corpus
    /// or with `exec`'s program.
    static func makeRunner(stored configuration: RunConfiguration, corpus: CorpusOptions, toyMilliseconds: Int, exec: ExecOptions,
                           show: @escaping @Sendable (String) -> Void) throws -> any TrialRunner {
        if exec.isExec || exec.trialTimeout != nil, configuration.model != PBTModel.exec.rawValue {
            throw CommandError("the run tunes --model \(configuration.model), not a training program: drop "
                               + (exec.isExec ? "--exec and the program after --" : "--trial-timeout"))
        }
        switch PBTModel(rawValue: configuration.model) {
        case .exec: return try exec.runner(stored: configuration, show: show)
        case .toy: return ToyQuadraticRunner(simulatedWork: .milliseconds(toyMilliseconds))
        case .noop: return NoOpRunner()
        case .wavenet:
            guard let json = configuration.recipe, let recipe = try? json.decoded(as: TrainingRecipe.self) else {
                throw CommandError("the run stores no WaveNet recipe; it was made by an older pbtwave: use that build, or start a new run")
            }
            return try wavenetRunner(recipe, corpus: corpus.orRecorded(in: recipe), windows: (.fixed(by: "the run's stored recipe"), .fixed(by: "the run's stored recipe")),
                                     sameCorpusAs: recipe.corpus).runner
        case nil:
            throw CommandError("the run was created with model '\(configuration.model)', which this pbtwave does not know "
                               + "(it knows \(PBTModel.allCases.map(\.rawValue).joined(separator: ", "))); use the same pbtwave build on every machine")
        }
    }

    /// Loads the corpus and builds the WaveNet runner (one model per worker
    /// thread, single-threaded BLAS: parallelism comes from the workers),
    /// with the recipe naming that corpus. Clips too short for the recipe's
    /// windows are reported naming `windows` (what sets them for the command).
    /// With `sameCorpusAs` (a run's stored corpus), refuses another corpus:
    /// its trials' losses would not compare with the run's, and the run's
    /// exported recipe would name audio they were not trained on.
    static func wavenetRunner(
        _ recipe: TrainingRecipe, corpus: CorpusOptions, windows: (training: WindowSetting, validation: WindowSetting),
        sameCorpusAs stored: CorpusIdentity? = nil
    ) throws -> (runner: WaveNetRunner, recipe: JSONValue) {
        BLAS.setThreads(1)
        let data = try corpus.load()
        try MemoryCheck.requireTraining(recipe, on: data, windows: windows)
        if let note = recipe.training.receptiveFieldNote(for: recipe.model) { printNote(note) }
        var recipe = recipe
        recipe.corpus = CorpusIdentity(data)
        recipe.corpusDirectory = URL(fileURLWithPath: data.directory).standardizedFileURL.path
        try checkSameCorpus(stored: stored, given: recipe.corpus!, directory: data.directory)
        let runner = try explainingShortClips(data, training: windows.training, validation: windows.validation) {
            try WaveNetRunner(recipe: recipe, corpus: data)
        }
        return (runner, try recipe.json)
    }

    /// Refuses to go on with a run on another corpus than the one it was
    /// created on (nil `stored`: nothing to compare, e.g. an older run).
    static func checkSameCorpus(stored: CorpusIdentity?, given: CorpusIdentity, directory: String) throws {
        guard let stored, stored != given else { return }
        func text(_ c: CorpusIdentity) -> String { "\(c.trainFiles) train + \(c.validationFiles) validation files, digest \(c.digest.prefix(12))…" }
        throw CommandError("""
            --corpus: the run was created on another corpus (\(text(stored))) than \(directory) (\(text(given))); \
            its trials would score on other audio than the run's. Give the run's corpus (--corpus or PBTWAVE_CORPUS), or start a new run
            """)
    }
}
