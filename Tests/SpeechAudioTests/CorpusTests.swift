import PBTFileSupport
import Foundation
import PBTSeededRNG
@testable import PBTWaveAudio
import Testing
import TestSupport

/// Builds a small corpus folder the way build-corpus.sh lays it out.
private struct SyntheticCorpus {
    let folder = TemporaryFolder("corpus")
    var directory: String { folder.path }
    let files = ["a.wav", "digits/1.wav", "digits/2.wav", "b.wav", "c.wav"]
    let lengths = [4000, 2500, 3000, 5000, 1500]

    init() throws {
        var manifest = "file\tseconds\tsamples\tsha256\n"
        for (index, (file, length)) in zip(files, lengths).enumerated() {
            try folder.writeWAV(file, samples: pcmGridSignal(count: length, seed: UInt64(index + 100)))
            let sha = folder.bytes(file).withUnsafeBytes { SHA256Digest.hex(of: $0) }
            manifest += "\(file)\t\(String(format: "%.4f", Double(length) / 16_000))\t\(length)\t\(sha)\n"
        }
        folder.write("manifest.tsv", text: manifest)
        folder.write("train.txt", text: "a.wav\ndigits/1.wav\ndigits/2.wav\nb.wav\n")
        folder.write("validation.txt", text: "c.wav\n")
    }

    func replaceLine(in name: String, _ transform: (String) -> String) {
        let text = String(decoding: folder.bytes(name), as: UTF8.self)
        folder.write(name, text: text.split(separator: "\n", omittingEmptySubsequences: false).map { transform(String($0)) }.joined(separator: "\n"))
    }
}

@Suite("corpus")
struct CorpusTests {
    @Test("SHA-256 (OpenSSL) matches the FIPS 180-4 examples, in one piece and streamed")
    func sha256Vectors() {
        func hex(_ text: String) -> String { Array(text.utf8).withUnsafeBytes { SHA256Digest.hex(of: $0) } }
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        #expect(hex(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        var streamed = SHA256Digest()
        for start in stride(from: 0, to: million.count, by: 999) {
            million[start ..< min(start + 999, million.count)].withUnsafeBytes { streamed.update($0) }
        }
        #expect(SHA256Digest.hexString(streamed.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("loads manifest, split and codes")
    func loadsSynthetic() throws {
        let corpus = try SyntheticCorpus()
        let loaded = try SpeechCorpus.load(directory: corpus.directory)
        #expect(loaded.manifest.entries.map(\.file) == corpus.files)
        #expect(loaded.train.clips.map(\.name) == ["a.wav", "digits/1.wav", "digits/2.wav", "b.wav"])
        #expect(loaded.validation.clips.map(\.name) == ["c.wav"])
        #expect(loaded.train.sampleCount == 4000 + 2500 + 3000 + 5000)
        #expect(loaded.train.clips[0].codes == MuLaw.encode(pcmGridSignal(count: 4000, seed: 100)))
        #expect(abs(loaded.manifest.totalSeconds - 16_000.0 / 16_000) < 1e-3)
        #expect(try SpeechCorpus.verify(directory: corpus.directory).isEmpty)
        let windows = try loaded.validationWindows(length: 1000, count: 3)
        #expect(windows.origins.allSatisfy { $0.clip == 0 })
    }

    @Test("missing corpus folder: tells to run the build script")
    func missingCorpus() {
        let folder = TemporaryFolder()
        let directory = folder.file("corpus")
        let error = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: directory) }
        #expect(error == .corpusNotFound(directory: directory))
        #expect(error?.description.contains("bash datasets/build-corpus.sh") == true)
        #expect(error?.description.contains(directory) == true)
    }

    @Test("manifest names a missing file")
    func missingFile() throws {
        let corpus = try SyntheticCorpus()
        try FileManager.default.removeItem(atPath: corpus.folder.file("digits/2.wav"))
        let error = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: corpus.directory) }
        #expect(error == .corpusFileMissing(directory: corpus.directory, file: "digits/2.wav"))
        #expect(error?.description.contains("digits/2.wav") == true)
        #expect(error?.description.contains("build-corpus.sh") == true)
        #expect(try SpeechCorpus.verify(directory: corpus.directory) == [.corpusFileMissing(directory: corpus.directory, file: "digits/2.wav")])
    }

    @Test("checksum mismatch names the file; verify lists every bad file")
    func checksumMismatch() throws {
        let corpus = try SyntheticCorpus()
        // Same length, one sample changed: only the checksum can tell.
        var bytes = corpus.folder.bytes("b.wav")
        bytes[100] ^= 0x01
        corpus.folder.write("b.wav", bytes: bytes)
        let path = corpus.folder.file("b.wav")
        let error = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: corpus.directory) }
        guard case let .checksumMismatch(errorPath, _, _)? = error else {
            Issue.record("expected checksumMismatch, got \(String(describing: error))")
            return
        }
        #expect(errorPath == path)
        #expect(error!.description.contains(path))
        // Without checksum verification the changed file loads.
        #expect(try SpeechCorpus.load(directory: corpus.directory, verifyChecksums: false).train.clips.count == 4)

        corpus.folder.write("c.wav", bytes: Array(corpus.folder.bytes("c.wav").prefix(1000)))
        let problems = try SpeechCorpus.verify(directory: corpus.directory)
        #expect(problems.map(\.path) == [path, corpus.folder.file("c.wav")])
    }

    @Test("sample count differs from the manifest")
    func sampleCountMismatch() throws {
        let corpus = try SyntheticCorpus()
        try corpus.folder.writeWAV("a.wav", samples: pcmGridSignal(count: 3999, seed: 100))
        let error = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: corpus.directory, verifyChecksums: false) }
        #expect(error == .sampleCountMismatch(path: corpus.folder.file("a.wav"), expected: 4000, actual: 3999))
    }

    @Test("malformed manifest lines and inconsistent splits")
    func malformedMetadata() throws {
        let corpus = try SyntheticCorpus()
        let manifestPath = corpus.folder.file("manifest.tsv")
        corpus.replaceLine(in: "manifest.tsv") { $0.hasPrefix("b.wav") ? "b.wav\t0.3\tmany\tabc" : $0 }
        let error = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: corpus.directory) }
        #expect(error == .manifestMalformed(path: manifestPath, line: 5, reason: "seconds `0.3` or samples `many` is not a non-negative number"))

        let other = try SyntheticCorpus()
        other.folder.write("validation.txt", text: "c.wav\nmystery.wav\n")
        let splitError = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: other.directory) }
        #expect(splitError == .splitInconsistent(directory: other.directory, file: "mystery.wav", reason: "in validation.txt is not in manifest.tsv"))

        let third = try SyntheticCorpus()
        third.folder.write("validation.txt", text: "c.wav\na.wav\n")
        let bothError = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: third.directory) }
        #expect(bothError == .splitInconsistent(directory: third.directory, file: "a.wav", reason: "is listed in both train.txt and validation.txt"))
        // Twice in one list, and a list missing: said as such (found by a helper: "in both train.txt and train.txt", "line 0").
        let twice = try SyntheticCorpus()
        twice.folder.write("validation.txt", text: "c.wav\nc.wav\n")
        let twiceError = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: twice.directory) }
        #expect(twiceError == .splitInconsistent(directory: twice.directory, file: "c.wav", reason: "is listed twice in validation.txt"))
        let listless = try SyntheticCorpus()
        try FileManager.default.removeItem(atPath: listless.folder.file("train.txt"))
        let listlessError = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: listless.directory) }
        #expect(listlessError?.description.hasPrefix("corpus file \(listless.folder.file("train.txt")): the split list is missing") == true,
                "\(String(describing: listlessError))")

        // A file in neither list: refused (found by a helper: `corpus check` passed it).
        let lost = try SyntheticCorpus()
        lost.folder.write("validation.txt", text: "")
        let lostError = audioError { () throws(AudioError) in try CorpusManifest.read(directory: lost.directory) }
        guard case let .splitInconsistent(_, file, reason)? = lostError else {
            Issue.record("expected splitInconsistent for a file in neither list, got \(String(describing: lostError))")
            return
        }
        #expect(reason.contains("is in manifest.tsv but in neither train.txt nor validation.txt") && !file.isEmpty, "\(reason)")

        let fourth = try SyntheticCorpus()
        try FileManager.default.removeItem(atPath: fourth.folder.file("train.txt"))
        guard case .manifestMalformed(let path, _, _)? = audioError({ () throws(AudioError) in try SpeechCorpus.load(directory: fourth.directory) }) else {
            Issue.record("expected manifestMalformed for a missing train.txt")
            return
        }
        #expect(path == fourth.folder.file("train.txt"))
    }

    @Test("default directory: PBTWAVE_CORPUS, else ./corpus")
    func defaultDirectory() {
        #expect(SpeechCorpus.defaultDirectory(environment: ["PBTWAVE_CORPUS": "/data/c"], currentDirectory: "/repo") == "/data/c")
        #expect(SpeechCorpus.defaultDirectory(environment: ["PBTWAVE_CORPUS": ""], currentDirectory: "/repo") == "/repo/corpus")
        #expect(SpeechCorpus.defaultDirectory(environment: [:], currentDirectory: "/repo/") == "/repo/corpus")
    }
}

/// The few tests on the real corpus, built by `bash datasets/build-corpus.sh`
/// (CI builds it before `swift test`).
@Suite("real corpus")
struct RealCorpusTests {
    /// Loaded once (with checksums) for all tests of the suite; nil when absent.
    private static let shared: Result<SpeechCorpus, AudioError>? = {
        let directory = realCorpusDirectory()
        guard FileManager.default.fileExists(atPath: directory + "/manifest.tsv") else { return nil }
        return Result { () throws(AudioError) in try SpeechCorpus.load(directory: directory) }
    }()

    private func loadRealCorpus() throws -> SpeechCorpus {
        let directory = realCorpusDirectory()
        let loaded = try #require(
            Self.shared,
            "corpus not found at \(directory): run `bash datasets/build-corpus.sh` (or set PBTWAVE_CORPUS)"
        )
        return try loaded.get()
    }

    @Test("loads, verifies, and has speech-like statistics")
    func statistics() throws {
        let corpus = try loadRealCorpus()
        let manifest = corpus.manifest
        #expect(corpus.train.clips.count == manifest.train.count)
        #expect(corpus.validation.clips.count == manifest.validation.count)
        #expect(corpus.train.sampleCount == manifest.train.reduce(0) { $0 + $1.samples })
        #expect(corpus.validation.sampleCount == manifest.validation.reduce(0) { $0 + $1.samples })
        #expect(manifest.entries.count > 500, "the Allison prompts: about 550 files")
        let minutes = manifest.totalSeconds / 60
        #expect(minutes > 20 && minutes < 30, "about 24 minutes, found \(minutes)")
        let validationShare = corpus.validation.seconds / (corpus.train.seconds + corpus.validation.seconds)
        #expect(validationShare > 0.05 && validationShare < 0.15, "about 10 % validation, found \(validationShare)")
        let trainBits = corpus.train.unigramEntropyBits()
        let validationBits = corpus.validation.unigramEntropyBits()
        let crossBits = crossEntropyBits(histogram: corpus.validation.codeHistogram(), model: corpus.train.codeHistogram())
        print("real corpus: \(manifest.entries.count) files, \(String(format: "%.2f", minutes)) min; unigram mu-law entropy train \(trainBits) bits, validation \(validationBits) bits, validation under train unigram \(crossBits) bits")
        // Speech in 8-bit mu-law: well below the 8 bits of uniform codes,
        // well above a near-constant signal.
        #expect(trainBits > 6.5 && trainBits < 7.9)
        #expect(validationBits > 6.5 && validationBits < 7.9)
        #expect(crossBits >= validationBits && crossBits < validationBits + 0.1)
    }

    @Test("windows of the compact model's size: deterministic, within clips")
    func windows() throws {
        let corpus = try loadRealCorpus()
        let length = ClipSet.windowLength(context: 2047, targets: 8192)
        var a = Xoshiro256(seed: 7), b = Xoshiro256(seed: 7)
        var first = [Int32](repeating: 0, count: 4 * length), second = first
        try first.withUnsafeMutableBufferPointer { buffer throws(AudioError) in try corpus.train.sampleWindows(length: length, count: 4, rng: &a, into: buffer) }
        try second.withUnsafeMutableBufferPointer { buffer throws(AudioError) in try corpus.train.sampleWindows(length: length, count: 4, rng: &b, into: buffer) }
        #expect(first == second)
        #expect(first.allSatisfy { $0 >= 0 && $0 < 256 })
        let validation = try corpus.validationWindows(length: length, count: 8)
        #expect(validation.origins.allSatisfy { $0.start + length <= corpus.validation.clips[$0.clip].codes.count })
        #expect(try corpus.validationWindows(length: length, count: 8).codes == validation.codes)
    }
}
