import Foundation
import Testing
import TailorModels
import TailorFormats
import TailorTestSupport
@testable import TailorTuning

/// Fine-tuning all-MiniLM-L6-v2 as a classifier and as a retriever, on real data (Rotten Tomatoes
/// snippets from examples/sentiment-lora/data).
@Suite(.serialized) struct EncoderTrainerTests {
    static func reviews(_ name: String, _ n: Int) throws -> [LabelledText] {
        Array(try LabelledText.load(TestPaths.repoRoot.appendingPathComponent("examples/sentiment-lora/data/\(name)").path).prefix(n))
    }

    static func tempDir(_ tag: String) -> String {
        let d = NSTemporaryDirectory() + "tailor-enc-\(tag)-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.removeItem(atPath: d)
        return d
    }

    static var options: EncoderTuneOptions {
        var o = EncoderTuneOptions()
        o.epochs = 2; o.batchSize = 16; o.evalEvery = 8; o.learningRate = 1e-4; o.maxLength = 64
        return o
    }

    @Test func classifierLearnsSavesTheBestAndLoadsForInference() throws {
        let enc = try TestPaths.model("all-MiniLM-L6-v2")
        let train = try Self.reviews("train-labels.jsonl", 320), val = try Self.reviews("val-labels.jsonl", 64)
        let dir = Self.tempDir("cls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try EncoderTrainer(classifierFrom: enc, train: train, validation: val, options: Self.options, outputDirectory: dir, threads: 2)
        var events: [TrainingEvent] = []
        let s = try t.run { events.append($0) }
        #expect(s.steps == 40)
        let initial = try #require(s.initial), best = try #require(s.best)
        #expect(best.loss < initial.loss - 0.05, "validation loss \(initial.loss) → \(best.loss)")
        #expect(best.accuracy > 0.6, "validation accuracy \(best.accuracy)")
        #expect(events.contains { $0.samplesPerSecond ?? 0 > 0 })
        // The saved model is Hugging Face's layout and classifies as the training model does (no dropout).
        let info = try JSONValue.parse(String(contentsOfFile: dir + "/config.json", encoding: .utf8))
        #expect(info["architectures"]?.array?.first?.string == "BertForSequenceClassification")
        #expect(info["id2label"]?["0"]?.string == "negative" && info["id2label"]?["1"]?.string == "positive")
        let c = try SequenceClassifier(directory: dir, threads: 2)
        #expect(c.labels == ["negative", "positive"])
        let texts = val.prefix(8).map(\.text)
        let logits = try c.logits(Array(texts))
        // The best step's weights are in the directory; reload them into a training model to compare.
        let m = try EncoderTrainingModel(directory: dir, labels: 2, threads: 2)
        let tok = t.tokenizer
        let ref = try m.classify(EncoderBatch(texts.map { tok.encode($0, maxLength: 512) })).logits
        for (i, row) in logits.enumerated() {
            for k in 0..<2 { #expect(abs(row[k] - ref[i * 2 + k]) < 1e-3, "text \(i) label \(k): \(row[k]) vs \(ref[i * 2 + k])") }
        }
        let acc = Double(try c.classify(val.map(\.text)).enumerated().filter { $0.element.label == val[$0.offset].label }.count) / Double(val.count)
        #expect(abs(acc - best.accuracy) < 1e-9, "inference accuracy \(acc) vs validation \(best.accuracy)")
    }

    struct Interrupt: Error {}

    @Test func interruptedClassifierTrainingResumesBitForBit() throws {
        let enc = try TestPaths.model("all-MiniLM-L6-v2")
        let train = try Self.reviews("train-labels.jsonl", 64), val = try Self.reviews("val-labels.jsonl", 16)
        var o = Self.options
        o.epochs = 1; o.evalEvery = 2; o.freezeLayers = 3; o.batchSize = 8; o.patience = 10
        let a = Self.tempDir("a"), b = Self.tempDir("b")
        defer { for d in [a, b] { try? FileManager.default.removeItem(atPath: d) } }
        try EncoderTrainer(classifierFrom: enc, train: train, validation: val, options: o, outputDirectory: a, threads: 2).run()
        let first = try EncoderTrainer(classifierFrom: enc, train: train, validation: val, options: o, outputDirectory: b, threads: 2)
        first.afterCheckpoint = { if $0 == 4 { throw Interrupt() } }
        #expect(throws: Interrupt.self) { try first.run() }
        let second = try EncoderTrainer(classifierFrom: enc, train: train, validation: val, options: o, outputDirectory: b, threads: 2)
        let s = try second.run()
        #expect(s.resumedFrom == 4 && s.steps == 8)
        let fa = try Data(contentsOf: URL(fileURLWithPath: a + "/model.safetensors")), fb = try Data(contentsOf: URL(fileURLWithPath: b + "/model.safetensors"))
        #expect(fa == fb, "the resumed run's model differs from the uninterrupted one")
        // Other options are refused with the difference named.
        var o2 = o; o2.learningRate = 3e-4
        let third = try EncoderTrainer(classifierFrom: enc, train: train, validation: val, options: o2, outputDirectory: b, threads: 2)
        #expect { try third.run() } throws: { "\($0)".contains("learningRate") }
    }

    @Test func retrieverTrainingLowersTheRankingLoss() throws {
        let enc = try TestPaths.model("all-MiniLM-L6-v2")
        // Reviews as "passages", their first words as "queries": a task the encoder can learn.
        let texts = try Self.reviews("train-labels.jsonl", 160).map(\.text)
        let pairs = texts.map { t in TextPair(query: t.split(separator: " ").prefix(4).joined(separator: " "), passage: t) }
        let dir = Self.tempDir("ret")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = Self.options
        o.epochs = 1; o.batchSize = 16; o.evalEvery = 4; o.learningRate = 5e-5
        let t = try EncoderTrainer(retrieverFrom: enc, train: Array(pairs[0..<128]), validation: Array(pairs[128...]), options: o, outputDirectory: dir, threads: 2)
        let s = try t.run()
        let initial = try #require(s.initial), best = try #require(s.best)
        #expect(best.loss < initial.loss, "validation loss \(initial.loss) → \(best.loss)")
        // A sentence-transformers directory: the embedder loads it with its pooling and normalization.
        let e = try SentenceEmbedder(dir, threads: 2)
        #expect(e.pooling == .mean && e.normalize)
        let v = try e.embed(["a test"])[0]
        #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
    }
}
