/// The architecture of an unconditional WaveNet, as one value (stored as JSON
/// in checkpoints), separate from training flags.
///
/// ```
///  codes ─ embedding(classes → R) ─ causal conv K=2 (R → R) ─ h₀
///  for each layer l (dilation dₗ):
///      hₗ ─ dilated causal conv K (R → 2D) ─ tanh·σ ─ z (D) ─┬─ 1x1 (D → R) ─ + hₗ ─ hₗ₊₁
///                                                            └─ 1x1 (D → S) ─ Σ skip
///  Σ skip ─ ReLU ─ 1x1 (S → H) ─ ReLU ─ 1x1 (H → classes) ─ softmax
/// ```
/// R = residual channels, D = dilation (gate) channels, S = skip channels,
/// H = head channels. The last layer's residual output feeds nothing; its
/// weights exist (so parameter counts match the PyTorch reference) but it is
/// not computed.
public struct WaveNetConfig: Codable, Hashable, Sendable {
    /// The widths and depth in a few characters, for messages:
    /// `R32 D32 S64 H64, 20 layers`.
    public var shape: String {
        "R\(residualChannels) D\(dilationChannels) S\(skipChannels) H\(headChannels), \(dilations.count) layers"
    }

    /// Output classes: mu-law levels (256).
    public var classes: Int
    public var residualChannels: Int
    public var dilationChannels: Int
    public var skipChannels: Int
    public var headChannels: Int
    /// Kernel width of the dilated convolutions.
    public var kernelSize: Int
    /// Kernel width of the input causal convolution.
    public var inputKernelSize: Int
    /// One dilation per layer, e.g. 1, 2, …, 512 repeated per stack.
    public var dilations: [Int]
    /// The audio rate the model is trained at, in Hz.
    public var sampleRate: Int

    public init(
        classes: Int = 256, residualChannels: Int, dilationChannels: Int, skipChannels: Int, headChannels: Int,
        kernelSize: Int = 2, inputKernelSize: Int = 2, dilations: [Int], sampleRate: Int = 16000
    ) {
        self.classes = classes
        self.residualChannels = residualChannels
        self.dilationChannels = dilationChannels
        self.skipChannels = skipChannels
        self.headChannels = headChannels
        self.kernelSize = kernelSize
        self.inputKernelSize = inputKernelSize
        self.dilations = dilations
        self.sampleRate = sampleRate
    }

    /// The fields in which `other` differs from this one, by their JSON
    /// names (`stored`: this one's value, `given`: `other`'s), for messages.
    public func differences(from other: WaveNetConfig) -> [(field: String, stored: String, given: String)] {
        func dilationText(_ d: [Int]) -> String { d.count <= 12 ? "\(d)" : "\(d.count) layers, \(Array(d.prefix(4)))…" }
        let fields: [(String, String, String)] = [
            ("classes", "\(classes)", "\(other.classes)"),
            ("residualChannels", "\(residualChannels)", "\(other.residualChannels)"),
            ("dilationChannels", "\(dilationChannels)", "\(other.dilationChannels)"),
            ("skipChannels", "\(skipChannels)", "\(other.skipChannels)"),
            ("headChannels", "\(headChannels)", "\(other.headChannels)"),
            ("kernelSize", "\(kernelSize)", "\(other.kernelSize)"),
            ("inputKernelSize", "\(inputKernelSize)", "\(other.inputKernelSize)"),
            ("dilations", dilationText(dilations), dilations == other.dilations ? dilationText(dilations) : dilationText(other.dilations)),
            ("sampleRate", "\(sampleRate)", "\(other.sampleRate)"),
        ]
        return fields.filter { $0.1 != $0.2 || ($0.0 == "dilations" && dilations != other.dilations) }
            .map { (field: $0.0, stored: $0.1, given: $0.2) }
    }

    /// Dilations 1, 2, 4, …, 2^(layersPerStack−1), repeated `stacks` times.
    public static func doublingDilations(stacks: Int, layersPerStack: Int) -> [Int] {
        Array((0..<stacks).map { _ in (0..<layersPerStack).map { 1 << $0 } }.joined())
    }

    /// The PyTorch peer's model (`wavenet_torch.py`): 2 stacks of dilations
    /// 1…512, kernel 2, residual 32, gate 2×32, skip 64, head 64; 177,632
    /// parameters, receptive field 2,048 samples (128 ms at 16 kHz).
    public static let compact = WaveNetConfig(
        residualChannels: 32, dilationChannels: 32, skipChannels: 64, headChannels: 64,
        dilations: doublingDilations(stacks: 2, layersPerStack: 10))

    /// A small model for tests and quick runs: 2 stacks of dilations 1…8,
    /// residual 16, gate 2×16, skip 32, head 32; receptive field 32 samples.
    public static let tiny = WaveNetConfig(
        residualChannels: 16, dilationChannels: 16, skipChannels: 32, headChannels: 32,
        dilations: doublingDilations(stacks: 2, layersPerStack: 4))

    /// A mid-size model: 2 stacks of dilations 1…128, residual 24, gate 2×24,
    /// skip 48, head 48; receptive field 512 samples.
    public static let small = WaveNetConfig(
        residualChannels: 24, dilationChannels: 24, skipChannels: 48, headChannels: 48,
        dilations: doublingDilations(stacks: 2, layersPerStack: 8))

    /// The named presets, for the command line.
    public static let presets: [String: WaveNetConfig] = ["tiny": .tiny, "small": .small, "compact": .compact]

    /// How many samples one output sees: the current one and
    /// `receptiveField − 1` before it.
    public var receptiveField: Int {
        (inputKernelSize - 1) + dilations.reduce(0) { $0 + (kernelSize - 1) * $1 } + 1
    }

    /// Multiply–accumulates per sample of one forward pass (all layers, as
    /// the reference counts them, including the unused last residual).
    public var forwardMACsPerSample: Int {
        let R = residualChannels, D = dilationChannels, S = skipChannels, H = headChannels
        let perLayer = kernelSize * R * 2 * D + D * R + D * S
        return inputKernelSize * R * R + dilations.count * perLayer + S * H + H * classes
    }

    /// Checks the numbers a user can set; throws a message naming the field.
    public func validate() throws(WaveNetError) {
        func check(_ ok: Bool, _ what: String) throws(WaveNetError) {
            if !ok { throw .invalidConfig(what) }
        }
        try check(classes >= 2, "classes must be at least 2 (got \(classes))")
        let channels = [("residualChannels", residualChannels), ("dilationChannels", dilationChannels),
                        ("skipChannels", skipChannels), ("headChannels", headChannels)]
        for (name, count) in channels { try check(count >= 1, "\(name) must be at least 1 (got \(count))") }
        for (name, size) in [("kernelSize", kernelSize), ("inputKernelSize", inputKernelSize)] {
            try check(size >= 1, "\(name) must be at least 1 (got \(size))")
        }
        try check(!dilations.isEmpty, "a WaveNet needs at least one layer (dilations is empty)")
        try check(dilations.allSatisfy { $0 >= 1 }, "dilations must be at least 1 (got \(dilations))")
        try check(sampleRate >= 1, "sample rate must be positive")
        // Upper bounds: a config is input (a checkpoint's header, --model-config),
        // so every size is bounded before any arithmetic or allocation uses it.
        let L = Self.limits
        try check(classes <= L.classes, "classes must be at most \(L.classes) (got \(classes))")
        for (name, count) in channels { try check(count <= L.channels, "\(name) must be at most \(L.channels) (got \(count))") }
        for (name, size) in [("kernelSize", kernelSize), ("inputKernelSize", inputKernelSize)] {
            try check(size <= L.kernel, "\(name) must be at most \(L.kernel) (got \(size))")
        }
        try check(dilations.count <= L.layers, "at most \(L.layers) layers (got \(dilations.count))")
        try check(dilations.allSatisfy { $0 <= L.dilation }, "dilations must be at most \(L.dilation)")
        try check(sampleRate <= L.sampleRate, "sample rate must be at most \(L.sampleRate) Hz (got \(sampleRate))")
        // With the bounds above neither sum can overflow.
        try check(receptiveField <= L.receptiveField, "the receptive field must be at most \(L.receptiveField) samples (got \(receptiveField))")
        let parameters = WaveNet.makeLayout(self).count
        try check(parameters <= L.parameters, "at most \(L.parameters) parameters (this config has \(parameters))")
    }

    /// Floats the generator's queues hold: each layer's last (K − 1)·d + 1
    /// inputs of R channels, and the input convolution's last Ki codes.
    public var generationHistoryFloats: Int {
        (dilations.reduce(0) { $0 + (kernelSize - 1) * $1 + 1 } + inputKernelSize) * residualChannels
    }

    /// The largest config `validate()` accepts: a model of at most 2^26
    /// parameters (256 MiB per float arena), so a hostile config cannot make
    /// a reader allocate more.
    public static let limits = (classes: 1 << 16, channels: 1 << 12, kernel: 64, layers: 1 << 12, dilation: 1 << 20,
                                sampleRate: 1_000_000, receptiveField: 1 << 24, parameters: 1 << 26)
}
