// Operations the decoder architectures share, in fp32 over flat row-major buffers.
// Shapes: T = tokens, C = width, D = head width, P = cached positions.
import Foundation
import CBLAS
import TailorFormats
import TailorKernels

/// A decoder-only language model: tokens in, next-token logits out, with a KV cache.
public protocol CausalLM: AnyObject, Sendable {
    var vocabularySize: Int { get }
    var contextLength: Int { get }
    /// The compute scheduler its operations run on (shared with every other model of the process).
    var pool: ThreadPool { get }
    /// Layers and key/value width of its cache.
    var layerCount: Int { get }
    var kvWidth: Int { get }
    /// The projections' shapes for LoRA adapters, nil where the architecture takes none.
    var adapterShapes: [LoRATarget: (inputs: Int, outputs: Int)]? { get }
    /// One forward pass over several sessions at once: each step's tokens run at positions
    /// session.cache.count… of its own cache, which they are appended to, with its own adapters;
    /// the weights are read once for all. Returns, per step, logits for every token ([T × V])
    /// when `allLogits`, else for the last one ([V]). The steps' sessions must be distinct and
    /// of one precision.
    func forward(_ steps: [DecoderStep]) throws -> [[Float]]
}

extension CausalLM {
    /// A cache of up to `maxTokens` positions (default: the context length): fp16 for .fast, fp32
    /// for .exact.
    public func makeCache(maxTokens: Int?, precision: Precision) -> KVCache {
        KVCache(layers: layerCount, kvDim: kvWidth, maxTokens: min(maxTokens ?? contextLength, contextLength), half: precision == .fast)
    }

    /// Runs `tokens` at positions cache.count…, appending to the cache, in the cache's precision
    /// (fp16 cache: .fast), with `adapters`; logits for every token ([T × V]) when `allLogits`,
    /// else for the last ([V]).
    public func forward(_ tokens: [Int], cache: KVCache, adapters: [AdapterUse] = [], allLogits: Bool = false) throws -> [Float] {
        let session = DecoderSession(cache: cache, adapters: adapters)
        return try forward([DecoderStep(session, tokens: tokens, allLogits: allLogits)])[0]
    }
}

enum DecoderOps {
    /// y = x / sqrt(mean(x²) + eps) · w, for each of `rows` rows of `width`.
    /// Rows split across `pool`'s threads when one is given and there are enough of them.
    static func rmsNorm(_ x: UnsafePointer<Float>, _ w: [Float], _ y: UnsafeMutablePointer<Float>, rows: Int, width: Int, eps: Float,
                        pool: ThreadPool? = nil) {
        w.withUnsafeBufferPointer { w in
            let body = { (range: Range<Int>) in
                for r in range {
                    let xr = x + r * width, yr = y + r * width
                    let ss = MatMul.dot(xr, xr, width)
                    let scale = 1 / (ss / Float(width) + eps).squareRoot()
                    for i in 0..<width { yr[i] = w[i] * (xr[i] * scale) }
                }
            }
            if let pool, rows >= 32 { pool.parallelFor(rows, minChunk: 16, body) } else { body(0..<rows) }
        }
    }

    /// Inverse frequencies θ_i = base^(-2i/ropeDim), i < ropeDim/2 (Su et al. 2021, RoFormer).
    static func ropeFrequencies(base: Float, ropeDim: Int, scale: Float = 1, factors: [Float]? = nil) -> [Float] {
        (0..<(ropeDim / 2)).map { i in
            var f = 1 / pow(base, Float(2 * i) / Float(ropeDim)) * scale
            if let factors { f /= factors[i] }
            return f
        }
    }

    /// cos and sin of position·θ_i for each position: [positions × (cos ×half, sin ×half)], so
    /// the layers of one forward pass share them.
    static func ropeAngles<P: Collection<Int>>(invFreq: [Float], positions: P) -> [Float] {
        let half = invFreq.count
        var out = [Float](repeating: 0, count: positions.count * 2 * half)
        for (n, position) in positions.enumerated() {
            for i in 0..<half {
                let theta = Float(position) * invFreq[i]
                out[n * 2 * half + i] = cos(theta)
                out[n * 2 * half + half + i] = sin(theta)
            }
        }
        return out
    }

    /// Rotates the first 2·half features of each of `heads` heads (width D) by position·θ_i, with
    /// one position's cos/sin from `ropeAngles`. Normal ordering pairs (2i, 2i+1) (GGUF Llama
    /// files, whose Q/K rows the converter permuted); NeoX ordering pairs (i, i + half) (Qwen2,
    /// Gemma).
    static func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim D: Int, angles: UnsafePointer<Float>, half: Int, neox: Bool) {
        for i in 0..<half {
            let c = angles[i], s = angles[half + i]
            let (i0, i1) = neox ? (i, i + half) : (2 * i, 2 * i + 1)
            for h in 0..<heads {
                let base = x + h * D
                let a = base[i0], b = base[i1]
                base[i0] = a * c - b * s
                base[i1] = a * s + b * c
            }
        }
    }

    /// Causal grouped-query attention: T queries (at positions start…start+T-1) over layer
    /// `layer` of the cache. q: [T × H·D], out: [T × H·D]. `window` limits how far back a query
    /// looks (sliding-window layers); `scale` multiplies q·k. With an fp16 cache the queries and
    /// the attention weights are rounded to fp16 before their products, as llama.cpp's f16
    /// matrix products do.
    static func attention(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, cache: KVCache, layer: Int,
                          tokens T: Int, start: Int, heads H: Int, kvHeads: Int,
                          headDim D: Int, scale: Float, window: Int? = nil, pool: ThreadPool) {
        if T > 8 {
            attentionGEMM(q: q, out: out, cache: cache, layer: layer, tokens: T, start: start, heads: H,
                          kvHeads: kvHeads, headDim: D, scale: scale, window: window, pool: pool)
            return
        }
        let scratch = AttentionScratch(threads: pool.threads, positions: start + T, headDim: D)
        defer { scratch.free() }
        pool.dispatch(T * H) { job, thread in
            let t = job / H, h = job % H
            attendOne(q: q + t * H * D, out: out + t * H * D, cache: cache, layer: layer, position: start + t, head: h,
                      heads: H, kvHeads: kvHeads, headDim: D, scale: scale, window: window, scratch: scratch.of(thread))
        }
    }

    /// Per-thread scores and query buffers of one attention operation (no allocation per head).
    struct AttentionScratch {
        let base: UnsafeMutablePointer<Float>
        let stride: Int
        init(threads: Int, positions: Int, headDim: Int) {
            stride = (positions + headDim + 15) / 16 * 16
            base = .allocate(capacity: max(1, threads) * stride)
        }
        func of(_ thread: Int) -> UnsafeMutablePointer<Float> { base + thread * stride }
        func free() { base.deallocate() }
    }

    /// One query row's head `h` at `position` over the cache's positions up to it (the arithmetic
    /// of `attention` for few queries). q, out: that row's [H·D]; scratch: position + 1 + D floats.
    static func attendOne(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, cache: KVCache, layer: Int,
                          position pos: Int, head h: Int, heads H: Int, kvHeads: Int,
                          headDim D: Int, scale: Float, window: Int?, scratch scores: UnsafeMutablePointer<Float>) {
        let group = H / kvHeads, KV = kvHeads * D
        let kvh = h / group
        let first = window.map { max(0, pos - $0 + 1) } ?? 0
        let qr = scores + pos + 1  // this head's query, fp16-rounded when the cache is fp16
        qr.update(from: q + h * D, count: D)
        let n = pos - first + 1
        let o = out + h * D
        if cache.isHalf {
            // fp16 cache (llama.cpp's arithmetic): the query and the weights rounded to fp16.
            let kh = cache.keys[layer].assumingMemoryBound(to: UInt16.self), vh = cache.values[layer].assumingMemoryBound(to: UInt16.self)
            HalfDot.roundToHalf(qr, D)
            HalfDot.scores(qr, kh + first * KV + kvh * D, stride: KV, count: n, dim: D, scale: scale, into: scores + first)
            VectorMath.softmax(scores + first, n)
            HalfDot.roundToHalf(scores + first, n)
            HalfDot.weightedSum(scores + first, vh + first * KV + kvh * D, stride: KV, count: n, dim: D, into: o)
            return
        }
        let kf = cache.keys[layer].assumingMemoryBound(to: Float.self), vf = cache.values[layer].assumingMemoryBound(to: Float.self)
        var mx = -Float.infinity
        for j in first...pos {
            let s = MatMul.dot(qr, kf + j * KV + kvh * D, D) * scale
            scores[j] = s
            mx = max(mx, s)
        }
        var sum: Float = 0
        for j in first...pos { let e = exp(scores[j] - mx); scores[j] = e; sum += e }
        let inv = 1 / sum
        o.update(repeating: 0, count: D)
        for j in first...pos {
            let w = scores[j] * inv
            let vj = vf + j * KV + kvh * D
            for d in 0..<D { o[d] += w * vj[d] }
        }
    }

    /// The same for many queries, one head per job with two sgemms per block of 64 queries:
    /// S = Q·Kᵀ over the keys the block can see (causal: none past its last query), masked
    /// softmax, O = S·V. An fp16 cache is widened to fp32 first.
    static func attentionGEMM(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, cache: KVCache, layer: Int,
                              tokens T: Int, start: Int, heads H: Int, kvHeads: Int,
                              headDim D: Int, scale: Float, window: Int?, pool: ThreadPool) {
        let group = H / kvHeads, KV = kvHeads * D, Q = H * D, P = start + T
        var keys = UnsafePointer(cache.keys[layer].assumingMemoryBound(to: Float.self))
        var values = UnsafePointer(cache.values[layer].assumingMemoryBound(to: Float.self))
        var widened: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)?
        if cache.isHalf {
            let k = UnsafeMutablePointer<Float>.allocate(capacity: P * KV), v = UnsafeMutablePointer<Float>.allocate(capacity: P * KV)
            let kh = cache.keys[layer].assumingMemoryBound(to: UInt16.self), vh = cache.values[layer].assumingMemoryBound(to: UInt16.self)
            pool.parallelFor(P * KV, minChunk: 8192) { r in
                HalfDot.widen(kh + r.lowerBound, into: k + r.lowerBound, count: r.count)
                HalfDot.widen(vh + r.lowerBound, into: v + r.lowerBound, count: r.count)
            }
            keys = UnsafePointer(k); values = UnsafePointer(v)
            widened = (k, v)
        }
        defer { if let (k, v) = widened { k.deallocate(); v.deallocate() } }
        // One job per head and block of 64 queries, the blocks that see the most keys first, so
        // the threads finish together.
        let block = 64, blocks = (T + block - 1) / block
        pool.dispatch(H * blocks) { job in
            let h = job % H, kvh = h / group
            let t0 = (blocks - 1 - job / H) * block
            let rows = min(block, T - t0)
            let lastPos = start + t0 + rows - 1
            let firstKey = window.map { max(0, start + t0 - $0 + 1) } ?? 0
            let n = lastPos - firstKey + 1   // keys this block sees
            let s = UnsafeMutablePointer<Float>.allocate(capacity: rows * n)   // scores [rows × keys]
            defer { s.deallocate() }
            // β = 1 over memset-zeroed outputs: OpenBLAS's β = 0 pass is a scalar loop.
            s.update(repeating: 0, count: rows * n)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(D), scale,
                        q + t0 * Q + h * D, Int32(Q), keys + firstKey * KV + kvh * D, Int32(KV), 1, s, Int32(n))
            for i in 0..<rows {
                let row = s + i * n
                let pos = start + t0 + i
                let first = (window.map { max(0, pos - $0 + 1) } ?? 0) - firstKey
                let last = pos - firstKey
                if first > 0 { row.update(repeating: 0, count: first) }
                VectorMath.softmax(row + first, last - first + 1)
                if last + 1 < n { (row + last + 1).update(repeating: 0, count: n - last - 1) }
            }
            let o = out + t0 * Q + h * D
            for i in 0..<rows { (o + i * Q).update(repeating: 0, count: D) }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(D), Int32(n), 1,
                        s, Int32(n), values + firstKey * KV + kvh * D, Int32(KV), 1, o, Int32(Q))
        }
    }

    static func addBias(_ x: UnsafeMutablePointer<Float>, _ b: [Float], rows: Int) {
        b.withUnsafeBufferPointer { b in
            for r in 0..<rows { for i in 0..<b.count { x[r * b.count + i] += b[i] } }
        }
    }

    /// g ← silu(g) · u (SwiGLU, Shazeer 2020).
    static func swiglu(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int) {
        VectorMath.swiglu(g, u, n)
    }

    /// g ← gelu_tanh(g) · u (GeGLU with the tanh approximation, as Gemma uses).
    static func geglu(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int) {
        let k: Float = 0.7978845608028654  // sqrt(2/π)
        for i in 0..<n {
            let x = g[i]
            g[i] = 0.5 * x * (1 + tanh(k * (x + 0.044715 * x * x * x))) * u[i]
        }
    }

    /// Reads a weight matrix by name, checking its shape [cols, rows] (ggml order).
    /// With `pack`, the matrix also gets its packed layout (for .fast batched products).
    static func matrix(_ file: GGUFFile, _ name: String, rows: Int, cols: Int, pack: ThreadPool? = nil) throws -> WeightMatrix {
        guard let t = file.tensor(name) else { throw ModelError.format(.missingTensor(name)) }
        guard t.shape == [cols, rows] else { throw ModelError.tensorShape(name: name, expected: [cols, rows], found: t.shape) }
        let w = WeightMatrix(type: t.type, rows: rows, cols: cols, data: file.data(t), owner: file)
        return pack.map { w.packing(pool: $0) } ?? w
    }

    /// Reads a vector (norm weights, biases) as fp32.
    static func vector(_ file: GGUFFile, _ name: String, _ n: Int) throws -> [Float] {
        guard let t = file.tensor(name) else { throw ModelError.format(.missingTensor(name)) }
        guard t.elementCount == n else { throw ModelError.tensorShape(name: name, expected: [n], found: t.shape) }
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { FastDequant.row(t.type, file.data(t), $0.baseAddress!, count: n) }
        return out
    }

    static func optionalVector(_ file: GGUFFile, _ name: String, _ n: Int) throws -> [Float]? {
        file.tensor(name) == nil ? nil : try vector(file, name, n)
    }
}

