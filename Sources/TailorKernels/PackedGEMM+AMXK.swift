// The AMX kernel of the packed K-quants (Q4_K, Q6_K) for many tokens. Their sub-block scales are
// small integers, so the scaling can happen inside the tile products instead of after each one:
// every weight is multiplied by its sub-block scale before the product, and since q·scale does not
// fit a byte, the scale is split into digits whose products do:
//   Q4_K  sc = 8·hi + lo (digits 0…7): q4·lo, q4·hi ≤ 105; the mins term Σ m·q is a third product
//         whose weights are the sub-block's m (≤ 63) for each of its 32 values.
//   Q6_K  sc = 64·p2 + 8·p1 + p0 (digits −3…4): (q6 − 32)·p ∈ [−128, 124].
// A super-block is then three products per 64 values accumulated over the whole 256 (tiles 0–2),
// stored once, and the integer sums the reference computes are c0 + 8·c1 (Q4_K, with c2 = Σ m·q)
// or c0 + 8·c1 + 64·c2 (Q6_K) — exactly, so the float steps that follow (one per super-block) give
// the reference's bits. The digit-scaled weights of a row group are made once in a scratch buffer
// (12 KiB per super-block) and serve every tile of 16 tokens, so the kernel pays off from a few
// dozen tokens (prefill, wide batched-decoding steps).
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
        let nb = w.blocks, n = a.n, q4 = w.type == .q4_K
        // The group's digit-scaled weights (nb × 4 chunks × 3 pieces × 1 KiB), their digits
        // (3 pieces × 16 sub-blocks × 16 rows), the scales (d, then dmin), and the three C tiles.
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: nb * superBlockScratch + 768 + nb * 128 + 3072, alignment: 64)
        defer { scratch.deallocate() }
        let bt = scratch, digits = scratch + nb * superBlockScratch
        let ds = (digits + 768).assumingMemoryBound(to: Float.self), dmins = ds + nb * 16
        let cbuf = UnsafeMutableRawPointer(dmins + nb * 16)
        var indexBytes = [UInt8](repeating: 0, count: 64)
        for i in 0..<64 { indexBytes[i] = UInt8(i / 4) }
        let index = indexBytes.withUnsafeBytes { _mm512_loadu_si512($0.baseAddress!) }
        let lowNibbles = _mm512_set1_epi8(0x0F), three = _mm512_set1_epi8(3), bias = _mm512_set1_epi8(32)
        let (_, intoL1, ahead) = MatMul.prefetch
        tailor_amxk_configure()
        defer { tailor_amx_release() }
        for g in groups {
            for b in 0..<nb {
                let p = w.tile(group: g, block: b), dst = bt + superBlockScratch &* b
                AVX512Packed.prefetchTile(p, w.tileBytes, ahead, intoL1)
                if q4 {
                    for s in 0..<8 {
                        for i in 0..<16 {
                            let sc = p.load(fromByteOffset: 2048 &+ 16 &* s &+ i, as: UInt8.self)
                            digits.storeBytes(of: sc & 7, toByteOffset: 16 &* s &+ i, as: UInt8.self)
                            digits.storeBytes(of: sc >> 3, toByteOffset: 256 &+ 16 &* s &+ i, as: UInt8.self)
                        }
                    }
                    for j in 0..<4 {
                        let c = dst + 3072 &* j
                        for r in 0..<16 {
                            let s = 2 &* j &+ (r >> 3)
                            let u = _mm512_loadu_si512(p + (512 &* j &+ 64 &* (r & 7)))
                            let shift: UInt32 = r < 8 ? 0 : 4
                            let q = _mm512_and_si512(_mm512_srli_epi16(u, shift), lowNibbles)
                            _mm512_store_si512(c + 64 &* r, mulBytes(q, spread(digits + 16 &* s, index)))
                            _mm512_store_si512(c + (1024 &+ 64 &* r), mulBytes(q, spread(digits + (256 &+ 16 &* s), index)))
                            _mm512_store_si512(c + (2048 &+ 64 &* r), spread(p + (2176 &+ 16 &* s), index))
                        }
                    }
                    _mm512_store_ps(ds + 16 &* b, AVX512Packed.halves16(p + 2304))
                    _mm512_store_ps(dmins + 16 &* b, AVX512Packed.halves16(p + 2336))
                } else {
                    for s in 0..<16 {
                        for i in 0..<16 {
                            let d = q6Digits[Int(p.load(fromByteOffset: 3072 &+ 16 &* s &+ i, as: UInt8.self))]
                            digits.storeBytes(of: UInt8(truncatingIfNeeded: d), toByteOffset: 16 &* s &+ i, as: UInt8.self)
                            digits.storeBytes(of: UInt8(truncatingIfNeeded: d >> 8), toByteOffset: 256 &+ 16 &* s &+ i, as: UInt8.self)
                            digits.storeBytes(of: UInt8(truncatingIfNeeded: d >> 16), toByteOffset: 512 &+ 16 &* s &+ i, as: UInt8.self)
                        }
                    }
                    for chunk in 0..<4 {
                        let c = dst + 3072 &* chunk, h = chunk >> 1
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
                    _mm512_store_ps(ds + 16 &* b, AVX512Packed.halves16(p + 3328))
                }
            }
            let rows = min(16, w.rows - g * 16)
            let mask: __mmask16 = rows == 16 ? 0xFFFF : __mmask16((1 << rows) - 1)
            var t0 = 0
            while t0 < tokens {
                let count = min(16, tokens - t0)
                var acc = AMXPacked.Acc()
                let q = UnsafeRawPointer(a.qK + t0 &* n)
                let dx = UnsafePointer(a.dK + t0 &* nb)
                for b in 0..<nb {
                    tailor_amxk_zero()
                    let bp = UnsafeRawPointer(bt + superBlockScratch &* b)
                    for j in 0..<4 { tailor_amxk_step3(q + (256 &* b &+ 64 &* j), n, bp + 3072 &* j) }
                    tailor_amxk_store3(cbuf)
                    let d = _mm512_load_ps(ds + 16 &* b)
                    if q4 {
                        let dmin = _mm512_load_ps(dmins + 16 &* b)
                        @inline(__always) func step(_ i: Int, _ r: __m512) -> __m512 {
                            let lo = _mm512_load_si512(cbuf + 64 &* i), hi = _mm512_load_si512(cbuf + (1024 &+ 64 &* i))
                            let mins = _mm512_load_si512(cbuf + (2048 &+ 64 &* i))
                            let x = dx[i &* nb &+ b]
                            let sumi = _mm512_add_epi32(lo, _mm512_slli_epi32(hi, 3))
                            let s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(x)), r)
                            return _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins), _mm512_mul_ps(dmin, _mm512_set1_ps(-x)), s)
                        }
                        acc.apply(count, step)
                    } else {
                        @inline(__always) func step(_ i: Int, _ r: __m512) -> __m512 {
                            let c0 = _mm512_load_si512(cbuf + 64 &* i), c1 = _mm512_load_si512(cbuf + (1024 &+ 64 &* i))
                            let c2 = _mm512_load_si512(cbuf + (2048 &+ 64 &* i))
                            let sumi = _mm512_add_epi32(_mm512_add_epi32(c0, _mm512_slli_epi32(c1, 3)), _mm512_slli_epi32(c2, 6))
                            return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, _mm512_set1_ps(dx[i &* nb &+ b])), r)
                        }
                        acc.apply(count, step)
                    }
                }
                AMXPacked.store(acc, y + g * 16 + t0 &* ldy, ldy, count, mask, accumulate)
                t0 += 16
            }
        }
    }
}

extension AMXPacked.Acc {
    /// r_i = f(i, r_i) for the first `count` tokens.
    @inline(__always) mutating func apply(_ count: Int, _ f: (Int, __m512) -> __m512) {
        r0 = f(0, r0)
        if count > 1 { r1 = f(1, r1) }
        if count > 2 { r2 = f(2, r2) }
        if count > 3 { r3 = f(3, r3) }
        if count > 4 { r4 = f(4, r4) }
        if count > 5 { r5 = f(5, r5) }
        if count > 6 { r6 = f(6, r6) }
        if count > 7 { r7 = f(7, r7) }
        if count > 8 { r8 = f(8, r8) }
        if count > 9 { r9 = f(9, r9) }
        if count > 10 { r10 = f(10, r10) }
        if count > 11 { r11 = f(11, r11) }
        if count > 12 { r12 = f(12, r12) }
        if count > 13 { r13 = f(13, r13) }
        if count > 14 { r14 = f(14, r14) }
        if count > 15 { r15 = f(15, r15) }
    }
}
#endif
