import Foundation
import PBTSeededRNG
import Testing

@testable import PBT

@Suite struct SettingsValidationTests {
    @Test func defaultsAreValid() throws {
        try testSettings().validate()
        try testSettings(population: 20, workers: 5, budget: .totalSteps(20 * 10)).validate()
        try testSettings(selection: .truncation(fraction: 0.5)).validate()
    }

    @Test(arguments: [
        (testSettings(workers: 0), PBTConfigError.invalidWorkers(0)),
        (testSettings(population: 3, workers: 5), .populationBelowWorkers(population: 3, workers: 5)),
        (testSettings(trialSteps: 0), .invalidTrialSteps(0)),
        (testSettings(population: 4, trialSteps: 10, budget: .totalSteps(39)), .budgetBelowOneGeneration(totalSteps: 39, generationSteps: 40)),
        (testSettings(budget: .generations(0)), .invalidGenerations(0)),
        (testSettings(selection: .truncation(fraction: 0)), .invalidTruncationFraction(0)),
        (testSettings(selection: .truncation(fraction: 0.6)), .invalidTruncationFraction(0.6)),
        (testSettings(opponentGenerations: 3), .invalidOpponentGenerations(3)),
        (testSettings(space: SearchSpace([])), .emptySearchSpace),
        (testSettings(space: .learningRate(min: 1e-2, max: 1e-3)), .invalidBounds(name: "lr", lower: 1e-2, upper: 1e-3)),
        (testSettings(space: .learningRate(min: 0, max: 1e-3)), .nonPositiveLogBound(name: "lr", lower: 0)),
        (testSettings(space: .learningRate(min: 1e-3, max: .infinity)), .invalidBounds(name: "lr", lower: 1e-3, upper: .infinity)),
        (testSettings(space: SearchSpace([.logUniform("lr", 1e-4, 1e-2), .uniform("lr", 0, 1)])), .duplicateHyperparameter("lr")),
        (testSettings(space: SearchSpace([.categorical("opt", [])])), .invalidChoices(name: "opt", choices: [])),
        (testSettings(space: SearchSpace([.categorical("opt", ["a", "a"])])), .duplicateChoice(name: "opt", choice: "'a'")),
        (testSettings(space: SearchSpace([.categorical("opt", ["\u{E9}", "e\u{301}"])])), .duplicateChoice(name: "opt", choice: "'\u{E9}'")),
        (testSettings(space: SearchSpace([.choice("batch", [1, 2, 1.0])])), .duplicateChoice(name: "batch", choice: "1")),
        // Control characters: a tab broke strict JSON readers of PBT_HYPERPARAMETERS, a NUL the store.
        (testSettings(space: SearchSpace([.categorical("opt", ["x\ty", "c"])])), .invalidChoices(name: "opt", choices: ["x\ty", "c"])),
        (testSettings(space: SearchSpace([.categorical("opt", ["c", "a\u{0}b"])])), .invalidChoices(name: "opt", choices: ["c", "a\u{0}b"])),
        (testSettings(space: SearchSpace([.categorical("opt", ["a\u{1B}[31mRED"])])), .invalidChoices(name: "opt", choices: ["a\u{1B}[31mRED"])),
        (testSettings(space: SearchSpace([.uniform("bad name", 0, 1)])), .invalidHyperparameterName("bad name")),
        // Refused up front, not after the run when its schedule is exported
        // (`step` is the files' first column), nor read back changed from a
        // CSV schedule (a number, spaces trimmed) or not at all (a line break).
        (testSettings(space: SearchSpace([.uniform("step", 0, 1)])), .invalidHyperparameterName("step")),
        (testSettings(space: SearchSpace([.categorical("batch", ["16", "32"])])), .invalidChoices(name: "batch", choices: ["16", "32"])),
        (testSettings(space: SearchSpace([.categorical("act", ["relu", "inf"])])), .invalidChoices(name: "act", choices: ["relu", "inf"])),
        (testSettings(space: SearchSpace([.categorical("opt", [" sgd", "adam"])])), .invalidChoices(name: "opt", choices: [" sgd", "adam"])),
        (testSettings(space: SearchSpace([.categorical("act", ["relu", "leaky\nrelu"])])), .invalidChoices(name: "act", choices: ["relu", "leaky\nrelu"])),
    ])
    func invalidSettingsAreRejected(settings: PBTSettings, expected: PBTConfigError) {
        #expect(throws: expected) { try settings.validate() }
        #expect(!expected.description.isEmpty)
    }

    /// A refused choice list names the choice that is the trouble (found by
    /// a helper: the rule list alone, with "1e3" among names).
    @Test(arguments: [
        (["sgd", "adam", "1e3", "rms"], "hyperparameter 'x': the choice '1e3' reads as a number while 'sgd' is a name: give all numbers (without quotes) or all names"),
        (["16", "32"], "hyperparameter 'x': the choice '16' reads as a number: give numbers without quotes, as a numeric choice"),
        (["relu", "inf"], "hyperparameter 'x': the choice 'inf' is not a finite number (nor, as it reads as one, a name)"),
        (["c", "x\ty"], #"hyperparameter 'x': the choice "x\ty" cannot be a name: a name must be non-empty"#),
        ([" sgd", "adam"], "hyperparameter 'x': the choice ' sgd' cannot be a name: a name must be non-empty"),
        ([], "hyperparameter 'x': it has no choices; give at least one"),
    ])
    func aRefusedChoiceListNamesTheChoice(choices: [String], message: String) {
        do {
            try testSettings(space: SearchSpace([.categorical("x", choices)])).validate()
            Issue.record("accepted \(choices)")
        } catch {
            #expect("\(error)".hasPrefix(message), "\(error)")
        }
    }

    /// Every valid space's values read back from a CSV schedule as they were written.
    @Test func validCategoriesReadBackFromCSV() throws {
        let names = ["sgd", "adam-w", "leaky_relu", "x64", "1st", "Ünïcode", "a b"]
        try SearchSpace([.categorical("opt", names)]).validate()
        let file = try HyperparameterSchedule(names: ["opt"], rows: names.enumerated().map { .init(step: $0.offset, values: [.category($0.element)]) })
        #expect(try HyperparameterSchedule(csvText: file.csvText) == file)
    }

    @Test func driverOptionsAreValidated() {
        #expect(throws: PBTConfigError.invalidWorkers(-1)) { try DriverOptions(workers: -1).validate() }
        #expect(throws: PBTConfigError.invalidWorkers(0)) { try DriverOptions(workers: 0).validate() }
        #expect(throws: PBTConfigError.tooLarge(field: "workers", value: 5000, limit: PBTSettings.maxWorkers)) { try DriverOptions(workers: 5000).validate() }
        #expect(throws: PBTConfigError.invalidDriverTime(field: "leaseSeconds", value: -1)) { try DriverOptions(leaseSeconds: -1).validate() }
        #expect(throws: PBTConfigError.invalidDriverTime(field: "progressInterval", value: -.infinity)) { try DriverOptions(progressInterval: -.infinity).validate() }
        #expect(throws: PBTConfigError.invalidFailureLimit(-1)) { try DriverOptions(maxFailuresInARow: -1).validate() }
        #expect(throws: Never.self) { try DriverOptions(workers: 2, leaseSeconds: 0.1, progressInterval: 0, maxFailuresInARow: 0).validate() }
    }

    @Test func mutationPolicyIsValidated() {
        var s = testSettings()
        s.mutation.resampleProbability = 1.5
        #expect(throws: PBTConfigError.invalidResampleProbability(1.5)) { try s.validate() }
        s.mutation = MutationPolicy(resampleProbability: 0.25, perturbationFactors: [0.8, -1])
        #expect(throws: PBTConfigError.invalidPerturbationFactors([0.8, -1])) { try s.validate() }
    }

    @Test func trialBudgetCountsTrials() {
        #expect(testSettings(population: 5, trialSteps: 100, budget: .totalSteps(2_550)).trialBudget == 25)
        #expect(testSettings(population: 20, workers: 5, budget: .generations(3)).trialBudget == 60)
    }

    @Test func differencesNameTheFields() {
        let a = testSettings()
        var b = a
        b.population = 8
        b.seed = 9
        #expect(a.differences(from: b).map(\.field) == ["population", "seed"])
        #expect(a.differences(from: a).isEmpty)
        let ra = RunConfiguration(settings: a, model: "toy")
        let rb = RunConfiguration(settings: a, model: "wavenet", modelOptions: ["preset": "tiny"])
        #expect(ra.differences(from: rb).map(\.field) == ["model", "model.preset"])
    }

    @Test func configurationRoundTripsThroughJSON() throws {
        var s = testSettings(selection: .truncation(fraction: 0.2), seed: .max)
        s.searchSpace = SearchSpace([.logUniform("lr", 1e-4, 3e-2), .uniform("momentum", 0.5, 0.99), .categorical("opt", ["sgd", "adam"])])
        let c = RunConfiguration(settings: s, model: "toy", modelOptions: ["x": "1"])
        let back = try RunConfiguration(jsonText: try c.jsonText())
        #expect(back == c)
        #expect(try back.jsonText() == c.jsonText())
    }
}

@Suite struct HyperparameterCodingTests {
    @Test func flatJSONRoundTripsBitExactly() throws {
        var rng = Xoshiro256(seed: 42)
        let space = SearchSpace([.logUniform("lr", 1e-6, 1), .uniform("beta", -3, 3), .categorical("opt", ["sgd", "adam", "lamb"])])
        for _ in 0..<2_000 {
            let h = space.sample(using: &rng)
            let back = try Hyperparameters(jsonText: h.jsonText)
            #expect(back == h)
            #expect(back["lr"]!.number!.bitPattern == h["lr"]!.number!.bitPattern)
        }
        #expect(try Hyperparameters(jsonText: " { \"lr\" : 1e-05 , \"o\":\"a\" } ") == Hyperparameters(["lr": .number(1e-5), "o": .category("a")]))
        #expect(try Hyperparameters(jsonText: "{}") == Hyperparameters())
    }

    @Test(arguments: ["", "[]", "{\"lr\":}", "{\"lr\":abc}", "{\"lr\":1", "{lr:1}", "{\"lr\":1}x"])
    func malformedHyperparametersAreRejected(text: String) {
        #expect(throws: PBTStoreError.self) { try Hyperparameters(jsonText: text) }
    }

    @Test func priorSamplesStayInBoundsAndCoverTheRange() {
        var rng = Xoshiro256(seed: 3)
        let p = Hyperparameter.logUniform("lr", 1e-4, 3e-2)
        let xs = (0..<5_000).map { _ in p.sample(using: &rng).number! }
        #expect(xs.allSatisfy { $0 >= 1e-4 && $0 <= 3e-2 })
        // Log-uniform: about half the mass below the geometric midpoint.
        let below = xs.filter { $0 < (1e-4 * 3e-2).squareRoot() }.count
        #expect(abs(Double(below) / 5_000 - 0.5) < 0.03, "fraction below the log midpoint: \(Double(below) / 5_000)")
    }
}

@Suite struct MutationTests {
    static let space = SearchSpace([
        .logUniform("lr", 1e-4, 3e-2), .uniform("momentum", 0.5, 0.99), .categorical("opt", ["sgd", "momentum", "adam", "lamb"]),
    ])

    /// Property test: over many seeds and repeated mutation chains, every
    /// result lies in the space, and every operation is one of the allowed kinds.
    @Test func exploreAlwaysStaysInBounds() {
        let policy = MutationPolicy()
        var resampled = 0
        var perturbed = 0
        var clampedSeen = 0
        for seed in 0..<300 as Range<UInt64> {
            var rng = Xoshiro256(seed: seed)
            var h = Self.space.sample(using: &rng)
            for _ in 0..<40 {
                let (next, ops) = explore(h, in: Self.space, policy: policy, using: &rng)
                #expect(Self.space.contains(next), "seed \(seed): \(next) left the space")
                #expect(ops.count == 3)
                for op in ops {
                    switch op {
                    case .perturbed(_, let f, let from, let to, let clamped):
                        perturbed += 1
                        #expect(f == 0.8 || f == 1.2)
                        if clamped { clampedSeen += 1 } else { #expect(to == from * f) }
                    case .resampled: resampled += 1
                    case .shifted(let name, let a, let b):
                        // A neighbour, or the same value when the side drawn is past an end.
                        guard case .categorical(let choices)? = Self.space.parameters.first(where: { $0.name == name })?.domain,
                              let i = choices.firstIndex(of: a), let j = choices.firstIndex(of: b) else { Issue.record("\(op)"); continue }
                        #expect(abs(i - j) == 1 || (i == j && (i == 0 || i == choices.count - 1)), "\(op)")
                    case .suggested: Issue.record("perturbation never suggests")
                    }
                }
                h = next
            }
        }
        // Resample probability 0.25 on two continuous parameters per step.
        let fraction = Double(resampled) / Double(300 * 40 * 3)
        #expect(abs(fraction - 0.25) < 0.02, "resampled fraction \(fraction)")
        #expect(clampedSeen > 0, "chains of ×1.2 must hit the bounds sometimes")
    }

    /// A two-choice value is kept about half the time it is shifted (the side
    /// drawn past an end), as Ray Tune's PBT does; it flipped every time, so
    /// a winner's choice never stuck in its children (found by a user).
    @Test func aTwoChoiceValueIsNotFlippedEveryTime() {
        let space = SearchSpace([.categorical("opt", ["sgd", "adam"])])
        var rng = Xoshiro256(seed: 11)
        var (kept, flipped) = (0, 0)
        for _ in 0 ..< 2000 {
            let (next, ops) = explore(Hyperparameters(["opt": .category("adam")]), in: space, policy: MutationPolicy(resampleProbability: 0), using: &rng)
            guard case .shifted = ops[0] else { Issue.record("\(ops)"); continue }
            if next["opt"] == .category("adam") { kept += 1 } else { flipped += 1 }
        }
        #expect(abs(Double(kept) / 2000 - 0.5) < 0.05, "kept \(kept), flipped \(flipped)")
    }

    @Test func clampsOutOfRangeInputs() {
        var rng = Xoshiro256(seed: 5)
        let space = SearchSpace.learningRate()
        let policy = MutationPolicy(resampleProbability: 0)
        for x in [1e-9, 1.0, -.infinity, .nan] {
            let (h, _) = explore(Hyperparameters(["lr": .number(x)]), in: space, policy: policy, using: &rng)
            #expect(space.contains(h), "\(x) → \(h)")
        }
    }

    @Test func resampleProbabilityExtremes() {
        var rng = Xoshiro256(seed: 9)
        let space = SearchSpace.learningRate()
        let h = Hyperparameters(["lr": .number(1e-3)])
        for _ in 0..<200 {
            let (_, never) = explore(h, in: space, policy: MutationPolicy(resampleProbability: 0), using: &rng)
            guard case .perturbed(_, _, 1e-3, let to, false) = never[0] else { Issue.record("expected a perturbation, got \(never)"); return }
            #expect(to == 1e-3 * 0.8 || to == 1e-3 * 1.2)
            let (_, always) = explore(h, in: space, policy: MutationPolicy(resampleProbability: 1), using: &rng)
            guard case .resampled = always[0] else { Issue.record("expected a resample, got \(always)"); return }
        }
    }

    @Test func categoricalMovesToANeighbour() {
        var rng = Xoshiro256(seed: 11)
        let space = SearchSpace([.categorical("opt", ["a", "b", "c"])])
        let policy = MutationPolicy(resampleProbability: 0)
        var seen = Set<String>()
        for _ in 0..<50 {
            // From an end: inwards, or kept (the side drawn is past the end).
            for end in ["a", "c"] {
                let (moved, ops) = explore(Hyperparameters(["opt": .category(end)]), in: space, policy: policy, using: &rng)
                #expect(moved["opt"] == .category("b") || moved["opt"] == .category(end))
                if moved["opt"] == .category(end) { #expect(ops.logText == "opt~neighbour \(end)->\(end) (kept: at the end)", "\(ops.logText)") }
                seen.insert("\(end)->\(moved["opt"]!)")
            }
            let mid = explore(Hyperparameters(["opt": .category("b")]), in: space, policy: policy, using: &rng).0["opt"]
            #expect(mid == .category("a") || mid == .category("c"))
        }
        #expect(seen == ["a->a", "a->b", "c->c", "c->b"], "both outcomes at both ends: \(seen)")
    }

    @Test func exploreIsAPureFunctionOfItsInputs() {
        let h = Hyperparameters(["lr": .number(2e-3), "momentum": .number(0.9), "opt": .category("adam")])
        var a = Xoshiro256(seed: 77)
        var b = Xoshiro256(seed: 77)
        let ra = explore(h, in: Self.space, policy: MutationPolicy(), using: &a)
        let rb = explore(h, in: Self.space, policy: MutationPolicy(), using: &b)
        #expect(ra.0 == rb.0)
        #expect(ra.1 == rb.1)
        #expect(a == b)
        #expect(!ra.1.logText.isEmpty)
    }
}
