import CPBTSampleRate
import PBTFileSupport
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `pbtwave corpus build` is asked to do.
public struct CorpusBuildOptions: Sendable {
    /// The folder of source audio, walked recursively; with ``fileList``,
    /// the folder its paths are relative to.
    public var source: String
    /// A list of files (one per line) to use instead of walking ``source``.
    public var fileList: String?
    /// Files to leave out, with the reason to record in `skipped.tsv`:
    /// `source<TAB>reason` lines. Listed sources need not exist (a caller
    /// may have left them out before the build, as build-corpus.sh does).
    public var exclusionList: String?
    /// The corpus folder to write (created if missing).
    public var output: String
    /// Sample rate of the written WAVs, Hz.
    public var sampleRate: Int = SpeechCorpus.sampleRate
    /// Share of files (by hash of their path, see ``CorpusLayout/isValidation(_:percent:)``)
    /// in the validation split, 0…100.
    public var validationPercent: Int = 10
    /// Files shorter than this after resampling are skipped.
    public var minimumSeconds: Double = 0.1
    /// Files converted at once (threads).
    public var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Whether a corpus in ``output`` built from another source folder may
    /// be replaced (else ``AudioError/outputHoldsAnotherSourcesCorpus(output:builtFrom:source:)``).
    public var replaceOtherSource = false
    /// The resampler for files not at `sampleRate` (by default
    /// ``ResamplingQuality/corpusBuildDefault``, `fastest`).
    public var quality: ResamplingQuality = .corpusBuildDefault

    public init(source: String, output: String) {
        self.source = source
        self.output = output
    }

    /// Samples a file needs to be kept: `minimumSeconds` at `sampleRate`, at least 1.
    /// A product a rounding error away from a whole number is that number
    /// (4.03 × 16,000 is 64,480.00000000001 in floating point, and a file of
    /// exactly 4.030 s was skipped as below --min-seconds 4.03: found by a helper).
    public var minimumSamples: Int {
        let exact = minimumSeconds * Double(sampleRate), nearest = exact.rounded()
        return max(1, Int(abs(exact - nearest) <= 1e-9 * max(1, exact) ? nearest : exact.rounded(.up)))
    }
}

/// A snapshot of a running build, for a progress line.
public struct CorpusBuildProgress: Sendable {
    public var filesDone: Int
    public var filesToConvert: Int
    public var bytesDone: Int
    public var bytesToConvert: Int
    /// Audio converted so far, seconds at the output rate.
    public var audioSecondsConverted: Double
    public var elapsedSeconds: Double

    /// Seconds left, extrapolated from the source bytes read so far; nil
    /// until something was read.
    public var etaSeconds: Double? {
        guard bytesDone > 0, elapsedSeconds > 0 else { return nil }
        return elapsedSeconds * Double(bytesToConvert - bytesDone) / Double(bytesDone)
    }
}

/// What a build produced and did, printed by `pbtwave corpus build`.
public struct CorpusBuildSummary: Sendable, CustomStringConvertible {
    public var output: String
    public var source: String
    public var sampleRate: Int
    public var files: Int
    public var samples: Int
    public var trainFiles: Int
    public var trainSamples: Int
    public var validationFiles: Int
    public var validationSamples: Int
    /// Samples of the longest file (0 with none).
    public var longestFileSamples: Int
    /// Speakers as the folder layout shows them (``CorpusLayout/speakers(in:)``).
    public var speakers: Int?
    public var speakerDepth: Int?
    /// Skipped sources by reason (a ``SkipCategory`` or an exclusion's
    /// reason), most frequent first.
    public var skipped: [(reason: String, count: Int)]
    /// Sources converted by this run, and the audio they hold.
    public var converted: Int
    public var convertedSeconds: Double
    /// WAVs of an earlier build that still stood (sources skipped again
    /// are counted under ``skipped``, not here).
    public var reused: Int
    /// WAVs of earlier builds removed because no source makes them any more.
    public var removed: Int
    /// Whether manifest.tsv, train.txt, validation.txt or skipped.tsv changed.
    public var metadataChanged: Bool
    public var wallSeconds: Double
    /// Things the user should act on (e.g. an empty split).
    public var warnings: [String]
    /// `--exclude` entries that name no file under the source folder
    /// (recorded in skipped.tsv as given), in byte order.
    public var excludedNotFound: [String] = []

    public var seconds: Double { Double(samples) / Double(sampleRate) }
    public var skippedCount: Int { skipped.reduce(0) { $0 + $1.count } }

    /// The summary and its warnings, one per line (`report`, then each warning).
    public var description: String { ([report] + warnings.map { "  warning: \($0)" }).joined(separator: "\n") }

    /// The summary without its warnings (which a command shows on standard
    /// error, apart from its results).
    public var report: String {
        func share(_ part: Int) -> String { samples > 0 ? String(format: "%.1f %%", 100 * Double(part) / Double(samples)) : "-" }
        func minutes(_ count: Int) -> String { String(format: "%.2f minutes", Double(count) / Double(sampleRate) / 60) }
        var lines = ["corpus \(output) (from \(source))"]
        func fileCount(_ count: Int) -> String { "\(count) file\(count == 1 ? "" : "s")" }
        lines.append("  files: \(files), \(minutes(samples)) at \(sampleRate) Hz")
        if let speakers, let speakerDepth {
            lines.append("  speakers: \(speakers) (folders at depth \(speakerDepth + 1) whose names start their files' names)")
        } else {
            lines.append("  speakers: not shown by the folder layout")
        }
        lines.append("  train: \(fileCount(trainFiles)), \(minutes(trainSamples)) (\(share(trainSamples)))")
        lines.append("  validation: \(fileCount(validationFiles)), \(minutes(validationSamples)) (\(share(validationSamples)))")
        if skipped.isEmpty {
            lines.append("  skipped: none")
        } else {
            lines.append("  skipped: \(skippedCount) (" + skipped.map { "\($0.count) \($0.reason)" }.joined(separator: ", ") + "; see skipped.tsv)")
        }
        var run = "  this run: converted \(fileCount(converted))"
        if converted > 0 {
            // Seconds for a short conversion, and two digits for a slow one ("0.0 minutes, 0× real time" said nothing).
            let speed = wallSeconds > 0 ? convertedSeconds / wallSeconds : 0
            run += " (" + (convertedSeconds < 60 ? String(format: "%.1f s", convertedSeconds) : String(format: "%.1f minutes", convertedSeconds / 60))
                + " of audio, " + (speed < 10 ? String(format: "%.2g", speed) : String(format: "%.0f", speed)) + "× real time)"
        }
        run += ", reused \(reused)"
        if removed > 0 { run += ", removed \(removed) stale WAV\(removed == 1 ? "" : "s")" }
        run += metadataChanged ? "; lists rewritten" : "; lists unchanged"
        run += String(format: "; %.2f s", wallSeconds)
        lines.append(run)
        if !excludedNotFound.isEmpty {
            let shown = excludedNotFound.prefix(5).joined(separator: ", ") + (excludedNotFound.count > 5 ? ", …" : "")
            lines.append("  --exclude: \(excludedNotFound.count) entr\(excludedNotFound.count == 1 ? "y names" : "ies name") no file or folder "
                         + "under --from (recorded in skipped.tsv as given): \(shown)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Builds a corpus folder (16-bit mono WAVs, `manifest.tsv`, `train.txt`,
/// `validation.txt`, `skipped.tsv`; see datasets/README.md) from any folder
/// of audio libsndfile reads.
///
/// - Streams: each file is decoded, mixed down, resampled and written block
///   by block, so memory does not grow with file length or corpus size
///   (beyond one small record per file).
/// - Parallel: ``CorpusBuildOptions/jobs`` files at once.
/// - Idempotent and resumable: every WAV is written to a hidden temporary
///   name and renamed into place, then recorded in the build journal
///   (`.build-journal.tsv`). A build finds what is still right (source and
///   output unchanged in size and modification time, same identity: rate,
///   converter and library versions, source folder) and converts only the
///   rest; after a SIGKILL at any point the next build ends with the same
///   bytes. A second build with nothing changed writes nothing.
/// - Lists are rewritten only when their bytes change; WAVs no source makes
///   any more (from the journal or the previous manifest) are removed.
/// - One build per output folder at a time (a lock on `.build.lock`).
public enum CorpusBuilder {
    /// Whether `folder` holds a corpus pbtwave built (or began to build):
    /// a build journal, or a manifest.tsv that starts with ``CorpusManifest/header``.
    static func isCorpus(_ folder: String) -> Bool {
        if FileManager.default.fileExists(atPath: join(folder, CorpusBuildJournal.fileName)) { return true }
        guard let manifest = FileManager.default.contents(atPath: join(folder, "manifest.tsv")) else { return false }
        return manifest.starts(with: Array((CorpusManifest.header + "\n").utf8))
    }

    /// Whether a build holds the lock of `folder` now.
    static func isBuilding(_ folder: String) -> Bool { lockIsHeld(join(folder, ".build.lock")) == true }

    /// Builds the corpus `options` describe, calling `progress` (from worker
    /// threads) as files finish.
    ///
    /// Throws ``AudioError``: source folder not found or empty, an output
    /// that holds the source, a malformed `--files`/`--exclude` list,
    /// another build running, a write that failed (disk full: nothing is
    /// lost, run again), and ``AudioError/noUsableAudio(path:skipped:firstProblem:)``
    /// when every file was skipped (`skipped.tsv` then says why).
    public static func build(
        _ options: CorpusBuildOptions, progress: @escaping @Sendable (CorpusBuildProgress) -> Void = { _ in }
    ) throws(AudioError) -> CorpusBuildSummary {
        precondition(AudioLimits.sampleRates.contains(options.sampleRate), "sampleRate outside AudioLimits.sampleRates")
        precondition((0 ... 100).contains(options.validationPercent), "validationPercent outside 0…100")
        precondition(options.minimumSeconds.isFinite && options.minimumSeconds >= 0, "minimumSeconds must be finite and >= 0")
        precondition(options.jobs >= 1, "jobs must be at least 1")
        let started = ContinuousClock.now
        let plan = try BuildPlan(options)
        let lock = try DirectoryLock(path: join(plan.output, ".build.lock"), output: plan.output)
        defer { withExtendedLifetime(lock) {} }

        let journalPath = join(plan.output, CorpusBuildJournal.fileName)
        let previous = CorpusBuildJournal.read(path: journalPath, identity: plan.identity)
        // A typo in --output, or PBTWAVE_CORPUS left set, must not wipe another corpus.
        // (A folder whose last build found no audio holds nothing to lose.)
        let heldCorpus = previous.records.values.contains(where: \.isConverted) || !plan.previousManifestFiles().isEmpty
        if let earlier = previous.source, earlier != plan.realSource, !options.replaceOtherSource, heldCorpus {
            throw AudioError.outputHoldsAnotherSourcesCorpus(output: options.output, builtFrom: earlier, source: plan.realSource)
        }
        // Without a journal (copied without its hidden files) the earlier source is unknown: a build whose sources make
        // few of the manifest's WAVs would remove the rest, so it is refused as another source's is (found by a helper:
        // a copy of the speech corpus lost its 551 WAVs to a build of three files).
        if previous.source == nil, !options.replaceOtherSource {
            let earlier = plan.previousManifestFiles()
            let made = Set(plan.sources.indices.map(plan.outputName))
            let unmade = earlier.filter { !made.contains($0) }.count
            if !earlier.isEmpty, 2 * unmade > earlier.count {
                throw AudioError.outputHoldsUnknownCorpus(output: options.output, unmade: unmade, total: earlier.count, source: plan.realSource)
            }
        }
        let journal = try JournalAppender(path: journalPath, identity: plan.identity, fresh: !previous.sameIdentity)
        let standing = previous.sameIdentity ? previous.records : [:]

        // Which outputs are still right, and which groups must be converted.
        var outcomes = [JournalRecord?](repeating: nil, count: plan.sources.count)
        var work: [[Int]] = []
        for group in plan.groups {
            if let reused = plan.reusable(group, records: standing) {
                for (index, record) in zip(group, reused) { outcomes[index] = record }
            } else {
                work.append(group)
            }
        }
        let reusedCount = outcomes.reduce(0) { count, record in
            if case .converted? = record?.outcome { count + 1 } else { count }
        }
        work.sort { plan.bytes(of: $0) > plan.bytes(of: $1) }  // big first: a short tail

        let converted = try ParallelConversion(plan: plan, work: work, journal: journal, started: started, progress: progress).run()
        for (index, record) in converted.records { outcomes[index] = record }

        var summary = try plan.finish(
            outcomes: outcomes, previous: previous.records, journalLines: previous.lineCount, journalSameIdentity: previous.sameIdentity,
            converted: converted.count, convertedSamples: converted.samples, reused: reusedCount, started: started)
        if let earlier = previous.source, earlier != plan.realSource, heldCorpus {
            summary.warnings.insert("\(options.output) held a corpus built from \(earlier): this build replaced it with audio from "
                                    + "\(plan.realSource), as --replace asked", at: 0)
        }
        return summary
    }
}

// MARK: - The plan

/// Sources, their output names and collision groups, the identity of the
/// build, and everything that happens before and after conversion.
private struct BuildPlan: Sendable {
    let options: CorpusBuildOptions
    let source: String
    let output: String
    let identity: String
    /// The source folder, links resolved (as the identity names it).
    let realSource: String
    let sources: [SourceFile]
    /// Sources to convert, grouped by the WAV they become (several: a name
    /// collision), in source order.
    let groups: [[Int]]
    /// Skip lines decided without decoding: bad names, missing listed files.
    let presetSkips: [Int: (SkipCategory, String)]
    /// What `--exclude` leaves out, by source (relative path), with the
    /// entries that name no source (recorded in skipped.tsv all the same).
    let exclusions: [String: String]
    let unmatchedExclusions: [String: String]
    let minimumSamples: Int

    init(_ options: CorpusBuildOptions) throws(AudioError) {
        self.options = options
        let current = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String {
            let joined = path.hasPrefix("/") ? path : join(current, path)
            return joined.count > 1 && joined.hasSuffix("/") ? String(joined.dropLast()) : joined
        }
        source = absolute(options.source)
        output = absolute(options.output)
        try requireFolder(source, name: options.source)
        // The nearest path that exists, from the output up: a file there
        // is named (Foundation says only "error 512").
        var existing = output
        while !FileManager.default.fileExists(atPath: existing), existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: existing, isDirectory: &isFolder), !isFolder.boolValue {
            throw AudioError.outputIsAFile(output: output, file: existing)
        }
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            // A link to nothing "exists" as a file to Foundation (found by a helper): named as what it is.
            if !FileManager.default.fileExists(atPath: output), let target = symbolicLinkTarget(output) {
                throw AudioError.writeFailed(path: output, reason: "it is a link to \(target), which does not exist: make that folder, or give another --output")
            }
            throw AudioError.writeFailed(path: output, reason: "cannot create the output folder: \(errorText(error))")
        }
        let realSource = realPath(source), realOutput = realPath(output)
        if realSource == realOutput {
            throw AudioError.outputOverlapsSource(source: options.source, output: options.output)
        }
        // The output may hold the source only in a hidden folder, which
        // output names (never hidden) cannot reach.
        if realSource.hasPrefix(realOutput + "/") {
            let inside = realSource.dropFirst(realOutput.count + 1).split(separator: "/")
            if !inside.contains(where: { $0.hasPrefix(".") }) {
                throw AudioError.outputOverlapsSource(source: options.source, output: options.output)
            }
        }
        try Self.requireCorpusOrEmpty(output, name: options.output)
        var outputStatus = stat()
        _ = stat(output, &outputStatus)

        if let list = options.fileList {
            sources = try CorpusSources.listed(in: list, root: source)
            guard !sources.isEmpty else { throw AudioError.listMalformed(path: list, line: 0, reason: "it lists no files") }
        } else {
            sources = CorpusSources.walk(root: source, skipping: (UInt64(outputStatus.st_dev), UInt64(outputStatus.st_ino)), listingHidden: true)
        }
        if let list = options.exclusionList {
            (exclusions, unmatchedExclusions) = try CorpusSources.resolve(try CorpusSources.exclusions(in: list), list: list, root: source,
                                                                          sources: sources)
        } else {
            (exclusions, unmatchedExclusions) = ([:], [:])
        }
        guard sources.contains(where: { !$0.hidden }) || !exclusions.isEmpty || !unmatchedExclusions.isEmpty else {
            throw AudioError.folderEmpty(path: options.source)
        }

        var presetSkips: [Int: (SkipCategory, String)] = [:]
        var groupOf: [String: Int] = [:]
        var groups: [[Int]] = []
        for (index, file) in sources.enumerated() where exclusions[file.relativePath] == nil {
            if let bad = file.badName {
                presetSkips[index] = (.badName, bad)
            } else if file.otherCorpus {
                presetSkips[index] = (.otherCorpus, "a corpus pbtwave built, whose WAVs are copies of sources: left out, so that "
                                      + "no audio lands in both splits (build into an --output outside --from)")
            } else if file.hidden {
                presetSkips[index] = (.hidden, "its name starts with '.', so it is not read (rename it to use it)")
            } else if let reason = file.unreadable {
                presetSkips[index] = (.unreadable, reason)
            } else if let leftOut = file.leftOut {
                presetSkips[index] = (leftOut.category, leftOut.detail)
            } else if let long = CorpusLayout.outputPath(forSource: file.relativePath).split(separator: "/").last, long.utf8.count > Self.longestName {
                // Refused here, not by the file system mid-build (which stopped the whole build: found by a helper).
                presetSkips[index] = (.badName, "its WAV's name would be \(long.utf8.count) bytes long, more than the \(Self.longestName) a file system allows")
            } else {
                let name = CorpusLayout.outputPath(forSource: file.relativePath)
                if let group = groupOf[name],
                   case let first = CorpusLayout.outputPath(forSource: sources[groups[group][0]].relativePath), !first.utf8.elementsEqual(name.utf8) {
                    // Swift's strings compare Unicode text: café in composed and in decomposed
                    // form are one name to the corpus's maps, though two files on disk.
                    presetSkips[index] = (.nameCollision, "its name differs from \(sources[groups[group][0]].relativePath)'s only in how its "
                                          + "accents are encoded (composed or decomposed Unicode), and a corpus treats them as one name: rename one of them")
                } else if let group = groupOf[name] {
                    groups[group].append(index)
                } else {
                    groupOf[name] = groups.count
                    groups.append([index])
                }
            }
        }
        // Which source of a group becomes its WAV: a lossless one before a lossy one, then the WAV of
        // that very name, then byte order (found by a helper: talk.mp3 at 32 kbit/s became talk.wav,
        // and the talk.wav beside it was skipped, because "mp3" sorts first).
        let paths = sources.map(\.relativePath)
        for g in groups.indices where groups[g].count > 1 {
            groups[g].sort { a, b in
                let (x, y) = (Self.preference(paths[a]), Self.preference(paths[b]))
                return x != y ? x < y : paths[a].utf8.lexicographicallyPrecedes(paths[b].utf8)
            }
        }
        // A WAV whose path runs through another's (take.wav/a.wav under the
        // WAV take.wav, from take.flac): a file and a folder cannot share
        // a name, so the source first in byte order keeps it and the other
        // is skipped (before, the build stopped there, every time).
        var dropped = Set<Int>()
        for (g, group) in groups.enumerated() where !dropped.contains(g) {
            let name = CorpusLayout.outputPath(forSource: sources[group[0]].relativePath)
            var folder = ""
            for component in name.split(separator: "/").dropLast() {
                folder = folder.isEmpty ? String(component) : folder + "/" + component
                guard let other = groupOf[folder], !dropped.contains(other) else { continue }
                let mine = sources[group[0]].relativePath, theirs = sources[groups[other][0]].relativePath
                let nestedLoses = theirs.utf8.lexicographicallyPrecedes(mine.utf8)
                let (loser, winner) = nestedLoses ? (g, theirs) : (other, mine)
                dropped.insert(loser)
                let detail = nestedLoses
                    ? "its WAV would be \(name), inside \(folder), which \(winner) already becomes: rename one of them"
                    : "its WAV would be \(folder), a folder that \(winner)'s WAV (\(name)) goes in: rename one of them"
                for index in groups[loser] { presetSkips[index] = (.nameCollision, detail) }
                if nestedLoses { break }
            }
        }
        self.groups = groups.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
        self.presetSkips = presetSkips
        minimumSamples = options.minimumSamples
        self.realSource = realSource
        // "lengths=exact": a resampled file is ⌊samples × rate / its rate⌋ long (`Resampler.fed`); builds
        // before that (one sample short at 22.05 and 44.1 kHz) are redone, not reused (found by a helper).
        identity = "rate=\(options.sampleRate); resampler=\(options.quality.resamplerName); lengths=exact; \(SoundFile.version); "
            + "\(String(cString: src_get_version())); from=\(realSource)"
    }

    /// Refuses an output folder that holds (non-hidden) files but is not a
    /// corpus pbtwave built: no build journal, and no `manifest.tsv` that
    /// starts with ``CorpusManifest/header``. A build writes its journal
    /// before its first WAV, so an interrupted build is still recognised.
    private static func requireCorpusOrEmpty(_ output: String, name: String) throws(AudioError) {
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        guard contents.contains(where: { !$0.hasPrefix(".") }), !CorpusBuilder.isCorpus(output) else { return }
        throw AudioError.outputNotACorpus(output: name)
    }


    func outputName(_ index: Int) -> String { CorpusLayout.outputPath(forSource: sources[index].relativePath) }

    /// The longest file name, in bytes, that common file systems take (ext4, XFS, APFS, NTFS in UTF-16 aside).
    static let longestName = 255

    func bytes(of group: [Int]) -> Int { group.reduce(0) { $0 + sources[$1].size } }

    /// The journal's records for `group`, when they still stand: same
    /// sources (size, modification time), outputs untouched since, each
    /// decision the same under this build's minimum length, and (for a
    /// collision) the same winner. Nil: convert the group again.
    /// Extensions of formats that lose information (libsndfile's MPEG and
    /// Ogg codecs, and telephone codecs); a WAV may hold a lossy codec too,
    /// which its name does not show.
    static let lossyExtensions: Set<String> = ["mp3", "mp2", "mpga", "ogg", "oga", "opus", "spx", "m4a", "aac", "wma", "amr", "gsm", "g722",
                                                "g723", "g726", "g729", "vox", "webm"]

    /// How much a source is preferred as its group's WAV (lower first):
    /// lossless before lossy, and among those `NAME.wav` itself first.
    static func preference(_ relativePath: String) -> Int {
        let ext = (relativePath as NSString).pathExtension.lowercased()
        return (lossyExtensions.contains(ext) ? 2 : 0) + (ext == "wav" ? 0 : 1)
    }

    func reusable(_ group: [Int], records: [String: JournalRecord]) -> [JournalRecord]? {
        var result: [JournalRecord] = []
        var winner = false
        for index in group {
            let file = sources[index]
            guard let record = records[file.relativePath],
                  record.stamp == FileStamp(size: file.size, modified: file.modified) else { return nil }
            switch record.outcome {
            case let .converted(name, samples, _, stamp, _):
                guard !winner, name == outputName(index), samples >= minimumSamples,
                      FileStamp(path: join(output, name)) == stamp else { return nil }
                winner = true
            case let .tooShort(name, samples):
                guard name == outputName(index), samples < minimumSamples else { return nil }
            case .skipped(.nameCollision, _):
                guard winner else { return nil }
            case let .skipped(.unreadable, detail) where detail.hasPrefix(AudioError.cannotOpenReason):
                return nil  // tried again: fixing its permissions changes no stamp (found by a helper)
            case .skipped:
                break
            }
            result.append(record)
        }
        return result
    }

    // MARK: After conversion

    func finish(
        outcomes: [JournalRecord?], previous: [String: JournalRecord], journalLines: Int, journalSameIdentity: Bool,
        converted: Int, convertedSamples: Int, reused: Int, started: ContinuousClock.Instant
    ) throws(AudioError) -> CorpusBuildSummary {
        var entries: [ManifestEntry] = []
        let excluded = exclusions.merging(unmatchedExclusions) { a, _ in a }
        var skipped: [(source: String, reason: String)] = excluded.map { ($0.key, $0.value) }
        var skippedCounts: [String: Int] = [:]
        // The levels of each WAV, where its journal line records them.
        var levelsOf: [(file: String, samples: Int, levels: SampleLevels)] = []
        for reason in excluded.values { skippedCounts[reason, default: 0] += 1 }
        func skip(_ source: String, _ category: SkipCategory, _ detail: String) {
            skipped.append((source, "\(category.rawValue): \(flattened(detail))"))
            skippedCounts[category.rawValue, default: 0] += 1
        }
        for (index, file) in sources.enumerated() where exclusions[file.relativePath] == nil {
            if let (category, detail) = presetSkips[index] {
                skip(flattened(file.relativePath), category, detail)
                continue
            }
            guard let record = outcomes[index] else {
                preconditionFailure("source \(file.relativePath) has no outcome")
            }
            switch record.outcome {
            case let .converted(name, samples, sha, _, levels):
                if let levels { levelsOf.append((name, samples, levels)) }
                entries.append(ManifestEntry(file: name, samples: samples, sampleRate: options.sampleRate, sha256: sha))
            case let .tooShort(_, samples):
                // In samples too: "4.030 s, below 4.03" read as a contradiction (found by a helper).
                skip(file.relativePath, .tooShort, String(format: "%.3f s at %d Hz, below --min-seconds %g (%d samples, %d needed)",
                                                          Double(samples) / Double(options.sampleRate), options.sampleRate, options.minimumSeconds,
                                                          samples, options.minimumSamples))
            case let .skipped(category, detail):
                skip(file.relativePath, category, detail)
            }
        }
        skipped.sort { $0.source.utf8.lexicographicallyPrecedes($1.source.utf8) }

        let validationFiles = CorpusLayout.validationFiles(entries.map(\.file), percent: options.validationPercent)
        let validation = entries.filter { validationFiles.contains($0.file) }
        let train = entries.filter { !validationFiles.contains($0.file) }
        let skippedText = "source\treason\n" + skipped.map { "\($0.source)\t\($0.reason)\n" }.joined()
        // What the manifest names before this build writes its own: the WAVs
        // of an earlier build where the journal is gone (it was read after
        // the new one was written, so such WAVs stayed: found by a helper).
        let previousFiles = previousManifestFiles()
        var changed = false
        if entries.isEmpty {
            // No usable audio: the folder then holds no corpus, as a fresh
            // output would (found by a helper: an earlier build's WAVs,
            // manifest and lists stayed, usable, under this build's journal
            // and skipped.tsv, and a rebuild from their source was refused).
            // The manifest goes first, so that it never names a removed file.
            for name in ["manifest.tsv", "train.txt", "validation.txt"] where unlink(join(output, name)) != 0 && errno != ENOENT {
                throw AudioError.writeFailed(path: join(output, name), reason: "cannot remove it: \(Errno.current)")
            }
            _ = try writeIfChanged(skippedText, to: join(output, "skipped.tsv"))
        } else {
            // Lists first, manifest last: a crash in between leaves lists that
            // the next build rewrites; the manifest never names a file that is
            // not there.
            changed = try writeIfChanged(train.map { $0.file + "\n" }.joined(), to: join(output, "train.txt")) || changed
            changed = try writeIfChanged(validation.map { $0.file + "\n" }.joined(), to: join(output, "validation.txt")) || changed
            changed = try writeIfChanged(skippedText, to: join(output, "skipped.tsv")) || changed
            changed = try writeIfChanged(CorpusManifest.header + "\n" + entries.map { $0.manifestLine + "\n" }.joined(), to: join(output, "manifest.tsv")) || changed
        }

        // Then remove WAVs of earlier builds that no source makes now, and
        // only then forget them in the journal.
        let kept = Set(entries.map(\.file))
        var stale = Set<String>()
        for record in previous.values {
            if case let .converted(name, _, _, _, _) = record.outcome { stale.insert(name) }
        }
        stale.formUnion(previousFiles)
        var removed = 0
        for name in stale.subtracting(kept).sorted() where name.hasSuffix(".wav") && isSafeRelativePath(name) {
            let path = join(output, name)
            if unlink(path) == 0 {
                removed += 1
                removeEmptyParents(of: name)
            }
        }
        let records = outcomes.compactMap { $0 }
        let journalText = CorpusBuildJournal.header(identity: identity) + records.map { $0.line + "\n" }.joined()
        if !journalSameIdentity || journalLines != records.count + 1 || converted > 0 {
            _ = try writeIfChanged(journalText, to: join(output, CorpusBuildJournal.fileName))
        }
        guard !entries.isEmpty else {
            // The commonest reason first, with an example (it quoted the first file's, a hidden folder's, when every
            // other file was too short); each file's reason is in skipped.tsv.
            let reasons = skippedCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            let example = reasons.first.flatMap { common in skipped.first { $0.reason.hasPrefix(common.key + ":") } } ?? skipped.first
            throw AudioError.noUsableAudio(path: options.source, skipped: skipped.count, firstProblem:
                reasons.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + (example.map { "; e.g. \($0.source): \($0.reason)" } ?? "")
                + "; each file's reason is in \(join(output, "skipped.tsv"))"
                + (removed > 0 ? "; the \(removed) WAV\(removed == 1 ? "" : "s") of the corpus \(options.output) held went with their sources" : ""))
        }

        var warnings: [String] = []
        // Copies of one recording (a file copied, linked, or in two formats)
        // on both sides of the split: validation would score audio trained on.
        let trainByHash = Dictionary(train.map { ($0.sha256, $0.file) }, uniquingKeysWith: { a, _ in a })
        let copies = validation.compactMap { v in trainByHash[v.sha256].map { (v.file, $0) } }
        if let first = copies.first {
            warnings.append("\(copies.count) WAV\(copies.count == 1 ? "" : "s") in validation.txt hold\(copies.count == 1 ? "s" : "") the same audio "
                            + "as one in train.txt (the same sha256; e.g. \(first.0) and \(first.1)), so validation scores audio the model "
                            + "trained on: leave the copies out (--exclude) and build again")
        }
        warnings += Self.levelWarnings(levelsOf)
        for (name, list) in [("train.txt", train), ("validation.txt", validation)] where list.isEmpty {
            warnings.append("\(name) is empty (--validation-percent \(options.validationPercent), \(entries.count) file\(entries.count == 1 ? "" : "s")), and training needs both splits: "
                            + (entries.count < 2 ? "add files (each split needs one at least)" : "add files, or give a --validation-percent between 1 and 99"))
        }
        // The split is by file: a few long files can put most of the audio on one side.
        let validationSamples = validation.reduce(0) { $0 + $1.samples }, allSamples = entries.reduce(0) { $0 + $1.samples }
        if !train.isEmpty, !validation.isEmpty, allSamples > 0 {
            let share = 100 * Double(validationSamples) / Double(allSamples), asked = Double(options.validationPercent)
            let lopsided = { (percent: Double) in percent > asked + max(15, asked) || percent < asked / 3 }
            if lopsided(share) {
                let prefix = String(format: "validation holds %.1f %% of the audio (--validation-percent %d splits files, not minutes): ", share,
                                    options.validationPercent)
                // Too few files to split near the share asked, whatever their lengths (found by a helper: three
                // equal files were told to cut long recordings).
                warnings.append(prefix + (lopsided(100 * Double(validation.count) / Double(entries.count))
                    ? "with \(entries.count) files, \(validation.count) in validation, whole files cannot come near it; add files for a balanced split"
                    : "a few long files decide where most of it goes; cut long recordings into shorter files for a balanced split"))
            }
        }
        let speakers = CorpusLayout.speakers(in: entries.map(\.file))
        let sortedCounts = skippedCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        var summary = CorpusBuildSummary(
            output: options.output, source: options.source, sampleRate: options.sampleRate,
            files: entries.count, samples: entries.reduce(0) { $0 + $1.samples },
            trainFiles: train.count, trainSamples: train.reduce(0) { $0 + $1.samples },
            validationFiles: validation.count, validationSamples: validation.reduce(0) { $0 + $1.samples },
            longestFileSamples: entries.map(\.samples).max() ?? 0,
            speakers: speakers?.count, speakerDepth: speakers?.depth,
            skipped: sortedCounts.map { ($0.key, $0.value) },
            converted: converted, convertedSeconds: Double(convertedSamples) / Double(options.sampleRate),
            reused: reused, removed: removed, metadataChanged: changed,
            wallSeconds: seconds(since: started), warnings: warnings)
        summary.excludedNotFound = unmatchedExclusions.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return summary
    }

    /// Warnings for WAVs that are clipped (at least 0.1 % of their samples
    /// at full scale) or very quiet (a peak below −40 dBFS), naming the
    /// worst of each.
    static func levelWarnings(_ levels: [(file: String, samples: Int, levels: SampleLevels)]) -> [String] {
        var warnings: [String] = []
        let clipped = levels.filter { $0.levels.fullScale * 1000 >= $0.samples && $0.levels.fullScale >= 2 }
        if let worst = clipped.max(by: { Double($0.levels.fullScale) / Double($0.samples) < Double($1.levels.fullScale) / Double($1.samples) }) {
            warnings.append(String(format: "%ld WAV%@ clipped (at least 0.1 %% of the samples at full scale; the most, %@: %.1f %%): clipping "
                                   + "distorts what the model learns; record at a lower level, or leave them out (--exclude)",
                                   clipped.count, clipped.count == 1 ? " is" : "s are", worst.file,
                                   100 * Double(worst.levels.fullScale) / Double(worst.samples)))
        }
        let quiet = levels.filter { $0.levels.peak < 328 }
        if let worst = quiet.min(by: { $0.levels.peak < $1.levels.peak }) {
            warnings.append(String(format: "%ld WAV%@ very quiet (a peak below −40 dBFS; the quietest, %@: %.0f dBFS): check that %@ speech, "
                                   + "not silence or noise, or raise %@ level", quiet.count, quiet.count == 1 ? " is" : "s are", worst.file,
                                   worst.levels.peakDBFS, quiet.count == 1 ? "it holds" : "they hold", quiet.count == 1 ? "its" : "their"))
        }
        return warnings
    }

    /// Files the current manifest names (read leniently: it may be from an
    /// older build, or damaged).
    func previousManifestFiles() -> [String] {
        guard let data = FileManager.default.contents(atPath: join(output, "manifest.tsv")) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst().compactMap { line in
            line.split(separator: "\t", maxSplits: 1).first.map(String.init)
        }
    }

    private func removeEmptyParents(of name: String) {
        var parts = name.split(separator: "/").dropLast()
        while !parts.isEmpty {
            if rmdir(join(output, parts.joined(separator: "/"))) != 0 { return }
            parts = parts.dropLast()
        }
    }

    /// Writes `text` to `path` atomically unless the file already holds
    /// exactly these bytes; returns whether it wrote.
    private func writeIfChanged(_ text: String, to path: String) throws(AudioError) -> Bool {
        let bytes = Array(text.utf8)
        if let existing = FileManager.default.contents(atPath: path), existing.elementsEqual(bytes) { return false }
        do throws(AtomicFileError) {
            try AtomicFile.write(bytes, toPath: path)
        } catch {
            throw AudioError.writeFailed(path: path, reason: error.reason)
        }
        return true
    }
}

// MARK: - Conversion, in parallel

private final class ParallelConversion: Sendable {
    struct State {
        var records: [(Int, JournalRecord)] = []
        var filesDone = 0
        var bytesDone = 0
        var count = 0
        var samples = 0
    }

    let plan: BuildPlan
    let work: [[Int]]
    let journal: JournalAppender
    let started: ContinuousClock.Instant
    let progress: @Sendable (CorpusBuildProgress) -> Void
    let filesToConvert: Int
    let bytesToConvert: Int
    let state = Mutex(State())

    init(plan: BuildPlan, work: [[Int]], journal: JournalAppender, started: ContinuousClock.Instant,
         progress: @escaping @Sendable (CorpusBuildProgress) -> Void) {
        self.plan = plan
        self.work = work
        self.journal = journal
        self.started = started
        self.progress = progress
        filesToConvert = work.reduce(0) { $0 + $1.count }
        bytesToConvert = work.reduce(0) { $0 + plan.bytes(of: $1) }
    }

    /// Converts every group of `work` on `plan.options.jobs` threads;
    /// returns the records and how many files and samples were converted.
    func run() throws(AudioError) -> (records: [(Int, JournalRecord)], count: Int, samples: Int) {
        try forEachInParallel(work.count, threads: plan.options.jobs) { [self] (next) throws(AudioError) in
            let group = work[next]
            let records = try convert(group)
            for (_, record) in records { try journal.append(record) }
            let converted = records.compactMap { record -> Int? in
                if case let .converted(_, samples, _, _, _) = record.1.outcome { return samples } else { return nil }
            }
            let snapshot = state.withLock { s in
                s.records += records
                s.filesDone += group.count
                s.bytesDone += plan.bytes(of: group)
                s.count += converted.count
                s.samples += converted.reduce(0, +)
                return CorpusBuildProgress(
                    filesDone: s.filesDone, filesToConvert: filesToConvert, bytesDone: s.bytesDone, bytesToConvert: bytesToConvert,
                    audioSecondsConverted: Double(s.samples) / Double(plan.options.sampleRate), elapsedSeconds: seconds(since: started))
            }
            progress(snapshot)
        }
        let final = state.withLock { $0 }
        return (final.records, final.count, final.samples)
    }

    /// Converts the sources of one group in order: the first that converts
    /// (and is long enough) takes the output name; the rest that are audio
    /// are skipped as name collisions. Throws only what stops the build
    /// (a failed write); bad sources become records.
    private func convert(_ group: [Int]) throws(AudioError) -> [(Int, JournalRecord)] {
        var records: [(Int, JournalRecord)] = []
        var winner: String?
        for index in group {
            let file = plan.sources[index]
            let stamp = FileStamp(size: file.size, modified: file.modified)
            let name = plan.outputName(index)
            let outcome: JournalRecord.Outcome
            if let winner {
                do throws(AudioError) {
                    _ = try MonoDecoder(path: file.path)
                    outcome = .skipped(.nameCollision, detail: "\(winner) already becomes \(name)")
                } catch {
                    outcome = skipOutcome(error)
                }
            } else {
                outcome = try convertFile(file, to: name)
                if case .converted = outcome { winner = file.relativePath }
            }
            records.append((index, JournalRecord(source: file.relativePath, stamp: stamp, outcome: outcome)))
        }
        return records
    }

    private func convertFile(_ file: SourceFile, to name: String) throws(AudioError) -> JournalRecord.Outcome {
        let destination = join(plan.output, name)
        let slash = destination.lastIndex(of: "/")!
        let folder = String(destination[..<slash])
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw AudioError.writeFailed(path: destination, reason: "cannot create its folder: \(errorText(error))")
        }
        // One fixed temporary name per output: the build lock rules out a
        // second writer, and a build killed mid-file leaves one stray file
        // that the next build overwrites.
        // A name near the file system's limit gets a short one (".partial" made a 247-byte name too long).
        let last = destination[destination.index(after: slash)...]
        let short = last.utf8.count + ".partial".utf8.count + 1 <= BuildPlan.longestName ? String(last)
            : String(Array(last.utf8).withUnsafeBytes { SHA256Digest.hex(of: $0) }.prefix(32))
        let temporary = folder + "/." + short + ".partial"
        let (samples, levels): (Int, SampleLevels)
        do throws(AudioError) {
            (samples, levels) = try convertToMonoWAV(source: file.path, destination: destination, temporary: temporary,
                                           sampleRate: plan.options.sampleRate, quality: plan.options.quality,
                                           minimumSamples: plan.minimumSamples)
        } catch {
            if case .writeFailed = error { throw error }
            return skipOutcome(error)
        }
        if samples == 0 { return .skipped(.empty, detail: "no samples at \(plan.options.sampleRate) Hz") }
        // Too short before silent: one sample is constant too, and "too short" is why it goes (found by a helper).
        if samples < plan.minimumSamples { return .tooShort(output: name, samples: samples) }
        if let value = levels.constantValue {
            return .skipped(.silent, detail: value == 0 ? "every sample is 0 at 16 bits: nothing to learn from"
                : "every sample is \(value) at 16 bits (a constant offset, no sound): nothing to learn from")
        }
        let sha = try sha256OfFile(destination)
        guard let stamp = FileStamp(path: destination) else {
            throw AudioError.writeFailed(path: destination, reason: "the file vanished after it was written")
        }
        return .converted(output: name, samples: samples, sha256: sha, outputStamp: stamp, levels: levels)
    }

    private func skipOutcome(_ error: AudioError) -> JournalRecord.Outcome {
        switch error {
        case let .notAudio(_, reason): .skipped(.notAudio, detail: reason)
        case .emptyAudio: .skipped(.empty, detail: "no samples")
        case .fileNotFound: .skipped(.unreadable, detail: "the file vanished during the build")
        case let .unreadable(_, reason): .skipped(.unreadable, detail: reason)
        case let .truncated(_, expected, read): .skipped(.unreadable, detail: "truncated: its header announces \(expected) frames, \(read) could be decoded")
        case .nonFiniteSamples: .skipped(.unreadable, detail: "NaN, infinite or out-of-range samples (beyond ±3.4e38, the float range)")
        case let .resampleFailed(_, from, to, reason): .skipped(.unreadable, detail: "cannot resample \(from) Hz to \(to) Hz: \(reason)")
        default: .skipped(.unreadable, detail: error.description)
        }
    }
}

// MARK: - One file

/// Decodes `source`, mixes it down to mono, resamples it to `sampleRate`
/// and writes it as a 16-bit WAV, block by block: through `temporary`,
/// renamed to `destination` only when the result has at least
/// `minimumSamples` samples (otherwise nothing is left behind). Returns the
/// samples written (or that would have been) and their levels; a silent
/// result (every sample the same value, 0 or an offset) is not left behind either.
///
/// Memory: a few blocks of 64 K samples, whatever the file's length.
/// Throws the ``AudioError`` of ``MonoDecoder`` and ``LibsamplerateStream``
/// for a bad source, ``AudioError/writeFailed(path:reason:)`` when writing fails.
func convertToMonoWAV(
    source: String, destination: String, temporary: String, sampleRate: Int, quality: ResamplingQuality = .corpusBuildDefault, minimumSamples: Int
) throws(AudioError) -> (samples: Int, levels: SampleLevels) {
    let decoder = try MonoDecoder(path: source)
    let resampler = decoder.sampleRate == sampleRate
        ? nil : try LibsamplerateStream(from: decoder.sampleRate, to: sampleRate, quality: quality, path: source)
    let writer = try PCM16FileWriter(path: destination, temporaryPath: temporary, format: .wav16, channels: 1, sampleRate: sampleRate)
    if let resampler {
        while try decoder.next({ (block) throws(AudioError) in
            try resampler.process(block, last: false) { (out) throws(AudioError) in try writer.write(out) }
        }) {}
        try resampler.process(UnsafeBufferPointer(start: nil, count: 0), last: true) { (out) throws(AudioError) in try writer.write(out) }
    } else {
        while try decoder.next({ (block) throws(AudioError) in try writer.write(block) }) {}
    }
    let samples = writer.framesWritten
    if samples >= minimumSamples && samples > 0 && writer.levels.constantValue == nil { try writer.commit() }
    return (samples, writer.levels)
}

/// The sha256 of a file's bytes, read in 1 MiB pieces.
func sha256OfFile(_ path: String) throws(AudioError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw AudioError.writeFailed(path: path, reason: "cannot read it back: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var digest = SHA256Digest()
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw AudioError.writeFailed(path: path, reason: "cannot read it back: \(String(cString: strerror(errno)))") }
        if n == 0 { break }
        buffer.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0[0 ..< n])) }
    }
    return SHA256Digest.hexString(digest.finalize())
}

// MARK: - Helpers

/// Calls `body(i)` for every i in 0..<count on `threads` threads (each takes
/// the next index when done), and waits. After the first error no new index
/// is started; that error is thrown once all threads have stopped.
func forEachInParallel(
    _ count: Int, threads: Int, _ body: @escaping @Sendable (Int) throws(AudioError) -> Void
) throws(AudioError) {
    let state = Mutex((next: 0, failure: AudioError?.none))
    let done = DispatchGroup()
    for _ in 0 ..< min(threads, count) {
        done.enter()
        let thread = Thread {
            while true {
                let index: Int? = state.withLock { s in
                    guard s.failure == nil, s.next < count else { return nil }
                    defer { s.next += 1 }
                    return s.next
                }
                guard let index else { break }
                do throws(AudioError) {
                    try body(index)
                } catch {
                    state.withLock { if $0.failure == nil { $0.failure = error } }
                }
            }
            done.leave()
        }
        thread.stackSize = 1 << 21
        thread.start()
    }
    done.wait()
    if let failure = state.withLock({ $0.failure }) { throw failure }
}

/// An exclusive `flock` on a file in the output folder, held while the
/// value lives (and released by the kernel if the process dies).
private final class DirectoryLock {
    private let descriptor: Int32

    init(path: String, output: String) throws(AudioError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AudioError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw AudioError.buildInProgress(output: output)
        }
        descriptor = fd
    }

    deinit { close(descriptor) }
}

private func realPath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}

private func seconds(since start: ContinuousClock.Instant) -> Double {
    (ContinuousClock.now - start) / .seconds(1)
}

/// Foundation's reason for `error`, without its final full stop (the
/// message goes on after it).
private func errorText(_ error: any Error) -> String {
    let text = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    return text.hasSuffix(".") ? String(text.dropLast()) : text
}
