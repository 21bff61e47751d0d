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
}

public final class BertModel: @unchecked Sendable {
    public let config: BertConfig
    let wordEmbeddings: [Float]      // embeddings.word_embeddings.weight        [V × H]
    let positionEmbeddings: [Float]  // embeddings.position_embeddings.weight    [P × H]
    let typeEmbeddings: [Float]      // embeddings.token_type_embeddings.weight  [T × H]
    let embLnG: [Float], embLnB: [Float]  // embeddings.LayerNorm.{weight,bias}  [H]
    let layers: [BertLayer]
    public var pool: ThreadPool

    /// Loads `config.json` and `model.safetensors` from a Hugging Face model directory.
    public convenience init(directory: String, threads: Int = ThreadPool.availableCores) throws {
        let cfgPath = directory + "/config.json"
        guard let text = try? String(contentsOfFile: cfgPath, encoding: .utf8) else { throw ModelError.modelNotFound(cfgPath) }
        let config = try BertConfig(json: JSONValue.parse(text))
        let st: SafetensorsFile
        do { st = try SafetensorsFile(path: directory + "/model.safetensors") } catch { throw ModelError.format(error) }
        // Checkpoints saved from the bare model have bare names; task models add "bert." or "roberta.".
        let prefix = ["", "bert.", "roberta."].first { st.tensor($0 + "embeddings.word_embeddings.weight") != nil } ?? ""
        try self.init(config: config, threads: threads) { name, shape in
            let full = prefix + name
            guard let info = st.tensor(full) else { throw ModelError.format(.missingTensor(full)) }
            guard info.shape == shape else { throw ModelError.tensorShape(name: full, expected: shape, found: info.shape) }
            do { return try st.floats(full) } catch let e as FormatError { throw ModelError.format(e) }
        }
    }

    /// Builds the model from `tensor(name, shape)`, which returns each weight (Hugging Face name,
    /// row-major shape) as fp32.
    init(config: BertConfig, threads: Int, tensor t: (String, [Int]) throws -> [Float]) throws {
        self.config = config
        let H = config.hidden, I = config.intermediate
        wordEmbeddings = try t("embeddings.word_embeddings.weight", [config.vocabulary, H])
        positionEmbeddings = try t("embeddings.position_embeddings.weight", [config.maxPositions, H])
        typeEmbeddings = try t("embeddings.token_type_embeddings.weight", [config.typeVocabulary, H])
        embLnG = try t("embeddings.LayerNorm.weight", [H]); embLnB = try t("embeddings.LayerNorm.bias", [H])
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
        }
        pool = ThreadPool(threads: threads)
    }

    /// Hidden states of the last layer for a batch, padded to the longest input.
    /// Returns [B × L × H] and L; rows past an input's length are padding.
    public func forward(_ batch: [EncodedText]) throws -> (hidden: [Float], length: Int) {
        let B = batch.count
        let L = batch.map(\.count).max() ?? 0
        guard B > 0, L > 0 else { return ([], 0) }
        guard L + config.positionOffset <= config.maxPositions else {
            throw ModelError.contextFull(used: 0, adding: L, limit: config.maxPositions)
        }
        let H = config.hidden, I = config.intermediate, A = config.heads, D = H / A, N = B * L
        var x = [Float](repeating: 0, count: N * H)          // [N × H]
        for (b, e) in batch.enumerated() {
            for (i, id) in e.ids.enumerated() {
                guard id >= 0, id < config.vocabulary else { throw ModelError.badToken(id, vocabularySize: config.vocabulary) }
                let tt = min(max(0, e.typeIDs[i]), config.typeVocabulary - 1)
                let row = (b * L + i) * H
                for h in 0..<H {
                    x[row + h] = wordEmbeddings[id * H + h] + positionEmbeddings[(i + config.positionOffset) * H + h] + typeEmbeddings[tt * H + h]
                }
            }
        }
        layerNorm(&x, embLnG, embLnB, rows: N)
        var qkv = [Float](repeating: 0, count: N * 3 * H)    // [N × 3H]: Q | K | V
        var ctx = [Float](repeating: 0, count: N * H), tmp = ctx
        var inter = [Float](repeating: 0, count: N * I)
        let lengths = batch.map(\.count)
        for layer in layers {
            linear(x, layer.wqkv, layer.bqkv, &qkv, rows: N, inDim: H, outDim: 3 * H)
            attention(qkv, &ctx, batch: B, length: L, lengths: lengths, heads: A, headDim: D)
            linear(ctx, layer.wo, layer.bo, &tmp, rows: N, inDim: H, outDim: H)
            addInPlace(&x, tmp)
            layerNorm(&x, layer.ln1g, layer.ln1b, rows: N)
            linear(x, layer.wi, layer.bi, &inter, rows: N, inDim: H, outDim: I)
            gelu(&inter)
            linear(inter, layer.wo2, layer.bo2, &tmp, rows: N, inDim: I, outDim: H)
            addInPlace(&x, tmp)
            layerNorm(&x, layer.ln2g, layer.ln2b, rows: N)
        }
        return (x, L)
    }

    /// y = x·Wᵀ + b, rows split across the pool's threads. x: [rows × inDim], W: [outDim × inDim].
    func linear(_ x: [Float], _ w: [Float], _ b: [Float], _ y: inout [Float], rows: Int, inDim: Int, outDim: Int) {
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            let X = xp.baseAddress!, W = wp.baseAddress!, Y = yp.baseAddress!
            b.withUnsafeBufferPointer { bp in
                let B = bp.baseAddress!
                pool.parallelFor(rows, minChunk: 32) { r in
                    // y starts as the bias and the product adds to it (β = 1: no separate pass
                    // over y to scale or zero it).
                    for i in r { (Y + i * outDim).update(from: B, count: outDim) }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(outDim), Int32(inDim), 1,
                                X + r.lowerBound * inDim, Int32(inDim), W, Int32(inDim), 1, Y + r.lowerBound * outDim, Int32(outDim))
                }
            }
        } } }
    }

    /// Per text and head: softmax(q·kᵀ/√D over the text's own tokens)·v. Padding keys are masked.
    /// qkv: [N × 3H] (Q, K, V side by side), out: [N × H].
    func attention(_ qkv: [Float], _ out: inout [Float], batch B: Int, length L: Int,
                   lengths: [Int], heads A: Int, headDim D: Int) {
        let H = A * D, S = 3 * H
        let scale = 1 / Float(D).squareRoot()
        qkv.withUnsafeBufferPointer { qp in out.withUnsafeMutableBufferPointer { op in
            let Q = qp.baseAddress!, K = Q + H, V = Q + 2 * H, O = op.baseAddress!
            pool.dispatch(B * A) { job in
                let b = job / A, h = job % A, n = lengths[b]
                let s = UnsafeMutablePointer<Float>.allocate(capacity: L * n)   // scores [L × n]
                defer { s.deallocate() }
                let base = b * L * S + h * D
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(n), Int32(D), scale,
                            Q + base, Int32(S), K + base, Int32(S), 0, s, Int32(n))
                for i in 0..<L { VectorMath.softmax(s + i * n, n) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(L), Int32(D), Int32(n), 1,
                            s, Int32(n), V + base, Int32(S), 0, O + b * L * H + h * D, Int32(H))
            }
        } }
    }

    func layerNorm(_ x: inout [Float], _ g: [Float], _ b: [Float], rows: Int) {
        let H = config.hidden, eps = config.eps
        x.withUnsafeMutableBufferPointer { xp in
            let base = xp.baseAddress!
            pool.parallelFor(rows, minChunk: 16) { rr in for r in rr {
                let p = base + r * H
                var mean: Float = 0
                for i in 0..<H { mean += p[i] }
                mean /= Float(H)
                var varSum: Float = 0
                for i in 0..<H { let d = p[i] - mean; varSum += d * d }
                let inv = 1 / (varSum / Float(H) + eps).squareRoot()
                for i in 0..<H { p[i] = (p[i] - mean) * inv * g[i] + b[i] }
            } }
        }
    }

    /// GELU, exact (erf) form as BERT's "gelu".
    func gelu(_ x: inout [Float]) {
        let tanhForm = config.activation == "gelu_new" || config.activation == "gelu_pytorch_tanh"
        x.withUnsafeMutableBufferPointer { xp in
            let p = xp.baseAddress!
            pool.parallelFor(xp.count, minChunk: 4096) { r in
                if !tanhForm { VectorMath.gelu(p + r.lowerBound, r.count); return }
                for i in r {
                    let v = p[i]
                    p[i] = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
                }
            }
        }
    }

    /// x += y, in parallel.
    func addInPlace(_ x: inout [Float], _ y: [Float]) {
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeBufferPointer { yp in
            let a = xp.baseAddress!, b = yp.baseAddress!
            pool.parallelFor(xp.count, minChunk: 8192) { r in for i in r { a[i] += b[i] } }
        } }
    }
}

