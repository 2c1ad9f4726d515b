import CPBTSndFile
import Foundation
import Synchronization

/// An open libsndfile handle. Owns the `SNDFILE*` and closes it in `deinit`
/// (or earlier, with ``close()``), so no path out of a reader or writer
/// (early return, thrown error) leaks it. Not `Sendable`: one thread uses a handle.
final class SoundFile {
    let path: String
    let info: SF_INFO
    private var handle: OpaquePointer?

    private init(path: String, info: SF_INFO, handle: OpaquePointer) {
        self.path = path
        self.info = info
        self.handle = handle
    }

    deinit { if let handle { sf_close(handle) } }

    /// Opens `path` for reading; libsndfile detects the format from the
    /// bytes, not the name.
    ///
    /// Throws ``AudioError/notAudio(path:reason:)`` when libsndfile
    /// recognises no format (a text file, random bytes, a 0-byte file) and
    /// ``AudioError/unreadable(path:reason:)`` when it recognises one but
    /// cannot parse it (a corrupt header).
    static func openForReading(_ path: String) throws(AudioError) -> SoundFile {
        // Our words for a file the system will not open (libsndfile's were "System error : Permission denied").
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let error = Errno.current
            if error.code == ENOENT { throw AudioError.fileNotFound(path: path) }
            throw AudioError.unreadable(path: path, reason: AudioError.cannotOpenReason + "\(error)")
        }
        Glibc.close(descriptor)
        var info = SF_INFO()
        let (handle, code, reason) = open(path, mode: Int32(SFM_READ), &info)
        guard let handle else {
            if code == Int32(SF_ERR_UNRECOGNISED_FORMAT) {
                throw AudioError.notAudio(path: path, reason: reason)
            }
            // A header with a sample rate (or channel count) of 0: libsndfile's own words were "Internal error : SF_INFO struct incomplete".
            if reason.contains("SF_INFO struct incomplete") {
                throw AudioError.unreadable(path: path, reason: "its header gives a rate or a channel count of 0, or one too large (2^31 or more, which libsndfile reads as below 0), so the file is damaged or mislabelled")
            }
            throw AudioError.unreadable(path: path, reason: reason)
        }
        return SoundFile(path: path, info: info, handle: handle)
    }

    /// Creates (or truncates) `path` for writing with the given layout.
    static func openForWriting(_ path: String, format: Int32, channels: Int, sampleRate: Int) throws(AudioError) -> SoundFile {
        var info = SF_INFO()
        info.format = format
        info.channels = Int32(channels)
        info.samplerate = Int32(sampleRate)
        guard sf_format_check(&info) != 0 else {
            throw AudioError.writeFailed(path: path, reason: "libsndfile cannot write this format (0x\(String(format, radix: 16)), \(channels) channels, \(sampleRate) Hz)")
        }
        let (handle, _, reason) = open(path, mode: Int32(SFM_WRITE), &info)
        guard let handle else { throw AudioError.writeFailed(path: path, reason: reason) }
        return SoundFile(path: path, info: info, handle: handle)
    }

    var frames: Int { Int(info.frames) }
    var channels: Int { Int(info.channels) }
    var sampleRate: Int { Int(info.samplerate) }
    var majorFormat: Int32 { info.format & Int32(SF_FORMAT_TYPEMASK) }
    var subtype: Int32 { info.format & Int32(SF_FORMAT_SUBMASK) }

    /// Reads up to `buffer.count / channels` interleaved frames as Float
    /// (integer formats normalised to [-1, 1)); returns the frames read.
    func readFrames(into buffer: UnsafeMutableBufferPointer<Float>) -> Int {
        let frames = buffer.count / channels
        guard frames > 0, let base = buffer.baseAddress, let handle else { return 0 }
        return Int(sf_readf_float(handle, base, sf_count_t(frames)))
    }

    /// Writes interleaved 16-bit frames; returns the frames written.
    func writeFrames(_ buffer: UnsafeBufferPointer<Int16>) -> Int {
        let frames = buffer.count / channels
        guard frames > 0, let base = buffer.baseAddress, let handle else { return 0 }
        return Int(sf_writef_short(handle, base, sf_count_t(frames)))
    }

    /// Closes the file now (a writer's header is finalised here). Returns
    /// libsndfile's error text when closing failed, nil when it succeeded.
    func close() -> String? {
        guard let open = handle else { return nil }
        handle = nil
        let status = sf_close(open)
        return status == 0 ? nil : cleanMessage(String(cString: sf_error_number(status)))
    }

    /// The last error on this handle, as libsndfile words it.
    var errorMessage: String { cleanMessage(String(cString: sf_strerror(handle))) }

    /// libsndfile's log for this file: header warnings such as a data chunk
    /// longer than the file.
    var log: String {
        guard let handle else { return "" }
        var bytes = [CChar](repeating: 0, count: 4096)
        let n = bytes.withUnsafeMutableBufferPointer { buffer in
            sf_command(handle, Int32(SFC_GET_LOG_INFO), buffer.baseAddress, Int32(buffer.count))
        }
        guard n > 0 else { return "" }
        return String(decoding: bytes.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "libsndfile-1.2.0": part of a corpus build's identity, since the
    /// library writes the WAV headers.
    static var version: String { String(cString: sf_version_string()) }

    /// libsndfile keeps the error of a failed `sf_open` in one global, so
    /// opens from several threads (a parallel corpus build) could read each
    /// other's: every open, and the reading of its error, holds this lock.
    private static let openLock = Mutex(())

    /// `sf_open`, with the error code and message of a failure read under
    /// the same lock.
    private static func open(_ path: String, mode: Int32, _ info: inout SF_INFO) -> (OpaquePointer?, Int32, String) {
        openLock.withLock { _ in
            guard let handle = sf_open(path, mode, &info) else {
                return (nil, sf_error(nil), cleanMessage(String(cString: sf_strerror(nil))))
            }
            return (handle, 0, "")
        }
    }
}

/// libsndfile's messages are sentences ("Format not recognised.") that
/// sometimes span lines; ours put them between colons, so the final period
/// and the line breaks go.
func cleanMessage(_ message: String) -> String {
    var words = message.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
        .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \t")) }
        .filter { !$0.isEmpty }
        .joined(separator: "; ")
    while let last = words.last, last == "." || last == " " { words.removeLast() }
    return words.isEmpty ? "no reason given" : words
}
