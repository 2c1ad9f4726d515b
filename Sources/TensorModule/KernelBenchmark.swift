#if canImport(Glibc)
import Glibc
#endif

/// The monotonic clock some commands still read. Benchmarks moved to
/// `pbtwave bench` and Benchmarks/ (with `ContinuousClock`); this goes once
/// its last callers use `ContinuousClock` too.
public enum KernelBenchmark {
    /// Monotonic seconds.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
