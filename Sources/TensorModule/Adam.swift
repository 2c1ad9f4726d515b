#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// Adam's constants (Kingma & Ba 2015; PyTorch's defaults).
public struct AdamConfig: Sendable, Hashable, Codable {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "Adam betas must lie in [0, 1)")
        precondition(epsilon > 0, "Adam epsilon must be positive")
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }
}

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
    let b1 = config.beta1, b2 = config.beta2
    let c1 = 1 - Float(pow(Double(b1), Double(t)))
    let c2 = 1 - Float(pow(Double(b2), Double(t)))
    // p −= (lr / c1) · m / (√v / √c2 + ε)
    let stepSize = lr / c1
    let invSqrtC2 = 1 / c2.squareRoot()
    let vb1 = Float8(repeating: b1), vb2 = Float8(repeating: b2)
    let va1 = Float8(repeating: 1 - b1), va2 = Float8(repeating: 1 - b2)
    let vs = Float8(repeating: stepSize), vc = Float8(repeating: invSqrtC2), ve = Float8(repeating: config.epsilon)
    var i = 0
    while i + 8 <= n {
        let g = load8(grads + i)
        let mi = (vb1 * load8(m + i)).addingProduct(va1, g)
        let vi = (vb2 * load8(v + i)).addingProduct(va2 * g, g)
        store8(mi, m + i); store8(vi, v + i)
        let denom = vi.squareRoot() * vc + ve
        store8(load8(params + i) - vs * mi / denom, params + i)
        i += 8
    }
    while i < n {
        let g = grads[i]
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        params[i] -= stepSize * m[i] / (v[i].squareRoot() * invSqrtC2 + config.epsilon)
        i += 1
    }
}
