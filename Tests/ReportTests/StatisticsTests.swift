import Foundation
@testable import PBTReport
import Testing

// Reference values come from SciPy 1.17.1 (NumPy 2.4.6), each test quoting
// the call that produced them (`from scipy import stats, special`).
// Tolerances are relative unless stated; each check prints what it measured.

/// Expects |value − expected| ≤ tolerance · max(|expected|, floor), printing the difference.
private func expectNear(
    _ value: Double, _ expected: Double, relative tolerance: Double = 1e-10, floor: Double = 1e-300, _ label: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let difference = abs(value - expected)
    let bound = tolerance * max(abs(expected), floor)
    print("\(label): got \(value), expected \(expected), diff \(difference)")
    #expect(difference <= bound, "\(label): \(value) vs \(expected) (diff \(difference) > \(bound))", sourceLocation: sourceLocation)
}

/// Per-seed NLLs (bits) of two made-up methods; SciPy's values below are for these.
private let first = [4.21, 4.35, 4.18, 4.40, 4.29, 4.25]
private let second = [4.38, 4.45, 4.31, 4.52, 4.41, 4.36, 4.47]
/// A third, widely spread sample.
private let third = [3.9, 4.6, 4.1, 4.8, 4.0]

/// The statistics behind the claims' verdicts (`swift test --filter StatisticsTests`).
@Suite("statistics")
struct StatisticsTests {}

extension StatisticsTests {
    @Suite("distributions against SciPy")
    struct Distributions {
        @Test("the regularized incomplete beta function matches special.betainc / betaincc, in both tails")
        func incompleteBetaMatchesSciPy() {
            // special.betainc(a, b, x), special.betaincc(a, b, x)
            let cases: [(Double, Double, Double, Double, Double)] = [
                (0.5, 0.5, 0.3, 0.36901011956554536, 0.6309898804344546),
                (2, 3, 0.4, 0.5247999999999999, 0.47519999999999996),
                (5, 0.5, 0.999, 0.9222819921009667, 0.07771800789903324),
                (30, 40, 0.2, 8.14350065456995e-06, 0.9999918564993454),
                (100, 200, 0.4, 0.9916844649260862, 0.00831553507391387),
                (0.5, 12, 1e-6, 0.0038683120033136545, 0.9961316879966864),
            ]
            for (a, b, x, lower, upper) in cases {
                let value = incompleteBeta(a, b, x: x, y: 1 - x)
                expectNear(value.lower, lower, relative: 1e-12, "I_\(x)(\(a), \(b))")
                expectNear(value.upper, upper, relative: 1e-12, "1 − I_\(x)(\(a), \(b))")
            }
            #expect(incompleteBeta(2, 3, x: 0, y: 1) == (0, 1))
            #expect(incompleteBeta(2, 3, x: 1, y: 0) == (1, 0))
        }

        @Test("Student's t cdf, sf and quantile match stats.t, including non-integer ν and far tails")
        func studentTMatchesSciPy() {
            // stats.t.cdf(t, df), stats.t.sf(t, df)
            let cases: [(Double, Double, Double, Double)] = [
                (1, -3.0, 0.10241638234956672, 0.8975836176504333),
                (2.5, 1.7, 0.8971938914200581, 0.10280610857994191),
                (10, 0.3, 0.6148396962171008, 0.3851603037828993),
                (10, -8.0, 5.887471394833083e-06, 0.9999941125286052),
                (100, 2.0, 0.9758939106344332, 0.024106089365566824),
                (3.7, 25.0, 0.9999854561200124, 1.4543879987580456e-05),
            ]
            for (df, t, cdf, sf) in cases {
                let distribution = StudentT(degreesOfFreedom: df)
                expectNear(distribution.cdf(t), cdf, relative: 1e-12, "t.cdf(\(t), \(df))")
                expectNear(distribution.sf(t), sf, relative: 1e-12, "t.sf(\(t), \(df))")
            }
            // stats.t.ppf(p, df)
            let quantiles: [(Double, Double, Double)] = [
                (1, 0.975, 12.706204736174694), (2.5, 0.05, -2.5582186141359364), (10, 0.95, 1.8124611228116756),
                (100, 0.999, 3.173739493738783), (3.7, 1e-6, -51.64005027444269),
            ]
            for (df, p, t) in quantiles {
                expectNear(StudentT(degreesOfFreedom: df).quantile(p), t, relative: 1e-11, "t.ppf(\(p), \(df))")
            }
            #expect(StudentT(degreesOfFreedom: 4).quantile(0.5) == 0)
            #expect(StudentT(degreesOfFreedom: 4).cdf(.infinity) == 1 && StudentT(degreesOfFreedom: 4).cdf(-.infinity) == 0)
        }

        @Test("Fisher's F cdf, sf and quantile match stats.f")
        func fisherFMatchesSciPy() {
            // stats.f.cdf(x, d1, d2), stats.f.sf(x, d1, d2)
            let cases: [(Double, Double, Double, Double, Double)] = [
                (1, 18, 4.2, 0.9447137886394071, 0.05528621136059286),
                (3, 12, 0.5, 0.3107306361383482, 0.6892693638616519),
                (9, 9, 0.3146, 0.050011137528733304, 0.9499888624712667),
                (2, 40, 9.0, 0.9994075660267099, 0.0005924339732901045),
            ]
            for (d1, d2, x, cdf, sf) in cases {
                expectNear(FisherF(d1, d2).cdf(x), cdf, relative: 1e-12, "f.cdf(\(x), \(d1), \(d2))")
                expectNear(FisherF(d1, d2).sf(x), sf, relative: 1e-12, "f.sf(\(x), \(d1), \(d2))")
            }
            // stats.f.ppf(p, d1, d2)
            let quantiles: [(Double, Double, Double, Double)] = [
                (9, 9, 0.05, 0.3145749061513078), (9, 9, 0.8, 1.7873616342867082),
                (1, 18, 0.95, 4.413873419170566), (4, 30, 0.001, 0.022012571032069068),
            ]
            for (d1, d2, p, x) in quantiles {
                expectNear(FisherF(d1, d2).quantile(p), x, relative: 1e-11, "f.ppf(\(p), \(d1), \(d2))")
            }
        }

        @Test("the noncentral t cdf (AS 243) matches stats.nct.cdf for both signs of t and δ")
        func noncentralTMatchesSciPy() {
            // stats.nct.cdf(t, df, nc)
            let cases: [(Double, Double, Double, Double)] = [
                (5, 2.0, 1.5, 0.3004081731930979), (1.3, 3.0, 6.3, 0.6972041828993567),
                (18, 2.5, 1.734, 0.22376997454451236), (10, -1.0, -2.0, 0.19238843746962478),
                (10, 1.0, -0.5, 0.0696016836932485), (4, 8.0, 3.0, 0.0003511560751687865),
            ]
            for (df, nc, t, cdf) in cases {
                expectNear(NoncentralT(degreesOfFreedom: df, noncentrality: nc).cdf(t), cdf, relative: 1e-9, "nct.cdf(\(t), \(df), \(nc))")
            }
        }

        @Test("the standard normal cdf and quantile match stats.norm")
        func normalMatchesSciPy() {
            // stats.norm.cdf(x)
            for (x, cdf) in [(-8.0, 6.22096057427174e-16), (-1.0, 0.15865525393145707), (0.3, 0.6179114221889526), (2.5, 0.9937903346742238)] {
                expectNear(StandardNormal.cdf(x), cdf, relative: 1e-13, "norm.cdf(\(x))")
            }
            // stats.norm.ppf(p)
            for (p, x) in [(1e-12, -7.034483825301131), (0.01, -2.3263478740408408), (0.3, -0.5244005127080409),
                           (0.975, 1.959963984540054), (0.999999, 4.753424308817087)] {
                expectNear(StandardNormal.quantile(p), x, relative: 1e-14, "norm.ppf(\(p))")
            }
            #expect(abs(StandardNormal.quantile(0.5)) < 1e-15)
        }
    }

    @Suite("tests against SciPy")
    struct Tests {
        @Test("Welch's t-test matches ttest_ind(equal_var=False): t, Welch–Satterthwaite df, both one-sided and the two-sided p, 95 % CI")
        func welchMatchesSciPy() throws {
            // r = stats.ttest_ind(first, second, equal_var=False, alternative='less')
            // r.statistic, r.pvalue, r.df; r.confidence_interval(0.95) with the default two-sided alternative;
            // alternative='greater' and 'two-sided' for the other p values.
            let result = try StatisticalTests.welch(first, second, claim: .less)
            expectNear(result.statistic, -3.079733333685265, "t")
            expectNear(result.degreesOfFreedom[0], 9.94002356035473, "df")
            expectNear(result.pValue, 0.005862724759269247, relative: 1e-9, "p (less)")
            expectNear(result.pValueAgainst, 0.9941372752407307, relative: 1e-9, "p (greater)")
            expectNear(result.pValueTwoSided!, 0.011725449518538494, relative: 1e-9, "p (two-sided)")
            expectNear(result.interval.lower, -0.23151884460296307, relative: 1e-9, "CI lower")
            expectNear(result.interval.upper, -0.03705258396846385, relative: 1e-9, "CI upper")
            expectNear(result.estimate, 4.28 - (4.38 + 4.45 + 4.31 + 4.52 + 4.41 + 4.36 + 4.47) / 7, "mean difference")
            #expect(result.verdict == .agrees)
            #expect(result.interval.level == 0.95)

            let reversed = try StatisticalTests.welch(first, second, claim: .greater)
            #expect(reversed.verdict == .disagrees, "the same data against the opposite claim")
            #expect(reversed.pValue == result.pValueAgainst)
        }

        @Test("Welch's test with n = 2, and with one sample of zero variance, matches ttest_ind")
        func welchSmallAndZeroVariance() throws {
            // stats.ttest_ind([1, 2], [3, 5.5], equal_var=False, alternative='less')
            let small = try StatisticalTests.welch([1, 2], [3, 5.5], claim: .less)
            expectNear(small.statistic, -2.0426487199475707, "t (n = 2)")
            expectNear(small.degreesOfFreedom[0], 1.31201248049922, "df (n = 2)")
            expectNear(small.pValue, 0.12017368018990393, relative: 1e-9, "p (n = 2)")
            #expect(small.verdict == .inconclusive)
            #expect(small.detectable != nil)
            // stats.ttest_ind([4, 4, 4], [4.1, 4.3, 4.2], equal_var=False, alternative='less'): df = n − 1 of the other
            let constant = try StatisticalTests.welch([4, 4, 4], [4.1, 4.3, 4.2], claim: .less)
            expectNear(constant.statistic, -3.4641016151377393, relative: 1e-9, "t (zero variance)")
            expectNear(constant.degreesOfFreedom[0], 2, relative: 1e-12, "df (zero variance)")
            expectNear(constant.pValue, 0.03708995011372456, relative: 1e-8, "p (zero variance)")
        }

        @Test("identical samples give t = 0, p = 0.5 both ways and an inconclusive verdict")
        func identicalSamples() throws {
            let result = try StatisticalTests.welch(first, first, claim: .less)
            #expect(result.statistic == 0 && result.estimate == 0)
            #expect(result.pValue == 0.5 && result.pValueAgainst == 0.5)
            #expect(result.verdict == .inconclusive)
            let permutation = try StatisticalTests.permutation(first, first, claim: .less, seed: 1)
            #expect(permutation.verdict == .inconclusive)
            #expect(permutation.pValue > 0.5 && permutation.pValueAgainst > 0.5, "ties count on both sides")
        }

        @Test("the detectable difference solves the noncentral-t power equation as SciPy's brentq does")
        func detectableDifferenceMatchesSciPy() throws {
            // v = s1²/n1 + s2²/n2; df Welch–Satterthwaite; tc = stats.t.ppf(0.95, df);
            // lam = optimize.brentq(lambda l: stats.nct.sf(tc, df, l) - 0.8, 0, 40, xtol=1e-14); lam * sqrt(v)
            let sd1 = StatisticalTests.sampleVariance(first).squareRoot(), sd2 = StatisticalTests.sampleVariance(second).squareRoot()
            let observed = try StatisticalTests.detectableDifference(firstCount: 6, secondCount: 7, firstSD: sd1, secondSD: sd2)
            expectNear(observed.value, 0.11663102102548861, relative: 1e-8, "n = 6, 7, observed SDs")
            let tiny = try StatisticalTests.detectableDifference(firstCount: 2, secondCount: 2, firstSD: 0.05, secondSD: 0.08)
            expectNear(tiny.value, 0.29974180412028445, relative: 1e-8, "n = 2, 2")
            let ten = try StatisticalTests.detectableDifference(firstCount: 10, secondCount: 10, firstSD: 0.03, secondSD: 0.03)
            expectNear(ten.value, 0.034688914311179674, relative: 1e-8, "n = 10, 10")
            // The Welch test's own detectable difference is the one for its samples.
            #expect(try StatisticalTests.welch(first, second, claim: .less).detectable == observed)
        }

        @Test("the detectable SD ratio is the F-test's: sqrt(f.ppf(α)/f.ppf(power)) and its mirror")
        func detectableSDRatioMatchesSciPy() throws {
            // np.sqrt(stats.f.ppf(0.05, n1-1, n2-1) / stats.f.ppf(0.8, n1-1, n2-1)), and
            // np.sqrt(stats.f.ppf(0.95, n1-1, n2-1) / stats.f.ppf(0.2, n1-1, n2-1)) for 'greater'
            let cases: [(Int, Int, Double, Double)] = [(10, 10, 0.4195230448403733, 2.3836592823655143), (5, 8, 0.28688517715011286, 3.189580179421186)]
            for (n1, n2, less, greater) in cases {
                expectNear(try StatisticalTests.detectableSDRatio(firstCount: n1, secondCount: n2, claim: .less).value, less, relative: 1e-10, "less, \(n1) vs \(n2)")
                expectNear(try StatisticalTests.detectableSDRatio(firstCount: n1, secondCount: n2, claim: .greater).value, greater, relative: 1e-10, "greater, \(n1) vs \(n2)")
            }
        }

        @Test("the exact permutation test matches permutation_test(n_resamples=np.inf) over all 1,716 splits")
        func exactPermutationMatchesSciPy() throws {
            // stats.permutation_test((first, second), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
            //     permutation_type='independent', alternative='less', n_resamples=np.inf, vectorized=True).pvalue
            let result = try StatisticalTests.permutation(first, second, claim: .less, seed: 3)
            expectNear(result.pValue, 0.00641025641025641, relative: 1e-12, "p (less) = 11/1716")
            // … alternative='greater'
            expectNear(result.pValueAgainst, 0.9947552447552448, relative: 1e-12, "p (greater)")
            expectNear(result.statistic, -0.13428571428571345, relative: 1e-12, "mean difference")
            #expect(result.test.contains("exact over all 1,716 splits"))
            #expect(result.verdict == .agrees)
            #expect(result.interval.method.hasPrefix("bootstrap BCa"))
            // Overlapping samples: the same call with (3.9, 4.4, 4.1, 4.6) and (4.0, 4.3, 4.2, 4.5, 4.25).
            let overlapping = try StatisticalTests.permutation([3.9, 4.4, 4.1, 4.6], [4.0, 4.3, 4.2, 4.5, 4.25], claim: .less, seed: 3)
            expectNear(overlapping.pValue, 0.5317460317460317, relative: 1e-12, "p (overlapping)")
            #expect(overlapping.verdict == .inconclusive)
        }

        @Test("the Monte Carlo permutation test agrees with the exact one within 6 standard errors, and is seeded")
        func monteCarloPermutation() throws {
            let exact = try StatisticalTests.permutation(first, second, claim: .less, seed: 3).pValue
            let sampled = try StatisticalTests.permutation(first, second, claim: .less, seed: 3, exactLimit: 100, resamples: 100_000)
            // Standard error of a share p from 10⁵ draws: sqrt(p(1 − p)/10⁵) ≈ 0.00025.
            let standardError = (exact * (1 - exact) / 100_000).squareRoot()
            print("Monte Carlo p \(sampled.pValue) vs exact \(exact): \(abs(sampled.pValue - exact) / standardError) standard errors")
            #expect(abs(sampled.pValue - exact) <= 6 * standardError)
            #expect(sampled.test.contains("Monte Carlo over 100,000 random splits (seed 3)"))
            let again = try StatisticalTests.permutation(first, second, claim: .less, seed: 3, exactLimit: 100, resamples: 100_000)
            #expect(again == sampled, "same seed, same result")
            let other = try StatisticalTests.permutation(first, second, claim: .less, seed: 4, exactLimit: 100, resamples: 100_000)
            #expect(other.pValue != sampled.pValue, "another seed draws other splits")
        }

        @Test("a permutation test with 2 seeds each says it cannot reach p < 0.05 and stays inconclusive")
        func permutationWithTwoSeeds() throws {
            let result = try StatisticalTests.permutation([1, 1.1], [9, 9.1], claim: .less, seed: 1)
            expectNear(result.pValue, 1.0 / 6, relative: 1e-12, "p = 1/C(4, 2)")
            #expect(result.verdict == .inconclusive)
            #expect(result.notes.contains { $0.contains("smallest possible p is 0.167") })
            // Found by a user: a detectable difference was stated beside it, from the t approximation.
            #expect(result.detectable == nil && ReportContent.detectable(result) == "none: too few seeds to reach p < 0.05")
            let more = try StatisticalTests.permutation([1, 1.1, 1.2, 1.0], [9, 9.1, 9.2, 9.3], claim: .less, seed: 1)
            #expect(more.detectable != nil, "with 4 seeds each a p below 0.05 is reachable")
        }

        @Test("the BCa quantiles equal SciPy's _bca_interval for the same resampled statistics")
        func bcaQuantilesMatchSciPy() {
            // from scipy.stats import _resampling as R; i = np.arange(1000)
            // R._bca_interval((first, second), diff, -1, 0.025, -0.25 + 0.2 * (i / 999)**1.5, None, np)
            //   with diff = mean(x) − mean(y); returns (alpha_1, alpha_2, a_hat)
            let replicates = (0..<1000).map { -0.25 + 0.2 * Foundation.pow(Double($0) / 999, 1.5) }
            let difference = StatisticalTests.bcaQuantiles(
                estimate: StatisticalTests.mean(first) - StatisticalTests.mean(second), sorted: replicates,
                first: first, second: second, level: 0.95) { StatisticalTests.mean($0) - StatisticalTests.mean($1) }
            let (lower, upper) = try! difference.get()
            expectNear(lower, 0.17646353776501178, relative: 1e-12, "alpha_1, mean difference")
            expectNear(upper, 0.9987518674411558, relative: 1e-12, "alpha_2, mean difference")
            // The same with (first, third), ratio = std(x, ddof=1)/std(y, ddof=1), 0.05 + 1.2 * (i / 999)**2
            let ratioReplicates = (0..<1000).map { 0.05 + 1.2 * Foundation.pow(Double($0) / 999, 2) }
            let sdRatio: ([Double], [Double]) -> Double? = {
                (StatisticalTests.sampleVariance($0) / StatisticalTests.sampleVariance($1)).squareRoot()
            }
            let ratio = StatisticalTests.bcaQuantiles(
                estimate: sdRatio(first, third)!, sorted: ratioReplicates, first: first, second: third, level: 0.95, statistic: sdRatio)
            let (ratioLower, ratioUpper) = try! ratio.get()
            expectNear(ratioLower, 0.003052072431875663, relative: 1e-12, "alpha_1, SD ratio")
            expectNear(ratioUpper, 0.8912203779955771, relative: 1e-12, "alpha_2, SD ratio")
        }

        @Test("bootstrap intervals agree with stats.bootstrap within Monte Carlo error, and are seeded")
        func bootstrapMatchesSciPy() throws {
            // stats.bootstrap((x, y), statistic, vectorized=True, paired=False, n_resamples=100000, method=…,
            //     rng=np.random.default_rng(s)).confidence_interval, averaged over s = 0…9; the SDs over seeds
            //     were ≤ 0.0005 for the difference and the ratio's lower end, ≤ 0.006 for the ratio's upper end.
            //     Tolerances are about 4 of those SDs; BCa and percentile differ by more where they are told apart.
            let cases: [(String, BootstrapMethod, Double, Double, Double)] = [
                ("difference", .bca, -0.20966666666666578, -0.05309523809523762, 0.0015),
                ("difference", .percentile, -0.21154761904761843, -0.05519047619047575, 0.0015),
                ("ratio", .bca, 0.08597808725397595, 0.9971460058878291, 0.025),
                ("ratio", .percentile, 0.0935325046179254, 1.1062438133777759, 0.025),
            ]
            for (statistic, method, lower, upper, tolerance) in cases {
                let interval = statistic == "difference"
                    ? try StatisticalTests.bootstrapDifference(first, second, resamples: 100_000, seed: 11, method: method)
                    : try StatisticalTests.bootstrapSDRatio(first, third, resamples: 100_000, seed: 11, method: method)
                print("\(statistic) \(method): [\(interval.lower), \(interval.upper)] vs SciPy [\(lower), \(upper)] (\(interval.method))")
                #expect(abs(interval.lower - lower) <= (statistic == "ratio" ? 0.003 : tolerance), "\(statistic) \(method) lower")
                #expect(abs(interval.upper - upper) <= tolerance, "\(statistic) \(method) upper")
                #expect(interval.method.hasPrefix("bootstrap \(method == .bca ? "BCa" : "percentile"), 100,000 resamples, seed 11"))
            }
            let once = try StatisticalTests.bootstrapDifference(first, second, seed: 5)
            #expect(try StatisticalTests.bootstrapDifference(first, second, seed: 5) == once)
            #expect(try StatisticalTests.bootstrapDifference(first, second, seed: 6) != once)
        }

        @Test("bootstrap edge cases: constant samples give a point interval by the stated fallback; n = 2 ratio falls back to percentile")
        func bootstrapEdgeCases() throws {
            let point = try StatisticalTests.bootstrapDifference([4, 4], [5, 5], seed: 1)
            #expect(point.lower == -1 && point.upper == -1)
            #expect(point.method.contains("percentile (BCa undefined"))
            let ratio = try StatisticalTests.bootstrapSDRatio([1, 2], [3, 5], seed: 1)
            #expect(ratio.method.contains("percentile (BCa undefined: the jackknife statistic is undefined)"))
            #expect(ratio.method.contains("resamples without spread dropped"), "with 2 values a quarter of the resamples repeat one value")
            #expect(throws: StatisticsError.noVariation(test: "a bootstrap interval of the SD ratio")) {
                try StatisticalTests.bootstrapSDRatio([1, 1, 1], [2, 2, 2], seed: 1)
            }
        }

        @Test("Brown–Forsythe matches levene(center='median') for 2 and 3 groups")
        func brownForsytheMatchesSciPy() throws {
            // stats.levene(first, second, center='median'), stats.levene(first, second, third, center='median')
            let two = try StatisticalTests.brownForsythe([first, second])
            expectNear(two.f, 0.23546311657832258, relative: 1e-11, "F, 2 groups")
            expectNear(two.pValue, 0.6370221141491248, relative: 1e-10, "p, 2 groups")
            #expect(two.degreesOfFreedom == (1, 11))
            let three = try StatisticalTests.brownForsythe([first, second, third])
            expectNear(three.f, 4.336503683412668, relative: 1e-11, "F, 3 groups")
            expectNear(three.pValue, 0.03264252110219849, relative: 1e-10, "p, 3 groups")
            #expect(three.degreesOfFreedom == (2, 15))
        }

        @Test("the one-sided Brown–Forsythe claim test matches ttest_ind on absolute deviations from the median")
        func oneSidedBrownForsytheMatchesSciPy() throws {
            // za, zc = |first − median(first)|, |third − median(third)|
            // stats.levene(first, third, center='median'); stats.ttest_ind(za, zc, alternative='less' / 'greater').pvalue
            let result = try StatisticalTests.brownForsythe(first, third, claim: .less, seed: 2)
            expectNear(result.statistic, 3.8276598330063973, relative: 1e-11, "F")
            expectNear(result.pValueTwoSided!, 0.08211275922814752, relative: 1e-10, "two-sided p")
            expectNear(result.pValue, 0.04105637961407376, relative: 1e-10, "one-sided p (first varies less)")
            expectNear(result.pValueAgainst, 0.9589436203859263, relative: 1e-10, "one-sided p (first varies more)")
            expectNear(result.estimate, 0.21175637967062605, relative: 1e-12, "SD ratio")
            #expect(result.degreesOfFreedom == [1, 9])
            #expect(result.verdict == .agrees)
            #expect(result.interval.lower < result.estimate && result.estimate < result.interval.upper)
            let detectable = try StatisticalTests.detectableSDRatio(firstCount: 6, secondCount: 5, claim: .less)
            #expect(result.detectable == detectable)
            let opposite = try StatisticalTests.brownForsythe(first, third, claim: .greater, seed: 2)
            #expect(opposite.verdict == .disagrees)
        }

        @Test("the Welch TOST equals two shifted one-sided ttest_ind calls, with the 90 % interval")
        func welchEquivalenceMatchesSciPy() throws {
            // m = 0.1: stats.ttest_ind(first + m, second, equal_var=False, alternative='greater') → t, p of d > −m;
            // stats.ttest_ind(first − m, second, equal_var=False, alternative='less') → t, p of d < m;
            // the opposite alternatives for "outside"; confidence_interval(0.90) of the unshifted two-sided test.
            let result = try StatisticalTests.equivalence(first, second, margin: 0.1, paired: false)
            expectNear(result.pValue, 0.7749890054087338, relative: 1e-9, "TOST p (the larger of the two)")
            expectNear(result.statistic, -0.7863148937068701, relative: 1e-10, "t of the binding side")
            expectNear(result.pValueAgainst, 2 * 0.2250109945912661, relative: 1e-9, "p outside, Bonferroni-doubled")
            expectNear(result.interval.lower, -0.21336293088708358, relative: 1e-9, "90 % CI lower")
            expectNear(result.interval.upper, -0.0552084976843434, relative: 1e-9, "90 % CI upper")
            #expect(abs(result.interval.level - 0.9) < 1e-15)
            #expect(result.verdict == .inconclusive)
        }

        @Test("the paired TOST equals two shifted ttest_1samp calls on the differences")
        func pairedEquivalenceMatchesSciPy() throws {
            // d = replay − winner, m = 0.05: stats.ttest_1samp(d, -m, alternative='greater'), stats.ttest_1samp(d, m, alternative='less')
            let replay = [4.12, 4.20, 4.15, 4.09, 4.18], winner = [4.10, 4.17, 4.16, 4.08, 4.13]
            let result = try StatisticalTests.equivalence(replay, winner, margin: 0.05, paired: true)
            expectNear(result.pValue, 0.0199709840358594, relative: 1e-9, "TOST p")
            expectNear(result.statistic, -3.0000000000000004, relative: 1e-10, "t of the binding side")
            expectNear(result.estimate, 0.020000000000000108, relative: 1e-10, "mean difference")
            #expect(result.degreesOfFreedom == [4])
            #expect(result.verdict == .agrees)
            #expect(result.pValueAgainst == 1)
            // Far outside the margin, the same test disagrees.
            let far = try StatisticalTests.equivalence(replay.map { $0 + 0.3 }, winner, margin: 0.05, paired: true)
            #expect(far.verdict == .disagrees)
        }

        @Test("the paired non-inferiority test equals ttest_1samp of the differences minus the margin, with the 90 % interval")
        func pairedNonInferiorityMatchesSciPy() throws {
            // d = replay − winner, m = 0.05: stats.ttest_1samp(d − m, 0, alternative='less') → t, p;
            // alternative='greater' → p against; stats.ttest_1samp(d, 0).confidence_interval(0.90).
            let replay = [4.12, 4.20, 4.15, 4.09, 4.18], winner = [4.10, 4.17, 4.16, 4.08, 4.13]
            let result = try StatisticalTests.nonInferiority(replay, winner, margin: 0.05, paired: true)
            expectNear(result.statistic, -3.0000000000000004, relative: 1e-10, "t")
            expectNear(result.pValue, 0.0199709840358594, relative: 1e-9, "p of d < m")
            expectNear(result.pValueAgainst, 0.9800290159641406, relative: 1e-9, "p of d > m")
            expectNear(result.interval.lower, -0.0013184678632663233, relative: 1e-9, "90 % CI lower")
            expectNear(result.interval.upper, 0.041318467863266525, relative: 1e-9, "90 % CI upper")
            #expect(result.degreesOfFreedom == [4])
            #expect(result.verdict == .agrees)
            // Worse than the margin by far, it disagrees; a much better replay still agrees (no lower bound).
            #expect(try StatisticalTests.nonInferiority(replay.map { $0 + 0.3 }, winner, margin: 0.05, paired: true).verdict == .disagrees)
            #expect(try StatisticalTests.nonInferiority(replay.map { $0 - 0.5 }, winner, margin: 0.05, paired: true).verdict == .agrees)
        }

        @Test("the Welch non-inferiority test equals ttest_ind of the first sample minus the margin")
        func welchNonInferiorityMatchesSciPy() throws {
            // stats.ttest_ind(first − 0.1, second, equal_var=False, alternative='less') → t, p, df; 'greater' → p against
            let result = try StatisticalTests.nonInferiority(first, second, margin: 0.1, paired: false)
            expectNear(result.statistic, -5.37315177366366, relative: 1e-10, "t")
            expectNear(result.pValue, 0.0001598196241902839, relative: 1e-8, "p")
            expectNear(result.pValueAgainst, 0.9998401803758097, relative: 1e-10, "p against")
            expectNear(result.degreesOfFreedom[0], 9.94002356035473, relative: 1e-12, "Welch ν")
            #expect(throws: StatisticsError.invalidParameter(name: "margin", value: -1, requirement: "finite and > 0")) {
                try StatisticalTests.nonInferiority(first, second, margin: -1, paired: false)
            }
        }

        @Test("the verdict rule: agrees only at p < α for the claim, disagrees only at p < α against it")
        func verdictRule() {
            #expect(ClaimTest.verdict(pValue: 0.049, pValueAgainst: 0.951, alpha: 0.05) == .agrees)
            #expect(ClaimTest.verdict(pValue: 0.05, pValueAgainst: 0.95, alpha: 0.05) == .inconclusive)
            #expect(ClaimTest.verdict(pValue: 0.97, pValueAgainst: 0.03, alpha: 0.05) == .disagrees)
            #expect(ClaimTest.verdict(pValue: 0.5, pValueAgainst: 0.5, alpha: 0.05) == .inconclusive)
        }

        @Test("a claim test encodes to JSON for results.json and decodes to the same value")
        func claimTestIsCodable() throws {
            let result = try StatisticalTests.welch(first, second, claim: .less)
            let decoded = try JSONDecoder().decode(ClaimTest.self, from: JSONEncoder().encode(result))
            #expect(decoded == result)
        }
    }

    @Suite("bad input gets a clear error")
    struct Errors {
        @Test("NaN or infinity in a sample names the sample and index")
        func nonFinite() {
            #expect(throws: StatisticsError.notFinite(sample: "second", index: 1)) {
                try StatisticalTests.welch([1, 2], [3, .nan, 4], claim: .less)
            }
            #expect(throws: StatisticsError.notFinite(sample: "first", index: 0)) {
                try StatisticalTests.permutation([.infinity, 2], [3, 4], claim: .less, seed: 1)
            }
            #expect(throws: StatisticsError.notFinite(sample: "first", index: 2)) {
                try StatisticalTests.brownForsythe([1, 2, .nan], [3, 4, 5], claim: .less, seed: 1)
            }
            let message = StatisticsError.notFinite(sample: "second", index: 1).description
            #expect(message.contains("NaN or infinite") && message.contains("fix or drop that run"))
        }

        @Test("too few values: tests need 2 per sample, Brown–Forsythe 3, and say to run more seeds")
        func tooFew() {
            #expect(throws: StatisticsError.tooFewValues(sample: "first", count: 1, minimum: 2, test: "Welch's t-test")) {
                try StatisticalTests.welch([1], [2, 3], claim: .less)
            }
            #expect(throws: StatisticsError.tooFewValues(sample: "second", count: 0, minimum: 2, test: "permutation test of the mean difference")) {
                try StatisticalTests.permutation([1, 2], [], claim: .less, seed: 1)
            }
            #expect(throws: StatisticsError.tooFewValues(sample: "first", count: 2, minimum: 3, test: "the Brown–Forsythe test")) {
                try StatisticalTests.brownForsythe([1, 2], [3, 4, 6], claim: .less, seed: 1)
            }
            #expect(StatisticsError.tooFewValues(sample: "first", count: 1, minimum: 2, test: "Welch's t-test").description.contains("run more seeds"))
        }

        @Test("zero variance in both samples makes the t-tests and Brown–Forsythe throw, not divide by zero")
        func zeroVariance() {
            #expect(throws: StatisticsError.noVariation(test: "Welch's t-test")) {
                try StatisticalTests.welch([4, 4], [5, 5], claim: .less)
            }
            #expect(throws: StatisticsError.noVariation(test: "the Brown–Forsythe test")) {
                try StatisticalTests.brownForsythe([4, 4, 4], [5, 5, 5], claim: .less, seed: 1)
            }
            #expect(throws: StatisticsError.noVariation(test: "equivalence test (TOST)")) {
                try StatisticalTests.equivalence([4, 5], [3, 4], margin: 0.1, paired: true)
            }
        }

        @Test("bad parameters: margin, pairing, resamples, α and power")
        func badParameters() {
            #expect(throws: StatisticsError.invalidParameter(name: "margin", value: 0, requirement: "finite and > 0")) {
                try StatisticalTests.equivalence([1, 2], [3, 4], margin: 0, paired: false)
            }
            #expect(throws: StatisticsError.unpairedLengths(first: 2, second: 3)) {
                try StatisticalTests.equivalence([1, 2], [3, 4, 5], margin: 1, paired: true)
            }
            #expect(throws: StatisticsError.invalidParameter(name: "resamples", value: 10, requirement: "at least 100 for a 95 % interval")) {
                try StatisticalTests.bootstrapDifference([1, 2], [3, 4], resamples: 10, seed: 1)
            }
            #expect(throws: StatisticsError.invalidParameter(name: "power", value: 1, requirement: "in (0, 1)")) {
                try StatisticalTests.detectableDifference(firstCount: 3, secondCount: 3, firstSD: 1, secondSD: 1, power: 1)
            }
        }
    }
}
