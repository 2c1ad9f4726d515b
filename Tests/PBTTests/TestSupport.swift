import Foundation
import PBTSeededRNG
import Synchronization
import Testing

@testable import PBT

/// A fresh directory under the system temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let url: URL

    init(_ label: String = #function) throws {
        let name = label.filter { $0.isLetter || $0.isNumber }
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("pbttests-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Retries briefly: worker threads may drop the last reference to a
    /// store just after `PBTDriver.run` returns, and SQLite's close-time WAL
    /// checkpoint can then recreate the database file.
    func cleanup() {
        for _ in 0..<10 {
            try? FileManager.default.removeItem(at: url)
            usleep(20_000)
            if !FileManager.default.fileExists(atPath: url.path) { return }
        }
    }
}

/// Small settings for tests.
func testSettings(
    population: Int = 4, workers: Int = 4, trialSteps: Int = 10, budget: Budget = .generations(5),
    selection: SelectionStrategy = .tournament, opponentGenerations: Int = 2, seed: UInt64 = 1, deterministic: Bool = false,
    space: SearchSpace = .learningRate()
) -> PBTSettings {
    PBTSettings(population: population, workers: workers, trialSteps: trialSteps, budget: budget, searchSpace: space,
                selection: selection, opponentGenerations: opponentGenerations, seed: seed, deterministic: deterministic)
}

/// A finished trial record with a known loss, for hand-built populations.
func finishedTrial(_ id: Int, generation: Int, loss: Double?, lr: Double = 1e-3, parent: Int? = nil, status: TrialStatus? = nil) -> TrialRecord {
    var t = TrialRecord(
        spec: TrialSpec(id: id, generation: generation, parentID: parent, hyperparameters: Hyperparameters(["lr": .number(lr)]),
                              startStep: generation * 10, steps: 10, seed: UInt64(id), operations: "", refillOf: nil),
        createdAt: 0)
    t.status = status ?? (loss == nil ? .failed : .finished)
    t.evaluation = loss
    if t.status == .finished {
        t.checkpointPath = "checkpoints/r/trial-\(id).1.ckpt"
        t.checkpointLive = true
    }
    return t
}

/// The pure controller driven by hand, with no store and no threads: it
/// plays the store's part (keeping rows, marking them running, applying
/// decisions) so tests can finish trials in any order they like.
struct Simulation {
    let controller: PBTController
    var state: ControllerState
    var trials: [Int: TrialRecord] = [:]
    var selections: [SelectionRecord] = []
    /// Failed trials that failed while the budget still allowed a refill.
    var failedWithBudgetLeft: [Int] = []
    /// For every created trial: how many trials of each generation had finished when it was created.
    var finishedCountsAtCreation: [Int: [Int: Int]] = [:]

    init(_ settings: PBTSettings, explorer: any ExploreStrategy = Perturbation()) {
        controller = PBTController(settings: settings, explorer: explorer)
        state = controller.initialState
        add(controller.start(&state))
    }

    private mutating func add(_ planned: [TrialSpec]) {
        var counts: [Int: Int] = [:]
        for t in trials.values where t.status == .finished { counts[t.generation, default: 0] += 1 }
        for p in planned {
            precondition(trials[p.id] == nil, "duplicate trial id \(p.id)")
            trials[p.id] = TrialRecord(spec: p, createdAt: 0)
            finishedCountsAtCreation[p.id] = counts
        }
    }

    var sorted: [TrialRecord] { trials.values.sorted { $0.id < $1.id } }
    var queued: [TrialRecord] { sorted.filter { $0.status == .queued } }
    var running: [TrialRecord] { sorted.filter { $0.status == .running } }
    var pendingCount: Int { trials.values.filter { !$0.status.isTerminal }.count }

    /// Marks the lowest-id queued trial running, as a store's claim does.
    mutating func claim() -> TrialRecord? {
        guard var t = queued.first else { return nil }
        t.status = .running
        t.attempt += 1
        trials[t.id] = t
        return t
    }

    /// Records trial `id`'s result (nil or non-finite: failed) and applies the decision.
    @discardableResult
    mutating func finish(_ id: Int, loss: Double?) -> PBTController.Decision {
        var t = trials[id]!
        precondition(t.status == .running)
        if let loss, loss.isFinite {
            t.status = .finished
            t.evaluation = loss
            t.checkpointPath = "checkpoints/r/trial-\(id).1.ckpt"
            t.checkpointLive = true  // nothing is released here
        } else {
            // As the coordinator records them: a NaN is a divergence, nil another failure.
            t.status = .failed
            t.failure = loss == nil ? "runner error: the simulated trial failed" : "diverged: evaluation nan"
            if state.trialsCreated < controller.settings.trialBudget { failedWithBudgetLeft.append(id) }
        }
        trials[id] = t
        var population = trials.values.filter { controller.window(for: t).contains($0.generation) }
        // A failed trial's parent, as the coordinator adds it: it can lie below the window.
        if t.status == .failed, let pid = t.parentID, !population.contains(where: { $0.id == pid }) { population.append(trials[pid]!) }
        let before = state
        let mayDecide = controller.mayDecide(after: t, state: state) {
            trials.values.filter { $0.generation == t.generation && $0.status == .finished }.count
        }
        let decision = controller.decide(after: t, population: population, selections: selections, state: &state)
        if !mayDecide {
            // The store skips reading the window then: the decision must be empty and draw nothing.
            #expect(decision.newTrials.isEmpty && decision.selections.isEmpty && state == before,
                    "trial \(t.id): mayDecide said no, decide did something")
        }
        add(decision.newTrials)
        selections += decision.selections
        if pendingCount == 0 { state.done = true }
        return decision
    }

    /// Runs the whole budget with `workers` trials in flight, finishing a
    /// random in-flight trial each time (so results arrive out of order), with
    /// `loss(trial)` as the evaluation (nil: the trial fails).
    mutating func runToCompletion(workers: Int, orderSeed: UInt64, loss: (TrialRecord) -> Double?) {
        var order = Xoshiro256(seed: orderSeed)
        while true {
            while running.count < workers, claim() != nil {}
            let inFlight = running
            guard !inFlight.isEmpty else { break }
            let t = inFlight[order.uniformIndex(inFlight.count)]
            finish(t.id, loss: loss(t))
        }
    }
}

/// The built `pbtwave` executable, next to the test bundle (`swift test`
/// builds every product of the package, the executable included).
/// The built speech corpus: $PBTWAVE_CORPUS, else the checkout's `corpus/`.
func corpusDirectory() -> String {
    ProcessInfo.processInfo.environment["PBTWAVE_CORPUS"].flatMap { $0.isEmpty ? nil : $0 }
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("corpus").path
}

func pbtwaveExecutable() throws -> URL {
    // Another build's binary, e.g. to show that a command-line test fails without a fix.
    if let other = ProcessInfo.processInfo.environment["PBTWAVE_EXECUTABLE"], !other.isEmpty { return URL(fileURLWithPath: other) }
    let beside = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("pbtwave")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/pbtwave")
    if FileManager.default.isExecutableFile(atPath: fromSource.path) { return fromSource }
    throw TestFailure("pbtwave executable not found at \(beside.path) or \(fromSource.path); run `swift build` first")
}

/// Expects two trial tables to be equal, reporting only the first difference.
func expectSameRows(_ a: [LineageFields], _ b: [LineageFields], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(a.count) vs \(b.count) trials", sourceLocation: sourceLocation)
    if let i = a.indices.first(where: { $0 < b.count && a[$0] != b[$0] }) {
        Issue.record("first difference at row \(i):\n\(a[i])\n\(b[i])", sourceLocation: sourceLocation)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs `pbtwave` (or `executable`) with `arguments` to completion (with
/// `environment` set on top of this process's, less `unsetting`, in
/// `currentDirectory` if given); returns exit status and output.
@discardableResult
func runPBTWave(_ arguments: [String], environment: [String: String] = [:], unsetting: Set<String> = [], executable: URL? = nil,
                currentDirectory: URL? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = try executable ?? pbtwaveExecutable()
    process.arguments = arguments
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    if !environment.isEmpty || !unsetting.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }.filter { !unsetting.contains($0.key) }
    }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A `Mutex` in a class, so closures and several owners can share it.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// Runs `driver` on a thread of its own and waits at most `seconds`: nil
/// (after recording an issue) if it did not finish, so a hang fails the
/// test instead of stalling the suite.
func runWithin<R: TrialRunner>(_ seconds: Double, _ driver: PBTDriver<R>, what: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> PBTRunResult? {
    let outcome = Locked<Result<PBTRunResult, any Error>?>(nil)
    let finished = DispatchSemaphore(value: 0)
    Thread {
        let r = Result { try driver.run() }
        outcome.withLock { $0 = r }
        finished.signal()
    }.start()
    guard finished.wait(timeout: .now() + seconds) == .success, let ran = outcome.withLock({ $0 }) else {
        Issue.record("\(what) did not finish within \(seconds) s", sourceLocation: sourceLocation)
        return nil
    }
    return try ran.get()
}

/// The decision-relevant fields without the checkpoint path (which carries
/// the attempt number, so differs for a re-run trial).
func decisionFields(_ trials: [TrialRecord]) -> [LineageFields] {
    trials.map { var f = $0.lineageFields; f.checkpointPath = nil; return f }
}

extension DriverTests {
    /// Every file under `RUN_DIR/checkpoints/`, relative to the run directory.
    static func checkpointFiles(_ runDirectory: URL) throws -> Set<String> {
        let root = runDirectory.appendingPathComponent("checkpoints")
        var files = Set<String>()
        for namespace in try FileManager.default.contentsOfDirectory(atPath: root.path) {
            for name in try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(namespace).path) {
                files.insert("checkpoints/\(namespace)/\(name)")
            }
        }
        return files
    }
}

/// A runner that runs a closure.
struct ClosureRunner: TrialRunner {
    let body: @Sendable (TrialSpec, CheckpointRef?, CheckpointRef) throws -> TrialOutcome
    init(_ body: @escaping @Sendable (TrialSpec, CheckpointRef?, CheckpointRef) throws -> TrialOutcome) { self.body = body }
    func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        try body(trial, parent, output)
    }
}

/// `base` with its clock or its lease renewals replaced: on a clock
/// `ahead` seconds ahead of this machine's (as a server's clock is to a
/// worker whose clock is behind it), or with renewals that fail as a store
/// that has given up does (a server out of reach for longer than its
/// retries).
struct OverriddenStore: TrialStore {
    struct GaveUp: StoreGaveUp, Equatable { var storeGaveUp: Bool { true } }
    let base: any TrialStore
    var ahead: Double?
    var renewalsGiveUp = false

    static func onAnotherClock(_ base: any TrialStore, ahead: Double) -> OverriddenStore { OverriddenStore(base: base, ahead: ahead) }
    static func givingUp(_ base: any TrialStore) -> OverriddenStore { OverriddenStore(base: base, renewalsGiveUp: true) }

    func now() -> Double { ahead.map { Date().timeIntervalSince1970 + $0 } ?? base.now() }
    func createRun(name: String, configJSON: String, seed: UInt64, state: ControllerState,
                   trials: [TrialSpec], now: Double) throws -> RunRecord {
        try base.createRun(name: name, configJSON: configJSON, seed: seed, state: state, trials: trials, now: now)
    }
    func run(named name: String) throws -> RunRecord? { try base.run(named: name) }
    func runNames() throws -> [String] { try base.runNames() }
    func claim(runID: Int64, workerID: String, now: Double, leaseUntil: Double, below: Int?) throws -> TrialRecord? {
        try base.claim(runID: runID, workerID: workerID, now: now, leaseUntil: leaseUntil, below: below)
    }
    func renewLease(runID: Int64, trialID: Int, attempt: Int, workerID: String, until: Double) throws -> Bool {
        if renewalsGiveUp { throw GaveUp() }
        return try base.renewLease(runID: runID, trialID: trialID, attempt: attempt, workerID: workerID, until: until)
    }
    func releaseClaim(runID: Int64, trialID: Int, attempt: Int, workerID: String) throws -> Bool {
        try base.releaseClaim(runID: runID, trialID: trialID, attempt: attempt, workerID: workerID)
    }
    func requeueRunning(runID: Int64) throws -> Int { try base.requeueRunning(runID: runID) }
    func withDecision<T: Sendable>(runID: Int64, _ body: (any DecisionTransaction) throws -> T) throws -> T {
        try base.withDecision(runID: runID, body)
    }
    func trials(runID: Int64) throws -> [TrialRecord] { try base.trials(runID: runID) }
    func trial(runID: Int64, id: Int) throws -> TrialRecord? { try base.trial(runID: runID, id: id) }
    func selections(runID: Int64) throws -> [SelectionRecord] { try base.selections(runID: runID) }
    func progress(runID: Int64) throws -> RunProgress { try base.progress(runID: runID) }
    func hasPendingTrial(runID: Int64, before id: Int) throws -> Bool { try base.hasPendingTrial(runID: runID, before: id) }
}

/// Runs each trial until it is abandoned (at most 20 s), then fails it as abandoned.
final class RunsUntilAbandoned: TrialRunner, Sendable {
    let abandoned = Locked<[Int]>([])
    func run(_ trial: TrialSpec, parent: CheckpointRef?, output: CheckpointRef) throws -> TrialOutcome {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !abandoned.withLock({ $0.contains(trial.id) }) { usleep(10_000) }
        throw TrialRunnerError.abandoned(trial: trial.id, reason: "test")
    }
    func abandon(_ trial: TrialSpec, output: CheckpointRef, because reason: String) { abandoned.withLock { $0.append(trial.id) } }
}
