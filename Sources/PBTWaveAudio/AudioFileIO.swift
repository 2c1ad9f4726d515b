import CPBTSndFile
import PBTFileSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a file holds, before any conversion.
public struct AudioFileInfo: Sendable, Hashable {
    public var frames: Int
    public var channels: Int
    public var sampleRate: Int
    /// libsndfile's format word (major format | subtype).
    public var format: Int32
    public var seconds: Double { sampleRate > 0 ? Double(frames) / Double(sampleRate) : 0 }
}

/// Formats ``writeAudio(interleaved:channels:sampleRate:format:to:)`` writes.
public enum AudioFileFormat: Sendable, Hashable, CaseIterable {
    /// RIFF WAV, 16-bit signed PCM.
    case wav16
    /// FLAC, 16-bit.
    case flac16
    /// AIFF, 16-bit signed PCM.
    case aiff16
    /// Ogg/Vorbis (lossy).
    case oggVorbis
    /// Ogg/Opus (lossy; 8, 12, 16, 24 or 48 kHz only), where libsndfile has it.
    case opus

    var libsndfileFormat: Int32 {
        switch self {
        case .wav16: Int32(SF_FORMAT_WAV) | Int32(SF_FORMAT_PCM_16)
        case .flac16: Int32(SF_FORMAT_FLAC) | Int32(SF_FORMAT_PCM_16)
        case .aiff16: Int32(SF_FORMAT_AIFF) | Int32(SF_FORMAT_PCM_16)
        case .oggVorbis: Int32(SF_FORMAT_OGG) | Int32(SF_FORMAT_VORBIS)
        case .opus: Int32(SF_FORMAT_OGG) | Int32(SF_FORMAT_OPUS)
        }
    }

    /// Whether the installed libsndfile can write this format.
    public var isSupported: Bool {
        var info = SF_INFO()
        info.format = libsndfileFormat
        info.channels = 1
        info.samplerate = 16_000
        return sf_format_check(&info) != 0
    }
}

/// Reads the header of `path` without decoding the audio.
public func audioFileInfo(path: String) throws(AudioError) -> AudioFileInfo {
    _ = try regularFileSize(path)
    let file = try SoundFile.openForReading(path)
    return AudioFileInfo(frames: file.frames, channels: file.channels, sampleRate: file.sampleRate, format: file.info.format)
}

/// Reads any file libsndfile reads (WAV, FLAC, Ogg/Vorbis, Opus, AIFF, …) as
/// mono Float samples at `sampleRate` Hz.
///
/// - Integer formats come out in [-1, 1) (16-bit: `s / 32768`); float files
///   as stored.
/// - Several channels are mixed down to their average.
/// - When the file's rate differs from `sampleRate`, the audio is resampled
///   with libsamplerate (``resample(_:from:to:quality:)``); `nil` keeps the file's rate.
///
/// Throws ``AudioError`` naming `path` for a missing, unreadable (corrupt,
/// a sample rate outside ``AudioLimits/sampleRates``), not-audio, empty,
/// truncated or non-finite file, and ``AudioError/tooLong(path:samples:limit:)``
/// when the file, or its resampled audio, would exceed `maximumSamples`.
///
/// Memory: at most `maximumSamples` Floats for the decoded audio (its
/// array may reserve up to twice that as it grows), as many again for the
/// resampled copy, and two blocks of 256 KiB, whatever the header claims.
/// Complexity: O(frames × channels), one pass plus resampling.
public func readMonoAudio(
    path: String, sampleRate: Int? = nil, quality: ResamplingQuality = .loadingDefault, maximumSamples: Int = AudioLimits.defaultMaximumSamples
) throws(AudioError) -> [Float] {
    let (mono, fileRate) = try decodeMono(path: path, maximumSamples: maximumSamples)
    guard let target = sampleRate, target != fileRate else { return mono }
    return try resample(mono, from: fileRate, to: target, quality: quality, path: path, maximumSamples: maximumSamples)
}

/// Decodes `path` whole, to mono at its own rate (see ``MonoDecoder``).
func decodeMono(path: String, maximumSamples: Int = AudioLimits.defaultMaximumSamples) throws(AudioError) -> (samples: [Float], sampleRate: Int) {
    let decoder = try MonoDecoder(path: path)
    if let declared = decoder.declaredFrames, declared > maximumSamples {
        throw AudioError.tooLong(path: path, samples: declared, limit: maximumSamples)
    }
    var mono = [Float]()
    // A damaged header may claim far more frames than exist: reserve what
    // it claims only up to a block's worth of megabytes, then grow.
    mono.reserveCapacity(min(decoder.declaredFrames ?? 0, 1 << 20))
    while try decoder.next({ (block) throws(AudioError) in
        guard mono.count + block.count <= maximumSamples else {
            throw AudioError.tooLong(path: path, samples: mono.count + block.count, limit: maximumSamples)
        }
        mono.append(contentsOf: block)
    }) {}
    return (mono, decoder.sampleRate)
}

/// Writes interleaved Float frames as 16-bit PCM in `format`, atomically: to
/// a temporary file in the same folder, then renamed over `path`, so readers
/// never see a half-written file.
///
/// Samples are scaled by 32768, rounded to nearest and clamped to
/// [-32768, 32767], the exact inverse of reading (`s / 32768`); values
/// beyond ±1 clip; NaN is written as 0.
public func writeAudio(
    interleaved samples: [Float], channels: Int, sampleRate: Int,
    format: AudioFileFormat = .wav16, to path: String
) throws(AudioError) {
    precondition(channels > 0, "channels must be positive")
    precondition(sampleRate > 0, "sampleRate must be positive")
    precondition(samples.count % channels == 0, "interleaved sample count must be a multiple of channels")
    let writer = try PCM16FileWriter(path: path, format: format, channels: channels, sampleRate: sampleRate)
    try samples.withUnsafeBufferPointer { buffer throws(AudioError) in try writer.write(buffer) }
    try writer.commit()
}

/// How loud a 16-bit file is: its largest sample magnitude (0 to 32768)
/// and how many samples lie at full scale (±32767 or −32768, where
/// clipping piles them up).
struct SampleLevels: Sendable, Hashable {
    var peak: Int
    var fullScale: Int
    /// The one value of a file whose every sample is the same (0 for
    /// digital silence, else a constant offset); nil once two differ, and
    /// in a journal's line (a kept file varies).
    var constantValue: Int? = nil

    /// The peak in dB relative to full scale (−∞ for silence).
    var peakDBFS: Double { 20 * log10(Double(peak) / 32768) }
}

/// A 16-bit PCM file written block by block to a temporary file beside its
/// destination, renamed into place by ``commit()``; dropped without a
/// commit, the temporary file is removed. Memory: one conversion block.
final class PCM16FileWriter {
    let path: String
    let temporaryPath: String
    let channels: Int
    private let file: SoundFile
    private var pcm = [Int16](repeating: 0, count: 16_384)
    private(set) var framesWritten = 0
    /// The loudest sample written and the samples at full scale.
    private(set) var levels = SampleLevels(peak: 0, fullScale: 0, constantValue: 0)
    private var firstValue: Int16?
    private var committed = false

    /// Creates the temporary file: `temporaryPath`, or a fresh hidden name
    /// beside `path` (``AtomicFile/temporaryPath(for:)``).
    init(path: String, temporaryPath: String? = nil, format: AudioFileFormat, channels: Int, sampleRate: Int) throws(AudioError) {
        // A link's target, and never a device, pipe or folder (renamed over, it would be replaced).
        do throws(AtomicFileError) { self.path = try AtomicFile.destination(for: path) } catch {
            throw AudioError.writeFailed(path: path, reason: error.reason)
        }
        self.temporaryPath = temporaryPath ?? AtomicFile.temporaryPath(for: self.path)
        self.channels = channels
        do throws(AudioError) {
            file = try SoundFile.openForWriting(self.temporaryPath, format: format.libsndfileFormat, channels: channels, sampleRate: sampleRate)
        } catch {
            if case let .writeFailed(_, reason) = error { throw AudioError.writeFailed(path: path, reason: reason) }
            throw error
        }
    }

    deinit {
        if !committed {
            _ = file.close()
            _ = unlink(temporaryPath)
        }
    }

    /// Appends interleaved samples (a whole number of frames).
    func write(_ samples: UnsafeBufferPointer<Float>) throws(AudioError) {
        precondition(samples.count % channels == 0, "interleaved sample count must be a multiple of channels")
        var start = 0
        while start < samples.count {
            let count = min(pcm.count - pcm.count % channels, samples.count - start)
            let written = pcm.withUnsafeMutableBufferPointer { out in
                var (peak, fullScale) = (levels.peak, levels.fullScale)
                if count > 0 && firstValue == nil { firstValue = pcm16(samples[start]) }
                let first = firstValue ?? 0
                var varies = levels.constantValue == nil
                for i in 0 ..< count {
                    let value = pcm16(samples[start + i])
                    out[i] = value
                    let magnitude = Int(value.magnitude)
                    peak = max(peak, magnitude)
                    if magnitude >= Int(Int16.max) { fullScale += 1 }
                    varies = varies || value != first
                }
                levels = SampleLevels(peak: peak, fullScale: fullScale, constantValue: varies ? nil : Int(first))
                return file.writeFrames(UnsafeBufferPointer(rebasing: out[0 ..< count]))
            }
            framesWritten += written
            if written != count / channels {
                throw AudioError.writeFailed(path: path, reason: "wrote \(framesWritten) frames, then: \(file.errorMessage)")
            }
            start += count
        }
    }

    /// Finalises the header and renames the file into place.
    func commit() throws(AudioError) {
        precondition(!committed, "commit() called twice")
        if let failure = file.close() {
            throw AudioError.writeFailed(path: path, reason: failure)
        }
        AtomicFile.keepPermissions(of: path, on: temporaryPath)
        if rename(temporaryPath, path) != 0 {
            throw AudioError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        committed = true
    }
}

/// Writes mono Float samples as a 16-bit PCM WAV file, atomically
/// (see ``writeAudio(interleaved:channels:sampleRate:format:to:)``).
public func writeWAV(_ samples: [Float], sampleRate: Int, to path: String) throws(AudioError) {
    try writeAudio(interleaved: samples, channels: 1, sampleRate: sampleRate, format: .wav16, to: path)
}

/// Decodes mu-law codes (0…255) and writes them as a 16-bit mono WAV file,
/// atomically. Traps on a code outside 0…255 (a programming error).
public func writeMuLawWAV(codes: [Int32], sampleRate: Int, to path: String) throws(AudioError) {
    var samples = [Float](repeating: 0, count: codes.count)
    codes.withUnsafeBufferPointer { c in
        samples.withUnsafeMutableBufferPointer { s in MuLaw.decode(c, into: s) }
    }
    try writeWAV(samples, sampleRate: sampleRate, to: path)
}

// MARK: - Helpers

@inline(__always)
func pcm16(_ x: Float) -> Int16 {
    guard !x.isNaN else { return 0 }
    let scaled = (x * 32768).rounded(.toNearestOrEven)
    return Int16(min(max(scaled, -32768), 32767))
}
