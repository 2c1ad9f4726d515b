import Dispatch
import Foundation
import PBTFileSupport
import Synchronization

/// How the in-process driver runs its workers.
public struct DriverOptions: Sendable {
    /// Worker threads (W). Defaults to the run's `settings.workers`.
    public var workers: Int?
    /// How long a claim is valid without a heartbeat.
    public var leaseSeconds: Double
    /// An idle worker (nothing queued; or, in deterministic mode, waiting
    /// for lower ids) is woken by every report in this process, and asks
    /// again after at most this long anyway (work created by other processes).
    public var maxIdleWaitSeconds: Double
    /// Minimum time between two progress callbacks.
    public var progressInterval: Double
    /// Worker ids are `<prefix>/w<index>` (default `<host>:<pid>`).
    public var workerIDPrefix: String
    /// After this many trials in a row of this process fail in the runner
    /// (the program could not start, crashed, exited non-zero, timed out
    /// or wrote no checkpoint: not a diverged trial (a non-finite
    /// evaluation, or a program's non-finite objective), nor one whose parent
    /// could not be read), the process stops with
    /// `PBTRunError.failuresInARow`, so that a broken program or machine
    /// does not use up the run's budget on failures. 0: never stop.
    public var maxFailuresInARow: Int
    /// Told, from any thread, what the workers would otherwise do in
    /// silence: waiting `waitNoticeSeconds` or more for trials other
    /// processes run (a dead worker's trial comes back only when its lease
    /// ends), and giving up a trial another worker took over. Nil: nothing.
    public var notice: (@Sendable (String) -> Void)?
    /// How long this process's workers wait, all of them, before `notice`
    /// says for what (and again when that changes, or every 5 minutes).
    public var waitNoticeSeconds: Double = 30
    /// How a user reads trial N's log (its failure text), for the advice of
    /// errors and summaries; a command that knows where the run is kept
    /// (another store, a shared one) says it exactly.
    public var trialLogCommand = DriverOptions.defaultTrialLogCommand

    /// `trialLogCommand` for a run in its run directory's own store.
    public static let defaultTrialLogCommand = "pbtwave lineage RUN_DIR --trial N"

    /// The default limit of failures in a row (`maxFailuresInARow`).
    public static let defaultMaxFailuresInARow = 5

    public init(workers: Int? = nil, leaseSeconds: Double = 300, maxIdleWaitSeconds: Double = 0.05,
                progressInterval: Double = 0.25, workerIDPrefix: String? = nil,
                maxFailuresInARow: Int = DriverOptions.defaultMaxFailuresInARow, notice: (@Sendable (String) -> Void)? = nil) {
        self.notice = notice
        self.workers = workers
        self.leaseSeconds = leaseSeconds
        self.maxIdleWaitSeconds = maxIdleWaitSeconds
        self.progressInterval = progressInterval
        self.workerIDPrefix = workerIDPrefix ?? "\(Self.hostName()):\(getpid())"
        self.maxFailuresInARow = maxFailuresInARow
    }

    /// Throws `PBTConfigError` for workers below 1 or above
    /// `PBTSettings.maxWorkers`, for times that are not positive and for a
    /// negative `maxFailuresInARow` (`PBTDriver.run` checks this first).
    public func validate() throws(PBTConfigError) {
        if let workers {
            guard workers >= 1 else { throw .invalidWorkers(workers) }
            guard workers <= PBTSettings.maxWorkers else { throw .tooLarge(field: "workers", value: workers, limit: PBTSettings.maxWorkers) }
        }
        for (field, value) in [("leaseSeconds", leaseSeconds), ("maxIdleWaitSeconds", maxIdleWaitSeconds)] where !(value > 0 && value.isFinite) {
            throw .invalidDriverTime(field: field, value: value)
        }
        guard progressInterval >= 0, progressInterval.isFinite else { throw .invalidDriverTime(field: "progressInterval", value: progressInterval) }
        guard maxFailuresInARow >= 0 else { throw .invalidFailureLimit(maxFailuresInARow) }
    }

    /// Whether `workerID` (`<host>:<pid>/w<index>`, the default prefix)
    /// names a process on this machine, other than this one, that still
    /// runs. False for other machines' ids and other prefixes.
    public static func isLiveLocalWorker(_ workerID: String) -> Bool {
        let process = workerID.split(separator: "/", maxSplits: 1).first ?? ""
        guard let colon = process.lastIndex(of: ":"), process[..<colon] == hostName(),
              let pid = pid_t(process[process.index(after: colon)...]), pid > 0, pid != getpid() else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// `gethostname`, which (unlike `ProcessInfo.hostName`) never asks DNS.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A progress report, for a progress line.
public struct PBTProgress: Sendable {
    public var run: RunProgress
    /// Trials the budget allows (refills included).
    public var trialBudget: Int
    public var elapsedSeconds: Double
    /// Trials completed by this process (for the rate and ETA).
    public var completedThisSession: Int
    /// Seconds left at this session's rate, once there is one.
    public var etaSeconds: Double?
    /// The last report of the run.
    public var isFinal: Bool
}

/// What a driver run ended with.
public struct PBTRunResult: Sendable {
    public var trials: [TrialRecord]
    /// The best trial of the final population (`Lineage.bestOfFinalPopulation`).
    public var best: TrialRecord?
    public var bestCheckpoint: CheckpointRef?
    public var completedThisSession: Int
    public var elapsedSeconds: Double
    public var done: Bool
    /// Where the workers' time went, summed over workers.
    public var time: WorkerTime
    /// How a user reads trial N's log (`DriverOptions.trialLogCommand`).
    public var trialLogCommand = DriverOptions.defaultTrialLogCommand
}

extension PBTRunResult {
    /// A failure's kind, for counting: its first line without the trial's
    /// number (`runner error: trial 4: the program exited with code 7` →
    /// `runner error: the program exited with code 7`), at most 200 characters.
    static func reasonKey(_ failure: String) -> String {
        var line = Substring(failure.split(separator: "\n", maxSplits: 1).first ?? "")
        if let match = line.firstMatch(of: #/trial \d+: /#) { line.removeSubrange(match.range) }
        // The log's lines follow on the next lines, which the key leaves out.
        if let match = line.firstMatch(of: #/; last lines of its \S+:$/#) { line.removeSubrange(match.range) }
        // A trial's own output path (`…/trial-7.1.ckpt`) is one kind for every trial.
        line = Substring(line.replacing(#/trial-\d+\.\d+/#, with: "trial-N.A"))
        return line.count > 200 ? String(line.prefix(199)) + "…" : String(line)
    }

    /// Why the run must not count as a success, or nil: no trial finished,
    /// or the run is done with failed trials that nothing replaced (the
    /// budget ran out on failures). Lists the failures' reasons by kind
    /// (`reasonKey`), most frequent first, each with its trials.
    public var failureSummary: String? {
        let failed = trials.filter { $0.status == .failed }
        let replaced = Set(trials.compactMap(\.refillOf))
        let unreplaced = failed.filter { !replaced.contains($0.id) }
        let noneFinished = !trials.contains { $0.status == .finished }
        guard noneFinished ? !failed.isEmpty : done && !unreplaced.isEmpty else { return nil }
        let retired = trials.filter(\.isRetired).map(\.id)
        return (noneFinished ? "every trial failed (\(failed.count))"
                : "the run ended on failures: \(unreplaced.count) failed trial(s) were never replaced (\(Self.listed(unreplaced.map(\.id))))")
            + "; the reasons of all \(failed.count) failure(s) (each trial's log: `\(trialLogCommand)`):\n"
            + Self.reasonLines(failed.map { ($0.id, $0.failure ?? "unknown") }).joined(separator: "\n")
            + (retired.isEmpty ? "" : "\nretired parents (checkpoint unusable or changed; `\(trialLogCommand)` says why): "
                + retired.map { "#\($0)" }.joined(separator: ", "))
    }

    /// Failures grouped by kind (`reasonKey`), most frequent first, a line
    /// each (`  3× reason (#4, #7, #9)`); at most five kinds, then a count.
    static func reasonLines(_ failures: [(id: Int, failure: String)]) -> [String] {
        let reasons = Dictionary(grouping: failures) { reasonKey($0.failure) }
            .map { (reason: $0.key, ids: $0.value.map(\.id).sorted()) }
            .sorted { ($1.ids.count, $0.reason) < ($0.ids.count, $1.reason) }
        return reasons.prefix(5).map { "  \($0.ids.count)× \($0.reason) (\(listed($0.ids)))" }
            + (reasons.count > 5 ? ["  … and \(reasons.count - 5) other reason(s)"] : [])
    }

    static func listed(_ ids: [Int]) -> String {
        ids.prefix(8).map { "#\($0)" }.joined(separator: ", ") + (ids.count > 8 ? ", …" : "")
    }
}

/// Worker time, summed over workers: in the runner (training, checkpoint
/// I/O), in PBT's claims and reports (controller, store, checkpoint garbage
/// collection), and idle (nothing claimable, or waiting for lower ids in
/// deterministic mode).
public struct WorkerTime: Sendable, Hashable {
    public var runnerSeconds = 0.0
    public var coordinationSeconds = 0.0
    public var idleSeconds = 0.0

    public init() {}

    public var totalSeconds: Double { runnerSeconds + coordinationSeconds + idleSeconds }

    /// Fraction of worker time spent in claims and reports.
    public var coordinationFraction: Double { totalSeconds > 0 ? coordinationSeconds / totalSeconds : 0 }

    static func += (a: inout WorkerTime, b: WorkerTime) {
        a.runnerSeconds += b.runnerSeconds
        a.coordinationSeconds += b.coordinationSeconds
        a.idleSeconds += b.idleSeconds
    }
}

/// Runs W worker threads in this process against a coordinator: each
/// thread makes its own `Runner.Worker`, then repeatedly claims a trial,
/// runs it and reports the outcome (which makes the controller's decision in
/// the store's transaction). A heartbeat thread keeps the claims' leases
/// fresh. In deterministic mode a worker reports only when every trial with
/// a lower id is finished or failed, so results reach the controller in id
/// order whatever the timing; while it waits it runs any claimable lower id
/// itself (one whose worker in another process died), so it never waits
/// for a dead worker.
///
/// Store errors stop the run (and are rethrown by `run`); runner errors only
/// fail the trial.
public final class PBTDriver<Runner: TrialRunner>: Sendable {
    public let coordinator: PBTCoordinator
    public let runner: Runner
    public let options: DriverOptions

    private struct Shared {
        var error: (any Error)?
        /// `requestStop()` was called.
        var stopRequested = false
        /// Claims held by this process's workers, by trial id, for the heartbeat.
        var held: [Int: (worker: Int, claim: ClaimedTrial)] = [:]
        /// Held claims the store gave to another worker (a renewal failed):
        /// their runs are abandoned, and nothing is reported for them.
        var lost: Set<ClaimedTrial> = []
        /// Held claims whose report is being made: a renewal fails once the
        /// report is in (the trial is no longer running), which is no lapse.
        var reporting: Set<ClaimedTrial> = []
        var completed = 0
        /// Reports made by this process: idle workers wait for it to change.
        var reports = 0
        var lastProgress = -Double.infinity
        var finished = false
        var time = WorkerTime()
        /// This process's latest trials that failed in the runner, in a row.
        var failuresInARow: [(id: Int, failure: String, parent: Int?)] = []
        /// Workers of this process waiting (a claim said `.wait`), and since when.
        var waiting: [Int: Date] = [:]
        /// Deterministic mode: the ids of this process's trials waiting to
        /// report in id order. Reports come in id order, so only the lowest
        /// can be next: the others sleep until it is theirs.
        var waitingToReport: Set<Int> = []
        /// What the last wait notice named, and when it was given.
        var lastWait: (awaited: [String], at: Date)?
        /// When the store was last read for a wait notice (at most every 10 s).
        var lastWaitCheck: Date?
    }

    private let shared = Mutex(Shared())
    /// Deletes released and discarded checkpoints off the workers' path (PBT.md, "Checkpoints and disk").
    private let remover = CheckpointRemover()
    private let progressLock = Mutex(())
    private let wakeup = NSCondition()

    public init(coordinator: PBTCoordinator, runner: Runner, options: DriverOptions = DriverOptions()) {
        self.coordinator = coordinator
        self.runner = runner
        self.options = options
    }

    private var workerCount: Int { options.workers ?? coordinator.settings.workers }

    /// Runs until the run is done (or a store error stops it). `progress` is
    /// called from worker threads, never two at once, at most every
    /// `options.progressInterval`, and once more at the end.
    public func run(progress: (@Sendable (PBTProgress) -> Void)? = nil) throws -> PBTRunResult {
        try options.validate()
        let start = Date()
        shared.withLock { $0 = Shared(stopRequested: $0.stopRequested) }
        try WorkerThread.checkAddressSpace(workers: workerCount)
        var threads: [WorkerThread] = []
        do {
            threads.append(try WorkerThread(name: "pbt-heartbeat", stackSize: 1 << 20) { [self] in heartbeatLoop() })
            for index in 0..<workerCount {
                threads.append(try WorkerThread(name: "pbt-worker-\(index)", stackSize: WorkerThread.workerStackSize) { [self] in
                    workerLoop(index, start: start, progress: progress)
                })
            }
        } catch {
            // The workers already started stop after their trial; nothing is lost.
            shared.withLock { if $0.error == nil { $0.error = error } }
            wakeIdleWorkers()
        }
        for thread in threads.dropFirst() { thread.join() }
        shared.withLock { $0.finished = true }
        threads.first?.join()
        remover.wait()

        if var error = shared.withLock({ $0.error }) {
            // Stopped for failures with the budget used up: the run is over, and a rerun would not go on.
            if case let .failuresInARow(count, limit, reasons, _, logCommand)? = error as? PBTRunError,
               try coordinator.store.run(named: coordinator.run.name)?.state.done == true {
                error = PBTRunError.failuresInARow(count: count, limit: limit, reasons: reasons, runOver: true, logCommand: logCommand)
            }
            throw error
        }
        let trials = try coordinator.store.trials(runID: coordinator.run.id)
        let best = Lineage.bestOfFinalPopulation(trials, try coordinator.store.selections(runID: coordinator.run.id))
        let completed = shared.withLock { $0.completed }
        let elapsed = Date().timeIntervalSince(start)
        if let progress { report(progress, start: start, completed: completed, final: true) }
        let done = try coordinator.store.run(named: coordinator.run.name)?.state.done ?? false
        return PBTRunResult(
            trials: trials, best: best,
            bestCheckpoint: best.flatMap { b in b.checkpointLive ? b.checkpointPath.map(coordinator.checkpoints.ref(relativePath:)) : nil },
            completedThisSession: completed, elapsedSeconds: elapsed, done: done, time: shared.withLock { $0.time },
            trialLogCommand: options.trialLogCommand)
    }

    /// Asks the workers to stop: each reports the trial it is running (tell
    /// the runner to stop too, so that is soon) and claims no more; `run`
    /// then returns with `done` false. A trial left unreported (its program
    /// killed by the stop, or, in deterministic mode, still waiting to report
    /// in id order) goes back to the queue, for a resume or another worker
    /// to re-run at once. Safe from any thread, e.g. a signal handler's,
    /// and before `run` (which then returns at once). A stopped driver stays
    /// stopped: to go on, open the run again and make a new driver.
    ///
    /// `run` blocks its thread for the whole run and does not watch Swift
    /// task cancellation; from async code, call it off the cooperative pool
    /// (a thread or `Task.detached` you may block) and stop it with this.
    public func requestStop() {
        shared.withLock { $0.stopRequested = true }
        wakeIdleWorkers()
    }

    /// Gives every trial this process's workers hold back to the queue now
    /// (best effort), for a process about to exit without waiting for them
    /// (e.g. on a second stop signal); a result reported for one later is
    /// ignored. Returns how many were given back.
    @discardableResult
    public func releaseClaims() -> Int {
        requestStop()
        return giveBack(shared.withLock { $0.held.values.map(\.claim) })
    }

    /// Puts `claims` back in the queue (best effort: if the store is
    /// unreachable, their leases still expire); returns how many went back.
    private func giveBack(_ claims: [ClaimedTrial]) -> Int {
        claims.filter { claimed in
            (try? coordinator.store.releaseClaim(runID: coordinator.run.id, trialID: claimed.spec.id, attempt: claimed.attempt,
                                                 workerID: claimed.workerID)) == true
        }.count
    }

    private var shouldStop: Bool { shared.withLock { $0.error != nil || $0.stopRequested } }

    private var reports: Int { shared.withLock { $0.reports } }

    /// Sleeps until this process makes a report after `seen`, or at most
    /// `maxIdleWaitSeconds`. The count is re-checked under the condition's
    /// lock, so a report between the caller's check and the wait is not missed.
    /// `inOrder` (deterministic mode): trial `id` waits to report in id
    /// order, and a report wakes it only while it is this process's lowest
    /// waiting trial, which alone can be next; behind another it sleeps until
    /// that one has reported, or a second at most (a lower trial of another
    /// process whose lease ended, to take over): with many threads, a report
    /// no longer sends every waiting thread to the store.
    private func waitForReport(after seen: Int, inOrder id: Int? = nil) {
        let start = Date()
        wakeup.lock()
        while !shouldStop {
            let lowest = id.map { id in shared.withLock { $0.waitingToReport.min() == id } } ?? true
            if lowest, reports != seen { break }
            let deadline = start.addingTimeInterval(lowest ? options.maxIdleWaitSeconds : max(options.maxIdleWaitSeconds, 1))
            if !wakeup.wait(until: deadline) { break }
        }
        wakeup.unlock()
    }

    private func wakeIdleWorkers() {
        wakeup.lock()
        wakeup.broadcast()
        wakeup.unlock()
    }

    private func workerLoop(_ index: Int, start: Date, progress: (@Sendable (PBTProgress) -> Void)?) {
        let workerID = "\(options.workerIDPrefix)/w\(index)"
        var time = WorkerTime()
        var clock = ContinuousClock.now
        /// Adds the time since the last call to `bucket`.
        func lap(_ bucket: WritableKeyPath<WorkerTime, Double>) {
            let now = ContinuousClock.now
            time[keyPath: bucket] += (now - clock) / .seconds(1)
            clock = now
        }
        defer { shared.withLock { $0.time += time } }
        do {
            var worker = try runner.makeWorker(index: index)

            /// Runs `claimed` and reports it (with `claimNext`, also claiming
            /// this worker's next trial in the same transaction). In
            /// deterministic mode it reports only once every lower id is
            /// done; while it waits it takes over any lower id that is
            /// claimable — queued, or running under an expired lease because
            /// its worker died (in another process) — and runs that first, so
            /// waiting workers never stall the run. Returns the next claim,
            /// or nil with `stopped` when the run is stopping.
            func process(_ claimed: ClaimedTrial, claimNext: Bool) throws -> (next: ClaimResult?, stopped: Bool) {
                shared.withLock { $0.held[claimed.spec.id] = (index, claimed) }
                let result = Result<TrialOutcome, any Error> {
                    if let reason = claimed.parentRetired, let parent = claimed.spec.parentID {
                        throw TrialRunnerError.parentRetired(parent: parent, reason: reason)
                    }
                    return try worker.run(claimed.spec, parent: claimed.parent, output: claimed.output)
                }
                lap(\.runnerSeconds)
                // Another worker holds the trial now: its result would be
                // ignored, and it is no failure of the trial. Move on.
                let lost = shared.withLock { s -> Bool in
                    guard s.lost.remove(claimed) != nil else { return false }
                    s.held[claimed.spec.id] = nil
                    return true
                }
                if lost {
                    CheckpointDirectory.removeItem(atPath: claimed.output.path)
                    return (nil, false)
                }
                // A full disk is no fault of the trial: stop the run without
                // recording it, so it runs again (from the same parent) on resume.
                if case .failure(let error) = result, TrialRunnerError.isOutOfSpace(error) {
                    CheckpointDirectory.removeItem(atPath: claimed.output.path)
                    throw PBTRunError.outOfSpace(trial: claimed.spec.id, error: "\(error)")
                }
                // Nor is a program killed because the run is stopping: the
                // trial is given back when this worker leaves (below), so a
                // resume or another worker runs it again.
                if case .failure(let error) = result, TrialRunnerError.isStop(error) {
                    CheckpointDirectory.removeItem(atPath: claimed.output.path)
                    return (nil, true)
                }
                if coordinator.settings.deterministic {
                    shared.withLock { _ = $0.waitingToReport.insert(claimed.spec.id) }
                    defer { shared.withLock { _ = $0.waitingToReport.remove(claimed.spec.id) } }
                    while true {
                        let seen = reports
                        guard try coordinator.store.hasPendingTrial(runID: coordinator.run.id, before: claimed.spec.id) else { break }
                        if shouldStop { return (nil, true) }
                        let lower = try coordinator.claim(workerID: workerID, leaseSeconds: options.leaseSeconds, below: claimed.spec.id)
                        if case .trial(let orphan) = lower {
                            lap(\.coordinationSeconds)
                            if try process(orphan, claimNext: false).stopped { return (nil, true) }
                            continue
                        }
                        noteWait(index, below: claimed.spec.id)
                        waitForReport(after: seen, inOrder: claimed.spec.id)
                    }
                    shared.withLock { _ = $0.waiting.removeValue(forKey: index) }
                    lap(\.idleSeconds)
                }
                // A stopping worker claims nothing more: a trial it held would
                // wait for its lease to expire.
                shared.withLock { _ = $0.reporting.insert(claimed) }
                defer { shared.withLock { _ = $0.reporting.remove(claimed) } }
                let receipt = try coordinator.report(claimed, result: result, claimNext: claimNext && !shouldStop,
                                                     leaseSeconds: options.leaseSeconds, remove: remover.remove)
                lap(\.coordinationSeconds)
                if receipt.accepted { countFailures(trial: claimed.spec.id, parent: claimed.spec.parentID, result, receipt: receipt) }
                // A result the store did not take, said (found by a helper: a trial that ran to its end here after another
                // worker took it over, its lease having lapsed in an outage, was dropped without a word).
                if !receipt.accepted, !shared.withLock({ $0.lost.contains(claimed) }) {
                    options.notice?("trial \(claimed.spec.id): its result was not recorded: the store no longer gives the trial to this worker "
                                    + "(attempt \(claimed.attempt)'s lease lapsed, e.g. while the store was out of reach, and another worker took it over)")
                }
                let next = receipt.next == .wait ? nil : receipt.next
                let ticket = shared.withLock { s -> Int? in
                    s.held[claimed.spec.id] = nil
                    s.lost.remove(claimed)
                    if case .trial(let t)? = next { s.held[t.spec.id] = (index, t) }
                    s.reports += 1
                    // A late result for a trial another worker took over is
                    // not this session's: the store ignored it.
                    if receipt.accepted { s.completed += 1 }
                    let now = Date().timeIntervalSince(start)
                    guard now - s.lastProgress >= options.progressInterval else { return nil }
                    s.lastProgress = now
                    return s.completed
                }
                wakeIdleWorkers()
                if let progress, let completed = ticket { report(progress, start: start, completed: completed, final: false) }
                return (next, false)
            }

            var next: ClaimResult?
            loop: while !shouldStop {
                let seen = reports
                let claim = try next ?? coordinator.claim(workerID: workerID, leaseSeconds: options.leaseSeconds)
                next = nil
                lap(\.coordinationSeconds)
                switch claim {
                case .done:
                    break loop
                case .wait:
                    noteWait(index)
                    waitForReport(after: seen)
                    lap(\.idleSeconds)
                case .trial(let claimed):
                    shared.withLock { _ = $0.waiting.removeValue(forKey: index) }
                    let step = try process(claimed, claimNext: true)
                    if step.stopped { break loop }
                    next = step.next
                }
            }
        } catch {
            shared.withLock { if $0.error == nil { $0.error = error } }
            wakeIdleWorkers()
        }
        // Trials this worker still holds unreported (a stop while a program
        // ran, while waiting to report in id order, or after claiming the
        // next) go back to the queue at once: another worker on a shared
        // store need not wait for their leases to expire.
        _ = giveBack(shared.withLock { s -> [ClaimedTrial] in
            let mine = s.held.values.filter { $0.worker == index }.map(\.claim)
            s.held = s.held.filter { $0.value.worker != index }
            s.lost.subtract(mine)
            return mine
        })
    }

    /// Counts this process's trials in a row that failed in the runner
    /// (`DriverOptions.maxFailuresInARow`); any other outcome ends the
    /// streak, a diverged trial too (its program ran). At the limit the run
    /// stops with `PBTRunError.failuresInARow`: the workers claim nothing
    /// more and give back what they hold.
    private func countFailures(trial: Int, parent: Int?, _ result: Result<TrialOutcome, any Error>, receipt: ReportReceipt) {
        let inRunner: Bool
        switch result {
        case .success(let outcome): inRunner = receipt.status == .failed && outcome.evaluation.isFinite  // no checkpoint written
        case .failure(let error): inRunner = !TrialRunnerError.isParentUnreadable(error) && !TrialRunnerError.isDivergence(error)
        }
        let limit = options.maxFailuresInARow
        let stopping = shared.withLock { s -> Bool in
            guard inRunner else {
                s.failuresInARow = []
                return false
            }
            // The parent, for a training program's failures (the in-process runners say when a checkpoint is unreadable).
            let programFailed = if case .failure(let error) = result { error is ExecTrialFailure } else { false }
            s.failuresInARow.append((trial, receipt.failure ?? "unknown", programFailed ? parent : nil))
            guard limit > 0, s.failuresInARow.count >= limit else { return false }
            // Trials that fail while the others stop join the message; another error stays.
            let first = s.error == nil
            var counting = first
            if case .failuresInARow? = s.error as? PBTRunError { counting = true }
            guard counting else { return false }
            // All started from one checkpoint: maybe the program cannot use it, and says only that it failed.
            let parents = Set(s.failuresInARow.map(\.parent))
            let shared = parents.count == 1 ? parents.first! : nil
            let hint = shared.map {
                "  every one of them started from trial #\($0)'s checkpoint: if the program cannot use it, have it exit with code "
                    + "\(ExecRunner.parentUnusableExitCode) ($PBT_EXIT_PARENT_UNUSABLE), and PBT retires that parent and refills from others"
            }
            s.error = PBTRunError.failuresInARow(count: s.failuresInARow.count, limit: limit,
                                                 reasons: PBTRunResult.reasonLines(s.failuresInARow.map { ($0.id, $0.failure) }) + (hint.map { [$0] } ?? []),
                                                 logCommand: options.trialLogCommand)
            return first
        }
        if stopping { wakeIdleWorkers() }
    }

    /// Renews the leases of claimed trials every quarter lease, until all
    /// workers have left.
    private func heartbeatLoop() {
        var lastBeat = Date()
        while true {
            usleep(20_000)
            if shared.withLock({ $0.finished }) { return }
            guard Date().timeIntervalSince(lastBeat) >= options.leaseSeconds / 4 else { continue }
            lastBeat = Date()
            for (_, claimed) in shared.withLock({ Array($0.held.values) }) {
                let renewed: Bool
                do {
                    renewed = try coordinator.store.renewLease(
                        runID: coordinator.run.id, trialID: claimed.spec.id, attempt: claimed.attempt, workerID: claimed.workerID,
                        until: coordinator.store.now() + options.leaseSeconds)
                } catch let error as any StoreGaveUp where error.storeGaveUp {
                    // The store gave up (it retries an outage itself, for minutes): so does this process. Its
                    // programs are stopped now, not left to run out with no store to report to (found by a helper:
                    // a worker with 400 s programs lived on, silent, long after it gave up), and their leases bring
                    // the trials back.
                    giveUp(because: error)
                    return
                } catch {
                    continue  // another failure (a busy local store): try again at the next beat
                }
                if !renewed { abandon(claimed) }
            }
        }
    }

    /// The store cannot be reached for good: the run stops with `error`,
    /// and the runner stops every trial this process holds.
    private func giveUp(because error: any Error) {
        let held = shared.withLock { s -> [ClaimedTrial] in
            if s.error == nil { s.error = error }
            return s.held.values.map(\.claim).filter { s.lost.insert($0).inserted }
        }
        wakeIdleWorkers()
        for claimed in held {
            runner.abandon(claimed.spec, output: claimed.output, because: "the trial store is out of reach, and this worker gave up (\(error))")
        }
    }

    /// Gives up a claim the store no longer grants this process (its lease
    /// lapsed and another worker took the trial), if a worker still holds
    /// it: the runner is told to stop the trial's run.
    private func abandon(_ claimed: ClaimedTrial) {
        let holding = shared.withLock { s -> Bool in
            // A renewal that failed because this worker's own report just finished the trial is no lapse (found by a
            // helper: healthy runs printed "another worker took it over"); a report the store refused says so itself.
            guard s.held[claimed.spec.id]?.claim == claimed, !s.reporting.contains(claimed) else { return false }
            return s.lost.insert(claimed).inserted
        }
        guard holding else { return }
        let holder = (try? coordinator.store.trial(runID: coordinator.run.id, id: claimed.spec.id)).flatMap { $0 }
        let now = holder.map { t in t.status == .running ? "attempt \(t.attempt) by \(t.workerID ?? "another worker")" : "now \(t.status.rawValue)" }
        let reason = "attempt \(claimed.attempt)'s lease of \(options.leaseSeconds) s lapsed" + (now.map { "; \($0)" } ?? "")
        options.notice?("\(TrialRunnerError.abandoned(trial: claimed.spec.id, reason: reason)); its run is stopped, and this worker goes on")
        runner.abandon(claimed.spec, output: claimed.output, because: reason)
    }

    /// Worker `index` has nothing to claim (or, with `below`, waits to
    /// report in id order until the trials below that id are reported).
    /// Once every worker of this process has waited `waitNoticeSeconds`,
    /// tells `notice` which trials of other processes they wait for (again
    /// when those change, or every 5 minutes): a dead worker's trial comes
    /// back only when its lease ends.
    private func noteWait(_ index: Int, below: Int? = nil) {
        guard let notice = options.notice else { return }
        let now = Date()
        let due = shared.withLock { s -> Bool in
            if s.waiting[index] == nil { s.waiting[index] = now }
            guard s.waiting.count == workerCount, let since = s.waiting.values.max(),
                  now.timeIntervalSince(since) >= options.waitNoticeSeconds,
                  s.lastWaitCheck.map({ now.timeIntervalSince($0) >= 10 }) ?? true else { return false }
            s.lastWaitCheck = now
            return true
        }
        guard due, let trials = try? coordinator.store.trials(runID: coordinator.run.id) else { return }
        let mine = options.workerIDPrefix + "/"
        let elsewhere = trials.filter { $0.status == .running && !($0.workerID ?? "").hasPrefix(mine) && $0.id < (below ?? .max) }
        guard !elsewhere.isEmpty else { return }
        let storeNow = coordinator.store.now()
        let awaited = elsewhere.map { t -> String in
            let lease = t.leaseUntil.map { until -> String in
                let left = until - storeNow
                return left > 0 ? "its lease ends in \(Int(left.rounded(.up))) s" : "its lease ended \(Int((-left).rounded())) s ago"
            } ?? "no lease"
            return "trial \(t.id) (attempt \(t.attempt), on \(t.workerID ?? "?"), \(lease))"
        }
        let say = shared.withLock { s -> Bool in
            let names = elsewhere.map { "\($0.id).\($0.attempt)" }
            if let last = s.lastWait, last.awaited == names, now.timeIntervalSince(last.at) < 300 { return false }
            s.lastWait = (names, now)
            return true
        }
        guard say else { return }
        notice("""
            waiting for \(awaited.count == 1 ? "a trial" : "\(awaited.count) trials") other workers run\(below == nil ? "" : " (deterministic mode reports results in id order)"): \
            \(awaited.joined(separator: "; ")). \
            A trial whose worker died is run again here once its lease ends
            """)
    }

    /// Calls `progress` with the run's counts, one caller at a time; a
    /// store error skips the report.
    private func report(_ progress: @Sendable (PBTProgress) -> Void, start: Date, completed: Int, final: Bool) {
        progressLock.withLock { _ in
            guard let run = try? coordinator.store.progress(runID: coordinator.run.id) else { return }
            let elapsed = Date().timeIntervalSince(start)
            let budget = coordinator.settings.trialBudget
            let eta = completed > 0 ? elapsed / Double(completed) * Double(max(0, budget - run.completed)) : nil
            progress(PBTProgress(run: run, trialBudget: budget, elapsedSeconds: elapsed, completedThisSession: completed,
                                 etaSeconds: eta, isFinal: final))
        }
    }
}

/// Why a driver stopped a run (beside store errors, which it rethrows).
public enum PBTRunError: Error, Hashable, CustomStringConvertible, LocalizedError {
    /// A trial could not write its checkpoint: the disk is full.
    case outOfSpace(trial: Int, error: String)
    /// The system refused another thread (a process or memory limit).
    case cannotStartThread(name: String, code: Int32)
    /// The workers' stacks alone would take more than half of the process's
    /// address-space limit (`ulimit -v`), so memory would run out mid-run.
    case tooManyWorkers(workers: Int, stackBytes: UInt64, limitBytes: UInt64)
    /// This process's last `count` trials all failed in the runner
    /// (`DriverOptions.maxFailuresInARow`); `reasons` by kind, a line each.
    /// `runOver`: the failures used up the budget, so the run is complete.
    /// `logCommand`: how to read a trial's log (`DriverOptions.trialLogCommand`).
    case failuresInARow(count: Int, limit: Int, reasons: [String], runOver: Bool = false,
                        logCommand: String = DriverOptions.defaultTrialLogCommand)

    public var description: String {
        switch self {
        case let .outOfSpace(trial, error):
            return """
                the disk is full: trial \(trial) \(error). The run stopped; no trial was lost or marked failed (trial \(trial) \
                runs again). Free some space, then resume the run with the same command
                """
        case let .cannotStartThread(name, code):
            return """
                the system refused to start thread \(name) (\(String(cString: strerror(code)))): too many threads for this \
                process's limits (ulimit -u, memory). Use fewer --workers; the run can be resumed
                """
        case let .tooManyWorkers(workers, stackBytes, limitBytes):
            let gib = { (bytes: UInt64) in String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
            return """
                --workers \(workers) needs \(gib(stackBytes)) of thread stacks, more than half of this process's \
                address-space limit (ulimit -v: \(gib(limitBytes))), so the system would refuse threads or memory \
                mid-run. Use fewer --workers (at most \(limitBytes / 2 / UInt64(WorkerThread.workerStackSize))) or raise the limit
                """
        case let .failuresInARow(count, limit, reasons, runOver, logCommand):
            let beyond = count > limit ? " (\(limit) in a row is the limit; the other \(count - limit) \(count - limit == 1 ? "was" : "were") running when it was reached)" : ""
            return """
                \(count == 1 ? "the last trial this process ran failed" : "the last \(count) trials this process ran all failed") in the training program\(beyond)\(runOver ? "" : ", so it stopped before a broken program or machine used up the run's budget"):
                \(reasons.joined(separator: "\n"))
                \(runOver ? Self.overAdvice(logCommand) : Self.goOnAdvice(logCommand)) --max-failures-in-a-row N (in Swift, \
                DriverOptions.maxFailuresInARow) sets the limit (0: never stop)
                """
        }
    }

    private static func goOnAdvice(_ logCommand: String) -> String { """
        The failed trials stay failed (each is replaced while the budget lasts); the trials it was running went back \
        to the queue, and other workers go on. Fix the cause (each trial's log: `\(logCommand)`), \
        then run the same command (or program) again: the run goes on where it stopped (it keeps its training \
        program's command line).
        """ }
    private static func overAdvice(_ logCommand: String) -> String { """
        The failed trials stay failed, and they used up the run's budget: the run is over, and running the same \
        command again would go no further. Fix the cause (each trial's log: `\(logCommand)`), \
        then start a new run (another --run-dir, or another --run in a shared store).
        """ }

    public var errorDescription: String? { description }
}

/// A joinable POSIX thread whose creation failure is an error, not a crash
/// or a silent no-op (Foundation's `Thread.start` reports neither).
final class WorkerThread: @unchecked Sendable {
    private var thread = pthread_t()

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    init(name: String, stackSize: Int, _ body: @escaping @Sendable () -> Void) throws {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let code = pthread_create(&thread, &attributes, { context in
            let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        guard code == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw PBTRunError.cannotStartThread(name: name, code: code)
        }
    }

    func join() { pthread_join(thread, nil) }

    /// A worker's stack: 8 MiB, the main thread's usual size.
    static let workerStackSize = 8 << 20

    /// Throws ``PBTRunError/tooManyWorkers(workers:stackBytes:limitBytes:)``
    /// when `workers` stacks would exceed half of `RLIMIT_AS`, before any
    /// thread starts: past that, an allocation anywhere may fail first and
    /// end the process without a message.
    static func checkAddressSpace(workers: Int) throws(PBTRunError) {
        guard let limit = SystemMemory.addressSpaceLimit else { return }
        let stacks = UInt64(workers) * UInt64(workerStackSize)
        if stacks > limit / 2 {
            throw .tooManyWorkers(workers: workers, stackBytes: stacks, limitBytes: limit)
        }
    }
}
