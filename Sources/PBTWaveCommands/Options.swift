import ArgumentParser
import PBTFileSupport
import Foundation
import PBT
import PBTWaveAudio
import PBTWaveTensor
import PBTWaveModel

// Option groups shared by the commands.

/// A path flag's value, refused when empty: `--run-dir ""` would otherwise
/// put a whole run's files in the current directory.
func nonEmptyPath(_ text: String) throws -> String {
    guard !text.isEmpty else { throw ValidationError("the path is empty; give a directory (\".\" is the current directory)") }
    return text
}

/// A file flag's value, refused when empty.
func nonEmptyFilePath(_ text: String) throws -> String {
    guard !text.isEmpty else { throw ValidationError("the path is empty; give a file name") }
    return text
}

/// A file flag whose file cannot be standard output, refused when empty or
/// `-` (which named a file "-" in silence where a user meant standard output).
func writtenFilePath(_ text: String) throws -> String {
    guard text != "-" else {
        throw ValidationError("'-' (standard output) is not supported here: this writes a file; give a file name (./- for a file named '-')")
    }
    return try nonEmptyFilePath(text)
}

/// Where the corpus is.
struct CorpusOptions: ParsableArguments {
    @Option(help: "Corpus folder (default: $PBTWAVE_CORPUS; else the folder the checkpoint, schedule or run records it was made on, while that folder holds the same corpus; else ./corpus). Build the default one with `bash datasets/build-corpus.sh`.")
    var corpus: String?

    var directory: String { corpus ?? SpeechCorpus.defaultDirectory() }

    /// Where the corpus is: --corpus or $PBTWAVE_CORPUS when given; else
    /// the folder `recipe` records its corpus in, while that folder holds
    /// the same corpus (a schedule replayed, a run resumed or joined "with
    /// no other flag" looked in ./corpus), said in a note.
    func orRecorded(in recipe: TrainingRecipe?, environment: [String: String] = ProcessInfo.processInfo.environment) -> CorpusOptions {
        orRecorded(folder: recipe?.corpusDirectory, holding: { identity in recipe?.corpus.map { $0 == identity } ?? false },
                   what: "the run was made on", environment: environment)
    }

    /// The same for a checkpoint: the folder its `metadata` records, while it
    /// holds the corpus whose digest the metadata records too (`pbtwave
    /// evaluate` of a PBT trial's checkpoint looked in ./corpus).
    func orRecorded(checkpoint metadata: [String: String], environment: [String: String] = ProcessInfo.processInfo.environment) -> CorpusOptions {
        orRecorded(folder: metadata[CorpusIdentity.directoryMetadataKey], holding: { $0.digest == metadata[CorpusIdentity.metadataKey] },
                   what: "the checkpoint was trained on", environment: environment)
    }

    private func orRecorded(folder: String?, holding same: (CorpusIdentity) -> Bool, what: String, environment: [String: String]) -> CorpusOptions {
        guard corpus == nil, environment["PBTWAVE_CORPUS"] == nil, let folder,
              URL(fileURLWithPath: folder).standardizedFileURL != URL(fileURLWithPath: directory).standardizedFileURL
        else { return self }
        let manifest = try? CorpusManifest.read(directory: folder)
        guard let manifest, same(CorpusIdentity(manifest: manifest)) else {
            // Said, so that an error or a score on the default names the folder recorded (found by a user), and
            // how to use that folder as it is now (found by a helper: a rebuilt corpus led to advice on the default one).
            let why = !FileManager.default.fileExists(atPath: folder) ? "is not there now"
                : manifest == nil ? "holds no corpus now" : "holds another corpus now (rebuilt since?)"
            printNote("note: the corpus \(what) was at \(folder), which \(why); using \(directory) ("
                      + (manifest == nil ? "" : "give --corpus \(shellQuoted(folder)) to use what it holds now, or ")
                      + "give --corpus to choose another)")
            return self
        }
        printNote("note: using the corpus \(what), \(folder) (give --corpus to choose another)")
        var options = self
        options.corpus = folder
        return options
    }

    func load(verifyChecksums: Bool = false) throws -> SpeechCorpus {
        do {
            return try SpeechCorpus.load(directory: directory, verifyChecksums: verifyChecksums)
        } catch {
            // Say where the folder came from: the variable may be left over from another shell session.
            if case .corpusNotFound = error, corpus == nil, ProcessInfo.processInfo.environment["PBTWAVE_CORPUS"] != nil {
                printNote("note: the corpus folder \(directory) is what $PBTWAVE_CORPUS names (no --corpus was given)")
            }
            throw error
        }
    }
}

/// How a command shows progress on long work.
struct ProgressOptions: ParsableArguments {
    @Option(help: "Progress display: auto (line on a terminal, plain otherwise), line (rewritten in place), plain (a line every few seconds), none.")
    var progress: ProgressStyle = .auto
}

extension ProgressStyle: ExpressibleByArgument {}

/// When a process's workers give up on a broken training program or machine.
struct FailureLimitOptions: ParsableArguments {
    @Option(name: .customLong("max-failures-in-a-row"), parsing: .unconditional,
            help: ArgumentHelp("""
                Stop this process after N trials in a row failed in the training program (it could not start, crashed, \
                exited non-zero, timed out, or wrote no result; a diverged trial does not count, nor one that wrote no checkpoint, which is noted once), so that a \
                broken program or machine does not use up the run's budget. Its running trials go back to the queue. \
                0: never stop.
                """, valueName: "N"))
    var maxFailuresInARow: Int = DriverOptions.defaultMaxFailuresInARow

    func validate() throws {
        guard maxFailuresInARow >= 0 else { throw ValidationError("--max-failures-in-a-row must be 0 (never stop) or more") }
    }
}

/// The defaults of a command's training recipe.
protocol RecipeDefaults {
    static var preset: String { get }
    static var training: TrainingOptions { get }
    static var evaluation: EvaluationOptions { get }
}

/// `pbtwave train`'s defaults: the PyTorch peer's recipe.
enum TrainDefaults: RecipeDefaults {
    static let preset = "compact"
    static let training = TrainingOptions(batch: 1, window: 8192)
    static let evaluation = EvaluationOptions(windows: 16, targets: 4096)
}

/// `pbtwave pbt --model wavenet`'s defaults: a model that trains in seconds.
enum PBTDefaults: RecipeDefaults {
    static let preset = "tiny"
    static let training = TrainingOptions(batch: 2, window: 2048)
    static let evaluation = EvaluationOptions(windows: 8, targets: 4096)
}

/// The model, training windows and validation set. Every flag is optional,
/// so a command can tell which ones the user gave: over a schedule file's
/// recipe, those override it and are reported.
struct RecipeOptions<Defaults: RecipeDefaults>: ParsableArguments {
    @Option(help: "Model preset: \(WaveNetConfig.presets.keys.sorted().joined(separator: ", ")) (default: \(Defaults.preset)).")
    var preset: String?

    @Option(name: .customLong("model-config"), help: "A WaveNet config as JSON, instead of --preset: residualChannels, skipChannels, headChannels and dilations, and optionally dilationChannels (default: residualChannels), kernelSize, inputKernelSize (2), classes (256) and sampleRate (16000).")
    var modelConfig: String?

    @Option(parsing: .unconditional, help: "Windows per training step (default: \(Defaults.training.batch)).")
    var batch: Int?

    @Option(parsing: .unconditional, help: "Scored samples per training window (default: \(Defaults.training.window)).")
    var window: Int?

    @Option(parsing: .unconditional, help: "Unscored leading samples per training window; 0 pads with zeros, as the PyTorch reference does (default: 0).")
    var context: Int?

    @Option(help: "Operands of the products: fp32, or bf16 (bf16 operands, fp32 accumulation; fp32 weights, gradients and Adam) (default: fp32).")
    var precision: String?

    @Option(name: .customLong("eval-windows"), parsing: .unconditional,
            help: "Validation windows, fixed and evenly spaced over the validation files (default: \(Defaults.evaluation.windows)).")
    var evalWindows: Int?

    @Option(name: .customLong("eval-targets"), parsing: .unconditional,
            help: "Scored samples per validation window; each also gets a full receptive field of context (default: \(Defaults.evaluation.targets)).")
    var evalTargets: Int?

    func validate() throws {
        if let preset, modelConfig == nil { try WaveNetConfig.checkPreset(preset) }
        if preset != nil, modelConfig != nil { throw ValidationError("give --preset or --model-config, not both") }
        if let precision { _ = try parsedPrecision(precision) }
        guard (batch ?? 1) >= 1, (window ?? 1) >= 1 else { throw ValidationError("--batch and --window must be at least 1") }
        guard (context ?? 0) >= 0 else { throw ValidationError("--context must be 0 or more") }
        guard (evalWindows ?? 1) >= 1, (evalTargets ?? 1) >= 1 else {
            throw ValidationError("--eval-windows and --eval-targets must be at least 1")
        }
        // One bound each, the library's (so a schedule's recipe gets the same).
        let (training, evaluation) = (TrainingOptions.limits, EvaluationOptions.limits)
        for (flag, value, limit) in [("--batch", batch, training.batch), ("--window", window, training.samples),
                                     ("--context", context, training.samples), ("--eval-windows", evalWindows, evaluation.windows),
                                     ("--eval-targets", evalTargets, evaluation.targets)] {
            if let value, value > limit { throw ValidationError("\(flag) must be at most \(limit) (got \(value))") }
        }
    }

    /// The flags the user gave, by name, for messages.
    var given: [String] {
        [("--preset", preset != nil), ("--model-config", modelConfig != nil), ("--batch", batch != nil), ("--window", window != nil),
         ("--context", context != nil), ("--precision", precision != nil), ("--eval-windows", evalWindows != nil),
         ("--eval-targets", evalTargets != nil)]
            .filter(\.1).map(\.0)
    }

    /// The model the flags name, or nil when they name none.
    func model() throws -> WaveNetConfig? {
        if let path = modelConfig { return try WaveNetConfig.read(from: path) }
        return preset.map { WaveNetConfig.presets[$0]! }
    }

    /// `base` with the flags the user gave applied.
    func apply(to base: TrainingRecipe) throws -> TrainingRecipe {
        var r = base
        if let model = try model() { r.model = model }
        r.training = TrainingOptions(batch: batch ?? r.training.batch, window: window ?? r.training.window,
                                     context: context ?? r.training.context,
                                     precision: try precision.map(parsedPrecision) ?? r.training.precision)
        r.evaluation = EvaluationOptions(windows: evalWindows ?? r.evaluation.windows, targets: evalTargets ?? r.evaluation.targets)
        return r
    }

    func parsedPrecision(_ text: String) throws -> Precision {
        do { return try Precision(parsing: text) } catch { throw ValidationError("--precision: \(error)") }
    }

    /// The command's default recipe with the flags applied.
    func recipe(seed: UInt64) throws -> TrainingRecipe {
        try apply(to: TrainingRecipe(model: WaveNetConfig.presets[Defaults.preset]!, training: Defaults.training,
                                     evaluation: Defaults.evaluation, seed: seed))
    }
}

extension WaveNetConfig {
    /// Throws "unknown --preset 'name'; choose one of …" (naming `flag`) unless `name` is one of `presets`.
    static func checkPreset(_ name: String, flag: String = "--preset") throws {
        guard presets[name] == nil else { return }
        throw ValidationError("unknown \(flag) '\(name)'; choose one of \(presets.keys.sorted().joined(separator: ", "))")
    }

    /// A `--model-config` file: the widths of the residual, skip and head
    /// paths and the dilations must be given; the rest may be left out:
    /// `dilationChannels` is then `residualChannels` (as the peer's `--R`
    /// sets both), the others the defaults every preset has (256 classes,
    /// kernels of 2, 16 kHz).
    struct ConfigFile: Decodable {
        var classes: Int?
        var residualChannels: Int
        var dilationChannels: Int?
        var skipChannels: Int
        var headChannels: Int
        var kernelSize: Int?
        var inputKernelSize: Int?
        var dilations: [Int]
        var sampleRate: Int?

        var config: WaveNetConfig {
            let defaults = WaveNetConfig(residualChannels: 1, dilationChannels: 1, skipChannels: 1, headChannels: 1, dilations: [1])
            return WaveNetConfig(classes: classes ?? defaults.classes, residualChannels: residualChannels,
                                 dilationChannels: dilationChannels ?? residualChannels, skipChannels: skipChannels, headChannels: headChannels,
                                 kernelSize: kernelSize ?? defaults.kernelSize, inputKernelSize: inputKernelSize ?? defaults.inputKernelSize,
                                 dilations: dilations, sampleRate: sampleRate ?? defaults.sampleRate)
        }
    }

    /// A config from a JSON file (`--model-config`), checked.
    static func read(from path: String) throws -> WaveNetConfig {
        let data: Data
        do throws(SmallFile.Failure) { data = try SmallFile.read(path) } catch {
            throw ValidationError("cannot read --model-config \(path): \(error.reason)")
        }
        if let problem = JSONStrictnessProblem.first(in: data) { throw ValidationError("--model-config \(path): \(problem)") }
        // A field the config does not have (a typo, or another tool's option) would be ignored; said first,
        // since a typo also leaves its field missing.
        let known = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(WaveNetConfig.tiny)) as? [String: Any]).map { Set($0.keys) } ?? []
        if let given = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let unknown = Set(given.keys).subtracting(known).sorted()
            if !known.isEmpty, !unknown.isEmpty {
                throw ValidationError("--model-config \(path): unknown field\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")); "
                                      + "a WaveNet config has \(known.sorted().joined(separator: ", "))")
            }
        }
        let config: WaveNetConfig
        do { config = try JSONDecoder().decode(ConfigFile.self, from: data).config } catch {
            throw ValidationError("--model-config \(path) is not a WaveNet config: \(DecodingErrorText.sentence(for: error, data: data))")
        }
        try config.validate()
        return config
    }
}

/// An error a user caused, with a message that says what to do.
public struct CommandError: Error, CustomStringConvertible, LocalizedError {
    public var description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}
