// Fused dequantize-and-dot kernels for decoding: one quantized weight row against fp32
// activations, without materializing the row. The arithmetic is the fp32 reference's (weights
// dequantized exactly, products summed in fp32), only the summation order differs; tests compare
// every kernel with QuantReference.dot.
//
// `xSums` holds Σx over each 32-element block of x (for the minimum/offset terms of Q4_0, Q4_1
// and Q4_K), computed once per activation vector by `blockSums`.

public enum QuantDot {
    /// Σx over consecutive 32-element blocks. x: [n], out: [n/32].
    public static func blockSums(_ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<(n / 32) {
            var s = SIMD16<Float>()
            s += UnsafeRawPointer(x + 32 * b).loadUnaligned(as: SIMD16<Float>.self)
            s += UnsafeRawPointer(x + 32 * b + 16).loadUnaligned(as: SIMD16<Float>.self)
            out[b] = s.sum()
        }
    }

    /// Whether `type` has a fused kernel (others dequantize the row first).
    public static func isFused(_ type: GGMLType) -> Bool {
        #if TAILOR_AVX2
        switch type {
        case .f32, .f16, .q4_0, .q4_1, .q8_0, .q4_K, .q6_K, .q5_0: return true
        default: return false
        }
        #else
        return type == .f32
        #endif
    }

    /// Σ dequant(row)[i]·x[i]. `scratch` holds `n` floats for types without a fused kernel.
    @inline(__always)
    public static func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xSums: UnsafePointer<Float>,
                           _ n: Int, scratch: UnsafeMutablePointer<Float>) -> Float {
        #if TAILOR_AVX2
        switch type {
        case .q4_1: return AVX2Dot.q4_1(row, x, xSums, n / 32)
        case .q4_0: return AVX2Dot.q4_0(row, x, xSums, n / 32)
        case .q8_0: return AVX2Dot.q8_0(row, x, n / 32)
        case .q5_0: return AVX2Dot.q5_0(row, x, xSums, n / 32)
        case .q4_K: return AVX2Dot.q4_K(row, x, xSums, n / 256)
        case .q6_K: return AVX2Dot.q6_K(row, x, n / 256)
        case .f16: return AVX2Dot.f16(row, x, n)
        case .f32: return AVX2Dot.f32(row.assumingMemoryBound(to: Float.self), x, n)
        default: break
        }
        #endif
        if type == .f32 { return MatMul.dot(row.assumingMemoryBound(to: Float.self), x, n) }
        FastDequant.row(type, row, scratch, count: n)
        return MatMul.dot(scratch, x, n)
    }
}


#if TAILOR_AVX2
import _Builtin_intrinsics.intel

/// AVX2/FMA kernels (x86-64 without AVX-512). Eight lanes; two accumulators hide FMA latency.
enum AVX2Dot {
    /// One fp16 field to fp32 with the F16C instruction (a table in a lazy global costs a call).
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ o: Int) -> Float {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(Int32(p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))))
    }
    @inline(__always) static func lx(_ x: UnsafePointer<Float>) -> __m256 { _mm256_loadu_ps(x) }
    @inline(__always) static func hsum(_ v: __m256) -> Float { v.sum() }
    /// Eight unsigned bytes → eight floats.
    @inline(__always) static func u8f(_ q: __m128i) -> __m256 { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)) }
    @inline(__always) static func i8f(_ q: __m128i) -> __m256 { _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)) }
    @inline(__always) static func high8(_ q: __m128i) -> __m128i { _mm_unpackhi_epi64(q, q) }

    /// Σ q[i]·x[i] over 32 elements whose 16 bytes hold nibbles (low: 0…15, high: 16…31).
    @inline(__always) static func nibbleDot(_ p: UnsafeRawPointer, _ x: UnsafePointer<Float>) -> __m256 {
        let q = _mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self))
        let mask = _mm_set1_epi8(0x0F)
        let lo = _mm_and_si128(q, mask), hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask)
        var t = _mm256_mul_ps(u8f(lo), lx(x))
        t = _mm256_fmadd_ps(u8f(high8(lo)), lx(x + 8), t)
        t = _mm256_fmadd_ps(u8f(hi), lx(x + 16), t)
        return _mm256_fmadd_ps(u8f(high8(hi)), lx(x + 24), t)
    }

    static func q4_1(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var mins: Float = 0
        var b = 0
        while b + 1 < nb {
            let p0 = row + b * 20, p1 = p0 + 20
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p0, 0)), nibbleDot(p0 + 4, x + 32 * b), acc0)
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half(p1, 0)), nibbleDot(p1 + 4, x + 32 * b + 32), acc1)
            mins += half(p0, 2) * xs[b] + half(p1, 2) * xs[b + 1]
            b += 2
        }
        if b < nb {
            let p = row + b * 20
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0)), nibbleDot(p + 4, x + 32 * b), acc0)
            mins += half(p, 2) * xs[b]
        }
        return hsum(_mm256_add_ps(acc0, acc1)) + mins
    }

    static func q4_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var offs: Float = 0
        for b in 0..<nb {
            let p = row + b * 18
            let d = half(p, 0)
            if b & 1 == 0 { acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d), nibbleDot(p + 2, x + 32 * b), acc0) }
            else { acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d), nibbleDot(p + 2, x + 32 * b), acc1) }
            offs += 8 * d * xs[b]
        }
        return hsum(_mm256_add_ps(acc0, acc1)) - offs
    }

    static func q5_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var offs: Float = 0
        // Bit i of a byte mask selects lane i.
        let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)
        let sixteen = _mm256_set1_ps(16)
        @inline(__always) func high(_ m: UInt32) -> __m256 {
            let sel = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(Int32(bitPattern: m)), bits), bits)
            return _mm256_and_ps(_mm256_castsi256_ps(sel), sixteen)
        }
        for b in 0..<nb {
            let p = row + b * 22
            let d = half(p, 0)
            let qh = p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            let q = _mm_loadu_si128((p + 6).assumingMemoryBound(to: __m128i.self))
            let mask = _mm_set1_epi8(0x0F)
            let lo = _mm_and_si128(q, mask), hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask)
            let xb = x + 32 * b
            var t = _mm256_mul_ps(_mm256_add_ps(u8f(lo), high(qh & 0xFF)), lx(xb))
            t = _mm256_fmadd_ps(_mm256_add_ps(u8f(high8(lo)), high((qh >> 8) & 0xFF)), lx(xb + 8), t)
            t = _mm256_fmadd_ps(_mm256_add_ps(u8f(hi), high((qh >> 16) & 0xFF)), lx(xb + 16), t)
            t = _mm256_fmadd_ps(_mm256_add_ps(u8f(high8(hi)), high(qh >> 24)), lx(xb + 24), t)
            if b & 1 == 0 { acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d), t, acc0) }
            else { acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d), t, acc1) }
            offs += 16 * d * xs[b]
        }
        return hsum(_mm256_add_ps(acc0, acc1)) - offs
    }

    static func q8_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        for b in 0..<nb {
            let p = row + b * 34
            let q0 = _mm_loadu_si128((p + 2).assumingMemoryBound(to: __m128i.self))
            let q1 = _mm_loadu_si128((p + 18).assumingMemoryBound(to: __m128i.self))
            let xb = x + 32 * b
            var t = _mm256_mul_ps(i8f(q0), lx(xb))
            t = _mm256_fmadd_ps(i8f(high8(q0)), lx(xb + 8), t)
            t = _mm256_fmadd_ps(i8f(q1), lx(xb + 16), t)
            t = _mm256_fmadd_ps(i8f(high8(q1)), lx(xb + 24), t)
            if b & 1 == 0 { acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0)), t, acc0) }
            else { acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0)), t, acc1) }
        }
        return hsum(_mm256_add_ps(acc0, acc1))
    }

    static func q4_K(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var mins: Float = 0
        let mask = _mm_set1_epi8(0x0F)
        for b in 0..<nb {
            let p = row + b * 144
            let d = half(p, 0), dmin = half(p, 2)
            let sc = p + 4, qs = p + 16
            for j in 0..<4 {
                let (s0, m0) = scaleMinK4(2 * j, sc), (s1, m1) = scaleMinK4(2 * j + 1, sc)
                let qa = _mm_loadu_si128((qs + 32 * j).assumingMemoryBound(to: __m128i.self))
                let qb = _mm_loadu_si128((qs + 32 * j + 16).assumingMemoryBound(to: __m128i.self))
                let la = _mm_and_si128(qa, mask), lb = _mm_and_si128(qb, mask)
                let ha = _mm_and_si128(_mm_srli_epi16(qa, 4), mask), hb = _mm_and_si128(_mm_srli_epi16(qb, 4), mask)
                let e = x + 256 * b + 64 * j
                var tl = _mm256_mul_ps(u8f(la), lx(e))
                tl = _mm256_fmadd_ps(u8f(high8(la)), lx(e + 8), tl)
                tl = _mm256_fmadd_ps(u8f(lb), lx(e + 16), tl)
                tl = _mm256_fmadd_ps(u8f(high8(lb)), lx(e + 24), tl)
                var th = _mm256_mul_ps(u8f(ha), lx(e + 32))
                th = _mm256_fmadd_ps(u8f(high8(ha)), lx(e + 40), th)
                th = _mm256_fmadd_ps(u8f(hb), lx(e + 48), th)
                th = _mm256_fmadd_ps(u8f(high8(hb)), lx(e + 56), th)
                acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d * Float(s0)), tl, acc0)
                acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d * Float(s1)), th, acc1)
                mins += dmin * (Float(m0) * xs[8 * b + 2 * j] + Float(m1) * xs[8 * b + 2 * j + 1])
            }
        }
        return hsum(_mm256_add_ps(acc0, acc1)) - mins
    }

    static func q6_K(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        let m4 = _mm_set1_epi8(0x0F), m2 = _mm_set1_epi8(0x03)
        let off = _mm256_set1_epi32(32)
        @inline(__always) func f(_ q: __m128i) -> __m256 { _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(q), off)) }
        for b in 0..<nb {
            let p = row + b * 210
            let d = half(p, 208)
            for n in 0..<2 {
                let ql = p + 64 * n, qh = p + 128 + 32 * n, sc = p + 192 + 8 * n
                let xb = x + 256 * b + 128 * n
                for h in 0..<2 {
                    let l0 = _mm_loadu_si128((ql + 16 * h).assumingMemoryBound(to: __m128i.self))
                    let l1 = _mm_loadu_si128((ql + 32 + 16 * h).assumingMemoryBound(to: __m128i.self))
                    let hh = _mm_loadu_si128((qh + 16 * h).assumingMemoryBound(to: __m128i.self))
                    let q1 = _mm_or_si128(_mm_and_si128(l0, m4), _mm_slli_epi16(_mm_and_si128(hh, m2), 4))
                    let q2 = _mm_or_si128(_mm_and_si128(l1, m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hh, 2), m2), 4))
                    let q3 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(l0, 4), m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hh, 4), m2), 4))
                    let q4 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(l1, 4), m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hh, 6), m2), 4))
                    @inline(__always) func s(_ k: Int) -> __m256 { _mm256_set1_ps(d * Float(sc.load(fromByteOffset: k, as: Int8.self))) }
                    @inline(__always) func dot16(_ q: __m128i, _ e: UnsafePointer<Float>) -> __m256 {
                        _mm256_fmadd_ps(f(high8(q)), lx(e + 8), _mm256_mul_ps(f(q), lx(e)))
                    }
                    acc0 = _mm256_fmadd_ps(s(h), dot16(q1, xb + 16 * h), acc0)
                    acc1 = _mm256_fmadd_ps(s(h + 2), dot16(q2, xb + 32 + 16 * h), acc1)
                    acc0 = _mm256_fmadd_ps(s(h + 4), dot16(q3, xb + 64 + 16 * h), acc0)
                    acc1 = _mm256_fmadd_ps(s(h + 6), dot16(q4, xb + 96 + 16 * h), acc1)
                }
            }
        }
        return hsum(_mm256_add_ps(acc0, acc1))
    }

    static func f16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = _mm256_setzero_ps()
        var i = 0
        while i + 8 <= n {
            let h = _mm_loadu_si128((row + 2 * i).assumingMemoryBound(to: __m128i.self))
            acc = _mm256_fmadd_ps(_mm256_cvtph_ps(h), lx(x + i), acc)
            i += 8
        }
        var s = hsum(acc)
        while i < n { s += halfToFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * x[i]; i += 1 }
        return s
    }

    static func f32(_ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var i = 0
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(lx(a + i), lx(x + i), acc0)
            acc1 = _mm256_fmadd_ps(lx(a + i + 8), lx(x + i + 8), acc1)
            i += 16
        }
        var s = hsum(_mm256_add_ps(acc0, acc1))
        while i < n { s += a[i] * x[i]; i += 1 }
        return s
    }
}
#endif
