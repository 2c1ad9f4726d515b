import PBTFileSupport
import Foundation
import PBTSeededRNG

/// The input of `pbtwave bench corpus`: a folder of synthetic speech-like
/// recordings written by libsndfile (FLAC by default), and the timing of a
/// corpus build over it.
public enum CorpusBuildBenchmark {
    /// What the generated folder holds; written to its `.benchmark-input`
    /// marker so a folder made with other parameters is not reused.
    public struct Input: Sendable, Hashable, CustomStringConvertible {
        public var minutes: Double
        public var files: Int
        public var sampleRate: Int
        public var channels: Int
        public var format: AudioFileFormat

        public init(minutes: Double = 60, files: Int = 120, sampleRate: Int = 44_100, channels: Int = 2, format: AudioFileFormat = .flac16) {
            self.minutes = minutes
            self.files = files
            self.sampleRate = sampleRate
            self.channels = channels
            self.format = format
        }

        public var description: String {
            String(format: "%.1f minutes in %d %@ files, %d Hz, %d channels, synthetic speech-like (seeded)",
                   minutes, files, "\(format)", sampleRate, channels)
        }
    }

    /// Writes `input` under `folder` (as `speakerNN/speakerNN_MMM.<ext>`,
    /// `jobs` files at once), unless the folder already holds exactly that
    /// input. Returns whether it generated anything.
    ///
    /// The signal: syllables of 80–320 ms, voiced ones a glottal pulse train
    /// (f0 90–240 Hz with vibrato) through three formant resonators,
    /// unvoiced ones noise through one, pauses between; the right channel is
    /// a delayed, attenuated copy plus its own noise. It compresses in FLAC
    /// about as recorded speech does, which matters for the decoding time.
    @discardableResult
    public static func makeInput(_ input: Input, in folder: String, jobs: Int) throws(AudioError) -> Bool {
        precondition(input.files >= 1 && input.minutes > 0 && input.channels >= 1 && jobs >= 1)
        let marker = join(folder, ".benchmark-input")
        if let existing = FileManager.default.contents(atPath: marker), String(decoding: existing, as: UTF8.self) == input.description {
            return false
        }
        // Only a folder this function made (its marker) or an empty one is
        // ever cleared: --input may name the user's own audio by mistake.
        switch PathKind(of: folder) {
        case .missing: break
        case .file: throw AudioError.benchmarkInputInUse(path: folder, isFile: true)
        case .folder:
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            guard contents.isEmpty || FileManager.default.fileExists(atPath: marker) else {
                throw AudioError.benchmarkInputInUse(path: folder, isFile: false)
            }
        }
        do {
            try? FileManager.default.removeItem(atPath: folder)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw AudioError.writeFailed(path: folder, reason: "cannot create the folder")
        }
        let framesPerFile = Int(input.minutes * 60 * Double(input.sampleRate)) / input.files
        try forEachInParallel(input.files, threads: jobs) { (index) throws(AudioError) in
            let speaker = String(format: "speaker%02d", index % 12)
            let path = join(folder, "\(speaker)/\(speaker)_\(String(format: "%03d", index)).\(input.format.fileExtension)")
            try? FileManager.default.createDirectory(atPath: join(folder, speaker), withIntermediateDirectories: true)
            let audio = speechLike(frames: framesPerFile, sampleRate: input.sampleRate, channels: input.channels, seed: UInt64(index))
            try writeAudio(interleaved: audio, channels: input.channels, sampleRate: input.sampleRate, format: input.format, to: path)
        }
        if !FileManager.default.createFile(atPath: marker, contents: Data(input.description.utf8)) {
            throw AudioError.writeFailed(path: marker, reason: "cannot create the marker file")
        }
        return true
    }

    /// Interleaved speech-like audio (see ``makeInput(_:in:jobs:)``), deterministic in `seed`.
    static func speechLike(frames: Int, sampleRate: Int, channels: Int, seed: UInt64) -> [Float] {
        var rng = Xoshiro256(seed: seed &+ 0x5EED)
        var out = [Float](repeating: 0, count: frames * channels)
        let rate = Double(sampleRate)
        /// A two-pole resonator at `frequency` Hz with `bandwidth` Hz.
        struct Resonator {
            var a1 = 0.0, a2 = 0.0, gain = 0.0, y1 = 0.0, y2 = 0.0
            mutating func tune(_ frequency: Double, _ bandwidth: Double, rate: Double) {
                let r = exp(-Double.pi * bandwidth / rate)
                a1 = 2 * r * cos(2 * Double.pi * frequency / rate)
                a2 = -r * r
                gain = 1 - r
            }
            mutating func step(_ x: Double) -> Double {
                let y = gain * x + a1 * y1 + a2 * y2
                y2 = y1
                y1 = y
                return y
            }
        }
        var formants = [Resonator](repeating: Resonator(), count: 3)
        var hiss = Resonator()
        var delayLine = [Float](repeating: 0, count: 64)
        var position = 0
        var phase = 0.0
        while position < frames {
            let length = min(frames - position, Int(rate * (0.08 + 0.24 * rng.nextUnitDouble())))
            let kind = rng.next() % 8  // 0-4 voiced, 5-6 unvoiced, 7 pause
            let f0 = 90 + 150 * rng.nextUnitDouble()
            let loudness = 0.05 + 0.4 * rng.nextUnitDouble()
            for (k, centre) in [500.0, 1500.0, 2500.0].enumerated() {
                formants[k].tune(centre * (0.7 + 0.6 * rng.nextUnitDouble()), 80 + 60 * Double(k), rate: rate)
            }
            hiss.tune(3000 + 3000 * rng.nextUnitDouble(), 2000, rate: rate)
            for i in 0 ..< length {
                let t = Double(i) / Double(length)
                let envelope = loudness * sin(Double.pi * t)
                var x = 0.0
                switch kind {
                case 0 ... 4:
                    phase += (f0 * (1 + 0.03 * sin(2 * Double.pi * 5 * Double(position + i) / rate))) / rate
                    let pulse = phase >= 1 ? 1.0 : 0.0
                    if phase >= 1 { phase -= 1 }
                    let excitation = pulse * 40 + 0.02 * (rng.nextUnitDouble() - 0.5)
                    x = formants[0].step(excitation) + 0.5 * formants[1].step(excitation) + 0.25 * formants[2].step(excitation)
                case 5, 6:
                    x = 4 * hiss.step(rng.nextUnitDouble() - 0.5)
                default:
                    x = 0.002 * (rng.nextUnitDouble() - 0.5)
                }
                let left = Float(max(-0.99, min(0.99, envelope * x)))
                let frame = position + i
                out[frame * channels] = left
                if channels > 1 {
                    let delayed = delayLine[frame % delayLine.count]
                    delayLine[frame % delayLine.count] = left
                    for c in 1 ..< channels {
                        out[frame * channels + c] = 0.7 * delayed + 0.003 * Float(rng.nextUnitDouble() - 0.5)
                    }
                }
            }
            position += length
        }
        return out
    }
}

extension AudioFileFormat {
    /// The usual file name extension.
    public var fileExtension: String {
        switch self {
        case .wav16: "wav"
        case .flac16: "flac"
        case .aiff16: "aiff"
        case .oggVorbis: "ogg"
        case .opus: "opus"
        }
    }
}
