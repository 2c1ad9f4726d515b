import CPBTOpenBLAS
import Foundation

/// The Cholesky factor L (A = L·Lᵀ) of a symmetric positive-definite n×n
/// matrix, computed by LAPACKE_dpotrf, with solves by LAPACKE_dpotrs.
///
/// Matrices are column-major n×n `[Double]`; a symmetric matrix reads the
/// same in either order. Only the lower triangle of the input is read.
public struct CholeskyFactor: Sendable {
    public let n: Int
    /// Column-major; the lower triangle holds L, the rest is left as given.
    let factor: [Double]

    /// Factors `matrix` (n×n). O(n³/3). Throws `notPositiveDefinite` when
    /// LAPACK finds a non-positive pivot (or a NaN).
    public init(_ matrix: [Double], n: Int) throws(PB2Error) {
        precondition(n >= 1 && matrix.count == n * n, "Cholesky needs an n×n matrix (n = \(n), \(matrix.count) values)")
        var a = matrix
        let info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), &a, Int32(n))
        guard info == 0 else { throw .notPositiveDefinite(info: Int(info)) }
        self.n = n
        factor = a
    }

    /// X with A·X = B for B n×`columns`, column-major. O(n²·columns).
    public func solve(_ b: [Double], columns: Int = 1) -> [Double] {
        precondition(columns >= 1 && b.count == n * columns, "solve needs an n×columns right-hand side (n = \(n), \(b.count) values)")
        var x = b
        let info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), Int32(columns), factor, Int32(n), &x, Int32(n))
        precondition(info == 0, "LAPACKE_dpotrs rejected its arguments (info \(info))")
        return x
    }

    /// log det A = 2 Σ log Lᵢᵢ. O(n).
    public var logDeterminant: Double {
        (0..<n).reduce(0) { $0 + 2 * log(factor[$1 * n + $1]) }
    }
}
