import Foundation

/// Input the PB2 bandit cannot use. Thrown before anything is computed.
public enum PB2Error: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// `suggest` needs at least one observation to fit the GP.
    case noObservations
    /// The hyperparameter vectors have no coordinates.
    case emptyPoint
    /// `what` has `got` coordinates where `expected` were set by the first observation.
    case dimensionMismatch(what: String, expected: Int, got: Int)
    /// `what` is NaN or infinite.
    case notFinite(what: String)
    /// `what` has a coordinate outside [0, 1]: hyperparameters must be normalised first.
    case outsideUnitCube(what: String)
    /// A setting outside its range.
    case invalidSetting(name: String, requirement: String)
    /// LAPACKE_dpotrf found the kernel matrix not positive definite (`info` is LAPACK's).
    case notPositiveDefinite(info: Int)

    public var description: String {
        switch self {
        case .noObservations:
            return "PB2 needs at least one observed interval to suggest hyperparameters: let the population train one interval first"
        case .emptyPoint:
            return "PB2 needs at least one hyperparameter to tune (the points have no coordinates)"
        case .dimensionMismatch(let what, let expected, let got):
            return "\(what) has \(got) coordinates but the first observation has \(expected): every point and context must have the same length"
        case .notFinite(let what):
            return "\(what) is NaN or infinite: drop that interval (e.g. a diverged trial) before asking PB2"
        case .outsideUnitCube(let what):
            return "\(what) lies outside [0, 1]: normalise each hyperparameter to its bounds (log scale for a learning rate) first"
        case .invalidSetting(let name, let requirement):
            return "PB2 setting \(name) must be \(requirement)"
        case .notPositiveDefinite(let info):
            return "the GP kernel matrix is not positive definite (LAPACKE_dpotrf info \(info)): raise the smallest noise ratio of the grid"
        }
    }

    public var errorDescription: String? { description }
}
