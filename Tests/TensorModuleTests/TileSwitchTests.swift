import PBTSeededRNG
import Testing
import TestSupport
import PBTWaveTensor

/// The process-wide switches between ways of computing the same products
/// (flat tiles, half tails, the FMA units' width the avx2 kernels tune
/// for): each test flips them and compares the results bit for bit. One at a
/// time, so that none reads a switch another is flipping.
@Suite(.serialized) struct TileSwitchTests {
    /// Every fp32 row-broadcast product at C output channels, on inputs drawn
    /// from a seed: rows that start and end inside a tile and taps that
    /// straddle the sequence's start; the plain products also with an inner
    /// dimension long enough (K·Cin = 600) to go in blocks. For the tests that
    /// compare two ways of computing them bit for bit.
    static let productNames = ["forward (add, ReLU)", "gated forward, gate", "gated forward, z", "input gradient", "gated backward",
                               "gated backward, skip only", "forward, 600-long inner dimension", "input gradient, 600-long inner dimension"]
    func everyProduct(_ k: Kernels, C: Int) -> [[Float]] {
        let T = 131, d = 5, cin = 19, S = 33, R = 27
        var rng = Xoshiro256(seed: UInt64(C))
        let x = Tensor(randomArray(T * (cin + 1), rng: &rng)), wide = Tensor(randomArray(T * (C + 3), rng: &rng))
        let start = randomArray(T * (2 * C + 1), rng: &rng)
        let conv = PackedConv(kernelSize: 2, inChannels: cin, outChannels: C)
        let gated = PackedConv(kernelSize: 2, inChannels: cin, outChannels: 2 * C, gated: true)
        let back = PackedConv(kernelSize: 2, inChannels: C, outChannels: cin)
        let skip = PackedConv(kernelSize: 2, inChannels: C, outChannels: S), res = PackedConv(kernelSize: 1, inChannels: C, outChannels: R)
        let long = 300, xl = Tensor(randomArray(T * (long + 1), rng: &rng))
        let convLong = PackedConv(kernelSize: 2, inChannels: long, outChannels: C)
        let backLong = PackedConv(kernelSize: 2, inChannels: C, outChannels: long)
        for w in [conv, gated, back, skip, res, convLong, backLong] {
            let weight = randomArray(w.kernelSize * w.outChannels * w.inChannels, scale: 0.5, rng: &rng)
            let bias = randomArray(w.outChannels, rng: &rng)
            weight.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { w.pack(weight: wp.baseAddress!, bias: $0.baseAddress!) } }
        }
        let dskip = Tensor(randomArray(T * S, rng: &rng)), dres = Tensor(randomArray(T * R, rng: &rng))
        let out = Tensor(start), gate = Tensor(start), z = Tensor(start), dinp = Tensor(start), dpre = Tensor(start), dpre2 = Tensor(start)
        k.convForward(out: out.baseAddress, outStride: C + 1, adding: UnsafePointer(wide.baseAddress), addStride: C + 3,
                      inp: x.baseAddress, inStride: cin + 1, weight: conv, rows: 3..<T - 2, dilation: d, relu: true)
        k.convGatedForward(gate: gate.baseAddress, gateStride: 2 * C + 1, z: z.baseAddress, zStride: C + 1, inp: x.baseAddress,
                           inStride: cin + 1, weight: gated, rows: 1..<T, dilation: d)
        k.convBackwardInput(dinp: dinp.baseAddress, dinpStride: C + 1, accumulate: true, dout: x.baseAddress, doutStride: cin + 1,
                            weight: back, rows: 2..<T - 1, time: T, dilation: d)
        k.gatedBackward(dpre: dpre.baseAddress, dpreStride: 2 * C + 1, gate: gate.baseAddress, gateStride: 2 * C + 1,
                        skipGradient: dskip.baseAddress, skipStride: S, skipWeight: skip, skipTap: 1,
                        residualGradient: dres.baseAddress, residualStride: R, residualWeight: res, rows: 5..<T, channels: C)
        k.gatedBackward(dpre: dpre2.baseAddress, dpreStride: 2 * C + 1, gate: gate.baseAddress, gateStride: 2 * C + 1,
                        skipGradient: dskip.baseAddress, skipStride: S, skipWeight: skip, skipTap: 0,
                        residualGradient: nil, residualStride: 0, residualWeight: nil, rows: 0..<T - 3, channels: C)
        let outLong = Tensor(start), dinpLong = Tensor(start)
        k.convForward(out: outLong.baseAddress, outStride: C + 1, adding: UnsafePointer(wide.baseAddress), addStride: C + 3,
                      inp: xl.baseAddress, inStride: long + 1, weight: convLong, rows: 3..<T - 2, dilation: d, relu: true)
        k.convBackwardInput(dinp: dinpLong.baseAddress, dinpStride: C + 1, accumulate: true, dout: xl.baseAddress, doutStride: long + 1,
                            weight: backLong, rows: 2..<T - 1, time: T, dilation: d)
        return [out.array, gate.array, z.array, dinp.array, dpre.array, dpre2.array, outLong.array, dinpLong.array]
    }

    func expectBitForBit(_ a: [[Float]], _ b: [[Float]], _ what: String) {
        for (i, name) in Self.productNames.enumerated() {
            let differ = zip(a[i], b[i]).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(a[i].count == b[i].count && differ == 0, "\(what) \(name): \(differ) values differ")
        }
    }

    /// The switches the tests here flip, as they were before `body`.
    func keepingSwitches(_ body: () -> Void) {
        let saved = (Kernels.flatTiles, Kernels.halfTails, Kernels.dotTails, Kernels.fmaUnitsHalfWidth)
        defer { (Kernels.flatTiles, Kernels.halfTails, Kernels.dotTails, Kernels.fmaUnitsHalfWidth) = saved }
        body()
    }

    /// everyProduct with a switch on (`set(true)`), then off.
    func onAndOff(_ v: KernelVariant, C: Int, _ set: (Bool) -> Void) -> (on: [[Float]], off: [[Float]]) {
        set(true)
        let on = everyProduct(v.kernels, C: C)
        set(false)
        return (on, everyProduct(v.kernels, C: C))
    }

    /// Flat tiles (avx512; avx2 for the gated forward at 12 and 20, and on
    /// cores with 256-bit FMA units for every product at 12 and 20) give
    /// bit for bit what the row tiles give, for every product that has them
    /// and every width that takes them, with the avx2 choices of both kinds
    /// of core whichever this one is. (On variants without flat tiles both
    /// runs are the row tiles. Dot tails off in both: they sum in another
    /// order.)
    @Test(arguments: variants, [8, 12, 18, 20, 24, 28, 36, 40, 44, 56])
    func flatTilesAreTheRowTilesBitForBit(_ v: KernelVariant, _ C: Int) {
        keepingSwitches {
            Kernels.dotTails = false
            for halfWidth in [false, true] {
                Kernels.fmaUnitsHalfWidth = halfWidth
                let runs = onAndOff(v, C: C) { Kernels.flatTiles = $0 }
                expectBitForBit(runs.on, runs.off, "\(v) C\(C) (FMA units \(halfWidth ? "half" : "full") width) flat against row tiles:")
            }
        }
    }

    /// The FMA units' width is known once (from CPUID where it knows the
    /// core, else timed), and sets the half tails' default (unless
    /// PBTWAVE_HALF_TAILS says otherwise).
    @Test func halfTailsFollowTheFMAUnitsWidth() {
        let measured = Kernels.fmaUnitsHalfWidth
        #expect(Kernels.fmaUnitsHalfWidth == measured, "a second reading measured again and disagreed")
        if let known = Kernels.fmaUnitsHalfWidthFromCPUID {
            #expect(measured == known, "CPUID says \(known ? 128 : 256)-bit FMA units, yet the kernels tune for the other kind")
        }
        if !Kernels.supported.contains(.avx2) { #expect(!measured, "no AVX2, yet 128-bit FMA units reported") }
        if Kernels.halfTailsOverride == nil {
            #expect(Kernels.halfTails == measured, "half tails \(Kernels.halfTails) on FMA units \(measured ? "half" : "full") width")
        }
    }

    /// CPUID's vendor, family and model give the FMA units' width of the
    /// cores whose width is known (the manuals' family and model numbers),
    /// and nothing for the others, which are timed.
    @Test func fmaUnitsWidthOfKnownCores() {
        let half: [(String, Int, Int)] = [("AuthenticAMD", 0x17, 0x01), ("AuthenticAMD", 0x17, 0x08), ("AuthenticAMD", 0x17, 0x11),
                                          ("AuthenticAMD", 0x17, 0x18), ("AuthenticAMD", 0x17, 0x20), ("AuthenticAMD", 0x15, 0x60),
                                          ("HygonGenuine", 0x18, 0x00)]
        let full: [(String, Int, Int)] = [("AuthenticAMD", 0x17, 0x31), ("AuthenticAMD", 0x17, 0x60), ("AuthenticAMD", 0x17, 0x71),
                                          ("AuthenticAMD", 0x19, 0x01), ("AuthenticAMD", 0x19, 0x61), ("AuthenticAMD", 0x19, 0x11),
                                          ("AuthenticAMD", 0x1a, 0x02), ("AuthenticAMD", 0x1a, 0x44)]
        let unknown: [(String, Int, Int)] = [("GenuineIntel", 6, 0x8f), ("GenuineIntel", 6, 0xbe), ("AuthenticAMD", 0x10, 0x04),
                                             ("HygonGenuine", 0x19, 0x00), ("CentaurHauls", 7, 0x3b)]
        for (vendor, family, model) in half {
            #expect(Kernels.fmaUnitsHalfWidth(vendor: vendor, family: family, model: model) == true, "\(vendor) \(family) \(model)")
        }
        for (vendor, family, model) in full {
            #expect(Kernels.fmaUnitsHalfWidth(vendor: vendor, family: family, model: model) == false, "\(vendor) \(family) \(model)")
        }
        for (vendor, family, model) in unknown {
            #expect(Kernels.fmaUnitsHalfWidth(vendor: vendor, family: family, model: model) == nil, "\(vendor) \(family) \(model)")
        }
    }

    /// The avx512 variant with narrow tiles runs each product whose width
    /// they take (5–12 channels past a multiple of 16; weight gradients of
    /// 8–12 input channels past one) in the avx512-256
    /// kernels, giving bit for bit their results, and every other width in
    /// its own, giving bit for bit what it gives without them; and the two
    /// ways agree to within rounding. On this thread only: other suites'
    /// avx512 sums do not change under them.
    @Test(arguments: [4, 5, 8, 12, 13, 17, 20, 21, 24, 25, 28, 29, 32, 37, 44, 47])
    func narrowTilesRouteTheWidthsTheyTake(_ C: Int) throws {
        guard Kernels.supported.contains(.avx512) else { return }
        let wide = try Kernels(.avx512), narrow = try Kernels(.avx512_256)
        let takes = Kernels.narrowTilesTake(channels: C)
        #expect(takes == (5...12).contains(C % 16), "C\(C): narrow tiles \(takes ? "take" : "leave") it")
        let on = Kernels.withNarrowTiles(true) { everyProduct(wide, C: C) }
        let off = Kernels.withNarrowTiles(false) { everyProduct(wide, C: C) }
        expectBitForBit(on, takes ? everyProduct(narrow, C: C) : off, "avx512 C\(C) with narrow tiles against \(takes ? "avx512-256" : "without"):")
        for (i, name) in Self.productNames.enumerated() {
            let scale = max(off[i].map { abs($0) }.max() ?? 1, 1)
            let worst = zip(on[i], off[i]).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-5 * scale, "C\(C) \(name): with and without narrow tiles differ by \(worst)")
        }
        // The weight gradient of C input channels (to 2C and to 19 outputs),
        // routed by its inputs.
        let wgTakes = Kernels.narrowTilesTakeWeightGradient(inChannels: C)
        #expect(wgTakes == (8...12).contains(C % 16), "C\(C): the weight gradient's narrow tiles \(wgTakes ? "take" : "leave") it")
        for cout in [2 * C, 19] {
            let wgOn = Kernels.withNarrowTiles(true) { weightGradient(wide, cin: C, cout: cout) }
            let wgOff = Kernels.withNarrowTiles(false) { weightGradient(wide, cin: C, cout: cout) }
            let expected = wgTakes ? weightGradient(narrow, cin: C, cout: cout) : wgOff
            let differ = zip(wgOn, expected).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differ == 0, "avx512 weight gradient \(C) -> \(cout) with narrow tiles: \(differ) values differ from \(wgTakes ? "avx512-256" : "without")")
            let scale = max(wgOff.map { abs($0) }.max() ?? 1, 1), worst = zip(wgOn, wgOff).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-4 * scale, "weight gradient \(C) -> \(cout): with and without narrow tiles differ by \(worst)")
        }
    }

    /// An fp32 weight gradient (K = 2, dilation 3, 97 rows) and its bias
    /// sums, on inputs drawn from a seed.
    func weightGradient(_ k: Kernels, cin: Int, cout: Int) -> [Float] {
        let T = 97
        var rng = Xoshiro256(seed: UInt64(cin * 1000 + cout))
        let x = Tensor(randomArray(T * (cin + 2), rng: &rng)), g = Tensor(randomArray(T * (cout + 1), rng: &rng))
        let dw = Tensor([Float](repeating: 0, count: 2 * cout * cin)), db = Tensor([Float](repeating: 0, count: cout))
        k.convBackwardWeight(dweight: dw.baseAddress, dbias: db.baseAddress, dout: g.baseAddress, doutStride: cout + 1,
                             inp: x.baseAddress, inStride: cin + 2, rows: 0..<T, inChannels: cin, outChannels: cout, kernelSize: 2, dilation: 3)
        return dw.array + db.array
    }

    /// Narrow tiles default to the AVX-512 FMA units' width (256 bits:
    /// on), known from CPUID where it knows the core, else timed once; no
    /// AVX-512, no 256-bit AVX-512 units.
    @Test func narrowTilesFollowTheAVX512UnitsWidth() {
        let measured = Kernels.fma512UnitsHalfWidth
        #expect(Kernels.fma512UnitsHalfWidth == measured, "a second reading measured again and disagreed")
        if let known = Kernels.fma512UnitsHalfWidthFromCPUID {
            #expect(measured == known, "CPUID says \(known ? 256 : 512)-bit AVX-512 FMA units, yet the kernels tune for the other kind")
        }
        if !Kernels.supported.contains(.avx512) {
            #expect(!measured && Kernels.fma512UnitsHalfWidthFromCPUID == nil, "no AVX-512, yet its FMA units' width reported")
        }
        if Kernels.narrowTilesOverride == nil {
            #expect(Kernels.narrowTiles == measured, "narrow tiles \(Kernels.narrowTiles) on AVX-512 units \(measured ? 256 : 512) bits wide")
        }
        #expect(Kernels.withNarrowTiles(!Kernels.narrowTiles) { Kernels.narrowTiles } != Kernels.narrowTiles,
                "the calling thread's override did not hold")
    }

    /// CPUID names AMD's family 0x19 (Zen 4, where it has AVX-512) as
    /// running 512-bit FMAs on 256-bit units, and leaves the others (Zen 5,
    /// whose parts differ; Intel's, whose SKUs differ) to the timing.
    @Test func avx512UnitsWidthOfKnownCores() {
        for model in [0x10, 0x11, 0x61, 0x70] {
            #expect(Kernels.fma512UnitsHalfWidth(vendor: "AuthenticAMD", family: 0x19, model: model) == true, "Zen 4 model \(model)")
        }
        for (vendor, family, model) in [("AuthenticAMD", 0x1a, 0x02), ("AuthenticAMD", 0x1a, 0x24), ("GenuineIntel", 6, 0x8f),
                                        ("GenuineIntel", 6, 0x55), ("AuthenticAMD", 0x17, 0x31), ("HygonGenuine", 0x19, 0x00)] {
            #expect(Kernels.fma512UnitsHalfWidth(vendor: vendor, family: family, model: model) == nil, "\(vendor) \(family) \(model)")
        }
    }

    /// A ragged last vector of at most half a vector's channels in half-width
    /// vectors (avx2) gives bit for bit what the full-width row tiles give,
    /// at widths that take them (4, 17, 20, 36, 52 on avx2) and widths that
    /// do not (12, 28: their other vectors would not fill whole chunks). Flat
    /// tiles off in both runs, so that the gated forward at 20 takes the row
    /// tiles, and dot tails off. (On variants without half tails both runs
    /// are the same tiles.)
    @Test(arguments: variants, [4, 12, 17, 20, 28, 36, 52])
    func halfTailsAreTheFullTilesBitForBit(_ v: KernelVariant, _ C: Int) {
        keepingSwitches {
            Kernels.flatTiles = false
            Kernels.dotTails = false
            let runs = onAndOff(v, C: C) { Kernels.halfTails = $0 }
            expectBitForBit(runs.on, runs.off, "\(v) C\(C) half tails against full-width tiles:")
        }
    }

    /// A ragged width's last few channels as dot products (avx2: 1–4 of 8,
    /// generic: 1–2 of 4, where the other vectors fill whole chunks; avx512:
    /// 1–4 of 16 wherever they lie) agree
    /// with the row tiles to within rounding, for every product: rows that
    /// start and end inside a tile, taps that straddle the start, inner
    /// dimensions in blocks. Half tails and flat tiles off, so that the
    /// widths they would take reach the dot tails. And the dot tails must
    /// have run: at the widths where they apply, the two runs may not be
    /// bit for bit the same everywhere.
    @Test(arguments: variants, [1, 2, 3, 9, 10, 12, 17, 18, 19, 20, 25, 33, 34, 35, 36])
    func dotTailsAgreeWithTheRowTiles(_ v: KernelVariant, _ C: Int) {
        keepingSwitches {
            Kernels.flatTiles = false
            Kernels.halfTails = false
            let (dots, rows) = onAndOff(v, C: C) { Kernels.dotTails = $0 }
            var differ = 0
            for (i, name) in Self.productNames.enumerated() {
                #expect(dots[i].count == rows[i].count)
                let scale = rows[i].map { abs($0) }.max() ?? 1
                let worst = zip(dots[i], rows[i]).map { abs($0 - $1) }.max() ?? 0
                #expect(worst <= 1e-5 * max(scale, 1), "\(v) C\(C) \(name): dot tails differ by \(worst) (largest value \(scale))")
                differ += zip(dots[i], rows[i]).filter { $0.bitPattern != $1.bitPattern }.count
            }
            let vl = v == .avx512 ? 16 : v == .avx2 || v == .avx512_256 ? 8 : 4, n = C % vl
            let takes = ((v == .avx2 && n >= 1 && n <= 4 || v == .generic && n >= 1 && n <= 2) && (C / vl) % 2 == 0)
                || ((v == .avx512 || v == .avx512_256) && n >= 1 && n <= 4)
            if takes { #expect(differ > 0, "\(v) C\(C): every value bit for bit the row tiles': did the dot tails run?") }
        }
    }
}
