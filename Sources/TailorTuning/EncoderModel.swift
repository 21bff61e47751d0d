// Training passes for BERT-family encoders: the whole encoder in fp32 (all-MiniLM-L6-v2 is 22.7M
// parameters, 91 MB), every weight trainable or the embeddings and lower layers frozen, with two
// heads: Hugging Face's BertForSequenceClassification head (the pooler — dense + tanh on the
// [CLS] row — then dropout and a linear classifier), and sentence embeddings (mean pooling +
// L2 normalization) for contrastive retriever training.
//
// Batches are packed: the texts' tokens are concatenated (T rows in all, no padding), every
// product runs on the T rows, and attention runs per text and head over that text alone — the
// same result as padding with an attention mask, without computing the padding.
// Forward saves what the backward needs (llm.c style); the backward accumulates into
// `gradients`. Parameters and gradients are flat buffers, one range per Hugging Face tensor.
import Foundation
import CBLAS
import TailorFormats
import TailorKernels
import TailorModels
import TailorTokenizers

public struct EncoderTensor: Sendable {
    public let name: String      // Hugging Face name without the "bert." prefix
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    /// Weight decay applies to matrices, not to biases and LayerNorm parameters (as Hugging Face's Trainer).
    public var decays: Bool { !name.hasSuffix(".bias") && !name.contains("LayerNorm") }
}

/// Texts packed for the encoder: token ids concatenated, each text's first row and length.
public struct EncoderBatch: Sendable {
    public var ids: [Int] = []
    public var types: [Int] = []
    public var positions: [Int] = []
    public var offsets: [Int] = []
    public var lengths: [Int] = []
    public var rows: Int { ids.count }
    public var count: Int { lengths.count }

    public init(_ texts: [EncodedText]) {
        for t in texts {
            offsets.append(ids.count)
            lengths.append(t.count)
            ids += t.ids
            types += t.typeIDs
            positions += Array(0..<t.count)
        }
    }
}

// @unchecked Sendable: a training model belongs to one training job, which runs its steps on one
// thread at a time (the parallel loops inside a step write disjoint slices); it is handed to that
// job, never used by two.
public final class EncoderTrainingModel: @unchecked Sendable {
    public let config: BertConfig
    /// Labels of the classification head (0: no head).
    public let labelCount: Int
    public let tensors: [EncoderTensor]
    public let parameterCount: Int
    public let parameters: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    /// Embeddings and the first `frozenLayers` layers receive no gradient.
    public let frozenLayers: Int
    /// Parameters that are trained: the layers from `frozenLayers` on and the head.
    public let trainable: Range<Int>
    /// Hidden dropout (embeddings, attention output, feed-forward output, pooled output) in training.
    public var dropout: Float
    public let pool: ThreadPool
    let byName: [String: Int]

    struct Layer { var wqkv = 0, bqkv = 0, wo = 0, bo = 0, ln1g = 0, ln1b = 0, wi = 0, bi = 0, wo2 = 0, bo2 = 0, ln2g = 0, ln2b = 0 }
    let word: Int, position: Int, type: Int, embG: Int, embB: Int
    let layers: [Layer]
    let poolW: Int, poolB: Int, clsW: Int, clsB: Int

    /// Builds the parameter layout; weights start at zero (load them with `load`).
    public init(config: BertConfig, labels: Int, frozenLayers: Int = 0, dropout: Float = 0.1, threads: Int = ThreadPool.availableCores) {
        self.config = config
        labelCount = labels
        self.frozenLayers = max(0, min(frozenLayers, config.layers))
        self.dropout = dropout
        let H = config.hidden, I = config.intermediate
        var list: [EncoderTensor] = [], at = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            list.append(EncoderTensor(name: name, shape: shape, offset: at))
            at += shape.reduce(1, *)
            return list.last!.offset
        }
        word = add("embeddings.word_embeddings.weight", [config.vocabulary, H])
        position = add("embeddings.position_embeddings.weight", [config.maxPositions, H])
        type = add("embeddings.token_type_embeddings.weight", [config.typeVocabulary, H])
        embG = add("embeddings.LayerNorm.weight", [H]); embB = add("embeddings.LayerNorm.bias", [H])
        var ls: [Layer] = []
        var firstTrained = self.frozenLayers == 0 ? 0 : at
        for l in 0..<config.layers {
            if l == self.frozenLayers && l > 0 { firstTrained = at }
            let p = "encoder.layer.\(l)."
            var o = Layer()
            // query, key and value side by side: one [3H × H] matrix and one [3H] bias.
            o.wqkv = add(p + "attention.self.query.weight", [H, H]); _ = add(p + "attention.self.key.weight", [H, H]); _ = add(p + "attention.self.value.weight", [H, H])
            o.bqkv = add(p + "attention.self.query.bias", [H]); _ = add(p + "attention.self.key.bias", [H]); _ = add(p + "attention.self.value.bias", [H])
            o.wo = add(p + "attention.output.dense.weight", [H, H]); o.bo = add(p + "attention.output.dense.bias", [H])
            o.ln1g = add(p + "attention.output.LayerNorm.weight", [H]); o.ln1b = add(p + "attention.output.LayerNorm.bias", [H])
            o.wi = add(p + "intermediate.dense.weight", [I, H]); o.bi = add(p + "intermediate.dense.bias", [I])
            o.wo2 = add(p + "output.dense.weight", [H, I]); o.bo2 = add(p + "output.dense.bias", [H])
            o.ln2g = add(p + "output.LayerNorm.weight", [H]); o.ln2b = add(p + "output.LayerNorm.bias", [H])
            ls.append(o)
        }
        if self.frozenLayers == config.layers { firstTrained = at }
        layers = ls
        if labels > 0 {
            poolW = add("pooler.dense.weight", [H, H]); poolB = add("pooler.dense.bias", [H])
            clsW = add("classifier.weight", [labels, H]); clsB = add("classifier.bias", [labels])
        } else {
            poolW = -1; poolB = -1; clsW = -1; clsB = -1
        }
        tensors = list
        parameterCount = at
        trainable = firstTrained..<at
        byName = Dictionary(uniqueKeysWithValues: list.enumerated().map { ($1.name, $0) })
        parameters = .allocate(capacity: at); parameters.initialize(repeating: 0, count: at)
        gradients = .allocate(capacity: at); gradients.initialize(repeating: 0, count: at)
        pool = ThreadPool.shared(threads: threads)
    }

    deinit {
        parameters.deallocate(); gradients.deallocate()
        acts.free()
    }

    public func tensor(_ name: String) -> EncoderTensor? { byName[name].map { tensors[$0] } }

    /// Loads a Hugging Face BERT directory (bare, "bert."-prefixed or a sentence-transformers
    /// model). Tensors missing from the file — a new classification head, a missing pooler — are
    /// initialized as Hugging Face does (normal, σ = 0.02, seeded; biases zero).
    public convenience init(directory: String, labels: Int, frozenLayers: Int = 0, dropout: Float = 0.1, seed: UInt64 = 42,
                            threads: Int = ThreadPool.availableCores) throws {
        let cfgPath = directory + "/config.json"
        guard let text = try? String(contentsOfFile: cfgPath, encoding: .utf8) else { throw ModelError.modelNotFound(cfgPath) }
        let json = try JSONValue.parse(text)
        let type = json["model_type"]?.string ?? "bert"
        guard type == "bert" else {
            throw TuningError.unsupportedModel("encoder training supports BERT models (model_type \"bert\", e.g. all-MiniLM-L6-v2, bert-base-uncased); \(directory) is \"\(type)\"")
        }
        let config = try BertConfig(json: json)
        self.init(config: config, labels: labels, frozenLayers: frozenLayers, dropout: dropout, threads: threads)
        let st: SafetensorsFile
        do { st = try SafetensorsFile(path: directory + "/model.safetensors") } catch { throw ModelError.format(error) }
        let prefix = ["", "bert.", "roberta."].first { st.tensor($0 + "embeddings.word_embeddings.weight") != nil } ?? ""
        var rng = SplitMix64(seed: seed)
        for t in tensors {
            let candidates = t.name.hasPrefix("classifier.") ? [t.name] : [prefix + t.name]
            if let full = candidates.first(where: { st.tensor($0) != nil }), let info = st.tensor(full) {
                guard info.shape == t.shape else { throw ModelError.tensorShape(name: full, expected: t.shape, found: info.shape) }
                let v = try EncoderTrainingModel.floats(st, full)
                v.withUnsafeBufferPointer { (parameters + t.offset).update(from: $0.baseAddress!, count: t.count) }
            } else if t.name.hasPrefix("pooler.") || t.name.hasPrefix("classifier.") {
                if t.name.hasSuffix(".weight") {
                    for i in 0..<t.count { parameters[t.offset + i] = Float(EncoderTrainingModel.normal(&rng)) * 0.02 }
                }
            } else {
                throw ModelError.format(.missingTensor(prefix + t.name))
            }
        }
    }

    static func floats(_ st: SafetensorsFile, _ name: String) throws -> [Float] {
        do { return try st.floats(name) } catch let e as FormatError { throw ModelError.format(e) }
    }

    static func normal(_ r: inout SplitMix64) -> Double {
        let u1 = max(r.nextUnit(), 1e-300), u2 = r.nextUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    public func zeroGradients() { gradients.update(repeating: 0, count: parameterCount) }

    // MARK: saved activations

    struct Activations {
        var capacityRows = 0, capacityProbs = 0, capacityTexts = 0
        var emb: UnsafeMutablePointer<Float>? = nil        // [T × H] embedding sum (LayerNorm input)
        var embMean: UnsafeMutablePointer<Float>? = nil, embRstd: UnsafeMutablePointer<Float>? = nil
        var embDrop: UnsafeMutablePointer<Float>? = nil    // [T × H] dropout scale
        var x: [UnsafeMutablePointer<Float>] = []          // layers + 1 × [T × H]: input of each layer, then the output
        var qkv: [UnsafeMutablePointer<Float>] = []        // [T × 3H]
        var probs: [UnsafeMutablePointer<Float>] = []      // [A · Σ n²]
        var ctx: [UnsafeMutablePointer<Float>] = []        // [T × H]
        var res1: [UnsafeMutablePointer<Float>] = [], mean1: [UnsafeMutablePointer<Float>] = [], rstd1: [UnsafeMutablePointer<Float>] = []
        var drop1: [UnsafeMutablePointer<Float>] = []
        var x1: [UnsafeMutablePointer<Float>] = []         // [T × H] LayerNorm 1 output
        var pre: [UnsafeMutablePointer<Float>] = [], act: [UnsafeMutablePointer<Float>] = []   // [T × I]
        var res2: [UnsafeMutablePointer<Float>] = [], mean2: [UnsafeMutablePointer<Float>] = [], rstd2: [UnsafeMutablePointer<Float>] = []
        var drop2: [UnsafeMutablePointer<Float>] = []
        // backward scratch
        var dx: UnsafeMutablePointer<Float>? = nil, dx2: UnsafeMutablePointer<Float>? = nil, dtmp: UnsafeMutablePointer<Float>? = nil
        var dqkv: UnsafeMutablePointer<Float>? = nil, dinter: UnsafeMutablePointer<Float>? = nil

        mutating func free() {
            for p in [emb, embMean, embRstd, embDrop, dx, dx2, dtmp, dqkv, dinter] { p?.deallocate() }
            for list in [x, qkv, probs, ctx, res1, mean1, rstd1, drop1, x1, pre, act, res2, mean2, rstd2, drop2] { for p in list { p.deallocate() } }
            self = Activations()
        }
    }
    var acts = Activations()
    var probOffsets: [Int] = []
    var batch = EncoderBatch([])

    func reserve(rows T: Int, probs P: Int) {
        guard T > acts.capacityRows || P > acts.capacityProbs else { return }
        acts.free()
        let T = max(T, 64), P = max(P, 4096), H = config.hidden, I = config.intermediate, L = config.layers
        func a(_ n: Int) -> UnsafeMutablePointer<Float> { let p = UnsafeMutablePointer<Float>.allocate(capacity: n); p.initialize(repeating: 0, count: n); return p }
        acts.capacityRows = T; acts.capacityProbs = P
        acts.emb = a(T * H); acts.embMean = a(T); acts.embRstd = a(T); acts.embDrop = a(T * H)
        acts.x = (0...L).map { _ in a(T * H) }
        acts.qkv = (0..<L).map { _ in a(T * 3 * H) }
        acts.probs = (0..<L).map { _ in a(P) }
        acts.ctx = (0..<L).map { _ in a(T * H) }
        acts.res1 = (0..<L).map { _ in a(T * H) }; acts.mean1 = (0..<L).map { _ in a(T) }; acts.rstd1 = (0..<L).map { _ in a(T) }
        acts.drop1 = (0..<L).map { _ in a(T * H) }
        acts.x1 = (0..<L).map { _ in a(T * H) }
        acts.pre = (0..<L).map { _ in a(T * I) }; acts.act = (0..<L).map { _ in a(T * I) }
        acts.res2 = (0..<L).map { _ in a(T * H) }; acts.mean2 = (0..<L).map { _ in a(T) }; acts.rstd2 = (0..<L).map { _ in a(T) }
        acts.drop2 = (0..<L).map { _ in a(T * H) }
        acts.dx = a(T * H); acts.dx2 = a(T * H); acts.dtmp = a(T * H); acts.dqkv = a(T * 3 * H); acts.dinter = a(T * I)
    }

    // MARK: forward

    /// Runs the encoder over a packed batch and returns the last hidden states [T × H] (valid
    /// until the next call). With `dropoutSeed`, hidden dropout is applied (training).
    @discardableResult
    public func encode(_ b: EncoderBatch, dropoutSeed: UInt64? = nil) throws -> UnsafeMutablePointer<Float> {
        let H = config.hidden, I = config.intermediate, A = config.heads, T = b.rows
        var po: [Int] = [], total = 0
        for n in b.lengths { po.append(total); total += A * n * n }
        for (i, id) in b.ids.enumerated() {
            guard id >= 0, id < config.vocabulary else { throw ModelError.badToken(id, vocabularySize: config.vocabulary) }
            guard b.positions[i] + config.positionOffset < config.maxPositions else {
                throw ModelError.contextFull(used: 0, adding: b.positions[i] + 1, limit: config.maxPositions - config.positionOffset)
            }
        }
        reserve(rows: T, probs: total)
        probOffsets = po
        batch = b
        let P = parameters, p = dropoutSeed.map { _ in dropout } ?? 0
        dropoutActive = p > 0
        // embeddings: word + position + token type, LayerNorm, dropout
        let emb = acts.emb!
        for r in 0..<T {
            let w = P + word + b.ids[r] * H, ps = P + position + (b.positions[r] + config.positionOffset) * H
            let ty = P + type + min(max(0, b.types[r]), config.typeVocabulary - 1) * H
            for j in 0..<H { emb[r * H + j] = w[j] + ps[j] + ty[j] }
        }
        layerNorm(acts.x[0], mean: acts.embMean!, rstd: acts.embRstd!, emb, P + embG, P + embB, rows: T)
        applyDropout(acts.x[0], mask: acts.embDrop!, count: T * H, p: p, seed: dropoutSeed.map { $0 &+ 1 })
        for (l, o) in layers.enumerated() {
            let x = acts.x[l], qkv = acts.qkv[l]
            linear(x, o.wqkv, o.bqkv, qkv, rows: T, inDim: H, outDim: 3 * H)
            attentionForward(l)
            linear(acts.ctx[l], o.wo, o.bo, acts.res1[l], rows: T, inDim: H, outDim: H)
            applyDropout(acts.res1[l], mask: acts.drop1[l], count: T * H, p: p, seed: dropoutSeed.map { $0 &+ UInt64(10 + 2 * l) })
            add(acts.res1[l], x, count: T * H)
            layerNorm(acts.x1[l], mean: acts.mean1[l], rstd: acts.rstd1[l], acts.res1[l], P + o.ln1g, P + o.ln1b, rows: T)
            linear(acts.x1[l], o.wi, o.bi, acts.pre[l], rows: T, inDim: H, outDim: I)
            let pre = acts.pre[l], act = acts.act[l]
            pool.parallelFor(T * I, minChunk: 8192) { r in
                (act + r.lowerBound).update(from: pre + r.lowerBound, count: r.count)
                VectorMath.gelu(act + r.lowerBound, r.count)
            }
            linear(act, o.wo2, o.bo2, acts.res2[l], rows: T, inDim: I, outDim: H)
            applyDropout(acts.res2[l], mask: acts.drop2[l], count: T * H, p: p, seed: dropoutSeed.map { $0 &+ UInt64(11 + 2 * l) })
            add(acts.res2[l], acts.x1[l], count: T * H)
            layerNorm(acts.x[l + 1], mean: acts.mean2[l], rstd: acts.rstd2[l], acts.res2[l], P + o.ln2g, P + o.ln2b, rows: T)
        }
        return acts.x[config.layers]
    }

    /// y = x·Wᵀ + b for W at parameter offset `w` [outDim × inDim].
    func linear(_ x: UnsafePointer<Float>, _ w: Int, _ bias: Int, _ y: UnsafeMutablePointer<Float>, rows: Int, inDim: Int, outDim: Int) {
        // y starts as the bias and the product adds to it (β = 1: no separate bias pass).
        let b = parameters + bias
        pool.parallelFor(rows, minChunk: 64) { r in
            for i in r { (y + i * outDim).update(from: b, count: outDim) }
        }
        GEMM.run(pool, transA: false, transB: true, m: rows, n: outDim, k: inDim, alpha: 1, x, lda: inDim,
                 parameters + w, ldb: inDim, beta: 1, y, ldc: outDim)
    }

    func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        pool.parallelFor(count, minChunk: 16384) { r in for i in r { y[i] += x[i] } }
    }

    func layerNorm(_ out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                   _ inp: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ b: UnsafePointer<Float>, rows: Int) {
        let H = config.hidden, eps = config.eps
        pool.parallelFor(rows, minChunk: 32) { r in
            Ops.layernormForward(out + r.lowerBound * H, mean: mean + r.lowerBound, rstd: rstd + r.lowerBound,
                                 inp + r.lowerBound * H, g, b, n: r.count, c: H, eps: eps)
        }
    }

    /// Inverted dropout: zeroes a fraction p of x and scales the rest by 1/(1−p); the scale per
    /// element is kept for the backward pass. Masks come from a counter-based hash of (seed, i).
    func applyDropout(_ x: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>, count: Int, p: Float, seed: UInt64?) {
        guard p > 0, let seed else { return }
        let keep = 1 / (1 - p), threshold = UInt64(Double(p) * Double(UInt64(1) << 32))
        pool.parallelFor(count, minChunk: 16384) { r in
            for i in r {
                var z = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 31)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 29
                let m: Float = (z & 0xFFFF_FFFF) < threshold ? 0 : keep
                mask[i] = m
                x[i] *= m
            }
        }
    }

    /// Per text and head: softmax(q·kᵀ/√D)·v over the text's own tokens; probabilities saved.
    func attentionForward(_ l: Int) {
        let H = config.hidden, A = config.heads, D = H / A, S = 3 * H
        let scale = 1 / Float(D).squareRoot()
        let qkv = acts.qkv[l], out = acts.ctx[l], probs = acts.probs[l]
        let b = batch, po = probOffsets
        pool.dispatch(b.count * A) { job in
            let t = job / A, h = job % A, n = b.lengths[t], r0 = b.offsets[t]
            let s = probs + po[t] + h * n * n
            let q = qkv + r0 * S + h * D
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(D), scale,
                        q, Int32(S), q + H, Int32(S), 0, s, Int32(n))
            for i in 0..<n { VectorMath.softmax(s + i * n, n) }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(D), Int32(n), 1,
                        s, Int32(n), q + 2 * H, Int32(S), 0, out + r0 * H + h * D, Int32(H))
        }
    }

    // MARK: backward

    /// Backpropagates `dOut` ([T × H], the gradient of the last hidden states of the last
    /// `encode`) into `gradients`, down to the first trained layer. `dOut` is overwritten.
    public func backward(_ dOut: UnsafeMutablePointer<Float>) {
        let H = config.hidden, I = config.intermediate, T = batch.rows, P = parameters, G = gradients
        let dx = dOut                               // gradient w.r.t. the current layer's output
        let dres = acts.dx2!, dtmp = acts.dtmp!, dqkv = acts.dqkv!, dinter = acts.dinter!
        for l in stride(from: config.layers - 1, through: frozenLayers, by: -1) {
            let o = layers[l]
            // LayerNorm 2 → dres = d(res2)
            dres.update(repeating: 0, count: T * H)
            layerNormBackward(dres, G + o.ln2g, G + o.ln2b, dx, acts.res2[l], P + o.ln2g, acts.mean2[l], acts.rstd2[l], rows: T)
            // res2 = x1 + drop(act·W2ᵀ + b2)
            multiplyMask(dtmp, dres, acts.drop2[l], count: T * H)
            linearBackward(dx: dinter, dy: dtmp, x: acts.act[l], w: o.wo2, dw: o.wo2, db: o.bo2, rows: T, inDim: I, outDim: H, accumulate: false)
            let pre = acts.pre[l]
            pool.parallelFor(T * I, minChunk: 8192) { r in
                VectorMath.geluBackward(dinter + r.lowerBound, pre + r.lowerBound, r.count)
            }
            // d(x1) = dres + dinter·Wi
            linearBackward(dx: dres, dy: dinter, x: acts.x1[l], w: o.wi, dw: o.wi, db: o.bi, rows: T, inDim: H, outDim: I, accumulate: true)
            // LayerNorm 1 → dx = d(res1)
            dx.update(repeating: 0, count: T * H)
            layerNormBackward(dx, G + o.ln1g, G + o.ln1b, dres, acts.res1[l], P + o.ln1g, acts.mean1[l], acts.rstd1[l], rows: T)
            // res1 = x + drop(ctx·Woᵀ + bo)
            multiplyMask(dtmp, dx, acts.drop1[l], count: T * H)
            let dctx = dres
            linearBackward(dx: dctx, dy: dtmp, x: acts.ctx[l], w: o.wo, dw: o.wo, db: o.bo, rows: T, inDim: H, outDim: H, accumulate: false)
            dqkv.update(repeating: 0, count: T * 3 * H)
            attentionBackward(l, dctx: dctx, dqkv: dqkv)
            // d(x) = dx (residual) + dqkv·Wqkv
            linearBackward(dx: dx, dy: dqkv, x: acts.x[l], w: o.wqkv, dw: o.wqkv, db: o.bqkv, rows: T, inDim: H, outDim: 3 * H, accumulate: true)
        }
        guard frozenLayers == 0 else { return }
        // embeddings: dropout, LayerNorm, then scatter into the three tables
        multiplyMask(dtmp, dx, acts.embDrop!, count: T * H)
        dres.update(repeating: 0, count: T * H)
        layerNormBackward(dres, G + embG, G + embB, dtmp, acts.emb!, P + embG, acts.embMean!, acts.embRstd!, rows: T)
        let b = batch
        for r in 0..<T {
            let g = dres + r * H
            let w = G + word + b.ids[r] * H, ps = G + position + (b.positions[r] + config.positionOffset) * H
            let ty = G + type + min(max(0, b.types[r]), config.typeVocabulary - 1) * H
            for j in 0..<H { w[j] += g[j]; ps[j] += g[j]; ty[j] += g[j] }
        }
    }

    func multiplyMask(_ out: UnsafeMutablePointer<Float>, _ d: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, count: Int) {
        if dropout > 0 && dropoutActive {
            pool.parallelFor(count, minChunk: 16384) { r in for i in r { out[i] = d[i] * mask[i] } }
        } else {
            out.update(from: d, count: count)
        }
    }
    /// Whether the last forward pass applied dropout.
    var dropoutActive = false

    /// Given dy [rows × outDim]: dW += dyᵀ·x, db += Σ dy, and dx (=|+=) dy·W.
    func linearBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: Int, dw: Int, db: Int,
                        rows: Int, inDim: Int, outDim: Int, accumulate: Bool) {
        GEMM.run(pool, transA: true, transB: false, m: outDim, n: inDim, k: rows, alpha: 1, dy, lda: outDim, x, ldb: inDim,
                 beta: 1, gradients + dw, ldc: inDim)
        let gb = gradients + db
        pool.parallelFor(outDim, minChunk: 64) { c in
            for r in 0..<rows { let row = dy + r * outDim; for o in c { gb[o] += row[o] } }
        }
        GEMM.run(pool, transA: false, transB: false, m: rows, n: inDim, k: outDim, alpha: 1, dy, lda: outDim, parameters + w, ldb: inDim,
                 beta: accumulate ? 1 : 0, dx, ldc: inDim)
    }

    /// dinp += LayerNorm backward; parameter gradients summed per thread, then added.
    func layerNormBackward(_ dinp: UnsafeMutablePointer<Float>, _ dg: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>,
                           _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ g: UnsafePointer<Float>,
                           _ mean: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>, rows: Int) {
        let H = config.hidden, parts = min(pool.threads, max(1, rows / 32))
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: parts * 2 * H)
        partial.initialize(repeating: 0, count: parts * 2 * H)
        defer { partial.deallocate() }
        let per = (rows + parts - 1) / parts
        pool.dispatch(parts) { i in
            let lo = i * per, hi = min(rows, lo + per)
            guard lo < hi else { return }
            Ops.layernormBackward(dinp: dinp + lo * H, dweight: partial + i * 2 * H, dbias: partial + i * 2 * H + H,
                                  dout: dout + lo * H, inp: inp + lo * H, weight: g, mean: mean + lo, rstd: rstd + lo, n: hi - lo, c: H)
        }
        for i in 0..<parts { for j in 0..<H { dg[j] += partial[i * 2 * H + j]; db[j] += partial[i * 2 * H + H + j] } }
    }

    /// Per text and head, from dO: dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P⊙(dP − rowsum(P⊙dP))/√D,
    /// dQ += dS·K, dK += dSᵀ·Q.
    func attentionBackward(_ l: Int, dctx: UnsafePointer<Float>, dqkv: UnsafeMutablePointer<Float>) {
        let H = config.hidden, A = config.heads, D = H / A, S = 3 * H
        let scale = 1 / Float(D).squareRoot()
        let qkv = acts.qkv[l], probs = acts.probs[l]
        let b = batch, po = probOffsets
        pool.dispatch(b.count * A) { job in
            let t = job / A, h = job % A, n = b.lengths[t], r0 = b.offsets[t]
            let p = probs + po[t] + h * n * n
            let q = qkv + r0 * S + h * D, k = q + H, v = q + 2 * H
            let dq = dqkv + r0 * S + h * D, dk = dq + H, dv = dq + 2 * H
            let dO = dctx + r0 * H + h * D
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
            defer { dp.deallocate() }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(D), Int32(n), 1, p, Int32(n), dO, Int32(H), 1, dv, Int32(S))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(D), 1, dO, Int32(H), v, Int32(S), 0, dp, Int32(n))
            for i in 0..<n {
                let pr = p + i * n, dr = dp + i * n
                var dot: Float = 0
                for j in 0..<n { dot += pr[j] * dr[j] }
                for j in 0..<n { dr[j] = pr[j] * (dr[j] - dot) * scale }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(D), Int32(n), 1, dp, Int32(n), k, Int32(S), 1, dq, Int32(S))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(D), Int32(n), 1, dp, Int32(n), q, Int32(S), 1, dk, Int32(S))
        }
    }
}
