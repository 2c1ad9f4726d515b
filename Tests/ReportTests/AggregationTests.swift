import Foundation
import PBTSchedules
import PBTReport
import Testing

@Suite("aggregation: best-so-far curves, seeds, compute, winner")
struct AggregationTests {
    /// Completion order differs from id order; two failures (nil and NaN).
    static let mixedRun = MethodRun(
        method: MethodName.randomSearch, seed: 1, workers: 2, population: 2,
        trials: [
            TrialResult(id: 7, parent: nil, generation: 0, hyperparameters: ["lr": 0.01], startStep: 0, steps: 10, validationNLL: 5.0, completionIndex: 0),
            TrialResult(id: 3, parent: nil, generation: 0, hyperparameters: ["lr": 0.02], startStep: 0, steps: 10, validationNLL: nil, completionIndex: 1),
            TrialResult(id: 9, parent: 7, generation: 1, hyperparameters: ["lr": 0.01], startStep: 10, steps: 20, validationNLL: 4.0, completionIndex: 2),
            TrialResult(id: 1, parent: 3, generation: 1, hyperparameters: ["lr": 0.02], startStep: 10, steps: 10, validationNLL: .nan, completionIndex: 3),
            TrialResult(id: 5, parent: 9, generation: 2, hyperparameters: ["lr": 0.01], startStep: 30, steps: 10, validationNLL: 4.5, completionIndex: 4),
        ],
        wallSeconds: 1)

    @Test("compute clock: cumulative steps in completion order; failed trials add compute, never a best")
    func computeCurve() {
        // Shuffle the stored order: completionIndex, not array order, decides.
        var run = Self.mixedRun
        run.trials.reverse()
        let curve = run.bestCurve(.compute)
        #expect(curve.points == [
            CurvePoint(x: 10, best: 5), CurvePoint(x: 20, best: 5), CurvePoint(x: 40, best: 4),
            CurvePoint(x: 50, best: 4), CurvePoint(x: 60, best: 4),
        ])
        #expect(curve.xEnd == 60)
        #expect(run.totalCompute == 60)
        #expect(run.finalBest == 4)
        #expect(run.bestTrial?.id == 9)
    }

    @Test("steps-per-worker clock is compute / W")
    func workerCurve() {
        let curve = Self.mixedRun.bestCurve(.stepsPerWorker)
        #expect(curve.points.map(\.x) == [5, 10, 20, 25, 30])
        #expect(curve.points.map(\.best) == [5, 5, 4, 4, 4])
        #expect(curve.xEnd == 30)
    }

    @Test("model-iteration clock: best over trials whose end step is at most x")
    func iterationCurve() {
        // End steps: a 10 (6.0), c 10 (5.5), b 20 (5.0), e 20 (4.8), d 30 (failed).
        let run = MethodRun(method: MethodName.pbt5x5, seed: 1, workers: 2, population: 2, trials: [
            TrialResult(id: 0, parent: nil, generation: 0, hyperparameters: [:], startStep: 0, steps: 10, validationNLL: 6.0, completionIndex: 0),
            TrialResult(id: 1, parent: 0, generation: 1, hyperparameters: [:], startStep: 10, steps: 10, validationNLL: 5.0, completionIndex: 2),
            TrialResult(id: 2, parent: nil, generation: 0, hyperparameters: [:], startStep: 0, steps: 10, validationNLL: 5.5, completionIndex: 1),
            TrialResult(id: 3, parent: 1, generation: 2, hyperparameters: [:], startStep: 20, steps: 10, validationNLL: nil, completionIndex: 4),
            TrialResult(id: 4, parent: 2, generation: 1, hyperparameters: [:], startStep: 10, steps: 10, validationNLL: 4.8, completionIndex: 3),
        ], wallSeconds: 1)
        let curve = run.bestCurve(.modelIteration)
        #expect(curve.points == [CurvePoint(x: 10, best: 5.5), CurvePoint(x: 20, best: 4.8), CurvePoint(x: 30, best: 4.8)])
        #expect(curve.xEnd == 30)
    }

    @Test("a curve starts at the first success; value(at:) is a right-continuous step function")
    func stepFunction() {
        let run = Fixture.run(MethodName.fixedLR, seed: 1, nlls: [nil, 6, 5, nil])
        let curve = run.bestCurve(.compute)
        #expect(curve.points == [CurvePoint(x: 200, best: 6), CurvePoint(x: 300, best: 5), CurvePoint(x: 400, best: 5)])
        #expect(curve.value(at: 0) == nil)
        #expect(curve.value(at: 199.9) == nil)
        #expect(curve.value(at: 200) == 6)
        #expect(curve.value(at: 299) == 6)
        #expect(curve.value(at: 300) == 5)
        #expect(curve.value(at: 1e9) == 5)
        let allFailed = Fixture.run(MethodName.fixedLR, seed: 2, nlls: [nil, .infinity])
        #expect(allFailed.bestCurve(.compute).points.isEmpty)
        #expect(allFailed.bestCurve(.compute).xEnd == 200)
        #expect(allFailed.finalBest == nil)
    }

    @Test("seed statistics: mean, sample standard deviation, range")
    func statistics() throws {
        let s = try #require(SeedStatistics([1, 2, 3, 4]))
        #expect(s.mean == 2.5)
        #expect(abs(s.standardDeviation - (5.0 / 3).squareRoot()) < 1e-12)
        #expect(s.minimum == 1 && s.maximum == 4 && s.range == 3 && s.count == 4)
        #expect(SeedStatistics([7])?.standardDeviation == 0)
        #expect(SeedStatistics([]) == nil)
    }

    @Test("across seeds: common grid from the last seed's first value to the shortest seed's end")
    func aggregated() {
        let a = BestCurve(points: [CurvePoint(x: 10, best: 5), CurvePoint(x: 30, best: 4)], xEnd: 40)
        let b = BestCurve(points: [CurvePoint(x: 20, best: 6), CurvePoint(x: 40, best: 3)], xEnd: 50)
        let failed = BestCurve(points: [], xEnd: 50)
        let curve = AggregatedCurve([a, b, failed])
        #expect(curve.includedSeeds == 2)
        #expect(curve.excludedSeeds == 1)
        #expect(curve.points.map(\.x) == [20, 30, 40])
        let means = curve.points.map(\.statistics.mean)
        let stds = curve.points.map(\.statistics.standardDeviation)
        let difference = max(maxDifference(means, [5.5, 5, 3.5]),
                             maxDifference(stds, [(0.5).squareRoot(), (2.0).squareRoot(), (0.5).squareRoot()]))
        #expect(difference < 1e-12, "max difference \(difference)")
        #expect(curve.points.map(\.statistics.minimum) == [5, 4, 3])
        #expect(curve.points.map(\.statistics.maximum) == [6, 6, 4])
        #expect(curve.statistics(at: 35)?.mean == 5)
        #expect(curve.statistics(at: 19) == nil)
        #expect(AggregatedCurve([failed]).points.isEmpty)
    }

    @Test("method summary: final best per seed, a seed without results left out of the statistics")
    func summary() throws {
        let runs = [
            Fixture.run(MethodName.randomSearch, seed: 2, nlls: [5, 4]),
            Fixture.run(MethodName.randomSearch, seed: 1, nlls: [5, 3]),
            Fixture.run(MethodName.randomSearch, seed: 3, nlls: [nil, nil]),
        ]
        let summary = MethodSummary(method: MethodName.randomSearch, runs: runs)
        #expect(summary.seeds == [1, 2, 3])
        #expect(summary.finalBest == [3, 4, nil])
        let stats = try #require(summary.finalStatistics)
        #expect(stats.count == 2 && stats.mean == 3.5)
        #expect(summary.failedTrials == 2 && summary.trialCount == 6)
        #expect(summary.computePerSeed == [200, 200, 200])
        #expect(summary.curves[.compute]?.includedSeeds == 2)
    }

    @Test("equal compute: within one trial's worth passes, more is flagged")
    func equalCompute() {
        let equal = ComputeCheck(Fixture.results([
            Fixture.run(MethodName.pbt5x5, seed: 1, nlls: [5, 4, 3]),
            Fixture.run(MethodName.randomSearch, seed: 1, nlls: [5, 4, 3]),
        ], budget: 300))
        #expect(equal.isEqual && equal.maximumDifference == 0)
        #expect(equal.summary.hasPrefix("Equal compute: every run trained 300 steps"))
        let oneTrial = ComputeCheck(Fixture.results([
            Fixture.run(MethodName.pbt5x5, seed: 1, nlls: [5, 4, 3]),
            Fixture.run(MethodName.randomSearch, seed: 1, nlls: [5, 4]),
        ]))
        #expect(oneTrial.isEqual && oneTrial.maximumDifference == 100 && oneTrial.tolerance == 100)
        let unequal = ComputeCheck(Fixture.results([
            Fixture.run(MethodName.pbt5x5, seed: 1, nlls: [5, 4, 3, 2]),
            Fixture.run(MethodName.fixedLR, seed: 4, nlls: [5, 4]),
        ]))
        #expect(!unequal.isEqual && unequal.maximumDifference == 200)
        #expect(unequal.summary.contains("UNEQUAL") && unequal.summary.contains("Fixed LR seed 4 trained 200"))
    }

    /// Trial 4 is the winner: lineage 0 → 2 → 3 → 4, rates 0.01, 0.008, 0.008, 0.0096.
    static let pbtRun = MethodRun(method: MethodName.pbt5x5, seed: 2, workers: 2, population: 2, trials: [
        TrialResult(id: 0, parent: nil, generation: 0, hyperparameters: ["lr": 0.01], startStep: 0, steps: 10, validationNLL: 5.0, completionIndex: 0),
        TrialResult(id: 1, parent: nil, generation: 0, hyperparameters: ["lr": 0.001], startStep: 0, steps: 10, validationNLL: 5.5, completionIndex: 1),
        TrialResult(id: 2, parent: 0, generation: 1, hyperparameters: ["lr": 0.008], startStep: 10, steps: 10, validationNLL: 4.5, completionIndex: 2, tournamentLoser: 1),
        TrialResult(id: 5, parent: 1, generation: 1, hyperparameters: ["lr": 0.0012], startStep: 10, steps: 10, validationNLL: nil, completionIndex: 3),
        TrialResult(id: 3, parent: 2, generation: 2, hyperparameters: ["lr": 0.008], startStep: 20, steps: 10, validationNLL: 4.2, completionIndex: 4, tournamentLoser: 5),
        TrialResult(id: 4, parent: 3, generation: 3, hyperparameters: ["lr": 0.0096], startStep: 30, steps: 10, validationNLL: 4.0, completionIndex: 5),
    ], wallSeconds: 1)

    @Test("winner: best final PBT trial (never a non-PBT one), its lineage and schedule change points")
    func winner() throws {
        let results = Fixture.results([
            Self.pbtRun,
            Fixture.run(MethodName.pbt5x20, seed: 1, nlls: [5, 4.1]),
            Fixture.run(MethodName.randomSearch, seed: 1, nlls: [5, 3.9], lr: 0.003),
        ])
        let winner = try #require(Winner(results))
        #expect(winner.method == MethodName.pbt5x5 && winner.seed == 2 && winner.trial.id == 4)
        #expect(winner.lineage.map(\.id) == [0, 2, 3, 4])
        #expect(winner.schedule?.points == [.init(step: 0, rate: 0.01), .init(step: 10, rate: 0.008), .init(step: 30, rate: 0.0096)])
        #expect(winner.endStep == 40)
        #expect(results.learningRates(of: MethodName.randomSearch) == [0.003])
    }

    @Test("winner ties go to the earlier method; no PBT success, no winner")
    func winnerTies() throws {
        let tie = Fixture.results([
            Fixture.run(MethodName.pbt5x20, seed: 1, nlls: [5, 4]),
            Fixture.run(MethodName.pbt5x5, seed: 9, nlls: [5, 4]),
        ])
        #expect(try #require(Winner(tie)).method == MethodName.pbt5x5)
        // The harness's replay picks its winner from the bare runs, the same way.
        #expect(try #require(Winner(runs: tie.runs)).method == MethodName.pbt5x5)
        let none = Fixture.results([
            Fixture.run(MethodName.pbt5x5, seed: 1, nlls: [nil, nil]),
            Fixture.run(MethodName.randomSearch, seed: 1, nlls: [5, 4]),
        ])
        #expect(Winner(none) == nil)
    }

    @Test("lineage stops at a missing parent and at a cycle")
    func brokenLineage() {
        let run = MethodRun(method: MethodName.pbt5x5, seed: 1, workers: 1, population: 1, trials: [
            TrialResult(id: 1, parent: 2, generation: 1, hyperparameters: ["lr": 0.1], startStep: 10, steps: 10, validationNLL: 4, completionIndex: 0),
            TrialResult(id: 2, parent: 1, generation: 0, hyperparameters: ["lr": 0.2], startStep: 0, steps: 10, validationNLL: 5, completionIndex: 1),
            TrialResult(id: 3, parent: 99, generation: 2, hyperparameters: ["lr": 0.1], startStep: 20, steps: 10, validationNLL: 3, completionIndex: 2),
        ], wallSeconds: 1)
        #expect(Winner.lineage(of: run.trials[0], in: run).map(\.id) == [2, 1])
        #expect(Winner.lineage(of: run.trials[2], in: run).map(\.id) == [3])
    }

    @Test("methods are reported in the standard order, then by first appearance")
    func methodOrder() {
        let results = Fixture.results([
            Fixture.run("Bayesian", seed: 1, nlls: [4]),
            Fixture.run(MethodName.fixedLR, seed: 1, nlls: [4]),
            Fixture.run(MethodName.pbt5x20, seed: 2, nlls: [4]),
            Fixture.run(MethodName.pbt5x20, seed: 1, nlls: [4]),
            Fixture.run(MethodName.pbt5x5, seed: 1, nlls: [4]),
        ])
        #expect(results.runsByMethod.map(\.method) == [MethodName.pbt5x5, MethodName.pbt5x20, MethodName.fixedLR, "Bayesian"])
        #expect(results.runsByMethod[1].runs.map(\.seed) == [1, 2])
    }

    @Test("results.json round trip keeps NaN and infinite NLLs")
    func jsonRoundTrip() throws {
        let results = Fixture.results([Self.mixedRun, Fixture.run(MethodName.fixedLR, seed: 1, nlls: [.infinity, 4])])
        let data = try ExperimentResults.jsonEncoder().encode(results)
        let decoded = try ExperimentResults.jsonDecoder().decode(ExperimentResults.self, from: data)
        #expect(decoded.runs.count == 2)
        #expect(decoded.runs[0].trials.map(\.id) == Self.mixedRun.trials.map(\.id))
        #expect(decoded.runs[0].trials[3].validationNLL?.isNaN == true)
        #expect(decoded.runs[0].trials[1].validationNLL == nil)
        #expect(decoded.runs[1].trials[0].validationNLL == .infinity)
    }
}
