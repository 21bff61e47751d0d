// Integer dot products of quantized weight rows with 8-bit activation blocks (Precision.fast),
// following the block math of ggml's vec_dot_q4_0_q8_0, q4_1_q8_1, q5_0_q8_0, q8_0_q8_0,
// q4_K_q8_K and q6_K_q8_K. Each has a scalar reference (kept forever, and what SIMD is tested
// against) and an AVX2 kernel (maddubs: u8×s8 pairs summed to i16, madd to i32); Q4_0, Q4_1,
// Q5_0, Q8_0 and Q4_K also an AVX-512 VNNI one (Q8Dot+AVX512.swift), used where the build has it.

public enum Q8Dot {
    /// Weight types with an integer kernel.
    public static func supports(_ t: GGMLType) -> Bool {
        switch t {
        case .q4_0, .q4_1, .q5_0, .q8_0, .q4_K, .q6_K: return true
        default: return false
        }
    }
    public static func uses256(_ t: GGMLType) -> Bool { t == .q4_K || t == .q6_K }

    /// Whether the two-row kernel of `t` prefetches its rows itself (`MatMul.prefetch.inKernel`
    /// ahead), so the row loop need not.
    @inline(__always) static func prefetchesItself(_ t: GGMLType) -> Bool {
        #if TAILOR_AVX512
        switch t {
        case .q4_0, .q4_1, .q5_0, .q8_0, .q4_K: return true
        default: return false
        }
        #else
        return false
        #endif
    }

    /// Σ row·x for activation row `t` of `a`.
    @inline(__always)
    public static func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: QuantizedActivations, token t: Int) -> Float {
        #if TAILOR_AVX512
        switch type {
        // One row through the two-row kernels (the odd row of a range: rare).
        case .q4_1: return AVX512Q8.q4_1x2(row, row, a, t).0
        case .q4_0: return AVX512Q8.q4_0x2(row, row, a, t).0
        case .q8_0: return AVX512Q8.q8_0x2(row, row, a, t).0
        case .q5_0: return AVX512Q8.q5_0x2(row, row, a, t).0
        case .q4_K: return AVX512Q8.q4_Kx2(row, row, a, t).0
        default: break
        }
        #endif
        #if TAILOR_AVX2
        switch type {
        case .q4_1: return AVX2Q8.q4_1(row, a, t)
        case .q4_0: return AVX2Q8.q4_0(row, a, t)
        case .q8_0: return AVX2Q8.q8_0(row, a, t)
        case .q5_0: return AVX2Q8.q5_0(row, a, t)
        case .q4_K: return AVX2Q8.q4_K(row, a, t)
        case .q6_K: return AVX2Q8.q6_K(row, a, t)
        default: break
        }
        #endif
        return reference(type, row, a, token: t)
    }

    /// Two rows of the same matrix (adjacent in memory) against activation row `t`.
    @inline(__always)
    public static func dot2(_ type: GGMLType, _ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, token t: Int) -> (Float, Float) {
        #if TAILOR_AVX512
        switch type {
        case .q4_1: return AVX512Q8.q4_1x2(r0, r1, a, t)
        case .q8_0: return AVX512Q8.q8_0x2(r0, r1, a, t)
        case .q4_0: return AVX512Q8.q4_0x2(r0, r1, a, t)
        case .q5_0: return AVX512Q8.q5_0x2(r0, r1, a, t)
        case .q4_K: return AVX512Q8.q4_Kx2(r0, r1, a, t)
        default: break
        }
        #endif
        #if TAILOR_AVX2
        switch type {
        case .q4_1: return AVX2Q8.q4_1x2(r0, r1, a, t)
        case .q8_0: return AVX2Q8.q8_0x2(r0, r1, a, t)
        case .q4_0: return AVX2Q8.q4_0x2(r0, r1, a, t)
        case .q5_0: return AVX2Q8.q5_0x2(r0, r1, a, t)
        case .q4_K: return AVX2Q8.q4_Kx2(r0, r1, a, t)
        default: break
        }
        #endif
        return (dot(type, r0, a, token: t), dot(type, r1, a, token: t))
    }

    /// The scalar reference for every supported type.
    public static func reference(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: QuantizedActivations, token t: Int) -> Float {
        let n = a.n
        let q = a.q32 + t * n
        let nb = n / 32
        func h(_ p: UnsafeRawPointer, _ o: Int) -> Float { halfToFloat(p.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        var sum: Float = 0
        switch type {
        case .q4_0, .q4_1, .q5_0, .q8_0:
            for b in 0..<nb {
                let blk = t * nb + b
                let qb = q + 32 * b
                var sumi: Int32 = 0
                switch type {
                case .q4_0:
                    let p = row + b * 18
                    for j in 0..<16 {
                        let v = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                        sumi += (Int32(v & 0xF) - 8) * Int32(qb[j]) + (Int32(v >> 4) - 8) * Int32(qb[j + 16])
                    }
                    sum += h(p, 0) * a.d32[blk] * Float(sumi)
                case .q4_1:
                    let p = row + b * 20
                    for j in 0..<16 {
                        let v = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                        sumi += Int32(v & 0xF) * Int32(qb[j]) + Int32(v >> 4) * Int32(qb[j + 16])
                    }
                    sum += h(p, 0) * a.d32[blk] * Float(sumi) + h(p, 2) * a.s32[blk]
                case .q5_0:
                    let p = row + b * 22
                    let qh = p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
                    for j in 0..<16 {
                        let v = p.load(fromByteOffset: 6 + j, as: UInt8.self)
                        let h0 = Int32((qh >> UInt32(j)) & 1) << 4, h1 = Int32((qh >> UInt32(j + 16)) & 1) << 4
                        sumi += ((Int32(v & 0xF) | h0) - 16) * Int32(qb[j]) + ((Int32(v >> 4) | h1) - 16) * Int32(qb[j + 16])
                    }
                    sum += h(p, 0) * a.d32[blk] * Float(sumi)
                default:
                    let p = row + b * 34
                    for j in 0..<32 { sumi += Int32(p.load(fromByteOffset: 2 + j, as: Int8.self)) * Int32(qb[j]) }
                    sum += h(p, 0) * a.d32[blk] * Float(sumi)
                }
            }
        case .q4_K:
            let qk = a.qK + t * n
            for b in 0..<(n / 256) {
                let p = row + b * 144
                let dx = a.dK[t * (n / 256) + b]
                let bs = a.bsumsK + t * (n / 16) + 16 * b
                let d = h(p, 0) * dx, dmin = h(p, 2) * dx
                var sumi: Int32 = 0, summ: Int32 = 0
                for j in 0..<8 {
                    let (sc, m) = scaleMinK4(j, p + 4)
                    var s: Int32 = 0
                    for l in 0..<32 {
                        let byte = p.load(fromByteOffset: 16 + 32 * (j / 2) + l, as: UInt8.self)
                        let v = j % 2 == 0 ? byte & 0xF : byte >> 4
                        s += Int32(v) * Int32(qk[256 * b + 32 * j + l])
                    }
                    sumi += Int32(sc) * s
                    summ += Int32(m) * (Int32(bs[2 * j]) + Int32(bs[2 * j + 1]))
                }
                sum += d * Float(sumi) - dmin * Float(summ)
            }
        case .q6_K:
            let qk = a.qK + t * n
            for b in 0..<(n / 256) {
                let p = row + b * 210
                let d = h(p, 208) * a.dK[t * (n / 256) + b]
                var sumi: Int32 = 0
                for half in 0..<2 {
                    let ql = p + 64 * half, qh = p + 128 + 32 * half, sc = p + 192 + 8 * half
                    let base = 256 * b + 128 * half
                    for l in 0..<32 {
                        let hb = qh.load(fromByteOffset: l, as: UInt8.self)
                        let l0 = ql.load(fromByteOffset: l, as: UInt8.self), l1 = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                        let vals = [Int32(l0 & 0xF | (hb & 3) << 4) - 32, Int32(l1 & 0xF | ((hb >> 2) & 3) << 4) - 32,
                                    Int32(l0 >> 4 | ((hb >> 4) & 3) << 4) - 32, Int32(l1 >> 4 | ((hb >> 6) & 3) << 4) - 32]
                        for k in 0..<4 {
                            let s = Int32(sc.load(fromByteOffset: l / 16 + 2 * k, as: Int8.self))
                            sumi += s * vals[k] * Int32(qk[base + 32 * k + l])
                        }
                    }
                }
                sum += d * Float(sumi)
            }
        default:
            preconditionFailure("no integer kernel for \(type)")
        }
        return sum
    }
}

#if TAILOR_AVX2
import _Builtin_intrinsics.intel

enum AVX2Q8 {
    /// One fp16 field to fp32 with the F16C instruction (a table in a lazy global costs a call).
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ o: Int) -> Float {
        // A broadcast writes the whole register: inserting into one (vpinsrw) made each conversion
        // wait for whatever last wrote that register, often an accumulator.
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(p.loadUnaligned(fromByteOffset: o, as: Int16.self))))
    }
    @inline(__always) static func load32(_ p: UnsafeRawPointer) -> __m256i { _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i.self)) }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> __m128i { _mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self)) }
    /// 16 bytes of nibbles → 32 bytes: low nibbles then high nibbles (elements 0…15, 16…31).
    /// One broadcast load, one variable shift (the upper half by 4) and one mask.
    @inline(__always) static func nibbles(_ p: UnsafeRawPointer) -> __m256i {
        _mm256_and_si256(_mm256_srlv_epi64(_mm256_broadcastsi128_si256(load16(p)), _mm256_setr_epi64x(0, 0, 4, 4)),
                         _mm256_set1_epi8(0x0F))
    }
    /// Σ u[i]·s[i] over 32 byte pairs, as eight i32 lanes.
    @inline(__always) static func dotUS(_ u: __m256i, _ s: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }
    @inline(__always) static func hsum(_ v: __m256) -> Float { v.sum() }

    static func q4_1(_ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> Float {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n)
        let d32 = a.d32 + t * nb, s32 = a.s32 + t * nb
        // Two independent accumulator chains (even and odd blocks) keep loads in flight.
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var min0: Float = 0, min1: Float = 0
        var b = 0
        while b &+ 1 < nb {
            let p0 = row + b &* 20, p1 = p0 + 20
            let s0 = dotUS(nibbles(p0 + 4), load32(q + 32 &* b))
            let s1 = dotUS(nibbles(p1 + 4), load32(q + (32 &* b &+ 32)))
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p0, 0) * d32[b]), _mm256_cvtepi32_ps(s0), acc0)
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half(p1, 0) * d32[b &+ 1]), _mm256_cvtepi32_ps(s1), acc1)
            min0 += half(p0, 2) * s32[b]
            min1 += half(p1, 2) * s32[b &+ 1]
            b = b &+ 2
        }
        if b < nb {
            let p = row + b &* 20
            let s = dotUS(nibbles(p + 4), load32(q + 32 &* b))
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0) * d32[b]), _mm256_cvtepi32_ps(s), acc0)
            min0 += half(p, 2) * s32[b]
        }
        return hsum(_mm256_add_ps(acc0, acc1)) + (min0 + min1)
    }

    /// Two rows at once: the activation loads are shared and the two rows' chains overlap.
    /// Per block and row: the nibbles come from one broadcast load, a variable shift and a mask;
    /// the fp16 scale and minimum convert together and multiply the activation's (d, s) pair in
    /// one vector product, so the minimum terms add up in a vector lane instead of a scalar chain.
    static func q4_1x2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n)
        let ds = UnsafeRawPointer(a.ds32 + 2 * t * nb)
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var m0 = _mm_setzero_ps(), m1 = _mm_setzero_ps()
        for b in 0..<nb {
            let p0 = r0 + b &* 20, p1 = r1 + b &* 20
            let x = load32(q + 32 &* b)
            let xs = _mm_castpd_ps(_mm_load_sd(ds.assumingMemoryBound(to: Double.self) + b))
            let i0 = dotUS(nibbles(p0 + 4), x), i1 = dotUS(nibbles(p1 + 4), x)
            let f0 = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(p0.loadUnaligned(as: Int32.self))), xs)
            let f1 = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(p1.loadUnaligned(as: Int32.self))), xs)
            acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(f0), _mm256_cvtepi32_ps(i0), acc0)
            acc1 = _mm256_fmadd_ps(_mm256_broadcastss_ps(f1), _mm256_cvtepi32_ps(i1), acc1)
            m0 = _mm_add_ps(m0, f0)
            m1 = _mm_add_ps(m1, f1)
        }
        return (hsum(acc0) + lane1(m0), hsum(acc1) + lane1(m1))
    }
    @inline(__always) static func lane1(_ v: __m128) -> Float { _mm_cvtss_f32(_mm_movehdup_ps(v)) }

    /// The leading fp16 scales of two blocks times the activation scale, as 8-lane broadcasts.
    /// Both scales convert in one instruction, from 32-bit loads that write whole registers.
    @inline(__always) static func scales2(_ p0: UnsafeRawPointer, _ p1: UnsafeRawPointer, _ dx: Float) -> (__m256, __m256) {
        let h = _mm_unpacklo_epi16(_mm_cvtsi32_si128(p0.loadUnaligned(as: Int32.self)), _mm_cvtsi32_si128(p1.loadUnaligned(as: Int32.self)))
        let f = _mm_mul_ps(_mm_cvtph_ps(h), _mm_set1_ps(dx))
        return (_mm256_broadcastss_ps(f), _mm256_broadcastss_ps(_mm_movehdup_ps(f)))
    }

    static func q8_0x2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n)
        let d32 = a.d32 + t * nb
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        for b in 0..<nb {
            let p0 = r0 + b &* 34, p1 = r1 + b &* 34
            let x = load32(q + 32 &* b)
            let w0 = load32(p0 + 2), w1 = load32(p1 + 2)
            let s0 = dotUS(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(x, w0))
            let s1 = dotUS(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(x, w1))
            let (c0, c1) = scales2(p0, p1, d32[b])
            acc0 = _mm256_fmadd_ps(c0, _mm256_cvtepi32_ps(s0), acc0)
            acc1 = _mm256_fmadd_ps(c1, _mm256_cvtepi32_ps(s1), acc1)
        }
        return (hsum(acc0), hsum(acc1))
    }

    /// Q4_0: Σ(q−8)·x = Σq·x − 8·Σx, with Σx (an integer per block) from the quantized activations.
    static func q4_0(_ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> Float {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n)
        let d32 = a.d32 + t * nb, sum32 = a.sum32 + t * nb
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var b = 0
        while b < nb {
            let p = row + b &* 18
            let s = _mm256_sub_epi32(dotUS(nibbles(p + 2), load32(q + 32 &* b)), _mm256_setr_epi32(8 &* sum32[b], 0, 0, 0, 0, 0, 0, 0))
            if b & 1 == 0 { acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0) * d32[b]), _mm256_cvtepi32_ps(s), acc0) }
            else { acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0) * d32[b]), _mm256_cvtepi32_ps(s), acc1) }
            b = b &+ 1
        }
        return hsum(_mm256_add_ps(acc0, acc1))
    }

    static func q4_0x2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n)
        let d32 = a.d32 + t * nb, sum32 = a.sum32 + t * nb
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        for b in 0..<nb {
            let p0 = r0 + b &* 18, p1 = r1 + b &* 18
            let x = load32(q + 32 &* b)
            let off = _mm256_setr_epi32(8 &* sum32[b], 0, 0, 0, 0, 0, 0, 0)
            let s0 = _mm256_sub_epi32(dotUS(nibbles(p0 + 2), x), off), s1 = _mm256_sub_epi32(dotUS(nibbles(p1 + 2), x), off)
            let (c0, c1) = scales2(p0, p1, d32[b])
            acc0 = _mm256_fmadd_ps(c0, _mm256_cvtepi32_ps(s0), acc0)
            acc1 = _mm256_fmadd_ps(c1, _mm256_cvtepi32_ps(s1), acc1)
        }
        return (hsum(acc0), hsum(acc1))
    }

    /// 32 bytes that are 0x10 where bit i of `bits` is set, else 0.
    @inline(__always) static func fifthBits(_ bits: UInt32) -> __m256i {
        let shuf = _mm256_setr_epi64x(0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303)
        var bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(Int32(bitPattern: bits)), shuf)
        bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe))
        let set = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
        return _mm256_and_si256(set, _mm256_set1_epi8(0x10))
    }

    /// Q5_0: Σ(q−16)·x = Σq·x − 16·Σx.
    static func q5_0(_ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> Float {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n)
        let d32 = a.d32 + t * nb, sum32 = a.sum32 + t * nb
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        for b in 0..<nb {
            let p = row + b &* 22
            let w = _mm256_or_si256(nibbles(p + 6), fifthBits(p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
            let s = _mm256_sub_epi32(dotUS(w, load32(q + 32 &* b)), _mm256_setr_epi32(16 &* sum32[b], 0, 0, 0, 0, 0, 0, 0))
            if b & 1 == 0 { acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0) * d32[b]), _mm256_cvtepi32_ps(s), acc0) }
            else { acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0) * d32[b]), _mm256_cvtepi32_ps(s), acc1) }
        }
        return hsum(_mm256_add_ps(acc0, acc1))
    }

    static func q5_0x2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n)
        let d32 = a.d32 + t * nb, sum32 = a.sum32 + t * nb
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        for b in 0..<nb {
            let p0 = r0 + b &* 22, p1 = r1 + b &* 22
            let x = load32(q + 32 &* b)
            let off = _mm256_setr_epi32(16 &* sum32[b], 0, 0, 0, 0, 0, 0, 0)
            let w0 = _mm256_or_si256(nibbles(p0 + 6), fifthBits(p0.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
            let w1 = _mm256_or_si256(nibbles(p1 + 6), fifthBits(p1.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
            let (c0, c1) = scales2(p0, p1, d32[b])
            acc0 = _mm256_fmadd_ps(c0, _mm256_cvtepi32_ps(_mm256_sub_epi32(dotUS(w0, x), off)), acc0)
            acc1 = _mm256_fmadd_ps(c1, _mm256_cvtepi32_ps(_mm256_sub_epi32(dotUS(w1, x), off)), acc1)
        }
        return (hsum(acc0), hsum(acc1))
    }

    static func q8_0(_ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> Float {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n)
        let d32 = a.d32 + t * nb
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var b = 0
        while b &+ 1 < nb {
            let p0 = row + b &* 34, p1 = p0 + 34
            let w0 = load32(p0 + 2), x0 = load32(q + 32 &* b)
            let w1 = load32(p1 + 2), x1 = load32(q + (32 &* b &+ 32))
            let s0 = dotUS(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(x0, w0))
            let s1 = dotUS(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(x1, w1))
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p0, 0) * d32[b]), _mm256_cvtepi32_ps(s0), acc0)
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half(p1, 0) * d32[b &+ 1]), _mm256_cvtepi32_ps(s1), acc1)
            b = b &+ 2
        }
        if b < nb {
            let p = row + b &* 34
            let w = load32(p + 2), x = load32(q + 32 &* b)
            let s = dotUS(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p, 0) * d32[b]), _mm256_cvtepi32_ps(s), acc0)
        }
        return hsum(_mm256_add_ps(acc0, acc1))
    }

    /// The eight 6-bit scales and eight 6-bit minimums of a Q4_K super-block (the 12 bytes at p),
    /// one per byte, in sub-block order: `scaleMinK4` for all eight at once with 32-bit words.
    @inline(__always) static func scalesMinsK4(_ p: UnsafeRawPointer) -> (scales: UInt64, mins: UInt64) {
        let w0 = p.loadUnaligned(as: UInt32.self), w1 = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        let w2 = p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        let low6: UInt32 = 0x3F3F_3F3F, low4: UInt32 = 0x0F0F_0F0F, low2: UInt32 = 0x0303_0303
        let s47 = (w2 & low4) | (((w0 >> 6) & low2) << 4)
        let m47 = ((w2 >> 4) & low4) | (((w1 >> 6) & low2) << 4)
        return (UInt64(w0 & low6) | UInt64(s47) << 32, UInt64(w1 & low6) | UInt64(m47) << 32)
    }

    /// One Q4_K super-block of one row (144 bytes at p) against its 256 activations at q:
    /// Σ_k scale_k·Σ(nibble·x) over the eight 32-sub-blocks as eight i32 lanes, and the minimums
    /// times the activation sums of their sub-blocks (`bsum8`, eight i16) as four i32 lanes.
    /// Each sub-block's scale is broadcast to 16-bit lanes by a byte shuffle of the widened scales,
    /// and the madd that sums the u8×s8 pairs multiplies by it.
    @inline(__always) static func q4_KBlock(_ p: UnsafeRawPointer, _ q: UnsafeRawPointer, _ bsum8: __m128i) -> (__m256i, __m128i) {
        let (scales, mins) = scalesMinsK4(p + 4)
        let m = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(Int64(bitPattern: mins))), bsum8)
        let sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(Int64(bitPattern: scales))))
        let m4 = _mm256_set1_epi8(0x0F)
        var sumi = _mm256_setzero_si256()
        for j in 0..<4 {
            let w = load32(p + (16 &+ 32 &* j))
            let lo = _mm256_and_si256(w, m4), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4)
            // i16 lane k of sc sits in bytes 2k, 2k+1 of each 128-bit half.
            let sLo = _mm256_shuffle_epi8(sc, _mm256_set1_epi16(Int16(4 &* j | (4 &* j &+ 1) << 8)))
            let sHi = _mm256_shuffle_epi8(sc, _mm256_set1_epi16(Int16((4 &* j &+ 2) | (4 &* j &+ 3) << 8)))
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(q + 64 &* j)), sLo))
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(q + (64 &* j &+ 32))), sHi))
        }
        return (sumi, m)
    }

    /// The sixteen 16-value activation sums of super-block b as the eight 32-sub-block sums.
    @inline(__always) static func bsum8(_ bs: UnsafePointer<Int16>) -> __m128i {
        let raw = UnsafeRawPointer(bs)
        return _mm_hadd_epi16(load16(raw), load16(raw + 16))
    }

    static func q4_K(_ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> Float {
        let nb = a.n / 256
        let q = UnsafeRawPointer(a.qK + t * a.n)
        var acc = _mm256_setzero_ps(), accMin = _mm_setzero_ps()
        for b in 0..<nb {
            let p = row + b &* 144
            let dx = a.dK[t &* nb &+ b]
            let (sumi, m) = q4_KBlock(p, q + 256 &* b, bsum8(a.bsumsK + (t &* (a.n / 16) &+ 16 &* b)))
            let (c, cm) = scales2(p, p + 2, dx)
            acc = _mm256_fmadd_ps(c, _mm256_cvtepi32_ps(sumi), acc)
            accMin = _mm_fmadd_ps(_mm256_castps256_ps128(cm), _mm_cvtepi32_ps(m), accMin)
        }
        return hsum(acc) - unsafeBitCast(accMin, to: SIMD4<Float>.self).sum()
    }

    /// Two rows of Q4_K: the activation loads and sub-block sums shared.
    static func q4_Kx2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let nb = a.n / 256
        let q = UnsafeRawPointer(a.qK + t * a.n)
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var min0 = _mm_setzero_ps(), min1 = _mm_setzero_ps()
        for b in 0..<nb {
            let p0 = r0 + b &* 144, p1 = r1 + b &* 144, qb = q + 256 &* b
            let dx = a.dK[t &* nb &+ b]
            let bs = bsum8(a.bsumsK + (t &* (a.n / 16) &+ 16 &* b))
            let (i0, m0) = q4_KBlock(p0, qb, bs), (i1, m1) = q4_KBlock(p1, qb, bs)
            // (d, dmin) of both rows times dx: lanes d0, dmin0, d1, dmin1.
            let f = _mm_mul_ps(_mm_cvtph_ps(_mm_unpacklo_epi32(_mm_cvtsi32_si128(p0.loadUnaligned(as: Int32.self)),
                                                               _mm_cvtsi32_si128(p1.loadUnaligned(as: Int32.self)))), _mm_set1_ps(dx))
            let v = unsafeBitCast(f, to: SIMD4<Float>.self)
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(v[0]), _mm256_cvtepi32_ps(i0), acc0)
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(v[2]), _mm256_cvtepi32_ps(i1), acc1)
            min0 = _mm_fmadd_ps(_mm_set1_ps(v[1]), _mm_cvtepi32_ps(m0), min0)
            min1 = _mm_fmadd_ps(_mm_set1_ps(v[3]), _mm_cvtepi32_ps(m1), min1)
        }
        return (hsum(acc0) - unsafeBitCast(min0, to: SIMD4<Float>.self).sum(),
                hsum(acc1) - unsafeBitCast(min1, to: SIMD4<Float>.self).sum())
    }

    static func q6_K(_ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> Float {
        let nb = a.n / 256
        let q = UnsafeRawPointer(a.qK + t * a.n)
        var acc = _mm256_setzero_ps()
        let m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03)
        var offsets: Float = 0
        for b in 0..<nb {
            let p = row + b * 210
            let bs = a.bsumsK + t * (a.n / 16) + 16 * b
            var sumi = _mm256_setzero_si256()
            var offset: Int32 = 0
            for half in 0..<2 {
                let ql = p + 64 * half, qh = p + 128 + 32 * half, sc = p + 192 + 8 * half
                let l0 = load32(ql), l1 = load32(ql + 32), hh = load32(qh)
                let q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hh, m2), 4))
                let q2 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2), m2), 4))
                let q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 4), m2), 4))
                let q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 6), m2), 4))
                for (k, w) in [q1, q2, q3, q4].enumerated() {
                    let s0 = Int16(sc.load(fromByteOffset: 2 * k, as: Int8.self)), s1 = Int16(sc.load(fromByteOffset: 2 * k + 1, as: Int8.self))
                    let prod = _mm256_maddubs_epi16(w, load32(q + 256 * b + 128 * half + 32 * k))
                    let scales = _mm256_setr_epi16(s0, s0, s0, s0, s0, s0, s0, s0, s1, s1, s1, s1, s1, s1, s1, s1)
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(prod, scales))
                    let g = 8 * half + 2 * k
                    offset += 32 * (Int32(s0) * Int32(bs[g]) + Int32(s1) * Int32(bs[g + 1]))
                }
            }
            let d = half(p, 208) * a.dK[t * nb + b]
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc)
            offsets += d * Float(offset)
        }
        return hsum(acc) - offsets
    }
}
#endif
