import PBTFileSupport
import Foundation
import PBTSeededRNG
@testable import PBTWaveAudio
import Testing
import TestSupport

/// A folder of source audio as a user would bring it: several formats,
/// rates and channel counts, nested folders laid out by speaker (VCTK
/// style), and the files a real folder holds that are not usable audio.
struct MixedAudioFolder {
    let folder = TemporaryFolder("mixed")
    var root: String { folder.path }

    /// A usable source: relative path, rate, channels, frames.
    struct Source: Hashable {
        var path: String
        var rate: Int
        var channels: Int
        var frames: Int
    }

    /// What the build must keep (not the collision loser, not the short clip).
    private(set) var kept: [Source] = []

    /// Sources the build must skip, and the category of each.
    private(set) var expectedSkips: [String: SkipCategory] = [:]

    init() throws {
        func add(_ path: String, _ format: AudioFileFormat, rate: Int, channels: Int, seconds: Double, seed: UInt64, keep: Bool = true) throws {
            guard format.isSupported else { return }
            let frames = Int(seconds * Double(rate))
            var interleaved = [Float](repeating: 0, count: frames * channels)
            for c in 0 ..< channels {
                let signal = pcmGridSignal(count: frames, seed: seed &+ UInt64(c))
                for i in 0 ..< frames { interleaved[i * channels + c] = signal[i] * 0.8 }
            }
            let target = folder.file(path)
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try writeAudio(interleaved: interleaved, channels: channels, sampleRate: rate, format: format, to: target)
            if keep { kept.append(Source(path: path, rate: rate, channels: channels, frames: try audioFileInfo(path: target).frames)) }
        }
        try add("p225/p225_001.flac", .flac16, rate: 44_100, channels: 2, seconds: 0.7, seed: 1)
        // Both become p225/p225_002.wav: of two lossless sources the WAV of that name wins (the .flac, first in byte order, did).
        try add("p225/p225_002.flac", .flac16, rate: 16_000, channels: 1, seconds: 0.5, seed: 2, keep: false)
        expectedSkips["p225/p225_002.flac"] = .nameCollision
        try add("p225/p225_002.wav", .wav16, rate: 16_000, channels: 1, seconds: 0.4, seed: 3)
        // A lossy source loses to a lossless one, whatever their order (found by a helper: the .mp3 won).
        try add("p225/p225_005.ogg", .oggVorbis, rate: 16_000, channels: 1, seconds: 0.5, seed: 10, keep: false)
        if AudioFileFormat.oggVorbis.isSupported { expectedSkips["p225/p225_005.ogg"] = .nameCollision }
        try add("p225/p225_005.wav", .wav16, rate: 16_000, channels: 1, seconds: 0.4, seed: 11)
        try add("p225/p225_003.aiff", .aiff16, rate: 8_000, channels: 3, seconds: 0.6, seed: 4)
        try add("p225/p225_004.wav", .wav16, rate: 16_000, channels: 1, seconds: 1.0, seed: 5)
        try add("p226/deep/p226_001.ogg", .oggVorbis, rate: 22_050, channels: 1, seconds: 0.8, seed: 6)
        try add("p226/p226_002.opus", .opus, rate: 48_000, channels: 2, seconds: 0.5, seed: 7)
        try add("p226/p226_003.wav", .wav16, rate: 32_000, channels: 2, seconds: 0.3, seed: 8)
        try add("p226/p226_short.wav", .wav16, rate: 16_000, channels: 1, seconds: 0.05, seed: 9, keep: false)
        expectedSkips["p226/p226_short.wav"] = .tooShort

        folder.write("empty.wav", bytes: [])
        expectedSkips["empty.wav"] = .empty
        folder.write("notes.wav", text: "This is a text file named .wav.\n")
        expectedSkips["notes.wav"] = .notAudio
        folder.write("README.txt", text: "Recorded in 2024.\n")
        expectedSkips["README.txt"] = .notAudio
        var corrupt = Array("RIFF".utf8) + [0x24, 0x08, 0, 0] + Array("WAVE".utf8) + Array("fmt ".utf8)
        corrupt += [UInt8](repeating: 0xFF, count: 60)
        folder.write("corrupt.wav", bytes: corrupt)
        expectedSkips["corrupt.wav"] = .unreadable
        let whole = handmadeWAV(format: 1, channels: 1, sampleRate: 16_000, bitsPerSample: 16, data: [UInt8](repeating: 1, count: 8000))
        folder.write("cut/truncated.wav", bytes: Array(whole.prefix(3000)))
        expectedSkips["cut/truncated.wav"] = .unreadable
        // Hidden files and folders are not read: a folder is one line of skipped.tsv, not walked.
        folder.write(".hidden/p225_999.wav", bytes: whole)
        expectedSkips[".hidden/"] = .hidden
        folder.write("p225/.DS_Store", text: "x")
        expectedSkips["p225/.DS_Store"] = .hidden
    }

    /// The options for a build of this folder into `output`.
    func options(output: String) -> CorpusBuildOptions {
        var options = CorpusBuildOptions(source: root, output: output)
        options.minimumSeconds = 0.1
        options.jobs = 2
        // With 7 files, 10 % would leave validation empty.
        options.validationPercent = 40
        return options
    }
}

/// Every regular file under `folder` (hidden ones too) with its bytes.
func snapshot(_ folder: String) -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    let enumerator = FileManager.default.enumerator(atPath: folder)
    while let relative = enumerator?.nextObject() as? String {
        var isDirectory: ObjCBool = false
        let path = folder + "/" + relative
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
        files[relative] = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
    }
    return files
}

/// Modification time (ns) and inode of every regular file under `folder`.
func stamps(_ folder: String) -> [String: [Int64]] {
    var result: [String: [Int64]] = [:]
    let enumerator = FileManager.default.enumerator(atPath: folder)
    while let relative = enumerator?.nextObject() as? String {
        var status = stat()
        guard stat(folder + "/" + relative, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
        result[relative] = [Int64(status.st_mtim.tv_sec), Int64(status.st_mtim.tv_nsec), Int64(status.st_ino), Int64(status.st_size)]
    }
    return result
}

func lines(_ path: String) -> [String] {
    String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        .split(separator: "\n").map(String.init)
}

func build(_ options: CorpusBuildOptions) throws -> CorpusBuildSummary {
    try CorpusBuilder.build(options)
}

@Suite("corpus build")
struct CorpusBuildTests {
    @Test("mixed formats, rates, channels and nested folders: every usable file converted, every other one skipped with its reason")
    func buildsMixedFolder() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        let summary = try build(sources.options(output: out.path))
        print(summary)

        // skipped.tsv: a header, then one line per skipped source, in byte order, with its category.
        let skippedLines = lines(out.file("skipped.tsv"))
        #expect(skippedLines.first == "source\treason")
        var skipped: [String: SkipCategory] = [:]
        for line in skippedLines.dropFirst() {
            let fields = line.split(separator: "\t", maxSplits: 1).map(String.init)
            let category = SkipCategory.allCases.first { fields[1].hasPrefix($0.rawValue + ": ") }
            #expect(category != nil, "reason without a category: \(line)")
            skipped[fields[0]] = category
        }
        #expect(skipped == sources.expectedSkips)
        #expect(skippedLines.dropFirst().map { $0.split(separator: "\t")[0] } == skippedLines.dropFirst().map { $0.split(separator: "\t")[0] }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(summary.skippedCount == sources.expectedSkips.count)
        #expect(summary.skipped.first { $0.reason == "not audio" }?.count == 2)

        // manifest.tsv: every kept source, as a WAV at its relative path.
        let manifest = try CorpusManifest.read(directory: out.path)
        let expectedFiles = sources.kept.map { CorpusLayout.outputPath(forSource: $0.path) }.sorted()
        #expect(manifest.entries.map(\.file) == expectedFiles)
        #expect(summary.files == expectedFiles.count && summary.speakers == 2 && summary.speakerDepth == 0)
        for source in sources.kept {
            let name = CorpusLayout.outputPath(forSource: source.path)
            let entry = try #require(manifest.entries.first { $0.file == name })
            let info = try audioFileInfo(path: out.file(name))
            #expect(info.sampleRate == 16_000 && info.channels == 1 && info.format == AudioFileFormat.wav16.libsndfileFormat)
            #expect(info.frames == entry.samples)
            // The length libsamplerate gives the whole file (±2 of the exact ratio) …
            let expected = try readMonoAudio(path: sources.folder.file(source.path), sampleRate: 16_000, quality: .fastest)
            let exact = Double(source.frames) * 16_000 / Double(source.rate)
            #expect(abs(Double(entry.samples) - exact) <= 2, "\(source.path): \(entry.samples) samples, \(exact) exact")
            #expect(entry.samples == expected.count, "\(source.path): streamed \(entry.samples), whole-file \(expected.count)")
            // … and the same samples, on the 16-bit grid: streaming block by block changes nothing.
            let written = try readMonoAudio(path: out.file(name))
            #expect(written == expected.map { Float(pcm16($0)) / 32768 }, "\(source.path): streamed conversion differs from the whole-file one")
            #expect(entry.sha256 == out.bytes(name).withUnsafeBytes { SHA256Digest.hex(of: $0) })
        }
        #expect(!FileManager.default.fileExists(atPath: out.file("p226/p226_short.wav")))
        #expect(try SpeechCorpus.verify(directory: out.path).isEmpty)
        #expect(!snapshot(out.path).keys.contains { $0.hasSuffix(".partial") }, "no temporary file left")
    }

    @Test("the split follows the path hash alone: same lists whatever the job count or output folder")
    func splitIsStable() throws {
        let sources = try MixedAudioFolder()
        let first = TemporaryFolder("a"), second = TemporaryFolder("b")
        var options = sources.options(output: first.path)
        options.validationPercent = 40
        _ = try build(options)
        options.output = second.path
        options.jobs = 1
        _ = try build(options)
        for name in ["manifest.tsv", "train.txt", "validation.txt", "skipped.tsv"] {
            #expect(first.bytes(name) == second.bytes(name), "\(name) differs between builds")
        }
        let manifest = try CorpusManifest.read(directory: first.path)
        #expect(manifest.validation.map(\.file) == manifest.entries.map(\.file).filter { CorpusLayout.isValidation($0, percent: 40) })
        #expect(manifest.train.map(\.file) == manifest.entries.map(\.file).filter { !CorpusLayout.isValidation($0, percent: 40) })
        #expect(!manifest.validation.isEmpty && !manifest.train.isEmpty)
    }

    @Test("the hash split equals the one build-corpus.sh made with sha256sum (real corpus, when built)")
    func splitMatchesTheShellScript() throws {
        let directory = realCorpusDirectory()
        guard FileManager.default.fileExists(atPath: directory + "/manifest.tsv") else { return }
        let manifest = try CorpusManifest.read(directory: directory)
        let mismatches = manifest.entries.filter { entry in
            CorpusLayout.isValidation(entry.file, percent: 10) != manifest.validation.contains(entry)
        }
        #expect(mismatches.isEmpty, "split differs for \(mismatches.prefix(3).map(\.file))")
    }

    @Test("a second build with nothing changed writes nothing")
    func secondBuildIsANoOp() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        _ = try build(sources.options(output: out.path))
        let before = stamps(out.path)
        let bytes = snapshot(out.path)
        usleep(20_000)  // a rewrite would show in the nanosecond mtimes
        let again = try build(sources.options(output: out.path))
        #expect(again.converted == 0 && !again.metadataChanged && again.removed == 0)
        #expect(again.reused == sources.kept.count, "every WAV of the first build stands")
        #expect(again.skippedCount == sources.expectedSkips.count)
        #expect(again.description.contains("reused \(sources.kept.count);") && again.description.contains("  files: \(sources.kept.count), "), "\(again)")
        #expect(stamps(out.path) == before, "a file was rewritten")
        #expect(snapshot(out.path) == bytes)
    }

    @Test("a rebuild converts only what changed, removes what no source makes, and repairs a damaged output")
    func rebuildFollowsChanges() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        _ = try build(sources.options(output: out.path))
        let reference = snapshot(out.path)

        // A damaged output comes back byte for byte.
        var damaged = out.bytes("p225/p225_004.wav")
        damaged[200] ^= 0xFF
        out.write("p225/p225_004.wav", bytes: damaged)
        var summary = try build(sources.options(output: out.path))
        #expect(summary.converted == 1)
        #expect(out.bytes("p225/p225_004.wav") == reference["p225/p225_004.wav"])

        // An edited source is converted again; nothing else is.
        try sources.folder.writeWAV("p226/p226_003.wav", samples: pcmGridSignal(count: 8000, seed: 99), sampleRate: 32_000)
        summary = try build(sources.options(output: out.path))
        #expect(summary.converted == 1)
        #expect(out.bytes("p226/p226_003.wav") != reference["p226/p226_003.wav"])
        #expect(try SpeechCorpus.verify(directory: out.path).isEmpty)

        // A removed source takes its WAV (and its emptied folder) with it.
        try FileManager.default.removeItem(atPath: sources.folder.file("p226/deep/p226_001.ogg"))
        summary = try build(sources.options(output: out.path))
        #expect(summary.converted == 0 && summary.removed == (AudioFileFormat.oggVorbis.isSupported ? 1 : 0))
        #expect(!FileManager.default.fileExists(atPath: out.file("p226/deep")))
        #expect(!lines(out.file("manifest.tsv")).contains { $0.hasPrefix("p226/deep/") })

        // A longer minimum turns kept files into skips (and removes their WAVs); a shorter one brings them back.
        var options = sources.options(output: out.path)
        options.minimumSeconds = 0.45
        summary = try build(options)
        #expect(!FileManager.default.fileExists(atPath: out.file("p226/p226_003.wav")))
        #expect(lines(out.file("skipped.tsv")).contains { $0.hasPrefix("p226/p226_003.wav\ttoo short: ") })
        options.minimumSeconds = 0.01
        summary = try build(options)
        #expect(lines(out.file("manifest.tsv")).contains { $0.hasPrefix("p226/p226_short.wav\t") })
        #expect(try SpeechCorpus.verify(directory: out.path).isEmpty)
    }

    /// Found by a helper: with the journal gone, the WAVs of sources removed
    /// since stayed for good (the old manifest was read after the new one
    /// had been written over it).
    @Test func withoutItsJournalARebuildStillRemovesWhatNoSourceMakes() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        _ = try build(sources.options(output: out.path))
        try FileManager.default.removeItem(atPath: out.file(CorpusBuildJournal.fileName))
        try FileManager.default.removeItem(atPath: sources.folder.file("p225/p225_004.wav"))
        let summary = try build(sources.options(output: out.path))
        #expect(summary.removed == 1)
        #expect(!FileManager.default.fileExists(atPath: out.file("p225/p225_004.wav")))
        #expect(try SpeechCorpus.verify(directory: out.path).isEmpty)

        // Another source's build into it, journal gone, is refused as with the journal (found by a helper: that fix let a
        // copy of the speech corpus lose its WAVs to a build of three files); --replace replaces it.
        try FileManager.default.removeItem(atPath: out.file(CorpusBuildJournal.fileName))
        let other = TemporaryFolder("other-source")
        for i in 1 ... 3 { try other.writeWAV("o\(i).wav", samples: pcmGridSignal(count: 8000, seed: UInt64(60 + i))) }
        var options = CorpusBuildOptions(source: other.path, output: out.path)
        let kept = lines(out.file("manifest.tsv")).count - 1
        let refused = audioError { () throws(AudioError) in try CorpusBuilder.build(options) }
        #expect(refused == .outputHoldsUnknownCorpus(output: out.path, unmade: kept, total: kept, source: URL(fileURLWithPath: other.path).resolvingSymlinksInPath().path)
                || refused?.description.contains("holds a corpus without its build journal") == true, "\(String(describing: refused))")
        #expect(lines(out.file("manifest.tsv")).count - 1 == kept, "nothing removed")
        options.replaceOtherSource = true
        #expect(try build(options).removed == kept)
    }

    /// Found by a helper: a source whose WAV's name was 247–255 bytes stopped
    /// the whole build (its temporary `.NAME.partial` went past the file
    /// system's 255), every time; a name no file system takes is skipped.
    @Test func aNameNearTheFileSystemsLimitBuilds() throws {
        let source = TemporaryFolder("long")
        let out = TemporaryFolder("long-out")
        let long = String(repeating: "a", count: 243) + ".wav"
        try source.writeWAV(long, samples: pcmGridSignal(count: 8000, seed: 1), sampleRate: 16_000)
        try source.writeWAV("b.wav", samples: pcmGridSignal(count: 8000, seed: 2), sampleRate: 16_000)
        var options = CorpusBuildOptions(source: source.path, output: out.path)
        options.minimumSeconds = 0.1
        let summary = try build(options)
        #expect(summary.converted == 2)
        #expect(lines(out.file("manifest.tsv")).contains { $0.hasPrefix(long + "\t") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).allSatisfy { !$0.hasSuffix(".partial") })
        // A name that would outgrow 255 bytes as a WAV (an .au of 255 bytes) is skipped, said why; the rest builds.
        let tooLong = String(repeating: "c", count: 252) + ".au"
        try source.writeWAV(tooLong, samples: pcmGridSignal(count: 8000, seed: 3), sampleRate: 16_000)
        _ = try build(options)
        #expect(lines(out.file("skipped.tsv")).contains {
            $0 == tooLong + "\tbad name: its WAV's name would be 256 bytes long, more than the 255 a file system allows"
        }, "\(lines(out.file("skipped.tsv")))")
    }

    /// 4.03 × 16,000 is 64,480.00000000001 in floating point: a file of
    /// exactly 4.030 s was skipped as below --min-seconds 4.03 (found by a helper).
    @Test func aFileExactlyTheMinimumLongIsKept() {
        for (seconds, rate, samples) in [(4.03, 16_000, 64_480), (8.05, 16_000, 128_800), (0.14, 22_050, 3087), (0.1, 16_000, 1600),
                                         (0.00001, 16_000, 1), (1.00001, 16_000, 16_001)] {
            var options = CorpusBuildOptions(source: "s", output: "o")
            options.minimumSeconds = seconds
            options.sampleRate = rate
            #expect(options.minimumSamples == samples, "\(seconds) s at \(rate) Hz")
        }
    }

    @Test("crash states (torn journal, stray temporary file, lists not yet written) resume to the same bytes")
    func crashStatesResume() throws {
        let sources = try MixedAudioFolder()
        let reference = TemporaryFolder("reference")
        _ = try build(sources.options(output: reference.path))
        let expected = snapshot(reference.path).filter { !$0.key.hasPrefix(".build") }

        let out = TemporaryFolder("out")
        _ = try build(sources.options(output: out.path))
        // What a kill mid-build leaves: the journal cut after two records
        // and inside a third, a half-written temporary file, an output
        // renamed into place but not yet journaled, no lists yet.
        let journal = lines(out.file(".build-journal.tsv"))
        out.write(".build-journal.tsv", text: journal.prefix(3).joined(separator: "\n") + "\n" + journal[3].prefix(10))
        out.write("p225/.p225_004.wav.partial", bytes: [1, 2, 3])
        for name in ["manifest.tsv", "train.txt", "validation.txt", "skipped.tsv"] {
            try FileManager.default.removeItem(atPath: out.file(name))
        }
        let summary = try build(sources.options(output: out.path))
        #expect(summary.converted > 0 && summary.reused == journal[1 ... 2].filter { $0.hasPrefix("ok\t") }.count)
        #expect(snapshot(out.path).filter { !$0.key.hasPrefix(".build") } == expected)
    }

    /// A build journaled before resampled lengths were exact (one sample
    /// short at 44.1 kHz) is redone, not reused: its identity differs.
    @Test func aBuildFromBeforeExactLengthsIsRedone() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        let first = try build(sources.options(output: out.path))
        #expect(first.converted > 0)
        let journal = lines(out.file(".build-journal.tsv"))
        #expect(journal[0].contains("; lengths=exact; "))
        out.write(".build-journal.tsv", text: ([journal[0].replacingOccurrences(of: "lengths=exact; ", with: "")] + journal.dropFirst())
            .joined(separator: "\n") + "\n")
        let again = try build(sources.options(output: out.path))
        #expect(again.reused == 0 && again.converted == first.converted, "\(again)")
        #expect(try build(sources.options(output: out.path)).converted == 0, "then reused")
    }

    @Test("--files: relative and absolute paths, duplicates, a missing file; --exclude: reasons copied to skipped.tsv")
    func fileListAndExclusions() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        let list = sources.folder.write(".list.txt", text: """
            # chosen files
            p225/p225_004.wav
            \(sources.root)/p226/p226_003.wav
            ./p225/p225_004.wav
            p226/../p225/p225_004.wav

            p226/missing.wav
            p226/
            """)
        let exclusions = sources.folder.write(".exclude.tsv", text: "source\treason\np226/p226_003.wav\tmusic\nold/gone.g722\tsilence\n")
        var options = sources.options(output: out.path)
        options.fileList = list
        options.exclusionList = exclusions
        let summary = try build(options)
        #expect(lines(out.file("manifest.tsv")).dropFirst().map { String($0.split(separator: "\t")[0]) } == ["p225/p225_004.wav"])
        #expect(lines(out.file("skipped.tsv")) == [
            "source\treason",
            "old/gone.g722\tsilence",
            "p226\tunreadable: a folder, not a file (list its files one per line)",
            "p226/missing.wav\tunreadable: no such file",
            "p226/p226_003.wav\tmusic",
        ])
        #expect(summary.skipped.map(\.reason).sorted() == ["music", "silence", "unreadable"])
        #expect(summary.skipped.first { $0.reason == "unreadable" }?.count == 2)

        for (text, fragment) in [("../outside.wav\n", "not a file inside"), ("p225/../../outside.wav\n", "not a file inside"),
                                 ("/etc/passwd\n", "is not inside --from")] {
            options.fileList = sources.folder.write(".bad.txt", text: text)
            options.exclusionList = nil
            let error = audioError { () throws(AudioError) in try CorpusBuilder.build(options) }
            guard case let .listMalformed(path, 1, reason)? = error else {
                Issue.record("expected listMalformed for \(text), got \(String(describing: error))")
                continue
            }
            #expect(path == options.fileList && reason.contains(fragment) && error!.description.contains(path))
        }
        options.fileList = nil
        options.exclusionList = sources.folder.write(".bad.tsv", text: "no-reason-here\n")
        let error = audioError { () throws(AudioError) in try CorpusBuilder.build(options) }
        #expect(error == .listMalformed(path: options.exclusionList!, line: 1, reason: "expected `source<TAB>reason`, found 1 field"))
        #expect(error?.description.contains("give one file per line") == false, "the --files advice is not for --exclude: \(error!)")
        options.exclusionList = sources.folder.file("no-such-list.tsv")
        let missing = audioError { () throws(AudioError) in try CorpusBuilder.build(options) }
        #expect(missing?.description == "cannot read the list \(options.exclusionList!): cannot read the file", "\(String(describing: missing))")
    }

    /// Found by a user: `--exclude` entries written as `--files` takes them
    /// (`./x`, an absolute path inside --from, a doubled slash) or naming a
    /// folder were listed in skipped.tsv, yet their files went into the
    /// corpus. Now each leaves its files out; an entry that names nothing
    /// is still recorded as given, and the summary counts it.
    @Test("--exclude takes paths as --files does, and folders; entries that name nothing are counted")
    func exclusionsNameFilesAndFoldersAsFilesDoes() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        var options = sources.options(output: out.path)
        options.exclusionList = sources.folder.write(".exclude.tsv", text: """
            source	reason
            ./p225/p225_004.wav	dot
            \(sources.root)/p226/p226_003.wav	absolute
            p226//deep	folder
            nope.wav	nothing
            """)
        let summary = try build(options)
        let converted = lines(out.file("manifest.tsv")).dropFirst().map { String($0.split(separator: "\t")[0]) }
        for gone in ["p225/p225_004.wav", "p226/p226_003.wav", "p226/deep/p226_001.wav"] {
            #expect(!converted.contains(gone), "\(gone) was excluded: \(converted)")
        }
        #expect(converted.contains("p225/p225_001.wav") && converted.contains("p226/p226_002.wav"), "\(converted)")
        let skipped = lines(out.file("skipped.tsv"))
        for line in ["p225/p225_004.wav\tdot", "p226/p226_003.wav\tabsolute", "p226/deep/p226_001.ogg\tfolder", "nope.wav\tnothing"] {
            #expect(skipped.contains(line), "\(line) in \(skipped)")
        }
        #expect(summary.excludedNotFound == ["nope.wav"])
        #expect(summary.description.contains("--exclude: 1 entry names no file or folder under --from (recorded in skipped.tsv as given): nope.wav"))

        options.exclusionList = sources.folder.write(".bad.tsv", text: "p225/p225_004.wav\t\n")
        let empty = audioError { () throws(AudioError) in try CorpusBuilder.build(options) }
        #expect(empty == .listMalformed(path: options.exclusionList!, line: 1, reason: "expected `source<TAB>reason`, the reason is empty"))
        options.exclusionList = sources.folder.write(".bad.tsv", text: "../elsewhere.wav\tx\n")
        let outside = audioError { () throws(AudioError) in try CorpusBuilder.build(options) }
        #expect(outside?.description.contains("is not a file or folder inside --from") == true, "\(String(describing: outside))")
    }

    /// Found by a user: a source whose WAV would lie inside a folder named
    /// like another source's WAV (take.wav/a.wav beside take.flac, which
    /// becomes take.wav) stopped the build, every time it was run again.
    /// Now the source first in byte order keeps the name and the other is
    /// skipped as a name collision, whichever of the two is the folder.
    @Test("a WAV and a folder of WAVs named alike: the first in byte order wins, the other is skipped")
    func aFileAndAFolderNamedAlike() throws {
        let folder = TemporaryFolder("clash")
        func add(_ path: String, seed: UInt64) throws {
            let target = folder.file(path)
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try writeAudio(interleaved: pcmGridSignal(count: 8000, seed: seed).map { $0 * 0.8 }, channels: 1, sampleRate: 16_000,
                           format: .wav16, to: target)
        }
        // take.flac (first) becomes take.wav; take.wav/a.wav would go inside it.
        try add("take.flac", seed: 1)
        try add("take.wav/a.wav", seed: 2)
        // c.wav/x.wav (first) needs a folder c.wav; c.x (a WAV named so) would become c.wav.
        try add("c.wav/x.wav", seed: 3)
        try add("c.x", seed: 4)
        try add("other.wav", seed: 5)
        let out = TemporaryFolder("out")
        var options = CorpusBuildOptions(source: folder.path, output: out.path)
        options.minimumSeconds = 0
        _ = try build(options)
        let converted = lines(out.file("manifest.tsv")).dropFirst().map { String($0.split(separator: "\t")[0]) }
        #expect(Set(converted) == ["take.wav", "c.wav/x.wav", "other.wav"], "\(converted)")
        let skipped = lines(out.file("skipped.tsv"))
        #expect(skipped.contains("take.wav/a.wav\tname collision: its WAV would be take.wav/a.wav, inside take.wav, which take.flac already becomes: rename one of them"),
                "\(skipped)")
        #expect(skipped.contains("c.x\tname collision: its WAV would be c.wav, a folder that c.wav/x.wav's WAV (c.wav/x.wav) goes in: rename one of them"),
                "\(skipped)")
    }

    /// Found by a user: café.wav with a composed é and café.wav with a
    /// decomposed one are two files on disk, but one name to Swift's
    /// strings; the second was skipped as "café.wav already becomes
    /// café.wav", a reason that reads false. It now says what differs.
    @Test("names that differ only in Unicode normalisation: one is skipped, saying why")
    func namesThatDifferOnlyInNormalisation() throws {
        let folder = TemporaryFolder("unicode")
        for (name, seed) in [("caf\u{E9}.wav", UInt64(1)), ("cafe\u{301}.wav", 2)] {
            try writeAudio(interleaved: pcmGridSignal(count: 8000, seed: seed).map { $0 * 0.8 }, channels: 1, sampleRate: 16_000,
                           format: .wav16, to: folder.file(name))
        }
        let out = TemporaryFolder("out")
        var options = CorpusBuildOptions(source: folder.path, output: out.path)
        options.minimumSeconds = 0
        _ = try build(options)
        #expect(lines(out.file("manifest.tsv")).dropFirst().count == 1)
        let skipped = lines(out.file("skipped.tsv")).filter { $0.contains("name collision") }
        #expect(skipped.count == 1 && skipped.first?.contains("only in how its accents are encoded (composed or decomposed Unicode)") == true,
                "\(skipped)")
        #expect(skipped.first?.contains("already becomes") == false, "\(skipped)")
    }

    /// Found by a user: an earlier corpus built inside the source folder
    /// was walked as audio by the next build, so its copies of sources
    /// landed in one split and the sources in the other.
    @Test("a corpus inside the source folder is left out of a later build, with its reason")
    func anEarlierCorpusInsideTheSourceIsLeftOut() throws {
        let sources = try MixedAudioFolder()
        _ = try build(sources.options(output: sources.root + "/corpus"))
        let out = TemporaryFolder("out")
        _ = try build(sources.options(output: out.path))
        let converted = lines(out.file("manifest.tsv")).dropFirst().map { String($0.split(separator: "\t")[0]) }
        #expect(!converted.isEmpty && !converted.contains { $0.hasPrefix("corpus/") }, "\(converted)")
        let skipped = lines(out.file("skipped.tsv"))
        #expect(skipped.contains { $0.hasPrefix("corpus/\tanother corpus: a corpus pbtwave built") }, "\(skipped)")
        #expect(!skipped.contains { $0.hasPrefix("corpus/") && !$0.hasPrefix("corpus/\t") }, "nothing inside it was read: \(skipped)")
    }

    /// Found by a user: lists saved on Windows (CRLF) were read as one
    /// line ("\r\n" is one Swift Character), so the build found no file.
    @Test("--files and --exclude lists with Windows line endings")
    func listsWithWindowsLineEndings() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        var options = sources.options(output: out.path)
        options.fileList = sources.folder.write(".list.txt", text: "p225/p225_004.wav\r\np226/p226_003.wav\r\n")
        options.exclusionList = sources.folder.write(".exclude.tsv", text: "source\treason\r\np226/p226_003.wav\tmusic\r\n")
        _ = try build(options)
        #expect(lines(out.file("manifest.tsv")).dropFirst().map { String($0.split(separator: "\t")[0]) } == ["p225/p225_004.wav"])
        #expect(lines(out.file("skipped.tsv")) == ["source\treason", "p226/p226_003.wav\tmusic"])
    }

    /// Found by a helper: a rebuild that found no usable audio (its sources
    /// deleted, or `--replace` from a folder of text files) left the earlier
    /// corpus's WAVs, manifest and lists in place and usable, under the new
    /// build's journal and skipped.tsv; a build from the first source was
    /// then refused as replacing "a corpus built from" the failed one.
    @Test("a rebuild that finds no usable audio leaves no corpus behind, and the folder takes a build from any source")
    func aRebuildWithNoUsableAudioLeavesNoCorpus() throws {
        let first = TemporaryFolder("first")
        for i in 1 ... 3 { try first.writeWAV("a\(i).wav", samples: pcmGridSignal(count: 8000, seed: UInt64(70 + i))) }
        let junk = TemporaryFolder("junk")
        junk.write("notes.wav", text: "not audio")
        let out = TemporaryFolder("out")
        func wavs() -> [String] {
            ((try? FileManager.default.subpathsOfDirectory(atPath: out.path)) ?? []).filter { $0.hasSuffix(".wav") }
        }
        func expectNoCorpus(_ failed: AudioError?, source: TemporaryFolder) {
            guard case let .noUsableAudio(_, 1, problem)? = failed else {
                Issue.record("expected noUsableAudio, got \(String(describing: failed))")
                return
            }
            #expect(problem.contains("the 3 WAVs of the corpus \(out.path) held went with their sources"), "\(problem)")
            #expect(wavs().isEmpty && !FileManager.default.fileExists(atPath: out.file("manifest.tsv"))
                    && !FileManager.default.fileExists(atPath: out.file("train.txt")))
            let loaded = audioError { () throws(AudioError) in _ = try SpeechCorpus.load(directory: out.path) }
            guard case let .corpusBuildFoundNoAudio(_, from)? = loaded else {
                Issue.record("\(String(describing: loaded))")
                return
            }
            #expect(from == URL(fileURLWithPath: source.path).resolvingSymlinksInPath().path)
        }

        // --replace from a folder with no audio.
        #expect(try build(CorpusBuildOptions(source: first.path, output: out.path)).files == 3)
        var replace = CorpusBuildOptions(source: junk.path, output: out.path)
        replace.replaceOtherSource = true
        expectNoCorpus(audioError { () throws(AudioError) in try CorpusBuilder.build(replace) }, source: junk)
        // The first source builds again without --replace: nothing was left to lose, nor replaced.
        let again = try build(CorpusBuildOptions(source: first.path, output: out.path))
        #expect(again.files == 3 && !again.warnings.contains { $0.contains("replaced it") }, "\(again.warnings)")

        // The same source, its audio gone.
        for i in 1 ... 3 { try FileManager.default.removeItem(atPath: first.file("a\(i).wav")) }
        first.write("notes.wav", text: "not audio")
        expectNoCorpus(audioError { () throws(AudioError) in try CorpusBuilder.build(CorpusBuildOptions(source: first.path, output: out.path)) },
                       source: first)
    }

    @Test("bad folders: missing, a file, empty, only bad files, output holding the source, a second build at once")
    func badFolders() throws {
        let work = TemporaryFolder("work")
        func error(_ source: String, _ output: String) -> AudioError? {
            audioError { () throws(AudioError) in try CorpusBuilder.build(CorpusBuildOptions(source: source, output: output)) }
        }
        #expect(error(work.file("absent"), work.file("out")) == .folderNotFound(path: work.file("absent")))
        let file = work.write("file.wav", bytes: [1])
        #expect(error(file, work.file("out")) == .notAFolder(path: file))
        try FileManager.default.createDirectory(atPath: work.file("empty/.git"), withIntermediateDirectories: true)
        #expect(error(work.file("empty"), work.file("out")) == .folderEmpty(path: work.file("empty")))

        work.write("bad/a.flac", bytes: [])
        for name in ["b", "c", "d"] { work.write("bad/\(name).wav", text: "not audio") }
        guard case let .noUsableAudio(_, 4, first)? = error(work.file("bad"), work.file("bad-out")) else {
            Issue.record("expected noUsableAudio")
            return
        }
        // The commonest reason, with an example of it (it quoted the first file's alone).
        #expect(first.hasPrefix("3 ") && first.contains(", 1 ") && first.contains("e.g. b.wav") && first.contains("not audio")
                && first.contains("bad-out/skipped.tsv"), "\(first)")
        #expect(lines(work.file("bad-out/skipped.tsv")).count == 5, "skipped.tsv says why")
        #expect(!FileManager.default.fileExists(atPath: work.file("bad-out/manifest.tsv")))
        // While a build runs, its output says so, not "a build that did not finish, run it again" (found by a helper).
        let lock = open(work.file("bad-out/.build.lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        #expect(lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0)
        let running = audioError { () throws(AudioError) in _ = try SpeechCorpus.load(directory: work.file("bad-out")) }
        #expect(running == .buildInProgress(output: work.file("bad-out")), "\(String(describing: running))")
        close(lock)
        // Its output is no corpus, and says so: not "a build that did not finish, run it again".
        let loaded = audioError { () throws(AudioError) in _ = try SpeechCorpus.load(directory: work.file("bad-out")) }
        guard case let .corpusBuildFoundNoAudio(directory, source)? = loaded else {
            Issue.record("expected corpusBuildFoundNoAudio, got \(String(describing: loaded))")
            return
        }
        #expect(directory == work.file("bad-out") && source.hasSuffix("/bad"))
        #expect(loaded?.description.contains("found no usable audio in") == true && loaded?.description.contains("skipped.tsv") == true)

        try work.writeWAV("audio/a.wav", samples: pcmGridSignal(count: 4000, seed: 1))
        #expect(error(work.file("audio"), work.file("audio")) == .outputOverlapsSource(source: work.file("audio"), output: work.file("audio")))
        #expect(error(work.file("audio"), work.path) == .outputOverlapsSource(source: work.file("audio"), output: work.path))
        #expect(error(work.file("audio"), work.file("audio") + "/../audio/") != nil)

        // The output may live inside the source: the walk leaves it out.
        let inside = try CorpusBuilder.build(CorpusBuildOptions(source: work.file("audio"), output: work.file("audio/corpus")))
        let again = try CorpusBuilder.build(CorpusBuildOptions(source: work.file("audio"), output: work.file("audio/corpus")))
        #expect(inside.files == 1 && again.files == 1 && again.skippedCount == 0)

        // A second build into the same folder while one holds the lock.
        let lockPath = work.file("audio/corpus/.build.lock")
        let fd = open(lockPath, O_RDWR)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let locked = error(work.file("audio"), work.file("audio/corpus"))
        #expect(locked == .buildInProgress(output: work.file("audio/corpus")))
        #expect(locked?.description.contains("another `pbtwave corpus build`") == true)
    }

    @Test("an output folder that holds files and is not a pbtwave corpus is refused and left untouched; a corpus is rebuilt")
    func foreignOutputIsRefused() throws {
        let sources = try MixedAudioFolder()
        let foreign = TemporaryFolder("foreign")
        foreign.write("manifest.tsv", text: "my own notes\n")
        try foreign.writeWAV("p225/p225_004.wav", samples: [0.25, -0.25])
        let before = snapshot(foreign.path)
        let error = audioError { () throws(AudioError) in try CorpusBuilder.build(sources.options(output: foreign.path)) }
        #expect(error == .outputNotACorpus(output: foreign.path))
        #expect(error?.description.contains(foreign.path) == true && error?.description.contains("new or empty") == true, "\(String(describing: error))")
        #expect(snapshot(foreign.path) == before, "the user's files were touched")

        // Hidden files alone (a .git, a lock of an earlier run) do not make a folder foreign.
        let hidden = TemporaryFolder("hidden")
        hidden.write(".keep", text: "")
        #expect(try build(sources.options(output: hidden.path)).files == sources.kept.count)

        // A corpus is recognised by its journal, or by its manifest when the journal is gone.
        let corpus = TemporaryFolder("corpus")
        _ = try build(sources.options(output: corpus.path))
        try FileManager.default.removeItem(atPath: corpus.file(".build-journal.tsv"))
        #expect(try build(sources.options(output: corpus.path)).files == sources.kept.count)
        // An interrupted first build (journal and some WAVs, no lists yet) resumes.
        for name in ["manifest.tsv", "train.txt", "validation.txt", "skipped.tsv"] {
            try FileManager.default.removeItem(atPath: corpus.file(name))
        }
        #expect(try build(sources.options(output: corpus.path)).files == sources.kept.count)
    }

    @Test("a silent file, or one of a constant offset, is skipped; clipped and very quiet WAVs are warned about, again when a rebuild reuses them")
    func levelsAreChecked() throws {
        let work = TemporaryFolder("levels")
        let out = TemporaryFolder("levels-out")
        let speech = pcmGridSignal(count: 8000, seed: 1)
        for seed in 2 ... 4 { try work.writeWAV("a/normal\(seed).wav", samples: pcmGridSignal(count: 8000, seed: UInt64(seed))) }
        try work.writeWAV("a/silent.wav", samples: [Float](repeating: 0, count: 8000))
        // Found by a user: a file of one non-zero value (a DC offset, no sound) was kept.
        try work.writeWAV("a/offset.wav", samples: [Float](repeating: 0.25, count: 8000))
        try work.writeWAV("a/clipped.wav", samples: speech.map { max(-1, min(1, $0 * 8)) })
        try work.writeWAV("a/quiet.wav", samples: speech.map { $0 / 200 })
        // One sample is constant too, but it goes for being too short (it was called silent; found by a helper).
        try work.writeWAV("a/one.wav", samples: [0.5])
        let options = CorpusBuildOptions(source: work.path, output: out.path)
        let first = try build(options)
        #expect(first.files == 5 && first.skipped.map(\.reason) == ["silent", "too short"] && first.skipped.first?.count == 2, "\(first.skipped)")
        let skipped = lines(out.file("skipped.tsv"))
        #expect(skipped.contains { $0.hasPrefix("a/one.wav\ttoo short: 0.000 s") }, "\(skipped)")
        #expect(skipped.contains("a/silent.wav\tsilent: every sample is 0 at 16 bits: nothing to learn from"))
        #expect(skipped.contains { $0.hasPrefix("a/offset.wav\tsilent: every sample is 819") && $0.contains(" at 16 bits (a constant offset, no sound)") },
                "\(skipped)")
        #expect(!FileManager.default.fileExists(atPath: out.file("a/silent.wav")), "no WAV left behind")
        #expect(!FileManager.default.fileExists(atPath: out.file("a/offset.wav")), "no WAV left behind")
        let clipped = try #require(first.warnings.first { $0.hasPrefix("1 WAV is clipped") }, "\(first.warnings)")
        #expect(clipped.contains("the most, a/clipped.wav: "), "\(clipped)")
        let quiet = try #require(first.warnings.first { $0.hasPrefix("1 WAV is very quiet") }, "\(first.warnings)")
        #expect(quiet.contains("the quietest, a/quiet.wav: -54 dBFS"), "\(quiet)")
        #expect(first.warnings.count == 2, "the ordinary files draw no warning: \(first.warnings)")

        // Reused, not converted: the journal keeps the levels.
        let again = try build(options)
        #expect(again.converted == 0 && again.warnings == first.warnings)
        // A journal of a build from before levels were recorded still stands (the files are not converted again).
        let journal = lines(out.file(".build-journal.tsv")).map { line in
            line.hasPrefix("ok\t") ? line.split(separator: "\t", omittingEmptySubsequences: false).prefix(9).joined(separator: "\t") : line
        }
        out.write(".build-journal.tsv", text: journal.joined(separator: "\n") + "\n")
        let old = try build(options)
        #expect(old.converted == 0 && old.files == 5 && old.warnings.isEmpty)
    }

    /// Found by a helper: a link to a folder that sorted before the folder
    /// took its files (their names and so their split), and `--exclude` of
    /// the folder then left them in the corpus under the link's name.
    @Test("a folder keeps its files against a link to it met first, and --exclude of the folder leaves them out")
    func aFolderWinsOverALinkToIt() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        let plain = try build(sources.options(output: out.path))
        let manifest = lines(out.file("manifest.tsv"))
        #expect(symlink("p225", sources.folder.file("a-p225")) == 0)
        let linked = try build(sources.options(output: out.path))
        #expect(lines(out.file("manifest.tsv")) == manifest, "the link renames nothing")
        #expect(linked.files == plain.files && linked.converted == 0)
        #expect(lines(out.file("skipped.tsv")).contains(
            "a-p225/\twalked once: the same folder as p225/ (a symbolic link leads to it): its files are read once, there"))

        var options = sources.options(output: out.path)
        options.exclusionList = sources.folder.write(".exclude.tsv", text: "p225\tprivate\n")
        _ = try build(options)
        let kept = lines(out.file("manifest.tsv")).dropFirst()
        #expect(!kept.isEmpty && kept.allSatisfy { !$0.hasPrefix("p225/") && !$0.hasPrefix("a-p225/") }, "\(kept)")
    }

    /// Found by a helper: a file skipped because it could not be opened
    /// (its permissions) stayed skipped after `chmod`, which changes neither
    /// its size nor its modification time, with a reason no longer true.
    @Test("a file that could not be opened is tried again at the next build; other skips stand while the file is unchanged")
    func aFileThatCouldNotBeOpenedIsTriedAgain() throws {
        let sources = try MixedAudioFolder()
        let out = TemporaryFolder("out")
        let first = try build(sources.options(output: out.path))
        let journal = lines(out.file(".build-journal.tsv"))
        func recordSkipped(_ source: String, _ detail: String) {
            let edited = journal.map { line -> String in
                let f = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard f.first == "ok", f[1] == source[...] else { return line }
                return "skip\t\(f[1])\t\(f[2])\t\(f[3])\tunreadable\t\(detail)"
            }
            #expect(edited != journal)
            out.write(".build-journal.tsv", text: edited.joined(separator: "\n") + "\n")
        }
        recordSkipped("p226/p226_003.wav", "\(AudioError.cannotOpenReason)Permission denied")
        let retried = try build(sources.options(output: out.path))
        #expect(retried.converted == 1 && retried.files == first.files, "\(retried)")
        #expect(!lines(out.file("skipped.tsv")).contains { $0.hasPrefix("p226/p226_003.wav\t") })

        recordSkipped("p226/p226_003.wav", "truncated: its header announces 9 frames, 8 could be decoded")
        let kept = try build(sources.options(output: out.path))
        #expect(kept.converted == 0 && kept.files == first.files - 1, "a decoded verdict stands while the file is unchanged")

        if geteuid() != 0 {
            let locked = sources.folder.file("p225/p225_001.flac")
            #expect(chmod(locked, 0) == 0)
            defer { chmod(locked, 0o644) }
            _ = try build(sources.options(output: out.path))
            #expect(lines(out.file("skipped.tsv")).contains { $0.hasPrefix("p225/p225_001.flac\tunreadable: \(AudioError.cannotOpenReason)") })
        }
    }

    @Test("broken links and folders that cannot be opened are listed in skipped.tsv and counted, not dropped")
    func unwalkableEntriesAreReported() throws {
        let sources = try MixedAudioFolder()
        #expect(symlink("nowhere.flac", sources.folder.file("p225/gone.flac")) == 0)
        let out = TemporaryFolder("out")
        let summary = try build(sources.options(output: out.path))
        #expect(lines(out.file("skipped.tsv")).contains("p225/gone.flac\tunreadable: broken link to nowhere.flac: No such file or directory"),
                "\(lines(out.file("skipped.tsv")))")
        #expect(summary.skippedCount == sources.expectedSkips.count + 1)

        // A named pipe, a second name of a folder and a link back up: each a
        // line, not left out without a word (and the pipe never opened).
        #expect(mkfifo(sources.folder.file("p226/pipe.wav"), 0o644) == 0)
        #expect(symlink("p225", sources.folder.file("p225-again")) == 0)
        #expect(symlink("..", sources.folder.file("p226/up")) == 0)
        // A second name of a file, symbolic or hard: found by a user, its audio went in twice.
        #expect(symlink("p225_004.wav", sources.folder.file("p225/z-link.wav")) == 0)
        #expect(link(sources.folder.file("p225/p225_004.wav"), sources.folder.file("p226/z-hard.wav")) == 0)
        // A link met before its file (found by a helper: the link's name was kept, the file's skipped).
        #expect(symlink("p225_004.wav", sources.folder.file("p225/a-link.wav")) == 0)
        let linked = try build(sources.options(output: out.path))
        let skippedLines = lines(out.file("skipped.tsv"))
        for line in ["p225-again/\twalked once: the same folder as p225/ (a symbolic link leads to it): its files are read once, there",
                     "p226/pipe.wav\tnot a file: a named pipe, not a file: not read",
                     "p226/up/\twalked once: the same folder as the source folder itself (a symbolic link leads to it): its files are read once, there",
                     "p225/z-link.wav\twalked once: the same file as p225/p225_004.wav (a symbolic or hard link leads to it): read once, there",
                     "p226/z-hard.wav\twalked once: the same file as p225/p225_004.wav (a symbolic or hard link leads to it): read once, there",
                     "p225/a-link.wav\twalked once: the same file as p225/p225_004.wav (a symbolic or hard link leads to it): read once, there"] {
            #expect(skippedLines.contains(line), "\(line) in \(skippedLines)")
        }
        #expect(linked.skippedCount == sources.expectedSkips.count + 7 && linked.files == summary.files)
        #expect(lines(out.file("manifest.tsv")).allSatisfy { !$0.hasPrefix("p225-again/") && !$0.hasPrefix("p226/up/") && !$0.contains("z-")
                                                             && !$0.contains("a-link") })
        #expect(lines(out.file("manifest.tsv")).contains { $0.hasPrefix("p225/p225_004.wav\t") })
        for name in ["p226/pipe.wav", "p225-again", "p226/up", "p225/z-link.wav", "p226/z-hard.wav", "p225/a-link.wav"] {
            try FileManager.default.removeItem(atPath: sources.folder.file(name))
        }

        // A folder opendir refuses. Tests run as root here, where chmod 000
        // does not stop opendir, so the refusal is injected into the walk;
        // as another user the real permission bits are tried as well.
        try sources.folder.writeWAV("private/p227_001.wav", samples: pcmGridSignal(count: 4000, seed: 3))
        let privateFolder = sources.folder.file("private")
        let walked = CorpusSources.walk(root: sources.root, skipping: nil) { path in
            path == privateFolder ? .failure(Errno(code: EACCES)) : CorpusSources.openFolder(path)
        }
        let refused = try #require(walked.first { $0.relativePath == "private/" })
        #expect(refused.unreadable == "cannot open the folder: Permission denied")
        #expect(!walked.contains { $0.relativePath.hasPrefix("private/p227") })
        if geteuid() != 0 {
            #expect(chmod(privateFolder, 0) == 0)
            defer { chmod(privateFolder, 0o755) }
            let again = try build(sources.options(output: out.path))
            #expect(lines(out.file("skipped.tsv")).contains("private/\tunreadable: cannot open the folder: Permission denied"))
            #expect(again.skippedCount == sources.expectedSkips.count + 2)
        }
    }

    @Test("--corpus pointing at a folder of audio says which command builds a corpus from it")
    func notACorpus() throws {
        let folder = TemporaryFolder("audio")
        try folder.writeWAV("a.wav", samples: [0.1, 0.2])
        let error = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: folder.path) }
        #expect(error == .notACorpus(directory: folder.path))
        #expect(error?.description.contains("pbtwave corpus build --from \(folder.path) --output \(folder.path)-corpus") == true, "got \(error!)")
        let missing = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: folder.file("none")) }
        #expect(missing?.description.contains("pbtwave corpus build --from AUDIO_DIR --output \(folder.file("none"))") == true)
        #expect(missing?.description.contains("bash datasets/build-corpus.sh") == true)
        // A file where the corpus folder should be is called a file, with no `--output FILE` advice.
        let file = try folder.writeWAV("b.wav", samples: [0.1, 0.2])
        let isFile = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: file) }
        #expect(isFile == .corpusIsAFile(path: file))
        #expect(isFile?.description.contains("is a file, not a corpus folder") == true && isFile?.description.contains("--output \(file)") == false)
        // The output of a build that did not finish: run that build again (it said: build from it).
        folder.write(".build-journal.tsv", text: "")
        let unfinished = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: folder.path) }
        #expect(unfinished?.description.contains("holds a corpus build that did not finish") == true
                && unfinished?.description.contains("--from \(folder.path)") == false, "\(unfinished!)")
    }

    @Test("summary wording: one file, reused WAVs only, an output folder that cannot be made")
    func summaryAndOutputFolderWording() throws {
        let sources = TemporaryFolder("one")
        try sources.writeWAV("a.wav", samples: pcmGridSignal(count: 4000, seed: 1))
        sources.write("notes.txt", text: "not audio\n")
        let out = TemporaryFolder("out")
        _ = try CorpusBuilder.build(CorpusBuildOptions(source: sources.path, output: out.path))
        let again = try CorpusBuilder.build(CorpusBuildOptions(source: sources.path, output: out.path))
        #expect(again.reused == 1 && again.skippedCount == 1)
        let text = again.description
        #expect(text.contains("converted 0 files, reused 1;") && (text.contains("train: 1 file,") || text.contains("validation: 1 file,")), "\(text)")
        #expect(!text.contains(" 1 files"), "\(text)")

        // The output's parent is a file, so the folder cannot be created.
        let blocker = sources.write("blocker", text: "")
        let error = audioError { () throws(AudioError) in try CorpusBuilder.build(CorpusBuildOptions(source: sources.path, output: blocker + "/corpus")) }
        // (Foundation said only "NSCocoaErrorDomain error 512"; a file as the output, "A file with the same name already exists".)
        #expect(error == .outputIsAFile(output: blocker + "/corpus", file: blocker))
        #expect(error?.description == "cannot create the corpus folder \(blocker)/corpus: \(blocker) is a file, not a folder; give a folder (it is created if missing)")
        let onFile = audioError { () throws(AudioError) in try CorpusBuilder.build(CorpusBuildOptions(source: sources.path, output: blocker)) }
        #expect(onFile?.description == "cannot write the corpus to \(blocker): it is a file, not a folder; give a folder (it is created if missing)")
        // A link to nothing is named so (found by a helper: "A file with the same name already exists").
        let dangling = sources.path + "/dangling"
        #expect(symlink(sources.path + "/gone/out", dangling) == 0)
        let linked = audioError { () throws(AudioError) in try CorpusBuilder.build(CorpusBuildOptions(source: sources.path, output: dangling)) }
        #expect(linked?.description.contains("it is a link to \(sources.path)/gone/out, which does not exist") == true, "\(String(describing: linked))")
    }

    /// Found by a user: one long file put 97 % of the audio in validation
    /// without a word, and a typo in --output replaced another corpus
    /// saying only "removed 9 stale WAVs". Both are warned about now.
    @Test("warnings: a split lopsided by a long file, and an output that held a corpus of another source")
    func lopsidedSplitsAndReplacedCorporaAreWarnedAbout() throws {
        let sources = TemporaryFolder("lopsided")
        for i in 1 ... 9 { try sources.writeWAV("clip\(i).wav", samples: pcmGridSignal(count: 4800, seed: UInt64(i))) }
        try sources.writeWAV("long.wav", samples: pcmGridSignal(count: 16_000 * 12, seed: 99))
        let out = TemporaryFolder("out")
        var options = CorpusBuildOptions(source: sources.path, output: out.path)
        options.validationPercent = 30
        let lopsided = try CorpusBuilder.build(options)
        try #require(lopsided.trainFiles > 0 && lopsided.validationFiles > 0)
        #expect(lopsided.warnings.contains { $0.contains("of the audio (--validation-percent 30 splits files, not minutes)") },
                "\(lopsided.warnings)")
        #expect(lopsided.warnings.contains { $0.hasSuffix("cut long recordings into shorter files for a balanced split") })
        // Three files of one length: too few files, not long ones (found by a helper).
        let few = TemporaryFolder("few")
        for i in 1 ... 3 { try few.writeWAV("f\(i).wav", samples: pcmGridSignal(count: 4800, seed: UInt64(40 + i))) }
        let small = try CorpusBuilder.build(CorpusBuildOptions(source: few.path, output: TemporaryFolder("few-out").path))
        #expect(small.warnings.contains { $0.contains("with 3 files, 1 in validation, whole files cannot come near it; add files") }, "\(small.warnings)")
        try FileManager.default.removeItem(atPath: sources.file("long.wav"))
        let even = try CorpusBuilder.build(options)
        #expect(even.warnings.isEmpty, "no long file, no warning: \(even.warnings)")

        let other = TemporaryFolder("other")
        for i in 1 ... 4 { try other.writeWAV("o\(i).wav", samples: pcmGridSignal(count: 4800, seed: UInt64(20 + i))) }
        let before = lines(out.file("manifest.tsv"))
        options.source = other.path
        // Found by a user: with PBTWAVE_CORPUS set and --output forgotten, a
        // build from another folder wiped the corpus, and warned only after.
        let refused = audioError { () throws(AudioError) in try CorpusBuilder.build(options) }
        guard case .outputHoldsAnotherSourcesCorpus? = refused else {
            Issue.record("expected a refusal, got \(String(describing: refused))")
            return
        }
        #expect(refused!.description.contains("holds a corpus built from ") && refused!.description.contains("add --replace to replace it"))
        #expect(lines(out.file("manifest.tsv")) == before, "the corpus is untouched")
        options.replaceOtherSource = true
        let replaced = try CorpusBuilder.build(options)
        #expect(replaced.warnings.first.map { $0.contains("held a corpus built from ") && $0.contains("lopsided")
                    && $0.contains("this build replaced it with audio from ") && $0.contains("as --replace asked") } == true,
                "\(replaced.warnings)")
        options.replaceOtherSource = false
        #expect(try CorpusBuilder.build(options).warnings.allSatisfy { !$0.contains("held a corpus") }, "the same source again: no warning")
    }

    /// Found by a user: copies of one recording (copied files, links, one
    /// take in two formats) landed in both splits without a word. The
    /// build now warns, naming a pair.
    @Test("copies of one recording on both sides of the split are warned about")
    func copiesAcrossTheSplitAreWarnedAbout() throws {
        let sources = TemporaryFolder("copies")
        for i in 1 ... 20 { try sources.writeWAV("take\(i).wav", samples: pcmGridSignal(count: 4800, seed: UInt64(i % 4))) }
        let out = TemporaryFolder("out")
        var options = CorpusBuildOptions(source: sources.path, output: out.path)
        options.validationPercent = 30
        let summary = try CorpusBuilder.build(options)
        try #require(summary.trainFiles > 0 && summary.validationFiles > 0)
        #expect(summary.warnings.contains { $0.contains("in validation.txt hold") && $0.contains("the same audio as one in train.txt") },
                "\(summary.warnings)")
        // Distinct recordings: no warning.
        let distinct = TemporaryFolder("distinct")
        for i in 1 ... 20 { try distinct.writeWAV("take\(i).wav", samples: pcmGridSignal(count: 4800, seed: UInt64(100 + i))) }
        let out2 = TemporaryFolder("out2")
        var options2 = CorpusBuildOptions(source: distinct.path, output: out2.path)
        options2.validationPercent = 30
        #expect(try CorpusBuilder.build(options2).warnings.allSatisfy { !$0.contains("the same audio") })
    }

    @Test("output names and the speaker layouts of public data sets")
    func layoutRules() {
        #expect(CorpusLayout.outputPath(forSource: "a/b.flac") == "a/b.wav")
        #expect(CorpusLayout.outputPath(forSource: "a.b/c") == "a.b/c.wav")
        #expect(CorpusLayout.outputPath(forSource: "x.tar.gz") == "x.tar.wav")
        #expect(CorpusLayout.outputPath(forSource: "d/.e") == "d/.e.wav")
        let vctk = ["p225/p225_001.wav", "p225/p225_002.wav", "p226/p226_001.wav"]
        #expect(CorpusLayout.speakers(in: vctk)! == (2, 0))
        #expect(CorpusLayout.speakers(in: vctk.map { "wav48/" + $0 })! == (2, 1))
        let libri = ["19/198/19-198-0000.wav", "19/227/19-227-0001.wav", "26/495/26-495-0000.wav"]
        #expect(CorpusLayout.speakers(in: libri)! == (2, 0))
        #expect(CorpusLayout.speakers(in: ["wavs/LJ001-0001.wav", "wavs/LJ001-0002.wav"]) == nil)
        #expect(CorpusLayout.speakers(in: ["digits/1.wav", "letters/a.wav", "hello.wav"]) == nil)
        #expect(CorpusLayout.speakers(in: ["p225/p2250.wav"]) == nil, "the folder name must end at a separator")
    }
}
