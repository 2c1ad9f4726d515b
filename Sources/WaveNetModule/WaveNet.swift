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
    var workspace: Workspace?

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
            l.append("layer\(i).skip.weight", shape: [1, S, D])
            l.append("layer\(i).skip.bias", shape: [S])
        }
        l.append("head1.weight", shape: [1, H, S])
        l.append("head1.bias", shape: [H])
        l.append("head2.weight", shape: [c.classes, H])
        l.append("head2.bias", shape: [c.classes])
        return l
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
            uniform(l.skipWeight, S * D, fanIn: D)
            uniform(l.skipBias, S, fanIn: D)
        }
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
        let ws = prepare(batch: B, time: T)
        forward(ws, windows: windows)
        let scale = 1 / Float(B * (T - context))
        let total = lossForward(ws, windows: windows, context: context, gradientScale: scale)
        backward(ws, windows: windows)
        return total / Double(B * (T - context))
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
            total += softmaxCrossEntropyForward(logits: ws.logits.baseAddress + (b * T + context) * V, targets: targets + context,
                                                rows: T - context, classes: V)
        }
        return (total, B * (T - context))
    }

    /// The logits (B·T, V) of the last forward pass, row b·T + t for window b,
    /// position t; valid until the next call.
    public func lastLogits() -> UnsafePointer<Float>? {
        workspace.map { UnsafePointer($0.logits.baseAddress) }
    }

    /// Runs the forward pass only (for tests and generation checks): leaves
    /// the logits in `lastLogits()`.
    public func forwardOnly(windows: UnsafePointer<Int32>, batch B: Int, time T: Int) {
        let ws = prepare(batch: B, time: T)
        forward(ws, windows: windows)
    }

    func prepare(batch B: Int, time T: Int) -> Workspace {
        precondition(B >= 1 && T >= 1, "batch \(B) and time \(T) must be positive")
        if let ws = workspace, ws.batch == B, ws.time == T { return ws }
        let ws = Workspace(config: config, batch: B, time: T)
        workspace = ws
        return ws
    }

    // MARK: Forward

    func forward(_ ws: Workspace, windows: UnsafePointer<Int32>) {
        let c = config
        let B = ws.batch, T = ws.time, R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels
        let H = c.headChannels, V = c.classes, L = c.dilations.count
        // Embedding: emb[b, r, t] = E[code(b, t), r].
        for b in 0..<B {
            let codes = windows + b * (T + 1)
            let out = ws.emb.baseAddress + b * R * T
            for t in 0..<T {
                let code = Int(codes[t])
                precondition(code >= 0 && code < V, "code \(code) out of range 0..<\(V)")
                let row = p.embedding + code * R
                for r in 0..<R { out[r * T + t] = row[r] }
            }
        }
        causalConvForward(out: ws.h[0].baseAddress, inp: ws.emb.baseAddress, weight: p.inputWeight, bias: p.inputBias,
                          batch: B, inChannels: R, outChannels: R, time: T, kernelSize: c.inputKernelSize, dilation: 1)
        for l in 0..<L {
            let lp = p.layers[l]
            causalConvForward(out: ws.pre.baseAddress, inp: ws.h[l].baseAddress, weight: lp.dilatedWeight, bias: lp.dilatedBias,
                              batch: B, inChannels: R, outChannels: 2 * D, time: T, kernelSize: c.kernelSize, dilation: c.dilations[l])
            gatedForward(z: ws.z[l].baseAddress, th: ws.th[l].baseAddress, sg: ws.sg[l].baseAddress, pre: ws.pre.baseAddress,
                         batch: B, channels: D, time: T)
            causalConvForward(out: ws.skip.baseAddress, inp: ws.z[l].baseAddress, weight: lp.skipWeight, bias: lp.skipBias,
                              batch: B, inChannels: D, outChannels: S, time: T, kernelSize: 1, dilation: 1, accumulate: l > 0)
            if l < L - 1 {
                ws.h[l + 1].copy(from: ws.h[l])
                causalConvForward(out: ws.h[l + 1].baseAddress, inp: ws.z[l].baseAddress, weight: lp.residualWeight,
                                  bias: lp.residualBias, batch: B, inChannels: D, outChannels: R, time: T, kernelSize: 1,
                                  dilation: 1, accumulate: true)
            }
        }
        // Head: ReLU → 1x1 (S → H) → ReLU → 1x1 (H → V), logits time-major.
        reluForward(ws.skip.baseAddress, ws.skip.baseAddress, count: B * S * T)
        causalConvForward(out: ws.u.baseAddress, inp: ws.skip.baseAddress, weight: p.head1Weight, bias: p.head1Bias,
                          batch: B, inChannels: S, outChannels: H, time: T, kernelSize: 1, dilation: 1)
        reluForward(ws.u.baseAddress, ws.u.baseAddress, count: B * H * T)
        for b in 0..<B {
            let logits = ws.logits.baseAddress + b * T * V
            for t in 0..<T { (logits + t * V).update(from: p.head2Bias, count: V) }
            // logits_b (T, V) += u_bᵀ (T, H) · W2ᵀ (H, V)
            gemm(logits, ldc: V, ws.u.baseAddress + b * H * T, lda: T, transA: .transposed,
                 p.head2Weight, ldb: H, transB: .transposed, m: T, n: V, k: H, beta: 1)
        }
    }

    /// Loss over positions `context ..< T`; leaves dL/dlogits in place of the
    /// logits (zero for positions before `context`).
    func lossForward(_ ws: Workspace, windows: UnsafePointer<Int32>, context: Int, gradientScale: Float) -> Double {
        let B = ws.batch, T = ws.time, V = config.classes
        precondition(context >= 0 && context < T, "context \(context) must lie in 0..<\(T)")
        var total = 0.0
        for b in 0..<B {
            let logits = ws.logits.baseAddress + b * T * V
            let targets = windows + b * (T + 1) + 1
            if context > 0 { logits.update(repeating: 0, count: context * V) }
            total += softmaxCrossEntropyForwardBackward(
                dlogits: logits + context * V, logits: logits + context * V, targets: targets + context,
                rows: T - context, classes: V, gradientScale: gradientScale)
        }
        return total
    }

    // MARK: Backward

    func backward(_ ws: Workspace, windows: UnsafePointer<Int32>) {
        let c = config
        let B = ws.batch, T = ws.time, R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels
        let H = c.headChannels, V = c.classes, L = c.dilations.count
        gradients.zero()
        // Head, second 1x1: logits_b = u_bᵀ W2ᵀ + b2.
        for b in 0..<B {
            let dlogits = ws.logits.baseAddress + b * T * V
            let u = ws.u.baseAddress + b * H * T
            // dW2 (V, H) += dlogits_bᵀ (V, T) · u_bᵀ (T, H)
            gemm(g.head2Weight, ldc: H, dlogits, lda: V, transA: .transposed, u, ldb: T, transB: .transposed,
                 m: V, n: H, k: T, beta: 1)
            for t in 0..<T { accumulate(g.head2Bias, dlogits + t * V, count: V) }
            // du_b (H, T) = W2ᵀ (H, V) · dlogits_bᵀ (V, T)
            gemm(ws.du.baseAddress + b * H * T, ldc: T, p.head2Weight, lda: H, transA: .transposed,
                 dlogits, ldb: V, transB: .transposed, m: H, n: T, k: V, beta: 0)
        }
        reluBackward(ws.du.baseAddress, dout: ws.du.baseAddress, y: ws.u.baseAddress, count: B * H * T)
        causalConvBackward(dinp: ws.dskip.baseAddress, dweight: g.head1Weight, dbias: g.head1Bias, dout: ws.du.baseAddress,
                           inp: ws.skip.baseAddress, weight: p.head1Weight, batch: B, inChannels: S, outChannels: H, time: T,
                           kernelSize: 1, dilation: 1, overwriteInputGradient: true)
        reluBackward(ws.dskip.baseAddress, dout: ws.dskip.baseAddress, y: ws.skip.baseAddress, count: B * S * T)
        // Layers, top down. dh holds dL/dh_{l+1}; the last layer's residual is
        // not computed, so it starts at zero.
        ws.dh.zero()
        for l in (0..<L).reversed() {
            let lp = p.layers[l], lg = g.layers[l]
            causalConvBackward(dinp: ws.dz.baseAddress, dweight: lg.skipWeight, dbias: lg.skipBias, dout: ws.dskip.baseAddress,
                               inp: ws.z[l].baseAddress, weight: lp.skipWeight, batch: B, inChannels: D, outChannels: S, time: T,
                               kernelSize: 1, dilation: 1, overwriteInputGradient: true)
            if l < L - 1 {
                causalConvBackward(dinp: ws.dz.baseAddress, dweight: lg.residualWeight, dbias: lg.residualBias,
                                   dout: ws.dh.baseAddress, inp: ws.z[l].baseAddress, weight: lp.residualWeight,
                                   batch: B, inChannels: D, outChannels: R, time: T, kernelSize: 1, dilation: 1)
            }
            gatedBackward(dpre: ws.pre.baseAddress, dz: ws.dz.baseAddress, th: ws.th[l].baseAddress, sg: ws.sg[l].baseAddress,
                          batch: B, channels: D, time: T)
            // dh_l = dh_{l+1} (residual path) + the dilated convolution's input gradient.
            causalConvBackward(dinp: ws.dh.baseAddress, dweight: lg.dilatedWeight, dbias: lg.dilatedBias, dout: ws.pre.baseAddress,
                               inp: ws.h[l].baseAddress, weight: lp.dilatedWeight, batch: B, inChannels: R, outChannels: 2 * D,
                               time: T, kernelSize: c.kernelSize, dilation: c.dilations[l])
        }
        causalConvBackward(dinp: ws.demb.baseAddress, dweight: g.inputWeight, dbias: g.inputBias, dout: ws.dh.baseAddress,
                           inp: ws.emb.baseAddress, weight: p.inputWeight, batch: B, inChannels: R, outChannels: R, time: T,
                           kernelSize: c.inputKernelSize, dilation: 1, overwriteInputGradient: true)
        for b in 0..<B {
            let codes = windows + b * (T + 1)
            let demb = ws.demb.baseAddress + b * R * T
            for t in 0..<T {
                let row = g.embedding + Int(codes[t]) * R
                for r in 0..<R { row[r] += demb[r * T + t] }
            }
        }
    }
}

// MARK: Parameter views and workspace

extension WaveNet {
    /// Pointers to each parameter (or gradient) tensor inside an arena.
    struct Views {
        struct Layer {
            var dilatedWeight, dilatedBias, residualWeight, residualBias, skipWeight, skipBias: UnsafeMutablePointer<Float>
        }
        var embedding, inputWeight, inputBias: UnsafeMutablePointer<Float>
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
                      skipWeight: ptr("layer\(i).skip.weight"), skipBias: ptr("layer\(i).skip.bias"))
            }
            head1Weight = ptr("head1.weight")
            head1Bias = ptr("head1.bias")
            head2Weight = ptr("head2.weight")
            head2Bias = ptr("head2.bias")
        }
    }

    /// Activation and activation-gradient buffers for one (B, T).
    final class Workspace {
        let batch: Int, time: Int
        let emb: Tensor, h: [Tensor], z: [Tensor], th: [Tensor], sg: [Tensor]
        let pre: Tensor, skip: Tensor, u: Tensor, logits: Tensor
        let du: Tensor, dskip: Tensor, dh: Tensor, dz: Tensor, demb: Tensor

        init(config c: WaveNetConfig, batch B: Int, time T: Int) {
            batch = B
            time = T
            let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels
            let L = c.dilations.count
            emb = Tensor(shape: [B, R, T])
            h = (0..<L).map { _ in Tensor(shape: [B, R, T]) }
            z = (0..<L).map { _ in Tensor(shape: [B, D, T]) }
            th = (0..<L).map { _ in Tensor(shape: [B, D, T]) }
            sg = (0..<L).map { _ in Tensor(shape: [B, D, T]) }
            pre = Tensor(shape: [B, 2 * D, T])
            skip = Tensor(shape: [B, S, T])
            u = Tensor(shape: [B, H, T])
            logits = Tensor(shape: [B * T, c.classes])
            du = Tensor(shape: [B, H, T])
            dskip = Tensor(shape: [B, S, T])
            dh = Tensor(shape: [B, R, T])
            dz = Tensor(shape: [B, D, T])
            demb = Tensor(shape: [B, R, T])
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
