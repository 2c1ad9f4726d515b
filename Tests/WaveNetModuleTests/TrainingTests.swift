import Foundation
import PBTSchedules
import PBTSeededRNG
import PBTWaveAudio
import Testing
import TestSupport
import PBTWaveModel

@Suite struct TrainingTests {
    /// A training window shorter than the receptive field gets a note (its
    /// farthest taps would train on zero padding only); one that covers it
    /// gets none. Compact's receptive field is 2,048 samples.
    @Test func aWindowShorterThanTheReceptiveFieldGetsANote() throws {
        let field = WaveNetConfig.compact.receptiveField
        #expect(field == 2048)
        let short = TrainingOptions(batch: 1, window: 100)
        let note = try #require(short.receptiveFieldNote(for: .compact))
        #expect(note.contains("receptive field (2048 samples) is longer than a training window (--window 100 + --context 0 = 100)"), "\(note)")
        #expect(note.contains("at least 2048"), "\(note)")
        // Context counts: window + context = the receptive field is enough.
        #expect(TrainingOptions(batch: 1, window: 100, context: field - 100).receptiveFieldNote(for: .compact) == nil)
        #expect(TrainingOptions(batch: 1, window: 100, context: field - 101).receptiveFieldNote(for: .compact) != nil)
        #expect(TrainingOptions().receptiveFieldNote(for: .compact) == nil, "the default window (8192) covers compact's field")
        #expect(TrainingOptions(batch: 1, window: 16).receptiveFieldNote(for: .tiny) != nil)
        #expect(TrainingOptions(batch: 1, window: 32).receptiveFieldNote(for: .tiny) == nil)
    }

    /// The validator's scored codes are exactly each window's last
    /// `targets` codes (w[C+1 … C+T]): a clip that counts up 0, 1, 2, …
    /// makes every window's targets the codes just past its context.
    @Test func theScoredCodesAreEachWindowsTargets() throws {
        let clip = Clip(name: "ramp", codes: (0 ..< 2000).map { UInt8($0 % 256) })
        let clips = ClipSet(source: "ramp", clips: [clip], sampleRate: 16000)
        let validator = try Validator(clips: clips, config: .tiny, count: 3, targets: 100)
        var expected = [Int](repeating: 0, count: 256)
        for origin in validator.windows.origins {
            // Window codes are clip codes from origin.start; targets are offsets C+1 … C+T.
            for offset in (validator.context + 1) ... (validator.context + validator.targets) { expected[(origin.start + offset) % 256] += 1 }
        }
        #expect(validator.scoredCodeHistogram() == expected)
        #expect(validator.scoredCodeHistogram().reduce(0, +) == 3 * 100)
    }

    /// Windows that overlap (a validation set shorter than they are) are
    /// counted and named: found by a user, 16 windows scored 2,752
    /// distinct samples and were reported as 16 × 2,752. Checked against a
    /// naive count of the positions any window scores.
    @Test(arguments: [(2000, 3, 100), (400, 16, 200), (2000, 2, 64), (700, 5, 300)])
    func overlappingValidationWindowsAreCounted(length: Int, count: Int, targets: Int) throws {
        let clips = ClipSet(source: "ramp", clips: [Clip(name: "a", codes: [UInt8](repeating: 1, count: length)),
                                                    Clip(name: "b", codes: [UInt8](repeating: 2, count: length / 2 + 300))], sampleRate: 16000)
        let validator = try Validator(clips: clips, config: .tiny, count: count, targets: targets)
        var scored = Set<[Int]>()
        for origin in validator.windows.origins {
            for offset in (validator.context + 1) ... (validator.context + targets) { scored.insert([origin.clip, origin.start + offset]) }
        }
        #expect(validator.distinctTargets == scored.count)
        #expect((validator.overlapNote != nil) == (scored.count < count * targets), "\(validator.overlapNote ?? "no note")")
    }

    /// The tiny model overfits a short real clip: after 200 steps on one
    /// quarter-second of speech, its loss on that clip is far below the start.
    @Test func tinyModelOverfitsAShortRealClip() throws {
        let corpus = try SpeechCorpus.load(directory: realCorpusDirectory(), verifyChecksums: false)
        let source = try #require(corpus.train.clips.first { $0.codes.count >= 8000 })
        let clip = Clip(name: source.name, codes: Array(source.codes[4000..<8000]))
        let clips = ClipSet(source: "one clip", clips: [clip], sampleRate: 16000)
        let model = try WaveNet(config: .tiny, seed: 1)
        let trainer = try Trainer(model: model, clips: clips, options: TrainingOptions(batch: 4, window: 512), dataRNG: Xoshiro256(seed: 2))
        let validator = try Validator(clips: clips, config: .tiny, count: 4, targets: 512)
        let before = validator.nllBits(model)
        var losses: [Double] = []
        let summary = try trainer.run(until: 200, schedule: try LearningRateSchedule(constant: 3e-3)) { losses.append($0.loss) }
        #expect(!summary.diverged)
        let after = validator.nllBits(model)
        print("overfit: NLL on the clip \(before) → \(after) bits; training loss \(losses.first!) → \(losses.last!)")
        #expect(losses.allSatisfy { $0.isFinite })
        #expect(after < 0.6 * before, "NLL on the training clip should fall far below its start (\(before) → \(after))")
        #expect(model.step == 200)
    }

    static let rampClips = ClipSet(source: "synthetic", clips: [Clip(name: "ramp", codes: (0..<3000).map { UInt8($0 % 256) })],
                                   sampleRate: 16000)

    @Test func scheduleIsConsultedWithTheGlobalStep() throws {
        let model = try WaveNet(config: .tiny, seed: 3)
        let trainer = try Trainer(model: model, clips: Self.rampClips, options: TrainingOptions(batch: 1, window: 64), dataRNG: Xoshiro256(seed: 4))
        let schedule = try LearningRateSchedule(points: [.init(step: 0, rate: 1e-3), .init(step: 2, rate: 2e-3), .init(step: 4, rate: 3e-3)])
        var seen: [(Int, Float)] = []
        _ = try trainer.run(until: 3, schedule: schedule) { seen.append(($0.step, $0.learningRate)) }
        _ = try trainer.run(until: 5, schedule: schedule) { seen.append(($0.step, $0.learningRate)) }
        #expect(seen.map(\.0) == [1, 2, 3, 4, 5])
        #expect(seen.map(\.1) == [1e-3, 1e-3, 2e-3, 2e-3, 3e-3])
    }

    /// A folder of its own for a checkpoint, and a tiny model's trainer on the ramp.
    static func tinyRun() throws -> (dir: URL, model: WaveNet, trainer: Trainer) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let model = try WaveNet(config: .tiny, seed: 3)
        return (dir, model, try Trainer(model: model, clips: rampClips, options: TrainingOptions(batch: 1, window: 64), dataRNG: Xoshiro256(seed: 4)))
    }

    /// `stop` ends a run after the step it answers true, with the checkpoint
    /// written at that step (not only at the last periodic one).
    @Test func aStoppedRunCheckpointsWhereItStopped() throws {
        let (dir, model, trainer) = try Self.tinyRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.ckpt").path
        let summary = try trainer.run(until: 100, schedule: try LearningRateSchedule(constant: 1e-3), checkpoint: CheckpointPlan(path: path, every: 5),
                                      stop: { model.step >= 7 })
        #expect(summary.stoppedAt == 7 && model.step == 7)
        #expect(try WaveNet.load(from: path).model.step == 7)
        let unstopped = try trainer.run(until: 9, schedule: try LearningRateSchedule(constant: 1e-3), stop: { false })
        #expect(unstopped.stoppedAt == nil && model.step == 9)
    }

    /// A stop during a validation ends it and the run, at the last step too
    /// (found by a helper: a signal during the last step's long validation
    /// said "stopping", then the run validated for minutes and ended as if
    /// never stopped). The checkpoint holds that step; a run to the same end
    /// then only validates.
    @Test func aStopDuringAValidationEndsItAndTheRun() throws {
        let (dir, model, trainer) = try Self.tinyRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.ckpt").path
        let validator = try Validator(clips: Self.rampClips, config: .tiny, count: 6, targets: 16)
        let schedule = try LearningRateSchedule(constant: 1e-3)
        // Asked before each of the last step's windows: true from the third on.
        var asked = 0
        let summary = try trainer.run(until: 4, schedule: schedule, validator: validator, evaluateEvery: 2,
                                      checkpoint: CheckpointPlan(path: path), stop: {
                                          if model.step == 4 { asked += 1 }
                                          return asked > 2
                                      })
        #expect(asked == 4, "asked before 3 windows (the validation stopped at its third), then once after it")
        #expect(summary.stoppedAt == 4 && model.step == 4)
        let atTwo = try #require(summary.validationNLL, "step 2's validation is the last that finished")
        #expect(try WaveNet.load(from: path).model.step == 4)
        // In the middle of a run: that validation is cut short, the run stops at its step.
        let (otherDir, other, second) = try Self.tinyRun()
        defer { try? FileManager.default.removeItem(at: otherDir) }
        let cut = try second.run(until: 10, schedule: schedule, validator: validator, evaluateEvery: 2, stop: { other.step == 2 })
        #expect(cut.stoppedAt == 2 && other.step == 2 && cut.validationNLL == nil)
        // A run at its end only validates: stopped, or to the end.
        #expect(try trainer.run(until: 4, schedule: schedule, validator: validator, stop: { true }).stoppedAt == 4)
        let finished = try trainer.run(until: 4, schedule: schedule, validator: validator, stop: { false })
        #expect(finished.stoppedAt == nil && finished.validationNLL == validator.nllBits(model) && finished.validationNLL != atTwo)
    }

    /// A run that diverges stops at once, says where, and leaves no checkpoint
    /// (a checkpoint never holds a diverged model).
    @Test func divergenceStopsTheRunWithoutACheckpoint() throws {
        let model = try WaveNet(config: .tiny, seed: 3)
        let trainer = try Trainer(model: model, clips: Self.rampClips, options: TrainingOptions(batch: 1, window: 64), dataRNG: Xoshiro256(seed: 4))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("diverged-\(UUID().uuidString).ckpt").path
        let summary = try trainer.run(until: 50, schedule: try LearningRateSchedule(constant: 1e30),
                                      checkpoint: CheckpointPlan(path: path, every: 1))
        let divergence = try #require(summary.divergence)
        #expect(!divergence.loss.isFinite || divergence.inState)
        #expect(model.step == divergence.step && divergence.step < 50)
        #expect(divergence.step == 1 || FileManager.default.fileExists(atPath: path), "steps before the divergence were checkpointed")
        if FileManager.default.fileExists(atPath: path) {
            let (saved, _) = try WaveNet.load(from: path)
            #expect(saved.step < divergence.step, "the checkpoint is from before the divergence")
            try FileManager.default.removeItem(atPath: path)
        }
    }

    /// Adam's second moment can overflow while the loss stays finite: that
    /// is a divergence too, and no checkpoint is written (it was, and no
    /// reader accepted it: "holds a non-finite value").
    @Test func anOverflowedOptimizerStateIsADivergenceWithoutACheckpoint() throws {
        let model = try WaveNet(config: .tiny, seed: 3)
        let trainer = try Trainer(model: model, clips: Self.rampClips, options: TrainingOptions(batch: 1, window: 64), dataRNG: Xoshiro256(seed: 4))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("overflowed-\(UUID().uuidString).ckpt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(model.stateIsFinite)
        model.adamV.baseAddress[5] = .infinity
        #expect(!model.stateIsFinite)
        let summary = try trainer.run(until: 3, schedule: try LearningRateSchedule(constant: 1e-3), checkpoint: CheckpointPlan(path: path, every: 1))
        let divergence = try #require(summary.divergence)
        #expect(divergence.inState && divergence.loss.isFinite && divergence.step == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(throws: WaveNetError.self) { _ = try CheckpointFile.encode(model, dataRNG: nil, path: path) }
        // Without a checkpoint plan, the end of the run notices it.
        let again = try trainer.run(until: 2, schedule: try LearningRateSchedule(constant: 1e-3))
        #expect(again.divergence?.inState == true)
    }

    @Test func badOptionsAndShortAudioGiveClearErrors() throws {
        let clips = ClipSet(source: "short.wav", clips: [Clip(name: "short.wav", codes: [UInt8](repeating: 128, count: 100))], sampleRate: 16000)
        let model = try WaveNet(config: .tiny, seed: 5)
        #expect(throws: WaveNetError.invalidConfig("batch must be at least 1 (got 0)")) {
            try Trainer(model: model, clips: clips, options: TrainingOptions(batch: 0, window: 10), dataRNG: Xoshiro256(seed: 1))
        }
        do {
            _ = try Trainer(model: model, clips: clips, options: TrainingOptions(batch: 1, window: 500), dataRNG: Xoshiro256(seed: 1))
            Issue.record("a window longer than every clip was accepted")
        } catch {
            #expect("\(error)".contains("short.wav"), "the error should name the audio: \(error)")
        }
        var bad = WaveNetConfig.tiny
        bad.dilations = []
        #expect(throws: WaveNetError.self) { try WaveNet(config: bad, seed: 1) }
        bad = .tiny
        bad.residualChannels = 0
        #expect(throws: WaveNetError.self) { try WaveNet(config: bad, seed: 1) }
    }

    /// A model that does not predict the audio's codes (256 mu-law levels) at
    /// its sample rate is refused with a message saying which field to set,
    /// by training, validation and the whole-set score alike (it used to
    /// stop the program at the first code past its classes).
    @Test func aModelThatDoesNotMatchTheAudioIsRefused() throws {
        let clips = ClipSet(source: "ramp.wav", clips: [Clip(name: "ramp.wav", codes: (0 ..< 4000).map { UInt8($0 % 256) })],
                            sampleRate: 16000)
        var fewer = WaveNetConfig.tiny
        fewer.classes = 64
        var slower = WaveNetConfig.tiny
        slower.sampleRate = 8000
        for (config, fragments) in [(fewer, ["predicts 64 classes", "ramp.wav", "\"classes\": 256"]),
                                    (slower, ["8000 Hz", "ramp.wav is loaded at 16000 Hz", "\"sampleRate\": 16000"])] {
            let model = try WaveNet(config: config, seed: 1)
            let attempts: [(String, () throws -> Void)] = [
                ("Trainer", { _ = try Trainer(model: model, clips: clips, options: TrainingOptions(batch: 1, window: 64), dataRNG: Xoshiro256(seed: 1)) }),
                ("Validator", { _ = try Validator(clips: clips, config: config, count: 2, targets: 64) }),
                ("WholeSetEvaluator", { _ = try WholeSetEvaluator(clips: clips, config: config) }),
            ]
            for (name, attempt) in attempts {
                do {
                    try attempt()
                    Issue.record("\(name) accepted a model of \(config.classes) classes at \(config.sampleRate) Hz")
                } catch let error as WaveNetError {
                    for fragment in fragments { #expect("\(error)".contains(fragment), "\(name): \(error)") }
                }
            }
        }
        // The matching model is accepted by all three.
        let model = try WaveNet(config: .tiny, seed: 1)
        _ = try Trainer(model: model, clips: clips, options: TrainingOptions(batch: 1, window: 64), dataRNG: Xoshiro256(seed: 1))
        _ = try Validator(clips: clips, config: .tiny, count: 2, targets: 64)
        _ = try WholeSetEvaluator(clips: clips, config: .tiny)
    }
}
