import Foundation

/// A PBT setting that cannot work. Thrown before anything runs.
public enum PBTConfigError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case invalidWorkers(Int)
    case populationBelowWorkers(population: Int, workers: Int)
    case invalidTrialSteps(Int)
    case budgetBelowOneGeneration(totalSteps: Int, generationSteps: Int)
    case invalidGenerations(Int)
    case emptySearchSpace
    case invalidHyperparameterName(String)
    case duplicateHyperparameter(String)
    case collidingHyperparameterNames(String, String, shellName: String)
    case invalidBounds(name: String, lower: Double, upper: Double)
    case nonPositiveLogBound(name: String, lower: Double)
    case invalidChoices(name: String, choices: [String])
    /// A choice given twice (`1` and `1.0`, or two spellings of one name that differ only in Unicode normalisation).
    case duplicateChoice(name: String, choice: String)
    case invalidMutationBounds(name: String, reason: String)
    /// The settings ask for an explore strategy this program was not given.
    case exploreUnavailable(ExploreMethod)
    /// The explore strategy cannot work with these settings.
    case exploreUnsupported(method: ExploreMethod, reason: String)
    case invalidTruncationFraction(Double)
    case invalidOpponentGenerations(Int)
    case invalidResampleProbability(Double)
    case invalidPerturbationFactors([Double])
    /// A size past what a run can hold (`field` as `field` names it).
    case tooLarge(field: String, value: Int, limit: Int)
    /// A `DriverOptions` time that is not a positive finite number of seconds.
    case invalidDriverTime(field: String, value: Double)
    /// A negative `DriverOptions.maxFailuresInARow`.
    case invalidFailureLimit(Int)

    public var description: String {
        switch self {
        case .invalidWorkers(let w):
            return "workers must be at least 1 (got \(w))"
        case .populationBelowWorkers(let p, let w):
            return "population (\(p)) must be at least the number of workers (\(w)): population >= workers >= 1"
        case .invalidTrialSteps(let s):
            return "trial steps must be at least 1 (got \(s))"
        case .budgetBelowOneGeneration(let t, let g):
            return "total steps (\(t)) must cover at least one generation: population × trial steps = \(g)"
        case .invalidGenerations(let g):
            return "generations must be at least 1 (got \(g))"
        case .emptySearchSpace:
            return "the search space has no hyperparameters"
        case .invalidHyperparameterName(let n):
            return "hyperparameter name '\(n)' must be non-empty ASCII letters, digits, '_' or '-', and not 'step' (a schedule file's first column)"
        case .duplicateHyperparameter(let n):
            return "hyperparameter '\(n)' is defined twice"
        case .collidingHyperparameterNames(let a, let b, let shellName):
            return "hyperparameters '\(a)' and '\(b)' would both reach a program as PBT_HP_\(shellName) ('-' is also given as '_', which shells can read): rename one"
        case .invalidBounds(let n, let lo, let hi):
            return "hyperparameter '\(n)': bounds must be finite with min ≤ max, and max − min finite too (equal bounds fix the value) (got [\(lo), \(hi)])"
        case .nonPositiveLogBound(let n, let lo):
            return "hyperparameter '\(n)' is log-scaled, so its lower bound must be positive (got \(lo))"
        case .invalidChoices(let n, let c):
            return "hyperparameter '\(n)': \(Self.choicesProblem(c))"
        case .duplicateChoice(let n, let c):
            return "hyperparameter '\(n)': the choice \(c) is given twice (as equal numbers, such as 1 and 1.0, or as names that differ only in their Unicode form); give each once"
        case .invalidMutationBounds(let n, let reason):
            return "hyperparameter '\(n)': the mutation range \(reason)"
        case .exploreUnavailable(let method):
            return "the run explores with \(method.rawValue), which this program does not provide; use pbtwave, or, in a program of your own, pass the strategies that have it to PBTCoordinator.open (explorers: ExploreStrategies.withPB2, from the PB2 library)"
        case .exploreUnsupported(let method, let reason):
            return "explore \(method.rawValue) cannot be used here: \(reason)"
        case .invalidTruncationFraction(let f):
            return "truncation fraction must be in (0, 0.5] (got \(f))"
        case .invalidOpponentGenerations(let g):
            return "opponent generations must be 1 or 2 (got \(g))"
        case .invalidResampleProbability(let p):
            return "resample probability must be in [0, 1] (got \(p))"
        case .invalidPerturbationFactors(let f):
            return "perturbation factors must be a non-empty list of positive numbers (got \(f))"
        case let .tooLarge(field, value, limit):
            let what = ["workers": "workers", "population": "population", "trialSteps": "trial steps", "generations": "generations",
                        "budget": "the trial budget", "totalSteps": "the steps of the longest lineage"][field] ?? field
            return "\(what) must be at most \(limit) (got \(value))"
        case let .invalidDriverTime(field, value):
            return "\(field) must be a positive number of seconds (got \(value))"
        case .invalidFailureLimit(let n):
            return "the limit of failures in a row must be 0 (never stop) or more (got \(n))"
        }
    }

    public var errorDescription: String? { description }

    /// The `PBTSettings` field to change (as `SettingDifference.field` names
    /// it; `truncationFraction` is the fraction inside `selection`).
    public var field: String {
        switch self {
        case .invalidWorkers: return "workers"
        case .populationBelowWorkers: return "population"
        case .invalidTrialSteps: return "trialSteps"
        case .budgetBelowOneGeneration: return "totalSteps"
        case .invalidGenerations: return "generations"
        case .emptySearchSpace, .invalidHyperparameterName, .duplicateHyperparameter, .collidingHyperparameterNames, .invalidBounds, .nonPositiveLogBound, .invalidChoices, .duplicateChoice:
            return "searchSpace"
        case .invalidMutationBounds: return "mutationBounds"
        case .exploreUnavailable, .exploreUnsupported: return "explore"
        case .invalidTruncationFraction: return "truncationFraction"
        case .invalidOpponentGenerations: return "opponentGenerations"
        case .invalidResampleProbability: return "resampleProbability"
        case .invalidPerturbationFactors: return "perturbationFactors"
        case .tooLarge(let field, _, _), .invalidDriverTime(let field, _): return field
        case .invalidFailureLimit: return "maxFailuresInARow"
        }
    }
}

/// A trial store that cannot be used as asked.
public enum PBTStoreError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The file exists but is not an SQLite database, or not one of ours.
    case notAStore(path: String, reason: String)
    /// The SQLite file cannot be opened or created (a missing folder…).
    case cannotOpen(path: String, reason: String)
    case schemaVersion(path: String, found: Int, supported: Int)
    case sqlite(code: Int32, message: String, context: String)
    case runExists(String)
    case runNotFound(String)
    case malformedRecord(String)
    /// The run was created with other settings (`differences` name them).
    case configMismatch(run: String, differences: [SettingDifference])
    case locked(path: String)
    /// Locked by this very process (a run directory or store opened twice in one program).
    case lockedByThisProcess(path: String)
    /// A budget raised on a run that is not complete: its trials may be
    /// running elsewhere under the old budget.
    case budgetRaisedBeforeTheEnd(run: String, done: Int, budget: Int)
    /// A run name that is empty (or only spaces) or holds a control
    /// character (a line break would garble the run directory's marker).
    case invalidRunName(String)

    /// Throws ``invalidRunName(_:)`` unless `name` can name a run.
    public static func checkRunName(_ name: String) throws {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { throw invalidRunName(name) }
    }

    public var description: String {
        switch self {
        case .invalidRunName(let n):
            return n.trimmingCharacters(in: .whitespaces).isEmpty
                ? "a run needs a name, not an empty one (got \(String(reflecting: n)))"
                : "a run needs a name without line breaks or other control characters (got \(String(reflecting: n)))"
        case .notAStore(let p, let r):
            return "\(p) is not a PBTWave trial store (\(r)): give a PBT run's directory or store (a new run, a new directory)"
        case .cannotOpen(let p, let r):
            return "cannot open the trial store \(p): \(r)"
        case .schemaVersion(let p, let found, let supported):
            return "\(p) has trial-store schema version \(found), this build supports \(supported)"
        case .sqlite(let code, let message, let context) where code & 0xFF == 13:  // SQLITE_FULL
            // Said as a full disk is elsewhere (found by a helper: the bare SQLite error, at the worst moment).
            return "the disk holding the trial store is full (SQLite error \(code), \(message), during \(context)). "
                + "What the store holds is intact: a change it could not write was rolled back, and a trial whose result it "
                + "could not record runs again. Free some space, then run the same command again"
        case .sqlite(let code, let message, let context):
            return "SQLite error \(code) (\(message)) during \(context)"
        case .runExists(let n):
            return "a run named '\(n)' already exists in this store"
        case .runNotFound(let n):
            return "no run named '\(n)' in this store"
        case .budgetRaisedBeforeTheEnd(let n, let done, let budget):
            return "run '\(n)' is not complete (\(done) of its \(budget) trials done): its budget can be raised once it is; "
                + "resume it with its own budget first"
        case .malformedRecord(let m):
            return "malformed record in the trial store: \(m)"
        case .configMismatch(let run, let d):
            return "run '\(run)' was created with other settings: " + d.map(\.description).joined(separator: "; ")
        case .locked(let p):
            return "\(p) is in use by another pbtwave process; wait for it or kill it first"
        case .lockedByThisProcess(let p):
            return "\(p) is already in use by this process (opened twice in one program): use the one open, or release it first"
        }
    }

    public var errorDescription: String? { description }
}

extension PBTConfigError {
    /// Which of the choices (as written) is the trouble, and why: the rule
    /// list alone left the user to find it (found by a helper, with "1e3"
    /// among names).
    static func choicesProblem(_ choices: [String]) -> String {
        func shown(_ c: String) -> String { c.unicodeScalars.contains { $0.properties.generalCategory == .control } ? String(reflecting: c) : "'\(c)'" }
        guard !choices.isEmpty else { return "it has no choices; give at least one" }
        // Each choice as the number it reads as, if it reads as one.
        let read = choices.map { (text: $0, number: Double($0.trimmingCharacters(in: .whitespaces))) }
        let numeric = read.filter { $0.number != nil }.map(\.text)
        if let bad = read.first(where: { $0.number == nil && !HyperparameterValue.isValidCategory($0.text) }) {
            return "the choice \(shown(bad.text)) cannot be a name: a name must be \(HyperparameterValue.categoryRule)"
        }
        if let infinite = read.first(where: { $0.number.map { !$0.isFinite } == true }) {
            return "the choice \(shown(infinite.text)) is not a finite number (nor, as it reads as one, a name)"
        }
        if let name = read.first(where: { $0.number == nil })?.text, let number = numeric.first {
            return "the choice \(shown(number)) reads as a number while \(shown(name)) is a name: give all numbers (without quotes) or all names"
        }
        return "the choice \(shown(numeric.first ?? choices[0])) reads as a number: give numbers without quotes, as a numeric choice"
    }
}
