import ArgumentParser
import Foundation
@testable import PBTWaveCommands
import PBTWaveAudio
import Testing
import PBTWaveModel

/// A corpus built by `CorpusBuilder` from `clips` WAVs of `samples` samples
/// at `rate`, in a fresh temporary folder (removed with the value).
private final class SmallCorpus {
    let root: String
    var directory: String { root + "/corpus" }

    init(clips: Int, samples: Int, rate: Int = 16_000, validationPercent: Int = 50) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("pbtwave-corpus-cmd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/audio", withIntermediateDirectories: true)
        for clip in 0 ..< clips {
            let tone = (0 ..< samples).map { Float(0.3 * sin(Double($0) * 0.01 * Double(clip + 1))) }
            try writeWAV(tone, sampleRate: rate, to: root + "/audio/clip\(clip).wav")
        }
        var options = CorpusBuildOptions(source: root + "/audio", output: directory)
        options.sampleRate = rate
        options.validationPercent = validationPercent
        options.jobs = 1
        options.minimumSeconds = 0  // clips shorter than a window are the point of some tests
        _ = try CorpusBuilder.build(options)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

@Suite struct CorpusCommandTests {
    func runError(_ arguments: [String]) throws -> String? { try CommandErrorTests().runError(arguments) }

    /// Clips shorter than a window: each command names what sets that
    /// window for it, with the largest value that fits.
    @Test func clipsShorterThanAWindowNameTheFlag() throws {
        let corpus = try SmallCorpus(clips: 4, samples: 4000)
        let tiny = WaveNetConfig.presets["tiny"]!
        // Validation windows: --eval-targets 4096 plus the tiny model's context.
        let validation = try runError(["train", "--corpus", corpus.directory, "--preset", "tiny", "--steps", "1", "--window", "64"])
        #expect(validation?.contains("--eval-targets \(4000 - tiny.receptiveField) or less") == true, "got \(validation ?? "no error")")
        #expect(validation?.contains("validation window") == true && validation?.contains("fewer targets") == false)
        // Training windows: --window.
        let training = try runError(["train", "--corpus", corpus.directory, "--preset", "tiny", "--steps", "1", "--window", "5000", "--eval-targets", "64"])
        #expect(training?.contains("--window 3999 or less") == true && training?.contains("train window") == true, "got \(training ?? "no error")")
        // A receptive field longer than every clip: no window value fits, so a smaller model is named.
        var wide = WaveNetConfig.tiny
        wide.dilations = [4096]
        let config = corpus.root + "/wide.json"
        try JSONEncoder().encode(wide).write(to: URL(fileURLWithPath: config))
        let context = try runError(["train", "--corpus", corpus.directory, "--model-config", config, "--steps", "1", "--window", "64",
                                    "--eval-targets", "64"])
        #expect(context?.contains("use a model with a smaller receptive field") == true, "got \(context ?? "no error")")
        // experiment has no window flags: it names the preset and the length needed.
        let runDir = corpus.root + "/runs"
        let short = try SmallCorpus(clips: 4, samples: 400)
        let experiment = try runError(["experiment", "--preset", "smoke", "--corpus", short.directory, "--run-dir", runDir])
        #expect(experiment?.contains("too short for the smoke preset") == true && experiment?.contains("513 samples") == true,
                "got \(experiment ?? "no error")")
    }

    /// `corpus build` warns when no clip fills `train`'s default window,
    /// counting at the model's rate whatever --rate was.
    @Test func corpusBuildWarnsWhenEveryClipIsShorterThanTheDefaultWindow() {
        let window = TrainDefaults.training.window
        let warning = CorpusBuild.shortClipWarning(longest: 4000, rate: 16_000)
        #expect(warning?.contains("--window 3999 or less") == true && warning?.contains("--window \(window))") == true, "\(warning ?? "none")")
        #expect(CorpusBuild.shortClipWarning(longest: window + 1, rate: 16_000) == nil)
        #expect(CorpusBuild.shortClipWarning(longest: window / 2 + 1, rate: 8_000) == nil, "8 kHz clips are resampled to twice as many samples")
        #expect(CorpusBuild.shortClipWarning(longest: window / 2, rate: 8_000) != nil)
    }

    /// A corpus with an empty split: `corpus info` and `corpus check`
    /// describe it; `train` refuses, naming the split and what to do.
    @Test func emptySplitIsDescribedButNotTrainedOn() throws {
        let corpus = try SmallCorpus(clips: 3, samples: 4000, validationPercent: 0)
        #expect(try runError(["corpus", "info", "--corpus", corpus.directory]) == nil)
        #expect(try runError(["corpus", "check", "--corpus", corpus.directory]) == nil)
        let train = try runError(["train", "--corpus", corpus.directory, "--preset", "tiny", "--steps", "1", "--window", "64", "--eval-targets", "64"])
        #expect(train?.contains("empty validation split") == true && train?.contains("--validation-percent") == true, "got \(train ?? "no error")")
        #expect(train?.contains("line 1") == false)
    }

    /// `corpus verify` is `corpus check` (the command's abstract says
    /// "verify"); a word that names no subcommand is named as such, not
    /// taken as an argument of the default `info`.
    @Test func corpusSubcommandsByNameAndAlias() throws {
        let corpus = try SmallCorpus(clips: 3, samples: 4000)
        #expect(try runError(["corpus", "verify", "--corpus", corpus.directory]) == nil)
        let first = try #require(try CorpusManifest.read(directory: corpus.directory).entries.first)
        try FileManager.default.removeItem(atPath: corpus.directory + "/" + first.file)
        #expect(try runError(["corpus", "verify", "--corpus", corpus.directory]) != nil, "a missing file fails the check")
        let unknown = CommandErrorTests().parseError(["corpus", "biuld"])
        #expect(unknown?.contains("'biuld' is not a corpus subcommand; they are info (the default), check (alias verify) and build") == true,
                "got \(unknown ?? "no error")")
    }

    /// `corpus info` says the rate the files are at, and that loading
    /// resamples them to the model's.
    @Test func corpusInfoTellsTheFilesRate() throws {
        let corpus = try SmallCorpus(clips: 3, samples: 4000, rate: 8000)
        let loaded = try SpeechCorpus.load(directory: corpus.directory)
        #expect(loaded.fileSampleRates == [8000])
        #expect(CorpusCommand.Info.rates(loaded.fileSampleRates) == "files at 8000 Hz, resampled to the model's 16000 Hz when loaded")
        #expect(CorpusCommand.Info.rates([16_000]) == "files at 16000 Hz, the model's rate")
    }
}
