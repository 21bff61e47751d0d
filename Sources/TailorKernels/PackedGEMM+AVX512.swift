// The AVX-512 VNNI kernel of PackedGEMM: for a row group (16 rows, one per i32 lane) and up to
// four tokens at a time, each block's weights are unpacked once into eight registers of
// "4 values × 16 rows", and every token's 32 activation bytes reach them as eight broadcast dwords
// (vpdpbusd with a {1to16} operand). Two accumulators per token (values 0–15 and 16–31) keep
// the dependent vpdpbusd chains short. The float steps are those of PackedGEMM.reference, in the
// same order, so the results are the reference's bits.
#if TAILOR_AVX512
import _Builtin_intrinsics.intel
import CBLAS

protocol PackedKind {
    /// Eight 64-byte chunks of unsigned bytes (Q8_0) instead of four of nibbles.
    static var bytes: Bool { get }
    /// A second scale (m) added per block (Q4_1).
    static var mins: Bool { get }
    /// The unsigned weights' offset (see PackedWeights.offset).
    static var offset: Int32 { get }
    /// A fifth bit per value from the tile's qh (Q5_0).
    static var fifth: Bool { get }
}
extension PackedKind { static var fifth: Bool { false } }
enum PackedQ4_0: PackedKind { static var bytes: Bool { false }; static var mins: Bool { false }; static var offset: Int32 { 8 } }
enum PackedQ4_1: PackedKind { static var bytes: Bool { false }; static var mins: Bool { true }; static var offset: Int32 { 0 } }
enum PackedQ5_0: PackedKind { static var bytes: Bool { false }; static var mins: Bool { false }; static var offset: Int32 { 16 }; static var fifth: Bool { true } }
enum PackedQ8_0: PackedKind { static var bytes: Bool { true }; static var mins: Bool { false }; static var offset: Int32 { 128 } }

enum AVX512Packed {
    static func run(_ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                    _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        switch w.type {
        case .q4_0: rowGroups(PackedQ4_0.self, w, a, tokens, groups, y, ldy, accumulate)
        case .q4_1: rowGroups(PackedQ4_1.self, w, a, tokens, groups, y, ldy, accumulate)
        case .q5_0: rowGroups(PackedQ5_0.self, w, a, tokens, groups, y, ldy, accumulate)
        case .q8_0: rowGroups(PackedQ8_0.self, w, a, tokens, groups, y, ldy, accumulate)
        case .q4_K, .q5_K: q4KRowGroups(w, a, tokens, groups, y, ldy, accumulate)
        case .q6_K: q6KRowGroups(w, a, tokens, groups, y, ldy, accumulate)
        default: PackedGEMM.reference(w, a, tokens: tokens, groups: groups, y, ldy: ldy, accumulate: accumulate)
        }
    }

    /// The weights of one block of one row group: eight registers of four values × sixteen rows,
    /// the sixteen scales d (and m).
    struct Block {
        var w0, w1, w2, w3, w4, w5, w6, w7: __m512i
        var d: __m512
        var m: __m512
    }

    @inline(__always) static func load<K: PackedKind>(_: K.Type, _ p: UnsafeRawPointer) -> Block {
        let lo = _mm512_set1_epi8(0x0F)
        if K.bytes {
            return Block(w0: _mm512_loadu_si512(p), w1: _mm512_loadu_si512(p + 64), w2: _mm512_loadu_si512(p + 128),
                         w3: _mm512_loadu_si512(p + 192), w4: _mm512_loadu_si512(p + 256), w5: _mm512_loadu_si512(p + 320),
                         w6: _mm512_loadu_si512(p + 384), w7: _mm512_loadu_si512(p + 448),
                         d: _mm512_cvtph_ps(_mm256_loadu_si256((p + 512).assumingMemoryBound(to: __m256i.self))), m: _mm512_setzero_ps())
        }
        let c0 = _mm512_loadu_si512(p), c1 = _mm512_loadu_si512(p + 64), c2 = _mm512_loadu_si512(p + 128), c3 = _mm512_loadu_si512(p + 192)
        if K.fifth {
            let qh = _mm512_loadu_si512(p + 288)
            let sixteen = _mm512_set1_epi8(16)
            @inline(__always) func unit(_ c: __m512i, _ u: Int8, high: Bool) -> __m512i {
                let nib = high ? _mm512_and_si512(_mm512_srli_epi16(c, 4), lo) : _mm512_and_si512(c, lo)
                return _mm512_or_si512(nib, _mm512_and_si512(_mm512_multishift_epi64_epi8(_mm512_add_epi8(fifthBitShifts, _mm512_set1_epi8(4 &* u)), qh), sixteen))
            }
            return Block(w0: unit(c0, 0, high: false), w1: unit(c1, 1, high: false), w2: unit(c2, 2, high: false), w3: unit(c3, 3, high: false),
                         w4: unit(c0, 4, high: true), w5: unit(c1, 5, high: true), w6: unit(c2, 6, high: true), w7: unit(c3, 7, high: true),
                         d: _mm512_cvtph_ps(_mm256_loadu_si256((p + 256).assumingMemoryBound(to: __m256i.self))), m: _mm512_setzero_ps())
        }
        return Block(w0: _mm512_and_si512(c0, lo), w1: _mm512_and_si512(c1, lo), w2: _mm512_and_si512(c2, lo), w3: _mm512_and_si512(c3, lo),
                     w4: _mm512_and_si512(_mm512_srli_epi16(c0, 4), lo), w5: _mm512_and_si512(_mm512_srli_epi16(c1, 4), lo),
                     w6: _mm512_and_si512(_mm512_srli_epi16(c2, 4), lo), w7: _mm512_and_si512(_mm512_srli_epi16(c3, 4), lo),
                     d: _mm512_cvtph_ps(_mm256_loadu_si256((p + 256).assumingMemoryBound(to: __m256i.self))),
                     m: K.mins ? _mm512_cvtph_ps(_mm256_loadu_si256((p + 288).assumingMemoryBound(to: __m256i.self))) : _mm512_setzero_ps())
    }

    /// vpmultishiftqb controls that bring bit 4u + k of each row's qh dword (value 4u + k of unit u,
    /// once 4u is added to every byte) to bit 4 of byte k: each byte selects the eight bits from
    /// (that bit − 4), in its qword (row 2j's dword is its low half, row 2j+1's the high half).
    static var fifthBitShifts: __m512i { _mm512_set1_epi64(0x1F1E_1D1C_3F3E_3D3C) }

    @inline(__always) static func bcast(_ q: UnsafePointer<Int8>, _ i: Int) -> __m512i {
        _mm512_set1_epi32(UnsafeRawPointer(q).loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
    }

    /// One token's block: acc = fma(Float(isum), d·dx, acc) (+ fma(m, s, acc)).
    @inline(__always) static func step<K: PackedKind>(_: K.Type, _ blk: Block, _ q: UnsafePointer<Int8>, sum: Int32, dx: Float, s: Float,
                                                      _ acc: __m512) -> __m512 {
        var lo = K.offset == 0 ? _mm512_setzero_si512() : _mm512_set1_epi32(0 &- K.offset &* sum)
        var hi = _mm512_setzero_si512()
        lo = _mm512_dpbusd_epi32(lo, blk.w0, bcast(q, 0)); hi = _mm512_dpbusd_epi32(hi, blk.w4, bcast(q, 4))
        lo = _mm512_dpbusd_epi32(lo, blk.w1, bcast(q, 1)); hi = _mm512_dpbusd_epi32(hi, blk.w5, bcast(q, 5))
        lo = _mm512_dpbusd_epi32(lo, blk.w2, bcast(q, 2)); hi = _mm512_dpbusd_epi32(hi, blk.w6, bcast(q, 6))
        lo = _mm512_dpbusd_epi32(lo, blk.w3, bcast(q, 3)); hi = _mm512_dpbusd_epi32(hi, blk.w7, bcast(q, 7))
        let f = _mm512_cvtepi32_ps(_mm512_add_epi32(lo, hi))
        var r = _mm512_fmadd_ps(f, _mm512_mul_ps(blk.d, _mm512_set1_ps(dx)), acc)
        if K.mins { r = _mm512_fmadd_ps(blk.m, _mm512_set1_ps(s), r) }
        return r
    }

    /// Asks for every line of the tile at p, `ahead` bytes on (the weights stream from memory).
    @inline(__always) static func prefetchTile(_ p: UnsafeRawPointer, _ bytes: Int, _ ahead: Int, _ intoL1: Bool) {
        var off = 0
        while off < bytes {
            if intoL1 { tailor_prefetch_l1(p + (ahead &+ off)) } else { tailor_prefetch(p + (ahead &+ off)) }
            off &+= 64
        }
    }

    @inline(__always) static func store(_ v: __m512, _ p: UnsafeMutablePointer<Float>, _ mask: __mmask16, _ accumulate: Bool) {
        if accumulate { _mm512_mask_storeu_ps(p, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), v)) }
        else { _mm512_mask_storeu_ps(p, mask, v) }
    }

    static func rowGroups<K: PackedKind>(_ k: K.Type, _ w: PackedWeights, _ a: QuantizedActivations, _ T: Int, _ groups: Range<Int>,
                                         _ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ accumulate: Bool) {
        let nb = w.blocks, n = a.n, tb = w.tileBytes
        let q = UnsafePointer(a.q32), sums = UnsafePointer(a.sum32), dx = UnsafePointer(a.d32), sx = UnsafePointer(a.s32)
        let (_, intoL1, ahead) = MatMul.prefetch
        for g in groups {
            let base = w.tile(group: g, block: 0)
            let rows = min(16, w.rows - g * 16)
            let mask: __mmask16 = rows == 16 ? 0xFFFF : __mmask16((1 << rows) - 1)
            let out = y + g * 16
            var t = 0
            while t + 4 <= T {
                var a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps()
                for b in 0..<nb {
                    // The first pass over the group's tiles streams them from memory.
                    if t == 0 { prefetchTile(base + b &* tb, tb, ahead, intoL1) }
                    let blk = load(k, base + b &* tb)
                    let i0: Int = t &* nb &+ b, i1: Int = i0 &+ nb, i2: Int = i1 &+ nb, i3: Int = i2 &+ nb
                    let q0: UnsafePointer<Int8> = q + (t &* n &+ 32 &* b)
                    a0 = step(k, blk, q0, sum: sums[i0], dx: dx[i0], s: sx[i0], a0)
                    a1 = step(k, blk, q0 + n, sum: sums[i1], dx: dx[i1], s: sx[i1], a1)
                    a2 = step(k, blk, q0 + 2 &* n, sum: sums[i2], dx: dx[i2], s: sx[i2], a2)
                    a3 = step(k, blk, q0 + 3 &* n, sum: sums[i3], dx: dx[i3], s: sx[i3], a3)
                }
                store(a0, out + t &* ldy, mask, accumulate)
                store(a1, out + (t &+ 1) &* ldy, mask, accumulate)
                store(a2, out + (t &+ 2) &* ldy, mask, accumulate)
                store(a3, out + (t &+ 3) &* ldy, mask, accumulate)
                t += 4
            }
            while t < T {
                var acc = _mm512_setzero_ps()
                for b in 0..<nb {
                    let p = base + b &* tb
                    if t < 4 { prefetchTile(p, tb, ahead, intoL1) }
                    let i: Int = t &* nb &+ b
                    let qt: UnsafePointer<Int8> = q + (t &* n &+ 32 &* b)
                    acc = step(k, load(k, p), qt, sum: sums[i], dx: dx[i], s: sx[i], acc)
                }
                store(acc, out + t &* ldy, mask, accumulate)
                t += 1
            }
        }
    }

    // MARK: K-quants (PackedWeights+KQuants.swift): a sub-block's values unpacked once per token
    // tile, its integer sums scaled by the sub-block's integer scale in i32, the float steps once
    // per super-block.

    /// Σ over the four quads of `w` against 16 activation bytes at q (one 16-value sub-block).
    @inline(__always) static func sum16(_ w0: __m512i, _ w1: __m512i, _ w2: __m512i, _ w3: __m512i, _ q: UnsafePointer<Int8>, _ start: __m512i) -> __m512i {
        let a = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, w0, bcast(q, 0)), w1, bcast(q, 1))
        let b = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w2, bcast(q, 2)), w3, bcast(q, 3))
        return _mm512_add_epi32(a, b)
    }

    /// The i32 lanes of 16 bytes at p (unsigned or signed).
    @inline(__always) static func bytes16(_ p: UnsafeRawPointer, signed: Bool) -> __m512i {
        let v = _mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self))
        return signed ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v)
    }

    @inline(__always) static func halves16(_ p: UnsafeRawPointer) -> __m512 { _mm512_cvtph_ps(_mm256_loadu_si256(p.assumingMemoryBound(to: __m256i.self))) }

    static func q4KRowGroups(_ w: PackedWeights, _ a: QuantizedActivations, _ T: Int, _ groups: Range<Int>,
                             _ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ accumulate: Bool) {
        let nb = w.blocks, n = a.n, tb = w.tileBytes, nb16 = n / 16
        let q = UnsafePointer(a.qK), bsums = UnsafePointer(a.bsumsK), dxs = UnsafePointer(a.dK)
        let lo = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1), q5 = w.type == .q5_K
        let (_, intoL1, ahead) = MatMul.prefetch
        for g in groups {
            let rows = min(16, w.rows - g * 16)
            let mask: __mmask16 = rows == 16 ? 0xFFFF : __mmask16((1 << rows) - 1)
            let out = y + g * 16
            var t0 = 0
            while t0 < T {
                let count = min(4, T - t0)
                var acc = (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps())
                for b in 0..<nb {
                    let p = w.tile(group: g, block: b)
                    if t0 == 0 { prefetchTile(p, tb, ahead, intoL1) }
                    var sumi = (_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512())
                    var summ = sumi
                    for sb in 0..<8 {
                        let u = p + 512 &* (sb >> 1)
                        let shift: UInt32 = sb & 1 == 0 ? 0 : 4
                        @inline(__always) func unit(_ k: Int) -> __m512i {
                            let nibble = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(u + 64 &* k), shift), lo)
                            guard q5 else { return nibble }
                            // Q5_K: bit sb of each qh byte, to bit 4.
                            let bit = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(p + (KTile.q4KBytes &+ 64 &* k)), UInt32(sb)), one)
                            return _mm512_or_si512(nibble, _mm512_slli_epi16(bit, 4))
                        }
                        let w0 = unit(0), w1 = unit(1), w2 = unit(2), w3 = unit(3), w4 = unit(4), w5 = unit(5), w6 = unit(6), w7 = unit(7)
                        let sc = bytes16(p + (2048 &+ 16 &* sb), signed: false), m = bytes16(p + (2176 &+ 16 &* sb), signed: false)
                        @inline(__always) func token(_ t: Int, _ si: inout __m512i, _ sm: inout __m512i) {
                            let qt: UnsafePointer<Int8> = q + ((t0 &+ t) &* n &+ 256 &* b &+ 32 &* sb)
                            let isum = _mm512_add_epi32(sum16(w0, w1, w2, w3, qt, _mm512_setzero_si512()), sum16(w4, w5, w6, w7, qt + 16, _mm512_setzero_si512()))
                            si = _mm512_add_epi32(si, _mm512_mullo_epi32(isum, sc))
                            let bs: UnsafePointer<Int16> = bsums + ((t0 &+ t) &* nb16 &+ 16 &* b &+ 2 &* sb)
                            sm = _mm512_add_epi32(sm, _mm512_mullo_epi32(m, _mm512_set1_epi32(Int32(bs[0]) &+ Int32(bs[1]))))
                        }
                        token(0, &sumi.0, &summ.0)
                        if count > 1 { token(1, &sumi.1, &summ.1) }
                        if count > 2 { token(2, &sumi.2, &summ.2) }
                        if count > 3 { token(3, &sumi.3, &summ.3) }
                    }
                    let d = halves16(p + 2304), dmin = halves16(p + 2336)
                    @inline(__always) func finish(_ t: Int, _ si: __m512i, _ sm: __m512i, _ a: __m512) -> __m512 {
                        let dx = dxs[(t0 &+ t) &* nb &+ b]
                        let r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(d, _mm512_set1_ps(dx)), a)
                        return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sm), _mm512_mul_ps(dmin, _mm512_set1_ps(-dx)), r)
                    }
                    acc.0 = finish(0, sumi.0, summ.0, acc.0)
                    if count > 1 { acc.1 = finish(1, sumi.1, summ.1, acc.1) }
                    if count > 2 { acc.2 = finish(2, sumi.2, summ.2, acc.2) }
                    if count > 3 { acc.3 = finish(3, sumi.3, summ.3, acc.3) }
                }
                store(acc.0, out + t0 &* ldy, mask, accumulate)
                if count > 1 { store(acc.1, out + (t0 &+ 1) &* ldy, mask, accumulate) }
                if count > 2 { store(acc.2, out + (t0 &+ 2) &* ldy, mask, accumulate) }
                if count > 3 { store(acc.3, out + (t0 &+ 3) &* ldy, mask, accumulate) }
                t0 += count
            }
        }
    }

    static func q6KRowGroups(_ w: PackedWeights, _ a: QuantizedActivations, _ T: Int, _ groups: Range<Int>,
                             _ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ accumulate: Bool) {
        let nb = w.blocks, n = a.n, tb = w.tileBytes, nb16 = n / 16
        let q = UnsafePointer(a.qK), bsums = UnsafePointer(a.bsumsK), dxs = UnsafePointer(a.dK)
        let lo = _mm512_set1_epi8(0x0F), three = _mm512_set1_epi8(3)
        let (_, intoL1, ahead) = MatMul.prefetch
        for g in groups {
            let rows = min(16, w.rows - g * 16)
            let mask: __mmask16 = rows == 16 ? 0xFFFF : __mmask16((1 << rows) - 1)
            let out = y + g * 16
            var t0 = 0
            while t0 < T {
                let count = min(4, T - t0)
                var acc = (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps())
                for b in 0..<nb {
                    let p = w.tile(group: g, block: b)
                    if t0 == 0 { prefetchTile(p, tb, ahead, intoL1) }
                    var sumi = (_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512())
                    for h in 0..<2 {
                        for i in 0..<2 {
                            for kq in 0..<4 {
                                // Values 128h + 32kq + 16i … +15: sub-block 8h + 2kq + i.
                                let sb = 8 &* h &+ 2 &* kq &+ i
                                let lowShift: UInt32 = kq < 2 ? 0 : 4, highShift = UInt32(2 &* kq)
                                let mBase = (kq & 1 == 0 ? 0 : 8) &+ 4 &* i
                                @inline(__always) func quad(_ j: Int) -> __m512i {
                                    let l = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(p + 64 &* (16 &* h &+ mBase &+ j)), lowShift), lo)
                                    let hb = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(p + (2048 &+ 64 &* (8 &* h &+ 4 &* i &+ j))), highShift), three)
                                    return _mm512_or_si512(l, _mm512_slli_epi16(hb, 4))
                                }
                                let w0 = quad(0), w1 = quad(1), w2 = quad(2), w3 = quad(3)
                                let sc = bytes16(p + (3072 &+ 16 &* sb), signed: true)
                                @inline(__always) func token(_ t: Int, _ si: inout __m512i) {
                                    let base: Int = (t0 &+ t) &* n &+ 256 &* b &+ 16 &* sb
                                    let bs = Int32(bsums[(t0 &+ t) &* nb16 &+ 16 &* b &+ sb])
                                    let isum = sum16(w0, w1, w2, w3, q + base, _mm512_set1_epi32(0 &- 32 &* bs))
                                    si = _mm512_add_epi32(si, _mm512_mullo_epi32(isum, sc))
                                }
                                token(0, &sumi.0)
                                if count > 1 { token(1, &sumi.1) }
                                if count > 2 { token(2, &sumi.2) }
                                if count > 3 { token(3, &sumi.3) }
                            }
                        }
                    }
                    let d = halves16(p + 3328)
                    @inline(__always) func finish(_ t: Int, _ si: __m512i, _ a: __m512) -> __m512 {
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(d, _mm512_set1_ps(dxs[(t0 &+ t) &* nb &+ b])), a)
                    }
                    acc.0 = finish(0, sumi.0, acc.0)
                    if count > 1 { acc.1 = finish(1, sumi.1, acc.1) }
                    if count > 2 { acc.2 = finish(2, sumi.2, acc.2) }
                    if count > 3 { acc.3 = finish(3, sumi.3, acc.3) }
                }
                store(acc.0, out + t0 &* ldy, mask, accumulate)
                if count > 1 { store(acc.1, out + (t0 &+ 1) &* ldy, mask, accumulate) }
                if count > 2 { store(acc.2, out + (t0 &+ 2) &* ldy, mask, accumulate) }
                if count > 3 { store(acc.3, out + (t0 &+ 3) &* ldy, mask, accumulate) }
                t0 += count
            }
        }
    }
}
#endif
