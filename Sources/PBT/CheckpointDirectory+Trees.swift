import Dispatch
import Foundation
import Synchronization

/// A checkpoint is a file (compiled runners) or a directory (`ExecRunner`:
/// the trial directory the program wrote). Removing one, for garbage
/// collection, a failed trial or a resume's sweep, removes either.
extension CheckpointDirectory {
    /// Deletes the file or directory tree at `path`. True if something was
    /// deleted; false if nothing was there or it could not be deleted.
    @discardableResult
    static func removeItem(atPath path: String) -> Bool {
        if unlink(path) == 0 { return true }
        guard errno == EISDIR || errno == EPERM else { return false }  // EPERM: what macOS says for a directory
        return (try? FileManager.default.removeItem(atPath: path)) != nil
    }
}

/// Deletes checkpoints on a background queue, in order. At most `backlog`
/// deletions wait at a time; beyond that `remove` deletes on the caller's
/// thread, so the disk bound on live checkpoints is exceeded by at most
/// `backlog` checkpoints however slowly the file system deletes. A crash
/// loses pending deletions: those files are orphans, which the resume's
/// sweep (or, with several processes, the end of the run) removes.
final class CheckpointRemover: Sendable {
    private let queue = DispatchQueue(label: "pbt-checkpoint-remover")
    private let pending = Mutex(0)
    let backlog: Int

    init(backlog: Int = 64) { self.backlog = backlog }

    func remove(_ path: String) {
        let queued = pending.withLock { n -> Bool in
            guard n < backlog else { return false }
            n += 1
            return true
        }
        guard queued else {
            CheckpointDirectory.removeItem(atPath: path)
            return
        }
        queue.async { [self] in
            CheckpointDirectory.removeItem(atPath: path)
            pending.withLock { $0 -= 1 }
        }
    }

    /// Returns once every deletion asked for so far is done.
    func wait() { queue.sync {} }
}
