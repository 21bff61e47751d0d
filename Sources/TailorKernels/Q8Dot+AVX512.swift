// AVX-512 kernels for the integer dot products of fast decoding (the block math of Q8Dot.reference).
// Where the AVX2 kernels take one 32-block per step (maddubs + madd on 256 bits), these take
// four Q4_0 / Q4_1 / Q5_0 blocks or two Q8_0 blocks: one byte permute (vpermt2b, AVX512-VBMI)
// gathers the four blocks' nibble bytes out of the row into one 512-bit register, and the VNNI
// instruction vpdpbusd sums the u8×s8 products straight into i32 lanes. The activations come in
// the grouped layout `QuantizedActivations.regroup` writes, so the low nibbles of four blocks
// meet their values in one register and the high nibbles in the next. Q5_0 places each block's
// bytes into its 128-bit lane with (masked) broadcast loads instead, and Q4_K takes a 256-value
// super-block per step.
#if TAILOR_AVX512
import _Builtin_intrinsics.intel
import CBLAS

enum AVX512Q8 {
    /// Starts loading the two lines at `p` + the in-kernel prefetch distance (`MatMul.prefetch`);
    /// each kernel calls it per row for every step of at most 128 bytes, so every line of a row
    /// is asked for once or twice before it is read. Prefetches never fault, so running past the
    /// end of the matrix is harmless.
    @inline(__always) static func prefetch2(_ p: UnsafeRawPointer, _ ahead: Int, _ intoL1: Bool) {
        if intoL1 { tailor_prefetch_l1(p + ahead); tailor_prefetch_l1(p + (ahead &+ 64)) }
        else { tailor_prefetch(p + ahead); tailor_prefetch(p + (ahead &+ 64)) }
    }

    @inline(__always) static func load64(_ p: UnsafeRawPointer) -> __m512i { _mm512_loadu_si512(p) }
    @inline(__always) static func load32(_ p: UnsafeRawPointer) -> __m256i { _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i.self)) }
    /// Bytes [0, count) from p, the rest zero; nothing past p + count is touched (masked loads
    /// do not fault on the lanes they leave out).
    @inline(__always) static func loadPrefix(_ p: UnsafeRawPointer, _ count: Int) -> __m512i {
        count >= 64 ? load64(p) : _mm512_maskz_loadu_epi8(count <= 0 ? 0 : ~UInt64(0) >> UInt64(64 - count), p)
    }
    /// The `blockBytes × k` bytes of k ≤ 4 blocks starting at p, as two registers (bytes 0…63
    /// and 64…127 of the run).
    @inline(__always) static func blocks(_ p: UnsafeRawPointer, _ bytes: Int) -> (__m512i, __m512i) {
        (loadPrefix(p, bytes), loadPrefix(p + 64, bytes - 64))
    }
    /// Lanes 4k…4k+3 of the result = lane k of `v` (k < 4): a block's scale across its i32 sums.
    @inline(__always) static func spread4(_ v: __m512) -> __m512 {
        _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0), v)
    }
    @inline(__always) static func lowNibbles(_ w: __m512i) -> __m512i { _mm512_and_si512(w, _mm512_set1_epi8(0x0F)) }
    @inline(__always) static func highNibbles(_ w: __m512i) -> __m512i { _mm512_and_si512(_mm512_srli_epi16(w, 4), _mm512_set1_epi8(0x0F)) }

    // Byte indices into the 128 bytes of four blocks (vpermt2b): lane k (16 bytes) = block k's
    // nibble bytes, and the scale fields (see each kernel).
    @inline(__always) static var q4_1Nibbles: __m512i { _mm512_set_epi64(0x4f4e4d4c4b4a4948, 0x4746454443424140, 0x3b3a393837363534, 0x333231302f2e2d2c, 0x2726252423222120, 0x1f1e1d1c1b1a1918, 0x131211100f0e0d0c, 0x0b0a090807060504) }
    /// Bytes 0…7: the four d (fp16); 8…15: the four m.
    @inline(__always) static var q4_1Scales: __m512i { _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0x3f3e2b2a17160302, 0x3d3c292815140100) }
    @inline(__always) static var q4_0Nibbles: __m512i { _mm512_set_epi64(0x4746454443424140, 0x3f3e3d3c3b3a3938, 0x3534333231302f2e, 0x2d2c2b2a29282726, 0x232221201f1e1d1c, 0x1b1a191817161514, 0x11100f0e0d0c0b0a, 0x0908070605040302) }
    @inline(__always) static var q4_0Scales: __m512i { _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, 0x3736252413120100) }
    // Q5_0 (see q5_0Group): each qword of lane k holds bytes 0…7 of block k — d, qh, two nibble
    // bytes. Per byte j of a lane, the bit offset that puts qh bit j (low halves: bits 16 + j of
    // the qword) or qh bit 16 + j (high halves: 32 + j) at bit 4.
    @inline(__always) static var q5_0LowShifts: __m512i { _mm512_set_epi64(0x1b1a191817161514, 0x131211100f0e0d0c, 0x1b1a191817161514, 0x131211100f0e0d0c, 0x1b1a191817161514, 0x131211100f0e0d0c, 0x1b1a191817161514, 0x131211100f0e0d0c) }
    @inline(__always) static var q5_0HighShifts: __m512i { _mm512_set_epi64(0x2b2a292827262524, 0x232221201f1e1d1c, 0x2b2a292827262524, 0x232221201f1e1d1c, 0x2b2a292827262524, 0x232221201f1e1d1c, 0x2b2a292827262524, 0x232221201f1e1d1c) }
    /// Word i < 16: word 0 of qword 2·(i/4), block i/4's d (its scale spread over its four sums).
    @inline(__always) static var q5_0ScaleWords: __m512i { _mm512_set_epi64(0, 0, 0, 0, 0x0018001800180018, 0x0010001000100010, 0x0008000800080008, 0) }
    /// Two Q8_0 blocks' 32 value bytes each, out of the 68 bytes of the pair.
    @inline(__always) static var q8_0Pair: __m512i { _mm512_set_epi64(0x434241403f3e3d3c, 0x3b3a393837363534, 0x333231302f2e2d2c, 0x2b2a292827262524, 0x21201f1e1d1c1b1a, 0x1918171615141312, 0x11100f0e0d0c0b0a, 0x0908070605040302) }

    @inline(__always) static func hsum(_ v: __m512) -> Float { _mm512_reduce_add_ps(v) }

    // MARK: Q4_1 (20-byte blocks: d, m, 16 nibble bytes): Σ d·dx·Σq·x + m·sx

    /// One group of four blocks of one row: adds d·dx·(i32 sums) to acc and (d·dx, m·sx) to mins.
    @inline(__always) static func q4_1Group(_ a: __m512i, _ b: __m512i, _ xl: __m512i, _ xh: __m512i, _ ds: __m256,
                                            _ acc: inout __m512, _ mins: inout __m256) {
        let w = _mm512_permutex2var_epi8(a, q4_1Nibbles, b)
        let s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lowNibbles(w), xl), highNibbles(w), xh)
        let f = _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi8(a, q4_1Scales, b))), ds)
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), spread4(_mm512_castps256_ps512(f)), acc)
        mins = _mm256_add_ps(mins, f)
    }

    static func q4_1x2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let nb = a.n / 32, G = a.groups4
        let qv = UnsafeRawPointer(a.qv + t * G * 128), dsv = a.dsv + t * G * 8
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps()
        var m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps()
        let full = nb / 4
        let (_, intoL1, ahead) = MatMul.prefetch
        for g in 0..<G {
            let x = qv + 128 &* g
            let xl = load64(x), xh = load64(x + 64), ds = _mm256_loadu_ps(dsv + 8 &* g)
            let p0 = r0 + 80 &* g, p1 = r1 + 80 &* g
            prefetch2(p0, ahead, intoL1); prefetch2(p1, ahead, intoL1)
            if g < full {
                q4_1Group(load64(p0), _mm512_castsi128_si512(_mm_loadu_si128((p0 + 64).assumingMemoryBound(to: __m128i.self))), xl, xh, ds, &acc0, &m0)
                q4_1Group(load64(p1), _mm512_castsi128_si512(_mm_loadu_si128((p1 + 64).assumingMemoryBound(to: __m128i.self))), xl, xh, ds, &acc1, &m1)
            } else {
                let bytes = 20 * (nb - 4 * g)
                let (a0, b0) = blocks(p0, bytes), (a1, b1) = blocks(p1, bytes)
                q4_1Group(a0, b0, xl, xh, ds, &acc0, &m0)
                q4_1Group(a1, b1, xl, xh, ds, &acc1, &m1)
            }
        }
        return (hsum(acc0) + upperSum(m0), hsum(acc1) + upperSum(m1))
    }
    /// The sum of lanes 4…7.
    @inline(__always) static func upperSum(_ v: __m256) -> Float { (v[4] + v[5]) + (v[6] + v[7]) }

    // MARK: Q4_0 (18 bytes: d, 16 nibble bytes): Σ d·dx·(Σq·x − 8·Σx), the offset folded into
    // the first vpdpbusd's start.

    /// One group of four blocks of one row: the nibbles against the activations, scaled by
    /// d·dx, added to acc.
    @inline(__always) static func q4_0Group(_ a: __m512i, _ b: __m512i, _ xl: __m512i, _ xh: __m512i, _ dx: __m128,
                                            _ start: __m512i, _ acc: inout __m512) {
        let w = _mm512_permutex2var_epi8(a, q4_0Nibbles, b)
        let s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, lowNibbles(w), xl), highNibbles(w), xh)
        let f = _mm_mul_ps(_mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi8(a, q4_0Scales, b))), dx)
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), spread4(_mm512_castps128_ps512(f)), acc)
    }

    static func q4_0x2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let dsv = a.dsv + t * a.groups4 * 8
        return offsetRows(r0, r1, a, t, blockBytes: 18, offsetShift: 3) { p, count, xl, xh, g, start, acc in
            let dx = _mm_loadu_ps(dsv + 8 &* g)
            if count == 4 {
                // The last 8 of the 72 bytes as one plain 64-bit load.
                q4_0Group(load64(p), _mm512_castsi128_si512(_mm_loadl_epi64((p + 64).assumingMemoryBound(to: __m128i.self))), xl, xh, dx, start, &acc)
            } else {
                let (a, b) = blocks(p, 18 &* count)
                q4_0Group(a, b, xl, xh, dx, start, &acc)
            }
        }
    }

    /// The loop Q4_0 and Q5_0 share, over the groups of four blocks of two rows: the group's
    /// activations, its offset (8 or 16 × Σx: −Σx shifted left by `offsetShift`) as the first
    /// vpdpbusd's start, the prefetch, and `group(row bytes, blocks in the group (4, or fewer in
    /// a partial last group), xl, xh, group index, start, &acc)` for each row.
    @inline(__always) static func offsetRows(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int,
                                             blockBytes: Int, offsetShift: UInt32,
                                             _ group: (UnsafeRawPointer, Int, __m512i, __m512i, Int, __m512i, inout __m512) -> Void) -> (Float, Float) {
        let nb = a.n / 32, G = a.groups4
        let qv = UnsafeRawPointer(a.qv + t * G * 128), ns = UnsafeRawPointer(a.negSumv + t * G * 16)
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps()
        let (_, intoL1, ahead) = MatMul.prefetch
        for g in 0..<G {
            let x = qv + 128 &* g
            let xl = load64(x), xh = load64(x + 64)
            let start = _mm512_slli_epi32(load64(ns + 64 &* g), offsetShift)
            let p0 = r0 + 4 &* blockBytes &* g, p1 = r1 + 4 &* blockBytes &* g
            prefetch2(p0, ahead, intoL1); prefetch2(p1, ahead, intoL1)
            let count = min(4, nb &- 4 &* g)
            group(p0, count, xl, xh, g, start, &acc0)
            group(p1, count, xl, xh, g, start, &acc1)
        }
        return (hsum(acc0), hsum(acc1))
    }

    // MARK: Q5_0 (22 bytes: d, qh, 16 nibble bytes): Σ d·dx·(Σq·x − 16·Σx), q = nibble | fifth
    // bit << 4. Two-source word permutes (what LLVM makes of byte permutes with paired indices)
    // cost two cycles of port 5 each on the Xeon, and a group took three; here the lanes are
    // filled by loads instead: block k's 16 nibble bytes, and its first 8 bytes (d, qh) in both
    // qwords of lane k, by one broadcast load and three masked ones each (load + one uop on
    // ports 0/5). vpmultishiftqb picks each value's fifth bit out of the qh qword; one vpermw
    // spreads the four d over their sums. bench matvec from cache, one thread: 1.37 → 1.20 ns per
    // block 1536 wide, 1.73 → 1.47 576 wide (its partial last group included).

    /// One group of one row — `count` (1…4) blocks at p, 22 bytes each — added to acc. A partial
    /// group leaves the lanes of its missing blocks zero (d = 0) and reads nothing past its bytes.
    @inline(__always) static func q5_0Group(_ p: UnsafeRawPointer, count: Int, _ xl: __m512i, _ xh: __m512i, _ dx16: __m512,
                                            _ start: __m512i, _ acc: inout __m512) {
        @inline(__always) func l16(_ o: Int) -> __m128i { _mm_loadu_si128((p + o).assumingMemoryBound(to: __m128i.self)) }
        @inline(__always) func l8(_ o: Int) -> __m128i { _mm_cvtsi64_si128(p.loadUnaligned(fromByteOffset: o, as: Int64.self)) }
        var w: __m512i, h: __m512i
        if count == 4 {
            w = _mm512_broadcast_i32x4(l16(6))
            h = _mm512_broadcastq_epi64(l8(0))
        } else {
            w = _mm512_maskz_broadcast_i32x4(0x000F, l16(6))
            h = _mm512_maskz_broadcastq_epi64(0x03, l8(0))
        }
        if count > 1 { w = _mm512_mask_broadcast_i32x4(w, 0x00F0, l16(28)); h = _mm512_mask_broadcastq_epi64(h, 0x0C, l8(22)) }
        if count > 2 { w = _mm512_mask_broadcast_i32x4(w, 0x0F00, l16(50)); h = _mm512_mask_broadcastq_epi64(h, 0x30, l8(44)) }
        if count > 3 { w = _mm512_mask_broadcast_i32x4(w, 0xF000, l16(72)); h = _mm512_mask_broadcastq_epi64(h, 0xC0, l8(66)) }
        let sixteen = _mm512_set1_epi8(0x10)
        let lo = _mm512_or_si512(lowNibbles(w), _mm512_and_si512(_mm512_multishift_epi64_epi8(q5_0LowShifts, h), sixteen))
        let hi = _mm512_or_si512(highNibbles(w), _mm512_and_si512(_mm512_multishift_epi64_epi8(q5_0HighShifts, h), sixteen))
        let s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, lo, xl), hi, xh)
        let d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(q5_0ScaleWords, h)))
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(d, dx16), acc)
    }

    static func q5_0x2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let dv = a.dv16 + t * a.groups4 * 16
        return offsetRows(r0, r1, a, t, blockBytes: 22, offsetShift: 4) { p, count, xl, xh, g, start, acc in
            let dx16 = _mm512_loadu_ps(dv + 16 &* g)
            // A literal 4 lets the whole-group call drop the count tests.
            if count == 4 { q5_0Group(p, count: 4, xl, xh, dx16, start, &acc) } else { q5_0Group(p, count: count, xl, xh, dx16, start, &acc) }
        }
    }

    // MARK: Q8_0 (34 bytes: d, 32 signed bytes), two blocks per register. vpdpbusd multiplies
    // unsigned by signed bytes: |w| against x with w's sign (llama.cpp's sign trick).

    @inline(__always) static func q8_0Dot(_ w: __m512i, _ x: __m512i) -> __m512i {
        let neg = _mm512_movepi8_mask(w)
        return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x))
    }

    static func q8_0x2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let nb = a.n / 32
        let q = UnsafeRawPointer(a.q32 + t * a.n), d32 = a.d32 + t * nb
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps()
        let first8 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
        var b = 0
        let (_, intoL1, ahead) = MatMul.prefetch
        while b &+ 1 < nb {
            let p0 = r0 + 34 &* b, p1 = r1 + 34 &* b
            prefetch2(p0, ahead, intoL1); prefetch2(p1, ahead, intoL1)
            let x = load64(q + 32 &* b)
            let w0 = _mm512_permutex2var_epi8(load64(p0), q8_0Pair, loadPrefix(p0 + 64, 4))
            let w1 = _mm512_permutex2var_epi8(load64(p1), q8_0Pair, loadPrefix(p1 + 64, 4))
            // The four scales (row 0 blocks b, b+1; row 1 blocks b, b+1) in one conversion.
            let h = _mm_set_epi16(0, 0, 0, 0, p1.loadUnaligned(fromByteOffset: 34, as: Int16.self), p1.loadUnaligned(as: Int16.self),
                                  p0.loadUnaligned(fromByteOffset: 34, as: Int16.self), p0.loadUnaligned(as: Int16.self))
            let dx = _mm_castpd_ps(_mm_load1_pd(UnsafeRawPointer(d32 + b).assumingMemoryBound(to: Double.self)))
            let f = _mm512_castps128_ps512(_mm_mul_ps(_mm_cvtph_ps(h), dx))
            let c0 = _mm512_permutexvar_ps(first8, f)
            let c1 = _mm512_permutexvar_ps(_mm512_add_epi32(first8, _mm512_set1_epi32(2)), f)
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q8_0Dot(w0, x)), c0, acc0)
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q8_0Dot(w1, x)), c1, acc1)
            b = b &+ 2
        }
        var s0 = hsum(acc0), s1 = hsum(acc1)
        if b < nb {
            let p0 = r0 + 34 &* b, p1 = r1 + 34 &* b
            let x = _mm512_castsi256_si512(load32(q + 32 &* b))
            let i0 = q8_0Dot(_mm512_castsi256_si512(load32(p0 + 2)), x), i1 = q8_0Dot(_mm512_castsi256_si512(load32(p1 + 2)), x)
            let m: UInt16 = 0x00FF
            s0 += AVX2Q8.half(p0, 0) * d32[b] * Float(_mm512_mask_reduce_add_epi32(m, i0))
            s1 += AVX2Q8.half(p1, 0) * d32[b] * Float(_mm512_mask_reduce_add_epi32(m, i1))
        }
        return (s0, s1)
    }

    // MARK: Q4_K (144-byte super-blocks: d, dmin, 12 bytes of 6-bit scales and minimums, 128
    // nibble bytes): Σ d·dx·Σ_j sc_j·Σq·x − dmin·dx·Σ_j m_j·Σx over the eight 32-sub-blocks.
    // The first 64 nibble bytes hold sub-blocks 0 and 2 in their low nibbles and 1 and 3 in
    // their high ones (the next 64: 4…7), and `qKv` lays the activations out to match. Each
    // vpdpbusd sum (|s| ≤ 4·15·127) fits 16 bits, so two of them pack into one register of i16
    // and a vpmaddwd multiplies each by its sub-block's scale and adds neighbours.

    /// i16 lane i of the result: scale byte 0 or 1 of `sc` (lanes 0…15: 0…3 → byte 0, 4…7 → byte 1,
    /// per 128-bit lane), bytes 2 and 3 in lanes 16…31, zero high bytes; `+4` for the second half.
    @inline(__always) static var q4_KScales0: __m512i { _mm512_set_epi64(0x0003000300030003, 0x0002000200020002, 0x0003000300030003, 0x0002000200020002, 0x0001000100010001, 0x0000000000000000, 0x0001000100010001, 0x0000000000000000) }
    @inline(__always) static var q4_KScales1: __m512i { _mm512_set_epi64(0x0007000700070007, 0x0006000600060006, 0x0007000700070007, 0x0006000600060006, 0x0005000500050005, 0x0004000400040004, 0x0005000500050005, 0x0004000400040004) }

    /// One super-block of one row: Σ_j sc_j·Σq·x as 16 i32 lanes, and Σ_j m_j·bsum_j as 4.
    @inline(__always) static func q4_KBlock(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ bsum8: __m128i) -> (__m512i, __m128i) {
        let (scales, mins) = AVX2Q8.scalesMinsK4(p + 4)
        let a = load64(p + 16), b = load64(p + 80)
        let zero = _mm512_setzero_si512()
        let s0 = _mm512_dpbusd_epi32(zero, lowNibbles(a), load64(x))
        let s1 = _mm512_dpbusd_epi32(zero, highNibbles(a), load64(x + 64))
        let s2 = _mm512_dpbusd_epi32(zero, lowNibbles(b), load64(x + 128))
        let s3 = _mm512_dpbusd_epi32(zero, highNibbles(b), load64(x + 192))
        // packs per 128-bit lane L: s0's lanes 4L…4L+3, then s1's — sub-blocks 0 and 1 for L < 2,
        // 2 and 3 above; likewise s2, s3 with 4…7.
        let sc = _mm512_castsi128_si512(_mm_cvtsi64_si128(Int64(bitPattern: scales)))
        let evenBytes: UInt64 = 0x5555_5555_5555_5555
        let w0 = _mm512_maskz_permutexvar_epi8(evenBytes, q4_KScales0, sc)
        let w1 = _mm512_maskz_permutexvar_epi8(evenBytes, q4_KScales1, sc)
        let sumi = _mm512_add_epi32(_mm512_madd_epi16(_mm512_packs_epi32(s0, s1), w0), _mm512_madd_epi16(_mm512_packs_epi32(s2, s3), w1))
        let m = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(Int64(bitPattern: mins))), bsum8)
        return (sumi, m)
    }

    static func q4_Kx2(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int) -> (Float, Float) {
        let nb = a.n / 256
        let x = UnsafeRawPointer(a.qKv + t * a.n), bs = UnsafeRawPointer(a.bsum8K + t * (a.n / 32)), dK = a.dK + t * nb
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps()
        var min0 = _mm_setzero_ps(), min1 = _mm_setzero_ps()
        let (_, intoL1, ahead) = MatMul.prefetch
        for b in 0..<nb {
            let p0 = r0 + 144 &* b, p1 = r1 + 144 &* b, xb = x + 256 &* b
            // 144 bytes a step: three lines per row.
            prefetch2(p0, ahead, intoL1); prefetch2(p1, ahead, intoL1)
            prefetch2(p0 + 128, ahead, intoL1); prefetch2(p1 + 128, ahead, intoL1)
            let bsum8 = _mm_loadu_si128((bs + 16 &* b).assumingMemoryBound(to: __m128i.self))
            let (i0, m0) = q4_KBlock(p0, xb, bsum8), (i1, m1) = q4_KBlock(p1, xb, bsum8)
            // (d, dmin) of both rows times dx: lanes d0, dmin0, d1, dmin1.
            let f = _mm_mul_ps(_mm_cvtph_ps(_mm_unpacklo_epi32(_mm_cvtsi32_si128(p0.loadUnaligned(as: Int32.self)),
                                                               _mm_cvtsi32_si128(p1.loadUnaligned(as: Int32.self)))), _mm_set1_ps(dK[b]))
            let fz = _mm512_castps128_ps512(f)
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), _mm512_permutexvar_ps(_mm512_set1_epi32(0), fz), acc0)
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_permutexvar_ps(_mm512_set1_epi32(2), fz), acc1)
            min0 = _mm_fmadd_ps(_mm_cvtepi32_ps(m0), _mm_permutevar_ps(f, _mm_set1_epi32(1)), min0)
            min1 = _mm_fmadd_ps(_mm_cvtepi32_ps(m1), _mm_permutevar_ps(f, _mm_set1_epi32(3)), min1)
        }
        return (hsum(acc0) - min0.sum(), hsum(acc1) - min1.sum())
    }
}
#endif
