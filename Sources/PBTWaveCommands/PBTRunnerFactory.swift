import ArgumentParser
import PBT

/// The models `pbtwave pbt --model` can tune: the hook for new runners.
///
/// To add a model (e.g. `wavenet`): add a case here, put its options in an
/// `@OptionGroup` on `PBTCommand` (as `ToyModelOptions`), and add a branch to
/// `PBTRunnerFactory.options` (options that change results, stored with the
/// run and compared on resume) and `PBTRunnerFactory.makeRunner`.
public enum PBTModel: String, ExpressibleByArgument, CaseIterable, Sendable {
    case toy
}

/// Options of the toy model (a noisy quadratic, see `ToyQuadraticRunner`).
public struct ToyModelOptions: ParsableArguments {
    @Option(name: .customLong("toy-trial-ms"), help: ArgumentHelp(
        "Toy model: sleep this many milliseconds per trial, to stand in for real training.", visibility: .hidden))
    public var trialMilliseconds: Int = 0

    public init() {}

    public func validate() throws {
        guard trialMilliseconds >= 0 else { throw ValidationError("--toy-trial-ms must be 0 or more (got \(trialMilliseconds))") }
    }
}

public enum PBTRunnerFactory {
    /// Runner options that change results; stored with the run and compared
    /// on resume, reported as `--<key>` when they differ.
    public static func options(_ model: PBTModel, toy: ToyModelOptions) -> [String: String] {
        switch model {
        case .toy: return [:]  // --toy-trial-ms changes timing only
        }
    }

    public static func makeRunner(_ model: PBTModel, toy: ToyModelOptions) throws -> any TrialRunner {
        switch model {
        case .toy: return ToyQuadraticRunner(simulatedWork: .milliseconds(toy.trialMilliseconds))
        }
    }
}
