import ArgumentParser
import Foundation
import TensorModule
import WaveNetModule

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "WaveNet training throughput (samples/s), against the core's FMA peak and the PyTorch peer in the same run.",
        discussion: """
        Trains one model on synthetic windows (the codes do not change the cost) and prints samples/s and \
        GFLOP/s, the kernel variant, and our fraction of this core's fp32 FMA peak, measured now at the \
        widest vector width the CPU has (AVX-512 where present) and at AVX2's. --threads splits each step \
        over that many threads of our own (OpenBLAS stays at one) and also times one thread, to print the scaling. With --peer-python and --peer-script, \
        runs the PyTorch peer model (wavenet_torch.py) with the same widths, batch, window and thread count right \
        after, and prints the ratio. --R, --S and --H set the widths as the peer's flags do (the gate \
        width follows --R). --precision bf16 times our bf16 training and our fp32 in the same run and prints \
        the ratio; the peer then runs in bf16 (--bf16, torch.autocast) and in fp32.
        """
    )

    @OptionGroup var model: BenchModelOptions
    @Option(name: .customLong("R"), help: "Residual (and gate) channels, as the peer's --R.") var residual: Int?
    @Option(name: .customLong("S"), help: "Skip channels, as the peer's --S.") var skip: Int?
    @Option(name: .customLong("H"), help: "Head channels, as the peer's --H.") var head: Int?
    @Option(help: "Windows per step.") var batch: Int = 1
    @Option(help: "Positions per window (T).") var time: Int = 8192
    @Option(help: "Threads for one model's step (the peer gets the same count).") var threads: Int = 1
    @Option(help: "Seconds to time each side.") var seconds: Double = 10
    @Option(help: "Time exactly this many steps instead of --seconds (for instruction counts under callgrind).") var steps: Int?
    @Flag(inversion: .prefixedNo, help: "Measure this core's FMA peaks and print our fraction of them.") var peak = true
    @Option(help: "Also train this many models at once, one thread each, and print the scaling against one.") var workers: Int = 1
    @Option(help: "fp32, or bf16 (then also our fp32, and the peer in both, for the ratios).") var precision: String = "fp32"
    @Option(help: "Python interpreter with torch installed, for the peer.") var peerPython: String?
    @Option(help: "Path to wavenet_torch.py.") var peerScript: String?

    func validate() throws {
        guard batch >= 1, time >= 2, threads >= 1, seconds > 0 else {
            throw ValidationError("--batch, --threads must be ≥ 1, --time ≥ 2, --seconds > 0")
        }
        guard [residual, skip, head].allSatisfy({ ($0 ?? 1) >= 1 }) else { throw ValidationError("--R, --S and --H must be at least 1") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard steps.map({ $0 >= 1 }) ?? true else { throw ValidationError("--steps must be at least 1") }
        do { _ = try Precision(parsing: precision) } catch { throw ValidationError("--precision: \(error)") }
        guard (peerPython == nil) == (peerScript == nil) else {
            throw ValidationError("give both --peer-python and --peer-script, or neither")
        }
    }

    func config() throws -> WaveNetConfig {
        var c = try model.config()
        if let residual { c.residualChannels = residual; c.dilationChannels = residual }
        if let skip { c.skipChannels = skip }
        if let head { c.headChannels = head }
        return c
    }

    func run() throws {
        let kernels = try benchKernels()
        BLAS.setThreads(1)
        let config = try config()
        let name = model.modelConfig ?? model.preset
        let widths = "R\(config.residualChannels) D\(config.dilationChannels) S\(config.skipChannels) H\(config.headChannels)"
        print("kernels: \(kernels), chosen from CPUID (supported: \(Kernels.supported.map(\.rawValue).joined(separator: ", ")))")
        let precision = try Precision(parsing: self.precision)
        let flops = Double(config.forwardMACsPerSample) * 6
        func measure(_ p: Precision) throws -> TrainingMeasurement.Result {
            let r = try TrainingMeasurement.run(config: config, kernels: kernels, batch: batch, time: time, seconds: seconds,
                                                steps: steps, threads: threads, precision: p)
            print(String(format: "ours:  %@ (%@) %@ B%d T%d, %d thread(s): median %.0f samples/s (best %.0f, middle 80 %% of steps %.0f–%.0f), %.1f GFLOP/s median, %d steps, loss %.3f → %.3f",
                         name, widths, p.rawValue, batch, time, threads, r.medianSamplesPerSecond, r.bestSamplesPerSecond,
                         r.samplesPerSecond(quantile: 0.9), r.samplesPerSecond(quantile: 0.1),
                         r.medianSamplesPerSecond * flops / 1e9, r.steps, r.lossFirst, r.lossLast))
            return r
        }
        if precision == .bf16 {
            print(kernels.nativeBF16 ? "bf16 dot product: vdpbf16ps"
                  : Kernels.bf16DotAvailable ? "bf16 dot product: two FMAs (faster than vdpbf16ps on this CPU, measured at start)"
                  : "warning: no bf16 dot product (AVX512_BF16) on this CPU; bf16 runs its emulation by FMAs")
        }
        let r = try measure(precision)
        let gflops = r.medianSamplesPerSecond * flops / 1e9
        if precision == .bf16 {
            let fp32 = try measure(.fp32)
            print(String(format: "ratio ours bf16/fp32: %.2f× median, %.2f× best", r.medianSamplesPerSecond / fp32.medianSamplesPerSecond,
                         r.bestSamplesPerSecond / fp32.bestSamplesPerSecond))
        }
        if peak {
            let widest = try Kernels(Kernels.best)
            let peaks = [widest] + (widest.variant != .avx2 && Kernels.supported.contains(.avx2) ? [try Kernels(.avx2)] : [])
            for k in peaks {
                let p = BenchClock.fmaPeakGFLOPS(k)
                print(String(format: "peak:  %@ fp32 FMA, one core, measured now: %.1f GFLOP/s; ours is %.1f %% of %d core(s)' peak",
                             k.instructionSet, p, 100 * gflops / (p * Double(threads)), threads))
            }
        }
        // The scalings compare with one thread alone, measured now.
        var one = r
        if threads > 1 {
            one = try TrainingMeasurement.run(config: config, kernels: kernels, batch: batch, time: time, seconds: seconds,
                                              steps: steps, threads: 1, precision: precision)
            print(String(format: "ours:  1 thread (\(precision)), for comparison: median %.0f samples/s (best %.0f); %d threads = %.2f× one thread (median), %.2f× (best)",
                         one.medianSamplesPerSecond, one.bestSamplesPerSecond, threads,
                         r.medianSamplesPerSecond / one.medianSamplesPerSecond, r.bestSamplesPerSecond / one.bestSamplesPerSecond))
        }
        if workers > 1 {
            let all = try TrainingMeasurement.runConcurrently(workers: workers, config: config, kernels: kernels, batch: batch,
                                                              time: time, seconds: seconds, precision: precision)
            let total = all.reduce(0) { $0 + $1.medianSamplesPerSecond }
            print(String(format: "ours:  %d workers at once (1 thread each): %@ samples/s each (median), %.0f in all = %.2f× one worker alone",
                         workers, all.map { String(format: "%.0f", $0.medianSamplesPerSecond) }.joined(separator: ", "),
                         total, total / one.medianSamplesPerSecond))
        }
        guard let peerPython, let peerScript else { return }
        guard config.dilationChannels == config.residualChannels, config.kernelSize == 2, config.inputKernelSize == 2,
              config.classes == 256, config.dilations == WaveNetConfig.doublingDilations(stacks: 2, layersPerStack: 10) else {
            throw ValidationError("the PyTorch peer builds only 2 stacks of dilations 1…512, kernel 2, gate width = --R, 256 classes")
        }
        for peerPrecision in precision == .bf16 ? [Precision.bf16, .fp32] : [.fp32] {
            let peer = try PeerRun.run(python: peerPython, script: peerScript, arguments: [
                "--threads", "\(threads)", "--batch", "\(batch)", "--T", "\(time)", "--seconds", "\(seconds)",
                "--R", "\(config.residualChannels)", "--S", "\(config.skipChannels)", "--H", "\(config.headChannels)",
            ] + (peerPrecision == .bf16 ? ["--bf16"] : []))
            print(String(format: "peer:  torch %@ %@: median %.0f samples/s (best %.0f)", peer.version, peerPrecision.rawValue, peer.median, peer.best))
            print(String(format: "ratio ours %@/peer %@: %.2f× median, %.2f× best", precision.rawValue, peerPrecision.rawValue,
                         r.medianSamplesPerSecond / peer.median, r.bestSamplesPerSecond / peer.best))
        }
    }
}
