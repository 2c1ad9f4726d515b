import ArgumentParser
import Foundation
@testable import PBTWaveCommands
import PBTWaveTensor
import Testing
import PBTWaveModel

/// `help NAME` of no command is refused, naming the commands there (found by
/// a helper: it printed the overview and exited 0); a command's help is not.
@Test func helpOfNoCommandIsRefused() {
    #expect(PBTWave.unknownHelpTopic(["help", "bogus"])?.hasPrefix("no command 'bogus' in pbtwave; its commands: experiment, pbt,") == true)
    #expect(PBTWave.unknownHelpTopic(["help", "bench", "bogus"])?.hasPrefix("no command 'bogus' in pbtwave bench; its commands: ") == true)
    #expect(PBTWave.unknownHelpTopic(["help", "bench", "train"]) == nil)
    #expect(PBTWave.unknownHelpTopic(["help", "train", "--steps"]) == nil)
    #expect(PBTWave.unknownHelpTopic(["help"]) == nil)
    #expect(PBTWave.unknownHelpTopic(["train", "bogus"]) == nil)
}

/// Bad flags of `pbtwave bench kernels|train|generate` get a message that says
/// what is wrong (the kernel variant itself is checked in TensorModuleTests).
@Suite struct BenchCommandTests {
    static let cases: [([String], String)] = [
        (["bench", "train", "--R", "0"], "--R, --S and --H must be at least 1"),
        (["bench", "train", "--H=-3"], "--R, --S and --H must be at least 1"),
        // Each by its own name (one message named all four, whichever was wrong: found by a helper).
        (["bench", "train", "--time", "1"], "--time must be at least 2 (got 1)"),
        (["bench", "train", "--threads", "0"], "--threads must be at least 1 (got 0)"),
        (["bench", "train", "--batch", "0"], "--batch must be at least 1 (got 0)"),
        (["bench", "train", "--seconds", "0"], "--seconds must be a number of seconds above 0 (got 0.0)"),
        (["bench", "train", "--preset", "tiny", "--model-config", "m.json"], "give --preset or --model-config, not both"),
        (["bench", "kernels", "--preset", "tiny", "--model-config", "m.json"], "give --preset or --model-config, not both"),
        (["bench", "train", "--steps", "0"], "--steps must be at least 1"),
        (["bench", "train", "--rounds", "0"], "--rounds must be at least 1"),
        (["bench", "train", "--rounds", "100000000"], "--rounds must be at most 100 (got 100000000)"),
        (["bench", "train", "--beside", "huge"], "unknown --beside 'huge'; choose one of compact, small, tiny"),
        (["bench", "kernels", "--repetitions", "0"], "--repetitions must be at least 1"),
        (["bench", "kernels", "--time", "10"], "--time at least 64"),
        (["bench", "kernels", "--preset", "huge"], "unknown --preset 'huge'"),
        (["bench", "generate", "--samples", "10"], "--samples must be ≥ 1000"),
    ]

    @Test(arguments: cases)
    func badFlagsAreRejectedWithAMessage(_ c: ([String], String)) {
        var message: String?
        do { _ = try PBTWave.parseAsRoot(c.0) } catch { message = PBTWave.message(for: error) }
        #expect(message?.contains(c.1) == true, "\(c.0): got \(message ?? "no error")")
    }

    /// Ratios over rounds print as their median with the range; one round, the value alone.
    /// A peer that is not the peer, fails, or never ends: a message with
    /// the command and its output, and a hung one is killed, not waited for.
    @Test(.timeLimit(.minutes(1))) func aBadPeerIsReportedAndAHungOneKilled() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pbtwave-peer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func peer(_ name: String, _ body: String) throws -> PeerRun.Command {
            let script = dir.appendingPathComponent(name).path
            try body.write(toFile: script, atomically: true, encoding: .utf8)
            return PeerRun.Command(python: "/bin/sh", script: script, arguments: [])
        }
        func failure(_ command: PeerRun.Command, limit: Double? = nil) -> String {
            do {
                _ = try PeerRun.run(command, seconds: 0.1, bf16: false, limit: limit)
                return "no error"
            } catch { return "\(error)" }
        }
        let chatty = failure(try peer("hello.sh", "echo hello\n"))
        #expect(chatty.contains("ended without the JSON result line") && chatty.contains("| hello"), "\(chatty)")
        let failing = failure(try peer("fail.sh", "echo boom >&2\nexit 3\n"))
        #expect(failing.contains("exited with code 3") && failing.contains("| boom") && failing.contains("fail.sh --seconds 0.1"), "\(failing)")
        // (sleep 1000 would outlast the test's time limit if it were waited for.)
        let hung = failure(try peer("hang.sh", "exec sleep 1000\n"), limit: 1)
        #expect(hung.contains("the peer was killed: it was still running after 1 s"), "\(hung)")
    }

    /// A plain progress log gets a line at a new generation at most once a
    /// second (found by a helper: quick trials printed four a second).
    @Test func generationLinesAreAtMostOneASecond() {
        #expect(ProgressLine.generationLineDue(changed: true, now: 10, lastLine: 8.5))
        #expect(!ProgressLine.generationLineDue(changed: true, now: 10, lastLine: 9.7))
        #expect(!ProgressLine.generationLineDue(changed: false, now: 10, lastLine: 0))
        #expect(ProgressLine.generationLineDue(changed: true, now: 0.1, lastLine: -.infinity), "the first line at once")
    }

    @Test func spreadsPrintTheMedianAndTheRange() {
        #expect(Spread([1.9, 1.5, 1.8]).times == "1.80× (rounds 1.50–1.90×)")
        #expect(Spread([1.0, 2.0, 4.0, 3.0]).median == 2.5)
        #expect(Spread([61.25]).text("%.1f", " %") == "61.2 %")
    }

    /// Found by a helper: the dilated products were timed and labelled at
    /// dilation 64 whatever the model's dilations were.
    @Test func kernelShapesTakeTheModelsOwnDilationAndWidths() {
        var config = WaveNetConfig.tiny
        config.dilations = [1, 3, 3, 24]
        config.residualChannels = 20
        let shapes = KernelShape.all(config, time: 256)
        let dilated = shapes.filter { $0.label.hasPrefix("dilated+gate") }
        #expect(dilated.count == 3 && dilated.allSatisfy { $0.dilation == 3 && $0.label.hasSuffix("20→32 K2 d3") && $0.k == 2 },
                "\(dilated.map(\.label))")
        #expect(shapes.allSatisfy { $0.time == 256 })
    }

    @Test func aMissingModelConfigIsNamed() throws {
        let missing = "/nonexistent-\(getpid())/model.json"
        var command = try PBTWave.parseAsRoot(["bench", "train", "--model-config", missing, "--steps", "1", "--no-peak"])
        var message: String?
        do { try command.run() } catch { message = PBTWave.message(for: error) }
        #expect(message?.contains(missing) == true, "got \(message ?? "no error")")
    }

    /// A model of fewer classes than the synthetic windows' 256 mu-law levels
    /// is timed on codes it can take (this stopped at a precondition before).
    @Test func aModelOfFewerClassesIsTimed() throws {
        for classes in [2, 64, 300] {
            let config = WaveNetConfig(classes: classes, residualChannels: 5, dilationChannels: 3, skipChannels: 7, headChannels: 4,
                                       kernelSize: 3, dilations: [1, 3])
            let session = try TrainingMeasurement.Session(config: config, kernels: .default, batch: 2, time: 64, warmup: 2)
            #expect(session.lossFirst.isFinite && session.lossFirst > 0, "classes \(classes): loss \(session.lossFirst)")
            #expect(session.windows.allSatisfy { $0 >= 0 && Int($0) < classes }, "classes \(classes)")
            #expect(Set(session.windows).count > 1, "classes \(classes): the codes still vary")
        }
        // And the command itself, as a user runs it, alone and beside a preset's model.
        let config = WaveNetConfig(classes: 64, residualChannels: 5, dilationChannels: 3, skipChannels: 7, headChannels: 4,
                                   kernelSize: 3, inputKernelSize: 1, dilations: [1, 3], sampleRate: 8000)
        try Self.withModelConfig(config) { path in
            for extra in [[], ["--beside", "tiny"]] {
                var command = try PBTWave.parseAsRoot(["bench", "train", "--model-config", path, "--steps", "1", "--time", "64", "--no-peak"] + extra)
                try command.run()
            }
        }
    }

    /// Runs `body` with the path of `config` written as a --model-config file.
    static func withModelConfig(_ config: WaveNetConfig, _ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.json")
        try JSONEncoder().encode(config).write(to: file)
        try body(file.path)
    }

    /// --steps times our model alone: with the workers or the peer (timed by --seconds) it is refused (found by a helper:
    /// their ratios to one cold step were printed).
    @Test func stepsAreOursAlone() throws {
        for extra in [["--workers", "2"], ["--peer-python", "/bin/false", "--peer-script", "/dev/null"]] {
            let error = #expect(throws: (any Error).self) { _ = try PBTWave.parseAsRoot(["bench", "train", "--steps", "1"] + extra) }
            #expect(error.map { PBTWave.message(for: $0) }?.contains("--steps times our model alone") == true)
        }
    }

    /// The peer builds only its own architecture; asking it to compare another is an error, not a wrong ratio.
    @Test func thePeerRefusesOtherArchitectures() throws {
        let config = WaveNetConfig(residualChannels: 8, dilationChannels: 4, skipChannels: 8, headChannels: 8, dilations: [1, 2])
        var message: String?
        try Self.withModelConfig(config) { path in
            var command = try PBTWave.parseAsRoot(["bench", "train", "--model-config", path, "--seconds", "0.05", "--time", "64", "--no-peak",
                                                   "--peer-python", "/bin/false", "--peer-script", "/dev/null"])
            do { try command.run() } catch { message = PBTWave.message(for: error) }
        }
        #expect(message?.contains("the PyTorch peer builds only") == true, "got \(message ?? "no error")")
    }
}
