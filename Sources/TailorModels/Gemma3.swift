// Gemma 3 (Gemma Team 2025): a Llama-like decoder with GeGLU, RMS-normalized queries and keys,
// norms after attention and after the feed-forward, embeddings scaled by √C, and sliding-window
// attention on five of every six layers (global layers use a longer RoPE base).
// GGUF conversion already adds Gemma's +1 to every norm weight.
//
// Shapes: T tokens, C width, H query heads, Hkv key/value heads, D head width, F feed-forward.
import Foundation
import TailorFormats
import TailorKernels

public struct Gemma3Config: Sendable {
    public var layers: Int           // gemma3.block_count
    public var embedding: Int        // gemma3.embedding_length           C
    public var feedForward: Int      // gemma3.feed_forward_length        F
    public var heads: Int            // gemma3.attention.head_count       H
    public var kvHeads: Int          // gemma3.attention.head_count_kv    Hkv
    public var headDim: Int          // gemma3.attention.key_length       D
    public var slidingWindow: Int    // gemma3.attention.sliding_window
    public var ropeBaseGlobal: Float // gemma3.rope.freq_base
    public var ropeScaleGlobal: Float // 1 / gemma3.rope.scaling.factor
    public var ropeBaseLocal: Float = 10_000
    public var normEps: Float        // gemma3.attention.layer_norm_rms_epsilon
    public var contextLength: Int    // gemma3.context_length
    public var vocabulary: Int
    /// Every `swaPattern`-th layer attends globally; the others use the sliding window.
    public var swaPattern = 6

    init(gguf g: GGUFFile) throws {
        func int(_ k: String) throws -> Int { try g.int("gemma3.\(k)") }
        layers = try int("block_count")
        embedding = try int("embedding_length")
        feedForward = try int("feed_forward_length")
        heads = try int("attention.head_count")
        kvHeads = (try? int("attention.head_count_kv")) ?? heads
        headDim = (try? int("attention.key_length")) ?? embedding / heads
        guard layers > 0, layers < 1000, heads > 0, kvHeads > 0, heads % kvHeads == 0, headDim > 0, headDim % 2 == 0 else {
            throw ModelError.badHyperParameter(key: "gemma3.attention.head_count", value: "\(heads)/\(kvHeads)", reason: "heads must be a positive multiple of key/value heads")
        }
        slidingWindow = (try? int("attention.sliding_window")) ?? 512
        ropeBaseGlobal = Float((try? g.double("gemma3.rope.freq_base")) ?? 1_000_000)
        ropeScaleGlobal = (try? g.double("gemma3.rope.scaling.factor")).map { Float(1 / $0) } ?? 1
        normEps = Float((try? g.double("gemma3.attention.layer_norm_rms_epsilon")) ?? 1e-6)
        contextLength = (try? int("context_length")) ?? 32768
        guard let emb = g.tensor("token_embd.weight"), emb.shape.count == 2 else { throw ModelError.format(.missingTensor("token_embd.weight")) }
        vocabulary = emb.shape[1]
    }

    public func isGlobal(_ layer: Int) -> Bool { (layer + 1) % swaPattern == 0 }
}

struct Gemma3Block {
    let attnNorm: [Float]      // blk.N.attn_norm.weight            [C]
    let wq: WeightMatrix       // blk.N.attn_q.weight               [H·D × C]
    let wk: WeightMatrix       // blk.N.attn_k.weight               [Hkv·D × C]
    let wv: WeightMatrix       // blk.N.attn_v.weight               [Hkv·D × C]
    let qNorm: [Float]         // blk.N.attn_q_norm.weight          [D]
    let kNorm: [Float]         // blk.N.attn_k_norm.weight          [D]
    let wo: WeightMatrix       // blk.N.attn_output.weight          [C × H·D]
    let postAttnNorm: [Float]  // blk.N.post_attention_norm.weight  [C]
    let ffnNorm: [Float]       // blk.N.ffn_norm.weight             [C]
    let gate: WeightMatrix     // blk.N.ffn_gate.weight             [F × C]
    let up: WeightMatrix       // blk.N.ffn_up.weight               [F × C]
    let down: WeightMatrix     // blk.N.ffn_down.weight             [C × F]
    let postFFNNorm: [Float]   // blk.N.post_ffw_norm.weight        [C]
}

// @unchecked Sendable: every property is immutable after init; the weights point into the
// read-only memory map, which `file` keeps alive.
public final class Gemma3Model: CausalLM, @unchecked Sendable {
    public let config: Gemma3Config
    public let file: GGUFFile
    let tokenEmbedding: WeightMatrix   // token_embd.weight  [V × C], also the output projection
    let blocks: [Gemma3Block]
    let outputNorm: [Float]            // output_norm.weight [C]
    let invFreqGlobal: [Float]
    let invFreqLocal: [Float]
    public let pool: ThreadPool

    public var vocabularySize: Int { config.vocabulary }
    public var contextLength: Int { config.contextLength }
    public var layerCount: Int { config.layers }
    public var kvWidth: Int { config.kvHeads * config.headDim }
    /// LoRA adapters are applied to Llama-family models only.
    public var adapterShapes: [LoRATarget: (inputs: Int, outputs: Int)]? { nil }

    /// `pool`: the compute scheduler (default: the process's, over `threads` threads).
    public init(file: GGUFFile, threads: Int = ThreadPool.availableCores, pool: ThreadPool? = nil) throws {
        self.file = file
        let cfg = try Gemma3Config(gguf: file)
        config = cfg
        self.pool = pool ?? ThreadPool.shared(threads: threads)
        let C = cfg.embedding, F = cfg.feedForward, D = cfg.headDim, Q = cfg.heads * D, KV = cfg.kvHeads * D
        let pack = self.pool
        func m(_ n: String, _ r: Int, _ c: Int) throws -> WeightMatrix { try DecoderOps.matrix(file, n, rows: r, cols: c, pack: pack) }
        func v(_ n: String, _ k: Int) throws -> [Float] { try DecoderOps.vector(file, n, k) }
        tokenEmbedding = try m("token_embd.weight", cfg.vocabulary, C)
        blocks = try (0..<cfg.layers).map { i in
            let p = "blk.\(i)."
            return Gemma3Block(attnNorm: try v(p + "attn_norm.weight", C),
                               wq: try m(p + "attn_q.weight", Q, C), wk: try m(p + "attn_k.weight", KV, C),
                               wv: try m(p + "attn_v.weight", KV, C),
                               qNorm: try v(p + "attn_q_norm.weight", D), kNorm: try v(p + "attn_k_norm.weight", D),
                               wo: try m(p + "attn_output.weight", C, Q),
                               postAttnNorm: try v(p + "post_attention_norm.weight", C),
                               ffnNorm: try v(p + "ffn_norm.weight", C),
                               gate: try m(p + "ffn_gate.weight", F, C), up: try m(p + "ffn_up.weight", F, C),
                               down: try m(p + "ffn_down.weight", C, F),
                               postFFNNorm: try v(p + "post_ffw_norm.weight", C))
        }
        outputNorm = try v("output_norm.weight", C)
        invFreqGlobal = DecoderOps.ropeFrequencies(base: cfg.ropeBaseGlobal, ropeDim: D, scale: cfg.ropeScaleGlobal)
        invFreqLocal = DecoderOps.ropeFrequencies(base: cfg.ropeBaseLocal, ropeDim: D)
    }

    public func forward(_ steps: [DecoderStep]) throws -> [[Float]] {
        guard !steps.contains(where: { !$0.session.adapters.isEmpty }) else {
            throw ModelError.badAdapter("LoRA adapters apply to Llama-family models (llama, qwen2, mistral); this model is gemma3")
        }
        let batch = try DecoderBatch(steps, vocabulary: config.vocabulary)
        let cfg = config
        let T = batch.rows
        let C = cfg.embedding, F = cfg.feedForward, D = cfg.headDim, H = cfg.heads, Hkv = cfg.kvHeads
        let Q = H * D, KV = Hkv * D

        let x = Buffer(T * C), xn = Buffer(T * C)         // residual, normalized  [T × C]
        let q = Buffer(T * Q), att = Buffer(T * Q)        // queries, attention    [T × H·D]
        let k = Buffer(T * KV), v = Buffer(T * KV)        // keys, values          [T × Hkv·D]
        let proj = Buffer(T * C), normed = Buffer(T * C)  // block outputs         [T × C]
        let g = Buffer(T * F), u = Buffer(T * F)          // gate, up              [T × F]
        defer { [x, xn, q, att, k, v, proj, normed, g, u].forEach { $0.free() } }

        let embScale = Float(C).squareRoot()
        batch.embed(into: x.p, width: C) { id, row in
            tokenEmbedding.dequantizeRow(id, into: row)
            for i in 0..<C { row[i] *= embScale }
        }
        // cos/sin of every position, once per forward pass for each of the two rope bases.
        let anglesGlobal = batch.ropeAngles(invFreqGlobal)
        let anglesLocal = batch.ropeAngles(invFreqLocal)
        for (l, b) in blocks.enumerated() {
            let global = cfg.isGlobal(l)
            let invFreq = global ? invFreqGlobal : invFreqLocal
            DecoderOps.rmsNorm(x.p, b.attnNorm, xn.p, rows: T, width: C, eps: cfg.normEps, pool: pool)
            batch.matmul(xn.p, [(b.wq, q.p), (b.wk, k.p), (b.wv, v.p)], pool: pool)
            DecoderOps.rmsNorm(q.p, b.qNorm, q.p, rows: T * H, width: D, eps: cfg.normEps, pool: pool)
            DecoderOps.rmsNorm(k.p, b.kNorm, k.p, rows: T * Hkv, width: D, eps: cfg.normEps, pool: pool)
            (global ? anglesGlobal : anglesLocal).withUnsafeBufferPointer { a in
                pool.parallelFor(T, minChunk: 32) { r in
                    for t in r {
                        let at = a.baseAddress! + t * 2 * invFreq.count
                        DecoderOps.rope(q.p + t * Q, heads: H, headDim: D, angles: at, half: invFreq.count, neox: true)
                        DecoderOps.rope(k.p + t * KV, heads: Hkv, headDim: D, angles: at, half: invFreq.count, neox: true)
                    }
                }
            }
            batch.store(layer: l, keys: k.p, values: v.p, width: KV)
            batch.attention(q: q.p, out: att.p, layer: l, heads: H, kvHeads: Hkv, headDim: D, scale: 1 / Float(D).squareRoot(),
                            window: global ? nil : cfg.slidingWindow, pool: pool)
            batch.matmul(att.p, [(b.wo, proj.p)], pool: pool)
            DecoderOps.rmsNorm(proj.p, b.postAttnNorm, normed.p, rows: T, width: C, eps: cfg.normEps, pool: pool)
            VectorMath.add(normed.p, into: x.p, T * C)

            DecoderOps.rmsNorm(x.p, b.ffnNorm, xn.p, rows: T, width: C, eps: cfg.normEps, pool: pool)
            batch.matmul(xn.p, [(b.gate, g.p), (b.up, u.p)], pool: pool)
            pool.parallelFor(T, minChunk: 16) { r in DecoderOps.geglu(g.p + r.lowerBound * F, u.p + r.lowerBound * F, r.count * F) }
            batch.matmul(g.p, [(b.down, proj.p)], pool: pool)
            DecoderOps.rmsNorm(proj.p, b.postFFNNorm, normed.p, rows: T, width: C, eps: cfg.normEps, pool: pool)
            VectorMath.add(normed.p, into: x.p, T * C)
        }
        batch.commit()
        return batch.logits(x: x.p, width: C, vocabulary: cfg.vocabulary, pool: pool,
                            norm: { DecoderOps.rmsNorm($0, outputNorm, $1, rows: $2, width: C, eps: cfg.normEps, pool: pool) },
                            output: tokenEmbedding)
    }
}
