import ArgumentParser
import Foundation
import PBTWaveAudio

/// `pbtwave corpus`: build a corpus from your own audio, inspect and verify
/// one. The default speech corpus comes from `datasets/build-corpus.sh`,
/// which installs the Debian package and decodes G.722 with ffmpeg, then
/// calls `corpus build`.
struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Build a corpus from your own audio, or inspect and verify one.",
        subcommands: [Info.self, Check.self, CorpusBuild.self],
        defaultSubcommand: Info.self
    )

    struct Location: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp(
            "Corpus folder (default: $PBTWAVE_CORPUS, else ./corpus).", valueName: "dir"))
        var corpus: String?

        var directory: String { corpus ?? SpeechCorpus.defaultDirectory() }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Files, minutes, train/validation split and unigram mu-law entropy of the corpus."
        )

        @OptionGroup var location: Location

        /// A word after `corpus` that names no subcommand lands here, `info`
        /// being the default: `pbtwave corpus verify` said "Unexpected
        /// argument" under info's usage, and `--help` printed info's help.
        @Argument(help: .hidden) var unknownSubcommand: String?

        func validate() throws {
            if let word = unknownSubcommand {
                throw ValidationError("'\(word)' is not a corpus subcommand; they are info (the default), check (alias verify) and build")
            }
        }

        func run() throws {
            let directory = location.directory
            // Checksums are `corpus check`'s job; info only needs the audio.
            // An empty split is worth describing, not refusing: only training needs both.
            let corpus = try SpeechCorpus.load(directory: directory, verifyChecksums: false, requireBothSplits: false)
            let totalSeconds = corpus.train.seconds + corpus.validation.seconds
            func line(_ name: String, _ set: ClipSet) -> String {
                "  \(name): \(set.clips.count) file\(set.clips.count == 1 ? "" : "s"), "
                    + String(format: "%.2f minutes (%.1f %%), %ld samples at %ld Hz",
                             set.seconds / 60, 100 * set.seconds / totalSeconds, set.sampleCount, SpeechCorpus.sampleRate)
            }
            let trainBits = corpus.train.unigramEntropyBits()
            let validationBits = corpus.validation.unigramEntropyBits()
            let crossBits = crossEntropyBits(histogram: corpus.validation.codeHistogram(), model: corpus.train.codeHistogram())
            print("corpus \(directory)")
            print(String(format: "  files: %ld, %.2f minutes; ", corpus.manifest.entries.count, totalSeconds / 60) + Self.rates(corpus.fileSampleRates))
            print(line("train", corpus.train))
            print(line("validation", corpus.validation))
            // An empty split has no entropy to show (it printed 0.000, and 8.000 against an empty train split).
            func bits(_ value: Double, _ set: ClipSet) -> String { set.sampleCount > 0 ? String(format: "%.3f bits", value) : "none (empty split)" }
            print("  unigram mu-law entropy: train \(bits(trainBits, corpus.train)), validation \(bits(validationBits, corpus.validation))"
                  + (corpus.train.sampleCount > 0 && corpus.validation.sampleCount > 0 ? " per sample" : ""))
            if corpus.train.sampleCount > 0, corpus.validation.sampleCount > 0 {
                print(String(format: "  validation under the train unigram: %.3f bits per sample (the NLL a model must beat)", crossBits))
            } else {
                print("  validation under the train unigram: none (a split is empty)")
            }
            do { try corpus.manifest.requireBothSplits() } catch { printNote("  warning: \(error)") }
        }

        /// The rate of a corpus's files, and what loading does with it.
        static func rates(_ fileRates: [Int]) -> String {
            let model = SpeechCorpus.sampleRate
            if fileRates == [model] { return "files at \(model) Hz, the model's rate" }
            let listed = fileRates.map { "\($0) Hz" }.joined(separator: ", ")
            return "files at \(listed), resampled to the model's \(model) Hz when loaded"
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify every corpus file against the manifest (present, sample count, sha256).",
            aliases: ["verify"]
        )

        @OptionGroup var location: Location

        func run() throws {
            let directory = location.directory
            let manifest = try CorpusManifest.read(directory: directory)
            let problems = try SpeechCorpus.verify(directory: directory)
            if problems.isEmpty {
                print("corpus \(directory): all \(manifest.entries.count) files match manifest.tsv (sha256, sample count); split \(manifest.train.count) train / \(manifest.validation.count) validation")
                return
            }
            let summary = "corpus \(directory): \(problems.count) of \(manifest.entries.count) files are missing or damaged: delete them, then run the build again (`pbtwave corpus build --from AUDIO_DIR --output \(directory)`, or `bash datasets/build-corpus.sh \(directory)` for the default corpus)"
            writeToStandardError(problems.map { "\($0)\n" }.joined() + summary + "\n")
            throw ExitCode.failure
        }
    }
}
