import Foundation
import KernelReferences
import PBTSeededRNG
import Testing
import TestSupport
import PBTWaveTensor

/// The bf16 products (bf16 operands, fp32 accumulation). Every variant is
/// compared with the portable twin (the generic variant, which emulates
/// vdpbf16ps in C) bit for bit: a product of two bf16 is exact in fp32, and
/// every variant adds the two products of a channel pair to the accumulator
/// in the instruction's order (odd channel first), each addition rounded, so
/// the sums agree exactly. (The instruction also flushes subnormal results to
/// zero; with these data no sum comes near 1e-38.) The gated unit's tanh and
/// σ are each variant's own approximations (as in fp32), so the gated
/// forward agrees to their ~1 ulp. Against the definition (the naive twin in
/// Double on the rounded operands), the difference is fp32 accumulation
/// error only.
@Suite struct BF16Tests {
    typealias Shape = ConvolutionTests.Shape

    // The convolution tests' shapes: odd channel counts (a pair padded with
    // zero), ragged vectors and tiles, dilation past T, K = 1 and 3, and an
    // inner dimension long enough to be split in blocks.
    static let shapes = ConvolutionTests.shapes

    /// Our CPUID test finds AVX512_BF16 exactly when Linux reports it (its
    /// cpuinfo flag, read independently); only the AVX-512 variant can use
    /// the instruction, and only where the CPU has it.
    @Test func theInstructionIsFoundWhereTheCPUHasIt() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if variants.contains(.avx512) { #expect(Kernels.bf16DotAvailable == flags.contains("avx512_bf16")) }
        for v in variants where v != .avx512 && v != .blas { #expect(try !Kernels(v).nativeBF16) }
        if variants.contains(.avx512) { #expect(try !Kernels(.avx512).nativeBF16 || Kernels.bf16DotAvailable) }
    }

    static func rounded(_ x: [Float]) -> [Float] { x.map { BF16Buffer.value(BF16Buffer.round($0)) } }

    /// bf16 rows of (T, C) floats with a row stride `stride` (even).
    static func bf16Rows(_ k: Kernels, _ x: [Float], rows: Int, channels: Int, stride: Int) -> BF16Buffer {
        let out = BF16Buffer(count: rows * stride)
        let t = Tensor(x)
        k.roundToBF16(out: out.baseAddress, outStride: stride, inp: t.baseAddress, inStride: channels, rows: rows, channels: channels)
        return out
    }

    /// A WaveNet layer's bf16-packed weights, random: the gated dilated
    /// convolution (R → 2D, K = 2, with bias), the skip 1×1s of L layers
    /// (D → S each, as L taps) and the residual 1×1 (D → R); with the skip
    /// weights as drawn, (S, L·D), and the residual weights.
    static func gatedLayer(R: Int, D: Int, S: Int, L: Int, rng: inout Xoshiro256)
        -> (dilated: PackedConv, skip: PackedConv, residual: PackedConv, skipWeight: [Float], residualWeight: [Float]) {
        let dilated = PackedConv(kernelSize: 2, inChannels: R, outChannels: 2 * D, gated: true, precision: .bf16)
        let skip = PackedConv(kernelSize: L, inChannels: D, outChannels: S, precision: .bf16)
        let residual = PackedConv(kernelSize: 1, inChannels: D, outChannels: R, precision: .bf16)
        let wd = randomArray(2 * 2 * D * R, scale: 0.3, rng: &rng), bd = randomArray(2 * D, rng: &rng)
        let ws = randomArray(S * L * D, scale: 0.3, rng: &rng), wr = randomArray(R * D, scale: 0.3, rng: &rng)
        wd.withUnsafeBufferPointer { w in bd.withUnsafeBufferPointer { dilated.pack(weight: w.baseAddress!, bias: $0.baseAddress!) } }
        taps(ofStacked: ws, outChannels: S, taps: L, inChannels: D).withUnsafeBufferPointer { skip.pack(weight: $0.baseAddress!, bias: nil) }
        wr.withUnsafeBufferPointer { residual.pack(weight: $0.baseAddress!, bias: nil) }
        return (dilated, skip, residual, ws, wr)
    }

    static func packed(_ s: Shape, _ w: [Float], _ b: [Float], gated: Bool = false) -> PackedConv {
        let p = PackedConv(kernelSize: s.k, inChannels: s.cin, outChannels: s.cout, gated: gated, precision: .bf16)
        w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { p.pack(weight: wp.baseAddress!, bias: $0.baseAddress!) } }
        return p
    }

    /// The definition of round-to-nearest-even at 8 significant bits, from
    /// the two bf16 neighbours of x (the truncation and the next one up in
    /// magnitude): the nearer, or the one with an even last bit on a tie.
    static func definitionRound(_ x: Float) -> UInt16 {
        if x.isNaN { return UInt16(x.bitPattern >> 16) | 0x40 }
        if x.isSubnormal { return x.sign == .minus ? 0x8000 : 0 }
        let down = UInt16(x.bitPattern >> 16), up = down &+ 1
        // Past the largest bf16, the next value up is 2^128 (where IEEE
        // rounding puts the overflow threshold).
        let upValue = BF16Buffer.value(up).isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(BF16Buffer.value(up))
        let dDown = abs(Double(x) - Double(BF16Buffer.value(down))), dUp = abs(upValue - Double(x))
        if dDown < dUp { return down }
        if dUp < dDown { return up }
        return down & 1 == 0 ? down : up
    }

    @Test(arguments: variants)
    func roundingIsNearestEven(_ v: KernelVariant) {
        var rng = Xoshiro256(seed: 1)
        var x = randomArray(4000, scale: 3, rng: &rng)
        // Ties (exactly halfway, odd and even), subnormals, the largest float
        // (rounds up to infinity), infinities, NaN, zeros, a ragged length.
        x += [Float(bitPattern: 0x3f808000), Float(bitPattern: 0x3f818000), Float(bitPattern: 0x0000_0001),
              Float(bitPattern: 0x8040_0000), .greatestFiniteMagnitude, .infinity, -.infinity, .nan, 0, -0.0, 1e-38, 3]
        let out = Self.bf16Rows(v.kernels, x, rows: 1, channels: x.count, stride: BF16Buffer.stride(channels: x.count))
        var mismatches = 0
        for i in x.indices {
            let expected = Self.definitionRound(x[i])
            if out.baseAddress[i] != expected || BF16Buffer.round(x[i]) != expected { mismatches += 1 }
        }
        print("\(v): \(mismatches) of \(x.count) values rounded differently from the definition")
        #expect(mismatches == 0)
        // An odd row gets a zero pad.
        let odd = Self.bf16Rows(v.kernels, [1, 2, 3], rows: 1, channels: 3, stride: 4)
        #expect(odd.baseAddress[3] == 0 && BF16Buffer.value(odd.baseAddress[2]) == 3)
    }

    @Test(arguments: variants, shapes)
    func forwardEqualsThePortableTwinAndTheDefinition(_ v: KernelVariant, _ s: Shape) throws {
        var rng = Xoshiro256(seed: 2)
        let inp = randomArray(s.t * s.cin, rng: &rng), w = randomArray(s.k * s.cout * s.cin, scale: 0.5, rng: &rng)
        let bias = randomArray(s.cout, rng: &rng), add = randomArray(s.t * s.cout, rng: &rng)
        let weight = Self.packed(s, w, bias), stride = BF16Buffer.stride(channels: s.cin) + 2
        func run(_ k: Kernels) -> [Float] {
            let x = Self.bf16Rows(k, inp, rows: s.t, channels: s.cin, stride: stride)
            let out = Tensor(shape: [s.t * s.cout]), a = Tensor(add)
            k.convForward(out: out.baseAddress, outStride: s.cout, adding: a.baseAddress, addStride: s.cout, inp: x.baseAddress, inStride: stride,
                          weight: weight, rows: 0..<s.t, dilation: s.d)
            return out.array
        }
        let fast = run(v.kernels), twin = run(try Kernels(.generic))
        #expect(fast == twin, "\(v): the bf16 forward differs from the portable twin (\(difference(fast, twin)))")
        var naive = Reference.causalConvForward(inp: Self.rounded(inp), weight: Self.rounded(w), bias: bias, time: s.t,
                                                inChannels: s.cin, outChannels: s.cout, kernelSize: s.k, dilation: s.d)
        for i in naive.indices { naive[i] += add[i] }
        // fp32 accumulation of K·Cin terms of size ≤ 0.5: a few ulps of the partial sums.
        expectClose(fast, naive, tolerance: 2e-6 * Float(s.k * s.cin) + 1e-5, "\(v) \(s.testDescription): bf16 forward vs definition")
    }

    @Test(arguments: variants, shapes)
    func inputGradientEqualsThePortableTwinAndTheDefinition(_ v: KernelVariant, _ s: Shape) throws {
        var rng = Xoshiro256(seed: 3)
        let dout = randomArray(s.t * s.cout, rng: &rng), w = randomArray(s.k * s.cout * s.cin, scale: 0.5, rng: &rng)
        let prior = randomArray(s.t * s.cin, rng: &rng)
        let weight = Self.packed(s, w, [Float](repeating: 0, count: s.cout)), stride = BF16Buffer.stride(channels: s.cout)
        func run(_ k: Kernels) -> [Float] {
            let g = Self.bf16Rows(k, dout, rows: s.t, channels: s.cout, stride: stride)
            let dinp = Tensor(prior)
            k.convBackwardInput(dinp: dinp.baseAddress, dinpStride: s.cin, accumulate: true, dout: g.baseAddress, doutStride: stride,
                                weight: weight, rows: 0..<s.t, time: s.t, dilation: s.d)
            return dinp.array
        }
        let fast = run(v.kernels), twin = run(try Kernels(.generic))
        #expect(fast == twin, "\(v): the bf16 input gradient differs from the portable twin (\(difference(fast, twin)))")
        var naive = Reference.causalConvBackward(dout: Self.rounded(dout), inp: [Float](repeating: 0, count: s.t * s.cin), weight: Self.rounded(w),
                                                 time: s.t, inChannels: s.cin, outChannels: s.cout, kernelSize: s.k, dilation: s.d).dinp
        for i in naive.indices { naive[i] += prior[i] }
        expectClose(fast, naive, tolerance: 2e-6 * Float(s.k * s.cout) + 1e-5, "\(v) \(s.testDescription): bf16 input gradient vs definition")
    }

    /// Wider than a 256-channel slab of the bf16 weight gradient on both
    /// sides (its stack copies are cut there) with an odd row count.
    /// The shapes, and two whose rows and channels span several of the bf16
    /// weight gradient's blocks of rows and slabs of channels, with one tap
    /// (blocks of 128 rows) and two (64).
    static let weightGradientShapes = shapes + [Shape(t: 23, cin: 300, cout: 270, k: 2, d: 3),
                                                Shape(t: 301, cin: 150, cout: 19, k: 1, d: 1),
                                                Shape(t: 203, cin: 20, cout: 150, k: 2, d: 7)]

    /// The weight gradient with bf16 operands (rounded by the kernel itself,
    /// two rows a vdot2) equals the portable twin bit for bit, and the
    /// definition (Double sums of the rounded operands) to fp32 accumulation
    /// error; the bias gradient sums the fp32 dout (in each variant's order,
    /// so to fp32 accumulation error as well). The rows go in two calls
    /// split at an odd row, as the wavefront's tiles split them, so that
    /// pairs start at odd rows and a call ends with half a pair.
    @Test(arguments: variants, weightGradientShapes)
    func weightGradientEqualsThePortableTwinAndTheDefinition(_ v: KernelVariant, _ s: Shape) throws {
        let p = ConvolutionTests.Problem(s, seed: 4)
        var rng = Xoshiro256(seed: 5)
        let dw0 = randomArray(s.k * s.cout * s.cin, rng: &rng), db0 = randomArray(s.cout, rng: &rng)
        let split = min(s.t, s.t / 2 | 1)
        func run(_ k: Kernels) -> (dw: [Float], db: [Float]) {
            let x = Tensor(p.inp), g = Tensor(p.dout), dw = Tensor(dw0), db = Tensor(db0)
            for rows in [0..<split, split..<s.t] {
                k.convBackwardWeight(dweight: dw.baseAddress, dbias: db.baseAddress, dout: g.baseAddress, doutStride: p.outStride,
                                     inp: x.baseAddress, inStride: p.inStride, rows: rows, inChannels: s.cin, outChannels: s.cout,
                                     kernelSize: s.k, dilation: s.d, operands: .bf16)
            }
            return (dw.array, db.array)
        }
        let fast = run(v.kernels), twin = run(try Kernels(.generic)), same = fast.dw == twin.dw
        #expect(same, "\(v): the bf16 weight gradient differs from the portable twin (\(difference(fast.dw, twin.dw)))")
        let naive = Reference.causalConvBackward(dout: Self.rounded(p.dense(p.dout, channels: s.cout, stride: p.outStride)),
                                                 inp: Self.rounded(p.dense(p.inp, channels: s.cin, stride: p.inStride)),
                                                 weight: p.weight, time: s.t, inChannels: s.cin, outChannels: s.cout, kernelSize: s.k, dilation: s.d)
        let tol = 1e-5 * Float(s.t) + 1e-6
        expectClose(fast.dw, zip(dw0, naive.dweight).map(+), tolerance: tol, "\(v) \(s.testDescription): bf16 weight gradient vs definition")
        expectClose(fast.db, zip(db0, p.naiveBackward().dbias).map(+), tolerance: tol, "\(v) \(s.testDescription): bias gradient vs fp32 sums")
    }

    /// The weight gradient on operands already in bf16 (rows as the other
    /// bf16 products write them, each operand a column block of wider rows
    /// at an odd offset, its neighbours huge) equals, bit for bit, the same
    /// variant rounding the fp32 rows itself; the neighbours reach no result
    /// (a product with one would be ~1e30), and the bias gradient sums the
    /// bf16 values of dout (Double sums of them, to fp32 accumulation error).
    /// Rows in two calls split at an odd row, as above.
    @Test(arguments: variants, weightGradientShapes)
    func weightGradientOnBF16RowsEqualsRoundingInTheKernel(_ v: KernelVariant, _ s: Shape) throws {
        let p = ConvolutionTests.Problem(s, seed: 6), k = v.kernels
        var rng = Xoshiro256(seed: 7)
        let dw0 = randomArray(s.k * s.cout * s.cin, rng: &rng), db0 = randomArray(s.cout, rng: &rng)
        let split = min(s.t, s.t / 2 | 1), huge = BF16Buffer.round(1e30)
        // The operand's channels at column `at` of rows `stride` wide; every other column huge.
        func block(_ x: [Float], channels C: Int, stride: Int, at: Int, of width: Int) -> BF16Buffer {
            let out = BF16Buffer(count: s.t * width)
            out.baseAddress.update(repeating: huge, count: s.t * width)
            for t in 0..<s.t { for c in 0..<C { out.baseAddress[t * width + at + c] = BF16Buffer.round(x[t * stride + c]) } }
            return out
        }
        let xw = s.cin + 4, gw = s.cout + 6
        let x16 = block(p.inp, channels: s.cin, stride: p.inStride, at: 1, of: xw)
        let g16 = block(p.dout, channels: s.cout, stride: p.outStride, at: 3, of: gw)
        let x = Tensor(p.inp), g = Tensor(p.dout)
        let dwRows = Tensor(dw0), dbRows = Tensor(db0), dwKernel = Tensor(dw0), dbKernel = Tensor(db0)
        for rows in [0..<split, split..<s.t] {
            k.convBackwardWeight(dweight: dwRows.baseAddress, dbias: dbRows.baseAddress, dout: g16.baseAddress + 3, doutStride: gw,
                                 inp: x16.baseAddress + 1, inStride: xw, rows: rows, inChannels: s.cin, outChannels: s.cout,
                                 kernelSize: s.k, dilation: s.d)
            k.convBackwardWeight(dweight: dwKernel.baseAddress, dbias: dbKernel.baseAddress, dout: g.baseAddress, doutStride: p.outStride,
                                 inp: x.baseAddress, inStride: p.inStride, rows: rows, inChannels: s.cin, outChannels: s.cout,
                                 kernelSize: s.k, dilation: s.d, operands: .bf16)
        }
        // (A Bool first: a failed #expect on two long arrays diffs them, for minutes.)
        let same = dwRows.array == dwKernel.array
        #expect(same, "\(v) \(s.testDescription): bf16 rows vs rounding in the kernel: \(difference(dwRows.array, dwKernel.array))")
        let dout = Self.rounded(p.dense(p.dout, channels: s.cout, stride: p.outStride))
        let sums = (0..<s.cout).map { o in db0[o] + Float((0..<s.t).reduce(0.0) { $0 + Double(dout[$1 * s.cout + o]) }) }
        expectClose(dbRows.array, sums, tolerance: 1e-5 * Float(s.t) + 1e-6, "\(v) \(s.testDescription): bias gradient vs sums of bf16 dout")
    }

    /// The bf16 products' rounded outputs (`rounded:`, `roundedZ:`,
    /// `roundedDpre:`) are their fp32 outputs rounded as `roundToBF16` rounds
    /// them, in the rows computed only, leaving an odd width's pad and the
    /// other rows alone; the fp32 outputs are the same as without them.
    @Test(arguments: variants)
    func roundedOutputsAreTheOutputsRounded(_ v: KernelVariant) throws {
        let k = v.kernels, T = 37, rows = 5..<33, sentinel: UInt16 = 0x7777
        var rng = Xoshiro256(seed: 9)
        func check(_ name: String, _ fp32: [Float], _ copy: BF16Buffer, width C: Int, stride: Int) {
            var wrong = 0, touched = 0
            for t in 0..<T {
                for c in 0..<stride {
                    let got = copy.baseAddress[t * stride + c]
                    if rows.contains(t) && c < C {
                        if got != BF16Buffer.round(fp32[t * C + c]) { wrong += 1 }
                    } else if got != sentinel { touched += 1 }
                }
            }
            #expect(wrong == 0 && touched == 0, "\(v) \(name): \(wrong) rounded values differ, \(touched) values outside the rows or past the width written")
        }
        func buffer(_ count: Int) -> BF16Buffer {
            let b = BF16Buffer(count: count)
            b.baseAddress.update(repeating: sentinel, count: count)
            return b
        }
        for (cin, cout, kernel, d) in [(32, 64, 2, 3), (21, 17, 2, 5), (70, 9, 1, 1)] {
            let s = Shape(t: T, cin: cin, cout: cout, k: kernel, d: d)
            let inp = randomArray(T * cin, rng: &rng), w = randomArray(kernel * cout * cin, scale: 0.5, rng: &rng)
            let bias = randomArray(cout, rng: &rng), add = randomArray(T * cout, rng: &rng)
            let weight = Self.packed(s, w, bias), inStride = BF16Buffer.stride(channels: cin)
            let x = Self.bf16Rows(k, inp, rows: T, channels: cin, stride: inStride), a = Tensor(add)
            let plain = Tensor(shape: [T * cout]), out = Tensor(shape: [T * cout]), outStride = BF16Buffer.stride(channels: cout)
            let copy = buffer(T * outStride)
            k.convForward(out: plain.baseAddress, outStride: cout, adding: a.baseAddress, addStride: cout, inp: x.baseAddress, inStride: inStride,
                          weight: weight, rows: rows, dilation: d, relu: true)
            k.convForward(out: out.baseAddress, outStride: cout, adding: a.baseAddress, addStride: cout, inp: x.baseAddress, inStride: inStride,
                          weight: weight, rows: rows, dilation: d, relu: true, rounded: BF16Rows(copy.baseAddress, stride: outStride))
            #expect(out.array == plain.array, "\(v): the forward's fp32 output changed with a rounded copy")
            check("forward \(cin)→\(cout)", out.array, copy, width: cout, stride: outStride)

            let dout = Self.bf16Rows(k, randomArray(T * cout, rng: &rng), rows: T, channels: cout, stride: outStride)
            let prior = randomArray(T * cin, rng: &rng), dinp = Tensor(prior), dinpCopy = buffer(T * inStride)
            k.convBackwardInput(dinp: dinp.baseAddress, dinpStride: cin, accumulate: true, dout: dout.baseAddress, doutStride: outStride,
                                weight: weight, rows: rows, time: T, dilation: d, rounded: BF16Rows(dinpCopy.baseAddress, stride: inStride))
            check("input gradient \(cout)→\(cin)", dinp.array, dinpCopy, width: cin, stride: inStride)

            // Through a ReLU's backward (its output y as bf16 rows, about half
            // zeros): the same sums kept where y > 0, rounded the same way.
            let yValues = randomArray(T * cin, rng: &rng).map { max($0, 0) }
            let y = Self.bf16Rows(k, yValues, rows: T, channels: cin, stride: inStride)
            let masked = Tensor(prior), maskedCopy = buffer(T * inStride)
            k.convBackwardInput(dinp: masked.baseAddress, dinpStride: cin, accumulate: true, dout: dout.baseAddress, doutStride: outStride,
                                weight: weight, rows: rows, time: T, dilation: d, rounded: BF16Rows(maskedCopy.baseAddress, stride: inStride),
                                reluOutput: y.baseAddress, reluStride: inStride)
            var expected = dinp.array
            for t in rows { for c in 0..<cin where y.baseAddress[t * inStride + c] == 0 { expected[t * cin + c] = 0 } }
            #expect(masked.array == expected, "\(v) \(cout)→\(cin): the input gradient through the ReLU's backward is not the masked one")
            #expect(yValues.contains(0) && yValues.contains { $0 > 0 }, "the ReLU output must have zeros and positives")
            check("input gradient \(cout)→\(cin) through a ReLU", masked.array, maskedCopy, width: cin, stride: inStride)
        }
        // The gated forward's z and the layer backward's dpre, at an odd D.
        let R = 10, D = 13, S = 22, L = 2, layer = 1
        let (dilated, skip, residual, _, _) = Self.gatedLayer(R: R, D: D, S: S, L: L, rng: &rng)
        let h = Self.bf16Rows(k, randomArray(T * R, rng: &rng), rows: T, channels: R, stride: R)
        let gate = Tensor(shape: [T * 2 * D]), z = Tensor(shape: [T * D]), zStride = BF16Buffer.stride(channels: D), zCopy = buffer(T * zStride)
        k.convGatedForward(gate: gate.baseAddress, gateStride: 2 * D, z: z.baseAddress, zStride: D, inp: h.baseAddress, inStride: R,
                           weight: dilated, rows: rows, dilation: 4, roundedZ: BF16Rows(zCopy.baseAddress, stride: zStride))
        check("gated forward's z", z.array, zCopy, width: D, stride: zStride)
        // Without the fp32 z (bf16 rows only): the same rows, the same gate values.
        let gateOnly = Tensor(shape: [T * 2 * D]), zOnly = buffer(T * zStride)
        k.convGatedForward(gate: gateOnly.baseAddress, gateStride: 2 * D, z: nil, zStride: D, inp: h.baseAddress, inStride: R,
                           weight: dilated, rows: rows, dilation: 4, roundedZ: BF16Rows(zOnly.baseAddress, stride: zStride))
        #expect(gateOnly.array == gate.array && Array(UnsafeBufferPointer(start: zOnly.baseAddress, count: T * zStride))
                    == Array(UnsafeBufferPointer(start: zCopy.baseAddress, count: T * zStride)),
                "\(v): the gated forward without its fp32 z wrote other gate values or bf16 rows")
        let gs = Self.bf16Rows(k, randomArray(T * S, rng: &rng), rows: T, channels: S, stride: S)
        let gr = Self.bf16Rows(k, randomArray(T * R, rng: &rng), rows: T, channels: R, stride: R)
        let gateValues = (0..<(T * 2 * D)).map { _ in rng.nextUnitFloat() * 0.98 + 0.01 }
        let dpre = Tensor(shape: [T * 2 * D], values: gateValues), dpreCopy = buffer(T * 2 * D)
        k.gatedBackward(dpre: dpre.baseAddress, dpreStride: 2 * D, gate: dpre.baseAddress, gateStride: 2 * D,
                        skipGradient: gs.baseAddress, skipStride: S, skipWeight: skip, skipTap: layer,
                        residualGradient: gr.baseAddress, residualStride: R, residualWeight: residual, rows: rows, channels: D,
                        roundedDpre: BF16Rows(dpreCopy.baseAddress, stride: 2 * D))
        var computed = dpre.array  // rows outside `rows` still hold gate values: compare only the computed rows
        for t in 0..<T where !rows.contains(t) { for c in 0..<(2 * D) { computed[t * 2 * D + c] = 0 } }
        check("layer backward's dpre", computed, dpreCopy, width: 2 * D, stride: 2 * D)
        // Without the fp32 dpre (bf16 rows only): the same rows, the gate values untouched.
        let gateKept = Tensor(shape: [T * 2 * D], values: gateValues), dpreOnly = buffer(T * 2 * D)
        k.gatedBackward(dpre: nil, dpreStride: 2 * D, gate: gateKept.baseAddress, gateStride: 2 * D,
                        skipGradient: gs.baseAddress, skipStride: S, skipWeight: skip, skipTap: layer,
                        residualGradient: gr.baseAddress, residualStride: R, residualWeight: residual, rows: rows, channels: D,
                        roundedDpre: BF16Rows(dpreOnly.baseAddress, stride: 2 * D))
        #expect(gateKept.array == gateValues && Array(UnsafeBufferPointer(start: dpreOnly.baseAddress, count: T * 2 * D))
                    == Array(UnsafeBufferPointer(start: dpreCopy.baseAddress, count: T * 2 * D)),
                "\(v): the layer backward without its fp32 dpre changed the gate values or wrote other bf16 rows")
    }

    /// The gated unit's slopes, which a bf16 step stores instead of the gate
    /// values: the gated forward writes [σ(g)·(1 − tanh²(a)) | z·(1 − σ(g))]
    /// of its own fp32 gate values, rounded to bf16 (half an ulp, 2⁻⁸
    /// relative), in the rows computed only, with the same z; the layer
    /// backward given slopes writes dpre = dz · slopes, with dz the Double
    /// sums of its rounded operands (to fp32 accumulation error and one bf16
    /// rounding), and equals the portable twin bit for bit. At an odd D and
    /// a row block that starts and ends mid-tile; and at D 16 and 32, whose
    /// slope rows the AVX-512 bf16 variant stores past the caches.
    @Test(arguments: variants, [13, 16, 32])
    func slopesAreTheUnitsDerivativesAndTheBackwardUsesThem(_ v: KernelVariant, _ D: Int) throws {
        let k = v.kernels, T = 41, rows = 3..<38, R = 10, S = 22, L = 2, layer = 1, sentinel: UInt16 = 0x7777
        var rng = Xoshiro256(seed: 11)
        let (dilated, skip, residual, ws, wr) = Self.gatedLayer(R: R, D: D, S: S, L: L, rng: &rng)
        let h = Self.bf16Rows(k, randomArray(T * R, scale: 2, rng: &rng), rows: T, channels: R, stride: R)

        // Forward: the gate values, then the slopes of the same rows.
        let gate = Tensor(shape: [T * 2 * D]), z = Tensor(shape: [T * D]), zAgain = Tensor(shape: [T * D]), scratch = Tensor(shape: [T * 2 * D])
        let slopes = BF16Buffer(count: T * 2 * D)
        slopes.baseAddress.update(repeating: sentinel, count: T * 2 * D)
        k.convGatedForward(gate: gate.baseAddress, gateStride: 2 * D, z: z.baseAddress, zStride: D, inp: h.baseAddress, inStride: R,
                           weight: dilated, rows: rows, dilation: 3)
        k.convGatedForward(gate: scratch.baseAddress, gateStride: 2 * D, z: zAgain.baseAddress, zStride: D, inp: h.baseAddress, inStride: R,
                           weight: dilated, rows: rows, dilation: 3, slopes: BF16Rows(slopes.baseAddress, stride: 2 * D))
        #expect(zAgain.array == z.array, "\(v): z changed when the slopes were written")
        let g = gate.array
        var off = 0, touched = 0
        for t in 0..<T {
            for c in 0..<(2 * D) {
                let got = slopes.baseAddress[t * 2 * D + c]
                guard rows.contains(t) else { if got != sentinel { touched += 1 }; continue }
                let th = g[t * 2 * D + c % D], sg = g[t * 2 * D + D + c % D]
                let want = c < D ? sg * (1 - th * th) : th * sg * (1 - sg)
                if abs(BF16Buffer.value(got) - want) > abs(want) * 0x1p-8 * 1.001 + 1e-30 { off += 1 }
            }
        }
        #expect(off == 0 && touched == 0, "\(v): \(off) slopes are more than half a bf16 ulp from the definition, \(touched) written outside the rows")

        // Backward from given slopes (random bf16 values).
        let sl = Self.bf16Rows(k, randomArray(T * 2 * D, rng: &rng), rows: T, channels: 2 * D, stride: 2 * D)
        let dskip = randomArray(T * S, rng: &rng), dres = randomArray(T * R, rng: &rng)
        func backward(_ k: Kernels) -> [UInt16] {
            let gs = Self.bf16Rows(k, dskip, rows: T, channels: S, stride: S), gr = Self.bf16Rows(k, dres, rows: T, channels: R, stride: R)
            let out = BF16Buffer(count: T * 2 * D)
            out.baseAddress.update(repeating: sentinel, count: T * 2 * D)
            k.gatedBackward(dpre: nil, dpreStride: 2 * D, gate: nil, gateStride: 2 * D,
                            skipGradient: gs.baseAddress, skipStride: S, skipWeight: skip, skipTap: layer,
                            residualGradient: gr.baseAddress, residualStride: R, residualWeight: residual, rows: rows, channels: D,
                            roundedDpre: BF16Rows(out.baseAddress, stride: 2 * D), slopes: BF16Rows(sl.baseAddress, stride: 2 * D))
            return Array(UnsafeBufferPointer(start: out.baseAddress, count: T * 2 * D))
        }
        let fast = backward(k), twin = backward(try Kernels(.generic)), same = fast == twin
        #expect(same, "\(v): dpre from the slopes differs from the portable twin")
        let r = Self.rounded
        let dsr = r(dskip), drr = r(dres), wsr = r(ws), wrr = r(wr)
        var wrong = 0
        for t in 0..<T {
            for c in 0..<(2 * D) {
                let got = fast[t * 2 * D + c]
                guard rows.contains(t) else { if got != sentinel { wrong += 1 }; continue }
                var dz = 0.0
                for o in 0..<S { dz += Double(dsr[t * S + o]) * Double(wsr[o * L * D + layer * D + c % D]) }
                for o in 0..<R { dz += Double(drr[t * R + o]) * Double(wrr[o * D + c % D]) }
                let want = dz * Double(BF16Buffer.value(sl.baseAddress[t * 2 * D + c]))
                if abs(Double(BF16Buffer.value(got)) - want) > abs(want) * 0x1p-8 * 1.001 + 1e-5 { wrong += 1 }
            }
        }
        #expect(wrong == 0, "\(v): \(wrong) values of dpre from the slopes are not dz · slopes (or were written outside the rows)")
    }

    /// The gated forward and the layer backward on a WaveNet-sized layer:
    /// the sums as the twin's bit for bit (the backward), the unit to ~1 ulp.
    @Test(arguments: variants)
    func gatedLayerEqualsThePortableTwin(_ v: KernelVariant) throws {
        let T = 300, R = 32, D = 32, S = 64, L = 3, layer = 1, d = 7
        var rng = Xoshiro256(seed: 4)
        let h = randomArray(T * R, rng: &rng)
        let (dilated, skip, residual, ws, wr) = Self.gatedLayer(R: R, D: D, S: S, L: L, rng: &rng)
        let dskip = randomArray(T * S, rng: &rng), dres = randomArray(T * R, rng: &rng)
        func run(_ k: Kernels) -> (gate: [Float], z: [Float], dpre: [Float]) {
            let x = Self.bf16Rows(k, h, rows: T, channels: R, stride: R)
            let gate = Tensor(shape: [T * 2 * D]), z = Tensor(shape: [T * D])
            k.convGatedForward(gate: gate.baseAddress, gateStride: 2 * D, z: z.baseAddress, zStride: D, inp: x.baseAddress, inStride: R,
                               weight: dilated, rows: 0..<T, dilation: d)
            let forward = gate.array
            let gs = Self.bf16Rows(k, dskip, rows: T, channels: S, stride: S), gr = Self.bf16Rows(k, dres, rows: T, channels: R, stride: R)
            let fixedGate = Tensor(shape: [T * 2 * D], values: gateValues)
            k.gatedBackward(dpre: fixedGate.baseAddress, dpreStride: 2 * D, gate: fixedGate.baseAddress, gateStride: 2 * D,
                            skipGradient: gs.baseAddress, skipStride: S, skipWeight: skip, skipTap: layer,
                            residualGradient: gr.baseAddress, residualStride: R, residualWeight: residual, rows: 0..<T, channels: D)
            return (forward, z.array, fixedGate.array)
        }
        // The backward starts from the same gate values in both (tanh and σ in (0, 1)).
        var grng = Xoshiro256(seed: 5)
        let gateValues = (0..<(T * 2 * D)).map { _ in grng.nextUnitFloat() * 0.98 + 0.01 }
        let a = run(v.kernels), b = run(try Kernels(.generic))
        expectClose(a.gate, b.gate, tolerance: 2e-6, "\(v) vs portable twin: bf16 gate")
        expectClose(a.z, b.z, tolerance: 2e-6, "\(v) vs portable twin: bf16 z")
        #expect(a.dpre == b.dpre, "\(v): the bf16 layer backward differs from the portable twin (\(difference(a.dpre, b.dpre)))")
        // And against the definition: dz from the rounded operands in Double.
        let (rs, rr, rdskip, rdres) = (Self.rounded(ws), Self.rounded(wr), Self.rounded(dskip), Self.rounded(dres))
        var worst: Float = 0
        for t in 0..<T {
            for c in 0..<D {
                var dz = 0.0
                for o in 0..<S { dz += Double(rdskip[t * S + o]) * Double(rs[o * L * D + layer * D + c]) }
                for o in 0..<R { dz += Double(rdres[t * R + o]) * Double(rr[o * D + c]) }
                let th = gateValues[t * 2 * D + c], sg = gateValues[t * 2 * D + D + c]
                let da = Float(dz) * sg * (1 - th * th)
                worst = max(worst, abs(da - a.dpre[t * 2 * D + c]))
            }
        }
        print("\(v): bf16 layer backward vs definition: max abs diff \(worst)")
        #expect(worst <= 2e-5)
    }
}
