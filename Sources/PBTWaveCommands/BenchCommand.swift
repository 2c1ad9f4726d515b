import ArgumentParser
import PBTWaveTensor
import PBTWaveModel

/// `pbtwave bench …`: speed measurements printed as ratios against a
/// reference measured in the same run (OpenBLAS, the PyTorch peer, the
/// core's FMA peak). Not tests: the numbers depend on the machine.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed side by side with a reference, in one run.",
        subcommands: [BenchKernels.self, BenchTrain.self, BenchGenerate.self, PBTOverheadBenchCommand.self, BenchCorpus.self, BenchExecCommand.self]
    )
}

/// The model a bench command measures: a preset or a JSON config.
struct BenchModelOptions: ParsableArguments {
    @Option(help: "Model preset: \(WaveNetConfig.presets.keys.sorted().joined(separator: ", ")) (default: compact).")
    var preset: String?

    @Option(name: .customLong("model-config"), help: "A WaveNet config as JSON (instead of --preset).")
    var modelConfig: String?

    func validate() throws {
        // Both given: the preset was ignored without a word (train refuses the pair).
        if preset != nil, modelConfig != nil { throw ValidationError("give --preset or --model-config, not both") }
        if modelConfig == nil { try WaveNetConfig.checkPreset(preset ?? "compact") }
    }

    func config() throws -> WaveNetConfig {
        try modelConfig.map(WaveNetConfig.read(from:)) ?? WaveNetConfig.presets[preset ?? "compact"]!
    }
}

/// The kernel variant a bench command runs: `PBTWAVE_ISA`, else the best.
/// A bad `PBTWAVE_ISA` is an error here, not a silent fallback.
func benchKernels() throws -> Kernels {
    do { return try Kernels.fromEnvironment() ?? Kernels.default } catch { throw ValidationError("\(error)") }
}

/// Timing for the bench commands, on `ContinuousClock`.
enum BenchClock {
    /// Seconds `body` takes.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        try ContinuousClock().measure(body) / .seconds(1)
    }

    /// Best seconds per call of `a` and of `b`, measured in alternating rounds
    /// of about `secondsPerRound`, so that a busy machine slows both alike.
    static func alternate(_ a: () -> Void, _ b: () -> Void, repetitions: Int, secondsPerRound: Double = 0.1) -> (Double, Double) {
        a(); b()  // warm caches and OpenBLAS's buffers
        let once = max(seconds(a), 1e-7)
        let calls = max(1, Int(secondsPerRound / once))
        var bestA = Double.infinity, bestB = Double.infinity
        for _ in 0..<repetitions {
            bestA = min(bestA, seconds { for _ in 0..<calls { a() } } / Double(calls))
            bestB = min(bestB, seconds { for _ in 0..<calls { b() } } / Double(calls))
        }
        return (bestA, bestB)
    }

    /// A core's fp32 FMA ceiling in GFLOP/s at the width of `kernels`'
    /// instruction set, measured now: 12 independent FMA chains (as
    /// the peer's fma_peak.c probe), best of five rounds of ~0.1 s.
    static func fmaPeakGFLOPS(_ kernels: Kernels) -> Double {
        let flopsPerRound = 2.0 * 12 * Double(kernels.lanes)
        var rounds = 1_000_000
        while seconds({ _ = kernels.fmaChains(rounds) }) < 0.05 { rounds *= 2 }
        var best = 0.0
        for _ in 0..<5 {
            let s = seconds { _ = kernels.fmaChains(rounds) }
            best = max(best, Double(rounds) * flopsPerRound / s / 1e9)
        }
        return best
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
