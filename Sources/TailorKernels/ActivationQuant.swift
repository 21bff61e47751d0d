// Activations quantized to 8-bit blocks, for the integer dot products of fast decoding — the
// arithmetic llama.cpp uses on x86 (ggml's quantize_row_q8_0/q8_1 AVX2 and q8_K reference):
//   32-blocks (for Q4_0, Q4_1, Q5_0, Q8_0 weights): d = amax/127 stored as fp16,
//     q = round-half-even(x·127/amax), s = fp16(d·Σq)  (Q8_1's sum term)
//   256-blocks (for K-quant weights): d = max/-127 in fp32 (max = the value of largest |x|),
//     q = min(127, round-half-even(x·-127/max)), bsums = Σq per 16.

public enum Precision: String, Sendable, CaseIterable {
    /// fp32 activations against exactly dequantized weights: transformers' arithmetic.
    case exact
    /// 8-bit activation blocks and integer dot products, fp16 KV cache: llama.cpp's arithmetic,
    /// two to three times faster when decoding.
    case fast
}

/// Quantized copies of `tokens` activation rows of width `n`.
public final class QuantizedActivations {
    public let n: Int
    public let tokens: Int
    // 32-element blocks: [tokens × n/32] scales, [tokens × n] values.
    public let d32: UnsafeMutablePointer<Float>
    public let s32: UnsafeMutablePointer<Float>
    /// d32 and s32 interleaved ([tokens × n/32] pairs), one 8-byte load per block for the kernels.
    public let ds32: UnsafeMutablePointer<Float>
    public let sum32: UnsafeMutablePointer<Int32>
    public let q32: UnsafeMutablePointer<Int8>
    // 256-element blocks: [tokens × n/256] scales, [tokens × n] values, [tokens × n/16] sums.
    public let dK: UnsafeMutablePointer<Float>
    public let qK: UnsafeMutablePointer<Int8>
    public let bsumsK: UnsafeMutablePointer<Int16>
    // The 32-blocks again, in the order of the AVX-512 kernels, per group of four blocks
    // (128 values; the last group zero-padded): `qv` [tokens × groups × 128] holds the first
    // halves (values 0…15) of the four blocks, then their second halves (16…31); `dsv`
    // [tokens × groups × 8] the four d32 then the four s32; `negSumv` [tokens × groups × 16]
    // −sum32 of block k in lane 4k, zero elsewhere (the offset of Q4_0 and Q5_0 weights).
    public let groups4: Int
    public let qv: UnsafeMutablePointer<Int8>
    public let dsv: UnsafeMutablePointer<Float>
    public let negSumv: UnsafeMutablePointer<Int32>
    /// [tokens × groups × 16]: d32 of block k of the group in lanes 4k…4k+3 — the four scales of
    /// `dsv` already spread over their blocks' sums, so the Q5_0 kernel multiplies them in with
    /// no permute per row.
    public let dv16: UnsafeMutablePointer<Float>
    // The 256-blocks again, in the order of the AVX-512 Q4_K kernel: `qKv` [tokens × n], each
    // super-block as the values of its sub-blocks 0, 2, 1, 3, 4, 6, 5, 7 (so the low nibbles of
    // a row's first 64 bytes meet their values in one register, the high nibbles in the next);
    // `bsum8K` [tokens × n/32] the eight 32-value sums of each super-block.
    public let qKv: UnsafeMutablePointer<Int8>
    public let bsum8K: UnsafeMutablePointer<Int16>
    /// The 256-blocks' values once more, super-block by super-block: block b of token t at
    /// (b·paddedTokens + t)·256 (tokens padded to 16, the padding zero), so the AMX kernel loads
    /// sixteen tokens' 64-byte slices from one contiguous 4 KiB instead of sixteen rows n bytes
    /// apart (which fall into the same few cache sets).
    public let qKTiles: UnsafeMutablePointer<Int8>
    public let paddedTokens: Int

    public init(n: Int, tokens: Int) {
        self.n = n
        self.tokens = tokens
        // The 32-block buffers hold whole tiles of 16 tokens (the AMX kernel reads 16 at a time;
        // the outputs of the padding are dropped).
        let padded = (tokens + 15) / 16 * 16
        d32 = .allocate(capacity: max(1, padded * n / 32))
        s32 = .allocate(capacity: max(1, padded * n / 32))
        ds32 = .allocate(capacity: max(2, 2 * tokens * n / 32))
        sum32 = .allocate(capacity: max(1, padded * n / 32))
        q32 = .allocate(capacity: max(1, padded * n))
        d32.initialize(repeating: 0, count: max(1, padded * n / 32))
        s32.initialize(repeating: 0, count: max(1, padded * n / 32))
        q32.initialize(repeating: 0, count: max(1, padded * n))
        dK = .allocate(capacity: max(1, tokens * n / 256))
        // Padded to whole tiles of 16 tokens, zeroed: the AMX kernel loads 16 token rows at a time.
        qK = .allocate(capacity: max(1, padded * n))
        qK.initialize(repeating: 0, count: max(1, padded * n))
        bsumsK = .allocate(capacity: max(1, tokens * n / 16))
        groups4 = (n / 32 + 3) / 4
        qv = .allocate(capacity: max(1, tokens * groups4 * 128))
        dsv = .allocate(capacity: max(1, tokens * groups4 * 8))
        negSumv = .allocate(capacity: max(1, tokens * groups4 * 16))
        dv16 = .allocate(capacity: max(1, tokens * groups4 * 16))
        dv16.initialize(repeating: 0, count: max(1, tokens * groups4 * 16))
        qKv = .allocate(capacity: max(1, tokens * n))
        paddedTokens = padded
        qKTiles = .allocate(capacity: max(1, padded * n))
        qKTiles.initialize(repeating: 0, count: max(1, padded * n))
        bsum8K = .allocate(capacity: max(1, tokens * n / 32))
        qv.initialize(repeating: 0, count: max(1, tokens * groups4 * 128))
        dsv.initialize(repeating: 0, count: max(1, tokens * groups4 * 8))
        negSumv.initialize(repeating: 0, count: max(1, tokens * groups4 * 16))
    }

    deinit {
        d32.deallocate(); s32.deallocate(); ds32.deallocate(); sum32.deallocate(); q32.deallocate()
        dK.deallocate(); qK.deallocate(); bsumsK.deallocate(); qKTiles.deallocate()
        qv.deallocate(); dsv.deallocate(); negSumv.deallocate(); qKv.deallocate(); bsum8K.deallocate(); dv16.deallocate()
    }

    /// Quantizes x ([tokens × n]) into the block formats asked for; `grouped` also writes the
    /// AVX-512 matrix-vector kernels' layout of the 32-blocks.
    public func quantize(_ x: UnsafePointer<Float>, blocks32: Bool, blocks256: Bool, grouped: Bool = true) {
        quantize(x, rows: 0..<tokens, blocks32: blocks32, blocks256: blocks256, grouped: grouped)
    }

    /// The same for the rows `rows` only (rows of one call may be quantized in parallel).
    public func quantize(_ x: UnsafePointer<Float>, rows: Range<Int>, blocks32: Bool, blocks256: Bool, grouped: Bool = true) {
        for t in rows {
            let xt = x + t * n
            if blocks32, n % 32 == 0 {
                for b in 0..<(n / 32) { quantize32(xt + 32 * b, t * (n / 32) + b, q32 + t * n + 32 * b) }
                #if TAILOR_AVX512
                if grouped { regroup(token: t) }
                #endif
            }
            if blocks256, n % 256 == 0 {
                for b in 0..<(n / 256) {
                    let q = qK + t * n + 256 * b, bsums = bsumsK + t * (n / 16) + 16 * b
                    dK[t * (n / 256) + b] = QuantizedActivations.block256Vector(xt + 256 * b, q, bsums)
                    (qKTiles + (b * paddedTokens + t) * 256).update(from: q, count: 256)
                    #if TAILOR_AVX512
                    // Sub-blocks 0, 2, 1, 3, 4, 6, 5, 7, and the sums of their values.
                    guard grouped else { continue }
                    let dst = qKv + t * n + 256 * b
                    for k in 0..<8 {
                        let j = (k & 4) | (k & 1) << 1 | (k >> 1) & 1
                        UnsafeMutableRawPointer(dst + 32 * k).storeBytes(of: UnsafeRawPointer(q + 32 * j).loadUnaligned(as: SIMD32<Int8>.self),
                                                                          as: SIMD32<Int8>.self)
                    }
                    for j in 0..<8 { bsum8K[t * (n / 32) + 8 * b + j] = bsums[2 * j] &+ bsums[2 * j + 1] }
                    #endif
                }
            }
        }
    }

    @inline(__always)
    private func quantize32(_ x: UnsafePointer<Float>, _ block: Int, _ q: UnsafeMutablePointer<Int8>) {
        let (d, sum) = QuantizedActivations.block32Vector(x, q)
        // Rounded through fp16 as the formats store them (F16C instructions, no table lookup).
        d32[block] = Float(Float16(d))
        s32[block] = Float(Float16(d * Float(sum)))
        sum32[block] = sum
        ds32[2 * block] = d32[block]
        ds32[2 * block + 1] = s32[block]
    }

    /// Copies token t's 32-blocks into the grouped layout of `qv`, `dsv` and `negSumv`.
    func regroup(token t: Int) {
        let nb = n / 32
        for b in 0..<nb {
            let g = b / 4, k = b % 4, blk = t * nb + b
            let src = UnsafeRawPointer(q32 + t * n + 32 * b), dst = UnsafeMutableRawPointer(qv + (t * groups4 + g) * 128 + 16 * k)
            dst.storeBytes(of: src.loadUnaligned(as: SIMD16<Int8>.self), as: SIMD16<Int8>.self)
            dst.storeBytes(of: src.loadUnaligned(fromByteOffset: 16, as: SIMD16<Int8>.self), toByteOffset: 64, as: SIMD16<Int8>.self)
            dsv[(t * groups4 + g) * 8 + k] = d32[blk]
            dsv[(t * groups4 + g) * 8 + 4 + k] = s32[blk]
            for l in 0..<4 { dv16[(t * groups4 + g) * 16 + 4 * k + l] = d32[blk] }
            negSumv[(t * groups4 + g) * 16 + 4 * k] = -sum32[blk]
        }
    }

    /// `block32` with AVX2 where the build has it.
    @inline(__always) static func block32Vector(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>) -> (Float, Int32) {
        #if TAILOR_AVX2
        return AVX2Quant.block32(x, q)
        #else
        return block32(x, q)
        #endif
    }

    /// The reference arithmetic of one 32-block: q = round-half-even(x·127/amax); returns
    /// (amax/127, Σq). The AVX2 version gives the same bytes.
    static func block32(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>) -> (Float, Int32) {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        let id: Float = amax != 0 ? 127 / amax : 0
        var sum: Int32 = 0
        for j in 0..<32 {
            let v = Int8((x[j] * id).rounded(.toNearestOrEven))
            q[j] = v
            sum += Int32(v)
        }
        return (amax / 127, sum)
    }

    /// `block256` with AVX-512 where the build has it.
    @inline(__always) static func block256Vector(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>,
                                                 _ bsums: UnsafeMutablePointer<Int16>) -> Float {
        #if TAILOR_AVX512
        return AVX512Quant.block256(x, q, bsums)
        #else
        return block256(x, q, bsums)
        #endif
    }

    /// The reference arithmetic of one 256-block (ggml's quantize_row_q8_K): max = the value of
    /// largest magnitude (the first such), q = min(127, round-half-even(x·−127/max)), the sums
    /// of every 16 q in `bsums`; returns the scale 1/(−127/max), 0 for an all-zero block.
    static func block256(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>, _ bsums: UnsafeMutablePointer<Int16>) -> Float {
        var amax: Float = 0, mx: Float = 0
        for j in 0..<256 { let a = abs(x[j]); if a > amax { amax = a; mx = x[j] } }
        if amax == 0 {
            q.update(repeating: 0, count: 256)
            bsums.update(repeating: 0, count: 16)
            return 0
        }
        let iscale = -127 / mx
        for j in 0..<256 { q[j] = Int8(min(127, Int32((iscale * x[j]).rounded(.toNearestOrEven)))) }
        for g in 0..<16 {
            var s: Int16 = 0
            for j in 0..<16 { s += Int16(q[16 * g + j]) }
            bsums[g] = s
        }
        return 1 / iscale
    }
}

#if TAILOR_AVX2
import _Builtin_intrinsics.intel

enum AVX2Quant {
    /// `QuantizedActivations.block32` with vectors (cvtps2dq rounds to nearest even, as the
    /// reference does).
    @inline(__always) static func block32(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>) -> (Float, Int32) {
        let v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24)
        let sign = _mm256_set1_ps(-0.0)
        let m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                              _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)))
        let amax = m.max()   // __m256 is SIMD8<Float>
        let vid = _mm256_set1_ps(amax != 0 ? 127 / amax : 0)
        let i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid))
        let i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid))
        let s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3))
        // The packs interleave 128-bit lanes; the permutation restores element order.
        let p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3))
        let ordered = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
        _mm256_storeu_si256(UnsafeMutableRawPointer(q).assumingMemoryBound(to: __m256i.self), ordered)
        return (amax / 127, unsafeBitCast(s, to: SIMD8<Int32>.self).wrappedSum())
    }
}
#endif

#if TAILOR_AVX512
enum AVX512Quant {
    /// `QuantizedActivations.block256` with 16-lane vectors: the same bytes, sums and scale
    /// (cvtps2dq rounds to nearest even; the first value of largest magnitude is found from the
    /// lanes equal to the maximum).
    static func block256(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>, _ bsums: UnsafeMutablePointer<Int16>) -> Float {
        let absMask = _mm512_set1_epi32(0x7FFF_FFFF)
        var m = _mm512_setzero_ps()
        for i in 0..<16 { m = _mm512_max_ps(m, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + 16 * i)), absMask))) }
        let amax = _mm512_reduce_max_ps(m)
        if amax == 0 {
            q.update(repeating: 0, count: 256)
            bsums.update(repeating: 0, count: 16)
            return 0
        }
        var mx: Float = 0
        let target = _mm512_set1_epi32(Int32(bitPattern: amax.bitPattern))
        for i in 0..<16 {
            // Magnitudes compare as their bit patterns: equal where the XOR is zero.
            let diff = _mm512_xor_si512(_mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + 16 * i)), absMask), target)
            let hit = _mm512_testn_epi32_mask(diff, diff)
            if hit != 0 { mx = x[16 * i + hit.trailingZeroBitCount]; break }
        }
        let iscale = -127 / mx
        let vs = _mm512_set1_ps(iscale), top = _mm512_set1_epi32(127)
        for i in 0..<16 {
            let v = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * i), vs)), top)
            _mm_storeu_si128(UnsafeMutableRawPointer(q + 16 * i).assumingMemoryBound(to: __m128i.self), _mm512_cvtsepi32_epi8(v))
            bsums[i] = Int16(truncatingIfNeeded: _mm512_reduce_add_epi32(v))
        }
        return 1 / iscale
    }
}
#endif
