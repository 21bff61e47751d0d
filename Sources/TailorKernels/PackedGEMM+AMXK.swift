// The AMX kernel of the packed K-quants (Q4_K, Q5_K, Q6_K) for many tokens. Their sub-block scales are
// small integers, so the scaling can happen inside the tile products instead of after each one:
// every weight is multiplied by its sub-block scale before the product, and since q·scale does not
// fit a byte, the scale is split into digits whose products do:
//   Q4_K  sc = 8·hi + lo (digits 0…7): q4·lo, q4·hi ≤ 105; the mins term Σ m·q is a third product
//         whose weights are the sub-block's m (≤ 63) for each of its 32 values.
//   Q5_K  as Q4_K; q5·lo, q5·hi ≤ 217 fit unsigned bytes (tile products signed × unsigned).
//   Q6_K  sc = 64·p2 + 8·p1 + p0 (digits −3…4): (q6 − 32)·p ∈ [−128, 124].
// A super-block is then three products per 64 values accumulated over the whole 256 (tiles 0–2),
// stored once, and the integer sums the reference computes are c0 + 8·c1 (Q4_K, with c2 = Σ m·q)
// or c0 + 8·c1 + 64·c2 (Q6_K) — exactly, so the float step that follows (one per super-block and
// token) gives the reference's bits. Loops: row group, then super-block (its digit-scaled weights
// made once, 12 KiB that stay in L1), then every tile of 16 tokens, whose accumulators live in a
// scratch row per token; the activations come from QuantizedActivations.qKTiles, contiguous per
// super-block. Measured on the AMX Xeon (session 17): ~280–300 GMAC/s per core at 512 tokens
// against 65–85 for the VNNI kernel; the tile loads (four per three products) and the tile
// registers' reuse (no renaming: a load waits for the products reading the register) bound it,
// at about a third of the tile unit's peak.
#if TAILOR_AMX
import _Builtin_intrinsics.intel
import CBLAS
import Foundation

enum AMXPackedK {
    /// Fewest tokens for this kernel (the scratch is made once per row group and call).
    /// TAILOR_AMXK_MIN_TOKENS changes it (for measurements).
    static let minimumTokens = Int(ProcessInfo.processInfo.environment["TAILOR_AMXK_MIN_TOKENS"] ?? "") ?? 32

    static let superBlockScratch = 12 * 1024

    /// Q6_K's scale digits: for each int8 scale (by its bit pattern) p0, p1, p2 in −3…4 with
    /// sc = 64·p2 + 8·p1 + p0, as bytes 0, 1, 2.
    static let q6Digits: [UInt32] = (0..<256).map { bits in
        var v = Int(Int8(truncatingIfNeeded: bits))
        var out: UInt32 = 0
        for i in 0..<3 {
            let p = ((v + 3) & 7) - 3
            out |= UInt32(UInt8(truncatingIfNeeded: p)) << (8 * i)
            v = (v - p) >> 3
        }
        return out
    }

    /// The bytes of `w` times those of `d` (each product fits a byte; only its low 8 bits are kept).
    @inline(__always) static func mulBytes(_ w: __m512i, _ d: __m512i) -> __m512i {
        let even = _mm512_mullo_epi16(w, d)
        let odd = _mm512_slli_epi16(_mm512_mullo_epi16(_mm512_srli_epi16(w, 8), _mm512_srli_epi16(d, 8)), 8)
        return _mm512_mask_blend_epi8(0xAAAA_AAAA_AAAA_AAAA, even, odd)
    }

    /// 16 bytes (one per weight row) spread to the tile's layout: byte 4i…4i+3 = p[i].
    @inline(__always) static func spread(_ p: UnsafeRawPointer, _ index: __m512i) -> __m512i {
        _mm512_permutexvar_epi8(index, _mm512_broadcast_i32x4(_mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self))))
    }

    static func run(_ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                    _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let nb = w.blocks, q4 = w.type != .q6_K, q5 = w.type == .q5_K
        let one = _mm512_set1_epi8(1)
        // One super-block's digit-scaled weights (4 chunks × 3 pieces × 1 KiB, made once and kept
        // in L1 while every tile of 16 tokens uses them), their digits (3 pieces × 16 sub-blocks
        // × 16 rows), the three C tiles, and the accumulators of every token (16 rows each).
        let padded = (tokens + 15) / 16 * 16
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: superBlockScratch + 768 + 3072 + padded * 64, alignment: 64)
        defer { scratch.deallocate() }
        let bt = scratch, digits = scratch + superBlockScratch, cbuf = digits + 768
        let accs = (cbuf + 3072).assumingMemoryBound(to: Float.self)
        var indexBytes = [UInt8](repeating: 0, count: 64)
        for i in 0..<64 { indexBytes[i] = UInt8(i / 4) }
        let index = indexBytes.withUnsafeBytes { _mm512_loadu_si512($0.baseAddress!) }
        let lowNibbles = _mm512_set1_epi8(0x0F), three = _mm512_set1_epi8(3), bias = _mm512_set1_epi8(32)
        let (_, intoL1, ahead) = MatMul.prefetch
        tailor_amxk_configure()
        defer { tailor_amx_release() }
        for g in groups {
            for b in 0..<nb {
                let p = w.tile(group: g, block: b)
                AVX512Packed.prefetchTile(p, w.tileBytes, ahead, intoL1)
                let d: __m512, dmin: __m512
                if q4 {
                    for s in 0..<8 {
                        for i in 0..<16 {
                            let sc = p.load(fromByteOffset: 2048 &+ 16 &* s &+ i, as: UInt8.self)
                            digits.storeBytes(of: sc & 7, toByteOffset: 16 &* s &+ i, as: UInt8.self)
                            digits.storeBytes(of: sc >> 3, toByteOffset: 256 &+ 16 &* s &+ i, as: UInt8.self)
                        }
                    }
                    for j in 0..<4 {
                        let c = bt + 3072 &* j
                        for r in 0..<16 {
                            let s = 2 &* j &+ (r >> 3)
                            let u = _mm512_loadu_si512(p + (512 &* j &+ 64 &* (r & 7)))
                            let shift: UInt32 = r < 8 ? 0 : 4
                            var q = _mm512_and_si512(_mm512_srli_epi16(u, shift), lowNibbles)
                            if q5 {
                                let bits = _mm512_loadu_si512(p + (KTile.q4KBytes &+ 64 &* (r & 7)))
                                q = _mm512_or_si512(q, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(bits, UInt32(s)), one), 4))
                            }
                            _mm512_store_si512(c + 64 &* r, mulBytes(q, spread(digits + 16 &* s, index)))
                            _mm512_store_si512(c + (1024 &+ 64 &* r), mulBytes(q, spread(digits + (256 &+ 16 &* s), index)))
                            _mm512_store_si512(c + (2048 &+ 64 &* r), spread(p + (2176 &+ 16 &* s), index))
                        }
                    }
                    d = AVX512Packed.halves16(p + 2304)
                    dmin = AVX512Packed.halves16(p + 2336)
                } else {
                    for s in 0..<16 {
                        for i in 0..<16 {
                            let dg = q6Digits[Int(p.load(fromByteOffset: 3072 &+ 16 &* s &+ i, as: UInt8.self))]
                            digits.storeBytes(of: UInt8(truncatingIfNeeded: dg), toByteOffset: 16 &* s &+ i, as: UInt8.self)
                            digits.storeBytes(of: UInt8(truncatingIfNeeded: dg >> 8), toByteOffset: 256 &+ 16 &* s &+ i, as: UInt8.self)
                            digits.storeBytes(of: UInt8(truncatingIfNeeded: dg >> 16), toByteOffset: 512 &+ 16 &* s &+ i, as: UInt8.self)
                        }
                    }
                    for chunk in 0..<4 {
                        let c = bt + 3072 &* chunk, h = chunk >> 1
                        for r in 0..<16 {
                            // Values 64·chunk + 4r…+3: kq = 2(chunk & 1) + r/8, l/4 = r % 8.
                            let kq = 2 &* (chunk & 1) &+ (r >> 3), l4 = r & 7
                            let m = (kq & 1 == 0 ? 0 : 8) &+ l4
                            let lowShift: UInt32 = kq < 2 ? 0 : 4
                            let low = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(p + 64 &* (16 &* h &+ m)), lowShift), lowNibbles)
                            let high = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(p + (2048 &+ 64 &* (8 &* h &+ l4))), UInt32(2 &* kq)), three)
                            let v = _mm512_sub_epi8(_mm512_or_si512(low, _mm512_slli_epi16(high, 4)), bias)
                            let s = 4 &* chunk &+ (r >> 2)
                            for piece in 0..<3 {
                                _mm512_store_si512(c + (1024 &* piece &+ 64 &* r), mulBytes(v, spread(digits + (256 &* piece &+ 16 &* s), index)))
                            }
                        }
                    }
                    d = AVX512Packed.halves16(p + 3328)
                    dmin = d
                }
                let bp = UnsafeRawPointer(bt)
                var t0 = 0
                while t0 < tokens {
                    let count = min(16, tokens - t0)
                    let q = UnsafeRawPointer(a.qKTiles + (b &* a.paddedTokens &+ t0) &* 256)
                    tailor_amxk_zero()
                    if q5 {
                        // q5·digit reaches 217: unsigned weight bytes.
                        tailor_amxk_step3u(q, 256, bp)
                        tailor_amxk_step3ub(q + 64, 256, bp + 3072)
                        tailor_amxk_step3u(q + 128, 256, bp + 6144)
                        tailor_amxk_step3ub(q + 192, 256, bp + 9216)
                    } else {
                        tailor_amxk_step3(q, 256, bp)
                        tailor_amxk_step3b(q + 64, 256, bp + 3072)
                        tailor_amxk_step3(q + 128, 256, bp + 6144)
                        tailor_amxk_step3b(q + 192, 256, bp + 9216)
                    }
                    tailor_amxk_store3(cbuf)
                    let dx = UnsafePointer(a.dK + (t0 &* nb &+ b))
                    let acc = accs + t0 &* 16
                    for i in 0..<count {
                        let r = b == 0 ? _mm512_setzero_ps() : _mm512_load_ps(acc + 16 &* i)
                        let c0 = _mm512_load_si512(cbuf + 64 &* i), c1 = _mm512_load_si512(cbuf + (1024 &+ 64 &* i))
                        let c2 = _mm512_load_si512(cbuf + (2048 &+ 64 &* i))
                        let x = dx[i &* nb]
                        let out: __m512
                        if q4 {
                            let sumi = _mm512_add_epi32(c0, _mm512_slli_epi32(c1, 3))
                            let s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(x)), r)
                            out = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c2), _mm512_mul_ps(dmin, _mm512_set1_ps(-x)), s)
                        } else {
                            let sumi = _mm512_add_epi32(_mm512_add_epi32(c0, _mm512_slli_epi32(c1, 3)), _mm512_slli_epi32(c2, 6))
                            out = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(x)), r)
                        }
                        _mm512_store_ps(acc + 16 &* i, out)
                    }
                    t0 += 16
                }
            }
            let rows = min(16, w.rows - g * 16)
            let mask: __mmask16 = rows == 16 ? 0xFFFF : __mmask16((1 << rows) - 1)
            for t in 0..<tokens { AVX512Packed.store(_mm512_load_ps(accs + 16 &* t), y + (g * 16 + t &* ldy), mask, accumulate) }
        }
    }
}

#endif
