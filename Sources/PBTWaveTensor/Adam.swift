import CPBTWaveKernels
import RealModule

/// Adam's constants (Kingma & Ba 2015; PyTorch's defaults).
public struct AdamConfig: Sendable, Hashable, Codable {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        precondition(isValid, "Adam betas must lie in [0, 1) and epsilon must be positive and finite")
    }

    /// Whether the settings are ones `init` accepts (betas in [0, 1), a
    /// positive finite epsilon): decoded ones, e.g. a checkpoint's, skip it.
    public var isValid: Bool {
        (0..<1).contains(beta1) && (0..<1).contains(beta2) && epsilon > 0 && epsilon.isFinite
    }
}

extension Kernels {
    /// One bias-corrected Adam step over a whole parameter arena, in one pass.
    ///
    /// `params`, `grads`, `m` (first moment) and `v` (second moment) each hold
    /// `count` floats. `step` is the 1-based number of this update (t):
    ///
    ///     m ← β1·m + (1−β1)·g        v ← β2·v + (1−β2)·g²
    ///     p ← p − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + ε)
    ///
    /// exactly as PyTorch's `torch.optim.Adam` (no weight decay). No allocation.
    public func adamUpdate(
        params: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
        grads: UnsafePointer<Float>, count n: Int,
        learningRate lr: Float, step t: Int, config: AdamConfig = AdamConfig()
    ) {
        precondition(t >= 1, "Adam step counts from 1, got \(t)")
        let c1 = 1 - Float(Double.pow(Double(config.beta1), t))
        let c2 = 1 - Float(Double.pow(Double(config.beta2), t))
        ck_adam(table, params, m, v, grads, n, lr, config.beta1, config.beta2, config.epsilon, c1, c2)
    }
}
