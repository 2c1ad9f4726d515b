import PBTFileSupport
import Foundation
import PBTSeededRNG
@testable import PBTWaveAudio
import Testing

/// Mutated bytes thrown at the audio loader (whole-file and streaming), the
/// corpus manifest reader and the corpus build's journal and list readers,
/// as SQLite fuzzes its file formats. Seeded: a failure names the seed and
/// case, and `PBTWAVE_FUZZ_SEED=S PBTWAVE_FUZZ_CASES=N swift test --filter fuzz`
/// replays or extends it (default: 10,000 cases, seed 1).
///
/// What is promised for every input: no crash, no trap, a typed error or a
/// result that satisfies the reader's invariants, and bounded memory. The
/// bound: a load holds at most `maximumSamples` samples (2^22 here, 16 MiB
/// of Float) and the resampled copy as many again, so the whole run's peak
/// resident memory stays below ``peakBytesBound``. It is measured in a child
/// process that runs only the fuzz loop, so other tests cannot distort it.
@Suite("fuzz: audio loader, manifest, journal and lists")
struct FuzzTests {
    static let childVariable = "PBTWAVE_FUZZ_CHILD"
    static let maximumSamples = 1 << 22
    /// The test process's own footprint (Swift runtime, libraries, ~50 MiB)
    /// plus the loader's bound with room for libsndfile's decoders.
    static let peakBytesBound = 256 << 20

    static var environment: [String: String] { ProcessInfo.processInfo.environment }
    static var seed: UInt64 { environment["PBTWAVE_FUZZ_SEED"].flatMap(UInt64.init) ?? 1 }
    static var totalCases: Int { environment["PBTWAVE_FUZZ_CASES"].flatMap(Int.init) ?? 10_000 }

    @Test("10,000 mutated inputs (more with PBTWAVE_FUZZ_CASES): no crash, no trap, peak memory under the bound")
    func fuzz() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = ["--testing-library", "swift-testing", "--filter", "fuzzChild"]
        process.environment = Self.environment.merging([Self.childVariable: "1"]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let report = text.split(separator: "\n").filter { $0.contains("fuzz:") }
        for line in report { print(line) }
        #expect(process.terminationReason == .exit && process.terminationStatus == 0,
                "the fuzz child failed or crashed (seed \(Self.seed)); its output:\n\(text.suffix(4000))")
        let peakLine = try #require(report.first { $0.contains("peak resident") }, "no peak report from the child")
        let peak = try #require(peakLine.split(separator: " ").last.flatMap { Int($0) }, "unreadable peak in \(peakLine)")
        #expect(peak <= Self.peakBytesBound, "peak resident memory \(peak >> 20) MiB exceeds \(Self.peakBytesBound >> 20) MiB")
        let cases = report.compactMap { line -> Int? in
            guard let range = line.range(of: " cases") else { return nil }
            return Int(line[..<range.lowerBound].split(separator: " ").last ?? "")
        }.reduce(0, +)
        #expect(cases >= Self.totalCases, "ran \(cases) cases, expected \(Self.totalCases)")
    }

    /// The loop itself; runs only inside the child that ``fuzz()`` starts.
    @Test(.enabled(if: FuzzTests.environment[FuzzTests.childVariable] != nil))
    func fuzzChild() throws {
        let audioCases = Self.totalCases * 7 / 10
        let manifestCases = Self.totalCases * 2 / 10
        let lineCases = Self.totalCases - audioCases - manifestCases
        var rng = Xoshiro256(seed: Self.seed)
        try fuzzAudio(cases: audioCases, rng: &rng)
        try fuzzManifest(cases: manifestCases, rng: &rng)
        fuzzJournalAndLists(cases: lineCases, rng: &rng)
        print("fuzz: peak resident bytes \(peakResidentBytes())")
    }

    // MARK: Audio

    private func fuzzAudio(cases: Int, rng: inout Xoshiro256) throws {
        let folder = TemporaryFolder("fuzzaudio")
        let seeds = try audioSeeds(in: folder)
        let target = folder.file("case.bin")
        var outcomes: [String: Int] = [:]
        for index in 0 ..< cases {
            let (name, original) = seeds[Int(rng.next() % UInt64(seeds.count))]
            let mutated = mutate(original, rng: &rng, headerBias: true)
            folder.write("case.bin", bytes: mutated)
            let label = "seed \(Self.seed), audio case \(index) (from \(name))"
            if index % 2 == 0 {
                do throws(AudioError) {
                    let samples = try readMonoAudio(path: target, sampleRate: 16_000, maximumSamples: Self.maximumSamples)
                    #expect(samples.count <= Self.maximumSamples, "\(label): \(samples.count) samples")
                    let finite = samples.allSatisfy { $0.isFinite }
                    #expect(finite, "\(label): non-finite samples")
                    outcomes["loaded", default: 0] += 1
                } catch {
                    outcomes[Self.kind(error), default: 0] += 1
                }
            } else {
                // The streaming path of corpus build: no sample bound, one block at a time.
                do throws(AudioError) {
                    let (samples, _) = try convertToMonoWAV(source: target, destination: folder.file("out.wav"), temporary: folder.file(".out.partial"),
                                                       sampleRate: 16_000, minimumSamples: 1)
                    #expect(samples >= 0, "\(label)")
                    outcomes["converted", default: 0] += 1
                } catch {
                    if case .writeFailed = error { Issue.record("\(label): \(error)") }
                    outcomes[Self.kind(error), default: 0] += 1
                }
            }
        }
        print("fuzz: audio loader, \(cases) cases: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
    }

    /// Small valid files in every format at hand: what the mutations start from.
    private func audioSeeds(in folder: TemporaryFolder) throws -> [(String, [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        let signal = pcmGridSignal(count: 2400, seed: 11)
        let stereo = (0 ..< 4800).map { signal[$0 / 2] * ($0 % 2 == 0 ? 1 : -0.5) }
        for (name, format, rate, channels) in [("mono.wav", AudioFileFormat.wav16, 16_000, 1), ("stereo.wav", .wav16, 44_100, 2),
                                               ("mono.flac", .flac16, 22_050, 1), ("stereo.flac", .flac16, 48_000, 2),
                                               ("mono.aiff", .aiff16, 8_000, 1), ("mono.ogg", .oggVorbis, 16_000, 1),
                                               ("stereo.opus", .opus, 48_000, 2)] where format.isSupported {
            try writeAudio(interleaved: channels == 1 ? signal : stereo, channels: channels, sampleRate: rate, format: format, to: folder.file(name))
            seeds.append((name, folder.bytes(name)))
        }
        let floats = signal.prefix(500).flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        seeds.append(("float.wav", handmadeWAV(format: 3, channels: 1, sampleRate: 16_000, bitsPerSample: 32, data: floats)))
        seeds.append(("u8.wav", handmadeWAV(format: 1, channels: 3, sampleRate: 11_025, bitsPerSample: 8, data: (0 ..< 900).map { UInt8($0 % 251) })))
        return seeds
    }

    /// The error's case name, to count outcomes by kind.
    static func kind(_ error: AudioError) -> String {
        Mirror(reflecting: error).children.first?.label ?? "\(error)"
    }

    // MARK: Manifest

    private func fuzzManifest(cases: Int, rng: inout Xoshiro256) throws {
        let folder = TemporaryFolder("fuzzmanifest")
        var manifest = CorpusManifest.header + "\n"
        let names = ["a.wav", "sub/b.wav", "c.wav", "sub/deeper/d.wav"]
        for (index, name) in names.enumerated() {
            try folder.writeWAV(name, samples: pcmGridSignal(count: 400 + 100 * index, seed: UInt64(index)))
            let sha = folder.bytes(name).withUnsafeBytes { SHA256Digest.hex(of: $0) }
            manifest += ManifestEntry(file: name, samples: 400 + 100 * index, sampleRate: 16_000, sha256: sha).manifestLine + "\n"
        }
        let originals = ["manifest.tsv": Array(manifest.utf8), "train.txt": Array("a.wav\nsub/b.wav\nc.wav\n".utf8),
                         "validation.txt": Array("sub/deeper/d.wav\n".utf8)]
        var outcomes: [String: Int] = [:]
        for index in 0 ..< cases {
            let victim = ["manifest.tsv", "manifest.tsv", "train.txt", "validation.txt"][Int(rng.next() % 4)]
            for (name, bytes) in originals { folder.write(name, bytes: name == victim ? mutate(bytes, rng: &rng, headerBias: false) : bytes) }
            let label = "seed \(Self.seed), manifest case \(index) (\(victim))"
            do throws(AudioError) {
                let read = try CorpusManifest.read(directory: folder.path)
                #expect(!read.entries.isEmpty, "\(label)")
                // An emptied split list reads (corpus info describes it); training refuses it.
                let bothSplits = audioError { () throws(AudioError) in try read.requireBothSplits() } == nil
                #expect(bothSplits == (!read.train.isEmpty && !read.validation.isEmpty), "\(label)")
                #expect(read.entries.allSatisfy { $0.seconds.isFinite && $0.seconds >= 0 && $0.samples >= 0 && isSafeRelativePath($0.file) }, "\(label)")
                #expect(Set(read.train.map(\.file)).isDisjoint(with: read.validation.map(\.file)), "\(label)")
                if index % 4 == 0 {
                    _ = try SpeechCorpus.load(directory: folder.path)
                    outcomes["loaded", default: 0] += 1
                } else {
                    outcomes["read", default: 0] += 1
                }
            } catch {
                outcomes[Self.kind(error), default: 0] += 1
            }
        }
        print("fuzz: manifest reader, \(cases) cases: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
    }

    // MARK: Journal and lists

    private func fuzzJournalAndLists(cases: Int, rng: inout Xoshiro256) {
        let folder = TemporaryFolder("fuzzlines")
        let records = [
            "ok\ta/b.flac\t1234\t1700000000123456789\ta/b.wav\t16000\t\(String(repeating: "ab", count: 32))\t32044\t1700000000999999999",
            "short\tc.wav\t10\t5\tc.wav\t3",
            "skip\td.txt\t7\t8\tnot audio\tFormat not recognised",
        ]
        let list = Array("a.wav\n/abs/b.wav\n./c.wav\n# comment\n\nsub/../d.wav\n".utf8)
        let exclusions = Array("source\treason\nsilence/1.g722\tsilence\nbeep.g722\ttone\n".utf8)
        var parsed = 0
        for index in 0 ..< cases {
            let line = mutate(Array(records[index % records.count].utf8), rng: &rng, headerBias: false)
            if let record = JournalRecord(line: Substring(String(decoding: line, as: UTF8.self))) {
                parsed += 1
                #expect(JournalRecord(line: Substring(record.line)) == record, "seed \(Self.seed), journal case \(index): no round trip")
            }
            folder.write("list.txt", bytes: mutate(list, rng: &rng, headerBias: false))
            _ = try? CorpusSources.listed(in: folder.file("list.txt"), root: folder.path)
            folder.write("exclude.tsv", bytes: mutate(exclusions, rng: &rng, headerBias: false))
            _ = try? CorpusSources.exclusions(in: folder.file("exclude.tsv"))
        }
        print("fuzz: journal and list readers, \(cases) cases: \(parsed) journal lines still parsed")
    }

    // MARK: Mutation

    /// One to three mutations: bit flips, random bytes, a 32-bit field set to
    /// an extreme (biased to the first 64 bytes, where headers live),
    /// truncation, insertion, deletion, a duplicated slice, or a hostile token.
    private func mutate(_ input: [UInt8], rng: inout Xoshiro256, headerBias: Bool) -> [UInt8] {
        var bytes = input
        func position(_ span: Int) -> Int {
            guard span > 0 else { return 0 }
            if headerBias, rng.next() % 2 == 0 { return Int(rng.next() % UInt64(min(span, 64))) }
            return Int(rng.next() % UInt64(span))
        }
        let tokens = ["inf", "nan", "-1", "1e308", "99999999999999999999", "../x.wav", "/etc/passwd", "\t", "\r\n", "\0",
                      String(repeating: "9", count: 400), "\u{FFFD}", "0x10", " ", "\n\n\n"].map { Array($0.utf8) }
        for _ in 0 ... Int(rng.next() % 3) {
            switch rng.next() % 9 {
            case 0 where !bytes.isEmpty:
                for _ in 0 ... Int(rng.next() % 8) { bytes[position(bytes.count)] ^= UInt8(1 << (rng.next() % 8)) }
            case 1 where !bytes.isEmpty:
                for _ in 0 ... Int(rng.next() % 16) { bytes[position(bytes.count)] = UInt8(truncatingIfNeeded: rng.next()) }
            case 2 where bytes.count >= 4:
                let extremes: [UInt32] = [0, 1, 2, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF, 0x1_0000, UInt32(truncatingIfNeeded: rng.next())]
                let value = extremes[Int(rng.next() % UInt64(extremes.count))]
                let at = position(bytes.count - 3)
                for k in 0 ..< 4 { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
            case 3:
                bytes = Array(bytes.prefix(position(bytes.count + 1)))
            case 4:
                let at = position(bytes.count + 1)
                bytes.insert(contentsOf: (0 ..< 1 + rng.next() % 32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            case 5 where !bytes.isEmpty:
                let at = position(bytes.count)
                bytes.removeSubrange(at ..< min(bytes.count, at + 1 + Int(rng.next() % 64)))
            case 6 where !bytes.isEmpty:
                let at = position(bytes.count)
                let slice = bytes[at ..< min(bytes.count, at + 1 + Int(rng.next() % 256))]
                bytes.insert(contentsOf: slice, at: position(bytes.count + 1))
            case 7:
                bytes.insert(contentsOf: tokens[Int(rng.next() % UInt64(tokens.count))], at: position(bytes.count + 1))
            default:
                if !bytes.isEmpty { bytes[position(bytes.count)] = UInt8(ascii: "\t") }
            }
        }
        return bytes
    }

    /// VmHWM: the most resident memory this process has had.
    private func peakResidentBytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? Int.max / 1024) * 1024
    }
}
