import ArgumentParser
import PBTWaveTensor
import PBTWaveModel

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Each of WaveNet's products through our kernels against the same product through OpenBLAS.",
        discussion: """
        One line per shape of a training step (compact model unless --model-config): our kernel variant \
        (PBTWAVE_ISA, else the widest the CPU has) against the `blas` variant, which runs the same \
        operation as cblas_sgemm calls (OpenBLAS at one thread). Rounds alternate and the best of each \
        counts, so a busy machine slows both alike.
        """
    )

    @OptionGroup var model: BenchModelOptions
    @Option(parsing: .unconditional, help: "Time steps T of each product.") var time: Int = 8192
    @Option(parsing: .unconditional, help: "Alternating rounds per comparison (the best round counts).") var repetitions: Int = 5

    func validate() throws {
        guard repetitions >= 1, time >= 64 else { throw ValidationError("--repetitions must be at least 1 and --time at least 64") }
    }

    func run() throws {
        let ours = try benchKernels()
        let blas = try Kernels(.blas)
        BLAS.setThreads(1)
        let c = try model.config()
        try c.validate()
        // The largest shape's buffers, before any is allocated (found by a
        // user: --time 1e11 aborted in the allocator, 2^62 trapped on overflow).
        let shapes = KernelShape.all(c, time: time)
        try MemoryCheck.require(shapes.map(\.bytes).max() ?? 0, for: "timing the products at --time \(time)",
                                advice: "give a smaller --time")
        print("ours: \(ours) kernels; OpenBLAS: \(BLAS.configuration) (core \(BLAS.coreName), 1 thread)")
        print(pad("shape", 46) + pad("ours GFLOP/s", 14) + pad("OpenBLAS", 10) + "ours/OpenBLAS")
        var worst = Double.infinity
        for shape in shapes {
            let (o, b) = shape.compare(ours, blas, repetitions: repetitions)
            worst = min(worst, b / o)
            print(pad(shape.label, 46) + pad(String(format: "%.1f", shape.flops / o / 1e9), 14)
                  + pad(String(format: "%.1f", shape.flops / b / 1e9), 10) + String(format: "%.2f×", b / o))
        }
        print(String(format: "worst ratio: %.2f× (goal: every kernel at least as fast as OpenBLAS, ≥ 1.00×)", worst))
    }
}

/// One of WaveNet's products, with buffers filled deterministically.
struct KernelShape {
    enum Operation { case forward(relu: Bool, adding: Bool), gated, backwardInput, backwardWeight }
    var label: String
    var operation: Operation
    var cin: Int, cout: Int, k: Int, dilation: Int, time: Int
    var flops: Double { 2 * Double(k * cin * cout * time) }
    /// What `compare` allocates (its tensors and the packed weights, twice
    /// the weights' size at most), in bytes; Int.max past that (counted in
    /// Double, which cannot overflow).
    var bytes: Int {
        let floats = 4 * Double(k) * Double(cin) * Double(cout) + 2 * Double(cout) + Double(cin + cout + cout / 2 + 1) * Double(time)
        return 4 * floats < Double(Int.max) ? Int(4 * floats) : Int.max
    }

    static func all(_ c: WaveNetConfig, time T: Int) -> [KernelShape] {
        let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels, V = c.classes
        // The dilated products at the model's median dilation (the label
        // says which): the dilation moves only where the second tap reads.
        let L = c.dilations.count, K = c.kernelSize, d = c.dilations.sorted()[c.dilations.count / 2]
        func three(_ name: String, cin: Int, cout: Int, k: Int = 1, dilation: Int = 1, forward: Operation) -> [KernelShape] {
            let dims = "\(cin)→\(cout)" + (k > 1 ? " K\(k) d\(dilation)" : "")
            return [KernelShape(label: "\(name) forward \(dims)", operation: forward, cin: cin, cout: cout, k: k, dilation: dilation, time: T),
                    KernelShape(label: "\(name) input grad \(dims)", operation: .backwardInput, cin: cin, cout: cout, k: k, dilation: dilation, time: T),
                    KernelShape(label: "\(name) weight grad \(dims)", operation: .backwardWeight, cin: cin, cout: cout, k: k, dilation: dilation, time: T)]
        }
        return three("dilated+gate", cin: R, cout: 2 * D, k: K, dilation: d, forward: .gated)
            + three("residual", cin: D, cout: R, forward: .forward(relu: false, adding: true))
            + three("skip (all layers)", cin: L * D, cout: S, forward: .forward(relu: true, adding: false))
            + three("head 1", cin: S, cout: H, forward: .forward(relu: true, adding: false))
            + three("head 2", cin: H, cout: V, forward: .forward(relu: false, adding: false))
            + three("input", cin: R, cout: R, k: c.inputKernelSize, dilation: 1, forward: .forward(relu: false, adding: false))
    }

    /// Best seconds per call with `a`'s kernels and with `b`'s.
    func compare(_ a: Kernels, _ b: Kernels, repetitions: Int) -> (Double, Double) {
        let gated: Bool = if case .gated = operation { true } else { false }
        let w = PackedConv(kernelSize: k, inChannels: cin, outChannels: cout, gated: gated)
        let weight = Tensor(shape: [k * cout * cin]), bias = Tensor(shape: [cout])
        let inp = Tensor(shape: [time, cin]), out = Tensor(shape: [time, cout]), z = Tensor(shape: [time, cout / 2 + 1])
        let dweight = Tensor(shape: [k * cout * cin]), dbias = Tensor(shape: [cout])
        for t in [weight, bias, inp, out] { fill(t) }
        weight.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { w.pack(weight: wp.baseAddress!, bias: $0.baseAddress!) } }
        func call(_ kernels: Kernels) -> () -> Void {
            switch operation {
            case let .forward(relu, adding):
                return { kernels.convForward(out: out.baseAddress, outStride: cout, adding: adding ? UnsafePointer(out.baseAddress) : nil,
                                             addStride: cout, inp: inp.baseAddress, inStride: cin, weight: w, rows: 0..<time,
                                             dilation: dilation, relu: relu) }
            case .gated:
                return { kernels.convGatedForward(gate: out.baseAddress, gateStride: cout, z: z.baseAddress, zStride: cout / 2,
                                                  inp: inp.baseAddress, inStride: cin, weight: w, rows: 0..<time, dilation: dilation) }
            case .backwardInput:
                return { kernels.convBackwardInput(dinp: inp.baseAddress, dinpStride: cin, accumulate: false, dout: out.baseAddress,
                                                   doutStride: cout, weight: w, rows: 0..<time, time: time, dilation: dilation) }
            case .backwardWeight:
                return { kernels.convBackwardWeight(dweight: dweight.baseAddress, dbias: dbias.baseAddress, dout: out.baseAddress,
                                                    doutStride: cout, inp: inp.baseAddress, inStride: cin, rows: 0..<time,
                                                    inChannels: cin, outChannels: cout, kernelSize: k, dilation: dilation) }
            }
        }
        return BenchClock.alternate(call(a), call(b), repetitions: repetitions)
    }

    private func fill(_ t: Tensor) {
        for i in 0..<t.count { t.baseAddress[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
    }
}
