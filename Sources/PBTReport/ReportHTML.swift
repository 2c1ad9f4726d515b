import Foundation

/// report.html: one self-contained page (inline CSS and SVG, no scripts, no
/// external resources). Written as well-formed XML too (void elements
/// closed with "/>"), so tests can parse the whole page with XMLParser.
enum ReportHTML {
    static func render(_ content: ReportContent) -> String {
        let e = SVG.escape
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>PBTWave experiment report (\(e(content.results.preset)))</title>
        <style>
        \(css)
        </style>
        </head>
        <body>
        <main>
        <h1>\(e(content.title))</h1>
        <p class="meta">Preset <b>\(e(content.results.preset))</b> · model \(e(content.results.modelDescription)) · \(e(content.results.machine)) · started \(e(content.results.startedAt)) · \(e(duration(content.results.wallSeconds)))</p>
        <p class="lead">A reproduction of Li et al., “A Generalized Framework for Population Based Training” (KDD 2019): the learning rate of a WaveNet (\(e(content.results.modelDescription))) trained on real speech, tuned by \(content.summaries.count) method\(content.summaries.count == 1 ? "" : "s") with the same compute. Validation NLL is in bits per sample; lower is better.</p>
        <ul class="headline">

        """
        for line in content.headline { html += "<li>\(e(line))</li>\n" }
        html += "</ul>\n"

        html += "<h2 id=\"claims\">The paper’s claims, with our numbers</h2>\n"
        html += "<table class=\"claims\">\n<thead><tr>" + ReportContent.claimHeader.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for row in content.claimRows {
            html += "<tr>"
            if row.first {
                let span = row.rows > 1 ? " rowspan=\"\(row.rows)\"" : ""
                html += "<td\(span)><b>\(e(row.claim.label))</b> \(e(row.claim.claim))</td>"
                html += "<td\(span) class=\"verdict \(row.claim.verdict.rawValue)\">\(e(row.claim.verdict.rawValue))</td>"
            }
            html += row.cells.enumerated().map { index, cell in
                index == row.cells.count - 1 ? "<td class=\"verdict \(cell)\">\(e(cell))</td>" : "<td>\(e(cell))</td>"
            }.joined() + "</tr>\n"
        }
        html += "</tbody>\n</table>\n"
        html += "<h3>How each verdict was reached</h3>\n<dl class=\"rules\">\n"
        for claim in content.claims {
            html += "<dt><b>\(e(claim.label))</b> \(e(claim.verdict.rawValue))</dt>\n<dd>\(claim.evidence.map(e).joined(separator: "<br/>"))"
            html += "<p class=\"rule\">\(codeSpans(e(claim.reason)))</p></dd>\n"
        }
        html += "</dl>\n"
        let disagreements = content.claims.filter { $0.verdict == .disagrees }
        if !disagreements.isEmpty {
            html += "<p class=\"disagree\"><b>Where we disagree with the paper:</b> "
                + disagreements.map { e("\($0.label) \($0.claim)") }.joined(separator: " ") + " See the numbers above.</p>\n"
        }

        html += "<h2 id=\"results\">Final results per method</h2>\n"
        html += table(header: ReportContent.methodHeader, rows: content.methodRows, numericFrom: 1)
        html += "<p class=\"\(content.computeCheck.isEqual ? "note" : "disagree")\">\(e(content.computeCheck.summary)).</p>\n"
        if !content.replayRows.isEmpty {
            html += "<h3>Schedule replay (claim d)</h3>\n"
            html += table(header: ReportContent.replayHeader, rows: content.replayRows, numericFrom: 1)
        }

        html += "<h2 id=\"figures\">Figures</h2>\n"
        for (index, figure) in content.figures.enumerated() {
            html += "<figure id=\"\(e(figure.id))\">\n\(figure.svg)\n"
            html += "<figcaption><b>Figure \(index + 1).</b> \(e(figure.caption))</figcaption>\n</figure>\n"
        }

        html += "<h2 id=\"how\">How this was made</h2>\n"
        for note in content.methodNotes { html += "<p>\(codeSpans(e(note)))</p>\n" }
        html += "<p>Files in this directory:</p>\n<ul>\n"
        for file in content.files {
            html += "<li><code>\(e(file.name))</code>: \(e(file.description))</li>\n"
        }
        html += "</ul>\n</main>\n</body>\n</html>\n"
        return html
    }

    /// `text` between backticks becomes <code>text</code> (in escaped HTML).
    static func codeSpans(_ html: String) -> String {
        let parts = html.split(separator: "`", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts.count % 2 == 1 else { return html }
        return parts.enumerated().map { index, part in index % 2 == 1 ? "<code>\(part)</code>" : String(part) }.joined()
    }

    static func table(header: [String], rows: [[String]], numericFrom: Int) -> String {
        let e = SVG.escape
        var html = "<table>\n<thead><tr>" + header.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows {
            html += "<tr>" + row.enumerated().map { index, cell in
                index >= numericFrom ? "<td class=\"num\">\(e(cell))</td>" : "<td>\(e(cell))</td>"
            }.joined() + "</tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }

    static let css = """
    body { margin: 0; background: #f6f6f4; color: #1d1d1d; font: 15px/1.5 "DejaVu Sans", Helvetica, Arial, sans-serif; }
    main { max-width: 1000px; margin: 0 auto; padding: 24px 28px 48px; background: #ffffff; }
    h1 { font-size: 24px; margin: 0 0 6px; }
    h2 { font-size: 19px; margin: 34px 0 10px; border-bottom: 1px solid #dddddd; padding-bottom: 4px; }
    h3 { font-size: 16px; margin: 22px 0 8px; }
    .meta { color: #555555; margin: 0 0 12px; font-size: 14px; }
    .lead { margin: 0 0 8px; }
    .headline li { margin: 2px 0; }
    table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
    th, td { border: 1px solid #d5d5d5; padding: 5px 7px; text-align: left; vertical-align: top; }
    th { background: #efefec; }
    td.num { text-align: right; white-space: nowrap; }
    table.claims { font-size: 12px; }
    dl.rules dd { margin: 0 0 10px 18px; }
    p.rule { color: #555555; font-size: 12px; margin: 4px 0 0; }
    td.verdict { font-weight: bold; text-align: center; white-space: nowrap; }
    td.agrees { background: #dcefe6; color: #0b5e3f; }
    td.disagrees { background: #f8dfd2; color: #8a3100; }
    td.inconclusive { background: #ececec; color: #444444; }
    p.note { color: #333333; }
    p.disagree { background: #fbeee6; border-left: 4px solid #D55E00; padding: 6px 10px; }
    figure { margin: 26px 0; }
    figure svg { display: block; max-width: 100%; height: auto; margin: 0 auto; border: 1px solid #e2e2e2; }
    figcaption { font-size: 13px; color: #333333; margin: 6px auto 0; max-width: 720px; }
    code { font-family: "DejaVu Sans Mono", monospace; font-size: 13px; }
    """
}
