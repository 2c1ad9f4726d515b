import Foundation

/// Whether our numbers agree with one of the paper's claims.
public enum Verdict: String, Codable, Sendable {
    case agrees, disagrees, inconclusive
}

/// One comparison behind a claim: two groups of per-seed values (first and
/// second, in the order the test takes them) and the test run on them.
public struct ClaimComparison: Codable, Sendable, Hashable {
    /// What is compared, e.g. "100 % of budget: PBT-5x5 vs Random search".
    public var comparison: String
    /// The two groups' numbers, e.g. "PBT-5x5 3.846 ± 0.032 (10 seeds); Random search 3.916 ± 0.045 (10 seeds)".
    public var values: String
    /// nil when the test could not run; `unavailable` says why.
    public var test: ClaimTest?
    public var unavailable: String?

    /// The test's verdict; inconclusive when there is no test.
    public var verdict: Verdict { test?.verdict ?? .inconclusive }
}

/// One claim of the claims table.
public struct ClaimRow: Codable, Sendable, Hashable {
    /// "(a)" … "(f)".
    public var label: String
    /// The claim, in words.
    public var claim: String
    /// Our numbers, one line per checkpoint, method or replay.
    public var evidence: [String]
    /// The tests the verdict combines.
    public var comparisons: [ClaimComparison]
    public var verdict: Verdict
    /// The rule applied: which tests, on which numbers, combined how.
    public var reason: String
}

/// The choices behind the verdicts, stated in the report.
public struct ClaimRules: Sendable {
    /// Claim (a): compute checkpoints as fractions of the budget.
    public var computeFractions: [Double] = [0.25, 0.5, 1.0]
    /// Claim (b): model-iteration checkpoints as fractions of the largest
    /// model iteration every PBT-5x20 seed reached.
    public var iterationFractions: [Double] = [0.5, 1.0]
    /// Claim (d): the replay reaches the winner when it is worse by less than
    /// this many bits (non-inferiority margin): about 0.5 % of the NLL,
    /// below the seed-to-seed spread of PBT's final result.
    public var replayMargin: Double = 0.02
    /// Resamples of every bootstrap interval.
    public var bootstrapResamples: Int = 10_000

    public init() {}
}

/// The paper's claims (a)–(d), and the two beyond it (e), (f) when those
/// methods ran, each decided by stated tests on per-seed values.
public enum Claims {
    public static func evaluate(_ results: ExperimentResults, rules: ClaimRules = ClaimRules()) -> [ClaimRow] {
        evaluate(results, summaries: MethodSummary.all(results), rules: rules)
    }

    /// `summaries`: `MethodSummary.all(results)`, when the caller has them already.
    public static func evaluate(_ results: ExperimentResults, summaries: [MethodSummary], rules: ClaimRules = ClaimRules()) -> [ClaimRow] {
        var rows = [
            computeEfficiency(results, summaries, rules),
            iterationEfficiency(results, rules),
            seedSpread(summaries, rules),
            replay(results, rules),
        ]
        let beyond = [
            ("(e)", MethodName.pb2, "PB2 (a GP bandit explores instead of random perturbation) reaches a lower final NLL than PBT at a small population, as Parker-Holder et al. (2020) report."),
            ("(f)", MethodName.pbtWideRange, "Letting PBT-5x5 mutate the learning rate beyond the range its first generation is drawn from gives a lower final NLL."),
        ]
        for (label, method, claim) in beyond where summaries.contains(where: { $0.method == method }) {
            rows.append(beatsPBT(label: label, method: method, claim: claim, results, summaries, rules))
        }
        return rows
    }

    // MARK: Tests and their combination

    /// The rule for a claim resting on several comparisons: it agrees only
    /// when every comparison agrees (an intersection–union test: each at α,
    /// no correction needed); it disagrees when some comparison goes against
    /// it with p < α/k (Bonferroni over the k comparisons); else inconclusive.
    static func combine(_ comparisons: [ClaimComparison]) -> Verdict {
        guard !comparisons.isEmpty else { return .inconclusive }
        if comparisons.allSatisfy({ $0.verdict == .agrees }) { return .agrees }
        let alpha = StatisticalTests.alpha / Double(comparisons.count)
        if comparisons.contains(where: { ($0.test?.pValueAgainst ?? 1) < alpha }) { return .disagrees }
        return .inconclusive
    }

    static let combineRule = "The claim agrees only when every comparison agrees (p < 0.05 in the claimed direction each: an intersection–union test, which needs no correction); it disagrees when some comparison goes against it with p < 0.05/k (Bonferroni over its k comparisons); otherwise it is inconclusive, and each test states the difference these seeds could detect with 80 % power."

    /// Per-seed values of one group, with its name.
    struct Group {
        var name: String
        var values: [Double]

        var text: String {
            guard let s = SeedStatistics(values) else { return "\(name): no result" }
            return s.count > 1 ? "\(name) \(s.spreadText) (\(s.count) seeds)" : "\(name) \(s.spreadText)"
        }
    }

    /// A one-sided permutation test of the mean difference (first − second
    /// in `claim`'s direction), with its bootstrap interval; unavailable
    /// below 2 values per group.
    static func meanDifference(_ comparison: String, _ first: Group, _ second: Group, claim: ClaimDirection, seed: UInt64,
                               _ rules: ClaimRules) -> ClaimComparison {
        run(comparison, first, second, minimum: 2, name: "a permutation test") {
            try StatisticalTests.permutation($0, $1, claim: claim, seed: seed, bootstrapResamples: rules.bootstrapResamples)
        }
    }

    static func run(_ comparison: String, _ first: Group, _ second: Group, minimum: Int, name: String,
                    _ test: ([Double], [Double]) throws -> ClaimTest) -> ClaimComparison {
        var result = ClaimComparison(comparison: comparison, values: "\(first.text); \(second.text)")
        guard first.values.count >= minimum, second.values.count >= minimum else {
            result.unavailable = "\(name) needs at least \(minimum) seeds with a result in each group (got \(first.values.count) and \(second.values.count))"
            return result
        }
        do { result.test = try test(first.values, second.values) } catch { result.unavailable = "\(error)" }
        return result
    }

    // MARK: (a)

    static func computeEfficiency(_ results: ExperimentResults, _ summaries: [MethodSummary], _ rules: ClaimRules) -> ClaimRow {
        let claim = "PBT-5x5 is the most compute-efficient method: the lowest NLL at equal compute."
        let groups = results.runsByMethod.filter { MethodName.paperMethods.contains($0.method) }
        guard groups.contains(where: { $0.method == MethodName.pbt5x5 }), groups.count >= 2 else {
            return ClaimRow(label: "(a)", claim: claim, evidence: ["no PBT-5x5 runs, or no other method of the paper to compare them with"],
                            comparisons: [], verdict: .inconclusive, reason: "needs PBT-5x5 and at least one other method")
        }
        let budget = results.totalStepsPerMethod > 0
            ? Double(results.totalStepsPerMethod)
            : Double(results.runs.map(\.totalCompute).min() ?? 0)
        let others = groups.map(\.method).filter { $0 != MethodName.pbt5x5 }
        // The final point rests on the whole set when every compared run was scored there.
        let finals = Dictionary(uniqueKeysWithValues: summaries.map { ($0.method, $0.finalValues) })
        let wholeSetAtEnd = groups.allSatisfy { finals[$0.method]?.wholeSet == true }
        var lines: [String] = []
        var comparisons: [ClaimComparison] = []
        for fraction in rules.computeFractions {
            let x = fraction * budget
            let source = fraction >= 1 && wholeSetAtEnd ? "whole set" : "fixed windows"
            let values = Dictionary(uniqueKeysWithValues: groups.map { group in
                (group.method, fraction >= 1 && wholeSetAtEnd
                    ? finals[group.method]!.values
                    : group.runs.compactMap { $0.bestCurve(.compute).value(at: x) })
            })
            let point = "\(percent(fraction)) of budget (\(Int(x).grouped) steps, \(source))"
            lines.append(point + ": mean best NLL " + groups.map { Group(name: $0.method, values: values[$0.method]!).meanText }
                .joined(separator: ", "))
            for other in others {
                comparisons.append(meanDifference(
                    "\(point): PBT-5x5 vs \(other)", Group(name: MethodName.pbt5x5, values: values[MethodName.pbt5x5]!),
                    Group(name: other, values: values[other]!), claim: .less, seed: UInt64(comparisons.count + 1), rules))
            }
        }
        return ClaimRow(
            label: "(a)", claim: claim, evidence: lines, comparisons: comparisons, verdict: combine(comparisons),
            reason: "At \(rules.computeFractions.map(percent).joined(separator: ", ")) of the compute budget, PBT-5x5 is compared with each other method of the paper by a one-sided permutation test of the mean difference over seeds (PBT-5x5 lower), with a 95 % bootstrap interval of the difference. "
                + "The earlier points use the best NLL so far on the runs' fixed validation windows (those checkpoints are gone); the last uses each run's final best model scored on the whole validation set. " + combineRule)
    }

    // MARK: (b)

    static func iterationEfficiency(_ results: ExperimentResults, _ rules: ClaimRules) -> ClaimRow {
        let claim = "PBT-5x20 reaches a better NLL than PBT-5x5 at the same model iteration."
        let small = results.runs.filter { $0.method == MethodName.pbt5x5 }
        let large = results.runs.filter { $0.method == MethodName.pbt5x20 }
        guard !small.isEmpty, !large.isEmpty else {
            return ClaimRow(label: "(b)", claim: claim, evidence: ["needs both PBT-5x5 and PBT-5x20 runs"], comparisons: [],
                            verdict: .inconclusive, reason: "one of the two methods was not run")
        }
        let reach = large.map { $0.bestCurve(.modelIteration).xEnd }.min()!
        var lines: [String] = []
        var comparisons: [ClaimComparison] = []
        for fraction in rules.iterationFractions {
            let x = (fraction * reach).rounded(.down)
            let largeGroup = Group(name: MethodName.pbt5x20, values: large.compactMap { $0.bestCurve(.modelIteration).value(at: x) })
            let smallGroup = Group(name: MethodName.pbt5x5, values: small.compactMap { $0.bestCurve(.modelIteration).value(at: x) })
            lines.append("iteration \(Int(x).grouped): mean best NLL \(largeGroup.meanText), \(smallGroup.meanText)")
            comparisons.append(meanDifference("iteration \(Int(x).grouped): PBT-5x20 vs PBT-5x5", largeGroup, smallGroup, claim: .less,
                                              seed: UInt64(100 + comparisons.count), rules))
        }
        return ClaimRow(
            label: "(b)", claim: claim, evidence: lines, comparisons: comparisons, verdict: combine(comparisons),
            reason: "At \(rules.iterationFractions.map(percent).joined(separator: " and ")) of the model iteration every PBT-5x20 seed reached (\(Int(reach).grouped)), the best NLL so far over the trials that ended by then (fixed validation windows: the whole set scores only final models) is compared by a one-sided permutation test (PBT-5x20 lower), with a 95 % bootstrap interval. " + combineRule)
    }

    // MARK: (c)

    static func seedSpread(_ summaries: [MethodSummary], _ rules: ClaimRules) -> ClaimRow {
        let claim = "PBT varies less across seeds than random search (final best NLL)."
        let evidence = summaries.filter { MethodName.paperMethods.contains($0.method) }.map { summary in
            let (values, wholeSet) = summary.finalValues
            guard let s = SeedStatistics(values) else { return "\(summary.method): no result" }
            let spread = s.count > 1 ? "SD \(bits(s.standardDeviation)), range \(bits(s.range)) over \(s.count) seeds" : "1 seed, no spread"
            return "\(summary.method): \(spread) (\(wholeSet ? "whole set" : "fixed windows"))"
        }
        let rule = "Each of PBT-5x5 and PBT-5x20 is compared with random search by a one-sided Brown–Forsythe test (the PBT method's absolute deviations from its median are smaller), with a 95 % bootstrap interval of the SD ratio (PBT / random search), on the final best NLL of each seed (on the whole validation set where both methods have it, else on fixed windows for both). Brown–Forsythe needs at least 3 seeds per method. "
        let pbt = summaries.filter { $0.method == MethodName.pbt5x5 || $0.method == MethodName.pbt5x20 }
        guard let random = summaries.first(where: { $0.method == MethodName.randomSearch }), !pbt.isEmpty else {
            return ClaimRow(label: "(c)", claim: claim, evidence: evidence.isEmpty ? ["no runs"] : evidence, comparisons: [],
                            verdict: .inconclusive, reason: "needs PBT and random search runs")
        }
        let comparisons = pbt.enumerated().map { index, summary in
            // One measurement for both (found by a helper: one method's window values were tested against the other's whole-set values).
            let wholeSet = summary.finalValues.wholeSet && random.finalValues.wholeSet
            let values = { (s: MethodSummary) in wholeSet ? s.finalValues.values : s.finalBest.compactMap { $0 } }
            return run("\(summary.method) vs Random search" + (wholeSet ? "" : " (fixed windows)"), Group(name: summary.method, values: values(summary)),
                       Group(name: random.method, values: values(random)), minimum: 3, name: "Brown–Forsythe") {
                try StatisticalTests.brownForsythe($0, $1, claim: .less, seed: UInt64(200 + index), bootstrapResamples: rules.bootstrapResamples)
            }
        }
        return ClaimRow(label: "(c)", claim: claim, evidence: evidence, comparisons: comparisons, verdict: combine(comparisons),
                        reason: rule + combineRule)
    }

    // MARK: (d)

    static func replay(_ results: ExperimentResults, _ rules: ClaimRules) -> ClaimRow {
        let claim = "The winner's exported schedule, replayed in one plain training run, reaches the PBT winner's NLL."
        guard !results.replays.isEmpty else {
            // Why none: no PBT method ran (nothing to replay), or none of its runs finished a trial (found by a helper).
            let pbtRan = results.runs.contains { MethodName.isPBT($0.method) }
            return ClaimRow(label: "(d)", claim: claim, evidence: ["no replay was run"], comparisons: [], verdict: .inconclusive,
                            reason: pbtRan ? "needs a `pbtwave train --lr-schedule` replay of a PBT run's final best schedule"
                                : "needs a PBT method's run, whose learned schedule is replayed")
        }
        let margin = rules.replayMargin
        var lines: [String] = []
        var comparisons: [ClaimComparison] = []
        for (method, group) in Dictionary(grouping: results.replays, by: \.method).sorted(by: { $0.key < $1.key }) {
            let replays = group.sorted { $0.seed < $1.seed }
            let finite = replays.filter { $0.replayNLL.isFinite && $0.pbtWinnerNLL.isFinite }
            let wholeSet = !finite.isEmpty && finite.allSatisfy { $0.replayWholeSet != nil && $0.pbtWinnerWholeSet != nil }
            let pairs = finite.map { wholeSet ? ($0.replayWholeSet!.nll, $0.pbtWinnerWholeSet!.nll) : ($0.replayNLL, $0.pbtWinnerNLL) }
            for replay in replays where !replay.replayNLL.isFinite {
                lines.append("\(method) seed \(replay.seed): the replay diverged")
            }
            for (replay, (replayed, winner)) in zip(finite, pairs) {
                lines.append("\(method) seed \(replay.seed): replay \(bits(replayed)) − winner \(bits(winner)) = \(signed(replayed - winner)) bits (\(wholeSet ? "whole set" : "fixed windows"))")
            }
            comparisons.append(run("\(method): replay vs winner, paired by seed (\(wholeSet ? "whole set" : "fixed windows"))",
                                   Group(name: "replay", values: pairs.map(\.0)), Group(name: "winner", values: pairs.map(\.1)),
                                   minimum: 2, name: "a paired test") {
                try StatisticalTests.nonInferiority($0, $1, margin: margin, paired: true)
            })
        }
        var verdict = combine(comparisons)
        // A replay that diverged never reaches the winner.
        if results.replays.contains(where: { !$0.replayNLL.isFinite }) { verdict = verdict == .agrees ? .inconclusive : verdict }
        return ClaimRow(
            label: "(d)", claim: claim, evidence: lines, comparisons: comparisons, verdict: verdict,
            reason: "Non-inferiority with a stated margin of \(bits(margin)) bits: a one-sided paired t-test, over the seeds whose final best was replayed, that replay − winner < \(bits(margin)) (a better replay agrees), both scored on the whole validation set. A diverged replay keeps the claim from agreeing. " + combineRule)
    }

    // MARK: (e), (f)

    static func beatsPBT(
        label: String, method: String, claim: String, _ results: ExperimentResults, _ summaries: [MethodSummary], _ rules: ClaimRules
    ) -> ClaimRow {
        let find = { (name: String) in summaries.first { $0.method == name } }
        guard let other = find(method), let pbt = find(MethodName.pbt5x5) else {
            return ClaimRow(label: label, claim: claim, evidence: ["needs \(method) and PBT-5x5 runs"], comparisons: [],
                            verdict: .inconclusive, reason: "PBT-5x5 was not run")
        }
        let wholeSet = other.finalValues.wholeSet && pbt.finalValues.wholeSet
        let values = { (summary: MethodSummary) in wholeSet ? summary.finalValues.values : summary.finalBest.compactMap { $0 } }
        let first = Group(name: method, values: values(other)), second = Group(name: MethodName.pbt5x5, values: values(pbt))
        let comparison = meanDifference("final best (\(wholeSet ? "whole set" : "fixed windows")): \(method) vs PBT-5x5", first, second,
                                        claim: .less, seed: label == "(e)" ? 300 : 400, rules)
        let rates = { (name: String) -> String in
            let used = results.learningRates(of: name)
            guard let low = used.first, let high = used.last else { return "\(name): none" }
            return "\(name) \(String(format: "%.2g", low)) to \(String(format: "%.2g", high))"
        }
        return ClaimRow(
            label: label, claim: claim,
            evidence: ["final best NLL, mean: \(first.meanText), \(second.meanText)",
                       "learning rates tried, over all trials and seeds: \(rates(method)); \(rates(MethodName.pbt5x5))"],
            comparisons: [comparison], verdict: combine([comparison]),
            reason: "The final best NLL of each seed (whole validation set) is compared with PBT-5x5's, with the same compute, by a one-sided permutation test of the mean difference, with a 95 % bootstrap interval. " + combineRule)
    }

    // MARK: Formatting

    static func signed(_ value: Double) -> String { String(format: "%+.3f", value) }
}

extension Claims.Group {
    /// "PBT-5x5 3.846" (the mean), or "PBT-5x5 —".
    var meanText: String { "\(name) " + (SeedStatistics(values).map { bits($0.mean) } ?? "—") }
}
