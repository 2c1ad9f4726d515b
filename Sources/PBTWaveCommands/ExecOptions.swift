import ArgumentParser
import Dispatch
import Foundation
import PBT
import Synchronization

/// `--exec`, `--trial-timeout` and `-- PROGRAM ARGS`: any training program
/// as the model (`ExecRunner`).
struct ExecOptions: ParsableArguments {
    @Flag(help: """
        Tune any training program, given after `--` (no shell): each trial runs it with the PBT_* environment \
        (PBT_TRIAL_DIR, PBT_PARENT_DIR, PBT_START_STEP, PBT_STEPS, PBT_SEED, PBT_HYPERPARAMETERS, PBT_HP_<NAME>) and \
        reads PBT_TRIAL_DIR/result.json, {"objective": …} (lower is better). Implied by a program after `--`.
        """)
    var exec = false

    @Option(parsing: .unconditional, help: "Fail a trial whose program runs longer than this many seconds: its process group gets SIGTERM, then SIGKILL 10 s later (default: no limit).")
    var trialTimeout: Double?

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The training program and its arguments, after `--`.", valueName: "program"))
    var command: [String] = []

    var isExec: Bool { exec || !command.isEmpty }

    func validate() throws {
        if let trialTimeout {
            guard trialTimeout > 0, trialTimeout <= 1e9 else { throw ValidationError("--trial-timeout must be a number of seconds above 0 and at most 1e9, about 32 years (got \(trialTimeout))") }
            guard isExec else { throw ValidationError("--trial-timeout applies only to a training program (`--exec … -- PROGRAM ARGS`)") }
        }
    }

    var timeout: Duration? { trialTimeout.map { .seconds($0) } }

    /// The program given after `--`, if any.
    var given: ExecCommand? { command.first.map { ExecCommand(program: $0, arguments: Array(command.dropFirst())) } }

    /// The runner of `command`; every failed trial is shown with `show`.
    static func runner(_ command: ExecCommand, timeout: Duration?, show: @escaping @Sendable (String) -> Void) throws -> ExecRunner {
        try ExecRunner(command: command, trialTimeout: timeout, onFailure: { failure in
            // A stop is no failure: the driver leaves the trial to run again.
            if case .stopped = failure.reason {
                show("pbt: trial \(failure.trialID) stopped; it goes back to the queue (another worker, or this run resumed, runs it again)")
            } else if case .abandoned = failure.reason {
                return  // the driver says so (DriverOptions.notice)
            } else {
                show("pbt: \(failure)")
            }
        }, onNote: show)
    }

    /// For `pbtwave worker`: the runner of a stored exec run, with the
    /// program (`-- PROGRAM ARGS`, e.g. another path on this machine) and
    /// the timeout given here instead of the stored ones.
    func runner(stored configuration: RunConfiguration, show: @escaping @Sendable (String) -> Void) throws -> ExecRunner {
        guard let recipe = try? configuration.recipe?.decoded(as: ExecRecipe.self) else {
            throw CommandError("the run stores no training program; it was made by an older pbtwave: use that build, or start a new run")
        }
        if given == nil, let note = Self.relativePathNote(recipe, here: FileManager.default.currentDirectoryPath) { show(note) }
        return try Self.runner(given ?? recipe.command, timeout: timeout ?? recipe.trialTimeout, show: show)
    }

    /// A warning when the run's program names files relative to the folder
    /// it was started in, and this process runs elsewhere, where they are
    /// not (every trial would fail on them); nil otherwise.
    static func relativePathNote(_ recipe: ExecRecipe, here: String) -> String? {
        let start = URL(fileURLWithPath: recipe.workingDirectory).standardizedFileURL.path
        guard URL(fileURLWithPath: here).standardizedFileURL.path != start else { return nil }
        let relative = ([recipe.command.program] + recipe.command.arguments).filter { word in
            !word.hasPrefix("/") && !word.hasPrefix("-") && !word.isEmpty
                && FileManager.default.fileExists(atPath: start + "/" + word) && !FileManager.default.fileExists(atPath: here + "/" + word)
        }
        guard !relative.isEmpty else { return nil }
        return "warning: the run's program names \(relative.joined(separator: ", ")) relative to \(start), where it was started; "
            + "this process runs in \(here), where \(relative.count == 1 ? "it is" : "they are") not: start it in \(start), "
            + "or start the run with absolute paths"
    }
}

/// While a run with training programs goes on, SIGINT, SIGTERM and SIGHUP
/// stop it cleanly instead of killing pbtwave (which would leave the
/// programs running in their own process groups): the first signal asks
/// the driver to stop and the runner to kill the programs (SIGTERM, then
/// SIGKILL after the grace period; their trials are not recorded and run
/// again on resume), a second one kills them at once.
final class StopOnSignals: Sendable {
    static let signals = [SIGINT, SIGTERM, SIGHUP]
    /// Set once in `init`; dispatch sources are safe to use from any thread.
    nonisolated(unsafe) private let sources: [any DispatchSourceSignal]
    private let received = Mutex<[Int32]>([])

    init(_ stop: @escaping @Sendable (_ signal: Int32, _ again: Bool) -> Void) {
        sources = Self.signals.map { number in
            signal(number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: number, queue: .global())
        }
        for (number, source) in zip(Self.signals, sources) {
            source.setEventHandler { [self] in
                let again = received.withLock { r in
                    r.append(number)
                    return r.count > 1
                }
                stop(number, again)
            }
            source.resume()
        }
    }

    /// Exits at once with 128 + `signal` (a second signal), output flushed.
    static func exitNow(_ signal: Int32) -> Never {
        fflush(nil)
        _exit(128 + signal)
    }

    /// The first signal received, if any.
    var first: Int32? { received.withLock { $0.first } }

    /// Restores the signals' default actions.
    func cancel() {
        for source in sources { source.cancel() }
        for number in Self.signals { signal(number, SIG_DFL) }
    }
}
