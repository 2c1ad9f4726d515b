import SeededRNG
import Testing
import TensorModule

@Suite struct KernelVariantTests {
    @Test func theBestVariantIsSupportedAndListedFirst() throws {
        let supported = Kernels.supported
        print("kernel variants on this CPU: \(supported.map(\.rawValue)); default \(Kernels.default)")
        #expect(supported.first == Kernels.best)
        #expect(supported.contains(.generic) && supported.contains(.blas))
        for v in supported { #expect(try Kernels(v).variant == v) }
        #expect(try Kernels(.generic).lanes == 4)
    }

    @Test func unsupportedVariantsAreAClearError() {
        // At most one of the two can be missing here; the message names the alternatives.
        for v in [KernelVariant.avx512, .avx2] where !Kernels.supported.contains(v) {
            #expect(throws: KernelError.unsupported(v, supported: Kernels.supported)) { try Kernels(v) }
            print(KernelError.unsupported(v, supported: Kernels.supported))
        }
        let message = "\(KernelError.unknownVariant("sse9"))"
        #expect(message.contains("PBTWAVE_ISA=sse9") && message.contains("avx512, avx2, generic, blas"))
    }

    /// What a PBTWAVE_ISA value means: a known variant (any case) is used, a
    /// bad one is an error (the commands report it), empty means the best.
    @Test func settingChoosesOrComplains() throws {
        #expect(try Kernels.named("generic")?.variant == .generic)
        #expect(try Kernels.named("BLAS")?.variant == .blas)
        #expect(throws: KernelError.unknownVariant("AVX9000")) { try Kernels.named("AVX9000") }
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
