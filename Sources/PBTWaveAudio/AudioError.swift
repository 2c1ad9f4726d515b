import PBTFileSupport
/// Everything that can go wrong with audio a user supplies: each case names
/// the file or folder at fault, and its `description` says what to do.
///
/// The module never traps on bad input. Functions that load a single file or
/// a corpus throw; folder loading skips bad files and reports them in a
/// ``FolderLoadReport``.
public enum AudioError: Error, Sendable, Hashable, CustomStringConvertible {
    // MARK: Single files
    /// No file at `path`.
    case fileNotFound(path: String)
    /// libsndfile recognises the format but cannot use the file: a corrupt
    /// or truncated header, a sample rate or channel count no audio has.
    case unreadable(path: String, reason: String)
    /// libsndfile recognises no audio format in the bytes (a text file, an
    /// image, random bytes), whatever the file's name says.
    case notAudio(path: String, reason: String)
    /// The file holds no samples: 0 bytes, or a valid header with no data.
    case emptyAudio(path: String)
    /// Decoding stopped before the number of frames the header announces.
    case truncated(path: String, expectedFrames: Int, readFrames: Int)
    /// The file has fewer samples (after resampling) than required.
    case tooShort(path: String, samples: Int, required: Int)
    /// The file decodes to NaN or infinite samples (a damaged float file; a
    /// double beyond the float range becomes infinite).
    case nonFiniteSamples(path: String)
    /// Loading the file whole would take more than `limit` samples (before
    /// or after resampling): the bound that keeps a lying header or a huge
    /// file from exhausting memory.
    case tooLong(path: String, samples: Int, limit: Int)
    /// libsamplerate refused the conversion.
    case resampleFailed(path: String, fromRate: Int, toRate: Int, reason: String)
    /// Writing failed (directory missing, disk full, no permission, …).
    case writeFailed(path: String, reason: String)

    // MARK: Folders
    /// No folder at `path`.
    case folderNotFound(path: String)
    /// A folder was asked for, but `path` is a file.
    case notAFolder(path: String)
    /// The folder holds no (non-hidden) files at all.
    case folderEmpty(path: String)
    /// The folder holds files, but none could be used; `skipped` of them.
    case noUsableAudio(path: String, skipped: Int, firstProblem: String)

    // MARK: Corpus
    /// No corpus (no `manifest.tsv`) in `directory`, which is missing or empty.
    case corpusNotFound(directory: String)
    /// `path`, given as a corpus folder, is a file.
    case corpusIsAFile(path: String)
    /// `directory` holds files but no `manifest.tsv`: audio that was never
    /// built into a corpus, most likely.
    case notACorpus(directory: String)
    /// A line of `manifest.tsv`, `train.txt` or `validation.txt` is malformed
    /// (line 0: the file as a whole, e.g. missing).
    case manifestMalformed(path: String, line: Int, reason: String)
    /// The manifest names a file that is not there.
    case corpusFileMissing(directory: String, file: String)
    /// A split list names a file the manifest does not have, or both lists name it.
    case splitInconsistent(directory: String, file: String, reason: String)
    /// The `split` list (`train` or `validation`) of the corpus in
    /// `directory` is empty, so it cannot train or evaluate; `files` in all.
    case splitEmpty(directory: String, split: String, files: Int)
    /// `bench corpus --input` names a file, or a folder of other files the
    /// benchmark would clear to write its generated input.
    case benchmarkInputInUse(path: String, isFile: Bool)
    /// A file's bytes no longer match the manifest's sha256.
    case checksumMismatch(path: String, expected: String, actual: String)
    /// A file's sample count differs from the manifest's.
    case sampleCountMismatch(path: String, expected: Int, actual: Int)

    // MARK: Building a corpus
    /// The output folder is the source folder, or a folder that holds it
    /// (outputs could overwrite sources).
    case outputOverlapsSource(source: String, output: String)
    /// The output folder holds files but is not a corpus `pbtwave corpus
    /// build` made (no build journal, no manifest of its own), so building
    /// there could overwrite the user's files.
    case outputNotACorpus(output: String)
    /// `output` holds a corpus built from another source folder, which this
    /// build would replace (without ``CorpusBuildOptions/replaceOtherSource``).
    case outputHoldsAnotherSourcesCorpus(output: String, builtFrom: String, source: String)
    /// The output holds a corpus without its build journal (so its source
    /// is unknown), and `source` makes few of its WAVs: `unmade` of `total`
    /// would be removed.
    case outputHoldsUnknownCorpus(output: String, unmade: Int, total: Int, source: String)
    /// A line of a `--files` or `--exclude` list is unusable.
    case listMalformed(path: String, line: Int, reason: String)
    /// `--corpus` names the output of a build that did not finish.
    case corpusBuildUnfinished(directory: String)
    /// `--corpus` names the output of a build that finished without a
    /// corpus: it found no usable audio in `source` (its skipped.tsv says why).
    case corpusBuildFoundNoAudio(directory: String, source: String)
    /// The output folder, or a folder on its way, is a file.
    case outputIsAFile(output: String, file: String)
    /// Another build holds the output folder's lock.
    case buildInProgress(output: String)

    // MARK: Windows
    /// No clip of the set is long enough for a window of `length` samples.
    case noClipLongEnough(source: String, length: Int, longest: Int)

    /// How the reason of ``unreadable(path:reason:)`` begins when the file
    /// could not be opened at all (its permissions, an I/O error): a corpus
    /// build tries such a file again at every build, since fixing them
    /// changes neither its size nor its modification time.
    public static let cannotOpenReason = "cannot open it: "

    /// How to rebuild a corpus, default or not.
    private var rebuildAdvice: String {
        "run the build again (`pbtwave corpus build --from AUDIO_DIR --output DIR` for your own audio, `bash datasets/build-corpus.sh` for the default corpus)"
    }

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "audio file not found: \(path): check the path"
        case let .unreadable(path, reason):
            return "cannot read audio file \(path): \(reason): give a WAV, FLAC, Ogg, AIFF or other file libsndfile reads, and replace it if it is damaged"
        case let .notAudio(path, reason):
            return "\(path) is not audio libsndfile recognises (\(reason)): give a WAV, FLAC, Ogg/Vorbis, Opus, AIFF or other file libsndfile reads"
        case let .emptyAudio(path):
            return "audio file \(path) holds no samples: remove it or replace it with a recording"
        case let .truncated(path, expected, read):
            return "audio file \(path) is truncated: its header announces \(expected) frames but only \(read) could be decoded: replace it with a complete copy"
        case let .tooShort(path, samples, required):
            return "audio file \(path) is too short: \(samples) samples, at least \(required) needed: use a longer recording or a shorter window"
        case let .nonFiniteSamples(path):
            return "audio file \(path) contains NaN, infinite or out-of-range samples (beyond ±3.4e38, the float range): it is damaged; replace it"
        case let .tooLong(path, samples, limit):
            return "audio file \(path) needs \(samples) samples or more, beyond the \(limit) this load allows: split it into shorter files (`pbtwave corpus build` streams and has no such limit)"
        case let .resampleFailed(path, from, to, reason):
            return "cannot resample \(path) from \(from) Hz to \(to) Hz: \(reason): convert it to \(to) Hz first (e.g. ffmpeg -i IN -ar \(to) OUT.wav)"
        case let .writeFailed(path, reason):
            return "cannot write \(path): \(reason): check that the folder exists and is writable and the disk has room"
        case let .folderNotFound(path):
            return "audio folder not found: \(path): check the path"
        case let .notAFolder(path):
            return "\(path) is a file, not a folder: give the folder that holds the audio files (with --files LIST, only the files LIST names)"
        case let .folderEmpty(path):
            return "audio folder \(path) is empty: put audio files in it"
        case let .noUsableAudio(path, skipped, first):
            return "audio folder \(path) has no usable audio: all \(skipped) files were skipped (\(first)): add readable audio files"
        case let .corpusNotFound(directory):
            return "corpus not found at \(directory) (no manifest.tsv): build the default speech corpus there with `bash datasets/build-corpus.sh \(shellQuoted(directory))`, or one from your own audio with `pbtwave corpus build --from AUDIO_DIR --output \(shellQuoted(directory))`; or point PBTWAVE_CORPUS / --corpus at a built corpus"
        case let .corpusIsAFile(path):
            return "\(path) is a file, not a corpus folder: give the folder that holds manifest.tsv (a corpus made by `pbtwave corpus build --from AUDIO_DIR --output DIR`, where AUDIO_DIR is a folder of recordings)"
        case let .notACorpus(directory):
            let suggested = (directory.hasSuffix("/") ? String(directory.dropLast()) : directory) + "-corpus"
            return "\(directory) holds files but no manifest.tsv, so it is not a built corpus: to train on the audio in it, run `pbtwave corpus build --from \(directory) --output \(suggested)` and pass `--corpus \(suggested)`"
        case let .manifestMalformed(path, line, reason):
            return "corpus file \(path)\(line > 0 ? ", line \(line)" : ""): \(reason): \(rebuildAdvice)"
        case let .corpusFileMissing(directory, file):
            return "corpus at \(directory) lists \(file) but the file is missing: \(rebuildAdvice) to restore it"
        case let .splitInconsistent(directory, file, reason):
            return "corpus at \(directory): split entry \(file) \(reason): \(rebuildAdvice)"
        case let .splitEmpty(directory, split, files):
            let count = "\(files) file\(files == 1 ? "" : "s")"
            let fix = files < 2
                ? "add files to the source folder and run `pbtwave corpus build` again (with 2 files or more, both splits get at least one)"
                : "run `pbtwave corpus build` again with a --validation-percent between 1 and 99 (then both splits get at least one file), or add files"
            return "corpus at \(directory) has an empty \(split) split (\(split).txt lists none of its \(count)), and training and evaluation need both: \(fix)"
        case let .checksumMismatch(path, expected, actual):
            return "corpus file \(path) has changed since the corpus was built (sha256 \(actual.prefix(12))…, manifest says \(expected.prefix(12))…): delete it, then \(rebuildAdvice) to restore it"
        case let .sampleCountMismatch(path, expected, actual):
            return "corpus file \(path) has \(actual) samples, the manifest says \(expected) (truncated or replaced?): delete it, then \(rebuildAdvice) to restore it"
        case let .outputOverlapsSource(source, output):
            return "the output folder \(output) is the source folder \(source) or holds it, so outputs could overwrite sources: give an --output outside the source folder"
        case let .benchmarkInputInUse(path, isFile):
            return isFile ? "--input \(path) is a file, not a folder: give a new or empty folder for the generated input"
                : "--input \(path) holds files and is not a generated benchmark input (no .benchmark-input), and the benchmark clears its "
                + "input folder: give a new or empty folder"
        case let .outputHoldsAnotherSourcesCorpus(output, builtFrom, source):
            return "\(output) holds a corpus built from \(builtFrom); a build from \(source) would replace it (its WAVs removed): "
                + "give another --output, or add --replace to replace it"
        case let .outputHoldsUnknownCorpus(output, unmade, total, source):
            return "\(output) holds a corpus without its build journal (.build-journal.tsv), so where it came from is unknown, and \(source) "
                + "makes \(total - unmade) of its \(total) WAVs: a build from it would remove the other \(unmade): give another --output, "
                + "or add --replace to replace it"
        case let .outputNotACorpus(output):
            return "the output folder \(output) holds files and is not a corpus built by pbtwave (no .build-journal.tsv, no manifest.tsv of its own), so the build could overwrite them: give an --output that is new or empty"
        case let .corpusBuildUnfinished(directory):
            return "\(directory) holds a corpus build that did not finish (a build journal, no manifest.tsv yet): run the same "
                + "`pbtwave corpus build … --output \(directory)` again, which goes on where it stopped"
        case let .corpusBuildFoundNoAudio(directory, source):
            return "\(directory) holds no corpus: its build found no usable audio in \(source) (\(directory.hasSuffix("/") ? directory : directory + "/")skipped.tsv "
                + "says why for each file): build it again from a folder with speech recordings (WAV, FLAC, Ogg, …)"
        case let .outputIsAFile(output, file):
            return output == file ? "cannot write the corpus to \(output): it is a file, not a folder; give a folder (it is created if missing)"
                : "cannot create the corpus folder \(output): \(file) is a file, not a folder; give a folder (it is created if missing)"
        case let .listMalformed(path, line, reason):
            return line == 0 ? "cannot read the list \(path): \(reason)" : "list \(path), line \(line): \(reason)"
        case let .buildInProgress(output):
            return "another `pbtwave corpus build` is writing to \(output): wait for it to finish, or stop it first"
        case let .noClipLongEnough(source, length, longest):
            return "no clip in \(source) is at least \(length) samples long (the longest has \(longest)): use longer recordings, or shorter windows"
        }
    }

    /// The file or folder the error is about.
    public var path: String {
        switch self {
        case let .fileNotFound(path), let .unreadable(path, _), let .notAudio(path, _), let .emptyAudio(path),
             let .truncated(path, _, _), let .tooShort(path, _, _), let .nonFiniteSamples(path), let .tooLong(path, _, _),
             let .resampleFailed(path, _, _, _), let .writeFailed(path, _),
             let .folderNotFound(path), let .notAFolder(path), let .folderEmpty(path), let .noUsableAudio(path, _, _),
             let .manifestMalformed(path, _, _), let .checksumMismatch(path, _, _),
             let .sampleCountMismatch(path, _, _), let .listMalformed(path, _, _), let .corpusIsAFile(path), let .benchmarkInputInUse(path, _):
            return path
        case let .corpusNotFound(directory), let .notACorpus(directory), let .splitInconsistent(directory, _, _),
             let .splitEmpty(directory, _, _):
            return directory
        case let .outputOverlapsSource(_, output), let .buildInProgress(output), let .outputNotACorpus(output), let .outputIsAFile(output, _),
             let .outputHoldsAnotherSourcesCorpus(output, _, _), let .outputHoldsUnknownCorpus(output, _, _, _),
             let .corpusBuildUnfinished(output), let .corpusBuildFoundNoAudio(output, _):
            return output
        case let .corpusFileMissing(directory, file):
            return directory.hasSuffix("/") ? directory + file : directory + "/" + file
        case let .noClipLongEnough(source, _, _):
            return source
        }
    }
}
