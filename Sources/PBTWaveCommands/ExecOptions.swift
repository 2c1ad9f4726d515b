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

    /// (Whether --trial-timeout applies is the command's to say: `pbt` needs
    /// the program with it, a `worker` of a program's run does not.)
    func validate() throws {
        if let trialTimeout {
            guard trialTimeout > 0, trialTimeout <= 1e9 else { throw ValidationError("--trial-timeout must be a number of seconds above 0 and at most 1e9, about 32 years (got \(trialTimeout))") }
        }
    }

    static let timeoutNeedsAProgram = "--trial-timeout applies only to a training program (`--exec … -- PROGRAM ARGS`)"

    var timeout: Duration? { trialTimeout.map { .seconds($0) } }

    /// The program given after `--`, if any.
    var given: ExecCommand? { command.first.map { ExecCommand(program: $0, arguments: Array(command.dropFirst())) } }

    /// The runner of `command`; every failed trial is shown with `show`.
    static func runner(_ command: ExecCommand, timeout: Duration?, space: SearchSpace,
                       show: @escaping @Sendable (String) -> Void) throws -> ExecRunner {
        try ExecRunner(command: command, trialTimeout: timeout, space: space, onFailure: { failure in
            // A stop is no failure: the driver leaves the trial to run again.
            if case .stopped = failure.reason {
                show("pbt: trial \(failure.trialID) stopped; it goes back to the queue (another worker, or this run resumed, runs it again; "
                     + "if the store is out of reach, once its lease has ended)")
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
        if let given {
            try Self.checkSameProgram(given, as: recipe.command)
            if given != recipe.command {
                show("note: this worker runs the run's program as \(Self.words(given)) (the run has \(Self.words(recipe.command)))")
                // Found by a helper: where this machine has the run's own files too, a copy that differs ran in silence.
                for (mine, theirs) in Self.differingFiles(given, as: recipe) {
                    show("warning: \(mine) is not the same file as the run's \(theirs), which this machine has too: their contents differ, "
                         + "so this worker runs other code than the run's other workers (give the run's own, or drop `--exec -- …`)")
                }
            }
        } else {
            let here = FileManager.default.currentDirectoryPath
            let (other, missing, note) = Self.placeMessages(recipe, here: here, worker: true)
            if let missing { throw missing }
            // Refused as `pbt` refuses it (found by a user: a warning, then the worker ran the other program to the run's end).
            if let other { throw other }
            if let note { show(note) }
        }
        return try Self.runner(given ?? recipe.command, timeout: timeout ?? recipe.trialTimeout, space: configuration.settings.searchSpace,
                               show: show)
    }

    /// A program and its arguments as the settings' mismatch messages show them.
    static func words(_ command: ExecCommand) -> String { compactJSON([command.program] + command.arguments) }

    /// Refuses a worker's program that is not the run's: a worker may give
    /// the run's program where it lives on its machine (each word the same,
    /// or a path with the same file name in another folder), nothing else.
    /// Before, any program ran, and the run's results and exported recipe
    /// mixed two programs.
    static func checkSameProgram(_ given: ExecCommand, as stored: ExecCommand) throws {
        let (mine, theirs) = ([given.program] + given.arguments, [stored.program] + stored.arguments)
        func fileName(_ word: String) -> String { URL(fileURLWithPath: word).lastPathComponent }
        func elsewhere(_ a: String, _ b: String) -> Bool {
            a == b || (!a.hasPrefix("-") && !b.hasPrefix("-") && (a.contains("/") || b.contains("/")) && fileName(a) == fileName(b))
        }
        guard mine.count != theirs.count || !zip(mine, theirs).allSatisfy(elsewhere) else { return }
        throw CommandError("""
            the program after --: the run has \(words(stored)), this worker has \(words(given)): a worker may give the run's \
            program and files where they live on its machine (the same file names in other folders, the same other arguments), \
            not another program; drop `--exec -- …` to run the run's own
            """)
    }

    /// Files `given` names (from this process's folder) where the run's
    /// words name other files that this machine has too (from the folder it
    /// was started in), and whose contents differ: (given's, the run's).
    static func differingFiles(_ given: ExecCommand, as stored: ExecRecipe) -> [(String, String)] {
        let (mine, theirs) = ([given.program] + given.arguments, [stored.command.program] + stored.command.arguments)
        guard mine.count == theirs.count else { return [] }
        let here = FileManager.default.currentDirectoryPath
        let start = URL(fileURLWithPath: stored.workingDirectory).standardizedFileURL.path
        func file(_ word: String, from folder: String) -> String? {
            guard !word.isEmpty, !word.hasPrefix("-") else { return nil }
            let path = word.hasPrefix("/") ? word : folder + "/" + word
            var status = stat()
            // Regular files of a program's size (never a device, which could be read forever).
            guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_size <= 64 << 20 else { return nil }
            return path
        }
        return zip(mine, theirs).compactMap { a, b in
            guard let ours = file(a, from: here), let run = file(b, from: start),
                  FileManager.default.contents(atPath: ours) != FileManager.default.contents(atPath: run) else { return nil }
            return (ours, run)
        }
    }

    /// Whether `given`, run from `here`, is the run's program in other words:
    /// word for word the same, or paths (absolute or relative to `here`) to
    /// the very files the run's words name from the folder it was started in
    /// (`pbt` resumed with `/home/me/train.py` for the run's `train.py`).
    static func sameFiles(_ given: ExecCommand, as stored: ExecRecipe, here: String) -> Bool {
        let (mine, theirs) = ([given.program] + given.arguments, [stored.command.program] + stored.command.arguments)
        guard mine.count == theirs.count else { return false }
        let start = URL(fileURLWithPath: stored.workingDirectory).standardizedFileURL.path
        func resolved(_ word: String, from folder: String) -> String? {
            guard !word.isEmpty, !word.hasPrefix("-"), let real = realpath(word.hasPrefix("/") ? word : folder + "/" + word, nil) else { return nil }
            defer { free(real) }
            return String(cString: real)
        }
        return zip(mine, theirs).allSatisfy { a, b in
            let (fileHere, fileThere) = (resolved(a, from: here), resolved(b, from: start))
            return fileHere == nil && fileThere == nil ? a == b : fileHere == fileThere
        }
    }

    /// Where the run's program (its program and arguments) names files
    /// relative to the folder it was started in (`start`), and this process
    /// runs elsewhere: `missing` are there but not here (every trial would
    /// fail on them), `other` are here too but are other files (the run
    /// would go on with other code). Both empty when this process runs in
    /// `start`, or the same files are reached from here.
    static func relativePaths(_ recipe: ExecRecipe, here: String) -> (start: String, missing: [String], other: [String]) {
        let start = URL(fileURLWithPath: recipe.workingDirectory).standardizedFileURL.path
        guard URL(fileURLWithPath: here).standardizedFileURL.path != start else { return (start, [], []) }
        func resolved(_ path: String) -> String? {
            guard let real = realpath(path, nil) else { return nil }
            defer { free(real) }
            return String(cString: real)
        }
        var (missing, other): ([String], [String]) = ([], [])
        for word in [recipe.command.program] + recipe.command.arguments where !word.hasPrefix("/") && !word.hasPrefix("-") && !word.isEmpty {
            guard let there = resolved(start + "/" + word) else { continue }
            guard let mine = resolved(here + "/" + word) else { missing.append(word); continue }
            if mine != there { other.append(word) }
        }
        return (start, missing, other)
    }

    /// A warning when `relativePaths` finds files of the run's program
    /// missing here; nil otherwise.
    static func relativePathNote(_ recipe: ExecRecipe, here: String) -> String? {
        missingNote(relativePaths(recipe, here: here), here: here)
    }

    /// Every message on the run's relative paths, from one look at the
    /// files: other files reached from here, the program or its script
    /// missing here (`missingProgram`), other files missing (a warning).
    static func placeMessages(_ recipe: ExecRecipe, here: String, worker: Bool)
        -> (error: CommandError?, missingProgram: CommandError?, warning: String?) {
        let found = relativePaths(recipe, here: here)
        return (otherFilesError(found, here: here, worker: worker), missingProgram(recipe, found, here: here, worker: worker), missingNote(found, here: here))
    }

    /// An error when the run's program or its script (the first argument
    /// that is not a flag) is named relative to the folder the run was
    /// started in and is not there from `here`: every trial would fail on
    /// it, and the run's budget go (found by a user: a warning, then every
    /// trial failed). Another missing word may be a file the program
    /// writes: that stays a warning (`placeMessages`).
    private static func missingProgram(_ recipe: ExecRecipe, _ found: (start: String, missing: [String], other: [String]), here: String,
                                       worker: Bool) -> CommandError? {
        let script = recipe.command.arguments.first { !$0.hasPrefix("-") }
        guard let missing = found.missing.first(where: { $0 == recipe.command.program || $0 == script }) else { return nil }
        return CommandError("the run's program needs \(missing), relative to \(found.start), where it was started; from \(here) "
                            + "it is not there, so every trial would fail: \(worker ? "start this worker" : "resume it") in \(found.start)"
                            + (worker ? ", or give the program where it is on this machine (`--exec -- PROGRAM ARGS`)" : ", or start a new run"))
    }

    private static func missingNote(_ found: (start: String, missing: [String], other: [String]), here: String) -> String? {
        guard !found.missing.isEmpty else { return nil }
        return "warning: the run's program names \(found.missing.joined(separator: ", ")) relative to \(found.start), where it was started; "
            + "this process runs in \(here), where \(found.missing.count == 1 ? "it is" : "they are") not: start it in \(found.start), "
            + "or start the run with absolute paths"
    }

    /// An error when `relativePaths` finds that the run's program would
    /// reach other files from here than where it was started; nil otherwise.
    private static func otherFilesError(_ found: (start: String, missing: [String], other: [String]), here: String, worker: Bool) -> CommandError? {
        guard !found.other.isEmpty else { return nil }
        let names = found.other.joined(separator: ", ")
        return CommandError("the run's program names \(names) relative to \(found.start), where it was started; from \(here) "
                            + "\(found.other.count == 1 ? "that is another file" : "those are other files"), so the run would go on "
                            + "with other code: " + (worker ? "start this worker in \(found.start), or give the run's program where it is "
                                                     + "(`--exec -- PROGRAM ARGS`)" : "resume it in \(found.start), or start a new run"))
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
    /// The signals that counted, and when the first came.
    private let received = Mutex<(signals: [Int32], firstAt: ContinuousClock.Instant?)>(([], nil))
    /// A signal this soon after the first is the same request: coreutils'
    /// `timeout` signals pbtwave, then its whole process group, so one stop
    /// arrives twice, microseconds apart (it stopped at once, keeping nothing).
    static let sameRequestWithin: Duration = .milliseconds(100)

    init(_ stop: @escaping @Sendable (_ signal: Int32, _ again: Bool) -> Void) {
        sources = Self.signals.map { number in
            signal(number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: number, queue: .global())
        }
        for (number, source) in zip(Self.signals, sources) {
            source.setEventHandler { [self] in
                let again = received.withLock { r -> Bool? in
                    let now = ContinuousClock.now
                    guard let firstAt = r.firstAt else {
                        r = ([number], now)
                        return false
                    }
                    guard now - firstAt >= Self.sameRequestWithin else { return nil }
                    r.signals.append(number)
                    return true
                }
                if let again { stop(number, again) }
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
    var first: Int32? { received.withLock { $0.signals.first } }

    /// Restores the signals' default actions.
    func cancel() {
        for source in sources { source.cancel() }
        for number in Self.signals { signal(number, SIG_DFL) }
    }
}
