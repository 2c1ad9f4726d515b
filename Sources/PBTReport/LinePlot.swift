import Foundation

public struct PlotPoint: Sendable, Hashable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// A shaded spread at x: from `low` to `high`.
public struct BandPoint: Sendable, Hashable {
    public var x: Double
    public var low: Double
    public var high: Double

    public init(x: Double, low: Double, high: Double) {
        self.x = x
        self.low = low
        self.high = high
    }
}

public enum Interpolation: Sendable, Hashable {
    /// Straight segments between points.
    case linear
    /// Constant from each point to the next (a right-continuous step function).
    case stepAfter
}

/// One line of a `LinePlot`, with an optional shaded band.
public struct PlotSeries: Sendable {
    public var name: String
    public var color: String
    public var dash: LineDash
    public var lineWidth: Double
    public var interpolation: Interpolation
    public var points: [PlotPoint]
    public var band: [BandPoint]
    public var markers: Bool
    public var showInLegend: Bool

    public init(
        name: String, color: String, dash: LineDash = .solid, lineWidth: Double = 2,
        interpolation: Interpolation = .linear, points: [PlotPoint], band: [BandPoint] = [],
        markers: Bool = false, showInLegend: Bool = true
    ) {
        self.name = name
        self.color = color
        self.dash = dash
        self.lineWidth = lineWidth
        self.interpolation = interpolation
        self.points = points
        self.band = band
        self.markers = markers
        self.showInLegend = showInLegend
    }
}

/// A line plot drawn as SVG: several series, optional spread bands, linear
/// or log10 axes with nice ticks, axis labels, title and legend.
public struct LinePlot: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var xScale: AxisScale
    public var yScale: AxisScale
    public var series: [PlotSeries]
    public var width: Double
    public var height: Double
    /// Whether the x axis starts at 0 (clocks do).
    public var xIncludesZero: Bool
    /// Shown in the plot area when no series has a point.
    public var emptyMessage: String
    /// When set, the y axis covers this range instead of all the data;
    /// whatever lies outside is cut off at the frame.
    public var yRange: ClosedRange<Double>?

    public init(
        title: String, xLabel: String, yLabel: String, xScale: AxisScale = .linear, yScale: AxisScale = .linear,
        series: [PlotSeries], width: Double = 720, height: Double = 420, xIncludesZero: Bool = true,
        emptyMessage: String = "no data", yRange: ClosedRange<Double>? = nil
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xScale = xScale
        self.yScale = yScale
        self.series = series
        self.width = width
        self.height = height
        self.xIncludesZero = xIncludesZero
        self.emptyMessage = emptyMessage
        self.yRange = yRange
    }

    /// The axes the plot draws, chosen to cover every point and band.
    public var axes: (x: PlotAxis, y: PlotAxis) {
        let xs = series.flatMap { $0.points.map(\.x) + $0.band.map(\.x) }
        let ys = yRange.map { [$0.lowerBound, $0.upperBound] }
            ?? series.flatMap { $0.points.map(\.y) + $0.band.flatMap { [$0.low, $0.high] } }
        return (PlotAxis(scale: xScale, covering: xs, label: xLabel, includeZero: xIncludesZero && xScale == .linear),
                PlotAxis(scale: yScale, covering: ys, label: yLabel, margin: 0.04))
    }

    /// The `<svg>` element; `id` prefixes the ids inside it, so several
    /// plots can share one HTML page.
    public func svg(id: String) -> String {
        let legend = series.filter(\.showInLegend).map { series in
            LegendEntry(swatch: .line(color: series.color, dash: series.dash, width: series.lineWidth, band: !series.band.isEmpty),
                        text: series.name)
        }
        let frame = PlotFrame(id: id, width: width, height: height, legend: legend)
        let (xAxis, yAxis) = axes
        var body = frame.open(title: title)
        body += frame.yAxis(yAxis)
        body += frame.xAxis(xAxis)
        let position = { (x: Double, y: Double) in (frame.x(xAxis.fraction(x)), frame.y(yAxis.fraction(y))) }
        var data = ""
        for series in series where series.band.count >= 2 {
            let upper = Self.trace(series.band.map { PlotPoint(x: $0.x, y: $0.high) }, series.interpolation)
            let lower = Self.trace(series.band.map { PlotPoint(x: $0.x, y: $0.low) }, series.interpolation)
            let outline = (upper + lower.reversed()).map(position)
            data += SVG.element("path", [("d", SVG.pathData(outline, closed: true)), ("fill", series.color),
                                         ("fill-opacity", "0.18"), ("stroke", "none")])
        }
        for series in series where !series.points.isEmpty {
            let trace = Self.trace(series.points, series.interpolation).map(position)
            var attributes: [(String, String)] = [("d", SVG.pathData(trace)), ("fill", "none"), ("stroke", series.color),
                                                  ("stroke-width", SVG.number(series.lineWidth)), ("stroke-linejoin", "round")]
            if let dash = series.dash.dashArray { attributes.append(("stroke-dasharray", dash)) }
            data += SVG.element("path", attributes)
            if series.markers || series.points.count == 1 {
                for point in series.points {
                    let (x, y) = position(point.x, point.y)
                    data += PlotFrame.marker(.circle, x: x, y: y, radius: 3, color: series.color, filled: true)
                }
            }
        }
        return frame.finish(title: title, body: body, data: data, message: series.allSatisfy(\.points.isEmpty) ? emptyMessage : nil)
    }

    /// The corners a series passes through: the points themselves, or for a
    /// step function a horizontal then a vertical move between them.
    static func trace(_ points: [PlotPoint], _ interpolation: Interpolation) -> [(Double, Double)] {
        switch interpolation {
        case .linear:
            return points.map { ($0.x, $0.y) }
        case .stepAfter:
            var corners: [(Double, Double)] = []
            for (index, point) in points.enumerated() {
                if index > 0 { corners.append((point.x, points[index - 1].y)) }
                corners.append((point.x, point.y))
            }
            return corners
        }
    }
}
