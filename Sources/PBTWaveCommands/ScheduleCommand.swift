import ArgumentParser
import Foundation
import PBT
import PBTFileSupport

extension HyperparameterSchedule.Format: ExpressibleByArgument {}

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
            Follows the trial's parents back to generation 0 and writes one row per change point, starting at step 0: \
            CSV 'step,lr' (one column per hyperparameter), or JSON {"hyperparameters": ["lr"], "points": [{"step": 0, "lr": …}, …], \
            "end_step": …, "recipe": {…}}, whose recipe (model, windows, validation set, seed, corpus) lets \
            `pbtwave train --lr-schedule FILE.json` replay it with no other flag.
            """)

    @OptionGroup var source: RunSource

    @Option(parsing: .unconditional, help: "Trial id (default: the best of the final population).")
    var trial: Int?

    @Option(help: "csv or json (default: json for an --output ending in .json, else csv; JSON carries the training recipe).")
    var format: HyperparameterSchedule.Format?

    /// The format asked for, else the one `--output`'s extension names.
    var chosenFormat: HyperparameterSchedule.Format {
        format ?? (output.map { URL(fileURLWithPath: $0).pathExtension.lowercased() == "json" } == true ? .json : .csv)
    }

    @Option(help: "Write here instead of standard output ('-': standard output).", transform: nonEmptyFilePath)
    var output: String?

    /// The file to write, if any: `-` names standard output, as for most tools.
    var outputFile: String? { output == "-" ? nil : output }

    @Flag(help: "Overwrite an existing --output (without it, export refuses to).")
    var replace = false

    public init() {}

    /// Which of the run's own files in `runDir` `path` would overwrite, if
    /// one: its marker, its lock, or anything in its checkpoints folder.
    static func runsOwnFile(_ path: String, runDir: String) -> String? {
        func resolved(_ folder: String) -> String {
            guard let real = realpath(folder, nil) else { return URL(fileURLWithPath: folder).standardizedFileURL.path }
            defer { free(real) }
            return String(cString: real)
        }
        let target = URL(fileURLWithPath: (try? AtomicFile.destination(for: path)) ?? path)
        let file = resolved(target.deletingLastPathComponent().path) + "/" + target.lastPathComponent
        let run = resolved(runDir)
        if file == run + "/" + RunMarker.fileName { return "marker (\(RunMarker.fileName))" }
        if file == run + "/lock" { return "lock file" }
        if file.hasPrefix(run + "/" + CheckpointDirectory.folderName + "/") { return "checkpoints" }
        return nil
    }

    public func run() throws {
        if let output = outputFile {
            // Never over the trial store it reads (found by a user: `--output RUN_DIR/pbt.sqlite` lost the run).
            try OutputPath.distinct([("the run's trial store", source.storeFile), ("--output", output)])
            // Nor over the run's other files (found by a helper: `--replace` wrote a schedule over a checkpoint and the marker).
            if let runDir = source.runDir, let own = Self.runsOwnFile(output, runDir: runDir) {
                throw CommandError("--output \(output) would overwrite the \(own) of the run in \(runDir): give another path")
            }
            try OutputPath.check(output, flag: "--output", replace: replace)
        }
        let (trials, selections, configuration) = try source.read()
        let chosen = try source.trial(trial, in: trials, selections)
        guard chosen.status == .finished else {
            throw CommandError("--trial \(chosen.id) \(chosen.status == .failed ? "failed" : "is \(chosen.status.rawValue)"); export a finished trial's schedule")
        }
        let schedule = try Lineage.export(trial: chosen.id, of: trials, configuration: configuration)
        // Standard error: standard output may be the schedule itself.
        if trial == nil, let note = RunSource.incompleteNote(trials, configuration, chosen: chosen.id, stopped: source.isStopped) {
            writeToStandardError(note + "; export again when the run ends\n")
        }
        if let output = outputFile {
            try schedule.write(to: URL(fileURLWithPath: output), format: chosenFormat)
        } else {
            print(schedule.text(chosenFormat), terminator: "")
        }
    }
}

/// Where `lineage` and `schedule export` read a run: a run directory, or
/// `--store` and `--run` (a run in a PostgreSQL store has no store file in
/// its run directory).
struct RunSource: ParsableArguments {
    @Argument(help: "A PBT run directory (not needed with --store).", transform: nonEmptyPath)
    var runDir: String?

    @Option(help: ArgumentHelp("Read the run from this trial store: sqlite:PATH (or the path alone) or postgres://….", valueName: "store"))
    var store: StoreLocation?

    @Option(name: .customLong("run"), help: "Name of the run in the store.")
    var runName: String = RunDirectory.runName

    func validate() throws {
        guard runDir != nil || store != nil else { throw ValidationError("give a run directory, or --store (and --run)") }
        try StoreLocation.check(store)
        // The run directory was not read then (found by a user: another run's trials were shown without a word).
        if let runDir, store != nil {
            throw ValidationError("give a run directory or --store, not both: with --store the run is read from the store, not from \(runDir)")
        }
    }

    /// For messages.
    var label: String { store.map { "run '\(runName)' in \($0)" } ?? runDir! }

    /// The SQLite file the run is read from (nil: a PostgreSQL store).
    var storeFile: String? {
        switch store {
        case .sqlite(let path)?: path
        case .postgres?: nil
        case nil: runDir.map { URL(fileURLWithPath: $0).appendingPathComponent(RunDirectory.storeFileName).path }
        }
    }

    /// A note for standard error when the run is still going: `chosen` (the
    /// default trial, when `trial` is nil) is then the best so far, not the
    /// final population's. Nil when the run is complete.
    /// `stopped`: no process drives the run now (its directory's lock is
    /// free), so its "running" trials were running when it stopped.
    static func incompleteNote(_ trials: [TrialRecord], _ configuration: RunConfiguration, chosen: Int?, stopped: Bool = false) -> String? {
        let running = trials.filter { $0.status == .running }.count, queued = trials.filter { $0.status == .queued }.count
        guard running + queued > 0 else { return nil }
        // (It said "waiting" of trials the tree showed running.)
        let pending = [running > 0 ? "\(running) \(stopped ? (running == 1 ? "was" : "were") + " running when it stopped" : "running")" : nil,
                       queued > 0 ? "\(queued) queued" : nil].compactMap { $0 }.joined(separator: ", ")
        return "note: the run is not complete (\(trials.count - running - queued) of \(configuration.settings.trialBudget) trials ran, \(pending))"
            + (chosen.map { ": this is trial \($0), the best so far, not the final population's" } ?? "")
            // Found by a helper: after a kill -9, trials were shown "running" with no process left to run them.
            // (And after a kill -9 its training programs may run on: said, found by a helper; the next command stops them.)
            + (stopped ? "; no pbtwave process drives it now (training programs a killed one started may still run, until the next "
               + "command on the run stops them): the same `pbtwave pbt` command resumes it (`pbtwave lineage RUN_DIR --settings` lists its flags)" : "")
    }

    /// Whether no process drives the run now (a run directory whose lock is free).
    var isStopped: Bool { store == nil && runDir.map { RunDirectory.isDriven(URL(fileURLWithPath: $0)) == false } == true }

    /// The run's trials, selections and configuration, read without taking
    /// the run directory's lock (a run may be going on).
    func read() throws -> ([TrialRecord], [SelectionRecord], RunConfiguration) {
        let trialStore = try store?.open(mustExist: true, readingOnly: true)
            ?? RunDirectory(URL(fileURLWithPath: runDir!), create: false, lock: false, readingOnly: true).store
        guard let run = try trialStore.run(named: runName) else {
            // The store file is there (RunDirectory checked), but holds no such run.
            let holder = store.map { "\($0)" } ?? URL(fileURLWithPath: runDir!).appendingPathComponent(RunDirectory.storeFileName).path
            let names = (try? trialStore.runNames()) ?? []
            throw CommandError("\(holder) holds no run named '\(runName)'"
                               + (names.isEmpty ? " (it holds no run at all; start one with `pbtwave pbt \(store.map { "--store \(shellQuoted($0.description)) " } ?? "")--run-dir …`)"
                                  : "; it holds \(names.map { "'\($0)'" }.joined(separator: ", ")): give one with --run"))
        }
        return (try trialStore.trials(runID: run.id), try trialStore.selections(runID: run.id), try RunConfiguration(jsonText: run.configJSON))
    }

    /// The trial `--trial` names, by default the best of the final population.
    /// Throws when the run has no finished trial, or no trial with that id
    /// (`listingIDs`: the message also gives the range of ids).
    func trial(_ id: Int?, in trials: [TrialRecord], _ selections: [SelectionRecord]) throws -> TrialRecord {
        let id = try id ?? {
            guard let best = Lineage.bestOfFinalPopulation(trials, selections) else {
                let failed = trials.filter { $0.status == .failed }.count
                throw CommandError(failed > 0 && failed == trials.count
                    ? "\(label): the run has no finished trial: all \(failed) of its trials failed (`pbtwave lineage … --tree` shows why)"
                    : "\(label): the run has no finished trial yet")
            }
            return best.id
        }()
        guard let chosen = trials.first(where: { $0.id == id }) else {
            throw CommandError("--trial \(id): no such trial in \(label) (ids run from 1 to \(trials.count))")
        }
        return chosen
    }
}
