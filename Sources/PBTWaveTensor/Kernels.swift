import CPBTWaveKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which implementation runs the kernels.
///
/// The instruction-set variants are our own C kernels (CPBTWaveKernels), compiled
/// for each set with per-function target attributes and chosen from CPUID.
/// `blas` is the previous path, kept for comparisons: the products go
/// through OpenBLAS's `cblas_sgemm`, the pointwise parts through the best
/// instruction-set variant.
public enum KernelVariant: String, CaseIterable, Sendable, CustomStringConvertible {
    case avx512
    /// AVX-512 instructions on 256-bit vectors, 32 registers: the avx512
    /// variant runs ragged widths here on cores whose FMA units are 256 bits
    /// wide (``Kernels/narrowTiles``); on its own, for tests and comparisons.
    case avx512_256 = "avx512-256"
    case avx2, generic, blas

    public var description: String { rawValue }
}

/// Errors in choosing the kernel variant (`PBTWAVE_ISA`).
public enum KernelError: Error, Equatable, CustomStringConvertible {
    case unknownVariant(String)
    case unsupported(KernelVariant, supported: [KernelVariant])
    /// A switch variable (`PBTWAVE_FLAT_TILES`, …) set to a value it does not take.
    case badSwitch(name: String, value: String, takes: [String])

    public var description: String {
        switch self {
        case .unknownVariant(let name):
            return "PBTWAVE_ISA=\(name) is not a kernel variant; use one of "
                + KernelVariant.allCases.map(\.rawValue).joined(separator: ", ") + ", or unset it to pick the best"
        case let .unsupported(variant, supported):
            return "this CPU cannot run the \(variant) kernels; it supports "
                + supported.map(\.rawValue).joined(separator: ", ") + " (set PBTWAVE_ISA to one of those, or unset it)"
        case let .badSwitch(name, value, takes):
            return "\(name)=\(value) is not a setting of it; use " + takes.joined(separator: " or ") + ", or unset it for the default"
        }
    }
}

/// One variant of the kernels: every kernel of PBTWaveTensor is a method of
/// this value, so a model, a test or a benchmark can run any variant the CPU
/// supports, side by side, without global state.
///
/// `Kernels.default` is the process's choice: `PBTWAVE_ISA` if set to a
/// variant this CPU supports, else the widest instruction set it has.
public struct Kernels: @unchecked Sendable, CustomStringConvertible {
    public let variant: KernelVariant
    /// The C table: the variant's own, or (for `blas`) the best instruction
    /// set's. It points to constant static data, hence `@unchecked Sendable`.
    let table: UnsafePointer<ck_kernels>

    /// The kernels of `variant`.
    /// - Throws: `KernelError.unsupported` if this CPU cannot run it.
    public init(_ variant: KernelVariant) throws(KernelError) {
        let isa: ck_isa
        switch variant {
        // With AVX512_BF16 where vdpbf16ps is the faster way, the same
        // kernels compiled with it: their bf16 products run on it (the fp32
        // ones are the same code; the bf16 results are the same bits).
        case .avx512: isa = ck_bf16_native_is_faster() != 0 ? CK_AVX512_BF16 : CK_AVX512
        case .avx512_256: isa = CK_AVX512_256
        case .avx2: isa = CK_AVX2
        case .generic: isa = CK_GENERIC
        case .blas: isa = ck_best_isa()
        }
        guard let table = ck_kernels_for(isa) else {
            throw .unsupported(variant, supported: Kernels.supported)
        }
        self.variant = variant
        self.table = table
    }

    /// The variants this CPU can run, widest first (`blas` always).
    public static var supported: [KernelVariant] {
        let isas = ck_supported_isas()
        var out: [KernelVariant] = []
        if isas & (1 << CK_AVX512.rawValue) != 0 { out += [.avx512, .avx512_256] }
        if isas & (1 << CK_AVX2.rawValue) != 0 { out.append(.avx2) }
        return out + [.generic, .blas]
    }

    /// The widest instruction-set variant this CPU runs.
    public static var best: KernelVariant { supported[0] }

    /// The variant a `PBTWAVE_ISA` value names (nil for an empty value).
    /// - Throws: `KernelError` if it names no variant or one this CPU cannot run.
    public static func named(_ name: String) throws(KernelError) -> Kernels? {
        if name.isEmpty { return nil }
        guard let variant = KernelVariant(rawValue: name.lowercased()) else { throw .unknownVariant(name) }
        return try Kernels(variant)
    }

    /// The variant `PBTWAVE_ISA` asks for (nil when unset or empty).
    /// - Throws: `KernelError` if it names no variant or one this CPU cannot run.
    public static func fromEnvironment() throws(KernelError) -> Kernels? {
        try checkSwitches()
        guard let raw = getenv("PBTWAVE_ISA") else { return nil }
        return try named(String(cString: raw))
    }

    /// The A/B switches and what each takes. The C side reads "0" as off
    /// and anything else as on, so `PBTWAVE_HALF_TAILS=off` turned them on
    /// (found by a helper): any other value is refused here, as a bad
    /// `PBTWAVE_ISA` is.
    static let switches: [(name: String, takes: [String])] = [
        ("PBTWAVE_FLAT_TILES", ["0", "1"]), ("PBTWAVE_HALF_TAILS", ["0", "1"]), ("PBTWAVE_DOT_TAILS", ["0", "1"]),
        ("PBTWAVE_NARROW_TILES", ["0", "1"]), ("PBTWAVE_WG_SWAP", ["0", "1"]), ("PBTWAVE_BF16_DOT", ["native", "fma"]),
    ]

    /// Throws for a switch set to a value it does not take (unset or empty:
    /// its default); `PBTWAVE_TILE_ROWS` takes a whole number of rows
    /// from 1 to 2^20 (other values were ignored without a word: found by a helper).
    public static func checkSwitches(_ environment: [String: String]? = nil) throws(KernelError) {
        func value(_ name: String) -> String? { environment.map { $0[name] } ?? getenv(name).map { String(cString: $0) } }
        for (name, takes) in switches {
            if let value = value(name), !value.isEmpty, !takes.contains(value) {
                throw .badSwitch(name: name, value: value, takes: takes)
            }
        }
        if let rows = value("PBTWAVE_TILE_ROWS"), !rows.isEmpty, !(Int(rows).map { (1...(1 << 20)).contains($0) } ?? false) {
            throw .badSwitch(name: "PBTWAVE_TILE_ROWS", value: rows, takes: ["a whole number of rows from 1 to 1048576"])
        }
    }

    /// The process's choice: `PBTWAVE_ISA` when it names a variant this CPU
    /// runs, else the best. Commands call `fromEnvironment()` first, so that a
    /// bad setting is reported instead of ignored.
    public static let `default`: Kernels = {
        if let raw = getenv("PBTWAVE_ISA"), let chosen = try? named(String(cString: raw)) { return chosen }
        return try! Kernels(best)  // the best is supported by definition
    }()

    /// The instruction set the C kernels of this variant use ("avx512", …).
    public var instructionSet: String { String(cString: table.pointee.name) }

    /// Floats per vector register of that instruction set.
    public var lanes: Int { Int(table.pointee.lanes) }

    /// Whether this variant's bf16 products run on the CPU's bf16 dot
    /// product (vdpbf16ps, AVX512_BF16) rather than its emulation in fp32
    /// (the same products, several times slower).
    public var nativeBF16: Bool { table.pointee.bf16_native != 0 }

    /// Whether this CPU has the bf16 dot product (AVX512_BF16, with the
    /// operating system's AVX-512 state). The `avx512` variant uses it only
    /// where it is faster than two FMAs (`nativeBF16` says which it chose).
    public static var bf16DotAvailable: Bool { ck_supported_isas() & (1 << CK_AVX512_BF16.rawValue) != 0 }

    /// Whether `PBTWAVE_BF16_DOT` (`native` or `fma`) made that choice
    /// instead of the measurement at start.
    public static var bf16DotForced: Bool { ck_bf16_dot_forced() >= 0 }

    /// Whether the variants that have them (avx512) compute ragged widths
    /// (channel counts not a multiple of the vector width, e.g. 20 or 24) in
    /// flat tiles, several rows end to end in whole vectors, rather than in
    /// row tiles with idle lanes. The results are bit for bit the same; on by
    /// default, `PBTWAVE_FLAT_TILES=0` starts with them off. For tests and
    /// A/B benchmarks; process-wide.
    public static var flatTiles: Bool {
        get { ck_flat_tiles() != 0 }
        set { ck_set_flat_tiles(newValue ? 1 : 0) }
    }

    /// Whether the variants that have them (avx2) compute a ragged width's
    /// last vector, when it holds at most half a vector of channels (20 =
    /// 8 + 8 + 4), in vectors half as wide: on AMD's Zen 1, whose FMA units
    /// are 128 bits wide, the idle lanes of a 256-bit vector cost as much as
    /// busy ones, while on cores with 256-bit units (Zen 2 on) the narrow
    /// tiles only cost more. The results are bit for bit the same. By
    /// default on where ``fmaUnitsHalfWidth`` says so; `PBTWAVE_HALF_TAILS=0`
    /// starts with them off, `=1` on. For tests and A/B benchmarks;
    /// process-wide.
    public static var halfTails: Bool {
        get { ck_half_tails() != 0 }
        set { ck_set_half_tails(newValue ? 1 : 0) }
    }

    /// Whether the avx512 variant runs each fp32 row-broadcast product (the
    /// convolutions, their input gradient, the gated backward product; and
    /// the weight gradients of 8–12 input channels past a multiple of 16,
    /// ``narrowTilesTakeWeightGradient(inChannels:)``) whose
    /// output width fills 8-lane vectors better than 16-lane ones (C mod 16
    /// from 5 to 12: 21 channels fill 21 of 24 lanes, not 21 of 32; 25 fill
    /// 24 and a dot tail takes the last) in the
    /// ``KernelVariant/avx512_256`` kernels. On cores whose FMA units are
    /// 256 bits wide (``fma512UnitsHalfWidth``: AMD's Zen 4) a 512-bit FMA
    /// costs two 256-bit ones, so the idle lanes cost as much as busy ones.
    /// The sums are the same up to rounding (the two variants' dot tails and
    /// gated units differ). By default on where ``fma512UnitsHalfWidth``
    /// says so; `PBTWAVE_NARROW_TILES=0` starts with it off, `=1` on.
    /// Read at each call: for A/B benchmarks; process-wide (tests use
    /// ``withNarrowTiles(_:_:)``).
    public static var narrowTiles: Bool {
        get { ck_narrow_tiles() != 0 }
        set { ck_set_narrow_tiles(newValue ? 1 : 0) }
    }

    /// Runs `body` with ``narrowTiles`` on or off for the calling thread's
    /// kernel calls only, so that a test can compare both while other
    /// threads keep the process's setting.
    public static func withNarrowTiles<T>(_ on: Bool, _ body: () throws -> T) rethrows -> T {
        ck_set_narrow_tiles_on_this_thread(on ? 1 : 0)
        defer { ck_set_narrow_tiles_on_this_thread(-1) }
        return try body()
    }

    /// Whether ``narrowTiles`` routes a product of `channels` output channels.
    public static func narrowTilesTake(channels: Int) -> Bool { ck_narrow_width(Int32(channels)) != 0 }

    /// Whether ``narrowTiles`` routes an fp32 weight gradient of `inChannels`
    /// input channels (8–12 past a multiple of 16: 24–28, 40–44).
    public static func narrowTilesTakeWeightGradient(inChannels: Int) -> Bool { ck_narrow_weight_gradient(Int32(inChannels)) != 0 }

    /// `PBTWAVE_NARROW_TILES=value` where that variable, set and not empty,
    /// chose ``narrowTiles``' start value instead of ``fma512UnitsHalfWidth``;
    /// nil where the core's width did.
    public static var narrowTilesOverride: String? {
        guard let value = getenv("PBTWAVE_NARROW_TILES").map({ String(cString: $0) }), !value.isEmpty else { return nil }
        return "PBTWAVE_NARROW_TILES=\(value)"
    }

    /// Whether this core runs a 512-bit FMA at half the rate of a 256-bit
    /// one (FMA units 256 bits wide, as AMD's Zen 4's): from CPUID where
    /// ``fma512UnitsHalfWidthFromCPUID`` knows the core, else measured once
    /// by timing both; false without AVX-512. Setting it overrides the
    /// answer; process-wide.
    public static var fma512UnitsHalfWidth: Bool {
        get { ck_fma512_half_width() != 0 }
        set { ck_set_fma512_half_width(newValue ? 1 : 0) }
    }

    /// What CPUID's vendor, family and model say of this core's AVX-512 FMA
    /// units: true for 256 bits (AMD's Zen 4), nil for other cores (Zen 5's
    /// width differs between its parts; Intel's number of 512-bit FMA ports
    /// between SKUs), which ``fma512UnitsHalfWidth`` times instead; nil
    /// without AVX-512.
    public static var fma512UnitsHalfWidthFromCPUID: Bool? { knownWidth(ck_fma512_half_width_from_cpuid()) }

    /// The same for a given CPUID vendor string, family and model.
    public static func fma512UnitsHalfWidth(vendor: String, family: Int, model: Int) -> Bool? {
        knownWidth(ck_fma512_half_width_of(vendor, Int32(family), Int32(model)))
    }

    /// Whether the variants that have them (avx2, generic) compute a ragged
    /// width's last few channels (up to 4 of 8 on avx2, 2 of 4 on generic:
    /// 17 = 16 + 1) as dot products along the inner dimension, rather than
    /// in a vector of their own with mostly idle lanes. The sums run in
    /// another order, so the results agree with the row tiles' to within
    /// rounding. On by default; `PBTWAVE_DOT_TAILS=0` starts with them off.
    /// For tests and A/B benchmarks; process-wide.
    public static var dotTails: Bool {
        get { ck_dot_tails() != 0 }
        set { ck_set_dot_tails(newValue ? 1 : 0) }
    }

    /// `PBTWAVE_HALF_TAILS=value` where that variable, set and not empty,
    /// chose ``halfTails``' start value instead of ``fmaUnitsHalfWidth``;
    /// nil where the measurement did.
    public static var halfTailsOverride: String? {
        guard let value = getenv("PBTWAVE_HALF_TAILS").map({ String(cString: $0) }), !value.isEmpty else { return nil }
        return "PBTWAVE_HALF_TAILS=\(value)"
    }

    /// Whether this core runs a 256-bit FMA at half the rate of a 128-bit
    /// one (FMA units 128 bits wide, as AMD's Zen 1's): from CPUID where
    /// ``fmaUnitsHalfWidthFromCPUID`` knows the core, else measured once by
    /// timing both; false without AVX2. The avx2 kernels tune ragged widths
    /// by it: the half tails' default, and whether the plain products and
    /// the gated backward take flat tiles (they do on 256-bit units, at 12
    /// and 20 channels). Setting it overrides the measurement, so that a
    /// test runs the other kind of core's paths (results are bit for bit the
    /// same either way); process-wide.
    public static var fmaUnitsHalfWidth: Bool {
        get { ck_fma_half_width() != 0 }
        set { ck_set_fma_half_width(newValue ? 1 : 0) }
    }

    /// What CPUID's vendor, family and model say of this core's FMA units:
    /// true for 128 bits (AMD's Zen, Zen+ and Excavator, Hygon's Dhyana), false for
    /// 256 or more (AMD's Zen 2 to Zen 5), nil for other cores, whose width
    /// ``fmaUnitsHalfWidth`` times instead.
    public static var fmaUnitsHalfWidthFromCPUID: Bool? { knownWidth(ck_fma_half_width_from_cpuid()) }

    /// The same for a given CPUID vendor string ("AuthenticAMD"), family
    /// and model (with their extended fields added, as the manuals count
    /// them).
    public static func fmaUnitsHalfWidth(vendor: String, family: Int, model: Int) -> Bool? {
        knownWidth(ck_fma_half_width_of(vendor, Int32(family), Int32(model)))
    }

    /// The C functions' answer (1: 128 bits, 0: wider, -1: not known) as an optional.
    private static func knownWidth(_ answer: Int32) -> Bool? { answer < 0 ? nil : answer != 0 }

    /// Runs `body` with the fp32 weight gradients' vector lanes along the
    /// output channels where those fill the vectors more than 1.2 times as
    /// well as the input channels (`alongOutputs`, the default: 20 inputs and
    /// 40 outputs use 83 % of the lanes instead of 62.5 %), and for a ragged
    /// last vector of a few input channels that would be a chunk of its own
    /// (17 = 16 + 1 on avx2), or always along the input channels. The sums
    /// agree up to rounding. On the calling thread only, so that a test can
    /// compare both while others run;
    /// `PBTWAVE_WG_SWAP=0` turns the swap off for the whole process (A/B
    /// benchmarks).
    public static func withWeightGradientLanes<T>(alongOutputs: Bool, _ body: () throws -> T) rethrows -> T {
        ck_set_wg_swap_on_this_thread(alongOutputs ? 1 : 0)
        defer { ck_set_wg_swap_on_this_thread(-1) }
        return try body()
    }

    public var description: String {
        variant == .blas ? "blas (OpenBLAS products, \(instructionSet) pointwise)" : variant.rawValue
    }
}

extension Kernels {
    /// Runs `rounds` rounds of 12 independent FMA chains at this variant's
    /// vector width (2·12·`lanes` flops a round): the loop a benchmark times
    /// to measure the core's peak. Returns a value that depends on every chain.
    public func fmaChains(_ rounds: Int) -> Float {
        ck_fma_chains(table, rounds)
    }
}
