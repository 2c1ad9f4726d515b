import PBTFileSupport
import Foundation
import Testing
@testable import PBTWaveModel

/// Issue 15: a checkpoint's header is input. Headers edited *with* their
/// checksum recomputed (absurd channels, classes, dilations, sample rate,
/// float counts; non-finite weights) are refused with a message, never a
/// trap on overflow or an allocation of their promised size.
@Suite struct CheckpointHostileInputTests {
    /// A well-formed checkpoint file around `header` (JSON) and `floats`,
    /// with a correct checksum.
    static func file(header: Data, floats: [Float]) -> [UInt8] {
        var bytes = CheckpointFile.magic
        CheckpointFile.appendLE(&bytes, CheckpointFile.version)
        CheckpointFile.appendLE(&bytes, UInt32(header.count))
        bytes += header
        for f in floats { CheckpointFile.appendLE(&bytes, f.bitPattern) }
        bytes += bytes.withUnsafeBytes { SHA256Digest.digest(of: $0) }
        return bytes
    }

    /// The JSON header of a real tiny checkpoint, as a dictionary to edit.
    static func tinyHeader() throws -> (header: [String: Any], floats: [Float]) {
        let model = try WaveNet(config: .tiny, seed: 1)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(getpid())-\(UInt32.random(in: 0 ... .max)).ckpt").path
        defer { unlink(path) }
        try CheckpointFile.write(model, dataRNG: nil, to: path)
        let (header, floats) = try CheckpointFile.read(from: path)
        let json = try JSONEncoder().encode(header)
        return (try JSONSerialization.jsonObject(with: json) as! [String: Any], floats)
    }

    static func read(_ bytes: [UInt8]) -> String? {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(getpid())-\(UInt32.random(in: 0 ... .max)).ckpt").path
        defer { unlink(path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do {
            _ = try WaveNet.load(from: path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    static let edits: [(String, @Sendable (inout [String: Any]) -> Void, String)] = [
        ("channels 2^40", { h in var c = h["config"] as! [String: Any]; c["residualChannels"] = 1 << 40; h["config"] = c }, "at most 4096"),
        ("channels -1", { h in var c = h["config"] as! [String: Any]; c["skipChannels"] = -1; h["config"] = c }, "skipChannels must be at least 1 (got -1)"),
        ("classes Int.max", { h in var c = h["config"] as! [String: Any]; c["classes"] = Int.max; h["config"] = c }, "classes must be at most"),
        ("10^6 layers", { h in var c = h["config"] as! [String: Any]; c["dilations"] = Array(repeating: 1, count: 1_000_000); h["config"] = c },
         "at most 4096 layers"),
        ("dilation 2^62", { h in var c = h["config"] as! [String: Any]; c["dilations"] = [1 << 62, 1 << 62]; h["config"] = c },
         "dilations must be at most"),
        ("kernel 2^62", { h in var c = h["config"] as! [String: Any]; c["kernelSize"] = 1 << 62; h["config"] = c }, "kernelSize must be at most"),
        // Each kernel size named (found by a helper: "kernel sizes must be at least 1" named neither).
        ("input kernel 0", { h in var c = h["config"] as! [String: Any]; c["inputKernelSize"] = 0; h["config"] = c },
         "inputKernelSize must be at least 1 (got 0)"),
        ("sample rate 0", { h in var c = h["config"] as! [String: Any]; c["sampleRate"] = 0; h["config"] = c }, "sample rate must be positive"),
        ("sample rate 10^12", { h in var c = h["config"] as! [String: Any]; c["sampleRate"] = 1_000_000_000_000; h["config"] = c },
         "sample rate must be at most"),
        ("big but bounded model", { h in
            var c = h["config"] as! [String: Any]
            c["residualChannels"] = 4096; c["dilationChannels"] = 4096; h["config"] = c
        }, "parameters"),
        ("float count Int.max / 3", { h in h["floatCount"] = Int.max / 3 }, "floats per arena"),
        ("float count -1", { h in h["floatCount"] = -1 }, "floats per arena"),
        ("step -5", { h in h["step"] = -5 }, "step -5 is out of range"),
        ("no config", { h in h["config"] = nil }, "unreadable header: missing field config"),
        // Adam settings that would train nan (a resume blamed the learning rate).
        ("beta1 1", { h in var a = h["adam"] as! [String: Any]; a["beta1"] = 1.0; h["adam"] = a }, "the header's Adam settings are invalid"),
        ("beta2 -5", { h in var a = h["adam"] as! [String: Any]; a["beta2"] = -5.0; h["adam"] = a }, "betas must lie in [0, 1)"),
        ("epsilon 0", { h in var a = h["adam"] as! [String: Any]; a["epsilon"] = 0.0; h["adam"] = a }, "epsilon must be positive"),
        ("precision fp16", { h in h["precision"] = "fp16" }, "unreadable header"),
    ]

    @Test(arguments: edits.indices)
    func editedHeadersAreRefused(_ i: Int) throws {
        let (name, edit, fragment) = Self.edits[i]
        var (header, floats) = try Self.tinyHeader()
        edit(&header)
        let message = Self.read(Self.file(header: try JSONSerialization.data(withJSONObject: header), floats: floats))
        #expect(message?.contains(fragment) == true, "\(name): \(message ?? "accepted")")
        floats = []  // a header promising more than the file holds
        #expect(Self.read(Self.file(header: try JSONSerialization.data(withJSONObject: header), floats: floats)) != nil, "\(name), no payload")
    }

    /// Non-finite weights (a hand-edited or diverged file) are refused by
    /// every reader, so `evaluate` cannot score them as nan with exit 0.
    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteWeightsAreRefused(_ bad: Float) throws {
        var (header, floats) = try Self.tinyHeader()
        floats[floats.count / 2] = bad
        let message = Self.read(Self.file(header: try JSONSerialization.data(withJSONObject: header), floats: floats))
        #expect(message?.contains("non-finite value") == true, "\(message ?? "accepted")")
        header["step"] = 3
        floats[floats.count / 2] = 1
        #expect(Self.read(Self.file(header: try JSONSerialization.data(withJSONObject: header), floats: floats)) == nil, "the same file, finite, reads")
    }

    /// Found in review: a negative Adam second moment (an average of
    /// squares) was read, and a resume then trained nan.
    @Test func aNegativeSecondMomentIsRefused() throws {
        var (header, floats) = try Self.tinyHeader()
        let perArena = floats.count / 3
        floats[2 * perArena + 1] = -1e-3
        let message = Self.read(Self.file(header: try JSONSerialization.data(withJSONObject: header), floats: floats))
        #expect(message?.contains("holds a negative Adam second moment (-0.001") == true, "\(message ?? "accepted")")
        floats[2 * perArena + 1] = 0
        floats[perArena + 1] = -1e-3
        floats[1] = -1e-3
        #expect(Self.read(Self.file(header: try JSONSerialization.data(withJSONObject: header), floats: floats)) == nil,
                "negative weights and first moments are fine")
    }

    /// A checkpoint from a pipe (`generate <(…)`) is read; it was called
    /// "cannot be read (permissions?)" (found by a helper).
    @Test func aCheckpointFromAPipeIsRead() throws {
        let model = try WaveNet(config: .tiny, seed: 4)
        let bytes = try CheckpointFile.encode(model, dataRNG: nil, path: "pipe")
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let writer = fds[1]
        let thread = Thread {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { write(writer, $0.baseAddress! + offset, bytes.count - offset) }
                guard n > 0 else { break }
                offset += n
            }
            close(writer)
        }
        thread.start()
        defer { close(fds[0]) }
        let (loaded, _) = try WaveNet.load(from: "/dev/fd/\(fds[0])")
        #expect(loaded.config == model.config)
        #expect(Self.read([]).map { $0.contains("too short to be a PBTWave checkpoint (0 bytes") } == true)
        // A device is refused before it is read (/dev/zero would be read for ever).
        for device in ["/dev/zero", "/dev/null"] {
            #expect(throws: WaveNetError.checkpoint(path: device, reason: "it is a device, not a checkpoint file")) { try WaveNet.load(from: device) }
        }
    }

    @Test func modelConfigSizesAreBounded() {
        var config = WaveNetConfig.tiny
        config.dilations = Array(repeating: 1 << 20, count: 4096)  // a receptive field of 2^32
        #expect(throws: WaveNetError.self) { try config.validate() }
        config = .compact
        #expect(throws: Never.self) { try config.validate() }
        #expect(WaveNetConfig.presets.values.allSatisfy { (try? $0.validate()) != nil })
    }
}
