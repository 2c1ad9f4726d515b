import Foundation
import PBTWaveAudio
import Testing

/// Every kind of bad input gets a typed error that names the file and says
/// what to do; folders skip and count bad files.
@Suite("bad input")
struct BadInputTests {
    private func expectError(
        _ error: AudioError?, naming path: String, _ matches: (AudioError) -> Bool,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error else {
            Issue.record("expected an error about \(path), got none", sourceLocation: sourceLocation)
            return
        }
        #expect(matches(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
        #expect(error.path == path, sourceLocation: sourceLocation)
        #expect(error.description.contains(path), "message does not name the file: \(error)", sourceLocation: sourceLocation)
        #expect(error.description.contains(": "), sourceLocation: sourceLocation)
    }

    @Test("missing file")
    func missingFile() {
        let folder = TemporaryFolder()
        let path = folder.file("nope.wav")
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
        expectError(error, naming: path) { $0 == .fileNotFound(path: path) }
    }

    @Test("empty (0-byte) file")
    func emptyFile() {
        let folder = TemporaryFolder()
        let path = folder.write("empty.wav", bytes: [])
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
        expectError(error, naming: path) { $0 == .emptyAudio(path: path) }
    }

    @Test("non-audio file")
    func nonAudioFile() {
        let folder = TemporaryFolder()
        let path = folder.write("notes.wav", text: "These are not the samples you are looking for.\n")
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
        expectError(error, naming: path) { if case .notAudio = $0 { true } else { false } }
        #expect(error?.description.contains("libsndfile reads") == true, "says what would work")
        // libsndfile's sentence ("Format not recognised.") does not run into ours.
        #expect(error?.description.contains(".:") == false && error?.description.contains(".)") == false, "got \(error!)")
    }

    @Test("corrupt file: a RIFF header followed by garbage")
    func corruptFile() {
        let folder = TemporaryFolder()
        var bytes = Array("RIFF".utf8) + [0x24, 0x08, 0, 0] + Array("WAVE".utf8) + Array("fmt ".utf8)
        bytes += [UInt8](repeating: 0xFF, count: 60)
        let path = folder.write("corrupt.wav", bytes: bytes)
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
        expectError(error, naming: path) { if case .unreadable = $0 { true } else { false } }
        #expect(error?.description.contains(".:") == false, "libsndfile's period runs into our colon: \(error!)")
    }

    @Test("a header claiming an absurd sample rate: a clear error, before any large allocation",
          arguments: [UInt32(1), 16, 999, 768_001, 0xFFFF_FFFF])
    func absurdSampleRate(rate: UInt32) {
        let folder = TemporaryFolder()
        // 32,000 frames: at 1 Hz resampled to 16 kHz that would have been 512 M samples (2 GiB).
        let data = [UInt8](repeating: 0x11, count: 64_000)
        let path = folder.write("rate.wav", bytes: handmadeWAV(format: 1, channels: 1, sampleRate: rate, bitsPerSample: 16, data: data))
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path, sampleRate: 16_000) }
        expectError(error, naming: path) { if case .unreadable = $0 { true } else if case .notAudio = $0 { true } else { false } }
        if case let .unreadable(_, reason)? = error, reason.contains("sample rate") {
            #expect(reason.contains("\(Int32(bitPattern: rate)) Hz") || reason.contains("\(rate) Hz"), "names the rate: \(reason)")
        }
    }

    /// Found by a helper: 0 Hz got libsndfile's "Internal error : SF_INFO struct incomplete".
    /// And a rate of 4,000,000,000 Hz (libsndfile reads it as below 0) was said to be "0 or less" (found by a helper).
    @Test("a header claiming 0 Hz, 0 channels or 4 GHz: said in the user's terms", arguments: [(UInt32(0), UInt16(1)), (16_000, 0), (4_000_000_000, 1)])
    func zeroRateOrChannels(rate: UInt32, channels: UInt16) {
        let folder = TemporaryFolder()
        let path = folder.write("zero.wav", bytes: handmadeWAV(format: 1, channels: channels, sampleRate: rate, bitsPerSample: 16,
                                                                data: [UInt8](repeating: 0x11, count: 3200)))
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
        expectError(error, naming: path) { if case .unreadable = $0 { true } else if case .notAudio = $0 { true } else { false } }
        #expect(error?.description.contains("Internal error") == false, "\(String(describing: error))")
        #expect(error?.description.contains("0 or less") == false, "\(String(describing: error))")
    }

    @Test("resampling beyond libsamplerate's 1/256…256 is refused before allocating")
    func impossibleRatio() {
        let x = [Float](repeating: 0.1, count: 1000)
        for (from, to) in [(1_000, 768_000), (768_000, 1_000)] {
            let error = audioError { () throws(AudioError) in try resample(x, from: from, to: to) }
            guard case let .resampleFailed(_, f, t, reason)? = error else {
                Issue.record("\(from) → \(to): expected resampleFailed, got \(String(describing: error))")
                continue
            }
            #expect(f == from && t == to && reason.contains("1/256"))
        }
    }

    @Test("a load bounded by maximumSamples refuses a longer file, before and after resampling")
    func boundedLoad() throws {
        let folder = TemporaryFolder()
        let path = try folder.writeWAV("a.wav", samples: pcmGridSignal(count: 1000, seed: 9), sampleRate: 8_000)
        #expect(try readMonoAudio(path: path, maximumSamples: 1000).count == 1000)
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path, maximumSamples: 999) }
        expectError(error, naming: path) { $0 == .tooLong(path: path, samples: 1000, limit: 999) }
        let resampled = audioError { () throws(AudioError) in try readMonoAudio(path: path, sampleRate: 16_000, maximumSamples: 1500) }
        expectError(resampled, naming: path) { if case let .tooLong(_, samples, 1500) = $0 { samples >= 2000 } else { false } }
    }

    @Test("a folder given as a file")
    func folderAsFile() {
        let folder = TemporaryFolder()
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: folder.path) }
        expectError(error, naming: folder.path) { if case .unreadable = $0 { true } else { false } }
    }

    @Test("truncated WAV: data chunk cut short, also mid-sample")
    func truncatedWAV() throws {
        let folder = TemporaryFolder()
        try folder.writeWAV("whole.wav", samples: pcmGridSignal(count: 16_000, seed: 5))
        let whole = folder.bytes("whole.wav")
        for (name, keep) in [("cut.wav", 20_000), ("cut-odd.wav", 20_001)] {
            let path = folder.write(name, bytes: Array(whole.prefix(keep)))
            let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
            expectError(error, naming: path) { $0 == .truncated(path: path, expectedFrames: 16_000, readFrames: (keep - 44) / 2) }
        }
        // Cut inside the header.
        let path = folder.write("cut-header.wav", bytes: Array(whole.prefix(30)))
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
        expectError(error, naming: path) { if case .unreadable = $0 { true } else { false } }
    }

    @Test("a streamed WAV (size 0xFFFFFFFF) is not truncation")
    func streamedWAVIsFine() {
        let folder = TemporaryFolder()
        let samples: [Int16] = [100, -200, 300, -400]
        let data = samples.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        let path = folder.write("streamed.wav", bytes: handmadeWAV(format: 1, channels: 1, sampleRate: 16_000, bitsPerSample: 16, data: data, declaredDataBytes: 0xFFFF_FFFF))
        #expect((try? readMonoAudio(path: path)) == samples.map { Float($0) / 32768 })
    }

    /// Found by a helper: a recorder killed mid-take (`arecord` writes a
    /// data size of 0x7FFFFFFF until it finishes) lost the whole recording
    /// as "truncated"; a header whose sizes were never written (0) was
    /// called "empty" though its audio follows.
    @Test("an unfinished WAV header: 0x7FFFFFFF is read as an unknown length; 0 with audio after it says how to repair the file")
    func unfinishedWAVHeaders() {
        let folder = TemporaryFolder()
        let samples: [Int16] = (0 ..< 4000).map { Int16(truncatingIfNeeded: $0 &* 37 % 2000 - 1000) }
        let data = samples.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        let killed = folder.write("killed.wav", bytes: handmadeWAV(format: 1, channels: 1, sampleRate: 16_000, bitsPerSample: 16, data: data, declaredDataBytes: 0x7FFF_FFFF))
        #expect((try? readMonoAudio(path: killed)) == samples.map { Float($0) / 32768 })

        let unwritten = folder.write("unwritten.wav", bytes: handmadeWAV(format: 1, channels: 1, sampleRate: 16_000, bitsPerSample: 16, data: data, declaredDataBytes: 0))
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: unwritten) }
        expectError(error, naming: unwritten) {
            if case let .unreadable(_, reason) = $0 { reason.contains("announces no samples, but") && reason.contains("ffmpeg") } else { false }
        }
        // A header alone is empty, as before.
        let header = folder.write("header.wav", bytes: handmadeWAV(format: 1, channels: 1, sampleRate: 16_000, bitsPerSample: 16, data: [], declaredDataBytes: 0))
        let empty = audioError { () throws(AudioError) in try readMonoAudio(path: header) }
        expectError(empty, naming: header) { $0 == .emptyAudio(path: header) }
    }

    /// Found by a helper: libsndfile reads the first stream of a chained Ogg
    /// file, and the rest was lost without a word.
    @Test("a chained Ogg file is refused with how to convert it; one stream alone reads", .enabled(if: AudioFileFormat.oggVorbis.isSupported))
    func chainedOgg() throws {
        let folder = TemporaryFolder()
        for (name, seed) in [("a.ogg", UInt64(1)), ("b.ogg", 2)] {
            try writeAudio(interleaved: pcmGridSignal(count: 16_000, seed: seed).map { $0 * 0.5 }, channels: 1, sampleRate: 16_000,
                           format: .oggVorbis, to: folder.file(name))
        }
        #expect((try readMonoAudio(path: folder.file("a.ogg"))).count == 16_000)
        let chained = folder.write("chained.ogg", bytes: folder.bytes("a.ogg") + folder.bytes("b.ogg"))
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: chained) }
        expectError(error, naming: chained) {
            if case let .unreadable(_, reason) = $0 { reason.contains("a chained Ogg file") && reason.contains("ffmpeg") } else { false }
        }
    }

    @Test("truncated FLAC", .enabled(if: AudioFileFormat.flac16.isSupported))
    func truncatedFLAC() throws {
        let folder = TemporaryFolder()
        try writeAudio(interleaved: pcmGridSignal(count: 48_000, seed: 6), channels: 1, sampleRate: 16_000, format: .flac16, to: folder.file("whole.flac"))
        let whole = folder.bytes("whole.flac")
        for fraction in [0.1, 0.6] {
            let path = folder.write("cut-\(fraction).flac", bytes: Array(whole.prefix(Int(Double(whole.count) * fraction))))
            let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
            expectError(error, naming: path) {
                switch $0 {
                case .truncated, .unreadable: true
                default: false
                }
            }
        }
    }

    @Test("valid header, no samples")
    func emptyAudio() {
        let folder = TemporaryFolder()
        let path = folder.write("silent.wav", bytes: handmadeWAV(format: 1, channels: 1, sampleRate: 16_000, bitsPerSample: 16, data: []))
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
        expectError(error, naming: path) { $0 == .emptyAudio(path: path) }
    }

    @Test("float WAV holding NaN")
    func nonFiniteSamples() {
        let folder = TemporaryFolder()
        let values: [Float] = [0.1, .nan, 0.2]
        let data = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let path = folder.write("nan.wav", bytes: handmadeWAV(format: 3, channels: 1, sampleRate: 16_000, bitsPerSample: 32, data: data))
        let error = audioError { () throws(AudioError) in try readMonoAudio(path: path) }
        expectError(error, naming: path) { $0 == .nonFiniteSamples(path: path) }
        // A finite double beyond the float range is not called NaN or infinite alone (found by a helper).
        let doubles: [Double] = [0.1, 1e300, -0.2]
        let wide = doubles.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let huge = folder.write("huge.wav", bytes: handmadeWAV(format: 3, channels: 1, sampleRate: 16_000, bitsPerSample: 64, data: wide))
        let hugeError = audioError { () throws(AudioError) in try readMonoAudio(path: huge) }
        expectError(hugeError, naming: huge) { $0 == .nonFiniteSamples(path: huge) && $0.description.contains("out-of-range samples") }
    }

    @Test("too-short file")
    func tooShortFile() throws {
        let folder = TemporaryFolder()
        let path = try folder.writeWAV("short.wav", samples: [Float](repeating: 0.1, count: 100))
        let error = audioError { () throws(AudioError) in try ClipSet.load(file: path, minimumLength: 1000) }
        expectError(error, naming: path) { $0 == .tooShort(path: path, samples: 100, required: 1000) }
        #expect(error?.description.contains("shorter window") == true)
        // Long enough: loads.
        let clips = try ClipSet.load(file: path, minimumLength: 100)
        #expect(clips.clips.count == 1 && clips.sampleCount == 100)
    }

    @Test("missing folder, or a file where a folder should be")
    func missingFolder() throws {
        let folder = TemporaryFolder()
        let path = folder.file("absent")
        let error = audioError { () throws(AudioError) in try ClipSet.load(folder: path) }
        expectError(error, naming: path) { $0 == .folderNotFound(path: path) }

        let file = try folder.writeWAV("a.wav", samples: [0.1, 0.2])
        let fileError = audioError { () throws(AudioError) in try ClipSet.load(folder: file) }
        expectError(fileError, naming: file) { $0 == .notAFolder(path: file) }
    }

    @Test("empty folder (hidden files do not count)")
    func emptyFolder() {
        let folder = TemporaryFolder()
        folder.write(".DS_Store", text: "x")
        let error = audioError { () throws(AudioError) in try ClipSet.load(folder: folder.path) }
        expectError(error, naming: folder.path) { $0 == .folderEmpty(path: folder.path) }
    }

    @Test("folder with some bad files: they are skipped and counted")
    func folderWithBadFiles() throws {
        let folder = TemporaryFolder()
        try folder.writeWAV("a.wav", samples: pcmGridSignal(count: 4000, seed: 7))
        try folder.writeWAV("sub/b.wav", samples: pcmGridSignal(count: 3000, seed: 8), sampleRate: 8_000)
        try folder.writeWAV("sub/short.wav", samples: [0.1, 0.2])
        folder.write("readme.txt", text: "not audio")
        folder.write("zero.wav", bytes: [])
        let report = try ClipSet.load(folder: folder.path, minimumLength: 100)
        #expect(report.clips.clips.map(\.name) == ["a.wav", "sub/b.wav"])
        #expect(report.clips.clips[1].codes.count == 6000, "8 kHz file resampled to 16 kHz")
        #expect(report.skipped.map(\.path) == [folder.file("readme.txt"), folder.file("sub/short.wav"), folder.file("zero.wav")])
        #expect(report.skipped[1].error == .tooShort(path: folder.file("sub/short.wav"), samples: 2, required: 100))
        let summary = report.description
        #expect(summary.hasPrefix("loaded 2 files"))
        #expect(summary.contains("skipped 3"))
        for skipped in report.skipped { #expect(summary.contains(skipped.path)) }
    }

    @Test("folder where every file is bad")
    func folderWithOnlyBadFiles() {
        let folder = TemporaryFolder()
        folder.write("a.txt", text: "a")
        folder.write("b.wav", bytes: [1, 2, 3])
        let error = audioError { () throws(AudioError) in try ClipSet.load(folder: folder.path) }
        expectError(error, naming: folder.path) {
            if case let .noUsableAudio(_, skipped, first) = $0 { skipped == 2 && first.contains("a.txt") } else { false }
        }
    }
}
