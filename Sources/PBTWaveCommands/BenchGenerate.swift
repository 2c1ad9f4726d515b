import ArgumentParser
import PBTSeededRNG
import PBTWaveTensor
import PBTWaveModel

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Incremental (queue-based) generation speed in samples/s on one thread, per kernel variant.",
        discussion: "Measures the variant PBTWAVE_ISA names, or with --all-variants every instruction-set variant this CPU runs.")

    @Option(help: "Model preset.") var preset: String = "compact"
    @Option(parsing: .unconditional, help: "Samples to generate, at least 1000.") var samples: Int = 160_000
    @Option(parsing: .unconditional, help: "Repetitions (the best counts).") var repetitions: Int = 3
    @Flag(help: "Measure every instruction-set variant this CPU supports.") var allVariants = false

    func validate() throws {
        try WaveNetConfig.checkPreset(preset)
        guard samples >= 1000, repetitions >= 1 else { throw ValidationError("--samples must be ≥ 1000 and --repetitions ≥ 1") }
    }

    func run() throws {
        BLAS.setThreads(1)
        let config = WaveNetConfig.presets[preset]!
        let variants = allVariants ? try Kernels.supported.filter { $0 != .blas }.map { try Kernels($0) } : [try benchKernels()]
        for kernels in variants {
            let rates = try (0..<repetitions).map { _ in try Self.rate(config: config, kernels: kernels, count: samples) }
            let best = rates.max()!
            print(String(format: "generate %@ (%@ kernels): best %.0f samples/s (%.1f× real time at %d Hz; runs: %@)", preset,
                         kernels.description, best, best / Double(config.sampleRate), config.sampleRate,
                         rates.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
        }
    }

    /// Samples per second generating `count` samples after a warm-up.
    static func rate(config: WaveNetConfig, kernels: Kernels, count: Int) throws -> Double {
        let model = try WaveNet(config: config, seed: 0)
        model.kernels = kernels
        let generator = WaveNetGenerator(model: model)
        _ = generator.generate(count: 1000, temperature: 1, seed: 1)
        return Double(count) / BenchClock.seconds { _ = generator.generate(count: count, temperature: 1, seed: 2) }
    }
}
