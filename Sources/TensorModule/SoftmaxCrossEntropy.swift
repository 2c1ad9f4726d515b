#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

// Softmax cross-entropy over V classes, fused forward and backward.
//
// Notation: N rows (one per predicted sample), V classes. `logits` is (N, V)
// with each row contiguous — the WaveNet head writes its logits time-major
// for exactly this reason: a row is 1 KiB of consecutive memory, where a
// (V, T) layout would make every row a 256-way strided walk.

/// Cross-entropy loss and its gradient in one pass over each row.
///
/// For row n with target y = targets[n] (0 ≤ y < V):
/// `loss_n = logsumexp(logits[n]) − logits[n, y]` (nats), computed with the
/// row maximum subtracted first, so it is finite for any finite logits.
/// Writes `dlogits[n] = scale · (softmax(logits[n]) − onehot(y))`.
/// With `bias` (V), the logits are `logits[n] + bias` (the output layer's
/// bias, added here instead of in a pass of its own).
/// `dlogits` may be the same memory as `logits` (in place).
/// Returns Σ_n loss_n in nats. Cost: one exp per logit; no allocation.
public func softmaxCrossEntropyForwardBackward(
    dlogits: UnsafeMutablePointer<Float>,
    logits: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil, targets: UnsafePointer<Int32>,
    rows N: Int, classes V: Int, gradientScale scale: Float
) -> Double {
    precondition(V >= 1, "softmax needs at least one class")
    var total = 0.0
    for n in 0..<N {
        let x = logits + n * V, dx = dlogits + n * V
        let y = Int(targets[n])
        precondition(y >= 0 && y < V, "target \(y) out of range 0..<\(V)")
        if let bias { add(dx, x, bias, count: V) }  // dx now holds the biased logits
        let xb = UnsafePointer(bias == nil ? UnsafeMutablePointer(mutating: x) : dx)
        let target = xb[y]
        let m = rowMax(xb, V)
        // e = exp(x − max) into dx, summing as we go.
        let mv = Float8(repeating: m)
        var acc = Float8()
        var i = 0
        while i + 8 <= V {
            let e = fastExp(load8(xb + i) - mv)
            store8(e, dx + i); acc += e
            i += 8
        }
        if i < V {
            let r = V - i
            let e = fastExp(loadPartial(xb + i, r, fill: -.infinity) - mv)
            storePartial(e, dx + i, r); acc += e
        }
        let sum = acc.sum()
        // In Double: a row's loss is a small difference of larger numbers.
        total += log(Double(sum)) + Double(m) - Double(target)
        let k = Float8(repeating: scale / sum)
        i = 0
        while i + 8 <= V { store8(load8(dx + i) * k, dx + i); i += 8 }
        while i < V { dx[i] *= scale / sum; i += 1 }
        dx[y] -= scale
    }
    return total
}

/// Cross-entropy loss only (evaluation): Σ_n loss_n in nats. If `losses` is
/// given, row n's loss is stored in `losses[n]`. With `bias` (V), the
/// logits are `logits[n] + bias` (added on the fly; `logits` is only read).
public func softmaxCrossEntropyForward(
    losses: UnsafeMutablePointer<Float>? = nil,
    logits: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil, targets: UnsafePointer<Int32>,
    rows N: Int, classes V: Int
) -> Double {
    precondition(V >= 1, "softmax needs at least one class")
    @inline(__always) func biased(_ x: UnsafePointer<Float>, _ i: Int) -> Float8 {
        bias.map { load8(x + i) + load8($0 + i) } ?? load8(x + i)
    }
    @inline(__always) func biased(_ x: UnsafePointer<Float>, _ i: Int, _ r: Int, fill: Float) -> Float8 {
        bias.map { loadPartial(x + i, r, fill: fill) + loadPartial($0 + i, r) } ?? loadPartial(x + i, r, fill: fill)
    }
    var total = 0.0
    for n in 0..<N {
        let x = logits + n * V
        let y = Int(targets[n])
        precondition(y >= 0 && y < V, "target \(y) out of range 0..<\(V)")
        let tail = V % 8, bulk = V - tail
        var mv = Float8(repeating: -.infinity)
        var i = 0
        while i < bulk { mv = pointwiseMaxFast(mv, biased(x, i)); i += 8 }
        if tail > 0 { mv = pointwiseMaxFast(mv, biased(x, bulk, tail, fill: -.infinity)) }
        let m = mv.max()
        let mb = Float8(repeating: m)
        var acc = Float8()
        i = 0
        while i < bulk { acc += fastExp(biased(x, i) - mb); i += 8 }
        if tail > 0 { acc += fastExp(biased(x, bulk, tail, fill: -.infinity) - mb) }
        let target = x[y] + (bias?[y] ?? 0)
        let loss = log(Double(acc.sum())) + Double(m) - Double(target)
        losses?[n] = Float(loss)
        total += loss
    }
    return total
}

@inlinable @inline(__always)
func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var mv = Float8(repeating: -.infinity)
    var i = 0
    while i + 8 <= n { mv = pointwiseMaxFast(mv, load8(x + i)); i += 8 }
    var m = mv.max()
    while i < n { m = max(m, x[i]); i += 1 }
    return m
}

/// Lane-wise maximum without the generic (out-of-line) `pointwiseMax`.
@inlinable @inline(__always)
func pointwiseMaxFast(_ a: Float8, _ b: Float8) -> Float8 {
    a.replacing(with: b, where: b .> a)
}
