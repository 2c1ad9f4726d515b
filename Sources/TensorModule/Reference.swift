#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// Naive twins of the fast kernels: plain loops over arrays, accumulating in
/// Double, written straight from the definitions. The tests compare every fast
/// kernel with its twin; nothing else should call these (they are slow).
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
    /// out[b,o,t] = bias[o] + Σ_k Σ_c W[k,o,c]·inp[b,c,t−(K−1−k)·d].
    public static func causalConvForward(
        inp: [Float], weight: [Float], bias: [Float]?, batch B: Int, inChannels Cin: Int, outChannels Cout: Int,
        time T: Int, kernelSize K: Int, dilation d: Int
    ) -> [Float] {
        var out = [Float](repeating: 0, count: B * Cout * T)
        for b in 0..<B {
            for o in 0..<Cout {
                for t in 0..<T {
                    var s = Double(bias?[o] ?? 0)
                    for k in 0..<K {
                        let src = t - (K - 1 - k) * d
                        if src < 0 { continue }
                        for c in 0..<Cin {
                            s += Double(weight[(k * Cout + o) * Cin + c]) * Double(inp[(b * Cin + c) * T + src])
                        }
                    }
                    out[(b * Cout + o) * T + t] = Float(s)
                }
            }
        }
        return out
    }

    /// Gradients of `causalConvForward` for an output gradient `dout`.
    public static func causalConvBackward(
        dout: [Float], inp: [Float], weight: [Float], batch B: Int, inChannels Cin: Int, outChannels Cout: Int,
        time T: Int, kernelSize K: Int, dilation d: Int
    ) -> (dinp: [Float], dweight: [Float], dbias: [Float]) {
        var dinp = [Double](repeating: 0, count: B * Cin * T)
        var dw = [Double](repeating: 0, count: K * Cout * Cin)
        var db = [Double](repeating: 0, count: Cout)
        for b in 0..<B {
            for o in 0..<Cout {
                for t in 0..<T {
                    let g = Double(dout[(b * Cout + o) * T + t])
                    db[o] += g
                    for k in 0..<K {
                        let src = t - (K - 1 - k) * d
                        if src < 0 { continue }
                        for c in 0..<Cin {
                            dw[(k * Cout + o) * Cin + c] += g * Double(inp[(b * Cin + c) * T + src])
                            dinp[(b * Cin + c) * T + src] += g * Double(weight[(k * Cout + o) * Cin + c])
                        }
                    }
                }
            }
        }
        return (dinp.map(Float.init), dw.map(Float.init), db.map(Float.init))
    }

    /// z = tanh(a)·σ(g) for pre = [a; g] per sequence, with libm's functions.
    public static func gatedForward(pre: [Float], batch B: Int, channels C: Int, time T: Int) -> [Float] {
        var z = [Float](repeating: 0, count: B * C * T)
        for b in 0..<B {
            for i in 0..<(C * T) {
                let a = Double(pre[b * 2 * C * T + i]), g = Double(pre[b * 2 * C * T + C * T + i])
                z[b * C * T + i] = Float(tanh(a) / (1 + exp(-g)))
            }
        }
        return z
    }

    /// d pre for the gated unit, from its definition.
    public static func gatedBackward(dz: [Float], pre: [Float], batch B: Int, channels C: Int, time T: Int) -> [Float] {
        var dpre = [Float](repeating: 0, count: B * 2 * C * T)
        for b in 0..<B {
            for i in 0..<(C * T) {
                let a = Double(pre[b * 2 * C * T + i]), g = Double(pre[b * 2 * C * T + C * T + i])
                let th = tanh(a), sg = 1 / (1 + exp(-g)), gz = Double(dz[b * C * T + i])
                dpre[b * 2 * C * T + i] = Float(gz * sg * (1 - th * th))
                dpre[b * 2 * C * T + C * T + i] = Float(gz * th * sg * (1 - sg))
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
            let sum = row.reduce(0) { $0 + exp($1 - m) }
            losses[n] = log(sum) + m - row[Int(targets[n])]
            for v in 0..<V {
                let p = exp(row[v] - m) / sum
                d[n * V + v] = Float((p - (v == Int(targets[n]) ? 1 : 0)) * Double(gradientScale))
            }
        }
        return (losses, d)
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
            let mhat = mi / (1 - pow(beta1, Double(t)))
            let vhat = vi / (1 - pow(beta2, Double(t)))
            params[i] = Float(Double(params[i]) - lr * mhat / (vhat.squareRoot() + epsilon))
            m[i] = Float(mi)
            v[i] = Float(vi)
        }
    }
}
