import CPBTSndFile
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds on what an audio file may claim, so a damaged or hostile header
/// gets a clear error instead of a huge allocation.
public enum AudioLimits {
    /// Sample rates a header may claim. Every real recording lies within
    /// (8 kHz telephony … 768 kHz studio PCM); a rate outside (a WAV "at
    /// 1 Hz") means the header is damaged.
    public static let sampleRates: ClosedRange<Int> = 1_000 ... 768_000

    /// Samples a whole-file load (``readMonoAudio(path:sampleRate:maximumSamples:)``)
    /// holds by default, before and after resampling: 2^30, 4 GiB of Float,
    /// 18.6 hours at 16 kHz. Streaming consumers (`pbtwave corpus build`)
    /// have no such bound; they hold one block at a time.
    public static let defaultMaximumSamples = 1 << 30
}

/// Decodes an audio file block by block, mixed down to mono at the file's
/// own rate: the one reading path under ``readMonoAudio(path:sampleRate:maximumSamples:)``,
/// corpus loading and corpus building.
///
/// - Integer formats come out in [-1, 1) (16-bit: `s / 32768`); float files as stored.
/// - Several channels are averaged.
/// - Memory: one interleaved block of at most ``blockSamples`` samples and
///   one mono block, whatever the header claims (up to libsndfile's 1024
///   channels).
///
/// Every check throws ``AudioError`` naming the file: missing, a folder,
/// 0 bytes or no frames (``AudioError/emptyAudio(path:)``), not audio,
/// unreadable (corrupt header, a sample rate outside ``AudioLimits/sampleRates``),
/// truncated (fewer frames than the header announces), NaN or infinite samples.
final class MonoDecoder {
    /// Interleaved samples decoded per block.
    static let blockSamples = 65_536

    let path: String
    let sampleRate: Int
    let channels: Int
    /// The frame count the header announces, nil when libsndfile cannot
    /// know it (a stream).
    let declaredFrames: Int?
    /// Frames in one mono block: what ``next()`` returns at most.
    let blockFrames: Int
    private let file: SoundFile
    private var interleaved: [Float]
    private var mono: [Float]
    private(set) var framesRead = 0

    init(path: String) throws(AudioError) {
        let bytes = try regularFileSize(path)
        guard bytes > 0 else { throw AudioError.emptyAudio(path: path) }
        file = try SoundFile.openForReading(path)
        self.path = path
        channels = file.channels
        sampleRate = file.sampleRate
        guard channels > 0 else {
            throw AudioError.unreadable(path: path, reason: "its header declares \(channels) channels")
        }
        guard AudioLimits.sampleRates.contains(sampleRate) else {
            throw AudioError.unreadable(path: path, reason: "its header claims a sample rate of \(sampleRate) Hz, outside the \(AudioLimits.sampleRates.lowerBound)–\(AudioLimits.sampleRates.upperBound) Hz of real audio, so the file is damaged or mislabelled")
        }
        // libsndfile reports SF_COUNT_MAX for a length it cannot know.
        declaredFrames = file.frames >= Int(Int64.max / 2) ? nil : file.frames
        try checkDataLength(file)
        try checkOggChain(file)
        guard declaredFrames != 0 else { throw AudioError.emptyAudio(path: path) }
        blockFrames = max(1, Self.blockSamples / channels)
        interleaved = [Float](repeating: 0, count: blockFrames * channels)
        mono = channels == 1 ? [] : [Float](repeating: 0, count: blockFrames)
    }

    /// Decodes the next block and passes it, mono, to `body`; returns false
    /// (without calling `body`) at the end of the file, after checking that
    /// the file held every frame its header announced and at least one.
    func next(_ body: (UnsafeBufferPointer<Float>) throws(AudioError) -> Void) throws(AudioError) -> Bool {
        let read = interleaved.withUnsafeMutableBufferPointer { file.readFrames(into: $0) }
        guard read > 0 else {
            if let declaredFrames, framesRead < declaredFrames {
                throw AudioError.truncated(path: path, expectedFrames: declaredFrames, readFrames: framesRead)
            }
            if framesRead == 0 { throw AudioError.emptyAudio(path: path) }
            return false
        }
        framesRead += read
        if channels > 1 {
            let channels = channels
            interleaved.withUnsafeBufferPointer { block in
                mono.withUnsafeMutableBufferPointer { out in
                    let scale = 1 / Float(channels)
                    for frame in 0 ..< read {
                        var sum: Float = 0
                        for c in 0 ..< channels { sum += block[frame * channels + c] }
                        out[frame] = sum * scale
                    }
                }
            }
        }
        try (channels == 1 ? interleaved : mono).withUnsafeBufferPointer { block throws(AudioError) in
            let samples = UnsafeBufferPointer(rebasing: block[0 ..< read])
            for x in samples where !x.isFinite { throw AudioError.nonFiniteSamples(path: path) }
            try body(samples)
        }
        return true
    }
}

/// The size of the regular file at `path`; throws
/// ``AudioError/fileNotFound(path:)`` or, for a folder or device,
/// ``AudioError/unreadable(path:reason:)``.
func regularFileSize(_ path: String) throws(AudioError) -> Int {
    var status = stat()
    guard stat(path, &status) == 0 else { throw AudioError.fileNotFound(path: path) }
    switch status.st_mode & S_IFMT {
    case S_IFREG: return Int(status.st_size)
    case S_IFDIR: throw AudioError.unreadable(path: path, reason: "it is a folder, not a file")
    default: throw AudioError.unreadable(path: path, reason: "it is not a regular file")
    }
}

/// libsndfile accepts a WAV/AIFF whose data chunk runs past the end of the
/// file (a cut-off copy): it logs `data : 32000 (should be 19956)` and reads
/// what is there. We call that truncation. A size of 0xFFFFFFFF is the
/// "unknown length" of a WAV streamed through a pipe, and 0x7FFFFFFF that of
/// a recorder that never finished its header (`arecord` killed mid-take):
/// neither is truncation, and what is there is read. A size of 0 with audio
/// after it (a header never written) is refused with how to repair it:
/// libsndfile reads no samples from it.
private func checkDataLength(_ file: SoundFile) throws(AudioError) {
    let major = file.majorFormat
    guard major == Int32(SF_FORMAT_WAV) || major == Int32(SF_FORMAT_WAVEX)
        || major == Int32(SF_FORMAT_AIFF) || major == Int32(SF_FORMAT_RF64) else { return }
    let log = file.log.split(separator: "\n")
    // A data size of 0 with bytes after it: libsndfile logs `data : 0`, then
    // parses those bytes as a chunk and stops ("Unknown chunk marker … at
    // position P"), reading no samples.
    if let zero = log.firstIndex(where: { $0.drop(while: { $0 == " " }) == "data : 0" }),
       let next = log.dropFirst(zero + 1).first, next.contains("Unknown chunk marker"),
       let at = next.range(of: "at position "), let position = Int(next[at.upperBound...].prefix(while: \.isNumber)),
       let lengthLine = log.first(where: { $0.hasPrefix("Length : ") }), let length = Int(lengthLine.dropFirst("Length : ".count)),
       length > position {
        throw AudioError.unreadable(path: file.path, reason: "its header announces no samples, but \(length - position) bytes follow it "
            + "(a recording whose header was never finished): save it again with its length, e.g. `ffmpeg -i FILE fixed.wav`")
    }
    for line in log {
        let trimmed = line.drop(while: { $0 == " " })
        guard trimmed.hasPrefix("data") || trimmed.hasPrefix("SSND"),
              let colon = trimmed.firstIndex(of: ":"),
              let should = trimmed.range(of: "(should be ") else { continue }
        let declaredText = trimmed[trimmed.index(after: colon)...].drop(while: { $0 == " " }).prefix(while: \.isNumber)
        let actualText = trimmed[should.upperBound...].prefix(while: \.isNumber)
        guard let declared = Int(declaredText), let actual = Int(actualText),
              declared > actual, declared != 0xFFFF_FFFF, declared != 0x7FFF_FFFF else { continue }
        let bytesPerFrame = max(1, bytesPerSample(file.subtype) * file.channels)
        throw AudioError.truncated(path: file.path, expectedFrames: declared / bytesPerFrame, readFrames: file.frames)
    }
}

/// libsndfile reads the first logical stream of an Ogg file; a chained
/// file (streams one after another, as `cat a.ogg b.ogg` makes) lost the
/// rest without a word (found by a helper: 2 s of 5 kept). Walks the pages'
/// headers and refuses a stream that begins after another one's pages.
private func checkOggChain(_ file: SoundFile) throws(AudioError) {
    guard file.majorFormat == Int32(SF_FORMAT_OGG), let handle = FileHandle(forReadingAtPath: file.path) else { return }
    defer { try? handle.close() }
    // Streams multiplexed together all begin before any page of their data.
    var offset: UInt64 = 0, pastTheStart = false
    while (try? handle.seek(toOffset: offset)) != nil, let header = try? handle.read(upToCount: 27), header.count == 27,
          header.starts(with: Array("OggS".utf8)) {
        let bytes = [UInt8](header)
        if bytes[5] & 0x02 == 0 {
            pastTheStart = true
        } else if pastTheStart {
            throw AudioError.unreadable(path: file.path, reason: "a chained Ogg file (a stream begins after another ends, as `cat a.ogg b.ogg` makes), "
                + "of which libsndfile reads the first alone: convert it whole first, e.g. `ffmpeg -i FILE whole.flac`")
        }
        guard let table = try? handle.read(upToCount: Int(bytes[26])), table.count == Int(bytes[26]) else { return }
        offset += 27 + UInt64(table.count) + table.reduce(0) { $0 + UInt64($1) }
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
