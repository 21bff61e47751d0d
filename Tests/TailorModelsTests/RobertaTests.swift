import Foundation
import Testing
import TailorFormats
import TailorTokenizers
@testable import TailorModels

/// RoBERTa: a tiny random model with a byte-level BPE tokenizer trained for it
/// (scripts/reference/tiny_roberta.py), against transformers' token ids and mean-pooled states.
@Suite struct RobertaTests {
    @Test func tinyRobertaMatchesTransformers() throws {
        let dir = try TestPaths.fixtureURL(Bundle.module, "tiny-roberta").path
        let e = try SentenceEmbedder(dir)
        #expect(e.encoder.config.positionOffset == 2 && e.pooling == .mean && !e.normalize)
        let ref = try JSONValue.parse(String(contentsOfFile: dir + "/reference.json", encoding: .utf8))
        let texts = ref["texts"]!.array!.map { $0.string! }
        let ids = ref["input_ids"]!.array!.map { $0.array!.map { $0.int! } }
        let pooled = ref["mean_pooled"]!.array!.map { $0.array!.map { Float($0.double!) } }
        let got = try e.embed(texts)
        for (i, t) in texts.enumerated() {
            #expect(e.encode(t).ids == ids[i], "ids of \(t.debugDescription)")
            let maxDiff = zip(got[i], pooled[i]).map { abs($0 - $1) }.max()!
            #expect(maxDiff < 1e-4, "\(t.debugDescription): max |Δ| \(maxDiff)")
        }
        #expect(e.tokenizer.decode(e.encode(texts[0]).ids) == texts[0])
    }
}
