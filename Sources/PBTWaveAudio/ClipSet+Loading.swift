import Foundation

/// A file a folder load left out, and why.
public struct SkippedFile: Sendable, Hashable {
    public let path: String
    public let error: AudioError
}

/// The result of loading a folder: what was loaded and what was skipped.
public struct FolderLoadReport: Sendable, CustomStringConvertible {
    public let folder: String
    public let clips: ClipSet
    public let skipped: [SkippedFile]

    /// One line per skipped file after a summary line, e.g.
    /// `loaded 12 files (3.1 min) from data/; skipped 2`.
    public var description: String {
        var text = "loaded \(clips.clips.count) files (\(String(format: "%.2f", clips.seconds / 60)) min) from \(folder)"
        if skipped.isEmpty { return text }
        text += "; skipped \(skipped.count):"
        for file in skipped { text += "\n  \(file.error)" }
        return text
    }
}

extension ClipSet {
    /// Loads one audio file as a single-clip set, mono at `sampleRate` Hz.
    ///
    /// Throws ``AudioError`` naming the file when it is missing, unreadable,
    /// empty, truncated, non-finite, or has fewer than `minimumLength` samples
    /// (after resampling): e.g. the window length you mean to train on.
    public static func load(
        file path: String, sampleRate: Int = SpeechCorpus.sampleRate, minimumLength: Int = 1
    ) throws(AudioError) -> ClipSet {
        let clip = try loadClip(path: path, name: path, sampleRate: sampleRate, minimumLength: minimumLength)
        return ClipSet(source: path, clips: [clip], sampleRate: sampleRate)
    }

    /// Loads every audio file under `folder` (walked as a corpus build walks
    /// its source: recursively, in sorted path order, following symbolic
    /// links; hidden files and folders, named pipes, devices and sockets,
    /// and a folder's second name are ignored) as mono at `sampleRate`.
    ///
    /// Files that cannot be used (not audio, damaged, empty, shorter than
    /// `minimumLength`, …) are skipped and listed in the report, not thrown.
    /// Throws ``AudioError/folderNotFound(path:)``,
    /// ``AudioError/folderEmpty(path:)`` when the folder holds no files, and
    /// ``AudioError/noUsableAudio(path:skipped:firstProblem:)`` when every
    /// file was skipped.
    public static func load(
        folder: String, sampleRate: Int = SpeechCorpus.sampleRate, minimumLength: Int = 1
    ) throws(AudioError) -> FolderLoadReport {
        try requireFolder(folder, name: folder)
        let files = CorpusSources.walk(root: folder, skipping: nil)
        guard !files.isEmpty else { throw AudioError.folderEmpty(path: folder) }
        var clips: [Clip] = []
        var skipped: [SkippedFile] = []
        // Named pipes, devices and a folder's second name are not audio to read.
        for file in files where file.leftOut == nil {
            let path = join(folder, file.relativePath)
            if let reason = file.unreadable {
                skipped.append(SkippedFile(path: path, error: .unreadable(path: path, reason: reason)))
                continue
            }
            do throws(AudioError) {
                clips.append(try loadClip(path: path, name: file.relativePath, sampleRate: sampleRate, minimumLength: minimumLength))
            } catch {
                skipped.append(SkippedFile(path: path, error: error))
            }
        }
        guard !clips.isEmpty else {
            throw AudioError.noUsableAudio(path: folder, skipped: skipped.count, firstProblem: skipped.first.map { "first: \($0.error)" } ?? "")
        }
        return FolderLoadReport(folder: folder, clips: ClipSet(source: folder, clips: clips, sampleRate: sampleRate), skipped: skipped)
    }

    static func loadClip(path: String, name: String, sampleRate: Int, minimumLength: Int) throws(AudioError) -> Clip {
        let samples = try readMonoAudio(path: path, sampleRate: sampleRate)
        guard samples.count >= minimumLength else {
            throw AudioError.tooShort(path: path, samples: samples.count, required: minimumLength)
        }
        return Clip(name: name, samples: samples)
    }
}

/// Throws ``AudioError/folderNotFound(path:)`` or ``AudioError/notAFolder(path:)``,
/// naming `name`, unless `path` is a folder.
func requireFolder(_ path: String, name: String) throws(AudioError) {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .folderNotFound(path: name) }
    guard isDirectory.boolValue else { throw .notAFolder(path: name) }
}

func join(_ directory: String, _ relative: String) -> String {
    directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
}
