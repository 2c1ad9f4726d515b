// Helpers shared by the test targets: random data, max-difference
// comparisons that print what they measured, finite-difference checks.
import Foundation
import PBTSeededRNG
import Testing

/// Random floats in [-scale, scale).
public func randomArray(_ n: Int, scale: Float = 1, rng: inout Xoshiro256) -> [Float] {
    (0..<n).map { _ in (2 * rng.nextUnitFloat() - 1) * scale }
}

/// A (Cout, K·Cin) weight of K column blocks (WaveNet's skip weights, one
/// block a layer) as K taps (K, Cout, Cin), the form the kernels pack.
public func taps(ofStacked w: [Float], outChannels: Int, taps K: Int, inChannels: Int) -> [Float] {
    precondition(w.count == outChannels * K * inChannels)
    var out: [Float] = []
    out.reserveCapacity(w.count)
    for k in 0..<K {
        for o in 0..<outChannels {
            let start = (o * K + k) * inChannels
            out += w[start..<(start + inChannels)]
        }
    }
    return out
}

public struct Difference: CustomStringConvertible {
    public var maxAbs: Float
    public var maxRel: Float
    public var description: String { "max abs diff \(maxAbs), max rel diff \(maxRel)" }
}

/// The largest absolute and relative differences between two arrays; the
/// relative one is taken against max(|b|, 1e-3) so near-zero values do not blow up.
public func difference(_ a: [Float], _ b: [Float]) -> Difference {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
    var d = Difference(maxAbs: 0, maxRel: 0)
    for i in a.indices {
        let abs = (a[i] - b[i]).magnitude
        if !(abs <= d.maxAbs) { d.maxAbs = abs.isNaN ? .infinity : abs }
        let rel = abs / max(b[i].magnitude, 1e-3)
        if !(rel <= d.maxRel) { d.maxRel = rel.isNaN ? .infinity : rel }
    }
    return d
}

/// Expects `fast` to match `reference` within `tolerance` (absolute), and
/// prints the max difference as llm.c's test does.
public func expectClose(
    _ fast: [Float], _ reference: [Float], tolerance: Float, _ label: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let d = difference(fast, reference)
    print("\(label): \(d)")
    #expect(d.maxAbs <= tolerance, "\(label): \(d) exceeds tolerance \(tolerance)", sourceLocation: sourceLocation)
}

/// Central finite-difference check of an analytic gradient.
///
/// `loss` evaluates the scalar loss (in Double) after `x[i]` was set; the
/// check perturbs `samples` coordinates of `x` (all if fewer) by ±h and
/// compares (L(x+h) − L(x−h)) / 2h with `analytic[i]`. Tolerance is relative to
/// max(|numeric|, |analytic|, floor). Returns the worst relative error.
@discardableResult
public func gradientCheck(
    _ label: String, x: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
    h: Float, tolerance: Double, floor: Double = 1e-2, samples: Int = 64, rng: inout Xoshiro256,
    sourceLocation: SourceLocation = #_sourceLocation,
    loss: () -> Double
) -> Double {
    let indices = count <= samples ? Array(0..<count) : (0..<samples).map { _ in Int(rng.next() % UInt64(count)) }
    var worst = 0.0
    for i in indices {
        let saved = x[i]
        x[i] = saved + h
        let up = loss()
        x[i] = saved - h
        let down = loss()
        x[i] = saved
        let numeric = (up - down) / (2 * Double(h))
        let a = Double(analytic[i])
        let err = abs(numeric - a) / max(abs(numeric), abs(a), floor)
        worst = max(worst, err)
    }
    print("\(label) gradient check: worst relative error \(worst) over \(indices.count) coordinates")
    #expect(worst <= tolerance, "\(label): finite-difference gradient off by \(worst) (tolerance \(tolerance))", sourceLocation: sourceLocation)
    return worst
}

/// The corpus for the few tests that need the real one: `$PBTWAVE_CORPUS`,
/// else `<repo>/corpus` (found from this file's path). The README's test
/// command builds it first.
public func realCorpusDirectory(filePath: String = #filePath) -> String {
    if let configured = ProcessInfo.processInfo.environment["PBTWAVE_CORPUS"], !configured.isEmpty { return configured }
    let repo = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return repo.appendingPathComponent("corpus").path
}

/// A small tmpfs mounted for a test (a real full disk), unmounted by
/// `unmount()`. Needs root; `init` throws otherwise.
public struct SmallDisk {
    public let url: URL

    public init(at url: URL, bytes: Int) throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", url.path]) == 0 else {
            throw SmallDiskError(description: "mount -t tmpfs on \(url.path) failed")
        }
        self.url = url
    }

    public func unmount() { _ = Self.run("/bin/umount", [url.path]) }

    /// Whether this process may mount one.
    public static var available: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount") }

    static func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

public struct SmallDiskError: Error, CustomStringConvertible {
    public var description: String
}

/// Seeded mutations of valid inputs, for fuzz tests: bit flips, interesting
/// bytes and tokens, insertions, deletions, duplicated chunks, truncation.
/// Deterministic for a seed, so a failing case can be replayed.
public struct Mutator {
    public var rng: Xoshiro256
    /// Text fragments that break parsers: huge, negative, non-finite and
    /// malformed numbers, structure characters.
    public var tokens: [String] = [
        "-1", "0", "1e400", "-1e400", "nan", "inf", "9223372036854775807", "-9223372036854775808", "18446744073709551616",
        "4294967296", "1e-46", "{", "}", "[", "]", "\"", ",", ":", "\n", "\r\n", "\u{0}", "null", "true", "{\"a\":", "[[[[[[[[",
    ]

    public init(seed: UInt64) { rng = Xoshiro256(seed: seed) }

    /// The number of fuzz cases: `PBTWAVE_FUZZ_CASES` if set, else `default`.
    public static func cases(default n: Int) -> Int {
        ProcessInfo.processInfo.environment["PBTWAVE_FUZZ_CASES"].flatMap(Int.init) ?? n
    }

    /// `input` with 1 to 4 mutations.
    public mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...pick(4) { mutateOnce(&bytes) }
        return bytes
    }

    /// Uniform enough in `0..<n` for fuzzing.
    mutating func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }

    mutating func index(_ bytes: [UInt8]) -> Int { bytes.isEmpty ? 0 : pick(bytes.count) }

    mutating func mutateOnce(_ bytes: inout [UInt8]) {
        let interesting: [UInt8] = [0, 1, 0x7f, 0x80, 0xff, 0x30, 0x39, 0x2d, 0x2e, 0x65]
        switch pick(8) {
        case 0 where !bytes.isEmpty: bytes[index(bytes)] ^= 1 << UInt8(pick(8))
        case 1 where !bytes.isEmpty: bytes[index(bytes)] = interesting[pick(interesting.count)]
        case 2: bytes.insert(contentsOf: Array(tokens[pick(tokens.count)].utf8), at: index(bytes))
        case 3 where !bytes.isEmpty:
            let i = index(bytes)
            bytes.removeSubrange(i..<min(bytes.count, i + 1 + pick(16)))
        case 4 where !bytes.isEmpty:
            let i = index(bytes), n = min(bytes.count - i, 1 + pick(64))
            bytes.insert(contentsOf: bytes[i..<(i + n)], at: index(bytes))
        case 5 where !bytes.isEmpty: bytes.removeLast(pick(bytes.count))
        case 6 where !bytes.isEmpty:
            // Overwrite a run of digits (a number in a text format) with a token.
            let i = index(bytes)
            var j = i
            while j < bytes.count, (0x30...0x39).contains(bytes[j]) { j += 1 }
            bytes.replaceSubrange(i..<j, with: Array(tokens[pick(tokens.count)].utf8))
        default: bytes.append(UInt8(truncatingIfNeeded: rng.next()))
        }
    }
}
