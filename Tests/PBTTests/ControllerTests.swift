import Foundation
import PBTSeededRNG
import Testing

@testable import PBT
import PBTExamples

/// The pure controller, with hand-built populations and a simulated store:
/// no threads, no SQLite.
@Suite struct ControllerSelectionTests {
    /// The lr a child inherited, read back from its operation log ("lr*1.2 A->B" or "lr~prior A->B").
    func inheritedLR(_ child: TrialSpec) -> Double? {
        guard let arrow = child.operations.range(of: "->"), let space = child.operations[..<arrow.lowerBound].lastIndex(of: " ") else { return nil }
        return Double(child.operations[child.operations.index(after: space)..<arrow.lowerBound])
    }

    @Test func tournamentWinnerIsTheLowerLossAndBecomesTheParent() {
        let controller = PBTController(settings: testSettings(population: 3, workers: 3))
        let population = [
            finishedTrial(1, generation: 0, loss: 0.5, lr: 1e-3),
            finishedTrial(2, generation: 0, loss: 0.1, lr: 2e-3),
            finishedTrial(3, generation: 0, loss: 0.9, lr: 3e-3),
        ]
        var opponentsSeen = Set<Int>()
        for seed in 0..<60 as Range<UInt64> {
            var state = ControllerState(rng: Xoshiro256(seed: seed), trialsCreated: 3)
            let d = controller.decide(after: population[0], population: population, state: &state)
            #expect(d.newTrials.count == 1)
            #expect(d.selections.count == 1)
            let s = d.selections[0], child = d.newTrials[0]
            #expect(s.kind == .tournament)
            #expect(s.initiatorID == 1)
            let opponent = try! #require(s.opponentID)
            opponentsSeen.insert(opponent)
            // Trial 2 (0.1) beats the initiator (0.5), which beats trial 3 (0.9).
            let (winner, loser) = opponent == 2 ? (2, 1) : (1, 3)
            #expect(s.winnerID == winner)
            #expect(s.loserID == loser)
            #expect(s.childID == child.id)
            #expect(child.id == 4)
            #expect(child.parentID == winner)
            #expect(child.generation == 1)
            #expect(child.startStep == population[winner - 1].endStep)
            #expect(inheritedLR(child) == population[winner - 1].hyperparameters["lr"]!.number)
            #expect(child.seed == controller.settings.trialSeed(4))
        }
        #expect(opponentsSeen == [2, 3], "opponents are drawn uniformly from the eligible pool")
    }

    @Test func initiatorKeepsATie() {
        let controller = PBTController(settings: testSettings(population: 2, workers: 2))
        let population = [finishedTrial(1, generation: 0, loss: 0.5), finishedTrial(2, generation: 0, loss: 0.5)]
        var state = controller.initialState
        state.trialsCreated = 2
        let s = controller.decide(after: population[1], population: population, state: &state).selections[0]
        #expect(s.winnerID == 2)
        #expect(s.loserID == 1)
    }

    @Test func opponentsComeOnlyFromFinishedTrialsOfTheWindow() {
        let population = [
            finishedTrial(1, generation: 0, loss: 0.01),  // best, but too old for an initiator of generation 2
            finishedTrial(2, generation: 1, loss: nil),  // failed
            finishedTrial(3, generation: 1, loss: 0.5),
            finishedTrial(4, generation: 1, loss: nil, status: .running),
            finishedTrial(5, generation: 2, loss: 0.7),
            finishedTrial(6, generation: 2, loss: nil, status: .queued),
        ]
        for seed in 0..<30 as Range<UInt64> {
            let two = PBTController(settings: testSettings(population: 4, workers: 4, opponentGenerations: 2))
            var state = ControllerState(rng: Xoshiro256(seed: seed), trialsCreated: 6)
            let s = two.decide(after: population[4], population: population, state: &state).selections[0]
            #expect(s.opponentID == 3)
            #expect(s.winnerID == 3)

            // Window of one generation: no eligible opponent, the initiator wins by walkover.
            let one = PBTController(settings: testSettings(population: 4, workers: 4, opponentGenerations: 1))
            var state1 = ControllerState(rng: Xoshiro256(seed: seed), trialsCreated: 6)
            let d1 = one.decide(after: population[4], population: population, state: &state1)
            #expect(d1.selections[0].opponentID == nil)
            #expect(d1.selections[0].winnerID == 5)
            #expect(d1.selections[0].loserID == nil)
            #expect(d1.newTrials[0].parentID == 5)
        }
    }

    @Test func truncationBottomCopiesTopOthersContinue() throws {
        let controller = PBTController(settings: testSettings(population: 8, workers: 8, selection: .truncation(fraction: 0.25)))
        // Generation 3, losses rise with the id: top = {1, 2}, bottom = {7, 8}.
        let population = (1...8).map { finishedTrial($0, generation: 3, loss: Double($0), lr: Double($0) * 1e-3) }
        var donors = Set<Int>()
        for seed in 0..<40 as Range<UInt64> {
            for initiator in population {
                var state = ControllerState(rng: Xoshiro256(seed: seed), trialsCreated: 8)
                let d = controller.decide(after: initiator, population: population, state: &state)
                let s = d.selections[0], child = d.newTrials[0]
                #expect(child.generation == 4)
                if initiator.id >= 7 {
                    #expect(s.kind == .exploit)
                    #expect([1, 2].contains(s.winnerID))
                    #expect(s.loserID == initiator.id)
                    #expect(child.parentID == s.winnerID)
                    #expect(inheritedLR(child) == population[s.winnerID - 1].hyperparameters["lr"]!.number)
                    donors.insert(s.winnerID)
                } else {
                    #expect(s.kind == .continue)
                    #expect(child.parentID == initiator.id)
                    #expect(child.hyperparameters == initiator.hyperparameters)
                    #expect(child.operations.isEmpty)
                }
            }
        }
        #expect(donors == [1, 2])
    }

    /// Asynchronous mode (P = W): the first trial of a generation to report
    /// is ranked with every slot's latest result, not with its generation
    /// alone (where it was the only one, so never in the bottom: found by a
    /// helper, with `--deterministic` the same member was first every time
    /// and no exploit ever replaced it, the worst of the run).
    @Test func asynchronousTruncationRanksEachSlotsLatestResult() {
        // One generation back, truncation's default (`pbtwave pbt --selection truncation`).
        let controller = PBTController(settings: testSettings(population: 4, workers: 4, selection: .truncation(fraction: 0.25),
                                                              opponentGenerations: 1))
        // Generation 0 finished (losses 1…4); each continued into generation 1; #5 (from #1) reports first, the worst.
        var population = (1...4).map { finishedTrial($0, generation: 0, loss: Double($0)) }
        population.append(finishedTrial(5, generation: 1, loss: 10, parent: 1))
        population += (6...8).map { finishedTrial($0, generation: 1, loss: nil, parent: $0 - 4, status: .running) }
        let selections = (1...4).map { SelectionRecord(id: $0, kind: .continue, generation: 0, initiatorID: $0, opponentID: nil, winnerID: $0,
                                                       loserID: nil, childID: $0 + 4) }
        // Ranked with #2, #3, #4 (their children still run) and itself; #1 is replaced by #5.
        #expect(controller.currentPopulation(for: population[4], in: population, selections: selections).map(\.id) == [2, 3, 4, 5])
        for seed in 0..<20 as Range<UInt64> {
            var state = ControllerState(rng: Xoshiro256(seed: seed), trialsCreated: 8)
            let s = controller.decide(after: population[4], population: population, selections: selections, state: &state).selections[0]
            #expect(s.kind == .exploit && s.winnerID == 2 && s.loserID == 5, "\(s)")
        }
        // The best continues; in budget mode the pool stays the generation's own.
        var state = ControllerState(rng: Xoshiro256(seed: 1), trialsCreated: 8)
        var best = population
        best[4].evaluation = 0.5
        #expect(controller.decide(after: best[4], population: best, selections: selections, state: &state).selections[0].kind == .continue)
        let budget = PBTController(settings: testSettings(population: 4, workers: 2, selection: .truncation(fraction: 0.25),
                                                          opponentGenerations: 1))
        #expect(budget.candidates(for: population[4], in: population).map(\.id) == [5])
    }

    /// The same run as the helper's, on the simulated store: P = W = 4,
    /// results applied in id order, the loss a trial's own learning rate.
    /// Every seed now exploits (seeds 0, 2 and 4 of the helper's runs never
    /// did), and no member that starts worst stays in the final population.
    @Test func asynchronousTruncationExploitsInIdOrder() {
        let settings = testSettings(population: 4, workers: 4, budget: .generations(6), selection: .truncation(fraction: 0.25),
                                    opponentGenerations: 1)
        for seed in 0..<6 as Range<UInt64> {
            var s = settings
            s.seed = seed
            var sim = Simulation(s)
            while true {
                while sim.running.count < 4, sim.claim() != nil {}
                guard let next = sim.running.first else { break }
                sim.finish(next.id, loss: next.hyperparameters["lr"]!.number!)
            }
            let exploits = sim.selections.filter { $0.kind == .exploit }
            #expect(!exploits.isEmpty, "seed \(seed): no exploit in \(sim.selections.count) selections")
            let worstStart = sim.sorted.filter { $0.generation == 0 }.max { $0.evaluation! < $1.evaluation! }!
            let final = Lineage.finalPopulation(sim.sorted, sim.selections)
            #expect(!final.contains { $0.hyperparameters == worstStart.hyperparameters }, "seed \(seed): the worst start is still there")
        }
    }

    @Test func truncationQuantileIsCappedAtHalf() {
        let controller = PBTController(settings: testSettings(population: 3, workers: 3, selection: .truncation(fraction: 0.5)))
        let population = (1...3).map { finishedTrial($0, generation: 0, loss: Double($0)) }
        // ceil(3 × 0.5) = 2 is capped at 3 / 2 = 1: only the worst (3) copies only the best (1).
        for (initiator, kind) in [(0, SelectionKind.continue), (1, .continue), (2, .exploit)] {
            var state = controller.initialState
            state.trialsCreated = 3
            let s = controller.decide(after: population[initiator], population: population, state: &state).selections[0]
            #expect(s.kind == kind)
            if kind == .exploit { #expect(s.winnerID == 1) }
        }
    }
}

@Suite struct ControllerScheduleTests {
    /// Budget mode, P = 20, W = 5: generation g+1 appears only when 20 trials
    /// of generation g have finished, all 20 at once, one per initiator.
    @Test func budgetModeGenerationBoundaries() {
        let settings = testSettings(population: 20, workers: 5, budget: .generations(6))
        var sim = Simulation(settings)
        var losses = Xoshiro256(seed: 8)
        sim.runToCompletion(workers: 5, orderSeed: 2) { _ in losses.nextUnitDouble() }
        let trials = sim.sorted
        #expect(trials.count == 120)
        #expect(sim.state.done)
        for g in 0..<6 {
            let gen = trials.filter { $0.generation == g }
            #expect(gen.count == 20, "generation \(g)")
            #expect(gen.allSatisfy { $0.status == .finished })
            if g > 0 {
                for t in gen {
                    #expect(sim.finishedCountsAtCreation[t.id]![g - 1] == 20, "trial \(t.id) created before generation \(g - 1) was complete")
                    #expect(sim.finishedCountsAtCreation[t.id]![g, default: 0] == 0)
                }
                let initiators = sim.selections.filter { $0.generation == g - 1 }.map(\.initiatorID).sorted()
                #expect(initiators == trials.filter { $0.generation == g - 1 }.map(\.id), "each trial of generation \(g - 1) initiates once")
            }
        }
        // Generation 0 is 20 prior draws from scratch.
        #expect(trials.prefix(20).allSatisfy { $0.parentID == nil && $0.startStep == 0 && settings.searchSpace.contains($0.hyperparameters) })
        // Parents come from the initiator's generation or the one before.
        for s in sim.selections { #expect(s.generation - sim.trials[s.winnerID]!.generation <= 1) }
    }

    /// P = W: each finished trial reproduces at once, into the next generation.
    @Test func asynchronousModeReproducesImmediately() {
        var sim = Simulation(testSettings(population: 5, workers: 5, budget: .generations(8)))
        var losses = Xoshiro256(seed: 4)
        var order = Xoshiro256(seed: 5)
        while true {
            while sim.claim() != nil {}
            let running = sim.running
            guard !running.isEmpty else { break }
            let t = running[order.uniformIndex(running.count)]
            let before = sim.state.trialsCreated
            let d = sim.finish(t.id, loss: losses.nextUnitDouble())
            if before < 40 {
                #expect(d.newTrials.count == 1)
                #expect(d.newTrials[0].generation == t.generation + 1)
                #expect(d.selections.map(\.initiatorID) == [t.id])
            } else {
                #expect(d.newTrials.isEmpty, "the budget is used up")
            }
        }
        #expect(sim.trials.count == 40)
        #expect(sim.state.done)
    }

    @Test(arguments: [(20, 5), (5, 5)])
    func failedTrialsAreNeverParentsAndAreRefilled(population: Int, workers: Int) {
        let settings = testSettings(population: population, workers: workers, budget: .totalSteps(10 * population * 12))
        var sim = Simulation(settings)
        var draw = Xoshiro256(seed: 13)
        sim.runToCompletion(workers: workers, orderSeed: 1) { _ in
            let u = draw.nextUnitDouble()
            return u < 0.2 ? (u < 0.1 ? .nan : nil) : u
        }
        let trials = sim.sorted
        let failed = Set(trials.filter { $0.status == .failed }.map(\.id))
        #expect(failed.count > 5)
        #expect(trials.count == settings.trialBudget, "refills count against the budget")
        #expect(trials.allSatisfy { $0.status.isTerminal })
        for t in trials {
            if let p = t.parentID { #expect(!failed.contains(p), "trial \(t.id) has failed parent \(p)") }
        }
        for s in sim.selections {
            #expect(!failed.contains(s.winnerID))
            #expect(!failed.contains(s.initiatorID))
            if let o = s.opponentID { #expect(!failed.contains(o)) }
        }
        let refills = trials.filter { $0.refillOf != nil }
        for r in refills {
            let original = sim.trials[r.refillOf!]!
            #expect(original.status == .failed)
            #expect(r.generation == original.generation)
            #expect(r.parentID == original.parentID)
        }
        // Every failure that happened while budget was left got a refill.
        #expect(!sim.failedWithBudgetLeft.isEmpty)
        for id in sim.failedWithBudgetLeft {
            #expect(refills.contains { $0.refillOf == id }, "failed trial \(id) was not refilled")
        }
        #expect(refills.count == sim.failedWithBudgetLeft.count)
    }

    @Test func budgetIsRespectedWhenStepsDoNotDivideEvenly() {
        var sim = Simulation(testSettings(population: 4, workers: 2, trialSteps: 10, budget: .totalSteps(95)))
        sim.runToCompletion(workers: 2, orderSeed: 3) { Double($0.id % 7) }
        #expect(sim.trials.count == 9)
        #expect(sim.trials.values.map(\.steps).reduce(0, +) <= 95)
        #expect(sim.state.done)
    }

    @Test func decisionsAreAFunctionOfTheSeed() {
        func run(_ seed: UInt64) -> ([TrialRecord], [SelectionRecord]) {
            var sim = Simulation(testSettings(population: 6, workers: 3, budget: .generations(5), seed: seed))
            sim.runToCompletion(workers: 3, orderSeed: 9) { Double(($0.id * 7919) % 101) }
            return (sim.sorted, sim.selections)
        }
        let (a, sa) = run(21), (b, sb) = run(21), (c, _) = run(22)
        #expect(a == b)
        #expect(sa == sb)
        #expect(a.map(\.hyperparameters) != c.map(\.hyperparameters))
    }

    /// The noisy quadratic rewards a high learning rate early and a low one
    /// late; PBT must discover that: the best final trial's schedule decays.
    @Test(arguments: [(10, 5, UInt64(1)), (8, 8, 2), (8, 4, 3), (20, 5, 4), (5, 5, 5)])
    func findsADecayingScheduleOnTheToyProblem(population: Int, workers: Int, seed: UInt64) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = testSettings(population: population, workers: workers, trialSteps: 25, budget: .generations(24), seed: seed)
        var sim = Simulation(settings)
        let runner = ToyQuadraticRunner()
        func ckpt(_ id: Int) -> CheckpointRef { CheckpointRef(url: dir.url.appendingPathComponent("t\(id).ckpt")) }
        sim.runToCompletion(workers: workers, orderSeed: seed) { t in
            return (try? runner.run(t.spec, parent: t.parentID.map(ckpt), output: ckpt(t.id)))?.evaluation
        }
        let trials = sim.sorted
        #expect(trials.allSatisfy { $0.status == .finished })
        let best = try #require(Lineage.bestOfFinalPopulation(trials, sim.selections))
        let schedule = try LearningRateSchedule(Lineage.schedule(of: try Lineage.ancestry(of: best.id, in: trials)))
        let start = schedule.rate(atStep: 0), end = schedule.rate(atStep: best.startStep)
        #expect(end < start, "lr should decay: \(start) at step 0, \(end) at the end")
        // In log space, the last third of training uses a lower rate than the first third.
        func meanLogLR(_ steps: Range<Int>) -> Double {
            steps.map { Double.log(schedule.rate(atStep: $0)) }.reduce(0, +) / Double(steps.count)
        }
        let third = best.endStep / 3
        #expect(meanLogLR(0..<third) > meanLogLR((2 * third)..<best.endStep))

        // And the result beats every fixed learning rate on a grid, trained as long.
        var bestFixed = Double.infinity
        for k in 0..<13 {
            let lr = 1e-4 * Double.exp(Double(k) / 12 * Double.log(300))
            let spec = TrialSpec(id: 0, generation: 0, parentID: nil, hyperparameters: Hyperparameters(["lr": .number(lr)]),
                                 startStep: 0, steps: best.endStep, seed: seed)
            bestFixed = min(bestFixed, try runner.run(spec, parent: nil, output: ckpt(0)).evaluation)
        }
        #expect(best.evaluation! < bestFixed, "PBT \(best.evaluation!) vs best fixed lr \(bestFixed)")
    }
}

@Suite struct IndependentSelectionTests {
    /// Random search: every lineage keeps its own hyperparameters and
    /// continues from itself; nothing is copied between members.
    @Test func lineagesNeverExchangeWeightsOrHyperparameters() throws {
        let settings = testSettings(selection: .independent, seed: 9)
        try settings.validate()
        var sim = Simulation(settings)
        // One trial in ten (by id) fails, one diverges, to exercise the refill paths.
        sim.runToCompletion(workers: 4, orderSeed: 3) { $0.id % 10 == 7 ? nil : $0.id % 10 == 3 ? .nan : 1 / Double($0.id) }
        let result = sim.sorted.filter { $0.status == .finished }
        let byID = Dictionary(uniqueKeysWithValues: result.map { ($0.id, $0) })
        for trial in result where trial.parentID != nil {
            let parent = try #require(byID[trial.parentID!])
            #expect(parent.hyperparameters == trial.hyperparameters, "trial \(trial.id) changed its learning rate")
            #expect(trial.startStep == parent.endStep)
        }
        // A diverged configuration is dropped: its refill is a new draw from scratch. Another failure
        // (a crash) is retried from where the member was, with its own value (found by a user: one
        // crash threw away the best member's whole history). The retry is a second child of the
        // parent; otherwise lineages never branch.
        let all = Dictionary(uniqueKeysWithValues: sim.sorted.map { ($0.id, $0) })
        let refills = sim.sorted.filter { $0.refillOf != nil }
        let afterDivergence = refills.filter { all[$0.refillOf!]!.failure!.hasPrefix("diverged:") }
        let retries = refills.filter { all[$0.refillOf!]!.parentID != nil && !all[$0.refillOf!]!.failure!.hasPrefix("diverged:") }
        #expect(!afterDivergence.isEmpty && afterDivergence.allSatisfy { $0.parentID == nil && $0.startStep == 0 })
        #expect(!retries.isEmpty && retries.allSatisfy { retry in
            let failed = all[retry.refillOf!]!
            return retry.parentID == failed.parentID && retry.hyperparameters == failed.hyperparameters && retry.startStep == failed.startStep
                && retry.generation == failed.generation && retry.operations == "retry"
        })
        let children = Dictionary(grouping: sim.sorted.filter { $0.status != .failed }.compactMap(\.parentID), by: { $0 })
        #expect(children.values.allSatisfy { $0.count == 1 }, "a lineage branched")
        #expect(sim.selections.allSatisfy { $0.kind == .continue })
    }

    /// Found by a helper: asynchronous random search (P = W) planned a
    /// child whenever a trial finished, until the run's budget was spent, so
    /// the lineage whose trials finished first trained the most (one model
    /// 90 steps, two 25, of 40 each). Each model now gets an equal share of
    /// the budget, whatever order results come in; in budget mode too, a
    /// budget that is not a multiple of P is rounded down to one.
    @Test(arguments: [(4, 4, 40), (4, 4, 43), (4, 2, 42), (3, 3, 12)])
    func everyModelGetsAnEqualShare(population: Int, workers: Int, trials: Int) throws {
        let settings = testSettings(population: population, workers: workers, budget: .totalSteps(trials * 10), selection: .independent, seed: 5)
        try settings.validate()
        #expect(settings.trialBudget == trials / population * population)
        var sim = Simulation(settings)
        // The worst order: always the in-flight trial of the lowest lineage (by its root) finishes first.
        func root(_ t: TrialRecord) -> Int { t.parentID.map { root(sim.trials[$0]!) } ?? t.id }
        while true {
            while sim.running.count < workers, sim.claim() != nil {}
            guard let next = sim.running.min(by: { root($0) < root($1) }) else { break }
            sim.finish(next.id, loss: 1 / Double(next.id))
        }
        let perLineage = Dictionary(grouping: sim.sorted, by: root).mapValues(\.count)
        #expect(perLineage.count == population && Set(perLineage.values) == [trials / population], "\(perLineage)")
        #expect(sim.state.trialsCreated == settings.trialBudget)
    }

    @Test func equalBoundsFixTheValue() throws {
        var rng = Xoshiro256(seed: 1)
        let space = SearchSpace.learningRate(min: 1e-3, max: 1e-3)
        try space.validate()
        for _ in 0..<20 { #expect(space.sample(using: &rng)["lr"]?.number == 1e-3) }
    }
}
