import Foundation
import Testing
import TailorFormats
import TailorTokenizers
@testable import TailorModels

/// all-MiniLM-L6-v2 against sentence-transformers (../shared/golden/minilm*.json): identical input
/// ids and cosine ≥ 0.9999 with the reference embeddings.
@Suite(.serialized) struct EmbeddingGoldenTests {
    static let embedder: Result<SentenceEmbedder, Error> = Result {
        try SentenceEmbedder(try TestPaths.model("all-MiniLM-L6-v2"))
    }

    func check(_ file: String, unnormalizedKey: String? = nil) throws {
        let e = try Self.embedder.get()
        let g = try JSONValue.parse(String(contentsOf: TestPaths.golden.appendingPathComponent(file), encoding: .utf8))
        let sentences = g["sentences"]!.array!.map { $0.string! }
        let ids = g["input_ids"]!.array!.map { $0.array!.map { $0.int! } }
        let ref = g["embeddings_normalized"]!.array!.map { $0.array!.map { Float($0.double!) } }
        let got = try e.embed(sentences)
        var worst: Float = 1
        for (i, s) in sentences.enumerated() {
            #expect(e.encode(s).ids == ids[i], "ids of \(s.prefix(60).debugDescription)")
            let c = SentenceEmbedder.cosine(got[i], ref[i])
            worst = min(worst, c)
            #expect(c >= 0.9999, "cosine \(c) for \(s.prefix(60).debugDescription)")
        }
        print("\(file): \(sentences.count) sentences, worst cosine \(worst)")
    }

    @Test func minilmGolden() throws { try check("minilm.json") }
    @Test func minilmHardCases() throws { try check("minilm-tokenizer-and-embeddings.json") }

    @Test func batchingDoesNotChangeResults() throws {
        let e = try Self.embedder.get()
        let texts = ["short", "a somewhat longer sentence with more words in it", "mid length text here"]
        let together = try e.embed(texts)
        for (i, t) in texts.enumerated() {
            let alone = try e.embed([t])[0]
            #expect(SentenceEmbedder.cosine(alone, together[i]) > 0.99999)
        }
        #expect(e.dimension == 384 && e.normalize && e.pooling == .mean && e.maxLength == 256)
    }
}
