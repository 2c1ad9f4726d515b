import Foundation

/// Whether a process holds a `flock` on the file at `path` now (tried with a
/// shared lock that does not wait, and let go at once): nil when there is no
/// such file or it cannot be tried. For readers that take no lock of their
/// own: a run driven, a corpus being built.
public func lockIsHeld(_ path: String) -> Bool? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return errno == EWOULDBLOCK ? true : nil }
    flock(fd, LOCK_UN)
    return false
}
