import Dispatch
import SeededRNG
import TensorModule

/// An unconditional WaveNet with its parameters, gradients and Adam state,
/// each in one arena, and reusable activation buffers.
///
/// Notation: B sequences, T positions per sequence, R/D/S/H channels and
/// V classes as in `WaveNetConfig`; L layers. Activations are (B, C, T)
/// (time contiguous); logits are (B·T, V) (classes contiguous).
///
/// Training input is a batch of code windows, each `T + 1` codes long: the
/// model reads codes[0 ..< T] and predicts codes[1 ... T]; position t sees
/// codes ≤ t only (causal, zero-padded before the window). The loss counts
/// positions `context ..< T`, so an evaluation can give every counted
/// prediction its full receptive field.
///
/// Not thread-safe: each worker thread owns its own model. Buffers are
/// allocated when the batch shape first appears (or changes); a training step
/// at a fixed shape allocates nothing.
public final class WaveNet {
    public let config: WaveNetConfig
    public let layout: ArenaLayout
    public let parameters: ParameterArena
    public let gradients: ParameterArena
    /// Adam's first and second moments, laid out like the parameters.
    public let adamM: ParameterArena
    public let adamV: ParameterArena
    public var adamConfig = AdamConfig()
    /// Optimizer steps taken so far (the model's own iteration clock).
    public internal(set) var step: Int = 0

    let p: Views   // parameter pointers
    let g: Views   // gradient pointers
    /// Gradient arenas of data-parallel threads 1 ..< threads (thread 0 uses
    /// `gradients`), summed into `gradients` after each backward pass.
    var threadGradients: [(arena: ParameterArena, views: Views)] = []

    /// Threads one step may use: the batch's sequences are split among them,
    /// each with its own scratch buffers and gradient arena, and their
    /// gradients are summed. 1 (the default) runs on the caller's thread;
    /// more only helps with a batch of at least that many windows. Results
    /// depend on the thread count only through the order of that sum.
    public var threads: Int = 1 {
        didSet { precondition(threads >= 1, "threads must be at least 1") }
    }
    var workspaces: [Workspace] = []

    /// A freshly initialised model: PyTorch's default initialisation
    /// (embedding N(0, 1); convolution weights and biases U(±1/√fan-in)), drawn
    /// from `seed`, so its training curve is comparable with the reference's.
    public init(config: WaveNetConfig, seed: UInt64) throws(WaveNetError) {
        try config.validate()
        self.config = config
        layout = Self.makeLayout(config)
        parameters = ParameterArena(layout: layout)
        gradients = ParameterArena(layout: layout)
        adamM = ParameterArena(layout: layout)
        adamV = ParameterArena(layout: layout)
        p = Views(arena: parameters, config: config)
        g = Views(arena: gradients, config: config)
        var rng = Xoshiro256(seed: seed)
        initialize(rng: &rng)
    }

    /// The number of trainable floats.
    public var parameterCount: Int {
        layout.entries.reduce(0) { $0 + $1.count }
    }

    static func makeLayout(_ c: WaveNetConfig) -> ArenaLayout {
        let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels
        var l = ArenaLayout()
        l.append("embedding", shape: [c.classes, R])
        l.append("input.weight", shape: [c.inputKernelSize, R, R])
        l.append("input.bias", shape: [R])
        for (i, _) in c.dilations.enumerated() {
            l.append("layer\(i).dilated.weight", shape: [c.kernelSize, 2 * D, R])
            l.append("layer\(i).dilated.bias", shape: [2 * D])
            l.append("layer\(i).residual.weight", shape: [1, R, D])
            l.append("layer\(i).residual.bias", shape: [R])
            l.append("layer\(i).skip.bias", shape: [S])
        }
        // Every layer's skip 1x1 (D → S) side by side: column block l is layer
        // l's weight, so the whole skip sum is one GEMM over the stacked z's.
        l.append("skip.weight", shape: [S, c.dilations.count * D])
        l.append("head1.weight", shape: [1, H, S])
        l.append("head1.bias", shape: [H])
        l.append("head2.weight", shape: [c.classes, H])
        l.append("head2.bias", shape: [c.classes])
        return l
    }

    /// Starts over from a fresh initialisation drawn from `seed` (as
    /// `init(config:seed:)` would), reusing this model's memory: parameters
    /// re-drawn, Adam state zeroed, step 0.
    public func reinitialize(seed: UInt64) {
        var rng = Xoshiro256(seed: seed)
        parameters.zero()
        adamM.zero()
        adamV.zero()
        step = 0
        initialize(rng: &rng)
    }

    func initialize(rng: inout Xoshiro256) {
        let c = config
        let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels
        Initializer.normal(p.embedding, count: c.classes * R, std: 1, rng: &rng)
        func uniform(_ w: UnsafeMutablePointer<Float>, _ count: Int, fanIn: Int) {
            let bound = 1 / Float(fanIn).squareRoot()
            for i in 0..<count { w[i] = (2 * rng.nextUnitFloat() - 1) * bound }
        }
        uniform(p.inputWeight, c.inputKernelSize * R * R, fanIn: R * c.inputKernelSize)
        uniform(p.inputBias, R, fanIn: R * c.inputKernelSize)
        for l in p.layers {
            uniform(l.dilatedWeight, c.kernelSize * 2 * D * R, fanIn: R * c.kernelSize)
            uniform(l.dilatedBias, 2 * D, fanIn: R * c.kernelSize)
            uniform(l.residualWeight, R * D, fanIn: D)
            uniform(l.residualBias, R, fanIn: D)
            uniform(l.skipBias, S, fanIn: D)
        }
        uniform(p.skipWeight, S * c.dilations.count * D, fanIn: D)
        uniform(p.head1Weight, H * S, fanIn: S)
        uniform(p.head1Bias, H, fanIn: S)
        uniform(p.head2Weight, c.classes * H, fanIn: H)
        uniform(p.head2Bias, c.classes, fanIn: H)
    }

    // MARK: Training and evaluation

    /// One training step on a batch of windows: forward, loss, backward, Adam.
    ///
    /// `windows` holds B windows of T + 1 codes each (row-major, (B, T + 1));
    /// every code must be in 0 ..< classes. Returns the mean loss over the
    /// counted positions in nats. The step counter advances first, so the
    /// first step is Adam's t = 1.
    @discardableResult
    public func trainStep(
        windows: UnsafePointer<Int32>, batch B: Int, time T: Int, context: Int = 0, learningRate: Float
    ) -> Double {
        let loss = lossAndGradient(windows: windows, batch: B, time: T, context: context)
        step += 1
        adamUpdate(params: parameters.baseAddress, m: adamM.baseAddress, v: adamV.baseAddress,
                   grads: gradients.baseAddress, count: layout.count, learningRate: learningRate, step: step, config: adamConfig)
        return loss
    }

    /// Forward and backward without an update: fills `gradients` (overwriting
    /// them) and returns the mean loss in nats over positions `context ..< T`.
    @discardableResult
    public func lossAndGradient(windows: UnsafePointer<Int32>, batch B: Int, time T: Int, context: Int = 0) -> Double {
        precondition(context >= 0 && context < T, "context \(context) must lie in 0..<\(T)")
        let ws = prepare(batch: B, time: T)
        let scale = 1 / Float(B * (T - context))
        let n = ws.scratches.count
        // Data parallel: thread t takes sequences t, t + n, t + 2n, … (with one
        // thread, all of them in order, on the caller's thread).
        while threadGradients.count < n - 1 {
            let arena = ParameterArena(layout: layout)
            threadGradients.append((arena, Views(arena: arena, config: config)))
        }
        parallelFor(n) { t in
            let views = t == 0 ? g : threadGradients[t - 1].views
            (t == 0 ? gradients : threadGradients[t - 1].arena).zero()
            let scratch = ws.scratches[t]
            scratch.skipBiasGradient.zero()
            var total = 0.0
            for b in stride(from: t, to: B, by: n) {
                let codes = windows + b * (T + 1)
                forwardSequence(ws, b, scratch, codes: codes)
                total += lossSequence(ws, b, codes: codes, context: context, gradientScale: scale)
                backwardSequence(ws, b, scratch, views, codes: codes)
            }
            // Every layer's skip bias gets the same gradient: the row sums of dskip.
            for l in views.layers { accumulate(l.skipBias, scratch.skipBiasGradient.baseAddress, count: config.skipChannels) }
            scratch.loss = total
        }
        for (arena, _) in threadGradients.prefix(n - 1) {
            accumulate(gradients.baseAddress, arena.baseAddress, count: layout.count)
        }
        return ws.scratches.reduce(0) { $0 + $1.loss } / Double(B * (T - context))
    }

    /// The summed loss in nats over positions `context ..< T` of each window,
    /// without touching gradients or Adam state. Returns (sum, count).
    public func evaluate(windows: UnsafePointer<Int32>, batch B: Int, time T: Int, context: Int) -> (nats: Double, count: Int) {
        let ws = prepare(batch: B, time: T)
        precondition(context >= 0 && context < T, "context \(context) must lie in 0..<\(T)")
        forward(ws, windows: windows)
        let V = config.classes
        var total = 0.0
        for b in 0..<B {
            let targets = windows + b * (T + 1) + 1
            total += softmaxCrossEntropyForward(logits: ws.logits.baseAddress + (b * T + context) * V, bias: p.head2Bias,
                                                targets: targets + context, rows: T - context, classes: V)
        }
        return (total, B * (T - context))
    }

    /// The logits (B·T, V) of the last forward pass, row b·T + t for window b,
    /// position t; valid until the next call.
    public func lastLogits() -> UnsafePointer<Float>? {
        workspaces.last.map { UnsafePointer($0.logits.baseAddress) }
    }

    /// Runs the forward pass only (for tests and generation checks): leaves
    /// the logits in `lastLogits()`.
    public func forwardOnly(windows: UnsafePointer<Int32>, batch B: Int, time T: Int) {
        let ws = prepare(batch: B, time: T)
        forward(ws, windows: windows)
        let V = config.classes
        for row in 0..<(B * T) { accumulate(ws.logits.baseAddress + row * V, p.head2Bias, count: V) }
    }

    /// The buffers for (B, T), allocated on first use. The two most recent
    /// shapes are kept, so alternating training and validation allocates
    /// nothing after the first round.
    func prepare(batch B: Int, time T: Int) -> Workspace {
        precondition(B >= 1 && T >= 1, "batch \(B) and time \(T) must be positive")
        if let i = workspaces.firstIndex(where: { $0.batch == B && $0.time == T && $0.scratches.count == min(threads, B) }) {
            let ws = workspaces[i]
            if i != workspaces.count - 1 { workspaces.remove(at: i); workspaces.append(ws) }
            return ws
        }
        let ws = Workspace(config: config, batch: B, time: T, threads: min(threads, B))
        if workspaces.count >= 2 { workspaces.removeFirst() }
        workspaces.append(ws)
        return ws
    }

    // MARK: Forward
    //
    // Sequences are processed one at a time (every kernel call has batch 1),
    // so each layer's z can sit in one (L·D, T) block per sequence and the
    // skip connections of all layers become a single GEMM with K = L·D
    // instead of L GEMMs with K = D.

    func forward(_ ws: Workspace, windows: UnsafePointer<Int32>) {
        for b in 0..<ws.batch { forwardSequence(ws, b, ws.scratches[0], codes: windows + b * (ws.time + 1)) }
    }

    func forwardSequence(_ ws: Workspace, _ b: Int, _ scratch: Scratch, codes: UnsafePointer<Int32>) {
        let c = config
        let T = ws.time, R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels
        let H = c.headChannels, V = c.classes, L = c.dilations.count
        // Embedding: emb[r, t] = E[code(t), r].
        let emb = ws.emb.baseAddress + b * R * T
        for t in 0..<T {
            let code = Int(codes[t])
            precondition(code >= 0 && code < V, "code \(code) out of range 0..<\(V)")
            let row = p.embedding + code * R
            for r in 0..<R { emb[r * T + t] = row[r] }
        }
        causalConvForward(out: ws.h(0, b), inp: emb, weight: p.inputWeight, bias: p.inputBias,
                          batch: 1, inChannels: R, outChannels: R, time: T, kernelSize: c.inputKernelSize, dilation: 1)
        for l in 0..<L {
            let lp = p.layers[l]
            // The dilated convolution's bias is added by the gated unit.
            causalConvForward(out: scratch.pre.baseAddress, inp: ws.h(l, b), weight: lp.dilatedWeight, bias: nil,
                              batch: 1, inChannels: R, outChannels: 2 * D, time: T, kernelSize: c.kernelSize, dilation: c.dilations[l])
            gatedForward(z: ws.z(l, b), th: ws.th(l, b), sg: ws.sg(l, b), pre: scratch.pre.baseAddress, bias: lp.dilatedBias,
                         batch: 1, channels: D, time: T)
            if l < L - 1 {
                // h_{l+1} = h_l + W_res·z + b_res (the last layer's is unused).
                let next = ws.h(l + 1, b)
                addRowBias(next, inp: ws.h(l, b), bias: lp.residualBias, rows: R, cols: T)
                blockedGemm(next, ldc: T, lp.residualWeight, lda: D, ws.z(l, b), ldb: T, m: R, n: T, k: D, beta: 1)
            }
        }
        // skip = Σ_l (W_skip_l·z_l + b_skip_l): one GEMM over the stacked z's;
        // the summed bias is added by the head's first ReLU.
        let skip = ws.skip.baseAddress + b * S * T
        blockedGemm(skip, ldc: T, p.skipWeight, lda: L * D, ws.z(0, b), ldb: T, m: S, n: T, k: L * D, beta: 0)
        // Head: ReLU → 1x1 (S → H) → ReLU → 1x1 (H → V), logits time-major.
        biasReLUForward(skip, skip, bias: scratch.skipBiasSum(p, config: c), rows: S, cols: T)
        let u = ws.u.baseAddress + b * H * T
        causalConvForward(out: u, inp: skip, weight: p.head1Weight, bias: nil,
                          batch: 1, inChannels: S, outChannels: H, time: T, kernelSize: 1, dilation: 1)
        biasReLUForward(u, u, bias: p.head1Bias, rows: H, cols: T)
        // logits_b (T, V) = u_bᵀ (T, H) · W2ᵀ (H, V); the output bias is added
        // by the softmax (or by `forwardOnly`).
        let logits = ws.logits.baseAddress + b * T * V
        gemm(logits, ldc: V, u, lda: T, transA: .transposed, p.head2Weight, ldb: H, transB: .transposed, m: T, n: V, k: H, beta: 0)
    }

    /// Loss over positions `context ..< T` of sequence b; leaves dL/dlogits in
    /// place of its logits (zero for positions before `context`).
    func lossSequence(_ ws: Workspace, _ b: Int, codes: UnsafePointer<Int32>, context: Int, gradientScale: Float) -> Double {
        let T = ws.time, V = config.classes
        let logits = ws.logits.baseAddress + b * T * V
        if context > 0 { logits.update(repeating: 0, count: context * V) }
        return softmaxCrossEntropyForwardBackward(
            dlogits: logits + context * V, logits: logits + context * V, bias: p.head2Bias, targets: codes + 1 + context,
            rows: T - context, classes: V, gradientScale: gradientScale)
    }

    // MARK: Backward

    func backwardSequence(_ ws: Workspace, _ b: Int, _ scratch: Scratch, _ g: Views, codes: UnsafePointer<Int32>) {
        let c = config
        let T = ws.time, R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels
        let H = c.headChannels, V = c.classes, L = c.dilations.count
        let dlogits = ws.logits.baseAddress + b * T * V
        let u = ws.u.baseAddress + b * H * T
        let skip = ws.skip.baseAddress + b * S * T
        // Head, second 1x1: logits = uᵀ W2ᵀ + b2.
        // dW2 (V, H) += dlogitsᵀ (V, T) · uᵀ (T, H)
        gemm(g.head2Weight, ldc: H, dlogits, lda: V, transA: .transposed, u, ldb: T, transB: .transposed, m: V, n: H, k: T, beta: 1)
        for t in 0..<T { accumulate(g.head2Bias, dlogits + t * V, count: V) }
        // du (H, T) = W2ᵀ (H, V) · dlogitsᵀ (V, T), then through the ReLU.
        gemm(scratch.du.baseAddress, ldc: T, p.head2Weight, lda: H, transA: .transposed, dlogits, ldb: V, transB: .transposed,
             m: H, n: T, k: V, beta: 0)
        reluBackward(scratch.du.baseAddress, dout: scratch.du.baseAddress, y: u, count: H * T)
        causalConvBackward(dinp: scratch.dskip.baseAddress, dweight: g.head1Weight, dbias: g.head1Bias, dout: scratch.du.baseAddress,
                           inp: skip, weight: p.head1Weight, batch: 1, inChannels: S, outChannels: H, time: T,
                           kernelSize: 1, dilation: 1, overwriteInputGradient: true)
        reluBackward(scratch.dskip.baseAddress, dout: scratch.dskip.baseAddress, y: skip, count: S * T)
        // Skip connections of all layers at once:
        //   dZ (L·D, T) = W_skipᵀ (L·D, S) · dskip (S, T);  dW_skip (S, L·D) += dskip · Zᵀ.
        blockedGemm(scratch.dz.baseAddress, ldc: T, p.skipWeight, lda: L * D, transA: .transposed, scratch.dskip.baseAddress, ldb: T,
             m: L * D, n: T, k: S, beta: 0)
        blockedGemm(g.skipWeight, ldc: L * D, scratch.dskip.baseAddress, lda: T, ws.z(0, b), ldb: T, transB: .transposed,
                    m: S, n: L * D, k: T, beta: 1)
        addRowSums(scratch.skipBiasGradient.baseAddress, scratch.dskip.baseAddress, rows: S, cols: T)
        // Layers, top down. dh holds dL/dh_{l+1}; the last layer's residual is
        // not computed, so it starts at zero.
        scratch.dh.zero()
        for l in (0..<L).reversed() {
            let lp = p.layers[l], lg = g.layers[l]
            let dz = scratch.dz.baseAddress + l * D * T
            if l < L - 1 {
                causalConvBackward(dinp: dz, dweight: lg.residualWeight, dbias: lg.residualBias, dout: scratch.dh.baseAddress,
                                   inp: ws.z(l, b), weight: lp.residualWeight, batch: 1, inChannels: D, outChannels: R, time: T,
                                   kernelSize: 1, dilation: 1)
            }
            gatedBackward(dpre: scratch.pre.baseAddress, dz: dz, th: ws.th(l, b), sg: ws.sg(l, b), batch: 1, channels: D, time: T)
            // dh_l = dh_{l+1} (residual path) + the dilated convolution's input gradient.
            causalConvBackward(dinp: scratch.dh.baseAddress, dweight: lg.dilatedWeight, dbias: lg.dilatedBias, dout: scratch.pre.baseAddress,
                               inp: ws.h(l, b), weight: lp.dilatedWeight, batch: 1, inChannels: R, outChannels: 2 * D,
                               time: T, kernelSize: c.kernelSize, dilation: c.dilations[l])
        }
        let emb = ws.emb.baseAddress + b * R * T
        causalConvBackward(dinp: scratch.demb.baseAddress, dweight: g.inputWeight, dbias: g.inputBias, dout: scratch.dh.baseAddress,
                           inp: emb, weight: p.inputWeight, batch: 1, inChannels: R, outChannels: R, time: T,
                           kernelSize: c.inputKernelSize, dilation: 1, overwriteInputGradient: true)
        let demb = scratch.demb.baseAddress
        for t in 0..<T {
            let row = g.embedding + Int(codes[t]) * R
            for r in 0..<R { row[r] += demb[r * T + t] }
        }
    }
}

// MARK: Parameter views and workspace

extension WaveNet {
    /// Pointers to each parameter (or gradient) tensor inside an arena.
    struct Views {
        struct Layer {
            var dilatedWeight, dilatedBias, residualWeight, residualBias, skipBias: UnsafeMutablePointer<Float>
        }
        var embedding, inputWeight, inputBias: UnsafeMutablePointer<Float>
        /// (S, L·D): layer l's skip weight is the column block l·D ..< (l+1)·D.
        var skipWeight: UnsafeMutablePointer<Float>
        var layers: [Layer]
        var head1Weight, head1Bias, head2Weight, head2Bias: UnsafeMutablePointer<Float>

        init(arena: ParameterArena, config: WaveNetConfig) {
            func ptr(_ name: String) -> UnsafeMutablePointer<Float> { arena.pointer(arena.layout.entry(name)!) }
            embedding = ptr("embedding")
            inputWeight = ptr("input.weight")
            inputBias = ptr("input.bias")
            layers = config.dilations.indices.map { i in
                Layer(dilatedWeight: ptr("layer\(i).dilated.weight"), dilatedBias: ptr("layer\(i).dilated.bias"),
                      residualWeight: ptr("layer\(i).residual.weight"), residualBias: ptr("layer\(i).residual.bias"),
                      skipBias: ptr("layer\(i).skip.bias"))
            }
            skipWeight = ptr("skip.weight")
            head1Weight = ptr("head1.weight")
            head1Bias = ptr("head1.bias")
            head2Weight = ptr("head2.weight")
            head2Bias = ptr("head2.bias")
        }
    }

    /// Activation buffers for one (B, T): kept for every sequence (the
    /// backward pass needs them), plus one `Scratch` per data-parallel thread.
    final class Workspace {
        let batch: Int, time: Int
        let layers: Int, residual: Int, gate: Int
        let emb: Tensor, hs: Tensor, zs: Tensor, ths: Tensor, sgs: Tensor
        let skip: Tensor, u: Tensor, logits: Tensor
        let scratches: [Scratch]

        init(config c: WaveNetConfig, batch B: Int, time T: Int, threads: Int) {
            batch = B
            time = T
            let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels
            let L = c.dilations.count
            layers = L; residual = R; gate = D
            emb = Tensor(shape: [B, R, T])
            hs = Tensor(shape: [B, L, R, T])
            zs = Tensor(shape: [B, L, D, T])
            ths = Tensor(shape: [B, L, D, T])
            sgs = Tensor(shape: [B, L, D, T])
            skip = Tensor(shape: [B, S, T])
            u = Tensor(shape: [B, H, T])
            logits = Tensor(shape: [B * T, c.classes])
            scratches = (0..<max(1, threads)).map { _ in Scratch(config: c, time: T) }
        }

        /// h_l of sequence b: (R, T).
        func h(_ l: Int, _ b: Int) -> UnsafeMutablePointer<Float> { hs.baseAddress + ((b * layers + l) * residual) * time }
        /// z_l of sequence b: (D, T); z_0 … z_{L−1} are consecutive rows.
        func z(_ l: Int, _ b: Int) -> UnsafeMutablePointer<Float> { zs.baseAddress + ((b * layers + l) * gate) * time }
        func th(_ l: Int, _ b: Int) -> UnsafeMutablePointer<Float> { ths.baseAddress + ((b * layers + l) * gate) * time }
        func sg(_ l: Int, _ b: Int) -> UnsafeMutablePointer<Float> { sgs.baseAddress + ((b * layers + l) * gate) * time }
    }

    /// Per-thread buffers reused for every sequence: the forward pass's
    /// pre-activations and the backward pass's activation gradients.
    final class Scratch {
        let pre: Tensor, du: Tensor, dskip: Tensor, dh: Tensor, dz: Tensor, demb: Tensor
        let biasSum: Tensor, skipBiasGradient: Tensor
        /// The summed loss (nats) of this thread's sequences in the last step.
        var loss = 0.0

        init(config c: WaveNetConfig, time T: Int) {
            let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels
            pre = Tensor(shape: [2 * D, T])
            du = Tensor(shape: [H, T])
            dskip = Tensor(shape: [S, T])
            dh = Tensor(shape: [R, T])
            dz = Tensor(shape: [c.dilations.count, D, T])
            demb = Tensor(shape: [R, T])
            biasSum = Tensor(shape: [S])
            skipBiasGradient = Tensor(shape: [S])
        }

        /// Σ_l b_skip_l, the bias of the fused skip GEMM (recomputed per call:
        /// the parameters change every step).
        func skipBiasSum(_ p: Views, config c: WaveNetConfig) -> UnsafePointer<Float> {
            biasSum.zero()
            for l in p.layers { accumulate(biasSum.baseAddress, l.skipBias, count: c.skipChannels) }
            return UnsafePointer(biasSum.baseAddress)
        }
    }
}

/// Errors a user of the WaveNet module can cause.
public enum WaveNetError: Error, Equatable, CustomStringConvertible {
    case invalidConfig(String)
    case invalidSchedule(String)
    case checkpoint(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidConfig(let what): return "invalid WaveNet configuration: \(what)"
        case .invalidSchedule(let what): return "invalid learning-rate schedule: \(what)"
        case let .checkpoint(path, reason): return "checkpoint \(path): \(reason)"
        }
    }
}

/// Runs `body(0)`, …, `body(n − 1)` on up to n threads and waits for all
/// (`body(0)` on the caller's thread when n is 1).
/// Each call must touch only data its index owns (here: its sequences'
/// activations, its scratch buffers and its gradient arena); Swift cannot
/// check that, hence the unchecked wrapper.
func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n == 1 { return body(0) }
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: n) { shared.value($0) }
    }
}

struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
