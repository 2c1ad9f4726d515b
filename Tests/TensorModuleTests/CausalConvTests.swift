import SeededRNG
import Testing
import TestSupport
import TensorModule

@Suite struct CausalConvTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        var b, cin, cout, t, k, d: Int
        var testDescription: String { "B\(b) Cin\(cin) Cout\(cout) T\(t) K\(k) d\(d)" }
    }

    // Odd sizes, dilation larger than T, K = 1 (the 1x1 conv), K = 3, batches.
    static let shapes: [Shape] = [
        Shape(b: 1, cin: 1, cout: 1, t: 1, k: 1, d: 1),
        Shape(b: 1, cin: 3, cout: 5, t: 17, k: 2, d: 1),
        Shape(b: 2, cin: 4, cout: 6, t: 19, k: 2, d: 4),
        Shape(b: 1, cin: 5, cout: 3, t: 11, k: 2, d: 16),
        Shape(b: 3, cin: 2, cout: 7, t: 13, k: 3, d: 2),
        Shape(b: 2, cin: 6, cout: 4, t: 9, k: 3, d: 5),
        Shape(b: 2, cin: 8, cout: 8, t: 23, k: 1, d: 1),
        Shape(b: 1, cin: 32, cout: 64, t: 40, k: 2, d: 8),
    ]

    struct Problem {
        var s: Shape
        var inp, weight, bias, dout: [Float]
        init(_ s: Shape, seed: UInt64) {
            var rng = Xoshiro256(seed: seed)
            self.s = s
            inp = randomArray(s.b * s.cin * s.t, rng: &rng)
            weight = randomArray(s.k * s.cout * s.cin, scale: 0.5, rng: &rng)
            bias = randomArray(s.cout, rng: &rng)
            dout = randomArray(s.b * s.cout * s.t, rng: &rng)
        }

        func forward(_ inp: Tensor, _ weight: Tensor, _ bias: Tensor) -> Tensor {
            let out = Tensor(shape: [s.b, s.cout, s.t])
            causalConvForward(out: out.baseAddress, inp: inp.baseAddress, weight: weight.baseAddress, bias: bias.baseAddress,
                              batch: s.b, inChannels: s.cin, outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d)
            return out
        }
    }

    @Test(arguments: shapes)
    func forwardMatchesNaive(_ s: Shape) {
        let p = Problem(s, seed: 1)
        let out = p.forward(Tensor(p.inp), Tensor(p.weight), Tensor(p.bias))
        let naive = Reference.causalConvForward(inp: p.inp, weight: p.weight, bias: p.bias, batch: s.b, inChannels: s.cin,
                                                outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d)
        expectClose(out.array, naive, tolerance: 1e-5 * Float(s.cin * s.k), "conv forward \(s.testDescription)")
    }

    @Test(arguments: shapes)
    func accumulateAddsToOutput(_ s: Shape) {
        let p = Problem(s, seed: 2)
        var rng = Xoshiro256(seed: 3)
        let start = randomArray(s.b * s.cout * s.t, rng: &rng)
        let out = Tensor(start), inp = Tensor(p.inp), weight = Tensor(p.weight)
        causalConvForward(out: out.baseAddress, inp: inp.baseAddress, weight: weight.baseAddress, bias: nil,
                          batch: s.b, inChannels: s.cin, outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d,
                          accumulate: true)
        let naive = Reference.causalConvForward(inp: p.inp, weight: p.weight, bias: nil, batch: s.b, inChannels: s.cin,
                                                outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d)
        expectClose(out.array, zip(start, naive).map(+), tolerance: 1e-5 * Float(s.cin * s.k), "conv accumulate \(s.testDescription)")
    }

    @Test(arguments: shapes)
    func backwardMatchesNaive(_ s: Shape) {
        let p = Problem(s, seed: 4)
        // Start the gradients non-zero: backward must accumulate, not overwrite.
        var rng = Xoshiro256(seed: 5)
        let dinp0 = randomArray(p.inp.count, rng: &rng), dw0 = randomArray(p.weight.count, rng: &rng), db0 = randomArray(s.cout, rng: &rng)
        let dinp = Tensor(dinp0), dw = Tensor(dw0), db = Tensor(db0)
        let dout = Tensor(p.dout), inp = Tensor(p.inp), weight = Tensor(p.weight)
        causalConvBackward(dinp: dinp.baseAddress, dweight: dw.baseAddress, dbias: db.baseAddress, dout: dout.baseAddress,
                           inp: inp.baseAddress, weight: weight.baseAddress,
                           batch: s.b, inChannels: s.cin, outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d)
        let naive = Reference.causalConvBackward(dout: p.dout, inp: p.inp, weight: p.weight, batch: s.b, inChannels: s.cin,
                                                 outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d)
        let tol = 1e-5 * Float(s.t * s.b + s.cout * s.k)
        expectClose(dinp.array, zip(dinp0, naive.dinp).map(+), tolerance: tol, "conv dinp \(s.testDescription)")
        expectClose(dw.array, zip(dw0, naive.dweight).map(+), tolerance: tol, "conv dweight \(s.testDescription)")
        expectClose(db.array, zip(db0, naive.dbias).map(+), tolerance: tol, "conv dbias \(s.testDescription)")
    }

    @Test(arguments: shapes)
    func overwriteInputGradientSetsInsteadOfAdding(_ s: Shape) {
        let p = Problem(s, seed: 9)
        var rng = Xoshiro256(seed: 10)
        let dinp = Tensor(randomArray(p.inp.count, scale: 100, rng: &rng))  // garbage that must vanish
        let dout = Tensor(p.dout), inp = Tensor(p.inp), weight = Tensor(p.weight)
        causalConvBackward(dinp: dinp.baseAddress, dweight: nil, dbias: nil, dout: dout.baseAddress,
                           inp: inp.baseAddress, weight: weight.baseAddress,
                           batch: s.b, inChannels: s.cin, outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d,
                           overwriteInputGradient: true)
        let naive = Reference.causalConvBackward(dout: p.dout, inp: p.inp, weight: p.weight, batch: s.b, inChannels: s.cin,
                                                 outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d)
        expectClose(dinp.array, naive.dinp, tolerance: 1e-5 * Float(s.cout * s.k), "conv dinp overwrite \(s.testDescription)")
    }

    @Test(arguments: shapes)
    func backwardMatchesFiniteDifferences(_ s: Shape) {
        let p = Problem(s, seed: 6)
        let inp = Tensor(p.inp), weight = Tensor(p.weight), bias = Tensor(p.bias)
        // L = Σ dout ⊙ out, so dL/dout = dout.
        func loss() -> Double {
            let out = p.forward(inp, weight, bias)
            return zip(out.array, p.dout).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let dinp = Tensor(shape: [p.inp.count]), dw = Tensor(shape: [p.weight.count]), db = Tensor(shape: [s.cout])
        let dout = Tensor(p.dout)
        causalConvBackward(dinp: dinp.baseAddress, dweight: dw.baseAddress, dbias: db.baseAddress, dout: dout.baseAddress,
                           inp: inp.baseAddress, weight: weight.baseAddress,
                           batch: s.b, inChannels: s.cin, outChannels: s.cout, time: s.t, kernelSize: s.k, dilation: s.d)
        var rng = Xoshiro256(seed: 7)
        gradientCheck("conv dinp \(s.testDescription)", x: inp.baseAddress, count: inp.count, analytic: dinp.array,
                      h: 1e-2, tolerance: 2e-3, rng: &rng, loss: loss)
        gradientCheck("conv dweight \(s.testDescription)", x: weight.baseAddress, count: weight.count, analytic: dw.array,
                      h: 1e-2, tolerance: 2e-3, rng: &rng, loss: loss)
        gradientCheck("conv dbias \(s.testDescription)", x: bias.baseAddress, count: bias.count, analytic: db.array,
                      h: 1e-2, tolerance: 2e-3, rng: &rng, loss: loss)
    }

    /// An impulse through a tap-k identity filter arrives exactly (K−1−k)·d
    /// steps later: the present tap does not shift time at all.
    @Test(arguments: [(2, 1), (2, 4), (3, 3), (1, 1)])
    func noTimeShift(_ kd: (Int, Int)) {
        let (K, d) = kd
        let C = 2, T = 20, t0 = 5
        for k in 0..<K {
            let inp = Tensor(shape: [1, C, T]), weight = Tensor(shape: [K, C, C]), out = Tensor(shape: [1, C, T])
            inp[1 * T + t0] = 1  // channel 1
            for c in 0..<C { weight[(k * C + c) * C + c] = 1 }  // identity on tap k
            causalConvForward(out: out.baseAddress, inp: inp.baseAddress, weight: weight.baseAddress, bias: nil,
                              batch: 1, inChannels: C, outChannels: C, time: T, kernelSize: K, dilation: d)
            let shift = (K - 1 - k) * d
            for c in 0..<C {
                for t in 0..<T {
                    let expected: Float = (c == 1 && t == t0 + shift) ? 1 : 0
                    #expect(out[c * T + t] == expected, "K\(K) d\(d) tap \(k): out[\(c), \(t)] = \(out[c * T + t])")
                }
            }
        }
    }

    /// Changing the input at times ≥ t0 leaves every output before t0 unchanged.
    @Test(arguments: shapes)
    func causality(_ s: Shape) {
        let p = Problem(s, seed: 8)
        let inp = Tensor(p.inp), weight = Tensor(p.weight), bias = Tensor(p.bias)
        let before = p.forward(inp, weight, bias).array
        let t0 = s.t / 2
        for b in 0..<s.b { for c in 0..<s.cin { for t in t0..<s.t { inp[(b * s.cin + c) * s.t + t] += 10 } } }
        let after = p.forward(inp, weight, bias).array
        var changedLater = false
        for b in 0..<s.b {
            for o in 0..<s.cout {
                for t in 0..<s.t {
                    let i = (b * s.cout + o) * s.t + t
                    if t < t0 { #expect(after[i] == before[i], "output at t=\(t) < \(t0) changed") }
                    else if after[i] != before[i] { changedLater = true }
                }
            }
        }
        #expect(changedLater, "the perturbation should reach outputs at t ≥ \(t0)")
    }
}
