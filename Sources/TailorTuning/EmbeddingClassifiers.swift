// Classifiers on frozen sentence embeddings, the baselines of encoder fine-tuning:
//   zero-shot: each label described in words ("This review is positive."), a text gets the
//              label whose description embeds closest (cosine);
//   linear probe: multinomial logistic regression on the embeddings (softmax over labels,
//              cross-entropy, L2), trained full-batch with Adam, seeded.
import Foundation
import TailorModels

public struct ZeroShotClassifier {
    public let labels: [String]
    let centroids: [[Float]]

    /// `descriptions[i]` describes `labels[i]` (default: the label itself).
    public init(embedder: any Embedder, labels: [String], descriptions: [String]? = nil) throws {
        self.labels = labels
        centroids = try embedder.embed(descriptions ?? labels).map(ZeroShotClassifier.unit)
    }

    static func unit(_ v: [Float]) -> [Float] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return n > 0 ? v.map { $0 / n } : v
    }

    /// The label of each embedding, with the cosine similarity to every label.
    public func predict(_ embeddings: [[Float]]) -> [(label: String, scores: [Float])] {
        embeddings.map { e in
            let u = ZeroShotClassifier.unit(e)
            let scores = centroids.map { c in zip(c, u).reduce(0) { $0 + $1.0 * $1.1 } }
            return (labels[scores.indices.max { scores[$0] < scores[$1] }!], scores)
        }
    }
}

public struct LinearProbe: Sendable {
    public let labels: [String]
    public private(set) var weights: [Float]   // [K × D]
    public private(set) var bias: [Float]      // [K]
    public let dimension: Int

    /// Trains on embeddings with their labels (strings from `labels`).
    public init(embeddings x: [[Float]], labels y: [String], classes: [String], epochs: Int = 300, learningRate: Float = 0.05,
                l2: Float = 1e-2, seed: UInt64 = 1) {
        precondition(!x.isEmpty && x.count == y.count)
        labels = classes
        let K = classes.count, D = x[0].count, N = x.count
        dimension = D
        var rng = SplitMix64(seed: seed)
        var w = (0..<(K * D)).map { _ in Float(rng.nextUnit() - 0.5) * 0.01 }
        var b = [Float](repeating: 0, count: K)
        let target = y.map { classes.firstIndex(of: $0) ?? 0 }
        var mw = [Float](repeating: 0, count: K * D), vw = mw, mb = [Float](repeating: 0, count: K), vb = mb
        for step in 1...max(1, epochs) {
            var gw = [Float](repeating: 0, count: K * D), gb = [Float](repeating: 0, count: K)
            for n in 0..<N {
                let p = LinearProbe.softmax(LinearProbe.logits(x[n], w, b, K, D))
                for k in 0..<K {
                    let g = (p[k] - (k == target[n] ? 1 : 0)) / Float(N)
                    gb[k] += g
                    for d in 0..<D { gw[k * D + d] += g * x[n][d] }
                }
            }
            for i in 0..<(K * D) { gw[i] += l2 * w[i] }
            let c1 = 1 - pow(0.9, Float(step)), c2 = 1 - pow(0.999, Float(step))
            for i in 0..<(K * D) {
                mw[i] = 0.9 * mw[i] + 0.1 * gw[i]; vw[i] = 0.999 * vw[i] + 0.001 * gw[i] * gw[i]
                w[i] -= learningRate * (mw[i] / c1) / ((vw[i] / c2).squareRoot() + 1e-8)
            }
            for k in 0..<K {
                mb[k] = 0.9 * mb[k] + 0.1 * gb[k]; vb[k] = 0.999 * vb[k] + 0.001 * gb[k] * gb[k]
                b[k] -= learningRate * (mb[k] / c1) / ((vb[k] / c2).squareRoot() + 1e-8)
            }
        }
        weights = w
        bias = b
    }

    static func logits(_ x: [Float], _ w: [Float], _ b: [Float], _ K: Int, _ D: Int) -> [Float] {
        (0..<K).map { k in var s = b[k]; for d in 0..<D { s += w[k * D + d] * x[d] }; return s }
    }

    static func softmax(_ z: [Float]) -> [Float] {
        let m = z.max() ?? 0
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// The label of each embedding, with the probability of every label.
    public func predict(_ embeddings: [[Float]]) -> [(label: String, scores: [Float])] {
        embeddings.map { e in
            let p = LinearProbe.softmax(LinearProbe.logits(e, weights, bias, labels.count, dimension))
            return (labels[p.indices.max { p[$0] < p[$1] }!], p)
        }
    }
}
