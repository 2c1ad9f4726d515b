import Foundation
import PBTSeededRNG
import PBTWaveAudio
import Testing

/// The reference formula, in Double: the real number floor() is applied to.
private func referenceBinCoordinate(_ x: Double) -> Double {
    let clamped = min(max(x, -1), 1)
    let magnitude = log1p(255 * abs(clamped)) / log1p(255)
    let y = clamped < 0 ? -magnitude : magnitude
    return (y + 1) / 2 * 255 + 0.5
}

private func referenceCode(_ x: Double) -> Int {
    min(max(Int(referenceBinCoordinate(x).rounded(.down)), 0), 255)
}

/// x at bin coordinate v (the inverse of `referenceBinCoordinate`).
private func sampleAt(binCoordinate v: Double) -> Double {
    let y = min(max((v - 0.5) / 255 * 2 - 1, -1), 1)
    let magnitude = (pow(256, abs(y)) - 1) / 255
    return y < 0 ? -magnitude : magnitude
}

@Suite("mu-law")
struct MuLawTests {
    @Test("edge cases: ±1, 0, beyond ±1, infinities, NaN")
    func edgeCases() {
        #expect(MuLaw.encode(-1) == 0)
        #expect(MuLaw.encode(1) == 255)
        #expect(MuLaw.encode(0) == 128)
        #expect(MuLaw.encode(-0.0) == 128)
        #expect(MuLaw.encode(-1e-6) == 127)
        #expect(MuLaw.encode(1e-6) == 128)
        #expect(MuLaw.encode(1.5) == 255)
        #expect(MuLaw.encode(-7) == 0)
        #expect(MuLaw.encode(.infinity) == 255)
        #expect(MuLaw.encode(-.infinity) == 0)
        #expect(MuLaw.encode(.nan) == 128, "NaN is treated as silence (0)")
        #expect(MuLaw.decode(UInt8(0)) == -1)
        #expect(MuLaw.decode(UInt8(255)) == 1)
        #expect(MuLaw.decode(Int32(255)) == 1)
        #expect(abs(MuLaw.decode(UInt8(128)) - 8.6e-5) < 1e-6)
        #expect(MuLaw.decode(UInt8(127)) == -MuLaw.decode(UInt8(128)), "decoding is odd-symmetric")
        #expect(MuLaw.decodingTable.count == 256)
    }

    @Test("agrees with the reference formula on 400k random values")
    func agreesWithReference() {
        var rng = Xoshiro256(seed: 42)
        var mismatches = 0
        var edgeMismatches = 0
        var checked = 0
        for i in 0 ..< 400_000 {
            // Half uniform in [-1.2, 1.2], half log-uniform magnitudes down to
            // 1e-7, where mu-law has its finest bins.
            let x: Float
            if i % 2 == 0 {
                x = Float(rng.nextUnitDouble() * 2.4 - 1.2)
            } else {
                let magnitude = Float(pow(10, -7 * rng.nextUnitDouble()))
                x = rng.next() & 1 == 0 ? magnitude : -magnitude
            }
            let code = Int(MuLaw.encode(x))
            let expected = referenceCode(Double(x))
            checked += 1
            if code != expected {
                // Float arithmetic (as PyTorch's float32) may only disagree
                // with the exact formula within rounding of a bin edge.
                let v = referenceBinCoordinate(Double(x))
                if abs(v - v.rounded()) < 1e-4 && abs(code - expected) == 1 {
                    edgeMismatches += 1
                } else {
                    mismatches += 1
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(checked) codes differ from the formula away from bin edges")
        #expect(edgeMismatches <= checked / 10_000, "\(edgeMismatches) edge-rounding differences of \(checked)")
    }

    @Test("every bin: codes map back, round-trip error within half a bin")
    func roundTripErrorBound() {
        // Each code's centre decodes and re-encodes to itself.
        for code in 0 ... 255 {
            #expect(Int(MuLaw.encode(MuLaw.decode(UInt8(code)))) == code, "centre of bin \(code)")
        }
        // Inside each bin, |x - decode(encode(x))| is at most the distance
        // from the centre to the farther edge (plus Float rounding).
        var maxExcess = 0.0
        var maxError = 0.0
        for code in 0 ... 255 {
            let lower = sampleAt(binCoordinate: Double(code))
            let upper = sampleAt(binCoordinate: Double(code) + 1)
            let centre = Double(MuLaw.decode(UInt8(code)))
            let bound = max(abs(centre - lower), abs(upper - centre))
            // Interior points: an edge itself belongs to the next bin up.
            for k in 1 ..< 50 {
                let x = Float(lower + (upper - lower) * Double(k) / 50)
                let error = abs(Double(x) - Double(MuLaw.decode(MuLaw.encode(x))))
                maxError = max(maxError, error)
                maxExcess = max(maxExcess, error - bound)
            }
        }
        #expect(maxExcess < 1e-6, "max error beyond the half-bin bound: \(maxExcess)")
        #expect(maxError < 0.032, "max round-trip error \(maxError) (largest bins are at ±1)")
        // Small signals are represented finely: near 0 the bins are ~1.7e-4 wide.
        for x: Float in [1e-4, -1e-4, 3e-3, -3e-3] {
            #expect(abs(MuLaw.decode(MuLaw.encode(x)) - x) < 2e-4, "x = \(x)")
        }
    }

    @Test("monotone: encode never decreases, decode strictly increases")
    func monotone() {
        var previous = MuLaw.encode(-1.1)
        var x: Float = -1.1
        while x <= 1.1 {
            let code = MuLaw.encode(x)
            #expect(code >= previous, "encode(\(x)) = \(code) after \(previous)")
            if code < previous { return }
            previous = code
            x += 1.0 / 65536
        }
        for code in 1 ... 255 {
            #expect(MuLaw.decode(UInt8(code)) > MuLaw.decode(UInt8(code - 1)))
        }
        // Every code is reachable.
        var seen = Set<UInt8>()
        for k in -32768 ... 32767 { seen.insert(MuLaw.encode(Float(k) / 32768)) }
        #expect(seen.count == 256)
    }

    @Test("buffer and array versions agree with the scalar one")
    func bufferVersions() {
        let samples: [Float] = (0 ..< 1000).map { Float(sin(Double($0) * 0.37)) * 1.1 } + [.nan, .infinity, -.infinity, 0]
        let expected = samples.map { MuLaw.encode($0) }
        #expect(MuLaw.encode(samples) == expected)

        var wide = [Int32](repeating: -1, count: samples.count)
        samples.withUnsafeBufferPointer { s in wide.withUnsafeMutableBufferPointer { MuLaw.encode(s, into: $0) } }
        #expect(wide == expected.map { Int32($0) })

        let decoded = MuLaw.decode(expected)
        #expect(decoded == expected.map { MuLaw.decode($0) })
        #expect(MuLaw.decode(wide) == decoded)
        var into = [Float](repeating: .nan, count: wide.count)
        wide.withUnsafeBufferPointer { c in into.withUnsafeMutableBufferPointer { MuLaw.decode(c, into: $0) } }
        #expect(into == decoded)
    }
}
