import Foundation

/// Whether our numbers agree with one of the paper's claims.
public enum Verdict: String, Codable, Sendable {
    case agrees, disagrees, inconclusive
}

/// One row of the claims table.
public struct ClaimRow: Codable, Sendable, Hashable {
    /// "(a)" … "(d)".
    public var label: String
    /// The paper's claim, in words.
    public var claim: String
    /// Our numbers, one line per checkpoint, method or replay.
    public var evidence: [String]
    public var verdict: Verdict
    /// The rule applied and what decided it.
    public var reason: String
}

/// The thresholds behind the verdicts, stated in the report.
public struct ClaimRules: Sendable {
    /// Claim (a): compute checkpoints as fractions of the budget.
    public var computeFractions: [Double] = [0.25, 0.5, 1.0]
    /// Claim (b): model-iteration checkpoints as fractions of the largest
    /// model iteration every PBT-5x20 seed reached.
    public var iterationFractions: [Double] = [0.5, 1.0]
    /// Claims (a), (b): a difference of means decides only when it exceeds
    /// both methods' seed standard deviations and this many bits.
    public var minimumDifference: Double = 0.005
    /// Claim (c): a spread comparison needs this many seeds per method…
    public var minimumSeedsForSpread: Int = 3
    /// …and standard deviations this many times apart.
    public var spreadRatio: Double = 2
    /// Claim (d): the replay reaches the winner when it is worse by at most
    /// this many bits or the winner method's seed standard deviation, whichever is larger.
    public var replayTolerance: Double = 0.02

    public init() {}
}

/// The paper's four claims, answered with our numbers.
public enum Claims {
    public static func evaluate(_ results: ExperimentResults, rules: ClaimRules = ClaimRules()) -> [ClaimRow] {
        evaluate(results, summaries: MethodSummary.all(results), rules: rules)
    }

    /// `summaries`: `MethodSummary.all(results)`, when the caller has them already.
    public static func evaluate(_ results: ExperimentResults, summaries: [MethodSummary], rules: ClaimRules = ClaimRules()) -> [ClaimRow] {
        [
            computeEfficiency(results, summaries, rules),
            iterationEfficiency(results, rules),
            seedSpread(summaries, rules),
            replay(results, summaries, rules),
        ]
    }

    /// The outcome of one comparison of per-seed values.
    enum Outcome: Equatable { case agree, disagree, inconclusive }

    /// `expected` should be lower (better) than `other`. Decisive only with
    /// at least two seeds each and a difference of means above both seed
    /// standard deviations and `rules.minimumDifference`.
    static func compare(expected: [Double], other: [Double], _ rules: ClaimRules) -> Outcome {
        guard expected.count >= 2, other.count >= 2,
              let a = SeedStatistics(expected), let b = SeedStatistics(other) else { return .inconclusive }
        let difference = b.mean - a.mean
        let noise = max(a.standardDeviation, b.standardDeviation, rules.minimumDifference)
        if difference > noise { return .agree }
        if -difference > noise { return .disagree }
        return .inconclusive
    }

    /// All decisive outcomes agree → agrees; all disagree → disagrees; none
    /// decisive or mixed → inconclusive.
    static func combine(_ outcomes: [Outcome]) -> Verdict {
        let agree = outcomes.contains(.agree)
        let disagree = outcomes.contains(.disagree)
        switch (agree, disagree) {
        case (true, false): return .agrees
        case (false, true): return .disagrees
        default: return .inconclusive
        }
    }

    static func word(_ outcome: Outcome) -> String {
        switch outcome {
        case .agree: "agrees"
        case .disagree: "disagrees"
        case .inconclusive: "inconclusive"
        }
    }

    static let decisiveRule = "a difference of seed means decides only when it is larger than both methods' seed standard deviations (and at least %@ bits), with at least 2 seeds each"

    // MARK: (a)

    static func computeEfficiency(_ results: ExperimentResults, _ summaries: [MethodSummary], _ rules: ClaimRules) -> ClaimRow {
        let claim = "PBT-5x5 is the most compute-efficient method: the lowest NLL at equal compute."
        let rule = String(format: decisiveRule, bits(rules.minimumDifference))
        let groups = results.runsByMethod
        guard groups.contains(where: { $0.method == MethodName.pbt5x5 }), groups.count >= 2 else {
            return ClaimRow(label: "(a)", claim: claim, evidence: ["no PBT-5x5 runs, or nothing to compare them with"],
                            verdict: .inconclusive, reason: "needs PBT-5x5 and at least one other method")
        }
        let budget = results.totalStepsPerMethod > 0
            ? Double(results.totalStepsPerMethod)
            : Double(results.runs.map(\.totalCompute).min() ?? 0)
        var lines: [String] = []
        var outcomes: [Outcome] = []
        for fraction in rules.computeFractions {
            let x = fraction * budget
            // Per method, per seed: best NLL reached by compute x (seeds with no success yet left out).
            let values = groups.map { group in
                (group.method, group.runs.compactMap { $0.bestCurve(.compute).value(at: x) })
            }
            let means = values.compactMap { method, seedValues in
                SeedStatistics(seedValues).map { (method, $0.mean) }
            }
            let cells = values.map { method, seedValues in
                "\(method) " + (SeedStatistics(seedValues).map { bits($0.mean) } ?? "—")
            }
            guard let best = means.min(by: { $0.1 < $1.1 }) else {
                lines.append("\(percent(fraction)) of budget (\(Int(x).grouped) steps): no method has a result yet")
                outcomes.append(.inconclusive)
                continue
            }
            let pbt = values.first { $0.0 == MethodName.pbt5x5 }!.1
            let outcome: Outcome
            if best.0 == MethodName.pbt5x5 {
                // Against the runner-up.
                let runnerUp = means.filter { $0.0 != MethodName.pbt5x5 }.min { $0.1 < $1.1 }
                let other = runnerUp.map { name in values.first { $0.0 == name.0 }!.1 } ?? []
                outcome = compare(expected: pbt, other: other, rules) == .agree ? .agree : .inconclusive
            } else {
                let winner = values.first { $0.0 == best.0 }!.1
                outcome = compare(expected: pbt, other: winner, rules) == .disagree ? .disagree : .inconclusive
            }
            outcomes.append(outcome)
            lines.append("\(percent(fraction)) of budget (\(Int(x).grouped) steps): " + cells.joined(separator: ", ")
                         + "; lowest: \(best.0) (\(word(outcome)))")
        }
        return ClaimRow(
            label: "(a)", claim: claim,
            evidence: ["Mean best NLL (bits/sample) at equal compute:"] + lines,
            verdict: combine(outcomes),
            reason: "At each checkpoint PBT-5x5 is compared with the best other method; " + rule
                + ". Agrees when every decisive checkpoint favours PBT-5x5, disagrees when every one favours another method, else inconclusive.")
    }

    // MARK: (b)

    static func iterationEfficiency(_ results: ExperimentResults, _ rules: ClaimRules) -> ClaimRow {
        let claim = "PBT-5x20 reaches a better NLL than PBT-5x5 at the same model iteration."
        let rule = String(format: decisiveRule, bits(rules.minimumDifference))
        let small = results.runs.filter { $0.method == MethodName.pbt5x5 }
        let large = results.runs.filter { $0.method == MethodName.pbt5x20 }
        guard !small.isEmpty, !large.isEmpty else {
            return ClaimRow(label: "(b)", claim: claim, evidence: ["needs both PBT-5x5 and PBT-5x20 runs"],
                            verdict: .inconclusive, reason: "one of the two methods was not run")
        }
        let reach = large.map { $0.bestCurve(.modelIteration).xEnd }.min()!
        var lines: [String] = []
        var outcomes: [Outcome] = []
        for fraction in rules.iterationFractions {
            let x = (fraction * reach).rounded(.down)
            let smallValues = small.compactMap { $0.bestCurve(.modelIteration).value(at: x) }
            let largeValues = large.compactMap { $0.bestCurve(.modelIteration).value(at: x) }
            let outcome = compare(expected: largeValues, other: smallValues, rules)
            outcomes.append(outcome)
            let smallText = SeedStatistics(smallValues).map { bits($0.mean) } ?? "—"
            let largeText = SeedStatistics(largeValues).map { bits($0.mean) } ?? "—"
            lines.append("iteration \(Int(x).grouped): PBT-5x20 \(largeText), PBT-5x5 \(smallText) (\(word(outcome)))")
        }
        return ClaimRow(
            label: "(b)", claim: claim,
            evidence: ["Mean best NLL (bits/sample) over the trials that ended by the model iteration:"] + lines,
            verdict: combine(outcomes),
            reason: "Checkpoints at \(rules.iterationFractions.map(percent).joined(separator: " and ")) of the model iteration every PBT-5x20 seed reached (\(Int(reach).grouped)); " + rule + ".")
    }

    // MARK: (c)

    static func seedSpread(_ summaries: [MethodSummary], _ rules: ClaimRules) -> ClaimRow {
        let claim = "PBT varies less across seeds than random search (final best NLL)."
        let describe: (MethodSummary) -> String = { summary in
            guard let s = summary.finalStatistics else { return "\(summary.method): no result" }
            return "\(summary.method): std \(bits(s.standardDeviation)), range \(bits(s.range)) over \(s.count) seeds"
        }
        let evidence = summaries.map(describe)
        let rule = "Needs at least \(rules.minimumSeedsForSpread) seeds per method; agrees when each PBT method's standard deviation is at least \(String(format: "%g", rules.spreadRatio))× smaller than random search's, disagrees when each is at least \(String(format: "%g", rules.spreadRatio))× larger, else inconclusive (a standard deviation from a few seeds is itself very uncertain)."
        let pbt = summaries.filter { MethodName.isPBT($0.method) }
        guard let random = summaries.first(where: { $0.method == MethodName.randomSearch }), !pbt.isEmpty else {
            return ClaimRow(label: "(c)", claim: claim, evidence: evidence.isEmpty ? ["no runs"] : evidence,
                            verdict: .inconclusive, reason: "needs PBT and random search runs. " + rule)
        }
        let enough = ([random] + pbt).allSatisfy { ($0.finalStatistics?.count ?? 0) >= rules.minimumSeedsForSpread }
        guard enough else {
            return ClaimRow(label: "(c)", claim: claim, evidence: evidence, verdict: .inconclusive,
                            reason: "too few seeds. " + rule)
        }
        let randomStd = random.finalStatistics!.standardDeviation
        let stds = pbt.map { $0.finalStatistics!.standardDeviation }
        let verdict: Verdict
        if stds.allSatisfy({ $0 * rules.spreadRatio <= randomStd }) && randomStd > 0 {
            verdict = .agrees
        } else if stds.allSatisfy({ $0 >= randomStd * rules.spreadRatio }) && stds.allSatisfy({ $0 > 0 }) {
            verdict = .disagrees
        } else {
            verdict = .inconclusive
        }
        return ClaimRow(label: "(c)", claim: claim, evidence: evidence, verdict: verdict, reason: rule)
    }

    // MARK: (d)

    static func replay(_ results: ExperimentResults, _ summaries: [MethodSummary], _ rules: ClaimRules) -> ClaimRow {
        let claim = "The winner's exported schedule, replayed in one plain training run, reaches the PBT winner's NLL."
        guard !results.replays.isEmpty else {
            return ClaimRow(label: "(d)", claim: claim, evidence: ["no replay was run"], verdict: .inconclusive,
                            reason: "needs a `pbtwave train --lr-schedule` replay")
        }
        var lines: [String] = []
        var outcomes: [Outcome] = []
        for replay in results.replays {
            let spread = summaries.first { $0.method == replay.method }?.finalStatistics?.standardDeviation ?? 0
            let tolerance = max(rules.replayTolerance, spread)
            let difference = replay.replayNLL - replay.pbtWinnerNLL
            let outcome: Outcome = !difference.isFinite ? .disagree : (difference <= tolerance ? .agree : .disagree)
            outcomes.append(outcome)
            lines.append("\(replay.method) seed \(replay.seed): replay \(bits(replay.replayNLL)) − winner \(bits(replay.pbtWinnerNLL)) = \(signed(difference)) bits (tolerance \(bits(tolerance)); \(word(outcome)))")
        }
        return ClaimRow(
            label: "(d)", claim: claim, evidence: lines, verdict: combine(outcomes),
            reason: "Agrees when the replay is worse by at most \(bits(rules.replayTolerance)) bits or the method's seed standard deviation, whichever is larger (a better replay agrees); several replays must all agree.")
    }

    // MARK: Formatting

    static func bits(_ value: Double) -> String { String(format: "%.3f", value) }
    static func signed(_ value: Double) -> String { String(format: "%+.3f", value) }
    static func percent(_ fraction: Double) -> String { String(format: "%g %%", fraction * 100) }
}
