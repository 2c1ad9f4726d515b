import Foundation

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
