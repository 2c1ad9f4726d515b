import Foundation
@testable import PBTPB2
import PBTSeededRNG
import Testing

/// x with A·x = b by Gaussian elimination with partial pivoting, and det A:
/// the naive twin of the LAPACKE Cholesky path. A is n×n column-major, b n×m.
private func naiveSolve(_ a: [Double], _ b: [Double], n: Int, columns m: Int) -> (x: [Double], determinant: Double) {
    var a = a, b = b, determinant = 1.0
    for k in 0..<n {
        let pivot = (k..<n).max { abs(a[k * n + $0]) < abs(a[k * n + $1]) }!
        if pivot != k {
            for j in 0..<n { a.swapAt(j * n + k, j * n + pivot) }
            for j in 0..<m { b.swapAt(j * n + k, j * n + pivot) }
            determinant = -determinant
        }
        determinant *= a[k * n + k]
        for i in (k + 1)..<n {
            let factor = a[k * n + i] / a[k * n + k]
            for j in k..<n { a[j * n + i] -= factor * a[j * n + k] }
            for j in 0..<m { b[j * n + i] -= factor * b[j * n + k] }
        }
    }
    for j in 0..<m {
        for i in stride(from: n - 1, through: 0, by: -1) {
            var sum = b[j * n + i]
            for c in (i + 1)..<n { sum -= a[c * n + i] * b[j * n + c] }
            b[j * n + i] = sum / a[i * n + i]
        }
    }
    return (b, determinant)
}

/// The full symmetric kernel matrix (noise on the diagonal), column-major.
private func kernelMatrix(_ times: [Double], _ features: [[Double]], _ h: GPHyperparameters) -> [Double] {
    let n = times.count
    var k = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0..<n { k[j * n + i] = h.covariance(times[i], features[i], times[j], features[j]) + (i == j ? h.noiseVariance : 0) }
    }
    return k
}

private func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// A smooth reward-change landscape in one hyperparameter, highest at 0.3.
private func bump(_ x: Double) -> Double { exp(-(x - 0.3) * (x - 0.3) / 0.02) }

private func bumpObservations(count: Int) -> [PB2Observation] {
    (0..<count).map { i in
        let x = Double(i) / Double(count - 1)
        return PB2Observation(time: Double(i), point: [x], rewardChange: bump(x))
    }
}

@Suite("PB2: Cholesky and the time-varying GP")
struct PB2Tests {
    @Test("the LAPACKE Cholesky solve and log-determinant match a naive Gaussian elimination")
    func choleskyMatchesNaiveSolve() throws {
        var rng = Xoshiro256(seed: 1)
        let n = 12, m = 3
        // A = BᵀB + nI is symmetric positive definite.
        let b = (0..<(n * n)).map { _ in rng.nextGaussian() }
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                var s = i == j ? Double(n) : 0
                for k in 0..<n { s += b[i * n + k] * b[j * n + k] }
                a[j * n + i] = s
            }
        }
        let rhs = (0..<(n * m)).map { _ in rng.nextGaussian() }
        let factor = try CholeskyFactor(a, n: n)
        let fast = factor.solve(rhs, columns: m)
        let naive = naiveSolve(a, rhs, n: n, columns: m)
        let difference = maxDifference(fast, naive.x)
        let logDetDifference = abs(factor.logDeterminant - log(naive.determinant))
        print("Cholesky vs naive solve: max abs diff \(difference); log det diff \(logDetDifference)")
        #expect(difference <= 1e-12)
        #expect(logDetDifference <= 1e-10)
    }

    @Test("a matrix that is not positive definite is a clear error, not a crash")
    func notPositiveDefinite() {
        #expect(throws: PB2Error.notPositiveDefinite(info: 2)) {
            try CholeskyFactor([1, 2, 2, 1], n: 2)
        }
    }

    @Test("posterior mean and variance of a 2-point GP match the hand-computed 2×2 formulas")
    func twoPointPosterior() throws {
        // (1 − ε)^{1/2} = 0.9 for ε = 0.19, so the time factor for |Δt| = 1 is 0.9.
        let h = GPHyperparameters(lengthScale: 1, epsilon: 0.19, signalVariance: 1, noiseVariance: 0.1)
        let gp = try TimeVaryingGP(times: [0, 1], features: [[0], [1]], targets: [1, -1], hyperparameters: h)
        // K = [[1.1, c], [c, 1.1]] with c = e^{−1/2}·0.9; K⁻¹ = [[1.1, −c], [−c, 1.1]] / (1.1² − c²).
        let c = exp(-0.5) * 0.9, det = 1.1 * 1.1 - c * c
        // The query (t = 1, x = 0.5): k* = (e^{−1/8}·0.9, e^{−1/8}).
        let k1 = exp(-0.125) * 0.9, k2 = exp(-0.125)
        let w1 = (1.1 * 1 - c * -1) / det, w2 = (-c * 1 + 1.1 * -1) / det
        let mean = k1 * w1 + k2 * w2
        let variance = 1 - (k1 * (1.1 * k1 - c * k2) + k2 * (-c * k1 + 1.1 * k2)) / det
        let predicted = gp.predict(times: [1], features: [[0.5]])[0]
        print("2-point posterior: mean \(predicted.mean) vs \(mean), variance \(predicted.variance) vs \(variance)")
        #expect(abs(predicted.mean - mean) <= 1e-14)
        #expect(abs(predicted.variance - variance) <= 1e-14)
        #expect(abs(h.covariance(0, [0], 1, [1]) - c) <= 1e-16, "the kernel is SE × (1 − ε)^{|Δt|/2}")
    }

    @Test("the log marginal likelihood equals −½yᵀK⁻¹y − ½log det K − (n/2)log 2π computed naively")
    func logMarginalLikelihood() throws {
        let times = [0.0, 0.3, 0.6, 1.0], features: [[Double]] = [[0.1, 0.9], [0.4, 0.2], [0.8, 0.5], [0.3, 0.3]]
        let targets = [0.5, -1.2, 0.3, 1.9]
        let h = GPHyperparameters(lengthScale: 0.4, epsilon: 0.1, signalVariance: 1.3, noiseVariance: 0.05)
        let gp = try TimeVaryingGP(times: times, features: features, targets: targets, hyperparameters: h)
        let naive = naiveSolve(kernelMatrix(times, features, h), targets, n: 4, columns: 1)
        let quadratic = zip(targets, naive.x).reduce(0) { $0 + $1.0 * $1.1 }
        let direct = -0.5 * quadratic - 0.5 * log(naive.determinant) - 2 * log(2 * Double.pi)
        print("log marginal likelihood \(gp.logMarginalLikelihood) vs direct \(direct)")
        #expect(abs(gp.logMarginalLikelihood - direct) <= 1e-12)
    }

    @Test("the grid fit maximises the likelihood: no grid point, and no other signal variance, does better")
    func fitMaximisesLikelihood() throws {
        let observations = bumpObservations(count: 15)
        let times = observations.map { $0.time / 14 }, features = observations.map(\.point)
        let targets = PB2Bandit.standardise(observations.map(\.rewardChange))
        let grid = HyperparameterGrid(lengthScales: [0.05, 0.1, 0.3, 1], epsilons: [0, 0.2], noiseRatios: [0.001, 0.1])
        let fitted = try TimeVaryingGP.fit(times: times, features: features, targets: targets, grid: grid)
        print("fitted \(fitted.hyperparameters), log likelihood \(fitted.logMarginalLikelihood)")
        for l in grid.lengthScales {
            for e in grid.epsilons {
                for r in grid.noiseRatios {
                    for scale in [0.5, 1, 2.0] {
                        let s = fitted.hyperparameters.signalVariance * scale
                        let h = GPHyperparameters(lengthScale: l, epsilon: e, signalVariance: s, noiseVariance: r * s)
                        let other = try TimeVaryingGP(times: times, features: features, targets: targets, hyperparameters: h)
                        #expect(other.logMarginalLikelihood <= fitted.logMarginalLikelihood + 1e-9, "\(h)")
                    }
                }
            }
        }
    }

    @Test("pending points keep the posterior mean and shrink the variance near them")
    func pendingPointsAsBelievedObservations() throws {
        let h = GPHyperparameters(lengthScale: 0.2, epsilon: 0, signalVariance: 1, noiseVariance: 0.01)
        let times = [0.0, 0.5, 1.0], features: [[Double]] = [[0.1], [0.5], [0.9]]
        let gp = try TimeVaryingGP(times: times, features: features, targets: [0.2, 1.0, -0.5], hyperparameters: h)
        let believed = gp.predict(times: [1], features: [[0.3]])[0].mean
        let augmented = try TimeVaryingGP(times: times + [1], features: features + [[0.3]], targets: gp.targets + [believed], hyperparameters: h)
        let grid = (0...20).map { [Double($0) / 20] }
        let before = gp.predict(times: grid.map { _ in 1 }, features: grid)
        let after = augmented.predict(times: grid.map { _ in 1 }, features: grid)
        let meanDifference = maxDifference(before.map(\.mean), after.map(\.mean))
        print("pending point: max mean change \(meanDifference); variance at 0.3 \(before[6].variance) → \(after[6].variance)")
        #expect(meanDifference <= 1e-12)
        #expect(after[6].variance < 0.2 * before[6].variance)
        #expect(zip(before, after).allSatisfy { $1.variance <= $0.variance + 1e-15 })
    }
}

@Suite("PB2: the bandit's suggestions")
struct PB2BanditTests {
    @Test("after enough observations the UCB suggests the known maximum of a smooth 1-D reward change")
    func findsTheMaximum() throws {
        let bandit = try PB2Bandit()
        var rng = Xoshiro256(seed: 7)
        let suggestion = try bandit.suggest(observations: bumpObservations(count: 30), time: 29, using: &rng)
        print("suggested \(suggestion.point) (maximum at 0.3): \(suggestion)")
        #expect(abs(suggestion.point[0] - 0.3) <= 0.02)
        #expect(suggestion.observationsUsed == 30)
        #expect(abs(suggestion.beta - 0.2 * log(0.4 * 30)) <= 1e-15)
    }

    @Test("a pending point pushes the next suggestion of the same round away from it")
    func pendingPointsSpreadARound() throws {
        // Few observations and a fixed, nearly noise-free kernel, so σ matters: with the first
        // choice already running, its σ drops to about 0 and another point wins.
        let observations = [0.0, 0.25, 0.5, 0.75, 1.0].map { PB2Observation(time: 1, point: [$0], rewardChange: bump($0)) }
        let settings = PB2Settings(grid: HyperparameterGrid(lengthScales: [0.15], epsilons: [0], noiseRatios: [0.001]), c1: 2)
        let bandit = try PB2Bandit(settings: settings)
        var rng = Xoshiro256(seed: 3)
        let alone = try bandit.suggest(observations: observations, time: 1, using: &rng)
        var rng2 = Xoshiro256(seed: 3)
        let withPending = try bandit.suggest(observations: observations, time: 1, pending: [alone.point], using: &rng2)
        print("alone \(alone.point), σ \(alone.standardDeviation); with it pending \(withPending.point), σ \(withPending.standardDeviation)")
        // Same seed and candidates: only the pending point differs between the two calls.
        #expect(abs(withPending.point[0] - alone.point[0]) >= 0.03)
        #expect(withPending.upperConfidenceBound < alone.upperConfidenceBound)
    }

    @Test("the same observations and seed give the same suggestion; the search stays in the cube")
    func deterministic() throws {
        var rng = Xoshiro256(seed: 42)
        var observations: [PB2Observation] = []
        for trial in 0..<4 {
            for interval in 0..<6 {
                let point = [rng.nextUnitDouble(), rng.nextUnitDouble()]
                observations.append(PB2Observation(time: Double(interval * 100), context: [Double(trial) - 0.1 * Double(interval)],
                                                   point: point, rewardChange: sin(3 * point[0]) + point[1] + 0.1 * rng.nextGaussian()))
            }
        }
        let bandit = try PB2Bandit()
        var a = Xoshiro256(seed: 9), b = Xoshiro256(seed: 9)
        let first = try bandit.suggest(observations: observations, time: 500, context: [1.5], pending: [[0.5, 0.5]], using: &a)
        let second = try bandit.suggest(observations: observations, time: 500, context: [1.5], pending: [[0.5, 0.5]], using: &b)
        #expect(first == second)
        #expect(a == b, "both generators advanced alike")
        #expect(first.point.allSatisfy { (0...1).contains($0) })
    }

    @Test("only the most recent observations are used when there are more than the cap")
    func recentObservationsOnly() throws {
        let bandit = try PB2Bandit(settings: PB2Settings(maximumObservations: 10))
        var rng = Xoshiro256(seed: 1)
        // Old intervals favoured 0.9; the ten most recent favour 0.3.
        let old = (0..<20).map { PB2Observation(time: Double($0), point: [Double($0) / 19], rewardChange: -abs(Double($0) / 19 - 0.9)) }
        let recent = (0..<10).map { PB2Observation(time: Double(100 + $0), point: [Double($0) / 9], rewardChange: bump(Double($0) / 9)) }
        let suggestion = try bandit.suggest(observations: recent + old, time: 110, using: &rng)
        #expect(suggestion.observationsUsed == 10)
        #expect(abs(suggestion.point[0] - 0.3) <= 0.1)
    }

    @Test("PB2's target standardisation: zero mean, unit population SD, clipped to ±2")
    func standardisation() {
        let values = PB2Bandit.standardise([0, 0, 0, 0, 0, 0, 0, 0, 0, 10])
        let plain = PB2Bandit.standardise([1, 2, 3])
        // Scaled by 1/3 first: mean 2/3, population SD √(2/3)/3, so (x − 2)/(√(2/3) + 3·1e-8).
        #expect(abs(plain[2] - 1 / ((2.0 / 3).squareRoot() + 3e-8)) <= 1e-12)
        #expect(values.last == 2, "z = 3, clipped")
        #expect(PB2Bandit.standardise([5, 5, 5]) == [0, 0, 0])
        // The same for any units (found by a helper: tiny changes were flattened towards 0, huge ones overflowed).
        let changes = [0.3, -1.2, 2.5, 0.1, -0.4]
        let reference = PB2Bandit.standardise(changes)
        for scale in [1e-12, 1e-6, 1e6, 1e200, 1e300] {
            let scaled = PB2Bandit.standardise(changes.map { $0 * scale })
            #expect(zip(scaled, reference).allSatisfy { abs($0 - $1) <= 1e-9 }, "scale \(scale): \(scaled) against \(reference)")
        }
    }
}

@Suite("PB2: bad input gets a clear error")
struct PB2ErrorTests {
    static let good = [PB2Observation(time: 0, point: [0.2, 0.4], rewardChange: 1), PB2Observation(time: 1, point: [0.6, 0.1], rewardChange: 0.5)]

    func suggest(_ observations: [PB2Observation] = good, time: Double = 1, context: [Double] = [], pending: [[Double]] = []) throws {
        var rng = Xoshiro256(seed: 1)
        _ = try PB2Bandit().suggest(observations: observations, time: time, context: context, pending: pending, using: &rng)
    }

    @Test("no observations")
    func empty() {
        #expect(throws: PB2Error.noObservations) { try suggest([]) }
        #expect(PB2Error.noObservations.description.contains("train one interval first"))
    }

    @Test("NaN or infinity in a reward change, time, point or context")
    func nonFinite() {
        var bad = Self.good
        bad[1].rewardChange = .nan
        #expect(throws: PB2Error.notFinite(what: "observation 1's reward change")) { try suggest(bad) }
        bad = Self.good
        bad[0].point = [.nan, 0.4]
        #expect(throws: PB2Error.notFinite(what: "observation 0's point")) { try suggest(bad) }
        #expect(throws: PB2Error.notFinite(what: "the query time")) { try suggest(time: .infinity) }
    }

    @Test("dimension mismatches between observations, the query context and pending points")
    func dimensionMismatch() {
        var bad = Self.good
        bad[1].point = [0.5]
        #expect(throws: PB2Error.dimensionMismatch(what: "observation 1's point", expected: 2, got: 1)) { try suggest(bad) }
        #expect(throws: PB2Error.dimensionMismatch(what: "pending point 0", expected: 2, got: 3)) { try suggest(pending: [[0.1, 0.2, 0.3]]) }
        #expect(throws: PB2Error.dimensionMismatch(what: "the query context", expected: 0, got: 1)) { try suggest(context: [4]) }
        #expect(throws: PB2Error.emptyPoint) { try suggest([PB2Observation(time: 0, point: [], rewardChange: 1)]) }
    }

    @Test("points outside [0, 1] and bad settings")
    func outsideCubeAndSettings() {
        var bad = Self.good
        bad[0].point = [1.5, 0.4]
        #expect(throws: PB2Error.outsideUnitCube(what: "observation 0's point")) { try suggest(bad) }
        #expect(throws: PB2Error.invalidSetting(name: "candidates", requirement: "at least 1")) {
            try PB2Bandit(settings: PB2Settings(candidates: 0))
        }
        #expect(throws: PB2Error.invalidSetting(name: "grid.epsilons", requirement: "a non-empty list of numbers in [0, 1)")) {
            try PB2Bandit(settings: PB2Settings(grid: HyperparameterGrid(lengthScales: [1], epsilons: [1], noiseRatios: [0.1])))
        }
    }
}
