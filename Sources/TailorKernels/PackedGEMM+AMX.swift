// The AMX kernel of PackedGEMM (Intel Advanced Matrix Extensions, int8 tiles), for many tokens:
// for a row group, each block's weights become one B tile (8 rows of 16 weight rows × 4 values,
// Q4_0 shifted to signed, Q8_0 back to signed, Q4_1 unsigned), and sixteen tokens' 32 activation
// bytes one A tile loaded straight from the quantized activations. One tile product gives the
// 16 × 16 integer sums of the block, exactly the reference's; the vector unit then applies the
// block's scales to sixteen accumulators (one per token, a weight row per lane) in the reference's
// order, so the results are the reference's bits. Two tile sets alternate so the tile unit works
// on one block while the scales of the previous one are applied.
//
// Linux grants the tile state on request (arch_prctl); the kernel is used only where the CPU has
// AMX and the request succeeded (`AMXPacked.available`), else the AVX-512 kernel runs.
#if TAILOR_AMX
import _Builtin_intrinsics.intel
import CBLAS
import Foundation

enum AMXPacked {
    /// Whether this process can use AMX int8 tiles.
    static let available: Bool = {
        guard ProcessInfo.processInfo.environment["TAILOR_NO_AMX"] == nil,
              let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              info.contains(" amx_int8"), info.contains(" amx_tile") else { return false }
        return tailor_amx_request() == 0
    }()

    /// Fewest tokens worth a tile product (16 are computed at a time; the rest is padding).
    /// Measured on the AMX Xeon (session 15): a 16-sequence decoding step is 5–20% faster with
    /// the VNNI kernel (SmolLM2 1177–1241 t/s against 991–1167; 1B-shape 208–222 against
    /// 200–201), prefill chunks of hundreds of tokens ~35% faster with AMX: from 32 tokens.
    /// TAILOR_AMX_MIN_TOKENS changes it (for measurements).
    static let minimumTokens = Int(ProcessInfo.processInfo.environment["TAILOR_AMX_MIN_TOKENS"] ?? "") ?? 32

    /// Sixteen accumulators: token i of the tile in r_i, weight row j in lane j.
    struct Acc {
        var r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15: __m512
        init() { let z = _mm512_setzero_ps(); r0 = z; r1 = z; r2 = z; r3 = z; r4 = z; r5 = z; r6 = z; r7 = z; r8 = z; r9 = z; r10 = z; r11 = z; r12 = z; r13 = z; r14 = z; r15 = z }
    }

    /// acc + Float(c[i])·(d·dx) (+ m·s): token i's block, with its scales at `at` in dx and s.
    @inline(__always) static func scaled<K: PackedKind>(_: K.Type, _ acc: __m512, _ c: UnsafeRawPointer, _ i: Int, _ d: __m512,
                                                        _ dx: UnsafePointer<Float>, _ s: UnsafePointer<Float>, _ at: Int,
                                                        _ mins: __m512) -> __m512 {
        let f = _mm512_cvtepi32_ps(_mm512_load_si512(c + 64 &* i))
        var r = _mm512_fmadd_ps(f, _mm512_mul_ps(d, _mm512_set1_ps(dx[at])), acc)
        if K.mins { r = _mm512_fmadd_ps(mins, _mm512_set1_ps(s[at]), r) }
        return r
    }

    /// y for tokens 0..<tokens of `a` (its 32-block buffers padded to a multiple of 16 tokens)
    /// and the row groups `groups`.
    static func run(_ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                    _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        switch w.type {
        case .q4_0: run(PackedQ4_0.self, w, a, tokens, groups, y, ldy, accumulate)
        case .q4_1: run(PackedQ4_1.self, w, a, tokens, groups, y, ldy, accumulate)
        case .q5_0: run(PackedQ5_0.self, w, a, tokens, groups, y, ldy, accumulate)
        default: run(PackedQ8_0.self, w, a, tokens, groups, y, ldy, accumulate)
        }
    }

    static func run<K: PackedKind>(_ k: K.Type, _ w: PackedWeights, _ a: QuantizedActivations, _ tokens: Int, _ groups: Range<Int>,
                                   _ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ accumulate: Bool) {
        let nb = w.blocks, n = a.n
        let unsignedWeights = K.mins
        // The row group's B tiles (nb × 512 bytes), its scales (nb × 16 d, then m), and two C tiles.
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: nb * 512 + nb * 128 + 2048, alignment: 64)
        defer { scratch.deallocate() }
        let bt = scratch, ds = (scratch + nb * 512).assumingMemoryBound(to: Float.self), ms = ds + nb * 16
        let cbuf = scratch + nb * 640
        tailor_amx_configure()
        defer { tailor_amx_release() }
        let lo = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8), flip = _mm512_set1_epi8(-128)
        for g in groups {
            // Unpack the group's blocks into B tiles.
            let (_, intoL1, ahead) = MatMul.prefetch
            for b in 0..<nb {
                let p = w.tile(group: g, block: b), dst = bt + 512 &* b
                // The weights stream from memory once per row group.
                AVX512Packed.prefetchTile(p, w.tileBytes, ahead, intoL1)
                if K.bytes {
                    for j in 0..<8 { _mm512_store_si512(dst + 64 &* j, _mm512_xor_si512(_mm512_loadu_si512(p + 64 &* j), flip)) }
                } else if K.fifth {
                    let blk = AVX512Packed.load(k, p), off = _mm512_set1_epi8(Int8(K.offset))
                    _mm512_store_si512(dst, _mm512_sub_epi8(blk.w0, off)); _mm512_store_si512(dst + 64, _mm512_sub_epi8(blk.w1, off))
                    _mm512_store_si512(dst + 128, _mm512_sub_epi8(blk.w2, off)); _mm512_store_si512(dst + 192, _mm512_sub_epi8(blk.w3, off))
                    _mm512_store_si512(dst + 256, _mm512_sub_epi8(blk.w4, off)); _mm512_store_si512(dst + 320, _mm512_sub_epi8(blk.w5, off))
                    _mm512_store_si512(dst + 384, _mm512_sub_epi8(blk.w6, off)); _mm512_store_si512(dst + 448, _mm512_sub_epi8(blk.w7, off))
                } else {
                    for j in 0..<4 {
                        let c = _mm512_loadu_si512(p + 64 &* j)
                        var l = _mm512_and_si512(c, lo), h = _mm512_and_si512(_mm512_srli_epi16(c, 4), lo)
                        if K.offset == 8 { l = _mm512_sub_epi8(l, eight); h = _mm512_sub_epi8(h, eight) }
                        _mm512_store_si512(dst + 64 &* j, l)
                        _mm512_store_si512(dst + 64 &* (j &+ 4), h)
                    }
                }
                let sc = (p + PackedWeights.valueBytes(w.type))
                _mm512_store_ps(ds + 16 &* b, _mm512_cvtph_ps(_mm256_loadu_si256(sc.assumingMemoryBound(to: __m256i.self))))
                if unsignedWeights {
                    _mm512_store_ps(ms + 16 &* b, _mm512_cvtph_ps(_mm256_loadu_si256((sc + 32).assumingMemoryBound(to: __m256i.self))))
                }
            }
            let rows = min(16, w.rows - g * 16)
            let mask: __mmask16 = rows == 16 ? 0xFFFF : __mmask16((1 << rows) - 1)
            var t0 = 0
            while t0 < tokens {
                let count = min(16, tokens - t0)
                var acc = Acc()
                let dx = UnsafePointer(a.d32 + t0 &* nb), s = UnsafePointer(a.s32 + t0 &* nb)
                let q = UnsafeRawPointer(a.q32 + t0 &* n)
                // A software pipeline over the blocks: block b+1's product starts before block
                // b's sums are stored, and block b−1's scales are applied after that store, so the
                // tile unit and the vector unit work at the same time.
                @inline(__always) func start(_ b: Int) {
                    let ap = q + 32 &* b, bp = UnsafeRawPointer(bt + 512 &* b)
                    if unsignedWeights {
                        if b & 1 == 0 { tailor_amx_start_su0(ap, n, bp) } else { tailor_amx_start_su1(ap, n, bp) }
                    } else {
                        if b & 1 == 0 { tailor_amx_start_ss0(ap, n, bp) } else { tailor_amx_start_ss1(ap, n, bp) }
                    }
                }
                @inline(__always) func scale(_ b: Int) {
                    let d = _mm512_load_ps(ds + 16 &* b)
                    let mins = K.mins ? _mm512_load_ps(ms + 16 &* b) : d
                    update(k, &acc, UnsafeRawPointer(cbuf + 1024 &* (b & 1)), d, dx + b, s + b, nb, mins)
                }
                start(0)
                for b in 0..<nb {
                    if b + 1 < nb { start(b + 1) }
                    if b & 1 == 0 { tailor_amx_finish0(cbuf) } else { tailor_amx_finish1(cbuf + 1024) }
                    if b > 0 { scale(b - 1) }
                }
                scale(nb - 1)
                store(acc, y + g * 16 + t0 &* ldy, ldy, count, mask, accumulate)
                t0 += 16
            }
        }
    }

    @inline(__always) static func update<K: PackedKind>(_ k: K.Type, _ acc: inout Acc, _ c: UnsafeRawPointer, _ d: __m512,
                                                        _ dx: UnsafePointer<Float>, _ s: UnsafePointer<Float>, _ nb: Int, _ mins: __m512) {
        acc.r0 = scaled(k, acc.r0, c, 0, d, dx, s, 0 &* nb, mins)
        acc.r1 = scaled(k, acc.r1, c, 1, d, dx, s, 1 &* nb, mins)
        acc.r2 = scaled(k, acc.r2, c, 2, d, dx, s, 2 &* nb, mins)
        acc.r3 = scaled(k, acc.r3, c, 3, d, dx, s, 3 &* nb, mins)
        acc.r4 = scaled(k, acc.r4, c, 4, d, dx, s, 4 &* nb, mins)
        acc.r5 = scaled(k, acc.r5, c, 5, d, dx, s, 5 &* nb, mins)
        acc.r6 = scaled(k, acc.r6, c, 6, d, dx, s, 6 &* nb, mins)
        acc.r7 = scaled(k, acc.r7, c, 7, d, dx, s, 7 &* nb, mins)
        acc.r8 = scaled(k, acc.r8, c, 8, d, dx, s, 8 &* nb, mins)
        acc.r9 = scaled(k, acc.r9, c, 9, d, dx, s, 9 &* nb, mins)
        acc.r10 = scaled(k, acc.r10, c, 10, d, dx, s, 10 &* nb, mins)
        acc.r11 = scaled(k, acc.r11, c, 11, d, dx, s, 11 &* nb, mins)
        acc.r12 = scaled(k, acc.r12, c, 12, d, dx, s, 12 &* nb, mins)
        acc.r13 = scaled(k, acc.r13, c, 13, d, dx, s, 13 &* nb, mins)
        acc.r14 = scaled(k, acc.r14, c, 14, d, dx, s, 14 &* nb, mins)
        acc.r15 = scaled(k, acc.r15, c, 15, d, dx, s, 15 &* nb, mins)
    }

    @inline(__always) static func store(_ acc: Acc, _ out: UnsafeMutablePointer<Float>, _ ldy: Int, _ count: Int, _ mask: __mmask16, _ accumulate: Bool) {
        if 0 < count { AVX512Packed.store(acc.r0, out + 0 &* ldy, mask, accumulate) }
        if 1 < count { AVX512Packed.store(acc.r1, out + 1 &* ldy, mask, accumulate) }
        if 2 < count { AVX512Packed.store(acc.r2, out + 2 &* ldy, mask, accumulate) }
        if 3 < count { AVX512Packed.store(acc.r3, out + 3 &* ldy, mask, accumulate) }
        if 4 < count { AVX512Packed.store(acc.r4, out + 4 &* ldy, mask, accumulate) }
        if 5 < count { AVX512Packed.store(acc.r5, out + 5 &* ldy, mask, accumulate) }
        if 6 < count { AVX512Packed.store(acc.r6, out + 6 &* ldy, mask, accumulate) }
        if 7 < count { AVX512Packed.store(acc.r7, out + 7 &* ldy, mask, accumulate) }
        if 8 < count { AVX512Packed.store(acc.r8, out + 8 &* ldy, mask, accumulate) }
        if 9 < count { AVX512Packed.store(acc.r9, out + 9 &* ldy, mask, accumulate) }
        if 10 < count { AVX512Packed.store(acc.r10, out + 10 &* ldy, mask, accumulate) }
        if 11 < count { AVX512Packed.store(acc.r11, out + 11 &* ldy, mask, accumulate) }
        if 12 < count { AVX512Packed.store(acc.r12, out + 12 &* ldy, mask, accumulate) }
        if 13 < count { AVX512Packed.store(acc.r13, out + 13 &* ldy, mask, accumulate) }
        if 14 < count { AVX512Packed.store(acc.r14, out + 14 &* ldy, mask, accumulate) }
        if 15 < count { AVX512Packed.store(acc.r15, out + 15 &* ldy, mask, accumulate) }
    }
}
#endif
