import PBTFileSupport

/// The rules that lay out a built corpus folder, shared by the builder and
/// its tests (see datasets/README.md).
public enum CorpusLayout {
    /// Whether the file at `relativePath` (e.g. `digits/1.wav`) falls in the
    /// validation split by its hash alone: ``splitHash(_:)`` modulo 100 is
    /// below `percent`. Stable across machines and independent of the order
    /// in which files are listed. ``validationFiles(_:percent:)`` applies
    /// this rule to a whole corpus, and keeps both splits non-empty.
    ///
    ///     int(hashlib.sha256(path.encode()).hexdigest()[:8], 16) % 100 < percent
    public static func isValidation(_ relativePath: String, percent: Int) -> Bool {
        Int(splitHash(relativePath) % 100) < percent
    }

    /// The number the split reads: the leading 32 bits of
    /// `sha256(relativePath)` (its first 8 hex digits), big-endian.
    public static func splitHash(_ relativePath: String) -> UInt32 {
        let digest = Array(relativePath.utf8).withUnsafeBytes { SHA256Digest.digest(of: $0) }
        return UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3])
    }

    /// The files of `relativePaths` in the validation split: those
    /// ``isValidation(_:percent:)`` picks, except that with at least 2
    /// files and 0 < `percent` < 100 neither split is left empty. If the
    /// hash puts no file in validation, the file with the lowest
    /// ``splitHash(_:)`` goes there; if it puts every file there, the one
    /// with the highest stays in train (equal hashes are ordered by path bytes).
    /// A split the hash already fills is never changed, so a large corpus
    /// splits exactly as the hash says. With `percent` 0 or 100, or a single
    /// file, one split is empty (the builder warns). O(files).
    public static func validationFiles(_ relativePaths: [String], percent: Int) -> Set<String> {
        var validation = Set(relativePaths.filter { isValidation($0, percent: percent) })
        let distinct = Set(relativePaths)
        guard distinct.count >= 2, percent > 0, percent < 100 else { return validation }
        let ordered = distinct.map { (hash: splitHash($0), path: $0) }.sorted {
            $0.hash != $1.hash ? $0.hash < $1.hash : $0.path.utf8.lexicographicallyPrecedes($1.path.utf8)
        }
        if validation.isEmpty { validation.insert(ordered[0].path) }
        if validation.count == distinct.count { validation.remove(ordered[ordered.count - 1].path) }
        return validation
    }

    /// The WAV a source becomes: its relative path with the last extension
    /// replaced by `.wav` (`a/b.flac` → `a/b.wav`, `a/b` → `a/b.wav`).
    public static func outputPath(forSource relativePath: String) -> String {
        let slash = relativePath.lastIndex(of: "/")
        let nameStart = slash.map { relativePath.index(after: $0) } ?? relativePath.startIndex
        if let dot = relativePath[nameStart...].lastIndex(of: "."), dot > nameStart {
            return String(relativePath[..<dot]) + ".wav"
        }
        return relativePath + ".wav"
    }

    /// Speakers, when the folder layout shows them: the smallest folder
    /// depth `d` at which every file's name starts with the name of its
    /// folder at depth `d` followed by `_` or `-`, as in VCTK
    /// (`p225/p225_001.wav`) and LibriSpeech (`19/198/19-198-0000.flac`).
    /// Returns the number of distinct such folders and `d` (0: the top
    /// level), or nil when no depth fits (a single folder, or folders named
    /// by topic such as `digits/1.wav`).
    public static func speakers(in relativePaths: [String]) -> (count: Int, depth: Int)? {
        guard !relativePaths.isEmpty else { return nil }
        let split = relativePaths.map { $0.split(separator: "/", omittingEmptySubsequences: false) }
        let shallowest = split.map { $0.count - 1 }.min() ?? 0
        for depth in 0 ..< shallowest {
            var folders = Set<[Substring]>()
            let fits = split.allSatisfy { parts in
                let folder = parts[depth], name = parts[parts.count - 1]
                guard name.count > folder.count, name.hasPrefix(folder) else { return false }
                let separator = name[name.index(name.startIndex, offsetBy: folder.count)]
                guard separator == "_" || separator == "-" else { return false }
                folders.insert(Array(parts[0 ... depth]))
                return true
            }
            if fits { return (folders.count, depth) }
        }
        return nil
    }
}
