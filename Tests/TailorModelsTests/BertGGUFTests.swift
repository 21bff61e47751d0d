import Foundation
import Testing
import TailorFormats
import TailorTokenizers
@testable import TailorModels

/// BERT in GGUF (llama.cpp's layout): all-MiniLM-L6-v2 written by BertGGUF.write and read back
/// gives the same token ids and embeddings as the safetensors folder.
@Suite(.serialized) struct BertGGUFTests {
    @Test func ggufRoundTripMatchesSafetensors() throws {
        let dir = try TestPaths.model("all-MiniLM-L6-v2")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-minilm-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try BertGGUF.write(directory: dir, to: path)
        let fromFolder = try SentenceEmbedder(dir)
        let fromGGUF = try SentenceEmbedder(path)
        #expect(fromGGUF.pooling == .mean && fromGGUF.normalize && fromGGUF.dimension == 384)
        let texts = ["A man is eating food.", "Ünïcödé naïve café, 日本語 and e-mail a.b@c.de", "unbelievably tokenizable antidisestablishmentarianism"]
        for t in texts { #expect(fromGGUF.encode(t).ids == fromFolder.encode(t).ids, "\(t)") }
        let a = try fromFolder.embed(texts), b = try fromGGUF.embed(texts)
        for i in texts.indices { #expect(SentenceEmbedder.cosine(a[i], b[i]) > 0.999999) }
    }

    @Test func notABertFileIsAClearError() throws {
        #expect(throws: ModelError.self) { _ = try SentenceEmbedder(try TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")) }
    }
}
