import Foundation
import PBT
import PBTExamples
@testable import PBTExperiment
import Testing

/// A run's wall time counts while its trials run: the time a stopped
/// experiment stood before its resume is left out (found by a helper: 33 s
/// of "wall time per run" for 1 s of training and a 20-s stop), and a
/// resumed session's workers are the same slots, not new ones.
@Suite struct RunClockTests {
    @Test func theClockStandsWhileNoTrialRuns() {
        // Created at 0, trials 0.5–1, 0.8–2 (overlapping), a stop, then 100–101.
        let clock = ActiveClock([(0.5, 1), (0.8, 2), (100, 101)], start: 0)
        #expect(clock.seconds(at: 1.5) == 1.5, "the run's setup before its first trial counts")
        #expect(clock.seconds(at: 50) == 2)
        #expect(clock.seconds(at: 101) == 3)
        #expect(ActiveClock([], start: 5).seconds(at: 10) == 0)
    }

    @Test func aResumedRunsTimesAndWorkersAreItsOwn() throws {
        func trial(_ id: Int, worker: String, started: Double, finished: Double) -> TrialRecord {
            var t = TrialRecord(spec: TrialSpec(id: id, generation: 0, parentID: nil, hyperparameters: Hyperparameters(["lr": .number(0.01)]),
                                                startStep: 0, steps: 10, seed: UInt64(id), operations: "", refillOf: nil), createdAt: 0)
            t.status = .finished
            t.evaluation = 5
            t.workerID = worker
            t.startedAt = started
            t.finishedAt = finished
            return t
        }
        let trials = [trial(1, worker: "host:10/w0", started: 0, finished: 1), trial(2, worker: "host:10/w1", started: 0, finished: 1.5),
                      trial(3, worker: "host:22/w0", started: 1000, finished: 1001), trial(4, worker: "host:22/w1", started: 1000, finished: 1002)]
        let settings = PBTSettings(population: 2, workers: 2, trialSteps: 10, budget: .generations(2))
        let run = ExperimentHarness<ToyQuadraticRunner>.methodRun(method: ExperimentPreset.smoke.methods[0], seed: 0, settings: settings, trials: trials, selections: [])
        #expect(run.wallSeconds == 3.5)
        #expect(run.trials.map(\.wallSeconds) == [1, 1.5, 2.5, 3.5])
        #expect(run.trials.map(\.worker) == [0, 1, 0, 1])
    }
}
