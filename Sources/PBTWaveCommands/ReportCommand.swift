import ArgumentParser
import Foundation
import PBT
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
            abstract: "Read an experiment's results.json and write the report next to it (or into --output).",
            discussion: """
                The claims are recomputed by this build and written back into the report folder's results.json \
                (fields this build does not know are not kept); the runs' data are kept as they are.
                """
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
            // An experiment stopped before its end has run folders and no results.json (found by a helper: "no such file").
            let folder = input.deletingLastPathComponent()
            if !FileManager.default.fileExists(atPath: input.path), input.lastPathComponent == "results.json" {
                let runs = RunDirectory.runFolders(in: folder).filter { $0.contains("-seed") }
                if !runs.isEmpty {
                    throw CommandError("\(input.path) is not there yet: the experiment in \(folder.path) has not finished (\(runs.count) run folder(s), "
                                       + "no results.json). Run the same `pbtwave experiment … --run-dir \(folder.path)` again: it goes on where it "
                                       + "stopped, and writes results.json and the report at its end")
                }
            }
            let before = try? Data(contentsOf: there)
            // ReportError's message says what to do; ArgumentParser prints it.
            try ExperimentReport.write(try ExperimentResults.read(from: input), to: directory)
            // The input rewritten: said (found by a helper: a field added by hand went without a word).
            if let before, before != (try? Data(contentsOf: there)) {
                printNote("note: \(there.path) rewritten with the claims as this build computes them (fields it does not know are not kept)")
            }
            print("report: \(directory.appendingPathComponent("report.html").path)")
        }
    }
}
