import PBTSeededRNG
import PBTWaveTensor

/// Fast incremental generation (Paine et al. 2016's queues).
///
/// Each layer keeps a queue of its past inputs h_l, as long as the layer
/// looks back ((K − 1)·d samples); a new sample then costs one small
/// matrix–vector product per layer instead of a pass over the receptive
/// field:
///
/// ```
///  code ─ embed ─ [input queue] ─ conv ─ h₀ ─ [queue₀: last d₀ h₀'s] ─ taps ─ gate ─ z ─┬─ res ─ h₁ …
///                                                                                      └─ skip ─ Σ ─ head ─ logits
/// ```
/// Queues start at zero, which is exactly the zero padding the full forward
/// pass applies before a window, so feeding the same codes gives the same
/// logits (a test checks this).
///
/// The generator copies the weights it needs (transposed for
/// `matvecTransposed`), so it is independent of later training. A bf16
/// model generates in bf16 as it trains: the products' weights and inputs
/// rounded to bf16 values (fp32 accumulation), the input convolution in fp32.
public final class WaveNetGenerator {
    public let config: WaveNetConfig
    /// The kernel variant each step runs (the model's, by default).
    public var kernels: Kernels
    /// The model's precision when the generator was made.
    public let precision: Precision
    // Transposed weights: (inputs, outputs).
    let embedding: Tensor            // (V, R), rows used directly
    let inputT: Tensor, inputBias: Tensor          // (Ki·R, R)
    let dilatedT: [Tensor], dilatedBias: [Tensor]  // (K·R, 2D)
    let outT: [Tensor], outBias: [Tensor]          // (D, S + R): skip rows first, then residual
    let head1T: Tensor, head1Bias: Tensor          // (S, H)
    let head2T: Tensor, head2Bias: Tensor          // (H, V)
    // State.
    let inputHistory: Tensor         // (Ki, R) ring of embeddings
    let histories: [Tensor]          // per layer ((K−1)·d + 1, R) ring of h_l
    var position = 0
    // Scratch.
    let stacked: Tensor, pre: Tensor, z: Tensor, out: Tensor, h: Tensor, skip: Tensor, hidden: Tensor
    public let logits: Tensor
    /// exp((logit − max) / temperature) per class, for sampling.
    let weights: Tensor

    /// The most floats of history (`WaveNetConfig.generationHistoryFloats`)
    /// a generator is made for by the commands: 1 GiB. The config's own
    /// bounds allow far more (a receptive field of 2^24 at 4,096 channels),
    /// which training never holds at once but generation would.
    public static let maxHistoryFloats = 1 << 28

    public init(model: WaveNet) {
        let c = model.config
        config = c
        kernels = model.kernels
        precision = model.precision
        let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels, V = c.classes
        let K = c.kernelSize, Ki = c.inputKernelSize
        let p = model.p
        embedding = Tensor(shape: [V, R])
        embedding.baseAddress.update(from: p.embedding, count: V * R)
        // A (K, Cout, Cin) conv weight becomes ((K·Cin), Cout): tap k's inputs
        // are rows k·Cin ..< (k+1)·Cin, matching the stacked history below.
        func stackTaps(_ w: UnsafePointer<Float>, taps: Int, cin: Int, cout: Int) -> Tensor {
            let t = Tensor(shape: [taps * cin, cout])
            for k in 0..<taps { transpose(t.baseAddress + k * cin * cout, w + k * cout * cin, rows: cout, cols: cin) }
            return t
        }
        func copy(_ src: UnsafePointer<Float>, _ n: Int) -> Tensor {
            let t = Tensor(shape: [n]); t.baseAddress.update(from: src, count: n); return t
        }
        inputT = stackTaps(p.inputWeight, taps: Ki, cin: R, cout: R)
        inputBias = copy(p.inputBias, R)
        dilatedT = p.layers.map { stackTaps($0.dilatedWeight, taps: K, cin: R, cout: 2 * D) }
        dilatedBias = p.layers.map { copy($0.dilatedBias, 2 * D) }
        let L = c.dilations.count
        outT = p.layers.enumerated().map { index, l in
            let t = Tensor(shape: [D, S + R])
            for d in 0..<D {
                for s in 0..<S { t.baseAddress[d * (S + R) + s] = p.skipWeight[s * L * D + index * D + d] }
                for r in 0..<R { t.baseAddress[d * (S + R) + S + r] = l.residualWeight[r * D + d] }
            }
            return t
        }
        outBias = p.layers.map { l in
            let t = Tensor(shape: [S + R])
            t.baseAddress.update(from: l.skipBias, count: S)
            (t.baseAddress + S).update(from: l.residualBias, count: R)
            return t
        }
        head1T = stackTaps(p.head1Weight, taps: 1, cin: S, cout: H)
        head1Bias = copy(p.head1Bias, H)
        head2T = Tensor(shape: [H, V])
        transpose(head2T.baseAddress, p.head2Weight, rows: V, cols: H)
        head2Bias = copy(p.head2Bias, V)
        inputHistory = Tensor(shape: [Ki, R])
        histories = c.dilations.map { Tensor(shape: [(K - 1) * $0 + 1, R]) }
        stacked = Tensor(shape: [max(K, Ki) * R])
        pre = Tensor(shape: [2 * D])
        z = Tensor(shape: [D])
        out = Tensor(shape: [S + R])
        h = Tensor(shape: [R])
        skip = Tensor(shape: [S])
        hidden = Tensor(shape: [H])
        logits = Tensor(shape: [V])
        weights = Tensor(shape: [V])
        if precision == .bf16 {
            for t in dilatedT + outT + [head1T, head2T] { BF16Buffer.roundInPlace(t.baseAddress, count: t.count) }
        }
    }

    /// Forgets all history: the next code is treated as the first of a window.
    public func reset() {
        inputHistory.zero()
        for q in histories { q.zero() }
        position = 0
    }

    /// Feeds one code and leaves the logits for the next one in `logits`.
    /// Cost: one small matrix–vector product per layer; no allocation.
    public func step(code: Int32) {
        let c = config
        let R = c.residualChannels, D = c.dilationChannels, S = c.skipChannels, H = c.headChannels, V = c.classes
        let K = c.kernelSize, Ki = c.inputKernelSize
        precondition(code >= 0 && Int(code) < V, "code \(code) out of range 0..<\(V)")
        let t = position
        // Input convolution over the last Ki embeddings (oldest first).
        (inputHistory.baseAddress + (t % Ki) * R).update(from: embedding.baseAddress + Int(code) * R, count: R)
        for k in 0..<Ki {
            let src = t - (Ki - 1 - k)
            let slot = ((src % Ki) + Ki) % Ki
            if src < 0 { (stacked.baseAddress + k * R).update(repeating: 0, count: R) }
            else { (stacked.baseAddress + k * R).update(from: inputHistory.baseAddress + slot * R, count: R) }
        }
        let k = kernels, bf16 = precision == .bf16
        k.matvecTransposed(h.baseAddress, weightT: inputT.baseAddress, x: stacked.baseAddress, bias: inputBias.baseAddress,
                         rows: R, cols: Ki * R)
        skip.zero()
        let L = c.dilations.count
        for l in 0..<L {
            let d = c.dilations[l]
            let queue = histories[l]
            let capacity = (K - 1) * d + 1
            (queue.baseAddress + (t % capacity) * R).update(from: h.baseAddress, count: R)
            // Tap k reads h_l at t − (K−1−k)·d; before the window it is zero.
            for k in 0..<K {
                let src = t - (K - 1 - k) * d
                if src < 0 { (stacked.baseAddress + k * R).update(repeating: 0, count: R) }
                else { (stacked.baseAddress + k * R).update(from: queue.baseAddress + (src % capacity) * R, count: R) }
            }
            if bf16 { BF16Buffer.roundInPlace(stacked.baseAddress, count: K * R) }
            k.matvecTransposed(pre.baseAddress, weightT: dilatedT[l].baseAddress, x: stacked.baseAddress,
                               bias: dilatedBias[l].baseAddress, rows: 2 * D, cols: K * R)
            k.gatedForward(gate: nil, z: z.baseAddress, zStride: D, pre: pre.baseAddress, preStride: 2 * D, rows: 1, channels: D)
            // The last layer's residual output feeds nothing: skip rows only.
            let rows = l < L - 1 ? S + R : S
            if bf16 { BF16Buffer.roundInPlace(z.baseAddress, count: D) }
            k.matvecTransposed(out.baseAddress, weightT: outT[l].baseAddress, x: z.baseAddress, bias: outBias[l].baseAddress,
                               rows: rows, cols: D, ldw: S + R)
            accumulate(skip.baseAddress, out.baseAddress, count: S)
            if l < L - 1 { accumulate(h.baseAddress, out.baseAddress + S, count: R) }
        }
        k.biasReLU(out: skip.baseAddress, outStride: S, inp: skip.baseAddress, inStride: S, bias: nil, rows: 1, channels: S)
        if bf16 { BF16Buffer.roundInPlace(skip.baseAddress, count: S) }
        k.matvecTransposed(hidden.baseAddress, weightT: head1T.baseAddress, x: skip.baseAddress, bias: head1Bias.baseAddress,
                           rows: H, cols: S)
        k.biasReLU(out: hidden.baseAddress, outStride: H, inp: hidden.baseAddress, inStride: H, bias: nil, rows: 1, channels: H)
        if bf16 { BF16Buffer.roundInPlace(hidden.baseAddress, count: H) }
        k.matvecTransposed(logits.baseAddress, weightT: head2T.baseAddress, x: hidden.baseAddress, bias: head2Bias.baseAddress,
                           rows: V, cols: H)
        position += 1
    }

    /// Draws the next code from `logits` at `temperature` (0 = most likely
    /// code). One uniform draw from `rng`.
    public func sample(temperature: Float, rng: inout Xoshiro256) -> Int32 {
        let V = config.classes
        let l = logits.baseAddress
        var best = 0
        for i in 1..<V where l[i] > l[best] { best = i }
        if temperature <= 0 { return Int32(best) }
        let m = l[best]
        let w = weights.baseAddress
        for i in 0..<V { w[i] = (l[i] - m) / temperature }
        kernels.exp(w, w, count: V)
        var total: Float = 0
        for i in 0..<V { total += w[i] }
        var u = rng.nextUnitFloat() * total
        for i in 0..<V {
            u -= w[i]
            if u < 0 { return Int32(i) }
        }
        return Int32(best)
    }

    /// Generates `count` codes after feeding `prime` (default: one mid-scale
    /// code, i.e. silence), sampling at `temperature` with `seed`.
    /// `progress`, if given, hears the samples generated so far every 4,096
    /// samples; `stop`, asked as often, ends the generation early when true
    /// (the codes so far are returned: a prefix of the whole).
    public func generate(count: Int, temperature: Float, seed: UInt64, prime: [Int32] = [128],
                         progress: ((Int) -> Void)? = nil, stop: (() -> Bool)? = nil) -> [Int32] {
        precondition(!prime.isEmpty, "generation needs at least one priming code")
        var rng = Xoshiro256(seed: seed)
        reset()
        for code in prime { step(code: code) }
        var out = [Int32]()
        out.reserveCapacity(count)
        for i in 0..<count {
            let next = sample(temperature: temperature, rng: &rng)
            out.append(next)
            step(code: next)
            if (i + 1) & 4095 == 0 {
                progress?(i + 1)
                if stop?() == true { break }
            }
        }
        return out
    }
}
