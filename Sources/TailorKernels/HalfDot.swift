// fp16 × fp32 products for the fp16 KV cache: halves are widened to fp32 and accumulated in fp32.
#if TAILOR_AVX2
import _Builtin_intrinsics.intel
#endif

public enum HalfDot {
    /// Σ x[i]·h[i].
    @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ h: UnsafePointer<UInt16>, _ n: Int) -> Float {
        #if TAILOR_AVX2
        return AVX2Half.dot(x, h, n)
        #else
        var s: Float = 0
        for i in 0..<n { s += x[i] * halfToFloat(h[i]) }
        return s
        #endif
    }

    /// y[i] += a·h[i].
    @inline(__always)
    public static func axpy(_ a: Float, _ h: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        #if TAILOR_AVX2
        AVX2Half.axpy(a, h, y, n)
        #else
        for i in 0..<n { y[i] += a * halfToFloat(h[i]) }
        #endif
    }

    /// out[j] = scale · Σ_d q[d]·K_j[d] for `count` fp16 rows K_j = k + j·stride of width `dim`
    /// (attention scores against the KV cache). Each score is summed exactly as `dot` sums it.
    public static func scores(_ q: UnsafePointer<Float>, _ k: UnsafePointer<UInt16>, stride: Int, count: Int, dim: Int,
                              scale: Float, into out: UnsafeMutablePointer<Float>) {
        var j = 0
        #if TAILOR_AVX2
        if dim % 8 == 0 {
            while j + 4 <= count { AVX2Half.dot4(q, k + j * stride, stride, dim, scale, out + j); j += 4 }
        }
        #endif
        while j < count { out[j] = dot(q, k + j * stride, dim) * scale; j += 1 }
    }

    /// o[d] = Σ_j w[j]·V_j[d] over `count` fp16 rows V_j = v + j·stride of width `dim` (o is
    /// overwritten). The same sums, in the same order, as `axpy` row after row into zeros.
    public static func weightedSum(_ w: UnsafePointer<Float>, _ v: UnsafePointer<UInt16>, stride: Int, count: Int, dim: Int,
                                   into o: UnsafeMutablePointer<Float>) {
        o.update(repeating: 0, count: dim)
        var d = 0
        #if TAILOR_AVX2
        while d + 32 <= dim { AVX2Half.weightedSum32(w, v + d, stride, count, o + d); d += 32 }
        #endif
        guard d < dim else { return }
        for j in 0..<count { axpy(w[j], v + j * stride + d, o + d, dim - d) }
    }

    /// out[i] = h[i] widened to fp32, for n values.
    public static func widen(_ h: UnsafePointer<UInt16>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        #if TAILOR_AVX2
        while i + 8 <= n { _mm256_storeu_ps(out + i, AVX2Half.widen(h + i)); i += 8 }
        #endif
        while i < n { out[i] = halfToFloat(h[i]); i += 1 }
    }

    /// x[i] ← x rounded to fp16 and back (round to nearest even), for n values.
    public static func roundToHalf(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        #if TAILOR_AVX2
        while i + 8 <= n { AVX2Half.round8(x + i); i += 8 }
        #endif
        while i < n { x[i] = Float(Float16(x[i])); i += 1 }
    }
}

#if TAILOR_AVX2

enum AVX2Half {
    @inline(__always) static func widen(_ h: UnsafePointer<UInt16>) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(UnsafeRawPointer(h).assumingMemoryBound(to: __m128i.self)))
    }
    static func dot(_ x: UnsafePointer<Float>, _ h: UnsafePointer<UInt16>, _ n: Int) -> Float {
        var acc = _mm256_setzero_ps()
        var i = 0
        while i + 8 <= n { acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), widen(h + i), acc); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i] * halfToFloat(h[i]); i += 1 }
        return s
    }
    /// Four scores at once: four independent chains keep the FMA units busy.
    static func dot4(_ x: UnsafePointer<Float>, _ h: UnsafePointer<UInt16>, _ stride: Int, _ n: Int, _ scale: Float,
                     _ out: UnsafeMutablePointer<Float>) {
        var a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps()
        let h1 = h + stride, h2 = h + 2 * stride, h3 = h + 3 * stride
        var i = 0
        while i < n {
            let xi = _mm256_loadu_ps(x + i)
            a0 = _mm256_fmadd_ps(xi, widen(h + i), a0)
            a1 = _mm256_fmadd_ps(xi, widen(h1 + i), a1)
            a2 = _mm256_fmadd_ps(xi, widen(h2 + i), a2)
            a3 = _mm256_fmadd_ps(xi, widen(h3 + i), a3)
            i += 8
        }
        out[0] = a0.sum() * scale; out[1] = a1.sum() * scale; out[2] = a2.sum() * scale; out[3] = a3.sum() * scale
    }
    /// 32 output values held in registers across all rows.
    static func weightedSum32(_ w: UnsafePointer<Float>, _ v: UnsafePointer<UInt16>, _ stride: Int, _ count: Int,
                              _ o: UnsafeMutablePointer<Float>) {
        var o0 = _mm256_setzero_ps(), o1 = _mm256_setzero_ps(), o2 = _mm256_setzero_ps(), o3 = _mm256_setzero_ps()
        var row = v
        for j in 0..<count {
            let wj = _mm256_set1_ps(w[j])
            o0 = _mm256_fmadd_ps(wj, widen(row), o0)
            o1 = _mm256_fmadd_ps(wj, widen(row + 8), o1)
            o2 = _mm256_fmadd_ps(wj, widen(row + 16), o2)
            o3 = _mm256_fmadd_ps(wj, widen(row + 24), o3)
            row += stride
        }
        _mm256_storeu_ps(o, o0); _mm256_storeu_ps(o + 8, o1); _mm256_storeu_ps(o + 16, o2); _mm256_storeu_ps(o + 24, o3)
    }
    @inline(__always) static func round8(_ x: UnsafeMutablePointer<Float>) {
        let raw = UnsafeMutableRawPointer(x)
        raw.storeBytes(of: SIMD8<Float>(SIMD8<Float16>(raw.load(as: SIMD8<Float>.self))), as: SIMD8<Float>.self)
    }
    static func axpy(_ a: Float, _ h: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let va = _mm256_set1_ps(a)
        var i = 0
        while i + 8 <= n { _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, widen(h + i), _mm256_loadu_ps(y + i))); i += 8 }
        while i < n { y[i] += a * halfToFloat(h[i]); i += 1 }
    }
}
#endif
