import Foundation
import PBTSeededRNG
import Testing
import TestSupport
import PBTWaveTensor
import PBTWaveModel

func temporaryDirectory(_ name: String = #function) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pbtwave-tests-\(getpid())-\(name.filter(\.isLetter))-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

/// Trains `steps` steps on windows drawn from `rng` (random codes).
func train(_ model: WaveNet, steps: Int, rng: inout Xoshiro256, batch: Int = 2, time: Int = 40, lr: Float = 3e-3) -> [Double] {
    (0..<steps).map { _ in
        let windows = randomCodes(batch * (time + 1), classes: model.config.classes, rng: &rng)
        return windows.withUnsafeBufferPointer { model.trainStep(windows: $0.baseAddress!, batch: batch, time: time, learningRate: lr) }
    }
}

@Suite struct GenerationTests {
    /// Teacher-forced incremental generation gives the logits of the full
    /// forward pass at every position, for windows longer than the receptive
    /// field (so the queues wrap around), in each precision. (In bf16 both
    /// multiply the same bf16 operands; the sums differ in order only, and
    /// an operand near a bf16 midpoint may round to the neighbouring value.)
    @Test(arguments: ["tiny", "small"], Precision.allCases)
    func incrementalEqualsFullForward(_ preset: String, _ precision: Precision) throws {
        let config = WaveNetConfig.presets[preset]!
        let model = try WaveNet(config: config, seed: 5)
        var rng = Xoshiro256(seed: 6)
        _ = train(model, steps: 3, rng: &rng)  // move away from the initialisation (in fp32: the same weights for both precisions)
        model.precision = precision
        let T = config.receptiveField + 77
        let window = randomCodes(T + 1, rng: &rng)
        window.withUnsafeBufferPointer { model.forwardOnly(windows: $0.baseAddress!, batch: 1, time: T) }
        let V = config.classes
        let full = Array(UnsafeBufferPointer(start: model.lastLogits()!, count: T * V))
        let generator = WaveNetGenerator(model: model)
        generator.reset()
        var incremental = [Float]()
        incremental.reserveCapacity(T * V)
        for t in 0..<T {
            generator.step(code: window[t])
            incremental += generator.logits.array
        }
        let d = difference(incremental, full)
        print("generation vs forward (\(preset), \(precision), T \(T)): \(d)")
        // bf16: a flipped operand moves by one bf16 ulp (2^-8 of itself), so
        // the logits may differ by about one bf16 ulp of the largest.
        let largest = full.map(\.magnitude).max() ?? 0
        let tolerance = precision == .fp32 ? 1e-3 : max(1e-3, 0x1p-8 * largest)
        #expect(d.maxAbs < tolerance, "incremental logits differ from the full forward pass: \(d) (tolerance \(tolerance))")
    }

    /// Long generations report progress (`pbtwave generate` showed nothing
    /// for minutes), and listening changes nothing.
    @Test func generationReportsProgressWithoutChangingTheSamples() throws {
        let generator = WaveNetGenerator(model: try WaveNet(config: .tiny, seed: 7))
        var heard: [Int] = []
        let watched = generator.generate(count: 10_000, temperature: 1, seed: 9) { heard.append($0) }
        #expect(heard == [4096, 8192])
        #expect(watched == generator.generate(count: 10_000, temperature: 1, seed: 9))
        // Stopped after its first report: the codes so far, a prefix of the whole.
        var asked = 0
        let stopped = generator.generate(count: 10_000, temperature: 1, seed: 9, stop: { asked += 1; return true })
        #expect(asked == 1 && stopped == Array(watched.prefix(4096)))
    }

    @Test func samplingIsSeededAndRespectsTemperature() throws {
        let model = try WaveNet(config: .tiny, seed: 7)
        let generator = WaveNetGenerator(model: model)
        let a = generator.generate(count: 200, temperature: 1, seed: 9)
        let b = generator.generate(count: 200, temperature: 1, seed: 9)
        let c = generator.generate(count: 200, temperature: 1, seed: 10)
        #expect(a == b)
        #expect(a != c)
        #expect(a.allSatisfy { $0 >= 0 && $0 < 256 })
        // Temperature 0 is greedy: always the most likely code.
        generator.reset()
        generator.step(code: 128)
        let logits = generator.logits.array
        let argmax = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
        var rng = Xoshiro256(seed: 1)
        #expect(generator.sample(temperature: 0, rng: &rng) == argmax)
    }
}

@Suite struct CheckpointTests {
    @Test func roundTripRestoresEverything() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try WaveNet(config: .tiny, seed: 11)
        var rng = Xoshiro256(seed: 12)
        _ = train(model, steps: 4, rng: &rng)
        let path = dir + "/a.ckpt"
        try CheckpointFile.write(model, dataRNG: rng, metadata: ["note": "x"], to: path)
        let (loaded, header) = try WaveNet.load(from: path)
        #expect(header.step == 4 && loaded.step == 4)
        #expect(header.dataRNG == rng)
        #expect(header.metadata["note"] == "x")
        #expect(loaded.parameters.storage.array == model.parameters.storage.array)
        #expect(loaded.adamM.storage.array == model.adamM.storage.array)
        #expect(loaded.adamV.storage.array == model.adamV.storage.array)
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.ckpt"])
    }

    /// Training k steps, checkpointing, and resuming in a new model gives
    /// bit-identical parameters and losses to training straight through, in
    /// each precision (the resumed model takes the checkpoint's).
    @Test(arguments: Precision.allCases)
    func resumeIsBitIdentical(_ precision: Precision) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func fresh() throws -> WaveNet {
            let model = try WaveNet(config: .tiny, seed: 13)
            model.precision = precision
            return model
        }
        let straight = try fresh()
        var rngA = Xoshiro256(seed: 14)
        let lossesA = train(straight, steps: 10, rng: &rngA)

        let first = try fresh()
        var rngB = Xoshiro256(seed: 14)
        var lossesB = train(first, steps: 6, rng: &rngB)
        let path = dir + "/mid.ckpt"
        try CheckpointFile.write(first, dataRNG: rngB, to: path)
        let (resumed, header) = try WaveNet.load(from: path)
        #expect(resumed.precision == precision)
        var rngC = try #require(header.dataRNG)
        lossesB += train(resumed, steps: 4, rng: &rngC)
        #expect(lossesA == lossesB)
        #expect(resumed.parameters.storage.array == straight.parameters.storage.array)
        #expect(resumed.step == straight.step)
    }

    @Test func reinitializeEqualsAFreshModel() throws {
        let model = try WaveNet(config: .tiny, seed: 41)
        var rng = Xoshiro256(seed: 42)
        _ = train(model, steps: 3, rng: &rng)
        model.reinitialize(seed: 43)
        let fresh = try WaveNet(config: .tiny, seed: 43)
        #expect(model.step == 0)
        #expect(model.parameters.storage.array == fresh.parameters.storage.array)
        #expect(model.adamM.storage.array.allSatisfy { $0 == 0 } && model.adamV.storage.array.allSatisfy { $0 == 0 })
    }

    @Test func sameSeedSameLosses() throws {
        let a = try WaveNet(config: .tiny, seed: 21), b = try WaveNet(config: .tiny, seed: 21)
        var ra = Xoshiro256(seed: 22), rb = Xoshiro256(seed: 22)
        #expect(train(a, steps: 5, rng: &ra) == train(b, steps: 5, rng: &rb))
        let c = try WaveNet(config: .tiny, seed: 23)
        var rc = Xoshiro256(seed: 22)
        #expect(train(c, steps: 1, rng: &rc) != train(try WaveNet(config: .tiny, seed: 21), steps: 1, rng: &ra))
    }

    @Test func damagedFilesGiveClearErrors() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try WaveNet(config: .tiny, seed: 31)
        let path = dir + "/good.ckpt"
        try CheckpointFile.write(model, dataRNG: nil, to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))

        func expectError(_ data: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let bad = dir + "/bad.ckpt"
            try Data(data).write(to: URL(fileURLWithPath: bad))
            do {
                _ = try WaveNet.load(from: bad)
                Issue.record("loading a damaged checkpoint succeeded", sourceLocation: sourceLocation)
            } catch {
                #expect(error.description.contains(bad) && error.description.contains(fragment),
                        "error '\(error.description)' should name the file and say '\(fragment)'", sourceLocation: sourceLocation)
            }
        }
        try expectError(Array(bytes.prefix(bytes.count / 2)), "checksum")          // truncated
        try expectError([], "too short")                                           // empty
        try expectError(Array("hello, not a checkpoint at all, just text".utf8) + [UInt8](repeating: 0, count: 64), "magic")
        bytes[bytes.count / 2] ^= 0x40                                             // one flipped bit
        try expectError(bytes, "checksum")
        do {
            _ = try WaveNet.load(from: dir + "/missing.ckpt")
            Issue.record("loading a missing checkpoint succeeded")
        } catch {
            #expect(error.description.contains("no such file"))
        }
        // A checkpoint of another configuration cannot be loaded into this model.
        let other = try WaveNet(config: .small, seed: 1)
        #expect(throws: WaveNetError.self) { try other.load(from: path) }
    }
}
