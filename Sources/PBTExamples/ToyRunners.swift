import Foundation
import PBT
import RealModule
import PBTSeededRNG

/// A noisy quadratic whose best learning-rate schedule is known to decay:
/// SGD with momentum on `L(x) = ½ Σ hᵢ (xᵢ − cᵢ)²` with Gaussian gradient
/// noise. A large rate makes fast early progress but settles at a noise
/// floor proportional to the rate; a small rate reaches a lower floor but
/// slowly. So the best schedule starts high and decays, which PBT should
/// find. The evaluation is the exact (noise-free) loss.
///
/// Deterministic: the result is a function of the trial's seed, steps,
/// hyperparameter `lr` and the parent checkpoint.
public struct ToyQuadraticRunner: TrialRunner {
    public static let dimension = 8
    /// Curvatures hᵢ, log-spaced over [0.5, 20].
    public static let curvatures: [Double] = (0..<dimension).map { i in
        0.5 * Double.exp(Double.log(40) * Double(i) / Double(dimension - 1))
    }
    /// Where every run starts: 3 away from the optimum (cᵢ = 0) in each coordinate.
    public static let start: [Double] = Array(repeating: 3, count: dimension)
    public static let momentum = 0.9
    public static let gradientNoise = 1.0

    /// Sleep this long per trial, to stand in for real training in tests
    /// that need trials to take time (e.g. to be killed mid-run).
    public var simulatedWork: Duration

    public init(simulatedWork: Duration = .zero) {
        self.simulatedWork = simulatedWork
    }

    public func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        guard let lr = trial.hyperparameters["lr"]?.number else { throw ToyRunnerError.missingLearningRate }
        var state = ToyCheckpoint(step: 0, position: Self.start, velocity: Array(repeating: 0, count: Self.dimension))
        if let parent {
            do { state = try ToyCheckpoint.read(from: parent.url) } catch {
                throw TrialRunnerError.parentUnreadable(path: parent.path, reason: FileErrorText.cause(of: error) ?? "\(error)")
            }
            guard state.step == trial.startStep else {
                throw TrialRunnerError.parentUnreadable(
                    path: parent.path, reason: "\(ToyRunnerError.stepMismatch(checkpoint: state.step, trial: trial.startStep))")
            }
        }
        var rng = Xoshiro256(seed: trial.seed)
        for _ in 0..<trial.steps {
            for i in 0..<Self.dimension {
                let g = Self.curvatures[i] * state.position[i] + Self.gradientNoise * rng.nextGaussian()
                state.velocity[i] = Self.momentum * state.velocity[i] + g
                state.position[i] -= lr * state.velocity[i]
            }
        }
        state.step += trial.steps
        if simulatedWork > .zero {
            Thread.sleep(forTimeInterval: simulatedWork / .seconds(1))
        }
        try AtomicFile.write(state.encoded(), toPath: output.path)
        return TrialOutcome(evaluation: Self.loss(state.position))
    }

    /// The exact loss ½ Σ hᵢ xᵢ².
    public static func loss(_ x: [Double]) -> Double {
        zip(curvatures, x).reduce(0) { $0 + 0.5 * $1.0 * $1.1 * $1.1 }
    }
}

public enum ToyRunnerError: Error, Equatable, CustomStringConvertible {
    case missingLearningRate
    case stepMismatch(checkpoint: Int, trial: Int)
    case corruptCheckpoint(String)

    public var description: String {
        switch self {
        case .missingLearningRate: return "the toy runner needs a continuous hyperparameter named 'lr'"
        case .stepMismatch(let c, let t): return "parent checkpoint is at step \(c) but the trial starts at \(t)"
        case .corruptCheckpoint(let m): return "corrupt toy checkpoint: \(m)"
        }
    }
}

/// The toy runner's checkpoint: model state (position), optimizer state
/// (momentum velocity) and global step, with an FNV-1a checksum so tests can
/// prove no checkpoint was torn. Layout (little-endian): magic "PBTTOY01",
/// step, dimension, position[d], velocity[d] (all 8 bytes), checksum.
public struct ToyCheckpoint: Sendable, Hashable {
    public var step: Int
    public var position: [Double]
    public var velocity: [Double]

    static let magic = Array("PBTTOY01".utf8)

    public func encoded() -> Data {
        var words: [UInt64] = [UInt64(step), UInt64(position.count)]
        words += position.map(\.bitPattern) + velocity.map(\.bitPattern)
        var bytes = Self.magic
        for w in words { withUnsafeBytes(of: w.littleEndian) { bytes += $0 } }
        withUnsafeBytes(of: Self.fnv1a(bytes).littleEndian) { bytes += $0 }
        return Data(bytes)
    }

    public static func read(from url: URL) throws -> ToyCheckpoint {
        let bytes = [UInt8](try Data(contentsOf: url))
        guard bytes.count >= 32, Array(bytes[0..<8]) == magic else { throw ToyRunnerError.corruptCheckpoint("bad header") }
        func word(_ i: Int) -> UInt64 {
            bytes[(8 + 8 * i)..<(16 + 8 * i)].reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        let d = Int(word(1))
        guard d >= 0, d < 1 << 20, bytes.count == 8 + 8 * (3 + 2 * d) else { throw ToyRunnerError.corruptCheckpoint("bad length") }
        guard word(2 + 2 * d) == fnv1a(Array(bytes[0..<(bytes.count - 8)])) else { throw ToyRunnerError.corruptCheckpoint("checksum mismatch") }
        return ToyCheckpoint(step: Int(word(0)), position: (0..<d).map { Double(bitPattern: word(2 + $0)) },
                             velocity: (0..<d).map { Double(bitPattern: word(2 + d + $0)) })
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}

/// Does no training: publishes a tiny checkpoint and returns a pseudo-random
/// evaluation derived from the trial seed. For measuring the controller's
/// and store's overhead, and for concurrency tests.
public struct NoOpRunner: TrialRunner {
    /// If set, each checkpoint is a hard link to this existing file (atomic,
    /// and no new inode), so a benchmark measures PBT's overhead rather than
    /// the file system's inode allocator; otherwise an 8-byte file is written
    /// with `AtomicFile`.
    public var template: String?

    public init(template: String? = nil) { self.template = template }

    public func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        var rng = Xoshiro256(seed: trial.seed)
        if let template {
            guard link(template, output.path) == 0 || errno == EEXIST else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: output.path])
            }
        } else {
            try AtomicFile.write(Data(count: 8), toPath: output.path)
        }
        return TrialOutcome(evaluation: rng.nextUnitDouble())
    }
}
