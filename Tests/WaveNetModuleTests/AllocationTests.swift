import AllocationCounter
import PBTSeededRNG
import PBTWaveTensor
import Testing
import PBTWaveModel

/// A training step, an evaluation and a forward pass allocate nothing once
/// the model has seen the shape (the buffers are kept), for each of our
/// kernel variants, with one thread and with a thread team (the calling
/// thread's allocations are counted; the team's members run preallocated
/// jobs). The `blas` comparison variant is left out: OpenBLAS allocates
/// inside `cblas_sgemm`. Needs an optimised build (`.ci/run` tests with
/// `-Xswiftc -O`): unoptimised Swift allocates inside the standard library's
/// unspecialised iterators.
@Suite struct AllocationTests {
    static var optimized: Bool { !_isDebugAssertConfiguration() }

    @Test(.enabled(if: optimized, "an unoptimised build allocates in the standard library's generic iterators"),
          arguments: Kernels.supported.filter { $0 != .blas }, [(1, Precision.fp32), (2, .fp32), (1, .bf16), (2, .bf16)])
    func aStepAllocatesNothingAfterTheFirst(_ variant: KernelVariant, _ setup: (threads: Int, precision: Precision)) throws {
        let threads = setup.threads
        try #require(pbt_allocation_counter_active() == 1, "the allocation counter needs Linux with glibc")
        let model = try WaveNet(config: .tiny, seed: 3)
        model.kernels = try Kernels(variant)
        model.threads = threads
        model.precision = setup.precision
        model.tileRows = 48  // several time tiles, interleaved between the threads
        var rng = Xoshiro256(seed: 4)
        let B = 2, T = 300
        let windows = randomCodes(B * (T + 1), rng: &rng)
        try windows.withUnsafeBufferPointer { w in
            let codes = w.baseAddress!
            func everything() {
                model.trainStep(windows: codes, batch: B, time: T, context: 10, learningRate: 1e-3)
                _ = model.evaluate(windows: codes, batch: B, time: T, context: 10)
                model.forwardOnly(windows: codes, batch: B, time: T)
            }
            everything()  // first sight of the shape: buffers, packs, thread team
            let before = pbt_thread_allocations()
            for _ in 0..<3 { everything() }
            let after = pbt_thread_allocations()
            #expect(after == before, "\(variant), \(setup.precision), \(threads) thread(s): \(after - before) allocations in 3 steps after warm-up")
            // The counter does count: an array allocates.
            let probe = pbt_thread_allocations()
            let array = [Int](repeating: 1, count: Int(T))
            try #require(array.count == T && pbt_thread_allocations() > probe, "the counter saw no allocation")
        }
    }
}
