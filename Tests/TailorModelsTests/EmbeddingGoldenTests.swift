import Foundation
import Testing
import TailorFormats
import TailorTokenizers
import TailorKernels
@testable import TailorModels

/// all-MiniLM-L6-v2 against sentence-transformers (../shared/golden/minilm*.json): identical input
/// ids and cosine ≥ 0.9999 with the reference embeddings.
@Suite(.serialized) struct EmbeddingGoldenTests {
    static let embedder: Result<SentenceEmbedder, Error> = Result {
        try SentenceEmbedder(try TestPaths.model("all-MiniLM-L6-v2"))
    }
    /// One embedder per precision (it is chosen at load; fp16 stays fp32 where the CPU has no fp16 products).
    static let embedders: [EncoderPrecision: Result<SentenceEmbedder, Error>] = Dictionary(uniqueKeysWithValues: EncoderPrecision.allCases.map { p in
        (p, Result { try SentenceEmbedder(try TestPaths.model("all-MiniLM-L6-v2"), precision: p) })
    })

    func check(_ file: String, precision: EncoderPrecision = .preferred) throws {
        let e = try Self.embedders[precision]!.get()
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
        print("\(file), \(e.encoder.precision) products: \(sentences.count) sentences, worst cosine \(worst)")
    }

    /// Both arithmetic modes of the linear layers (fp16 only on CPUs with AVX512-FP16).
    @Test(arguments: EncoderPrecision.allCases) func minilmGolden(precision: EncoderPrecision) throws {
        try check("minilm.json", precision: precision)
    }
    @Test(arguments: EncoderPrecision.allCases) func minilmHardCases(precision: EncoderPrecision) throws {
        try check("minilm-tokenizer-and-embeddings.json", precision: precision)
    }

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

    /// A batch cut into one group of texts per thread gives the hidden states of the same batch
    /// run as one group with every operation split across the threads.
    @Test func groupsPerThreadMatchOneGroup() throws {
        // Two threads, whatever the machine has.
        let e = try SentenceEmbedder(try TestPaths.model("all-MiniLM-L6-v2"), threads: 2)
        let texts = (0..<9).map { "text \($0) on " + String(repeating: "protein folding in cells, ", count: 1 + $0 % 3) }
        let batch = texts.map(e.encode).sorted { $0.count > $1.count }
        #expect(BertModel.groups(batch.map(\.count), parts: 2).count == 2)
        let encoder = e.encoder
        let (grouped, L) = try encoder.forward(batch)
        var whole = [Float](repeating: 0, count: grouped.count)
        whole.withUnsafeMutableBufferPointer { encoder.encode(batch[...], into: $0.baseAddress!, stride: L, exec: .parallel(encoder.pool)) }
        let H = encoder.config.hidden
        var worst: Float = 0
        for (b, t) in batch.enumerated() {
            for i in 0..<(t.count * H) { worst = max(worst, abs(grouped[b * L * H + i] - whole[b * L * H + i])) }
        }
        #expect(worst < 1e-4, "largest difference \(worst)")
    }

    /// Several batches in one call — their groups shared out among the threads, a last batch of
    /// one text run across the threads — give every text, in input order, its embedding alone.
    @Test func manyBatchesKeepOrderAndValues() throws {
        let e = try Self.embedder.get()
        let saved = e.batchSize
        e.batchSize = 4
        defer { e.batchSize = saved }
        // 9 texts: batches of 4, 4 and 1 in length order; lengths shuffled against input order.
        let texts = (0..<9).map { i in "item \(i): " + String(repeating: "enzyme kinetics and binding, ", count: 1 + (i * 5) % 7) }
        let together = try e.embed(texts)
        #expect(together.count == texts.count)
        for (i, t) in texts.enumerated() {
            let alone = try e.embed([t])[0]
            let c = SentenceEmbedder.cosine(alone, together[i])
            #expect(c > 0.99999, "text \(i): cosine \(c) with its embedding alone")
        }
    }

    @Test func groupsAreContiguousAndBalanced() {
        #expect(BertModel.groups([10, 10, 10, 10], parts: 2) == [0..<2, 2..<4])
        #expect(BertModel.groups([12, 9, 8, 7, 7, 6], parts: 2) == [0..<2, 2..<6])
        #expect(BertModel.groups([5], parts: 2) == [0..<1], "fewer texts than threads: one group")
        #expect(BertModel.groups([200, 5, 5, 5], parts: 2) == [0..<4], "no balanced cut: one group")
        #expect(BertModel.groups([8, 8, 8, 8, 8, 8], parts: 3) == [0..<2, 2..<4, 4..<6])
        let lengths = (0..<32).map { 90 - $0 * 2 }
        let g = BertModel.groups(lengths, parts: 2)
        #expect(g.count == 2 && g[0].lowerBound == 0 && g[0].upperBound == g[1].lowerBound && g[1].upperBound == 32)
    }
}
