import PBTFileSupport
import Foundation

/// One line of a corpus's `manifest.tsv`.
public struct ManifestEntry: Sendable, Hashable {
    /// Path of the WAV file, relative to the corpus folder.
    public var file: String
    public var seconds: Double
    public var samples: Int
    /// sha256 of the file's bytes, 64 lowercase hex digits.
    public var sha256: String

    public init(file: String, seconds: Double, samples: Int, sha256: String) {
        self.file = file
        self.seconds = seconds
        self.samples = samples
        self.sha256 = sha256
    }

    /// The entry for a WAV of `samples` samples at `sampleRate` Hz.
    public init(file: String, samples: Int, sampleRate: Int, sha256: String) {
        self.init(file: file, seconds: Double(samples) / Double(sampleRate), samples: samples, sha256: sha256)
    }

    /// Its `manifest.tsv` line (without the newline): file, seconds with 4
    /// decimals (C's `%.4f`, as `awk` printed them), samples, sha256.
    public var manifestLine: String {
        "\(file)\t\(String(format: "%.4f", seconds))\t\(samples)\t\(sha256)"
    }
}

/// A corpus folder's metadata: `manifest.tsv` plus the split lists
/// `train.txt` and `validation.txt` (see datasets/README.md), read and
/// cross-checked, without the audio.
public struct CorpusManifest: Sendable {
    /// The first line of `manifest.tsv`.
    public static let header = "file\tseconds\tsamples\tsha256"

    public let directory: String
    public let entries: [ManifestEntry]
    /// Files of the training split, in list order.
    public let train: [ManifestEntry]
    /// Files of the validation split, in list order.
    public let validation: [ManifestEntry]

    public var totalSeconds: Double { entries.reduce(0) { $0 + $1.seconds } }

    /// Reads and checks the metadata of the corpus in `directory`.
    ///
    /// Throws ``AudioError/corpusIsAFile(path:)`` when `directory` is a
    /// file, ``AudioError/corpusNotFound(directory:)`` without a
    /// `manifest.tsv` (``AudioError/notACorpus(directory:)`` when the folder
    /// holds other files, e.g. audio never built into a corpus), ``AudioError/manifestMalformed(path:line:reason:)`` for
    /// a bad line or a missing list, and
    /// ``AudioError/splitInconsistent(directory:file:reason:)`` when a list
    /// names a file the manifest lacks, or a file is in both lists. A split
    /// list may be empty (a corpus of one file, or built with
    /// `--validation-percent` 0 or 100): ``requireBothSplits()`` is the
    /// check for those that train or evaluate.
    public static func read(directory: String) throws(AudioError) -> CorpusManifest {
        if PathKind(of: directory) == .file {
            throw AudioError.corpusIsAFile(path: directory)
        }
        let manifestPath = join(directory, "manifest.tsv")
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            if contents.contains(CorpusBuildJournal.fileName) {
                // Not "did not finish, run it again" while it runs (found by a helper).
                if CorpusBuilder.isBuilding(directory) { throw AudioError.buildInProgress(output: directory) }
                // skipped.tsv is written when a build ends; with no source converted, it ended finding no audio.
                let journal = CorpusBuildJournal.read(path: join(directory, CorpusBuildJournal.fileName), identity: "")
                if contents.contains("skipped.tsv"), let source = journal.source, !journal.records.values.contains(where: \.isConverted) {
                    throw AudioError.corpusBuildFoundNoAudio(directory: directory, source: source)
                }
                throw AudioError.corpusBuildUnfinished(directory: directory)
            }
            if contents.contains(where: { !$0.hasPrefix(".") }) { throw AudioError.notACorpus(directory: directory) }
            throw AudioError.corpusNotFound(directory: directory)
        }
        let lines = try readLines(manifestPath)
        guard let header = lines.first, header == Self.header else {
            throw AudioError.manifestMalformed(path: manifestPath, line: 1, reason: "expected the header `file<TAB>seconds<TAB>samples<TAB>sha256`")
        }
        var entries: [ManifestEntry] = []
        var byFile: [String: Int] = [:]
        for (index, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let lineNumber = index + 1
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4 else {
                throw AudioError.manifestMalformed(path: manifestPath, line: lineNumber, reason: "expected 4 tab-separated fields, found \(fields.count)")
            }
            let file = fields[0]
            guard isSafeRelativePath(file) else {
                throw AudioError.manifestMalformed(path: manifestPath, line: lineNumber, reason: "file `\(file)` is not a relative path inside the corpus")
            }
            guard let seconds = Double(fields[1]), seconds.isFinite, seconds >= 0, let samples = Int(fields[2]), samples >= 0 else {
                throw AudioError.manifestMalformed(path: manifestPath, line: lineNumber, reason: "seconds `\(fields[1])` or samples `\(fields[2])` is not a non-negative number")
            }
            let sha = fields[3]
            guard sha.count == 64, sha.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw AudioError.manifestMalformed(path: manifestPath, line: lineNumber, reason: "sha256 `\(sha)` is not 64 lowercase hex digits")
            }
            guard byFile[file] == nil else {
                throw AudioError.manifestMalformed(path: manifestPath, line: lineNumber, reason: "file `\(file)` is listed twice")
            }
            byFile[file] = entries.count
            entries.append(ManifestEntry(file: file, seconds: seconds, samples: samples, sha256: sha))
        }
        guard !entries.isEmpty else {
            throw AudioError.manifestMalformed(path: manifestPath, line: 2, reason: "the manifest lists no files")
        }

        var seen: [String: String] = [:]
        func readSplit(_ name: String) throws(AudioError) -> [ManifestEntry] {
            let path = join(directory, name)
            guard FileManager.default.fileExists(atPath: path) else {
                throw AudioError.manifestMalformed(path: path, line: 0, reason: "the split list is missing")
            }
            var split: [ManifestEntry] = []
            for line in try readLines(path) where !line.isEmpty {
                guard let index = byFile[line] else {
                    throw AudioError.splitInconsistent(directory: directory, file: line, reason: "in \(name) is not in manifest.tsv")
                }
                if let other = seen[line] {
                    throw AudioError.splitInconsistent(directory: directory, file: line, reason: other == name ? "is listed twice in \(name)" : "is listed in both \(other) and \(name)")
                }
                seen[line] = name
                split.append(entries[index])
            }
            return split
        }
        let train = try readSplit("train.txt")
        let validation = try readSplit("validation.txt")
        // Every file is in one split (found by a helper: `corpus check` passed a corpus whose validation.txt had lost a line).
        let unsplit = entries.filter { seen[$0.file] == nil }
        if let first = unsplit.first {
            throw AudioError.splitInconsistent(directory: directory, file: first.file, reason: "is in manifest.tsv but in neither train.txt nor "
                                               + "validation.txt" + (unsplit.count > 1 ? " (and \(unsplit.count - 1) more)" : "")
                                               + "; build the corpus again to write its lists")
        }
        return CorpusManifest(directory: directory, entries: entries, train: train, validation: validation)
    }

    /// Throws ``AudioError/splitEmpty(directory:split:files:)`` when the
    /// train or the validation list is empty: training draws from one and
    /// evaluates on the other.
    public func requireBothSplits() throws(AudioError) {
        for (name, split) in [("train", train), ("validation", validation)] where split.isEmpty {
            throw AudioError.splitEmpty(directory: directory, split: name, files: entries.count)
        }
    }
}

/// The speech corpus `datasets/build-corpus.sh` builds: train and validation
/// clips as mu-law codes at 16 kHz.
///
///     let corpus = try SpeechCorpus.load(directory: SpeechCorpus.defaultDirectory())
///     var rng = Xoshiro256(seed: 1)
///     try corpus.train.sampleWindow(length: n, rng: &rng, into: buffer)
///     let fixed = try corpus.validationWindows(length: n, count: 16)
public struct SpeechCorpus: Sendable {
    /// The model's sample rate, Hz.
    public static let sampleRate = 16_000

    public let manifest: CorpusManifest
    public let train: ClipSet
    public let validation: ClipSet
    /// The sample rates of the corpus's WAVs, ascending (one, unless files
    /// were replaced by hand): ``sampleRate`` for the default corpus, the
    /// build's `--rate` otherwise. Other rates are resampled to
    /// ``sampleRate`` when loaded.
    public let fileSampleRates: [Int]

    public var directory: String { manifest.directory }

    /// The corpus folder to use when none is given: `$PBTWAVE_CORPUS` if set
    /// and not empty, else `corpus` under `currentDirectory` (the build
    /// script's default when run from the repository root).
    public static func defaultDirectory(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath
    ) -> String {
        if let configured = environment["PBTWAVE_CORPUS"], !configured.isEmpty { return configured }
        return join(currentDirectory, "corpus")
    }

    /// Loads the corpus in `directory`: reads the manifest and split, then
    /// every listed file, checks its sample count (and, if
    /// `verifyChecksums`, its sha256) against the manifest, resamples it to
    /// ``sampleRate`` if it is at another rate (with
    /// ``ResamplingQuality/loadingDefault``) and encodes it to mu-law.
    ///
    /// Throws ``AudioError`` naming the corpus or file: corpus not found (run
    /// the build script), malformed metadata, an empty split (unless
    /// `requireBothSplits` is false, for commands that only describe the
    /// corpus), a listed file missing, a checksum or sample-count mismatch,
    /// an unreadable file.
    /// Cost: reads the ~47 MB default corpus; well under a second in release.
    public static func load(
        directory: String, verifyChecksums: Bool = true, requireBothSplits: Bool = true
    ) throws(AudioError) -> SpeechCorpus {
        let manifest = try CorpusManifest.read(directory: directory)
        if requireBothSplits { try manifest.requireBothSplits() }
        var fileRates = Set<Int>()
        func clips(_ entries: [ManifestEntry], split: String) throws(AudioError) -> ClipSet {
            let clips = try entries.map { (entry) throws(AudioError) in
                let (samples, fileRate) = try loadVerified(entry, directory: directory, verifyChecksum: verifyChecksums)
                fileRates.insert(fileRate)
                return Clip(name: entry.file, samples: samples)
            }
            return ClipSet(source: "\(directory) (\(split))", clips: clips, sampleRate: sampleRate)
        }
        let train = try clips(manifest.train, split: "train")
        let validation = try clips(manifest.validation, split: "validation")
        return SpeechCorpus(manifest: manifest, train: train, validation: validation, fileSampleRates: fileRates.sorted())
    }

    /// Checks every file of the corpus in `directory` against its manifest:
    /// present, readable, sample count, sha256. Returns the problems found,
    /// one per bad file (empty: the corpus is intact); throws only when the
    /// metadata itself cannot be read.
    public static func verify(directory: String) throws(AudioError) -> [AudioError] {
        let manifest = try CorpusManifest.read(directory: directory)
        var problems: [AudioError] = []
        for entry in manifest.entries {
            do throws(AudioError) {
                _ = try loadVerified(entry, directory: directory, verifyChecksum: true)
            } catch {
                problems.append(error)
            }
        }
        return problems
    }

    /// A fixed set of validation windows:
    /// ``ClipSet/evenlySpacedWindows(length:count:)`` of ``validation``.
    public func validationWindows(length: Int, count: Int) throws(AudioError) -> WindowBatch {
        try validation.evenlySpacedWindows(length: length, count: count)
    }

    /// The samples of `entry` at ``sampleRate``, and the rate of its file.
    private static func loadVerified(
        _ entry: ManifestEntry, directory: String, verifyChecksum: Bool
    ) throws(AudioError) -> (samples: [Float], fileRate: Int) {
        let path = join(directory, entry.file)
        guard FileManager.default.fileExists(atPath: path) else {
            throw AudioError.corpusFileMissing(directory: directory, file: entry.file)
        }
        if verifyChecksum {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw AudioError.unreadable(path: path, reason: "cannot read its bytes")
            }
            let actual = data.withUnsafeBytes { SHA256Digest.hex(of: $0) }
            guard actual == entry.sha256 else {
                throw AudioError.checksumMismatch(path: path, expected: entry.sha256, actual: actual)
            }
        }
        let (samples, fileRate) = try decodeMono(path: path)
        guard samples.count == entry.samples else {
            throw AudioError.sampleCountMismatch(path: path, expected: entry.samples, actual: samples.count)
        }
        if fileRate == sampleRate { return (samples, fileRate) }
        return (try resample(samples, from: fileRate, to: sampleRate, path: path), fileRate)
    }
}

private func readLines(_ path: String) throws(AudioError) -> [String] {
    try readTextLines(path) { AudioError.manifestMalformed(path: path, line: 0, reason: $0) }
}

/// The lines of the UTF-8 text file at `path` (a final `\r` dropped from
/// each, so CRLF files read the same); `problem` makes the error for a file
/// that cannot be read or is not UTF-8.
func readTextLines(_ path: String, problem: (String) -> AudioError) throws(AudioError) -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else { throw problem("cannot read the file") }
    guard let text = String(data: data, encoding: .utf8) else { throw problem("not UTF-8 text") }
    // "\r\n" is one Character in Swift, so splitting at "\n" alone would
    // leave a Windows file as one long line.
    return text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map {
        $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
    }
}
