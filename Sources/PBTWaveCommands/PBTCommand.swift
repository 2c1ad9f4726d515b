import ArgumentParser
import Foundation
import PBT
import PBTPostgres

/// `pbtwave pbt`: run (or resume) Population Based Training of a model's
/// learning-rate schedule.
public struct PBTCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pbt",
        abstract: "Tune hyperparameter schedules (WaveNet's learning rate, or anything a training program reads) with Population Based Training.",
        discussion: """
            Runs W worker threads on a population of P trials of --trial-steps steps each, until the budget (--total-steps \
            summed over all trials, or --generations of P trials) is spent. P > W is budget mode: a generation is complete \
            when P of its trials have finished. Everything is kept in RUN_DIR (pbt.sqlite, checkpoints/); re-running the \
            same command on RUN_DIR resumes the run (settings flags left out take the run's values), and a complete run given a \
            larger --generations or --total-steps (every other setting its own) goes on to the new budget. At the end the best trial of the final population is reported and its \
            learned schedule is written to RUN_DIR/schedule.csv and RUN_DIR/schedule.json (with the recipe that \
            `pbtwave train --lr-schedule RUN_DIR/schedule.json` replays).

            Any training program: `pbtwave pbt --run-dir RUN_DIR --space space.json -- python3 train.py ARGS` runs each \
            trial as PROGRAM ARGS (no shell) in its own process group, with PBT_TRIAL_ID, PBT_TRIAL_DIR (an empty \
            directory: the trial's checkpoint), PBT_PARENT_DIR (the parent's, read only; empty for a fresh start), \
            PBT_START_STEP, PBT_STEPS, PBT_SEED, PBT_HYPERPARAMETERS (a JSON object) and PBT_HP_<NAME> in its environment. \
            It trains, writes its checkpoint and PBT_TRIAL_DIR/result.json ({"objective": 3.81}, lower is better) and \
            exits 0; its output goes to PBT_TRIAL_DIR/log.txt. A non-zero exit, a signal, a missing or invalid result, a \
            non-finite objective or --trial-timeout fails the trial (the reason and the log's last lines are kept and \
            shown); SIGINT, SIGTERM or SIGHUP stops the run and kills the running programs; their trials run again when the run resumes. See Tests/ExecToy/ for a small example.

            Several machines: --store postgres://… keeps the trials on a PostgreSQL server and RUN_DIR holds only the \
            checkpoints, so RUN_DIR must be a directory every machine reaches (a shared file system). This command creates \
            the run (or joins it) and runs --local-workers threads; `pbtwave worker --store … --run NAME --run-dir RUN_DIR` \
            on any machine adds workers. --local-workers 0 only creates the run.
            """)

    @Option(help: "Run directory: checkpoints and the learned schedule; with the default store also the trials (created if needed; an existing run there is resumed).",
            transform: nonEmptyPath)
    var runDir: String

    @OptionGroup var store: StoreOptions
    @OptionGroup var settings: PBTSettingsOptions
    @OptionGroup var runner: RunnerOptions
    @OptionGroup var progress: ProgressOptions

    @Option(parsing: .unconditional, help: "Worker threads in this process (default: --workers). 0: only create the run, for `pbtwave worker` processes.")
    var localWorkers: Int?

    @Option(parsing: .unconditional, help: "Seconds a claimed trial stays leased without a heartbeat (heartbeats come every quarter lease); after that another worker may re-run it. At least 1. Used by this process's workers only: each `pbtwave worker` sets its own.")
    var leaseSeconds: Double = 60

    @OptionGroup var failures: FailureLimitOptions

    @Flag(help: "Require an existing run (re-running without it also resumes).")
    var resume = false

    public init() {}

    public func validate() throws {
        if let localWorkers, localWorkers < 0 { throw ValidationError("--local-workers must be 0 or more") }
        try StoreOptions.checkLease(leaseSeconds)
    }

    public func run() throws {
        let runDirectory = URL(fileURLWithPath: runDir).standardizedFileURL
        let line = ProgressLine(label: "pbt", style: progress.progress)
        let made: (runner: any TrialRunner, configuration: RunConfiguration)
        // An existing run goes on with its own settings for the flags not given (every flag
        // had to be given again: the defaults were refused as other settings).
        // Before the model is made (without a program, a missing run was told as a missing corpus).
        if resume { try store.checkResumable(runDirectory: runDirectory) }
        let existing = store.storedConfiguration(runDirectory: runDirectory)
        let runnerOptions = runner.resuming(existing?.model)
        let chosen = try settings.settings(over: existing?.settings)
        try PBTSettingsOptions.check(chosen)
        // Said once the run is open (it preceded refusals too).
        let taken = existing == nil ? [] : Set(try settings.settings().differences(from: chosen).map(\.field))
        let takenNote = taken.isEmpty ? nil : "note: resuming with the run's own settings for the flags not given: "
            + chosen.fields.filter { taken.contains($0.field) }.compactMap { PBTSettingsOptions.flagText($0.field, $0.value, in: chosen) }
                .joined(separator: ", ")
        do { made = try runnerOptions.makeRunner(settings: chosen, resuming: existing, show: line.message) } catch {
            // Resuming a run of another model (a program's, without it): say so, not why this command's model cannot start.
            if let stored = existing?.model, stored != runnerOptions.model.rawValue {
                throw CommandError("\(store.label(runDirectory: runDirectory)) holds a run of "
                    + (stored == PBTModel.exec.rawValue ? "a training program" : "--model \(stored)")
                    + ", not of " + (runnerOptions.chosenModel != nil ? "--model \(runnerOptions.model.rawValue)" : "the default --model \(runnerOptions.model.rawValue)")
                    + ": to resume it, give "
                    + (stored == PBTModel.exec.rawValue ? "its program after -- as it was started" : "--model \(stored)")
                    + " (`pbtwave lineage \(store.lineageArguments(runDirectory: runDirectory)) --settings` shows how it was started); or choose a new "
                    + (store.isShared ? "--run" : "--run-dir"))
            }
            // A program named relative to the folder the run was started in, resumed from another.
            if case .notFound(_, nil)? = error as? ExecRunnerError, let recipe = try? existing?.recipe?.decoded(as: ExecRecipe.self),
               let note = ExecOptions.relativePathNote(recipe, here: FileManager.default.currentDirectoryPath) {
                throw CommandError("\(error); \(note.replacingOccurrences(of: "warning: ", with: ""))")
            }
            throw error
        }
        let (runner, configuration) = made
        let opened = try store.open(runDirectory: runDirectory, configuration: configuration, resume: resume,
                                    derived: settings.derived(over: existing?.settings))
        if !opened.created, let takenNote { printNote(takenNote) }
        let coordinator = opened.coordinator
        defer { withExtendedLifetime(opened.locks) {} }
        // A training program resumed from another folder: the files it names relative to where the run
        // started (checked before any trial runs).
        // (Not when it was given by other paths to the same files: those were checked.)
        if !opened.created, let recipe = try? coordinator.configuration.recipe?.decoded(as: ExecRecipe.self), self.runner.exec.given == recipe.command {
            let (other, missing, note) = ExecOptions.placeMessages(recipe, here: FileManager.default.currentDirectoryPath, worker: false)
            if let other { throw other }
            if let missing { throw missing }
            if let note { printNote(note) }
        }
        let settings = coordinator.settings
        print("pbt: \(opened.created ? "starting" : "resuming") \(store.label(runDirectory: runDirectory)): model \(configuration.model), "
              + "P=\(settings.population) W=\(settings.workers), \(settings.trialSteps) steps/trial, budget \(settings.trialBudget) trials, "
              + "\(settings.selection), \(settings.isGenerational ? "budget mode (generational)" : "asynchronous")"
              + (settings.deterministic ? ", deterministic" : "") + opened.note)
        if case .totalSteps(let total) = settings.budget, total % settings.trialSteps != 0 {
            printNote("note: --total-steps \(total) is \(settings.trialBudget) whole trials of \(settings.trialSteps) steps "
                  + "(\(settings.trialBudget * settings.trialSteps) steps); the last \(total % settings.trialSteps) are not trained")
        }
        if case .totalSteps(let total) = settings.budget, settings.isGenerational, settings.trialBudget % settings.population != 0 {
            let whole = settings.trialBudget / settings.population
            printNote("note: --total-steps \(total) buys \(settings.trialBudget) trials, \(whole) whole generation\(whole == 1 ? "" : "s") of "
                      + "\(settings.population) and \(settings.trialBudget % settings.population) more: the final population mixes two "
                      + "generations (--total-steps \(whole * settings.population * settings.trialSteps) or "
                      + "\((whole + 1) * settings.population * settings.trialSteps) gives whole ones)")
        }
        let threads = localWorkers ?? settings.workers
        if let localWorkers, localWorkers > settings.workers {
            printNote("note: --local-workers \(localWorkers) runs more trials at once than the run's --workers \(settings.workers), "
                      + "which set its generations; they run as soon as there are trials to run")
        }
        // A complete run needs no worker: it is summed up and exported as by one (it said "add workers").
        let runDone = (try? coordinator.store.run(named: coordinator.run.name))??.state.done == true
        guard threads > 0 || runDone else {
            // An SQLite store is one machine's (a user read "any machine" for it).
            print("pbt: the run is ready; add workers \(store.isShared ? "on any machine" : "on this machine (an SQLite store)") with:")
            print("  pbtwave worker \(store.workerArguments(runDirectory: runDirectory))")
            // Masked, the password cannot be pasted (found by a helper): say where it goes.
            if store.store?.masksPassword == true {
                print("  (the password is shown as ***: put it in its place, or leave it out of the URL and set PGPASSWORD or ~/.pgpass)")
            }
            return
        }
        var options = DriverOptions(workers: max(threads, 1), leaseSeconds: leaseSeconds, maxFailuresInARow: failures.maxFailuresInARow,
                                    notice: { line.message("pbt: \($0)") })
        options.trialLogCommand = store.trialLogCommand(runDirectory: runDirectory)
        if !runDone { PBTSession.removeStaleSchedules(in: runDirectory) }
        let (result, stopSignal) = try PBTSession.drive(runner, coordinator: coordinator, options: options, line: line)
        try PBTSession.printSummary(result, coordinator: coordinator, exportTo: runDirectory)
        if let stopSignal { throw ExitCode(128 + stopSignal) }
        if result.done, store.isShared { try PBTSession.sweep(coordinator) }
        try PBTSession.failIfFailed(result)
    }
}
