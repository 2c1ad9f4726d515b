// Helpers shared by the test targets: random data, max-difference
// comparisons that print what they measured, finite-difference checks.
import Foundation
import SeededRNG
import Testing

/// Random floats in [-scale, scale).
public func randomArray(_ n: Int, scale: Float = 1, rng: inout Xoshiro256) -> [Float] {
    (0..<n).map { _ in (2 * rng.nextUnitFloat() - 1) * scale }
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
