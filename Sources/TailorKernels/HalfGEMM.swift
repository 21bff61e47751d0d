// Matrix products of the encoders (BERT linear layers) in fp16 on CPUs with AVX512-FP16:
// Y += X·Wᵀ with X and W rounded to fp16 and the products summed by vfmadd231ph, twice the
// fp32 FMA rate. fp16 sums lose precision as they grow, so no fp16 sum holds more than
// `flushInterval` products: then it is converted and added up in fp32. Simulated on
// all-MiniLM-L6-v2 (every linear layer this way, 45 texts) the embeddings keep cosine
// ≥ 0.999997 with fp32 sentence-transformers.
//
// Layout: the kernel takes X values two at a time (x[k], x[k+1] as one 32-bit word), because a
// 32-bit broadcast is a plain load while a 16-bit one also takes a shuffle on the port the FMAs
// need. So W is packed once into panels of 32 output rows where each step of two along K holds,
// per group of 16 outputs, the pairs (w[k][n], w[k+1][n]) side by side: lane 2j sums the even
// k of output j, lane 2j+1 the odd k. The two sums of an output meet in fp32 at the end. X is
// converted to fp16 one chunk of rows at a time (small enough to stay in L2), padded to an even
// width. The micro-kernel keeps 8 rows × 32 outputs in 16 registers; each step loads two panel
// registers and broadcasts one pair per row.
//
// A product whose fp16 sums could overflow (|x|·|w|·interval ≥ 2¹⁵) is not done here: the
// caller's fp32 fallback computes those rows. Builds without AVX512-FP16 send every row there.
#if TAILOR_AVX512FP16
import _Builtin_intrinsics.intel
#endif

/// A linear layer's weight matrix [outputs × inputs] packed for `HalfGEMM`.
// @unchecked Sendable: packed once in init, read-only afterwards.
public final class HalfWeights: @unchecked Sendable {
    public let outputs: Int, inputs: Int
    /// The largest |w|, for the overflow guard.
    public let maxAbs: Float
    /// Panels of `width` outputs × `pairs` steps; step t of panel p starts at (p·pairs + t)·64.
    let panels: UnsafeMutablePointer<Float16>
    let pairs: Int
    static let width = 32

    /// Packs `w` (row-major [outputs × inputs], fp32).
    public init(_ w: UnsafePointer<Float>, outputs: Int, inputs: Int) {
        self.outputs = outputs; self.inputs = inputs
        pairs = (inputs + 1) / 2
        let P = (outputs + Self.width - 1) / Self.width
        panels = .allocate(capacity: P * pairs * 64)
        panels.initialize(repeating: 0, count: P * pairs * 64)
        var m: Float = 0
        for n in 0..<outputs {
            let c = n % Self.width
            let dst = panels + (n / Self.width) * pairs * 64 + (c / 16) * 32 + (c % 16) * 2, src = w + n * inputs
            for k in 0..<inputs { dst[(k / 2) * 64 + k % 2] = Float16(src[k]); m = max(m, abs(src[k])) }
        }
        maxAbs = m
    }

    deinit { panels.deallocate() }
}

public enum HalfGEMM {
    /// Whether this build has the fp16 kernel (AVX512-FP16 on the building CPU).
    public static var isAvailable: Bool {
        #if TAILOR_AVX512FP16
        return true
        #else
        return false
        #endif
    }
    /// Products in one fp16 sum before it is added up in fp32.
    public static let flushInterval = 64
    static let rowBlock = 8

    /// Y[m × N] += X[m × K]·Wᵀ (X row-major with row stride K, Y with row stride N; N, K from
    /// `w`). Rows whose fp16 sums could overflow go to `fallback(rows)` instead, which must add
    /// the same product in fp32.
    public static func multiplyAdd(_ X: UnsafePointer<Float>, rows m: Int, _ w: HalfWeights, into Y: UnsafeMutablePointer<Float>,
                                   fallback: (Range<Int>) -> Void) {
        let K = w.inputs, N = w.outputs
        guard m > 0, K > 0, N > 0 else { return }
        #if !TAILOR_AVX512FP16
        fallback(0..<m)
        #else
        let K2 = 2 * w.pairs
        // Rows converted at a time: their fp16 copy takes about 256 KiB.
        let chunk = max(rowBlock, (128 * 1024 / K2) / rowBlock * rowBlock)
        let xh = UnsafeMutablePointer<Float16>.allocate(capacity: min(chunk, m) * K2)
        defer { xh.deallocate() }
        // The fp32 sums of one block (8 rows × 32 outputs × even/odd).
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: rowBlock * 2 * HalfWeights.width)
        defer { sums.deallocate() }
        let limit = Float(1 << 15) / Float(flushInterval) / max(w.maxAbs, .leastNormalMagnitude)
        var r0 = 0
        while r0 < m {
            let rows = min(chunk, m - r0)
            let xMax = convert(X + r0 * K, rows: rows, K, K2, into: xh)
            if !(xMax < limit) || !(xMax < 60000) {   // also catches NaN
                fallback(r0..<(r0 + rows))
            } else {
                var p = 0
                while p < N {
                    let cols = min(HalfWeights.width, N - p)
                    let b = UnsafePointer(w.panels + (p / HalfWeights.width) * w.pairs * 64)
                    var i = 0
                    while i < rows {
                        block(UnsafePointer(xh + i * K2), rows: min(rowBlock, rows - i), K2, b, w.pairs, sums,
                              Y + (r0 + i) * N + p, N, cols)
                        i += rowBlock
                    }
                    p += HalfWeights.width
                }
            }
            r0 += rows
        }
        #endif
    }

    #if TAILOR_AVX512FP16
    /// Converts `rows` rows of K floats to fp16 rows of K2 ≥ K (zero past K); returns the largest |x|.
    static func convert(_ x: UnsafePointer<Float>, rows: Int, _ K: Int, _ K2: Int, into h: UnsafeMutablePointer<Float16>) -> Float {
        var mx = _mm512_setzero_ps()
        let tail = K % 16, mask = UInt16(truncatingIfNeeded: (1 << tail) - 1)
        for r in 0..<rows {
            let src = x + r * K, dst = h + r * K2
            var k = 0
            while k + 16 <= K {
                let v = _mm512_loadu_ps(src + k)
                mx = _mm512_max_ps(mx, _mm512_abs_ps(v))
                _mm256_storeu_ph(dst + k, _mm512_cvtxps_ph(v))
                k += 16
            }
            if tail > 0 {
                let v = _mm512_maskz_loadu_ps(mask, src + k)
                mx = _mm512_max_ps(mx, _mm512_abs_ps(v))
                _mm256_mask_storeu_epi16(dst + k, mask, _mm256_castph_si256(_mm512_cvtxps_ph(v)))
            }
            if K2 > K { dst[K] = 0 }
        }
        return _mm512_reduce_max_ps(mx)
    }

    /// y[r][c] += Σ_k a[r][k]·w[k][c] for r < rows ≤ 8, c < cols ≤ 32; a has row stride K2
    /// (even), b is one panel of `pairs` steps, y has row stride N. Rows past `rows` repeat the
    /// last row and are not written. `sums` is scratch for 8 × 64 floats.
    @inline(__always)
    static func block(_ a: UnsafePointer<Float16>, rows: Int, _ K2: Int, _ b: UnsafePointer<Float16>, _ pairs: Int,
                      _ sums: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ N: Int, _ cols: Int) {
        let last = rows - 1
        // Row r's pairs as 32-bit words.
        @inline(__always) func row(_ r: Int) -> UnsafePointer<Float> {
            UnsafeRawPointer(a + min(r, last) * K2).assumingMemoryBound(to: Float.self)
        }
        let a0 = row(0), a1 = row(1), a2 = row(2), a3 = row(3), a4 = row(4), a5 = row(5), a6 = row(6), a7 = row(7)
        sums.initialize(repeating: 0, count: rowBlock * 64)
        var t0 = 0
        while t0 < pairs {
            let t1 = min(pairs, t0 + flushInterval)
            let z = _mm512_setzero_ph()
            var c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z
            var c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z
            var bp = b + t0 * 64
            @inline(__always) func pair(_ p: UnsafePointer<Float>, _ t: Int) -> __m512h { _mm512_castps_ph(_mm512_set1_ps(p[t])) }
            for t in t0..<t1 {
                let b0 = _mm512_loadu_ph(bp), b1 = _mm512_loadu_ph(bp + 32)
                var x = pair(a0, t); c00 = _mm512_fmadd_ph(x, b0, c00); c01 = _mm512_fmadd_ph(x, b1, c01)
                x = pair(a1, t); c10 = _mm512_fmadd_ph(x, b0, c10); c11 = _mm512_fmadd_ph(x, b1, c11)
                x = pair(a2, t); c20 = _mm512_fmadd_ph(x, b0, c20); c21 = _mm512_fmadd_ph(x, b1, c21)
                x = pair(a3, t); c30 = _mm512_fmadd_ph(x, b0, c30); c31 = _mm512_fmadd_ph(x, b1, c31)
                x = pair(a4, t); c40 = _mm512_fmadd_ph(x, b0, c40); c41 = _mm512_fmadd_ph(x, b1, c41)
                x = pair(a5, t); c50 = _mm512_fmadd_ph(x, b0, c50); c51 = _mm512_fmadd_ph(x, b1, c51)
                x = pair(a6, t); c60 = _mm512_fmadd_ph(x, b0, c60); c61 = _mm512_fmadd_ph(x, b1, c61)
                x = pair(a7, t); c70 = _mm512_fmadd_ph(x, b0, c70); c71 = _mm512_fmadd_ph(x, b1, c71)
                bp += 64
            }
            addSums(c00, c01, sums)
            if rows > 1 { addSums(c10, c11, sums + 64) }
            if rows > 2 { addSums(c20, c21, sums + 128) }
            if rows > 3 { addSums(c30, c31, sums + 192) }
            if rows > 4 { addSums(c40, c41, sums + 256) }
            if rows > 5 { addSums(c50, c51, sums + 320) }
            if rows > 6 { addSums(c60, c61, sums + 384) }
            if rows > 7 { addSums(c70, c71, sums + 448) }
            t0 = t1
        }
        for r in 0..<rows { addPairs(sums + r * 64, y + r * N, cols) }
    }

    /// s[0..<64] += the 64 fp16 sums of one row (outputs 0…15 in lo, 16…31 in hi, even/odd
    /// interleaved), in fp32.
    @inline(__always)
    static func addSums(_ lo: __m512h, _ hi: __m512h, _ s: UnsafeMutablePointer<Float>) {
        // Lanes 16…31 moved down (vextracti64x4's immediate form does not import).
        @inline(__always) func upper(_ v: __m512h) -> __m256h {
            _mm512_castph512_ph256(_mm512_castsi512_ph(_mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 1, 0, 7, 6, 5, 4), _mm512_castph_si512(v))))
        }
        @inline(__always) func add(_ v: __m256h, _ p: UnsafeMutablePointer<Float>) {
            _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), _mm512_cvtxph_ps(v)))
        }
        add(_mm512_castph512_ph256(lo), s); add(upper(lo), s + 16)
        add(_mm512_castph512_ph256(hi), s + 32); add(upper(hi), s + 48)
    }

    /// y[c] += even[c] + odd[c] for c < cols, from s = 32 interleaved (even, odd) pairs.
    @inline(__always)
    static func addPairs(_ s: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ cols: Int) {
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0)
        let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1)
        var c = 0
        while c < cols {
            let u = _mm512_loadu_ps(s + 2 * c), v = _mm512_loadu_ps(s + 2 * c + 16)
            let sum = _mm512_add_ps(_mm512_permutex2var_ps(u, even, v), _mm512_permutex2var_ps(u, odd, v))
            let n = cols - c
            if n >= 16 {
                _mm512_storeu_ps(y + c, _mm512_add_ps(_mm512_loadu_ps(y + c), sum))
            } else {
                let m = UInt16(truncatingIfNeeded: (1 << n) - 1)
                _mm512_mask_storeu_ps(y + c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + c), sum))
            }
            c += 16
        }
    }
    #endif

    /// The same product as `multiplyAdd` with the same roundings, one value at a time (the tests'
    /// reference): fp16 inputs; for each output two fp16 sums, of the even and the odd k, each
    /// fused multiply-add rounded once and each sum added into an fp32 total every
    /// `flushInterval` products; y += even total + odd total.
    public static func reference(_ X: UnsafePointer<Float>, rows m: Int, _ W: UnsafePointer<Float>, outputs N: Int, inputs K: Int,
                                 into Y: UnsafeMutablePointer<Float>) {
        for i in 0..<m {
            for n in 0..<N {
                var totals: [Float] = [0, 0]
                for parity in 0..<2 {
                    var acc: Float16 = 0, count = 0
                    var k = parity
                    while k < K {
                        // The product of two fp16 values is exact in Double; one rounding to fp16.
                        acc = Float16(Double(acc) + Double(Float16(X[i * K + k])) * Double(Float16(W[n * K + k])))
                        count += 1
                        if count == flushInterval { totals[parity] += Float(acc); acc = 0; count = 0 }
                        k += 2
                    }
                    totals[parity] += Float(acc)
                }
                Y[i * N + n] += totals[0] + totals[1]
            }
        }
    }
}
