import PBTSeededRNG
import Testing
import PBTWaveTensor

@Suite struct KernelVariantTests {
    @Test func theBestVariantIsSupportedAndListedFirst() throws {
        let supported = Kernels.supported
        print("kernel variants on this CPU: \(supported.map(\.rawValue)); default \(Kernels.default)")
        #expect(supported.first == Kernels.best)
        #expect(supported.contains(.generic) && supported.contains(.blas))
        for v in supported { #expect(try Kernels(v).variant == v) }
        #expect(try Kernels(.generic).lanes == 4)
        if supported.contains(.avx512) {
            #expect(supported.contains(.avx512_256))
            #expect(try Kernels(.avx512_256).lanes == 8)
            #expect(try Kernels(.avx512).lanes == 16)
        } else {
            #expect(!supported.contains(.avx512_256), "avx512-256 listed without AVX-512")
        }
    }

    @Test func unsupportedVariantsAreAClearError() {
        // At most one of the two can be missing here; the message names the alternatives.
        for v in [KernelVariant.avx512, .avx512_256, .avx2] where !Kernels.supported.contains(v) {
            #expect(throws: KernelError.unsupported(v, supported: Kernels.supported)) { try Kernels(v) }
            print(KernelError.unsupported(v, supported: Kernels.supported))
        }
        let message = "\(KernelError.unknownVariant("sse9"))"
        #expect(message.contains("PBTWAVE_ISA=sse9") && message.contains("avx512, avx512-256, avx2, generic, blas"))
    }

    /// What a PBTWAVE_ISA value means: a known variant (any case) is used, a
    /// bad one is an error (the commands report it), empty means the best.
    @Test func settingChoosesOrComplains() throws {
        #expect(try Kernels.named("generic")?.variant == .generic)
        #expect(try Kernels.named("BLAS")?.variant == .blas)
        if Kernels.supported.contains(.avx512_256) {
            #expect(try Kernels.named("AVX512-256")?.variant == .avx512_256)
        } else {
            #expect(throws: KernelError.unsupported(.avx512_256, supported: Kernels.supported)) { try Kernels.named("avx512-256") }
        }
        #expect(throws: KernelError.unknownVariant("AVX9000")) { try Kernels.named("AVX9000") }
        // The A/B switches take their values only (found by a helper: PBTWAVE_HALF_TAILS=off turned them on).
        #expect(throws: KernelError.badSwitch(name: "PBTWAVE_HALF_TAILS", value: "off", takes: ["0", "1"])) {
            try Kernels.checkSwitches(["PBTWAVE_HALF_TAILS": "off"])
        }
        for rows in ["abc", "0", "-3", "2097152"] {
            #expect(throws: KernelError.badSwitch(name: "PBTWAVE_TILE_ROWS", value: rows, takes: ["a whole number of rows from 1 to 1048576"])) {
                try Kernels.checkSwitches(["PBTWAVE_TILE_ROWS": rows])
            }
        }
        try Kernels.checkSwitches(["PBTWAVE_TILE_ROWS": "96"])
        #expect(throws: KernelError.badSwitch(name: "PBTWAVE_BF16_DOT", value: "bogus", takes: ["native", "fma"])) {
            try Kernels.checkSwitches(["PBTWAVE_BF16_DOT": "bogus"])
        }
        #expect(throws: Never.self) {
            try Kernels.checkSwitches(["PBTWAVE_FLAT_TILES": "0", "PBTWAVE_DOT_TAILS": "1", "PBTWAVE_NARROW_TILES": "", "PBTWAVE_BF16_DOT": "fma"])
        }
        #expect("\(KernelError.badSwitch(name: "PBTWAVE_DOT_TAILS", value: "off", takes: ["0", "1"]))".contains("use 0 or 1"))
        #expect(try Kernels.named("").map(\.variant) == nil)
    }
}

@Suite struct ThreadTeamTests {
    /// Every member runs once per job; after a barrier each member sees what
    /// every other wrote before it; jobs can repeat.
    @Test(arguments: [1, 2, 3, 5])
    func runsEveryMemberAndSynchronises(_ n: Int) {
        let team = ThreadTeam(threads: n)
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: n * 2)
        defer { slots.deallocate() }
        for round in 0..<50 {
            slots.initialize(repeating: -1, count: n * 2)
            team.run { i in
                slots[i] = round * 100 + i
                team.barrier()
                // Read a neighbour's slot, written before the barrier.
                slots[n + i] = slots[(i + 1) % n]
                team.barrier()
            }
            for i in 0..<n {
                #expect(slots[i] == round * 100 + i)
                #expect(slots[n + i] == round * 100 + (i + 1) % n)
            }
        }
    }

    /// A pipeline over tiles: member i takes tiles i, i + n, …, and tile j
    /// reads the two tiles before it once their marks reach its stage, as
    /// WaveNet's layers do. What a tile's owner wrote before publishing is
    /// what the reader sees, for every stage, with no barrier between stages.
    @Test(arguments: [2, 3])
    func wavefrontMarksOrderTheTiles(_ n: Int) {
        let team = ThreadTeam(threads: n)
        let tiles = 23, stages = 6
        let progress = WavefrontProgress(tiles: tiles)
        // value[stage][tile]: stage s of tile j is 1 + the sum of stage s − 1 of tiles j − 2 … j.
        let value = UnsafeMutablePointer<Int>.allocate(capacity: (stages + 1) * tiles)
        defer { value.deallocate() }
        func expected() -> [Int] {
            var v = [Int](repeating: 1, count: (stages + 1) * tiles)
            for s in 1...stages {
                for j in 0..<tiles { v[s * tiles + j] = 1 + (max(0, j - 2)...j).reduce(0) { $0 + v[(s - 1) * tiles + $1] } }
            }
            return v
        }
        for _ in 0..<20 {
            value.initialize(repeating: 1, count: tiles)
            (value + tiles).initialize(repeating: 0, count: stages * tiles)
            team.run { i in
                for j in stride(from: i, to: tiles, by: n) { progress.reset(j) }
                team.barrier()
                for j in stride(from: i, to: tiles, by: n) {
                    for s in 1...stages {
                        for k in max(0, j - 2)..<j { progress.wait(k, reaches: s - 1) }
                        value[s * tiles + j] = 1 + (max(0, j - 2)...j).reduce(0) { $0 + value[(s - 1) * tiles + $1] }
                        progress.publish(j, s)
                    }
                }
            }
            #expect(Array(UnsafeBufferPointer(start: value, count: (stages + 1) * tiles)) == expected())
        }
    }

    @Test func sharesCoverTheRangeInOrder() {
        for n in 1...5 {
            for count in [0, 1, 7, 48, 100, 8192] {
                let parts = (0..<n).map { ThreadTeam.share(of: 10..<(10 + count), member: $0, of: n) }
                #expect(parts.first!.lowerBound == 10 && parts.last!.upperBound == 10 + count)
                for i in 1..<n { #expect(parts[i].lowerBound == parts[i - 1].upperBound) }
                if count >= 48 * n * 4 { #expect(parts.dropLast().allSatisfy { $0.count % 48 == 0 && $0.count > 0 }) }
            }
        }
    }
}
