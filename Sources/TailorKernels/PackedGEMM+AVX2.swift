// The AVX2 kernel of PackedGEMM, for CPUs without AVX-512 (AMD Zen 2/3, older Intel): the same
// packed tiles, read as two halves of eight rows (the first and last 32 bytes of every 64-byte
// unit of "4 values × 16 rows"), one 8-lane accumulator per token. AVX2 has no byte dot product
// into 32 bits, so vpmaddubsw (unsigned weight bytes × signed activation bytes, pairs summed to
// 16 bits) and vpmaddwd against ones take its place; the 16-bit partial sums are added only as
// far as they cannot saturate (nibbles: eight products, Q5_0's 5-bit values: four, Q6_K's: two; Q8_0's signed
// bytes go through the sign trick, |w|·sign(q, w), one at a time). The integer sums are the
// reference's, and the float steps are its, in its order: the results are its bits.
#if TAILOR_AVX2
import _Builtin_intrinsics.intel
import CBLAS

enum AVX2Packed {
    static func run(_ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                    _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let (_, intoL1, ahead) = MatMul.prefetch
        for g in groups {
            let rows = min(16, w.rows - g * 16)
            for half in 0..<2 where 8 * half < rows {
                let lanes = min(8, rows - 8 * half)
                var t0 = 0
                while t0 < tokens {
                    let count = min(4, tokens - t0)
                    var acc = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps())
                    for b in 0..<w.blocks {
                        let p = w.tile(group: g, block: b)
                        if t0 == 0 && half == 0 {
                            var off = 0
                            while off < w.tileBytes {
                                if intoL1 { tailor_prefetch_l1(p + (ahead &+ off)) } else { tailor_prefetch(p + (ahead &+ off)) }
                                off &+= 64
                            }
                        }
                        @inline(__always) func block(_ t: Int, _ r: __m256) -> __m256 {
                            switch w.type {
                            case .q4_K, .q5_K: return q4K(w.type == .q5_K, p, half, a, t0 &+ t, b, r)
                            case .q6_K: return q6K(p, half, a, t0 &+ t, b, r)
                            default: return block32(w.type, p, half, a, t0 &+ t, b, r)
                            }
                        }
                        acc.0 = block(0, acc.0)
                        if count > 1 { acc.1 = block(1, acc.1) }
                        if count > 2 { acc.2 = block(2, acc.2) }
                        if count > 3 { acc.3 = block(3, acc.3) }
                    }
                    let out = y + (g * 16 + 8 * half + t0 * ldy)
                    store(acc.0, out, lanes, accumulate)
                    if count > 1 { store(acc.1, out + ldy, lanes, accumulate) }
                    if count > 2 { store(acc.2, out + 2 &* ldy, lanes, accumulate) }
                    if count > 3 { store(acc.3, out + 3 &* ldy, lanes, accumulate) }
                    t0 += count
                }
            }
        }
    }

    @inline(__always) static func store(_ v: __m256, _ p: UnsafeMutablePointer<Float>, _ lanes: Int, _ accumulate: Bool) {
        if lanes == 8 {
            _mm256_storeu_ps(p, accumulate ? _mm256_add_ps(_mm256_loadu_ps(p), v) : v)
            return
        }
        // The first `lanes` lanes only (a last row group of fewer than 16 rows).
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(Int32(lanes)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
        _mm256_maskstore_ps(p, mask, accumulate ? _mm256_add_ps(_mm256_maskload_ps(p, mask), v) : v)
    }

    /// The four activation bytes q[4i…4i+3] in every lane.
    @inline(__always) static func bcast(_ q: UnsafeRawPointer, _ i: Int) -> __m256i {
        _mm256_set1_epi32(q.loadUnaligned(fromByteOffset: 4 &* i, as: Int32.self))
    }

    /// Eight rows' 32-bit lanes of the 64-byte unit at p (this half's 32 bytes).
    @inline(__always) static func unit(_ p: UnsafeRawPointer, _ half: Int) -> __m256i {
        _mm256_loadu_si256((p + 32 &* half).assumingMemoryBound(to: __m256i.self))
    }

    @inline(__always) static func widen(_ v16: __m256i) -> __m256i { _mm256_madd_epi16(v16, _mm256_set1_epi16(1)) }

    @inline(__always) static func halves8(_ p: UnsafeRawPointer) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self)))
    }

    /// Q4_0, Q4_1, Q8_0: one 32-value block of token t.
    @inline(__always) static func block32(_ type: GGMLType, _ p: UnsafeRawPointer, _ half: Int, _ a: QuantizedActivations,
                                          _ t: Int, _ b: Int, _ acc: __m256) -> __m256 {
        let nb = a.n / 32, q = UnsafeRawPointer(a.q32 + (t &* a.n &+ 32 &* b))
        var isum: __m256i
        let scales: Int
        if type == .q8_0 {
            let flip = _mm256_set1_epi8(-128)
            isum = _mm256_setzero_si256()
            for j in 0..<8 {
                let v = _mm256_xor_si256(unit(p + 64 &* j, half), flip)
                isum = _mm256_add_epi32(isum, widen(_mm256_maddubs_epi16(_mm256_abs_epi8(v), _mm256_sign_epi8(bcast(q, j), v))))
            }
            scales = 512
        } else if type == .q5_0 {
            // Values up to 31: four products at a time in 16 bits.
            let lo = _mm256_set1_epi8(0x0F), qh = unit(p + 288, half)
            @inline(__always) func fifth(_ u: Int) -> __m256i {
                // Bits 4u…4u+3 of each row's qh to bit 4 of its four bytes.
                let x = _mm256_and_si256(_mm256_srli_epi32(qh, Int32(4 &* u)), _mm256_set1_epi32(0xF))
                return _mm256_slli_epi32(_mm256_and_si256(_mm256_mullo_epi32(x, _mm256_set1_epi32(0x0020_4081)), _mm256_set1_epi32(0x0101_0101)), 4)
            }
            var low16 = _mm256_setzero_si256(), high16 = _mm256_setzero_si256()
            for j in 0..<4 {
                let c = unit(p + 64 &* j, half)
                low16 = _mm256_add_epi16(low16, _mm256_maddubs_epi16(_mm256_or_si256(_mm256_and_si256(c, lo), fifth(j)), bcast(q, j)))
                high16 = _mm256_add_epi16(high16, _mm256_maddubs_epi16(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), lo), fifth(4 &+ j)), bcast(q, 4 &+ j)))
            }
            isum = _mm256_sub_epi32(_mm256_add_epi32(widen(low16), widen(high16)), _mm256_set1_epi32(16 &* a.sum32[t &* nb &+ b]))
            scales = 256
        } else {
            let lo = _mm256_set1_epi8(0x0F)
            var s16 = _mm256_setzero_si256()
            for j in 0..<4 {
                let c = unit(p + 64 &* j, half)
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_and_si256(c, lo), bcast(q, j)))
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(c, 4), lo), bcast(q, 4 &+ j)))
            }
            isum = widen(s16)
            if type == .q4_0 { isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 &* a.sum32[t &* nb &+ b])) }
            scales = 256
        }
        let d = halves8(p + (scales &+ 16 &* half))
        var r = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, _mm256_set1_ps(a.d32[t &* nb &+ b])), acc)
        if type == .q4_1 { r = _mm256_fmadd_ps(halves8(p + (scales &+ 32 &+ 16 &* half)), _mm256_set1_ps(a.s32[t &* nb &+ b]), r) }
        return r
    }

    /// Eight bytes at p as 32-bit lanes.
    @inline(__always) static func bytes8(_ p: UnsafeRawPointer, signed: Bool) -> __m256i {
        let v = _mm_loadl_epi64(p.assumingMemoryBound(to: __m128i.self))
        return signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v)
    }

    /// Q4_K (or Q5_K, with its fifth bits): one super-block of token t (layout in
    /// PackedWeights+KQuants.swift).
    @inline(__always) static func q4K(_ q5: Bool, _ p: UnsafeRawPointer, _ half: Int, _ a: QuantizedActivations, _ t: Int, _ b: Int, _ acc: __m256) -> __m256 {
        let n = a.n, nb = n / 256
        let q = UnsafeRawPointer(a.qK + (t &* n &+ 256 &* b)), bs = a.bsumsK + (t &* (n / 16) &+ 16 &* b)
        let lo = _mm256_set1_epi8(0x0F)
        var sumi = _mm256_setzero_si256(), summ = _mm256_setzero_si256()
        for sb in 0..<8 {
            let u = p + 512 &* (sb >> 1), shift: Int32 = sb & 1 == 0 ? 0 : 4
            // Nibbles: eight products in 16 bits; Q5_K's values (≤ 31): four.
            var s16 = _mm256_setzero_si256(), t16 = _mm256_setzero_si256()
            for k in 0..<8 {
                var wv = _mm256_and_si256(_mm256_srli_epi16(unit(u + 64 &* k, half), shift), lo)
                if q5 {
                    let bit = _mm256_and_si256(_mm256_srli_epi16(unit(p + (KTile.q4KBytes &+ 64 &* k), half), Int32(sb)), _mm256_set1_epi8(1))
                    wv = _mm256_or_si256(wv, _mm256_slli_epi16(bit, 4))
                }
                let prod = _mm256_maddubs_epi16(wv, bcast(q + 32 &* sb, k))
                if q5 && k >= 4 { t16 = _mm256_add_epi16(t16, prod) } else { s16 = _mm256_add_epi16(s16, prod) }
            }
            let isum = q5 ? _mm256_add_epi32(widen(s16), widen(t16)) : widen(s16)
            sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(isum, bytes8(p + (2048 &+ 16 &* sb &+ 8 &* half), signed: false)))
            let m = bytes8(p + (2176 &+ 16 &* sb &+ 8 &* half), signed: false)
            summ = _mm256_add_epi32(summ, _mm256_mullo_epi32(m, _mm256_set1_epi32(Int32(bs[2 &* sb]) &+ Int32(bs[2 &* sb &+ 1]))))
        }
        let d = halves8(p + (2304 &+ 16 &* half)), dmin = halves8(p + (2336 &+ 16 &* half))
        let dx = a.dK[t &* nb &+ b]
        let r = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, _mm256_set1_ps(dx)), acc)
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dmin, _mm256_set1_ps(-dx)), r)
    }

    /// Q6_K: one super-block of token t.
    @inline(__always) static func q6K(_ p: UnsafeRawPointer, _ half: Int, _ a: QuantizedActivations, _ t: Int, _ b: Int, _ acc: __m256) -> __m256 {
        let n = a.n, nb = n / 256
        let q = UnsafeRawPointer(a.qK + (t &* n &+ 256 &* b)), bs = a.bsumsK + (t &* (n / 16) &+ 16 &* b)
        let lo = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3)
        var sumi = _mm256_setzero_si256()
        for h in 0..<2 {
            for i in 0..<2 {
                for kq in 0..<4 {
                    // Values 128h + 32kq + 16i … +15: sub-block 8h + 2kq + i.
                    let sb = 8 &* h &+ 2 &* kq &+ i
                    let lowShift: Int32 = kq < 2 ? 0 : 4, highShift = Int32(2 &* kq)
                    let mBase = (kq & 1 == 0 ? 0 : 8) &+ 4 &* i
                    @inline(__always) func quad(_ j: Int) -> __m256i {
                        let l = _mm256_and_si256(_mm256_srli_epi16(unit(p + 64 &* (16 &* h &+ mBase &+ j), half), lowShift), lo)
                        let hb = _mm256_and_si256(_mm256_srli_epi16(unit(p + (2048 &+ 64 &* (8 &* h &+ 4 &* i &+ j)), half), highShift), three)
                        return _mm256_or_si256(l, _mm256_slli_epi16(hb, 4))
                    }
                    let qs = q + 16 &* sb
                    let s01 = _mm256_add_epi16(_mm256_maddubs_epi16(quad(0), bcast(qs, 0)), _mm256_maddubs_epi16(quad(1), bcast(qs, 1)))
                    let s23 = _mm256_add_epi16(_mm256_maddubs_epi16(quad(2), bcast(qs, 2)), _mm256_maddubs_epi16(quad(3), bcast(qs, 3)))
                    let isum = _mm256_sub_epi32(_mm256_add_epi32(widen(s01), widen(s23)), _mm256_set1_epi32(32 &* Int32(bs[sb])))
                    sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(isum, bytes8(p + (3072 &+ 16 &* sb &+ 8 &* half), signed: true)))
                }
            }
        }
        let d = halves8(p + (3328 &+ 16 &* half))
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, _mm256_set1_ps(a.dK[t &* nb &+ b])), acc)
    }
}
#endif
