import CSndFile

/// An open libsndfile handle. Owns the `SNDFILE*` and closes it in `deinit`,
/// so no path out of a reader or writer (early return, thrown error) leaks it.
/// Not `Sendable`: one thread uses a handle.
final class SoundFile {
    let path: String
    let info: SF_INFO
    private let handle: OpaquePointer

    private init(path: String, info: SF_INFO, handle: OpaquePointer) {
        self.path = path
        self.info = info
        self.handle = handle
    }

    deinit { sf_close(handle) }

    /// Opens `path` for reading; libsndfile detects the format.
    static func openForReading(_ path: String) throws(AudioError) -> SoundFile {
        var info = SF_INFO()
        guard let handle = sf_open(path, Int32(SFM_READ), &info) else {
            throw AudioError.unreadable(path: path, reason: lastErrorMessage())
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
        guard let handle = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw AudioError.writeFailed(path: path, reason: lastErrorMessage())
        }
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
        guard frames > 0, let base = buffer.baseAddress else { return 0 }
        return Int(sf_readf_float(handle, base, sf_count_t(frames)))
    }

    /// Writes interleaved 16-bit frames; returns the frames written.
    func writeFrames(_ buffer: UnsafeBufferPointer<Int16>) -> Int {
        let frames = buffer.count / channels
        guard frames > 0, let base = buffer.baseAddress else { return 0 }
        return Int(sf_writef_short(handle, base, sf_count_t(frames)))
    }

    /// The last error on this handle, as libsndfile words it.
    var errorMessage: String { String(cString: sf_strerror(handle)) }

    /// libsndfile's log for this file: header warnings such as a data chunk
    /// longer than the file.
    var log: String {
        var bytes = [CChar](repeating: 0, count: 4096)
        let n = bytes.withUnsafeMutableBufferPointer { buffer in
            sf_command(handle, Int32(SFC_GET_LOG_INFO), buffer.baseAddress, Int32(buffer.count))
        }
        guard n > 0 else { return "" }
        return String(decoding: bytes.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The error of the last failed `sf_open` (libsndfile keeps it globally).
    private static func lastErrorMessage() -> String {
        String(cString: sf_strerror(nil))
    }
}
