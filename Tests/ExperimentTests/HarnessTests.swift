import Foundation
import PBT
import Experiment
import Report
import PBTExamples
import Synchronization
import Testing

/// The experiment harness driven by the toy runner (a noisy quadratic), so
/// the whole pipeline — four methods × seeds as PBT runs, equal compute,
/// winner replay, report — runs in a second.
@Suite struct HarnessTests {
    static let preset = ExperimentPreset(
        name: "test", model: "toy", batch: 1, window: 1, evalWindows: 1, evalTargets: 1,
        trialSteps: 5, totalSteps: 200, seeds: 2, workers: 2, lrMin: 1e-3, lrMax: 3e-1, fixedLR: 1e-2)

    final class Counter: Sendable { let value = Mutex(0) }

    func makeHarness(_ directory: URL, replays: Counter) throws -> ExperimentHarness<ToyQuadraticRunner> {
        try ExperimentHarness(preset: Self.preset, directory: directory, runner: ToyQuadraticRunner(), model: "toy",
                              modelOptions: [:], machine: "test") { file in
            replays.value.withLock { $0 += 1 }
            #expect((file.endStep ?? 0) > 0 && file.rows.first?.step == 0)
            return 0.5
        }
    }

    @Test func runsEveryMethodWithEqualComputeAndResumesWithoutRedoingWork() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("harness-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let replays = Counter()
        let results = try makeHarness(directory, replays: replays).run()

        #expect(results.runs.count == 4 * 2)
        #expect(Set(results.runs.map(\.method)) == [MethodName.pbt5x5, MethodName.pbt5x20, MethodName.randomSearch, MethodName.fixedLR])
        for run in results.runs {
            #expect(run.trials.reduce(0) { $0 + $1.steps } == Self.preset.totalSteps, "\(run.method) seed \(run.seed) spent other compute")
            #expect(run.trials.map(\.completionIndex).sorted() == Array(0..<run.trials.count))
            let lrs = Set(run.trials.compactMap(\.learningRate))
            switch run.method {
            case MethodName.fixedLR: #expect(lrs == [1e-2])
            case MethodName.randomSearch: #expect(lrs.count <= 2 + run.trials.filter { $0.parent == nil }.count)
            case MethodName.pbt5x20: #expect(run.population == 8)
            default: #expect(run.population == 2)
            }
            // Tournament losers only where a tournament chose the parent.
            if !run.isPBT { #expect(run.trials.allSatisfy { $0.tournamentLoser == nil }) }
        }
        #expect(results.replays.count == 1 && results.replays[0].replayNLL == 0.5)
        for file in ["report.html", "report.md", "results.json", "curves.csv", "trials.csv", "schedule.csv", "replay.json"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path), "\(file) missing")
        }

        // Running again finds every run complete: same results, no new replay.
        let again = try makeHarness(directory, replays: replays).run()
        #expect(replays.value.withLock { $0 } == 1)
        #expect(again.runs.map { $0.trials.map(\.validationNLL) } == results.runs.map { $0.trials.map(\.validationNLL) })
    }

    @Test func rejectsPresetsThatCannotBeFair() {
        var p = Self.preset
        p.totalSteps = 30  // below one PBT-5x20 generation (4 × workers × trial steps = 40)
        #expect(throws: ExperimentError.self) { try p.validate() }
        p = Self.preset
        p.seeds = 0
        #expect(throws: ExperimentError.self) { try p.validate() }
        p = Self.preset
        p.lrMin = 0.5
        #expect(throws: ExperimentError.self) { try p.validate() }
        #expect(throws: Never.self) { try ExperimentPreset.quick.validate(); try ExperimentPreset.paper.validate() }
    }
}
