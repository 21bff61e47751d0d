// Vectorized transcendental functions for activations. GELU(x) = x/2 · (1 + erf(x/√2)) with erf
// from Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7) and exp by range reduction to
// 2^n · e^r, |r| ≤ ln2/2, with a degree-6 polynomial (relative error ~2e-7).

public enum VectorMath {
    /// x ← GELU(x), exact (erf) form, for n values.
    public static func gelu(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        #if TAILOR_AVX2
        while i + 8 <= n { AVX2Math.gelu8(x + i); i += 8 }
        #endif
        while i < n { x[i] = geluScalar(x[i]); i += 1 }
    }

    /// row ← softmax(row) over n values (max-subtracted, fp32).
    public static func softmax(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        let inv = 1 / expShifted(row, n)
        for k in 0..<n { row[k] *= inv }
    }

    /// row[j] ← exp(row[j] − max(row)) for n > 0 values; returns their sum (a softmax left
    /// unnormalized, for callers that divide later).
    public static func expShifted(_ row: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        #if TAILOR_AVX2
        return AVX2Math.expSubSum(row, n, AVX2Math.max(row, n))
        #else
        var m8 = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= n {
            let x = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
            m8.replace(with: x, where: x .> m8)
            j += 8
        }
        var mx = m8.max()
        while j < n { mx = max(mx, row[j]); j += 1 }
        return expSubtracting(row, n, mx)
        #endif
    }

    /// row[j] ← exp(row[j] − m) for n values; returns their sum (softmax and cross-entropy).
    public static func expSubtracting(_ row: UnsafeMutablePointer<Float>, _ n: Int, _ m: Float) -> Float {
        #if TAILOR_AVX2
        return AVX2Math.expSubSum(row, n, m)
        #else
        var sum: Float = 0
        for j in 0..<n { let e = exp(row[j] - m); row[j] = e; sum += e }
        return sum
        #endif
    }

    /// The index of the first largest of n > 0 values, as greedy decoding picks its token: one
    /// vector pass for the maximum, one to find where it first occurs (over a 49,152-entry
    /// vocabulary the scalar loop was ~1% of a decoded token). NaNs are passed over.
    public static func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
        precondition(n > 0, "argmax of no values")
        var m = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= n { m = pointwiseMax(m, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)); i += 16 }
        var best = -Float.infinity
        for k in 0..<16 where m[k] > best { best = m[k] }
        while i < n { if x[i] > best { best = x[i] }; i += 1 }
        if best == -.infinity {   // every value −∞ or NaN: the scalar rule
            var b = 0
            for k in 1..<n where x[k] > x[b] { b = k }
            return b
        }
        let target = SIMD16<Float>(repeating: best)
        i = 0
        while i + 16 <= n {
            if any(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) .== target) { break }
            i += 16
        }
        while x[i] != best { i += 1 }
        return i
    }

    /// g[i] ← silu(g[i]) · u[i] = g/(1 + exp(−g)) · u (SwiGLU) for n values.
    public static func swiglu(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        #if TAILOR_AVX2
        while i + 8 <= n { AVX2Math.swiglu8(g + i, u + i); i += 8 }
        #endif
        while i < n { let a = g[i]; g[i] = a / (1 + exp(-a)) * u[i]; i += 1 }
    }

    /// out[i] ← 1 / (1 + exp(−x[i])) for n values.
    public static func sigmoid(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        #if TAILOR_AVX2
        while i + 8 <= n { AVX2Math.sigmoid8(x + i, out + i); i += 8 }
        #endif
        while i < n { out[i] = 1 / (1 + exp(-x[i])); i += 1 }
    }

    /// d[i] ← d[i] · GELU′(x[i]) (exact form: Φ(x) + x·φ(x)) for n values.
    public static func geluBackward(_ d: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        #if TAILOR_AVX2
        while i + 8 <= n { AVX2Math.geluGrad8(d + i, x + i); i += 8 }
        #endif
        while i < n {
            let v = x[i]
            d[i] *= 0.5 * (1 + erf(v * 0.7071067811865476)) + v * exp(-0.5 * v * v) * 0.3989422804014327
            i += 1
        }
    }

    /// One AdamW update of n parameters (decoupled weight decay, bias-corrected moments):
    /// p ← p − lr·wd·p; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − lr·(m/c1)/(√(v/c2) + ε),
    /// with g = gradScale·grad. Vector and scalar paths compute the same operations in the same order.
    public static func adamW(_ p: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                             _ v: UnsafeMutablePointer<Float>, _ n: Int, lr: Float, weightDecay wd: Float, beta1 b1: Float, beta2 b2: Float,
                             c1: Float, c2: Float, eps: Float, gradScale: Float) {
        var i = 0
        #if TAILOR_AVX2
        let vlrwd = _mm256_set1_ps(lr * wd), vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), v1b1 = _mm256_set1_ps(1 - b1)
        let v1b2 = _mm256_set1_ps(1 - b2), vlr = _mm256_set1_ps(lr), vc1 = _mm256_set1_ps(c1), vc2 = _mm256_set1_ps(c2)
        let veps = _mm256_set1_ps(eps), vs = _mm256_set1_ps(gradScale)
        while i + 8 <= n {
            let g = _mm256_mul_ps(_mm256_loadu_ps(grad + i), vs)
            var pp = _mm256_loadu_ps(p + i)
            pp = _mm256_sub_ps(pp, _mm256_mul_ps(vlrwd, pp))
            let mm = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(v1b1, g))
            let vv = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(v1b2, g), g))
            let step = _mm256_div_ps(_mm256_mul_ps(vlr, _mm256_div_ps(mm, vc1)), _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vv, vc2)), veps))
            _mm256_storeu_ps(p + i, _mm256_sub_ps(pp, step))
            _mm256_storeu_ps(m + i, mm)
            _mm256_storeu_ps(v + i, vv)
            i += 8
        }
        #endif
        while i < n {
            let g = grad[i] * gradScale
            p[i] = p[i] - (lr * wd) * p[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + ((1 - b2) * g) * g
            p[i] = p[i] - (lr * (m[i] / c1)) / ((v[i] / c2).squareRoot() + eps)
            i += 1
        }
    }

    /// x ← x·scale for n values; returns Σ x² (after scaling), accumulated in double per 8-lane block.
    public static func scaleSumSquares(_ x: UnsafeMutablePointer<Float>, _ n: Int, _ scale: Float) -> Double {
        var total = 0.0, i = 0
        #if TAILOR_AVX2
        let vs = _mm256_set1_ps(scale)
        while i + 8 <= n {
            var acc = _mm256_setzero_ps()
            let end = min(n - (n - i) % 8, i + 4096)
            while i < end {
                let y = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs)
                _mm256_storeu_ps(x + i, y)
                acc = _mm256_fmadd_ps(y, y, acc)
                i += 8
            }
            total += Double(acc.sum())
        }
        #endif
        while i < n { x[i] *= scale; total += Double(x[i] * x[i]); i += 1 }
        return total
    }

    /// y[i] += x[i] for n values.
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let s = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) + UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: s, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// Layer normalization of one row in place: p ← (p − mean)/√(var + eps)·g + b over n values
    /// (population variance, as PyTorch's LayerNorm). Sums in 8 lanes, two passes.
    public static func layerNorm(_ p: UnsafeMutablePointer<Float>, _ n: Int, gain g: UnsafePointer<Float>,
                                 bias b: UnsafePointer<Float>, eps: Float) {
        guard n > 0 else { return }
        @inline(__always) func load(_ q: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
            UnsafeRawPointer(q + i).loadUnaligned(as: SIMD8<Float>.self)
        }
        let body = n / 8 * 8
        var acc = SIMD8<Float>(), sum: Float = 0
        var i = 0
        while i < body { acc += load(p, i); i += 8 }
        sum = acc.sum()
        while i < n { sum += p[i]; i += 1 }
        let mean = sum / Float(n)
        var vacc = SIMD8<Float>(), vsum: Float = 0
        let vm = SIMD8<Float>(repeating: mean)
        i = 0
        while i < body { let d = load(p, i) - vm; vacc.addProduct(d, d); i += 8 }
        vsum = vacc.sum()
        while i < n { let d = p[i] - mean; vsum += d * d; i += 1 }
        let inv = 1 / (vsum / Float(n) + eps).squareRoot()
        let vi = SIMD8<Float>(repeating: inv)
        i = 0
        while i < body {
            let y = ((load(p, i) - vm) * vi) * load(g, i) + load(b, i)
            UnsafeMutableRawPointer(p + i).storeBytes(of: y, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { p[i] = (p[i] - mean) * inv * g[i] + b[i]; i += 1 }
    }

    /// The scalar reference (libm erf).
    @inline(__always)
    public static func geluScalar(_ v: Float) -> Float { 0.5 * v * (1 + erf(v * 0.7071067811865476)) }
}

#if canImport(Glibc)
import Glibc
#endif

#if TAILOR_AVX2
import _Builtin_intrinsics.intel

enum AVX2Math {
    @inline(__always) static func exp8(_ x0: __m256) -> __m256 {
        let x = _mm256_min_ps(_mm256_max_ps(x0, _mm256_set1_ps(-87.3)), _mm256_set1_ps(88.3))
        let nf = _mm256_cvtepi32_ps(_mm256_cvtps_epi32(_mm256_mul_ps(x, _mm256_set1_ps(1.4426950408889634))))
        var r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(0.693359375), x)
        r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(-2.12194440e-4), r)
        var p = _mm256_set1_ps(1.0 / 720)
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 120))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 24))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 6))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1))
        let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nf), _mm256_set1_epi32(127)), 23))
        return _mm256_mul_ps(p, pow2)
    }

    @inline(__always) static func swiglu8(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>) {
        let a = _mm256_loadu_ps(g)
        let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), a))
        _mm256_storeu_ps(g, _mm256_mul_ps(_mm256_div_ps(a, _mm256_add_ps(_mm256_set1_ps(1), e)), _mm256_loadu_ps(u)))
    }

    @inline(__always) static func sigmoid8(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_loadu_ps(x)))
        _mm256_storeu_ps(out, _mm256_div_ps(_mm256_set1_ps(1), _mm256_add_ps(_mm256_set1_ps(1), e)))
    }

    /// Lanes 0..<r set (r in 0...8): the valid lanes of a row's last, partial vector.
    @inline(__always) static func firstLanes(_ r: Int) -> __m256i {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(Int32(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    /// row[j] ← exp(row[j] − m) for n values; returns their sum. The last n mod 8 values go
    /// through one masked vector (a scalar `exp` each cost ~80 cycles: with attention rows of
    /// 30–130 keys that tail was most of the softmax).
    static func expSubSum(_ row: UnsafeMutablePointer<Float>, _ n: Int, _ m: Float) -> Float {
        var acc = _mm256_setzero_ps()
        let vm = _mm256_set1_ps(m)
        var j = 0
        while j + 8 <= n {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm))
            _mm256_storeu_ps(row + j, e)
            acc = _mm256_add_ps(acc, e)
            j += 8
        }
        if j < n {
            let mask = firstLanes(n - j)
            let e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(row + j, mask), vm)), _mm256_castsi256_ps(mask))
            _mm256_maskstore_ps(row + j, mask, e)
            acc = _mm256_add_ps(acc, e)
        }
        return hsum(acc)
    }

    /// The largest of n > 0 values (−∞ for n = 0), the last n mod 8 through one masked vector.
    static func max(_ row: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = _mm256_set1_ps(-.infinity)
        var j = 0
        while j + 8 <= n { m = _mm256_max_ps(m, _mm256_loadu_ps(row + j)); j += 8 }
        if j < n {
            let mask = firstLanes(n - j)
            m = _mm256_max_ps(m, _mm256_blendv_ps(m, _mm256_maskload_ps(row + j, mask), _mm256_castsi256_ps(mask)))
        }
        var x = _mm_max_ps(m.lowHalf, m.highHalf)
        x = _mm_max_ps(x, _mm_movehl_ps(x, x))
        x = _mm_max_ss(x, _mm_movehdup_ps(x))
        return _mm_cvtss_f32(x)
    }

    /// The sum of the eight lanes (shuffles, not a generic reduction).
    @inline(__always) static func hsum(_ v: __m256) -> Float {
        var x = _mm_add_ps(v.lowHalf, v.highHalf)
        x = _mm_add_ps(x, _mm_movehl_ps(x, x))
        x = _mm_add_ss(x, _mm_movehdup_ps(x))
        return _mm_cvtss_f32(x)
    }

    /// erf(x/√2) and e^(−x²/2) of 8 values (Abramowitz & Stegun 7.1.26; the exponential is the
    /// one the formula needs, so GELU′ gets φ(x) from it).
    @inline(__always) static func erfAndGauss8(_ v: __m256) -> (erf: __m256, gauss: __m256) {
        let z = _mm256_mul_ps(v, _mm256_set1_ps(0.7071067811865476))
        let signMask = _mm256_set1_ps(-0.0)
        let az = _mm256_andnot_ps(signMask, z)
        let t = _mm256_div_ps(_mm256_set1_ps(1), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911), az, _mm256_set1_ps(1)))
        var poly = _mm256_set1_ps(1.061405429)
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-1.453152027))
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741))
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736))
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592))
        poly = _mm256_mul_ps(poly, t)
        let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)))
        let erfAbs = _mm256_fnmadd_ps(poly, e, _mm256_set1_ps(1))
        return (_mm256_or_ps(erfAbs, _mm256_and_ps(z, signMask)), e)
    }

    /// d ← d · (Φ(x) + x·φ(x)).
    @inline(__always) static func geluGrad8(_ d: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>) {
        let v = _mm256_loadu_ps(x)
        let (erf, e) = erfAndGauss8(v)
        let cdf = _mm256_mul_ps(_mm256_set1_ps(0.5), _mm256_add_ps(_mm256_set1_ps(1), erf))
        let grad = _mm256_fmadd_ps(_mm256_mul_ps(v, e), _mm256_set1_ps(0.3989422804014327), cdf)
        _mm256_storeu_ps(d, _mm256_mul_ps(_mm256_loadu_ps(d), grad))
    }

    @inline(__always) static func gelu8(_ p: UnsafeMutablePointer<Float>) {
        let v = _mm256_loadu_ps(p)
        let erf = erfAndGauss8(v).erf
        _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5), v), _mm256_add_ps(_mm256_set1_ps(1), erf)))
    }
}
#endif
