import Foundation
import Synchronization
import PBTSeededRNG
import PBTWaveAudio
import Testing
import TestSupport
@testable import PBTWaveModel

/// `WholeSetEvaluator` scores exactly the samples with a full receptive
/// field (codes[j], j in RF ..< n, from codes[j − RF ..< j]) and gets each
/// one's NLL right: checked against a naive evaluation that runs the model
/// once per target on just its receptive field.
@Suite struct WholeSetEvaluatorTests {
    /// Random codes, so every prediction depends on its context; lengths
    /// around the tiny model's receptive field of 32 (shorter, equal, one
    /// more, several windows long) so windows span clip boundaries.
    static func clips(lengths: [Int], seed: UInt64) -> ClipSet {
        var rng = Xoshiro256(seed: seed)
        let clips = lengths.enumerated().map { index, n in
            Clip(name: "clip\(index)", codes: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
        return ClipSet(source: "synthetic", clips: clips, sampleRate: 16000)
    }

    /// The naive twin: one forward pass of RF positions per target, scoring its last one.
    static func naivePerTarget(_ model: WaveNet, _ clips: ClipSet) -> [Float] {
        let rf = model.config.receptiveField
        var nats: [Float] = []
        for clip in clips.clips where clip.codes.count > rf {
            for j in rf..<clip.codes.count {
                let window = clip.codes[(j - rf)...j].map { Int32($0) }
                nats.append(Float(window.withUnsafeBufferPointer {
                    model.evaluate(windows: $0.baseAddress!, batch: 1, time: rf, context: rf - 1).nats
                }))
            }
        }
        return nats
    }

    @Test(arguments: [1, 7, 40, 1000])
    func scoresEveryTargetWithAFullReceptiveFieldAndNoOther(targetsPerWindow: Int) throws {
        let model = try WaveNet(config: .tiny, seed: 5)
        #expect(model.config.receptiveField == 32)
        let clips = Self.clips(lengths: [10, 32, 33, 120, 31, 97, 64, 250], seed: 11)
        let evaluator = try WholeSetEvaluator(clips: clips, config: .tiny, targetsPerWindow: targetsPerWindow)
        let expectedCount = [10, 32, 33, 120, 31, 97, 64, 250].reduce(0) { $0 + max(0, $1 - 32) }
        #expect(evaluator.targetCount == expectedCount)
        var histogram = [Int](repeating: 0, count: 256)
        for clip in clips.clips where clip.codes.count > 32 { for code in clip.codes[32...] { histogram[Int(code)] += 1 } }
        #expect(evaluator.targetHistogram == histogram, "the codes of exactly the scored targets")

        let naive = Self.naivePerTarget(model, clips)
        let fast = evaluator.perTargetNats(model)
        #expect(fast.count == expectedCount && naive.count == expectedCount)
        expectClose(fast, naive, tolerance: 2e-5, "whole set vs one pass per target, \(targetsPerWindow) targets per window")

        let score = try evaluator.score(model)
        let naiveBits = naive.reduce(0.0) { $0 + Double($1) } / Double(naive.count) / M_LN2
        #expect(score.count == expectedCount)
        #expect(abs(score.nllBits - naiveBits) < 1e-5, "mean \(score.nllBits) vs naive \(naiveBits)")
    }

    @Test func threadsDoNotChangeTheScore() throws {
        let model = try WaveNet(config: .tiny, seed: 6)
        let evaluator = try WholeSetEvaluator(clips: Self.clips(lengths: [300, 45, 700, 33, 260], seed: 12), config: .tiny,
                                              targetsPerWindow: 64)
        let one = try evaluator.score(model)
        let three = try evaluator.score(model, threads: 3)
        #expect(one == three, "\(one) vs \(three)")
        #expect(evaluator.windowCount > 3)
        // Progress: every window once, the last report (n, n), the same score.
        let heard = Mutex<[Int]>([])
        let watched = try evaluator.score(model, threads: 3) { done, total in
            #expect(total == evaluator.windowCount)
            heard.withLock { $0.append(done) }
        }
        #expect(heard.withLock { $0 } == Array(1...evaluator.windowCount) && watched == one)
    }

    @Test func nothingToScoreIsAClearError() throws {
        let short = Self.clips(lengths: [10, 32], seed: 13)
        let error = #expect(throws: WaveNetError.self) { _ = try WholeSetEvaluator(clips: short, config: .tiny) }
        #expect("\(error!)".contains("the audio is too short for this model: no clip of synthetic is longer than the model's receptive field (32 samples)"))
        #expect(throws: WaveNetError.self) { _ = try WholeSetEvaluator(clips: Self.clips(lengths: [100], seed: 1), config: .tiny, targetsPerWindow: 0) }
    }

    @Test func aModelWithAnotherReceptiveFieldIsRefused() throws {
        let evaluator = try WholeSetEvaluator(clips: Self.clips(lengths: [3000], seed: 14), config: .tiny)
        let small = try WaveNet(config: .small, seed: 1)
        #expect(throws: WaveNetError.self) { _ = try evaluator.score(small) }
    }
}
