import CPBTOpenBLAS
import PBTSeededRNG

/// Weight initialisers. Each fills a buffer from a seeded generator, so a
/// model's starting point is a pure function of its seed.
public enum Initializer {
    /// Glorot (Xavier) uniform: U(−a, a) with a = gain · √(6 / (fanIn + fanOut)).
    public static func glorotUniform(
        _ w: UnsafeMutablePointer<Float>, count: Int, fanIn: Int, fanOut: Int, gain: Float = 1,
        rng: inout Xoshiro256
    ) {
        precondition(fanIn > 0 && fanOut > 0, "Glorot init needs positive fan-in and fan-out")
        let a = gain * (6 / Float(fanIn + fanOut)).squareRoot()
        for i in 0..<count { w[i] = (2 * rng.nextUnitFloat() - 1) * a }
    }

    /// He (Kaiming) normal: N(0, 2 / fanIn), for layers followed by a ReLU.
    public static func heNormal(_ w: UnsafeMutablePointer<Float>, count: Int, fanIn: Int, rng: inout Xoshiro256) {
        precondition(fanIn > 0, "He init needs a positive fan-in")
        let std = (2 / Double(fanIn)).squareRoot()
        for i in 0..<count { w[i] = Float(rng.nextGaussian() * std) }
    }

    /// Normal N(0, std²).
    public static func normal(_ w: UnsafeMutablePointer<Float>, count: Int, std: Float, rng: inout Xoshiro256) {
        for i in 0..<count { w[i] = Float(rng.nextGaussian() * Double(std)) }
    }

    /// Orthogonal initialisation (Saxe et al. 2014) through LAPACKE's QR.
    ///
    /// Fills `w`, a row-major (rows, cols) matrix, with `gain · Q` where Q has
    /// orthonormal columns (rows ≥ cols) or orthonormal rows (rows < cols):
    /// a Gaussian matrix is factored with `sgeqrf`, Q is formed with `sorgqr`,
    /// and each column is multiplied by the sign of R's diagonal so that Q is
    /// uniformly (Haar) distributed. Allocates scratch (it is not a hot path).
    public static func orthogonal(
        _ w: UnsafeMutablePointer<Float>, rows: Int, cols: Int, gain: Float = 1, rng: inout Xoshiro256
    ) throws(TensorError) {
        precondition(rows > 0 && cols > 0, "orthogonal init needs a non-empty matrix")
        // Factor the tall orientation: A is (tall, short) with tall ≥ short.
        let tall = max(rows, cols), short = min(rows, cols)
        var a = (0..<(tall * short)).map { _ in Float(rng.nextGaussian()) }
        var tau = [Float](repeating: 0, count: short)
        var info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(tall), Int32(short), &a, Int32(short), &tau)
        guard info == 0 else { throw .lapack(routine: "sgeqrf", info: Int(info)) }
        let signs = (0..<short).map { a[$0 * short + $0] < 0 ? Float(-1) : Float(1) }
        info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, Int32(tall), Int32(short), Int32(short), &a, Int32(short), &tau)
        guard info == 0 else { throw .lapack(routine: "sorgqr", info: Int(info)) }
        for i in 0..<tall {
            for j in 0..<short {
                let q = gain * signs[j] * a[i * short + j]
                // rows ≥ cols: w = Q; rows < cols: w = Qᵀ (orthonormal rows).
                if rows >= cols { w[i * cols + j] = q } else { w[j * cols + i] = q }
            }
        }
    }
}

/// Errors from the tensor module that a caller can act on.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    case lapack(routine: String, info: Int)

    public var description: String {
        switch self {
        case let .lapack(routine, info):
            return "LAPACKE_\(routine) failed with info \(info) (the input matrix is degenerate or an argument is invalid)"
        }
    }
}
