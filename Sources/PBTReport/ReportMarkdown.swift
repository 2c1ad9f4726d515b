import Foundation

/// report.md: the same tables as report.html; figures as `fig-*.svg` files
/// next to it.
enum ReportMarkdown {
    static func render(_ content: ReportContent) -> String {
        let r = content.results
        var md = "# \(content.title)\n\n"
        md += "Preset **\(r.preset)** · model \(r.modelDescription) · \(r.machine) · started \(r.startedAt) · \(duration(r.wallSeconds))\n\n"
        md += "A reproduction of Li et al., \"A Generalized Framework for Population Based Training\" (KDD 2019). Validation NLL is in bits per sample; lower is better.\n\n"
        for line in content.headline { md += "- \(line)\n" }

        md += "\n## The paper's claims, with our numbers\n\n"
        md += table(header: ReportContent.claimHeader, rows: content.claimRows.map { row in
            (row.first ? ["**\(row.claim.label)** \(row.claim.claim)", "**\(row.claim.verdict.rawValue)**"] : ["", ""]) + row.cells
        })
        md += "\n### How each verdict was reached\n\n"
        for claim in content.claims {
            md += "- **\(claim.label) \(claim.verdict.rawValue).** " + (claim.evidence + [claim.reason]).joined(separator: " · ") + "\n"
        }
        let disagreements = content.claims.filter { $0.verdict == .disagrees }
        if !disagreements.isEmpty {
            md += "\n**Where we disagree with the paper:** " + disagreements.map { "\($0.label) \($0.claim)" }.joined(separator: " ") + "\n"
        }

        md += "\n## Final results per method\n\n"
        md += table(header: ReportContent.methodHeader, rows: content.methodRows)
        md += "\n\(content.computeCheck.summary).\n"
        if !content.replayRows.isEmpty {
            md += "\n### Schedule replay (claim d)\n\n" + table(header: ReportContent.replayHeader, rows: content.replayRows)
        }

        md += "\n## Figures\n"
        for (index, figure) in content.figures.enumerated() {
            md += "\n![\(figure.title)](\(figure.id).svg)\n\n*Figure \(index + 1).* \(figure.caption)\n"
        }

        md += "\n## How this was made\n\n"
        for note in content.methodNotes { md += note + "\n\n" }
        md += "Files in this directory:\n\n"
        for file in content.files { md += "- `\(file.name)`: \(file.description)\n" }
        return md
    }

    /// A GitHub-flavoured table; `|` and line breaks in cells are escaped.
    static func table(header: [String], rows: [[String]]) -> String {
        func cell(_ text: String) -> String {
            text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        var md = "| " + header.map(cell).joined(separator: " | ") + " |\n"
        md += "|" + header.map { _ in " --- |" }.joined() + "\n"
        for row in rows { md += "| " + row.map(cell).joined(separator: " | ") + " |\n" }
        return md
    }
}
