import Foundation
import PBTWaveAudio

/// A fresh folder under the system's temporary directory, removed when the
/// value is released. Each test makes its own, so tests can run in parallel.
final class TemporaryFolder {
    let path: String

    init(_ label: String = #function) {
        let name = "pbtwave-audio-\(label.prefix(while: { $0.isLetter || $0.isNumber }))-\(UUID().uuidString)"
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent(name)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Writes raw bytes to `name` (creating subfolders) and returns its path.
    @discardableResult
    func write(_ name: String, bytes: [UInt8]) -> String {
        let target = file(name)
        try! FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        precondition(FileManager.default.createFile(atPath: target, contents: Data(bytes)), "cannot write \(target)")
        return target
    }

    @discardableResult
    func write(_ name: String, text: String) -> String { write(name, bytes: Array(text.utf8)) }

    /// Writes a mono 16-bit WAV of `samples` and returns its path.
    @discardableResult
    func writeWAV(_ name: String, samples: [Float], sampleRate: Int = 16_000) throws -> String {
        let target = file(name)
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try PBTWaveAudio.writeWAV(samples, sampleRate: sampleRate, to: target)
        return target
    }

    func bytes(_ name: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: file(name)) ?? Data()) }

    func entries() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? [] }
}

/// A sine of `frequency` Hz, `seconds` long, at `sampleRate`.
func sine(frequency: Double, seconds: Double, sampleRate: Int, amplitude: Double = 0.5, phase: Double = 0) -> [Float] {
    let n = Int((seconds * Double(sampleRate)).rounded())
    return (0 ..< n).map { Float(amplitude * sin(2 * Double.pi * frequency * Double($0) / Double(sampleRate) + phase)) }
}

/// Deterministic values exactly representable in 16-bit PCM (k / 32768).
func pcmGridSignal(count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0 ..< count).map { i in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let noise = Int((state >> 33) % 2001) - 1000
        let tone = Int(12000 * sin(Double(i) * 0.05))
        return Float(tone + noise) / 32768
    }
}

/// Number of sign changes from negative to non-negative.
func upwardZeroCrossings(_ x: ArraySlice<Float>) -> Int {
    var count = 0
    var previous = x.first ?? 0
    for value in x.dropFirst() {
        if previous < 0 && value >= 0 { count += 1 }
        previous = value
    }
    return count
}

/// A WAV with a canonical 44-byte header, written by hand so tests can build
/// files libsndfile would never write (float with NaN, lying sizes, …).
func handmadeWAV(
    format: UInt16, channels: UInt16, sampleRate: UInt32, bitsPerSample: UInt16,
    data: [UInt8], declaredDataBytes: UInt32? = nil
) -> [UInt8] {
    func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    let blockAlign = channels * bitsPerSample / 8
    let dataBytes = declaredDataBytes ?? UInt32(data.count)
    let riffBytes = dataBytes == 0xFFFF_FFFF ? dataBytes : 36 + dataBytes
    var out = Array("RIFF".utf8) + le32(riffBytes) + Array("WAVE".utf8)
    out += Array("fmt ".utf8) + le32(16) + le16(format) + le16(channels) + le32(sampleRate)
    out += le32(sampleRate &* UInt32(blockAlign)) + le16(blockAlign) + le16(bitsPerSample)
    out += Array("data".utf8) + le32(dataBytes) + data
    return out
}

/// Runs `body` and returns the ``AudioError`` it throws (nil if none).
func audioError<T>(_ body: () throws(AudioError) -> T) -> AudioError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

/// The `pbtwave` binary `swift build` (or `swift test`) put beside the test
/// bundle; throws, saying what to run, when there is none.
func builtPBTWave() throws -> String {
    let bundleFolder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for folder in [bundleFolder, bundleFolder.deletingLastPathComponent()] {
        let candidate = folder.appendingPathComponent("pbtwave").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw AudioError.fileNotFound(path: bundleFolder.appendingPathComponent("pbtwave").path + " (run `swift build` first)")
}
