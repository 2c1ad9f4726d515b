import Dispatch
import PBTFileSupport
import Foundation
import Synchronization

/// Any training program as a PBT trial: `pbtwave pbt … -- PROGRAM ARGS`.
///
/// Each trial starts `PROGRAM ARGS` (no shell) in its own process group, in
/// this process's working directory, with this process's environment plus
/// the contract (inherited `PBT_*` variables are passed on, but those the
/// contract sets and any `PBT_HP_*`, which the trial's replace):
///
/// | variable | value |
/// | --- | --- |
/// | `PBT_TRIAL_ID` | the trial's id (1, 2, …) |
/// | `PBT_TRIAL_DIR` | an empty directory that is this trial's output: its checkpoint |
/// | `PBT_PARENT_DIR` | the parent trial's directory, read only; empty for a fresh start |
/// | `PBT_START_STEP`, `PBT_STEPS` | the global step the parent ended at; steps to train |
/// | `PBT_SEED` | `PBTSettings.trialSeed(id)`: a function of the run seed and the id |
/// | `PBT_HYPERPARAMETERS` | a JSON object, e.g. `{"lr":0.003,"momentum":0.9}` |
/// | `PBT_HP_<NAME>` | one per hyperparameter, e.g. `PBT_HP_lr=0.003` (a name with `-` also with `_`, for shells) |
/// | `PBT_EXIT_PARENT_UNUSABLE` | `65`: the exit code that says the checkpoint in `PBT_PARENT_DIR` cannot be used |
///
/// A numeric choice's whole values are written without a fraction
/// (`"batch":32`), a continuous hyperparameter's always with one (`1.0`,
/// `0.003`; given the space, `realValued`). The program
/// writes its checkpoint into `PBT_TRIAL_DIR`, reports by writing
/// `PBT_TRIAL_DIR/result.json` (`{"objective": 3.81}`, lower is better;
/// optional `"steps"` and `"metrics"`; JSON5 is allowed, so Python's `NaN`
/// and `Infinity` count as non-finite rather than invalid) and exits 0. Its
/// standard output and error go to `PBT_TRIAL_DIR/log.txt`.
///
/// A program that cannot use its parent's checkpoint exits with
/// `parentUnusableExitCode` (65): the trial fails without counting towards
/// `--max-failures-in-a-row`, the parent is retired from selection and the
/// refill starts from another trial. A program that changes anything in
/// `PBT_PARENT_DIR` (checked by size, time and inode of every file before
/// and after it runs) fails its trial, and that parent is retired too: the
/// checkpoint other trials start from is no longer the one that scored.
///
/// The trial fails (`ExecTrialFailure`, with the last `logTailLines` lines
/// of the log: stored as the trial's failure text and shown) on a non-zero
/// exit, a signal, a missing or invalid `result.json`, a non-finite
/// objective, a `"steps"` other than `PBT_STEPS`, the trial timeout, or
/// `stop(_:)` (pbtwave got SIGINT, SIGTERM or SIGHUP). On a timeout or a
/// stop the whole process group gets SIGTERM, then SIGKILL after
/// `killGrace`; after any trial, whatever the program left running in its
/// group is killed, so nothing outlives its trial. (If this process itself
/// is killed with SIGKILL, its programs run on until they finish; their
/// directories belong to an attempt that is never used, and are removed by
/// the resume sweep, or with PostgreSQL by the creating command at the end.)
///
/// The directories are checkpoints like any other: garbage collection,
/// failed trials and the resume sweep delete them whole, so the disk bound
/// on live checkpoints holds for them.
public final class ExecRunner: TrialRunner {
    public static let resultFileName = "result.json"
    /// The exit code that says the parent's checkpoint cannot be used
    /// (`PBT_EXIT_PARENT_UNUSABLE`; 65 is `EX_DATAERR`).
    public static let parentUnusableExitCode: Int32 = 65
    public static let logFileName = "log.txt"
    /// Lines of a failed trial's log shown in its failure text.
    public static let logTailLines = 20

    public let command: ExecCommand
    /// The program's path, resolved once (via `PATH` when it has no slash).
    public let executable: String
    /// A trial still running after this long fails (nil: no limit).
    public let trialTimeout: Duration?
    /// SIGTERM, then SIGKILL this much later.
    public let killGrace: Duration
    /// The continuous hyperparameters (a `uniform` or `log_uniform` prior):
    /// their values reach the program with a fraction (`1.0`), even when
    /// explore clamps them to a whole bound, so a program never reads such a
    /// value as an integer; numeric choices keep their whole form (`32`).
    public let realValued: Set<String>
    /// A program that fails while the file system of its trial folder has
    /// less than this free has met a full disk (1 MiB).
    public let minimumFreeBytes: Int64
    /// Called with every failure, from the worker thread (e.g. to show it).
    private let onFailure: (@Sendable (ExecTrialFailure) -> Void)?
    /// Called once, from a worker thread, with a note on the program (e.g.
    /// that it writes no checkpoint).
    private let onNote: (@Sendable (String) -> Void)?
    /// Whether `onNote` told that the program writes no checkpoint.
    private let notedNoCheckpoint = Mutex(false)
    /// This process's environment without `PBT_*`, as `NAME=value`.
    private let inheritedEnvironment: [String]

    private struct Child {
        /// Tells a late timer that its child has been replaced by another with the same pid.
        var serial: UInt64
        /// The attempt's directory (a trial's attempts each have their own).
        var directory: String
        /// Why it is being killed, once it is.
        var killed: ExecTrialFailure.Reason?
    }

    private struct State {
        var children: [pid_t: Child] = [:]
        var serial: UInt64 = 0
        /// Set by `stop`: running programs are killed and no new one starts.
        var stopReason: String?
    }

    private let state = Mutex(State())

    /// Resolves `command.program` (throws `ExecRunnerError` when it cannot be
    /// run) and snapshots this process's environment.
    public init(command: ExecCommand, trialTimeout: Duration? = nil, killGrace: Duration = .seconds(10),
                space: SearchSpace? = nil, minimumFreeBytes: Int64 = 1 << 20,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                onFailure: (@Sendable (ExecTrialFailure) -> Void)? = nil,
                onNote: (@Sendable (String) -> Void)? = nil) throws(ExecRunnerError) {
        self.command = command
        executable = try Self.resolve(command.program, path: environment["PATH"])
        if let trialTimeout, trialTimeout <= .zero { throw .invalidTimeout }
        self.trialTimeout = trialTimeout
        self.killGrace = killGrace
        self.minimumFreeBytes = minimumFreeBytes
        realValued = space?.realValued ?? []
        // Refused here, not by every trial's start ("Argument list too long"; found by a helper).
        if let longest = space.map(Self.longestHyperparameters), longest >= Self.environmentStringLimit {
            throw .hyperparametersTooLong(longest)
        }
        self.onFailure = onFailure
        self.onNote = onNote
        inheritedEnvironment = environment.filter { !Self.isContractVariable($0.key) }.map { "\($0.key)=\($0.value)" }.sorted()
    }

    public func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        let directory = output.path
        let log = directory + "/" + Self.logFileName
        do {
            let outcome = try attempt(trial, parent: parent, directory: directory, log: log)
            noteIfNoCheckpoint(trial, directory: directory)
            return outcome
        } catch {
            // A full disk is no fault of the trial: the driver stops the run without recording it (found by a
            // helper: each program failed to write, its log empty too, and the trials stayed failed after a resume).
            if error.couldBeAFullDisk, let free = Self.freeBytes(directory), free < minimumFreeBytes {
                throw TrialRunnerError.outOfSpace(path: directory, reason: "its file system has \(free) bytes free, "
                                                  + "and the program failed (\(ExecTrialFailure(trialID: trial.id, reason: error, logTail: []).summary))")
            }
            // A program that removed its trial folder took its log with it: said, not "its log is empty" (found by a helper).
            let tail = FileManager.default.fileExists(atPath: log) ? Self.tail(ofFile: log, lines: Self.logTailLines)
                : ["(\(Self.logFileName) is gone: the program removed it, or its trial folder, and what it printed with it)"]
            let failure = ExecTrialFailure(trialID: trial.id, reason: error, logTail: tail)
            onFailure?(failure)
            throw failure
        }
    }

    /// Tells `onNote`, once a run, when a trial's program left nothing in
    /// its directory but its result and log: a trial that continues from it
    /// then finds no checkpoint in `PBT_PARENT_DIR`, and PBT's exploit
    /// copies nothing.
    /// Whether a trial's folder holds nothing its program wrote but its
    /// result and log: no checkpoint to continue from.
    static func holdsNoCheckpoint(_ directory: String) -> Bool {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return false }
        return Set(names).isSubset(of: [resultFileName, logFileName])
    }

    private func noteIfNoCheckpoint(_ trial: TrialSpec, directory: String) {
        guard let onNote, !notedNoCheckpoint.withLock({ $0 }) else { return }
        guard Self.holdsNoCheckpoint(directory) else { return }
        guard notedNoCheckpoint.withLock({ noted in defer { noted = true }; return !noted }) else { return }
        onNote("pbt: note: trial \(trial.id)'s program wrote no checkpoint (its PBT_TRIAL_DIR holds only \(Self.resultFileName) and "
               + "\(Self.logFileName)), so a trial that continues from it finds none in PBT_PARENT_DIR and PBT's exploit passes nothing on: "
               + "save the model's state into PBT_TRIAL_DIR and load it from PBT_PARENT_DIR when that is not empty")
    }

    /// Kills every running program (SIGTERM, SIGKILL after `killGrace`;
    /// `immediately`: SIGKILL now) and fails its trial with
    /// `.stopped(reason)`; every later trial fails so at once. (`PBTDriver`
    /// records no such failure: the trial runs again on resume.)
    public func stop(_ reason: String, immediately: Bool = false) {
        let pids = state.withLock { s -> [(pid_t, UInt64)] in
            if s.stopReason == nil { s.stopReason = reason }
            if immediately {
                for (pid, child) in s.children {
                    if child.killed == nil { s.children[pid]!.killed = .stopped(reason) }
                    kill(-pid, SIGKILL)
                }
            }
            return s.children.map { ($0.key, $0.value.serial) }
        }
        for (pid, serial) in pids { terminate(pid, serial: serial, because: .stopped(reason)) }
    }

    /// Kills the program running `trial` into `output` (SIGTERM, SIGKILL
    /// after `killGrace`): another worker holds the trial now. Its run fails
    /// with `.abandoned(reason)`, which `PBTDriver` records nowhere.
    public func abandon(_ trial: TrialSpec, output: CheckpointRef, because reason: String) {
        let running = state.withLock { s in s.children.filter { $0.value.directory == output.path }.map { ($0.key, $0.value.serial) } }
        for (pid, serial) in running { terminate(pid, serial: serial, because: .abandoned(reason)) }
    }

    // MARK: One trial

    private func attempt(_ trial: TrialSpec, parent: CheckpointRef?, directory: String, log: String) throws(ExecTrialFailure.Reason) -> TrialOutcome {
        if let reason = state.withLock({ $0.stopReason }) { throw .stopped(reason) }
        // An empty directory: left over only from an attempt with this very
        // number that never reported (a crash between claim and report).
        CheckpointDirectory.removeItem(atPath: directory)
        guard mkdir(directory, 0o755) == 0 else { throw .cannotPrepare(directory, String(cString: strerror(errno))) }

        // What the parent's directory holds, to tell whether the program changed it.
        let parentBefore = parent.map { Self.fileStamps(under: $0.path) }
        let process: SpawnedProcess
        do {
            process = try SpawnedProcess.spawn(executable: executable, arguments: [command.program] + command.arguments,
                                               environment: inheritedEnvironment + Self.contract(trial, parent: parent, directory: directory,
                                                                                                           realValued: realValued),
                                               log: log)
        } catch {
            throw .cannotStart(executable, Self.startFailure(executable, error))
        }
        // If this process is killed outright, the next recovery stops the program (`LeftoverPrograms`).
        LeftoverPrograms.record(process.pid, for: directory)
        let (serial, stopReason) = state.withLock { s -> (UInt64, String?) in
            s.serial += 1
            s.children[process.pid] = Child(serial: s.serial, directory: directory)
            return (s.serial, s.stopReason)
        }
        if let stopReason { terminate(process.pid, serial: serial, because: .stopped(stopReason)) }
        if let trialTimeout {
            DispatchQueue.global().asyncAfter(deadline: .now() + trialTimeout / .seconds(1)) { [self] in
                terminate(process.pid, serial: serial, because: .timedOut(trialTimeout / .seconds(1)))
            }
        }

        process.waitForExit()
        let killed = state.withLock { s -> ExecTrialFailure.Reason? in
            defer { s.children[process.pid] = nil }
            return s.children[process.pid]?.killed
        }
        // What the program left behind in its group must not outlive the
        // trial (it could write into a published checkpoint). The unreaped
        // leader still holds the group id, so no other group can be hit.
        process.signalGroup(SIGKILL)
        let termination = process.reap()
        LeftoverPrograms.forget(directory)
        if let parent, let parentBefore, let changed = Self.firstChange(under: parent.path, since: parentBefore) {
            // Gone as a whole: most likely released by a worker that went on without this one (found by a helper:
            // a worker cut off from the store was told its program wrote into its parent).
            throw access(parent.path, F_OK) != 0 ? .parentRemoved : .wroteIntoParent(changed)
        }
        if let killed { throw killed }
        switch termination {
        case .exited(0): break
        case .exited(let code) where code == Self.parentUnusableExitCode && parent != nil: throw .parentUnusable
        // A parent that left no checkpoint cannot be continued from (found by a helper: it kept winning
        // tournaments, and every child failed): its child's failure retires it, as exit 65 does.
        case .exited(let code) where parent.map { Self.holdsNoCheckpoint($0.path) } == true: throw .parentLeftNoCheckpoint(code)
        case .exited(let code): throw .exitCode(code)
        case .signalled(let signal): throw .signal(signal)
        }
        return try Self.readResult(directory + "/" + Self.resultFileName, steps: trial.steps)
    }

    /// Size, modification time and inode of every file and folder under
    /// `root`, by relative path ("" for `root` itself).
    static func fileStamps(under root: String) -> [String: [Int64]] {
        var stamps: [String: [Int64]] = [:]
        func visit(_ relative: String) {
            var status = stat()
            let path = relative.isEmpty ? root : root + "/" + relative
            guard lstat(path, &status) == 0 else { return }
            stamps[relative] = [Int64(status.st_size), Int64(status.st_mtim.tv_sec), Int64(status.st_mtim.tv_nsec), Int64(status.st_ino),
                                Int64(status.st_mode)]
            guard status.st_mode & S_IFMT == S_IFDIR, let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
            for name in names { visit(relative.isEmpty ? name : relative + "/" + name) }
        }
        visit("")
        return stamps
    }

    /// The first file or folder under `root` (in byte order of the
    /// relative paths) that was added, removed or changed since `before`
    /// (`fileStamps`); nil when none was. The folder itself is `.`.
    static func firstChange(under root: String, since before: [String: [Int64]]) -> String? {
        let after = fileStamps(under: root)
        // A folder's own time changes with what it holds: name the file.
        let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return changed.first { !$0.isEmpty && after[$0].map { $0[4] & Int64(S_IFMT) != Int64(S_IFDIR) } ?? true }
            ?? changed.first.map { $0.isEmpty ? "." : $0 }
    }

    /// Sends SIGTERM to `pid`'s group (if it still runs as child `serial`),
    /// recording `reason`, and SIGKILL after the grace period.
    private func terminate(_ pid: pid_t, serial: UInt64, because reason: ExecTrialFailure.Reason) {
        let first = state.withLock { s -> Bool in
            guard var child = s.children[pid], child.serial == serial, child.killed == nil else { return false }
            child.killed = reason
            s.children[pid] = child
            // Signalled under the lock: the child cannot be reaped (and its
            // pid reused) until it is deregistered, which takes the lock.
            kill(-pid, SIGTERM)
            return true
        }
        guard first else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + killGrace / .seconds(1)) { [self] in
            state.withLock { s in
                guard s.children[pid]?.serial == serial else { return }
                kill(-pid, SIGKILL)
            }
        }
    }

    /// The mean wall time of starting `executable` (no arguments, output to
    /// /dev/null) and waiting for it, over `count` sequential runs: what a
    /// process start costs here (for `pbtwave bench exec-overhead`).
    public static func timeProcessStart(_ executable: String, count: Int) throws -> Duration {
        let start = ContinuousClock.now
        for _ in 0..<count {
            let process: SpawnedProcess
            do { process = try SpawnedProcess.spawn(executable: executable, arguments: [executable], environment: [], log: "/dev/null") } catch {
                throw ExecRunnerError.notExecutable("\(executable) (\(error.message))")
            }
            process.waitForExit()
            _ = process.reap()
        }
        return (ContinuousClock.now - start) / count
    }

    // MARK: The contract

    /// The contract's own variables (and every `PBT_HP_*`): an inherited one
    /// (a pbtwave run inside a trial) is replaced, not passed on. A user's
    /// other `PBT_*` variables (`PBT_DATA_DIR`) pass through, as the README
    /// says (all `PBT_*` were dropped: found by a helper).
    static func isContractVariable(_ name: String) -> Bool {
        name.hasPrefix("PBT_HP_") || [
            "PBT_TRIAL_ID", "PBT_TRIAL_DIR", "PBT_PARENT_DIR", "PBT_START_STEP", "PBT_STEPS", "PBT_SEED",
            "PBT_HYPERPARAMETERS", "PBT_EXIT_PARENT_UNUSABLE",
        ].contains(name)
    }

    /// Bytes free (to this user) on the file system holding `path`, or nil if it cannot be told.
    static func freeBytes(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 || statvfs((path as NSString).deletingLastPathComponent, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Linux's MAX_ARG_STRLEN: the bytes of one environment string, its NUL included.
    public static let environmentStringLimit = 128 * 1024

    /// The most bytes `PBT_HYPERPARAMETERS=…` can take for `space` (a
    /// continuous value at most 24 characters, as Swift writes a Double).
    static func longestHyperparameters(_ space: SearchSpace) -> Int {
        "PBT_HYPERPARAMETERS={}".utf8.count + space.parameters.reduce(0) { sum, p in
            let longest: Int
            switch p.domain {
            case .continuous: longest = 24
            case .categorical(let choices): longest = choices.map { $0.jsonText(real: false).utf8.count }.max() ?? 0
            }
            return sum + p.name.utf8.count + 3 + longest  // "name":value
        } + max(space.parameters.count - 1, 0)  // the commas
    }

    /// The `PBT_*` variables of `trial`; the values of `realValued` names with a fraction.
    static func contract(_ trial: TrialSpec, parent: CheckpointRef?, directory: String, realValued: Set<String> = []) -> [String] {
        let names = trial.hyperparameters.names
        let values = names.map { trial.hyperparameters[$0]!.jsonText(real: realValued.contains($0)) }
        let object = "{" + zip(names, values).map { "\"\($0)\":\($1)" }.joined(separator: ",") + "}"
        return [
            "PBT_TRIAL_ID=\(trial.id)",
            "PBT_TRIAL_DIR=\(directory)",
            "PBT_PARENT_DIR=\(parent?.path ?? "")",
            "PBT_START_STEP=\(trial.startStep)",
            "PBT_STEPS=\(trial.steps)",
            "PBT_SEED=\(trial.seed)",
            "PBT_HYPERPARAMETERS=\(object)",
            "PBT_EXIT_PARENT_UNUSABLE=\(parentUnusableExitCode)",
        ] + zip(names, values).flatMap { name, value -> [String] in
            let text = "=" + (trial.hyperparameters[name]!.category ?? value)
            // A '-' makes a name no POSIX shell can read (dash even drops it
            // from its children's environment): also give it with '_'.
            let shellName = name.replacingOccurrences(of: "-", with: "_")
            let alias = shellName != name && !names.contains(shellName) ? ["PBT_HP_\(shellName)" + text] : []
            return ["PBT_HP_\(name)" + text] + alias
        }
    }

    /// Why `executable` could not start, in the user's terms: the kernel
    /// says ENOENT both for a missing file and for a script whose `#!`
    /// interpreter is missing.
    static func startFailure(_ executable: String, _ error: SpawnError) -> String {
        if error.code == ENOEXEC {
            // A script without a `#!` line (found by a helper: the bare "Exec format error" said not what to do).
            return error.message + ": if it is a script, begin it with a #! line (`#!/usr/bin/env python3`), or give its interpreter first (`-- python3 \(executable)`)"
        }
        guard error.code == ENOENT, let handle = FileHandle(forReadingAtPath: executable) else { return error.message }
        defer { try? handle.close() }
        let head = String(decoding: (try? handle.read(upToCount: 256)) ?? Data(), as: UTF8.self)
        guard head.hasPrefix("#!"), let line = head.dropFirst(2).split(separator: "\n", maxSplits: 1).first,
              let interpreter = line.split(separator: " ").first, access(String(interpreter), X_OK) != 0 else { return error.message }
        return "its #! line names the interpreter \(interpreter), which does not exist or cannot be run"
    }

    /// What the program reported, checked.
    static func readResult(_ path: String, steps: Int) throws(ExecTrialFailure.Reason) -> TrialOutcome {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .noResult }
        guard info.st_size < 1 << 24 else { throw .invalidResult("\(info.st_size) bytes; it must be under 16 MiB") }
        // Why, where it is not a file (found by a helper: a folder or a named pipe was "cannot be read").
        guard info.st_mode & S_IFMT == S_IFREG else { throw .invalidResult("\(nonRegularFileText(mode: info.st_mode)), not a file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw .invalidResult("cannot be read: \(String(cString: strerror(errno)))") }
        let result: ExecResult
        do {
            let decoder = JSONDecoder()
            decoder.allowsJSON5 = true  // NaN and Infinity, as Python's json module writes them
            result = try decoder.decode(ExecResult.self, from: data)
        } catch let error as DecodingError {
            // (Checked strictly only where the JSON5 decoder found the text itself bad: NaN is allowed.)
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                // An objective beyond a Double's range (1e400) is infinite: a divergence, as Infinity is (it was "not valid JSON").
                if let x = overflowingObjective(data) { throw .nonFiniteObjective(x) }
                if let syntax = DecodingErrorText.syntaxError(data) { throw .invalidResult("not valid JSON (\(syntax))") }
                if let problem = valueProblem(data) { throw .invalidResult(problem) }
            }
            throw .invalidResult(describe(error))
        } catch {
            throw .invalidResult("\(error)")
        }
        if let duplicate = JSONStrictnessProblem.first(in: data, trailingCommas: true, underflow: false) { throw .invalidResult("\(duplicate)") }  // JSON5
        guard result.objective.isFinite else { throw .nonFiniteObjective(result.objective) }
        if let reported = result.steps, reported != steps { throw .stepsMismatch(reported: reported, asked: steps) }
        return TrialOutcome(evaluation: result.objective)
    }

    /// ±infinity when the text's "objective" is a number literal too large
    /// for a Double (`{"objective": 1e400}`); nil otherwise.
    private static func overflowingObjective(_ data: Data) -> Double? {
        let text = String(decoding: data, as: UTF8.self)
        // With an exponent or without (a 400-digit integer; found by a helper: it was "not valid JSON").
        guard let match = text.firstMatch(of: #/"objective"\s*:\s*(-?[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?)/#), let x = Double(String(match.1)),
              x.isInfinite else { return nil }
        return x
    }

    /// Which value of valid JSON the decoder could not take (it says only
    /// that the data is not valid JSON): a fractional "steps", or an
    /// "objective" a Double cannot hold.
    private static func valueProblem(_ data: Data) -> String? {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        if let steps = object["steps"] as? NSNumber, Double(exactly: steps.int64Value) != steps.doubleValue {
            return "\"steps\" is not an integer (got \(steps)); write the number of steps the trial ran, PBT_STEPS"
        }
        if object["objective"] != nil {
            return "\"objective\" is not a number a Double can hold (the JSON has a number beyond its range, about 1e±308)"
        }
        return nil
    }

    private static func describe(_ error: DecodingError) -> String {
        /// A field's value the decoder could not take.
        func badField(_ context: DecodingError.Context) -> String {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\"\(field)\" is not \(field == "objective" ? "a number" : field == "steps" ? "an integer" : "valid"): \(context.debugDescription)"
        }
        switch error {
        case .keyNotFound(let key, _): return "it has no \"\(key.stringValue)\"; write {\"objective\": <number>}"
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return "it is not a JSON object; write {\"objective\": <number>}"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return badField(context)
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            return badField(context)
        case .dataCorrupted(let context):
            let detail = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
                ?? (context.debugDescription.isEmpty ? nil : context.debugDescription)
            return "not valid JSON" + (detail.map { " (\($0))" } ?? "")
        @unknown default: return "\(error)"
        }
    }

    /// The last `lines` lines of a text file (read from its last 64 KiB,
    /// or up to 1 MiB when long lines leave fewer; each line cut at 400
    /// characters, control characters shown as `?`); empty only if the
    /// file is. A line that began before what was read shows its end
    /// after a `…`.
    static func tail(ofFile path: String, lines: Int) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd() else { return [] }
        var window: UInt64 = 64 << 10
        var text: [String] = []
        while true {
            try? handle.seek(toOffset: end > window ? end - window : 0)
            guard let data = try? handle.readToEnd() else { return [] }
            text = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            while text.last?.isEmpty == true { text.removeLast() }
            guard text.count <= lines, end > window, window < 1 << 20 else { break }
            window *= 4
        }
        let cut = end > window && !text.isEmpty  // the first line began before what was read
        let shown = text.suffix(lines).enumerated().map { index, line in
            let partial = cut && index == 0 && text.count <= lines
            let clean = String(line.unicodeScalars.map { $0.properties.generalCategory == .control && $0 != "\t" ? "?" : Character($0) })
            return partial ? "…" + String(clean.suffix(400)) : clean.count > 400 ? String(clean.prefix(400)) + "…" : clean
        }
        return shown
    }

    /// `program` as a path: itself if it names a path, else the first
    /// executable file of that name on `path`.
    static func resolve(_ program: String, path: String?, here: String = FileManager.default.currentDirectoryPath) throws(ExecRunnerError) -> String {
        guard !program.isEmpty else { throw .noProgram }
        if program.contains("/") {
            let absolute = URL(fileURLWithPath: program.hasPrefix("/") ? program : here + "/" + program)
                .standardizedFileURL.path
            guard access(absolute, F_OK) == 0 else { throw .notFound(program, searched: nil) }
            guard PathKind(of: absolute) != .folder else { throw .folder(absolute) }
            guard access(absolute, X_OK) == 0 else { throw .notExecutable(absolute) }
            return absolute
        }
        let directories = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + program
            if access(candidate, X_OK) == 0, PathKind(of: candidate) != .folder { return candidate }
        }
        // A program in this folder is not found on PATH (as in a shell): say how to name it.
        if access(here + "/" + program, F_OK) == 0, PathKind(of: here + "/" + program) != .folder {
            throw .notOnPathButHere(program, searched: path ?? "")
        }
        throw .notFound(program, searched: path ?? "")
    }
}

/// The program an exec run trains with.
public struct ExecCommand: Sendable, Hashable, Codable {
    public var program: String
    public var arguments: [String]

    public init(program: String, arguments: [String] = []) {
        self.program = program
        self.arguments = arguments
    }
}

/// What an exec run stores as its recipe (`RunConfiguration.recipe`), so a
/// learned schedule says how it was learned: the program, where it ran,
/// the search space (in `--space` form), the trial length and the seed.
public struct ExecRecipe: Sendable, Hashable, Codable {
    /// Always "exec": tells this recipe from a WaveNet one.
    public var runner = "exec"
    public var command: ExecCommand
    /// The directory the program ran in (relative arguments are relative to it).
    public var workingDirectory: String
    public var trialTimeoutSeconds: Double?
    public var searchSpace: JSONValue
    public var trialSteps: Int
    public var seed: UInt64

    public init(command: ExecCommand, workingDirectory: String = FileManager.default.currentDirectoryPath,
                trialTimeout: Duration?, settings: PBTSettings) {
        self.command = command
        self.workingDirectory = workingDirectory
        trialTimeoutSeconds = trialTimeout.map { $0 / .seconds(1) }
        searchSpace = settings.searchSpace.specification
        trialSteps = settings.trialSteps
        self.seed = settings.seed
    }

    enum CodingKeys: String, CodingKey {
        case runner, command, seed
        case workingDirectory = "working_directory"
        case trialTimeoutSeconds = "trial_timeout_seconds"
        case searchSpace = "search_space"
        case trialSteps = "trial_steps"
    }

    /// What a resume does not compare (`RunConfiguration.recipeFieldsNotCompared`):
    /// where the program ran (a worker or a resume may start elsewhere), its
    /// timeout (a resume may change it), and the copies of the settings.
    public static let fieldsNotCompared: Set<String> = ["working_directory", "trial_timeout_seconds", "search_space", "trial_steps", "seed"]

    /// The trial timeout the run was created with.
    public var trialTimeout: Duration? { trialTimeoutSeconds.map { .seconds($0) } }
}

/// `PBT_TRIAL_DIR/result.json`.
struct ExecResult: Decodable {
    var objective: Double
    var steps: Int?

    private enum CodingKeys: String, CodingKey { case objective, steps, metrics }
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // `null` is what JavaScript's JSON.stringify writes for NaN and the infinities: a diverged trial, as Python's NaN.
        guard c.contains(.objective) else {
            throw DecodingError.keyNotFound(CodingKeys.objective, .init(codingPath: [], debugDescription: "No value associated with key objective"))
        }
        objective = try c.decodeNil(forKey: .objective) ? .nan : c.decode(Double.self, forKey: .objective)
        steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        // "metrics" stay in the file: an object, whose values are not read (found by a helper: a
        // number beyond a Double's range there failed the trial, with "Expected to decode Dictionary<String, Any>").
        if c.contains(.metrics), (try? c.nestedContainer(keyedBy: AnyKey.self, forKey: .metrics)) == nil {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: [CodingKeys.metrics],
                                                                        debugDescription: "it must be a JSON object, {\"name\": value, …}"))
        }
    }
}

/// Why an exec trial failed, with the end of its log: stored as the trial's
/// failure text and shown on the terminal.
public struct ExecTrialFailure: Error, CustomStringConvertible {
    public enum Reason: Error, Sendable, Hashable {
        case exitCode(Int32)
        case signal(Int32)
        case noResult
        case invalidResult(String)
        case nonFiniteObjective(Double)
        case stepsMismatch(reported: Int, asked: Int)
        case timedOut(Double)
        case stopped(String)
        /// Another worker took the trial over (`abandon`).
        case abandoned(String)
        case cannotPrepare(String, String)
        case cannotStart(String, String)
        /// The program exited with `ExecRunner.parentUnusableExitCode`.
        case parentUnusable
        /// The program exited with this code, and its parent's folder holds
        /// no checkpoint (its program wrote none).
        case parentLeftNoCheckpoint(Int32)
        /// Its parent's checkpoint changed while the program ran: the first file
        /// changed, relative to `PBT_PARENT_DIR`.
        case wroteIntoParent(String)

        /// What `firstChange` found, for messages: a file, or the folder
        /// itself ("."), whose time alone changed when a file was made and
        /// removed there (a lock file, found by a helper: "(. in …)").
        static func changeText(_ file: String) -> String {
            file == "." ? "a file made or removed in the folder itself" : file
        }
        /// Its parent's checkpoint directory was removed while the program ran.
        case parentRemoved

        /// Whether a full disk could be the cause: the program failed to run
        /// or to report (not a stop, a takeover, a divergence, a timeout or
        /// a parent changed under it).
        var couldBeAFullDisk: Bool {
            switch self {
            case .exitCode, .signal, .noResult, .invalidResult, .stepsMismatch, .cannotPrepare, .cannotStart, .parentUnusable,
                 .parentLeftNoCheckpoint: return true
            case .nonFiniteObjective, .timedOut, .stopped, .abandoned, .wroteIntoParent, .parentRemoved: return false
            }
        }
    }

    public var trialID: Int
    public var reason: Reason
    /// The last lines of `log.txt` (empty if the program wrote nothing).
    public var logTail: [String]

    public var summary: String {
        switch reason {
        case .exitCode(let code): return "the program exited with code \(code)"
        case .signal(let signal): return "the program was killed by \(signalName(signal))"
        case .noResult: return "the program exited 0 without writing \(ExecRunner.resultFileName) into PBT_TRIAL_DIR"
        case .invalidResult(let why): return "\(ExecRunner.resultFileName) is invalid: \(why)"
        case .nonFiniteObjective(let x): return "the program reported a non-finite objective (\(x))"
        case .stepsMismatch(let reported, let asked): return "the program reported \"steps\": \(reported), but PBT_STEPS was \(asked) (\"steps\" is the steps this trial trained, "
                + "not the global step; leave it out if unsure)"
        case .timedOut(let seconds): return "the trial timed out after \(seconds) s (--trial-timeout); its process group was killed"
        case .stopped(let why): return "the worker was stopped (\(why)); the program's process group was killed"
        case .abandoned(let why): return "another worker took this trial over (\(why)); this worker killed its program's process group"
        case .cannotPrepare(let path, let why): return "cannot create the trial directory \(path): \(why)"
        case .cannotStart(let path, let why): return "cannot start \(path): \(why)"
        case .parentUnusable:
            return "the program exited with code \(ExecRunner.parentUnusableExitCode) (PBT_EXIT_PARENT_UNUSABLE): it cannot use the checkpoint in PBT_PARENT_DIR"
        case .parentLeftNoCheckpoint(let code):
            return "the program exited with code \(code), and PBT_PARENT_DIR holds no checkpoint (only \(ExecRunner.resultFileName) and "
                + "\(ExecRunner.logFileName)): the parent's program wrote none"
        case .parentRemoved:
            return "its parent's checkpoint (PBT_PARENT_DIR) was removed while the program ran: by the program, or, more likely, by another "
                + "worker that went on with the run without this one (this worker's lease lapsed, e.g. while the store was out of reach, "
                + "and the trial ran again elsewhere)"
        case .wroteIntoParent(let file):
            // Worded for a sibling running from the same parent too: it sees the change without having made it.
            return "its parent's checkpoint changed while the program ran (\(Reason.changeText(file)) in PBT_PARENT_DIR), which other trials start from: "
                + "it must only read PBT_PARENT_DIR and write into PBT_TRIAL_DIR"
        }
    }

    public var description: String {
        guard !logTail.isEmpty else { return "trial \(trialID): \(summary) (its log is empty)" }
        return "trial \(trialID): \(summary); last lines of its \(ExecRunner.logFileName):\n"
            + logTail.map { "  | " + $0 }.joined(separator: "\n")
    }
}

/// An exec runner that cannot be made (a problem with the command line).
public enum ExecRunnerError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case noProgram
    case notFound(String, searched: String?)
    case notExecutable(String)
    /// A folder given as the program.
    case folder(String)
    /// Not on PATH, but a file of that name is in the current folder.
    case notOnPathButHere(String, searched: String)
    case invalidTimeout
    /// The space's `PBT_HYPERPARAMETERS` can be this many bytes, more than
    /// one environment string may hold.
    case hyperparametersTooLong(Int)

    public var description: String {
        switch self {
        case .hyperparametersTooLong(let bytes):
            return "this search space's PBT_HYPERPARAMETERS can be \(bytes) bytes, and Linux starts no program with an environment "
                + "string over \(ExecRunner.environmentStringLimit - 1): every trial would fail; shorten the hyperparameters' names (or choices)"
        case .noProgram:
            return "no training program: give it after `--`, e.g. `pbtwave pbt … -- python3 train.py`"
        case .notFound(let program, let searched?):
            return "cannot find the program '\(program)' on PATH (\(searched)); give its path"
        case .notFound(let program, nil):
            return "the program \(program) does not exist"
        case .folder(let path):
            return "\(path) is a folder, not a program; give the program inside it"
        case let .notOnPathButHere(program, searched):
            return "cannot find the program '\(program)' on PATH (\(searched)); the one in this folder is ./\(program): give it so"
        case .notExecutable(let path):
            return "\(path) is not an executable file; make it executable (chmod +x) or run it with its interpreter (e.g. python3 \(path))"
        case .invalidTimeout:
            return "the trial timeout must be positive"
        }
    }

    public var errorDescription: String? { description }
}
