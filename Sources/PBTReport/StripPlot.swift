import Foundation

/// Per-category dots (one per seed) with a mean bar and a min–max whisker:
/// how much a method's final result depends on the seed.
public struct StripPlot: Sendable {
    public struct Category: Sendable {
        public var name: String
        public var color: String
        /// One per seed; nil: the seed has no result (every trial failed).
        public var values: [Double?]

        public init(name: String, color: String, values: [Double?]) {
            self.name = name
            self.color = color
            self.values = values
        }
    }

    public var title: String
    public var yLabel: String
    public var categories: [Category]
    public var width: Double
    public var height: Double

    public init(title: String, yLabel: String, categories: [Category], width: Double = 720, height: Double = 420) {
        self.title = title
        self.yLabel = yLabel
        self.categories = categories
        self.width = width
        self.height = height
    }

    public func svg(id: String) -> String {
        let legend = [
            LegendEntry(swatch: .marker(.circle, color: Palette.grey, filled: true), text: "one seed"),
            LegendEntry(swatch: .line(color: Palette.black, dash: .solid, width: 3, band: false), text: "mean over seeds"),
            LegendEntry(swatch: .line(color: "#555555", dash: .solid, width: 1.5, band: false), text: "min–max"),
        ]
        let frame = PlotFrame(id: id, width: width, height: height, legend: legend, bottomMargin: 62)
        let values = categories.flatMap { $0.values.compactMap { $0 } }
        let yAxis = PlotAxis(scale: .linear, covering: values, label: yLabel, margin: 0.04)
        var body = frame.open(title: title)
        body += frame.yAxis(yAxis)
        let slot = frame.plotWidth / Double(max(categories.count, 1))
        var data = ""
        for (index, category) in categories.enumerated() {
            let centre = frame.plotLeft + slot * (Double(index) + 0.5)
            let present = category.values.compactMap { $0 }
            let failed = category.values.count - present.count
            body += SVG.text(category.name, x: centre, y: frame.plotBottom + 19, anchor: .middle, size: PlotFrame.fontSize, fill: PlotFrame.tickColor)
            let note = "\(present.count) seed" + (present.count == 1 ? "" : "s") + (failed > 0 ? ", \(failed) failed" : "")
            body += SVG.text(note, x: centre, y: frame.plotBottom + 35, anchor: .middle, size: PlotFrame.fontSize, fill: "#666666")
            guard let statistics = SeedStatistics(present) else { continue }
            let y = { (value: Double) in frame.y(yAxis.fraction(value)) }
            data += SVG.line(x1: centre, y1: y(statistics.minimum), x2: centre, y2: y(statistics.maximum), stroke: "#555555", width: 1.5)
            // Seeds spread sideways in a fixed order so equal values stay visible.
            let spacing = min(9, 44 / Double(max(present.count, 1)))
            for (seedIndex, value) in present.enumerated() {
                let offset = (Double(seedIndex) - Double(present.count - 1) / 2) * spacing
                data += SVG.element("circle", [("cx", SVG.number(centre + offset)), ("cy", SVG.number(y(value))), ("r", "5"),
                                               ("fill", category.color), ("fill-opacity", "0.8"), ("stroke", "#ffffff"), ("stroke-width", "1")])
            }
            let meanY = y(statistics.mean)
            data += SVG.line(x1: centre - 28, y1: meanY, x2: centre + 28, y2: meanY, stroke: Palette.black, width: 3)
            // Right of the mean's bar, or left of it where the figure ends first (found by a helper: "7.910" cut to "7.9").
            let fitsRight = centre + 33 + 50 <= Double(width)  // five digits at 12 px, with room for a wider font
            data += SVG.element("text", [("x", SVG.number(fitsRight ? centre + 33 : centre - 33)), ("y", SVG.number(meanY + 4)),
                                         ("font-size", "12")] + (fitsRight ? [] : [("text-anchor", "end")])
                                    + [("fill", "#222222"), ("stroke", "#ffffff"), ("stroke-width", "3"), ("paint-order", "stroke")],
                                content: SVG.escape(String(format: "%.3f", statistics.mean)))
        }
        return frame.finish(title: title, body: body, data: data, message: values.isEmpty ? "no results" : nil)
    }
}
