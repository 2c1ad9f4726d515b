import Foundation
import SeededRNG
import SpeechAudio
import Testing
import TestSupport
import WaveNetModule

@Suite struct TrainingTests {
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
        let losses = try trainer.train(steps: 200, schedule: { _ in 3e-3 })
        let after = validator.nllBits(model)
        print("overfit: NLL on the clip \(before) → \(after) bits; training loss \(losses.first!) → \(losses.last!)")
        #expect(losses.allSatisfy { $0.isFinite })
        #expect(after < 0.6 * before, "NLL on the training clip should fall far below its start (\(before) → \(after))")
        #expect(model.step == 200)
    }

    @Test func scheduleIsConsultedWithTheGlobalStep() throws {
        let clip = Clip(name: "ramp", codes: (0..<3000).map { UInt8($0 % 256) })
        let clips = ClipSet(source: "synthetic", clips: [clip], sampleRate: 16000)
        let model = try WaveNet(config: .tiny, seed: 3)
        let trainer = try Trainer(model: model, clips: clips, options: TrainingOptions(batch: 1, window: 64), dataRNG: Xoshiro256(seed: 4))
        var asked: [Int] = []
        _ = try trainer.train(steps: 3, schedule: { asked.append($0); return 1e-3 })
        _ = try trainer.train(steps: 2, schedule: { asked.append($0); return 1e-3 })
        #expect(asked == [0, 1, 2, 3, 4])
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
}
