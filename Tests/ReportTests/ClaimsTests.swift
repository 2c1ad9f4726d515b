import Foundation
import PBTSchedules
@testable import PBTReport
import Testing

/// Claims on constructed results: each verdict (agrees, disagrees,
/// inconclusive) reached by the tests the rule states, and no checkpoint
/// left out of it.
@Suite("claims table")
struct ClaimsTests {
    static let base: [Double] = [5, 4, 3.5, 3]
    /// Small per-seed differences, so every group has some spread.
    static let jitter: [Double] = [0, 0.02, 0.01, 0.03, 0.015, 0.025]

    /// `offsets[method]` shifts every NLL of a seed (one seed per offset).
    static func results(_ offsets: [(String, [Double])], base: [Double] = base, lineages: [String: Int] = [:],
                        replays: [ReplayResult] = []) -> ExperimentResults {
        var runs: [MethodRun] = []
        for (method, seedOffsets) in offsets {
            for (index, offset) in seedOffsets.enumerated() {
                runs.append(Fixture.run(method, seed: index + 1, nlls: Fixture.shifted(base, offset), lineages: lineages[method] ?? 1))
            }
        }
        return Fixture.results(runs, replays: replays, budget: base.count * Fixture.stepsPerTrial)
    }

    /// `seeds` offsets: `shift` plus a little jitter.
    static func seeds(_ shift: Double, _ seeds: Int = 5) -> [Double] { jitter.prefix(seeds).map { $0 + shift } }

    static func claim(_ label: String, _ results: ExperimentResults) -> ClaimRow {
        Claims.evaluate(results).first { $0.label == label }!
    }

    // MARK: (a)

    @Test("(a) agrees when every permutation test, at every checkpoint and against every method, puts PBT-5x5 lower")
    func computeAgrees() throws {
        let row = Self.claim("(a)", Self.results([(MethodName.pbt5x5, Self.seeds(0)), (MethodName.randomSearch, Self.seeds(1)),
                                                  (MethodName.fixedLR, Self.seeds(2))]))
        #expect(row.verdict == .agrees)
        #expect(row.comparisons.count == 3 * 2, "three checkpoints × two other methods")
        #expect(row.evidence.count == 3)
        #expect(row.evidence[0].hasPrefix("25 % of budget (100 steps, fixed windows): mean best NLL PBT-5x5 5.015"))
        for comparison in row.comparisons {
            let test = try #require(comparison.test)
            #expect(test.test.hasPrefix("permutation test of the mean difference, exact over all 252 splits"))
            #expect(test.pValue == 1.0 / 252, "the observed split is the most extreme of C(10, 5)")
            #expect(test.interval.upper < 0 && test.interval.method.hasPrefix("bootstrap BCa"))
            #expect(test.detectable != nil)
        }
    }

    @Test("(a) no longer skips an inconclusive last checkpoint: lower early but tied at the end is inconclusive")
    func computeLastCheckpointCounts() throws {
        // The case: PBT-5x5 led early, random search ended (slightly) lower.
        var runs = Self.seeds(0).enumerated().map { Fixture.run(MethodName.pbt5x5, seed: $0.offset, nlls: Fixture.shifted([5, 4, 3.5, 3.0], $0.element)) }
        runs += Self.seeds(-0.005).reversed().enumerated().map {
            Fixture.run(MethodName.randomSearch, seed: $0.offset, nlls: Fixture.shifted([6, 5, 4.5, 3.0], $0.element))
        }
        let row = Self.claim("(a)", Fixture.results(runs, budget: 400))
        #expect(row.comparisons.map(\.verdict) == [.agrees, .agrees, .inconclusive])
        #expect(row.verdict == .inconclusive)
        #expect(row.comparisons[2].comparison.hasPrefix("100 % of budget (400 steps, fixed windows): PBT-5x5 vs Random search"))
    }

    @Test("(a) disagrees when another method is lower beyond α/k at some checkpoint; 2 seeds can never decide")
    func computeDisagreesAndTooFewSeeds() throws {
        let disagrees = Self.claim("(a)", Self.results([(MethodName.pbt5x5, Self.seeds(1)), (MethodName.randomSearch, Self.seeds(0))]))
        #expect(disagrees.verdict == .disagrees)
        #expect(disagrees.comparisons.allSatisfy { $0.verdict == .disagrees })

        let twoSeeds = Self.claim("(a)", Self.results([(MethodName.pbt5x5, Self.seeds(0, 2)), (MethodName.randomSearch, Self.seeds(1, 2))]))
        #expect(twoSeeds.verdict == .inconclusive)
        let notes = try #require(twoSeeds.comparisons.first?.test?.notes)
        #expect(notes.contains { $0.contains("the smallest possible p is 0.167") })

        let oneSeed = Self.claim("(a)", Self.results([(MethodName.pbt5x5, [0]), (MethodName.randomSearch, [1])]))
        #expect(oneSeed.verdict == .inconclusive)
        #expect(oneSeed.comparisons.allSatisfy { $0.test == nil && $0.unavailable!.contains("at least 2 seeds") })

        let noPBT = Self.claim("(a)", Self.results([(MethodName.randomSearch, [0, 0.1])]))
        #expect(noPBT.verdict == .inconclusive && noPBT.comparisons.isEmpty)
    }

    @Test("(a) the last checkpoint rests on the whole-set scores when every run has one")
    func computeUsesWholeSet() throws {
        // On the windows PBT-5x5 is lower everywhere; on the whole set random search is lower at the end.
        var results = Self.results([(MethodName.pbt5x5, Self.seeds(0)), (MethodName.randomSearch, Self.seeds(1))])
        for index in results.runs.indices {
            let shift = results.runs[index].method == MethodName.pbt5x5 ? 4.0 : 3.0
            results.runs[index].wholeSet = WholeSetScore(trial: 3, nll: shift + Self.jitter[results.runs[index].seed - 1], samples: 1000)
        }
        let row = Self.claim("(a)", results)
        #expect(row.evidence[2].hasPrefix("100 % of budget (400 steps, whole set): mean best NLL PBT-5x5 4.015, Random search 3.015"))
        #expect(row.comparisons.map(\.verdict) == [.agrees, .agrees, .disagrees])
        #expect(row.verdict == .disagrees)
    }

    @Test("the report's claims, from its own method summaries, are the claims from the results alone")
    func summariesPassedInGiveTheSameClaims() {
        let results = Self.results([(MethodName.pbt5x5, Self.seeds(0)), (MethodName.randomSearch, Self.seeds(1))])
        #expect(ReportContent(results).claims == Claims.evaluate(results))
        #expect(Claims.evaluate(results, summaries: MethodSummary.all(results)) == Claims.evaluate(results))
    }

    // MARK: (b)

    @Test("(b) compares at the model iterations PBT-5x20 reaches: agrees and disagrees")
    func iteration() {
        // PBT-5x20: two lineages, iterations 100 (trials 0, 1) and 200 (trials 2, 3).
        let better = Self.results([(MethodName.pbt5x5, Self.seeds(0)), (MethodName.pbt5x20, Self.seeds(0))],
                                  base: [5, 4.5, 4, 3], lineages: [MethodName.pbt5x20: 2])
        // Same base for both: 5x20 at 100 = min(5, 4.5) = 4.5 vs 5x5 5; at 200: min(4, 3) = 3 vs 4.5.
        let row = Self.claim("(b)", better)
        #expect(row.verdict == .agrees)
        #expect(row.evidence[0] == "iteration 100: mean best NLL PBT-5x20 4.515, PBT-5x5 5.015")
        #expect(row.evidence[1] == "iteration 200: mean best NLL PBT-5x20 3.015, PBT-5x5 4.515")
        #expect(row.comparisons.count == 2 && row.comparisons.allSatisfy { $0.test?.pValue == 1.0 / 252 })

        let worse = Self.results([(MethodName.pbt5x5, Self.seeds(0)), (MethodName.pbt5x20, Self.seeds(2))],
                                 base: [5, 4.5, 4, 3], lineages: [MethodName.pbt5x20: 2])
        #expect(Self.claim("(b)", worse).verdict == .disagrees)

        let missing = Self.results([(MethodName.pbt5x5, Self.seeds(0))])
        #expect(Self.claim("(b)", missing).verdict == .inconclusive)
    }

    // MARK: (c)

    /// One trial per seed: its NLL is the seed's final best.
    static func finals(_ values: [(String, [Double])]) -> ExperimentResults {
        Fixture.results(values.flatMap { method, finals in
            finals.enumerated().map { Fixture.run(method, seed: $0.offset, nlls: [$0.element]) }
        })
    }

    @Test("(c) a one-sided Brown–Forsythe test per PBT method, with a bootstrap interval of the SD ratio")
    func spread() throws {
        // SciPy: ttest_ind(|a − median(a)|, |b − median(b)|, alternative='less') gives p = 0.01584 and 0.01668.
        let pbt5x5 = [3.50, 3.51, 3.52, 3.49, 3.50], pbt5x20 = [3.40, 3.42, 3.44, 3.41, 3.43], random = [3.0, 3.4, 3.8, 4.2, 3.6]
        let agrees = Self.claim("(c)", Self.finals([(MethodName.pbt5x5, pbt5x5), (MethodName.pbt5x20, pbt5x20),
                                                    (MethodName.randomSearch, random)]))
        #expect(agrees.verdict == .agrees)
        let tests = agrees.comparisons.compactMap(\.test)
        #expect(tests.count == 2)
        #expect(abs(tests[0].pValue - 0.01583996686728899) < 1e-9 && abs(tests[1].pValue - 0.016682218812247292) < 1e-9)
        #expect(tests.allSatisfy { $0.estimateName.hasPrefix("SD ratio") && $0.interval.upper < 1 })
        #expect(agrees.evidence.contains("Random search: SD 0.447, range 1.200 over 5 seeds (fixed windows)"))

        let disagrees = Self.claim("(c)", Self.finals([(MethodName.pbt5x5, random), (MethodName.pbt5x20, random.map { $0 + 0.1 }),
                                                       (MethodName.randomSearch, pbt5x5)]))
        #expect(disagrees.verdict == .disagrees)

        let mixed = Self.claim("(c)", Self.finals([(MethodName.pbt5x5, pbt5x5), (MethodName.pbt5x20, random.map { $0 + 0.1 }),
                                                   (MethodName.randomSearch, random)]))
        #expect(mixed.verdict == .inconclusive)

        // Whole-set scores for PBT-5x5 alone (a spread as wide as random search's): both compared on fixed windows, as the
        // label says (found by a helper: PBT's window values were tested against random search's whole-set values, or the reverse).
        var partly = Self.finals([(MethodName.pbt5x5, pbt5x5), (MethodName.pbt5x20, pbt5x20), (MethodName.randomSearch, random)])
        for index in partly.runs.indices where partly.runs[index].method == MethodName.pbt5x5 {
            partly.runs[index].wholeSet = WholeSetScore(trial: partly.runs[index].trials[0].id, nll: random[partly.runs[index].seed] + 1, samples: 100)
        }
        let onWindows = Self.claim("(c)", partly)
        #expect(onWindows.comparisons.map(\.comparison) == ["PBT-5x5 vs Random search (fixed windows)", "PBT-5x20 vs Random search (fixed windows)"])
        #expect(onWindows.comparisons.map { $0.test?.pValue } == agrees.comparisons.map { $0.test?.pValue } && onWindows.verdict == .agrees)

        let twoSeeds = Self.claim("(c)", Self.finals([(MethodName.pbt5x5, [3.50, 3.51]), (MethodName.randomSearch, [3.0, 4.0])]))
        #expect(twoSeeds.verdict == .inconclusive)
        #expect(twoSeeds.comparisons.first?.unavailable == "Brown–Forsythe needs at least 3 seeds with a result in each group (got 2 and 2)")
    }

    // MARK: (d)

    static func replay(_ winner: Double, _ replay: Double, seed: Int, wholeSet: (Double, Double)? = nil) -> ReplayResult {
        ReplayResult(method: MethodName.pbt5x5, seed: seed, pbtWinnerNLL: winner, replayNLL: replay,
                     schedule: try! LearningRateSchedule(constant: 0.01),
                     pbtWinnerWholeSet: wholeSet.map { WholeSetScore(trial: 1, nll: $0.0, samples: 100) },
                     replayWholeSet: wholeSet.map { WholeSetScore(trial: nil, nll: $0.1, samples: 100) })
    }

    static func replayClaim(_ replays: [ReplayResult]) -> ClaimRow {
        var results = Self.finals([(MethodName.pbt5x5, [3.50, 3.51, 3.52])])
        results.replays = replays
        return Self.claim("(d)", results)
    }

    @Test("(d) a paired non-inferiority test over the seeds' replays, with a stated margin of 0.02 bits")
    func replay() throws {
        let differences = [0.004, 0.008, 0.002, 0.006]
        let close = Self.replayClaim(differences.enumerated().map { Self.replay(3.5, 3.5 + $0.element, seed: $0.offset) })
        #expect(close.verdict == .agrees)
        let test = try #require(close.comparisons.first?.test)
        #expect(test.test.hasPrefix("non-inferiority test, margin 0.02, paired"))
        #expect(abs(test.estimate - 0.005) < 1e-12 && test.degreesOfFreedom == [3])
        #expect(close.evidence[0] == "PBT-5x5 seed 0: replay 3.504 − winner 3.500 = +0.004 bits (fixed windows)")
        #expect(close.reason.contains("margin of 0.020 bits"))

        let worse = Self.replayClaim(differences.enumerated().map { Self.replay(3.5, 3.6 + $0.element, seed: $0.offset) })
        #expect(worse.verdict == .disagrees)
        let better = Self.replayClaim(differences.enumerated().map { Self.replay(3.5, 3.3 + $0.element, seed: $0.offset) })
        #expect(better.verdict == .agrees, "a better replay reaches the winner")

        let diverged = Self.replayClaim(differences.enumerated().map { Self.replay(3.5, 3.5 + $0.element, seed: $0.offset) }
                                        + [Self.replay(3.5, .nan, seed: 9)])
        #expect(diverged.verdict == .inconclusive, "a diverged replay keeps the claim from agreeing")
        #expect(diverged.evidence[0] == "PBT-5x5 seed 9: the replay diverged")

        let one = Self.replayClaim([Self.replay(3.50, 3.51, seed: 0)])
        #expect(one.verdict == .inconclusive && one.comparisons.first?.unavailable?.contains("a paired test needs at least 2 seeds") == true)
        #expect(Self.replayClaim([]).verdict == .inconclusive)
    }

    @Test("(d) uses the whole-set scores when every replay and winner has one")
    func replayWholeSet() {
        // On the windows the replays are far worse; on the whole set they are within the margin.
        let replays = [0.004, 0.008, 0.002, 0.006].enumerated().map {
            Self.replay(3.5, 3.9, seed: $0.offset, wholeSet: (3.6, 3.6 + $0.element))
        }
        let row = Self.replayClaim(replays)
        #expect(row.verdict == .agrees)
        #expect(row.comparisons[0].comparison == "PBT-5x5: replay vs winner, paired by seed (whole set)")
    }

    // MARK: (e), (f)

    @Test("PB2 and the wide range are each compared with PBT-5x5, and only when they ran")
    func beyondThePaper() throws {
        let paperOnly = Claims.evaluate(Self.finals([(MethodName.pbt5x5, [3.5, 3.6])]))
        #expect(paperOnly.map(\.label) == ["(a)", "(b)", "(c)", "(d)"])

        let results = Self.finals([(MethodName.pbt5x5, Self.seeds(3.5)), (MethodName.pb2, Self.seeds(3.3)),
                                   (MethodName.pbtWideRange, Self.seeds(3.7))])
        let rows = Claims.evaluate(results)
        #expect(rows.map(\.label) == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"])
        #expect(rows[4].verdict == .agrees && rows[4].comparisons[0].comparison == "final best (fixed windows): PB2-5x5 vs PBT-5x5")
        #expect(rows[5].verdict == .disagrees)
        #expect(rows[0].comparisons.allSatisfy { !$0.comparison.contains("PB2") && !$0.comparison.contains("wide") },
                "(a) is about the paper's methods")
    }

    // MARK: The rule

    static func comparison(p: Double, against: Double) -> ClaimComparison {
        let test = ClaimTest(
            test: "t", statisticName: "t", statistic: 0, degreesOfFreedom: [], estimateName: "d", estimate: 0, pValue: p,
            pValueAgainst: against, pValueTwoSided: nil, interval: ConfidenceInterval(lower: 0, upper: 0, level: 0.95, method: "m"),
            verdict: ClaimTest.verdict(pValue: p, pValueAgainst: against, alpha: 0.05), detectable: nil, notes: [])
        return ClaimComparison(comparison: "c", values: "v", test: test, unavailable: nil)
    }

    /// Claim (c)'s SD ratio has an infinite bound when resamples of random
    /// search have no spread: shown as ∞ and called unbounded (it read "inf").
    @Test func anInfiniteBoundIsShownAsUnbounded() {
        var test = Self.comparison(p: 0.5, against: 0.5).test!
        test.estimateName = "SD ratio (first / second)"
        test.estimate = 0.5
        test.interval = ConfidenceInterval(lower: 0, upper: .infinity, level: 0.95, method: "bootstrap")
        let degenerate = "; resamples in which one method's seeds have no spread (a ratio of 0 or ∞) reach its tails: too few seeds for an informative interval, the test's p is what counts"
        #expect(ReportContent.estimate(test) == "SD ratio 0.500 [0.000, ∞] (95 %, bootstrap; unbounded\(degenerate))")
        test.interval.upper = 2
        #expect(ReportContent.estimate(test) == "SD ratio 0.500 [0.000, 2.000] (95 %, bootstrap\(degenerate))", "found by a helper: beside a verdict")
        test.interval.lower = 0.2
        #expect(ReportContent.estimate(test) == "SD ratio 0.500 [0.200, 2.000] (95 %, bootstrap)")
    }

    @Test("combine: agrees only if every comparison agrees; disagrees at p against < α/k; else inconclusive")
    func rule() {
        let agree = Self.comparison(p: 0.01, against: 0.99), neutral = Self.comparison(p: 0.3, against: 0.7)
        #expect(Claims.combine([agree, agree]) == .agrees)
        #expect(Claims.combine([agree, neutral]) == .inconclusive, "an inconclusive comparison is not skipped")
        #expect(Claims.combine([agree, Self.comparison(p: 0.99, against: 0.02)]) == .disagrees, "0.02 < 0.05/2")
        #expect(Claims.combine([agree, Self.comparison(p: 0.97, against: 0.03)]) == .inconclusive, "0.03 ≥ 0.05/2")
        #expect(Claims.combine([ClaimComparison(comparison: "c", values: "v", test: nil, unavailable: "too few")]) == .inconclusive)
        #expect(Claims.combine([]) == .inconclusive)
    }

    /// Found by a user: with only fixed-lr runs the terminal said "(a) inconclusive" and nothing more.
    @Test("the terminal summary says why a claim was not tested, and only then")
    func untestedClaimSaysWhy() {
        let onlyFixed = ExperimentReport.summary(Self.results([(MethodName.fixedLR, Self.seeds(0))]))
        #expect(onlyFixed.contains("(a) inconclusive: ") && onlyFixed.contains("not tested: needs PBT-5x5 and at least one other method"))
        #expect(onlyFixed.contains("not tested: needs PBT and random search runs"))
        // (d) says why no replay: no PBT method ran (it asked for a `train --lr-schedule` replay; found by a helper).
        #expect(onlyFixed.contains("not tested: needs a PBT method's run, whose learned schedule is replayed"), "\(onlyFixed)")
        let tested = ExperimentReport.summary(Self.results([(MethodName.pbt5x5, Self.seeds(0)), (MethodName.randomSearch, Self.seeds(1))]))
        let claimA = tested.components(separatedBy: "\n").drop { !$0.hasPrefix("(a) ") }.dropFirst().prefix { $0.hasPrefix("    ") }
        #expect(!claimA.isEmpty && !claimA.contains { $0.contains("not tested") }, "\(claimA)")
    }
}
