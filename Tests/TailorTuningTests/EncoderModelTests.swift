import Foundation
import Testing
import TailorFormats
import TailorTokenizers
import TailorTestSupport
@testable import TailorTuning

/// The encoder's training passes against PyTorch on the real all-MiniLM-L6-v2
/// (scripts/reference/encoder_reference.py → Fixtures/encoder-reference.safetensors).
@Suite struct EncoderModelTests {
    static func reference() throws -> SafetensorsFile {
        try SafetensorsFile(path: TestPaths.fixtureURL(Bundle.module, "encoder-reference.safetensors").path)
    }

    static func ids(_ f: SafetensorsFile, _ key: String) throws -> [[Int]] {
        try JSONDecoder().decode([[Int]].self, from: Data(f.metadata[key]!.utf8))
    }

    static func texts(_ ids: [[Int]]) -> [EncodedText] { ids.map { EncodedText(ids: $0, typeIDs: [Int](repeating: 0, count: $0.count)) } }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        var d: Float = 0, n: Float = 0
        for (x, y) in zip(a, b) { d += (x - y) * (x - y); n += y * y }
        return (d / max(n, 1e-30)).squareRoot()
    }

    func gradient(_ m: EncoderTrainingModel, _ name: String, rows: Int? = nil) throws -> [Float] {
        let t = try #require(m.tensor(name), "\(name)")
        let n = rows.map { min(t.count, $0 * (t.shape.count > 1 ? t.shape[1] : 1)) } ?? t.count
        return Array(UnsafeBufferPointer(start: m.gradients + t.offset, count: n))
    }

    func norm(_ m: EncoderTrainingModel, _ name: String) throws -> Float {
        try gradient(m, name).reduce(0) { $0 + $1 * $1 }.squareRoot()
    }

    @Test func classificationMatchesPyTorch() throws {
        let ref = try Self.reference()
        let m = try EncoderTrainingModel(directory: TestPaths.model("all-MiniLM-L6-v2"), labels: 2, threads: 2)
        // The reference's freshly initialized classifier.
        for name in ["classifier.weight", "classifier.bias"] {
            let t = try #require(m.tensor(name))
            let v = try ref.floats(name)
            for i in 0..<t.count { m.parameters[t.offset + i] = v[i] }
        }
        let ids = try Self.ids(ref, "classify_ids")
        let labels = try JSONDecoder().decode([Int].self, from: Data(ref.metadata["classify_labels"]!.utf8))
        m.zeroGradients()
        let r = try m.classify(EncoderBatch(Self.texts(ids)), targets: labels, backward: true)
        let B = Float(ids.count)
        let loss = Float(r.loss) / B
        let refLoss = Float(ref.metadata["classify_loss"]!)!
        #expect(abs(loss - refLoss) / refLoss < 1e-4, "loss \(loss) vs \(refLoss)")
        #expect(Self.relativeError(r.logits, try ref.floats("classify.logits")) < 1e-4)
        // PyTorch's loss is the mean: our gradients are of the sum.
        for i in 0..<m.parameterCount { m.gradients[i] /= B }
        for name in ref.tensors.keys where name.hasPrefix("classify.grad.") {
            let short = String(name.dropFirst("classify.grad.".count))
            let want = try ref.floats(name)
            let got = try gradient(m, short, rows: 16)
            #expect(got.count == want.count, "\(short)")
            let e = Self.relativeError(got, want)
            #expect(e < 2e-3, "\(short): relative error \(e)")
        }
        // Every tensor's gradient norm, the embeddings included (Σ over their rows).
        let norms = try JSONDecoder().decode([String: Float].self, from: Data(ref.metadata["classify_grad_norms"]!.utf8))
        #expect(norms.count == m.tensors.count, "PyTorch has \(norms.count) trained tensors, we have \(m.tensors.count)")
        var worst: (String, Float) = ("", 0)
        let top = norms.values.max()!
        for (name, want) in norms {
            let got = try norm(m, name)
            // The key bias shifts every score of a softmax row equally: its exact gradient is zero,
            // and both sides hold only rounding noise.
            if name.hasSuffix("key.bias") { #expect(got < 1e-5 * top && want < 1e-5 * top, "\(name)"); continue }
            let e = abs(got - want) / max(want, 1e-12)
            if e > worst.1 { worst = (name, e) }
        }
        #expect(worst.1 < 5e-3, "worst gradient norm: \(worst.0) off by \(worst.1)")
        print("classification vs PyTorch: loss \(loss) vs \(refLoss); worst gradient norm \(worst.0) off by \(worst.1)")
    }

    @Test func retrievalMatchesPyTorch() throws {
        let ref = try Self.reference()
        let m = try EncoderTrainingModel(directory: TestPaths.model("all-MiniLM-L6-v2"), labels: 0, threads: 2)
        let q = try Self.ids(ref, "retrieval_query_ids"), p = try Self.ids(ref, "retrieval_passage_ids")
        m.zeroGradients()
        let e = try m.embed(EncoderBatch(Self.texts(q + p)))
        let H = m.config.hidden, Q = q.count
        let qe = Array(e.embeddings[0..<(Q * H)]), pe = Array(e.embeddings[(Q * H)...])
        #expect(Self.relativeError(qe, try ref.floats("retrieval.queries")) < 1e-4)
        #expect(Self.relativeError(pe, try ref.floats("retrieval.passages")) < 1e-4)
        let r = RankingLoss.multipleNegatives(queries: qe, passages: pe, dimension: H)
        let loss = Float(r.loss) / Float(Q), refLoss = Float(ref.metadata["retrieval_loss"]!)!
        #expect(abs(loss - refLoss) / refLoss < 2e-3, "loss \(loss) vs \(refLoss)")
        m.embeddingBackward((r.dQueries + r.dPassages).map { $0 / Float(Q) }, embeddings: e.embeddings, norms: e.norms)
        for name in ref.tensors.keys where name.hasPrefix("retrieval.grad.") {
            let short = String(name.dropFirst("retrieval.grad.".count))
            let err = Self.relativeError(try gradient(m, short, rows: 16), try ref.floats(name))
            #expect(err < 5e-3, "\(short): relative error \(err)")
        }
        let norms = try JSONDecoder().decode([String: Float].self, from: Data(ref.metadata["retrieval_grad_norms"]!.utf8))
        var worst: (String, Float) = ("", 0)
        let top = norms.values.max()!
        for (name, want) in norms where m.tensor(name) != nil {
            let got = try norm(m, name)
            if name.hasSuffix("key.bias") { #expect(got < 1e-5 * top && want < 1e-5 * top, "\(name)"); continue }
            let err = abs(got - want) / want
            if err > worst.1 { worst = (name, err) }
        }
        #expect(worst.1 < 1e-2, "worst gradient norm: \(worst.0) off by \(worst.1)")
        print("retrieval vs PyTorch: loss \(loss) vs \(refLoss); worst gradient norm \(worst.0) off by \(worst.1)")
    }

    /// Frozen layers get no gradient; the trained ones get the same gradient as in full training.
    @Test func frozenLayersGetNoGradient() throws {
        let dir = try TestPaths.model("all-MiniLM-L6-v2")
        let ids = [[101, 2023, 3185, 2001, 2307, 102], [101, 6881, 1012, 102]]
        let full = try EncoderTrainingModel(directory: dir, labels: 2, threads: 2)
        let part = try EncoderTrainingModel(directory: dir, labels: 2, frozenLayers: 4, threads: 2)
        for m in [full, part] {
            m.zeroGradients()
            _ = try m.classify(EncoderBatch(Self.texts(ids)), targets: [1, 0], backward: true)
        }
        #expect(try norm(part, "encoder.layer.3.output.dense.weight") == 0)
        #expect(try norm(part, "embeddings.word_embeddings.weight") == 0)
        #expect(part.trainable.lowerBound == part.tensor("encoder.layer.4.attention.self.query.weight")!.offset)
        for name in ["encoder.layer.4.attention.self.query.weight", "encoder.layer.5.output.dense.weight", "pooler.dense.weight"] {
            #expect(Self.relativeError(try gradient(part, name), try gradient(full, name)) < 1e-5, "\(name)")
        }
    }
}
