import Foundation

/// Everything the report shows, computed once from the results.
public struct ReportContent: Sendable {
    public var results: ExperimentResults
    public var summaries: [MethodSummary]
    public var winner: Winner?
    public var claims: [ClaimRow]
    public var computeCheck: ComputeCheck
    public var figures: [ReportFigure]
    public var rules: ClaimRules

    public init(_ results: ExperimentResults, rules: ClaimRules = ClaimRules()) {
        self.results = results
        self.rules = rules
        summaries = MethodSummary.all(results)
        winner = Winner(results)
        claims = Claims.evaluate(results, summaries: summaries, rules: rules)
        computeCheck = ComputeCheck(results)
        figures = ReportFigures.make(results, summaries: summaries, winner: winner)
    }

    /// The report's title: the methods compared, in report order.
    var title: String { "PBT on WaveNet: " + summaries.map(\.method).joined(separator: " vs ") }

    /// Whether every method's final best was scored on the whole validation set.
    var wholeSet: Bool { !summaries.isEmpty && summaries.allSatisfy { $0.finalValues.wholeSet } }

    /// One sentence per fact a reader wants first.
    var headline: [String] {
        var lines: [String] = []
        let ranked = summaries.compactMap { summary in SeedStatistics(summary.finalValues.values).map { (summary.method, $0) } }
            .sorted { $0.1.mean < $1.1.mean }
        if let best = ranked.first {
            lines.append("Lowest mean final NLL (\(wholeSet ? "whole validation set" : "fixed validation windows")): \(best.0), \(bits(best.1.mean)) bits/sample over \(best.1.count) seed\(best.1.count == 1 ? "" : "s")"
                         + (ranked.count > 1 ? "; then " + ranked.dropFirst().map { "\($0.0) \(bits($0.1.mean))" }.joined(separator: ", ") + "." : "."))
        }
        if let winner, let nll = winner.trial.finiteNLL {
            // Among PBT runs only, on their own (fixed-window) scores: the
            // trial whose learned schedule the report exports, not a ranking
            // of the methods (the line above is that).
            lines.append("Best PBT trial (fixed validation windows; its learned schedule is exported): \(winner.method) seed \(winner.seed), trial \(winner.trial.id), \(bits(nll)) bits/sample after \(winner.endStep.grouped) model iterations.")
        }
        lines.append("Claims: " + claims.map { "\($0.label) \($0.verdict.rawValue)" }.joined(separator: ", ") + ".")
        lines.append(computeCheck.summary + ".")
        return lines
    }

    /// Rows of the per-method table, as plain strings.
    var methodRows: [[String]] {
        summaries.map { summary in
            let stats = summary.finalStatistics
            return [
                summary.method,
                summary.shape,
                String(summary.seeds.count),
                summary.wholeSetStatistics?.spreadText ?? "—",
                stats?.spreadText ?? "—",
                stats.map { "\(bits($0.minimum)) – \(bits($0.maximum))" } ?? "—",
                summary.finalBest.map { $0.map(bits) ?? "failed" }.joined(separator: ", "),
                Set(summary.computePerSeed).sorted().map(\.grouped).joined(separator: ", "),
                "\(summary.failedTrials) of \(summary.trialCount)",
                duration(summary.meanWallSeconds),
            ]
        }
    }

    // Two bests, said apart (found by a user): the whole-set score is of the final population's best
    // (whose checkpoint is kept); the windows' is of the best trial over the run, which can be earlier.
    static let methodHeader = ["Method", "W×P", "Seeds", "Final population's best, whole set, mean ± std", "Best trial, windows, mean ± std",
                               "Min – max (best trial, windows)", "Per seed (best trial, windows)",
                               "Compute per run (steps)", "Failed trials (all seeds)", "Wall time per run"]

    var replayRows: [[String]] {
        results.replays.map { replay in
            let winner = replay.pbtWinnerWholeSet?.nll, replayed = replay.replayWholeSet?.nll
            // A replay that diverged scores NaN: said so, not "nan" and "+nan" (found by a helper).
            func score(_ value: Double) -> String { value.isFinite ? bits(value) : "diverged" }
            func difference(_ a: Double, _ b: Double, _ suffix: String = "") -> String {
                a.isFinite && b.isFinite ? String(format: "%+.3f", a - b) + suffix : "—"
            }
            return [replay.method, String(replay.seed), score(replay.pbtWinnerNLL), score(replay.replayNLL),
                    winner.map(score) ?? "—", replayed.map(score) ?? "—",
                    winner.flatMap { winner in replayed.map { difference($0, winner) } } ?? difference(replay.replayNLL, replay.pbtWinnerNLL, " (windows)"),
                    String(replay.schedule.points.count)]
        }
    }

    static let replayHeader = ["PBT run", "Seed", "Winner, windows", "Replay, windows", "Winner, whole set", "Replay, whole set",
                               "Replay − winner (bits)", "Schedule points"]

    /// The claims table: one row per comparison (a claim without any gets
    /// one row); `first` marks a claim's first row, which carries the claim
    /// and its verdict over `rows` rows.
    var claimRows: [(claim: ClaimRow, first: Bool, rows: Int, cells: [String])] {
        claims.flatMap { claim in
            let cells = claim.comparisons.isEmpty
                ? [["—", "no test: " + claim.reason, "", "", "", "", ""]]
                : claim.comparisons.map(Self.cells)
            return cells.enumerated().map { (claim, $0.offset == 0, cells.count, $0.element) }
        }
    }

    static let claimHeader = ["Claim", "Verdict", "Comparison (first vs second)", "Test", "Statistic", "p (claimed; against)",
                              "Estimate [interval]", "Detectable at 80 % power", "Test verdict"]

    /// "mean difference −0.325 [−0.410, −0.240] (95 %, bootstrap BCa, …)".
    static func estimate(_ test: ClaimTest) -> String {
        let name = test.estimateName.replacingOccurrences(of: " (first − second)", with: "").replacingOccurrences(of: " (first / second)", with: "")
        let i = test.interval
        // An SD ratio's bound is infinite when resamples of the second method have no spread: unbounded, said so.
        func value(_ x: Double) -> String { x.isInfinite ? (x > 0 ? "∞" : "−∞") : String(format: "%.3f", x) }
        // A ratio's bound at 0 or ∞ comes from resamples with no spread (one seed's value drawn every time), which a few
        // seeds make common: such an interval says little, whatever the test's p (found by a helper: "disagrees" beside [0, 11.6]).
        let ratio = test.estimateName.hasPrefix("SD ratio")
        let degenerate = ratio && (i.lower <= 0 || i.upper.isInfinite)
        return "\(name) \(value(test.estimate)) [\(value(i.lower)), \(value(i.upper))] "
            + "(\(String(format: "%g", i.level * 100)) %, \(i.method)\(i.upper.isInfinite || i.lower.isInfinite ? "; unbounded" : "")"
            + (degenerate ? "; resamples in which one method's seeds have no spread (a ratio of 0 or ∞) reach its tails: too few seeds for an informative interval, the test's p is what counts" : "") + ")"
    }

    /// "0.045 bits", "SD ratio 0.350", or "—".
    static func detectable(_ test: ClaimTest) -> String {
        guard let d = test.detectable else {
            return test.notes.contains { $0.contains("cannot reach p <") } ? "none: too few seeds to reach p < 0.05" : "—"
        }
        return test.estimateName.hasPrefix("SD ratio") ? "SD ratio \(String(format: "%.3f", d.value))" : "\(String(format: "%.3f", d.value)) bits"
    }

    /// One line per comparison for the terminal: estimate, interval, p, detectable effect, verdict.
    static func summaryLine(_ comparison: ClaimComparison) -> String {
        guard let test = comparison.test else { return "\(comparison.comparison): not run: \(comparison.unavailable ?? "no test")" }
        return "\(comparison.comparison): \(estimate(test).split(separator: "(").first!.trimmingCharacters(in: .whitespaces)), "
            + "p \(pValue(test.pValue)) (against \(pValue(test.pValueAgainst))), detectable \(detectable(test)): \(test.verdict.rawValue)"
    }

    /// The per-test cells of the claims table (`claimHeader` from the third column).
    static func cells(_ comparison: ClaimComparison) -> [String] {
        let compared = "\(comparison.comparison): \(comparison.values)"
        guard let test = comparison.test else {
            return [compared, "not run: " + (comparison.unavailable ?? "no test"), "—", "—", "—", "—", "inconclusive"]
        }
        let df = test.degreesOfFreedom.isEmpty ? "" : "(" + test.degreesOfFreedom.map { String(format: "%.4g", $0) }.joined(separator: ", ") + ")"
        return [
            compared,
            ([test.test] + test.notes).joined(separator: "; "),
            "\(test.statisticName)\(df) = \(String(format: "%.3f", test.statistic))",
            "\(pValue(test.pValue)); \(pValue(test.pValueAgainst))",
            estimate(test),
            detectable(test),
            test.verdict.rawValue,
        ]
    }

    /// The "how this was made" paragraphs, as plain text.
    var methodNotes: [String] {
        let r = results
        let methods = Set(summaries.map(\.method))
        var beyond: [String] = []
        if methods.contains(MethodName.pb2) {
            beyond.append("\(MethodName.pb2) is PBT-5x5 whose explore step is PB2's GP bandit (Parker-Holder et al., NeurIPS 2020: a time-varying GP over log-LR fitted to each finished trial's improvement, maximised by UCB) instead of random perturbation")
        }
        if methods.contains(MethodName.pbtWideRange) {
            let rates = r.learningRates(of: MethodName.pbtWideRange)
            beyond.append("\(MethodName.pbtWideRange) is PBT-5x5 whose first generation is drawn from the same prior but whose mutations may move the learning rate beyond it (here it ranged from \(String(format: "%.2g", rates.first ?? .nan)) to \(String(format: "%.2g", rates.last ?? .nan)))")
        }
        return [
            "Preset \(r.preset), model \(r.modelDescription), on \(r.machine). Started \(r.startedAt); the command took \(duration(r.wallSeconds)) (scoring and replays included; an experiment resumed after an interruption times its last session, which reuses the runs already done). Each trial trains \(r.stepsPerTrial.grouped) steps; every method has a budget of \(r.totalStepsPerMethod.grouped) training steps summed over its workers.",
            "Methods: " + paperMethods(methods) + (beyond.isEmpty ? "" : " Beyond the paper: " + beyond.joined(separator: "; ") + "; both have the same compute."),
            "Clocks: compute is training steps summed over all trials in the order they finished; steps per worker is compute divided by the number of workers; model iteration is a trial's own global step along its lineage. A curve is the best validation NLL (bits/sample) so far; failed or diverged trials count towards compute but never set a best. Across seeds, curves are step functions on the union of their x values, averaged where every seed has a value: lines show the mean, bands the min–max range.",
            "Claims: each verdict comes from stated tests on per-seed values: (a) and (b) one-sided permutation tests of the mean difference with bootstrap intervals, at \(rules.computeFractions.map(percent).joined(separator: ", ")) of the compute budget and \(rules.iterationFractions.map(percent).joined(separator: " and ")) of the model iteration every PBT-5x20 seed reached; (c) a one-sided Brown–Forsythe test with a bootstrap interval of the SD ratio; (d) a paired non-inferiority test with a margin of \(bits(rules.replayMargin)) bits. A test agrees only at p < 0.05 in the claimed direction and disagrees only at p < 0.05 against it; otherwise it is inconclusive and states the difference these seeds could detect with 80 % power. Final results are each run's final best model scored on the whole validation set (every sample with a full receptive field); selection inside a run and the earlier checkpoints use its fixed validation windows.",
            "Figures are SVG drawn by PBTWave's own report code (the PBTReport module) from results.json; nothing was edited by hand. `pbtwave report render --results results.json --output DIR` redraws this report from the raw numbers.",
        ]
    }

    /// The paper's methods this experiment ran, described (only those: a
    /// report of two methods described all four).
    func paperMethods(_ methods: Set<String>) -> String {
        var parts: [String] = []
        let pbt = [(MethodName.pbt5x5, "PBT-5x5 (5 workers, population 5)"), (MethodName.pbt5x20, "PBT-5x20 (5 workers, population 20, budget mode)")]
            .filter { methods.contains($0.0) }.map(\.1)
        if !pbt.isEmpty {
            parts.append(pbt.joined(separator: " and ") + (pbt.count == 1 ? " tunes" : " tune")
                         + " only the learning rate with binary-tournament selection and multiplicative mutation")
        }
        let fromScratch = [(MethodName.randomSearch, "random search trains 5 models from scratch with fixed learning rates from the same log-uniform prior"),
                           (MethodName.fixedLR, "the fixed-LR baseline trains 5 models with one hand-set rate")].filter { methods.contains($0.0) }
        parts += fromScratch.map(\.1)
        guard !parts.isEmpty else { return "none of the paper's methods was run." }
        let evaluated = fromScratch.isEmpty ? ""
            : " \(fromScratch.count == 2 ? "Random search and fixed LR are" : fromScratch[0].0 == MethodName.randomSearch ? "Random search is" : "Fixed LR is")"
                + " evaluated every \(results.stepsPerTrial.grouped) steps, like PBT's trials."
        return parts.joined(separator: "; ") + "." + evaluated
    }

    /// Files of `files` that are not in the folder the report goes to (the
    /// experiment writes schedule.json and the replays, `report render
    /// --output` elsewhere does not: found by a helper, it listed them).
    var absentFiles: Set<String> = []

    /// The files the report describes: schedule.csv only when a PBT run learned one.
    var files: [(name: String, description: String)] {
        Self.files.filter { (!$0.name.hasPrefix("schedule") && !$0.name.hasPrefix("replay") || winner != nil) && !absentFiles.contains($0.name) }
    }

    static let files: [(name: String, description: String)] = [
        ("results.json", "everything the experiment recorded: every trial of every run, the replays"),
        ("trials.csv", "one row per trial: method, seed, id, parent, generation, hyperparameters, steps, validation NLL, …"),
        ("curves.csv", "best-so-far validation NLL per method, seed and clock (method, seed, clock, x, best_nll)"),
        ("schedule.csv", "the best PBT trial's learned learning-rate schedule (step, lr): the rate applies from that step on"),
        ("schedule.json", "the schedule replayed: the final best trial's of the best trial's seed (it can be a later trial), with its recipe, for `pbtwave train --lr-schedule`"),
        ("replay.json, replays/", "the replays' scores: that seed's, and every seed's of the winning method"),
        ("fig-*.svg", "the figures as separate files (report.md links them)"),
    ]
}

func bits(_ value: Double) -> String { String(format: "%.3f", value) }

/// 0.8 → "80 %".
func percent(_ fraction: Double) -> String { String(format: "%g %%", fraction * 100) }

/// "0.0123", or "< 0.0001".
func pValue(_ p: Double) -> String { p < 1e-4 ? "< 0.0001" : String(format: "%.4f", p) }

/// 0.16 s → "0.16 s", 75 s → "75 s", 4000 s → "1 h 7 min" (a smoke run's
/// 0.16 s was shown as "0 s": found by a helper).
func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "—" }
    if seconds < 10 { return String(format: "%.2g s", seconds) }
    if seconds < 120 { return String(format: "%.0f s", seconds) }
    let minutes = Int((seconds / 60).rounded())
    if minutes < 60 { return "\(minutes) min" }
    return "\(minutes / 60) h \(minutes % 60) min"
}
