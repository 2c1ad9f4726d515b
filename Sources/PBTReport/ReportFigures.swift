import Foundation

/// One figure of the report: an inline SVG with an id and a caption.
public struct ReportFigure: Sendable {
    /// The `<figure>` id in report.html, and the file name `<id>.svg` next to report.md.
    public var id: String
    public var title: String
    public var caption: String
    public var svg: String
}

/// The six figures, always all present (a figure without data says so).
public enum ReportFigures {
    /// The ids in report order.
    public static let ids = ["fig-compute", "fig-iteration", "fig-worker", "fig-final", "fig-schedule", "fig-lineage"]

    static let nllLabel = "best validation NLL (bits/sample)"

    public static func make(_ results: ExperimentResults, summaries: [MethodSummary], winner: Winner?) -> [ReportFigure] {
        let budget = results.totalStepsPerMethod.grouped
        return [
            clockFigure(.compute, id: "fig-compute", title: "Best validation NLL vs compute", summaries: summaries,
                        caption: "Best validation NLL so far (bits/sample; lower is better) against compute: training steps summed over all trials of a run, in the order trials finished. Every method had a budget of \(budget) steps. Line: mean over seeds; band: min–max over seeds. The paper's claim (a) is about this clock."),
            clockFigure(.modelIteration, id: "fig-iteration", title: "Best validation NLL vs model iteration", summaries: summaries,
                        caption: "Best validation NLL over the trials whose model had trained at most x steps along its own lineage (its global step). With equal compute, PBT-5x20's models train 4× fewer iterations than PBT-5x5's, so its curve ends earlier. Line: mean over seeds; band: min–max. The paper's claim (b) is about this clock."),
            clockFigure(.stepsPerWorker, id: "fig-worker", title: "Best validation NLL vs steps per worker", summaries: summaries,
                        caption: "Best validation NLL against compute divided by the number of workers W: the elapsed time of a run when all workers train at the same speed. Line: mean over seeds; band: min–max."),
            finalFigure(summaries),
            scheduleFigure(results, winner: winner),
            lineageFigure(results, winner: winner),
        ]
    }

    static func style(_ method: String, _ summaries: [MethodSummary]) -> MethodStyle {
        MethodStyle.of(method, among: summaries.map(\.method))
    }

    static func clockFigure(_ clock: Clock, id: String, title: String, summaries: [MethodSummary], caption: String) -> ReportFigure {
        let series = summaries.map { summary in
            let curve = summary.curves[clock]!
            let style = style(summary.method, summaries)
            let seeds = curve.includedSeeds == 1 ? "1 seed" : "\(curve.includedSeeds) seeds"
            return PlotSeries(
                name: "\(summary.method) (\(seeds))", color: style.color, dash: style.dash, interpolation: .stepAfter,
                points: curve.points.map { PlotPoint(x: $0.x, y: $0.statistics.mean) },
                band: curve.includedSeeds > 1 ? curve.points.map { BandPoint(x: $0.x, low: $0.statistics.minimum, high: $0.statistics.maximum) } : [])
        }
        var plot = LinePlot(title: title, xLabel: clock.axisLabel, yLabel: nllLabel, series: series)
        var caption = caption
        if let range = focusRange(series) {
            plot.yRange = range
            caption += String(format: " The y axis stops at %.2f bits/sample so that the differences late in the runs stay visible; the first trials' higher values lie above it.", plot.axes.y.upper)
        }
        return ReportFigure(id: id, title: title, caption: caption, svg: plot.svg(id: id))
    }

    /// The NLL range worth showing: everything from 15 % of the x range on.
    /// Early trials sit bits above the final values and would squeeze the
    /// late differences, the ones the claims are about, into a few pixels.
    /// nil when nothing would be cut.
    static func focusRange(_ series: [PlotSeries]) -> ClosedRange<Double>? {
        let values = series.flatMap { $0.points.map(\.y) + $0.band.flatMap { [$0.low, $0.high] } }
        guard let lowest = values.min(), let highest = values.max(),
              let xMax = series.flatMap({ $0.points.map(\.x) }).max() else { return nil }
        let focusX = 0.15 * xMax
        // A step function's value at focusX (its first value if it starts later).
        func value(_ points: [(x: Double, y: Double)]) -> Double? {
            points.last { $0.x <= focusX }?.y ?? points.first?.y
        }
        let top = series.compactMap { series in
            [value(series.points.map { ($0.x, $0.y) }), value(series.band.map { ($0.x, $0.high) })].compactMap { $0 }.max()
        }.max() ?? highest
        guard top > lowest, top < highest - 1e-9 else { return nil }
        return lowest ... top
    }

    static func finalFigure(_ summaries: [MethodSummary]) -> ReportFigure {
        let title = "Final best validation NLL per seed"
        let plot = StripPlot(title: title, yLabel: nllLabel, categories: summaries.map {
            StripPlot.Category(name: $0.method, color: style($0.method, summaries).color, values: $0.finalBest)
        })
        return ReportFigure(
            id: "fig-final", title: title,
            caption: "The best validation NLL each seed reached by the end of its budget, on the fixed validation windows (one dot per seed), the mean over seeds (bar, with its value) and the min–max range (whisker). How much the result depends on the seed is the paper's Fig. 10 question; our claim (c) decides it on the whole-set scores of the final best models (the Final results table) where both methods compared have them, else on these.",
            svg: plot.svg(id: "fig-final"))
    }

    /// Why there is no winner: no PBT method ran, or none had a result.
    static func noPBT(_ results: ExperimentResults) -> String {
        results.runs.contains(where: \.isPBT) ? "No PBT run produced a successful trial" : "No PBT method was run in this experiment"
    }

    static func scheduleFigure(_ results: ExperimentResults, winner: Winner?) -> ReportFigure {
        let id = "fig-schedule"
        let title = "Learned learning-rate schedule of the winner"
        guard let winner, let schedule = winner.schedule?.points else {
            let plot = LinePlot(title: title, xLabel: "global step (model iteration)", yLabel: "learning rate (log scale)",
                                yScale: .log10, series: [], emptyMessage: "no PBT run with a result: no learned schedule")
            return ReportFigure(id: id, title: title, caption: noPBT(results) + ", so there is no learned schedule.", svg: plot.svg(id: id))
        }
        let end = Double(max(winner.endStep, schedule.last!.step))
        var points = schedule.map { PlotPoint(x: Double($0.step), y: $0.rate) }
        points.append(PlotPoint(x: end, y: schedule.last!.rate))
        var series = [PlotSeries(name: "\(winner.method) winner (seed \(winner.seed))", color: Palette.vermillion, lineWidth: 2.5,
                                 interpolation: .stepAfter, points: points)]
        let methods = results.runsByMethod.map(\.method)
        var comparison: [String] = []
        for group in results.runsByMethod where !MethodName.isPBT(group.method) {
            // One run's rates: the seed of the winner when the method has it.
            guard let run = group.runs.first(where: { $0.seed == winner.seed }) ?? group.runs.first else { continue }
            let rates = Set(run.trials.compactMap(\.learningRate)).sorted()
            guard !rates.isEmpty else { continue }
            let bestRate = run.bestTrial?.learningRate
            let style = MethodStyle.of(group.method, among: methods)
            let name = rates.count == 1
                ? "\(group.method): " + rateText(rates[0])
                : "\(group.method), seed \(run.seed): \(rates.count) rates" + (bestRate.map { ", best " + rateText($0) + " thick" } ?? "")
            comparison.append(rates.count == 1
                ? "\(group.method) trained at " + rateText(rates[0])
                : "\(group.method) (seed \(run.seed)) at " + rates.map(rateText).joined(separator: ", ") + (bestRate.map { "; its best model used " + rateText($0) + " (thick line)" } ?? ""))
            for (index, rate) in rates.enumerated() {
                series.append(PlotSeries(name: name, color: style.color, dash: style.dash, lineWidth: rate == bestRate && rates.count > 1 ? 3 : 1.5,
                                         points: [PlotPoint(x: 0, y: rate), PlotPoint(x: end, y: rate)], showInLegend: index == 0))
            }
        }
        let changes = schedule.count - 1
        let plot = LinePlot(title: title, xLabel: "global step (model iteration)", yLabel: "learning rate (log scale)",
                            yScale: .log10, series: series)
        return ReportFigure(
            id: id, title: title,
            caption: "The learning rate along the lineage of the best PBT trial (\(winner.method), seed \(winner.seed), trial \(winner.trial.id), \(String(format: "%.3f", winner.trial.finiteNLL!)) bits/sample): a step function with \(changes) change\(changes == 1 ? "" : "s") over \(winner.endStep.grouped) steps, exported as schedule.csv. Horizontal lines: the fixed learning rates of the other methods: " + (comparison.isEmpty ? "none were run." : comparison.joined(separator: "; ") + "."),
            svg: plot.svg(id: id))
    }

    /// 0.0031 → "0.0031", 0.00003 → "3e-05": one style for every rate in legends and captions.
    static func rateText(_ rate: Double) -> String { String(format: "%.2g", rate) }

    static func lineageFigure(_ results: ExperimentResults, winner: Winner?) -> ReportFigure {
        let id = "fig-lineage"
        guard let winner, let run = results.runs.first(where: { $0.method == winner.method && $0.seed == winner.seed }) else {
            let title = "Lineage of the winning PBT run"
            let empty = MethodRun(method: "", seed: 0, workers: 1, population: 1, trials: [], wallSeconds: 0)
            return ReportFigure(id: id, title: title, caption: noPBT(results) + ".",
                                svg: LineagePlot(title: title, run: empty, lineage: []).svg(id: id))
        }
        let title = "Lineage of the winning run: \(winner.method), seed \(winner.seed)"
        let plot = LineagePlot(title: title, run: run, lineage: winner.lineage.map(\.id))
        let losers = Set(run.trials.compactMap(\.tournamentLoser)).count
        return ReportFigure(
            id: id, title: title,
            caption: "Every trial of the run that produced the winner: x is its generation, y its rank within the generation by validation NLL (1 = best, failed trials last); a grey line joins each parent to its child. In colour: the winner's lineage, \(winner.lineage.count) trials from scratch to the winner. Grey rings: trials that lost a binary tournament (\(losers) in this run); dotted: the opponents the lineage's parents beat.",
            svg: plot.svg(id: id))
    }
}
