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
        var mx = -Float.infinity
        for j in 0..<n { mx = max(mx, row[j]) }
        let inv = 1 / expSubtracting(row, n, mx)
        for k in 0..<n { row[k] *= inv }
    }

    /// row[j] ← exp(row[j] − m) for n values; returns their sum (softmax and cross-entropy).
    public static func expSubtracting(_ row: UnsafeMutablePointer<Float>, _ n: Int, _ m: Float) -> Float {
        var sum: Float = 0
        var j = 0
        #if TAILOR_AVX2
        sum = AVX2Math.expSubSum(row, n, m)
        j = n / 8 * 8
        #endif
        while j < n { let e = exp(row[j] - m); row[j] = e; sum += e; j += 1 }
        return sum
    }

    /// out[i] ← 1 / (1 + exp(−x[i])) for n values.
    public static func sigmoid(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        #if TAILOR_AVX2
        while i + 8 <= n { AVX2Math.sigmoid8(x + i, out + i); i += 8 }
        #endif
        while i < n { out[i] = 1 / (1 + exp(-x[i])); i += 1 }
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

    @inline(__always) static func sigmoid8(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_loadu_ps(x)))
        _mm256_storeu_ps(out, _mm256_div_ps(_mm256_set1_ps(1), _mm256_add_ps(_mm256_set1_ps(1), e)))
    }

    /// row[j] ← exp(row[j] − m) for the first n/8·8 values; returns their sum.
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
        return acc.sum()
    }

    @inline(__always) static func gelu8(_ p: UnsafeMutablePointer<Float>) {
        let v = _mm256_loadu_ps(p)
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
        let erf = _mm256_or_ps(erfAbs, _mm256_and_ps(z, signMask))
        _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5), v), _mm256_add_ps(_mm256_set1_ps(1), erf)))
    }
}
#endif
