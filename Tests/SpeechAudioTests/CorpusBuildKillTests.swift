import Foundation
import PBTSeededRNG
@testable import PBTWaveAudio
import Testing

/// `pbtwave corpus build` killed with SIGKILL at random points, then run to
/// the end: the same bytes as a build that was never interrupted.
@Suite("corpus build: SIGKILL and resume")
struct CorpusBuildKillTests {
    @Test("five kills mid-build, then a resume: byte-identical to an uninterrupted build")
    func killedBuildResumesToSameBytes() throws {
        let executable = try builtPBTWave()
        let sources = TemporaryFolder("killsources")
        // 300 files of 44.1 kHz stereo FLAC: about a second of work on one thread.
        try CorpusBuildBenchmark.makeInput(.init(minutes: 5, files: 300), in: sources.path, jobs: 2)
        let reference = TemporaryFolder("killreference")
        var options = CorpusBuildOptions(source: sources.path, output: reference.path)
        options.jobs = 1
        let complete = try CorpusBuilder.build(options)
        #expect(complete.files == 300)

        let out = TemporaryFolder("killed")
        let journal = out.file(".build-journal.tsv")
        func journalRecords() -> Int {
            max(0, (FileManager.default.contents(atPath: journal).map { $0.filter { $0 == UInt8(ascii: "\n") }.count } ?? 0) - 1)
        }
        var rng = Xoshiro256(seed: 42)
        var killedAt: [Int] = []
        for _ in 0 ..< 5 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["corpus", "build", "--from", sources.path, "--output", out.path, "--jobs", "1", "--progress", "none"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            let before = journalRecords()
            let target = before + 1 + Int(rng.next() % 40)
            try process.run()
            let deadline = Date().addingTimeInterval(60)
            while process.isRunning, journalRecords() < target, Date() < deadline { usleep(500) }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal { killedAt.append(journalRecords()) }
        }
        print("killed at \(killedAt) of 300 journal records")
        #expect(killedAt.count >= 3, "most runs were killed before they finished")
        #expect(killedAt.contains { $0 > 0 && $0 < 300 }, "a kill landed mid-build")
        #expect(!FileManager.default.fileExists(atPath: out.file("manifest.tsv")) || killedAt.count < 5)

        let resumed = Process()
        resumed.executableURL = URL(fileURLWithPath: executable)
        resumed.arguments = ["corpus", "build", "--from", sources.path, "--output", out.path, "--jobs", "2", "--progress", "none"]
        resumed.standardOutput = FileHandle.nullDevice
        try resumed.run()
        resumed.waitUntilExit()
        #expect(resumed.terminationStatus == 0)

        let produced = snapshot(out.path).filter { !$0.key.hasPrefix(".build") }
        let expected = snapshot(reference.path).filter { !$0.key.hasPrefix(".build") }
        #expect(produced.count == expected.count)
        let differing = expected.keys.filter { produced[$0] != expected[$0] }.sorted()
        #expect(differing.isEmpty, "files differ after resume: \(differing.prefix(5))")
        #expect(!snapshot(out.path).keys.contains { $0.hasSuffix(".partial") }, "a temporary file was left behind")
    }
}
