import Foundation
import PBTReport
import PBTSchedules

extension ExperimentResults {
    /// Synthetic results shaped like a real experiment, for the report's
    /// tests. No model is trained: a toy loss stands in, where a high
    /// learning rate learns fast but settles at a higher floor and sometimes
    /// diverges, so a decaying schedule wins. Deterministic for a given `seeds` and sizes.
    ///
    /// Every run's final best also gets a "whole-set" score (its window NLL
    /// plus a small seeded offset), and every seed of the winning method a
    /// replay, as the real experiment records them.
    ///
    /// - Parameters:
    ///   - seeds: runs per method.
    ///   - stepsPerTrial: S.
    ///   - generations5x5: PBT-5x5's generations; the budget is
    ///     5 × `generations5x5` × S steps, and must give PBT-5x20 a whole
    ///     number of generations (`generations5x5` a multiple of 4).
    public static func demo(seeds: Int = 5, stepsPerTrial: Int = 100, generations5x5: Int = 16) -> ExperimentResults {
        precondition(seeds >= 1, "seeds must be at least 1")
        precondition(stepsPerTrial >= 1, "stepsPerTrial must be positive")
        precondition(generations5x5 >= 4 && generations5x5 % 4 == 0, "generations5x5 must be a positive multiple of 4")
        let budget = 5 * generations5x5 * stepsPerTrial
        var runs: [MethodRun] = []
        var replays: [ReplayResult] = []
        var wall = 0.0
        for seed in 1 ... seeds {
            let pbt5 = DemoSimulation.pbt(method: MethodName.pbt5x5, seed: seed, population: 5, generations: generations5x5, steps: stepsPerTrial)
            let pbt20 = DemoSimulation.pbt(method: MethodName.pbt5x20, seed: seed, population: 20, generations: generations5x5 / 4, steps: stepsPerTrial)
            let random = DemoSimulation.fixedRates(method: MethodName.randomSearch, seed: seed, segments: generations5x5, steps: stepsPerTrial, rate: nil)
            let fixed = DemoSimulation.fixedRates(method: MethodName.fixedLR, seed: seed, segments: generations5x5, steps: stepsPerTrial, rate: 1e-3)
            for var run in [pbt5, pbt20, random, fixed] {
                run.wholeSet = run.bestTrial.map { WholeSetScore(trial: $0.id, nll: $0.finiteNLL! + DemoSimulation.wholeSetOffset(seed, $0.id), samples: 2_102_648) }
                runs.append(run)
                wall += run.wallSeconds
            }
        }
        let draft = ExperimentResults(
            preset: "demo", modelPreset: "none (synthetic toy loss)", machine: "synthetic data, no training",
            stepsPerTrial: stepsPerTrial, totalStepsPerMethod: budget, runs: runs, replays: [],
            startedAt: "2025-01-01T00:00:00Z", wallSeconds: wall)
        if let winner = Winner(draft) {
            for run in runs where run.method == winner.method {
                guard let best = run.bestTrial, let schedule = Winner.schedule(of: Winner.lineage(of: best, in: run)) else { continue }
                let replayed = DemoSimulation.replay(schedule, steps: best.endStep, seed: run.seed)
                let offset = DemoSimulation.wholeSetOffset(run.seed, -1)
                replays.append(ReplayResult(method: run.method, seed: run.seed, pbtWinnerNLL: best.finiteNLL!, replayNLL: replayed,
                                            schedule: schedule, pbtWinnerWholeSet: run.wholeSet,
                                            replayWholeSet: replayed.isFinite ? WholeSetScore(trial: nil, nll: replayed + offset, samples: 2_102_648) : nil))
            }
        }
        var results = draft
        results.replays = replays
        return results
    }
}

/// The toy model behind `ExperimentResults.demo`.
enum DemoSimulation {
    /// SplitMix64: small, seeded, enough for synthetic data.
    struct Generator {
        var state: UInt64
        init(_ seed: Int, _ stream: UInt64) { state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 ^ stream }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
        mutating func logUniform(_ low: Double, _ high: Double) -> Double { exp(log(low) + unit() * (log(high) - log(low))) }
    }

    /// A model's training state: how much it has learned.
    struct Model {
        var progress = 0.0
        /// Trains `steps` steps at `lr`; nil when it diverged.
        mutating func train(steps: Int, lr: Double, random: inout Generator) -> Double? {
            progress += Double(steps) * lr * 2.6
            if lr > 0.018 && random.unit() < (lr - 0.018) * 20 { return nil }
            let noise = (random.unit() - 0.5) * 0.02
            return 3.6 + 4.0 * exp(-progress) + 26 * lr + noise
        }
    }

    static func pbt(method: String, seed: Int, population: Int, generations: Int, steps: Int) -> MethodRun {
        var random = Generator(seed, UInt64(population))
        var trials: [TrialResult] = []
        var models: [Int: Model] = [:]
        var previous: [TrialResult] = []
        var nextID = 0
        var clock = 0.0
        for generation in 0 ..< generations {
            var current: [TrialResult] = []
            for slot in 0 ..< population {
                var parent: TrialResult?
                var loser: Int?
                var lr: Double
                if generation == 0 {
                    lr = random.logUniform(1e-4, 3e-2)
                } else {
                    // Initiator-based binary tournament over the previous generation.
                    let initiator = previous[slot % previous.count]
                    var opponent = previous[Int(random.next() % UInt64(previous.count))]
                    if opponent.id == initiator.id { opponent = previous[(slot + 1) % previous.count] }
                    let score = { (trial: TrialResult) in trial.finiteNLL ?? .infinity }
                    var (winner, beaten) = score(initiator) <= score(opponent) ? (initiator, opponent) : (opponent, initiator)
                    if winner.finiteNLL == nil { winner = previous.min { score($0) < score($1) }! }
                    parent = winner
                    loser = beaten.id == winner.id ? nil : beaten.id
                    let parentRate = winner.learningRate!
                    if random.unit() < 0.2 {
                        lr = random.logUniform(1e-4, 3e-2)
                    } else {
                        lr = min(max(parentRate * (random.unit() < 0.5 ? 0.8 : 1.2), 1e-4), 3e-2)
                    }
                }
                var model = parent.flatMap { models[$0.id] } ?? Model()
                let nll = model.train(steps: steps, lr: lr, random: &random)
                clock += Double(steps) * 0.004 * (1 + random.unit() * 0.2)
                let id = nextID
                nextID += 1
                models[id] = model
                let trial = TrialResult(
                    id: id, parent: parent?.id, generation: generation, hyperparameters: [LearningRateSchedule.hyperparameterName: lr],
                    startStep: parent?.endStep ?? 0, steps: steps, validationNLL: nll ?? (id % 2 == 0 ? .nan : nil),
                    completionIndex: id, worker: slot % 5, wallSeconds: clock / 5, tournamentLoser: loser)
                current.append(trial)
                trials.append(trial)
            }
            previous = current
        }
        return MethodRun(method: method, seed: seed, workers: 5, population: population, trials: trials, wallSeconds: clock / 5)
    }

    /// Random search (`rate` nil: each of 5 models draws its rate) or a fixed
    /// rate: 5 models from scratch, one trial per evaluation segment.
    static func fixedRates(method: String, seed: Int, segments: Int, steps: Int, rate: Double?) -> MethodRun {
        var random = Generator(seed, rate == nil ? 101 : 202)
        let rates = (0 ..< 5).map { _ in rate ?? random.logUniform(1e-4, 3e-2) }
        var models = Array(repeating: Model(), count: 5)
        var previousIDs: [Int?] = Array(repeating: nil, count: 5)
        var diverged = Array(repeating: false, count: 5)
        var trials: [TrialResult] = []
        var clock = 0.0
        for segment in 0 ..< segments {
            for worker in 0 ..< 5 {
                // A diverged model stays diverged: it still uses its compute.
                let nll = diverged[worker] ? nil : models[worker].train(steps: steps, lr: rates[worker], random: &random)
                if nll == nil { diverged[worker] = true }
                clock += Double(steps) * 0.004 * (1 + random.unit() * 0.2)
                let id = trials.count
                trials.append(TrialResult(
                    id: id, parent: previousIDs[worker], generation: segment, hyperparameters: [LearningRateSchedule.hyperparameterName: rates[worker]],
                    startStep: segment * steps, steps: steps, validationNLL: nll, completionIndex: id,
                    worker: worker, wallSeconds: clock / 5))
                previousIDs[worker] = id
            }
        }
        return MethodRun(method: method, seed: seed, workers: 5, population: 5, trials: trials, wallSeconds: clock / 5)
    }

    /// How much a model's whole-set NLL lies above its window NLL: the
    /// windows are a small, slightly easy subset. Seeded by seed and trial.
    static func wholeSetOffset(_ seed: Int, _ trial: Int) -> Double {
        var random = Generator(seed, 404 &+ UInt64(bitPattern: Int64(trial)))
        return 0.04 + 0.01 * random.unit()
    }

    /// The NLL after training `steps` steps along `schedule` from scratch.
    static func replay(_ schedule: LearningRateSchedule, steps: Int, seed: Int) -> Double {
        var random = Generator(seed, 303)
        var model = Model()
        var nll = Double.nan
        let points = schedule.points
        for (index, point) in points.enumerated() {
            let end = index + 1 < points.count ? points[index + 1].step : steps
            nll = model.train(steps: end - point.step, lr: point.rate, random: &random) ?? .nan
        }
        return nll
    }
}
