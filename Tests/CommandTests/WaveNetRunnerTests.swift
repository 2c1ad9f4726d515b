import Foundation
import PBT
import PBTWaveAudio
import PBTWaveModel
import PBTWaveRunner
import Testing
import TestSupport

/// The WaveNet as PBT's black box, in-process: a trial another worker took
/// over (`TrialRunner.abandon`) stops training at its next step instead of
/// running to its end for a result the store would ignore.
@Suite struct WaveNetRunnerTests {
    static func runner() throws -> WaveNetRunner {
        let corpus = try SpeechCorpus.load(directory: realCorpusDirectory(), verifyChecksums: false)
        let recipe = TrainingRecipe(model: .tiny, training: TrainingOptions(batch: 1, window: 512),
                                    evaluation: EvaluationOptions(windows: 2, targets: 512), seed: 1)
        return try WaveNetRunner(recipe: recipe, corpus: corpus)
    }

    static func trial(steps: Int) -> TrialSpec {
        TrialSpec(id: 7, generation: 0, parentID: nil, hyperparameters: Hyperparameters(["lr": .number(3e-3)]), startStep: 0,
                  steps: steps, seed: 3)
    }

    /// A fresh folder (remove it after), the runner, and trial 7's output in the folder.
    static func setUp() throws -> (dir: URL, runner: WaveNetRunner, output: CheckpointRef) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wavenet-runner-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return (dir, try runner(), CheckpointRef(url: dir.appendingPathComponent("trial-7.1.ckpt")))
    }

    @Test(.timeLimit(.minutes(1))) func anAbandonedTrialStopsAtItsNextStepAndWritesNothing() throws {
        let (dir, runner, output) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        var worker = try runner.makeWorker(index: 0)
        // A million steps: only the stop ends this run within the test.
        let long = Self.trial(steps: 1_000_000)
        runner.abandon(long, output: output, because: "attempt 1's lease lapsed")
        #expect(throws: TrialRunnerError.abandoned(trial: 7, reason: "attempt 1's lease lapsed")) {
            try worker.run(long, parent: nil, output: output)
        }
        #expect(!FileManager.default.fileExists(atPath: output.path), "an abandoned trial wrote its checkpoint")

        // The mark went with that run: the next one into the same place trains to its end.
        let outcome = try worker.run(Self.trial(steps: 2), parent: nil, output: output)
        #expect(outcome.evaluation.isFinite)
        #expect(FileManager.default.fileExists(atPath: output.path))
        // Another trial's output is not affected by an abandoned one.
        runner.abandon(long, output: CheckpointRef(path: output.path + ".other"), because: "another")
        #expect(try worker.run(Self.trial(steps: 2), parent: nil, output: output).evaluation.isFinite)
    }

    /// A trial's checkpoint records the validation windows it was scored on
    /// and the corpus it was trained on, so `pbtwave evaluate` scores it the
    /// same way and says when it is given another corpus.
    @Test func aTrialsCheckpointRecordsItsValidationWindowsAndCorpus() throws {
        let (dir, runner, output) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        var worker = try runner.makeWorker(index: 0)
        _ = try worker.run(Self.trial(steps: 1), parent: nil, output: output)
        let metadata = try WaveNet.load(from: output.path).header.metadata
        #expect(EvaluationOptions.recorded(in: metadata) == (2, 512))
        #expect(metadata[CorpusIdentity.metadataKey] == CorpusIdentity(runner.corpus).digest)
        #expect(!CorpusIdentity(runner.corpus).differs(fromRecordedIn: metadata))
        #expect(metadata["window"] == "512" && metadata["batch"] == "1" && metadata["trial"] == "7")
    }
}
