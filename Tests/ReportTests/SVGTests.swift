import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import PBTReport
import Testing

/// Parses `xml`; returns the parse error (nil when well-formed), every
/// element name, and all text content joined.
func parseXML(_ xml: String) -> (error: String?, elements: [String], text: String, attributes: [[String: String]]) {
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [String] = []
        var attributes: [[String: String]] = []
        var text = ""
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName: String?, attributes attributeDict: [String: String] = [:]) {
            elements.append(elementName)
            attributes.append(attributeDict)
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) {
            text += string
        }
    }
    let parser = XMLParser(data: Data(xml.utf8))
    let collector = Collector()
    parser.delegate = collector
    let ok = parser.parse()
    let error = ok ? nil : (parser.parserError.map { String(describing: $0) } ?? "unknown XML error")
    return (error, collector.elements, collector.text, collector.attributes)
}

@Suite("SVG plots")
struct SVGTests {
    @Test("escaping of & < > \" '")
    func escaping() {
        #expect(SVG.escape("a<b & c>\"d'") == "a&lt;b &amp; c&gt;&quot;d&#39;")
        #expect(SVG.escape("plain ×10⁻³") == "plain ×10⁻³")
    }

    @Test("a line plot with <&> in every label is well-formed and keeps the text")
    func wellFormedLinePlot() throws {
        let nasty = "x < y & z > \"w\" 'v'"
        let plot = LinePlot(
            title: "Title " + nasty, xLabel: "steps " + nasty, yLabel: "NLL " + nasty,
            series: [
                PlotSeries(name: "series " + nasty, color: "#0072B2", interpolation: .stepAfter,
                           points: [PlotPoint(x: 0, y: 5), PlotPoint(x: 10, y: 4), PlotPoint(x: 20, y: 3.5)],
                           band: [BandPoint(x: 0, low: 4.8, high: 5.2), BandPoint(x: 10, low: 3.9, high: 4.1), BandPoint(x: 20, low: 3.4, high: 3.6)]),
                PlotSeries(name: "dashed", color: "#D55E00", dash: .dashed, points: [PlotPoint(x: 0, y: 4), PlotPoint(x: 20, y: 4)]),
            ])
        let parsed = parseXML(plot.svg(id: "fig-test"))
        #expect(parsed.error == nil, "\(parsed.error ?? "")")
        #expect(parsed.elements.first == "svg")
        for label in ["Title ", "steps ", "NLL ", "series "] {
            #expect(parsed.text.contains(label + nasty), "missing \(label)")
        }
        #expect(parsed.elements.contains("clipPath"))
        #expect(parsed.attributes.contains { $0["id"] == "fig-test-clip" })
        #expect(parsed.attributes.contains { $0["stroke-dasharray"] == "7 4" })
    }

    @Test("a plot without data still draws its frame and says so")
    func emptyPlot() {
        let parsed = parseXML(LinePlot(title: "t", xLabel: "x", yLabel: "y", yScale: .log10, series: [], emptyMessage: "nothing here").svg(id: "e"))
        #expect(parsed.error == nil)
        #expect(parsed.text.contains("nothing here"))
    }

    @Test("step interpolation moves horizontally, then vertically")
    func stepTrace() {
        let points = [PlotPoint(x: 0, y: 3), PlotPoint(x: 1, y: 2), PlotPoint(x: 3, y: 1)]
        let stepped = LinePlot.trace(points, .stepAfter)
        #expect(stepped.map(\.0) == [0, 1, 1, 3, 3])
        #expect(stepped.map(\.1) == [3, 3, 2, 2, 1])
        #expect(LinePlot.trace(points, .linear).map(\.0) == [0, 1, 3])
    }

    @Test("log10 ticks: powers of ten over 4+ decades, else 1-2-5, else 1…9")
    func logTicks() {
        let wide = Ticks.log10(lower: 1e-5, upper: 0.1)
        #expect(maxDifference(wide.map(log10), [-5, -4, -3, -2, -1]) < 1e-12)
        let prior = Ticks.log10(lower: 1e-4, upper: 3e-2)
        let expected = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2]
        #expect(prior.count == expected.count)
        #expect(maxDifference(prior.map(log10), expected.map(log10)) < 1e-12, "max difference \(maxDifference(prior.map(log10), expected.map(log10)))")
        #expect(Ticks.log10(lower: 1.5e-3, upper: 8e-3) == [2e-3, 5e-3])
        #expect(Ticks.log10(lower: 2.1e-3, upper: 4.9e-3) == [3e-3, 4e-3])
    }

    @Test("log10 tick labels: superscript powers, or plain decimals between 0.01 and 9999")
    func logLabels() {
        #expect(Ticks.logLabels([1e-4, 1e-3, 1e-2]) == ["10⁻⁴", "10⁻³", "10⁻²"])
        #expect(Ticks.logLabels([2e-4, 5e-4, 1e-3]) == ["2×10⁻⁴", "5×10⁻⁴", "10⁻³"])
        #expect(Ticks.logLabels([0.01, 0.1, 1, 10]) == ["0.01", "0.1", "1", "10"])
        #expect(Ticks.logLabels([1e4, 1e5]) == ["10⁴", "10⁵"])
    }

    @Test("log axis: positions are linear in log10, the data lies inside the domain")
    func logAxis() {
        let axis = PlotAxis(scale: .log10, covering: [1e-4, 1e-2, -1, .nan], label: "lr")
        #expect(axis.lower < 1e-4 && axis.lower > 5e-5)
        #expect(axis.upper > 1e-2 && axis.upper < 2e-2)
        let middle = (axis.lower * axis.upper).squareRoot()
        #expect(abs(axis.fraction(middle) - 0.5) < 1e-12)
        #expect(abs(axis.fraction(axis.lower)) < 1e-12 && abs(axis.fraction(axis.upper) - 1) < 1e-12)
        #expect(axis.ticks.allSatisfy { $0.value >= axis.lower && $0.value <= axis.upper })
        #expect(axis.ticks.map(\.label).contains("10⁻³"))
    }

    @Test("linear ticks: nice steps, decimals as needed, thousands as k")
    func linearTicks() {
        let steps = PlotAxis(scale: .linear, covering: [0, 8000], label: "steps")
        #expect(steps.ticks.map(\.label) == ["0", "1000", "2000", "3000", "4000", "5000", "6000", "7000", "8000"])
        let large = PlotAxis(scale: .linear, covering: [0, 25_000], label: "steps")
        #expect(large.ticks.map(\.label) == ["0", "5k", "10k", "15k", "20k", "25k"])
        let nll = PlotAxis(scale: .linear, covering: [3.583, 3.695], label: "NLL")
        #expect(nll.ticks.first?.label == "3.58" && nll.ticks.last?.label == "3.70")
        #expect(nll.lower <= 3.583 && nll.upper >= 3.695)
        let flat = PlotAxis(scale: .linear, covering: [4, 4], label: "NLL")
        #expect(flat.lower < 4 && flat.upper > 4)
        // A value axis leaves room beyond its data, even when the data end on a tick (found by a helper: a dot cut in half).
        let onTicks = PlotAxis(scale: .linear, covering: [7.70, 7.95], label: "NLL")
        #expect(onTicks.lower == 7.70, "no margin asked: the axis starts at the data")
        let room = PlotAxis(scale: .linear, covering: [7.70, 7.95], label: "NLL", margin: 0.04)
        #expect(room.lower < 7.70 && room.upper > 7.95 && room.ticks.first!.value == room.lower, "\(room.lower)–\(room.upper)")
        #expect(PlotAxis(scale: .linear, covering: [0, 5], label: "n", includeZero: true, margin: 0.04).lower == 0, "a zero asked for stays the end")
    }

    @Test("strip and lineage plots are well-formed; lineage ranks follow NLL within a generation")
    func otherPlots() {
        let strip = StripPlot(title: "final <&>", yLabel: "NLL", categories: [
            StripPlot.Category(name: "A & B", color: "#0072B2", values: [3.5, 3.6, nil]),
            StripPlot.Category(name: "C", color: "#D55E00", values: [nil]),
        ])
        let parsedStrip = parseXML(strip.svg(id: "s"))
        #expect(parsedStrip.error == nil)
        #expect(parsedStrip.text.contains("A & B") && parsedStrip.text.contains("2 seeds, 1 failed"))
        // Six methods: the last mean's label goes left of its bar, inside the figure (found by a helper: cut at the edge).
        let six = StripPlot(title: "six", yLabel: "NLL", categories: (0..<6).map {
            StripPlot.Category(name: "M\($0)", color: "#0072B2", values: [7.9, 7.92])
        }).svg(id: "six")
        let labels = six.matches(of: #/<text x="([0-9.]+)"[^>]*fill="#222222"[^>]*>7\.910</text>/#).map { (x: Double($0.1)!, end: $0.0.contains("text-anchor=\"end\"")) }
        #expect(labels.count == 6 && labels.last!.end && !labels.first!.end, "\(labels)")
        #expect(labels.allSatisfy { $0.end || $0.x + 50 <= 720 }, "\(labels)")

        let run = AggregationTests.pbtRun
        let ranks = LineagePlot.ranks(run)
        #expect(ranks[0] == 1 && ranks[1] == 2, "generation 0: 5.0 before 5.5")
        #expect(ranks[2] == 1 && ranks[5] == 2, "generation 1: the failed trial last")
        let parsedLineage = parseXML(LineagePlot(title: "lineage", run: run, lineage: [0, 2, 3, 4]).svg(id: "l"))
        #expect(parsedLineage.error == nil)
        #expect(parsedLineage.text.contains("winner (4.000 bits/sample)"))
    }
}
