import ArgumentParser
import Foundation
import PBTExamples
import Report

/// `pbtwave report`: redraw an experiment report from its results.json, or
/// write a demo report from synthetic data (for the browser check).
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Redraw an experiment report (report.html, report.md, CSV, SVG) from results.json.",
        subcommands: [Render.self, Demo.self],
        defaultSubcommand: Render.self
    )

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read an experiment's results.json and write the report next to it (or into --output)."
        )

        @Option(name: .long, help: ArgumentHelp("The results.json of an experiment run directory.", valueName: "file"))
        var results: String

        @Option(name: .long, help: ArgumentHelp("Directory to write the report into (default: the folder of results.json).", valueName: "dir"))
        var output: String?

        func run() throws {
            let input = URL(fileURLWithPath: results)
            let directory = output.map { URL(fileURLWithPath: $0) } ?? input.deletingLastPathComponent()
            // ReportError's message says what to do; ArgumentParser prints it.
            try ExperimentReport.write(try ExperimentResults.read(from: input), to: directory)
            print("report: \(directory.appendingPathComponent("report.html").path)")
        }
    }

    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a report from synthetic results (no training), to try the report or check it in a browser.",
            shouldDisplay: false
        )

        @Option(name: .long, help: ArgumentHelp("Directory to write the demo report into.", valueName: "dir"))
        var output: String

        @Option(name: .long, help: "Seeds per method.")
        var seeds: Int = 5

        @Option(name: .long, help: "Training steps per trial (S).")
        var stepsPerTrial: Int = 100

        @Option(name: .long, help: "PBT-5x5 generations (a multiple of 4; the budget is 5 × this × S).")
        var generations: Int = 16

        func validate() throws {
            guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1") }
            guard stepsPerTrial >= 1 else { throw ValidationError("--steps-per-trial must be positive") }
            guard generations >= 4, generations % 4 == 0 else {
                throw ValidationError("--generations must be a positive multiple of 4, so that PBT-5x20 gets whole generations")
            }
        }

        func run() throws {
            let directory = URL(fileURLWithPath: output)
            try ExperimentReport.write(.demo(seeds: seeds, stepsPerTrial: stepsPerTrial, generations5x5: generations), to: directory)
            print("report: \(directory.appendingPathComponent("report.html").path)")
        }
    }
}
