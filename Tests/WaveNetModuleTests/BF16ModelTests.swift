import Foundation
import PBTSeededRNG
import PBTWaveTensor
import Testing
import TestSupport
import PBTWaveModel

/// The model in bf16 (mixed precision): its gradient, checkpoints, resumes
/// and threads.
@Suite struct BF16ModelTests {
    /// The bf16 model's analytic gradient against central finite differences
    /// of the exact (fp32) loss, for every parameter tensor of the tiny model.
    ///
    /// Tolerance from bf16's 8-bit mantissa: rounding an operand to bf16
    /// moves it by at most u = 2^-9 of itself, so each term of a product of
    /// two rounded operands is off by at most 2u, and a gradient passes
    /// through the forward products on its path and the backward products
    /// back: up to 2·(L + 3) = 22 rounded products for the tiny model (L = 8),
    /// 44u per term at worst. A gradient is a sum over positions whose terms
    /// partly cancel, so the error is measured against the gradient's norm
    /// per tensor (12 sampled coordinates, as the fp32 check): at most 64u
    /// (12.5 %), and over the whole gradient at most 16u (3 %). A mistake in
    /// what is rounded or paired gives errors of order 1. The bf16 gradient
    /// must also differ from fp32's (it must really be rounded).
    @Test(arguments: Kernels.supported.filter { $0 != .blas })
    func wholeModelGradientMatchesFiniteDifferences(_ variant: KernelVariant) throws {
        let model = try WaveNet(config: .tiny, seed: 1)
        model.kernels = try Kernels(variant)
        model.tileRows = 8  // the one-thread wavefront over 5 tiles, as the fp32 check
        var rng = Xoshiro256(seed: 2)
        let B = 2, T = 37
        let windows = randomCodes(B * (T + 1), rng: &rng)
        func gradient(_ p: Precision) -> [Double] {
            model.precision = p
            _ = windows.withUnsafeBufferPointer { model.lossAndGradient(windows: $0.baseAddress!, batch: B, time: T) }
            return model.gradients.storage.array.map { Double($0 * Float(B * T)) }
        }
        let exact = gradient(.fp32), analytic = gradient(.bf16)
        #expect(exact != analytic, "the bf16 gradient equals the fp32 one: nothing was rounded")
        model.precision = .fp32
        let quotient = finiteDifferences(model, windows: windows, batch: B, time: T)
        let u = 0x1p-9
        var allError = 0.0, allNorm = 0.0, worst = 0.0, checked = 0, skipped = 0
        for entry in model.layout.entries {
            var error = 0.0, norm = 0.0
            for j in 0..<min(entry.count, 12) {
                let i = entry.offset + (j * 7919) % entry.count
                let fine = quotient(i, 2e-3), coarse = quotient(i, 4e-3)
                if abs(coarse - fine) > (1e-3 + 0.02 * abs(fine)) / 2 { skipped += 1; continue }  // a ReLU kink
                checked += 1
                error += (fine - analytic[i]) * (fine - analytic[i])
                norm += fine * fine
            }
            allError += error
            allNorm += norm
            guard norm > 0 else { continue }
            let relative = (error / norm).squareRoot()
            worst = max(worst, relative / u)
            #expect(relative <= 64 * u, "\(variant) \(entry.name): the bf16 gradient is off by \(relative) of its norm (> 64·2^-9)")
        }
        let overall = (allError / allNorm).squareRoot()
        print("\(variant) bf16 whole-model gradient check: off by \(overall / u)·2^-9 of the gradient's norm overall, "
              + "\(worst)·2^-9 in the worst tensor, over \(checked) coordinates (\(skipped) skipped at a kink)")
        #expect(overall <= 16 * u)
        #expect(skipped * 5 <= checked + skipped)
    }

    /// bf16 training runs the same on every variant: the bf16 sums agree bit
    /// for bit with the portable twin, so the losses differ only through
    /// the gated unit's own approximations (≈1 ulp) and the weight gradients'
    /// fp32 sums.
    @Test func variantsTrainAlikeInBF16() throws {
        var losses: [[Double]] = []
        for variant in Kernels.supported where variant != .blas {
            let model = try WaveNet(config: .tiny, seed: 3)
            model.kernels = try Kernels(variant)
            model.precision = .bf16
            var rng = Xoshiro256(seed: 4)
            losses.append(train(model, steps: 5, rng: &rng))
        }
        for l in losses.dropFirst() {
            for (a, b) in zip(l, losses[0]) { #expect(abs(a - b) <= 1e-4 * abs(b), "bf16 losses differ across variants: \(l) vs \(losses[0])") }
        }
    }

    /// Checkpoints carry the precision: a bf16 model's file says bf16 (format
    /// version 2) and loads as bf16; an fp32 model's is version 1 as before
    /// (older builds read it) and loads as fp32.
    @Test func checkpointsRoundTripThePrecision() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for precision in Precision.allCases {
            let model = try WaveNet(config: .tiny, seed: 5)
            model.precision = precision
            var rng = Xoshiro256(seed: 6)
            _ = train(model, steps: 2, rng: &rng)
            let path = dir + "/\(precision).ckpt"
            try CheckpointFile.write(model, dataRNG: rng, to: path)
            let bytes = try #require(FileManager.default.contents(atPath: path))
            #expect(bytes[8] == (precision == .fp32 ? 1 : 2) && bytes[9] == 0)
            let (loaded, header) = try WaveNet.load(from: path)
            #expect(loaded.precision == precision)
            #expect(header.precision == (precision == .fp32 ? nil : precision))
            // A model that is told to load it takes its precision too.
            let other = try WaveNet(config: .tiny, seed: 7)
            other.precision = precision == .fp32 ? .bf16 : .fp32
            try other.load(from: path)
            #expect(other.precision == precision)
        }
    }

    /// bf16 training really rounds: its losses are not fp32's. (Its resume
    /// is bit-identical: `CheckpointTests.resumeIsBitIdentical`.)
    /// bf16 warns exactly where its products have no faster dot product
    /// than fp32's (every variant without `vdpbf16ps` chosen), naming why;
    /// fp32 never warns.
    @Test(arguments: Kernels.supported.filter { $0 != .blas })
    func bf16WarnsWhereItCannotBeFaster(_ variant: KernelVariant) throws {
        let model = try WaveNet(config: .tiny, seed: 1)
        model.kernels = try Kernels(variant)
        #expect(model.precisionWarning == nil)
        model.precision = .bf16
        let warning = model.precisionWarning
        #expect((warning == nil) == model.kernels.nativeBF16, "\(variant): \(warning ?? "no warning")")
        if let warning {
            #expect(warning.contains("slower than fp32"), "\(warning)")
            #expect(warning.contains(variant == .avx512 && Kernels.bf16DotAvailable ? "two FMAs" : "no bf16 dot product"), "\(warning)")
        }
    }

    /// The blas variant says that its bf16 products are ours, not OpenBLAS's (found by a helper).
    @Test func bf16OnTheBlasVariantSaysWhoseProductsRun() throws {
        let model = try WaveNet(config: .tiny, seed: 1)
        model.kernels = try Kernels(.blas)
        #expect(model.precisionWarning == nil)
        model.precision = .bf16
        let note = try #require(model.precisionWarning)
        #expect(note.contains("PBTWAVE_ISA=blas: bf16 products have no OpenBLAS path") && note.contains(model.kernels.instructionSet), "\(note)")
    }

    @Test func bf16TrainingDiffersFromFP32() throws {
        func losses(_ p: Precision) throws -> [Double] {
            let model = try WaveNet(config: .tiny, seed: 13)
            model.precision = p
            var rng = Xoshiro256(seed: 14)
            return train(model, steps: 3, rng: &rng)
        }
        let (a, b) = (try losses(.fp32), try losses(.bf16))
        #expect(a != b)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-2 * abs(x), "bf16 losses \(b) stray from fp32's \(a)") }
    }

    /// With one thread the rows go through all layers in time tiles; the
    /// bf16 copies a tile reads from earlier tiles (h for the dilated
    /// convolution, each layer's dpre for its input gradient) are complete,
    /// so any tile size gives one whole tile's logits exactly, and its
    /// gradients up to the order of the sums over rows.
    @Test(arguments: [1, 5, 16])
    func timeTilesMatchOneWholeTile(_ tileRows: Int) throws {
        var rng = Xoshiro256(seed: 12)
        let B = 2, T = 29
        let windows = randomCodes(B * (T + 1), rng: &rng)
        let whole = try WaveNet(config: .tiny, seed: 9), tiled = try WaveNet(config: .tiny, seed: 9)
        for m in [whole, tiled] { m.precision = .bf16 }
        whole.tileRows = T
        tiled.tileRows = tileRows
        let (lw, lt) = windows.withUnsafeBufferPointer { w in
            (whole.lossAndGradient(windows: w.baseAddress!, batch: B, time: T), tiled.lossAndGradient(windows: w.baseAddress!, batch: B, time: T))
        }
        #expect(abs(lw - lt) < 1e-9 * lw, "loss \(lw) vs \(lt)")
        expectClose(tiled.gradients.storage.array, whole.gradients.storage.array, tolerance: 1e-6, "bf16 gradients, tiles of \(tileRows) vs one tile")
    }

    /// The forward pass with 2 and 3 threads gives one thread's logits
    /// exactly in bf16 too (each row's sums are the same; the bf16 copies a
    /// thread reads from another's rows are complete), and training with
    /// threads stays close (weight-gradient sums in another order).
    @Test(arguments: [(threads: 2, tileRows: 384), (3, 384), (2, 48), (3, 7)])
    func threadsGiveOneThreadsResults(_ setup: (threads: Int, tileRows: Int)) throws {
        let config = WaveNetConfig.tiny
        var rng = Xoshiro256(seed: 8)
        let B = 2, T = 700
        let windows = randomCodes(B * (T + 1), rng: &rng)
        func run(_ n: Int) throws -> (logits: [Float], loss: Double) {
            let model = try WaveNet(config: config, seed: 9)
            model.precision = .bf16
            model.threads = n
            model.tileRows = setup.tileRows
            let loss = windows.withUnsafeBufferPointer { model.lossAndGradient(windows: $0.baseAddress!, batch: B, time: T) }
            windows.withUnsafeBufferPointer { model.forwardOnly(windows: $0.baseAddress!, batch: B, time: T) }
            let logits = Array(UnsafeBufferPointer(start: model.lastLogits()!, count: B * T * config.classes))
            return (logits, loss)
        }
        let one = try run(1), many = try run(setup.threads)
        #expect(one.logits == many.logits)
        #expect(abs(one.loss - many.loss) <= 1e-9 * abs(one.loss))
    }
}
