import CPBTWaveKernels

/// The number format of the products' operands in training and evaluation.
///
/// `fp32`: everything in fp32. `bf16` (mixed precision): the convolutions
/// and 1×1 products take operands rounded to bf16 (nearest-even; 8 bits of
/// mantissa) and accumulate in fp32; master weights, gradients, Adam's
/// moments, the gated unit, the softmax and the loss stay fp32.
public enum Precision: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
    case fp32, bf16

    public var description: String { rawValue }

    /// The precision a command-line value names.
    /// - Throws: `PrecisionError` naming the accepted values.
    public init(parsing text: String) throws(PrecisionError) {
        guard let value = Precision(rawValue: text.lowercased()) else { throw PrecisionError(text: text) }
        self = value
    }
}

/// A precision name that is not one.
public struct PrecisionError: Error, Equatable, CustomStringConvertible {
    public let text: String
    public var description: String {
        "'\(text)' is not a precision; use " + Precision.allCases.map(\.rawValue).joined(separator: " or ")
            + " (bf16: bf16 products with fp32 accumulation)"
    }
}

/// bf16 values (the upper 16 bits of an fp32), 64-byte aligned and zeroed:
/// activations as the bf16 products read them. Rows of an odd channel count
/// are padded to whole pairs (see `BF16Buffer.stride(channels:)`). Large
/// buffers go on transparent huge pages, as a `Tensor`'s do.
public final class BF16Buffer {
    public let count: Int
    public let baseAddress: UnsafeMutablePointer<UInt16>

    public init(count: Int) {
        precondition(count >= 0, "a bf16 buffer cannot have \(count) values")
        self.count = count
        let raw = Tensor.allocate(byteCount: max(count, 1) * 2)
        baseAddress = raw.bindMemory(to: UInt16.self, capacity: max(count, 1))
        baseAddress.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { baseAddress.deallocate() }

    /// The row stride (in bf16 values) of `channels` channels: the next even number.
    public static func stride(channels: Int) -> Int { (channels + 1) / 2 * 2 }

    /// `x` rounded to bf16 as the kernels round it (nearest, ties to even).
    public static func round(_ x: Float) -> UInt16 { ck_bf16_from_float(x) }

    /// The fp32 value of a bf16 (exact).
    public static func value(_ h: UInt16) -> Float { ck_float_from_bf16(h) }

    /// Rounds `count` floats to bf16 values in place (kept as fp32): for the
    /// few operands of a matrix–vector product, where a bf16 copy is not worth it.
    public static func roundInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { x[i] = ck_float_from_bf16(ck_bf16_from_float(x[i])) }
    }
}

extension Kernels {
    /// `out[r, c] = bf16(inp[r, c])` for `rows` rows of `channels` floats,
    /// rounded to nearest-even; an odd channel count also writes a zero in
    /// column `channels`. `outStride` must be even. Cost: one pass; no allocation.
    public func roundToBF16(
        out: UnsafeMutablePointer<UInt16>, outStride: Int, inp: UnsafePointer<Float>, inStride: Int, rows: Int, channels C: Int
    ) {
        precondition(rows >= 0 && C >= 1 && inStride >= C && outStride >= BF16Buffer.stride(channels: C) && outStride % 2 == 0,
                     "bf16 rounding: bad sizes or strides (channels \(C), strides \(inStride) and \(outStride))")
        ck_round_bf16(table, out, outStride, inp, inStride, rows, Int32(C))
    }

    /// `convForward` with bf16 operands: `inp` (T, Cin) as bf16 rows (from
    /// `roundToBF16`, even stride), `weight` packed with `precision: .bf16`;
    /// fp32 accumulation, bias, add and ReLU. With `rounded`, the output rows
    /// are also written there rounded to bf16, as `roundToBF16` would (for the
    /// next product's operand, without a pass of its own). Cost: K·Cin·Cout
    /// bf16 multiply-adds a row (half the instructions of fp32 on vdpbf16ps).
    public func convForward(
        out: UnsafeMutablePointer<Float>, outStride: Int,
        adding add: UnsafePointer<Float>? = nil, addStride: Int = 0,
        inp: UnsafePointer<UInt16>, inStride: Int,
        weight w: PackedConv, rows: Range<Int>, dilation d: Int = 1, relu: Bool = false,
        rounded: BF16Rows? = nil
    ) {
        precondition(!w.gated && w.precision == .bf16, "convForward on bf16 activations needs a bf16-packed, ungated weight")
        precondition(rows.lowerBound >= 0 && d != 0, "conv forward: rows \(rows) must start at ≥ 0, dilation \(d) ≠ 0")
        precondition(outStride >= w.outChannels && inStride >= BF16Buffer.stride(channels: w.inChannels) && inStride % 2 == 0
                     && (add == nil || addStride >= w.outChannels), "conv forward: a stride is shorter than its row (or odd)")
        rounded?.check(channels: w.outChannels)
        if rows.isEmpty { return }
        ck_conv_forward_bf16(table, out, outStride, add, addStride, inp, inStride, w.forward.baseAddress,
                             rows.lowerBound, rows.upperBound, Int32(w.inChannels), Int32(w.outChannels), Int32(w.kernelSize), d, relu ? 1 : 0,
                             rounded?.base, rounded?.stride ?? 0)
    }

    /// `convGatedForward` with bf16 operands (see the bf16 `convForward`);
    /// the gated unit runs in fp32 on the fp32 sums. With `roundedZ`, z is
    /// also written there rounded to bf16; `z` may then be nil. With `slopes`,
    /// the unit's slopes `[∂z/∂a | ∂z/∂g] = [σ(g)·(1 − tanh²(a)) | z·(1 − σ(g))]`
    /// (2D a row) are written there rounded to bf16 instead of the gate values
    /// (all the backward needs; `gate` then only holds partial sums).
    public func convGatedForward(
        gate: UnsafeMutablePointer<Float>, gateStride: Int, z: UnsafeMutablePointer<Float>?, zStride: Int,
        inp: UnsafePointer<UInt16>, inStride: Int, weight w: PackedConv, rows: Range<Int>, dilation d: Int = 1,
        roundedZ: BF16Rows? = nil, slopes: BF16Rows? = nil
    ) {
        precondition(w.gated && w.precision == .bf16, "convGatedForward on bf16 activations needs a bf16-packed, gated weight")
        let D = w.outChannels / 2
        precondition(rows.lowerBound >= 0 && d >= 1, "gated conv: rows \(rows) must start at ≥ 0, dilation \(d) ≥ 1")
        precondition(gateStride >= 2 * D && zStride >= D && inStride >= BF16Buffer.stride(channels: w.inChannels) && inStride % 2 == 0,
                     "gated conv: a stride is shorter than its row (or odd)")
        precondition(z != nil || roundedZ != nil, "gated conv: no output (z and roundedZ both nil)")
        roundedZ?.check(channels: D)
        slopes?.check(channels: 2 * D)
        if rows.isEmpty { return }
        ck_conv_gated_forward_bf16(table, gate, gateStride, z, zStride, inp, inStride, w.forward.baseAddress,
                                   rows.lowerBound, rows.upperBound, Int32(w.inChannels), Int32(D), Int32(w.kernelSize), d,
                                   roundedZ?.base, roundedZ?.stride ?? 0, slopes?.base, slopes?.stride ?? 0)
    }

    /// `convBackwardInput` with bf16 operands: `dout` (T, Cout) as bf16
    /// rows, `weight` packed with `precision: .bf16`; fp32 `dinp`. With
    /// `rounded`, the final `dinp` rows are also written there rounded to bf16.
    /// With `reluOutput`, the bf16 rows (T, Cin; stride `reluStride`) of the
    /// output of a ReLU whose input `dinp` is (as the next products read
    /// it): the final rows then go through its backward first (kept where
    /// that output is > 0, else 0, as `reluBackward`), in the same pass. (A
    /// subnormal output rounds to a bf16 zero, so its gradient is dropped,
    /// as the products that read the zero never saw it.)
    public func convBackwardInput(
        dinp: UnsafeMutablePointer<Float>, dinpStride: Int, accumulate: Bool,
        dout: UnsafePointer<UInt16>, doutStride: Int, weight w: PackedConv, rows: Range<Int>, time T: Int, dilation d: Int = 1,
        rounded: BF16Rows? = nil, reluOutput: UnsafePointer<UInt16>? = nil, reluStride: Int = 0
    ) {
        precondition(w.precision == .bf16, "a bf16 gradient needs a bf16-packed weight")
        precondition(rows.lowerBound >= 0 && rows.upperBound <= T && d >= 1, "conv input gradient: rows \(rows) outside 0..<\(T)")
        precondition(dinpStride >= w.inChannels && doutStride >= BF16Buffer.stride(channels: w.outChannels) && doutStride % 2 == 0,
                     "conv input gradient: a stride is shorter than its row (or odd)")
        precondition(reluOutput == nil || reluStride >= BF16Buffer.stride(channels: w.inChannels),
                     "conv input gradient: the ReLU output's stride is shorter than its row")
        rounded?.check(channels: w.inChannels)
        if rows.isEmpty { return }
        ck_conv_backward_input_bf16(table, dinp, dinpStride, accumulate ? 1 : 0, dout, doutStride, w.backward.baseAddress,
                                    rows.lowerBound, rows.upperBound, T, Int32(w.inChannels), Int32(w.outChannels), Int32(w.kernelSize), d,
                                    rounded?.base, rounded?.stride ?? 0, reluOutput, reluStride)
    }

    /// `convBackwardWeight` with `operands: .bf16` on operands already in
    /// bf16: `dout` and `inp` as bf16 rows (as the other bf16 products read
    /// and write them; strides in bf16 values, any start, e.g. one layer's
    /// columns of stacked rows). The same sums, bit for bit, as rounding fp32
    /// rows in the kernel; `dbias` sums the bf16 values of `dout`. Reads half
    /// the bytes and rounds nothing. Cost: 2·K·Cin·Cout flops a row; no allocation.
    public func convBackwardWeight(
        dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
        dout: UnsafePointer<UInt16>, doutStride: Int, inp: UnsafePointer<UInt16>, inStride: Int,
        rows: Range<Int>, inChannels Cin: Int, outChannels Cout: Int, kernelSize K: Int, dilation d: Int = 1
    ) {
        checkWeightGradient(rows: rows, doutStride: doutStride, inStride: inStride, inChannels: Cin, outChannels: Cout, kernelSize: K, dilation: d)
        if rows.isEmpty { return }
        ck_conv_backward_weight_bf16(table, dweight, dbias, nil, dout, doutStride, nil, inp, inStride,
                                     rows.lowerBound, rows.upperBound, Int32(Cin), Int32(Cout), Int32(K), d)
    }

    /// `gatedBackward` (the layer backward up to the gated unit) with bf16
    /// operands: dskip and dres as bf16 rows, both weights bf16-packed; dz
    /// accumulates in fp32 and the unit's backward runs in fp32. With
    /// `roundedDpre`, dpre (2D a row) is also written there rounded to bf16;
    /// `dpre` may then be nil (only the bf16 rows are written). With `slopes`
    /// (as the bf16 `convGatedForward` writes them), dpre = dz·slopes and
    /// `gate` is not read (pass nil).
    public func gatedBackward(
        dpre: UnsafeMutablePointer<Float>?, dpreStride: Int, gate: UnsafePointer<Float>?, gateStride: Int,
        skipGradient dskip: UnsafePointer<UInt16>, skipStride: Int, skipWeight ws: PackedConv, skipTap: Int,
        residualGradient dres: UnsafePointer<UInt16>?, residualStride: Int, residualWeight wr: PackedConv?,
        rows: Range<Int>, channels D: Int, roundedDpre: BF16Rows? = nil, slopes: BF16Rows? = nil
    ) {
        precondition(ws.precision == .bf16 && (wr?.precision ?? .bf16) == .bf16, "bf16 gradients need bf16-packed weights")
        precondition(ws.inChannels == D && skipTap >= 0 && skipTap < ws.kernelSize, "gated backward: no skip tap \(skipTap) of D = \(D) inputs")
        precondition((dres == nil) == (wr == nil) && (wr.map { $0.kernelSize == 1 && $0.inChannels == D } ?? true),
                     "gated backward: the residual gradient and weight go together, with D inputs")
        precondition(rows.lowerBound >= 0 && dpreStride >= 2 * D && gateStride >= 2 * D
                     && skipStride >= BF16Buffer.stride(channels: ws.outChannels) && skipStride % 2 == 0
                     && (dres == nil || (residualStride >= BF16Buffer.stride(channels: wr!.outChannels) && residualStride % 2 == 0)),
                     "gated backward: bad rows or strides")
        precondition(dpre != nil || roundedDpre != nil, "gated backward: no output (dpre and roundedDpre both nil)")
        precondition((gate == nil) != (slopes == nil), "gated backward: give either the gate values or the slopes")
        roundedDpre?.check(channels: 2 * D)
        slopes?.check(channels: 2 * D)
        if rows.isEmpty { return }
        ck_gated_backward_product_bf16(table, dpre, dpreStride, gate, gateStride, dskip, skipStride,
                                       ws.backwardTap(skipTap), ws.backwardColumns, Int32(ws.outChannels),
                                       dres, residualStride, wr?.backward.baseAddress, wr?.backwardColumns ?? 0, Int32(wr?.outChannels ?? 0),
                                       rows.lowerBound, rows.upperBound, Int32(D), roundedDpre?.base, roundedDpre?.stride ?? 0,
                                       slopes?.base, slopes?.stride ?? 0)
    }
}

/// Where a bf16 product also writes its output rounded to bf16: row t at
/// `base + t·stride` (the output's own row numbers), `stride` even and at
/// least the padded width. The pad of an odd width is not written: it keeps
/// the zero a `BF16Buffer` starts with.
public struct BF16Rows {
    public let base: UnsafeMutablePointer<UInt16>
    public let stride: Int

    public init(_ base: UnsafeMutablePointer<UInt16>, stride: Int) {
        self.base = base
        self.stride = stride
    }

    func check(channels C: Int) {
        precondition(stride >= BF16Buffer.stride(channels: C) && stride % 2 == 0,
                     "bf16 output rows: stride \(stride) is shorter than \(C) channels padded to pairs (or odd)")
    }
}
