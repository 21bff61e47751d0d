import Foundation
import Testing
import TailorTestSupport
@testable import TailorModels

/// A tiny random BertForSequenceClassification (scripts/reference/tiny_cross_encoder.py) scored by
/// transformers: pair token ids and relevance logits must match.
@Suite struct CrossEncoderTests {
    @Test func matchesTransformers() throws {
        let dir = try TestPaths.fixtureURL(Bundle.module, "tiny-cross-encoder").path
        let ref = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/reference.json"))) as? [String: Any])
        let pairs = try #require(ref["pairs"] as? [[String]])
        let ids = try #require(ref["input_ids"] as? [[Int]])
        let scores = try #require(ref["scores"] as? [Double])
        let ce = try CrossEncoder(directory: dir, threads: 2)
        for (i, p) in pairs.enumerated() {
            #expect(ce.tokenizer.encode(p[0], p[1], maxLength: 64).ids == ids[i], "pair \(i)")
        }
        for (i, p) in pairs.enumerated() {
            let s = try ce.score(p[0], [p[1]])[0]
            #expect(abs(Double(s) - scores[i]) < 1e-4, "pair \(i): \(s) vs \(scores[i])")
        }
        // Batched scoring gives the same numbers as one by one.
        let batched = try ce.score(pairs[0][0], [pairs[0][1], pairs[1][1]])
        #expect(abs(Double(batched[0]) - scores[0]) < 1e-4 && abs(Double(batched[1]) - scores[1]) < 1e-4)
        #expect(throws: (any Error).self) { try CrossEncoder(directory: TestPaths.model("all-MiniLM-L6-v2")) }
    }
}
