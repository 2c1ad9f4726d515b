import Foundation
import PBTReport

/// Builds synthetic trial tables whose curves can be worked out by hand.
enum Fixture {
    static let stepsPerTrial = 100

    /// A run whose trials finish in the order given, each `stepsPerTrial`
    /// steps. Trial i continues lineage `i % lineages`, so it starts at
    /// model iteration `(i / lineages) * stepsPerTrial`.
    static func run(_ method: String, seed: Int, nlls: [Double?], lineages: Int = 1, workers: Int = 5, population: Int = 5,
                    lr: Double = 1e-3) -> MethodRun {
        let trials = nlls.enumerated().map { index, nll in
            let previous = index - lineages
            return TrialResult(
                id: index, parent: previous >= 0 ? previous : nil, generation: index / lineages,
                hyperparameters: ["lr": lr], startStep: (index / lineages) * stepsPerTrial, steps: stepsPerTrial,
                validationNLL: nll, completionIndex: index)
        }
        return MethodRun(method: method, seed: seed, workers: workers, population: population, trials: trials, wallSeconds: 10)
    }

    static func results(_ runs: [MethodRun], replays: [ReplayResult] = [], budget: Int? = nil) -> ExperimentResults {
        ExperimentResults(
            preset: "test", modelPreset: "none", machine: "test", stepsPerTrial: stepsPerTrial,
            totalStepsPerMethod: budget ?? (runs.map(\.totalCompute).max() ?? 0), runs: runs, replays: replays,
            startedAt: "2025-01-01T00:00:00Z", wallSeconds: 1)
    }

    /// The same sequence shifted by `offset` bits.
    static func shifted(_ nlls: [Double], _ offset: Double) -> [Double?] {
        nlls.map { $0 + offset }
    }

    static func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("pbtwave-report-tests-\(UUID().uuidString)")
    }
}

/// The largest absolute difference between two equally long sequences.
func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "sequences differ in length: \(a.count) vs \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}
