import Foundation

/// A run's full identity: the PBT settings and the runner ("model") with its
/// options. Stored as JSON with the run; resuming compares it field by field.
public struct RunConfiguration: Sendable, Hashable, Codable {
    public var settings: PBTSettings
    /// The runner's name, e.g. `toy` or `wavenet`.
    public var model: String
    /// Runner options that change results (e.g. a model preset).
    public var modelOptions: [String: String]
    /// How to train with a learned schedule again, as the runner describes
    /// it; exported with every schedule (`Lineage.export`). Derived from
    /// the model and its options, so a resume does not compare it.
    public var recipe: JSONValue?

    public init(settings: PBTSettings, model: String, modelOptions: [String: String] = [:], recipe: JSONValue? = nil) {
        self.settings = settings
        self.model = model
        self.modelOptions = modelOptions
        self.recipe = recipe
    }

    /// Canonical JSON (sorted keys). Throws for non-finite numbers, which
    /// `PBTSettings.validate()` rejects first.
    public func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    public init(jsonText: String) throws {
        self = try JSONDecoder().decode(RunConfiguration.self, from: Data(jsonText.utf8))
    }

    /// Differences from `other`, settings first, then `model`, `model.<option>`.
    public func differences(from other: RunConfiguration) -> [SettingDifference] {
        var out = settings.differences(from: other.settings)
        if model != other.model { out.append(SettingDifference(field: "model", stored: model, given: other.model)) }
        for key in Set(modelOptions.keys).union(other.modelOptions.keys).sorted() where modelOptions[key] != other.modelOptions[key] {
            out.append(SettingDifference(field: "model.\(key)", stored: modelOptions[key] ?? "(none)", given: other.modelOptions[key] ?? "(none)"))
        }
        return out
    }
}

/// A trial handed to a worker: what to run, from which checkpoint, and
/// where to write.
public struct ClaimedTrial: Sendable, Hashable {
    public var spec: TrialSpec
    /// 1 for the first run of this trial, 2… when re-run after an interruption.
    public var attempt: Int
    public var parent: CheckpointRef?
    public var output: CheckpointRef
    public var workerID: String
}

public enum ClaimResult: Sendable, Hashable {
    case trial(ClaimedTrial)
    /// Nothing to run now; ask again soon (others' results will create work).
    case wait
    /// The run is complete.
    case done
}

/// What a report did.
public struct ReportReceipt: Sendable, Hashable {
    /// False when the trial had been taken away (lease expired, re-run
    /// elsewhere): the result was ignored.
    public var accepted: Bool
    public var status: TrialStatus?
    public var newTrialIDs: [Int]
    public var releasedCheckpoints: [String]
    public var runDone: Bool
    /// The reporting worker's next claim, when asked for (`claimNext`).
    public var next: ClaimResult?
}

/// The store-independent PBT protocol between workers and a store: claim a
/// trial, report its outcome. `report` runs the pure controller inside the
/// store's decision transaction and garbage-collects checkpoints. Safe to
/// share between threads and to run in several processes on one store.
public struct PBTCoordinator: Sendable {
    public let store: any TrialStore
    public let run: RunRecord
    public let configuration: RunConfiguration
    public let controller: PBTController
    public let checkpoints: CheckpointDirectory

    public var settings: PBTSettings { configuration.settings }

    /// Opens run `name` in `store`, creating it (with generation 0) if it does
    /// not exist. An existing run must have been created with an equal
    /// configuration, else `PBTStoreError.configMismatch` names the differences.
    public static func open(
        store: any TrialStore, name: String, configuration: RunConfiguration, runDirectory: URL,
        now: Double = Date().timeIntervalSince1970
    ) throws -> (coordinator: PBTCoordinator, created: Bool) {
        try configuration.settings.validate()
        let controller = PBTController(settings: configuration.settings)
        let checkpoints = try CheckpointDirectory(runDirectory: runDirectory)
        if let existing = try store.run(named: name) {
            let stored: RunConfiguration
            do { stored = try RunConfiguration(jsonText: existing.configJSON) } catch {
                throw PBTStoreError.malformedRecord("run '\(name)' has an unreadable configuration: \(error)")
            }
            let diff = stored.differences(from: configuration)
            guard diff.isEmpty else { throw PBTStoreError.configMismatch(run: name, differences: diff) }
            return (PBTCoordinator(store: store, run: existing, configuration: stored, controller: controller, checkpoints: checkpoints), false)
        }
        var state = controller.initialState
        let first = controller.start(&state)
        let run = try store.createRun(name: name, configJSON: try configuration.jsonText(), seed: configuration.settings.seed,
                                      state: state, trials: first, now: now)
        return (PBTCoordinator(store: store, run: run, configuration: configuration, controller: controller, checkpoints: checkpoints), true)
    }

    /// Opens an existing run with its stored configuration (for reading,
    /// exporting, or joining as a worker).
    public static func open(store: any TrialStore, name: String, runDirectory: URL) throws -> PBTCoordinator {
        guard let existing = try store.run(named: name) else { throw PBTStoreError.runNotFound(name) }
        let configuration = try RunConfiguration(jsonText: existing.configJSON)
        return PBTCoordinator(store: store, run: existing, configuration: configuration,
                              controller: PBTController(settings: configuration.settings),
                              checkpoints: try CheckpointDirectory(runDirectory: runDirectory))
    }

    /// Asks for work; with `below`, only for a trial with a lower id (see
    /// `TrialStore.claim`).
    public func claim(
        workerID: String, now: Double = Date().timeIntervalSince1970, leaseSeconds: Double = 300, below: Int? = nil
    ) throws -> ClaimResult {
        if let t = try store.claim(runID: run.id, workerID: workerID, now: now, leaseUntil: now + leaseSeconds, below: below) {
            return .trial(try claimed(t, workerID: workerID, parent: { try store.trial(runID: run.id, id: $0) }))
        }
        return try store.run(named: run.name)?.state.done == true ? .done : .wait
    }

    private func claimed(_ t: TrialRecord, workerID: String, parent lookup: (Int) throws -> TrialRecord?) throws -> ClaimedTrial {
        var parent: CheckpointRef?
        if let pid = t.parentID {
            guard let p = try lookup(pid), let path = p.checkpointPath, p.checkpointLive else {
                throw PBTStoreError.malformedRecord("trial \(t.id)'s parent \(pid) has no live checkpoint")
            }
            parent = checkpoints.ref(relativePath: path)
        }
        return ClaimedTrial(spec: t.spec, attempt: t.attempt, parent: parent, output: checkpoints.ref(trialID: t.id, attempt: t.attempt),
                            workerID: workerID)
    }

    /// Records `result` for `claimed` and makes the controller's decision, in
    /// one transaction; then deletes checkpoint files that can no longer be a
    /// parent. A finite evaluation with a written checkpoint is `finished`;
    /// a thrown error, NaN/inf or a missing checkpoint file is `failed`.
    ///
    /// With `claimNext`, the same transaction also claims the reporting
    /// worker's next trial (`ReportReceipt.next`): one commit per trial.
    /// `remove` deletes a checkpoint (absolute path) after the commit; by
    /// default at once, on this thread.
    @discardableResult
    public func report(_ claimed: ClaimedTrial, result: Result<TrialOutcome, any Error>,
                       now: Double = Date().timeIntervalSince1970, claimNext: Bool = false,
                       leaseSeconds: Double = 300, remove: ((String) -> Void)? = nil) throws -> ReportReceipt {
        var status = TrialStatus.finished
        var evaluation: Double?
        var failure: String?
        switch result {
        case .success(let outcome) where !outcome.evaluation.isFinite:
            status = .failed
            failure = "diverged: evaluation \(outcome.evaluation)"
        case .success(let outcome) where access(claimed.output.path, F_OK) != 0:
            status = .failed
            failure = "runner returned \(outcome.evaluation) without writing its checkpoint \(claimed.output.path)"
        case .success(let outcome):
            evaluation = outcome.evaluation
        case .failure(let error):
            status = .failed
            failure = "runner error: \(error)"
        }
        let relativeOutput = checkpoints.relativePath(trialID: claimed.spec.id, attempt: claimed.attempt)
        let controller = self.controller
        let receipt: ReportReceipt = try store.withDecision(runID: run.id) { tx in
            func next(_ state: ControllerState) throws -> ClaimResult? {
                guard claimNext else { return nil }
                if state.done { return .done }
                guard let t = try tx.claim(workerID: claimed.workerID, now: now, leaseUntil: now + leaseSeconds) else { return .wait }
                return .trial(try self.claimed(t, workerID: claimed.workerID, parent: tx.trial(id:)))
            }
            guard let current = try tx.trial(id: claimed.spec.id), current.status == .running,
                  current.attempt == claimed.attempt, current.workerID == claimed.workerID
            else {
                return ReportReceipt(accepted: false, status: nil, newTrialIDs: [], releasedCheckpoints: [], runDone: false,
                                     next: try next(try tx.state()))
            }
            try tx.complete(trialID: current.id, status: status, evaluation: evaluation,
                            checkpointPath: status == .finished ? relativeOutput : nil, finishedAt: now, failure: failure)
            var state = try tx.state()
            var updated = current
            updated.status = status
            updated.evaluation = evaluation
            let population = try tx.trials(inGenerations: controller.window(for: updated))
            let decision = controller.decide(after: updated, population: population, state: &state)
            try tx.insert(decision.newTrials, createdAt: now)
            try tx.insert(decision.selections)

            let pending = try tx.pendingTrials()
            state.done = pending.isEmpty
            let floor = controller.retentionFloor(
                minPendingGeneration: pending.map(\.generation).min(),
                latestFinishedGeneration: pending.isEmpty ? try tx.latestFinishedGeneration() : 0)
            let neededParents = Set(pending.compactMap(\.parentID))
            let released = try tx.releasableCheckpoints(belowGeneration: floor).filter { !neededParents.contains($0.id) }
            try tx.releaseCheckpoints(released.map(\.id))
            try tx.setState(state)
            return ReportReceipt(accepted: true, status: status, newTrialIDs: decision.newTrials.map(\.id),
                                 releasedCheckpoints: released.map(\.path), runDone: state.done, next: try next(state))
        }
        let remove = remove ?? { checkpoints.remove(absolutePath: $0) }
        if !receipt.accepted || status == .failed { remove(claimed.output.path) }
        for path in receipt.releasedCheckpoints { remove(checkpoints.ref(relativePath: path).path) }
        return receipt
    }

    /// Single-process resume: re-queues trials left running by a dead
    /// process and deletes checkpoint files no live trial references
    /// (half-written temporaries, outputs of interrupted attempts, files
    /// released just before a crash). Call only while holding the run
    /// directory's lock, before starting workers.
    public func recoverAfterCrash() throws -> (requeued: Int, filesRemoved: Int) {
        let requeued = try store.requeueRunning(runID: run.id)
        let live = Set(try store.trials(runID: run.id).compactMap { $0.checkpointLive ? $0.checkpointPath : nil })
        return (requeued, checkpoints.sweep(keeping: live))
    }
}

/// The checkpoints of one run: `RUN_DIR/checkpoints/trial-<id>.<attempt>.ckpt`,
/// each a file or (`ExecRunner`) a directory.
/// Paths are stored relative to the run directory, so a run directory (or
/// a shared mount of it) can live anywhere.
public struct CheckpointDirectory: Sendable, Hashable {
    public let runDirectory: URL
    /// `runDirectory.path` with a trailing slash, for cheap path building.
    private let prefix: String
    public var directory: URL { runDirectory.appendingPathComponent("checkpoints", isDirectory: true) }

    public init(runDirectory: URL) throws {
        self.runDirectory = runDirectory.standardizedFileURL
        prefix = self.runDirectory.path.hasSuffix("/") ? self.runDirectory.path : self.runDirectory.path + "/"
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    public func relativePath(trialID: Int, attempt: Int) -> String { "checkpoints/trial-\(trialID).\(attempt).ckpt" }

    public func ref(trialID: Int, attempt: Int) -> CheckpointRef { ref(relativePath: relativePath(trialID: trialID, attempt: attempt)) }

    public func ref(relativePath: String) -> CheckpointRef { CheckpointRef(path: prefix + relativePath) }

    func remove(relativePath: String) { remove(absolutePath: prefix + relativePath) }

    func remove(absolutePath: String) { Self.removeItem(atPath: absolutePath) }

    /// Deletes every file (or trial directory) in the directory whose
    /// relative path is not in `live`. Returns how many were deleted.
    @discardableResult
    public func sweep(keeping live: Set<String>) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var removed = 0
        for name in names where !live.contains("checkpoints/\(name)") {
            if Self.removeItem(atPath: prefix + "checkpoints/" + name) { removed += 1 }
        }
        return removed
    }
}
