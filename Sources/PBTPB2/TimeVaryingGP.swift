import Foundation

/// The hyperparameters of the time-varying kernel
///
///     k((t, x), (t′, x′)) = σ_f² · exp(−‖x − x′‖² / (2ℓ²)) · (1 − ε)^{|t − t′|/2}
///
/// (squared exponential in the features times Bogunovic et al.'s 2016
/// temporal kernel, as PB2 uses), plus Gaussian observation noise σ_n².
/// Ray Tune's `TV_SquaredExp` writes exp(−‖x − x′‖²/ℓ′), i.e. ℓ′ = 2ℓ².
public struct GPHyperparameters: Sendable, Hashable, Codable {
    /// ℓ > 0, in the units of the normalised features.
    public var lengthScale: Double
    /// ε ∈ [0, 1): how fast old observations are forgotten per unit of normalised time.
    public var epsilon: Double
    /// σ_f² > 0.
    public var signalVariance: Double
    /// σ_n² > 0.
    public var noiseVariance: Double

    public init(lengthScale: Double, epsilon: Double, signalVariance: Double, noiseVariance: Double) {
        self.lengthScale = lengthScale
        self.epsilon = epsilon
        self.signalVariance = signalVariance
        self.noiseVariance = noiseVariance
    }

    /// k between two inputs (time, features). O(d).
    public func covariance(_ t1: Double, _ x1: [Double], _ t2: Double, _ x2: [Double]) -> Double {
        assert(x1.count == x2.count)
        var squaredDistance = 0.0
        for i in x1.indices { squaredDistance += (x1[i] - x2[i]) * (x1[i] - x2[i]) }
        return signalVariance * exp(-squaredDistance / (2 * lengthScale * lengthScale)) * pow(1 - epsilon, abs(t1 - t2) / 2)
    }
}

/// The candidate values `TimeVaryingGP.fit` searches. σ_f² is not on the
/// grid: for each (ℓ, ε, noise ratio r = σ_n²/σ_f²) the likelihood's maximum
/// over σ_f² has the closed form σ_f² = yᵀ(K₀ + rI)⁻¹y / n (K₀ the kernel
/// with σ_f² = 1), so the search is exact in σ_f² and a grid in the rest.
public struct HyperparameterGrid: Sendable, Hashable, Codable {
    public var lengthScales: [Double]
    /// Ray Tune caps ε at 0.5; so does the standard grid.
    public var epsilons: [Double]
    public var noiseRatios: [Double]

    public init(lengthScales: [Double], epsilons: [Double], noiseRatios: [Double]) {
        self.lengthScales = lengthScales
        self.epsilons = epsilons
        self.noiseRatios = noiseRatios
    }

    /// 8 × 7 × 6 = 336 points, for features in [0, 1] and targets standardised as PB2 does.
    public static let standard = HyperparameterGrid(
        lengthScales: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5],
        epsilons: [0, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5],
        noiseRatios: [0.001, 0.01, 0.05, 0.1, 0.3, 1])

    func validate() throws(PB2Error) {
        guard !lengthScales.isEmpty, lengthScales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw .invalidSetting(name: "grid.lengthScales", requirement: "a non-empty list of finite numbers > 0")
        }
        guard !epsilons.isEmpty, epsilons.allSatisfy({ $0 >= 0 && $0 < 1 }) else {
            throw .invalidSetting(name: "grid.epsilons", requirement: "a non-empty list of numbers in [0, 1)")
        }
        guard !noiseRatios.isEmpty, noiseRatios.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw .invalidSetting(name: "grid.noiseRatios", requirement: "a non-empty list of finite numbers > 0")
        }
    }
}

/// A Gaussian process with the time-varying kernel, conditioned on
/// observations (tᵢ, xᵢ, yᵢ) with zero prior mean. Factored once at
/// construction (LAPACKE Cholesky); predictions then cost O(n²) each.
public struct TimeVaryingGP: Sendable {
    public let hyperparameters: GPHyperparameters
    public let times: [Double]
    public let features: [[Double]]
    public let targets: [Double]
    let factor: CholeskyFactor
    /// K⁻¹y, K = kernel matrix + σ_n² I.
    let weights: [Double]
    /// log p(y) = −½ yᵀK⁻¹y − ½ log det K − (n/2) log 2π.
    public let logMarginalLikelihood: Double

    /// Conditions on the observations. Preconditions: equal counts, at least
    /// one observation, every feature vector of the same length. O(n³).
    public init(times: [Double], features: [[Double]], targets: [Double], hyperparameters: GPHyperparameters) throws(PB2Error) {
        precondition(!times.isEmpty && times.count == features.count && times.count == targets.count,
                     "a GP needs as many times, feature vectors and targets, at least one (got \(times.count), \(features.count), \(targets.count))")
        let n = times.count
        var k = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            for i in j..<n {
                k[j * n + i] = hyperparameters.covariance(times[i], features[i], times[j], features[j])
            }
            k[j * n + j] += hyperparameters.noiseVariance
        }
        try self.init(times: times, features: features, targets: targets, hyperparameters: hyperparameters, kernel: k)
    }

    /// From a kernel matrix (lower triangle, column-major, noise included) already built.
    init(times: [Double], features: [[Double]], targets: [Double], hyperparameters: GPHyperparameters, kernel: [Double]) throws(PB2Error) {
        let n = times.count
        factor = try CholeskyFactor(kernel, n: n)
        weights = factor.solve(targets)
        var fit = 0.0
        for i in 0..<n { fit += targets[i] * weights[i] }
        logMarginalLikelihood = -0.5 * fit - 0.5 * factor.logDeterminant - 0.5 * Double(n) * log(2 * Double.pi)
        self.hyperparameters = hyperparameters
        self.times = times
        self.features = features
        self.targets = targets
    }

    /// The posterior mean and variance of the latent function (noise not
    /// included) at each query (time, features). O(n²·m) for m queries, one
    /// batched LAPACKE_dpotrs.
    public func predict(times queryTimes: [Double], features queryFeatures: [[Double]]) -> [(mean: Double, variance: Double)] {
        precondition(queryTimes.count == queryFeatures.count, "predict needs one time per feature vector")
        let n = times.count, m = queryTimes.count
        guard m > 0 else { return [] }
        var cross = [Double](repeating: 0, count: n * m)
        for j in 0..<m {
            precondition(queryFeatures[j].count == features[0].count, "query \(j) has \(queryFeatures[j].count) features, the GP \(features[0].count)")
            for i in 0..<n {
                cross[j * n + i] = hyperparameters.covariance(times[i], features[i], queryTimes[j], queryFeatures[j])
            }
        }
        let solved = factor.solve(cross, columns: m)
        return (0..<m).map { j in
            var mean = 0.0, explained = 0.0
            for i in 0..<n {
                mean += cross[j * n + i] * weights[i]
                explained += cross[j * n + i] * solved[j * n + i]
            }
            return (mean, max(0, hyperparameters.signalVariance - explained))
        }
    }

    /// The GP whose hyperparameters maximise the log marginal likelihood over
    /// `grid` (σ_f² profiled out exactly; see `HyperparameterGrid`). Ties keep
    /// the first grid point in (ℓ, ε, r) order, so the fit is deterministic.
    /// When every target is 0 there is nothing to scale and σ_f² = 1, the
    /// variance of standardised targets. O(|grid| · n³/3).
    public static func fit(times: [Double], features: [[Double]], targets: [Double], grid: HyperparameterGrid = .standard) throws(PB2Error) -> TimeVaryingGP {
        try grid.validate()
        let n = times.count
        precondition(n >= 1 && features.count == n && targets.count == n, "fit needs as many times, feature vectors and targets, at least one")
        // Distances do not depend on the hyperparameters: compute them once.
        var squaredDistances = [Double](repeating: 0, count: n * n), timeDistances = squaredDistances
        for j in 0..<n {
            for i in j..<n {
                var d = 0.0
                for c in features[i].indices { d += (features[i][c] - features[j][c]) * (features[i][c] - features[j][c]) }
                squaredDistances[j * n + i] = d
                timeDistances[j * n + i] = abs(times[i] - times[j])
            }
        }
        var best: (likelihood: Double, hyperparameters: GPHyperparameters)?
        var unit = [Double](repeating: 0, count: n * n)
        for lengthScale in grid.lengthScales {
            for epsilon in grid.epsilons {
                for j in 0..<n {
                    for i in j..<n {
                        unit[j * n + i] = exp(-squaredDistances[j * n + i] / (2 * lengthScale * lengthScale))
                            * pow(1 - epsilon, timeDistances[j * n + i] / 2)
                    }
                }
                for ratio in grid.noiseRatios {
                    var k = unit
                    for i in 0..<n { k[i * n + i] += ratio }
                    let factor = try CholeskyFactor(k, n: n)
                    let solved = factor.solve(targets)
                    var quadratic = 0.0
                    for i in 0..<n { quadratic += targets[i] * solved[i] }
                    let scale = quadratic / Double(n) > 1e-12 ? quadratic / Double(n) : 1
                    let likelihood = -0.5 * quadratic / scale - 0.5 * (Double(n) * log(scale) + factor.logDeterminant)
                        - 0.5 * Double(n) * log(2 * Double.pi)
                    if best == nil || likelihood > best!.likelihood {
                        best = (likelihood, GPHyperparameters(lengthScale: lengthScale, epsilon: epsilon, signalVariance: scale,
                                                              noiseVariance: ratio * scale))
                    }
                }
            }
        }
        return try TimeVaryingGP(times: times, features: features, targets: targets, hyperparameters: best!.hyperparameters)
    }
}
