import PBTFileSupport
import ArgumentParser
import Foundation
import PBT

/// `pbtwave bench exec-overhead`: trial completions per second when every
/// trial is a process (`--exec`), with a program that does nothing but
/// write its result, and what one process start costs.
struct BenchExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-overhead",
        abstract: "Trial completions/s of `pbtwave pbt --exec` with a program that only writes its result (target ≥ 300/s on 2 cores).",
        discussion: """
            Three measurements, in this order: the start of /bin/true (spawn and wait: what the OS charges for a process), \
            one trial of the program alone (trial directory, spawn, the program, result.json; sequential), and a whole PBT run \
            of --trials trials with --workers threads on a fresh SQLite store (claims, reports, garbage collection of the trial \
            directories). The default program is `sh -c` writing {"objective": …} into PBT_TRIAL_DIR/result.json; give another \
            after `--`.
            """)

    @Option(parsing: .unconditional, help: "Worker threads.")
    var workers: Int = 2

    @Option(parsing: .unconditional, help: "Trials to complete in the PBT run.")
    var trials: Int = 2000

    @Option(parsing: .unconditional, help: "Sequential runs for the process-start and single-trial measurements.")
    var repetitions: Int = 200

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The program and its arguments (default: sh -c writing the result).", valueName: "program"))
    var command: [String] = []

    static let defaultCommand = ExecCommand(program: "sh", arguments: [
        "-c", #"echo "{\"objective\": $((PBT_TRIAL_ID * 7919 % 1000))}" > "$PBT_TRIAL_DIR/result.json""#,
    ])

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard trials >= workers else { throw ValidationError("--trials must be at least --workers") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }

    func run() throws {
        let program = command.first.map { ExecCommand(program: $0, arguments: Array(command.dropFirst())) } ?? Self.defaultCommand
        let runner = try ExecRunner(command: program)
        let fm = FileManager.default
        let url = fm.temporaryDirectory.appendingPathComponent("exec-overhead-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        defer { try? fm.removeItem(at: url) }
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
        // A stop kills the running programs (in groups of their own, the terminal's Ctrl-C never reaches them); the
        // measurement then ends, and the temporary folder is removed (found by a helper: both were left behind).
        let signals = StopOnSignals { signal, _ in
            writeToStandardError("exec-overhead: \(signalName(signal)): stopped; the running programs are killed\n")
            runner.stop("pbtwave got \(signalName(signal))", immediately: true)
        }
        defer { signals.cancel() }
        do {
            try measure(runner, program: program, in: url)
        } catch {
            guard let signal = signals.first else { throw error }
            try? fm.removeItem(at: url)
            StopOnSignals.exitNow(signal)
        }
    }

    private func measure(_ runner: ExecRunner, program: ExecCommand, in url: URL) throws {
        let start = try ExecRunner.timeProcessStart("/bin/true", count: repetitions) / .milliseconds(1)
        let trial = TrialSpec(id: 1, generation: 0, parentID: nil, hyperparameters: Hyperparameters(["lr": .number(1e-3)]),
                              startStep: 0, steps: 1, seed: 1)
        let alone = try ContinuousClock().measure {
            for i in 0..<repetitions {
                _ = try runner.run(trial, parent: nil, output: CheckpointRef(url: url.appendingPathComponent("alone-\(i)")))
            }
        } / repetitions / .milliseconds(1)

        let settings = PBTSettings(population: workers, workers: workers, trialSteps: 1, budget: .totalSteps(trials))
        let directory = try RunDirectory(url.appendingPathComponent("run"), create: true, lock: true)
        let (coordinator, _) = try PBTCoordinator.open(store: directory.store, name: RunDirectory.runName,
                                                       configuration: RunConfiguration(settings: settings, model: PBTModel.exec.rawValue),
                                                       runDirectory: directory.url)
        let result = try PBTDriver(coordinator: coordinator, runner: runner, options: DriverOptions(workers: workers)).run()
        let failed = result.trials.filter { $0.status == .failed }
        guard failed.isEmpty else { throw CommandError("\(failed.count) trial(s) failed, e.g. \(failed[0].failure ?? "?")") }
        let completed = Double(result.completedThisSession)
        print("exec-overhead: program \(([program.program] + program.arguments).map(shellQuoted).joined(separator: " "))")
        print(String(format: "exec-overhead: process start (/bin/true, spawn + wait): %.2f ms; one trial alone (directory, spawn, "
                     + "program, result.json): %.2f ms; sequential, mean of %d", start, alone, repetitions))
        print(String(format: "exec-overhead: %d trials, %d workers, SQLite: %.2f s, %.0f completions/s; per trial %.2f ms in the runner, "
                     + "%.0f µs in controller+store+garbage collection (summed over workers)",
                     result.completedThisSession, workers, result.elapsedSeconds, completed / result.elapsedSeconds,
                     1e3 * result.time.runnerSeconds / completed, 1e6 * result.time.coordinationSeconds / completed))
    }
}
