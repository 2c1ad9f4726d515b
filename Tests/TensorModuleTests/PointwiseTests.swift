import Foundation
import SeededRNG
import Testing
import TestSupport
import TensorModule

@Suite struct VectorMathTests {
    /// Inputs across the whole useful range, the overflow/underflow edges, and
    /// a count that is not a multiple of 8 (the tail path).
    static func inputs() -> [Float] {
        var rng = Xoshiro256(seed: 11)
        var xs = (0..<2001).map { _ in (2 * rng.nextUnitFloat() - 1) * 30 }
        xs += [0, -0, 1e-7, -1e-7, 87, -87, 88, -88, 100, -100, 1e30, -1e30, .infinity, -.infinity]
        return xs
    }

    @Test func expMatchesLibm() {
        let xs = Self.inputs().filter { $0 <= 88 && $0 >= -87 }
        var out = [Float](repeating: 0, count: xs.count)
        fastExp(&out, xs, count: xs.count)
        var worst: Float = 0
        for (x, y) in zip(xs, out) {
            let ref = Float(exp(Double(x)))
            worst = max(worst, (y - ref).magnitude / ref)
        }
        print("fastExp: worst relative error \(worst)")
        #expect(worst < 3e-7)
    }

    @Test func expSaturatesAndPropagatesNaN() {
        let xs: [Float] = [1000, -1000, .infinity, -.infinity, .nan, 0, 1, 2, 3]
        var out = [Float](repeating: 0, count: xs.count)
        fastExp(&out, xs, count: xs.count)
        #expect(out[0].isFinite && out[0] > 1e38)
        #expect(out[1] >= 0 && out[1] < 1e-37)
        #expect(out[2].isFinite && out[3] >= 0)
        #expect(out[4].isNaN)
        #expect(out[5] == 1)
    }

    @Test func tanhAndSigmoidMatchLibm() {
        let xs = Self.inputs()
        var th = [Float](repeating: 0, count: xs.count), sg = th
        fastTanh(&th, xs, count: xs.count)
        fastSigmoid(&sg, xs, count: xs.count)
        let refTanh = xs.map { Float(tanh(Double($0))) }
        let refSigmoid = xs.map { Float(1 / (1 + exp(-Double($0)))) }
        expectClose(th, refTanh, tolerance: 1e-6, "fastTanh")
        expectClose(sg, refSigmoid, tolerance: 1e-6, "fastSigmoid")
    }
}

@Suite struct GatedActivationTests {
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (1, 3, 7), (2, 5, 13), (3, 32, 40)]

    @Test(arguments: shapes)
    func forwardMatchesNaive(_ s: (Int, Int, Int)) {
        let (B, C, T) = s
        var rng = Xoshiro256(seed: 21)
        let pre = Tensor(randomArray(B * 2 * C * T, scale: 4, rng: &rng))
        let z = Tensor(shape: [B, C, T]), th = Tensor(shape: [B, C, T]), sg = Tensor(shape: [B, C, T])
        gatedForward(z: z.baseAddress, th: th.baseAddress, sg: sg.baseAddress, pre: pre.baseAddress, batch: B, channels: C, time: T)
        let naive = Reference.gatedForward(pre: pre.array, batch: B, channels: C, time: T)
        expectClose(z.array, naive, tolerance: 2e-6, "gated forward B\(B) C\(C) T\(T)")
    }

    @Test(arguments: shapes)
    func backwardMatchesNaiveAndFiniteDifferences(_ s: (Int, Int, Int)) {
        let (B, C, T) = s
        var rng = Xoshiro256(seed: 22)
        let pre = Tensor(randomArray(B * 2 * C * T, scale: 2, rng: &rng))
        let dzValues = randomArray(B * C * T, rng: &rng)
        let dz = Tensor(dzValues)
        let z = Tensor(shape: [B, C, T]), th = Tensor(shape: [B, C, T]), sg = Tensor(shape: [B, C, T])
        let dpre = Tensor(shape: [B, 2 * C, T])
        func forward() {
            gatedForward(z: z.baseAddress, th: th.baseAddress, sg: sg.baseAddress, pre: pre.baseAddress, batch: B, channels: C, time: T)
        }
        forward()
        gatedBackward(dpre: dpre.baseAddress, dz: dz.baseAddress, th: th.baseAddress, sg: sg.baseAddress, batch: B, channels: C, time: T)
        let naive = Reference.gatedBackward(dz: dzValues, pre: pre.array, batch: B, channels: C, time: T)
        expectClose(dpre.array, naive, tolerance: 3e-6, "gated backward B\(B) C\(C) T\(T)")
        let analytic = dpre.array
        gradientCheck("gated B\(B) C\(C) T\(T)", x: pre.baseAddress, count: pre.count, analytic: analytic,
                      h: 1e-3, tolerance: 1e-2, rng: &rng) {
            forward()
            return zip(z.array, dzValues).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
    }
}

@Suite struct ReLUAndBiasTests {
    @Test func reluForwardBackward() {
        var rng = Xoshiro256(seed: 31)
        let n = 37
        let xValues = randomArray(n, rng: &rng)
        let x = Tensor(xValues), y = Tensor(shape: [n])
        reluForward(y.baseAddress, x.baseAddress, count: n)
        #expect(y.array == xValues.map { max($0, 0) })
        let dout = Tensor(randomArray(n, rng: &rng)), dx = Tensor(shape: [n])
        reluBackward(dx.baseAddress, dout: dout.baseAddress, y: y.baseAddress, count: n)
        #expect(dx.array == (0..<n).map { xValues[$0] > 0 ? dout[$0] : 0 })
        // Finite differences away from the kink.
        let analytic = dx.array
        let doutValues = dout.array
        gradientCheck("relu", x: x.baseAddress, count: n, analytic: analytic, h: 1e-4, tolerance: 1e-2, rng: &rng) {
            reluForward(y.baseAddress, x.baseAddress, count: n)
            return zip(y.array, doutValues).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
    }

    @Test func biasHelpersMatchLoops() {
        var rng = Xoshiro256(seed: 32)
        let rows = 5, cols = 19
        let bias = Tensor(randomArray(rows, rng: &rng))
        let start = randomArray(rows * cols, rng: &rng)
        let out = Tensor(start)
        addRowBias(out.baseAddress, bias: bias.baseAddress, rows: rows, cols: cols)
        expectClose(out.array, (0..<(rows * cols)).map { start[$0] + bias[$0 / cols] }, tolerance: 0, "addRowBias")
        fillRows(out.baseAddress, values: bias.baseAddress, rows: rows, cols: cols)
        #expect(out.array == (0..<(rows * cols)).map { bias[$0 / cols] })
        let sums = Tensor([1, 2, 3, 4, 5])
        let x = Tensor(start)
        addRowSums(sums.baseAddress, x.baseAddress, rows: rows, cols: cols)
        let expected = (0..<rows).map { r in Float(r + 1) + (0..<cols).reduce(Float(0)) { $0 + start[r * cols + $1] } }
        expectClose(sums.array, expected, tolerance: 1e-5, "addRowSums")
    }
}

@Suite struct MatvecTests {
    @Test(arguments: [(1, 1), (7, 3), (8, 5), (32, 32), (64, 64), (96, 32), (256, 64), (41, 17)])
    func matchesNaive(_ s: (Int, Int)) {
        let (rows, cols) = s
        var rng = Xoshiro256(seed: 71)
        let wValues = randomArray(rows * cols, rng: &rng), xValues = randomArray(cols, rng: &rng)
        let bValues = randomArray(rows, rng: &rng), y0 = randomArray(rows, rng: &rng)
        let w = Tensor(wValues), wt = Tensor(shape: [cols, rows]), x = Tensor(xValues), b = Tensor(bValues)
        transpose(wt.baseAddress, w.baseAddress, rows: rows, cols: cols)
        let naive = (0..<rows).map { r in (0..<cols).reduce(Double(bValues[r])) { $0 + Double(wValues[r * cols + $1]) * Double(xValues[$1]) } }
        let y = Tensor(shape: [rows])
        matvecTransposed(y.baseAddress, weightT: wt.baseAddress, x: x.baseAddress, bias: b.baseAddress, rows: rows, cols: cols)
        expectClose(y.array, naive.map(Float.init), tolerance: 1e-5 * Float(cols), "matvec \(rows)x\(cols)")
        let acc = Tensor(y0)
        matvecTransposed(acc.baseAddress, weightT: wt.baseAddress, x: x.baseAddress, bias: nil, rows: rows, cols: cols, accumulate: true)
        let expected = (0..<rows).map { Float(naive[$0]) - bValues[$0] + y0[$0] }
        expectClose(acc.array, expected, tolerance: 1e-5 * Float(cols), "matvec accumulate \(rows)x\(cols)")
    }
}

@Suite struct FoldedBiasTests {
    // Includes T = 1 (rows of one element) with a ragged channel count.
    @Test(arguments: [(1, 3, 7), (2, 5, 13), (1, 9, 1), (2, 4, 1)])
    func gatedForwardAddsTheConvolutionBias(_ s: (Int, Int, Int)) {
        let (B, C, T) = s
        var rng = Xoshiro256(seed: 81)
        let preValues = randomArray(B * 2 * C * T, scale: 3, rng: &rng), biasValues = randomArray(2 * C, rng: &rng)
        let pre = Tensor(preValues), bias = Tensor(biasValues)
        let z = Tensor(shape: [B, C, T]), th = Tensor(shape: [B, C, T]), sg = Tensor(shape: [B, C, T])
        gatedForward(z: z.baseAddress, th: th.baseAddress, sg: sg.baseAddress, pre: pre.baseAddress, bias: bias.baseAddress,
                     batch: B, channels: C, time: T)
        // The twin: add the bias to pre first, then the plain gated unit.
        let biased = preValues.indices.map { preValues[$0] + biasValues[($0 / T) % (2 * C)] }
        expectClose(z.array, Reference.gatedForward(pre: biased, batch: B, channels: C, time: T), tolerance: 2e-6,
                    "gated forward with bias B\(B) C\(C) T\(T)")
    }

    @Test func biasReLUMatchesLoops() {
        var rng = Xoshiro256(seed: 82)
        let rows = 3, cols = 21
        let x = randomArray(rows * cols, rng: &rng), b = randomArray(rows, rng: &rng)
        let inp = Tensor(x), bias = Tensor(b), out = Tensor(shape: [rows, cols])
        biasReLUForward(out.baseAddress, inp.baseAddress, bias: bias.baseAddress, rows: rows, cols: cols)
        #expect(out.array == x.indices.map { max(x[$0] + b[$0 / cols], 0) })
    }

    @Test func softmaxAddsTheOutputBias() {
        let N = 5, V = 19
        var rng = Xoshiro256(seed: 83)
        let logits = randomArray(N * V, scale: 4, rng: &rng), b = randomArray(V, rng: &rng)
        let targets = (0..<N).map { _ in Int32(rng.next() % UInt64(V)) }
        let biased = logits.indices.map { logits[$0] + b[$0 % V] }
        let ref = Reference.softmaxCrossEntropy(logits: biased, targets: targets, rows: N, classes: V, gradientScale: 0.5)
        let lg = Tensor(logits), bias = Tensor(b), d = Tensor(shape: [N, V])
        let total = targets.withUnsafeBufferPointer {
            softmaxCrossEntropyForwardBackward(dlogits: d.baseAddress, logits: lg.baseAddress, bias: bias.baseAddress,
                                               targets: $0.baseAddress!, rows: N, classes: V, gradientScale: 0.5)
        }
        #expect(abs(total - ref.losses.reduce(0, +)) < 1e-5)
        expectClose(d.array, ref.dlogits, tolerance: 1e-6, "softmax CE with bias, dlogits")
        #expect(lg.array == logits, "out of place: the logits are left alone")
        let forward = targets.withUnsafeBufferPointer {
            softmaxCrossEntropyForward(logits: lg.baseAddress, bias: bias.baseAddress, targets: $0.baseAddress!, rows: N, classes: V)
        }
        #expect(abs(forward - ref.losses.reduce(0, +)) < 1e-5)
    }
}
