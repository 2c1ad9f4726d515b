import ArgumentParser
import Foundation
import TensorModule

/// `pbtwave bench …`: speed measurements printed as ratios against a peer
/// measured in the same run. Not tests: the numbers depend on the machine.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed side by side with a reference, in one run.",
        subcommands: [BenchKernels.self]
    )
}

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Our GEMM path and convolution against raw cblas_sgemm calls on WaveNet's shapes.",
        discussion: """
        Each comparison alternates rounds of our call and the raw call and keeps the best round of \
        each, so a busy machine slows both alike. Single-threaded BLAS unless --threads says otherwise.
        """
    )

    @Option(help: "Time steps T for the GEMM shapes (comma-separated).")
    var times: String = "1024,4096,16384"

    @Option(help: "Alternating rounds per comparison (the best round counts).")
    var repetitions: Int = 7

    @Option(help: "BLAS threads.")
    var threads: Int = 1

    func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard parsedTimes != nil else { throw ValidationError("--times must be positive integers separated by commas, e.g. 1024,4096") }
    }

    var parsedTimes: [Int]? {
        let values = times.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return values.map { $0! }
    }

    func run() throws {
        BLAS.setThreads(threads)
        print("BLAS: \(BLAS.configuration) (core \(BLAS.coreName), \(threads) thread\(threads == 1 ? "" : "s"))")
        print(pad("shape", 34) + pad("ours GFLOP/s", 14) + pad("raw GFLOP/s", 14) + "ours/raw")
        var worst = Double.infinity
        for shape in KernelBenchmark.waveNetShapes(times: parsedTimes!) {
            let c = KernelBenchmark.compareGEMM(shape, repetitions: repetitions)
            worst = min(worst, c.ratio)
            print(row(c))
        }
        print(String(format: "GEMM path: worst ratio %.3f (goal ≥ 0.97)", worst))
        print("")
        print(pad("convolution (forward + backward)", 34) + pad("ours GFLOP/s", 14) + pad("sgemm alone", 14) + "ours/raw")
        for c in [32, 64] {
            let r = KernelBenchmark.compareConvolution(channels: c, time: 4096, repetitions: repetitions)
            print(row(r))
        }
        print("(goal: conv forward+backward at C=32, T=4096 ≥ 0.80 of the raw sgemm calls alone)")
    }

    func row(_ c: KernelBenchmark.Comparison) -> String {
        pad(c.label, 34) + pad(String(format: "%.1f", c.oursGFLOPS), 14) + pad(String(format: "%.1f", c.rawGFLOPS), 14)
            + String(format: "%.3f", c.ratio)
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
