import Foundation
import RealModule
import PBTSeededRNG

// Statistical tests behind the claims' verdicts. Each test compares two
// samples of per-seed values (a first and a second sample) and returns a
// `ClaimTest`: the test's name, statistic, degrees of freedom, p in the
// claimed direction and against it, an interval, the verdict and the effect
// this many seeds could detect. Distributions live in
// Statistics+Distributions.swift. Everything is a pure function of its inputs
// (and seed, for resampling).

/// A sample a test cannot use. Thrown before anything is computed.
public enum StatisticsError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The `sample` ("first" or "second") has fewer values than `test` needs.
    case tooFewValues(sample: String, count: Int, minimum: Int, test: String)
    /// The value at `index` of `sample` is NaN or infinite.
    case notFinite(sample: String, index: Int)
    /// The statistic of `test` is 0/0: neither sample has any spread left to compare.
    case noVariation(test: String)
    /// A paired test was given samples of different lengths.
    case unpairedLengths(first: Int, second: Int)
    /// A parameter outside its range.
    case invalidParameter(name: String, value: Double, requirement: String)

    public var description: String {
        switch self {
        case .tooFewValues(let sample, let count, let minimum, let test):
            return "\(test) needs at least \(minimum) values in the \(sample) sample (got \(count)): run more seeds"
        case .notFinite(let sample, let index):
            return "the \(sample) sample's value at index \(index) is NaN or infinite: fix or drop that run before testing"
        case .noVariation(let test):
            return "\(test) is undefined: the samples have no spread to compare a difference with; report the values themselves"
        case .unpairedLengths(let first, let second):
            return "a paired test needs one value per pair in each sample (got \(first) and \(second) values)"
        case .invalidParameter(let name, let value, let requirement):
            return "\(name) must be \(requirement) (got \(value))"
        }
    }

    public var errorDescription: String? { description }
}

/// What a claim says about the first sample relative to the second (SciPy's
/// `alternative`): its mean, or its spread, is `less` or `greater`.
public enum ClaimDirection: String, Codable, Sendable, Hashable {
    case less, greater
}

/// A two-sided interval for the report.
public struct ConfidenceInterval: Codable, Sendable, Hashable {
    public var lower: Double
    public var upper: Double
    /// Coverage, e.g. 0.95.
    public var level: Double
    /// How it was computed, e.g. "Welch t" or "bootstrap BCa, 10,000 resamples, seed 7".
    public var method: String

    public init(lower: Double, upper: Double, level: Double, method: String) {
        self.lower = lower
        self.upper = upper
        self.level = level
        self.method = method
    }
}

/// The smallest effect a test with these sample sizes detects with the stated power.
public struct DetectableEffect: Codable, Sendable, Hashable {
    /// In the units of the test's estimate (bits for a difference of means,
    /// a ratio for standard deviations).
    public var value: Double
    /// What `value` means and how it was computed.
    public var method: String
}

/// One statistical test behind a claim's verdict: a row of the report's claims table.
public struct ClaimTest: Codable, Sendable, Hashable {
    /// e.g. "Welch's t-test, one-sided (first less)".
    public var test: String
    /// e.g. "t", "F", "mean difference".
    public var statisticName: String
    public var statistic: Double
    /// Empty for tests without, [ν] for t, [d1, d2] for F.
    public var degreesOfFreedom: [Double]
    /// e.g. "mean difference (first − second)", "SD ratio (first / second)".
    public var estimateName: String
    public var estimate: Double
    /// p in the claimed direction.
    public var pValue: Double
    /// p in the opposite direction (or, for an equivalence test, for "outside the margin").
    public var pValueAgainst: Double
    /// Two-sided p, for the t-tests.
    public var pValueTwoSided: Double?
    public var interval: ConfidenceInterval
    public var verdict: Verdict
    /// The effect these sample sizes detect at the stated power; nil when undefined.
    public var detectable: DetectableEffect?
    /// Caveats the report must show (e.g. "the smallest possible p is 1/6").
    public var notes: [String]

    /// The rule every test uses: agrees only at p < α in the claimed
    /// direction, disagrees only at p < α against it, else inconclusive.
    public static func verdict(pValue: Double, pValueAgainst: Double, alpha: Double) -> Verdict {
        if pValue < alpha { return .agrees }
        if pValueAgainst < alpha { return .disagrees }
        return .inconclusive
    }
}

/// How a bootstrap interval is read off the resampled statistics.
public enum BootstrapMethod: String, Codable, Sendable {
    /// The α/2 and 1 − α/2 quantiles of the resampled statistics.
    case percentile
    /// Bias-corrected and accelerated (Efron & Tibshirani 1993, §14.3); the
    /// acceleration from a jackknife over each sample, as SciPy's `bootstrap`.
    case bca
}

/// The tests. All take per-seed values; none changes its inputs.
public enum StatisticalTests {
    /// The significance level of every verdict (one-sided).
    public static let alpha = 0.05
    /// The power at which detectable effects are stated.
    public static let power = 0.8

    // MARK: Welch's t-test

    /// Welch's unequal-variance t-test of the claim that the first sample's
    /// mean is `claim` than the second's, with the Welch–Satterthwaite
    /// degrees of freedom, a 95 % Welch interval of the mean difference and
    /// the difference detectable at 80 % power (`detectableDifference`).
    /// Matches SciPy's `ttest_ind(a, b, equal_var=False, alternative=…)`.
    ///
    /// Throws when a sample has fewer than 2 values or a non-finite value, or
    /// when both samples have zero variance. O(n).
    public static func welch(_ first: [Double], _ second: [Double], claim: ClaimDirection) throws(StatisticsError) -> ClaimTest {
        let name = "Welch's t-test"
        try checkSamples(first, second, minimum: 2, test: name)
        let w = try welchParts(first, second, test: name)
        let t = w.difference / w.standardError
        let distribution = StudentT(degreesOfFreedom: w.degreesOfFreedom)
        let (below, above) = distribution.tails(t)
        let (p, against) = claim == .less ? (below, above) : (above, below)
        let half = distribution.quantile(0.975) * w.standardError
        let detectable = try detectableDifference(
            firstCount: first.count, secondCount: second.count,
            firstSD: sampleVariance(first).squareRoot(), secondSD: sampleVariance(second).squareRoot())
        return ClaimTest(
            test: "\(name), one-sided (first \(claim.rawValue))", statisticName: "t", statistic: t,
            degreesOfFreedom: [w.degreesOfFreedom],
            estimateName: "mean difference (first − second)", estimate: w.difference,
            pValue: p, pValueAgainst: against, pValueTwoSided: min(1, 2 * min(below, above)),
            interval: ConfidenceInterval(lower: w.difference - half, upper: w.difference + half, level: 0.95, method: "Welch t"),
            verdict: ClaimTest.verdict(pValue: p, pValueAgainst: against, alpha: alpha),
            detectable: detectable, notes: [])
    }

    /// The pieces of Welch's statistic: mean difference, its standard error
    /// and the Welch–Satterthwaite degrees of freedom.
    static func welchParts(_ first: [Double], _ second: [Double], test: String) throws(StatisticsError)
        -> (difference: Double, standardError: Double, degreesOfFreedom: Double) {
        let v1 = sampleVariance(first) / Double(first.count)
        let v2 = sampleVariance(second) / Double(second.count)
        guard v1 + v2 > 0 else { throw .noVariation(test: test) }
        return (mean(first) - mean(second), (v1 + v2).squareRoot(), welchDegreesOfFreedom(v1, first.count, v2, second.count))
    }

    /// The Welch–Satterthwaite ν from the squared standard errors vᵢ = sᵢ²/nᵢ.
    static func welchDegreesOfFreedom(_ v1: Double, _ n1: Int, _ v2: Double, _ n2: Int) -> Double {
        (v1 + v2) * (v1 + v2) / (v1 * v1 / Double(n1 - 1) + v2 * v2 / Double(n2 - 1))
    }

    // MARK: Power

    /// The smallest true difference of means that a one-sided Welch test at
    /// level `alpha` detects with probability `power`, for these sample sizes
    /// and standard deviations: δ = λ·SE, where λ solves
    /// P(T′ > t₁₋α,ν) = power for T′ noncentral t with the Welch–Satterthwaite
    /// ν and noncentrality λ (the SDs are taken as the true ones). Bisection on λ.
    public static func detectableDifference(
        firstCount: Int, secondCount: Int, firstSD: Double, secondSD: Double,
        alpha: Double = alpha, power: Double = power
    ) throws(StatisticsError) -> DetectableEffect {
        try checkPowerInputs(firstCount, secondCount, alpha: alpha, power: power, test: "the power of Welch's t-test")
        guard firstSD.isFinite, secondSD.isFinite, firstSD >= 0, secondSD >= 0 else {
            throw .invalidParameter(name: "a standard deviation", value: firstSD.isFinite ? secondSD : firstSD, requirement: "finite and ≥ 0")
        }
        let v1 = firstSD * firstSD / Double(firstCount), v2 = secondSD * secondSD / Double(secondCount)
        guard v1 + v2 > 0 else { throw .noVariation(test: "the power of Welch's t-test") }
        let df = welchDegreesOfFreedom(v1, firstCount, v2, secondCount)
        let critical = StudentT(degreesOfFreedom: df).quantile(1 - alpha)
        var lo = 0.0, hi = 37.0
        for _ in 0..<100 {
            let mid = 0.5 * (lo + hi)
            if NoncentralT(degreesOfFreedom: df, noncentrality: mid).sf(critical) < power { lo = mid } else { hi = mid }
        }
        return DetectableEffect(
            value: 0.5 * (lo + hi) * (v1 + v2).squareRoot(),
            method: "smallest difference of means detected with \(percent(power)) power by a one-sided Welch test at α = \(alpha), taking the observed SDs as true (noncentral t)")
    }

    /// The ratio of standard deviations (first / second) that a one-sided
    /// variance test at level `alpha` detects with probability `power`.
    /// Approximation: the exact power of the F-test of variances under
    /// normality, ρ² = F_α(n₁−1, n₂−1) / F_power(n₁−1, n₂−1) for `.less`
    /// (mirrored for `.greater`). Brown–Forsythe gives up some power for
    /// robustness, so it needs a ratio somewhat further from 1 than this.
    public static func detectableSDRatio(
        firstCount: Int, secondCount: Int, claim: ClaimDirection, alpha: Double = alpha, power: Double = power
    ) throws(StatisticsError) -> DetectableEffect {
        try checkPowerInputs(firstCount, secondCount, alpha: alpha, power: power, test: "the power of a variance test")
        let f = FisherF(Double(firstCount - 1), Double(secondCount - 1))
        let varianceRatio = claim == .less
            ? f.quantile(alpha) / f.quantile(power)
            : f.quantile(1 - alpha) / f.quantile(1 - power)
        return DetectableEffect(
            value: varianceRatio.squareRoot(),
            method: "SD ratio (first / second) detected with \(percent(power)) power at one-sided α = \(alpha), from the F-test of variances under normality (Brown–Forsythe needs a somewhat more extreme ratio)")
    }

    // MARK: Permutation test

    /// An exact one-sided permutation test of the difference of means: p is
    /// the share of the C(n₁+n₂, n₁) splits of the pooled values whose first
    /// group has a mean difference at least as extreme as observed (ties
    /// count), as SciPy's `permutation_test(…, permutation_type='independent',
    /// n_resamples=np.inf)`. When there are more than `exactLimit` splits,
    /// `resamples` random splits drawn with `Xoshiro256(seed:)` are used
    /// instead and p = (1 + count)/(1 + resamples) (Phipson & Smyth 2010).
    /// The interval is the bootstrap BCa interval of the difference
    /// (`bootstrapDifference`, same seed); the detectable difference is
    /// Welch's (the t-test standing in for the permutation test's power).
    ///
    /// O(min(C(n₁+n₂, n₁), resamples) · n₁) plus the bootstrap.
    public static func permutation(
        _ first: [Double], _ second: [Double], claim: ClaimDirection, seed: UInt64,
        exactLimit: Int = 200_000, resamples: Int = 100_000, bootstrapResamples: Int = 10_000
    ) throws(StatisticsError) -> ClaimTest {
        let name = "permutation test of the mean difference"
        try checkSamples(first, second, minimum: 2, test: name)
        guard exactLimit >= 1 else { throw .invalidParameter(name: "exactLimit", value: Double(exactLimit), requirement: "at least 1") }
        guard resamples >= 1 else { throw .invalidParameter(name: "resamples", value: Double(resamples), requirement: "at least 1") }
        let pooled = first + second
        let n1 = first.count
        // The first group's sum orders splits exactly as the mean difference does (the total is fixed).
        let observed = first.reduce(0, +)
        let tolerance = 1e-12 * pooled.reduce(0) { $0 + abs($1) }
        var atOrBelow = 0, atOrAbove = 0, total = 0
        func count(_ sum: Double) {
            if sum <= observed + tolerance { atOrBelow += 1 }
            if sum >= observed - tolerance { atOrAbove += 1 }
            total += 1
        }
        let splits = binomial(pooled.count, n1)
        let exact = splits <= Double(exactLimit)
        var test: String
        if exact {
            forEachCombination(n: pooled.count, k: n1) { indices in
                count(indices.reduce(0) { $0 + pooled[$1] })
            }
            test = "\(name), exact over all \(Int(splits).grouped) splits"
        } else {
            var rng = Xoshiro256(seed: seed)
            var order = Array(pooled.indices)
            for _ in 0..<resamples {
                // A partial Fisher–Yates shuffle draws the first group.
                var sum = 0.0
                for i in 0..<n1 {
                    order.swapAt(i, i + rng.index(below: order.count - i))
                    sum += pooled[order[i]]
                }
                count(sum)
            }
            // The observed split counts once more (Phipson & Smyth).
            atOrBelow += 1
            atOrAbove += 1
            total += 1
            test = "\(name), Monte Carlo over \(resamples.grouped) random splits (seed \(seed))"
        }
        let below = Double(atOrBelow) / Double(total), above = Double(atOrAbove) / Double(total)
        let (p, against) = claim == .less ? (below, above) : (above, below)
        let smallest = exact ? 1 / splits : 1 / Double(resamples + 1)
        var notes: [String] = []
        if smallest >= alpha {
            notes.append("with \(first.count) and \(second.count) values the smallest possible p is \(String(format: "%.3g", smallest)), so this test cannot reach p < \(alpha)")
        }
        let detectable: DetectableEffect?
        // No difference is detectable when no split of the values can reach significance (a
        // report stated one, from the t approximation, beside "cannot reach p < 0.05").
        if smallest >= alpha {
            detectable = nil
        } else {
            do {
                detectable = try detectableDifference(
                    firstCount: first.count, secondCount: second.count,
                    firstSD: sampleVariance(first).squareRoot(), secondSD: sampleVariance(second).squareRoot())
            } catch {
                detectable = nil
                notes.append("no detectable difference: neither sample has any spread")
            }
        }
        let difference = mean(first) - mean(second)
        return ClaimTest(
            test: test + ", one-sided (first \(claim.rawValue))", statisticName: "mean difference", statistic: difference,
            degreesOfFreedom: [], estimateName: "mean difference (first − second)", estimate: difference,
            pValue: p, pValueAgainst: against, pValueTwoSided: nil,
            interval: try bootstrapDifference(first, second, resamples: bootstrapResamples, seed: seed),
            verdict: ClaimTest.verdict(pValue: p, pValueAgainst: against, alpha: alpha),
            detectable: detectable, notes: notes)
    }

    // MARK: Bootstrap

    /// A bootstrap interval of mean(first) − mean(second): each sample is
    /// resampled with replacement on its own, `resamples` times, with
    /// `Xoshiro256(seed:)`. BCa falls back to percentile, and says so in
    /// `method`, when its correction is undefined (all resamples on one side
    /// of the estimate, or no jackknife spread). O(resamples · n).
    public static func bootstrapDifference(
        _ first: [Double], _ second: [Double], level: Double = 0.95, resamples: Int = 10_000,
        seed: UInt64, method: BootstrapMethod = .bca
    ) throws(StatisticsError) -> ConfidenceInterval {
        let name = "a bootstrap interval of the mean difference"
        try checkSamples(first, second, minimum: 2, test: name)
        return try bootstrap(first, second, level: level, resamples: resamples, seed: seed, method: method) { a, b in
            mean(a) - mean(b)
        }
    }

    /// A bootstrap interval of SD(first) / SD(second), resampled as
    /// `bootstrapDifference`. A resample whose second group has no spread
    /// gives +∞; one where neither has any is dropped, and `method` says how
    /// many were. BCa needs 3 values per sample (its jackknife takes SDs of
    /// n − 1 values); with 2 it falls back to percentile and says so.
    public static func bootstrapSDRatio(
        _ first: [Double], _ second: [Double], level: Double = 0.95, resamples: Int = 10_000,
        seed: UInt64, method: BootstrapMethod = .bca
    ) throws(StatisticsError) -> ConfidenceInterval {
        let name = "a bootstrap interval of the SD ratio"
        try checkSamples(first, second, minimum: 2, test: name)
        guard sampleVariance(first) + sampleVariance(second) > 0 else { throw .noVariation(test: name) }
        return try bootstrap(first, second, level: level, resamples: resamples, seed: seed, method: method) { a, b in
            guard a.count >= 2, b.count >= 2 else { return nil }
            let va = sampleVariance(a), vb = sampleVariance(b)
            if vb == 0 { return va == 0 ? nil : .infinity }
            return (va / vb).squareRoot()
        }
    }

    /// The shared bootstrap: `statistic` returns nil for a resample where it
    /// is undefined (dropped and counted in `method`).
    static func bootstrap(
        _ first: [Double], _ second: [Double], level: Double, resamples: Int, seed: UInt64, method: BootstrapMethod,
        statistic: ([Double], [Double]) -> Double?
    ) throws(StatisticsError) -> ConfidenceInterval {
        guard level > 0, level < 1 else { throw .invalidParameter(name: "level", value: level, requirement: "in (0, 1)") }
        guard resamples >= 100 else {
            throw .invalidParameter(name: "resamples", value: Double(resamples), requirement: "at least 100 for a 95 % interval")
        }
        guard let estimate = statistic(first, second) else { throw .noVariation(test: "the bootstrap") }
        var rng = Xoshiro256(seed: seed)
        var a = first, b = second
        var replicates: [Double] = []
        replicates.reserveCapacity(resamples)
        for _ in 0..<resamples {
            for i in a.indices { a[i] = first[rng.index(below: first.count)] }
            for i in b.indices { b[i] = second[rng.index(below: second.count)] }
            if let value = statistic(a, b) { replicates.append(value) }
        }
        let dropped = resamples - replicates.count
        guard replicates.count >= resamples / 2 else { throw .noVariation(test: "the bootstrap") }
        replicates.sort()
        let tail = (1 - level) / 2
        var (lowerQuantile, upperQuantile) = (tail, 1 - tail)
        var used = "percentile"
        if method == .bca {
            switch bcaQuantiles(estimate: estimate, sorted: replicates, first: first, second: second, level: level, statistic: statistic) {
            case .success(let q):
                (lowerQuantile, upperQuantile) = q
                used = "BCa"
            case .failure(let reason):
                used = "percentile (BCa undefined: \(reason.message))"
            }
        }
        var description = "bootstrap \(used), \(resamples.grouped) resamples, seed \(seed)"
        if dropped > 0 { description += ", \(dropped.grouped) resamples without spread dropped" }
        return ConfidenceInterval(
            lower: quantile(sorted: replicates, lowerQuantile), upper: quantile(sorted: replicates, upperQuantile),
            level: level, method: description)
    }

    struct BCaUndefined: Error { var message: String }

    /// The BCa quantiles: z₀ from the share of replicates below the estimate
    /// (ties count half, as SciPy), the acceleration from a jackknife over
    /// each sample, combined as in SciPy's `_bca_interval`.
    static func bcaQuantiles(
        estimate: Double, sorted: [Double], first: [Double], second: [Double], level: Double,
        statistic: ([Double], [Double]) -> Double?
    ) -> Result<(Double, Double), BCaUndefined> {
        let below = Double(sorted.count { $0 < estimate }), atOrBelow = Double(sorted.count { $0 <= estimate })
        let share = (below + atOrBelow) / (2 * Double(sorted.count))
        guard share > 0, share < 1 else { return .failure(BCaUndefined(message: "every resample lies on one side of the estimate")) }
        let z0 = StandardNormal.quantile(share)
        var numerator = 0.0, denominator = 0.0
        for sample in 0..<2 {
            let values = sample == 0 ? first : second
            var jackknife: [Double] = []
            for i in values.indices {
                var shorter = values
                shorter.remove(at: i)
                guard let value = sample == 0 ? statistic(shorter, second) : statistic(first, shorter), value.isFinite else {
                    return .failure(BCaUndefined(message: "the jackknife statistic is undefined"))
                }
                jackknife.append(value)
            }
            let n = Double(values.count), centre = mean(jackknife)
            for value in jackknife {
                let u = (n - 1) * (centre - value)
                numerator += u * u * u / (n * n * n)
                denominator += u * u / (n * n)
            }
        }
        guard denominator > 0 else { return .failure(BCaUndefined(message: "the jackknife has no spread")) }
        let acceleration = numerator / (6 * Double.pow(denominator, 1.5))
        let z = StandardNormal.quantile((1 + level) / 2)
        func adjusted(_ zAlpha: Double) -> Double {
            let shifted = z0 + zAlpha
            return StandardNormal.cdf(z0 + shifted / (1 - acceleration * shifted))
        }
        let (lower, upper) = (adjusted(-z), adjusted(z))
        guard lower.isFinite, upper.isFinite, lower < upper else {
            return .failure(BCaUndefined(message: "the acceleration is too large"))
        }
        return .success((lower, upper))
    }

    /// The q-quantile of sorted values with linear interpolation between
    /// order statistics (NumPy's default `percentile`).
    public static func quantile(sorted: [Double], _ q: Double) -> Double {
        let h = q * Double(sorted.count - 1)
        let i = min(Int(h.rounded(.down)), sorted.count - 1)
        let fraction = h - Double(i)
        guard fraction > 0, i + 1 < sorted.count, sorted[i] != sorted[i + 1] else { return sorted[i] }
        return sorted[i] + fraction * (sorted[i + 1] - sorted[i])
    }

    // MARK: Brown–Forsythe

    /// An F statistic with its degrees of freedom and upper-tail p.
    public struct FStatistic: Sendable {
        public var f: Double
        public var degreesOfFreedom: (Double, Double)
        public var pValue: Double
    }

    /// The Brown–Forsythe test of equal variances over k ≥ 2 groups: a one-way
    /// ANOVA on the absolute deviations from each group's median, with
    /// F(k − 1, N − k). SciPy's `levene(*groups, center='median')`.
    ///
    /// Needs 3 values per group: with 2, both deviations equal half the
    /// range, leaving no within-group spread. Throws `noVariation` when every
    /// group's deviations are all equal. O(N log N).
    public static func brownForsythe(_ groups: [[Double]]) throws(StatisticsError) -> FStatistic {
        let name = "the Brown–Forsythe test"
        guard groups.count >= 2 else {
            throw .invalidParameter(name: "the number of groups", value: Double(groups.count), requirement: "at least 2")
        }
        for (index, group) in groups.enumerated() {
            try check(group, groups.count == 2 ? (index == 0 ? "first" : "second") : "group \(index + 1)", minimum: 3, test: name)
        }
        let deviations = groups.map(absoluteDeviationsFromMedian)
        let n = Double(deviations.reduce(0) { $0 + $1.count }), k = Double(groups.count)
        let grand = deviations.reduce(0) { $0 + $1.reduce(0, +) } / n
        var between = 0.0, within = 0.0
        for group in deviations {
            let centre = mean(group)
            between += Double(group.count) * (centre - grand) * (centre - grand)
            within += group.reduce(0) { $0 + ($1 - centre) * ($1 - centre) }
        }
        guard within > 0 else { throw .noVariation(test: name) }
        let f = (between / (k - 1)) / (within / (n - k))
        return FStatistic(f: f, degreesOfFreedom: (k - 1, n - k), pValue: FisherF(k - 1, n - k).sf(f))
    }

    /// Brown–Forsythe for a claim about spread: "the first sample varies
    /// `claim` than the second". With two groups F = t², t the pooled
    /// two-sample t of the absolute deviations, so the one-sided p is the
    /// t tail on the claimed side (SciPy: `ttest_ind(|a − median(a)|,
    /// |b − median(b)|, alternative=…)`). The estimate is SD(first)/SD(second)
    /// with its bootstrap BCa interval (`bootstrapSDRatio`, `seed`); the
    /// detectable ratio is `detectableSDRatio`'s approximation.
    public static func brownForsythe(
        _ first: [Double], _ second: [Double], claim: ClaimDirection, seed: UInt64, bootstrapResamples: Int = 10_000
    ) throws(StatisticsError) -> ClaimTest {
        let test = try brownForsythe([first, second])
        let da = absoluteDeviationsFromMedian(first), db = absoluteDeviationsFromMedian(second)
        // The sign of t: positive when the first sample's deviations are smaller.
        let t = (mean(db) >= mean(da) ? 1.0 : -1.0) * test.f.squareRoot()
        let (smaller, larger) = StudentT(degreesOfFreedom: test.degreesOfFreedom.1).tails(-t)
        let (p, against) = claim == .less ? (smaller, larger) : (larger, smaller)
        return ClaimTest(
            test: "Brown–Forsythe test, one-sided (first varies \(claim.rawValue))", statisticName: "F", statistic: test.f,
            degreesOfFreedom: [test.degreesOfFreedom.0, test.degreesOfFreedom.1],
            estimateName: "SD ratio (first / second)", estimate: sampleVariance(first).squareRoot() / sampleVariance(second).squareRoot(),
            pValue: p, pValueAgainst: against, pValueTwoSided: test.pValue,
            interval: try bootstrapSDRatio(first, second, resamples: bootstrapResamples, seed: seed),
            verdict: ClaimTest.verdict(pValue: p, pValueAgainst: against, alpha: alpha),
            detectable: try detectableSDRatio(firstCount: first.count, secondCount: second.count, claim: claim), notes: [])
    }

    static func absoluteDeviationsFromMedian(_ values: [Double]) -> [Double] {
        let sorted = values.sorted(), middle = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[middle] : 0.5 * (sorted[middle - 1] + sorted[middle])
        return values.map { abs($0 - median) }
    }

    // MARK: Equivalence

    /// Two one-sided tests (TOST, Schuirmann 1987) of the claim that the mean
    /// difference lies within ±`margin`: p = max(p of d > −margin, p of
    /// d < +margin), each a t-test (Welch, or the one-sample t of the
    /// differences when `paired`). Agrees at p < α; disagrees when the
    /// difference lies outside the margin at p < α (the smaller one-sided p
    /// doubled, Bonferroni over the two sides). The interval is the
    /// (1 − 2α) = 90 % t interval that TOST corresponds to; the detectable
    /// effect is the smallest margin shown with 80 % power when the true
    /// difference is 0, (t₁₋α,ν + t₀.₉,ν)·SE (the SE taken as known).
    ///
    /// SciPy check: p of each side is `ttest_ind(a + margin, b,
    /// equal_var=False, alternative='greater')` and `ttest_ind(a − margin, b,
    /// equal_var=False, alternative='less')` (`ttest_1samp` for paired).
    public static func equivalence(
        _ first: [Double], _ second: [Double], margin: Double, paired: Bool
    ) throws(StatisticsError) -> ClaimTest {
        let name = "equivalence test (TOST)"
        let (difference, standardError, df) = try marginParts(first, second, margin: margin, paired: paired, test: name)
        let distribution = StudentT(degreesOfFreedom: df)
        let tLower = (difference + margin) / standardError, tUpper = (difference - margin) / standardError
        let (belowLower, aboveLower) = distribution.tails(tLower)
        let (belowUpper, aboveUpper) = distribution.tails(tUpper)
        let p = max(aboveLower, belowUpper)
        let against = min(1, 2 * min(belowLower, aboveUpper))
        let critical = distribution.quantile(1 - alpha)
        return ClaimTest(
            test: "\(name), margin ±\(margin), \(paired ? "paired" : "Welch")", statisticName: "t",
            statistic: aboveLower >= belowUpper ? tLower : tUpper, degreesOfFreedom: [df],
            estimateName: "mean difference (first − second)", estimate: difference,
            pValue: p, pValueAgainst: against, pValueTwoSided: nil,
            interval: ConfidenceInterval(lower: difference - critical * standardError, upper: difference + critical * standardError,
                                         level: 1 - 2 * alpha, method: paired ? "paired t" : "Welch t"),
            verdict: ClaimTest.verdict(pValue: p, pValueAgainst: against, alpha: alpha),
            detectable: DetectableEffect(
                value: (critical + distribution.quantile(1 - (1 - power) / 2)) * standardError,
                method: "smallest margin shown with \(percent(power)) power when the true difference is 0, taking the observed SE as known"),
            notes: [])
    }

    /// A non-inferiority test (one side of TOST) of the claim that the mean
    /// difference first − second is below `margin`: a one-sided t-test of
    /// d < margin (Welch, or the one-sample t of the differences when
    /// `paired`). Agrees at p < α; disagrees when d > margin at p < α. The
    /// interval is the 90 % t interval, whose upper end is the one-sided 95 %
    /// bound the verdict compares with the margin; the detectable effect is
    /// the smallest margin shown with 80 % power when the true difference is
    /// 0, (t₁₋α,ν + t_power,ν)·SE (the SE taken as known).
    ///
    /// SciPy check: p is `ttest_1samp(a − b − margin, 0,
    /// alternative='less')` for paired, `ttest_ind(a − margin, b,
    /// equal_var=False, alternative='less')` otherwise.
    public static func nonInferiority(
        _ first: [Double], _ second: [Double], margin: Double, paired: Bool
    ) throws(StatisticsError) -> ClaimTest {
        let name = "non-inferiority test"
        let (difference, standardError, df) = try marginParts(first, second, margin: margin, paired: paired, test: name)
        let distribution = StudentT(degreesOfFreedom: df)
        let t = (difference - margin) / standardError
        let (p, against) = distribution.tails(t)
        let critical = distribution.quantile(1 - alpha)
        return ClaimTest(
            test: "\(name), margin \(margin), \(paired ? "paired" : "Welch"), one-sided (first − second < margin)", statisticName: "t",
            statistic: t, degreesOfFreedom: [df], estimateName: "mean difference (first − second)", estimate: difference,
            pValue: p, pValueAgainst: against, pValueTwoSided: nil,
            interval: ConfidenceInterval(lower: difference - critical * standardError, upper: difference + critical * standardError,
                                         level: 1 - 2 * alpha, method: paired ? "paired t" : "Welch t"),
            verdict: ClaimTest.verdict(pValue: p, pValueAgainst: against, alpha: alpha),
            detectable: DetectableEffect(
                value: (critical + distribution.quantile(power)) * standardError,
                method: "smallest margin shown with \(percent(power)) power when the true difference is 0, taking the observed SE as known"),
            notes: [])
    }

    /// The mean difference, its standard error and degrees of freedom for a
    /// test against a margin: paired (one-sample t of the differences) or Welch.
    static func marginParts(
        _ first: [Double], _ second: [Double], margin: Double, paired: Bool, test name: String
    ) throws(StatisticsError) -> (difference: Double, standardError: Double, degreesOfFreedom: Double) {
        guard margin > 0, margin.isFinite else { throw .invalidParameter(name: "margin", value: margin, requirement: "finite and > 0") }
        try checkSamples(first, second, minimum: 2, test: name)
        guard paired else { return try welchParts(first, second, test: name) }
        guard first.count == second.count else { throw .unpairedLengths(first: first.count, second: second.count) }
        let differences = zip(first, second).map { $0 - $1 }
        let variance = sampleVariance(differences)
        guard variance > 0 else { throw .noVariation(test: name) }
        return (mean(differences), (variance / Double(differences.count)).squareRoot(), Double(differences.count - 1))
    }

    // MARK: Helpers

    /// Both samples of a two-sample test: enough values, all finite.
    static func checkSamples(_ first: [Double], _ second: [Double], minimum: Int, test: String) throws(StatisticsError) {
        try check(first, "first", minimum: minimum, test: test)
        try check(second, "second", minimum: minimum, test: test)
    }

    static func check(_ values: [Double], _ sample: String, minimum: Int, test: String) throws(StatisticsError) {
        guard values.count >= minimum else { throw .tooFewValues(sample: sample, count: values.count, minimum: minimum, test: test) }
        if let index = values.firstIndex(where: { !$0.isFinite }) { throw .notFinite(sample: sample, index: index) }
    }

    /// The inputs of a power calculation: α and power in (0, 1), 2 values per sample.
    static func checkPowerInputs(_ firstCount: Int, _ secondCount: Int, alpha: Double, power: Double, test: String) throws(StatisticsError) {
        for (name, value) in [("alpha", alpha), ("power", power)] where !(value > 0 && value < 1) {
            throw .invalidParameter(name: name, value: value, requirement: "in (0, 1)")
        }
        for (sample, count) in [("first", firstCount), ("second", secondCount)] where count < 2 {
            throw .tooFewValues(sample: sample, count: count, minimum: 2, test: test)
        }
    }

    static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }

    /// With n − 1 in the denominator; two passes, so a large common offset costs no precision.
    static func sampleVariance(_ values: [Double]) -> Double {
        let centre = mean(values)
        return values.reduce(0) { $0 + ($1 - centre) * ($1 - centre) } / Double(values.count - 1)
    }

    /// C(n, k) as a Double (exact below 2⁵³).
    static func binomial(_ n: Int, _ k: Int) -> Double {
        var result = 1.0
        for i in 0..<min(k, n - k) { result = result * Double(n - i) / Double(i + 1) }
        return result.rounded()
    }

    /// Calls `body` with each k-subset of 0..<n, in lexicographic order.
    static func forEachCombination(n: Int, k: Int, _ body: ([Int]) -> Void) {
        var indices = Array(0..<k)
        while true {
            body(indices)
            var i = k - 1
            while i >= 0 && indices[i] == n - k + i { i -= 1 }
            if i < 0 { return }
            indices[i] += 1
            for j in (i + 1)..<k { indices[j] = indices[j - 1] + 1 }
        }
    }
}

extension Xoshiro256 {
    /// Uniform in 0..<bound, by the high word of a 64×64-bit product
    /// (Lemire, without the rejection step: the bias is below bound/2⁶⁴).
    /// Written out rather than `Int.random(in:using:)` so a seed gives the
    /// same draws whatever the standard library's algorithm.
    mutating func index(below bound: Int) -> Int {
        Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
