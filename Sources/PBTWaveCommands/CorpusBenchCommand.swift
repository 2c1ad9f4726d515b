import ArgumentParser
import Foundation
import PBTWaveAudio

/// `pbtwave bench corpus`: how fast `pbtwave corpus build` converts a folder
/// of recordings, as a multiple of real time.
struct BenchCorpus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Corpus build speed on a generated hour of 44.1 kHz stereo FLAC, as a multiple of real time (goal ≥ 200× on 2 cores).",
        discussion: """
        Generates the input once (synthetic speech-like audio written as FLAC by libsndfile; reused while \
        its parameters are the same), then times a full `corpus build` into an empty folder: decoding, \
        mix-down, resampling to 16 kHz (libsamplerate's fastest sinc, corpus build's default), 16-bit WAV writing and checksums. \
        Prints wall and CPU time; the ratio is audio seconds per wall second.
        """
    )

    @Option(parsing: .unconditional, help: "Minutes of audio to generate.") var minutes: Double = 60
    @Option(parsing: .unconditional, help: "Files to spread them over.") var files: Int = 120
    @Option(parsing: .unconditional, help: "Sample rate of the generated files, Hz.") var rate: Int = 44_100
    @Option(parsing: .unconditional, help: "Channels of the generated files.") var channels: Int = 2
    @Option(help: ArgumentHelp("Folder for the generated input (default: a folder under the system's temporary directory).", valueName: "dir"))
    var input: String?
    @Option(parsing: .unconditional, help: "Threads for the build (default: every core).") var jobs: Int?
    @Option(parsing: .unconditional, help: "Timed builds (each into an empty folder); each is printed, the best counts.") var repetitions: Int = 1

    func validate() throws {
        guard minutes > 0, minutes <= 24 * 60 else { throw ValidationError("--minutes must be in (0, 1440]") }
        guard files >= 1 else { throw ValidationError("--files must be at least 1") }
        guard AudioLimits.sampleRates.contains(rate) else { throw ValidationError("--rate must be a sample rate in \(AudioLimits.sampleRates)") }
        guard (1 ... 8).contains(channels) else { throw ValidationError("--channels must be 1 to 8") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        if let jobs { guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") } }
    }

    func run() throws {
        let threads = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        let spec = CorpusBuildBenchmark.Input(minutes: minutes, files: files, sampleRate: rate, channels: channels)
        let folder = input ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("pbtwave-bench-corpus-input")
        let generationStart = Date()
        let generated = try CorpusBuildBenchmark.makeInput(spec, in: folder, jobs: threads)
        print("input: \(folder): \(spec)" + (generated ? String(format: " (generated in %.1f s)", Date().timeIntervalSince(generationStart)) : " (reused)"))

        let output = (NSTemporaryDirectory() as NSString).appendingPathComponent("pbtwave-bench-corpus-output-\(getpid())")
        defer { try? FileManager.default.removeItem(atPath: output) }
        var best = 0.0
        for round in 1 ... repetitions {
            try? FileManager.default.removeItem(atPath: output)
            var options = CorpusBuildOptions(source: folder, output: output)
            options.jobs = threads
            let cpuBefore = cpuSeconds()
            let summary = try CorpusBuilder.build(options)
            let cpu = cpuSeconds() - cpuBefore
            let sourceSeconds = minutes * 60
            let ratio = sourceSeconds / summary.wallSeconds
            best = max(best, ratio)
            print(String(format: "build %d: %d files, %.1f min of audio in %.2f s wall, %.2f s CPU on %d thread%@: %.0f× real time (%.0f× per CPU second)",
                         round, summary.converted, summary.convertedSeconds / 60, summary.wallSeconds, cpu, threads, threads == 1 ? "" : "s",
                         ratio, sourceSeconds / cpu))
        }
        print(String(format: "corpus build: best %.0f× real time on %d thread%@ (goal ≥ 200× on 2 cores): %@",
                     best, threads, threads == 1 ? "" : "s", best >= 200 ? "met" : "NOT met"))
    }

    /// User + system CPU time of this process so far.
    private func cpuSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
