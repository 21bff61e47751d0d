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
}
enum PackedQ4_0: PackedKind { static var bytes: Bool { false }; static var mins: Bool { false }; static var offset: Int32 { 8 } }
enum PackedQ4_1: PackedKind { static var bytes: Bool { false }; static var mins: Bool { true }; static var offset: Int32 { 0 } }
enum PackedQ8_0: PackedKind { static var bytes: Bool { true }; static var mins: Bool { false }; static var offset: Int32 { 128 } }

enum AVX512Packed {
    static func run(_ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                    _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        switch w.type {
        case .q4_0: rowGroups(PackedQ4_0.self, w, a, tokens, groups, y, ldy, accumulate)
        case .q4_1: rowGroups(PackedQ4_1.self, w, a, tokens, groups, y, ldy, accumulate)
        case .q8_0: rowGroups(PackedQ8_0.self, w, a, tokens, groups, y, ldy, accumulate)
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
        return Block(w0: _mm512_and_si512(c0, lo), w1: _mm512_and_si512(c1, lo), w2: _mm512_and_si512(c2, lo), w3: _mm512_and_si512(c3, lo),
                     w4: _mm512_and_si512(_mm512_srli_epi16(c0, 4), lo), w5: _mm512_and_si512(_mm512_srli_epi16(c1, 4), lo),
                     w6: _mm512_and_si512(_mm512_srli_epi16(c2, 4), lo), w7: _mm512_and_si512(_mm512_srli_epi16(c3, 4), lo),
                     d: _mm512_cvtph_ps(_mm256_loadu_si256((p + 256).assumingMemoryBound(to: __m256i.self))),
                     m: K.mins ? _mm512_cvtph_ps(_mm256_loadu_si256((p + 288).assumingMemoryBound(to: __m256i.self))) : _mm512_setzero_ps())
    }

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
                    // Decoding streams the weights: ask for every line of the tile `ahead` on.
                    var off = 0
                    while off < tb {
                        if intoL1 { tailor_prefetch_l1(p + (ahead &+ off)) } else { tailor_prefetch(p + (ahead &+ off)) }
                        off &+= 64
                    }
                    let i: Int = t &* nb &+ b
                    let qt: UnsafePointer<Int8> = q + (t &* n &+ 32 &* b)
                    acc = step(k, load(k, p), qt, sum: sums[i], dx: dx[i], s: sx[i], acc)
                }
                store(acc, out + t &* ldy, mask, accumulate)
                t += 1
            }
        }
    }
}
#endif
