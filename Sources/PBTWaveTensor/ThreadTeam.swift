import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Work for a `ThreadTeam`: `run(member:)` is called once by each member.
public protocol ThreadTeamJob: AnyObject {
    func run(member: Int)
}

/// A fixed team of threads that runs one job at a time, with a barrier.
///
/// One model's training step is a single job: member i computes its own
/// rows of every layer and waits at a barrier where the next layer reads
/// rows of another member. The members are created once and sleep between
/// jobs; the caller is member 0. Kernels called inside a job must not start
/// threads of their own (BLAS runs one thread), so `size` threads are all
/// that run: the cores are never oversubscribed.
///
/// Not reentrant: one job at a time, and `barrier()` only from inside a job,
/// called by every member the same number of times.
public final class ThreadTeam: @unchecked Sendable {
    /// The number of members, the caller included.
    public let size: Int
    private let state: State
    private var memberThreads: [pthread_t] = []

    /// Shared between the team and its threads (the threads must not keep the
    /// team itself alive, or it could never stop them).
    final class State: @unchecked Sendable {
        let size: Int
        let generation = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        let arrived = Atomic<Int>(0)
        let phase = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        let wake: [DispatchSemaphore]
        /// The current job; written by the caller before `generation` is
        /// published and read by the members after they see it. The caller
        /// keeps it alive until every member is done.
        nonisolated(unsafe) unowned(unsafe) var job: (any ThreadTeamJob)?

        init(size: Int) {
            self.size = size
            wake = (0..<size).map { _ in DispatchSemaphore(value: 0) }
        }

        func member(_ index: Int) {
            var seen = 0
            while true {
                wake[index].wait()
                if stopping.load(ordering: .acquiring) { return }
                let g = generation.load(ordering: .acquiring)
                if g == seen { continue }
                seen = g
                job!.run(member: index)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }

    /// A team of `threads` members (threads − 1 new threads, which sleep until
    /// the first job).
    public init(threads: Int) {
        precondition(threads >= 1, "a thread team needs at least one member, got \(threads)")
        size = threads
        state = State(size: threads)
        for index in 1..<max(threads, 1) {
            let context = Unmanaged.passRetained(Member(state: state, index: index)).toOpaque()
            #if canImport(Glibc)
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { context in
                let member = Unmanaged<Member>.fromOpaque(context!).takeRetainedValue()
                member.state.member(member.index)
                return nil
            }, context)
            precondition(rc == 0, "pthread_create failed (\(rc))")
            memberThreads.append(thread)
            #else
            var thread: pthread_t?
            let rc = pthread_create(&thread, nil, { context in
                let member = Unmanaged<Member>.fromOpaque(context).takeRetainedValue()
                member.state.member(member.index)
                return nil
            }, context)
            precondition(rc == 0, "pthread_create failed (\(rc))")
            memberThreads.append(thread!)
            #endif
        }
    }

    private final class Member {
        let state: State, index: Int
        init(state: State, index: Int) { self.state = state; self.index = index }
    }

    deinit {
        state.stopping.store(true, ordering: .releasing)
        for s in state.wake { s.signal() }
        for t in memberThreads { pthread_join(t, nil) }
    }

    /// Runs `job.run(member: 0)` on the caller and members 1 … size − 1 on
    /// the team's threads, and returns when all have finished. Allocates nothing.
    public func run(_ job: some ThreadTeamJob) {
        if size == 1 { return job.run(member: 0) }
        state.job = job
        state.pending.store(size - 1, ordering: .relaxed)
        state.generation.add(1, ordering: .releasing)
        for i in 1..<size { state.wake[i].signal() }
        job.run(member: 0)
        Self.spin { state.pending.load(ordering: .acquiring) == 0 }
        state.job = nil
    }

    /// Runs `body(0)` on the caller and `body(1)` … `body(size − 1)` on the
    /// members, and returns when all have finished. (Allocates a small box per
    /// call; hot loops keep a `ThreadTeamJob` instead.)
    public func run(_ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in run(ClosureJob(body)) }
    }

    private final class ClosureJob: ThreadTeamJob {
        let body: (Int) -> Void
        init(_ body: @escaping (Int) -> Void) { self.body = body }
        func run(member: Int) { body(member) }
    }

    /// Waits until every member has reached this barrier (from inside `run`).
    public func barrier() {
        if size == 1 { return }
        let phase = state.phase.load(ordering: .acquiring)
        if state.arrived.add(1, ordering: .acquiringAndReleasing).newValue == size {
            state.arrived.store(0, ordering: .relaxed)
            state.phase.add(1, ordering: .releasing)
        } else {
            Self.spin { state.phase.load(ordering: .acquiring) != phase }
        }
    }

    /// Busy-waits for `done`, yielding the core after a while so that a
    /// member descheduled by the system can run.
    static func spin(until done: () -> Bool) {
        var spins = 0
        while !done() {
            spins += 1
            if spins > 4000 { sched_yield() }
        }
    }

    /// The rows of `range` that member `index` of `count` owns: contiguous,
    /// nearly equal parts, cut at multiples of `granule` where possible.
    public static func share(of range: Range<Int>, member index: Int, of count: Int, granule: Int = 48) -> Range<Int> {
        let n = range.count
        func cut(_ i: Int) -> Int {
            if i >= count { return n }
            let exact = n * i / count
            let rounded = (exact + granule / 2) / granule * granule
            return min(n, rounded)
        }
        return (range.lowerBound + cut(index))..<(range.lowerBound + max(cut(index), cut(index + 1)))
    }
}

/// How far each tile of a wavefront has got, so that members of a
/// `ThreadTeam` can wait for exactly the rows they read instead of for
/// everyone at a barrier: the member that owns tile j publishes a mark
/// (`publish`) after writing the tile's rows of a stage; a member that reads
/// those rows waits until the tile's mark reaches that stage (`wait`).
/// Marks only grow within a job; `reset` them before the barrier that opens it.
/// Allocated once; `publish` and `wait` allocate nothing.
public final class WavefrontProgress: @unchecked Sendable {
    /// One mark per cache line, so that members publishing neighbouring tiles
    /// do not contend for one line.
    private static let spacing = 8
    private let marks: UnsafeMutablePointer<Atomic<Int>>
    /// The number of tiles.
    public let tiles: Int

    public init(tiles: Int) {
        self.tiles = tiles
        marks = .allocate(capacity: max(tiles, 1) * Self.spacing)
        for i in 0..<max(tiles, 1) * Self.spacing { (marks + i).initialize(to: Atomic(0)) }
    }

    deinit {
        marks.deinitialize(count: max(tiles, 1) * Self.spacing)
        marks.deallocate()
    }

    /// Sets tile `tile`'s mark to 0.
    public func reset(_ tile: Int) { marks[tile * Self.spacing].store(0, ordering: .relaxed) }

    /// Publishes that tile `tile` has reached `mark` (its rows written so far
    /// become visible to a member that waits for the mark).
    public func publish(_ tile: Int, _ mark: Int) { marks[tile * Self.spacing].store(mark, ordering: .releasing) }

    /// Returns once tile `tile`'s mark is at least `mark`.
    public func wait(_ tile: Int, reaches mark: Int) {
        ThreadTeam.spin { marks[tile * Self.spacing].load(ordering: .acquiring) >= mark }
    }
}
