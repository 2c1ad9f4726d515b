import Foundation
import PBTPB2
import PBTSeededRNG
import Testing

@testable import PBT

/// Explore strategies in the controller, seeded and without threads: PB2's
/// GP bandit (`PB2Explore`) and perturbation with a mutation range wider
/// than the prior. Also how both are stored, compared and refused.
@Suite struct ExploreTests {
    /// How much a step at `lr` lowers the loss: a bump in log-LR, highest at 3e-3.
    static func gain(_ lr: Double) -> Double { exp(-pow(log10(lr) - log10(3e-3), 2) / (2 * 0.25 * 0.25)) }

    /// Runs the whole budget one trial at a time (FIFO): each trial lowers
    /// its parent's loss (5 from scratch) by `improvement(trial)`.
    static func run(_ settings: PBTSettings, explorer: any ExploreStrategy,
                    improvement: (TrialRecord) -> Double) -> Simulation {
        var simulation = Simulation(settings, explorer: explorer)
        while let trial = simulation.claim() {
            let start = trial.parentID.map { simulation.trials[$0]!.evaluation! } ?? 5
            simulation.finish(trial.id, loss: start - improvement(trial))
        }
        return simulation
    }

    static func pb2Settings(seed: UInt64 = 3) -> PBTSettings {
        var settings = testSettings(population: 5, workers: 5, budget: .generations(12), seed: seed)
        settings.explore = .pb2
        return settings
    }

    static func lr(_ t: TrialRecord) -> Double { t.hyperparameters["lr"]!.number! }

    @Test("PB2 in the controller: seeded, inside the space, and it homes in on the learning rate that improves most")
    func pb2() throws {
        let settings = Self.pb2Settings()
        let explorer = try PB2Explore(settings: settings)
        let improve = { (t: TrialRecord) in Double(t.steps) * 0.01 * Self.gain(Self.lr(t)) }
        let a = Self.run(settings, explorer: explorer, improvement: improve)
        let b = Self.run(settings, explorer: explorer, improvement: improve)
        #expect(a.sorted.map(\.lineageFields) == b.sorted.map(\.lineageFields), "the same seed gives the same run")
        #expect(a.trials.count == settings.trialBudget)
        #expect(a.sorted.allSatisfy { settings.searchSpace.contains($0.hyperparameters) })

        // From generation 3 on every child has observations to fit: PB2 chose it.
        let late = a.sorted.filter { $0.generation >= 3 }
        #expect(!late.isEmpty && late.allSatisfy { $0.operations.hasPrefix("lr~pb2(ucb ") }, "\(late.map(\.operations))")
        // The prior's draws land anywhere in [1e-4, 3e-2]; PB2's last generations sit near 3e-3.
        func medianDistance(_ trials: [TrialRecord]) -> Double {
            let d = trials.map { abs(log10(Self.lr($0)) - log10(3e-3)) }.sorted()
            return d[d.count / 2]
        }
        let prior = a.sorted.filter { $0.generation == 0 }, last = a.sorted.filter { $0.generation >= 9 }
        print("PB2: median |log10(lr / 3e-3)| \(medianDistance(prior)) (prior draws) → \(medianDistance(last)) (generations 9–11)")
        #expect(medianDistance(last) < 0.25, "PB2's late choices sit within the bump's width of its top")
        #expect(medianDistance(last) < medianDistance(prior))
        // Another seed, another run.
        let other = Self.run(Self.pb2Settings(seed: 4), explorer: explorer, improvement: improve)
        #expect(other.sorted.map(\.hyperparameters) != a.sorted.map(\.hyperparameters))
    }

    @Test("PB2 falls back to perturbation until it has two observed intervals")
    func pb2NeedsObservations() throws {
        let settings = Self.pb2Settings()
        let simulation = Self.run(settings, explorer: try PB2Explore(settings: settings)) { _ in 0.1 }
        let generation1 = simulation.sorted.filter { $0.generation == 1 }
        #expect(generation1.allSatisfy { $0.operations.hasPrefix("lr*") || $0.operations.hasPrefix("lr~prior") }, "\(generation1.map(\.operations))")
    }

    @Test("a mutation range wider than the prior: explore may leave the prior, never the range, and resamples from the prior")
    func wideRange() throws {
        // The best rate falls with training, from 1e-3 to 1e-6 at the end: far below the prior's lower bound.
        let generations = 30, total = Double(generations * 10)
        func improvement(_ t: TrialRecord) -> Double {
            let best = -3 - 3 * Double(t.endStep) / total
            return Double(t.steps) * 0.01 * exp(-pow(log10(Self.lr(t)) - best, 2) / 0.1)
        }
        var settings = testSettings(population: 5, workers: 5, budget: .generations(generations), seed: 7,
                                    space: .learningRate(min: 1e-4, max: 3e-2, mutateWithin: 1e-6...1e-1))
        settings.mutation = MutationPolicy(resampleProbability: 0.1)
        let wide = Self.run(settings, explorer: Perturbation(), improvement: improvement)
        let rates = wide.sorted.map(Self.lr)
        #expect(rates.allSatisfy { (1e-6...1e-1).contains($0) })
        #expect(rates.contains { $0 < 1e-4 }, "the learning rate went below the prior")
        for trial in wide.sorted where trial.operations.hasPrefix("lr~prior") {
            #expect((1e-4...3e-2).contains(Self.lr(trial)), "a resample draws from the prior: \(trial.operations)")
        }
        settings.searchSpace = .learningRate(min: 1e-4, max: 3e-2)
        let paper = Self.run(settings, explorer: Perturbation(), improvement: improvement)
        #expect(paper.sorted.allSatisfy { Self.lr($0) >= 1e-4 }, "the paper's PBT stays in the prior")
        print("lowest learning rate: wide range \(rates.min()!), within the prior \(paper.sorted.map(Self.lr).min()!)")
    }

    @Test("mutation bounds: validated, used by clamped/contains, stored and compared")
    func mutationBounds() throws {
        let lr = Hyperparameter.logUniform("lr", 1e-4, 3e-2, mutateWithin: 1e-6...1e-1)
        #expect(lr.evolutionRange == 1e-6...1e-1 && Hyperparameter.logUniform("lr", 1e-4, 3e-2).evolutionRange == 1e-4...3e-2)
        #expect(lr.clamped(.number(1e-9)) == .number(1e-6) && lr.contains(.number(1e-5)))
        #expect(!Hyperparameter.logUniform("lr", 1e-4, 3e-2).contains(.number(1e-5)))
        var rng = Xoshiro256(seed: 1)
        for _ in 0..<200 { #expect((1e-4...3e-2).contains(lr.sample(using: &rng).number!), "the prior is still the prior") }

        #expect(throws: PBTConfigError.invalidMutationBounds(name: "lr", reason: "[0.001, 0.1] must be finite (its width too) and contain the prior [0.0001, 0.03]")) {
            try Hyperparameter.logUniform("lr", 1e-4, 3e-2, mutateWithin: 1e-3...1e-1).validate()
        }
        #expect(throws: PBTConfigError.self) { try Hyperparameter.logUniform("lr", 1e-4, 3e-2, mutateWithin: 0...1e-1).validate() }
        #expect(throws: PBTConfigError.self) {
            try Hyperparameter(name: "opt", domain: .categorical([.category("a"), .category("b")]), mutationBounds: 0...1).validate()
        }

        // Stored with the run and compared on resume.
        let wide = testSettings(space: .learningRate(mutateWithin: 1e-6...1e-1)), paper = testSettings()
        let decoded = try JSONDecoder().decode(PBTSettings.self, from: JSONEncoder().encode(wide))
        #expect(decoded == wide)
        let difference = try #require(wide.differences(from: paper).first)
        #expect(wide.differences(from: paper).count == 1 && difference.field == "mutationBounds")
        #expect(difference.stored == "lr mutated within [1e-06, 0.1]" && difference.given == "lr mutated within its prior",
                "the --space form has no mutation range, so the message says it: \(difference)")
        // The same parameters in another order: a different run (another
        // random stream), which the message names.
        let two = SearchSpace([.logUniform("lr", 1e-4, 3e-2), .uniform("momentum", 0.8, 0.99)])
        let swapped = SearchSpace([.uniform("momentum", 0.8, 0.99), .logUniform("lr", 1e-4, 3e-2)])
        let order = testSettings(space: two).differences(from: testSettings(space: swapped))
        #expect(order.map(\.description) == ["searchSpace: run has the parameters in the order lr, momentum, command has the parameters in the order momentum, lr"])
    }

    @Test("explore is stored with the run, defaults to perturb for settings stored before it, and is compared on resume")
    func exploreSetting() throws {
        let settings = testSettings()
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(settings)) as? [String: Any])
        #expect(json["explore"] as? String == "perturb")
        json["explore"] = nil
        let older = try JSONDecoder().decode(PBTSettings.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(older == settings)
        #expect(Self.pb2Settings().differences(from: testSettings(population: 5, workers: 5, budget: .generations(12), seed: 3))
            .map(\.description) == ["explore: run has pb2, command has perturb"])
    }

    @Test("a run that explores with PB2 is refused, with a clear error, where PB2 is not provided; PB2 refuses categories")
    func unavailableAndUnsupported() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let configuration = RunConfiguration(settings: Self.pb2Settings(), model: "test")
        let store = try SQLiteTrialStore(path: ":memory:")
        #expect(throws: PBTConfigError.exploreUnavailable(.pb2)) {
            try PBTCoordinator.open(store: store, name: "r", configuration: configuration, runDirectory: directory.url)
        }
        let (coordinator, created) = try PBTCoordinator.open(store: store, name: "r", configuration: configuration,
                                                             runDirectory: directory.url, explorers: .withPB2)
        #expect(created && coordinator.controller.explorer.method == .pb2)
        #expect(throws: PBTConfigError.exploreUnavailable(.pb2)) { try PBTCoordinator.open(store: store, name: "r", runDirectory: directory.url) }
        #expect("\(PBTConfigError.exploreUnavailable(.pb2))".contains("explores with pb2, which this program does not provide"))
        #expect("\(PBTConfigError.exploreUnavailable(.pb2))".contains("ExploreStrategies.withPB2"), "a library user is told where PB2 is")
        // A strategy given for one method that says it is another is refused, not trusted.
        let mislabelled = ExploreStrategies.builtIn.adding(.pb2) { _ in Perturbation() }
        let mismatch = #expect(throws: PBTConfigError.self) { try mislabelled.strategy(for: Self.pb2Settings()) }
        #expect(mismatch?.description.contains("says it implements perturb") == true)

        var categorical = Self.pb2Settings()
        categorical.searchSpace = SearchSpace([.logUniform("lr", 1e-4, 1e-2), .categorical("opt", ["sgd", "adam"])])
        let error = #expect(throws: PBTConfigError.self) { try PB2Explore(settings: categorical) }
        #expect(error?.description.contains("PB2 models continuous hyperparameters only, and the search space's 'opt' is a choice") == true)
    }
}
