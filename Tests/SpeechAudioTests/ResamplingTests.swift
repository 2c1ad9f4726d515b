import Foundation
import SeededRNG
@testable import SpeechAudio
import Testing
import TestSupport

/// The polyphase resampler against its naive twin, libsamplerate itself.
@Suite("resampling: polyphase vs libsamplerate")
struct ResamplingTests {
    /// Runs `input` through `stream` in blocks of random sizes.
    private func run(_ stream: any ResamplingStream, _ input: [Float], rng: inout Xoshiro256) throws -> [Float] {
        var output: [Float] = []
        var start = 0
        while start < input.count {
            let count = min(1 + Int(rng.next() % 20_000), input.count - start)
            try input[start ..< start + count].withUnsafeBufferPointer { block throws(AudioError) in
                try stream.process(block, last: false) { output.append(contentsOf: $0) }
            }
            start += count
        }
        try stream.process(UnsafeBufferPointer(start: nil, count: 0), last: true) { output.append(contentsOf: $0) }
        return output
    }

    @Test("same samples as libsamplerate medium within Float rounding (5e-7, a 60th of a 16-bit step), same count",
          arguments: [(44_100, 16_000), (48_000, 16_000), (8_000, 16_000), (22_050, 16_000), (11_025, 16_000),
                      (32_000, 16_000), (24_000, 16_000), (96_000, 16_000), (12_000, 16_000), (16_000, 22_050), (16_000, 16_000)])
    func matchesLibsamplerate(from: Int, to: Int) throws {
        var rng = Xoshiro256(seed: UInt64(from * 7 + to))
        // A length whose output count is not an exact integer ratio (where
        // libsamplerate's rounding may drop the last sample), unless every
        // length gives one (8 → 16 kHz).
        var count = 40_000 + Int(rng.next() % 5000)
        while to % from != 0, (count * to) % from == 0 { count += 1 }
        let input = randomArray(count, scale: 0.9, rng: &rng)
        guard let filter = try PolyphaseFilter.measure(from: from, to: to) else {
            Issue.record("no polyphase filter for \(from) → \(to) Hz")
            return
        }
        let fast = try run(PolyphaseStream(filter: filter), input, rng: &rng)
        let reference = try run(LibsamplerateStream(from: from, to: to, path: ""), input, rng: &rng)
        #expect(fast.count == reference.count, "\(from) → \(to): \(fast.count) vs libsamplerate's \(reference.count)")
        #expect(fast.count == count * (to / gcd(from, to)) / (from / gcd(from, to)))
        guard fast.count == reference.count else { return }
        expectClose(fast, reference, tolerance: 5e-7, "\(from) → \(to) Hz, \(filter.up)/\(filter.down), \(filter.taps) taps: polyphase vs libsamplerate")
    }

    @Test("an exact-ratio length: counts agree within one, samples within rounding")
    func exactRatioLength() throws {
        var rng = Xoshiro256(seed: 3)
        let input = randomArray(441 * 300, scale: 0.9, rng: &rng)
        let fast = try run(makeResamplingStream(from: 44_100, to: 16_000, path: ""), input, rng: &rng)
        let reference = try run(LibsamplerateStream(from: 44_100, to: 16_000, path: ""), input, rng: &rng)
        #expect(fast.count == 160 * 300 && abs(fast.count - reference.count) <= 1)
        let common = min(fast.count, reference.count)
        expectClose(Array(fast.prefix(common)), Array(reference.prefix(common)), tolerance: 5e-7, "44.1 → 16 kHz, 132,300 samples")
    }

    @Test("a stream cut into random blocks gives what one whole-input resample() gives")
    func streamingMatchesWholeInput() throws {
        var rng = Xoshiro256(seed: 5)
        let input = randomArray(50_000, scale: 0.7, rng: &rng)
        for (from, to) in [(44_100, 16_000), (8_000, 16_000), (48_000, 16_000)] {
            let whole = try resample(input, from: from, to: to)
            let streamed = try run(makeResamplingStream(from: from, to: to, path: ""), input, rng: &rng)
            #expect(streamed.count == whole.count)
            expectClose(streamed, whole, tolerance: 0, "\(from) → \(to) Hz streamed vs whole")
        }
    }

    @Test("the stream is the polyphase one at medium quality, libsamplerate otherwise or for an odd ratio")
    func engineChoice() throws {
        #expect(try makeResamplingStream(from: 44_100, to: 16_000, path: "") is PolyphaseStream)
        #expect(try makeResamplingStream(from: 44_100, to: 16_000, quality: .best, path: "") is LibsamplerateStream)
        #expect(try makeResamplingStream(from: 44_101, to: 16_000, path: "") is LibsamplerateStream)
        #expect(try resample([Float](repeating: 0.25, count: 5000), from: 44_101, to: 16_000).count >= 1812)
    }

    private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
