import RealModule

/// A small, fast, seedable random number generator (xoshiro256**, Blackman &
/// Vigna) whose whole state is four words, so it can be saved in a checkpoint
/// or a trial store and restored bit-exactly.
///
/// Every random decision in PBTWave (initialisation, training windows, PBT's
/// selection and mutation, sampling) draws from one of these, so a run is a
/// pure function of its seed.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Hashable, Codable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    /// Seeds the four state words from `seed` with SplitMix64, as the authors
    /// recommend; any seed (including 0) gives a valid, well-mixed state.
    public init(seed: UInt64) {
        var s = seed
        func splitMix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// Restores a generator from a saved `state`. An all-zero state is the one
    /// invalid state of xoshiro; it is rejected.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        precondition(state != (0, 0, 0, 0), "xoshiro256 state must not be all zero")
        self.state = state
    }

    /// A generator for a named sub-stream, e.g. `rng.derived(1)` for worker 1:
    /// independent of the parent's future output, and deterministic.
    public func derived(_ stream: UInt64) -> Xoshiro256 {
        Xoshiro256(seed: state.0 ^ (stream &* 0xD1B5_4A32_D192_ED03) ^ state.2.rotatedLeft(17))
    }


    public mutating func next() -> UInt64 {
        let result = (state.1 &* 5).rotatedLeft(7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3.rotatedLeft(45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.

    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Uniform in [0, 1) with 53 random bits.

    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A standard normal draw (Box–Muller; one of the pair is discarded so the
    /// generator carries no hidden cached value outside `state`).
    public mutating func nextGaussian() -> Double {
        var u1 = nextUnitDouble()
        while u1 <= .leastNormalMagnitude { u1 = nextUnitDouble() }
        let u2 = nextUnitDouble()
        return (-2 * Double.log(u1)).squareRoot() * Double.cos(2 * Double.pi * u2)
    }

    public static func == (a: Xoshiro256, b: Xoshiro256) -> Bool { a.state == b.state }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(state.0); hasher.combine(state.1); hasher.combine(state.2); hasher.combine(state.3)
    }

    private enum CodingKeys: String, CodingKey { case state }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let words = try c.decode([UInt64].self, forKey: .state)
        guard words.count == 4, words != [0, 0, 0, 0] else {
            throw DecodingError.dataCorruptedError(forKey: .state, in: c, debugDescription: "xoshiro256 state needs four words, not all zero")
        }
        state = (words[0], words[1], words[2], words[3])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([state.0, state.1, state.2, state.3], forKey: .state)
    }
}

extension UInt64 {

    func rotatedLeft(_ k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}
