import ArgumentParser
import Foundation
import PBTReport

/// `pbtwave report`: redraw an experiment report from its results.json.
/// (`pbtwave experiment --preset smoke` makes a real one in seconds.)
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Redraw an experiment report (report.html, report.md, CSV, SVG) from results.json.",
        subcommands: [Render.self],
        defaultSubcommand: Render.self
    )

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read an experiment's results.json and write the report next to it (or into --output)."
        )

        @Option(name: .long, help: ArgumentHelp("The results.json of an experiment run directory.", valueName: "file"),
                transform: nonEmptyFilePath)
        var results: String

        @Option(name: .long, help: ArgumentHelp("Directory to write the report into (default: the folder of results.json).", valueName: "dir"),
                transform: nonEmptyPath)
        var output: String?

        func run() throws {
            let input = URL(fileURLWithPath: results)
            let directory = output.map { URL(fileURLWithPath: $0) } ?? input.deletingLastPathComponent()
            // Another experiment's folder keeps its own results (found by a user: they were overwritten).
            let there = directory.appendingPathComponent("results.json")
            if there.standardizedFileURL != input.standardizedFileURL, FileManager.default.fileExists(atPath: there.path),
               (try? Data(contentsOf: there)) != (try? Data(contentsOf: input)) {
                throw CommandError("--output \(directory.path) holds another experiment's results.json: give the report a folder of its own")
            }
            // ReportError's message says what to do; ArgumentParser prints it.
            try ExperimentReport.write(try ExperimentResults.read(from: input), to: directory)
            print("report: \(directory.appendingPathComponent("report.html").path)")
        }
    }
}
