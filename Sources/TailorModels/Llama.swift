// The Llama decoder family (Touvron et al. 2023): SmolLM2, Llama 2/3.x, TinyLlama, Mistral,
// and Qwen2/2.5 (the same block with Q/K/V biases and NeoX RoPE).
// Each GGUF tensor name stands next to the property it fills.
//
// Shapes: T = tokens in this batch, P = positions in the cache, C = embedding width,
// H = query heads, Hkv = key/value heads, D = head width, F = feed-forward width, V = vocabulary.
import Foundation
import TailorFormats
import TailorKernels

public struct LlamaConfig: Sendable {
    public var architecture: String
    public var layers: Int            // {arch}.block_count
    public var embedding: Int         // {arch}.embedding_length            C
    public var feedForward: Int       // {arch}.feed_forward_length         F
    public var heads: Int             // {arch}.attention.head_count        H
    public var kvHeads: Int           // {arch}.attention.head_count_kv     Hkv
    public var headDim: Int           // {arch}.attention.key_length or C/H D
    public var ropeDim: Int           // {arch}.rope.dimension_count
    public var ropeBase: Float        // {arch}.rope.freq_base
    public var ropeScale: Float       // 1 / {arch}.rope.scaling.factor (linear scaling)
    public var ropeNeoX: Bool         // rotate halves (qwen2) instead of adjacent pairs (llama)
    public var normEps: Float         // {arch}.attention.layer_norm_rms_epsilon
    public var contextLength: Int     // {arch}.context_length
    public var vocabulary: Int        // token_embd rows                      V

    public var kvDim: Int { kvHeads * headDim }
    public var qDim: Int { heads * headDim }

    init(gguf: GGUFFile) throws {
        let arch = try gguf.string("general.architecture")
        guard ["llama", "qwen2", "mistral"].contains(arch) else { throw ModelError.unsupportedArchitecture(arch) }
        func int(_ k: String) throws -> Int { try gguf.int("\(arch).\(k)") }
        architecture = arch
        layers = try int("block_count")
        embedding = try int("embedding_length")
        feedForward = try int("feed_forward_length")
        heads = try int("attention.head_count")
        kvHeads = (try? int("attention.head_count_kv")) ?? heads
        guard layers > 0, layers < 1000, embedding > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, feedForward > 0 else {
            throw ModelError.badHyperParameter(key: "\(arch).attention.head_count", value: "\(heads)/\(kvHeads)",
                                               reason: "heads must be a positive multiple of key/value heads")
        }
        headDim = (try? int("attention.key_length")) ?? embedding / heads
        ropeDim = (try? int("rope.dimension_count")) ?? headDim
        guard headDim > 0, ropeDim > 0, ropeDim <= headDim, ropeDim % 2 == 0 else {
            throw ModelError.badHyperParameter(key: "\(arch).rope.dimension_count", value: "\(ropeDim)", reason: "must be even and at most the head width \(headDim)")
        }
        ropeBase = Float((try? gguf.double("\(arch).rope.freq_base")) ?? 10000)
        if gguf["\(arch).rope.scaling.type"]?.string == "linear", let f = try? gguf.double("\(arch).rope.scaling.factor"), f > 0 {
            ropeScale = Float(1 / f)
        } else {
            ropeScale = 1
        }
        ropeNeoX = arch == "qwen2"
        normEps = Float((try? gguf.double("\(arch).attention.layer_norm_rms_epsilon")) ?? 1e-5)
        contextLength = (try? int("context_length")) ?? 2048
        guard let emb = gguf.tensor("token_embd.weight") else { throw ModelError.format(.missingTensor("token_embd.weight")) }
        vocabulary = emb.shape.count > 1 ? emb.shape[1] : 0
    }
}

/// One transformer block's weights.
public struct LlamaBlock: @unchecked Sendable {
    public let attnNorm: [Float]          // blk.N.attn_norm.weight    [C]
    public let wq: WeightMatrix           // blk.N.attn_q.weight       [H·D × C]
    public let wk: WeightMatrix           // blk.N.attn_k.weight       [Hkv·D × C]
    public let wv: WeightMatrix           // blk.N.attn_v.weight       [Hkv·D × C]
    public let bq: [Float]?               // blk.N.attn_q.bias         [H·D]    (qwen2)
    public let bk: [Float]?               // blk.N.attn_k.bias         [Hkv·D]  (qwen2)
    public let bv: [Float]?               // blk.N.attn_v.bias         [Hkv·D]  (qwen2)
    public let wo: WeightMatrix           // blk.N.attn_output.weight  [C × H·D]
    public let ffnNorm: [Float]           // blk.N.ffn_norm.weight     [C]
    public let gate: WeightMatrix         // blk.N.ffn_gate.weight     [F × C]
    public let up: WeightMatrix           // blk.N.ffn_up.weight       [F × C]
    public let down: WeightMatrix         // blk.N.ffn_down.weight     [C × F]
}

public final class LlamaModel: CausalLM, @unchecked Sendable {
    public let config: LlamaConfig
    public let file: GGUFFile
    public let tokenEmbedding: WeightMatrix   // token_embd.weight   [V × C]
    public let blocks: [LlamaBlock]
    public let outputNorm: [Float]            // output_norm.weight  [C]
    public let output: WeightMatrix           // output.weight       [V × C], or token_embd when tied
    public let invFreq: [Float]               // [ropeDim/2], rope_freqs folded in
    public var pool: ThreadPool
    /// Arithmetic: .exact (fp32 activations, transformers) or .fast (8-bit activations and an
    /// fp16 cache, llama.cpp). Caches made before a change keep their storage.
    public var precision: Precision = .exact
    /// A LoRA adapter applied at run time (not merged), or nil.
    public var adapter: LoRAAdapter?

    public init(file: GGUFFile, threads: Int = ThreadPool.availableCores) throws {
        self.file = file
        let cfg = try LlamaConfig(gguf: file)
        config = cfg
        pool = ThreadPool(threads: threads)

        func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix { try DecoderOps.matrix(file, name, rows: rows, cols: cols) }
        func vector(_ name: String, _ n: Int) throws -> [Float] { try DecoderOps.vector(file, name, n) }
        func optionalVector(_ name: String, _ n: Int) throws -> [Float]? { try DecoderOps.optionalVector(file, name, n) }
        let C = cfg.embedding, F = cfg.feedForward, Q = cfg.qDim, KV = cfg.kvDim
        tokenEmbedding = try matrix("token_embd.weight", rows: cfg.vocabulary, cols: C)
        blocks = try (0..<cfg.layers).map { i in
            let p = "blk.\(i)."
            return LlamaBlock(
                attnNorm: try vector(p + "attn_norm.weight", C),
                wq: try matrix(p + "attn_q.weight", rows: Q, cols: C),
                wk: try matrix(p + "attn_k.weight", rows: KV, cols: C),
                wv: try matrix(p + "attn_v.weight", rows: KV, cols: C),
                bq: try optionalVector(p + "attn_q.bias", Q),
                bk: try optionalVector(p + "attn_k.bias", KV),
                bv: try optionalVector(p + "attn_v.bias", KV),
                wo: try matrix(p + "attn_output.weight", rows: C, cols: Q),
                ffnNorm: try vector(p + "ffn_norm.weight", C),
                gate: try matrix(p + "ffn_gate.weight", rows: F, cols: C),
                up: try matrix(p + "ffn_up.weight", rows: F, cols: C),
                down: try matrix(p + "ffn_down.weight", rows: C, cols: F))
        }
        outputNorm = try vector("output_norm.weight", C)
        output = file.tensor("output.weight") != nil ? try matrix("output.weight", rows: cfg.vocabulary, cols: C) : tokenEmbedding
        // rope_freqs.weight [ropeDim/2]: Llama 3.1+ long-context frequency factors.
        let ropeFactors = try optionalVector("rope_freqs.weight", cfg.ropeDim / 2)
        invFreq = DecoderOps.ropeFrequencies(base: cfg.ropeBase, ropeDim: cfg.ropeDim, scale: cfg.ropeScale, factors: ropeFactors)
    }

    public var vocabularySize: Int { config.vocabulary }
    public var contextLength: Int { config.contextLength }

    public func makeCache(maxTokens: Int?) -> KVCache {
        KVCache(layers: config.layers, kvDim: config.kvDim, maxTokens: min(maxTokens ?? config.contextLength, config.contextLength),
                half: precision == .fast)
    }

    /// Runs `tokens` at positions cache.count…, appends their keys and values to the cache, and
    /// returns logits: for every token ([T × V]) when `allLogits`, else for the last one ([V]).
    public func forward(_ tokens: [Int], cache: KVCache, allLogits: Bool = false) throws -> [Float] {
        let T = tokens.count
        guard T > 0 else { return [] }
        guard cache.count + T <= cache.maxTokens else {
            throw ModelError.contextFull(used: cache.count, adding: T, limit: cache.maxTokens)
        }
        for t in tokens where t < 0 || t >= config.vocabulary { throw ModelError.badToken(t, vocabularySize: config.vocabulary) }
        let cfg = config
        let C = cfg.embedding, F = cfg.feedForward, Q = cfg.qDim, KV = cfg.kvDim, D = cfg.headDim
        let start = cache.count
        cache.reserve(start + T)

        let x = Buffer(T * C)        // residual stream      [T × C]
        let xn = Buffer(T * C)       // normalized           [T × C]
        let q = Buffer(T * Q)        // queries              [T × H·D]
        let k = Buffer(T * KV)       // keys                 [T × Hkv·D]
        let v = Buffer(T * KV)       // values               [T × Hkv·D]
        let att = Buffer(T * Q)      // attention output     [T × H·D]
        let g = Buffer(T * F)        // gate                 [T × F]
        let u = Buffer(T * F)        // up                   [T × F]
        defer { [x, xn, q, k, v, att, g, u].forEach { $0.free() } }

        for (t, id) in tokens.enumerated() { tokenEmbedding.dequantizeRow(id, into: x.p + t * C) }
        let angles = DecoderOps.ropeAngles(invFreq: invFreq, positions: start..<(start + T))

        for (l, b) in blocks.enumerated() {
            DecoderOps.rmsNorm(x.p, b.attnNorm, xn.p, rows: T, width: C, eps: cfg.normEps, pool: pool)
            MatMul.forward(xn.p, [(b.wq, q.p), (b.wk, k.p), (b.wv, v.p)], tokens: T, pool: pool, precision: precision)
            if let a = adapter {
                a.apply(layer: l, target: .q, x: xn.p, y: q.p, tokens: T)
                a.apply(layer: l, target: .k, x: xn.p, y: k.p, tokens: T)
                a.apply(layer: l, target: .v, x: xn.p, y: v.p, tokens: T)
            }
            if let bq = b.bq { DecoderOps.addBias(q.p, bq, rows: T) }
            if let bk = b.bk { DecoderOps.addBias(k.p, bk, rows: T) }
            if let bv = b.bv { DecoderOps.addBias(v.p, bv, rows: T) }
            angles.withUnsafeBufferPointer { a in
                pool.parallelFor(T, minChunk: 32) { r in
                    for t in r {
                        let at = a.baseAddress! + t * 2 * invFreq.count
                        DecoderOps.rope(q.p + t * Q, heads: cfg.heads, headDim: D, angles: at, half: invFreq.count, neox: cfg.ropeNeoX)
                        DecoderOps.rope(k.p + t * KV, heads: cfg.kvHeads, headDim: D, angles: at, half: invFreq.count, neox: cfg.ropeNeoX)
                    }
                }
            }
            cache.store(layer: l, start: start, keys: k.p, values: v.p, count: T)
            DecoderOps.attention(q: q.p, out: att.p, cache: cache, layer: l, tokens: T, start: start,
                                 heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: D, scale: 1 / Float(D).squareRoot(), pool: pool)
            // The block outputs add straight into the residual stream.
            MatMul.forward(att.p, b.wo, x.p, tokens: T, pool: pool, precision: precision, accumulate: true)
            adapter?.apply(layer: l, target: .o, x: att.p, y: x.p, tokens: T)

            DecoderOps.rmsNorm(x.p, b.ffnNorm, xn.p, rows: T, width: C, eps: cfg.normEps, pool: pool)
            MatMul.forward(xn.p, [(b.gate, g.p), (b.up, u.p)], tokens: T, pool: pool, precision: precision)
            if let a = adapter {
                a.apply(layer: l, target: .gate, x: xn.p, y: g.p, tokens: T)
                a.apply(layer: l, target: .up, x: xn.p, y: u.p, tokens: T)
            }
            pool.parallelFor(T, minChunk: 16) { r in DecoderOps.swiglu(g.p + r.lowerBound * F, u.p + r.lowerBound * F, r.count * F) }
            MatMul.forward(g.p, b.down, x.p, tokens: T, pool: pool, precision: precision, accumulate: true)
            adapter?.apply(layer: l, target: .down, x: g.p, y: x.p, tokens: T)
        }
        cache.count = start + T

        let rows = allLogits ? T : 1
        let last = x.p + (T - rows) * C
        DecoderOps.rmsNorm(last, outputNorm, xn.p, rows: rows, width: C, eps: cfg.normEps)
        var logits = [Float](repeating: 0, count: rows * cfg.vocabulary)
        logits.withUnsafeMutableBufferPointer { MatMul.forward(xn.p, output, $0.baseAddress!, tokens: rows, pool: pool, precision: precision) }
        return logits
    }
}

/// A scratch buffer of floats, freed explicitly.
struct Buffer {
    let p: UnsafeMutablePointer<Float>
    init(_ n: Int) {
        p = .allocate(capacity: max(1, n))
        p.initialize(repeating: 0, count: max(1, n))
    }
    func free() { p.deallocate() }
}
