import Foundation
import Testing

/// `pbtwave corpus build` and `corpus info` as a user runs them: which
/// stream says what, and what an empty split shows.
@Suite struct CorpusCommandLineTests {
    /// A 16-bit mono 16 kHz WAV of `samples`.
    static func wav(_ samples: [Int16]) -> Data {
        var data = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        data.append(contentsOf: Array("RIFF".utf8)); u32(UInt32(36 + 2 * samples.count))
        data.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16); u16(1); u16(1); u32(16_000); u32(32_000); u16(2); u16(16)
        data.append(contentsOf: Array("data".utf8)); u32(UInt32(2 * samples.count))
        for s in samples { u16(UInt16(bitPattern: s)) }
        return data
    }

    /// Four clips of a tone, one of them clipped.
    static func audioFolder(_ dir: TemporaryDirectory) throws -> String {
        let audio = dir.url.appendingPathComponent("audio")
        try FileManager.default.createDirectory(at: audio, withIntermediateDirectories: true)
        for i in 1...4 {
            let gain = i == 4 ? 3.0 : 0.3
            let samples = (0..<16_000).map { t in Int16(max(-32_768, min(32_767, (gain * 32_767 * sin(Double(t * i) * 0.05)).rounded()))) }
            try wav(samples).write(to: audio.appendingPathComponent("s\(i).wav"))
        }
        return audio.path
    }

    /// Found by a helper: the build's warnings (clipped, quiet, the splits)
    /// came on standard output with its summary, unlike every other
    /// command's; an empty split's entropy was shown as 0.000 bits and its
    /// "NLL a model must beat" as 0.000 or 8.000.
    @Test func warningsGoToStandardErrorAndAnEmptySplitShowsNoNumbers() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let audio = try Self.audioFolder(dir)
        let corpus = dir.url.appendingPathComponent("corpus").path
        let built = try runPBTWave(["corpus", "build", "--from", audio, "--output", corpus, "--progress", "none"])
        #expect(built.status == 0, "\(built.stderr)")
        #expect(built.stdout.contains("  files: 4,") && !built.stdout.contains("warning:"), "\(built.stdout)")
        #expect(built.stderr.contains("  warning: 1 WAV is clipped"), "\(built.stderr)")

        let empty = dir.url.appendingPathComponent("empty").path
        #expect(try runPBTWave(["corpus", "build", "--from", audio, "--output", empty, "--progress", "none", "--validation-percent", "0"])
            .status == 0)
        let info = try runPBTWave(["corpus", "info", "--corpus", empty])
        #expect(info.status == 0 && info.stdout.contains("validation none (empty split)")
                && info.stdout.contains("validation under the train unigram: none (a split is empty)")
                && !info.stdout.contains("0.000 bits"), "\(info.stdout)")
        #expect(info.stderr.contains("has an empty validation split"), "\(info.stderr)")
        let full = try runPBTWave(["corpus", "info", "--corpus", corpus])
        #expect(full.stdout.contains(" bits per sample (the NLL a model must beat)"), "\(full.stdout)")
    }

    /// Found by a helper: `train --resume` looked for ./corpus (evaluate
    /// and generate take the checkpoint's), and given another corpus there
    /// trained on it with a note, its curve mixing two validation sets.
    @Test func aResumeTrainsOnItsCheckpointsCorpus() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let mine = dir.url.appendingPathComponent("mine").path
        #expect(try runPBTWave(["corpus", "build", "--from", try Self.audioFolder(dir), "--output", mine, "--progress", "none",
                                "--validation-percent", "50"]).status == 0)
        let work = dir.url.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let flags = ["--preset", "tiny", "--window", "512", "--eval-windows", "1", "--eval-targets", "64", "--eval-every", "2", "--progress", "none",
                     "--checkpoint", "c.ckpt", "--curve", "k.csv"]
        let first = try runPBTWave(["train", "--corpus", mine, "--steps", "2"] + flags, unsetting: ["PBTWAVE_CORPUS"], currentDirectory: work)
        #expect(first.status == 0, "\(first.stderr)")
        let resumed = try runPBTWave(["train", "--resume", "--steps", "4", "--checkpoint", "c.ckpt", "--curve", "k.csv", "--progress", "none"],
                                     unsetting: ["PBTWAVE_CORPUS"], currentDirectory: work)
        #expect(resumed.status == 0 && resumed.stderr.contains("note: using the corpus the checkpoint was trained on, \(mine)"), "\(resumed.stderr)")
        // Its corpus gone and another in ./corpus: refused, not mixed into the curve.
        let other = dir.url.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        for i in 1...4 {
            try Self.wav((0..<16_000).map { t in Int16((0.2 * 32_767 * sin(Double(t) * 0.013 * Double(i + 2))).rounded()) })
                .write(to: other.appendingPathComponent("o\(i).wav"))
        }
        #expect(try runPBTWave(["corpus", "build", "--from", other.path, "--output", work.appendingPathComponent("corpus").path,
                                "--progress", "none", "--validation-percent", "50"]).status == 0)
        try FileManager.default.moveItem(atPath: mine, toPath: mine + "-moved")
        let switched = try runPBTWave(["train", "--resume", "--steps", "6", "--checkpoint", "c.ckpt", "--curve", "k.csv", "--progress", "none"],
                                      unsetting: ["PBTWAVE_CORPUS"], currentDirectory: work)
        #expect(switched.status != 0 && switched.stderr.contains("was trained on another corpus than")
                && switched.stderr.contains("its curve would mix two validation sets"), "\(switched.stderr)")
    }
}
