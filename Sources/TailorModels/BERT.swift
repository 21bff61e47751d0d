// The BERT encoder (Devlin et al. 2019) for sentence embeddings and classification:
// embeddings (word + position + token type) → LayerNorm, then post-LayerNorm blocks of
// self-attention and a GELU feed-forward. Weights come from safetensors in Hugging Face's
// naming, each name written next to its property.
//
// Shapes: B = texts in the batch, L = padded length, N = B·L rows, H = hidden, A = heads,
// D = H/A head width, I = intermediate width.
import Foundation
import CBLAS
import TailorFormats
import TailorKernels
import TailorTokenizers

public struct BertConfig: Sendable, Codable {
    public var hidden: Int          // hidden_size                H
    public var layers: Int          // num_hidden_layers
    public var heads: Int           // num_attention_heads        A
    public var intermediate: Int    // intermediate_size          I
    public var maxPositions: Int    // max_position_embeddings
    public var typeVocabulary: Int  // type_vocab_size
    public var vocabulary: Int      // vocab_size
    public var eps: Float           // layer_norm_eps
    public var activation: String   // hidden_act
    /// RoBERTa numbers positions from padding_idx + 1; BERT from 0.
    public var positionOffset: Int  // model_type roberta: pad_token_id + 1

    public init(json: JSONValue) throws {
        func int(_ k: String) throws -> Int {
            guard let v = json[k]?.int, v > 0 else { throw ModelError.badHyperParameter(key: k, value: json[k]?.serialized() ?? "missing", reason: "config.json needs a positive integer") }
            return v
        }
        hidden = try int("hidden_size"); layers = try int("num_hidden_layers"); heads = try int("num_attention_heads")
        intermediate = try int("intermediate_size"); maxPositions = try int("max_position_embeddings")
        typeVocabulary = json["type_vocab_size"]?.int ?? 2; vocabulary = try int("vocab_size")
        eps = Float(json["layer_norm_eps"]?.double ?? 1e-12)
        activation = json["hidden_act"]?.string ?? "gelu"
        let type = json["model_type"]?.string ?? "bert"
        positionOffset = ["roberta", "xlm-roberta", "camembert"].contains(type) ? (json["pad_token_id"]?.int ?? 1) + 1 : 0
        guard hidden % heads == 0 else { throw ModelError.badHyperParameter(key: "num_attention_heads", value: "\(heads)", reason: "must divide hidden_size \(hidden)") }
    }
}

struct BertLayer {
    // encoder.layer.N.attention.self.{query,key,value}.{weight,bias}, stacked into one
    // [3H × H] matrix and [3H] bias so one GEMM computes Q, K and V.
    let wqkv: [Float], bqkv: [Float]
    let wo: [Float], bo: [Float]     // encoder.layer.N.attention.output.dense.{weight,bias}  [H × H]
    let ln1g: [Float], ln1b: [Float] // encoder.layer.N.attention.output.LayerNorm.{weight,bias}
    let wi: [Float], bi: [Float]     // encoder.layer.N.intermediate.dense.{weight,bias}      [I × H]
    let wo2: [Float], bo2: [Float]   // encoder.layer.N.output.dense.{weight,bias}            [H × I]
    let ln2g: [Float], ln2b: [Float] // encoder.layer.N.output.LayerNorm.{weight,bias}
    /// wqkv, wo, wi, wo2 packed for the fp16 products (`EncoderPrecision.fp16`), else nil.
    var half: HalfLayer? = nil
}

/// The four weight matrices of a layer packed for `HalfGEMM`.
struct HalfLayer {
    let qkv: HalfWeights, o: HalfWeights, i: HalfWeights, o2: HalfWeights
    init(_ l: BertLayer, hidden H: Int, intermediate I: Int) {
        func pack(_ w: [Float], _ n: Int, _ k: Int) -> HalfWeights { w.withUnsafeBufferPointer { HalfWeights($0.baseAddress!, outputs: n, inputs: k) } }
        qkv = pack(l.wqkv, 3 * H, H); o = pack(l.wo, H, H); i = pack(l.wi, I, H); o2 = pack(l.wo2, H, I)
    }
}

/// How the encoder's linear layers multiply. `.fp16` (CPUs with AVX512-FP16 only) rounds their
/// inputs and weights to fp16 and sums at most `HalfGEMM.flushInterval` products in fp16 before
/// adding them up in fp32: twice the arithmetic rate, embeddings within cosine 0.99999 of fp32.
/// Attention, LayerNorm, GELU and pooling stay fp32 either way.
public enum EncoderPrecision: String, Sendable, CaseIterable {
    case fp32, fp16

    /// fp16 where available, unless the environment sets TAILOR_ENCODER_PRECISION=fp32.
    public static var preferred: EncoderPrecision {
        if let v = ProcessInfo.processInfo.environment["TAILOR_ENCODER_PRECISION"], let p = EncoderPrecision(rawValue: v.lowercased()) {
            return p == .fp16 && !fp16Available ? .fp32 : p
        }
        return fp16Available ? .fp16 : .fp32
    }
    public static var fp16Available: Bool { HalfGEMM.isAvailable }
}

// @unchecked Sendable: every property is immutable after init (weights, the fp16 copies packed at
// load, the shared compute scheduler).
public final class BertModel: @unchecked Sendable {
    public let config: BertConfig
    let wordEmbeddings: [Float]      // embeddings.word_embeddings.weight        [V × H]
    let positionEmbeddings: [Float]  // embeddings.position_embeddings.weight    [P × H]
    let typeEmbeddings: [Float]      // embeddings.token_type_embeddings.weight  [T × H]
    let embLnG: [Float], embLnB: [Float]  // embeddings.LayerNorm.{weight,bias}  [H]
    let layers: [BertLayer]
    public let pool: ThreadPool
    /// The linear layers' arithmetic, chosen at load (fp16 weights are packed then).
    public let precision: EncoderPrecision

    /// Loads `config.json` and `model.safetensors` from a Hugging Face model directory.
    public convenience init(directory: String, threads: Int = ThreadPool.availableCores,
                            precision: EncoderPrecision = .preferred) throws {
        let cfgPath = directory + "/config.json"
        guard let text = try? String(contentsOfFile: cfgPath, encoding: .utf8) else { throw ModelError.modelNotFound(cfgPath) }
        let config = try BertConfig(json: JSONValue.parse(text))
        let st: SafetensorsFile
        do { st = try SafetensorsFile(path: directory + "/model.safetensors") } catch { throw ModelError.format(error) }
        // Checkpoints saved from the bare model have bare names; task models add "bert." or "roberta.".
        let prefix = ["", "bert.", "roberta."].first { st.tensor($0 + "embeddings.word_embeddings.weight") != nil } ?? ""
        try self.init(config: config, threads: threads, precision: precision) { name, shape in
            let full = prefix + name
            guard let info = st.tensor(full) else { throw ModelError.format(.missingTensor(full)) }
            guard info.shape == shape else { throw ModelError.tensorShape(name: full, expected: shape, found: info.shape) }
            do { return try st.floats(full) } catch let e as FormatError { throw ModelError.format(e) }
        }
    }

    /// Builds the model from `tensor(name, shape)`, which returns each weight (Hugging Face name,
    /// row-major shape) as fp32.
    init(config: BertConfig, threads: Int, precision: EncoderPrecision = .preferred,
         tensor t: (String, [Int]) throws -> [Float]) throws {
        self.config = config
        self.precision = precision == .fp16 && !EncoderPrecision.fp16Available ? .fp32 : precision
        let H = config.hidden, I = config.intermediate
        wordEmbeddings = try t("embeddings.word_embeddings.weight", [config.vocabulary, H])
        positionEmbeddings = try t("embeddings.position_embeddings.weight", [config.maxPositions, H])
        typeEmbeddings = try t("embeddings.token_type_embeddings.weight", [config.typeVocabulary, H])
        embLnG = try t("embeddings.LayerNorm.weight", [H]); embLnB = try t("embeddings.LayerNorm.bias", [H])
        let p16 = self.precision == .fp16
        layers = try (0..<config.layers).map { i in
            let p = "encoder.layer.\(i)."
            let qkv = ["query", "key", "value"]
            return BertLayer(
                wqkv: try qkv.flatMap { try t(p + "attention.self.\($0).weight", [H, H]) },
                bqkv: try qkv.flatMap { try t(p + "attention.self.\($0).bias", [H]) },
                wo: try t(p + "attention.output.dense.weight", [H, H]), bo: try t(p + "attention.output.dense.bias", [H]),
                ln1g: try t(p + "attention.output.LayerNorm.weight", [H]), ln1b: try t(p + "attention.output.LayerNorm.bias", [H]),
                wi: try t(p + "intermediate.dense.weight", [I, H]), bi: try t(p + "intermediate.dense.bias", [I]),
                wo2: try t(p + "output.dense.weight", [H, I]), bo2: try t(p + "output.dense.bias", [H]),
                ln2g: try t(p + "output.LayerNorm.weight", [H]), ln2b: try t(p + "output.LayerNorm.bias", [H]))
        }.map { l in
            var l = l
            if p16 { l.half = HalfLayer(l, hidden: H, intermediate: I) }
            return l
        }
        pool = ThreadPool.shared(threads: threads)
    }

    /// Hidden states of the last layer for a batch, padded to the longest input.
    /// Returns [B × L × H] and L; rows past an input's length are padding.
    ///
    /// With at least as many texts as threads, the batch is cut into one group of texts per
    /// thread (contiguous, balanced by padded tokens) and each thread runs the whole layer stack
    /// for its group with single-threaded GEMMs: no barrier between operations, and each group
    /// padded only to its own longest text. Fewer texts (a query) or groups that cannot be
    /// balanced split every operation's rows across the threads instead.
    public func forward(_ batch: [EncodedText]) throws -> (hidden: [Float], length: Int) {
        let B = batch.count
        let L = batch.map(\.count).max() ?? 0
        guard B > 0, L > 0 else { return ([], 0) }
        try validate(batch)
        let H = config.hidden
        var out = [Float](repeating: 0, count: B * L * H)
        let groups = Self.groups(batch.map(\.count), parts: pool.threads)
        out.withUnsafeMutableBufferPointer { op in
            let O = op.baseAddress!
            if groups.count > 1 {
                pool.dispatch(groups.count) { g in
                    let r = groups[g]
                    encode(batch[r], into: O + r.lowerBound * L * H, stride: L, exec: .serial)
                }
            } else {
                encode(batch[...], into: O, stride: L, exec: .parallel(pool))
            }
        }
        return (out, L)
    }

    /// Throws if a text is longer than the position table or holds an id outside the vocabulary.
    func validate(_ batch: [EncodedText]) throws {
        for e in batch {
            guard e.count + config.positionOffset <= config.maxPositions else {
                throw ModelError.contextFull(used: 0, adding: e.count, limit: config.maxPositions)
            }
            for id in e.ids where id < 0 || id >= config.vocabulary {
                throw ModelError.badToken(id, vocabularySize: config.vocabulary)
            }
        }
    }

    /// Last-layer hidden states of texts already validated, padded to their longest ([B × L × H]),
    /// with every operation run as `exec` says (`.serial`: on the calling thread alone).
    func hiddenStates(_ batch: [EncodedText], exec: Exec) -> (values: [Float], length: Int) {
        let L = batch.map(\.count).max() ?? 0
        guard L > 0 else { return ([], 0) }
        var out = [Float](repeating: 0, count: batch.count * L * config.hidden)
        out.withUnsafeMutableBufferPointer { encode(batch[...], into: $0.baseAddress!, stride: L, exec: exec) }
        return (out, L)
    }

    /// Cuts texts of these lengths into at most `parts` contiguous groups of about equal padded
    /// size (texts × longest). One group when there are fewer texts than parts or the best cut
    /// leaves one group more than 25% above the mean.
    static func groups(_ lengths: [Int], parts: Int) -> [Range<Int>] {
        let B = lengths.count
        guard parts > 1, B >= parts else { return [0..<B] }
        var result: [Range<Int>] = []
        var start = 0, remaining = lengths.reduce(0, +)
        for p in 0..<(parts - 1) {
            let target = Double(remaining) / Double(parts - p)
            var end = start, used = 0
            // At least one text per group; stop where the group is closest to its share.
            while end < B - (parts - p - 1) {
                let next = used + lengths[end]
                if end > start && abs(Double(next) - target) > abs(Double(used) - target) { break }
                used = next; end += 1
            }
            result.append(start..<end)
            start = end; remaining -= used
        }
        result.append(start..<B)
        let costs = result.map { r in Double(r.count * (lengths[r].max() ?? 0)) }
        let mean = costs.reduce(0, +) / Double(costs.count)
        guard mean > 0, costs.max()! <= 1.25 * mean else { return [0..<B] }
        return result
    }

    /// How one forward pass spreads its operations: over the pool's threads, or all on the
    /// calling thread (one group of texts per thread).
    enum Exec {
        case serial
        case parallel(ThreadPool)

        func rows(_ n: Int, minChunk: Int, _ body: (Range<Int>) -> Void) {
            switch self {
            case .serial: if n > 0 { body(0..<n) }
            case .parallel(let pool): pool.parallelFor(n, minChunk: minChunk, body)
            }
        }

        func jobs(_ n: Int, _ body: (Int) -> Void) {
            switch self {
            case .serial: for j in 0..<n { body(j) }
            case .parallel(let pool): pool.dispatch(n, body)
            }
        }
    }

    /// Runs the embeddings and every layer for `texts`, padded to their own longest, and writes
    /// text b's rows at `out + b·stride·H`.
    func encode(_ texts: ArraySlice<EncodedText>, into out: UnsafeMutablePointer<Float>, stride: Int, exec: Exec) {
        let B = texts.count, L = texts.map(\.count).max() ?? 0
        let H = config.hidden, I = config.intermediate, A = config.heads, D = H / A, N = B * L
        var x = [Float](repeating: 0, count: N * H)          // [N × H]
        for (b, e) in texts.enumerated() {
            for (i, id) in e.ids.enumerated() {
                let tt = min(max(0, e.typeIDs[i]), config.typeVocabulary - 1)
                let row = (b * L + i) * H, w = id * H, p = (i + config.positionOffset) * H, t = tt * H
                for h in 0..<H { x[row + h] = wordEmbeddings[w + h] + positionEmbeddings[p + h] + typeEmbeddings[t + h] }
            }
        }
        let lengths = texts.map(\.count)
        var qkv = [Float](repeating: 0, count: N * 3 * H)    // [N × 3H]: Q | K | V
        var ctx = [Float](repeating: 0, count: N * H)
        var inter = [Float](repeating: 0, count: N * I)
        x.withUnsafeMutableBufferPointer { xb in qkv.withUnsafeMutableBufferPointer { qb in
        ctx.withUnsafeMutableBufferPointer { cb in inter.withUnsafeMutableBufferPointer { ib in
            let X = xb.baseAddress!, QKV = qb.baseAddress!, C = cb.baseAddress!, IN = ib.baseAddress!
            layerNorm(X, embLnG, embLnB, rows: N, exec: exec)
            for layer in layers {
                linear(X, layer.wqkv, layer.half?.qkv, layer.bqkv, QKV, rows: N, inDim: H, outDim: 3 * H, exec: exec)
                attention(QKV, C, batch: B, length: L, lengths: lengths, heads: A, headDim: D, exec: exec)
                // x ← x + ctx·Woᵀ + bo, the residual sum straight into x.
                linear(C, layer.wo, layer.half?.o, layer.bo, X, rows: N, inDim: H, outDim: H, accumulate: true, exec: exec)
                layerNorm(X, layer.ln1g, layer.ln1b, rows: N, exec: exec)
                linear(X, layer.wi, layer.half?.i, layer.bi, IN, rows: N, inDim: H, outDim: I, exec: exec)
                gelu(IN, count: N * I, exec: exec)
                linear(IN, layer.wo2, layer.half?.o2, layer.bo2, X, rows: N, inDim: I, outDim: H, accumulate: true, exec: exec)
                layerNorm(X, layer.ln2g, layer.ln2b, rows: N, exec: exec)
            }
            for b in 0..<B { (out + b * stride * H).update(from: X + b * L * H, count: L * H) }
        } } } }
    }

    /// y = x·Wᵀ + b (or y += x·Wᵀ + b with `accumulate`), rows split as `exec` says, in fp16 when
    /// the layer has packed weights `half` (rows it cannot take safely go to sgemm).
    /// x: [rows × inDim], W: [outDim × inDim].
    func linear(_ X: UnsafePointer<Float>, _ w: [Float], _ half: HalfWeights?, _ b: [Float], _ Y: UnsafeMutablePointer<Float>, rows: Int,
                inDim: Int, outDim: Int, accumulate: Bool = false, exec: Exec) {
        w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { bp in
            let W = wp.baseAddress!, Bias = bp.baseAddress!
            exec.rows(rows, minChunk: 32) { r in
                // y starts as the bias (plus what it held) and the product adds to it (β = 1: no
                // separate pass over y to scale or zero it).
                for i in r {
                    let y = Y + i * outDim
                    if accumulate { VectorMath.add(Bias, into: y, outDim) } else { y.update(from: Bias, count: outDim) }
                }
                func sgemm(_ r: Range<Int>) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(outDim), Int32(inDim), 1,
                                X + r.lowerBound * inDim, Int32(inDim), W, Int32(inDim), 1, Y + r.lowerBound * outDim, Int32(outDim))
                }
                if let half {
                    let x = X + r.lowerBound * inDim, y = Y + r.lowerBound * outDim, first = r.lowerBound
                    HalfGEMM.multiplyAdd(x, rows: r.count, half, into: y) { sub in sgemm((first + sub.lowerBound)..<(first + sub.upperBound)) }
                } else {
                    sgemm(r)
                }
            }
        } }
    }

    /// Per text and head: softmax(q·kᵀ/√D over the text's own tokens)·v. Padding keys are masked.
    /// qkv: [N × 3H] (Q, K, V side by side), out: [N × H].
    func attention(_ Q: UnsafePointer<Float>, _ O: UnsafeMutablePointer<Float>, batch B: Int, length L: Int,
                   lengths: [Int], heads A: Int, headDim D: Int, exec: Exec) {
        let H = A * D, S = 3 * H
        let scale = 1 / Float(D).squareRoot()
        let K = Q + H, V = Q + 2 * H
        let scratch = EncoderAttention.scratchCount(tokens: L, headDim: D)
        exec.jobs(B * A) { job in
            let b = job / A, h = job % A, n = lengths[b]
            let s = UnsafeMutablePointer<Float>.allocate(capacity: scratch)
            defer { s.deallocate() }
            let base = b * L * S + h * D, o = O + b * L * H + h * D
            EncoderAttention.head(q: Q + base, k: K + base, v: V + base, stride: S, out: o, outStride: H,
                                  tokens: n, headDim: D, scale: scale, scratch: s)
            for i in n..<L { (o + i * H).update(repeating: 0, count: D) }   // padding rows
        }
    }

    func layerNorm(_ X: UnsafeMutablePointer<Float>, _ g: [Float], _ b: [Float], rows: Int, exec: Exec) {
        let H = config.hidden, eps = config.eps
        g.withUnsafeBufferPointer { gp in b.withUnsafeBufferPointer { bp in
            exec.rows(rows, minChunk: 16) { rr in
                for r in rr { VectorMath.layerNorm(X + r * H, H, gain: gp.baseAddress!, bias: bp.baseAddress!, eps: eps) }
            }
        } }
    }

    /// GELU: the exact (erf) form as BERT's "gelu", or the tanh approximation the config names.
    func gelu(_ p: UnsafeMutablePointer<Float>, count: Int, exec: Exec) {
        let tanhForm = config.activation == "gelu_new" || config.activation == "gelu_pytorch_tanh"
        exec.rows(count, minChunk: 4096) { r in
            if !tanhForm { VectorMath.gelu(p + r.lowerBound, r.count); return }
            for i in r {
                let v = p[i]
                p[i] = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
            }
        }
    }
}
