import CSndFile
import FileSupport

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

    var libsndfileFormat: Int32 {
        switch self {
        case .wav16: Int32(SF_FORMAT_WAV) | Int32(SF_FORMAT_PCM_16)
        case .flac16: Int32(SF_FORMAT_FLAC) | Int32(SF_FORMAT_PCM_16)
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
    try checkExists(path)
    let file = try SoundFile.openForReading(path)
    return AudioFileInfo(frames: file.frames, channels: file.channels, sampleRate: file.sampleRate, format: file.info.format)
}

/// Reads any file libsndfile reads (WAV, FLAC, Ogg/Vorbis, AIFF, …) as mono
/// Float samples at `sampleRate` Hz.
///
/// - Integer formats come out in [-1, 1) (16-bit: `s / 32768`); float files
///   as stored.
/// - Several channels are mixed down to their average.
/// - When the file's rate differs from `sampleRate`, the audio is resampled
///   with libsamplerate (``resample(_:from:to:quality:)``); `nil` keeps the file's rate.
///
/// Throws ``AudioError`` naming `path` for a missing, unreadable (not audio,
/// corrupt, 0-byte), empty, truncated or non-finite file.
/// Complexity: O(frames × channels), one pass plus resampling.
public func readMonoAudio(path: String, sampleRate: Int? = nil) throws(AudioError) -> [Float] {
    let (mono, fileRate) = try decodeMono(path: path)
    guard let target = sampleRate, target != fileRate else { return mono }
    return try resample(mono, from: fileRate, to: target, path: path)
}

/// Decodes `path` to mono at its own rate; the checks of ``readMonoAudio(path:sampleRate:)``.
func decodeMono(path: String) throws(AudioError) -> (samples: [Float], sampleRate: Int) {
    try checkExists(path)
    let file = try SoundFile.openForReading(path)
    guard file.channels > 0, file.sampleRate > 0 else {
        throw AudioError.unreadable(path: path, reason: "header declares \(file.channels) channels at \(file.sampleRate) Hz")
    }
    guard file.frames > 0 else { throw AudioError.emptyAudio(path: path) }
    try checkDataLength(file)

    let channels = file.channels
    let expected = file.frames
    var mono = [Float]()
    mono.reserveCapacity(min(expected, 1 << 26))
    // Decode in blocks rather than trusting the header's frame count with one
    // allocation: a damaged header may claim far more frames than exist.
    let blockFrames = 65_536
    var block = [Float](repeating: 0, count: blockFrames * channels)
    while true {
        let read = block.withUnsafeMutableBufferPointer { file.readFrames(into: $0) }
        if read <= 0 { break }
        block.withUnsafeBufferPointer { interleaved in
            if channels == 1 {
                mono.append(contentsOf: interleaved[0 ..< read])
            } else {
                let scale = 1 / Float(channels)
                for frame in 0 ..< read {
                    var sum: Float = 0
                    for c in 0 ..< channels { sum += interleaved[frame * channels + c] }
                    mono.append(sum * scale)
                }
            }
        }
    }
    if mono.count < expected {
        throw AudioError.truncated(path: path, expectedFrames: expected, readFrames: mono.count)
    }
    if mono.isEmpty { throw AudioError.emptyAudio(path: path) }
    for x in mono where !x.isFinite { throw AudioError.nonFiniteSamples(path: path) }
    return (mono, file.sampleRate)
}

/// ``resample(_:from:to:quality:)`` with errors naming `path`.
func resample(_ samples: [Float], from: Int, to: Int, path: String) throws(AudioError) -> [Float] {
    do throws(AudioError) {
        return try resample(samples, from: from, to: to)
    } catch let AudioError.resampleFailed(_, from, to, reason) {
        throw AudioError.resampleFailed(path: path, fromRate: from, toRate: to, reason: reason)
    }
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
    let temporary = AtomicFile.temporaryPath(for: path)
    do throws(AudioError) {
        let file = try SoundFile.openForWriting(temporary, format: format.libsndfileFormat, channels: channels, sampleRate: sampleRate)
        var pcm = [Int16](repeating: 0, count: samples.count)
        for i in samples.indices { pcm[i] = pcm16(samples[i]) }
        let written = pcm.withUnsafeBufferPointer { file.writeFrames($0) }
        if written != samples.count / channels {
            throw AudioError.writeFailed(path: path, reason: "wrote \(written) of \(samples.count / channels) frames: \(file.errorMessage)")
        }
        // `file` is closed (header finalised) when it goes out of scope here.
    } catch {
        _ = unlink(temporary)
        if case let .writeFailed(_, reason) = error { throw AudioError.writeFailed(path: path, reason: reason) }
        throw error
    }
    if rename(temporary, path) != 0 {
        let reason = String(cString: strerror(errno))
        _ = unlink(temporary)
        throw AudioError.writeFailed(path: path, reason: reason)
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

func checkExists(_ path: String) throws(AudioError) {
    var status = stat()
    guard stat(path, &status) == 0 else { throw AudioError.fileNotFound(path: path) }
    if (status.st_mode & S_IFMT) == S_IFDIR {
        throw AudioError.unreadable(path: path, reason: "it is a folder, not a file")
    }
}

/// libsndfile accepts a WAV/AIFF whose data chunk runs past the end of the
/// file (a cut-off copy): it logs `data : 32000 (should be 19956)` and reads
/// what is there. We call that truncation. A size of 0xFFFFFFFF (or 0) is
/// the "unknown length" of a WAV streamed through a pipe, not truncation.
private func checkDataLength(_ file: SoundFile) throws(AudioError) {
    let major = file.majorFormat
    guard major == Int32(SF_FORMAT_WAV) || major == Int32(SF_FORMAT_WAVEX)
        || major == Int32(SF_FORMAT_AIFF) || major == Int32(SF_FORMAT_RF64) else { return }
    for line in file.log.split(separator: "\n") {
        let trimmed = line.drop(while: { $0 == " " })
        guard trimmed.hasPrefix("data") || trimmed.hasPrefix("SSND"),
              let colon = trimmed.firstIndex(of: ":"),
              let should = trimmed.range(of: "(should be ") else { continue }
        let declaredText = trimmed[trimmed.index(after: colon)...].drop(while: { $0 == " " }).prefix(while: \.isNumber)
        let actualText = trimmed[should.upperBound...].prefix(while: \.isNumber)
        guard let declared = Int(declaredText), let actual = Int(actualText),
              declared > actual, declared != 0xFFFF_FFFF else { continue }
        let bytesPerFrame = max(1, bytesPerSample(file.subtype) * file.channels)
        throw AudioError.truncated(path: file.path, expectedFrames: declared / bytesPerFrame, readFrames: file.frames)
    }
}

private func bytesPerSample(_ subtype: Int32) -> Int {
    switch subtype {
    case Int32(SF_FORMAT_PCM_S8), Int32(SF_FORMAT_PCM_U8), Int32(SF_FORMAT_ULAW), Int32(SF_FORMAT_ALAW): 1
    case Int32(SF_FORMAT_PCM_16): 2
    case Int32(SF_FORMAT_PCM_24): 3
    case Int32(SF_FORMAT_PCM_32), Int32(SF_FORMAT_FLOAT): 4
    case Int32(SF_FORMAT_DOUBLE): 8
    default: 2
    }
}

