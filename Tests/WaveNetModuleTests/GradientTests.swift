import PBTSeededRNG
import Testing
import KernelReferences
import TestSupport
import PBTWaveTensor
import PBTWaveModel

func randomCodes(_ n: Int, classes: Int = 256, rng: inout Xoshiro256) -> [Int32] {
    (0..<n).map { _ in Int32(rng.next() % UInt64(classes)) }
}

/// The central difference quotient (L(x + h) − L(x − h)) / 2h of the summed
/// loss (nats, in the model's precision) over `windows`, in parameter i.
func finiteDifferences(_ model: WaveNet, windows: [Int32], batch B: Int, time T: Int) -> (_ i: Int, _ h: Float) -> Double {
    let x = model.parameters.baseAddress
    func loss() -> Double {
        windows.withUnsafeBufferPointer { model.evaluate(windows: $0.baseAddress!, batch: B, time: T, context: 0).nats }
    }
    return { i, h in
        let saved = x[i]
        x[i] = saved + h; let up = loss()
        x[i] = saved - h; let down = loss()
        x[i] = saved
        return (up - down) / (2 * Double(h))
    }
}

@Suite struct WaveNetGradientTests {
    /// Every parameter tensor of the tiny model, checked by central finite
    /// differences of the summed loss against the analytic gradient.
    ///
    /// Tolerance: 2% relative plus 1e-3 absolute. The absolute part is Float's
    /// rounding noise: the summed loss (≈ 410 nats) wobbles by ≈ 1e-6 under a
    /// perturbation, which divided by 2h = 4e-3 (h = 2e-3) is ≈ 2.5e-4; the
    /// portable variant (no fused multiply-add) is the noisiest. ReLUs make the loss
    /// piecewise smooth; a coordinate whose quotients at h and 2h disagree
    /// sits at a kink and is skipped — at most 20% may be (biases move every
    /// position at once, so they meet kinks most). Once per kernel variant.
    @Test(arguments: Kernels.supported)
    func wholeModelMatchesFiniteDifferences(_ variant: KernelVariant) throws {
        let model = try WaveNet(config: .tiny, seed: 1)
        model.kernels = try Kernels(variant)
        model.tileRows = 8  // the one-thread wavefront over 5 tiles, the last one short
        var rng = Xoshiro256(seed: 2)
        let B = 2, T = 37
        let windows = randomCodes(B * (T + 1), rng: &rng)
        let loss0 = windows.withUnsafeBufferPointer { model.lossAndGradient(windows: $0.baseAddress!, batch: B, time: T) }
        #expect(loss0.isFinite && loss0 > 0)
        // The gradient of the summed loss is the mean's × count.
        let count = Float(B * T)
        let analytic = model.gradients.storage.array.map { Double($0 * count) }
        let quotient = finiteDifferences(model, windows: windows, batch: B, time: T)
        func allowed(_ v: Double) -> Double { 1e-3 + 0.02 * abs(v) }
        var worstOverall = 0.0, checked = 0, skipped = 0
        for entry in model.layout.entries {
            var worst = 0.0  // error as a fraction of the allowed error
            for j in 0..<min(entry.count, 12) {
                let i = entry.offset + (j * 7919) % entry.count
                let fine = quotient(i, 2e-3), coarse = quotient(i, 4e-3)
                if abs(coarse - fine) > allowed(fine) / 2 { skipped += 1; continue }
                checked += 1
                let e = abs(fine - analytic[i]) / allowed(fine)
                if e > 1 { print("  \(entry.name)[\(i - entry.offset)]: analytic \(analytic[i]) h \(fine) 2h \(coarse)") }
                worst = max(worst, e)
            }
            worstOverall = max(worstOverall, worst)
            #expect(worst <= 1, "\(variant) \(entry.name): finite-difference gradient off by \(worst)× the tolerance")
        }
        print("\(variant) whole-model gradient check: worst error \(worstOverall)× tolerance (2% + 1e-3) over \(checked) coordinates, \(skipped) skipped at a kink")
        #expect(skipped * 5 <= checked + skipped, "too many coordinates at a ReLU kink: \(skipped) of \(checked + skipped)")
    }

    @Test func parameterCountMatchesThePyTorchReference() throws {
        let model = try WaveNet(config: .compact, seed: 0)
        #expect(model.parameterCount == 177_632)
        #expect(WaveNetConfig.compact.receptiveField == 2048)
        #expect(WaveNetConfig.compact.forwardMACsPerSample * 2 == 331_776)
    }

    /// With a context longer than the head's blocks of rows (as validation
    /// windows have), the loss is the cross-entropy of exactly the counted
    /// positions of the full forward pass, in training and in evaluation.
    @Test(arguments: [(700, 0), (700, 300), (700, 699), (1000, 513)])
    func lossCountsExactlyThePositionsAfterTheContext(_ tc: (Int, Int)) throws {
        let (T, context) = tc
        let model = try WaveNet(config: .tiny, seed: 5)
        var rng = Xoshiro256(seed: 6)
        let windows = randomCodes(T + 1, rng: &rng)
        let V = model.config.classes
        windows.withUnsafeBufferPointer { model.forwardOnly(windows: $0.baseAddress!, batch: 1, time: T) }
        let logits = Array(UnsafeBufferPointer(start: model.lastLogits()!, count: T * V))
        let counted = Array(logits[(context * V)...])
        let targets = Array(windows[(context + 1)...])
        let naive = Reference.softmaxCrossEntropy(logits: counted, targets: targets, rows: T - context, classes: V, gradientScale: 1)
            .losses.reduce(0, +)
        let evaluated = windows.withUnsafeBufferPointer { model.evaluate(windows: $0.baseAddress!, batch: 1, time: T, context: context) }
        let trained = windows.withUnsafeBufferPointer { model.lossAndGradient(windows: $0.baseAddress!, batch: 1, time: T, context: context) }
        #expect(evaluated.count == T - context)
        #expect(abs(evaluated.nats - naive) < 1e-6 * naive, "evaluate \(evaluated.nats) vs \(naive)")
        #expect(abs(trained * Double(T - context) - naive) < 1e-6 * naive, "training loss \(trained) vs \(naive / Double(T - context))")
    }

    @Test func contextExcludesEarlyPositionsFromTheLoss() throws {
        let model = try WaveNet(config: .tiny, seed: 3)
        var rng = Xoshiro256(seed: 4)
        let T = 50, context = 20
        var windows = randomCodes(T + 1, rng: &rng)
        let base = windows.withUnsafeBufferPointer { model.evaluate(windows: $0.baseAddress!, batch: 1, time: T, context: context) }
        #expect(base.count == T - context)
        // Targets before the context do not count; inputs there still matter.
        windows[5] = (windows[5] + 1) % 256  // target of position 4 and input of position 5
        let changed = windows.withUnsafeBufferPointer { model.evaluate(windows: $0.baseAddress!, batch: 1, time: T, context: context) }
        #expect(changed.nats != base.nats, "inputs before the context still feed later predictions")
        windows = windows.map { $0 }
        let full = windows.withUnsafeBufferPointer { model.evaluate(windows: $0.baseAddress!, batch: 1, time: T, context: 0) }
        #expect(full.count == T && full.nats > changed.nats)
    }
}

@Suite struct KernelVariantModelTests {
    /// The same step through every variant: losses and gradients agree with
    /// the portable variant's to within rounding (sums in other orders).
    @Test(arguments: Kernels.supported)
    func variantsAgreeOnAStep(_ variant: KernelVariant) throws {
        var rng = Xoshiro256(seed: 12)
        let B = 2, T = 300, context = 40
        let windows = randomCodes(B * (T + 1), rng: &rng)
        let portable = try WaveNet(config: .small, seed: 13), other = try WaveNet(config: .small, seed: 13)
        portable.kernels = try Kernels(.generic)
        other.kernels = try Kernels(variant)
        let (a, b) = windows.withUnsafeBufferPointer { w in
            (portable.lossAndGradient(windows: w.baseAddress!, batch: B, time: T, context: context),
             other.lossAndGradient(windows: w.baseAddress!, batch: B, time: T, context: context))
        }
        print("\(variant) vs generic, one step of the small model: loss \(b) vs \(a)")
        #expect(abs(a - b) < 1e-5, "loss \(b) vs \(a)")
        let scale = portable.gradients.storage.array.map(\.magnitude).max()!
        expectClose(other.gradients.storage.array, portable.gradients.storage.array, tolerance: 1e-4 * scale,
                    "\(variant) vs generic: gradients (largest \(scale))")
    }
}

/// The logits of `model`'s forward pass over `windows` (B windows of T + 1 codes).
func forwardLogits(_ model: WaveNet, _ windows: [Int32], batch B: Int, time T: Int) -> [Float] {
    windows.withUnsafeBufferPointer { model.forwardOnly(windows: $0.baseAddress!, batch: B, time: T) }
    return Array(UnsafeBufferPointer(start: model.lastLogits()!, count: B * T * model.config.classes))
}

@Suite struct DataParallelTests {
    /// With one thread the rows go through all layers in time tiles (a
    /// wavefront); any tile size computes the same forward pass row for row,
    /// and the same gradients up to the order of the sums over rows.
    @Test(arguments: [1, 5, 16, 29])
    func timeTilesMatchOneWholeTile(_ tileRows: Int) throws {
        var rng = Xoshiro256(seed: 12)
        let B = 2, T = 29, context = 4
        let windows = randomCodes(B * (T + 1), rng: &rng)
        let whole = try WaveNet(config: .tiny, seed: 9), tiled = try WaveNet(config: .tiny, seed: 9)
        whole.tileRows = T
        tiled.tileRows = tileRows
        let (lw, lt) = windows.withUnsafeBufferPointer { w in
            (whole.lossAndGradient(windows: w.baseAddress!, batch: B, time: T, context: context),
             tiled.lossAndGradient(windows: w.baseAddress!, batch: B, time: T, context: context))
        }
        #expect(abs(lw - lt) < 1e-9 * lw, "loss \(lw) vs \(lt)")
        expectClose(tiled.gradients.storage.array, whole.gradients.storage.array, tolerance: 1e-6, "gradients, tiles of \(tileRows) vs one tile")
        #expect(forwardLogits(whole, windows, batch: B, time: T) == forwardLogits(tiled, windows, batch: B, time: T),
                "tiles change no row of the forward pass")
    }

    /// Splitting a batch across threads gives the same loss and gradients as
    /// one thread (up to the order of the final sum), and is deterministic:
    /// with one tile (the members split the other stages only), and with
    /// tiles of 4 and 5 rows, shorter than the dilations (1 … 8), so each
    /// layer of a tile waits for the rows of several others, the members'
    /// tiles interleaved.
    @Test(arguments: [(threads: 2, tileRows: 384), (3, 384), (2, 4), (3, 5)])
    func threadsMatchOneThread(_ setup: (threads: Int, tileRows: Int)) throws {
        var rng = Xoshiro256(seed: 8)
        let B = 5, T = 29, context = 3
        let windows = randomCodes(B * (T + 1), rng: &rng)
        let one = try WaveNet(config: .tiny, seed: 9), many = try WaveNet(config: .tiny, seed: 9)
        let threads = setup.threads
        many.threads = threads
        many.tileRows = setup.tileRows
        let (l1, lN) = windows.withUnsafeBufferPointer { w in
            (one.lossAndGradient(windows: w.baseAddress!, batch: B, time: T, context: context),
             many.lossAndGradient(windows: w.baseAddress!, batch: B, time: T, context: context))
        }
        #expect(abs(l1 - lN) < 1e-9, "loss \(l1) vs \(lN)")
        // Evaluation and the forward pass split the same way.
        let (e1, eN) = windows.withUnsafeBufferPointer { w in
            (one.evaluate(windows: w.baseAddress!, batch: B, time: T, context: context),
             many.evaluate(windows: w.baseAddress!, batch: B, time: T, context: context))
        }
        #expect(e1.count == eN.count && abs(e1.nats - eN.nats) < 1e-9 * e1.nats, "evaluate \(e1) vs \(eN)")
        #expect(forwardLogits(one, windows, batch: B, time: T) == forwardLogits(many, windows, batch: B, time: T),
                "the forward pass computes each row the same way whatever the thread count")
        expectClose(many.gradients.storage.array, one.gradients.storage.array, tolerance: 1e-6, "gradients, \(threads) threads vs 1")
        // Training stays deterministic with threads.
        let again = try WaveNet(config: .tiny, seed: 9)
        again.threads = threads
        again.tileRows = setup.tileRows
        for model in [many, again] {
            windows.withUnsafeBufferPointer { w in
                for _ in 0..<3 { model.trainStep(windows: w.baseAddress!, batch: B, time: T, learningRate: 1e-3) }
            }
        }
        windows.withUnsafeBufferPointer { w in _ = many.trainStep(windows: w.baseAddress!, batch: B, time: T, learningRate: 1e-3) }
        windows.withUnsafeBufferPointer { w in _ = again.trainStep(windows: w.baseAddress!, batch: B, time: T, learningRate: 1e-3) }
        #expect(many.parameters.storage.array == again.parameters.storage.array)
    }
}
