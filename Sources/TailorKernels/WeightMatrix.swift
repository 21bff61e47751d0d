// A weight matrix as the model file stores it: `rows` rows of `cols` elements each, every row a
// run of quantized blocks, read in place from the memory map (never copied).
import CBLAS
import Foundation

// @unchecked Sendable: immutable; `data` points into a read-only mapping (or buffer) that `owner`
// keeps alive, and `packed` is itself immutable.
public struct WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    /// Output features (ggml's ne[1]).
    public let rows: Int
    /// Input features (ggml's ne[0]); a whole number of blocks.
    public let cols: Int
    public let data: UnsafeRawPointer
    public let rowBytes: Int
    /// Keeps the mapping (or buffer) alive.
    public let owner: AnyObject?
    /// The rows repacked for integer products over many tokens (PackedWeights), used by
    /// Precision.fast; the mapped rows serve everything else.
    public let packed: PackedWeights?

    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer, owner: AnyObject?, packed: PackedWeights? = nil) {
        precondition(cols % type.blockSize == 0)
        self.type = type
        self.rows = rows
        self.cols = cols
        self.data = data
        self.rowBytes = cols / type.blockSize * type.blockBytes
        self.owner = owner
        self.packed = packed
    }

    /// TAILOR_NO_PACK=1 keeps every matrix in its mapped layout (the matrix-vector kernels and
    /// fp32 prefill, as before the packed kernels): for comparisons.
    public static let packingDisabled = ProcessInfo.processInfo.environment["TAILOR_NO_PACK"] == "1"

    /// This matrix with its packed layout (when its type has one), packed on `pool`. The mapped
    /// pages it was read from are handed back to the kernel, so the packed copy replaces them in
    /// resident memory; whatever reads the mapped rows later (exact precision, an embedding
    /// lookup) faults in only the pages it touches.
    public func packing(pool: ThreadPool?) -> WeightMatrix {
        guard packed == nil, PackedWeights.supports(type), cols % type.blockSize == 0, !WeightMatrix.packingDisabled else { return self }
        let p = PackedWeights(type: type, rows: rows, cols: cols, source: data, pool: pool)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: data) + page - 1) / page * page, end = (Int(bitPattern: data) + byteCount) / page * page
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED)) }
        return WeightMatrix(type: type, rows: rows, cols: cols, data: data, owner: owner, packed: p)
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Dequantizes row `r` into `out[0..<cols]`.
    @inline(__always)
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        FastDequant.row(type, row(r), out, count: cols)
    }

    public var byteCount: Int { rows * rowBytes }
}

/// Activations × weightsᵀ in fp32 — the arithmetic of transformers on dequantized weights.
/// Few tokens (decoding): fused dequantize-dot kernels, parallel over rows. Many tokens
/// (prefill): each thread dequantizes panels of rows and multiplies them with OpenBLAS sgemm.
public enum MatMul {
    /// Tokens at or below this use the matrix-vector kernels.
    public static let vectorLimit = 4
    /// Largest panel of weight rows dequantized for one sgemm. Every sgemm packs the whole
    /// activation matrix again (OpenBLAS's copy routines were ~9% of prefill at 256 rows), so
    /// panels are large: with two threads a SmolLM2 matrix is two to six panels. 512 rows took
    /// Q4_0 pp512 from 562 to 601 t/s against 256; 1024 measured no better.
    static let panelRows = 512
    /// How far ahead of the rows being multiplied the weights are prefetched, and into which
    /// cache. On the AMD Zen 3 machine of earlier runs, 2 KiB ahead into the non-temporal buffer
    /// (Q4_1 decode ~100 → ~139 t/s; prefetcht0 measured the same). On an Intel Xeon with AVX-512,
    /// non-temporal prefetches hurt (tg128 93–95 t/s with 2 KiB, 104–111 without any), while
    /// prefetcht0 8 KiB ahead helped most (interleaved runs: none 110–112, 1 KiB 144–152,
    /// 4 KiB 154–182, 8 KiB 168–185, 16 KiB 174–180).
    /// `inKernel` is the distance the AVX-512 kernels prefetch at themselves, a line or two per
    /// group of blocks instead of a burst of a whole row pair's lines before it: the bursts stalled
    /// the thread once the line fill buffers were full (7% of decode samples sat on them). On the
    /// Xeon, Q4_K-file tg128 medians over interleaved runs: bursts 8 KiB 202–220, in-kernel 2 KiB
    /// 234, 4 KiB 227–237, 8 KiB 234, 12 KiB 214. Not measured on AMD: it keeps its distance.
    static let prefetch: (distance: Int, intoL1: Bool, inKernel: Int) = {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.contains("GenuineIntel") ? (8192, true, 4096) : (2048, false, 2048)
    }()

    /// y[t, o] = Σ_i x[t, i] · W[o, i].  x: [tokens × W.cols], y: [tokens × W.rows].
    /// With `accumulate`, y[t, o] += the sum instead (a residual added in place: no separate
    /// zeroing of y and no pass to add it).
    /// With `rowByRow`, every token goes through the matrix-vector kernels whatever their number,
    /// so each output is computed exactly as for that token alone (batched decoding: every
    /// sequence gets what it would get by itself).
    public static func forward(_ x: UnsafePointer<Float>, _ w: WeightMatrix, _ y: UnsafeMutablePointer<Float>,
                               tokens: Int, pool: ThreadPool, precision: Precision = .exact, accumulate: Bool = false,
                               rowByRow: Bool = false) {
        forward(x, [(w, y)], tokens: tokens, pool: pool, precision: precision, accumulate: accumulate, rowByRow: rowByRow)
    }

    /// Several products of the same input in one parallel dispatch (Q, K and V; gate and up).
    public static func forward(_ x: UnsafePointer<Float>, _ outputs: [(WeightMatrix, UnsafeMutablePointer<Float>)],
                               tokens: Int, pool: ThreadPool, precision: Precision = .exact, accumulate: Bool = false,
                               rowByRow: Bool = false) {
        guard let cols = outputs.first?.0.cols, tokens > 0 else { return }
        precondition(outputs.allSatisfy { $0.0.cols == cols })
        if tokenIndependent(outputs.map(\.0), precision: precision) {
            packedProducts(x, outputs, cols: cols, tokens: tokens, pool: pool, accumulate: accumulate)
            return
        }
        let vector = rowByRow || tokens <= vectorLimit
        if vector, precision == .fast, outputs.allSatisfy({ Q8Dot.supports($0.0.type) }),
           cols % 32 == 0, !outputs.contains(where: { Q8Dot.uses256($0.0.type) && cols % 256 != 0 }) {
            matvecInt8(x, outputs, cols: cols, tokens: tokens, pool: pool, accumulate: accumulate)
        } else if vector {
            matvec(x, outputs, cols: cols, tokens: tokens, pool: pool, accumulate: accumulate)
        } else {
            gemm(x, outputs, cols: cols, tokens: tokens, pool: pool, accumulate: accumulate)
        }
    }

    /// Whether every token's outputs are computed the same way whatever the number of tokens
    /// (the packed kernels): then a batch can run all its rows in one call.
    public static func tokenIndependent(_ matrices: [WeightMatrix], precision: Precision) -> Bool {
        precision == .fast && matrices.allSatisfy { $0.packed != nil }
    }

    /// Integer products with the packed weights: activations quantized once (in parallel for
    /// many tokens), then row groups of 16 spread over the threads.
    static func packedProducts(_ x: UnsafePointer<Float>, _ outputs: [(WeightMatrix, UnsafeMutablePointer<Float>)],
                               cols: Int, tokens: Int, pool: ThreadPool, accumulate: Bool) {
        pool.withTurn {
            let acts = pool.activations(n: cols, tokens: tokens)
            let b32 = outputs.contains { !PackedWeights.isK($0.0.type) }, b256 = outputs.contains { PackedWeights.isK($0.0.type) }
            if tokens >= 16 {
                pool.parallelFor(tokens, minChunk: 8) { r in acts.quantize(x, rows: r, blocks32: b32, blocks256: b256, grouped: false) }
            } else {
                acts.quantize(x, blocks32: b32, blocks256: b256, grouped: false)
            }
            let packs = outputs.map { ($0.0.packed!, $0.1, $0.0.rows) }
            let total = packs.reduce(0) { $0 + $1.0.groups }
            // Decoding streams each thread's own contiguous groups (forEachChunk); with many
            // tokens each group is compute-heavy and any order does.
            let chunk = max(1, min(8, total / (8 * pool.threads)))
            withExtendedLifetime(packs) {
                pool.forEachChunk(total, chunk: chunk) { range, _ in
                    var r = range.lowerBound, m = 0, base = 0
                    while r < range.upperBound {
                        while r >= base + packs[m].0.groups { base += packs[m].0.groups; m += 1 }
                        let (w, y, rows) = packs[m]
                        let end = min(range.upperBound, base + w.groups)
                        PackedGEMM.run(w, acts, tokens: tokens, groups: (r - base)..<(end - base), y, ldy: rows, accumulate: accumulate)
                        r = end
                    }
                }
            }
        }
    }

    static func matvec(_ x: UnsafePointer<Float>, _ outputs: [(WeightMatrix, UnsafeMutablePointer<Float>)],
                       cols: Int, tokens: Int, pool: ThreadPool, accumulate: Bool = false) {
        let nb = cols / 32
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: max(1, nb * tokens))
        defer { sums.deallocate() }
        if cols % 32 == 0 { for t in 0..<tokens { QuantDot.blockSums(x + t * cols, cols, into: sums + t * nb) } }
        let fused = outputs.allSatisfy { QuantDot.isFused($0.0.type) }
        let scratchPerThread = UnsafeMutablePointer<Float>.allocate(capacity: fused ? 1 : cols * pool.threads)
        defer { scratchPerThread.deallocate() }
        forEachRowPair(outputs, pool: pool) { w, y, row, pair, thread in
            let scratch = fused ? scratchPerThread : scratchPerThread + cols * thread
            for r in row..<(pair ? row + 2 : row + 1) {
                let p = w.row(r)
                for t in 0..<tokens {
                    let d = QuantDot.dot(w.type, p, x + t * cols, sums + t * nb, cols, scratch: scratch)
                    if accumulate { y[t * w.rows + r] += d } else { y[t * w.rows + r] = d }
                }
            }
        }
    }

    /// Decoding with 8-bit activations: quantize x once, then integer dot products per row.
    static func matvecInt8(_ x: UnsafePointer<Float>, _ outputs: [(WeightMatrix, UnsafeMutablePointer<Float>)],
                           cols: Int, tokens: Int, pool: ThreadPool, accumulate: Bool = false) {
        // The buffers belong to whoever holds the pool: keep it from quantizing to the products.
        pool.withTurn {
        let acts = pool.activations(n: cols, tokens: tokens)
        acts.quantize(x, blocks32: outputs.contains { !Q8Dot.uses256($0.0.type) }, blocks256: outputs.contains { Q8Dot.uses256($0.0.type) })
        forEachRowPair(outputs, pool: pool) { w, y, row, pair, _ in
            for t in 0..<tokens {
                let o = y + t * w.rows + row
                if pair {
                    let (a, b) = Q8Dot.dot2(w.type, w.row(row), w.row(row + 1), acts, token: t)
                    if accumulate { o[0] += a; o[1] += b } else { o[0] = a; o[1] = b }
                } else {
                    let a = Q8Dot.dot(w.type, w.row(row), acts, token: t)
                    if accumulate { o[0] += a } else { o[0] = a }
                }
            }
        }
        }
    }

    /// A matrix's rows without the reference that keeps them alive: what the decoding loops pass
    /// around (copying a `WeightMatrix` retains its owner, thousands of times per token).
    struct Rows {
        let type: GGMLType
        let rows: Int
        let data: UnsafeRawPointer
        let rowBytes: Int
        init(_ w: WeightMatrix) { type = w.type; rows = w.rows; data = w.data; rowBytes = w.rowBytes }
        @inline(__always) func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
    }

    /// Calls `body(matrix, output, row, pair, thread)` for every row of every matrix, two rows at
    /// a time where two rows of one matrix are left (`pair`: rows `row` and `row + 1`). Each thread
    /// walks one contiguous range of the rows, so it streams its weights sequentially, and
    /// prefetches a few rows ahead; a thread done early takes chunks from the back of the
    /// others' ranges (`ThreadPool.forEachChunk`).
    static func forEachRowPair(_ outputs: [(WeightMatrix, UnsafeMutablePointer<Float>)], pool: ThreadPool,
                               _ body: (Rows, UnsafeMutablePointer<Float>, Int, Bool, Int) -> Void) {
        let totalRows = outputs.reduce(0) { $0 + $1.0.rows }
        // About eight chunks per thread, even-sized so pairs never straddle two chunks.
        let chunk = max(8, min(64, totalRows / (8 * pool.threads))) & ~1
        let views = outputs.map { (Rows($0.0), $0.1) }
        let (distance, intoL1, _) = MatMul.prefetch
        withExtendedLifetime(outputs) {
            views.withUnsafeBufferPointer { views in
                pool.forEachChunk(totalRows, chunk: chunk) { range, thread in
                    var r = range.lowerBound
                    let end = range.upperBound
                    var m = 0, base = 0
                    while m < views.count, r >= base + views[m].0.rows { base += views[m].0.rows; m += 1 }
                    while r < end {
                        let (w, y) = views[m]
                        let stop = min(end, base + w.rows)
                        var row = r - base
                        let endp = w.row(w.rows)
                        let burst = !Q8Dot.prefetchesItself(w.type)
                        while row < stop - base {
                            if burst {
                                let ahead = w.row(row) + distance
                                var off = 0
                                if intoL1 {
                                    while off < 2 * w.rowBytes, ahead + off < endp { tailor_prefetch_l1(ahead + off); off += 64 }
                                } else {
                                    while off < 2 * w.rowBytes, ahead + off < endp { tailor_prefetch(ahead + off); off += 64 }
                                }
                            }
                            let pair = row + 1 < stop - base
                            body(w, y, row, pair, thread)
                            row += pair ? 2 : 1
                        }
                        r = stop
                        if r < end { base += w.rows; m += 1 }
                    }
                }
            }
        }
    }

    static func gemm(_ x: UnsafePointer<Float>, _ outputs: [(WeightMatrix, UnsafeMutablePointer<Float>)],
                     cols: Int, tokens: Int, pool: ThreadPool, accumulate: Bool = false) {
        // Work items: panels of up to `panelRows` rows; each matrix in a multiple of `threads`
        // equal panels, so that when the threads run at the same speed none is left waiting.
        var items: [(m: Int, r0: Int, n: Int)] = []
        let threads = pool.threads
        for (i, (w, _)) in outputs.enumerated() {
            let panels = threads * ((w.rows + threads * panelRows - 1) / (threads * panelRows))
            let size = (w.rows + panels - 1) / panels
            var r = 0
            while r < w.rows { let n = min(size, w.rows - r); items.append((i, r, n)); r += n }
        }
        // Panels go to whichever thread is free (a thread the machine slows down takes fewer),
        // each thread dequantizing into its own buffer.
        let largest = items.map(\.n).max() ?? 0
        let buffers = UnsafeMutablePointer<Float>.allocate(capacity: threads * largest * cols)
        defer { buffers.deallocate() }
        pool.dispatch(items.count) { k, thread in
            let buf = buffers + thread * largest * cols
            let it = items[k]
            let (w, y) = outputs[it.m]
            for r in 0..<it.n { w.dequantizeRow(it.r0 + r, into: buf + r * cols) }
            // y[:, r0..<r0+n] = x · panelᵀ (+ y). Always β = 1: OpenBLAS's own β = 0 pass zeroes
            // the strided panel one float at a time, memset is several times faster.
            if !accumulate { for t in 0..<tokens { (y + t * w.rows + it.r0).update(repeating: 0, count: it.n) } }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(it.n), Int32(cols),
                        1, x, Int32(cols), buf, Int32(cols), 1, y + it.r0, Int32(w.rows))
        }
    }

    /// Σ a[i]·b[i] with sixteen-lane accumulation.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            let va = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let vb = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            acc.addProduct(va, vb)
            i += 16
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
}

