import ArgumentParser
import Foundation
import PBTReport
import PBTWaveTensor
import PBTWaveModel

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "WaveNet training throughput (samples/s), against the core's FMA peak and the PyTorch peer in the same run.",
        discussion: """
        Trains one model on synthetic windows (the codes do not change the cost) and prints samples/s and \
        GFLOP/s, the kernel variant, and our fraction of this core's fp32 FMA peak, measured at the widest \
        vector width the CPU has (AVX-512 where present) and at AVX2's. --threads splits each step over that \
        many threads of our own (OpenBLAS stays at one) and also times one thread, to print the scaling; \
        --workers trains that many models at once. With --peer-python and --peer-script, runs the PyTorch \
        peer model (wavenet_torch.py) with the same widths, batch, window and thread count. --R, --S and --H \
        set the widths as the peer's flags do (the gate width follows --R). --precision bf16 also times our \
        fp32, and the peer in bf16 (--bf16, torch.autocast) and in fp32.

        --beside PRESET also trains that preset's model in the same rounds and prints both fractions of the \
        peak and their difference in points: e.g. `--R 20 --S 40 --H 40 --beside compact` checks a width \
        against compact's in one run.

        Every side (ours, the peaks, one thread, the workers, the beside model, the peer) is timed in \
        --rounds slices taken in turn, so that a slower minute of a shared host slows each side alike: each \
        ratio and fraction is the median of the rounds' own, printed with their range.
        """
    )

    @OptionGroup var model: BenchModelOptions
    @Option(name: .customLong("R"), parsing: .unconditional, help: "Residual (and gate) channels, as the peer's --R.") var residual: Int?
    @Option(name: .customLong("S"), parsing: .unconditional, help: "Skip channels, as the peer's --S.") var skip: Int?
    @Option(name: .customLong("H"), parsing: .unconditional, help: "Head channels, as the peer's --H.") var head: Int?
    @Option(parsing: .unconditional, help: "Windows per step.") var batch: Int = 1
    @Option(parsing: .unconditional, help: "Positions per window (T).") var time: Int = 8192
    @Option(parsing: .unconditional, help: "Threads for one model's step (the peer gets the same count).") var threads: Int = 1
    @Option(parsing: .unconditional, help: "Seconds to time each side, in all rounds.") var seconds: Double = 10
    @Option(parsing: .unconditional, help: "Rounds: each side (ours, the peaks, one thread, the workers, the peer) is timed in this many slices, taken in turn, so that a slower minute of a shared host slows every side alike; each ratio is the median of the rounds' ratios.")
    var rounds: Int = 3
    @Option(parsing: .unconditional, help: "Time exactly this many steps instead of --seconds (for instruction counts under callgrind).") var steps: Int?
    @Flag(inversion: .prefixedNo, help: "Measure this core's FMA peaks and print our fraction of them.") var peak = true
    @Option(parsing: .unconditional, help: "Also train this many models at once, one thread each, and print the scaling against one.") var workers: Int = 1
    @Option(help: "fp32, or bf16 (then also our fp32, and the peer in both, for the ratios).") var precision: String = "fp32"
    @Option(help: "Also train this preset's model (\(WaveNetConfig.presets.keys.sorted().joined(separator: ", "))) in the same rounds, with the same batch, window, threads and precision, and print our fraction of the peak against its, in points.")
    var beside: String?
    @Option(help: "Python interpreter with torch installed, for the peer.") var peerPython: String?
    @Option(help: "Path to wavenet_torch.py.") var peerScript: String?

    func validate() throws {
        // Each flag by name (one message named all four, whichever was wrong).
        for (flag, value, least) in [("--batch", batch, 1), ("--threads", threads, 1), ("--time", time, 2)] where value < least {
            throw ValidationError("\(flag) must be at least \(least) (got \(value))")
        }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be a number of seconds above 0 (got \(seconds))") }
        guard [residual, skip, head].allSatisfy({ ($0 ?? 1) >= 1 }) else { throw ValidationError("--R, --S and --H must be at least 1") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        // Each round times every side, the peaks too, however short its slice (found by a helper: 10^8 rounds never ended).
        guard rounds <= 100 else { throw ValidationError("--rounds must be at most 100 (got \(rounds)): each round also measures the peaks") }
        guard steps.map({ $0 >= 1 }) ?? true else { throw ValidationError("--steps must be at least 1") }
        do { _ = try Precision(parsing: precision) } catch { throw ValidationError("--precision: \(error)") }
        if let beside { try WaveNetConfig.checkPreset(beside, flag: "--beside") }
        guard (peerPython == nil) == (peerScript == nil) else {
            throw ValidationError("give both --peer-python and --peer-script, or neither")
        }
        // The workers and the peer run for a time, not a number of steps: their ratios to one cold step meant nothing (found by a helper).
        if steps != nil, workers > 1 || peerPython != nil {
            throw ValidationError("--steps times our model alone (for instruction counts under callgrind); the workers and the peer are timed by --seconds: leave out --steps, or --workers and the peer")
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
        try config.validate()  // before anything is said of its widths (--R 5000 had its narrow tiles listed first)
        let (models, o) = WaveNet.stepBytes(config, batch: batch, time: time, training: true).multipliedReportingOverflow(by: 1 + (threads > 1 ? 1 : 0) + (workers > 1 ? workers : 0))
        try MemoryCheck.require(o ? Int.max : models, for: "timing --batch \(batch) × --time \(time)" + (workers > 1 ? " with \(workers) workers" : ""),
                                advice: "give a smaller --time or --batch")
        let base = model.modelConfig ?? model.preset ?? "compact"
        let name = residual == nil && skip == nil && head == nil ? base : "\(base) with --R/--S/--H"
        let widths = "R\(config.residualChannels) D\(config.dilationChannels) S\(config.skipChannels) H\(config.headChannels)"
        let how = (getenv("PBTWAVE_ISA").map { String(cString: $0) } ?? "").isEmpty ? "chosen from CPUID" : "forced by PBTWAVE_ISA"
        print("kernels: \(kernels), \(how) (supported: \(Kernels.supported.map(\.rawValue).joined(separator: ", ")))")
        let cores = ProcessInfo.processInfo.activeProcessorCount
        for (flag, count) in [("--threads", threads), ("--workers", workers)] where count > cores {
            printNote("warning: \(flag) \(count) is more than this machine's \(cores) cores: the threads share cores and the figures measure that, not the kernels")
        }
        if kernels.variant == .avx2 {
            let why = Kernels.halfTailsOverride ?? "this core's FMA units are \(Kernels.fmaUnitsHalfWidth ? 128 : 256) bits wide, "
                + (Kernels.fmaUnitsHalfWidthFromCPUID == nil ? "measured at start" : "known from CPUID")
            print("half tails (a ragged width's last ≤ 4 channels in 128-bit vectors): \(Kernels.halfTails ? "on" : "off") (\(why))")
        }
        if kernels.variant == .avx512 {
            let why = Kernels.narrowTilesOverride ?? "this core's AVX-512 FMA units are \(Kernels.fma512UnitsHalfWidth ? 256 : 512) bits wide, "
                + (Kernels.fma512UnitsHalfWidthFromCPUID == nil ? "measured at start" : "known from CPUID")
            let taken = [("R", config.residualChannels), ("D", config.dilationChannels), ("S", config.skipChannels), ("H", config.headChannels)]
                .filter { Kernels.narrowTilesTake(channels: $0.1) || Kernels.narrowTilesTakeWeightGradient(inChannels: $0.1) }
                .map { "\($0.0)\($0.1)" }
            print("narrow tiles (products of 5–12 channels past a multiple of 16, and weight gradients of 8–12 input channels, in avx512-256's 8-lane vectors): "
                  + "\(Kernels.narrowTiles ? "on" : "off") (\(why))"
                  + (Kernels.narrowTiles ? "; this model's widths they take: \(taken.isEmpty ? "none" : taken.joined(separator: ", "))" : ""))
        }
        if kernels.variant != .blas {
            print("dot tails (a ragged width's last few channels as dot products): \(Kernels.dotTails ? "on" : "off (PBTWAVE_DOT_TAILS=0)")")
        }
        let precision = try Precision(parsing: self.precision)
        let flops = Double(config.forwardMACsPerSample) * 6
        let peer = try peerCommand(config)
        if precision == .bf16 {
            let forced = Kernels.bf16DotAvailable && Kernels.bf16DotForced
            print(kernels.nativeBF16 ? "bf16 dot product: vdpbf16ps" + (forced ? " (PBTWAVE_BF16_DOT=native)" : "")
                  : kernels.variant != .avx512 ? "bf16 dot product: the emulation by FMAs (the \(kernels.variant) kernels have no vdpbf16ps)"
                  : Kernels.bf16DotAvailable ? "bf16 dot product: two FMAs"
                      + (forced ? " (PBTWAVE_BF16_DOT=fma)" : " (faster than vdpbf16ps on this CPU, measured at start)")
                  : "warning: no bf16 dot product (AVX512_BF16) on this CPU; bf16 runs its emulation by FMAs")
        }

        // Every side is timed in `rounds` slices, in turn: a slower minute of
        // a shared host then slows each side alike, and each ratio is the
        // median of the rounds' ratios.
        typealias Session = TrainingMeasurement.Session
        let rounds = steps == nil ? self.rounds : 1, slice = seconds / Double(rounds)
        func session(_ p: Precision, threads: Int, of c: WaveNetConfig? = nil) throws -> Session {
            try Session(config: c ?? config, kernels: kernels, batch: batch, time: time, threads: threads, precision: p)
        }
        let ours = try session(precision, threads: threads)
        let fp32 = precision == .bf16 ? try session(.fp32, threads: threads) : nil
        let one = threads > 1 ? try session(precision, threads: 1) : nil
        let team = workers > 1 ? try (0..<workers).map { _ in try session(precision, threads: 1) } : []
        let besideConfig = beside.map { WaveNetConfig.presets[$0]! }
        let other = try besideConfig.map { try session(precision, threads: threads, of: $0) }
        let otherFlops = Double(besideConfig?.forwardMACsPerSample ?? 0) * 6
        let widest = try Kernels(Kernels.best)
        let peakKernels = !peak ? [] : [widest] + (widest.variant != .avx2 && Kernels.supported.contains(.avx2) ? [try Kernels(.avx2)] : [])
        // The peer in our precision, and with bf16 also in fp32.
        let peers = peer.map { peer in (precision == .bf16 ? [Precision.bf16, .fp32] : [.fp32]).map { ($0, peer) } } ?? []

        var bf16Ratio: [Double] = [], peaks = [[Double]](repeating: [], count: peakKernels.count)
        var fractions = peaks, threadRatio: [Double] = [], workerRatio: [Double] = [], workerTotals: [Double] = []
        // The beside model: its fraction of each peak, and our GFLOP/s over its.
        var otherFractions = peaks, otherRatio: [Double] = []
        var peerRuns = [[PeerRun.Result]](repeating: [], count: peers.count), peerRatio = [[Double]](repeating: [], count: peers.count)
        for round in 1...rounds {
            if rounds > 1 { print("round \(round) of \(rounds) …") }
            let r = ours.time(seconds: slice, steps: steps).medianSamplesPerSecond
            if let fp32 { bf16Ratio.append(r / fp32.time(seconds: slice, steps: steps).medianSamplesPerSecond) }
            let o = other.map { $0.time(seconds: slice, steps: steps).medianSamplesPerSecond }
            if let o { otherRatio.append(r * flops / (o * otherFlops)) }
            for (i, k) in peakKernels.enumerated() {
                let p = BenchClock.fmaPeakGFLOPS(k)
                peaks[i].append(p)
                fractions[i].append(100 * r * flops / 1e9 / (p * Double(threads)))
                if let o { otherFractions[i].append(100 * o * otherFlops / 1e9 / (p * Double(threads))) }
            }
            let single = one.map { $0.time(seconds: slice, steps: steps).medianSamplesPerSecond } ?? r
            if one != nil { threadRatio.append(r / single) }
            if !team.isEmpty {
                let total = TrainingMeasurement.timeConcurrently(team, seconds: slice).reduce(0) { $0 + $1.medianSamplesPerSecond }
                workerTotals.append(total)
                workerRatio.append(total / single)
            }
            for (i, (p, peer)) in peers.enumerated() {
                let run = try PeerRun.run(peer, seconds: slice, bf16: p == .bf16)
                peerRuns[i].append(run)
                peerRatio[i].append(r / run.median)
            }
        }

        // All steps of each side, sorted once.
        let oursAll = ours.result, fp32All = fp32?.result, oneAll = one?.result
        func line(_ s: Session, _ r: TrainingMeasurement.Result, _ p: Precision) -> String {
            String(format: "%@ (%@) %@ B%d T%d, %d thread(s): median %.0f samples/s (best %.0f, middle 80 %% of steps %.0f–%.0f), %.1f GFLOP/s median, %d steps, loss %.3f → %.3f",
                          name, widths, p.rawValue, batch, time, threads, r.medianSamplesPerSecond, r.bestSamplesPerSecond,
                          r.samplesPerSecond(quantile: 0.9), r.samplesPerSecond(quantile: 0.1),
                          r.medianSamplesPerSecond * flops / 1e9, r.steps, s.lossFirst, s.lossLast)
        }
        print("ours:  " + line(ours, oursAll, precision))
        if let fp32, let fp32All {
            print("ours:  " + line(fp32, fp32All, .fp32))
            print(String(format: "ratio ours bf16/fp32: %@, %.2f× best steps", Spread(bf16Ratio).times,
                         oursAll.bestSamplesPerSecond / fp32All.bestSamplesPerSecond))
        }
        for (i, k) in peakKernels.enumerated() {
            print(String(format: "peak:  %@ fp32 FMA, one core, measured in the run: %@; ours is %@ of %d core(s)' peak",
                         k.variant.rawValue, Spread(peaks[i]).text("%.1f", " GFLOP/s"), Spread(fractions[i]).text("%.1f", " %"), threads))
        }
        if let other, let beside, let besideConfig {
            let r = other.result
            print(String(format: "beside: %@ (R%d D%d S%d H%d) %@, %d thread(s): median %.0f samples/s (best %.0f), %.1f GFLOP/s median; ours/its GFLOP/s %@",
                         beside, besideConfig.residualChannels, besideConfig.dilationChannels, besideConfig.skipChannels,
                         besideConfig.headChannels, precision.rawValue, threads, r.medianSamplesPerSecond, r.bestSamplesPerSecond,
                         r.medianSamplesPerSecond * otherFlops / 1e9, Spread(otherRatio).times))
            for (i, k) in peakKernels.enumerated() {
                // Our difference from it in points, round by round.
                let points = Spread(zip(fractions[i], otherFractions[i]).map { $0 - $1 })
                print(String(format: "beside: %@ peak: ours %@, %@'s %@: ours %.1f points %@ (rounds %+.1f to %+.1f)", k.variant.rawValue,
                             Spread(fractions[i]).text("%.1f", " %"), beside, Spread(otherFractions[i]).text("%.1f", " %"),
                             abs(points.median), points.median < 0 ? "below" : "above", points.values.first!, points.values.last!))
            }
        }
        if let oneAll {
            print(String(format: "ours:  1 thread (\(precision)), for comparison: median %.0f samples/s (best %.0f); %d threads = %@ one thread, %.2f× best steps",
                         oneAll.medianSamplesPerSecond, oneAll.bestSamplesPerSecond, threads, Spread(threadRatio).times,
                         oursAll.bestSamplesPerSecond / oneAll.bestSamplesPerSecond))
        }
        if !team.isEmpty {
            let each = team.map { String(format: "%.0f", $0.result.medianSamplesPerSecond) }.joined(separator: ", ")
            print(String(format: "ours:  %d workers at once (1 thread each): %@ samples/s each (median), %.0f in all = %@ one worker alone",
                         workers, each, Spread(workerTotals).median, Spread(workerRatio).times))
        }
        for (i, (p, _)) in peers.enumerated() {
            let runs = peerRuns[i], median = Spread(runs.map(\.median)).median, best = runs.map(\.best).max()!
            print(String(format: "peer:  torch %@ %@: median %.0f samples/s (best %.0f)%@", runs[0].version, p.rawValue, median, best,
                         rounds > 1 ? String(format: ", %d runs of %.1f s", rounds, slice) : ""))
            print(String(format: "ratio ours %@/peer %@: %@, %.2f× best steps", precision.rawValue, p.rawValue,
                         Spread(peerRatio[i]).times, oursAll.bestSamplesPerSecond / best))
        }
    }

    /// The peer for these widths, or nil without --peer-python; throws for a
    /// model the peer cannot build.
    func peerCommand(_ config: WaveNetConfig) throws -> PeerRun.Command? {
        guard let peerPython, let peerScript else { return nil }
        guard config.dilationChannels == config.residualChannels, config.kernelSize == 2, config.inputKernelSize == 2,
              config.classes == 256, config.dilations == WaveNetConfig.doublingDilations(stacks: 2, layersPerStack: 10) else {
            throw ValidationError("the PyTorch peer builds only 2 stacks of dilations 1…512, kernel 2, gate width = --R, 256 classes")
        }
        return PeerRun.Command(python: peerPython, script: peerScript, arguments: [
            "--threads", "\(threads)", "--batch", "\(batch)", "--T", "\(time)",
            "--R", "\(config.residualChannels)", "--S", "\(config.skipChannels)", "--H", "\(config.headChannels)",
        ])
    }
}

/// The median of per-round values and their range, for printing.
struct Spread {
    let values: [Double]
    init(_ values: [Double]) { self.values = values.sorted() }
    var median: Double { StatisticalTests.quantile(sorted: values, 0.5) }
    /// The median in `format` followed by `unit` ("1.84×"), and over several
    /// rounds their range ("1.84× (rounds 1.71–1.90×)").
    func text(_ format: String, _ unit: String) -> String {
        let m = String(format: format, median) + unit
        return values.count < 2 ? m : m + " (rounds " + String(format: format, values.first!) + "–" + String(format: format, values.last!) + unit + ")"
    }
    var times: String { text("%.2f", "×") }
}
