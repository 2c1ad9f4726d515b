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

    /// One sentence per fact a reader wants first.
    var headline: [String] {
        var lines: [String] = []
        let ranked = summaries.compactMap { summary in summary.finalStatistics.map { (summary.method, $0) } }
            .sorted { $0.1.mean < $1.1.mean }
        if let best = ranked.first {
            lines.append("Lowest mean final NLL: \(best.0), \(bits(best.1.mean)) bits/sample over \(best.1.count) seed\(best.1.count == 1 ? "" : "s")"
                         + (ranked.count > 1 ? "; then " + ranked.dropFirst().map { "\($0.0) \(bits($0.1.mean))" }.joined(separator: ", ") + "." : "."))
        }
        if let winner, let nll = winner.trial.finiteNLL {
            lines.append("Overall winner: \(winner.method) seed \(winner.seed), trial \(winner.trial.id), \(bits(nll)) bits/sample after \(winner.endStep.grouped) model iterations.")
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
                stats.map { "\(bits($0.mean)) ± \(bits($0.standardDeviation))" } ?? "—",
                stats.map { "\(bits($0.minimum)) – \(bits($0.maximum))" } ?? "—",
                summary.finalBest.map { $0.map(bits) ?? "failed" }.joined(separator: ", "),
                Set(summary.computePerSeed).sorted().map(\.grouped).joined(separator: ", "),
                "\(summary.failedTrials) of \(summary.trialCount)",
                duration(summary.meanWallSeconds),
            ]
        }
    }

    static let methodHeader = ["Method", "W×P", "Seeds", "Final best NLL, mean ± std", "Min – max", "Per seed",
                               "Compute per run (steps)", "Failed trials (all seeds)", "Wall time per run"]

    var replayRows: [[String]] {
        results.replays.map { replay in
            [replay.method, String(replay.seed), bits(replay.pbtWinnerNLL), bits(replay.replayNLL),
             String(format: "%+.3f", replay.replayNLL - replay.pbtWinnerNLL), String(replay.schedule.points.count)]
        }
    }

    static let replayHeader = ["PBT run", "Seed", "PBT winner NLL", "Replay NLL", "Replay − winner (bits)", "Schedule points"]

    /// The "how this was made" paragraphs, as plain text.
    var methodNotes: [String] {
        let r = results
        return [
            "Preset \(r.preset), model \(r.modelPreset), on \(r.machine). Started \(r.startedAt); the whole experiment took \(duration(r.wallSeconds)). Each trial trains \(r.stepsPerTrial.grouped) steps; every method has a budget of \(r.totalStepsPerMethod.grouped) training steps summed over its workers.",
            "Methods: PBT-5x5 (5 workers, population 5) and PBT-5x20 (5 workers, population 20, budget mode) tune only the learning rate with binary-tournament selection and multiplicative mutation; random search trains 5 models from scratch with fixed learning rates from the same log-uniform prior; the fixed-LR baseline trains 5 models with one hand-set rate. Random search and fixed LR are evaluated every \(r.stepsPerTrial.grouped) steps, like PBT's trials.",
            "Clocks: compute is training steps summed over all trials in the order they finished; steps per worker is compute divided by the number of workers; model iteration is a trial's own global step along its lineage. A curve is the best validation NLL (bits/sample) so far; failed or diverged trials count towards compute but never set a best. Across seeds, curves are step functions on the union of their x values, averaged where every seed has a value: lines show the mean, bands the min–max range.",
            "Claims: (a) compares mean best NLL at \(rules.computeFractions.map { String(format: "%g %%", $0 * 100) }.joined(separator: ", ")) of the compute budget; (b) at \(rules.iterationFractions.map { String(format: "%g %%", $0 * 100) }.joined(separator: " and ")) of the model iteration every PBT-5x20 seed reached; (c) the standard deviation of the final best across seeds; (d) the replay's NLL minus the PBT winner's. A verdict is \"inconclusive\" when the difference is smaller than the seed spread or there are too few seeds; each row states its rule.",
            "Figures are SVG drawn by PBTWave's own report code (Sources/PBTExperiment/Report) from results.json; nothing was edited by hand. `pbtwave report render --results results.json --output DIR` redraws this report from the raw numbers.",
        ]
    }

    static let files: [(name: String, description: String)] = [
        ("results.json", "everything the experiment recorded: every trial of every run, the replays"),
        ("trials.csv", "one row per trial: method, seed, id, parent, generation, hyperparameters, steps, validation NLL, …"),
        ("curves.csv", "best-so-far validation NLL per method, seed and clock (method, seed, clock, x, best_nll)"),
        ("schedule.csv", "the winner's learned learning-rate schedule (step, lr): the rate applies from that step on"),
        ("fig-*.svg", "the figures as separate files (report.md links them)"),
    ]
}

func bits(_ value: Double) -> String { String(format: "%.3f", value) }

/// 75 s → "75 s", 4000 s → "1 h 6 min".
func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "—" }
    if seconds < 120 { return String(format: "%.0f s", seconds) }
    let minutes = Int((seconds / 60).rounded())
    if minutes < 60 { return "\(minutes) min" }
    return "\(minutes / 60) h \(minutes % 60) min"
}
