import ArgumentParser
import Foundation
import PBT

extension LearningRateSchedule.Format: ExpressibleByArgument {}

/// `pbtwave schedule …`: learned schedules of PBT runs.
public struct ScheduleCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Learned hyperparameter schedules of PBT runs.",
        subcommands: [ScheduleExportCommand.self])
    public init() {}
}

/// `pbtwave schedule export RUN_DIR`: the schedule along one trial's lineage.
public struct ScheduleExportCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export the learned schedule of a trial (default: the best of the final population).",
        discussion: """
            Follows the trial's parents back to generation 0 and writes one row per change point:
            CSV 'step,lr' then '<global step>,<value>' rows starting at step 0, or JSON
            {"hyperparameter":"lr","points":[{"step":0,"value":…},…]}. `pbtwave train --lr-schedule FILE` replays it.
            """)

    @Argument(help: "A PBT run directory.")
    public var runDir: String

    @Option(help: "Trial id (default: the best of the final population).")
    public var trial: Int?

    @Option(help: "csv or json.")
    public var format: LearningRateSchedule.Format = .csv

    @Option(help: "Write here instead of standard output.")
    public var output: String?

    public init() {}

    public func run() throws {
        let (trials, selections) = try openRun(runDir)
        let id = try trial ?? {
            guard let best = Lineage.bestOfFinalPopulation(trials, selections) else { throw CommandError("\(runDir): the run has no finished trial yet") }
            return best.id
        }()
        guard let chosen = trials.first(where: { $0.id == id }) else {
            throw CommandError("--trial \(id): no such trial in \(runDir) (ids run from 1 to \(trials.count))")
        }
        guard chosen.status == .finished else {
            throw CommandError("--trial \(id) is \(chosen.status.rawValue); export a finished trial's schedule")
        }
        let text = Lineage.schedule(of: try Lineage.ancestry(of: id, in: trials)).text(format)
        if let output {
            try AtomicFile.write(Data(text.utf8), to: URL(fileURLWithPath: output))
        } else {
            print(text, terminator: "")
        }
    }
}

/// The trials and selections of the run in `path`, read without taking the
/// run directory's lock (a run may be going on).
func openRun(_ path: String) throws -> ([TrialRecord], [SelectionRecord]) {
    let directory = try RunDirectory(URL(fileURLWithPath: path), create: false, lock: false)
    guard let run = try directory.store.run(named: RunDirectory.runName) else { throw RunDirectoryError.noRun(path) }
    return (try directory.store.trials(runID: run.id), try directory.store.selections(runID: run.id))
}
