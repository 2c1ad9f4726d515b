import KernelReferences
import PBTSeededRNG
import Testing
import TestSupport
import PBTWaveTensor

/// A negative dilation: K blocks of T rows stored one after another, summed
/// as K taps, tap k reading block K − 1 − k (row t + (K − 1 − k)·T), as
/// WaveNet's skip product and its weight gradient read the layers' z's. The
/// forward product and the weight gradient against loops in Double, in fp32
/// in every variant, and with bf16 operands against the portable twin (bit
/// for bit) and the definition; and the weight gradient against central
/// differences of the forward product. Rows go in two calls split at an odd
/// row, as the wavefront's tiles split them.
@Suite struct BlockTapsTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        var t, cin, cout, k: Int
        var testDescription: String { "T\(t) Cin\(cin) Cout\(cout) K\(k) (blocks)" }
    }

    // Compact's skip product (20 layers of 32 → 64); ragged widths (17: the
    // AVX2 dot tails and the weight gradient's swapped tail; 5 and 7: one
    // ragged vector); 20 → 40 (flat tiles, outputs along the lanes in the
    // weight gradient); 30 taps of 33 (an inner dimension of 990, cut into
    // blocks across taps); one row, one channel.
    static let shapes: [Shape] = [
        Shape(t: 40, cin: 32, cout: 64, k: 20),
        Shape(t: 53, cin: 17, cout: 34, k: 20),
        Shape(t: 29, cin: 5, cout: 7, k: 4),
        Shape(t: 37, cin: 20, cout: 40, k: 3),
        Shape(t: 30, cin: 33, cout: 19, k: 30),
        Shape(t: 65, cin: 12, cout: 24, k: 5),
        Shape(t: 1, cin: 1, cout: 1, k: 2),
    ]

    /// The convolution tests' problem with K·T rows of input (stride Cin + 3;
    /// dout's first T rows, stride Cout + 2, are the ones used), a weight
    /// (K, Cout, Cin) and bias.
    struct Problem {
        var s: Shape
        var rows: ConvolutionTests.Problem
        var inp: [Float] { rows.inp }
        var weight: [Float] { rows.weight }
        var dout: [Float] { rows.dout }
        var inStride: Int { rows.inStride }
        var outStride: Int { rows.outStride }

        init(_ s: Shape, seed: UInt64) {
            self.s = s
            rows = ConvolutionTests.Problem(ConvolutionTests.Shape(t: s.k * s.t, cin: s.cin, cout: s.cout, k: s.k, d: 1), seed: seed)
        }

        /// Tap k's input at row t, channel c (of `inp`, e.g. rounded).
        func x(_ inp: [Float], _ k: Int, _ t: Int, _ c: Int) -> Double { Double(inp[((s.k - 1 - k) * s.t + t) * inStride + c]) }

        func naiveForward(_ inp: [Float], _ weight: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: s.t * s.cout)
            for t in 0..<s.t {
                for o in 0..<s.cout {
                    var sum = Double(rows.bias[o])
                    for k in 0..<s.k { for c in 0..<s.cin { sum += Double(weight[(k * s.cout + o) * s.cin + c]) * x(inp, k, t, c) } }
                    out[t * s.cout + o] = Float(sum)
                }
            }
            return out
        }

        func naiveWeightGradient(_ inp: [Float], _ dout: [Float]) -> [Float] {
            var dw = [Float](repeating: 0, count: weight.count)
            for k in 0..<s.k {
                for o in 0..<s.cout {
                    for c in 0..<s.cin {
                        var sum = 0.0
                        for t in 0..<s.t { sum += Double(dout[t * outStride + o]) * x(inp, k, t, c) }
                        dw[(k * s.cout + o) * s.cin + c] = Float(sum)
                    }
                }
            }
            return dw
        }

        /// The first T output rows without their padding.
        func dense(_ out: [Float]) -> [Float] { (0..<s.t).flatMap { out[($0 * outStride)..<($0 * outStride + s.cout)] } }

        var splits: [Range<Int>] { let cut = min(s.t, s.t / 2 | 1); return [0..<cut, cut..<s.t] }
    }

    var tolerance: (Shape) -> Float { { 1e-5 * Float($0.cin * $0.k) + 1e-6 } }

    @Test(arguments: variants, shapes)
    func forwardMatchesNaive(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 1), w = p.rows.packed(), x = Tensor(p.inp)
        let out = Tensor(shape: [s.t * p.outStride])
        for rows in p.splits {
            v.kernels.convForward(out: out.baseAddress, outStride: p.outStride, inp: x.baseAddress, inStride: p.inStride, weight: w,
                                  rows: rows, dilation: -s.t)
        }
        expectClose(p.dense(out.array), p.naiveForward(p.inp, p.weight), tolerance: tolerance(s), "\(v) block taps forward \(s.testDescription)")
        for t in 0..<s.t { for j in s.cout..<p.outStride { #expect(out[t * p.outStride + j] == 0) } }
    }

    @Test(arguments: variants, shapes)
    func weightGradientAccumulatesNaive(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 2)
        var rng = Xoshiro256(seed: 3)
        let dw0 = randomArray(p.weight.count, rng: &rng), naive = p.naiveWeightGradient(p.inp, p.dout)
        for alongOutputs in [true, false] {
            let dw = Tensor(dw0), dout = Tensor(p.dout), x = Tensor(p.inp)
            Kernels.withWeightGradientLanes(alongOutputs: alongOutputs) {
                for rows in p.splits {
                    v.kernels.convBackwardWeight(dweight: dw.baseAddress, dbias: nil, dout: dout.baseAddress, doutStride: p.outStride,
                                                 inp: x.baseAddress, inStride: p.inStride, rows: rows, inChannels: s.cin, outChannels: s.cout,
                                                 kernelSize: s.k, dilation: -s.t)
                }
            }
            expectClose(dw.array, zip(dw0, naive).map(+), tolerance: 1e-5 * Float(s.t) + 1e-6,
                        "\(v) block taps weight gradient\(alongOutputs ? "" : " (lanes along the inputs)") \(s.testDescription)")
        }
    }

    /// L = Σ dout ⊙ forward(inp): linear in the weight, so central differences
    /// are exact up to Float rounding of L (a long step keeps that small).
    @Test(arguments: variants, shapes)
    func weightGradientMatchesFiniteDifferences(_ v: KernelVariant, _ s: Shape) {
        let p = Problem(s, seed: 4), k = v.kernels
        let x = Tensor(p.inp), weight = Tensor(p.weight), bias = Tensor(p.rows.bias), dout = Tensor(p.dout)
        let w = PackedConv(kernelSize: s.k, inChannels: s.cin, outChannels: s.cout)
        let out = Tensor(shape: [s.t * p.outStride])
        func loss() -> Double {
            w.pack(weight: weight.baseAddress, bias: bias.baseAddress)
            k.convForward(out: out.baseAddress, outStride: p.outStride, inp: x.baseAddress, inStride: p.inStride, weight: w,
                          rows: 0..<s.t, dilation: -s.t)
            var total = 0.0
            for t in 0..<s.t { for o in 0..<s.cout { total += Double(out[t * p.outStride + o]) * Double(dout[t * p.outStride + o]) } }
            return total
        }
        let dw = Tensor(shape: [weight.count])
        k.convBackwardWeight(dweight: dw.baseAddress, dbias: nil, dout: dout.baseAddress, doutStride: p.outStride, inp: x.baseAddress,
                             inStride: p.inStride, rows: 0..<s.t, inChannels: s.cin, outChannels: s.cout, kernelSize: s.k, dilation: -s.t)
        var rng = Xoshiro256(seed: 5)
        gradientCheck("\(v) block taps dweight \(s.testDescription)", x: weight.baseAddress, count: weight.count, analytic: dw.array,
                      h: 0.25, tolerance: 2e-3, samples: 48, rng: &rng, loss: loss)
    }

    @Test(arguments: variants, shapes)
    func bf16ForwardEqualsThePortableTwinAndTheDefinition(_ v: KernelVariant, _ s: Shape) throws {
        let p = Problem(s, seed: 6), stride = BF16Buffer.stride(channels: s.cin) + 2
        let w = BF16Tests.packed(p.rows.s, p.weight, p.rows.bias)
        let inp = p.rows.dense(p.inp, channels: s.cin, stride: p.inStride)
        func run(_ k: Kernels) -> [Float] {
            let x = BF16Tests.bf16Rows(k, inp, rows: s.k * s.t, channels: s.cin, stride: stride)
            let out = Tensor(shape: [s.t * p.outStride])
            for rows in p.splits {
                k.convForward(out: out.baseAddress, outStride: p.outStride, inp: x.baseAddress, inStride: stride, weight: w, rows: rows,
                              dilation: -s.t)
            }
            return p.dense(out.array)
        }
        let fast = run(v.kernels), twin = run(try Kernels(.generic))
        #expect(fast == twin, "\(v): the bf16 block taps forward differs from the portable twin (\(difference(fast, twin)))")
        expectClose(fast, p.naiveForward(BF16Tests.rounded(p.inp), BF16Tests.rounded(p.weight)), tolerance: 2e-6 * Float(s.k * s.cin) + 1e-5,
                    "\(v) \(s.testDescription): bf16 block taps forward vs definition")
    }

    @Test(arguments: variants, shapes)
    func bf16WeightGradientEqualsThePortableTwinAndTheDefinition(_ v: KernelVariant, _ s: Shape) throws {
        let p = Problem(s, seed: 7)
        let xStride = BF16Buffer.stride(channels: s.cin) + 2, gStride = BF16Buffer.stride(channels: s.cout)
        let inp = p.rows.dense(p.inp, channels: s.cin, stride: p.inStride), dout = p.rows.dense(p.dout, channels: s.cout, stride: p.outStride)
        func run(_ k: Kernels) -> [Float] {
            let x = BF16Tests.bf16Rows(k, inp, rows: s.k * s.t, channels: s.cin, stride: xStride)
            let g = BF16Tests.bf16Rows(k, dout, rows: s.k * s.t, channels: s.cout, stride: gStride)
            let dw = Tensor(shape: [p.weight.count])
            for rows in p.splits {
                k.convBackwardWeight(dweight: dw.baseAddress, dbias: nil, dout: g.baseAddress, doutStride: gStride, inp: x.baseAddress,
                                     inStride: xStride, rows: rows, inChannels: s.cin, outChannels: s.cout, kernelSize: s.k, dilation: -s.t)
            }
            return dw.array
        }
        let fast = run(v.kernels), twin = run(try Kernels(.generic))
        #expect(fast == twin, "\(v): the bf16 block taps weight gradient differs from the portable twin (\(difference(fast, twin)))")
        expectClose(fast, p.naiveWeightGradient(BF16Tests.rounded(p.inp), BF16Tests.rounded(p.dout)), tolerance: 1e-5 * Float(s.t) + 1e-6,
                    "\(v) \(s.testDescription): bf16 block taps weight gradient vs definition")
    }
}
