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
    /// it; exported with every schedule (`Lineage.export`). A resume
    /// compares it field by field (`recipeDifferences`), except
    /// `recipeFieldsNotCompared`.
    public var recipe: JSONValue?
    /// Recipe fields a resume does not compare, named by their dotted path
    /// (`corpusDirectory`, `training.batch`): where things were (a folder,
    /// which may move) and copies of `settings`. Set by whoever builds the
    /// recipe, which knows its fields; not stored.
    public var recipeFieldsNotCompared: Set<String> = []

    public init(settings: PBTSettings, model: String, modelOptions: [String: String] = [:], recipe: JSONValue? = nil,
                recipeFieldsNotCompared: Set<String> = []) {
        self.settings = settings
        self.model = model
        self.modelOptions = modelOptions
        self.recipe = recipe
        self.recipeFieldsNotCompared = recipeFieldsNotCompared
    }

    enum CodingKeys: String, CodingKey {
        case settings, model, modelOptions, recipe
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

    /// Differences from `other`, settings first, then `model`, the recipe's
    /// fields (`recipe.<path>`, but those `other` does not compare), and
    /// `model.<option>`.
    public func differences(from other: RunConfiguration) -> [SettingDifference] {
        var out = settings.differences(from: other.settings)
        if model != other.model { out.append(SettingDifference(field: "model", stored: model, given: other.model)) }
        // A run trained with another recipe (another program, corpus or window) would
        // mix two kinds of trial and export a recipe that did not train them all.
        // (`pbtwave worker` may run it from another path: it opens the stored
        // configuration and compares nothing.)
        if model == other.model, let recipe, let given = other.recipe {
            out += Self.recipeDifferences(stored: recipe, given: given, notCompared: other.recipeFieldsNotCompared)
        }
        for key in Set(modelOptions.keys).union(other.modelOptions.keys).sorted() where modelOptions[key] != other.modelOptions[key] {
            // An option left out is the runner's default (e.g. precision fp32, stored only when not).
            out.append(SettingDifference(field: "model.\(key)", stored: modelOptions[key] ?? "the default", given: other.modelOptions[key] ?? "the default"))
        }
        return out
    }

    /// How `given` differs from `stored`, a recipe, leaf by leaf in sorted
    /// order, each named `recipe.<dotted path>`. Fields one side does not
    /// have (a run from an older build stores fewer) and the paths in
    /// `notCompared` are not compared; arrays are compared whole.
    public static func recipeDifferences(stored: JSONValue, given: JSONValue, notCompared: Set<String> = []) -> [SettingDifference] {
        func walk(_ stored: JSONValue, _ given: JSONValue, _ path: String) -> [SettingDifference] {
            if notCompared.contains(path) { return [] }
            if case .object(let mine) = stored, case .object(let theirs) = given {
                return mine.keys.sorted().flatMap { key in
                    theirs[key].map { walk(mine[key]!, $0, path.isEmpty ? key : path + "." + key) } ?? []
                }
            }
            guard stored != given, compactJSON(stored) != compactJSON(given) else { return [] }
            return [SettingDifference(field: "recipe." + path, stored: compactJSON(stored), given: compactJSON(given))]
        }
        return walk(stored, given, "")
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
    /// Why the parent was retired from selection, when it was retired
    /// after this trial was planned: the trial is not run (its checkpoint
    /// is unreadable, unusable or changed), and fails so that its refill
    /// starts from another (`TrialRunnerError.parentRetired`).
    public var parentRetired: String? = nil
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
    /// Why the trial failed, as stored (nil unless `status` is `.failed`).
    public var failure: String? = nil
    public var newTrialIDs: [Int]
    /// Checkpoints (paths relative to the run directory) whose files the
    /// report deletes: those released, and a retired parent's once no
    /// pending trial names it.
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
    /// `explorers` must provide the settings' explore method
    /// (`PBTConfigError.exploreUnavailable` otherwise).
    ///
    /// `runDirectory` holds the run's checkpoints, and one run's only: it is
    /// created if missing, and checked before anything is created in the
    /// store (`RunDirectoryError`: a file, a folder that cannot be made, one
    /// that belongs to another run or holds checkpoints of no known run);
    /// then `RUN_DIR/pbt-run.txt` names the run (`RunMarker`). Give each
    /// run of a store a directory of its own.
    public static func open(
        store: any TrialStore, name: String, configuration: RunConfiguration, runDirectory: URL,
        now: Double? = nil, explorers: ExploreStrategies = .builtIn
    ) throws -> (coordinator: PBTCoordinator, created: Bool) {
        let now = now ?? store.now()
        try configuration.settings.validate()
        try PBTStoreError.checkRunName(name)
        let controller = PBTController(settings: configuration.settings, explorer: try explorers.strategy(for: configuration.settings))
        try RunDirectory.makeFolder(runDirectory)
        try RunMarker.checkBeforeOpening(store, location: (store as? any CustomStringConvertible)?.description ?? "the trial store",
                                         name: name, runDirectory: runDirectory)
        let opened: (run: RunRecord, configuration: RunConfiguration, created: Bool)
        if let existing = try store.run(named: name) {
            let stored: RunConfiguration
            do { stored = try RunConfiguration(jsonText: existing.configJSON) } catch {
                throw PBTStoreError.malformedRecord("run '\(name)' has an unreadable configuration: \(error)")
            }
            let diff = stored.differences(from: configuration)
            guard diff.isEmpty else { throw PBTStoreError.configMismatch(run: name, differences: diff) }
            try RunMarker.requireForJoining(runDirectory, run: existing, trials: try store.trials(runID: existing.id))
            opened = (existing, stored, false)
        } else {
            var state = controller.initialState
            let first = controller.start(&state)
            // The directory first, then the store: a run exists only once its directory names it.
            let identity = RunIdentity(name: name, createdAt: now)
            do {
                try RunMarker.claim(runDirectory, as: identity, trials: [])
            } catch RunDirectoryError.belongsToAnotherRun(_, let owner, _) where owner.name == name {
                // Another command claimed this directory for the run a moment ago, and creates it: join it.
                _ = try RunMarker.awaitCreation(of: owner, in: store)
                throw PBTStoreError.runExists(name)
            }
            let run: RunRecord
            do {
                run = try store.createRun(name: name, configJSON: try configuration.jsonText(), seed: configuration.settings.seed,
                                          state: state, trials: first, now: now)
            } catch {
                RunMarker.release(runDirectory, claimedAs: identity)
                throw error
            }
            opened = (run, configuration, true)
        }
        let checkpoints = try CheckpointDirectory(runDirectory: runDirectory, run: opened.run)
        try RunMarker.claim(runDirectory, for: opened.run, trials: try store.trials(runID: opened.run.id))
        return (PBTCoordinator(store: store, run: opened.run, configuration: opened.configuration, controller: controller,
                               checkpoints: checkpoints), opened.created)
    }

    /// Opens an existing run with its stored configuration (for reading,
    /// exporting, or joining as a worker). `explorers` must provide its
    /// explore method, as for `open(store:name:configuration:runDirectory:)`.
    public static func open(
        store: any TrialStore, name: String, runDirectory: URL, explorers: ExploreStrategies = .builtIn
    ) throws -> PBTCoordinator {
        guard let existing = try store.run(named: name) else { throw PBTStoreError.runNotFound(name) }
        let configuration = try RunConfiguration(jsonText: existing.configJSON)
        return PBTCoordinator(store: store, run: existing, configuration: configuration,
                              controller: PBTController(settings: configuration.settings,
                                                        explorer: try explorers.strategy(for: configuration.settings)),
                              checkpoints: try CheckpointDirectory(runDirectory: runDirectory, run: existing))
    }

    /// What `raiseBudget` did.
    public struct BudgetRaise: Sendable, Hashable {
        public var from: Budget
        public var to: Budget
        /// The trials the old and the new budget buy.
        public var fromTrials: Int
        public var toTrials: Int
        /// The trials made at once (the decisions the old budget cut short).
        public var newTrials: Int
    }

    /// Raises the budget of run `name` to `configuration`'s when that is the
    /// only way `configuration` differs from the run's and it buys more
    /// trials; nil otherwise (open then reports the differences). The run
    /// must be complete (`PBTStoreError.budgetRaisedBeforeTheEnd`): workers
    /// of an unfinished run, on other machines too, decide under the budget
    /// they opened it with. In one decision transaction the run's stored
    /// configuration takes the new budget, the decisions the old budget cut
    /// short are made (`PBTController.extend`) and the run is no longer done,
    /// so `open` and workers go on with it. Budget mode with whole
    /// generations goes on exactly as a run begun with the larger budget.
    public static func raiseBudget(
        store: any TrialStore, name: String, to configuration: RunConfiguration, now: Double? = nil,
        explorers: ExploreStrategies = .builtIn
    ) throws -> BudgetRaise? {
        guard let existing = try store.run(named: name) else { return nil }
        let stored: RunConfiguration
        do { stored = try RunConfiguration(jsonText: existing.configJSON) } catch { return nil }
        let differences = stored.differences(from: configuration)
        guard !differences.isEmpty, differences.allSatisfy({ $0.field == "budget" }),
              configuration.settings.trialBudget > stored.settings.trialBudget else { return nil }
        var raised = stored
        raised.settings.budget = configuration.settings.budget
        try raised.settings.validate()
        let controller = PBTController(settings: raised.settings, explorer: try explorers.strategy(for: raised.settings))
        let now = now ?? store.now()
        let json = try raised.jsonText()
        let added = try store.withDecision(runID: existing.id) { tx -> Int in
            var state = try tx.state()
            let trials = try tx.trials(inGenerations: 0...Int(Int32.max))
            guard state.done else {
                throw PBTStoreError.budgetRaisedBeforeTheEnd(run: name, done: trials.filter(\.status.isTerminal).count,
                                                             budget: stored.settings.trialBudget)
            }
            let decision = controller.extend(trials: trials, selections: try tx.selections(initiatorGenerations: 0...Int(Int32.max)), state: &state)
            try tx.setConfiguration(json)
            try tx.insert(decision.newTrials, createdAt: now)
            try tx.insert(decision.selections)
            state.done = try tx.pendingTrials().isEmpty
            try tx.setState(state)
            return decision.newTrials.count
        }
        return BudgetRaise(from: stored.settings.budget, to: raised.settings.budget, fromTrials: stored.settings.trialBudget,
                           toTrials: raised.settings.trialBudget, newTrials: added)
    }

    /// How ``open(store:name:configuration:runDirectory:adjustingBudget:explorers:)``
    /// met a budget other than the run's.
    public enum BudgetAdjustment: Sendable, Hashable {
        /// The run was created, or its budget was the one given.
        case none
        /// The budget given buys the run's own trials in another form
        /// (`--total-steps 50` for `--generations 5` of 10-step trials): the
        /// run is opened with its own budget, `runs`.
        case sameTrials(given: Budget, runs: Budget, trials: Int)
        /// A complete run's budget was raised (``raiseBudget(store:name:to:now:explorers:)``).
        case raised(BudgetRaise)
    }

    /// ``open(store:name:configuration:runDirectory:now:explorers:)`` with the
    /// budget rules of a run opened again: where the budget is the only
    /// difference, the same trials in another form open the run with its own
    /// budget, and a larger one raises a complete run's
    /// (`PBTStoreError.budgetRaisedBeforeTheEnd` for an unfinished run);
    /// a smaller one, or any other difference, is
    /// `PBTStoreError.configMismatch`. A run another process creates at the
    /// same moment is opened as it stands.
    public static func open(
        store: any TrialStore, name: String, configuration: RunConfiguration, runDirectory: URL, adjustingBudget: Bool,
        explorers: ExploreStrategies = .builtIn
    ) throws -> (coordinator: PBTCoordinator, created: Bool, budget: BudgetAdjustment) {
        func plain(_ configuration: RunConfiguration) throws -> (coordinator: PBTCoordinator, created: Bool) {
            do {
                return try open(store: store, name: name, configuration: configuration, runDirectory: runDirectory, explorers: explorers)
            } catch PBTStoreError.runExists {
                // Another process created it just now.
                return try open(store: store, name: name, configuration: configuration, runDirectory: runDirectory, explorers: explorers)
            }
        }
        do {
            let opened = try plain(configuration)
            return (opened.coordinator, opened.created, .none)
        } catch PBTStoreError.configMismatch(let run, let differences)
                    where adjustingBudget && differences.allSatisfy({ $0.field == "budget" }) {
            guard let record = try store.run(named: name), let stored = try? RunConfiguration(jsonText: record.configJSON) else {
                throw PBTStoreError.configMismatch(run: run, differences: differences)
            }
            if configuration.settings.trialBudget == stored.settings.trialBudget {
                var same = configuration
                same.settings.budget = stored.settings.budget
                let opened = try plain(same)
                return (opened.coordinator, opened.created,
                        .sameTrials(given: configuration.settings.budget, runs: stored.settings.budget, trials: stored.settings.trialBudget))
            }
            guard let raise = try raiseBudget(store: store, name: name, to: configuration, explorers: explorers) else {
                throw PBTStoreError.configMismatch(run: run, differences: differences)
            }
            let opened = try plain(configuration)
            return (opened.coordinator, opened.created, .raised(raise))
        }
    }

    /// Asks for work; with `below`, only for a trial with a lower id (see
    /// `TrialStore.claim`).
    public func claim(
        workerID: String, now: Double? = nil, leaseSeconds: Double = 300, below: Int? = nil
    ) throws -> ClaimResult {
        let now = now ?? store.now()
        if let t = try store.claim(runID: run.id, workerID: workerID, now: now, leaseUntil: now + leaseSeconds, below: below) {
            return .trial(try claimed(t, workerID: workerID, parent: { try store.trial(runID: run.id, id: $0) }))
        }
        return try store.run(named: run.name)?.state.done == true ? .done : .wait
    }

    private func claimed(_ t: TrialRecord, workerID: String, parent lookup: (Int) throws -> TrialRecord?) throws -> ClaimedTrial {
        var parent: CheckpointRef?
        var retired: String?
        if let pid = t.parentID {
            // A retired parent is handed out all the same, with its reason:
            // the driver fails the trial without running it, and the refill
            // picks another. (Before, the runner ran it: a changed checkpoint
            // was read, and its trial could succeed and win.)
            guard let p = try lookup(pid), let path = p.checkpointPath, p.status == .finished else {
                throw PBTStoreError.malformedRecord("trial \(t.id)'s parent \(pid) has no checkpoint")
            }
            parent = checkpoints.ref(relativePath: path)
            if p.isRetired {
                retired = p.failure ?? "retired"
            } else if !p.checkpointLive {
                // A parent released under its planned child: what a run of an
                // older pbtwave could leave (asynchronous truncation, a raised
                // budget). Before, every claim threw, and the run was stuck.
                retired = "released: its checkpoint was deleted as no longer needed"
            }
        }
        return ClaimedTrial(spec: t.spec, attempt: t.attempt, parent: parent, output: checkpoints.ref(trialID: t.id, attempt: t.attempt),
                            workerID: workerID, parentRetired: retired)
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
                       now: Double? = nil, claimNext: Bool = false,
                       leaseSeconds: Double = 300, remove: ((String) -> Void)? = nil) throws -> ReportReceipt {
        let given = now
        var status = TrialStatus.finished
        var evaluation: Double?
        var failure: String?
        switch result {
        case .success(let outcome) where !outcome.evaluation.isFinite:
            status = .failed
            failure = TrialRecord.divergedPrefix + "evaluation \(outcome.evaluation)"
        case .success(let outcome) where access(claimed.output.path, F_OK) != 0:
            status = .failed
            failure = "runner returned \(outcome.evaluation) without writing its checkpoint \(claimed.output.path)"
        case .success(let outcome):
            evaluation = outcome.evaluation
        case .failure(let error) where TrialRunnerError.isDivergence(error):
            // A program's NaN objective is a divergence, as a runner's NaN evaluation is, not a runner error.
            status = .failed
            failure = TrialRecord.divergedPrefix + "\(error)"
        case .failure(let error):
            status = .failed
            failure = "runner error: \(runnerErrorText(error))"
        }
        // A parent whose checkpoint is gone or unreadable is retired, so the
        // refill (and every later selection) picks another.
        var retirement: (id: Int, reason: String)?
        if status == .failed, claimed.parentRetired == nil, let pid = claimed.spec.parentID, let parent = claimed.parent {
            let runPrefix = checkpoints.runDirectory.path + "/"
            let name = parent.path.hasPrefix(runPrefix) ? String(parent.path.dropFirst(runPrefix.count)) : parent.path
            if access(parent.path, F_OK) != 0 {
                retirement = (pid, "retired: its checkpoint \(name) is missing")
            } else if case .failure(let error) = result, let reason = TrialRunnerError.parentRetirement(error) {
                retirement = (pid, "retired: \(reason)")
            }
        }
        let relativeOutput = checkpoints.relativePath(trialID: claimed.spec.id, attempt: claimed.attempt)
        let controller = self.controller
        let receipt: ReportReceipt = try store.withDecision(runID: run.id) { tx in
            // Read in the transaction, so a run of it again after an outage has the time it commits at (the next
            // claim's lease had ended before it was written: found by a helper).
            let now = given ?? store.now()
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
            if let retirement { try tx.retire(trialID: retirement.id, reason: retirement.reason) }
            var state = try tx.state()
            var updated = current
            updated.status = status
            updated.evaluation = evaluation
            updated.failure = failure
            var decision = PBTController.Decision()
            if try controller.mayDecide(after: updated, state: state, finishedInGeneration: { try tx.finishedCount(generation: updated.generation) }) {
                let window = controller.window(for: updated)
                var population = try tx.trials(inGenerations: window)
                if status == .failed, let pid = updated.parentID, !population.contains(where: { $0.id == pid }),
                   let parent = try tx.trial(id: pid) {
                    population.append(parent)
                }
                decision = controller.decide(after: updated, population: population,
                                             selections: try controller.needsSelections ? tx.selections(initiatorGenerations: window) : [],
                                             state: &state)
            }
            try tx.insert(decision.newTrials, createdAt: now)
            try tx.insert(decision.selections)

            let pending = try tx.pendingGenerationsAndParents()
            state.done = pending.minGeneration == nil
            let floor = controller.retentionFloor(
                minPendingGeneration: pending.minGeneration,
                latestFinishedGeneration: state.done ? try tx.latestFinishedGeneration() : 0)
            let released = try tx.releasableCheckpoints(belowGeneration: floor).filter { !pending.parentIDs.contains($0.id) }
            try tx.releaseCheckpoints(released.map(\.id))
            // A retired parent's files go once no pending trial names it: at the
            // report of its last child, whenever that child was claimed (found by
            // helpers: they stayed until a resume's sweep, beyond the bound).
            var deleted = released.map(\.path)
            if let pid = claimed.spec.parentID, !pending.parentIDs.contains(pid), let parent = try tx.trial(id: pid),
               parent.isRetired, let path = parent.checkpointPath {
                deleted.append(path)
            }
            try tx.setState(state)
            return ReportReceipt(accepted: true, status: status, failure: failure, newTrialIDs: decision.newTrials.map(\.id),
                                 releasedCheckpoints: deleted, runDone: state.done, next: try next(state))
        }
        let remove = remove ?? { CheckpointDirectory.removeItem(atPath: $0) }
        if !receipt.accepted || status == .failed { remove(claimed.output.path) }
        for path in receipt.releasedCheckpoints { remove(checkpoints.ref(relativePath: path).path) }
        return receipt
    }

    /// Single-process resume: re-queues trials left running by a dead
    /// process and deletes checkpoint files no live trial references
    /// (half-written temporaries, outputs of interrupted attempts, files
    /// released just before a crash). Call only while holding the run
    /// directory's lock, before starting workers.
    /// Only this run's own files are candidates (`CheckpointDirectory.sweep`),
    /// and only in a directory that is this run's: it is claimed first
    /// (`RunMarker.claim`), which throws, before anything changes, for a
    /// directory of another run or with files of no known run.
    ///
    /// `isAlive` tells a worker that still runs (e.g. a `pbtwave worker`
    /// on the same SQLite store, `DriverOptions.isLiveLocalWorker`): its
    /// trials are left to it, and while any is, nothing is swept (its
    /// output may be half-written).
    /// `notice` hears of a wait for leftover programs to stop.
    public func recoverAfterCrash(isAlive: (String) -> Bool = { _ in false }, notice: ((String) -> Void)? = nil)
        throws -> (requeued: Int, filesRemoved: Int, programsStopped: Int) {
        let trials = try store.trials(runID: run.id)
        try RunMarker.claim(checkpoints.runDirectory, for: run, trials: trials)
        let running = trials.filter { $0.status == .running }
        let orphans = running.filter { !($0.workerID.map(isAlive) ?? false) }
        // Training programs a killed process left running are stopped first: their trials run again.
        // While other workers run trials, only the orphans' programs (found by a user: with a worker
        // attached, a killed pbt's program trained on beside its trial's new attempt).
        let stopped = LeftoverPrograms.stop(in: checkpoints.directory.path, only: orphans.count == running.count ? nil
            : Set(orphans.map { URL(fileURLWithPath: checkpoints.relativePath(trialID: $0.id, attempt: $0.attempt)).lastPathComponent }),
            waiting: notice)
        var requeued = 0
        for t in orphans where try store.releaseClaim(runID: run.id, trialID: t.id, attempt: t.attempt, workerID: t.workerID ?? "") {
            requeued += 1
        }
        return (requeued, orphans.count == running.count ? try sweep() : 0, stopped)
    }

    /// Deletes this run's checkpoint files that no live trial references
    /// (see `recoverAfterCrash`); returns how many were deleted.
    public func sweep() throws -> Int {
        let trials = try store.trials(runID: run.id)
        let live = Set(trials.compactMap { $0.checkpointLive ? $0.checkpointPath : nil })
        return checkpoints.sweep(keeping: live, trials: trials)
    }

    /// The end of a complete run's sweep (`pbtwave worker`, and `pbt` on a
    /// shared store): first the training programs of killed workers on this
    /// machine that still run (when no trial runs any more, every program
    /// recorded in the run's folder is one whose trial was run again
    /// elsewhere; a helper found a killed worker's programs running on while
    /// the sweep deleted their folders), then `sweep()`.
    public func sweepAfterTheEnd() throws -> (filesRemoved: Int, programsStopped: Int) {
        let running = try store.trials(runID: run.id).contains { !$0.status.isTerminal }
        let stopped = running ? 0 : LeftoverPrograms.stop(in: checkpoints.directory.path)
        return (try sweep(), stopped)
    }
}

/// The checkpoints of one run: `RUN_DIR/checkpoints/<run>/trial-<id>.<attempt>.ckpt`,
/// where `<run>` (`namespace`) is the run's name made file-safe plus a hash
/// of its name and creation time, so two runs never share a file even in one
/// directory. A trial's output may be a file or a folder (a runner that
/// writes several files); removing and sweeping handle both. Paths are
/// stored relative to the run directory, so a run directory (or a shared
/// mount of it) can live anywhere, and runs from before namespaces (flat
/// `checkpoints/trial-…` files) still read theirs.
public struct CheckpointDirectory: Sendable, Hashable {
    public static let folderName = "checkpoints"
    public let runDirectory: URL
    /// This run's folder, relative to the run directory (`checkpoints/<run>`).
    public let namespace: String
    /// `runDirectory.path` with a trailing slash, for cheap path building.
    private let prefix: String
    public var directory: URL { runDirectory.appendingPathComponent(namespace, isDirectory: true) }

    public init(runDirectory: URL, run: RunRecord) throws {
        self.runDirectory = runDirectory.standardizedFileURL
        prefix = self.runDirectory.path.hasSuffix("/") ? self.runDirectory.path : self.runDirectory.path + "/"
        namespace = Self.namespace(for: RunIdentity(run))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// `checkpoints/<name>-<8 hex digits>`: the name keeps only letters,
    /// digits, '-' and '_' (at most 40), the digits hash the full name and
    /// creation time.
    public static func namespace(for run: RunIdentity) -> String {
        let safe = String(run.name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "_" }.prefix(40))
        let digest = Array("\(run.name)\n\(run.createdAt)".utf8).withUnsafeBytes { SHA256Digest.digest(of: $0) }
        return "\(folderName)/\(safe)-\(SHA256Digest.hexString(Array(digest.prefix(4))))"
    }

    public func relativePath(trialID: Int, attempt: Int) -> String { "\(namespace)/trial-\(trialID).\(attempt).ckpt" }

    public func ref(trialID: Int, attempt: Int) -> CheckpointRef { ref(relativePath: relativePath(trialID: trialID, attempt: attempt)) }

    public func ref(relativePath: String) -> CheckpointRef { CheckpointRef(path: prefix + relativePath) }

    /// Every entry of `RUN_DIR/checkpoints/` (relative to the run
    /// directory), with run folders replaced by their contents: an empty
    /// folder holds nothing to protect. (A flat `trial-…` entry stays one
    /// entry, file or folder.)
    static func entries(in runDirectory: URL) -> [String] {
        let fm = FileManager.default
        let top = runDirectory.appendingPathComponent(folderName).path
        var entries: [String] = []
        for name in ((try? fm.contentsOfDirectory(atPath: top)) ?? []).sorted() {
            var isDirectory: ObjCBool = false
            let path = top + "/" + name
            if fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue, !name.hasPrefix("trial-") {
                entries += ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(folderName)/\(name)/\($0)" }
            } else {
                entries.append("\(folderName)/\(name)")
            }
        }
        return entries
    }

    /// What `entry` is to a run, by its name: inside `run`'s namespace, a
    /// flat file of the kind runs wrote before namespaces
    /// (`checkpoints/[.]trial-<id>.<attempt>.ckpt…`), or neither.
    static func classify(_ entry: String, namespace: String) -> EntryKind {
        if entry == namespace || entry.hasPrefix(namespace + "/") { return .own }
        guard entry.hasPrefix(folderName + "/") else { return .foreign }
        var name = entry.dropFirst(folderName.count + 1)
        if name.hasPrefix(".") { name = name.dropFirst() }
        guard name.hasPrefix("trial-") else { return .foreign }
        let parts = name.dropFirst("trial-".count).split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("ckpt"), let id = Int(parts[0]), let attempt = Int(parts[1]) else { return .foreign }
        return .legacy(trialID: id, attempt: attempt)
    }

    enum EntryKind: Equatable {
        case own, foreign
        case legacy(trialID: Int, attempt: Int)
    }

    /// Whether `entry` belongs to the run whose trials are `trials` (as
    /// the store has them): its namespace, or a flat file of one of its
    /// attempts (a trial with at least that many attempts), when the
    /// directory also holds a checkpoint the store recorded (so a store
    /// that merely has a run of the same name claims nothing).
    static func belongs(_ entry: String, namespace: String, trials: [TrialRecord], recordedPresent: Bool) -> Bool {
        switch classify(entry, namespace: namespace) {
        case .own: return true
        case .foreign: return false
        case .legacy(let id, let attempt):
            return recordedPresent && trials.contains { $0.id == id && $0.attempt >= attempt }
        }
    }

    /// Deletes this run's files whose relative path is not in `live`: in
    /// its namespace, and flat files of its own attempts (runs from before
    /// namespaces). Nothing else in the directory is touched. Returns how
    /// many entries were deleted.
    @discardableResult
    public func sweep(keeping live: Set<String>, trials: [TrialRecord]) -> Int {
        let present = Set(Self.entries(in: runDirectory))
        let recordedPresent = trials.contains { $0.checkpointPath.map(present.contains) == true }
        let legacy = present.filter {
            Self.classify($0, namespace: namespace) != .own && Self.belongs($0, namespace: namespace, trials: trials, recordedPresent: recordedPresent)
        }
        var removed = 0
        for entry in files().sorted() + legacy.sorted() where !live.contains(entry) {
            if Self.removeItem(atPath: prefix + entry) { removed += 1 }
        }
        return removed
    }

    /// Relative paths of the entries in this run's namespace.
    public func files() -> Set<String> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).map { "\(namespace)/\($0)" })
    }
}
