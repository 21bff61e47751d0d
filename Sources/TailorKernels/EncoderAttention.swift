// Bidirectional self-attention of one head over one text (encoders: every token sees every
// token of its own text, none of the padding). Replaces two small sgemm calls per head, whose
// packing and zeroing passes cost more than the products at these sizes (n ≈ 30–250, D = 32–64).
import Foundation

public enum EncoderAttention {
    typealias V8 = SIMD8<Float>
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
    @inline(__always) static func store(_ p: UnsafeMutablePointer<Float>, _ v: V8) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self) }

    /// Floats of scratch `head` needs for a text of n tokens and head width D.
    public static func scratchCount(tokens n: Int, headDim D: Int) -> Int { (D + 2) * paddedKeys(n) }

    @inline(__always) static func paddedKeys(_ n: Int) -> Int { (n + 15) / 16 * 16 }

    /// out[i] = softmax_j(scale · q_i·k_j) · V for i, j < n. Row r of q, k and v starts at
    /// `q + r·stride` (likewise k, v); row i of the output at `out + i·outStride`.
    public static func head(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int,
                            out: UnsafeMutablePointer<Float>, outStride: Int, tokens n: Int, headDim D: Int,
                            scale: Float, scratch: UnsafeMutablePointer<Float>) {
        guard n > 0 else { return }
        guard D % 8 == 0 else {
            reference(q: q, k: k, v: v, stride: stride, out: out, outStride: outStride, tokens: n, headDim: D, scale: scale)
            return
        }
        let n16 = paddedKeys(n)
        // Keys transposed, [D × n16] (n rounded up to 16), padding columns zero.
        let kt = scratch, s0 = scratch + D * n16, s1 = s0 + n16
        transposeKeys(k, stride: stride, tokens: n, headDim: D, into: kt, rowLength: n16)
        var i = 0
        while i < n {
            let two = i + 1 < n
            scores(q + i * stride, q + (two ? i + 1 : i) * stride, kt, n16, D, scale, s0, s1)
            // Unnormalized exponentials; the weighted sums divide by their total once at the end.
            let inv0 = 1 / VectorMath.expShifted(s0, n)
            if two {
                let inv1 = 1 / VectorMath.expShifted(s1, n)
                mix2(s0, s1, v, stride, n, D, out + i * outStride, out + (i + 1) * outStride, inv0, inv1)
            } else {
                mix(s0, v, stride, n, D, out + i * outStride, inv0)
            }
            i += 2
        }
    }

    /// kt[d·rowLength + j] = k[j·stride + d] for j < n, and 0 for n ≤ j < rowLength.
    /// 8×8 tiles go through registers (eight row loads, 24 shuffles, eight stores), the last
    /// n mod 8 keys padded with zero rows; without AVX2, one float at a time.
    static func transposeKeys(_ k: UnsafePointer<Float>, stride: Int, tokens n: Int, headDim D: Int,
                              into kt: UnsafeMutablePointer<Float>, rowLength: Int) {
        var j = 0
        #if TAILOR_AVX2
        if D % 8 == 0 {
            while j + 8 <= n {
                var d = 0
                while d < D {
                    let src = k + j * stride + d
                    let c = transpose8(load(src), load(src + stride), load(src + 2 * stride), load(src + 3 * stride),
                                       load(src + 4 * stride), load(src + 5 * stride), load(src + 6 * stride), load(src + 7 * stride))
                    let dst = kt + d * rowLength + j
                    store(dst, c.0); store(dst + rowLength, c.1); store(dst + 2 * rowLength, c.2); store(dst + 3 * rowLength, c.3)
                    store(dst + 4 * rowLength, c.4); store(dst + 5 * rowLength, c.5); store(dst + 6 * rowLength, c.6); store(dst + 7 * rowLength, c.7)
                    d += 8
                }
                j += 8
            }
            // The last n mod 8 keys as one tile with zero rows below them (a float at a time,
            // they cost as much as all the whole tiles of a 70-token text).
            if j < n, j + 8 <= rowLength {
                let r = n - j
                var d = 0
                while d < D {
                    let src = k + j * stride + d
                    @inline(__always) func key(_ i: Int) -> V8 { i < r ? load(src + i * stride) : V8() }
                    let c = transpose8(key(0), key(1), key(2), key(3), key(4), key(5), key(6), key(7))
                    let dst = kt + d * rowLength + j
                    store(dst, c.0); store(dst + rowLength, c.1); store(dst + 2 * rowLength, c.2); store(dst + 3 * rowLength, c.3)
                    store(dst + 4 * rowLength, c.4); store(dst + 5 * rowLength, c.5); store(dst + 6 * rowLength, c.6); store(dst + 7 * rowLength, c.7)
                    d += 8
                }
                j += 8
            }
        }
        #endif
        for d in 0..<D {
            let row = kt + d * rowLength
            var t = j
            while t < n { row[t] = k[t * stride + d]; t += 1 }
            for t in Swift.max(n, j)..<rowLength { row[t] = 0 }
        }
    }

    /// s0[j] = scale·q0·k_j and s1[j] = scale·q1·k_j for j < n16 (a multiple of 16).
    @inline(__always)
    static func scores(_ q0: UnsafePointer<Float>, _ q1: UnsafePointer<Float>, _ kt: UnsafePointer<Float>, _ n16: Int, _ D: Int,
                       _ scale: Float, _ s0: UnsafeMutablePointer<Float>, _ s1: UnsafeMutablePointer<Float>) {
        let sc = V8(repeating: scale)
        var j = 0
        while j + 32 <= n16 {
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8(), b0 = V8(), b1 = V8(), b2 = V8(), b3 = V8()
            var r = kt + j
            for d in 0..<D {
                let k0 = load(r), k1 = load(r + 8), k2 = load(r + 16), k3 = load(r + 24)
                let x = V8(repeating: q0[d]), y = V8(repeating: q1[d])
                a0.addProduct(x, k0); a1.addProduct(x, k1); a2.addProduct(x, k2); a3.addProduct(x, k3)
                b0.addProduct(y, k0); b1.addProduct(y, k1); b2.addProduct(y, k2); b3.addProduct(y, k3)
                r += n16
            }
            store(s0 + j, a0 * sc); store(s0 + j + 8, a1 * sc); store(s0 + j + 16, a2 * sc); store(s0 + j + 24, a3 * sc)
            store(s1 + j, b0 * sc); store(s1 + j + 8, b1 * sc); store(s1 + j + 16, b2 * sc); store(s1 + j + 24, b3 * sc)
            j += 32
        }
        if j < n16 {
            var a0 = V8(), a1 = V8(), b0 = V8(), b1 = V8()
            var r = kt + j
            for d in 0..<D {
                let k0 = load(r), k1 = load(r + 8)
                let x = V8(repeating: q0[d]), y = V8(repeating: q1[d])
                a0.addProduct(x, k0); a1.addProduct(x, k1); b0.addProduct(y, k0); b1.addProduct(y, k1)
                r += n16
            }
            store(s0 + j, a0 * sc); store(s0 + j + 8, a1 * sc); store(s1 + j, b0 * sc); store(s1 + j + 8, b1 * sc)
        }
    }

    /// o = c·Σ_{j<n} p[j]·v_j over D values (D a multiple of 8).
    @inline(__always)
    static func mix(_ p: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ stride: Int, _ n: Int, _ D: Int, _ o: UnsafeMutablePointer<Float>,
                    _ c: Float) {
        let vc = V8(repeating: c)
        var d = 0
        while d + 32 <= D {
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
            var r = v + d
            for j in 0..<n {
                let x = V8(repeating: p[j])
                a0.addProduct(x, load(r)); a1.addProduct(x, load(r + 8)); a2.addProduct(x, load(r + 16)); a3.addProduct(x, load(r + 24))
                r += stride
            }
            store(o + d, a0 * vc); store(o + d + 8, a1 * vc); store(o + d + 16, a2 * vc); store(o + d + 24, a3 * vc)
            d += 32
        }
        while d < D {
            var a = V8()
            for j in 0..<n { a.addProduct(V8(repeating: p[j]), load(v + j * stride + d)) }
            store(o + d, a * vc)
            d += 8
        }
    }

    /// o0 = c0·Σ_{j<n} p0[j]·v_j and o1 = c1·Σ_{j<n} p1[j]·v_j: each value row loaded once for both.
    @inline(__always)
    static func mix2(_ p0: UnsafePointer<Float>, _ p1: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ stride: Int, _ n: Int,
                     _ D: Int, _ o0: UnsafeMutablePointer<Float>, _ o1: UnsafeMutablePointer<Float>, _ c0: Float, _ c1: Float) {
        let x0 = V8(repeating: c0), x1 = V8(repeating: c1)
        var d = 0
        while d + 32 <= D {
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8(), b0 = V8(), b1 = V8(), b2 = V8(), b3 = V8()
            var r = v + d
            for j in 0..<n {
                let v0 = load(r), v1 = load(r + 8), v2 = load(r + 16), v3 = load(r + 24)
                r += stride
                let x = V8(repeating: p0[j]), y = V8(repeating: p1[j])
                a0.addProduct(x, v0); a1.addProduct(x, v1); a2.addProduct(x, v2); a3.addProduct(x, v3)
                b0.addProduct(y, v0); b1.addProduct(y, v1); b2.addProduct(y, v2); b3.addProduct(y, v3)
            }
            store(o0 + d, a0 * x0); store(o0 + d + 8, a1 * x0); store(o0 + d + 16, a2 * x0); store(o0 + d + 24, a3 * x0)
            store(o1 + d, b0 * x1); store(o1 + d + 8, b1 * x1); store(o1 + d + 16, b2 * x1); store(o1 + d + 24, b3 * x1)
            d += 32
        }
        if d < D {
            mix(p0, v + d, stride, n, D - d, o0 + d, c0)
            mix(p1, v + d, stride, n, D - d, o1 + d, c1)
        }
    }

    /// The plain loops: scores, max-subtracted softmax, weighted sum of values.
    public static func reference(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int,
                                 out: UnsafeMutablePointer<Float>, outStride: Int, tokens n: Int, headDim D: Int, scale: Float) {
        var s = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var m = -Float.infinity
            for j in 0..<n {
                var dot: Float = 0
                for d in 0..<D { dot += q[i * stride + d] * k[j * stride + d] }
                s[j] = dot * scale
                m = max(m, s[j])
            }
            var sum: Float = 0
            for j in 0..<n { s[j] = exp(s[j] - m); sum += s[j] }
            for d in 0..<D {
                var acc: Float = 0
                for j in 0..<n { acc += s[j] * v[j * stride + d] }
                out[i * outStride + d] = acc / sum
            }
        }
    }
}

#if TAILOR_AVX2
import _Builtin_intrinsics.intel

extension EncoderAttention {
    /// The columns of the 8×8 matrix with rows r0…r7: pairs of rows interleaved (unpack), then
    /// pairs of pairs (unpack as 64-bit), then the 128-bit halves combined.
    @inline(__always)
    static func transpose8(_ r0: V8, _ r1: V8, _ r2: V8, _ r3: V8, _ r4: V8, _ r5: V8, _ r6: V8, _ r7: V8)
        -> (V8, V8, V8, V8, V8, V8, V8, V8) {
        let t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1)
        let t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3)
        let t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5)
        let t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7)
        func lo(_ a: __m256, _ b: __m256) -> V8 { _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a), _mm256_castps_pd(b))) }
        func hi(_ a: __m256, _ b: __m256) -> V8 { _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a), _mm256_castps_pd(b))) }
        let u0 = lo(t0, t2), u1 = hi(t0, t2), u2 = lo(t1, t3), u3 = hi(t1, t3)
        let u4 = lo(t4, t6), u5 = hi(t4, t6), u6 = lo(t5, t7), u7 = hi(t5, t7)
        return (V8(lowHalf: u0.lowHalf, highHalf: u4.lowHalf), V8(lowHalf: u1.lowHalf, highHalf: u5.lowHalf),
                V8(lowHalf: u2.lowHalf, highHalf: u6.lowHalf), V8(lowHalf: u3.lowHalf, highHalf: u7.lowHalf),
                V8(lowHalf: u0.highHalf, highHalf: u4.highHalf), V8(lowHalf: u1.highHalf, highHalf: u5.highHalf),
                V8(lowHalf: u2.highHalf, highHalf: u6.highHalf), V8(lowHalf: u3.highHalf, highHalf: u7.highHalf))
    }
}
#endif
