import Foundation

/// How much memory this process can have: for the checks that refuse work
/// before an allocation fails (a failed allocation ends a Swift program
/// without a message).
public enum SystemMemory {
    /// This process's address-space limit (`ulimit -v`) in bytes; nil when
    /// there is none.
    public static var addressSpaceLimit: UInt64? {
        var limit = rlimit()
        guard getrlimit(addressSpace, &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }  // RLIM_INFINITY
        return UInt64(limit.rlim_cur)
    }

    /// The address space this process uses now, in bytes (what counts
    /// against `addressSpaceLimit` already); nil when the system does not say.
    public static var addressSpaceInUse: UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").first.flatMap({ UInt64($0) }) else { return nil }
        let size = sysconf(Int32(_SC_PAGESIZE))
        return size > 0 ? pages * UInt64(size) : nil
    }

    /// The machine's memory in bytes; nil when the system does not say.
    public static var physical: UInt64? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? UInt64(pages) * UInt64(size) : nil
    }

    #if canImport(Glibc)
    private static let addressSpace = __rlimit_resource_t(RLIMIT_AS.rawValue)
    #else
    private static let addressSpace = RLIMIT_AS
    #endif
}
