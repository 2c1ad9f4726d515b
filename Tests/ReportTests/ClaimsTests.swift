import Foundation
import Schedules
@testable import Report
import Testing

/// Claims on constructed results: each verdict (agrees, disagrees,
/// inconclusive) reached for the reason the rule states.
@Suite("claims table")
struct ClaimsTests {
    static let base: [Double] = [5, 4, 3.5, 3]

    /// Two seeds per method; `offsets[method]` shifts every NLL of a seed.
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

    static func claim(_ label: String, _ results: ExperimentResults) -> ClaimRow {
        Claims.evaluate(results).first { $0.label == label }!
    }

    // MARK: (a)

    @Test("(a) agrees when PBT-5x5 is lowest by more than the seed spread at every checkpoint")
    func computeAgrees() {
        let row = Self.claim("(a)", Self.results([(MethodName.pbt5x5, [0, 0.1]), (MethodName.randomSearch, [1, 1.1])]))
        #expect(row.verdict == .agrees)
        #expect(row.evidence.count == 4, "a heading and three checkpoints")
        #expect(row.evidence[1].contains("25 % of budget (100 steps)") && row.evidence[1].contains("PBT-5x5 5.050"))
        #expect(row.evidence[3].contains("Random search 4.050") && row.evidence[3].contains("lowest: PBT-5x5"))
    }

    @Test("the report's claims, from its own method summaries, are the claims from the results alone")
    func summariesPassedInGiveTheSameClaims() {
        let results = Self.results([(MethodName.pbt5x5, [0, 0.1]), (MethodName.randomSearch, [1, 1.1])])
        #expect(ReportContent(results).claims == Claims.evaluate(results))
        #expect(Claims.evaluate(results, summaries: MethodSummary.all(results)) == Claims.evaluate(results))
    }

    @Test("(a) disagrees when another method is lower by more than the seed spread")
    func computeDisagrees() {
        let row = Self.claim("(a)", Self.results([(MethodName.pbt5x5, [1, 1.1]), (MethodName.randomSearch, [0, 0.1]),
                                                  (MethodName.fixedLR, [2, 2.1])]))
        #expect(row.verdict == .disagrees)
        #expect(row.evidence[3].contains("lowest: Random search (disagrees)"))
    }

    @Test("(a) inconclusive when the difference is within the seed spread, with mixed checkpoints, or one seed")
    func computeInconclusive() {
        let withinSpread = Self.results([(MethodName.pbt5x5, [0, 0.4]), (MethodName.randomSearch, [0.1, 0.2])])
        #expect(Self.claim("(a)", withinSpread).verdict == .inconclusive)

        // Better early (5 vs 6, 4 vs 5), worse at the end (3.5 vs 3).
        var runs = [0.0, 0.01].enumerated().map { index, offset in
            Fixture.run(MethodName.pbt5x5, seed: index, nlls: Fixture.shifted([5, 4, 3.5, 3.5], offset))
        }
        runs += [0.0, 0.01].enumerated().map { index, offset in
            Fixture.run(MethodName.randomSearch, seed: index, nlls: Fixture.shifted([6, 5, 4, 3], offset))
        }
        let mixed = Self.claim("(a)", Fixture.results(runs, budget: 400))
        #expect(mixed.verdict == .inconclusive)
        #expect(mixed.evidence[1].hasSuffix("(agrees)") && mixed.evidence[3].hasSuffix("(disagrees)"))

        let oneSeed = Self.results([(MethodName.pbt5x5, [0]), (MethodName.randomSearch, [1])])
        #expect(Self.claim("(a)", oneSeed).verdict == .inconclusive)

        let noPBT = Self.results([(MethodName.randomSearch, [0, 0.1])])
        #expect(Self.claim("(a)", noPBT).verdict == .inconclusive)
    }

    // MARK: (b)

    @Test("(b) compares at the model iterations PBT-5x20 reaches: agrees and disagrees")
    func iteration() {
        // PBT-5x20: two lineages, iterations 100 (trials 0, 1) and 200 (trials 2, 3).
        let better = Self.results([(MethodName.pbt5x5, [0, 0.05]), (MethodName.pbt5x20, [0, 0.05])],
                                  base: [5, 4.5, 4, 3], lineages: [MethodName.pbt5x20: 2])
        // Same base for both: 5x20 at 100 = min(5, 4.5) = 4.5 vs 5x5 5; at 200: min(4, 3) = 3 vs 4.5.
        let row = Self.claim("(b)", better)
        #expect(row.verdict == .agrees)
        #expect(row.evidence[1].contains("iteration 100: PBT-5x20 4.525, PBT-5x5 5.025"))
        #expect(row.evidence[2].contains("iteration 200: PBT-5x20 3.025, PBT-5x5 4.525"))

        let worse = Self.results([(MethodName.pbt5x5, [0, 0.05]), (MethodName.pbt5x20, [2, 2.05])],
                                 base: [5, 4.5, 4, 3], lineages: [MethodName.pbt5x20: 2])
        #expect(Self.claim("(b)", worse).verdict == .disagrees)

        let missing = Self.results([(MethodName.pbt5x5, [0, 0.05])])
        #expect(Self.claim("(b)", missing).verdict == .inconclusive)
    }

    // MARK: (c)

    /// One trial per seed: its NLL is the seed's final best.
    static func finals(_ values: [(String, [Double])]) -> ExperimentResults {
        Fixture.results(values.flatMap { method, finals in
            finals.enumerated().map { Fixture.run(method, seed: $0.offset, nlls: [$0.element]) }
        })
    }

    @Test("(c) needs 3 seeds and standard deviations 2× apart")
    func spread() {
        let agrees = Self.finals([(MethodName.pbt5x5, [3.50, 3.51, 3.52]), (MethodName.pbt5x20, [3.40, 3.42, 3.44]),
                                  (MethodName.randomSearch, [3.4, 3.6, 3.8])])
        let row = Self.claim("(c)", agrees)
        #expect(row.verdict == .agrees)
        #expect(row.evidence.contains("Random search: std 0.200, range 0.400 over 3 seeds"))

        let disagrees = Self.finals([(MethodName.pbt5x5, [3.4, 3.6, 3.8]), (MethodName.pbt5x20, [3.3, 3.6, 3.9]),
                                     (MethodName.randomSearch, [3.50, 3.51, 3.52])])
        #expect(Self.claim("(c)", disagrees).verdict == .disagrees)

        let mixed = Self.finals([(MethodName.pbt5x5, [3.50, 3.51, 3.52]), (MethodName.pbt5x20, [3.3, 3.6, 3.9]),
                                 (MethodName.randomSearch, [3.4, 3.6, 3.8])])
        #expect(Self.claim("(c)", mixed).verdict == .inconclusive)

        let close = Self.finals([(MethodName.pbt5x5, [3.45, 3.6, 3.75]), (MethodName.randomSearch, [3.4, 3.6, 3.8])])
        #expect(Self.claim("(c)", close).verdict == .inconclusive, "std 0.15 vs 0.2 is less than 2× apart")

        let twoSeeds = Self.finals([(MethodName.pbt5x5, [3.50, 3.51]), (MethodName.randomSearch, [3.0, 4.0])])
        let row2 = Self.claim("(c)", twoSeeds)
        #expect(row2.verdict == .inconclusive && row2.reason.hasPrefix("too few seeds"))
    }

    // MARK: (d)

    static func replay(_ winner: Double, _ replay: Double, seed: Int = 0) -> ReplayResult {
        ReplayResult(method: MethodName.pbt5x5, seed: seed, pbtWinnerNLL: winner, replayNLL: replay,
                     schedule: try! LearningRateSchedule(constant: 0.01))
    }

    @Test("(d) the replay reaches the winner within max(0.02 bits, seed std)")
    func replay() {
        func verdict(_ finals: [Double], _ replays: [ReplayResult]) -> ClaimRow {
            var results = Self.finals([(MethodName.pbt5x5, finals)])
            results.replays = replays
            return Self.claim("(d)", results)
        }
        let tight = [3.50, 3.51, 3.52] // std 0.01: tolerance 0.02
        let close = verdict(tight, [Self.replay(3.50, 3.51)])
        #expect(close.verdict == .agrees)
        #expect(close.evidence == ["PBT-5x5 seed 0: replay 3.510 − winner 3.500 = +0.010 bits (tolerance 0.020; agrees)"])
        #expect(verdict(tight, [Self.replay(3.50, 3.60)]).verdict == .disagrees)
        #expect(verdict(tight, [Self.replay(3.50, 3.40)]).verdict == .agrees, "a better replay reaches the winner")
        #expect(verdict(tight, [Self.replay(3.50, .nan)]).verdict == .disagrees, "a diverged replay does not")
        #expect(verdict([3.5, 3.7, 3.9], [Self.replay(3.50, 3.65)]).verdict == .agrees, "within the seed std 0.2")
        #expect(verdict(tight, [Self.replay(3.50, 3.51), Self.replay(3.50, 3.9, seed: 1)]).verdict == .inconclusive)
        #expect(verdict(tight, []).verdict == .inconclusive)
    }

    @Test("compare and combine: the decision rule itself")
    func rule() {
        let rules = ClaimRules()
        #expect(Claims.compare(expected: [1, 1.1], other: [2, 2.1], rules) == .agree)
        #expect(Claims.compare(expected: [2, 2.1], other: [1, 1.1], rules) == .disagree)
        #expect(Claims.compare(expected: [1, 1.5], other: [1.2, 1.3], rules) == .inconclusive, "difference below the std")
        #expect(Claims.compare(expected: [1, 1], other: [1.003, 1.003], rules) == .inconclusive, "below minimumDifference")
        #expect(Claims.compare(expected: [1], other: [2, 2], rules) == .inconclusive, "one seed")
        #expect(Claims.combine([.agree, .inconclusive]) == .agrees)
        #expect(Claims.combine([.disagree, .inconclusive]) == .disagrees)
        #expect(Claims.combine([.agree, .disagree]) == .inconclusive)
        #expect(Claims.combine([.inconclusive]) == .inconclusive)
    }
}
