import PBTFileSupport
import Foundation

/// Writes the experiment report into a run directory.
public enum ExperimentReport {
    /// The files `write` produces, besides one `<figure id>.svg` per figure.
    public static let fileNames = ["report.html", "report.md", "results.json", "curves.csv", "trials.csv", "schedule.csv"]

    /// Writes report.html, report.md, fig-*.svg, results.json, curves.csv,
    /// trials.csv and schedule.csv into `directory` (created if missing).
    /// All files are written to temporary files in the same directory first,
    /// and renamed over the old ones only when every one is complete, so a
    /// reader never sees half a file and a failed write (a full disk) leaves
    /// the previous report as it was.
    ///
    /// - Returns: the URLs written, report.html first.
    /// - Throws: `ReportError.cannotWrite` when the directory or a file
    ///   cannot be written.
    @discardableResult
    public static func write(_ results: ExperimentResults, to directory: URL, rules: ClaimRules = ClaimRules()) throws -> [URL] {
        var content = ReportContent(results, rules: rules)
        // The files the experiment writes beside the report, listed only where they are.
        let here = { (name: String) in FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) }
        content.absentFiles = Set([here("schedule.json") ? nil : "schedule.json", here("replay.json") ? nil : "replay.json, replays/"]
            .compactMap { $0 })
        if PathKind(of: directory.path) == .file {
            throw ReportError.notAFolder(path: directory.path)
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ReportError.cannotWrite(path: directory.path, reason: FileErrorText.cause(of: error) ?? error.localizedDescription)
        }
        var recorded = results
        recorded.claims = content.claims
        let json: Data
        do {
            json = try ExperimentResults.jsonEncoder().encode(recorded)
        } catch {
            throw ReportError.cannotWrite(path: directory.appendingPathComponent("results.json").path, reason: "cannot encode results: \(error)")
        }
        var files: [(String, Data)] = [
            ("report.html", Data(ReportHTML.render(content).utf8)),
            ("report.md", Data(ReportMarkdown.render(content).utf8)),
            ("results.json", json),
            ("curves.csv", Data(ReportCSV.curves(results).utf8)),
            ("trials.csv", Data(ReportCSV.trials(results).utf8)),
        ]
        // With no PBT method there is no learned schedule: none is written
        // (an empty one would overwrite a schedule.csv already there).
        if content.winner != nil { files.append(("schedule.csv", Data(ReportCSV.schedule(content.winner).utf8))) }
        files += content.figures.map { ("\($0.id).svg", Data(SVG.document($0.svg).utf8)) }
        let written = files.map { directory.appendingPathComponent($0.0) }
        do {
            try AtomicFile.writeAll(zip(written, files).map { (path: $0.path, data: $1.1) })
        } catch {
            throw ReportError.cannotWrite(path: error.path, reason: error.reason + "; the previous report, if any, is unchanged")
        }
        return written
    }

    /// A few lines for the terminal after a run: the headline facts, one
    /// line per claim with its verdict and one per test under it.
    public static func summary(_ results: ExperimentResults, rules: ClaimRules = ClaimRules()) -> String {
        let content = ReportContent(results, rules: rules)
        var lines = content.headline
        for claim in content.claims {
            lines.append("\(claim.label) \(claim.verdict.rawValue): \(claim.claim)")
            lines += claim.comparisons.map { "    " + ReportContent.summaryLine($0) }
            // Found by a user: with no test run (only fixed-lr, say) the verdict stood without a why.
            if claim.comparisons.isEmpty { lines.append("    not tested: \(claim.reason)") }
        }
        return lines.joined(separator: "\n")
    }
}
