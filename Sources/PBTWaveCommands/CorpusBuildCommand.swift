import ArgumentParser
import PBT
import Foundation
import PBTWaveAudio
import PBTWaveModel

/// `pbtwave corpus build`: a corpus from a folder of the user's own audio.
struct CorpusBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a corpus from your own audio: any format libsndfile reads, any rate, any channels.",
        discussion: """
        Walks --from recursively (hidden files and folders are left out), mixes every file down to mono, \
        resamples it to --rate with libsamplerate (its \(ResamplingQuality.corpusBuildDefault.rawValue) sinc converter unless --quality says otherwise) and writes it as a 16-bit WAV under --output, \
        keeping its relative path (a/b.flac becomes a/b.wav). Writes manifest.tsv, train.txt and validation.txt \
        (split by a hash of each path, so it is stable) and skipped.tsv (every file left out, with the reason). \
        Running it again converts only what changed; an interrupted build resumes where it stopped.

        Example (LJSpeech): pbtwave corpus build --from LJSpeech-1.1/wavs --output ljspeech-corpus
        then: pbtwave train --corpus ljspeech-corpus
        """
    )

    @Option(name: .customLong("from"), help: ArgumentHelp(
        "Folder of source audio, walked recursively (with --files: the folder its paths are relative to; default: the list's folder).",
        valueName: "dir"), transform: nonEmptyPath)
    var from: String?

    @Option(help: ArgumentHelp("A list of files to use instead of walking --from: one path per line, relative to --from or absolute inside it; blank lines and lines starting with # are skipped (write ./#name for a file whose name starts with #).", valueName: "list.txt"),
            transform: nonEmptyFilePath)
    var files: String?

    @Option(help: ArgumentHelp("Corpus folder to write (default: $PBTWAVE_CORPUS, else ./corpus).", valueName: "dir"), transform: nonEmptyPath)
    var output: String?

    @Option(parsing: .unconditional, help: "Sample rate of the written WAVs, Hz (the model is trained at 16000).")
    var rate: Int = SpeechCorpus.sampleRate

    @Option(name: .customLong("validation-percent"), parsing: .unconditional, help: "Share of files in the validation split (by a hash of each path), 0-100.")
    var validationPercent: Int = 10

    @Option(name: .customLong("min-seconds"), parsing: .unconditional, help: "Skip files shorter than this after resampling.")
    var minSeconds: Double = 0.1

    @Option(parsing: .unconditional, help: "Files converted at once (default: every core).")
    var jobs: Int?

    @Option(help: "libsamplerate's converter for files at another rate: fastest (80 % of the bandwidth, enough for speech), medium (90 %, 3× the CPU) or best (97 %, 8×).")
    var quality: ResamplingQuality = .corpusBuildDefault

    @Option(help: ArgumentHelp("Files to leave out: `source<TAB>reason` lines, copied into skipped.tsv; a source is a file or a folder (every file under it), relative to --from or absolute inside it, as in --files (# starts a comment line there too).", valueName: "list.tsv"), transform: nonEmptyFilePath)
    var exclude: String?

    @Flag(help: "Replace a corpus in --output that was built from another source folder (without it, such a build is refused).")
    var replace = false

    @Option(help: "Progress display: auto, line (rewritten in place), plain (a line every few seconds), none.")
    var progress: ProgressStyle = .auto

    func validate() throws {
        guard from != nil || files != nil else {
            throw ValidationError("give the folder of your audio with --from DIR (or a list of files with --files LIST.txt)")
        }
        guard AudioLimits.sampleRates.contains(rate) else {
            throw ValidationError("--rate must be between \(AudioLimits.sampleRates.lowerBound) and \(AudioLimits.sampleRates.upperBound) Hz (the model trains at 16000)")
        }
        guard (0 ... 100).contains(validationPercent) else { throw ValidationError("--validation-percent must be between 0 and 100") }
        guard minSeconds.isFinite, minSeconds >= 0, minSeconds <= 86_400 else {
            throw ValidationError("--min-seconds must be a number of seconds between 0 and 86400")
        }
        if let jobs { guard (1 ... 1024).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 1024") } }
    }

    func run() throws {
        let source = from ?? files.map { ($0 as NSString).deletingLastPathComponent }.map { $0.isEmpty ? "." : $0 }!
        var options = CorpusBuildOptions(source: source, output: output ?? SpeechCorpus.defaultDirectory())
        options.fileList = files
        options.exclusionList = exclude
        options.sampleRate = rate
        options.validationPercent = validationPercent
        options.minimumSeconds = minSeconds
        if let jobs { options.jobs = jobs }
        options.quality = quality
        options.replaceOtherSource = replace

        let line = ProgressLine(label: "corpus build", style: progress)
        // Stopped at once, but said (found by a helper: it exited 130 with no word); a build goes on where it stopped.
        let signals = StopOnSignals { signal, _ in
            line.message("corpus build: \(signalName(signal)): stopped; the files converted so far are kept: "
                         + "the same command converts the rest and finishes the corpus")
            StopOnSignals.exitNow(signal)
        }
        defer { signals.cancel() }
        let summary = try CorpusBuilder.build(options) { p in
            // Files read so far of those to read (some turn out not to be audio, or too short: the summary counts those kept).
            var text = "read \(p.filesDone)/\(p.filesToConvert) files"
            if p.bytesToConvert > 0 { text += String(format: " (%.0f %% of their bytes)", 100 * Double(p.bytesDone) / Double(p.bytesToConvert)) }
            text += String(format: ", %.1f min of audio, %@ elapsed", p.audioSecondsConverted / 60, ProgressLine.duration(p.elapsedSeconds))
            if let eta = p.etaSeconds { text += ", ETA \(ProgressLine.duration(eta))" }
            line.update(text, now: p.elapsedSeconds, force: p.filesDone == p.filesToConvert)
        }
        line.finish()
        // The summary on standard output, its warnings on standard error (with every other command's).
        print(summary.report)
        for warning in summary.warnings { printNote("  warning: \(warning)") }
        if let warning = Self.shortClipWarning(longest: summary.longestFileSamples, rate: rate) { printNote(warning) }
        if rate != SpeechCorpus.sampleRate {
            printNote("  note: the model trains at \(SpeechCorpus.sampleRate) Hz; loading resamples these \(rate) Hz files each time")
        }
    }
}

extension CorpusBuild {
    /// A warning when even the longest clip (`longest` samples at `rate`)
    /// is shorter than `pbtwave train`'s default training window.
    static func shortClipWarning(longest: Int, rate: Int) -> String? {
        let defaults = TrainDefaults.training
        let atModelRate = Int(Double(longest) * Double(SpeechCorpus.sampleRate) / Double(rate))
        guard atModelRate < defaults.windowLength else { return nil }
        let fits = atModelRate - (defaults.windowLength - defaults.window)
        return "  warning: every clip is shorter than `pbtwave train`'s default training window (\(defaults.windowLength) samples at \(SpeechCorpus.sampleRate) Hz, --window \(defaults.window)); the longest has \(atModelRate): train with --window \(max(1, fits)) or less (and --eval-targets small enough for the model's receptive field), or use longer recordings"
    }
}

extension ResamplingQuality: ExpressibleByArgument {}
