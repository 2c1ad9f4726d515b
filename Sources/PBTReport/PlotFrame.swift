import Foundation

/// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
public enum Palette {
    public static let blue = "#0072B2"
    public static let vermillion = "#D55E00"
    public static let green = "#009E73"
    public static let orange = "#E69F00"
    public static let skyBlue = "#56B4E9"
    public static let purple = "#CC79A7"
    public static let black = "#000000"
    public static let grey = "#9A9A9A"
    public static let lightGrey = "#D0D0D0"
    static let cycle = [blue, vermillion, green, orange, skyBlue, purple, black]
}

public enum LineDash: String, Sendable, Hashable {
    case solid, dashed, dotted

    var dashArray: String? {
        switch self {
        case .solid: nil
        case .dashed: "7 4"
        case .dotted: "2 3"
        }
    }
}

/// A method's colour and line style, the same in every figure.
public struct MethodStyle: Sendable, Hashable {
    public var color: String
    public var dash: LineDash

    /// PBT-5x5 blue solid, PBT-5x20 vermillion solid, random search green
    /// dashed, fixed LR orange dotted, PB2 sky blue dashed, the wide range
    /// purple dashed; other methods take the next colours.
    public static func of(_ method: String, among methods: [String]) -> MethodStyle {
        switch method {
        case MethodName.pbt5x5: return MethodStyle(color: Palette.blue, dash: .solid)
        case MethodName.pbt5x20: return MethodStyle(color: Palette.vermillion, dash: .solid)
        case MethodName.randomSearch: return MethodStyle(color: Palette.green, dash: .dashed)
        case MethodName.fixedLR: return MethodStyle(color: Palette.orange, dash: .dotted)
        case MethodName.pb2: return MethodStyle(color: Palette.skyBlue, dash: .dashed)
        case MethodName.pbtWideRange: return MethodStyle(color: Palette.purple, dash: .dashed)
        default:
            let others = methods.filter { !MethodName.standardOrder.contains($0) }
            let index = others.firstIndex(of: method) ?? 0
            let spare = [Palette.black, Palette.skyBlue, Palette.purple]
            return MethodStyle(color: spare[index % spare.count], dash: index < spare.count ? .solid : .dashed)
        }
    }
}

/// What a legend entry shows before its text.
enum LegendSwatch {
    case line(color: String, dash: LineDash, width: Double, band: Bool)
    case marker(MarkerShape, color: String, filled: Bool)
    case swatchBox(color: String)
    /// The winner's node: a large dot with a black ring.
    case winner(color: String)
}

enum MarkerShape {
    case circle, cross, square
}

struct LegendEntry {
    var swatch: LegendSwatch
    var text: String
}

/// The layout shared by all figures: title, a legend in rows under it, a
/// plot rectangle with room for tick labels and axis labels.
struct PlotFrame {
    static let fontSize = 12.0
    static let titleSize = 15.0
    static let tickColor = "#444444"
    static let gridColor = "#E4E4E4"

    let id: String
    let width: Double
    let height: Double
    let legendRows: [[(entry: LegendEntry, width: Double)]]
    let plotLeft: Double
    let plotRight: Double
    let plotTop: Double
    let plotBottom: Double

    init(id: String, width: Double, height: Double, legend: [LegendEntry], leftMargin: Double = 78, bottomMargin: Double = 56) {
        self.id = id
        self.width = width
        self.height = height
        // Legend rows fill the width under the title, entries never overlap.
        let available = width - 24
        var rows: [[(entry: LegendEntry, width: Double)]] = []
        var row: [(entry: LegendEntry, width: Double)] = []
        var used = 0.0
        for entry in legend {
            let entryWidth = 34 + SVG.textWidth(entry.text, size: Self.fontSize) + 18
            if !row.isEmpty && used + entryWidth > available {
                rows.append(row)
                row = []
                used = 0
            }
            row.append((entry, entryWidth))
            used += entryWidth
        }
        if !row.isEmpty { rows.append(row) }
        legendRows = rows
        plotLeft = leftMargin
        plotRight = width - 24
        plotTop = 34 + Double(rows.count) * 20 + 10
        plotBottom = height - bottomMargin
    }

    var plotWidth: Double { plotRight - plotLeft }
    var plotHeight: Double { plotBottom - plotTop }
    var clipID: String { id + "-clip" }

    func x(_ fraction: Double) -> Double { plotLeft + fraction * plotWidth }
    func y(_ fraction: Double) -> Double { plotBottom - fraction * plotHeight }

    /// Opens the document: background, title, clip path, legend.
    func open(title: String) -> String {
        var out = SVG.element("rect", [("x", "0"), ("y", "0"), ("width", SVG.number(width)), ("height", SVG.number(height)), ("fill", "#ffffff")])
        out += SVG.element("defs", [], content: SVG.element("clipPath", [("id", clipID)], content: SVG.element("rect", [
            ("x", SVG.number(plotLeft)), ("y", SVG.number(plotTop)),
            ("width", SVG.number(plotWidth)), ("height", SVG.number(plotHeight)),
        ])))
        out += SVG.text(title, x: width / 2, y: 22, anchor: .middle, size: Self.titleSize, weight: "bold")
        out += legend()
        return out
    }

    /// Ends a figure: `data` clipped to the plot rectangle, `message` (if
    /// any) centred over it and the border after `body`, all wrapped into
    /// the `<svg>` element.
    func finish(title: String, body: String, data: String, message: String? = nil) -> String {
        let note = message.map(self.message) ?? ""
        return close(title: title, body: body + SVG.element("g", [("clip-path", "url(#\(clipID))")], content: data) + note + border())
    }

    /// Wraps `body` into the `<svg>` element.
    func close(title: String, body: String) -> String {
        SVG.element("svg", [
            ("xmlns", "http://www.w3.org/2000/svg"),
            ("width", SVG.number(width)), ("height", SVG.number(height)),
            ("viewBox", "0 0 \(SVG.number(width)) \(SVG.number(height))"),
            ("role", "img"), ("aria-label", title),
            ("font-family", "DejaVu Sans, Helvetica, Arial, sans-serif"),
            ("font-size", SVG.number(Self.fontSize)),
        ], content: body)
    }

    private func legend() -> String {
        var out = ""
        for (index, row) in legendRows.enumerated() {
            let rowWidth = row.reduce(0) { $0 + $1.width } - 18
            var x = (width - rowWidth) / 2
            let y = 40 + Double(index) * 20
            for (entry, entryWidth) in row {
                out += swatch(entry.swatch, x: x, y: y)
                out += SVG.text(entry.text, x: x + 34, y: y + 4, size: Self.fontSize)
                x += entryWidth
            }
        }
        return out
    }

    private func swatch(_ swatch: LegendSwatch, x: Double, y: Double) -> String {
        switch swatch {
        case let .line(color, dash, lineWidth, band):
            var out = ""
            if band {
                out += SVG.element("rect", [("x", SVG.number(x)), ("y", SVG.number(y - 6)), ("width", "28"), ("height", "12"),
                                            ("fill", color), ("fill-opacity", "0.18")])
            }
            return out + SVG.line(x1: x, y1: y, x2: x + 28, y2: y, stroke: color, width: lineWidth, dash: dash.dashArray)
        case let .marker(shape, color, filled):
            return Self.marker(shape, x: x + 14, y: y, radius: 4.5, color: color, filled: filled)
        case let .winner(color):
            return SVG.element("circle", [("cx", SVG.number(x + 14)), ("cy", SVG.number(y)), ("r", "7"),
                                          ("fill", color), ("stroke", Palette.black), ("stroke-width", "2")])
        case let .swatchBox(color):
            return SVG.element("rect", [("x", SVG.number(x + 4)), ("y", SVG.number(y - 6)), ("width", "20"), ("height", "12"),
                                        ("fill", color), ("fill-opacity", "0.35")])
        }
    }

    static func marker(_ shape: MarkerShape, x: Double, y: Double, radius: Double, color: String, filled: Bool, strokeWidth: Double = 1.5) -> String {
        switch shape {
        case .circle:
            return SVG.element("circle", [("cx", SVG.number(x)), ("cy", SVG.number(y)), ("r", SVG.number(radius)),
                                          ("fill", filled ? color : "#ffffff"), ("stroke", color), ("stroke-width", SVG.number(strokeWidth))])
        case .square:
            return SVG.element("rect", [("x", SVG.number(x - radius)), ("y", SVG.number(y - radius)),
                                        ("width", SVG.number(2 * radius)), ("height", SVG.number(2 * radius)),
                                        ("fill", filled ? color : "#ffffff"), ("stroke", color), ("stroke-width", SVG.number(strokeWidth))])
        case .cross:
            let r = radius * 0.9
            return SVG.element("path", [("d", "M\(SVG.number(x - r)) \(SVG.number(y - r))L\(SVG.number(x + r)) \(SVG.number(y + r))M\(SVG.number(x - r)) \(SVG.number(y + r))L\(SVG.number(x + r)) \(SVG.number(y - r))"),
                                        ("stroke", color), ("stroke-width", "2"), ("fill", "none")])
        }
    }

    /// Horizontal grid lines, tick labels and the rotated label of a y axis.
    func yAxis(_ axis: PlotAxis) -> String {
        var out = ""
        for tick in axis.ticks {
            let y = y(axis.fraction(tick.value))
            out += SVG.line(x1: plotLeft, y1: y, x2: plotRight, y2: y, stroke: Self.gridColor)
            out += SVG.line(x1: plotLeft - 5, y1: y, x2: plotLeft, y2: y, stroke: Self.tickColor)
            out += SVG.text(tick.label, x: plotLeft - 8, y: y + 4, anchor: .end, size: Self.fontSize, fill: Self.tickColor)
        }
        out += SVG.text(axis.label, x: 18, y: (plotTop + plotBottom) / 2, anchor: .middle, size: Self.fontSize + 1, rotation: -90)
        return out
    }

    /// Vertical grid lines, tick labels and label of an x axis. Labels that
    /// would overlap their left neighbour are skipped.
    func xAxis(_ axis: PlotAxis) -> String {
        var out = ""
        var lastRight = -Double.infinity
        for tick in axis.ticks {
            let x = x(axis.fraction(tick.value))
            out += SVG.line(x1: x, y1: plotTop, x2: x, y2: plotBottom, stroke: Self.gridColor)
            out += SVG.line(x1: x, y1: plotBottom, x2: x, y2: plotBottom + 5, stroke: Self.tickColor)
            let halfWidth = SVG.textWidth(tick.label, size: Self.fontSize) / 2
            if x - halfWidth > lastRight + 6 {
                out += SVG.text(tick.label, x: x, y: plotBottom + 19, anchor: .middle, size: Self.fontSize, fill: Self.tickColor)
                lastRight = x + halfWidth
            }
        }
        out += SVG.text(axis.label, x: (plotLeft + plotRight) / 2, y: height - 12, anchor: .middle, size: Self.fontSize + 1)
        return out
    }

    /// The plot rectangle's outline, drawn last so it sits above the grid.
    func border() -> String {
        SVG.element("rect", [("x", SVG.number(plotLeft)), ("y", SVG.number(plotTop)), ("width", SVG.number(plotWidth)),
                             ("height", SVG.number(plotHeight)), ("fill", "none"), ("stroke", Self.tickColor)])
    }

    /// A centred note in the plot area, for figures without data.
    func message(_ text: String) -> String {
        SVG.text(text, x: (plotLeft + plotRight) / 2, y: (plotTop + plotBottom) / 2, anchor: .middle, size: Self.fontSize + 2, fill: "#666666")
    }
}
