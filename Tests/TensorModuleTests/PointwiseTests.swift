import KernelReferences
import RealModule
import PBTSeededRNG
import Testing
import TestSupport
import PBTWaveTensor

@Suite struct VectorMathTests {
    /// Inputs across the whole useful range, the overflow/underflow edges, and
    /// a count that is not a multiple of any vector width (the tail path).
    static func inputs() -> [Float] {
        var rng = Xoshiro256(seed: 11)
        var xs = (0..<2001).map { _ in (2 * rng.nextUnitFloat() - 1) * 30 }
        xs += [0, -0, 1e-7, -1e-7, 87, -87, 88, -88, 100, -100, 1e30, -1e30, .infinity, -.infinity]
        return xs
    }

    @Test(arguments: variants)
    func expMatchesLibm(_ v: KernelVariant) {
        let xs = Self.inputs().filter { $0 <= 88 && $0 >= -87 }
        var out = [Float](repeating: 0, count: xs.count)
        v.kernels.exp(&out, xs, count: xs.count)
        var worst: Float = 0
        for (x, y) in zip(xs, out) {
            let ref = Float(Double.exp(Double(x)))
            worst = max(worst, (y - ref).magnitude / ref)
        }
        print("\(v) exp: worst relative error \(worst)")
        #expect(worst < 3e-7)
    }

    @Test(arguments: variants)
    func expSaturatesAndPropagatesNaN(_ v: KernelVariant) {
        let xs: [Float] = [1000, -1000, .infinity, -.infinity, .nan, 0, 1, 2, 3]
        var out = [Float](repeating: 0, count: xs.count)
        v.kernels.exp(&out, xs, count: xs.count)
        #expect(out[0].isFinite && out[0] > 1e38)
        #expect(out[1] >= 0 && out[1] < 1e-37)
        #expect(out[2].isFinite && out[3] >= 0)
        #expect(out[4].isNaN)
        #expect(out[5] == 1)
    }

    @Test(arguments: variants)
    func tanhAndSigmoidMatchLibm(_ v: KernelVariant) {
        let xs = Self.inputs()
        var th = [Float](repeating: 0, count: xs.count), sg = th
        v.kernels.tanh(&th, xs, count: xs.count)
        v.kernels.sigmoid(&sg, xs, count: xs.count)
        let tanhRef = xs.map { Float(Double.tanh(Double($0))) }
        expectClose(th, tanhRef, tolerance: 1e-6, "\(v) tanh")
        // Also relatively accurate near 0, where tanh(x) ≈ x is small.
        let worst = zip(th, tanhRef).filter { $0.1 != 0 }.map { ($0.0 - $0.1).magnitude / $0.1.magnitude }.max() ?? 0
        #expect(worst < 1e-6, "\(v) tanh: worst relative error \(worst)")
        expectClose(sg, xs.map { Float(1 / (1 + Double.exp(-Double($0)))) }, tolerance: 1e-6, "\(v) sigmoid")
    }
}

@Suite struct GatedUnitTests {
    // (rows, D): one row (generation), ragged widths at every vector size.
    static let shapes: [(Int, Int)] = [(1, 1), (1, 32), (7, 3), (13, 5), (40, 32), (9, 37)]

    @Test(arguments: variants, shapes)
    func forwardMatchesNaive(_ v: KernelVariant, _ s: (Int, Int)) {
        let (rows, D) = s
        var rng = Xoshiro256(seed: 21)
        let preValues = randomArray(rows * 2 * D, scale: 4, rng: &rng), biasValues = randomArray(2 * D, rng: &rng)
        let pre = Tensor(preValues), bias = Tensor(biasValues)
        let gate = Tensor(shape: [rows, 2 * D]), z = Tensor(shape: [rows, D])
        v.kernels.gatedForward(gate: gate.baseAddress, gateStride: 2 * D, z: z.baseAddress, zStride: D, pre: pre.baseAddress,
                               preStride: 2 * D, bias: bias.baseAddress, rows: rows, channels: D)
        // The twin: add the bias first, then the plain unit.
        let biased = preValues.indices.map { preValues[$0] + biasValues[$0 % (2 * D)] }
        let naive = Reference.gatedForward(pre: biased, rows: rows, channels: D)
        expectClose(z.array, naive.z, tolerance: 2e-6, "\(v) gated forward z, rows \(rows) D\(D)")
        expectClose(gate.array, naive.gate, tolerance: 2e-6, "\(v) gated forward tanh|σ, rows \(rows) D\(D)")
    }

    @Test(arguments: variants, shapes)
    func backwardMatchesNaiveAndFiniteDifferences(_ v: KernelVariant, _ s: (Int, Int)) {
        let (rows, D) = s
        let k = v.kernels
        var rng = Xoshiro256(seed: 22)
        let pre = Tensor(randomArray(rows * 2 * D, scale: 2, rng: &rng))
        let dzValues = randomArray(rows * D, rng: &rng)
        let dz = Tensor(dzValues), gate = Tensor(shape: [rows, 2 * D]), z = Tensor(shape: [rows, D]), dpre = Tensor(shape: [rows, 2 * D])
        func forward() {
            k.gatedForward(gate: gate.baseAddress, gateStride: 2 * D, z: z.baseAddress, zStride: D, pre: pre.baseAddress,
                           preStride: 2 * D, rows: rows, channels: D)
        }
        forward()
        k.gatedBackward(dpre: dpre.baseAddress, dpreStride: 2 * D, dz: dz.baseAddress, dzStride: D, gate: gate.baseAddress,
                        gateStride: 2 * D, rows: rows, channels: D)
        let naive = Reference.gatedBackward(dz: dzValues, pre: pre.array, rows: rows, channels: D)
        expectClose(dpre.array, naive, tolerance: 3e-6, "\(v) gated backward, rows \(rows) D\(D)")
        // In place over the gate values, as the model runs it.
        k.gatedBackward(dpre: gate.baseAddress, dpreStride: 2 * D, dz: dz.baseAddress, dzStride: D, gate: gate.baseAddress,
                        gateStride: 2 * D, rows: rows, channels: D)
        #expect(gate.array == dpre.array, "\(v) in-place gated backward must equal the out-of-place one")
        gradientCheck("\(v) gated rows \(rows) D\(D)", x: pre.baseAddress, count: pre.count, analytic: dpre.array,
                      h: 1e-3, tolerance: 1e-2, rng: &rng) {
            forward()
            return zip(z.array, dzValues).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
    }
}

@Suite struct ReLUAndSumTests {
    @Test(arguments: variants)
    func biasReLUAndItsBackward(_ v: KernelVariant) {
        let k = v.kernels
        var rng = Xoshiro256(seed: 31)
        let rows = 5, C = 37
        let xValues = randomArray(rows * C, rng: &rng), bValues = randomArray(C, scale: 0.3, rng: &rng)
        let x = Tensor(xValues), bias = Tensor(bValues), y = Tensor(shape: [rows, C])
        k.biasReLU(out: y.baseAddress, outStride: C, inp: x.baseAddress, inStride: C, bias: bias.baseAddress, rows: rows, channels: C)
        #expect(y.array == xValues.indices.map { max(xValues[$0] + bValues[$0 % C], 0) })
        let dout = Tensor(randomArray(rows * C, rng: &rng)), dx = Tensor(shape: [rows, C])
        k.reluBackward(dx: dx.baseAddress, dxStride: C, dy: dout.baseAddress, dyStride: C, y: y.baseAddress, yStride: C, rows: rows, channels: C)
        #expect(dx.array == y.array.indices.map { y[$0] > 0 ? dout[$0] : 0 })
        // Finite differences away from the kink.
        let doutValues = dout.array
        gradientCheck("\(v) relu", x: x.baseAddress, count: x.count, analytic: dx.array, h: 1e-4, tolerance: 1e-2, rng: &rng) {
            k.biasReLU(out: y.baseAddress, outStride: C, inp: x.baseAddress, inStride: C, bias: bias.baseAddress, rows: rows, channels: C)
            return zip(y.array, doutValues).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
    }

    @Test(arguments: variants)
    func reluKeepsNaN(_ v: KernelVariant) {
        let x = Tensor([.nan, -1, 2]), y = Tensor(shape: [3])
        v.kernels.biasReLU(out: y.baseAddress, outStride: 3, inp: x.baseAddress, inStride: 3, bias: nil, rows: 1, channels: 3)
        #expect(y[0].isNaN && y[1] == 0 && y[2] == 2, "a diverged activation must stay NaN, so that the loss shows it")
    }

    /// Row counts below, at and past each variant's unroll (8, 4 or 2 rows
    /// at once) and widths of 1 to 5 vectors with ragged tails.
    @Test(arguments: variants, [(7, 70), (1, 1), (8, 16), (9, 17), (37, 33), (200, 70), (13, 64)])
    func columnSumsAccumulate(_ v: KernelVariant, _ shape: (Int, Int)) {
        var rng = Xoshiro256(seed: 32)
        let (rows, C) = shape, stride = C + 5
        let x = randomArray(rows * stride, rng: &rng)
        let sums = Tensor((0..<C).map(Float.init))
        v.kernels.addColumnSums(sums.baseAddress, x, stride: stride, rows: rows, channels: C)
        let expected = (0..<C).map { c in Float(c) + (0..<rows).reduce(Float(0)) { $0 + x[$1 * stride + c] } }
        expectClose(sums.array, expected, tolerance: 1e-6 * Float(rows + C), "\(v) column sums \(rows)×\(C)")
    }
}

@Suite struct MatvecTests {
    @Test(arguments: variants, [(1, 1), (7, 3), (8, 5), (32, 32), (64, 64), (96, 32), (256, 64), (41, 17)])
    func matchesNaive(_ v: KernelVariant, _ s: (Int, Int)) {
        let (rows, cols) = s
        var rng = Xoshiro256(seed: 71)
        let wValues = randomArray(rows * cols, rng: &rng), xValues = randomArray(cols, rng: &rng)
        let bValues = randomArray(rows, rng: &rng), y0 = randomArray(rows, rng: &rng)
        let w = Tensor(wValues), wt = Tensor(shape: [cols, rows]), x = Tensor(xValues), b = Tensor(bValues)
        transpose(wt.baseAddress, w.baseAddress, rows: rows, cols: cols)
        let naive = Reference.matvec(weight: wValues, x: xValues, bias: bValues, rows: rows, cols: cols)
        let y = Tensor(shape: [rows])
        v.kernels.matvecTransposed(y.baseAddress, weightT: wt.baseAddress, x: x.baseAddress, bias: b.baseAddress, rows: rows, cols: cols)
        expectClose(y.array, naive, tolerance: 1e-5 * Float(cols), "\(v) matvec \(rows)x\(cols)")
        let acc = Tensor(y0)
        v.kernels.matvecTransposed(acc.baseAddress, weightT: wt.baseAddress, x: x.baseAddress, bias: nil, rows: rows, cols: cols, accumulate: true)
        let expected = (0..<rows).map { naive[$0] - bValues[$0] + y0[$0] }
        expectClose(acc.array, expected, tolerance: 1e-5 * Float(cols), "\(v) matvec accumulate \(rows)x\(cols)")
    }
}

extension MatvecTests {
    /// With bf16 values (each product exact in fp32) every variant sums each
    /// output in one order, so all give the same bits: a bf16 model
    /// generates the same audio on every variant (the last outputs, past the
    /// whole blocks of four vectors, were summed in one chain, so a ragged
    /// width like 17 differed on the portable variant).
    @Test(arguments: [(17, 34), (34, 17), (41, 17), (3, 7), (64, 33), (100, 9)])
    func variantsAgreeBitForBitOnBF16Values(_ s: (Int, Int)) throws {
        let (rows, cols) = s
        var rng = Xoshiro256(seed: 72)
        var wValues = randomArray(rows * cols, rng: &rng), xValues = randomArray(cols, rng: &rng)
        let bValues = randomArray(rows, rng: &rng)
        wValues.withUnsafeMutableBufferPointer { BF16Buffer.roundInPlace($0.baseAddress!, count: $0.count) }
        xValues.withUnsafeMutableBufferPointer { BF16Buffer.roundInPlace($0.baseAddress!, count: $0.count) }
        let w = Tensor(wValues), wt = Tensor(shape: [cols, rows]), x = Tensor(xValues), b = Tensor(bValues)
        transpose(wt.baseAddress, w.baseAddress, rows: rows, cols: cols)
        var results: [(KernelVariant, [UInt32])] = []
        for v in variants where v != .blas {
            let y = Tensor(shape: [rows])
            v.kernels.matvecTransposed(y.baseAddress, weightT: wt.baseAddress, x: x.baseAddress, bias: b.baseAddress, rows: rows, cols: cols)
            results.append((v, y.array.map(\.bitPattern)))
        }
        for (v, bits) in results.dropFirst() { #expect(bits == results[0].1, "\(v) vs \(results[0].0), \(rows)x\(cols)") }
    }
}

@Suite struct LayerGatedBackwardTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        var rows, d, s, r, layers, layer: Int
        var residual: Bool
        var testDescription: String { "rows \(rows) D\(d) S\(s) R\(r) layer \(layer)/\(layers)\(residual ? "" : " (no residual)")" }
    }

    static let shapes: [Shape] = [
        Shape(rows: 1, d: 1, s: 1, r: 1, layers: 1, layer: 0, residual: true),
        Shape(rows: 23, d: 32, s: 64, r: 32, layers: 3, layer: 1, residual: true),
        Shape(rows: 23, d: 32, s: 64, r: 32, layers: 3, layer: 2, residual: false),
        Shape(rows: 50, d: 24, s: 48, r: 24, layers: 4, layer: 3, residual: true),
        Shape(rows: 17, d: 5, s: 7, r: 3, layers: 2, layer: 1, residual: true),
        // Ragged gate widths whose last channels avx2 computes as dot
        // products (16 + 1; 16 + 4, before the flat tiles: 60 inner), and
        // 16 + 5 in row tiles with a ragged vector.
        Shape(rows: 41, d: 17, s: 34, r: 17, layers: 3, layer: 2, residual: false),
        Shape(rows: 50, d: 20, s: 40, r: 20, layers: 2, layer: 1, residual: true),
        Shape(rows: 45, d: 21, s: 42, r: 21, layers: 2, layer: 0, residual: true),
    ]

    /// L = Σ dskip ⊙ (z·W_skip,lᵀ) + Σ dres ⊙ (z·W_resᵀ) with z the gated unit
    /// of pre: the kernel's dpre against its naive twin and against central
    /// differences of L.
    @Test(arguments: variants, shapes)
    func matchesNaiveAndFiniteDifferences(_ v: KernelVariant, _ s: Shape) {
        let k = v.kernels
        var rng = Xoshiro256(seed: 91)
        let D = s.d, S = s.s, R = s.r, LD = s.layers * D
        let pre = Tensor(randomArray(s.rows * 2 * D, scale: 2, rng: &rng))
        let skipW = randomArray(S * LD, rng: &rng), resW = randomArray(R * D, rng: &rng)
        let dskip = randomArray(s.rows * S, rng: &rng), dres = randomArray(s.rows * R, rng: &rng)
        let ws = PackedConv(kernelSize: s.layers, inChannels: D, outChannels: S), wr = PackedConv(kernelSize: 1, inChannels: D, outChannels: R)
        taps(ofStacked: skipW, outChannels: S, taps: s.layers, inChannels: D).withUnsafeBufferPointer { ws.pack(weight: $0.baseAddress!, bias: nil) }
        resW.withUnsafeBufferPointer { wr.pack(weight: $0.baseAddress!, bias: nil) }
        let gate = Tensor(shape: [s.rows, 2 * D]), z = Tensor(shape: [s.rows, D])
        func forward() {
            k.gatedForward(gate: gate.baseAddress, gateStride: 2 * D, z: z.baseAddress, zStride: D, pre: pre.baseAddress,
                           preStride: 2 * D, rows: s.rows, channels: D)
        }
        forward()
        // In place over the gate values, as the model runs it.
        dskip.withUnsafeBufferPointer { ds in
            dres.withUnsafeBufferPointer { dr in
                k.gatedBackward(dpre: gate.baseAddress, dpreStride: 2 * D, gate: gate.baseAddress, gateStride: 2 * D,
                                skipGradient: ds.baseAddress!, skipStride: S, skipWeight: ws, skipTap: s.layer,
                                residualGradient: s.residual ? dr.baseAddress! : nil, residualStride: R, residualWeight: s.residual ? wr : nil,
                                rows: 0..<s.rows, channels: D)
            }
        }
        let dpre = gate.array
        // The twin: dz from its definition, then the unit's backward.
        var dz = [Float](repeating: 0, count: s.rows * D)
        for t in 0..<s.rows {
            for c in 0..<D {
                var sum = 0.0
                for o in 0..<S { sum += Double(dskip[t * S + o]) * Double(skipW[o * LD + s.layer * D + c]) }
                if s.residual { for o in 0..<R { sum += Double(dres[t * R + o]) * Double(resW[o * D + c]) } }
                dz[t * D + c] = Float(sum)
            }
        }
        let naive = Reference.gatedBackward(dz: dz, pre: pre.array, rows: s.rows, channels: D)
        expectClose(dpre, naive, tolerance: 1e-5 * Float(S + R), "\(v) layer gated backward \(s.testDescription)")
        func loss() -> Double {
            forward()
            var total = 0.0
            for t in 0..<s.rows {
                for c in 0..<D {
                    let zc = Double(z[t * D + c])
                    for o in 0..<S { total += Double(dskip[t * S + o]) * zc * Double(skipW[o * LD + s.layer * D + c]) }
                    if s.residual { for o in 0..<R { total += Double(dres[t * R + o]) * zc * Double(resW[o * D + c]) } }
                }
            }
            return total
        }
        gradientCheck("\(v) layer gated backward \(s.testDescription)", x: pre.baseAddress, count: pre.count, analytic: dpre,
                      h: 1e-3, tolerance: 1e-2, rng: &rng, loss: loss)
    }
}
