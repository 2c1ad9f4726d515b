import Foundation
import PBTWaveAudio
import Testing

@Suite("reading, writing, resampling")
struct AudioFileTests {
    @Test("WAV round trip is exact on the 16-bit grid and within 1/65536 off it")
    func wavRoundTrip() throws {
        let folder = TemporaryFolder()
        let signal = pcmGridSignal(count: 20_000, seed: 1)
        let path = try folder.writeWAV("grid.wav", samples: signal)
        let info = try audioFileInfo(path: path)
        #expect(info.frames == 20_000 && info.channels == 1 && info.sampleRate == 16_000)
        #expect(info.seconds == 1.25)
        #expect(try readMonoAudio(path: path) == signal)
        #expect(try readMonoAudio(path: path, sampleRate: 16_000) == signal)

        let smooth = sine(frequency: 300, seconds: 0.5, sampleRate: 16_000, amplitude: 0.9)
        try folder.writeWAV("smooth.wav", samples: smooth)
        let back = try readMonoAudio(path: folder.file("smooth.wav"))
        let maxError = zip(smooth, back).map { abs($0 - $1) }.max() ?? 1
        #expect(back.count == smooth.count)
        #expect(maxError <= 1.0 / 65536 + 1e-9, "max round-trip error \(maxError)")
    }

    @Test("FLAC round trip is exact", .enabled(if: AudioFileFormat.flac16.isSupported))
    func flacRoundTrip() throws {
        let folder = TemporaryFolder()
        let signal = pcmGridSignal(count: 12_345, seed: 2)
        try writeAudio(interleaved: signal, channels: 1, sampleRate: 22_050, format: .flac16, to: folder.file("a.flac"))
        let info = try audioFileInfo(path: folder.file("a.flac"))
        #expect(info.frames == 12_345 && info.sampleRate == 22_050 && info.channels == 1)
        #expect(try readMonoAudio(path: folder.file("a.flac")) == signal)
        // Smaller than the WAV: it really is FLAC.
        #expect(folder.bytes("a.flac").count < 12_345 * 2)
    }

    @Test("stereo and 3-channel files mix down to the channel average")
    func mixDown() throws {
        let folder = TemporaryFolder()
        let left = pcmGridSignal(count: 5000, seed: 3)
        let right = pcmGridSignal(count: 5000, seed: 4).map { -$0 }
        var interleaved: [Float] = []
        for i in 0 ..< 5000 { interleaved += [left[i], right[i]] }
        try writeAudio(interleaved: interleaved, channels: 2, sampleRate: 16_000, to: folder.file("stereo.wav"))
        #expect(try audioFileInfo(path: folder.file("stereo.wav")).channels == 2)
        let mono = try readMonoAudio(path: folder.file("stereo.wav"))
        #expect(mono == (0 ..< 5000).map { (left[$0] + right[$0]) * 0.5 })

        let third = [Float](repeating: 0.25, count: 5000)
        var three: [Float] = []
        for i in 0 ..< 5000 { three += [left[i], right[i], third[i]] }
        try writeAudio(interleaved: three, channels: 3, sampleRate: 16_000, to: folder.file("three.wav"))
        let mixed = try readMonoAudio(path: folder.file("three.wav"))
        var maxError: Float = 0
        for i in 0 ..< 5000 {
            let average: Float = (left[i] + right[i] + third[i]) / 3
            maxError = max(maxError, abs(mixed[i] - average))
        }
        #expect(maxError < 1e-6, "max mix-down error \(maxError)")
    }

    @Test("resampling 8 kHz and 44.1 kHz sines to 16 kHz keeps frequency, phase and duration",
          arguments: [(8_000, 440.0), (44_100, 1_000.0), (22_050, 3_000.0)])
    func resamplingPreservesFrequency(sourceRate: Int, frequency: Double) throws {
        let folder = TemporaryFolder()
        let source = sine(frequency: frequency, seconds: 1, sampleRate: sourceRate, amplitude: 0.5)
        try folder.writeWAV("tone.wav", samples: source, sampleRate: sourceRate)
        let out = try readMonoAudio(path: folder.file("tone.wav"), sampleRate: 16_000)
        #expect(abs(out.count - 16_000) <= 2, "length \(out.count) for 1 s at 16 kHz")

        // The same number of cycles per second, and sample-for-sample the
        // ideal 16 kHz sine (no delay, no phase shift) away from the ends.
        let ideal = sine(frequency: frequency, seconds: 1, sampleRate: 16_000, amplitude: 0.5)
        let middle = 800 ..< min(out.count, ideal.count) - 800
        let crossings = upwardZeroCrossings(out[middle])
        let expectedCrossings = frequency * Double(middle.count) / 16_000
        #expect(abs(Double(crossings) - expectedCrossings) <= 1.5, "\(crossings) zero crossings, expected ≈ \(expectedCrossings)")
        var dot = 0.0, outEnergy = 0.0, idealEnergy = 0.0, maxError: Float = 0
        for i in middle {
            dot += Double(out[i]) * Double(ideal[i])
            outEnergy += Double(out[i] * out[i])
            idealEnergy += Double(ideal[i] * ideal[i])
            maxError = max(maxError, abs(out[i] - ideal[i]))
        }
        let correlation = dot / (outEnergy * idealEnergy).squareRoot()
        #expect(correlation > 0.9999, "correlation with the ideal sine \(correlation)")
        #expect(maxError < 0.005, "max deviation from the ideal sine \(maxError)")
    }

    @Test("resample() alone: ratio, identity, empty input")
    func resampleFunction() throws {
        let x = sine(frequency: 100, seconds: 0.25, sampleRate: 8_000)
        #expect(try resample(x, from: 8_000, to: 8_000) == x)
        #expect(try resample([], from: 8_000, to: 16_000).isEmpty)
        let up = try resample(x, from: 8_000, to: 48_000, quality: .fastest)
        #expect(abs(up.count - x.count * 6) <= 2)
        let down = try resample(x, from: 8_000, to: 4_000, quality: .best)
        #expect(abs(down.count - x.count / 2) <= 2)
    }

    @Test("writing is atomic, clips beyond ±1, writes NaN as 0, and overwrites")
    func writeBehaviour() throws {
        let folder = TemporaryFolder()
        let target = folder.file("out.wav")
        try writeWAV([0.5, 1.5, -1.5, .nan, -1, 1], sampleRate: 16_000, to: target)
        #expect(folder.entries() == ["out.wav"], "no temporary file left behind")
        #expect(try readMonoAudio(path: target) == [0.5, 32767.0 / 32768, -1, 0, -1, 32767.0 / 32768])

        try writeWAV([0.25], sampleRate: 8_000, to: target)
        #expect(try readMonoAudio(path: target) == [0.25])
        #expect(try audioFileInfo(path: target).sampleRate == 8_000)
        #expect(folder.entries() == ["out.wav"])
    }

    @Test("mu-law codes written as WAV decode to the bin centres")
    func muLawWAV() throws {
        let folder = TemporaryFolder()
        let codes: [Int32] = [0, 64, 127, 128, 200, 255]
        try writeMuLawWAV(codes: codes, sampleRate: 16_000, to: folder.file("codes.wav"))
        let back = try readMonoAudio(path: folder.file("codes.wav"))
        let expected = MuLaw.decode(codes)
        let maxError = zip(back, expected).map { abs($0 - $1) }.max()!
        #expect(back.count == codes.count)
        // Half a 16-bit step, except +1, which 16-bit PCM can only reach as 32767/32768.
        #expect(maxError <= 1.0 / 32768 + 1e-9, "max error \(maxError)")
        #expect(back.map { MuLaw.encode($0) } == codes.map { UInt8($0) })
    }

    @Test("writing into a missing folder is an error naming the file")
    func writeIntoMissingFolder() {
        let folder = TemporaryFolder()
        let target = folder.file("no/such/folder/out.wav")
        let error = audioError { () throws(AudioError) in try writeWAV([0.1], sampleRate: 16_000, to: target) }
        guard case let .writeFailed(path, _)? = error else {
            Issue.record("expected writeFailed, got \(String(describing: error))")
            return
        }
        #expect(path == target)
        #expect(error!.description.contains(target))
    }
}
