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
// @unchecked Sendable: immutable weights (see WeightMatrix).
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

// @unchecked Sendable: every property is immutable after init; the weights point into the
// read-only memory map, which `file` keeps alive.
public final class LlamaModel: CausalLM, @unchecked Sendable {
    public let config: LlamaConfig
    public let file: GGUFFile
    public let tokenEmbedding: WeightMatrix   // token_embd.weight   [V × C]
    public let blocks: [LlamaBlock]
    public let outputNorm: [Float]            // output_norm.weight  [C]
    public let output: WeightMatrix           // output.weight       [V × C], or token_embd when tied
    public let invFreq: [Float]               // [ropeDim/2], rope_freqs folded in
    public let pool: ThreadPool

    /// `pool`: the compute scheduler (default: the process's, over `threads` threads).
    public init(file: GGUFFile, threads: Int = ThreadPool.availableCores, pool: ThreadPool? = nil) throws {
        self.file = file
        let cfg = try LlamaConfig(gguf: file)
        config = cfg
        self.pool = pool ?? ThreadPool.shared(threads: threads)

        // The products' matrices also get the packed layout of the fast batched kernels.
        let pack = self.pool
        func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix { try DecoderOps.matrix(file, name, rows: rows, cols: cols, pack: pack) }
        func vector(_ name: String, _ n: Int) throws -> [Float] { try DecoderOps.vector(file, name, n) }
        func optionalVector(_ name: String, _ n: Int) throws -> [Float]? { try DecoderOps.optionalVector(file, name, n) }
        let C = cfg.embedding, F = cfg.feedForward, Q = cfg.qDim, KV = cfg.kvDim
        let tied = file.tensor("output.weight") == nil
        // Looked up by row only, unless it is also the output projection.
        tokenEmbedding = try DecoderOps.matrix(file, "token_embd.weight", rows: cfg.vocabulary, cols: C, pack: tied ? pack : nil)
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
        output = tied ? tokenEmbedding : try matrix("output.weight", rows: cfg.vocabulary, cols: C)
        // rope_freqs.weight [ropeDim/2]: Llama 3.1+ long-context frequency factors.
        let ropeFactors = try optionalVector("rope_freqs.weight", cfg.ropeDim / 2)
        invFreq = DecoderOps.ropeFrequencies(base: cfg.ropeBase, ropeDim: cfg.ropeDim, scale: cfg.ropeScale, factors: ropeFactors)
    }

    public var vocabularySize: Int { config.vocabulary }
    public var contextLength: Int { config.contextLength }
    public var layerCount: Int { config.layers }
    public var kvWidth: Int { config.kvDim }
    public var adapterShapes: [LoRATarget: (inputs: Int, outputs: Int)]? { LoRAAdapter.shapes(config) }

    public func forward(_ steps: [DecoderStep]) throws -> [[Float]] {
        let batch = try DecoderBatch(steps, vocabulary: config.vocabulary)
        let cfg = config
        let T = batch.rows
        let C = cfg.embedding, F = cfg.feedForward, Q = cfg.qDim, KV = cfg.kvDim, D = cfg.headDim

        let x = Buffer(T * C)        // residual stream      [T × C]
        let xn = Buffer(T * C)       // normalized           [T × C]
        let q = Buffer(T * Q)        // queries              [T × H·D]
        let k = Buffer(T * KV)       // keys                 [T × Hkv·D]
        let v = Buffer(T * KV)       // values               [T × Hkv·D]
        let att = Buffer(T * Q)      // attention output     [T × H·D]
        let g = Buffer(T * F)        // gate                 [T × F]
        let u = Buffer(T * F)        // up                   [T × F]
        defer { [x, xn, q, k, v, att, g, u].forEach { $0.free() } }

        batch.embed(into: x.p, width: C) { id, row in tokenEmbedding.dequantizeRow(id, into: row) }
        let angles = batch.ropeAngles(invFreq)
        let adapters = batch.hasAdapters

        for (l, b) in blocks.enumerated() {
            DecoderOps.rmsNorm(x.p, b.attnNorm, xn.p, rows: T, width: C, eps: cfg.normEps, pool: pool)
            batch.matmul(xn.p, [(b.wq, q.p), (b.wk, k.p), (b.wv, v.p)], pool: pool)
            if adapters {
                batch.applyAdapters(layer: l, target: .q, x: xn.p, inputs: C, y: q.p, outputs: Q)
                batch.applyAdapters(layer: l, target: .k, x: xn.p, inputs: C, y: k.p, outputs: KV)
                batch.applyAdapters(layer: l, target: .v, x: xn.p, inputs: C, y: v.p, outputs: KV)
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
            batch.store(layer: l, keys: k.p, values: v.p, width: KV)
            batch.attention(q: q.p, out: att.p, layer: l, heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: D,
                            scale: 1 / Float(D).squareRoot(), pool: pool)
            // The block outputs add straight into the residual stream.
            batch.matmul(att.p, [(b.wo, x.p)], pool: pool, accumulate: true)
            if adapters { batch.applyAdapters(layer: l, target: .o, x: att.p, inputs: Q, y: x.p, outputs: C) }

            DecoderOps.rmsNorm(x.p, b.ffnNorm, xn.p, rows: T, width: C, eps: cfg.normEps, pool: pool)
            batch.matmul(xn.p, [(b.gate, g.p), (b.up, u.p)], pool: pool)
            if adapters {
                batch.applyAdapters(layer: l, target: .gate, x: xn.p, inputs: C, y: g.p, outputs: F)
                batch.applyAdapters(layer: l, target: .up, x: xn.p, inputs: C, y: u.p, outputs: F)
            }
            pool.parallelFor(T, minChunk: 16) { r in DecoderOps.swiglu(g.p + r.lowerBound * F, u.p + r.lowerBound * F, r.count * F) }
            batch.matmul(g.p, [(b.down, x.p)], pool: pool, accumulate: true)
            if adapters { batch.applyAdapters(layer: l, target: .down, x: g.p, inputs: F, y: x.p, outputs: C) }
        }
        batch.commit()
        return batch.logits(x: x.p, width: C, vocabulary: cfg.vocabulary, pool: pool,
                            norm: { DecoderOps.rmsNorm($0, outputNorm, $1, rows: $2, width: C, eps: cfg.normEps) }, output: output)
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
