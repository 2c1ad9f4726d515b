import ArgumentParser
import Foundation
import SpeechAudio
import WaveNetModule

extension WaveNetConfig {
    /// Throws "unknown `option` 'name'; choose one of …" unless `name` is one of `presets`.
    static func checkPreset(_ name: String, option: String = "preset") throws {
        guard presets[name] == nil else { return }
        throw ValidationError("unknown \(option) '\(name)'; choose one of \(presets.keys.sorted().joined(separator: ", "))")
    }
}

/// Which WaveNet to build: a named preset or a JSON config file.
struct ModelChoice: ParsableArguments {
    @Option(help: "Model preset: \(WaveNetConfig.presets.keys.sorted().joined(separator: ", ")).")
    var preset: String = "compact"

    @Option(name: .customLong("model-config"), help: "A WaveNet config as JSON (overrides --preset).")
    var modelConfig: String?

    func validate() throws {
        if modelConfig == nil { try WaveNetConfig.checkPreset(preset) }
    }

    func config() throws -> WaveNetConfig {
        guard let path = modelConfig else { return WaveNetConfig.presets[preset]! }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read --model-config \(path): no such file")
        }
        let config: WaveNetConfig
        do { config = try JSONDecoder().decode(WaveNetConfig.self, from: data) } catch {
            throw ValidationError("--model-config \(path) is not a WaveNet config: \(error)")
        }
        try config.validate()
        return config
    }
}

/// Where the corpus is.
struct CorpusChoice: ParsableArguments {
    @Option(help: "Corpus folder (default: $PBTWAVE_CORPUS, else ./corpus; build it with `bash datasets/build-corpus.sh`).")
    var corpus: String?

    func load(verifyChecksums: Bool = false) throws -> SpeechCorpus {
        try SpeechCorpus.load(directory: corpus ?? SpeechCorpus.defaultDirectory(), verifyChecksums: verifyChecksums)
    }
}

/// Validation-set options shared by train, evaluate and PBT.
struct ValidationChoice: ParsableArguments {
    @Option(name: .customLong("eval-windows"), help: "Validation windows (fixed, evenly spaced over the validation files).")
    var evalWindows: Int = 16

    @Option(name: .customLong("eval-targets"), help: "Scored samples per validation window (each also gets a full receptive field of context).")
    var evalTargets: Int = 4096

    func validate() throws {
        guard evalWindows >= 1, evalTargets >= 1 else { throw ValidationError("--eval-windows and --eval-targets must be at least 1") }
    }

    func validator(_ corpus: SpeechCorpus, config: WaveNetConfig) throws -> Validator {
        try Validator(clips: corpus.validation, config: config, count: evalWindows, targets: evalTargets)
    }
}
