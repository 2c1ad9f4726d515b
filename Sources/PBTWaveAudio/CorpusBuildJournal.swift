import PBTFileSupport
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a corpus build left a file out: the first word of its line in
/// `skipped.tsv`.
public enum SkipCategory: String, Sendable, Hashable, CaseIterable {
    /// libsndfile recognises the format but the file is damaged (corrupt
    /// header, truncated, NaN samples, an impossible sample rate), or a
    /// listed file is missing.
    case unreadable
    /// libsndfile recognises no audio format (a text file, whatever its name).
    case notAudio = "not audio"
    /// 0 bytes, or a header with no samples.
    case empty
    /// Shorter than `--min-seconds` after resampling.
    case tooShort = "too short"
    /// Another source already becomes the same WAV (`a.flac` and `a.ogg`).
    case nameCollision = "name collision"
    /// A name `manifest.tsv` cannot hold (a tab, a line break, not UTF-8).
    case badName = "bad name"
    /// A folder inside the source that holds a corpus pbtwave built: its
    /// WAVs are copies of sources, so walking it would put the same audio
    /// in both splits.
    case otherCorpus = "another corpus"
    /// A hidden file or folder (its name starts with `.`: `.DS_Store`,
    /// macOS's `._name` copies, `.git/`); not read.
    case hidden
    /// Not a file or folder: a named pipe, a device, a socket; not read.
    case notAFile = "not a file"
    /// A folder the walk reached a second time, through a symbolic link:
    /// its files are read once, under the first name.
    case walkedOnce = "walked once"
    /// Every sample 0 once written at 16 bits: nothing to learn from.
    case silent
}

/// What a build did with one source: one line of the build journal.
struct JournalRecord: Sendable, Hashable {
    enum Outcome: Sendable, Hashable {
        /// Written to `output`; `outputStamp` tells whether the WAV was
        /// touched since; `levels` how loud it is (nil in a journal line of
        /// a build from before they were recorded).
        case converted(output: String, samples: Int, sha256: String, outputStamp: FileStamp, levels: SampleLevels?)
        /// Decoded to `samples` samples, fewer than that build's minimum; nothing written.
        case tooShort(output: String, samples: Int)
        case skipped(SkipCategory, detail: String)
    }

    var source: String
    var stamp: FileStamp
    var outcome: Outcome

    var isConverted: Bool { if case .converted = outcome { true } else { false } }

    /// The journal line, without the newline. Fields never hold tabs or
    /// line breaks: sources with such names are skipped before conversion
    /// and details are flattened.
    var line: String {
        let head = "\(source)\t\(stamp.size)\t\(stamp.modified)"
        switch outcome {
        case let .converted(output, samples, sha256, out, levels):
            return "ok\t\(head)\t\(output)\t\(samples)\t\(sha256)\t\(out.size)\t\(out.modified)"
                + (levels.map { "\t\($0.peak)\t\($0.fullScale)" } ?? "")
        case let .tooShort(output, samples):
            return "short\t\(head)\t\(output)\t\(samples)"
        case let .skipped(category, detail):
            return "skip\t\(head)\t\(category.rawValue)\t\(flattened(detail))"
        }
    }
}

extension JournalRecord {
    /// Parses a journal line; nil for anything else (a line torn by a
    /// crash, a line of another version).
    init?(line: Substring) {
        guard !line.contains(where: { $0 == "\n" || $0 == "\r" }) else { return nil }
        let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 4, !f[1].isEmpty, let size = Int(f[2]), size >= 0, let modified = Int64(f[3]) else { return nil }
        source = f[1]
        stamp = FileStamp(size: size, modified: modified)
        switch f[0] {
        case "ok":
            guard f.count == 9 || f.count == 11, isSafeRelativePath(f[4]), let samples = Int(f[5]), samples > 0,
                  f[6].utf8.count == 64, f[6].utf8.allSatisfy({ (48 ... 57).contains($0) || (97 ... 102).contains($0) }),
                  let outSize = Int(f[7]), let outModified = Int64(f[8]) else { return nil }
            var levels: SampleLevels?
            if f.count == 11 {
                guard let peak = Int(f[9]), (0 ... 32768).contains(peak), let fullScale = Int(f[10]), (0 ... samples).contains(fullScale) else { return nil }
                levels = SampleLevels(peak: peak, fullScale: fullScale)
            }
            outcome = .converted(output: f[4], samples: samples, sha256: f[6], outputStamp: FileStamp(size: outSize, modified: outModified), levels: levels)
        case "short":
            guard f.count == 6, isSafeRelativePath(f[4]), let samples = Int(f[5]), samples >= 0 else { return nil }
            outcome = .tooShort(output: f[4], samples: samples)
        case "skip":
            guard f.count == 6, let category = SkipCategory(rawValue: f[4]) else { return nil }
            outcome = .skipped(category, detail: f[5])
        default:
            return nil
        }
    }
}

/// The build journal, `.build-journal.tsv` in the output folder: an
/// identity line, then one line per source, appended as each source is
/// done (after its WAV was renamed into place). A build killed at any point
/// leaves every finished source recorded, so the next build redoes only
/// the rest; the last line may be torn, and is ignored.
enum CorpusBuildJournal {
    static let fileName = ".build-journal.tsv"
    static let magic = "#pbtwave corpus build journal 1"

    /// The records of the journal at `path`, last one per source, whether
    /// it was written under `identity` (only then do its records stand for
    /// outputs that are still right), and the source folder its build read
    /// (its identity's `from=`; nil without a journal).
    static func read(path: String, identity: String)
        -> (records: [String: JournalRecord], sameIdentity: Bool, lineCount: Int, source: String?) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([:], false, 0, nil) }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        // A line without its newline was torn by a crash.
        if let last = lines.last, !text.hasSuffix("\n") || last.isEmpty { lines.removeLast() }
        guard let first = lines.first, first.hasPrefix(magic + "\t") else { return ([:], false, lines.count, nil) }
        let sameIdentity = first.dropFirst(magic.count + 1) == identity[...]
        var records: [String: JournalRecord] = [:]
        for line in lines.dropFirst() {
            if let record = JournalRecord(line: line) { records[record.source] = record }
        }
        let source = first.range(of: "; from=").map { String(first[$0.upperBound...]) }
        return (records, sameIdentity, lines.count, source)
    }

    static func header(identity: String) -> String { "\(magic)\t\(identity)\n" }
}

/// Appends journal lines from worker threads, one `write` per line.
final class JournalAppender: Sendable {
    private let descriptor: Mutex<Int32>
    let path: String

    /// Opens `path` for appending; with `fresh`, replaces it by a journal
    /// holding only the identity line (atomically).
    init(path: String, identity: String, fresh: Bool) throws(AudioError) {
        self.path = path
        if fresh {
            do throws(AtomicFileError) {
                try AtomicFile.write(Array(CorpusBuildJournal.header(identity: identity).utf8), toPath: path)
            } catch {
                throw AudioError.writeFailed(path: path, reason: error.reason)
            }
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AudioError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        descriptor = Mutex(fd)
    }

    deinit { descriptor.withLock { _ = close($0) } }

    func append(_ record: JournalRecord) throws(AudioError) {
        let bytes = Array((record.line + "\n").utf8)
        let failure: String? = descriptor.withLock { fd in
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return String(cString: strerror(errno)) }
                offset += n
            }
            return nil
        }
        if let failure { throw AudioError.writeFailed(path: path, reason: failure) }
    }
}

func flattened(_ text: String) -> String {
    String(text.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
}

func isSafeRelativePath(_ path: String) -> Bool {
    !path.isEmpty && !path.hasPrefix("/") && !path.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == ".." || $0.isEmpty }
}
