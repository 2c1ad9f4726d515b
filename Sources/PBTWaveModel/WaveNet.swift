import Foundation
import PBTSeededRNG
import PBTWaveTensor

/// An unconditional WaveNet with its parameters, gradients and Adam state,
/// each in one arena, and reusable activation buffers.
///
/// Notation: B sequences, T positions per sequence, R/D/S/H channels and
/// V classes as in `WaveNetConfig`; L layers. Activations are time-major,
/// (B, T, C): one position's channels are contiguous, as in llm.c, so every
/// product of the model broadcasts activations against vectors of weights
/// (see PBTWaveTensor's Convolution.swift). Logits are (B·T, V).
///
/// Training input is a batch of code windows, each `T + 1` codes long: the
/// model reads codes[0 ..< T] and predicts codes[1 ... T]; position t sees
/// codes ≤ t only (causal, zero-padded before the window). The loss counts
/// positions `context ..< T`, so an evaluation can give every counted
/// prediction its full receptive field.
///
/// Not thread-safe: each worker thread owns its own model (which may itself
/// use `threads` threads for a step). Buffers are allocated when the batch
/// shape first appears (or changes); a training step at a fixed shape
/// allocates nothing.
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

    /// The kernel variant every pass runs (default: `Kernels.default`, i.e.
    /// `PBTWAVE_ISA` or the widest instruction set of this CPU).
    public var kernels: Kernels = .default
    /// Rows per time tile of the wavefront (see `tiles(time:)`): by default
    /// `defaultTileRows(for: precision)`; tests set it small to run the
    /// wavefront on short windows.
    public var tileRows: Int {
        get { tileRowsSet ?? Self.defaultTileRows(for: precision) }
        set {
            precondition(newValue >= 1, "tileRows must be at least 1")
            tileRowsSet = newValue
        }
    }
    private var tileRowsSet: Int?

    /// The operands of the products: `fp32`, or `bf16` (mixed precision).
    ///
    /// In bf16, the dilated convolutions, the residual and skip 1×1s and the
    /// head's two 1×1s, forward, input gradients and weight gradients, take
    /// operands rounded to bf16 and accumulate in fp32. What stays fp32: the
    /// parameters, their gradients, Adam, the gated unit, the ReLUs, the
    /// softmax and the loss, the embedding and the input convolution (2·R² of
    /// the ~166k multiply-adds a sample of the compact model). Each product
    /// reads a bf16 copy of its input, rounded once by the layer that made it
    /// (h, z, dpre, dh, dskip, and in the head s, u, dlogits, du: the
    /// softmax writes dlogits in both, and the input gradients that feed a
    /// ReLU apply its backward and round in one epilogue); the weight
    /// gradients read the same copies (interleaving two rows into the time
    /// pairs they need; their bias gradients sum the bf16 values). z and dpre
    /// are kept only in bf16; h and dh stay fp32 as well (the residual sums
    /// accumulate in fp32), h only per time tile (the next layer's residual
    /// sum is its only fp32 reader), as do s, u, the logits and their gradients. The gated unit
    /// runs in fp32 and stores, instead of its fp32 gate values, its slopes
    /// ∂z/∂a, ∂z/∂g in bf16 (dpre = dz·slopes): half the bytes, and no
    /// cancellation in 1 − tanh² or 1 − σ after rounding.
    /// Changing it drops the packed weights and buffers (the next pass makes them).
    public var precision: Precision = .fp32 {
        didSet {
            if precision != oldValue {
                packs = Packs(config: config, precision: precision)
                workspaces = []
            }
        }
    }

    /// Threads one step uses. They share the time axis of every sequence (so
    /// even one window keeps every thread busy): the layers' time tiles in
    /// turn (see `tiles(time:)`), waiting only for the rows of other tiles
    /// that a dilated convolution reads, and contiguous parts for the rest.
    /// Each keeps its own weight gradients, summed after the pass. 1 (the
    /// default) runs on the caller's thread. Results depend on the thread
    /// count only through the order of sums.
    public var threads: Int = 1 {
        didSet {
            precondition(threads >= 1, "threads must be at least 1")
            if team?.size != threads { team = nil }
        }
    }
    var team: ThreadTeam?

    let p: Views   // parameter pointers
    let g: Views   // gradient pointers
    /// Gradient arenas of threads 1 ..< threads (thread 0 uses `gradients`),
    /// summed into `gradients` after each backward pass.
    var threadGradients: [(arena: ParameterArena, views: Views)] = []
    /// The weights as the kernels read them, packed before every pass.
    var packs: Packs
    /// The job the thread team runs (kept, so that a step allocates nothing).
    lazy var pass = Pass(model: self)
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
        packs = Packs(config: config, precision: .fp32)
        var rng = Xoshiro256(seed: seed)
        initialize(rng: &rng)
    }

    /// A one-line warning when `precision` is bf16 and the kernels have no
    /// faster bf16 dot product than fp32's: no AVX512_BF16 (the products
    /// then run the emulation, the same products, several times slower than
    /// fp32), or AVX-512 kernels whose start-up probe found two FMAs faster
    /// than `vdpbf16ps` (as on Intel's Sapphire Rapids).
    public var precisionWarning: String? {
        // The blas variant has no bf16 products of OpenBLAS's (found by a helper: nothing said so).
        if precision == .bf16, kernels.variant == .blas {
            return "note: PBTWAVE_ISA=blas: bf16 products have no OpenBLAS path; they run on our \(kernels.instructionSet) kernels "
                + "(as the widest variant's, PBTWAVE_BF16_DOT aside), and only fp32 products go through OpenBLAS"
        }
        guard precision == .bf16, !kernels.nativeBF16 else { return nil }
        if kernels.variant == .avx512, Kernels.bf16DotAvailable {
            // The start-up probe (or PBTWAVE_BF16_DOT=fma) chose two FMAs:
            // bf16 then only adds its roundings to fp32's work.
            return "note: on this CPU two FMAs \(Kernels.bf16DotForced ? "were chosen (PBTWAVE_BF16_DOT=fma)" : "beat vdpbf16ps (measured at start)"); "
                + "bf16 computes its products with them, which gives the same products but is slower than fp32"
        }
        return "warning: the \(kernels.instructionSet) kernels have no bf16 dot product (AVX512_BF16); bf16 runs their emulation, "
            + "which gives the same products (bit for bit) but is slower than fp32"
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
        // l's weight (the kernels take it as L taps, see `Packs.skipTaps`).
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
        kernels.adamUpdate(params: parameters.baseAddress, m: adamM.baseAddress, v: adamV.baseAddress,
                           grads: gradients.baseAddress, count: layout.count, learningRate: learningRate, step: step, config: adamConfig)
        return loss
    }

    /// Forward and backward without an update: fills `gradients` (overwriting
    /// them) and returns the mean loss in nats over positions `context ..< T`.
    @discardableResult
    public func lossAndGradient(windows: UnsafePointer<Int32>, batch B: Int, time T: Int, context: Int = 0) -> Double {
        precondition(context >= 0 && context < T, "context \(context) must lie in 0..<\(T)")
        checkCodes(windows, count: B * (T + 1))
        let ws = prepare(batch: B, time: T, training: true)
        packs.pack(p, config: config)
        while threadGradients.count < threads - 1 {
            let arena = ParameterArena(layout: layout)
            threadGradients.append((arena, Views(arena: arena, config: config)))
        }
        pass.set(.train, ws, windows: windows, context: context, gradientScale: 1 / Float(B * (T - context)))
        parallel()
        for (arena, _) in threadGradients.prefix(threads - 1) {
            accumulate(gradients.baseAddress, arena.baseAddress, count: layout.count)
        }
        return ws.members.prefix(threads).reduce(0) { $0 + $1.loss } / Double(B * (T - context))
    }

    /// The summed loss in nats over positions `context ..< T` of each window,
    /// without touching gradients or Adam state. Returns (sum, count).
    public func evaluate(windows: UnsafePointer<Int32>, batch B: Int, time T: Int, context: Int) -> (nats: Double, count: Int) {
        precondition(context >= 0 && context < T, "context \(context) must lie in 0..<\(T)")
        checkCodes(windows, count: B * (T + 1))
        let ws = prepare(batch: B, time: T, training: false)
        packs.pack(p, config: config)
        pass.set(.evaluate, ws, windows: windows, context: context, gradientScale: 0)
        parallel()
        return (ws.members.prefix(threads).reduce(0) { $0 + $1.loss }, B * (T - context))
    }

    /// The logits (B·T, V) of the last forward pass, output bias included, row
    /// b·T + t for window b, position t; valid until the next call.
    public func lastLogits() -> UnsafePointer<Float>? {
        workspaces.last.map { UnsafePointer($0.logits.baseAddress) }
    }

    /// Runs the forward pass only (for tests and generation checks): leaves
    /// the logits in `lastLogits()`.
    public func forwardOnly(windows: UnsafePointer<Int32>, batch B: Int, time T: Int) {
        checkCodes(windows, count: B * (T + 1))
        let ws = prepare(batch: B, time: T, training: false)
        packs.pack(p, config: config)
        pass.set(.forward, ws, windows: windows, context: 0, gradientScale: 0)
        parallel()
    }

    func checkCodes(_ windows: UnsafePointer<Int32>, count: Int) {
        let V = Int32(config.classes)
        for i in 0..<count {
            precondition(windows[i] >= 0 && windows[i] < V, "code \(windows[i]) out of range 0..<\(V)")
        }
    }

    /// The buffers for (B, T), allocated on first use (the backward pass's
    /// on the first training step). The two most recent shapes are kept, so
    /// alternating training and validation allocates nothing after the first
    /// round.
    func prepare(batch B: Int, time T: Int, training: Bool) -> Workspace {
        precondition(B >= 1 && T >= 1, "batch \(B) and time \(T) must be positive")
        let ws: Workspace
        if let i = workspaces.firstIndex(where: { $0.batch == B && $0.time == T }) {
            ws = workspaces[i]
            if i != workspaces.count - 1 { workspaces.remove(at: i); workspaces.append(ws) }
        } else {
            ws = Workspace(config: config, batch: B, time: T, precision: precision)
            if workspaces.count >= 2 { workspaces.removeFirst() }
            workspaces.append(ws)
        }
        while ws.members.count < threads { ws.members.append(Scratch(config: config, precision: precision)) }
        if training && ws.backward == nil { ws.backward = Gradients(config: config, batch: B, time: T, precision: precision) }
        let all = tiles(time: T)
        if threads > 1 && (ws.progress?.tiles ?? 0) < all.count { ws.progress = WavefrontProgress(tiles: all.count) }
        if precision == .bf16 { ws.reserveResidualTiles(members: threads, rows: all.lazy.map(\.count).max() ?? 0) }
        return ws
    }

    /// Runs `pass` on every member of the thread team (on the caller's thread
    /// alone with one thread).
    func parallel() {
        if threads == 1 { return pass.run(member: 0) }
        if team == nil { team = ThreadTeam(threads: threads) }
        team!.run(pass)
    }

    /// One member's share of `pass`: its rows of every sequence.
    func run(_ pass: Pass, member: Int) {
        let ws = pass.workspace!, windows = pass.windows!
        let rows = rowsOf(member, time: ws.time)
        let scratch = ws.members[member]
        switch pass.kind {
        case .train:
            let views = member == 0 ? g : threadGradients[member - 1].views
            (member == 0 ? gradients : threadGradients[member - 1].arena).zero()
            scratch.skipBiasGradient.zero()
            forward(ws, windows: windows, rows: rows, member: member)
            scratch.loss = head(ws, windows: windows, rows: rows, context: pass.context, gradientScale: pass.gradientScale,
                                views: views, scratch: scratch)
            backward(ws, windows: windows, rows: rows, views: views, member: member)
            // Every layer's skip bias gets the same gradient: the column sums of dskip.
            for l in views.layers { accumulate(l.skipBias, scratch.skipBiasGradient.baseAddress, count: config.skipChannels) }
        case .evaluate:
            forward(ws, windows: windows, rows: rows, member: member)
            scratch.loss = head(ws, windows: windows, rows: rows, context: pass.context, gradientScale: nil, views: g, scratch: scratch)
        case .forward:
            forward(ws, windows: windows, rows: rows, member: member)
            _ = head(ws, windows: windows, rows: rows, context: 0, gradientScale: nil, views: g, scratch: scratch, loss: false)
        }
    }

    /// Waits for the other members (a no-op with one thread).
    func sync() { team?.barrier() }

    /// The time steps member `index` computes outside the layers' tiles (the
    /// embedding, the input convolution and the head).
    func rowsOf(_ index: Int, time T: Int) -> Range<Int> {
        // Whole register tiles per member, unless the window is too short to share.
        ThreadTeam.share(of: 0..<T, member: index, of: threads, granule: T >= 192 * threads ? 48 : 1)
    }

    /// The time tiles of the layers. Rows go in tiles of `tileRows` through
    /// every layer before the next tile (a wavefront: layer l's rows t − d were
    /// computed with earlier tiles), so a tile's activations stay in the
    /// core's L2 cache from layer to layer instead of streaming a whole
    /// window's activations (T · 128 floats a layer) through memory. With
    /// several threads, member i takes tiles i, i + threads, … (the backward
    /// pass counts from the last tile), and before a layer of its tile it
    /// waits only for the tiles whose rows that layer reads, through
    /// `WavefrontProgress`: the tiles run in a staggered pipeline, each a layer
    /// or so behind the one before, with no barrier between layers.
    ///
    /// With several threads the tiles are a multiple of `threads` in number
    /// and of equal length (about `tileRows`, bounds on multiples of 4), so
    /// every member has the same number of rows: 8,192 rows in tiles of 384
    /// would leave one member 4,224 rows and the other 3,968, and the first
    /// waiting for the second at every barrier.
    func tiles(time T: Int) -> TimeTiles {
        if threads == 1 { return TimeTiles(rows: 0..<T, size: tileRows) }
        let tiles = (T + tileRows - 1) / tileRows
        return TimeTiles(rows: 0..<T, equalShares: min(T, (tiles + threads - 1) / threads * threads), granule: 4)
    }

    /// Rows per tile of the wavefront (a multiple of the kernels'
    /// 48-row register tiles): 384 in fp32; 768 in bf16, whose saved rows
    /// (h, z, the slopes) take half the bytes, so that twice the rows fit
    /// the same cache. Measured on Zen 5 (perf, a compact bf16 training run,
    /// alternated): the kernels took 3 % less time at 640 or 768 rows than at
    /// 384, and more again at 1,024; fp32 is the same at 384 and 768.
    /// `PBTWAVE_TILE_ROWS` overrides both, for tuning.
    public static func defaultTileRows(for precision: Precision) -> Int {
        if let value = tileRowsFromEnvironment { return value }
        return precision == .bf16 ? 768 : 384
    }
    private static let tileRowsFromEnvironment: Int? = {
        guard let text = ProcessInfo.processInfo.environment["PBTWAVE_TILE_ROWS"], let value = Int(text), value >= 1 else { return nil }
        return value
    }()

    // MARK: Forward
    //
    // Member i computes rows `rows` of every sequence for the embedding and
    // the input convolution, and its tiles (`tiles(time:)`) of the layers and
    // the skip product: the dilated convolution of layer l reads rows t − d
    // of h_l, which earlier tiles (perhaps another member's) computed.

    func forward(_ ws: Workspace, windows: UnsafePointer<Int32>, rows: Range<Int>, member: Int) {
        let c = config, k = kernels
        let T = ws.time, R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, L = c.dilations.count
        let all = tiles(time: T), progress = threads > 1 ? ws.progress : nil
        if let progress { for j in stride(from: member, to: all.count, by: threads) { progress.reset(j) } }
        for b in 0..<ws.batch {
            // Embedding: emb[t] = E[code(t)].
            let codes = windows + b * (T + 1), emb = ws.emb(b)
            for t in rows { (emb + t * R).update(from: p.embedding + Int(codes[t]) * R, count: R) }
        }
        sync()
        for b in 0..<ws.batch {
            k.convForward(out: ws.h(0, b), outStride: R, inp: ws.emb(b), inStride: R, weight: packs.input, rows: rows)
            if let h16 = ws.bf16 { h16.round(k, ws.h(0, b), layer: 0, sequence: b, rows: rows) }
        }
        sync()
        for j in stride(from: member, to: all.count, by: threads) {
            let tile = all[j]
            for l in 0..<L {
                if let progress, l > 0 {
                    // h_l's rows t − d come from layer l − 1 of earlier tiles.
                    let reach = (c.kernelSize - 1) * c.dilations[l]
                    for i in all.index(containing: max(0, tile.lowerBound - reach))..<j { progress.wait(i, reaches: l) }
                }
                for b in 0..<ws.batch {
                    if let h16 = ws.bf16 {
                        // bf16: each product reads the bf16 copy its producer
                        // wrote of its own rows beside the fp32 ones (in an
                        // earlier tile, or before the barrier the reader waits at).
                        // z has only its bf16 copy: every reader takes that one.
                        // (An odd D's pad in z's rows stays zero, and meets zero weights.)
                        k.convGatedForward(gate: ws.gate(l, b), gateStride: 2 * D, z: nil, zStride: D, inp: h16.h(l, b),
                                           inStride: h16.hStride, weight: packs.dilated[l], rows: tile, dilation: c.dilations[l],
                                           roundedZ: BF16Rows(h16.z(l, b), stride: h16.zStride),
                                           slopes: BF16Rows(h16.slopes(l, b), stride: 2 * D))
                        if l < L - 1 {
                            // fp32 h_{l+1} only for this tile (the next
                            // residual sum reads it); every later reader takes the bf16 rows.
                            let h = l == 0 ? ws.h(0, b) : ws.residualTile(member: member, slot: l % 2, sequence: b, tile: tile)
                            k.convForward(out: ws.residualTile(member: member, slot: (l + 1) % 2, sequence: b, tile: tile), outStride: R,
                                          adding: h, addStride: R, inp: h16.z(l, b), inStride: h16.zStride,
                                          weight: packs.residual[l], rows: tile, rounded: BF16Rows(h16.h(l + 1, b), stride: h16.hStride))
                        }
                        continue
                    }
                    let z = ws.z(l, b)
                    k.convGatedForward(gate: ws.gate(l, b), gateStride: 2 * D, z: z, zStride: D, inp: ws.h(l, b), inStride: R,
                                       weight: packs.dilated[l], rows: tile, dilation: c.dilations[l])
                    if l < L - 1 {
                        // h_{l+1} = h_l + W_res·z + b_res (the last layer's is unused).
                        k.convForward(out: ws.h(l + 1, b), outStride: R, adding: ws.h(l, b), addStride: R, inp: z, inStride: D,
                                      weight: packs.residual[l], rows: tile)
                    }
                }
                progress?.publish(j, l + 1)
            }
            // s = ReLU(Σ_l (W_skip_l·z_l + b_skip_l)): one product over the
            // tile's z's, while the last layers' are still in cache: the
            // layers' z blocks as L taps T rows apart (see `Workspace.z`).
            for b in 0..<ws.batch {
                if let h16 = ws.bf16 {
                    // s also in bf16: the head's first product reads that.
                    k.convForward(out: ws.s(b), outStride: S, inp: h16.z(L - 1, b), inStride: h16.zStride, weight: packs.skipTaps, rows: tile,
                                  dilation: -T, relu: true, rounded: BF16Rows(h16.s(b), stride: h16.sStride))
                } else {
                    k.convForward(out: ws.s(b), outStride: S, inp: ws.z(L - 1, b), inStride: D, weight: packs.skipTaps, rows: tile,
                                  dilation: -T, relu: true)
                }
            }
        }
        sync()  // the head reads s of every tile
    }

    /// The head over `rows` of every sequence: ReLU → 1x1 (S → H) → ReLU →
    /// 1x1 (H → V) → softmax cross-entropy against the next codes at
    /// positions ≥ `context`. With a `gradientScale` (training), also its
    /// backward: the head's weight gradients into `views` and dskip (through
    /// the skip ReLU) into the workspace. Returns the summed loss in nats (0
    /// without `loss`). Works in blocks of rows so that a block's logits
    /// stay in cache between the softmax and the products that read them;
    /// each product of a block gets pointers to the block's first row and
    /// rows 0 ..< n (all are 1×1s, so a row needs only its own).
    /// In bf16, every product reads bf16 rows its producer wrote beside the
    /// fp32 ones (s by the skip product, u by the first head product,
    /// dlogits by the softmax, and du and dskip by the input gradients,
    /// which apply the ReLUs' backward in the same epilogue): no rounding
    /// pass of its own.
    func head(
        _ ws: Workspace, windows: UnsafePointer<Int32>, rows: Range<Int>, context: Int, gradientScale: Float?,
        views: Views, scratch: Scratch, loss: Bool = true
    ) -> Double {
        let c = config, k = kernels
        let T = ws.time, S = c.skipChannels, H = c.headChannels, V = c.classes
        let block16 = scratch.bf16, a16 = ws.bf16
        var total = 0.0
        for b in 0..<ws.batch {
            let targets = windows + b * (T + 1) + 1
            let s = ws.s(b), u = ws.u(b), logits = ws.logits.baseAddress + b * T * V
            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: Self.headBlock) {
                let block = start..<min(start + Self.headBlock, rows.upperBound)
                let at = block.lowerBound, n = block.count
                if let h16 = block16, let a16 {
                    k.convForward(out: u + at * H, outStride: H, inp: a16.s(b) + at * a16.sStride, inStride: a16.sStride,
                                  weight: packs.head1, rows: 0..<n, relu: true, rounded: BF16Rows(h16.u, stride: h16.uStride))
                    k.convForward(out: logits + at * V, outStride: V, inp: h16.u, inStride: h16.uStride, weight: packs.head2, rows: 0..<n)
                } else {
                    k.convForward(out: u + at * H, outStride: H, inp: s + at * S, inStride: S, weight: packs.head1, rows: 0..<n, relu: true)
                    k.convForward(out: logits + at * V, outStride: V, inp: u + at * H, inStride: H, weight: packs.head2, rows: 0..<n)
                }
                guard loss else { continue }
                let counted = min(max(at, context), block.upperBound)..<block.upperBound
                guard let scale = gradientScale, let grads = ws.backward else {
                    if !counted.isEmpty {
                        total += k.softmaxCrossEntropyForward(logits: logits + counted.lowerBound * V, targets: targets + counted.lowerBound,
                                                              rows: counted.count, classes: V)
                    }
                    continue
                }
                // dlogits replace the logits; positions before the context get none.
                let skipped = counted.lowerBound - at
                (logits + at * V).update(repeating: 0, count: skipped * V)
                if let h16 = block16 { h16.dlogits.update(repeating: 0, count: skipped * h16.dlogitsStride) }
                if !counted.isEmpty {
                    total += k.softmaxCrossEntropyForwardBackward(
                        dlogits: logits + counted.lowerBound * V, logits: logits + counted.lowerBound * V,
                        targets: targets + counted.lowerBound, rows: counted.count, classes: V, gradientScale: scale,
                        rounded: block16.map { BF16Rows($0.dlogits + skipped * $0.dlogitsStride, stride: $0.dlogitsStride) })
                }
                let du = grads.du(b) + at * H, dskip = grads.dskip(b) + at * S
                if let h16 = block16, let a16, let d16 = grads.bf16 {
                    // Each input gradient goes through the ReLU's backward and
                    // into bf16 rows in its own epilogue.
                    k.convBackwardWeight(dweight: views.head2Weight, dbias: views.head2Bias, dout: h16.dlogits, doutStride: h16.dlogitsStride,
                                         inp: h16.u, inStride: h16.uStride, rows: 0..<n, inChannels: H, outChannels: V, kernelSize: 1)
                    k.convBackwardInput(dinp: du, dinpStride: H, accumulate: false, dout: h16.dlogits, doutStride: h16.dlogitsStride,
                                        weight: packs.head2, rows: 0..<n, time: n, rounded: BF16Rows(h16.du, stride: h16.uStride),
                                        reluOutput: h16.u, reluStride: h16.uStride)
                    k.convBackwardWeight(dweight: views.head1Weight, dbias: views.head1Bias, dout: h16.du, doutStride: h16.uStride,
                                         inp: a16.s(b) + at * a16.sStride, inStride: a16.sStride, rows: 0..<n, inChannels: S, outChannels: H,
                                         kernelSize: 1)
                    k.convBackwardInput(dinp: dskip, dinpStride: S, accumulate: false, dout: h16.du, doutStride: h16.uStride,
                                        weight: packs.head1, rows: 0..<n, time: n,
                                        rounded: BF16Rows(d16.dskip(b) + at * d16.skipStride, stride: d16.skipStride),
                                        reluOutput: a16.s(b) + at * a16.sStride, reluStride: a16.sStride)
                } else {
                    k.convBackwardWeight(dweight: views.head2Weight, dbias: views.head2Bias, dout: logits + at * V, doutStride: V,
                                         inp: u + at * H, inStride: H, rows: 0..<n, inChannels: H, outChannels: V, kernelSize: 1)
                    k.convBackwardInput(dinp: du, dinpStride: H, accumulate: false, dout: logits + at * V, doutStride: V,
                                        weight: packs.head2, rows: 0..<n, time: n)
                    k.reluBackward(dx: du, dxStride: H, dy: du, dyStride: H, y: u + at * H, yStride: H, rows: n, channels: H)
                    k.convBackwardWeight(dweight: views.head1Weight, dbias: views.head1Bias, dout: du, doutStride: H, inp: s + at * S,
                                         inStride: S, rows: 0..<n, inChannels: S, outChannels: H, kernelSize: 1)
                    k.convBackwardInput(dinp: dskip, dinpStride: S, accumulate: false, dout: du, doutStride: H, weight: packs.head1,
                                        rows: 0..<n, time: n)
                    k.reluBackward(dx: dskip, dxStride: S, dy: dskip, dyStride: S, y: s + at * S, yStride: S, rows: n, channels: S)
                }
                k.addColumnSums(scratch.skipBiasGradient.baseAddress, dskip, stride: S, rows: n, channels: S)
            }
        }
        return total
    }

    // MARK: Backward
    //
    // Top layer down, the tiles from the last. Member i takes the tiles
    // last − i, last − i − threads, …: in each it computes the gated unit's
    // backward, waits until the later tiles whose dpre the dilated
    // convolution's input gradient gathers (rows t + d) have theirs, then
    // the tile's rows of dh.

    func backward(_ ws: Workspace, windows: UnsafePointer<Int32>, rows: Range<Int>, views: Views, member: Int) {
        let c = config, k = kernels, grads = ws.backward!
        let T = ws.time, R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, L = c.dilations.count
        let all = tiles(time: T), progress = threads > 1 ? ws.progress : nil
        for b in 0..<ws.batch {
            // The skip weights of all layers at once, as the skip product's L
            // taps (L, S, D) over the z blocks, then added to dW_skip (S, L·D).
            let taps = ws.members[member].skipTaps
            taps.zero()
            if let h16 = ws.bf16, let d16 = grads.bf16 {
                // bf16: the weight gradients read the bf16 rows the products read.
                k.convBackwardWeight(dweight: taps.baseAddress, dbias: nil, dout: d16.dskip(b), doutStride: d16.skipStride,
                                     inp: h16.z(L - 1, b), inStride: h16.zStride, rows: rows, inChannels: D, outChannels: S, kernelSize: L,
                                     dilation: -T)
            } else {
                k.convBackwardWeight(dweight: taps.baseAddress, dbias: nil, dout: grads.dskip(b), doutStride: S, inp: ws.z(L - 1, b), inStride: D,
                                     rows: rows, inChannels: D, outChannels: S, kernelSize: L, dilation: -T)
            }
            Packs.addStacked(taps.baseAddress, to: views.skipWeight, layers: L, outChannels: S, inChannels: D)
            // dh holds dL/dh_{l+1}; the last layer's residual is not computed.
            (grads.dh(b) + rows.lowerBound * R).update(repeating: 0, count: rows.count * R)
        }
        sync()  // the tiles read dskip and dh of every member's rows
        for j in stride(from: all.count - 1 - member, through: 0, by: -threads) {
            let tile = all[j]
            for l in (0..<L).reversed() {
                let lp = views.layers[l]
                for b in 0..<ws.batch {
                    let last = l == L - 1
                    if let h16 = ws.bf16, let d16 = grads.bf16 {
                        // bf16: dh's bf16 rows (dh_{l+1}) were written by the
                        // layer above's input gradient; the unit's slopes by the
                        // forward pass. dpre goes to bf16 rows only: the dilated
                        // input gradient gathers them (from later rows: later
                        // tiles, other members' rows), the weight gradients read them.
                        if !last {
                            k.convBackwardWeight(dweight: lp.residualWeight, dbias: lp.residualBias, dout: d16.dh(b),
                                                 doutStride: d16.residualStride, inp: h16.z(l, b), inStride: h16.zStride, rows: tile,
                                                 inChannels: D, outChannels: R, kernelSize: 1)
                        }
                        k.gatedBackward(dpre: nil, dpreStride: 2 * D, gate: nil, gateStride: 2 * D,
                                        skipGradient: d16.dskip(b), skipStride: d16.skipStride, skipWeight: packs.skipTaps, skipTap: l,
                                        residualGradient: last ? nil : d16.dh(b), residualStride: d16.residualStride,
                                        residualWeight: last ? nil : packs.residual[l], rows: tile, channels: D,
                                        roundedDpre: BF16Rows(d16.dpre(l, b), stride: 2 * D),
                                        slopes: BF16Rows(h16.slopes(l, b), stride: 2 * D))
                        continue
                    }
                    if !last {
                        k.convBackwardWeight(dweight: lp.residualWeight, dbias: lp.residualBias, dout: grads.dh(b), doutStride: R,
                                             inp: ws.z(l, b), inStride: D, rows: tile, inChannels: D, outChannels: R, kernelSize: 1)
                    }
                    // dz = dskip·W_skip_l + dh·W_res_l, through the gated unit; dpre
                    // replaces the gate values it is computed from.
                    let gate = ws.gate(l, b)
                    k.gatedBackward(dpre: gate, dpreStride: 2 * D, gate: gate, gateStride: 2 * D,
                                    skipGradient: grads.dskip(b), skipStride: S, skipWeight: packs.skipTaps, skipTap: l,
                                    residualGradient: last ? nil : grads.dh(b), residualStride: R,
                                    residualWeight: last ? nil : packs.residual[l], rows: tile, channels: D)
                }
                if let progress {
                    // The forward pass left every mark at L; layer l's dpre is mark L + (L − l).
                    progress.publish(j, 2 * L - l)
                    let reach = (c.kernelSize - 1) * c.dilations[l]
                    let lastRead = all.index(containing: min(T, tile.upperBound + reach) - 1)
                    if lastRead > j { for i in (j + 1)...lastRead { progress.wait(i, reaches: 2 * L - l) } }
                }
                for b in 0..<ws.batch {
                    // dh_l = dh_{l+1} (residual path) + the dilated convolution's input gradient.
                    if let h16 = ws.bf16, let d16 = grads.bf16 {
                        // dh_l's bf16 rows, for the layer below's backward.
                        k.convBackwardInput(dinp: grads.dh(b), dinpStride: R, accumulate: true, dout: d16.dpre(l, b), doutStride: 2 * D,
                                            weight: packs.dilated[l], rows: tile, time: T, dilation: c.dilations[l],
                                            rounded: l > 0 ? BF16Rows(d16.dh(b), stride: d16.residualStride) : nil)
                        k.convBackwardWeight(dweight: lp.dilatedWeight, dbias: lp.dilatedBias, dout: d16.dpre(l, b), doutStride: 2 * D,
                                             inp: h16.h(l, b), inStride: h16.hStride, rows: tile, inChannels: R, outChannels: 2 * D,
                                             kernelSize: c.kernelSize, dilation: c.dilations[l])
                    } else {
                        k.convBackwardInput(dinp: grads.dh(b), dinpStride: R, accumulate: true, dout: ws.gate(l, b), doutStride: 2 * D,
                                            weight: packs.dilated[l], rows: tile, time: T, dilation: c.dilations[l])
                        k.convBackwardWeight(dweight: lp.dilatedWeight, dbias: lp.dilatedBias, dout: ws.gate(l, b), doutStride: 2 * D,
                                             inp: ws.h(l, b), inStride: R, rows: tile, inChannels: R, outChannels: 2 * D,
                                             kernelSize: c.kernelSize, dilation: c.dilations[l])
                    }
                }
            }
        }
        sync()
        for b in 0..<ws.batch {
            let demb = grads.demb(b), codes = windows + b * (T + 1)
            k.convBackwardInput(dinp: demb, dinpStride: R, accumulate: false, dout: grads.dh(b), doutStride: R, weight: packs.input,
                                rows: rows, time: T)
            k.convBackwardWeight(dweight: views.inputWeight, dbias: views.inputBias, dout: grads.dh(b), doutStride: R,
                                 inp: ws.emb(b), inStride: R, rows: rows, inChannels: R, outChannels: R, kernelSize: c.inputKernelSize)
            for t in rows { accumulate(views.embedding + Int(codes[t]) * R, demb + t * R, count: R) }
        }
    }
}

// MARK: Parameter views, packed weights and workspace

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

    /// What one parallel pass computes; set before each pass.
    final class Pass: ThreadTeamJob {
        enum Kind { case train, evaluate, forward }
        unowned let model: WaveNet
        var kind = Kind.forward
        var workspace: Workspace?
        var windows: UnsafePointer<Int32>?
        var context = 0
        var gradientScale: Float = 0

        init(model: WaveNet) { self.model = model }

        func set(_ kind: Kind, _ ws: Workspace, windows: UnsafePointer<Int32>, context: Int, gradientScale: Float) {
            self.kind = kind
            workspace = ws
            self.windows = windows
            self.context = context
            self.gradientScale = gradientScale
        }

        func run(member: Int) { model.run(self, member: member) }
    }

    /// Every weight in the order the kernels read it (see `PackedConv`).
    final class Packs {
        let input: PackedConv
        let dilated: [PackedConv]
        let residual: [PackedConv]
        /// All layers' skip 1x1s (the (S, L·D) parameter) as L taps (L, S, D),
        /// with Σ_l b_skip_l as their bias: the skip product, over the layers'
        /// z blocks (`Workspace.z`), and each layer's backward (its tap).
        let skipTaps: PackedConv
        /// The skip weights rearranged (L, S, D) for packing `skipTaps`.
        let skipTapsWeight: Tensor
        let head1: PackedConv
        let head2: PackedConv
        let skipBiasSum: Tensor

        /// In `precision` (the input convolution always in fp32).
        init(config c: WaveNetConfig, precision p: Precision) {
            let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels, L = c.dilations.count
            input = PackedConv(kernelSize: c.inputKernelSize, inChannels: R, outChannels: R)
            dilated = c.dilations.map { _ in PackedConv(kernelSize: c.kernelSize, inChannels: R, outChannels: 2 * D, gated: true, precision: p) }
            residual = c.dilations.map { _ in PackedConv(kernelSize: 1, inChannels: D, outChannels: R, precision: p) }
            skipTaps = PackedConv(kernelSize: L, inChannels: D, outChannels: S, precision: p)
            skipTapsWeight = Tensor(shape: [L, S, D])
            head1 = PackedConv(kernelSize: 1, inChannels: S, outChannels: H, precision: p)
            head2 = PackedConv(kernelSize: 1, inChannels: H, outChannels: c.classes, precision: p)
            skipBiasSum = Tensor(shape: [S])
        }

        /// The rows of D floats of the skip parameter (S, L·D) and of its
        /// taps' form (L, S, D): `body(offset in the parameter, offset in the taps)`.
        static func skipTapRows(layers L: Int, outChannels S: Int, inChannels D: Int, _ body: (_ stacked: Int, _ taps: Int) -> Void) {
            for l in 0..<L {
                for o in 0..<S { body((o * L + l) * D, (l * S + o) * D) }
            }
        }

        /// Adds a gradient of `skipTaps`'s form (L, S, D) to the parameter's (S, L·D).
        static func addStacked(_ taps: UnsafePointer<Float>, to stacked: UnsafeMutablePointer<Float>, layers L: Int,
                               outChannels S: Int, inChannels D: Int) {
            skipTapRows(layers: L, outChannels: S, inChannels: D) { accumulate(stacked + $0, taps + $1, count: D) }
        }

        /// Packs the current parameters (the kernels never read stale ones:
        /// a checkpoint load, PBT's copy or a test may change them in place).
        /// Cost: one pass over the weights.
        func pack(_ p: Views, config c: WaveNetConfig) {
            input.pack(weight: p.inputWeight, bias: p.inputBias)
            for (l, layer) in p.layers.enumerated() {
                dilated[l].pack(weight: layer.dilatedWeight, bias: layer.dilatedBias)
                residual[l].pack(weight: layer.residualWeight, bias: layer.residualBias)
            }
            skipBiasSum.zero()
            for l in p.layers { accumulate(skipBiasSum.baseAddress, l.skipBias, count: c.skipChannels) }
            let D = c.dilationChannels, rearranged = skipTapsWeight.baseAddress
            Self.skipTapRows(layers: c.dilations.count, outChannels: c.skipChannels, inChannels: D) {
                (rearranged + $1).update(from: p.skipWeight + $0, count: D)
            }
            skipTaps.pack(weight: skipTapsWeight.baseAddress, bias: skipBiasSum.baseAddress)
            head1.pack(weight: p.head1Weight, bias: p.head1Bias)
            head2.pack(weight: p.head2Weight, bias: p.head2Bias)
        }
    }

    /// Activation buffers for one (B, T), each (B, …, T, C): kept for every
    /// sequence because the backward pass needs them.
    final class Workspace {
        let batch: Int, time: Int
        let layers: Int, residual: Int, gate: Int, skip: Int, head: Int
        let emb: Tensor, hs: Tensor, gates: Tensor, zs: Tensor, ss: Tensor, us: Tensor, logits: Tensor
        /// The layers whose fp32 h is kept for the whole window: all in fp32
        /// (the backward pass reads them); only h_0 in bf16, where the
        /// dilated convolutions and the backward pass read the bf16 copies
        /// and the fp32 h_l (l ≥ 1) lives only in `residualTile`.
        let hLayers: Int
        /// bf16 only: (members, 2 slots (h_l and h_{l+1}), B, rows of the longest tile, R);
        /// empty until `reserveResidualTiles`.
        private var residualTiles = Tensor(shape: [0, 2, 0, 0, 0])
        /// The backward pass's buffers, made on the first training step.
        var backward: Gradients?
        /// One per thread (grown to the thread count).
        var members: [Scratch] = []
        /// The tiles' marks, with several threads (grown to the tile count).
        var progress: WavefrontProgress?
        /// bf16 copies of the products' inputs (bf16 precision only).
        let bf16: ActivationsBF16?

        init(config c: WaveNetConfig, batch B: Int, time T: Int, precision: Precision) {
            bf16 = precision == .bf16 ? ActivationsBF16(config: c, batch: B, time: T) : nil
            batch = B
            time = T
            let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels
            let L = c.dilations.count
            layers = L; residual = R; gate = D; skip = S; head = H
            emb = Tensor(shape: [B, T, R])
            hLayers = precision == .bf16 ? 1 : L
            hs = Tensor(shape: [B, hLayers, T, R])
            gates = Tensor(shape: [B, L, T, 2 * D])  // bf16: only the gated forward's partial sums (ActivationsBF16 has the slopes)
            zs = Tensor(shape: precision == .bf16 ? [0] : [B, L, T, D])  // bf16: z in ActivationsBF16 alone
            ss = Tensor(shape: [B, T, S])
            us = Tensor(shape: [B, T, H])
            logits = Tensor(shape: [B * T, c.classes])
        }

        /// The embedding of sequence b: (T, R).
        func emb(_ b: Int) -> UnsafeMutablePointer<Float> { emb.baseAddress + b * time * residual }
        /// h_l of sequence b: (T, R).
        func h(_ l: Int, _ b: Int) -> UnsafeMutablePointer<Float> {
            assert(l < hLayers, "h_\(l) is kept only per tile in bf16")
            return hs.baseAddress + (b * hLayers + l) * time * residual
        }

        /// Makes room for tiles of up to `rows` rows on `members` threads
        /// (bf16); allocates only when more is needed than before.
        func reserveResidualTiles(members: Int, rows: Int) {
            let held = residualTiles.shape[0], capacity = residualTiles.shape[3]
            guard members > held || rows > capacity else { return }
            residualTiles = Tensor(shape: [max(members, held), 2, batch, max(rows, capacity), residual])
        }

        /// The fp32 h of `tile` of sequence b in one of member's two slots,
        /// addressed as the whole window's (T, R) rows: only rows of `tile`
        /// may be read or written.
        func residualTile(member: Int, slot: Int, sequence b: Int, tile: Range<Int>) -> UnsafeMutablePointer<Float> {
            let capacity = residualTiles.shape[3]
            assert(tile.count <= capacity && member < residualTiles.shape[0] && slot < 2)
            return residualTiles.baseAddress + ((member * 2 + slot) * batch + b) * capacity * residual - tile.lowerBound * residual
        }
        /// Layer l's [tanh(a) | σ(g)] of sequence b, (T, 2D); its dpre after the backward pass.
        func gate(_ l: Int, _ b: Int) -> UnsafeMutablePointer<Float> { gates.baseAddress + (b * layers + l) * time * 2 * gate }
        /// Layer l's z of sequence b: (T, D) (fp32 precision only: in bf16,
        /// z is kept only as its bf16 copy). The layers' z's of a sequence
        /// are blocks of T rows, the last layer's first (block L − 1 − l is
        /// layer l's): the skip product and its weight gradient read them as
        /// L taps T rows apart, from `z(L − 1, b)` with dilation −T, and each
        /// layer's rows lie together for the gated forward that writes them
        /// and the residual product that reads them. (One row of all layers'
        /// z's, L·D floats apart, cost compact's step 6 %.)
        func z(_ l: Int, _ b: Int) -> UnsafeMutablePointer<Float> { zs.baseAddress + (b * layers + layers - 1 - l) * time * gate }
        /// ReLU(skip sum) of sequence b: (T, S).
        func s(_ b: Int) -> UnsafeMutablePointer<Float> { ss.baseAddress + b * time * skip }
        /// The head's hidden ReLU of sequence b: (T, H).
        func u(_ b: Int) -> UnsafeMutablePointer<Float> { us.baseAddress + b * time * head }
    }

    /// Activation gradients for one (B, T).
    final class Gradients {
        let time: Int, layers: Int, residual: Int, gate: Int, skip: Int, head: Int
        let dskips: Tensor, dhs: Tensor, dus: Tensor, dembs: Tensor
        /// bf16 copies of the gradients the products read (bf16 precision only).
        let bf16: GradientsBF16?

        init(config c: WaveNetConfig, batch B: Int, time T: Int, precision: Precision) {
            bf16 = precision == .bf16 ? GradientsBF16(config: c, batch: B, time: T) : nil
            let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels
            let L = c.dilations.count
            time = T; layers = L; residual = R; gate = D; skip = S; head = H
            dskips = Tensor(shape: [B, T, S])
            dhs = Tensor(shape: [B, T, R])
            dus = Tensor(shape: [B, T, H])
            dembs = Tensor(shape: [B, T, R])
        }

        func dskip(_ b: Int) -> UnsafeMutablePointer<Float> { dskips.baseAddress + b * time * skip }
        func dh(_ b: Int) -> UnsafeMutablePointer<Float> { dhs.baseAddress + b * time * residual }
        func du(_ b: Int) -> UnsafeMutablePointer<Float> { dus.baseAddress + b * time * head }
        func demb(_ b: Int) -> UnsafeMutablePointer<Float> { dembs.baseAddress + b * time * residual }
    }

    /// What one thread keeps apart from the others during a step.
    final class Scratch {
        let skipBiasGradient: Tensor
        /// The skip weight gradient as L taps, (L, S, D), before it is added to (S, L·D).
        let skipTaps: Tensor
        /// The summed loss (nats) of this thread's rows in the last pass.
        var loss = 0.0
        /// A block of the head's rows in bf16 (bf16 precision only).
        let bf16: HeadBlockBF16?

        init(config c: WaveNetConfig, precision: Precision) {
            skipBiasGradient = Tensor(shape: [c.skipChannels])
            skipTaps = Tensor(shape: [c.dilations.count * c.skipChannels * c.dilationChannels])
            bf16 = precision == .bf16 ? HeadBlockBF16(config: c) : nil
        }
    }

    /// The bf16 rows of one block of the head (`headBlock` rows), each
    /// written by its producer for the products that read it: u (the first
    /// product), dlogits (the softmax) and du (the second product's input
    /// gradient, through the ReLU's backward).
    final class HeadBlockBF16 {
        let uStride: Int, dlogitsStride: Int
        let buffer: BF16Buffer
        let u: UnsafeMutablePointer<UInt16>, dlogits: UnsafeMutablePointer<UInt16>, du: UnsafeMutablePointer<UInt16>

        init(config c: WaveNetConfig) {
            uStride = BF16Buffer.stride(channels: c.headChannels)
            dlogitsStride = BF16Buffer.stride(channels: c.classes)
            let rows = WaveNet.headBlock
            buffer = BF16Buffer(count: rows * (2 * uStride + dlogitsStride))
            u = buffer.baseAddress
            dlogits = u + rows * uStride
            du = dlogits + rows * dlogitsStride
        }
    }
}

extension WaveNet {
    /// Rows of the head computed together (their logits stay in cache
    /// between the softmax and the products that read them).
    static let headBlock = 256

    /// bf16 copies of the forward products' inputs, for one (B, T): every
    /// layer's h (the dilated convolutions gather earlier rows, possibly
    /// another thread's), every layer's z (the residual and skip 1×1s) and
    /// s (the head's first 1×1, its weight gradient and the skip ReLU's backward);
    /// and every layer's gated-unit slopes, which the backward pass reads
    /// instead of the fp32 gate values (half the bytes). Rows are padded to
    /// whole bf16 pairs.
    final class ActivationsBF16 {
        let time: Int, layers: Int, residual: Int, gate: Int
        let hStride: Int, zStride: Int, sStride: Int
        let hs: BF16Buffer, zs: BF16Buffer, slopeRows: BF16Buffer, ss: BF16Buffer

        init(config c: WaveNetConfig, batch B: Int, time T: Int) {
            time = T
            layers = c.dilations.count
            gate = 2 * c.dilationChannels
            slopeRows = BF16Buffer(count: B * layers * T * gate)
            residual = c.residualChannels
            hStride = BF16Buffer.stride(channels: c.residualChannels)
            zStride = BF16Buffer.stride(channels: c.dilationChannels)
            hs = BF16Buffer(count: B * layers * T * hStride)
            zs = BF16Buffer(count: B * layers * T * zStride)
            sStride = BF16Buffer.stride(channels: c.skipChannels)
            ss = BF16Buffer(count: B * T * sStride)
        }

        func h(_ l: Int, _ b: Int) -> UnsafeMutablePointer<UInt16> { hs.baseAddress + (b * layers + l) * time * hStride }
        /// Layer l's z of sequence b, (T, D) padded to pairs, in blocks as the fp32 `Workspace.z`.
        func z(_ l: Int, _ b: Int) -> UnsafeMutablePointer<UInt16> { zs.baseAddress + ((b * layers + layers - 1 - l) * time) * zStride }
        /// ReLU(skip sum) of sequence b: (T, S), written by the skip product.
        func s(_ b: Int) -> UnsafeMutablePointer<UInt16> { ss.baseAddress + b * time * sStride }
        /// Layer l's slopes [∂z/∂a | ∂z/∂g] of sequence b: (T, 2D).
        func slopes(_ l: Int, _ b: Int) -> UnsafeMutablePointer<UInt16> { slopeRows.baseAddress + (b * layers + l) * time * gate }

        /// Rounds `rows` of h_l (fp32, (T, R)) of sequence b into its copy.
        func round(_ k: Kernels, _ h: UnsafePointer<Float>, layer l: Int, sequence b: Int, rows: Range<Int>) {
            k.roundToBF16(out: self.h(l, b) + rows.lowerBound * hStride, outStride: hStride, inp: h + rows.lowerBound * residual,
                          inStride: residual, rows: rows.count, channels: residual)
        }
    }

    /// bf16 copies of the gradients the backward products read, for one
    /// (B, T): dskip (every layer's backward), dh (the residual path's), and
    /// every layer's dpre for its dilated input gradient (which gathers rows
    /// of later tiles and of other threads, rounded while they did other layers).
    final class GradientsBF16 {
        let time: Int, layers: Int, gate: Int
        let skipStride: Int, residualStride: Int
        let dskips: BF16Buffer, dhs: BF16Buffer, dpres: BF16Buffer

        init(config c: WaveNetConfig, batch B: Int, time T: Int) {
            time = T
            layers = c.dilations.count
            gate = 2 * c.dilationChannels
            skipStride = BF16Buffer.stride(channels: c.skipChannels)
            residualStride = BF16Buffer.stride(channels: c.residualChannels)
            dskips = BF16Buffer(count: B * T * skipStride)
            dhs = BF16Buffer(count: B * T * residualStride)
            dpres = BF16Buffer(count: B * layers * T * gate)
        }

        func dskip(_ b: Int) -> UnsafeMutablePointer<UInt16> { dskips.baseAddress + b * time * skipStride }
        func dh(_ b: Int) -> UnsafeMutablePointer<UInt16> { dhs.baseAddress + b * time * residualStride }
        func dpre(_ l: Int, _ b: Int) -> UnsafeMutablePointer<UInt16> { dpres.baseAddress + (b * layers + l) * time * gate }
    }
}

/// Errors a user of the WaveNet module can cause.
public enum WaveNetError: Error, Equatable, CustomStringConvertible {
    case invalidConfig(String)
    case invalidSchedule(String)
    case checkpoint(path: String, reason: String)
    /// The audio is too short for a valid model (not the model's fault: it was called an invalid configuration).
    case clipsTooShort(String)

    public var description: String {
        switch self {
        case .invalidConfig(let what): return "invalid WaveNet configuration: \(what)"
        case .invalidSchedule(let what): return "invalid learning-rate schedule: \(what)"
        case let .checkpoint(path, reason): return "checkpoint \(path): \(reason)"
        case .clipsTooShort(let what): return "the audio is too short for this model: \(what)"
        }
    }
}

/// Consecutive ranges covering `rows`, in order: either of `size` rows each
/// (the last may be shorter), or `count` near-equal shares whose bounds are
/// multiples of a granule. Random access, so `reversed()` allocates nothing.
struct TimeTiles: RandomAccessCollection {
    let rows: Range<Int>
    let endIndex: Int
    /// How the rows are cut.
    private let cut: Cut
    private enum Cut {
        /// Tiles of this many rows, the last maybe shorter.
        case size(Int)
        /// `endIndex` near-equal tiles whose starts are multiples of the granule.
        case shares(granule: Int)
    }

    /// Tiles of `size` rows (at least 1).
    init(rows: Range<Int>, size: Int) {
        precondition(size >= 1, "a time tile needs at least one row")
        self.rows = rows
        cut = .size(size)
        endIndex = (rows.count + size - 1) / size
    }

    /// `count` tiles (1 ... rows.count) of near-equal length: tile i starts
    /// at rows.count · i / count rounded down to a multiple of `granule`
    /// (of 1 when the tiles would be shorter than a granule).
    init(rows: Range<Int>, equalShares count: Int, granule: Int) {
        precondition(count >= 1 && count <= Swift.max(rows.count, 1) && granule >= 1, "bad equal shares: \(count) of \(rows.count) rows")
        self.rows = rows
        cut = .shares(granule: rows.count / count >= granule ? granule : 1)
        endIndex = rows.isEmpty ? 0 : count
    }

    var startIndex: Int { 0 }

    /// Where tile i starts, counted from rows.lowerBound (rows.count for i = count).
    private func start(_ i: Int) -> Int {
        if i >= endIndex { return rows.count }
        switch cut {
        case .size(let size): return i * size
        case .shares(let granule): return rows.count * i / endIndex / granule * granule
        }
    }

    /// The tile that holds `row` (one of `rows`).
    func index(containing row: Int) -> Int {
        let r = row - rows.lowerBound
        if case .size(let size) = cut { return r / size }
        // start(i) <= r for i = ⌊r·count/n⌋; the rounding down of the next
        // start can put r in the next tile, never further (a tile is at least a granule).
        let i = r * endIndex / rows.count
        return i + 1 < endIndex && start(i + 1) <= r ? i + 1 : i
    }

    subscript(i: Int) -> Range<Int> {
        (rows.lowerBound + start(i))..<(rows.lowerBound + start(i + 1))
    }
}

extension WaveNet {
    /// Whether every weight and both of Adam's moments are finite (what a
    /// checkpoint must hold to be read back).
    public var stateIsFinite: Bool {
        [parameters, adamM, adamV].allSatisfy { arena in
            arena.storage.withUnsafeBufferPointer { buffer in
                // A sum is NaN or infinite when any term is (or it overflows, which finite checkpoints never come near).
                var sum: Float = 0
                for x in buffer { sum += x * 0 }
                return sum == 0
            }
        }
    }
}
