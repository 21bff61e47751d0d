// The encoder's operations (BERT family) with their backward passes, in Ops's conventions:
// fp32, row-major, forwards save what their backwards need, backwards accumulate (+=).
import Foundation

extension Ops {
    // MARK: LayerNorm: out = (inp − mean) / sqrt(var + eps) · weight + bias

    public static func layernormForward(_ out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                        _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                                        n: Int, c: Int, eps: Float) {
        for r in 0..<n {
            let x = inp + r * c, y = out + r * c
            var m: Float = 0
            for j in 0..<c { m += x[j] }
            m /= Float(c)
            var v: Float = 0
            for j in 0..<c { let d = x[j] - m; v += d * d }
            let s = 1 / (v / Float(c) + eps).squareRoot()
            mean[r] = m; rstd[r] = s
            for j in 0..<c { y[j] = (x[j] - m) * s * weight[j] + bias[j] }
        }
    }

    /// With x̂ = (x − μ)·s and g = dout⊙w: dx = s·(g − mean(g) − x̂·mean(g⊙x̂)); dw += Σ dout⊙x̂; db += Σ dout.
    public static func layernormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
                                         dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, n: Int, c: Int) {
        for r in 0..<n {
            let x = inp + r * c, d = dout + r * c, dx = dinp + r * c, m = mean[r], s = rstd[r]
            var gMean: Float = 0, gxMean: Float = 0
            for j in 0..<c {
                let g = d[j] * weight[j], xh = (x[j] - m) * s
                gMean += g; gxMean += g * xh
            }
            gMean /= Float(c); gxMean /= Float(c)
            for j in 0..<c {
                let xh = (x[j] - m) * s
                dx[j] += s * (d[j] * weight[j] - gMean - xh * gxMean)
                dweight?[j] += d[j] * xh
                dbias?[j] += d[j]
            }
        }
    }

    // MARK: GELU, the exact (erf) form BERT uses: x·Φ(x)

    public static func geluForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        for k in 0..<count { let x = inp[k]; out[k] = 0.5 * x * (1 + erf(x * 0.70710678118654752)) }
    }

    /// d/dx x·Φ(x) = Φ(x) + x·φ(x).
    public static func geluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        for k in 0..<count {
            let x = inp[k]
            let cdf = 0.5 * (1 + erf(x * 0.70710678118654752))
            let pdf = exp(-0.5 * x * x) * 0.39894228040143268
            dinp[k] += dout[k] * (cdf + x * pdf)
        }
    }

    // MARK: bidirectional attention over one sequence of T tokens whose first `valid` are real
    // (the rest padding: never attended to). q, k, v, out: [T × H·D]; probs saved: [H × T × T].

    public static func maskedAttentionForward(_ out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                                              q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                              t: Int, valid: Int, heads: Int, headDim d: Int) {
        let scale = 1 / Float(d).squareRoot(), w = heads * d
        for h in 0..<heads {
            for i in 0..<t {
                let p = probs + (h * t + i) * t
                var mx = -Float.infinity
                for j in 0..<valid {
                    var s: Float = 0
                    for c in 0..<d { s += q[i * w + h * d + c] * k[j * w + h * d + c] }
                    p[j] = s * scale
                    mx = max(mx, p[j])
                }
                var sum: Float = 0
                for j in 0..<valid { p[j] = exp(p[j] - mx); sum += p[j] }
                for j in 0..<valid { p[j] /= sum }
                for j in valid..<t { p[j] = 0 }
                let o = out + i * w + h * d
                for c in 0..<d { o[c] = 0 }
                for j in 0..<valid { let a = p[j]; for c in 0..<d { o[c] += a * v[j * w + h * d + c] } }
            }
        }
    }

    public static func maskedAttentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                               dout: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                                               q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                               t: Int, valid: Int, heads: Int, headDim d: Int) {
        let scale = 1 / Float(d).squareRoot(), w = heads * d
        var dp = [Float](repeating: 0, count: t)
        for h in 0..<heads {
            for i in 0..<t {
                let p = probs + (h * t + i) * t, g = dout + i * w + h * d
                for j in 0..<valid {
                    var s: Float = 0
                    for c in 0..<d { s += g[c] * v[j * w + h * d + c] }
                    dp[j] = s
                    for c in 0..<d { dv[j * w + h * d + c] += p[j] * g[c] }
                }
                var dot: Float = 0
                for j in 0..<valid { dot += p[j] * dp[j] }
                for j in 0..<valid {
                    let ds = p[j] * (dp[j] - dot) * scale
                    for c in 0..<d {
                        dq[i * w + h * d + c] += ds * k[j * w + h * d + c]
                        dk[j * w + h * d + c] += ds * q[i * w + h * d + c]
                    }
                }
            }
        }
    }

    // MARK: mean pooling over the first `valid` of T rows of C channels

    public static func meanPoolForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, valid: Int, c: Int) {
        for j in 0..<c { out[j] = 0 }
        for r in 0..<valid { for j in 0..<c { out[j] += inp[r * c + j] } }
        for j in 0..<c { out[j] /= Float(max(valid, 1)) }
    }

    public static func meanPoolBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, valid: Int, c: Int) {
        let inv = 1 / Float(max(valid, 1))
        for r in 0..<valid { for j in 0..<c { dinp[r * c + j] += dout[j] * inv } }
    }
}
