import PBTFileSupport
import Foundation
import PBTSeededRNG
import TestSupport
import Testing
@testable import PBTWaveModel

/// Seeded fuzzing of the checkpoint reader (`CheckpointFile.decode`, what
/// every `WaveNet.load` runs): mutated checkpoints give a model or an
/// error, never a crash, a trap or an oversized allocation. Half the cases
/// recompute the SHA-256 after mutating, so the header parser and every
/// bound behind the checksum are reached, as with a hand-edited file.
/// Allocation bound: a decoded checkpoint's floats fit in its bytes (at
/// most `bytes.count / 4`), and its model is no larger than those floats,
/// so nothing allocated depends on what the header merely claims.
/// 10,000 cases by default; `PBTWAVE_FUZZ_CASES=N` runs N.
@Suite struct CheckpointFuzzTests {
    /// A small valid checkpoint (a 2-layer model of a few hundred parameters).
    static func seed() throws -> [UInt8] {
        let config = WaveNetConfig(classes: 4, residualChannels: 2, dilationChannels: 2, skipChannels: 3, headChannels: 2,
                                   dilations: [1, 2], sampleRate: 8000)
        let model = try WaveNet(config: config, seed: 3)
        return try CheckpointFile.encode(model, dataRNG: Xoshiro256(seed: 1), metadata: ["trial": "7"], path: "seed.ckpt")
    }

    /// `bytes` with its trailing SHA-256 recomputed over the rest.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count >= 32 else { return bytes }
        let body = Array(bytes.dropLast(32))
        return body + body.withUnsafeBytes { SHA256Digest.digest(of: $0) }
    }

    @Test func mutatedCheckpointsNeverCrash() throws {
        let seed = try Self.seed()
        let headerLength = Int(CheckpointFile.readLE(seed, at: 12))
        let cases = Mutator.cases(default: 10_000)
        var mutator = Mutator(seed: 0xC4EC_4B01)
        var decoded = 0, reachedHeader = 0
        for i in 0..<cases {
            var bytes: [UInt8]
            if i % 2 == 0 {
                // Mutate the header's JSON only, then reseal: the parser and the bounds behind the checksum.
                var header = Array(seed[16..<(16 + headerLength)])
                header = mutator.mutate(header)
                bytes = Array(seed[0..<12])
                CheckpointFile.appendLE(&bytes, i % 10 == 0 ? UInt32(truncatingIfNeeded: mutator.rng.next()) : UInt32(header.count))
                bytes += header + seed[(16 + headerLength)...]
                bytes = Self.resealed(bytes)
            } else {
                bytes = mutator.mutate(seed)
                if i % 3 == 0 { bytes = Self.resealed(bytes) }
            }
            do {
                let (header, floats) = try CheckpointFile.decode(bytes, path: "case \(i)")
                decoded += 1
                #expect(floats.count * 4 <= bytes.count, "case \(i): \(floats.count) floats from \(bytes.count) bytes")
                // The model it describes is no bigger than its floats: loading it allocates a bounded amount.
                #expect(WaveNet.makeLayout(header.config).count * 3 == floats.count, "case \(i)")
                let model = try WaveNet(config: header.config, seed: 0)
                try model.restore(header: header, floats: floats, path: "case \(i)")
            } catch {
                if case .checkpoint(_, let reason) = error, !reason.contains("checksum") { reachedHeader += 1 }
            }
        }
        #expect(decoded > 0, "some mutations (of metadata, say) leave a valid checkpoint")
        #expect(reachedHeader > cases / 4, "only \(reachedHeader) of \(cases) cases got past the checksum")
    }
}
