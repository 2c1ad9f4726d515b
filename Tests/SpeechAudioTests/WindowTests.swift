import Foundation
import PBTSeededRNG
import PBTWaveAudio
import Testing

/// Clip `k` holds codes `k * 40 + (i % 40)`: a window's values tell which
/// clip and offset it came from.
private func labelledSet(lengths: [Int]) -> ClipSet {
    let clips = lengths.enumerated().map { k, n in
        Clip(name: "clip\(k)", codes: (0 ..< n).map { UInt8(k * 40 + $0 % 40) })
    }
    return ClipSet(source: "test set", clips: clips, sampleRate: 16_000)
}

private func draw(_ set: ClipSet, length: Int, rng: inout Xoshiro256) throws -> (WindowOrigin, [Int32]) {
    var window = [Int32](repeating: -1, count: length)
    let origin = try window.withUnsafeMutableBufferPointer { buffer throws(AudioError) in
        try set.sampleWindow(length: length, rng: &rng, into: buffer)
    }
    return (origin, window)
}

@Suite("training windows")
struct WindowTests {
    @Test("layout: length = context + targets + 1, inputs and targets shifted by one")
    func layout() throws {
        let context = 7, targets = 5
        let length = ClipSet.windowLength(context: context, targets: targets)
        #expect(length == 13)
        let set = labelledSet(lengths: [100])
        var rng = Xoshiro256(seed: 9)
        let (origin, window) = try draw(set, length: length, rng: &rng)
        let clip = set.clips[origin.clip].codes
        // The window is the clip's codes [start, start + length).
        #expect(window == clip[origin.start ..< origin.start + length].map { Int32($0) })
        // Inputs w[0 ..< C+T] and targets w[C+1 ..< C+T+1]: input position i
        // predicts w[i+1]; target j is clip[start + C + 1 + j].
        let inputs = window[0 ..< context + targets]
        let targetCodes = window[context + 1 ..< context + targets + 1]
        #expect(inputs.count == context + targets && targetCodes.count == targets)
        for j in 0 ..< targets {
            #expect(targetCodes[context + 1 + j] == Int32(clip[origin.start + context + 1 + j]))
            #expect(inputs[context + j] == Int32(clip[origin.start + context + j]), "the input just before target j")
        }
    }

    @Test("the same seed gives the same windows; another seed, others")
    func determinism() throws {
        let set = labelledSet(lengths: [500, 37, 1200, 80])
        func sequence(seed: UInt64) throws -> [WindowOrigin] {
            var rng = Xoshiro256(seed: seed)
            return try (0 ..< 50).map { _ in try draw(set, length: 64, rng: &rng).0 }
        }
        #expect(try sequence(seed: 1) == sequence(seed: 1))
        #expect(try sequence(seed: 1) != sequence(seed: 2))
        // One draw consumes the generator the same way every time.
        var a = Xoshiro256(seed: 5), b = Xoshiro256(seed: 5)
        _ = try draw(set, length: 64, rng: &a)
        _ = try draw(set, length: 64, rng: &b)
        #expect(a == b)
    }

    @Test("windows never cross a clip boundary; short clips are never drawn")
    func noCrossing() throws {
        let lengths = [30, 200, 64, 10, 150]
        let set = labelledSet(lengths: lengths)
        var rng = Xoshiro256(seed: 3)
        var drawnClips = Set<Int>()
        for _ in 0 ..< 2000 {
            let (origin, window) = try draw(set, length: 64, rng: &rng)
            drawnClips.insert(origin.clip)
            #expect(origin.start >= 0 && origin.start + 64 <= lengths[origin.clip])
            #expect(window.allSatisfy { Int($0) / 40 == origin.clip }, "window from clip \(origin.clip) holds other clips' codes")
        }
        #expect(drawnClips == [1, 2, 4], "clips of 30 and 10 codes are shorter than the window")
        #expect(set.windowStartCount(length: 64) == 137 + 1 + 87)
    }

    @Test("uniform over all valid windows: clips drawn in proportion to their start counts")
    func weighting() throws {
        // 1 start in clip 0, 91 in clip 1, 900 in clip 2.
        let set = labelledSet(lengths: [10, 100, 909])
        var rng = Xoshiro256(seed: 11)
        var perClip = [0, 0, 0]
        var starts = [Int](repeating: 0, count: 900)
        let draws = 99_200
        for _ in 0 ..< draws {
            let (origin, _) = try draw(set, length: 10, rng: &rng)
            perClip[origin.clip] += 1
            if origin.clip == 2 { starts[origin.start] += 1 }
        }
        let total = 992.0
        for (clip, weight) in [(0, 1.0), (1, 91.0), (2, 900.0)] {
            let expected = Double(draws) * weight / total
            // 5 standard deviations of a binomial count: deterministic seed, so
            // this is a fixed check, with a generous margin.
            let tolerance = 5 * (expected * (1 - weight / total)).squareRoot() + 1
            #expect(abs(Double(perClip[clip]) - expected) <= tolerance, "clip \(clip): \(perClip[clip]) draws, expected ≈ \(expected)")
        }
        #expect(starts.min()! > 50 && starts.max()! < 170, "offsets inside a clip are uniform (≈ 90 each)")
    }

    @Test("a batch is the same as consecutive single draws")
    func batch() throws {
        let set = labelledSet(lengths: [300, 500])
        var a = Xoshiro256(seed: 21), b = Xoshiro256(seed: 21)
        var batch = [Int32](repeating: -1, count: 4 * 50)
        try batch.withUnsafeMutableBufferPointer { buffer throws(AudioError) in
            try set.sampleWindows(length: 50, count: 4, rng: &a, into: buffer)
        }
        var singles: [Int32] = []
        for _ in 0 ..< 4 { singles += try draw(set, length: 50, rng: &b).1 }
        #expect(batch == singles)
        #expect(a == b)
    }

    @Test("no clip long enough: a clear error")
    func noClipLongEnough() {
        let set = labelledSet(lengths: [30, 50])
        var rng = Xoshiro256(seed: 1)
        var buffer = [Int32](repeating: 0, count: 51)
        let error = audioError { () throws(AudioError) in
            try buffer.withUnsafeMutableBufferPointer { b throws(AudioError) in try set.sampleWindow(length: 51, rng: &rng, into: b) }
        }
        #expect(error == .noClipLongEnough(source: "test set", length: 51, longest: 50))
        #expect(error?.description.contains("shorter window") == true)
        #expect(audioError { () throws(AudioError) in try set.evenlySpacedWindows(length: 51, count: 3) } != nil)
    }

    @Test("validation windows: fixed, evenly spaced over all valid windows")
    func evenlySpaced() throws {
        let set = labelledSet(lengths: [100, 20, 300])
        // Valid windows of 21: 80 in clip 0, none in clip 1, 280 in clip 2: N = 360.
        let batch = try set.evenlySpacedWindows(length: 21, count: 4)
        #expect(batch.count == 4 && batch.length == 21 && batch.codes.count == 84)
        // Window i is number floor((2i + 1) · 360 / 8) = 45, 135, 225, 315.
        #expect(batch.origins == [WindowOrigin(clip: 0, start: 45), WindowOrigin(clip: 2, start: 55),
                                  WindowOrigin(clip: 2, start: 145), WindowOrigin(clip: 2, start: 235)])
        for i in 0 ..< 4 {
            let origin = batch.origins[i]
            let expected = set.clips[origin.clip].codes[origin.start ..< origin.start + 21].map { Int32($0) }
            #expect(Array(batch.window(i)) == expected)
        }
        let again = try set.evenlySpacedWindows(length: 21, count: 4)
        #expect(again.codes == batch.codes && again.origins == batch.origins)
        // More windows than positions: still valid, overlapping.
        let many = try set.evenlySpacedWindows(length: 21, count: 500)
        #expect(many.origins.allSatisfy { $0.clip != 1 && $0.start + 21 <= set.clips[$0.clip].codes.count })
    }

    @Test("unigram entropy: uniform codes give 8 bits, one code 0 bits")
    func entropy() {
        let uniform = ClipSet(source: "u", clips: [Clip(name: "u", codes: (0 ..< 2560).map { UInt8($0 % 256) })], sampleRate: 16_000)
        #expect(abs(uniform.unigramEntropyBits() - 8) < 1e-12)
        let constant = ClipSet(source: "c", clips: [Clip(name: "c", codes: [UInt8](repeating: 7, count: 100))], sampleRate: 16_000)
        #expect(constant.unigramEntropyBits() == 0)
        let half = ClipSet(source: "h", clips: [Clip(name: "a", codes: [1, 2]), Clip(name: "b", codes: [1, 2, 1, 2])], sampleRate: 16_000)
        #expect(abs(half.unigramEntropyBits() - 1) < 1e-12)
        #expect(ClipSet(source: "e", clips: [], sampleRate: 16_000).unigramEntropyBits() == 0)
        // Cross-entropy under an add-one-smoothed unigram model: exact for
        // uniform codes, slightly above the entropy otherwise.
        let uniformCounts = uniform.codeHistogram()
        #expect(abs(crossEntropyBits(histogram: uniformCounts, model: uniformCounts) - 8) < 1e-12)
        var twoCodes = [Int](repeating: 0, count: 256)
        twoCodes[1] = 50_000
        twoCodes[2] = 50_000
        let cross = crossEntropyBits(histogram: twoCodes, model: twoCodes)
        #expect(abs(cross + log2(50_001.0 / 100_256)) < 1e-12, "cross-entropy \(cross)")
    }
}
