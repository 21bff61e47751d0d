// fp16 × fp32 products for the fp16 KV cache: halves are widened to fp32 and accumulated in fp32.

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
}

#if TAILOR_AVX2
import _Builtin_intrinsics.intel

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
    static func axpy(_ a: Float, _ h: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let va = _mm256_set1_ps(a)
        var i = 0
        while i + 8 <= n { _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, widen(h + i), _mm256_loadu_ps(y + i))); i += 8 }
        while i < n { y[i] += a * halfToFloat(h[i]); i += 1 }
    }
}
#endif
