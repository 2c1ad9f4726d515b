import Foundation
import PBTSeededRNG
import Testing
import KernelReferences
import TestSupport
import PBTWaveTensor

@Suite struct SoftmaxCrossEntropyTests {
    @Test(arguments: variants, [(1, 1), (3, 5), (17, 256), (4, 259)])
    func matchesNaive(_ v: KernelVariant, _ s: (Int, Int)) {
        let (N, V) = s
        var rng = Xoshiro256(seed: 41)
        let logits = randomArray(N * V, scale: 5, rng: &rng)
        let targets = (0..<N).map { _ in Int32(rng.next() % UInt64(V)) }
        let lg = Tensor(logits), d = Tensor(shape: [N, V])
        let scale = 1 / Float(N)
        let k = v.kernels
        let total = targets.withUnsafeBufferPointer {
            k.softmaxCrossEntropyForwardBackward(dlogits: d.baseAddress, logits: lg.baseAddress, targets: $0.baseAddress!,
                                                 rows: N, classes: V, gradientScale: scale)
        }
        let forwardOnly = targets.withUnsafeBufferPointer {
            k.softmaxCrossEntropyForward(logits: lg.baseAddress, targets: $0.baseAddress!, rows: N, classes: V)
        }
        let ref = Reference.softmaxCrossEntropy(logits: logits, targets: targets, rows: N, classes: V, gradientScale: scale)
        let refTotal = ref.losses.reduce(0, +)
        print("\(v) softmax CE N\(N) V\(V): loss \(total) vs naive \(refTotal)")
        #expect(abs(total - refTotal) <= 1e-5 * Double(N) + 1e-6)
        #expect(abs(forwardOnly - refTotal) <= 1e-5 * Double(N) + 1e-6)
        expectClose(d.array, ref.dlogits, tolerance: 1e-6, "\(v) softmax CE dlogits N\(N) V\(V)")
    }

    @Test(arguments: variants)
    func outputBiasIsAddedOnTheFly(_ v: KernelVariant) {
        let N = 5, V = 19
        var rng = Xoshiro256(seed: 83)
        let logits = randomArray(N * V, scale: 4, rng: &rng), b = randomArray(V, rng: &rng)
        let targets = (0..<N).map { _ in Int32(rng.next() % UInt64(V)) }
        let biased = logits.indices.map { logits[$0] + b[$0 % V] }
        let ref = Reference.softmaxCrossEntropy(logits: biased, targets: targets, rows: N, classes: V, gradientScale: 0.5)
        let lg = Tensor(logits), bias = Tensor(b), d = Tensor(shape: [N, V])
        let total = targets.withUnsafeBufferPointer {
            v.kernels.softmaxCrossEntropyForwardBackward(dlogits: d.baseAddress, logits: lg.baseAddress, bias: bias.baseAddress,
                                                         targets: $0.baseAddress!, rows: N, classes: V, gradientScale: 0.5)
        }
        #expect(abs(total - ref.losses.reduce(0, +)) < 1e-5)
        expectClose(d.array, ref.dlogits, tolerance: 1e-6, "\(v) softmax CE with bias, dlogits")
        #expect(lg.array == logits, "out of place: the logits are left alone")
    }

    /// The bf16 copy of dlogits (for the bf16 head) is the fp32 dlogits
    /// rounded as `roundToBF16` rounds them, the target's entry included, in
    /// rows of the padded stride (an odd V gets a zero pad), and nothing else changes.
    @Test(arguments: variants, [(3, 5), (17, 256), (4, 259)])
    func roundedCopyIsTheGradientInBF16(_ v: KernelVariant, _ s: (Int, Int)) {
        let (N, V) = s
        var rng = Xoshiro256(seed: 47)
        let logits = randomArray(N * V, scale: 5, rng: &rng)
        let targets = (0..<N).map { _ in Int32(rng.next() % UInt64(V)) }
        let lg = Tensor(logits), d = Tensor(shape: [N, V]), plain = Tensor(shape: [N, V])
        let stride = BF16Buffer.stride(channels: V) + 2
        let copy = BF16Buffer(count: N * stride)
        copy.baseAddress.update(repeating: 0xffff, count: N * stride)
        let k = v.kernels
        let (total, plainTotal) = targets.withUnsafeBufferPointer {
            (k.softmaxCrossEntropyForwardBackward(dlogits: d.baseAddress, logits: lg.baseAddress, targets: $0.baseAddress!, rows: N,
                                                  classes: V, gradientScale: 0.25, rounded: BF16Rows(copy.baseAddress, stride: stride)),
             k.softmaxCrossEntropyForwardBackward(dlogits: plain.baseAddress, logits: lg.baseAddress, targets: $0.baseAddress!, rows: N,
                                                  classes: V, gradientScale: 0.25))
        }
        #expect(total == plainTotal && d.array == plain.array, "\(v): the bf16 copy must not change the loss or dlogits")
        var wrong = 0
        for r in 0..<N {
            for c in 0..<V where copy.baseAddress[r * stride + c] != BF16Buffer.round(d[r * V + c]) { wrong += 1 }
            if V % 2 == 1 && copy.baseAddress[r * stride + V] != 0 { wrong += 1 }
            if copy.baseAddress[r * stride + stride - 1] != 0xffff { wrong += 1 }  // past the padded row: untouched
        }
        #expect(wrong == 0, "\(v) N\(N) V\(V): \(wrong) bf16 values differ from the rounded dlogits")
    }

    @Test(arguments: variants)
    func aNaNLogitGivesANaNLoss(_ v: KernelVariant) {
        let lg = Tensor([1, .nan, 2, 3]), targets: [Int32] = [0]
        let loss = targets.withUnsafeBufferPointer {
            v.kernels.softmaxCrossEntropyForward(logits: lg.baseAddress, targets: $0.baseAddress!, rows: 1, classes: 4)
        }
        #expect(loss.isNaN, "divergence must show in the loss, got \(loss)")
    }

    @Test(arguments: variants)
    func inPlaceGradientAndFiniteDifferences(_ v: KernelVariant) {
        let k = v.kernels
        let N = 6, V = 11
        var rng = Xoshiro256(seed: 42)
        let values = randomArray(N * V, scale: 3, rng: &rng)
        let targets = (0..<N).map { _ in Int32(rng.next() % UInt64(V)) }
        let lg = Tensor(values), inPlace = Tensor(values)
        let grad = Tensor(shape: [N, V])
        let (outOfPlaceLoss, inPlaceLoss) = targets.withUnsafeBufferPointer { t in
            (k.softmaxCrossEntropyForwardBackward(dlogits: grad.baseAddress, logits: lg.baseAddress, targets: t.baseAddress!,
                                                  rows: N, classes: V, gradientScale: 1),
             k.softmaxCrossEntropyForwardBackward(dlogits: inPlace.baseAddress, logits: inPlace.baseAddress, targets: t.baseAddress!,
                                                  rows: N, classes: V, gradientScale: 1))
        }
        #expect(inPlace.array == grad.array, "in-place gradient must equal the out-of-place one")
        #expect(inPlaceLoss == outOfPlaceLoss, "in-place loss \(inPlaceLoss) must equal the out-of-place \(outOfPlaceLoss)")
        let analytic = grad.array
        gradientCheck("\(v) softmax CE", x: lg.baseAddress, count: lg.count, analytic: analytic, h: 1e-2, tolerance: 1e-2, rng: &rng) {
            targets.withUnsafeBufferPointer {
                k.softmaxCrossEntropyForward(logits: lg.baseAddress, targets: $0.baseAddress!, rows: N, classes: V)
            }
        }
    }

    @Test(arguments: variants)
    func numericallyStableForHugeLogits(_ v: KernelVariant) {
        let V = 256
        var values = [Float](repeating: -1000, count: V)
        values[7] = 1000
        values[8] = 999
        let lg = Tensor(values), d = Tensor(shape: [V])
        let targets: [Int32] = [8]
        let loss = targets.withUnsafeBufferPointer {
            v.kernels.softmaxCrossEntropyForwardBackward(dlogits: d.baseAddress, logits: lg.baseAddress, targets: $0.baseAddress!,
                                               rows: 1, classes: V, gradientScale: 1)
        }
        // log(e^1000 + e^999) − 999 = 1 + log(1 + e^-1)... = log(1 + e) ≈ 1.3133
        #expect(abs(loss - Double.log(1 + M_E)) < 1e-4, "loss \(loss)")
        #expect(d.array.allSatisfy { $0.isFinite })
        #expect(abs(d[8] - (Float(1 / (1 + M_E)) - 1)) < 1e-5)
    }
}

@Suite struct AdamTests {
    /// Two steps worked out by hand: lr 0.1, g = 0.5 then −0.25, p0 = 1.
    @Test(arguments: variants)
    func matchesHandComputedSteps(_ variant: KernelVariant) {
        let k = variant.kernels
        let p = Tensor([1]), m = Tensor([0]), v = Tensor([0]), g = Tensor([0.5])
        k.adamUpdate(params: p.baseAddress, m: m.baseAddress, v: v.baseAddress, grads: g.baseAddress, count: 1, learningRate: 0.1, step: 1)
        // m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25; p = 1 − 0.1·0.5/(0.5 + 1e-8) = 0.9
        // (1 − β) is computed in Float (0.999 is 0.99899995…): relative 1e-4.
        #expect(abs(m[0] - 0.05) < 0.05e-4)
        #expect(abs(v[0] - 0.00025) < 0.00025e-4)
        #expect(abs(p[0] - 0.9) < 1e-6)
        g[0] = -0.25
        k.adamUpdate(params: p.baseAddress, m: m.baseAddress, v: v.baseAddress, grads: g.baseAddress, count: 1, learningRate: 0.1, step: 2)
        // m = 0.9·0.05 − 0.025 = 0.02; v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
        // m̂ = 0.02/0.19 = 0.105263; v̂ = 0.00031225/0.001999 = 0.156203; √ = 0.395225
        // p = 0.9 − 0.1·0.105263/0.395225 = 0.873366
        #expect(abs(m[0] - 0.02) < 0.02e-4)
        #expect(abs(v[0] - 0.00031225) < 0.00031225e-4)
        #expect(abs(p[0] - 0.873_366) < 2e-6, "p = \(p[0])")
    }

    @Test(arguments: variants)
    func matchesNaiveOverManySteps(_ variant: KernelVariant) {
        let k = variant.kernels
        var rng = Xoshiro256(seed: 51)
        let n = 1003
        var pRef = randomArray(n, rng: &rng)
        var mRef = [Float](repeating: 0, count: n), vRef = mRef
        let p = Tensor(pRef), m = Tensor(shape: [n]), v = Tensor(shape: [n])
        for t in 1...20 {
            let grads = randomArray(n, rng: &rng)
            let g = Tensor(grads)
            k.adamUpdate(params: p.baseAddress, m: m.baseAddress, v: v.baseAddress, grads: g.baseAddress, count: n, learningRate: 1e-2, step: t)
            Reference.adam(params: &pRef, m: &mRef, v: &vRef, grads: grads, learningRate: 1e-2, step: t)
        }
        expectClose(p.array, pRef, tolerance: 1e-5, "adam params after 20 steps")
        expectClose(v.array, vRef, tolerance: 1e-6, "adam second moment after 20 steps")
    }
}

@Suite struct InitializationTests {
    @Test(arguments: [(8, 8), (64, 32), (32, 64), (1, 5), (256, 64)])
    func orthogonalIsOrthonormal(_ s: (Int, Int)) throws {
        let (rows, cols) = s
        var rng = Xoshiro256(seed: 61)
        let w = Tensor(shape: [rows, cols])
        try Initializer.orthogonal(w.baseAddress, rows: rows, cols: cols, rng: &rng)
        // Tall: WᵀW = I (cols × cols). Wide: WWᵀ = I (rows × rows).
        let short = min(rows, cols)
        let gram = Tensor(shape: [short, short])
        if rows >= cols {
            gemm(gram.baseAddress, ldc: short, w.baseAddress, lda: cols, transA: .transposed, w.baseAddress, ldb: cols, m: short, n: short, k: rows)
        } else {
            gemm(gram.baseAddress, ldc: short, w.baseAddress, lda: cols, w.baseAddress, ldb: cols, transB: .transposed, m: short, n: short, k: cols)
        }
        let identity = (0..<(short * short)).map { $0 / short == $0 % short ? Float(1) : 0 }
        expectClose(gram.array, identity, tolerance: 1e-5, "orthogonal \(rows)x\(cols) Gram matrix vs I")
    }

    @Test func orthogonalIsSeededAndGained() throws {
        var a = Xoshiro256(seed: 7), b = Xoshiro256(seed: 7)
        let w1 = Tensor(shape: [16, 16]), w2 = Tensor(shape: [16, 16])
        try Initializer.orthogonal(w1.baseAddress, rows: 16, cols: 16, gain: 2, rng: &a)
        try Initializer.orthogonal(w2.baseAddress, rows: 16, cols: 16, gain: 2, rng: &b)
        #expect(w1.array == w2.array)
        let norm = (0..<16).reduce(Float(0)) { $0 + w1[$1] * w1[$1] }
        #expect(abs(norm - 4) < 1e-4, "each column of gain·Q has norm² gain² = 4, got \(norm)")
    }

    @Test func glorotAndHeStatistics() {
        var rng = Xoshiro256(seed: 62)
        let n = 20_000
        let w = Tensor(shape: [n])
        Initializer.glorotUniform(w.baseAddress, count: n, fanIn: 32, fanOut: 64, rng: &rng)
        let bound = (6 / Float(96)).squareRoot()
        #expect(w.array.allSatisfy { abs($0) <= bound })
        #expect(w.array.max()! > 0.95 * bound)
        Initializer.heNormal(w.baseAddress, count: n, fanIn: 50, rng: &rng)
        let variance = w.array.reduce(0.0) { $0 + Double($1 * $1) } / Double(n)
        #expect(abs(variance - 2.0 / 50) < 0.003, "He variance \(variance)")
    }
}

@Suite struct ArenaTests {
    @Test func layoutAlignsAndCopies() {
        var layout = ArenaLayout()
        let a = layout.append("a", shape: [3, 5])
        let b = layout.append("b", shape: [7])
        #expect(a == 0 && b == 16 && layout.count == 23)
        #expect(layout.entry("b")?.count == 7)
        #expect(layout.entry("missing") == nil)
        let x = ParameterArena(layout: layout), y = ParameterArena(layout: layout)
        for i in 0..<x.count { x.baseAddress[i] = Float(i) }
        y.copy(from: x)
        #expect(y.storage.array == x.storage.array)
        #expect(x.pointer(layout.entry("b")!)[0] == 16)
    }

    /// Encoded and decoded, a layout is the same layout and finds its entries.
    @Test func layoutRoundTripsThroughJSON() throws {
        var layout = ArenaLayout()
        for i in 0..<50 { layout.append("layer\(i)", shape: [i + 1, 2]) }
        let decoded = try JSONDecoder().decode(ArenaLayout.self, from: try JSONEncoder().encode(layout))
        #expect(decoded == layout)
        #expect(decoded.entry("layer37") == layout.entry("layer37") && decoded.entry("layer37")?.shape == [38, 2])
        #expect(decoded.entry("layer50") == nil)
    }
}
