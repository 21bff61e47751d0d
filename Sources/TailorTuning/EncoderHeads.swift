// The two training objectives on top of `EncoderTrainingModel`:
//   classification — Hugging Face's BertForSequenceClassification: pooled = tanh(W_p·h[CLS] + b_p),
//     dropout, logits = W_c·pooled + b_c, cross-entropy;
//   sentence embeddings — mean pooling over each text's tokens and L2 normalization (the
//     sentence-transformers pipeline of all-MiniLM-L6-v2), trained with the multiple-negatives
//     ranking loss: each query against every passage of the batch, its own passage the target.
import Foundation
import CBLAS
import TailorKernels

extension EncoderTrainingModel {
    /// Logits [B × K] of `b`; with `targets`, the summed cross-entropy, and with `backward`, its
    /// gradients accumulated into `gradients`.
    public func classify(_ b: EncoderBatch, targets: [Int]? = nil, backward: Bool = false, dropoutSeed: UInt64? = nil) throws -> (loss: Double, logits: [Float]) {
        precondition(labelCount > 0, "the model has no classification head")
        let H = config.hidden, K = labelCount, B = b.count, P = parameters, G = gradients
        let hidden = try encode(b, dropoutSeed: dropoutSeed)
        var cls = [Float](repeating: 0, count: B * H)
        for t in 0..<B { for j in 0..<H { cls[t * H + j] = hidden[b.offsets[t] * H + j] } }
        var pooled = [Float](repeating: 0, count: B * H)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(B), Int32(H), Int32(H), 1, cls, Int32(H), P + poolW, Int32(H), 0, &pooled, Int32(H))
        for t in 0..<B { for j in 0..<H { pooled[t * H + j] = tanh(pooled[t * H + j] + P[poolB + j]) } }
        var mask = [Float](repeating: 1, count: B * H)
        var dropped = pooled
        if let s = dropoutSeed, dropout > 0 {
            mask.withUnsafeMutableBufferPointer { m in dropped.withUnsafeMutableBufferPointer { d in
                applyDropout(d.baseAddress!, mask: m.baseAddress!, count: B * H, p: dropout, seed: s &+ 5)
            } }
        }
        var logits = [Float](repeating: 0, count: B * K)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(B), Int32(K), Int32(H), 1, dropped, Int32(H), P + clsW, Int32(H), 0, &logits, Int32(K))
        for t in 0..<B { for k in 0..<K { logits[t * K + k] += P[clsB + k] } }
        guard let targets else { return (0, logits) }
        precondition(targets.count == B)
        var loss = 0.0
        var dlogits = [Float](repeating: 0, count: B * K)
        for t in 0..<B {
            let row = Array(logits[(t * K)..<((t + 1) * K)])
            let m = row.max()!
            let sum = row.reduce(Float(0)) { $0 + exp($1 - m) }
            loss += Double(m + log(sum) - row[targets[t]])
            for k in 0..<K { dlogits[t * K + k] = exp(row[k] - m) / sum - (k == targets[t] ? 1 : 0) }
        }
        guard backward else { return (loss, logits) }
        // classifier
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(K), Int32(H), Int32(B), 1, dlogits, Int32(K), dropped, Int32(H), 1, G + clsW, Int32(H))
        for t in 0..<B { for k in 0..<K { G[clsB + k] += dlogits[t * K + k] } }
        var dpooled = [Float](repeating: 0, count: B * H)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(B), Int32(H), Int32(K), 1, dlogits, Int32(K), P + clsW, Int32(H), 0, &dpooled, Int32(H))
        // dropout and tanh
        for i in 0..<(B * H) { dpooled[i] *= mask[i] * (1 - pooled[i] * pooled[i]) }
        // pooler
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(H), Int32(H), Int32(B), 1, dpooled, Int32(H), cls, Int32(H), 1, G + poolW, Int32(H))
        for t in 0..<B { for j in 0..<H { G[poolB + j] += dpooled[t * H + j] } }
        guard frozenLayers < config.layers else { return (loss, logits) }
        var dcls = [Float](repeating: 0, count: B * H)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(B), Int32(H), Int32(H), 1, dpooled, Int32(H), P + poolW, Int32(H), 0, &dcls, Int32(H))
        let dOut = UnsafeMutablePointer<Float>.allocate(capacity: b.rows * H)
        defer { dOut.deallocate() }
        dOut.initialize(repeating: 0, count: b.rows * H)
        for t in 0..<B { for j in 0..<H { dOut[b.offsets[t] * H + j] = dcls[t * H + j] } }
        self.backward(dOut)
        return (loss, logits)
    }

    /// Sentence embeddings of `b`: the mean of each text's last hidden states, L2-normalized.
    /// Returns [B × H] and the norms before normalization (for `embeddingBackward`).
    public func embed(_ b: EncoderBatch, dropoutSeed: UInt64? = nil) throws -> (embeddings: [Float], norms: [Float]) {
        let H = config.hidden, B = b.count
        let hidden = try encode(b, dropoutSeed: dropoutSeed)
        var e = [Float](repeating: 0, count: B * H), norms = [Float](repeating: 0, count: B)
        e.withUnsafeMutableBufferPointer { ep in
            for t in 0..<B {
                let out = ep.baseAddress! + t * H
                Ops.meanPoolForward(out, hidden + b.offsets[t] * H, valid: b.lengths[t], c: H)
                var n: Float = 0
                for j in 0..<H { n += out[j] * out[j] }
                let norm = max(n.squareRoot(), 1e-12)
                norms[t] = norm
                for j in 0..<H { out[j] /= norm }
            }
        }
        return (e, norms)
    }

    /// Backpropagates d(normalized embeddings) [B × H] of the last `embed` into `gradients`.
    public func embeddingBackward(_ dEmbeddings: [Float], embeddings e: [Float], norms: [Float]) {
        let H = config.hidden, b = batch, B = b.count
        guard frozenLayers < config.layers else { return }
        let dOut = UnsafeMutablePointer<Float>.allocate(capacity: b.rows * H)
        defer { dOut.deallocate() }
        dOut.initialize(repeating: 0, count: b.rows * H)
        var du = [Float](repeating: 0, count: H)
        for t in 0..<B {
            // e = u/|u|: du = (de − e·(e·de)) / |u|
            var dot: Float = 0
            for j in 0..<H { dot += e[t * H + j] * dEmbeddings[t * H + j] }
            for j in 0..<H { du[j] = (dEmbeddings[t * H + j] - e[t * H + j] * dot) / norms[t] }
            du.withUnsafeBufferPointer { Ops.meanPoolBackward(dinp: dOut + b.offsets[t] * H, dout: $0.baseAddress!, valid: b.lengths[t], c: H) }
        }
        backward(dOut)
    }
}

/// The multiple-negatives ranking loss (Henderson et al. 2017; sentence-transformers'
/// MultipleNegativesRankingLoss): for query i, cross-entropy over scale·cos(q_i, p_j) for every
/// passage j of the batch, target j = i. Passages past the queries' count are extra negatives.
public enum RankingLoss {
    /// Summed loss over the queries and the gradients w.r.t. the query and passage embeddings.
    /// `passageKeys` (optional, one per passage) marks passages that are the same text: another
    /// query's copy of a query's own passage is not counted as its negative.
    public static func multipleNegatives(queries q: [Float], passages p: [Float], dimension H: Int, scale: Float = 20, passageKeys: [Int]? = nil)
        -> (loss: Double, dQueries: [Float], dPassages: [Float], correct: Int) {
        let Q = q.count / H, N = p.count / H
        precondition(N >= Q)
        var s = [Float](repeating: 0, count: Q * N)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(Q), Int32(N), Int32(H), scale, q, Int32(H), p, Int32(H), 0, &s, Int32(N))
        var loss = 0.0, correct = 0
        var ds = [Float](repeating: 0, count: Q * N)
        if let keys = passageKeys {
            for i in 0..<Q { for j in 0..<N where j != i && keys[j] >= 0 && keys[j] == keys[i] { s[i * N + j] = -.infinity } }
        }
        for i in 0..<Q {
            let row = s[(i * N)..<((i + 1) * N)]
            let m = row.max()!
            let sum = row.reduce(Float(0)) { $0 + exp($1 - m) }
            loss += Double(m + log(sum) - s[i * N + i])
            if s[i * N + i] >= m { correct += 1 }
            for j in 0..<N { ds[i * N + j] = scale * (exp(s[i * N + j] - m) / sum - (i == j ? 1 : 0)) }   // exp(−∞) = 0
        }
        var dq = [Float](repeating: 0, count: Q * H), dp = [Float](repeating: 0, count: N * H)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(Q), Int32(H), Int32(N), 1, ds, Int32(N), p, Int32(H), 0, &dq, Int32(H))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(N), Int32(H), Int32(Q), 1, ds, Int32(N), q, Int32(H), 0, &dp, Int32(H))
        return (loss, dq, dp, correct)
    }
}
