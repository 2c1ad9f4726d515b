import ArgumentParser
import PBTPB2
import PBT

extension ExploreMethod: ExpressibleByArgument {}

extension ExploreStrategies {
    /// Every explore strategy pbtwave has: perturbation and PB2's GP bandit.
    static let pbtwave = ExploreStrategies.withPB2
}

/// `--selection`.
public enum SelectionName: String, ExpressibleByArgument, CaseIterable, Sendable {
    case tournament, truncation, independent

    func strategy(truncationFraction: Double?) -> SelectionStrategy {
        switch self {
        case .tournament: return .tournament
        case .truncation: return .truncation(fraction: truncationFraction ?? 0.25)
        case .independent: return .independent
        }
    }
}

/// The flags that decide a PBT run's decisions (`PBTSettings`): stored with
/// the run, and compared when it is resumed.
struct PBTSettingsOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "W, the PBT's concurrency: how many trials the controller plans to run at once, which sets the generations (P = W: asynchronous, each trial reproduces as it finishes; P > W: budget mode, generations of P). This process runs --local-workers of them; `pbtwave worker` processes may add more. (default: 5)")
    var workers: Int?

    @Option(parsing: .unconditional, help: "Population P (default: --workers). P > W is budget mode: a generation is complete when P of its trials have finished.")
    var population: Int?

    @Option(parsing: .unconditional, help: "Training steps per trial. (default: 100)")
    var trialSteps: Int?

    @Option(parsing: .unconditional, help: "Budget: training steps summed over all trials (the compute clock).")
    var totalSteps: Int?

    @Option(parsing: .unconditional, help: "Budget: generations of P trials (default 10 when --total-steps is not given).")
    var generations: Int?

    @Option(help: ArgumentHelp("""
        Search space: a JSON file with one prior per hyperparameter, e.g. {"lr": {"log_uniform": [1e-4, 3e-2]}, \
        "momentum": {"uniform": [0.8, 0.99]}, "batch": {"choice": [16, 32, 64]}} (default: the learning rate alone, \
        --lr-min to --lr-max).
        """, valueName: "file.json"))
    var space: String?

    @Option(parsing: .unconditional, help: "Lower bound of the log-uniform learning-rate prior (default 1e-4; shorthand for a --space of lr alone).")
    var lrMin: Double?

    @Option(parsing: .unconditional, help: "Upper bound of the log-uniform learning-rate prior (default 3e-2).")
    var lrMax: Double?

    @Option(parsing: .unconditional, help: "Lower bound explore may move the learning rate to (default: --lr-min); at most --lr-min.")
    var lrMutateMin: Double?

    @Option(parsing: .unconditional, help: "Upper bound explore may move the learning rate to (default: --lr-max); at least --lr-max.")
    var lrMutateMax: Double?

    @Option(help: "Explore: perturb (multiply by 0.8 or 1.2, or resample from the prior: the paper's PBT) or pb2 (PB2's GP bandit over every hyperparameter, log-scaled ones in logs; continuous spaces only). (default: perturb)")
    var explore: ExploreMethod?

    @Option(help: "Selection: tournament (Li et al.), truncation (Jaderberg et al.), or independent (no exploit: random search; with --lr-min = --lr-max, a fixed learning rate). (default: tournament)")
    var selection: SelectionName?

    @Option(parsing: .unconditional, help: "Truncation selection: the bottom fraction copies the top fraction; in (0, 0.5] (default 0.25).")
    var truncationFraction: Double?

    @Option(parsing: .unconditional, help: "Opponents come from the initiator's generation (1) or its and the previous one (2) (default: 2 for tournament, as Li et al.; 1 for truncation, which ranks the current population, as Jaderberg et al.).")
    var opponentGenerations: Int?

    @Option(parsing: .unconditional, help: "Probability that explore resamples a value from the prior instead of multiplying it by 0.8 or 1.2. (default: 0.25)")
    var resampleProbability: Double?

    @Option(parsing: .unconditional, help: "Seed of the run (controller and every trial's seed). (default: 0)")
    var seed: UInt64?

    @Flag(help: "Apply results in trial-id order, so lineage, hyperparameters and losses depend only on the seed and the worker count.")
    var deterministic = false

    /// The search space `--space` or `--lr-min`/`--lr-max` give.
    func searchSpace() throws -> SearchSpace {
        guard let space else { return .learningRate(min: lrMin ?? 1e-4, max: lrMax ?? 3e-2, mutateWithin: mutationRange) }
        do { return try SearchSpace(specificationFile: space) } catch { throw ValidationError("--space \(space): \(error)") }
    }

    /// The settings the flags give. A flag not given takes `run`'s value
    /// (the run resumed; the settings it goes on with), else its default;
    /// flags that go together (the search space's, the selection's) are
    /// taken together.
    func settings(over run: PBTSettings? = nil) throws -> PBTSettings {
        let workers = self.workers ?? run?.workers ?? 5
        let spaceGiven = space != nil || lrMin != nil || lrMax != nil || lrMutateMin != nil || lrMutateMax != nil
        let selection = self.selection.map { $0.strategy(truncationFraction: truncationFraction) } ?? run?.selection ?? .tournament
        let truncation = if case .truncation = selection { true } else { false }
        var mutation = run?.mutation ?? MutationPolicy()
        if let resampleProbability { mutation.resampleProbability = resampleProbability }
        return PBTSettings(
            population: population ?? (self.workers == nil ? run?.population : nil) ?? workers, workers: workers,
            trialSteps: trialSteps ?? run?.trialSteps ?? 100,
            budget: totalSteps.map(Budget.totalSteps) ?? generations.map(Budget.generations) ?? run?.budget ?? .generations(10),
            searchSpace: try (spaceGiven ? nil : run?.searchSpace) ?? searchSpace(), selection: selection,
            // Truncation over two generations let older, less-trained trials crowd its bottom fraction:
            // few of the current generation's losers were replaced (found by a user).
            opponentGenerations: opponentGenerations ?? (run.map { Self.sameKind($0.selection, selection) } == true ? run?.opponentGenerations : nil)
                ?? (truncation ? 1 : 2),
            mutation: mutation, explore: explore ?? run?.explore ?? .perturb, seed: seed ?? run?.seed ?? 0,
            deterministic: deterministic || run?.deterministic == true)
    }

    /// Settings fields this command gives without their flags, worked out
    /// from flags it gives (over `run`'s): why, by field, for messages (a
    /// helper was told of a --population it never gave).
    func derived(over run: PBTSettings?) -> [String: String] {
        guard run != nil else { return [:] }
        var why: [String: String] = [:]
        if population == nil, let workers { why["population"] = "from --workers \(workers): a population is at least its workers" }
        if opponentGenerations == nil, selection != nil { why["opponentGenerations"] = "the default of the --selection given" }
        return why
    }

    /// Whether two selections are of one kind (a truncation's fraction aside).
    private static func sameKind(_ a: SelectionStrategy, _ b: SelectionStrategy) -> Bool {
        switch (a, b) {
        case (.tournament, .tournament), (.independent, .independent), (.truncation, .truncation): true
        default: false
        }
    }

    /// A settings field as the flags that give it back (nil: none needed,
    /// e.g. `--deterministic` when false); the search space as a file's
    /// content, and the perturbation factors, which no flag sets, said so.
    static func flagText(_ field: String, _ value: String, in settings: PBTSettings) -> String? {
        switch field {
        case "budget": return value
        case "searchSpace":
            // The learning rate alone, as its flags give it: a mutation range has no --space form (found by a helper:
            // the --space line it printed lost --lr-mutate-min/--lr-mutate-max, and a resume from it was refused).
            if settings.searchSpace.parameters.count == 1, let lr = settings.searchSpace.parameters.first, lr.name == "lr",
               case let .continuous(lower, upper, .log) = lr.domain {
                return "--lr-min \(lower) --lr-max \(upper)"
                    + (lr.mutationBounds.map { " --lr-mutate-min \($0.lowerBound) --lr-mutate-max \($0.upperBound)" } ?? "")
            }
            return "--space FILE holding " + shellQuoted(value)
        case "selection":
            if case .truncation(let fraction) = settings.selection { return "--selection truncation --truncation-fraction \(fraction)" }
            return "--selection \(value)"
        case "deterministic": return settings.deterministic ? "--deterministic" : nil
        case "perturbationFactors": return "perturbation factors \(value) (fixed, not a flag)"
        default: return "\(flag(field)) \(value)"
        }
    }

    /// Refuses settings that cannot run, naming the flag (`settings(over:)`
    /// is checked once the run they resume is known).
    static func check(_ settings: PBTSettings) throws {
        do { try settings.validate() } catch { throw flagError(error) }
        // The explore method with this space (PB2 and a choice), a usage error as the others are (it exited 1, not 64: found by a helper).
        do { _ = try ExploreStrategies.pbtwave.strategy(for: settings) } catch let error as PBTConfigError { throw flagError(error) }
    }

    /// `error` named by the flag that sets its field.
    private static func flagError(_ error: PBTConfigError) -> ValidationError {
        // W is --workers (the PBT's concurrency, stored with the run), not
        // --local-workers (the threads on this machine).
        let hint = if case .populationBelowWorkers = error { " (W is --workers, default 5; --local-workers is this machine's share)" } else { "" }
        return ValidationError("\(flag(error.field)): \(error)\(hint)")
    }

    /// `--lr-mutate-min/max`, each defaulting to the prior's bound; nil when neither is given.
    var mutationRange: ClosedRange<Double>? {
        guard lrMutateMin != nil || lrMutateMax != nil else { return nil }
        let lower = lrMutateMin ?? lrMin ?? 1e-4, upper = lrMutateMax ?? lrMax ?? 3e-2
        return lower <= upper ? lower...upper : nil  // refused by validate()
    }

    func validate() throws {
        guard totalSteps == nil || generations == nil else { throw ValidationError("give either --total-steps or --generations, not both") }
        if truncationFraction != nil, selection != .truncation {
            throw ValidationError("--truncation-fraction applies only to --selection truncation")
        }
        // Random search never explores (found by a helper: --explore pb2 was taken and did nothing).
        if selection == .independent, let explore, explore != .perturb {
            throw ValidationError("--explore \(explore.rawValue) has nothing to do under --selection independent (random search never explores): give one or the other")
        }
        if space != nil, lrMin != nil || lrMax != nil {
            throw ValidationError("give --space or --lr-min/--lr-max, not both (put lr in the space file)")
        }
        if space != nil, lrMutateMin != nil || lrMutateMax != nil {
            throw ValidationError("--lr-mutate-min/--lr-mutate-max apply to the learning rate alone, not to a --space file")
        }
        for (flag, value) in [("--lr-min", lrMin), ("--lr-max", lrMax), ("--lr-mutate-min", lrMutateMin), ("--lr-mutate-max", lrMutateMax)] {
            if let value, !value.isFinite { throw ValidationError("\(flag) must be a finite number (got \(value))") }
        }
        guard (lrMutateMin ?? lrMin ?? 1e-4) <= (lrMin ?? 1e-4), (lrMutateMax ?? lrMax ?? 3e-2) >= (lrMax ?? 3e-2) else {
            throw ValidationError("--lr-mutate-min must be at most --lr-min and --lr-mutate-max at least --lr-max: the mutation range contains the prior")
        }
        // What the flags alone decide is refused now, as a usage error; what also
        // depends on flags not given waits for the run they may resume (`check`).
        let given = try settings()
        do { try given.validate() } catch {
            let dependsOnOthers = switch error {
            case .populationBelowWorkers: workers == nil
            case .budgetBelowOneGeneration: workers == nil || trialSteps == nil
            case .exploreUnavailable, .exploreUnsupported: explore == nil || (space == nil && lrMin == nil && lrMax == nil)
            default: false
            }
            if !dependsOnOthers { throw Self.flagError(error) }
        }
    }

    /// The flag that sets a settings field (`PBTConfigError.field`,
    /// `SettingDifference.field`; `model.X` is a runner option `--X`).
    static func flag(_ field: String) -> String {
        let flags = [
            "workers": "--workers", "population": "--population", "trialSteps": "--trial-steps",
            "budget": "--total-steps/--generations", "totalSteps": "--total-steps", "generations": "--generations",
            "searchSpace": "--space or --lr-min/--lr-max", "mutationBounds": "--lr-mutate-min/--lr-mutate-max", "explore": "--explore",
            "selection": "--selection/--truncation-fraction", "truncationFraction": "--truncation-fraction",
            "opponentGenerations": "--opponent-generations", "resampleProbability": "--resample-probability",
            "perturbationFactors": "perturbation factors", "seed": "--seed", "deterministic": "--deterministic", "model": "--model",
            "recipe.command.program": "the program after --", "recipe.command.arguments": "the program's arguments after --",
            "recipe.training.batch": "--batch", "recipe.training.window": "--window", "recipe.training.context": "--context",
            "recipe.training.precision": "--precision", "recipe.evaluation.windows": "--eval-windows",
            "recipe.evaluation.targets": "--eval-targets", "recipe.corpus": "--corpus",
        ]
        if field.hasPrefix("recipe.model.") { return "--preset/--model-config (\(field.dropFirst(13)))" }
        if field.hasPrefix("recipe.corpus.") { return "--corpus (its \(field.dropFirst(14)))" }
        return flags[field] ?? (field.hasPrefix("model.") ? "--" + field.dropFirst(6) : field)
    }
}
