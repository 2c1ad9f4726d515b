import CPBTSampleRate
import Foundation
import PBTSeededRNG
@testable import PBTWaveAudio
import Testing
import TestSupport

/// The streaming resampler (block by block, as corpus build runs it) against
/// libsamplerate's one-shot `src_simple` on the whole input.
@Suite("resampling: streamed vs libsamplerate in one call")
struct ResamplingTests {
    /// Runs `input` through `stream` in blocks of random sizes.
    private func run(_ stream: LibsamplerateStream, _ input: [Float], rng: inout Xoshiro256) throws -> [Float] {
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

    /// libsamplerate's `src_simple` on the whole input: the naive twin.
    private func simple(_ input: [Float], from: Int, to: Int, quality: ResamplingQuality) -> [Float] {
        var output = [Float](repeating: 0, count: input.count * to / from + 64)
        var data = SRC_DATA()
        input.withUnsafeBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                data.data_in = i.baseAddress
                data.input_frames = i.count
                data.data_out = o.baseAddress
                data.output_frames = o.count
                data.src_ratio = Double(to) / Double(from)
                #expect(src_simple(&data, quality.converter, 1) == 0)
            }
        }
        return Array(output.prefix(data.output_frames_gen))
    }

    @Test("same samples and count as src_simple, whatever the blocks",
          arguments: [(44_100, 16_000), (48_000, 16_000), (8_000, 16_000), (22_050, 16_000), (16_000, 22_050)], ResamplingQuality.allCases)
    func matchesOneShotLibsamplerate(rates: (Int, Int), quality: ResamplingQuality) throws {
        var rng = Xoshiro256(seed: UInt64(rates.0 * 7 + rates.1))
        let input = randomArray(40_000 + Int(rng.next() % 5000), scale: 0.9, rng: &rng)
        let streamed = try run(LibsamplerateStream(from: rates.0, to: rates.1, quality: quality, path: ""), input, rng: &rng)
        let reference = simple(input, from: rates.0, to: rates.1, quality: quality)
        #expect(streamed.count == input.count * rates.1 / rates.0, "\(rates) \(quality): \(streamed.count) samples from \(input.count)")
        #expect(abs(streamed.count - reference.count) <= 1, "\(rates) \(quality): \(streamed.count) vs \(reference.count)")
        let common = min(streamed.count, reference.count)
        expectClose(Array(streamed.prefix(common)), Array(reference.prefix(common)), tolerance: 1e-6,
                    "\(rates.0) → \(rates.1) Hz, \(quality): streamed vs src_simple")
    }

    /// Found by a user: 3.0 s of 22.05 or 44.1 kHz became 47,999 samples at
    /// 16 kHz (libsamplerate's end, from its ratio in floating point).
    @Test("exactly ⌊n × to / from⌋ samples, whole seconds to whole seconds",
          arguments: [8_000, 11_025, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 96_000], ResamplingQuality.allCases)
    func countIsExact(from: Int, quality: ResamplingQuality) throws {
        var rng = Xoshiro256(seed: UInt64(from))
        for n in [3 * from, from / 2 + 1, 1, 2, 7, 12_345 + from % 97] {
            let input = randomArray(n, scale: 0.5, rng: &rng)
            for to in [16_000, 8_000, 22_050] {
                let output = try resample(input, from: from, to: to, quality: quality)
                #expect(output.count == (from == to ? n : n * to / from), "\(n) samples \(from) → \(to) Hz, \(quality): \(output.count)")
            }
        }
    }

    @Test("a stream cut into random blocks gives what one whole-input resample() gives")
    func streamingMatchesWholeInput() throws {
        var rng = Xoshiro256(seed: 5)
        let input = randomArray(50_000, scale: 0.7, rng: &rng)
        for (from, to) in [(44_100, 16_000), (8_000, 16_000), (48_000, 16_000)] {
            let whole = try resample(input, from: from, to: to)
            let streamed = try run(LibsamplerateStream(from: from, to: to, path: ""), input, rng: &rng)
            #expect(streamed.count == whole.count)
            expectClose(streamed, whole, tolerance: 0, "\(from) → \(to) Hz streamed vs whole")
        }
    }
}
