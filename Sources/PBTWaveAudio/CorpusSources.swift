import PBTFileSupport
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file a corpus build considers, with what tells a changed file from
/// an unchanged one (size and modification time).
struct SourceFile: Sendable, Hashable {
    /// Path relative to the source folder, as written in `skipped.tsv`.
    var relativePath: String
    /// Path to open.
    var path: String
    var size: Int
    /// Modification time, nanoseconds since 1970.
    var modified: Int64
    /// Why the name cannot be used (not UTF-8, or a tab or line break, which
    /// `manifest.tsv` cannot hold); nil when it can.
    var badName: String?
    /// Why the source cannot be opened at all: a listed file that does not
    /// exist, a broken link, a folder that cannot be read (then
    /// `relativePath` ends in `/`); nil when it can be tried.
    var unreadable: String?
    /// A folder (`relativePath` ends in `/`) holding a corpus pbtwave built,
    /// left out of the walk.
    var otherCorpus = false
    /// A hidden file or folder (its name starts with `.`; a folder's
    /// `relativePath` ends in `/`), listed only when the walk was asked to.
    var hidden = false
    /// Why the walk left it out otherwise: not a file or folder (a named
    /// pipe, a device, a socket), or a folder it had walked already under
    /// another name (`relativePath` ends in `/`).
    var leftOut: LeftOut?

    struct LeftOut: Sendable, Hashable {
        var category: SkipCategory
        var detail: String
    }
}

/// File identity for change detection: size and modification time (ns).
struct FileStamp: Sendable, Hashable {
    var size: Int
    var modified: Int64
}

extension FileStamp {
    /// The stamp of `path` (following symbolic links), nil when it is not there.
    init?(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        self.init(status)
    }

    init(_ status: stat) {
        size = Int(status.st_size)
        #if canImport(Darwin)
        modified = Int64(status.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(status.st_mtimespec.tv_nsec)
        #else
        modified = Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
        #endif
    }
}

enum CorpusSources {
    /// Every regular file under `root`, recursively, sorted by the bytes of
    /// the relative path (as `LC_ALL=C sort` does). Hidden files and folders
    /// (a name starting with `.`) are not walked: with `listingHidden` each
    /// comes back as one ``SourceFile/hidden`` entry (a folder as `name/`),
    /// so that a build can say it left them out. Left out too is the folder
    /// identified by `skipping` (the output, when it lies inside the
    /// source); a folder holding another corpus pbtwave built comes back
    /// as one ``SourceFile/otherCorpus`` entry. Symbolic links are followed; a folder reached twice (a link
    /// to a folder walked already, a link cycle) is walked once, under its
    /// own name when it lies in the source (links to folders are walked
    /// after every other folder), and a file
    /// reached twice (a symbolic or hard link) is read once, under the
    /// name reached first (each folder's entries are visited in byte
    /// order), and its other names come back as ``SourceFile/leftOut``
    /// entries, as do named pipes, devices and sockets. What cannot be walked comes back
    /// ``SourceFile/unreadable``, so it can be reported: a broken link, a
    /// folder `openFolder` cannot open (`name/`; the root itself is `./`).
    ///
    /// `openFolder` is `opendir`, returning the handle or the `errno`; tests
    /// replace it to make a folder unreadable even when run as root.
    static func walk(
        root: String, skipping skipped: (device: UInt64, inode: UInt64)?, listingHidden: Bool = false,
        openFolder: (String) -> Result<OpaquePointer, Errno> = openFolder
    ) -> [SourceFile] {
        var files: [SourceFile] = []
        // Each folder walked, with the name it was walked under; each file read, likewise.
        var visited: [[UInt64]: String] = [:]
        var read: [[UInt64]: (relative: String, index: Int, viaLink: Bool)] = [:]
        // Folders reached by a symbolic link, walked after every other folder.
        var linkedFolders: [(path: String, relative: String)] = []
        func unreadable(_ relative: String, _ path: String, _ reason: String) {
            files.append(SourceFile(relativePath: relative, path: path, size: 0, modified: 0, unreadable: reason))
        }
        // One entry for a hidden file or folder, unless it is the skipped
        // folder (an output hidden inside the source) or not a file or folder.
        func hiddenEntry(_ name: String, in directory: String, relative: String) {
            let child = directory + "/" + name
            var status = stat()
            guard stat(child, &status) == 0 else { return }
            if let skipped, [UInt64(status.st_dev), UInt64(status.st_ino)] == [skipped.device, skipped.inode] { return }
            let kind = status.st_mode & S_IFMT
            guard kind == S_IFDIR || kind == S_IFREG else { return }
            let childRelative = (relative.isEmpty ? name : relative + "/" + name) + (kind == S_IFDIR ? "/" : "")
            let stamp = FileStamp(status)
            files.append(SourceFile(relativePath: childRelative, path: child, size: kind == S_IFDIR ? 0 : stamp.size,
                                    modified: kind == S_IFDIR ? 0 : stamp.modified, hidden: true))
        }
        func visit(_ directory: String, relative: String) {
            var status = stat()
            guard stat(directory, &status) == 0 else {
                return unreadable((relative.isEmpty ? "." : relative) + "/", directory, "cannot open the folder: \(Errno.current)")
            }
            let key = [UInt64(status.st_dev), UInt64(status.st_ino)]
            if let skipped, key == [skipped.device, skipped.inode] { return }
            if let earlier = visited[key] {
                let name = earlier.isEmpty ? "the source folder itself" : "\(earlier)/"
                return files.append(SourceFile(relativePath: relative + "/", path: directory, size: 0, modified: 0, leftOut: SourceFile.LeftOut(
                    category: .walkedOnce, detail: "the same folder as \(name) (a symbolic link leads to it): its files are read once, there")))
            }
            visited[key] = relative
            if !relative.isEmpty, CorpusBuilder.isCorpus(directory) {
                return files.append(SourceFile(relativePath: relative + "/", path: directory, size: 0, modified: 0, otherCorpus: true))
            }
            let handle: OpaquePointer
            switch openFolder(directory) {
            case let .success(opened): handle = opened
            case let .failure(error):
                return unreadable((relative.isEmpty ? "." : relative) + "/", directory, "cannot open the folder: \(error)")
            }
            // In byte order, so that a folder reached under two names is always walked under the same one.
            var names: [[UInt8]] = []
            while let entry = readdir(handle) {
                names.append(withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) })
            }
            closedir(handle)
            for bytes in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                guard let first = bytes.first, bytes != [UInt8(ascii: ".")], bytes != Array("..".utf8) else { continue }
                let name = String(decoding: bytes, as: UTF8.self)
                if first == UInt8(ascii: ".") {
                    if listingHidden { hiddenEntry(name, in: directory, relative: relative) }
                    continue
                }
                let valid = String(validating: bytes, as: UTF8.self) != nil
                let childRelative = relative.isEmpty ? name : relative + "/" + name
                let child = directory + "/" + name
                guard valid else {
                    files.append(SourceFile(relativePath: childRelative, path: child, size: 0, modified: 0,
                                            badName: "its name is not UTF-8 text"))
                    continue
                }
                var childStatus = stat()
                guard stat(child, &childStatus) == 0 else {
                    unreadable(childRelative, child, linkProblem(child, error: Errno.current))
                    continue
                }
                switch childStatus.st_mode & S_IFMT {
                case S_IFDIR:
                    var linkStatus = stat()
                    if lstat(child, &linkStatus) == 0, linkStatus.st_mode & S_IFMT == S_IFLNK {
                        linkedFolders.append((child, childRelative))
                    } else {
                        visit(child, relative: childRelative)
                    }
                case S_IFREG:
                    let stamp = FileStamp(childStatus)
                    // A file reached under a second name (a symbolic or hard link) is one recording: read
                    // twice, it put the same audio in the corpus twice (in one split, without a warning).
                    let fileKey = [UInt64(childStatus.st_dev), UInt64(childStatus.st_ino)]
                    var linkStatus = stat()
                    let viaLink = lstat(child, &linkStatus) == 0 && linkStatus.st_mode & S_IFMT == S_IFLNK
                    func readOnce(_ other: String) -> SourceFile.LeftOut {
                        SourceFile.LeftOut(category: .walkedOnce, detail: "the same file as \(other) (a symbolic or hard link leads to it): read once, there")
                    }
                    if let earlier = read[fileKey] {
                        // The file itself keeps its name, not a link to it met first (found by a helper: alias.wav
                        // became the WAV, and deleting the alias later renamed and converted it again).
                        if earlier.viaLink, !viaLink {
                            let was = files[earlier.index]
                            files[earlier.index] = SourceFile(relativePath: was.relativePath, path: was.path, size: was.size, modified: was.modified,
                                                              leftOut: readOnce(childRelative))
                            read[fileKey] = (childRelative, files.count, false)
                            files.append(SourceFile(relativePath: childRelative, path: child, size: stamp.size, modified: stamp.modified,
                                                    badName: badCharacters(in: childRelative)))
                        } else {
                            files.append(SourceFile(relativePath: childRelative, path: child, size: stamp.size, modified: stamp.modified,
                                                    leftOut: readOnce(earlier.relative)))
                        }
                        continue
                    }
                    read[fileKey] = (childRelative, files.count, viaLink)
                    files.append(SourceFile(relativePath: childRelative, path: child, size: stamp.size, modified: stamp.modified,
                                            badName: badCharacters(in: childRelative)))
                case let kind:
                    let what = nonRegularFileText(mode: kind)
                    files.append(SourceFile(relativePath: childRelative, path: child, size: 0, modified: 0,
                                            leftOut: SourceFile.LeftOut(category: .notAFile, detail: "\(what), not a file: not read")))
                }
            }
        }
        // Links to folders last, in byte order of their names, so that a
        // folder inside the source is walked under its own name, not under
        // a link's met first (found by a helper: the link's name renamed its
        // files, moved them between the splits, and --exclude of the folder
        // let them in).
        visit(root, relative: "")
        while let next = linkedFolders.indices.min(by: { linkedFolders[$0].relative.utf8.lexicographicallyPrecedes(linkedFolders[$1].relative.utf8) }) {
            let (path, relative) = linkedFolders.remove(at: next)
            visit(path, relative: relative)
        }
        return sortedByBytes(files)
    }

    /// `opendir`, with the `errno` of a failure.
    static func openFolder(_ path: String) -> Result<OpaquePointer, Errno> {
        if let handle = opendir(path) { return .success(handle) }
        return .failure(Errno.current)
    }

    /// Why `stat` of a directory entry failed with `error`: a link whose
    /// target is missing, a link loop, or the system's reason.
    private static func linkProblem(_ path: String, error: Errno) -> String {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFLNK else { return "cannot read it: \(error)" }
        if error.code == ELOOP { return "broken link: a loop of symbolic links" }
        let to = symbolicLinkTarget(path).map { " to " + $0 } ?? ""
        return "broken link\(to): \(error)"
    }

    /// The files named in `list` (one per line; blank lines and lines
    /// starting with `#` are ignored): relative to `root`, or absolute
    /// inside it. Sorted by relative path, duplicates dropped. A listed
    /// file that does not exist comes back `missing` (it is skipped, not
    /// fatal). Throws ``AudioError/listMalformed(path:line:reason:)`` for a
    /// path outside `root`, also by `..` components (which step back a
    /// folder by the path's text: `a/../b.wav` is `b.wav`).
    static func listed(in list: String, root: String) throws(AudioError) -> [SourceFile] {
        let lines = try readListLines(list)
        var seen = Set<String>()
        var files: [SourceFile] = []
        let rootPrefix = root.hasSuffix("/") ? root : root + "/"
        for (index, line) in lines.enumerated() {
            let text = line
            guard !text.isEmpty, !text.hasPrefix("#") else { continue }
            let relative: String
            switch listedPath(text, rootPrefix: rootPrefix) {
            case .inside(let path): relative = path
            case .outside:
                throw AudioError.listMalformed(path: list, line: index + 1, reason: "`\(text)` is not inside --from \(root): give one file per line, a path relative to --from or an absolute path inside it")
            case .notBelow:
                throw AudioError.listMalformed(path: list, line: index + 1, reason: "`\(text)` is not a file inside --from \(root): give one file per line, a path relative to --from or an absolute path inside it")
            }
            guard seen.insert(relative).inserted else { continue }
            let path = rootPrefix + relative
            var status = stat()
            if stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG {
                let stamp = FileStamp(status)
                files.append(SourceFile(relativePath: relative, path: path, size: stamp.size, modified: stamp.modified,
                                        badName: badCharacters(in: relative)))
            } else {
                let why = stat(path, &status) != 0 ? (errno == ENOENT || errno == ENOTDIR ? "no such file" : String(cString: strerror(errno)))
                    : status.st_mode & S_IFMT == S_IFDIR ? "a folder, not a file (list its files one per line)" : "not a regular file"
                files.append(SourceFile(relativePath: relative, path: path, size: 0, modified: 0,
                                        badName: badCharacters(in: relative), unreadable: why))
            }
        }
        return sortedByBytes(files)
    }

    /// A path as `--files` and `--exclude` lists give it: relative to the
    /// root (`rootPrefix`, ending in `/`) or absolute inside it, `./` and
    /// doubled slashes allowed.
    enum ListedPath: Equatable {
        /// The path relative to the root, without `.` or empty components.
        case inside(String)
        /// An absolute path elsewhere.
        case outside
        /// Nothing below the root, or a `..` component.
        case notBelow
    }

    static func listedPath(_ text: String, rootPrefix: String) -> ListedPath {
        var relative = Substring(text)
        if text.hasPrefix("/") {
            guard text.hasPrefix(rootPrefix) else { return .outside }
            relative = relative.dropFirst(rootPrefix.count)
        }
        // `..` steps back a folder, by the path's text (a helper's `a/../b/y.wav` was refused); one that leaves --from is refused.
        var parts: [Substring] = []
        for part in relative.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." {
                guard parts.popLast() != nil else { return .notBelow }
            } else {
                parts.append(part)
            }
        }
        guard !parts.isEmpty else { return .notBelow }
        return .inside(parts.joined(separator: "/"))
    }

    /// Files to leave out, with the reason to record: `source<TAB>reason`
    /// lines (an optional `source<TAB>reason` header, blank lines and `#`
    /// comments are ignored), in list order with their line numbers.
    /// Throws ``AudioError/listMalformed(path:line:reason:)``.
    static func exclusions(in list: String) throws(AudioError) -> [(source: String, reason: String, line: Int)] {
        var excluded: [(source: String, reason: String, line: Int)] = []
        for (index, line) in try readListLines(list).enumerated() {
            guard !line.isEmpty, !line.hasPrefix("#"), !(index == 0 && line == "source\treason") else { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                let why = fields.count == 2 ? (fields[0].isEmpty ? "the source is empty" : "the reason is empty")
                    : "found \(fields.count) field\(fields.count == 1 ? "" : "s")"
                throw AudioError.listMalformed(path: list, line: index + 1, reason: "expected `source<TAB>reason`, \(why)")
            }
            excluded.append((String(fields[0]), String(fields[1]), index + 1))
        }
        return excluded
    }

    /// The exclusions of `list` against the sources found: each entry names
    /// a file or a folder (every file under it), as `--files` names them
    /// (relative to `root` or absolute inside it; `./` and doubled slashes
    /// allowed). Returns the reason of each source it leaves out (keyed by
    /// relative path; the first entry that names a source wins), and the
    /// entries that name no source: they are recorded in skipped.tsv as
    /// given (a list may name sources that were never made), and counted.
    static func resolve(_ entries: [(source: String, reason: String, line: Int)], list: String, root: String,
                        sources: [SourceFile]) throws(AudioError) -> (reasons: [String: String], unmatched: [String: String]) {
        let rootPrefix = root.hasSuffix("/") ? root : root + "/"
        var reasons: [String: String] = [:]
        var unmatched: [String: String] = [:]
        let paths = sources.map(\.relativePath)
        for entry in entries {
            let relative: String
            switch listedPath(entry.source, rootPrefix: rootPrefix) {
            case .inside(let path): relative = path
            case .outside:
                throw AudioError.listMalformed(path: list, line: entry.line, reason: "`\(entry.source)` is not inside --from \(root): give a path relative to --from or an absolute path inside it")
            case .notBelow:
                throw AudioError.listMalformed(path: list, line: entry.line, reason: "`\(entry.source)` is not a file or folder inside --from \(root): give a path relative to --from or an absolute path inside it")
            }
            let folder = relative + "/"
            var matched = false
            for path in paths where path == relative || path.hasPrefix(folder) {
                matched = true
                if reasons[path] == nil { reasons[path] = entry.reason }
            }
            if !matched, unmatched[relative] == nil { unmatched[relative] = entry.reason }
        }
        return (reasons, unmatched)
    }

    private static func readListLines(_ path: String) throws(AudioError) -> [String] {
        try readTextLines(path) { AudioError.listMalformed(path: path, line: 0, reason: $0) }
    }

    private static func badCharacters(in relativePath: String) -> String? {
        relativePath.utf8.contains(where: { $0 == 9 || $0 == 10 || $0 == 13 })
            ? "its name holds a tab or a line break, which manifest.tsv cannot hold" : nil
    }

    static func sortedByBytes(_ files: [SourceFile]) -> [SourceFile] {
        files.sorted { $0.relativePath.utf8.lexicographicallyPrecedes($1.relativePath.utf8) }
    }
}

/// An `errno` value, printed as the system's message (`Permission denied`).
struct Errno: Error, Sendable, Hashable, CustomStringConvertible {
    var code: Int32

    /// The calling thread's `errno`.
    static var current: Errno { Errno(code: errno) }

    var description: String { String(cString: strerror(code)) }
}
