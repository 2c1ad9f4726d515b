import CPBTWaveKernels

// Softmax cross-entropy over V classes, fused forward and backward.
//
// Notation: N rows (one per predicted sample), V classes. `logits` is (N, V)
// with each row contiguous: the WaveNet head writes its logits time-major,
// so a row is 1 KiB of consecutive memory.

extension Kernels {
    /// Cross-entropy loss and its gradient in one pass over each row.
    ///
    /// For row n with target y = targets[n] (0 ≤ y < V):
    /// `loss_n = logsumexp(logits[n]) − logits[n, y]` (nats), computed with
    /// the row maximum subtracted first, so it is finite for any finite
    /// logits (a NaN logit gives a NaN loss). Writes
    /// `dlogits[n] = scale · (softmax(logits[n]) − onehot(y))`; `dlogits` may
    /// be `logits` (in place). With `bias` (V), the logits are
    /// `logits[n] + bias`. With `rounded`, `dlogits` is also written there
    /// rounded to bf16, as `roundToBF16` would (for the bf16 products that
    /// read it, without a pass of their own). Returns Σ_n loss_n in nats.
    /// Cost: one exp per logit; no allocation.
    ///
    /// - Precondition: every target lies in 0 ..< V.
    public func softmaxCrossEntropyForwardBackward(
        dlogits: UnsafeMutablePointer<Float>, dlogitsStride: Int? = nil,
        logits: UnsafePointer<Float>, logitsStride: Int? = nil, bias: UnsafePointer<Float>? = nil,
        targets: UnsafePointer<Int32>, rows N: Int, classes V: Int, gradientScale scale: Float,
        rounded: BF16Rows? = nil
    ) -> Double {
        checkTargets(targets, rows: N, classes: V)
        rounded?.check(channels: V)
        return ck_softmax_xent(table, dlogits, dlogitsStride ?? V, logits, logitsStride ?? V, bias, targets, N, Int32(V), scale,
                               rounded?.base, rounded?.stride ?? 0)
    }

    /// Cross-entropy loss only (evaluation): Σ_n loss_n in nats, the logits
    /// only read. Same conventions as `softmaxCrossEntropyForwardBackward`.
    public func softmaxCrossEntropyForward(
        logits: UnsafePointer<Float>, logitsStride: Int? = nil, bias: UnsafePointer<Float>? = nil,
        targets: UnsafePointer<Int32>, rows N: Int, classes V: Int
    ) -> Double {
        checkTargets(targets, rows: N, classes: V)
        return ck_softmax_xent(table, nil, 0, logits, logitsStride ?? V, bias, targets, N, Int32(V), 0, nil, 0)
    }

    private func checkTargets(_ targets: UnsafePointer<Int32>, rows N: Int, classes V: Int) {
        precondition(V >= 1 && N >= 0, "softmax needs at least one class")
        for n in 0..<N {
            precondition(targets[n] >= 0 && Int(targets[n]) < V, "target \(targets[n]) out of range 0..<\(V)")
        }
    }
}
