// The decoder's operations with their backward passes, each next to its forward (llm.c's layout):
// fp32, row-major, N rows (tokens) of C channels. Forwards save what their backwards need.
// Backwards accumulate (+=) into gradient buffers, so that gradients of shared inputs add up.
import CBLAS
import Foundation

public enum Ops {
    // MARK: matmul: out[N×O] = inp[N×I] · W[O×I]ᵀ (+ bias)

    public static func matmulForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                     _ bias: UnsafePointer<Float>?, n: Int, i: Int, o: Int) {
        // With a bias, out starts as it and the product adds to it (β = 1).
        if let bias { for r in 0..<n { (out + r * o).update(from: bias, count: o) } }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(o), Int32(i), 1, inp, Int32(i), w, Int32(i),
                    bias == nil ? 0 : 1, out, Int32(o))
    }

    /// dinp += dout·W; dW += doutᵀ·inp; dbias += Σ dout (each optional).
    public static func matmulBackward(dinp: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
                                      dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>, n: Int, i: Int, o: Int) {
        if let dinp { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(i), Int32(o), 1, dout, Int32(o), w, Int32(i), 1, dinp, Int32(i)) }
        if let dw { cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(o), Int32(i), Int32(n), 1, dout, Int32(o), inp, Int32(i), 1, dw, Int32(i)) }
        if let dbias { for r in 0..<n { for c in 0..<o { dbias[c] += dout[r * o + c] } } }
    }

    // MARK: RMSNorm: out = inp / rms(inp) · weight

    public static func rmsnormForward(_ out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                                      _ weight: UnsafePointer<Float>, n: Int, c: Int, eps: Float) {
        for r in 0..<n {
            let x = inp + r * c, y = out + r * c
            var ss: Float = 0
            for j in 0..<c { ss += x[j] * x[j] }
            let s = 1 / (ss / Float(c) + eps).squareRoot()
            rstd[r] = s
            for j in 0..<c { y[j] = x[j] * s * weight[j] }
        }
    }

    /// With x̂ = x·s: dx = s·(g⊙w − x̂·mean(g⊙w⊙x̂)); dw += Σ g⊙x̂.
    public static func rmsnormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                       inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, n: Int, c: Int) {
        for r in 0..<n {
            let x = inp + r * c, g = dout + r * c, dx = dinp + r * c, s = rstd[r]
            var dot: Float = 0
            for j in 0..<c { dot += g[j] * weight[j] * x[j] * s }
            let m = dot / Float(c)
            for j in 0..<c {
                let xh = x[j] * s
                dx[j] += s * (g[j] * weight[j] - xh * m)
                dweight?[j] += g[j] * xh
            }
        }
    }

    // MARK: SwiGLU: out = silu(gate) ⊙ up

    public static func swigluForward(_ out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for k in 0..<count { let g = gate[k]; out[k] = g / (1 + exp(-g)) * up[k] }
    }

    public static func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                      gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for k in 0..<count {
            let g = gate[k], sig = 1 / (1 + exp(-g))
            let silu = g * sig
            dup[k] += dout[k] * silu
            dgate[k] += dout[k] * up[k] * (sig * (1 + g * (1 - sig)))
        }
    }

    // MARK: RoPE over heads of `headDim` in rows of `heads × headDim`; normal (2i, 2i+1) pairs
    // or NeoX (i, i + d/2) pairs. positions[r] is row r's position.

    public static func rope(_ x: UnsafeMutablePointer<Float>, n: Int, heads: Int, headDim: Int, positions: [Int],
                            theta: Float, neox: Bool, inverse: Bool = false) {
        let half = headDim / 2
        for r in 0..<n {
            let p = Float(positions[r])
            for h in 0..<heads {
                let v = x + r * heads * headDim + h * headDim
                for i in 0..<half {
                    let freq = pow(theta, -Float(2 * i) / Float(headDim))
                    let a = p * freq
                    let cs = cos(a), sn = inverse ? -sin(a) : sin(a)
                    let (i0, i1) = neox ? (i, i + half) : (2 * i, 2 * i + 1)
                    let x0 = v[i0], x1 = v[i1]
                    v[i0] = x0 * cs - x1 * sn
                    v[i1] = x0 * sn + x1 * cs
                }
            }
        }
    }

    /// RoPE is a rotation: its backward rotates the gradient back (dx = Rᵀ·dout), in place.
    public static func ropeBackward(_ d: UnsafeMutablePointer<Float>, n: Int, heads: Int, headDim: Int, positions: [Int], theta: Float, neox: Bool) {
        rope(d, n: n, heads: heads, headDim: headDim, positions: positions, theta: theta, neox: neox, inverse: true)
    }

    // MARK: causal attention with grouped-query heads, for one sequence of T tokens.
    // q: [T × Hq·D], k, v: [T × Hkv·D], out: [T × Hq·D], probs saved: [Hq × T × T].

    public static func attentionForward(_ out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                        t: Int, heads: Int, kvHeads: Int, headDim d: Int) {
        let scale = 1 / Float(d).squareRoot(), group = heads / kvHeads
        let qs = heads * d, ks = kvHeads * d
        for h in 0..<heads {
            let kh = h / group
            for i in 0..<t {
                let p = probs + (h * t + i) * t
                var mx = -Float.infinity
                for j in 0...i {
                    var s: Float = 0
                    for c in 0..<d { s += q[i * qs + h * d + c] * k[j * ks + kh * d + c] }
                    p[j] = s * scale
                    mx = max(mx, p[j])
                }
                var sum: Float = 0
                for j in 0...i { p[j] = exp(p[j] - mx); sum += p[j] }
                for j in 0...i { p[j] /= sum }
                for j in (i + 1)..<max(i + 1, t) { p[j] = 0 }
                let o = out + i * qs + h * d
                for c in 0..<d { o[c] = 0 }
                for j in 0...i { let w = p[j]; for c in 0..<d { o[c] += w * v[j * ks + kh * d + c] } }
            }
        }
    }

    public static func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                         dout: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                         t: Int, heads: Int, kvHeads: Int, headDim d: Int) {
        let scale = 1 / Float(d).squareRoot(), group = heads / kvHeads
        let qs = heads * d, ks = kvHeads * d
        var dp = [Float](repeating: 0, count: t)
        for h in 0..<heads {
            let kh = h / group
            for i in 0..<t {
                let p = probs + (h * t + i) * t
                let g = dout + i * qs + h * d
                // dP = dO·Vᵀ; dV += Pᵀ·dO
                for j in 0...i {
                    var s: Float = 0
                    for c in 0..<d { s += g[c] * v[j * ks + kh * d + c] }
                    dp[j] = s
                    for c in 0..<d { dv[j * ks + kh * d + c] += p[j] * g[c] }
                }
                // softmax backward: dS = P ⊙ (dP − Σ P·dP)
                var dot: Float = 0
                for j in 0...i { dot += p[j] * dp[j] }
                for j in 0...i {
                    let ds = p[j] * (dp[j] - dot) * scale
                    for c in 0..<d {
                        dq[i * qs + h * d + c] += ds * k[j * ks + kh * d + c]
                        dk[j * ks + kh * d + c] += ds * q[i * qs + h * d + c]
                    }
                }
            }
        }
    }

    // MARK: cross-entropy over logits [N × V] with targets; target < 0 is masked out.
    // Returns the mean loss over unmasked rows and writes dlogits (for that mean).

    public static func crossEntropy(_ logits: UnsafePointer<Float>, targets: [Int], v: Int, dlogits: UnsafeMutablePointer<Float>?) -> (loss: Double, count: Int) {
        let n = targets.count
        let count = targets.filter { $0 >= 0 }.count
        var loss = 0.0
        for r in 0..<n {
            let row = logits + r * v
            let t = targets[r]
            if t < 0 { if let dlogits { for j in 0..<v { dlogits[r * v + j] = 0 } }; continue }
            var mx = -Float.infinity
            for j in 0..<v { mx = max(mx, row[j]) }
            var sum: Double = 0
            for j in 0..<v { sum += Double(exp(row[j] - mx)) }
            let lse = Double(mx) + log(sum)
            loss += lse - Double(row[t])
            if let dlogits {
                let inv = 1 / Double(max(count, 1))
                for j in 0..<v {
                    let p = exp(Double(row[j]) - lse)
                    dlogits[r * v + j] = Float((p - (j == t ? 1 : 0)) * inv)
                }
            }
        }
        return (count > 0 ? loss / Double(count) : 0, count)
    }

    // MARK: embedding: out[r] = table[ids[r]]; backward scatters into the rows used.

    public static func embeddingForward(_ out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, ids: [Int], c: Int) {
        for (r, id) in ids.enumerated() { (out + r * c).update(from: table + id * c, count: c) }
    }

    public static func embeddingBackward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, ids: [Int], c: Int) {
        for (r, id) in ids.enumerated() { for j in 0..<c { dtable[id * c + j] += dout[r * c + j] } }
    }

    // MARK: LoRA on a frozen projection: out += scale · (inp · Aᵀ) · Bᵀ, A: [r × I], B: [O × r].
    // Saves u = inp · Aᵀ [N × r] for the backward.

    public static func loraForward(_ out: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                   a: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int, i: Int, o: Int, rank: Int, scale: Float) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(rank), Int32(i), 1, inp, Int32(i), a, Int32(i), 0, u, Int32(rank))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(o), Int32(rank), scale, u, Int32(rank), b, Int32(rank), 1, out, Int32(o))
    }

    /// dB += scale·doutᵀ·u; du = scale·dout·B; dA += duᵀ·inp; dinp += du·A.
    public static func loraBackward(dinp: UnsafeMutablePointer<Float>?, da: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>,
                                    dout: UnsafePointer<Float>, u: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                    a: UnsafePointer<Float>, b: UnsafePointer<Float>, n: Int, i: Int, o: Int, rank: Int, scale: Float) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(o), Int32(rank), Int32(n), scale, dout, Int32(o), u, Int32(rank), 1, db, Int32(rank))
        var du = [Float](repeating: 0, count: n * rank)
        du.withUnsafeMutableBufferPointer { dup in
            let d = dup.baseAddress!
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(rank), Int32(o), scale, dout, Int32(o), b, Int32(rank), 0, d, Int32(rank))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rank), Int32(i), Int32(n), 1, d, Int32(rank), inp, Int32(i), 1, da, Int32(i))
            if let dinp { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(i), Int32(rank), 1, d, Int32(rank), a, Int32(i), 1, dinp, Int32(i)) }
        }
    }
}
