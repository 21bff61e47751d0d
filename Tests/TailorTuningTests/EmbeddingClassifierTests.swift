import Foundation
import Testing
import TailorModels
import TailorTestSupport
@testable import TailorTuning

/// The baselines of encoder fine-tuning on real data: Rotten Tomatoes snippets (examples/sentiment-lora/data)
/// embedded by all-MiniLM-L6-v2.
@Suite struct EmbeddingClassifierTests {
    static func items(_ name: String, _ n: Int) throws -> [(String, String)] {
        let url = TestPaths.repoRoot.appendingPathComponent("examples/sentiment-lora/data/\(name)")
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").prefix(n).map { line in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
            return (o["input"]!, o["label"]!)
        }
    }

    @Test func zeroShotAndLinearProbeBeatChance() throws {
        let emb = try SentenceEmbedder(TestPaths.model("all-MiniLM-L6-v2"), threads: 2)
        let train = try Self.items("train-labels.jsonl", 300), test = try Self.items("test-labels.jsonl", 200)
        let xtr = try emb.embed(train.map(\.0)), xte = try emb.embed(test.map(\.0))
        let classes = ["positive", "negative"]
        func accuracy(_ p: [(label: String, scores: [Float])]) -> Double {
            Double(zip(p, test).filter { $0.label == $1.1 }.count) / Double(test.count)
        }
        let zs = try ZeroShotClassifier(embedder: emb, labels: classes,
                                        descriptions: ["A positive movie review: a great, enjoyable film.", "A negative movie review: a bad, boring film."])
        let zsAcc = accuracy(zs.predict(xte))
        let probe = LinearProbe(embeddings: xtr, labels: train.map(\.1), classes: classes)
        let trainAcc = Double(zip(probe.predict(xtr), train).filter { $0.label == $1.1 }.count) / Double(train.count)
        let probeAcc = accuracy(probe.predict(xte))
        // 200 balanced test items: chance is 50% (95% interval up to ~57%).
        #expect(zsAcc > 0.6, "zero-shot \(zsAcc)")
        #expect(probeAcc > 0.65, "linear probe \(probeAcc)")
        #expect(trainAcc > probeAcc - 0.05, "the probe fits its training set (\(trainAcc))")
        print("zero-shot \(zsAcc), linear probe \(probeAcc) (train \(trainAcc))")
    }
}
