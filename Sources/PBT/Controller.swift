import PBTSeededRNG

/// PBT's decisions as a pure state machine: no threads, no I/O, no clock.
/// Given the trials so far and a `ControllerState` (which holds the seeded
/// random generator), it says which trials to create next. The store calls
/// it inside the transaction that records a trial's result, so each decision
/// is made exactly once and committed before any worker acts on it. Its
/// semantics (generation 0, asynchronous and budget mode, selection,
/// explore, failures, the budget) are stated in full in PBT.docc/PBT.md,
/// "The algorithm, precisely".
public struct PBTController: Sendable {
    public let settings: PBTSettings
    /// Explore: how a child's hyperparameters are picked from its parent's.
    public let explorer: any ExploreStrategy

    /// Precondition: `explorer` implements `settings.explore` (the default,
    /// `Perturbation`, implements `.perturb`; `ExploreStrategies.strategy(for:)`
    /// finds the right one).
    public init(settings: PBTSettings, explorer: any ExploreStrategy = Perturbation()) {
        precondition(explorer.method == settings.explore,
                     "the settings explore with \(settings.explore), the controller was given \(explorer.method)")
        self.settings = settings
        self.explorer = explorer
    }

    /// What one decision adds to the store.
    public struct Decision: Sendable, Hashable {
        public var newTrials: [TrialSpec] = []
        public var selections: [SelectionRecord] = []
        public init() {}
    }

    public var initialState: ControllerState { ControllerState(rng: settings.initialControllerRNG) }

    /// Generation 0: `min(population, trialBudget)` prior draws.
    public func start(_ state: inout ControllerState) -> [TrialSpec] {
        var trials: [TrialSpec] = []
        for _ in 0..<settings.population {
            let hp = settings.searchSpace.sample(using: &state.rng)
            guard let t = plan(generation: 0, parent: nil, hyperparameters: hp, operations: "", refillOf: nil, state: &state) else { break }
            trials.append(t)
        }
        if trials.isEmpty { state.done = true }
        return trials
    }

    /// The generations `decide(after:population:state:)` needs to see for a
    /// decision about `trial` (every trial in them, of any status; more is
    /// harmless): the selection pool is the last `opponentGenerations`
    /// generations up to the trial's own, and a refill needs the failed
    /// trial's parent, which can be up to `opponentGenerations` back (a
    /// winning opponent from the generation before the initiator's). Later
    /// generations (lineages that ran ahead, in asynchronous mode) are never
    /// needed, so a decision reads O(opponentGenerations × P) trials.
    public func window(for trial: TrialRecord) -> ClosedRange<Int> {
        max(0, trial.generation - settings.opponentGenerations)...trial.generation
    }

    /// Whether `decide(after:population:selections:state:)` can create
    /// anything after `trial`: in budget mode a finished trial reproduces
    /// nothing until its generation's last result is in
    /// (`finishedInGeneration`: how many of its generation are finished, it
    /// included), so the store reads the window only then, and a report
    /// costs the same at any population.
    public func mayDecide(after trial: TrialRecord, state: ControllerState,
                          finishedInGeneration: () throws -> Int) rethrows -> Bool {
        guard settings.isGenerational, trial.status == .finished else { return true }
        guard trial.generation > state.reproducedThrough else { return false }
        return try finishedInGeneration() >= settings.population
    }

    /// Whether `decide` needs the window's selections (asynchronous
    /// truncation; the other decisions read none, so none are fetched).
    public var needsSelections: Bool {
        if case .truncation = settings.selection { !settings.isGenerational } else { false }
    }

    /// The decision after `trial` became finished or failed. `population`
    /// holds every trial of `window(for: trial)`, including `trial`
    /// with its new status, and a failed trial's parent, which can lie
    /// below the window (an asynchronous truncation's donor is a slot's
    /// latest result, up to `opponentGenerations` below the initiator's);
    /// its order does not matter.
    /// `selections`: those the window's trials initiated (asynchronous
    /// truncation ranks each slot's latest result, and a trial whose child
    /// finished is no longer its slot's latest); empty: none.
    public func decide(after trial: TrialRecord, population: [TrialRecord], selections: [SelectionRecord] = [],
                       state: inout ControllerState) -> Decision {
        precondition(trial.status.isTerminal, "decide(after:) needs a finished or failed trial")
        var decision = Decision()
        // Sorted once: a generation's end reproduces P initiators against it.
        let population = population.sorted { $0.id < $1.id }

        if trial.status == .failed {
            let parent = trial.parentID.flatMap { pid in population.first { $0.id == pid } }
            if let refill = self.refill(trial, parent: parent, population: population, state: &state) {
                decision.newTrials.append(refill)
            }
            return decision
        }

        let initiators: [TrialRecord]
        if settings.isGenerational {
            let g = trial.generation
            let finishedInG = population.filter { $0.generation == g && $0.status == .finished }.sorted { $0.id < $1.id }
            guard g > state.reproducedThrough, finishedInG.count >= settings.population else { return decision }
            state.reproducedThrough = g
            initiators = finishedInG
        } else {
            initiators = [trial]
        }
        // The candidates depend only on the initiator's generation: found
        // once for a generation's P initiators, not P times.
        var pools: [Int: [TrialRecord]] = [:]
        for initiator in initiators {
            guard state.trialsCreated < settings.trialBudget else { break }
            var pool: [TrialRecord]?
            if !needsSelections {
                pool = pools[initiator.generation] ?? candidates(for: initiator, in: population)
                pools[initiator.generation] = pool
            }
            reproduce(initiator, population: population, selections: selections, pool: pool, state: &state, into: &decision)
        }
        return decision
    }

    /// The decision that goes on with a complete run after its budget was
    /// raised (`settings` holds the larger budget, `trials` every trial of
    /// the run, `initiators` the ids that already initiated a selection):
    /// what the decisions the old budget cut short would have created. In id
    /// order, each failed trial that no refill replaced is refilled, then
    /// each finished trial that never initiated a selection — in budget mode
    /// only those of generations already reproduced (`reproducedThrough`;
    /// the rest wait for their generation to fill) — reproduces as
    /// `decide(after:population:state:)` would have, against its window,
    /// meeting no opponent whose checkpoint was released (`checkpointLive`:
    /// the end of a run keeps only its final window). In budget mode with a whole number of generations
    /// (not in asynchronous mode, whose cut trials can lie below that window)
    /// a run raised from g to g' generations thus goes on exactly as one
    /// begun with g' (the cut decisions drew no random numbers).
    public func extend(trials: [TrialRecord], selections: [SelectionRecord], state: inout ControllerState) -> Decision {
        var decision = Decision()
        let initiators = Set(selections.map(\.initiatorID))
        let sorted = trials.sorted { $0.id < $1.id }
        let refilled = Set(sorted.compactMap(\.refillOf))
        for trial in sorted where state.trialsCreated < settings.trialBudget {
            let window = self.window(for: trial)
            let population = sorted.filter { window.contains($0.generation) }
            if trial.status == .failed, !refilled.contains(trial.id) {
                let parent = trial.parentID.flatMap { pid in sorted.first { $0.id == pid } }
                if let refill = refill(trial, parent: parent, population: population, state: &state) {
                    decision.newTrials.append(refill)
                }
            } else if trial.status == .finished, !initiators.contains(trial.id),
                      !settings.isGenerational || trial.generation <= state.reproducedThrough {
                reproduce(trial, population: population, selections: selections + decision.selections, liveOpponents: true, state: &state,
                          into: &decision)
            }
        }
        return decision
    }

    /// The generation below which finished trials can no longer become a
    /// parent: future initiators are pending trials (or their descendants) of
    /// generation ≥ `minPendingGeneration`, and they draw from
    /// `opponentGenerations` generations. When nothing is pending, the final
    /// window is kept. Whatever their generation, parents of pending trials
    /// and trials that have not reproduced yet (the final population, in
    /// the end) must be kept as well.
    public func retentionFloor(minPendingGeneration: Int?, latestFinishedGeneration: Int) -> Int {
        let anchor = minPendingGeneration ?? latestFinishedGeneration
        return anchor - settings.opponentGenerations + 1
    }

    // MARK: - Selection

    /// Finished trials an initiator may meet or be ranked against, in id order.
    func candidates(for initiator: TrialRecord, in population: [TrialRecord]) -> [TrialRecord] {
        let low = initiator.generation - settings.opponentGenerations + 1
        return population
            .filter { $0.status == .finished && !$0.isRetired && $0.generation >= low && $0.generation <= initiator.generation }
            .sorted { $0.id < $1.id }
    }

    /// The members an asynchronous truncation ranks `initiator` with: each
    /// slot's latest finished result in the window (`Lineage.finalPopulation`
    /// of its trials and `selections`: a trial whose child finished has been
    /// replaced there), live and of no later generation than the initiator's,
    /// itself included. (Ranked against its own generation only, the first
    /// trial of each generation to report was never in the bottom: with
    /// P = W and `deterministic`, always the same member, which no exploit
    /// ever replaced; found by a helper.)
    func currentPopulation(for initiator: TrialRecord, in population: [TrialRecord], selections: [SelectionRecord]) -> [TrialRecord] {
        Lineage.finalPopulation(population, selections)
            .filter { !$0.isRetired && $0.generation <= initiator.generation }
            .sorted { $0.id < $1.id }
    }

    /// `population` in id order. `pool`: the initiator's candidates, if
    /// already found. `liveOpponents`: only trials whose checkpoint is live
    /// may be met (a run's decisions never see others; a raised budget's may).
    private func reproduce(_ initiator: TrialRecord, population: [TrialRecord], selections: [SelectionRecord], pool: [TrialRecord]? = nil,
                           liveOpponents: Bool = false, state: inout ControllerState, into decision: inout Decision) {
        var pool = pool ?? (needsSelections ? currentPopulation(for: initiator, in: population, selections: selections)
                                            : candidates(for: initiator, in: population))
        if liveOpponents { pool = pool.filter { $0.checkpointLive || $0.id == initiator.id } }
        let loss = { (t: TrialRecord) in t.evaluation ?? .infinity }
        // What happens to the initiator: the child's parent and
        // hyperparameters, and the selection record's fields.
        let pick: (kind: SelectionKind, parent: TrialRecord, hp: Hyperparameters, ops: String,
                   opponent: Int?, winner: Int, loser: Int?)
        switch settings.selection {
        case .tournament:
            let opponents = pool.filter { $0.id != initiator.id }
            let opponent = opponents.isEmpty ? nil : opponents[state.rng.uniformIndex(opponents.count)]
            // Lower loss wins; the initiator keeps a tie.
            let winner = opponent.map { loss($0) < loss(initiator) ? $0 : initiator } ?? initiator
            let loser = opponent.map { winner.id == initiator.id ? $0 : initiator }
            let (hp, ops) = explore(from: winner, population, decision, &state)
            pick = (.tournament, winner, hp, ops.logText, opponent?.id, winner.id, loser?.id)

        case .truncation(let fraction):
            // Ranked by (loss, id) as indices into the pool: cheaper to move than records.
            let keys = pool.map { (loss($0), $0.id) }
            let ranked = pool.indices.sorted { keys[$0] < keys[$1] }
            let n = min(Int((Double(ranked.count) * fraction).rounded(.up)), ranked.count / 2)
            let inBottom = n > 0 && ranked.suffix(n).contains { pool[$0].id == initiator.id }
            // The donor gives its checkpoint. A slot's latest result stays
            // ranked while its child runs, also once exploited, when its
            // checkpoint may be released (its slot copied another's): a
            // draw of such a trial falls to the next live one of the top n,
            // else the best live one above the bottom (found by a helper:
            // a released donor stopped the run, every resume alike).
            func donor() -> TrialRecord? {
                let drawn = state.rng.uniformIndex(n)
                return (ranked[drawn..<n] + ranked[0..<drawn] + ranked[n..<(ranked.count - n)])
                    .lazy.map { pool[$0] }.first { $0.checkpointLive && $0.id != initiator.id }
            }
            if inBottom, let donor = donor() {
                let (hp, ops) = explore(from: donor, population, decision, &state)
                pick = (.exploit, donor, hp, ops.logText, donor.id, donor.id, initiator.id)
            } else {
                pick = (.continue, initiator, initiator.hyperparameters, "", nil, initiator.id, nil)
            }

        case .independent:
            // Each model its equal share: a lineage goes on while its next generation lies within budget / P (found by
            // a helper: asynchronous random search gave the lineage whose trials finished first the most steps, 3.6×
            // another's, and which one that was changed from run to run).
            guard initiator.generation + 1 < settings.trialBudget / max(settings.population, 1) else { return }
            pick = (.continue, initiator, initiator.hyperparameters, "", nil, initiator.id, nil)
        }
        guard let child = plan(generation: initiator.generation + 1, parent: pick.parent, hyperparameters: pick.hp,
                               operations: pick.ops, refillOf: nil, state: &state) else { return }
        decision.newTrials.append(child)
        decision.selections.append(select(pick.kind, initiator, pick.opponent, pick.winner, pick.loser, child.id, &state))
    }

    /// The explore strategy's child of `parent`, with the trials this
    /// decision sees (`population`, in id order) and the children it planned so far.
    private func explore(
        from parent: TrialRecord, _ population: [TrialRecord], _ decision: Decision, _ state: inout ControllerState
    ) -> (Hyperparameters, [MutationOperation]) {
        let request = ExploreRequest(parent: parent, population: population,
                                     planned: decision.newTrials.map(\.hyperparameters), settings: settings)
        return explorer.explore(request, using: &state.rng)
    }

    private func select(
        _ kind: SelectionKind, _ initiator: TrialRecord, _ opponent: Int?, _ winner: Int, _ loser: Int?, _ child: Int,
        _ state: inout ControllerState
    ) -> SelectionRecord {
        state.selectionsMade += 1
        return SelectionRecord(id: state.selectionsMade, kind: kind, generation: initiator.generation, initiatorID: initiator.id,
                               opponentID: opponent, winnerID: winner, loserID: loser, childID: child)
    }

    /// The replacement for a failed trial: same generation and parent, newly
    /// explored hyperparameters (a prior draw in generation 0), so a
    /// deterministic runner does not just diverge again.
    private func refill(_ failed: TrialRecord, parent: TrialRecord?, population: [TrialRecord], state: inout ControllerState) -> TrialSpec? {
        guard state.trialsCreated < settings.trialBudget else { return nil }
        if settings.selection == .independent {
            // Random search: a member that failed otherwise than by diverging (a crash,
            // a timeout) goes on from where it was, with its own value.
            if let parent, !parent.isRetired, !failed.diverged {
                return plan(generation: failed.generation, parent: parent, hyperparameters: failed.hyperparameters, operations: "retry",
                            refillOf: failed.id, state: &state)
            }
            // A diverged configuration is dropped, and a new draw from the prior
            // starts from scratch in its place.
            let hp = settings.searchSpace.sample(using: &state.rng)
            return plan(generation: failed.generation, parent: nil, hyperparameters: hp, operations: "resample", refillOf: failed.id,
                        state: &state)
        }
        var parent = parent
        if let retired = parent, retired.isRetired || !retired.checkpointLive {
            // The parent's checkpoint cannot be read (or was released: a
            // raised budget refills a failure the old one left, whose
            // parent's checkpoint went at the end): a trial of its window
            // whose checkpoint is still live (not released: the window can
            // reach below the retention floor), drawn at random, takes its
            // place; if none is left there, a live trial of an earlier
            // generation than the failed one's (in the population the
            // decision sees); with none at all, the failed trial is not replaced.
            var pool = candidates(for: retired, in: population).filter(\.checkpointLive)
            if pool.isEmpty {
                pool = population.filter { $0.status == .finished && !$0.isRetired && $0.checkpointLive && $0.generation < failed.generation }
                    .sorted { $0.id < $1.id }
            }
            guard !pool.isEmpty else { return nil }
            parent = pool[state.rng.uniformIndex(pool.count)]
        }
        if let parent {
            let (hp, ops) = explore(from: parent, population, Decision(), &state)
            return plan(generation: failed.generation, parent: parent, hyperparameters: hp, operations: ops.logText,
                        refillOf: failed.id, state: &state)
        }
        precondition(failed.parentID == nil, "decide(after:) needs the failed trial's parent in the population")
        let hp = settings.searchSpace.sample(using: &state.rng)
        return plan(generation: failed.generation, parent: nil, hyperparameters: hp, operations: "", refillOf: failed.id, state: &state)
    }

    private func plan(
        generation: Int, parent: TrialRecord?, hyperparameters: Hyperparameters, operations: String, refillOf: Int?,
        state: inout ControllerState
    ) -> TrialSpec? {
        guard state.trialsCreated < settings.trialBudget else { return nil }
        state.trialsCreated += 1
        let id = state.trialsCreated
        return TrialSpec(
            id: id, generation: generation, parentID: parent?.id, hyperparameters: hyperparameters,
            startStep: parent?.endStep ?? 0, steps: settings.trialSteps, seed: settings.trialSeed(id),
            operations: operations, refillOf: refillOf)
    }
}
