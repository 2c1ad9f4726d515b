import KernelReferences
import PBTSeededRNG
import Testing
import TestSupport
import PBTWaveTensor

@Suite struct ConvolutionTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        var t, cin, cout, k, d: Int
        var testDescription: String { "T\(t) Cin\(cin) Cout\(cout) K\(k) d\(d)" }
    }

    // Odd sizes; dilation longer than T; K = 1 (a 1x1 convolution), K = 3;
    // channel counts that leave ragged vectors at every width (4, 8, 16),
    // row counts that leave ragged register tiles; many output vectors (the head).
    static let shapes: [Shape] = [
        Shape(t: 1, cin: 1, cout: 1, k: 1, d: 1),
        Shape(t: 17, cin: 3, cout: 5, k: 2, d: 1),
        Shape(t: 19, cin: 4, cout: 6, k: 2, d: 4),
        Shape(t: 11, cin: 5, cout: 3, k: 2, d: 16),
        Shape(t: 13, cin: 2, cout: 7, k: 3, d: 2),
        Shape(t: 40, cin: 32, cout: 64, k: 2, d: 8),
        Shape(t: 101, cin: 24, cout: 40, k: 2, d: 33),
        Shape(t: 53, cin: 16, cout: 256, k: 1, d: 1),
        Shape(t: 97, cin: 70, cout: 17, k: 2, d: 5),  // 17 outputs: a dot tail of 1 on avx2 and avx512
        // Widths that avx512 computes in flat tiles (rows end to end in whole
        // vectors): 20 (four rows in five vectors) as outputs, gate width and
        // input gradient; 56 and 28; 24 and 12; row counts that leave partial
        // groups; dilations whose taps straddle the start inside a group.
        Shape(t: 77, cin: 20, cout: 20, k: 2, d: 3),
        Shape(t: 45, cin: 12, cout: 56, k: 2, d: 7),
        Shape(t: 66, cin: 40, cout: 24, k: 1, d: 1),
        // 20 inputs and 40 outputs: weight gradients with the outputs along
        // the lanes (they fill them better), over several 64-row blocks, a
        // tap that starts inside the second.
        Shape(t: 150, cin: 20, cout: 40, k: 2, d: 70),
        // An inner dimension (K·Cin = 1200) long enough that every variant
        // splits it into blocks, which cross taps and meet the causal edge.
        Shape(t: 60, cin: 600, cout: 20, k: 2, d: 9),
        // A last vector of 2 input channels (avx2's weight gradient compiles
        // each ragged count apart; the shapes above leave 1 and 3–7).
        Shape(t: 70, cin: 10, cout: 9, k: 2, d: 2),
        // Ragged last vectors of input channels whose weight gradients go
        // the swapped way (avx2: 16 + 1 inputs; avx512: 16 + 1 and 64 + 2), over several
        // blocks of rows, a tap that starts inside the second.
        Shape(t: 150, cin: 17, cout: 19, k: 2, d: 70),
        Shape(t: 90, cin: 66, cout: 70, k: 2, d: 30),
        // The same tail against more outputs than one pass of its tiles
        // takes (avx2: 5 vectors, generic: 5, avx512: 8), and against one.
        Shape(t: 70, cin: 17, cout: 45, k: 2, d: 3),
        Shape(t: 33, cin: 66, cout: 1, k: 1, d: 1),
        // Tails of 2, 3 and 4 input channels, which go together (avx2: 16 + 2,
        // 16 + 3 against outputs in two passes, 16 + 4 in three; generic:
        // 16 + 2; avx512: 64 + 6, a group of 4 and one of 2).
        Shape(t: 70, cin: 18, cout: 19, k: 2, d: 5),
        Shape(t: 70, cin: 19, cout: 45, k: 2, d: 3),
        Shape(t: 65, cin: 20, cout: 38, k: 1, d: 1),
        Shape(t: 50, cin: 70, cout: 33, k: 2, d: 4),
        // Tails of 5, 6 and 7 input channels, which avx2 takes the swapped
        // way too (16 + 5 against outputs in several passes, 16 + 6, 32 + 7).
        Shape(t: 90, cin: 21, cout: 42, k: 2, d: 40),
        Shape(t: 70, cin: 22, cout: 22, k: 1, d: 1),
        Shape(t: 70, cin: 39, cout: 26, k: 2, d: 3),
    ]

    /// Inputs with row strides longer than the rows (the padding must be ignored).
    struct Problem {
        var s: Shape
        var inStride: Int { s.cin + 3 }
        var outStride: Int { s.cout + 2 }
        var inp, weight, bias, dout: [Float]

        init(_ s: Shape, seed: UInt64) {
            var rng = Xoshiro256(seed: seed)
            self.s = s
            inp = randomArray(s.t * (s.cin + 3), rng: &rng)
            weight = randomArray(s.k * s.cout * s.cin, scale: 0.5, rng: &rng)
            bias = randomArray(s.cout, rng: &rng)
            dout = randomArray(s.t * (s.cout + 2), rng: &rng)
        }

        /// The rows without their padding.
        func dense(_ x: [Float], channels: Int, stride: Int) -> [Float] {
            var out: [Float] = []
            for t in 0..<s.t { out += x[(t * stride)..<(t * stride + channels)] }
            return out
        }

        func packed(gated: Bool = false) -> PackedConv {
            let w = PackedConv(kernelSize: s.k, inChannels: s.cin, outChannels: s.cout, gated: gated)
            weight.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { w.pack(weight: wp.baseAddress!, bias: $0.baseAddress!) } }
            return w
        }

        func naiveForward() -> [Float] {
            Reference.causalConvForward(inp: dense(inp, channels: s.cin, stride: inStride), weight: weight, bias: bias, time: s.t,
                                        inChannels: s.cin, outChannels: s.cout, kernelSize: s.k, dilation: s.d)
        }

        func naiveBackward() -> (dinp: [Float], dweight: [Float], dbias: [Float]) {
            Reference.causalConvBackward(dout: dense(dout, channels: s.cout, stride: outStride), inp: dense(inp, channels: s.cin, stride: inStride),
                                         weight: weight, time: s.t, inChannels: s.cin, outChannels: s.cout, kernelSize: s.k, dilation: s.d)
        }

        func forward(_ k: Kernels, _ w: PackedConv, rows: Range<Int>? = nil, into out: Tensor? = nil, adding: Tensor? = nil, relu: Bool = false) -> Tensor {
            let out = out ?? Tensor(shape: [s.t * outStride])
            let x = Tensor(inp)
            k.convForward(out: out.baseAddress, outStride: outStride, adding: adding.map { UnsafePointer($0.baseAddress) }, addStride: outStride,
                          inp: x.baseAddress, inStride: inStride, weight: w, rows: rows ?? 0..<s.t, dilation: s.d, relu: relu)
            return out
        }
    }

    var tolerance: (Shape) -> Float { { 1e-5 * Float($0.cin * $0.k) + 1e-6 } }

    @Test(arguments: variants, shapes)
    func forwardMatchesNaive(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 1)
        let out = p.forward(v.kernels, p.packed())
        expectClose(p.dense(out.array, channels: s.cout, stride: p.outStride), p.naiveForward(), tolerance: tolerance(s),
                    "\(v) conv forward \(s.testDescription)")
        // The row padding is never written.
        for t in 0..<s.t { for j in s.cout..<p.outStride { #expect(out[t * p.outStride + j] == 0) } }
    }

    @Test(arguments: variants, shapes)
    func forwardAddsAndAppliesReLU(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 2)
        var rng = Xoshiro256(seed: 3)
        let start = randomArray(s.t * p.outStride, rng: &rng)
        let add = Tensor(start)
        let sum = p.forward(v.kernels, p.packed(), adding: add, relu: true)
        let expected = zip(p.dense(start, channels: s.cout, stride: p.outStride), p.naiveForward()).map { max($0 + $1, 0) }
        expectClose(p.dense(sum.array, channels: s.cout, stride: p.outStride), expected, tolerance: tolerance(s),
                    "\(v) conv forward + add, ReLU \(s.testDescription)")
        // In place: adding the output to itself accumulates.
        let acc = Tensor(start)
        _ = p.forward(v.kernels, p.packed(), into: acc, adding: acc)
        let accumulated = zip(p.dense(start, channels: s.cout, stride: p.outStride), p.naiveForward()).map(+)
        expectClose(p.dense(acc.array, channels: s.cout, stride: p.outStride), accumulated, tolerance: tolerance(s),
                    "\(v) conv forward accumulate \(s.testDescription)")
    }

    /// Rows computed in two calls equal rows computed in one: what lets threads
    /// split the time axis. Our kernels sum every output in the same order
    /// whatever the tiling, so the match is exact.
    @Test(arguments: variants, shapes)
    func rowRangesComposeTheWhole(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 4)
        let w = p.packed()
        let whole = p.forward(v.kernels, w)
        let split = Tensor(shape: [s.t * p.outStride])
        let cut = s.t * 3 / 7
        _ = p.forward(v.kernels, w, rows: 0..<cut, into: split)
        _ = p.forward(v.kernels, w, rows: cut..<s.t, into: split)
        expectClose(split.array, whole.array, tolerance: v == .blas ? 1e-6 * Float(s.cin * s.k) : 0,
                    "\(v) conv forward in two row ranges \(s.testDescription)")
    }

    @Test(arguments: variants, shapes)
    func gatedForwardMatchesNaive(_ v: KernelVariant, _ s: Shape) {
        guard s.cout % 2 == 0 else { return }
        let p = Problem(s, seed: 5)
        let D = s.cout / 2
        let gate = Tensor(shape: [s.t * (2 * D + 1)]), z = Tensor(shape: [s.t * (D + 2)])
        let x = Tensor(p.inp)
        v.kernels.convGatedForward(gate: gate.baseAddress, gateStride: 2 * D + 1, z: z.baseAddress, zStride: D + 2, inp: x.baseAddress,
                                   inStride: p.inStride, weight: p.packed(gated: true), rows: 0..<s.t, dilation: s.d)
        let naive = Reference.gatedForward(pre: p.naiveForward(), rows: s.t, channels: D)
        let gateRows = p.dense(gate.array, channels: 2 * D, stride: 2 * D + 1)
        let zRows = p.dense(z.array, channels: D, stride: D + 2)
        expectClose(gateRows, naive.gate, tolerance: 2e-6 + tolerance(s), "\(v) gated conv, tanh|σ \(s.testDescription)")
        expectClose(zRows, naive.z, tolerance: 2e-6 + tolerance(s), "\(v) gated conv, z \(s.testDescription)")
    }

    @Test(arguments: variants, shapes)
    func backwardInputMatchesNaive(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 6)
        let naive = p.naiveBackward()
        var rng = Xoshiro256(seed: 7)
        let start = randomArray(s.t * p.inStride, rng: &rng)
        let dout = Tensor(p.dout), w = p.packed()
        for accumulate in [false, true] {
            let dinp = Tensor(start)
            v.kernels.convBackwardInput(dinp: dinp.baseAddress, dinpStride: p.inStride, accumulate: accumulate, dout: dout.baseAddress,
                                        doutStride: p.outStride, weight: w, rows: 0..<s.t, time: s.t, dilation: s.d)
            let base = p.dense(start, channels: s.cin, stride: p.inStride)
            let expected = accumulate ? zip(base, naive.dinp).map(+) : naive.dinp
            expectClose(p.dense(dinp.array, channels: s.cin, stride: p.inStride), expected, tolerance: 1e-5 * Float(s.cout * s.k) + 1e-6,
                        "\(v) conv input gradient\(accumulate ? " accumulated" : "") \(s.testDescription)")
        }
    }

    /// Both ways of laying the weight gradient's tiles (lanes along the input
    /// channels, or along the outputs where those fill the vectors better),
    /// the rows in two calls split at an odd row, as the wavefront's tiles
    /// split them.
    @Test(arguments: variants, shapes)
    func backwardWeightAccumulatesNaive(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 8)
        let naive = p.naiveBackward()
        var rng = Xoshiro256(seed: 9)
        // Start non-zero: the gradients must accumulate, not overwrite.
        let dw0 = randomArray(p.weight.count, rng: &rng), db0 = randomArray(s.cout, rng: &rng)
        for alongOutputs in [true, false] {
            let dw = Tensor(dw0), db = Tensor(db0), dout = Tensor(p.dout), x = Tensor(p.inp)
            let split = min(s.t, s.t / 2 | 1)
            Kernels.withWeightGradientLanes(alongOutputs: alongOutputs) {
                for rows in [0..<split, split..<s.t] {
                    v.kernels.convBackwardWeight(dweight: dw.baseAddress, dbias: db.baseAddress, dout: dout.baseAddress, doutStride: p.outStride,
                                                 inp: x.baseAddress, inStride: p.inStride, rows: rows, inChannels: s.cin, outChannels: s.cout,
                                                 kernelSize: s.k, dilation: s.d)
                }
            }
            let tol = 1e-5 * Float(s.t) + 1e-6, lanes = alongOutputs ? "" : " (lanes along the inputs)"
            expectClose(dw.array, zip(dw0, naive.dweight).map(+), tolerance: tol, "\(v) conv weight gradient\(lanes) \(s.testDescription)")
            expectClose(db.array, zip(db0, naive.dbias).map(+), tolerance: tol, "\(v) conv bias gradient\(lanes) \(s.testDescription)")
        }
    }

    /// L = Σ dout ⊙ conv(inp), so dL/dout = dout: the analytic gradients of the
    /// kernels against central differences of the forward kernel. L is linear
    /// in each operand, so the difference quotient is exact for any step; a
    /// long step (0.25) keeps Float rounding of L out of the comparison.
    @Test(arguments: variants, shapes)
    func backwardMatchesFiniteDifferences(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 10)
        let k = v.kernels
        let inp = Tensor(p.inp), weight = Tensor(p.weight), bias = Tensor(p.bias), dout = Tensor(p.dout)
        let w = PackedConv(kernelSize: s.k, inChannels: s.cin, outChannels: s.cout)
        let out = Tensor(shape: [s.t * p.outStride])
        func loss() -> Double {
            w.pack(weight: weight.baseAddress, bias: bias.baseAddress)
            k.convForward(out: out.baseAddress, outStride: p.outStride, inp: inp.baseAddress, inStride: p.inStride, weight: w,
                          rows: 0..<s.t, dilation: s.d)
            var total = 0.0
            for t in 0..<s.t { for o in 0..<s.cout { total += Double(out[t * p.outStride + o]) * Double(dout[t * p.outStride + o]) } }
            return total
        }
        _ = loss()
        let dinp = Tensor(shape: [inp.count]), dw = Tensor(shape: [weight.count]), db = Tensor(shape: [s.cout])
        k.convBackwardInput(dinp: dinp.baseAddress, dinpStride: p.inStride, accumulate: false, dout: dout.baseAddress, doutStride: p.outStride,
                            weight: w, rows: 0..<s.t, time: s.t, dilation: s.d)
        k.convBackwardWeight(dweight: dw.baseAddress, dbias: db.baseAddress, dout: dout.baseAddress, doutStride: p.outStride,
                             inp: inp.baseAddress, inStride: p.inStride, rows: 0..<s.t, inChannels: s.cin, outChannels: s.cout,
                             kernelSize: s.k, dilation: s.d)
        var rng = Xoshiro256(seed: 11)
        // Only real channels of the input rows (the padding is not read).
        let real = (0..<(s.t * p.inStride)).filter { $0 % p.inStride < s.cin }
        let picks = (0..<min(64, real.count)).map { _ in real[Int(rng.next() % UInt64(real.count))] }
        var worst = 0.0
        for i in picks {
            let saved = inp[i]
            inp[i] = saved + 0.25; let up = loss()
            inp[i] = saved - 0.25; let down = loss()
            inp[i] = saved
            let numeric = (up - down) / 0.5, analytic = Double(dinp[i])
            worst = max(worst, abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-2))
        }
        print("\(v) conv dinp \(s.testDescription) gradient check: worst relative error \(worst) over \(picks.count) coordinates")
        #expect(worst <= 2e-3, "\(v) conv dinp: finite-difference gradient off by \(worst)")
        gradientCheck("\(v) conv dweight \(s.testDescription)", x: weight.baseAddress, count: weight.count, analytic: dw.array,
                      h: 0.25, tolerance: 2e-3, rng: &rng, loss: loss)
        gradientCheck("\(v) conv dbias \(s.testDescription)", x: bias.baseAddress, count: bias.count, analytic: db.array,
                      h: 0.25, tolerance: 2e-3, rng: &rng, loss: loss)
    }

    /// Every variant computes the same convolution as the portable one, to
    /// within rounding (a few ulps of the sums), on a WaveNet-sized layer.
    @Test(arguments: variants)
    func variantsAgreeWithThePortableOne(_ v: KernelVariant) throws {
        let s = Shape(t: 600, cin: 32, cout: 64, k: 2, d: 37)
        let p = Problem(s, seed: 12)
        let generic = try Kernels(.generic)
        let gated = p.packed(gated: true)
        func gatedOut(_ k: Kernels) -> (gate: [Float], z: [Float]) {
            let gate = Tensor(shape: [s.t * s.cout]), z = Tensor(shape: [s.t * s.cout / 2]), x = Tensor(p.inp)
            k.convGatedForward(gate: gate.baseAddress, gateStride: s.cout, z: z.baseAddress, zStride: s.cout / 2, inp: x.baseAddress,
                               inStride: p.inStride, weight: gated, rows: 0..<s.t, dilation: s.d)
            return (gate.array, z.array)
        }
        func grads(_ k: Kernels) -> (dinp: [Float], dw: [Float]) {
            let dinp = Tensor(shape: [s.t * p.inStride]), dw = Tensor(shape: [p.weight.count]), dout = Tensor(p.dout), x = Tensor(p.inp)
            k.convBackwardInput(dinp: dinp.baseAddress, dinpStride: p.inStride, accumulate: false, dout: dout.baseAddress,
                                doutStride: p.outStride, weight: gated, rows: 0..<s.t, time: s.t, dilation: s.d)
            k.convBackwardWeight(dweight: dw.baseAddress, dbias: nil, dout: dout.baseAddress, doutStride: p.outStride, inp: x.baseAddress,
                                 inStride: p.inStride, rows: 0..<s.t, inChannels: s.cin, outChannels: s.cout, kernelSize: s.k, dilation: s.d)
            return (dinp.array, dw.array)
        }
        let (a, b) = (gatedOut(v.kernels), gatedOut(generic))
        expectClose(a.gate, b.gate, tolerance: 2e-6, "\(v) vs generic: gate")
        expectClose(a.z, b.z, tolerance: 2e-6, "\(v) vs generic: z")
        let (ga, gb) = (grads(v.kernels), grads(generic))
        expectClose(ga.dinp, gb.dinp, tolerance: 2e-5, "\(v) vs generic: input gradient")
        expectClose(ga.dw, gb.dw, tolerance: 2e-4, "\(v) vs generic: weight gradient (sums over 600 rows)")
    }

    /// An impulse through a tap-k identity filter arrives exactly (K−1−k)·d
    /// steps later: the present tap does not shift time at all.
    @Test(arguments: variants, [(2, 1), (2, 4), (3, 3), (1, 1)])
    func noTimeShift(_ v: KernelVariant, _ kd: (Int, Int)) {
        let (K, d) = kd
        let C = 2, T = 20, t0 = 5
        for k in 0..<K {
            let inp = Tensor(shape: [T, C]), weight = Tensor(shape: [K, C, C]), out = Tensor(shape: [T, C])
            inp[t0 * C + 1] = 1  // channel 1
            for c in 0..<C { weight[(k * C + c) * C + c] = 1 }  // identity on tap k
            let w = PackedConv(kernelSize: K, inChannels: C, outChannels: C)
            w.pack(weight: weight.baseAddress, bias: nil)
            v.kernels.convForward(out: out.baseAddress, outStride: C, inp: inp.baseAddress, inStride: C, weight: w, rows: 0..<T, dilation: d)
            let shift = (K - 1 - k) * d
            for t in 0..<T {
                for c in 0..<C {
                    let expected: Float = (c == 1 && t == t0 + shift) ? 1 : 0
                    #expect(out[t * C + c] == expected, "\(v) K\(K) d\(d) tap \(k): out[\(t), \(c)] = \(out[t * C + c])")
                }
            }
        }
    }

    /// Changing the input at times ≥ t0 leaves every output before t0 unchanged.
    @Test(arguments: variants, shapes)
    func causality(_ v: KernelVariant, _ s: Shape) {
        var p = Problem(s, seed: 13)
        let w = p.packed()
        let before = p.forward(v.kernels, w).array
        let t0 = s.t / 2
        for t in t0..<s.t { for c in 0..<s.cin { p.inp[t * p.inStride + c] += 10 } }
        let after = p.forward(v.kernels, w).array
        var changedLater = false
        for t in 0..<s.t {
            for o in 0..<s.cout {
                let i = t * p.outStride + o
                if t < t0 { #expect(after[i] == before[i], "\(v) output at t=\(t) < \(t0) changed") } else if after[i] != before[i] { changedLater = true }
            }
        }
        #expect(changedLater || s.t == 1, "the perturbation should reach outputs at t ≥ \(t0)")
    }
}
