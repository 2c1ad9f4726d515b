import PBTFileSupport
import Foundation
import PBTSeededRNG
import PBTWaveTensor

/// What a checkpoint holds besides the three float arenas.
public struct CheckpointHeader: Codable, Sendable, Equatable {
    public var config: WaveNetConfig
    /// Optimizer steps taken (the model's own iteration).
    public var step: Int
    public var adam: AdamConfig
    /// The training-data generator, so a resumed run draws the same windows.
    public var dataRNG: Xoshiro256?
    /// Floats per arena (parameters, Adam m, Adam v).
    public var floatCount: Int
    /// Names and shapes of the parameter tensors, in arena order.
    public var tensors: [String]
    /// Free-form facts (training options, trial id, …).
    public var metadata: [String: String]
    /// The precision the model trains in; absent (nil) means fp32, as in
    /// every version-1 checkpoint.
    public var precision: Precision?
}

/// The versioned binary checkpoint format.
///
/// ```
/// "PBTWAVE\0"                 8 bytes magic
/// version                     UInt32 little-endian (1; 2 when the header
///                             names a precision other than fp32, so that a
///                             build that cannot train in it refuses the file)
/// header length H             UInt32 little-endian
/// header                      H bytes of JSON (CheckpointHeader)
/// parameters, Adam m, Adam v  3 × floatCount Float32 little-endian
/// SHA-256 of all of the above 32 bytes
/// ```
/// Written atomically: to a temporary file in the same directory, flushed to
/// disk, then renamed over the destination, so a reader (or a crash) never
/// sees half a checkpoint.
public enum CheckpointFile {
    public static let magic: [UInt8] = Array("PBTWAVE".utf8) + [0]
    /// The newest version this build writes and reads (it reads 1 too).
    public static let version: UInt32 = 2

    /// Serialises `model` (+ `dataRNG`, `metadata`) and writes it atomically.
    /// Refuses a model with a non-finite parameter or Adam moment (a
    /// diverged run; `decode` refuses them too), so a checkpoint never holds one.
    public static func write(
        _ model: WaveNet, dataRNG: Xoshiro256?, metadata: [String: String] = [:], to path: String
    ) throws(WaveNetError) {
        let bytes = try encode(model, dataRNG: dataRNG, metadata: metadata, path: path)
        do { try AtomicFile.write(bytes, toPath: path, durable: true) } catch { throw .checkpoint(path: path, reason: error.reason) }
    }

    /// The bytes `write` would write (`path` only names the file in
    /// errors), for a caller that writes them itself and needs the write's
    /// own error (e.g. to tell a full disk from other failures).
    public static func encode(
        _ model: WaveNet, dataRNG: Xoshiro256?, metadata: [String: String] = [:], path: String
    ) throws(WaveNetError) -> [UInt8] {
        guard model.stateIsFinite else {
            throw .checkpoint(path: path, reason: "not written: the model's weights or optimizer state hold non-finite values (training diverged)")
        }
        let header = CheckpointHeader(
            config: model.config, step: model.step, adam: model.adamConfig, dataRNG: dataRNG,
            floatCount: model.layout.count, tensors: model.layout.entries.map { "\($0.name)\($0.shape)" }, metadata: metadata,
            precision: model.precision == .fp32 ? nil : model.precision)
        let headerBytes: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            headerBytes = try encoder.encode(header)
        } catch {
            throw .checkpoint(path: path, reason: "could not encode the header: \(error)")
        }
        var bytes = [UInt8]()
        let floats = model.layout.count
        bytes.reserveCapacity(16 + headerBytes.count + 3 * floats * 4 + 32)
        bytes += magic
        appendLE(&bytes, header.precision == nil ? 1 : version)
        appendLE(&bytes, UInt32(headerBytes.count))
        bytes += headerBytes
        for arena in [model.parameters, model.adamM, model.adamV] {
            arena.storage.withUnsafeBufferPointer { buf in
                #if _endian(little)
                bytes.append(contentsOf: UnsafeRawBufferPointer(buf))
                #else
                for f in buf { appendLE(&bytes, f.bitPattern) }
                #endif
            }
        }
        let digest = bytes.withUnsafeBytes { SHA256Digest.digest(of: $0) }
        bytes += digest
        return bytes
    }

    /// Reads and verifies a checkpoint: magic, version, checksum and shapes.
    /// Returns the header and the three arenas' floats.
    public static func read(from path: String) throws(WaveNetError) -> (header: CheckpointHeader, floats: [Float]) {
        // A pipe too (`generate <(…)`); a failure says why (it guessed "permissions?" for a pipe, found by a helper).
        // Not a device: /dev/zero would be read for ever.
        var info = stat()
        if stat(path, &info) == 0, [S_IFCHR, S_IFBLK].contains(info.st_mode & S_IFMT) {
            throw .checkpoint(path: path, reason: "it is a device, not a checkpoint file")
        }
        let data: Data
        do throws(SmallFile.Failure) { data = try SmallFile.read(path, limit: Int.max) } catch {
            let reason = switch PathKind(of: path) {
            case .missing: "no such file"
            case .folder: "it is a folder, not a checkpoint file"
            case .file: "cannot be read: \(error.reason)"
            }
            throw .checkpoint(path: path, reason: reason)
        }
        return try decode([UInt8](data), path: path)
    }

    /// `read` on bytes already in memory (`path` names them in errors).
    /// Every field is checked before it is used, so any bytes at all give a
    /// checkpoint or an error, never a trap; the only allocation is the
    /// floats, which must fit in `bytes` (at most `bytes.count / 4` of them).
    public static func decode(_ bytes: [UInt8], path: String) throws(WaveNetError) -> (header: CheckpointHeader, floats: [Float]) {
        func fail(_ reason: String) -> WaveNetError { .checkpoint(path: path, reason: reason) }
        guard bytes.count >= 16 + 32 else { throw fail("too short to be a PBTWave checkpoint (\(bytes.count) bytes; truncated?)") }
        guard Array(bytes[0..<8]) == magic else { throw fail("not a PBTWave checkpoint (wrong magic bytes)") }
        let version = readLE(bytes, at: 8)
        guard version == 1 || version == Self.version else {
            throw fail("format version \(version) is not supported (this build reads versions 1 and \(Self.version))")
        }
        let body = bytes.count - 32
        let expected = Array(bytes[body...])
        let actual = bytes.withUnsafeBytes { SHA256Digest.digest(of: UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard actual == expected else { throw fail("checksum mismatch: the file is damaged or was truncated") }
        let headerLength = Int(readLE(bytes, at: 12))
        guard headerLength <= body - 16 else { throw fail("header length \(headerLength) runs past the end of the file") }
        let header: CheckpointHeader
        do {
            header = try JSONDecoder().decode(CheckpointHeader.self, from: Data(bytes[16..<(16 + headerLength)]))
        } catch {
            throw fail("unreadable header: \(DecodingErrorText.sentence(for: error, data: Data(bytes[16..<(16 + headerLength)])))")
        }
        guard header.adam.isValid else {
            throw fail("the header's Adam settings are invalid (beta1 \(header.adam.beta1), beta2 \(header.adam.beta2), epsilon \(header.adam.epsilon); "
                       + "betas must lie in [0, 1), epsilon must be positive)")
        }
        guard version == 2 || header.precision == nil else {
            throw fail("a version-1 checkpoint cannot name a precision (its header says \(header.precision!))")
        }
        // The header is input: its config is checked (bounded sizes) and its
        // float count must be the config's, and fit the file, before anything
        // is allocated.
        do { try header.config.validate() } catch { throw fail("the header's model is invalid: \(error)") }
        guard header.step >= 0, header.step <= 1 << 40 else { throw fail("the header's step \(header.step) is out of range") }
        let expectedFloats = WaveNet.makeLayout(header.config).count
        guard header.floatCount == expectedFloats else {
            throw fail("the header promises \(header.floatCount) floats per arena, its model has \(expectedFloats)")
        }
        let payload = body - 16 - headerLength
        guard payload == 3 * 4 * header.floatCount else {
            throw fail("payload holds \(payload) bytes, the header promises \(3 * 4 * header.floatCount)")
        }
        var floats = [Float](repeating: 0, count: 3 * header.floatCount)
        let start = 16 + headerLength
        #if _endian(little)
        floats.withUnsafeMutableBytes { out in
            bytes.withUnsafeBytes { raw in out.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[start..<body])) }
        }
        #else
        for i in floats.indices { floats[i] = Float(bitPattern: readLE(bytes, at: start + 4 * i)) }
        #endif
        // A model with a NaN or infinity scores nan, trains nan and generates
        // noise: refuse it here, for every reader.
        if let bad = floats.firstIndex(where: { !$0.isFinite }) {
            let arena = ["parameters", "Adam first moments", "Adam second moments"][bad / header.floatCount]
            throw fail("holds a non-finite value (\(floats[bad]) in its \(arena)); it is damaged or from a diverged run, and cannot be used")
        }
        // Adam's second moments are averages of squares: a negative one
        // makes the next step's square root nan (a resume would train nan).
        if let bad = floats[(2 * header.floatCount)...].firstIndex(where: { $0 < 0 }) {
            throw fail("holds a negative Adam second moment (\(floats[bad]), which is an average of squares); it is damaged, and cannot be used")
        }
        return (header, floats)
    }

    static func appendLE(_ bytes: inout [UInt8], _ v: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: v))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v >> 16))
        bytes.append(UInt8(truncatingIfNeeded: v >> 24))
    }

    static func readLE(_ bytes: [UInt8], at i: Int) -> UInt32 {
        UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
    }
}

extension WaveNet {
    /// A model restored from a checkpoint file (weights, Adam state, step),
    /// with the checkpoint's header.
    public static func load(from path: String) throws(WaveNetError) -> (model: WaveNet, header: CheckpointHeader) {
        let (header, floats) = try CheckpointFile.read(from: path)
        let model = try WaveNet(config: header.config, seed: 0)
        try model.restore(header: header, floats: floats, path: path)
        return (model, header)
    }

    /// Replaces this model's weights, Adam state and step with a checkpoint's.
    /// The checkpoint's configuration must equal this model's.
    @discardableResult
    public func load(from path: String) throws(WaveNetError) -> CheckpointHeader {
        let (header, floats) = try CheckpointFile.read(from: path)
        try restore(header: header, floats: floats, path: path)
        return header
    }

    func restore(header: CheckpointHeader, floats: [Float], path: String) throws(WaveNetError) {
        guard header.config == config else {
            throw .checkpoint(path: path, reason: "holds a different model configuration than the one requested "
                + "(\(header.config.dilations.count) layers, residual \(header.config.residualChannels) vs "
                + "\(config.dilations.count) layers, residual \(config.residualChannels))")
        }
        guard header.floatCount == layout.count,
              header.tensors == layout.entries.map({ "\($0.name)\($0.shape)" }) else {
            throw .checkpoint(path: path, reason: "its tensor layout does not match this build's WaveNet")
        }
        let n = layout.count
        floats.withUnsafeBufferPointer { f in
            parameters.baseAddress.update(from: f.baseAddress!, count: n)
            adamM.baseAddress.update(from: f.baseAddress! + n, count: n)
            adamV.baseAddress.update(from: f.baseAddress! + 2 * n, count: n)
        }
        step = header.step
        adamConfig = header.adam
        precision = header.precision ?? .fp32
    }
}
