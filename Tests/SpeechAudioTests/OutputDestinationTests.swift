@testable import PBTFileSupport
import Foundation
import PBTWaveAudio
import Testing

/// Where whole-file writes land (`AtomicFile.destination(for:)`, used by
/// every atomic write and by the WAV writer): through a symbolic link to its
/// file, leaving the link a link; never over a device, pipe or folder, which
/// renaming a new file into place would replace.
@Suite struct OutputDestinationTests {
    @Test func aLinkIsWrittenThroughAndStaysALink() throws {
        let dir = TemporaryFolder()
        let file = dir.file("real.txt")
        try "old".write(toFile: file, atomically: true, encoding: .utf8)
        let link = dir.file("link.txt")
        #expect(symlink("real.txt", link) == 0)
        try AtomicFile.write(Data("new".utf8), to: URL(fileURLWithPath: link))
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "new")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "real.txt", "the link is still a link")

        // A dangling link: the write creates the file it names.
        let dangling = dir.file("dangling.wav")
        #expect(symlink("made.wav", dangling) == 0)
        try writeWAV([0, 0.5, -0.5], sampleRate: 16_000, to: dangling)
        #expect(FileManager.default.fileExists(atPath: dir.file("made.wav")))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dangling) == "made.wav")
    }

    /// A name near the file system's 255 bytes is written: the temporary
    /// file beside it has a name cut short, not one too long (found by a
    /// helper: a WAV of a 247-byte name could not be written).
    @Test func aLongNameIsWritten() throws {
        let dir = TemporaryFolder()
        for length in [200, 240, 251] {
            let name = String(repeating: "é", count: (length - 4) / 2) + String(repeating: "x", count: (length - 4) % 2) + ".wav"
            try #require(name.utf8.count == length)
            try AtomicFile.write(Data("x".utf8), to: URL(fileURLWithPath: dir.file(name)))
            #expect(try String(contentsOfFile: dir.file(name), encoding: .utf8) == "x")
            try writeWAV([0, 0.5], sampleRate: 16_000, to: dir.file(name))
            #expect(try readMonoAudio(path: dir.file(name)).count == 2)
            #expect(AtomicFile.temporaryPath(for: dir.file(name)).split(separator: "/").last!.utf8.count <= 255)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).count == 3, "no temporary file left")
    }

    /// A file written over keeps its permissions (found by a helper:
    /// `--replace` over a 0444 file left it 0644); a new file gets 0644
    /// less the umask. Every atomic writer: one file, several, and WAV.
    @Test func aFileWrittenOverKeepsItsPermissions() throws {
        let dir = TemporaryFolder()
        func mode(_ path: String) -> mode_t {
            var info = stat()
            return stat(path, &info) == 0 ? info.st_mode & 0o7777 : 0
        }
        let (one, two, three, wav) = (dir.file("one.txt"), dir.file("two.txt"), dir.file("three.txt"), dir.file("out.wav"))
        for (path, permissions) in [(one, 0o444), (two, 0o600), (three, 0o640), (wav, 0o444)] as [(String, mode_t)] {
            try "old".write(toFile: path, atomically: false, encoding: .utf8)
            #expect(chmod(path, permissions) == 0)
        }
        try AtomicFile.write(Data("new".utf8), to: URL(fileURLWithPath: one))
        try AtomicFile.writeAll([(two, Data("2".utf8)), (three, Data("3".utf8)), (dir.file("fresh.txt"), Data("f".utf8))])
        try writeWAV([0, 0.5], sampleRate: 16_000, to: wav)
        #expect(try String(contentsOfFile: one, encoding: .utf8) == "new")
        #expect(try String(contentsOfFile: three, encoding: .utf8) == "3")
        #expect([mode(one), mode(two), mode(three), mode(wav)] == [0o444, 0o600, 0o640, 0o444])
        // The umask, read without setting it (umask(2) would change it for the other tests' threads).
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Umask:") }
        let mask = line.flatMap { mode_t($0.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) } ?? 0o022
        #expect(mode(dir.file("fresh.txt")) == 0o644 & ~mask)
    }

    @Test func aPipeADeviceOrAFolderIsRefusedAndKept() throws {
        let dir = TemporaryFolder()
        let fifo = dir.file("pipe")
        #expect(mkfifo(fifo, 0o644) == 0)
        for (path, kind) in [(fifo, "a named pipe"), ("/dev/null", "a device"), (dir.path, "a folder")] {
            let error = #expect(throws: AtomicFileError.self) { try AtomicFile.write(Data("x".utf8), to: URL(fileURLWithPath: path)) }
            #expect(error?.description == "cannot write \(path): it is \(kind), which writing a file there would replace; give the path of a file")
            let audio = #expect(throws: AudioError.self) { try writeWAV([0], sampleRate: 16_000, to: path) }
            #expect(audio?.description.contains("it is \(kind)") == true, "\(audio?.description ?? "")")
        }
        var info = stat()
        #expect(stat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "the pipe is still a pipe")
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR, "/dev/null is still a device")
        let all = #expect(throws: AtomicFileError.self) {
            try AtomicFile.writeAll([(dir.file("a"), Data("a".utf8)), (fifo, Data("b".utf8))])
        }
        #expect(all?.path == fifo)
        #expect(!FileManager.default.fileExists(atPath: dir.file("a")), "all or nothing")
    }

    /// Found by a helper: `--output /dev/stdout --replace >> log` renamed a
    /// new file over the log the shell had opened (/dev/stdout is a link to
    /// it, through /proc/self/fd/1), and what the log held was lost.
    @Test func aProcessesOpenFileIsRefusedAndKept() throws {
        let dir = TemporaryFolder()
        let log = dir.file("log.txt")
        try "before\n".write(toFile: log, atomically: false, encoding: .utf8)
        let fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        let link = dir.file("out.csv")
        #expect(symlink("/proc/self/fd/\(fd)", link) == 0)
        // A link to the folder on the way (found by the re-check helper: `ln -s /dev/fd devfd`, then devfd/1).
        #expect(symlink("/dev/fd", dir.file("devfd")) == 0)
        #expect(symlink("/proc", dir.file("p")) == 0)
        for path in ["/proc/self/fd/\(fd)", "/dev/fd/\(fd)", link, "/dev/stdout", dir.file("devfd/\(fd)"), dir.file("p/self/fd/\(fd)")] {
            let error = #expect(throws: AtomicFileError.self) { try AtomicFile.write(Data("x".utf8), to: URL(fileURLWithPath: path)) }
            #expect(error?.description.hasPrefix("cannot write \(path): it is \(path)") == true
                    && error?.description.contains("a file a process has open") == true, "\(error?.description ?? "written")")
            #expect(throws: AudioError.self) { try writeWAV([0], sampleRate: 16_000, to: path) }
        }
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "before\n", "the open file keeps what it held")
        #expect(AtomicFile.processStream(dir.file("plain.txt")) == nil && AtomicFile.processStream("/procs/fd/1") == nil)
    }
}

/// `bench corpus --input`: the generated input's folder is cleared before
/// writing, so only an empty folder or one it generated may be used.
@Suite struct BenchmarkInputTests {
    @Test func aFolderOfOtherFilesOrAFileIsRefusedAndKept() throws {
        let dir = TemporaryFolder()
        let input = CorpusBuildBenchmark.Input(minutes: 0.01, files: 1)
        let mine = dir.write("mine/keep.txt", text: "keep")
        #expect(throws: AudioError.benchmarkInputInUse(path: dir.file("mine"), isFile: false)) {
            try CorpusBuildBenchmark.makeInput(input, in: dir.file("mine"), jobs: 1)
        }
        #expect(try String(contentsOfFile: mine, encoding: .utf8) == "keep", "the user's file is still there")
        let file = dir.write("afile", text: "x")
        #expect(throws: AudioError.benchmarkInputInUse(path: file, isFile: true)) {
            try CorpusBuildBenchmark.makeInput(input, in: file, jobs: 1)
        }
        // An empty folder, then the generated one again (other settings: regenerated in place).
        try FileManager.default.createDirectory(atPath: dir.file("gen"), withIntermediateDirectories: true)
        #expect(try CorpusBuildBenchmark.makeInput(input, in: dir.file("gen"), jobs: 1))
        #expect(try CorpusBuildBenchmark.makeInput(CorpusBuildBenchmark.Input(minutes: 0.01, files: 2), in: dir.file("gen"), jobs: 1))
    }
}
