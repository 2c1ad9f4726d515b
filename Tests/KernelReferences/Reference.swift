import RealModule
import PBTWaveTensor

/// Naive twins of the fast kernels: plain loops over arrays, accumulating in
/// Double, written straight from the definitions (notation and layouts as in
/// PBTWaveTensor's Convolution.swift: activations (T, C), weights (K, Cout, Cin)).
/// The tests compare every fast kernel, in every variant, with its twin.
public enum Reference {
    /// C = alpha·op(A)·op(B) + beta·C, row-major, same conventions as `gemm`.
    public static func gemm(
        _ c: inout [Float], ldc: Int, _ a: [Float], lda: Int, transA: Transpose, _ b: [Float], ldb: Int, transB: Transpose,
        m: Int, n: Int, k: Int, alpha: Float, beta: Float
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA == .none ? a[i * lda + p] : a[p * lda + i]
                    let bv = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                    s += Double(av) * Double(bv)
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * s + old)
            }
        }
    }

    /// The dilated causal convolution straight from its definition:
    /// out[t, o] = bias[o] + Σ_k Σ_c W[k, o, c]·inp[t − (K−1−k)·d, c], inp (T, Cin), out (T, Cout).
    public static func causalConvForward(
        inp: [Float], weight: [Float], bias: [Float]?, time T: Int, inChannels Cin: Int, outChannels Cout: Int,
        kernelSize K: Int, dilation d: Int
    ) -> [Float] {
        var out = [Float](repeating: 0, count: T * Cout)
        for t in 0..<T {
            for o in 0..<Cout {
                var s = Double(bias?[o] ?? 0)
                for k in 0..<K {
                    let src = t - (K - 1 - k) * d
                    if src < 0 { continue }
                    for c in 0..<Cin { s += Double(weight[(k * Cout + o) * Cin + c]) * Double(inp[src * Cin + c]) }
                }
                out[t * Cout + o] = Float(s)
            }
        }
        return out
    }

    /// Gradients of `causalConvForward` for an output gradient `dout` (T, Cout).
    public static func causalConvBackward(
        dout: [Float], inp: [Float], weight: [Float], time T: Int, inChannels Cin: Int, outChannels Cout: Int,
        kernelSize K: Int, dilation d: Int
    ) -> (dinp: [Float], dweight: [Float], dbias: [Float]) {
        var dinp = [Double](repeating: 0, count: T * Cin)
        var dw = [Double](repeating: 0, count: K * Cout * Cin)
        var db = [Double](repeating: 0, count: Cout)
        for t in 0..<T {
            for o in 0..<Cout {
                let g = Double(dout[t * Cout + o])
                db[o] += g
                for k in 0..<K {
                    let src = t - (K - 1 - k) * d
                    if src < 0 { continue }
                    for c in 0..<Cin {
                        dw[(k * Cout + o) * Cin + c] += g * Double(inp[src * Cin + c])
                        dinp[src * Cin + c] += g * Double(weight[(k * Cout + o) * Cin + c])
                    }
                }
            }
        }
        return (dinp.map(Float.init), dw.map(Float.init), db.map(Float.init))
    }

    /// The gated unit of rows of pre = [a | g] (2D each): gate = [tanh(a) | σ(g)], z = tanh(a)·σ(g).
    public static func gatedForward(pre: [Float], rows: Int, channels D: Int) -> (gate: [Float], z: [Float]) {
        var gate = [Float](repeating: 0, count: rows * 2 * D), z = [Float](repeating: 0, count: rows * D)
        for r in 0..<rows {
            for j in 0..<D {
                let a = Double(pre[r * 2 * D + j]), g = Double(pre[r * 2 * D + D + j])
                let th = Double.tanh(a), sg = 1 / (1 + Double.exp(-g))
                gate[r * 2 * D + j] = Float(th)
                gate[r * 2 * D + D + j] = Float(sg)
                z[r * D + j] = Float(th * sg)
            }
        }
        return (gate, z)
    }

    /// d pre for the gated unit, from its definition.
    public static func gatedBackward(dz: [Float], pre: [Float], rows: Int, channels D: Int) -> [Float] {
        var dpre = [Float](repeating: 0, count: rows * 2 * D)
        for r in 0..<rows {
            for j in 0..<D {
                let a = Double(pre[r * 2 * D + j]), g = Double(pre[r * 2 * D + D + j])
                let th = Double.tanh(a), sg = 1 / (1 + Double.exp(-g)), gz = Double(dz[r * D + j])
                dpre[r * 2 * D + j] = Float(gz * sg * (1 - th * th))
                dpre[r * 2 * D + D + j] = Float(gz * th * sg * (1 - sg))
            }
        }
        return dpre
    }

    /// Per-row cross-entropy (nats) and (softmax − onehot)·scale, in Double.
    public static func softmaxCrossEntropy(
        logits: [Float], targets: [Int32], rows N: Int, classes V: Int, gradientScale: Float
    ) -> (losses: [Double], dlogits: [Float]) {
        var losses = [Double](repeating: 0, count: N)
        var d = [Float](repeating: 0, count: N * V)
        for n in 0..<N {
            let row = (0..<V).map { Double(logits[n * V + $0]) }
            let m = row.max()!
            let sum = row.reduce(0) { $0 + Double.exp($1 - m) }
            losses[n] = Double.log(sum) + m - row[Int(targets[n])]
            for v in 0..<V {
                let p = Double.exp(row[v] - m) / sum
                d[n * V + v] = Float((p - (v == Int(targets[n]) ? 1 : 0)) * Double(gradientScale))
            }
        }
        return (losses, d)
    }

    /// y = bias + W·x for W (rows, cols).
    public static func matvec(weight: [Float], x: [Float], bias: [Float]?, rows: Int, cols: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            var s = Double(bias?[r] ?? 0)
            for c in 0..<cols { s += Double(weight[r * cols + c]) * Double(x[c]) }
            y[r] = Float(s)
        }
        return y
    }

    /// One Adam step in Double, straight from Kingma & Ba's Algorithm 1.
    public static func adam(
        params: inout [Float], m: inout [Float], v: inout [Float], grads: [Float],
        learningRate lr: Double, step t: Int, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8
    ) {
        for i in params.indices {
            let g = Double(grads[i])
            let mi = beta1 * Double(m[i]) + (1 - beta1) * g
            let vi = beta2 * Double(v[i]) + (1 - beta2) * g * g
            let mhat = mi / (1 - Double.pow(beta1, t))
            let vhat = vi / (1 - Double.pow(beta2, t))
            params[i] = Float(Double(params[i]) - lr * mhat / (vhat.squareRoot() + epsilon))
            m[i] = Float(mi)
            v[i] = Float(vi)
        }
    }
}
