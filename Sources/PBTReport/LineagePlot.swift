import Foundation

/// The trials of one PBT run as a tree: x = generation, y = rank within the
/// generation by validation NLL (1 = best, failed trials last), an edge from
/// every parent to its child. The winner's lineage is drawn in colour; every
/// other trial, and the tournament losers, in grey.
public struct LineagePlot: Sendable {
    public var title: String
    public var run: MethodRun
    /// Ids of the highlighted lineage, root first; the last one is the winner.
    public var lineage: [Int]
    public var width: Double
    public var height: Double

    public init(title: String, run: MethodRun, lineage: [Int], width: Double = 720, height: Double? = nil) {
        self.title = title
        self.run = run
        self.lineage = lineage
        self.width = width
        let rows = Self.rankedGenerations(run).map(\.value.count).max() ?? 1
        self.height = height ?? max(420, 170 + Double(rows) * 16)
    }

    /// Each generation's trials sorted by NLL (failed last, ties by id), by generation.
    static func rankedGenerations(_ run: MethodRun) -> [Int: [TrialResult]] {
        Dictionary(grouping: run.trials, by: \.generation).mapValues { trials in
            trials.sorted { a, b in
                (a.finiteNLL ?? .infinity, a.id) < (b.finiteNLL ?? .infinity, b.id)
            }
        }
    }

    /// Rank (1 = best) of each trial within its generation.
    public static func ranks(_ run: MethodRun) -> [Int: Int] {
        var ranks: [Int: Int] = [:]
        for (_, trials) in rankedGenerations(run) {
            for (index, trial) in trials.enumerated() { ranks[trial.id] = index + 1 }
        }
        return ranks
    }

    public func svg(id: String) -> String {
        let lineageColor = Palette.vermillion
        let byID = Dictionary(run.trials.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let winnerNLL = lineage.last.flatMap { byID[$0]?.finiteNLL }
        var legend = [
            LegendEntry(swatch: .line(color: lineageColor, dash: .solid, width: 2.5, band: false), text: "winner's lineage"),
            LegendEntry(swatch: .marker(.circle, color: Palette.grey, filled: true), text: "other trial"),
            LegendEntry(swatch: .marker(.circle, color: "#555555", filled: false), text: "tournament loser"),
            LegendEntry(swatch: .line(color: "#555555", dash: .dotted, width: 1.5, band: false), text: "lost to the lineage"),
            LegendEntry(swatch: .marker(.cross, color: Palette.grey, filled: false), text: "failed"),
        ]
        if let winnerNLL {
            legend.insert(LegendEntry(swatch: .winner(color: lineageColor), text: String(format: "winner (%.3f bits/sample)", winnerNLL)), at: 1)
        }
        let frame = PlotFrame(id: id, width: width, height: height, legend: legend, leftMargin: 86)
        guard !run.trials.isEmpty else {
            var body = frame.open(title: title)
            body += frame.message("no PBT run with a result")
            return frame.close(title: title, body: body + frame.border())
        }
        let ranks = Self.ranks(run)
        let rows = Self.rankedGenerations(run).map(\.value.count).max() ?? 1
        let generations = run.trials.map(\.generation)
        let firstGeneration = generations.min()!
        let lastGeneration = generations.max()!

        let generationStep = max(1, Ticks.niceStep(span: Double(lastGeneration - firstGeneration + 1), target: 10).rounded())
        let generationTicks = Ticks.linear(lower: Double(firstGeneration), upper: Double(lastGeneration), step: generationStep)
        let xAxis = PlotAxis(scale: .linear, lower: Double(firstGeneration) - 0.5, upper: Double(lastGeneration) + 0.5,
                             label: "generation", ticks: generationTicks.map { AxisTick(value: $0, label: String(Int($0))) })
        let rankStep = max(1, Ticks.niceStep(span: Double(rows), target: 8).rounded())
        var rankTicks = [1.0] + Ticks.linear(lower: rankStep, upper: Double(rows), step: rankStep).filter { $0 > 1 }
        if rows > 1 && rankTicks.last != Double(rows) && Double(rows) - rankTicks.last! >= rankStep / 2 { rankTicks.append(Double(rows)) }
        let yAxis = PlotAxis(scale: .linear, lower: Double(rows) + 0.5, upper: 0.5,
                             label: "rank in generation (1 = lowest NLL)", ticks: rankTicks.map { AxisTick(value: $0, label: String(Int($0))) })

        func position(_ trial: TrialResult) -> (Double, Double) {
            (frame.x(xAxis.fraction(Double(trial.generation))), frame.y(yAxis.fraction(Double(ranks[trial.id]!))))
        }
        let onLineage = Set(lineage)
        let lineageEdges = Set(zip(lineage, lineage.dropFirst()).map { "\($0)-\($1)" })
        let losers = Set(run.trials.compactMap(\.tournamentLoser))
        let winnerID = lineage.last

        var edges = ""
        var highlighted = ""
        var lostEdges = ""
        for trial in run.trials {
            guard let parentID = trial.parent, let parent = byID[parentID] else { continue }
            let (x1, y1) = position(parent)
            let (x2, y2) = position(trial)
            if lineageEdges.contains("\(parentID)-\(trial.id)") {
                highlighted += SVG.line(x1: x1, y1: y1, x2: x2, y2: y2, stroke: lineageColor, width: 2.5)
            } else {
                edges += SVG.line(x1: x1, y1: y1, x2: x2, y2: y2, stroke: Palette.lightGrey, width: 1)
            }
            if onLineage.contains(trial.id), let loserID = trial.tournamentLoser, let loser = byID[loserID] {
                let (lx, ly) = position(loser)
                lostEdges += SVG.line(x1: lx, y1: ly, x2: x2, y2: y2, stroke: "#555555", width: 1.5, dash: LineDash.dotted.dashArray)
            }
        }
        var nodes = ""
        var lineageNodes = ""
        for trial in run.trials {
            let (x, y) = position(trial)
            if onLineage.contains(trial.id) {
                let isWinner = trial.id == winnerID
                lineageNodes += SVG.element("circle", [("cx", SVG.number(x)), ("cy", SVG.number(y)), ("r", isWinner ? "7" : "5"),
                                                       ("fill", lineageColor), ("stroke", isWinner ? Palette.black : "#ffffff"),
                                                       ("stroke-width", isWinner ? "2" : "1")])
            } else if trial.finiteNLL == nil {
                nodes += PlotFrame.marker(.cross, x: x, y: y, radius: 4.5, color: Palette.grey, filled: false)
            } else if losers.contains(trial.id) {
                nodes += PlotFrame.marker(.circle, x: x, y: y, radius: 4.5, color: "#555555", filled: false)
            } else {
                nodes += PlotFrame.marker(.circle, x: x, y: y, radius: 3.5, color: Palette.grey, filled: true, strokeWidth: 0.5)
            }
        }
        var body = frame.open(title: title)
        body += frame.yAxis(yAxis)
        body += frame.xAxis(xAxis)
        return frame.finish(title: title, body: body, data: edges + lostEdges + highlighted + nodes + lineageNodes)
    }
}
