// Measurements for encoder fine-tuning:
//   ClassifierEvaluation — a tuned classifier against zero-shot and linear-probe baselines on the
//     same encoder and test items, with bootstrap intervals and paired tests;
//   RetrievalScore — nDCG@10 of an embedding model on a BEIR-layout folder, measured by the same
//     RetrievalEvaluator as `tailor eval retrieval` (vector mode);
//   PairGenerator — (query, passage) pairs from a collection or corpus for retriever training when
//     the user has none: titles as queries of their text, and the inverse cloze task (a sentence
//     as the query of the passage it came from, with the sentence removed).
import Foundation
import TailorFormats
import TailorKernels
import TailorModels
import TailorRAG
import TailorTuning

public enum ClassifierEvaluation {
    public struct SystemResult: Sendable {
        public var name: String
        public var predictions: [String]
        public var correct: [Double]
        public var accuracy: Estimate
        public var macroF1: Estimate
        /// Two-sided paired test against the first system (nil for the first).
        public var pValue: Double?
        public var secondsPerItem: Double
    }

    /// Zero-shot and linear probe on the frozen `encoder` (unless `baselines` is false), then the
    /// tuned classifier in `classifier`, each on `test`.
    public static func run(encoder: String, classifier: String, train: [LabelledText], test: [LabelledText], labels: [String],
                           descriptions: [String], baselines: Bool = true, threads: Int,
                           progress: (String) -> Void = { _ in }) throws -> [SystemResult] {
        let gold = test.map(\.label)
        func result(_ name: String, _ preds: [String], _ seconds: Double) -> SystemResult {
            let correct = zip(preds, gold).map { $0 == $1 ? 1.0 : 0.0 }
            let f1 = Estimate(resampling: preds.count) { idx in Metric.macroF1(predictions: idx.map { preds[$0] }, gold: idx.map { gold[$0] }) }
            return SystemResult(name: name, predictions: preds, correct: correct, accuracy: Estimate(correct), macroF1: f1,
                                pValue: nil, secondsPerItem: seconds / Double(max(1, preds.count)))
        }
        var out: [SystemResult] = []
        if baselines {
            let emb = try SentenceEmbedder(encoder, threads: threads)
            progress("zero-shot: embedding \(test.count) test texts")
            // Per-item time: embedding the test texts plus the prediction (the probe's training is not per item).
            var t0 = Date()
            let testVectors = try emb.embed(test.map(\.text))
            let embedSeconds = Date().timeIntervalSince(t0)
            t0 = Date()
            let zs = try ZeroShotClassifier(embedder: emb, labels: labels, descriptions: descriptions)
            out.append(result("zero-shot (label descriptions)", zs.predict(testVectors).map(\.label), embedSeconds + Date().timeIntervalSince(t0)))
            progress("linear probe: embedding \(train.count) training texts")
            let trainVectors = try emb.embed(train.map(\.text))
            let probe = LinearProbe(embeddings: trainVectors, labels: train.map(\.label), classes: labels)
            t0 = Date()
            let probePredictions = probe.predict(testVectors).map(\.label)
            out.append(result("linear probe (frozen embeddings)", probePredictions, embedSeconds + Date().timeIntervalSince(t0)))
        }
        progress("fine-tuned classifier: \(test.count) test texts")
        let clf = try SequenceClassifier(directory: classifier, threads: threads)
        let t0 = Date()
        let preds = try clf.classify(test.map(\.text)).map(\.label)
        out.append(result("fine-tuned encoder", preds, Date().timeIntervalSince(t0)))
        for i in 1..<out.count { out[i].pValue = Significance.pairedPValue(out[i].correct, out[0].correct) }
        return out
    }

    public static func json(_ results: [SystemResult]) -> JSONValue {
        .object([("items", .int(results.first?.correct.count ?? 0)), ("systems", .array(results.map { r in
            .object([("system", .string(r.name)), ("accuracy", .double(r.accuracy.mean)), ("accuracy_low", .double(r.accuracy.low)),
                     ("accuracy_high", .double(r.accuracy.high)), ("macro_f1", .double(r.macroF1.mean)),
                     ("p_value_vs_first", r.pValue.map { .double($0) } ?? .null), ("seconds_per_item", .double(r.secondsPerItem))])
        }))])
    }

    public static func markdown(_ results: [SystemResult], test: String, trainCount: Int, summary: EncoderTrainingSummary?) -> String {
        var s = "# Classifier evaluation\n\n\(results.first?.correct.count ?? 0) test items from `\(test)`; \(trainCount) training examples. 95% bootstrap intervals; p: paired randomization test against the first row.\n\n"
        s += "| System | Accuracy | 95% CI | Macro-F1 | p | ms / item |\n|---|---|---|---|---|---|\n"
        for r in results {
            s += String(format: "| %@ | %.1f%% | %.1f–%.1f%% | %.3f | %@ | %.1f |\n", r.name, 100 * r.accuracy.mean, 100 * r.accuracy.low, 100 * r.accuracy.high,
                        r.macroF1.mean, r.pValue.map { $0 < 0.001 ? "< 0.001" : String(format: "%.3f", $0) } ?? "–", 1000 * r.secondsPerItem)
        }
        if let summary {
            s += String(format: "\nTraining: %d steps in %.0f s (%.1f examples/s)", summary.steps, summary.seconds, summary.samplesPerSecond)
            if let b = summary.best { s += String(format: "; best validation accuracy %.1f%%", 100 * b.accuracy) }
            s += ".\n"
        }
        return s
    }
}

public struct RetrievalScore: Sendable {
    public var ndcg10: Double
    public var recall10: Double
    public var queries: Int

    /// nDCG@10 and Recall@10 of `model` on `beir` (corpus.jsonl, queries.jsonl, qrels/test.tsv):
    /// vector retrieval through `RetrievalEvaluator`, the numbers `tailor eval retrieval` gives.
    public static func measure(beir: String, model: String, threads: Int, progress: @escaping (String) -> Void = { _ in }) throws -> RetrievalScore {
        var e = RetrievalEvaluator(beir: beir)
        e.embedder = model
        e.modes = [.vector]
        e.threads = threads
        let m = try e.run(progress: progress).modes[0].metrics
        return RetrievalScore(ndcg10: m.ndcg10, recall10: m.recall10, queries: m.queries)
    }
}

public enum PairGenerator {
    public struct Passage: Sendable {
        public var key: String
        public var title: String?
        public var text: String
        /// The first passage of its document (titles make one pair per document).
        public var first: Bool
    }

    /// Documents of a JSONL corpus: {"_id" or "id", "title", "text"}.
    public static func passages(corpus path: String) throws -> [Passage] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw TuningError.badData("\(path): cannot read the file") }
        var out: [Passage] = []
        for (i, line) in text.split(separator: "\n").enumerated() {
            guard let o = try? JSONValue.parse(String(line)), let t = o["text"]?.string else {
                throw TuningError.badData("\(path):\(i + 1): needs a JSON object with a \"text\" string")
            }
            let key = o["_id"]?.string ?? o["id"]?.string ?? o["_id"]?.int.map(String.init) ?? "\(i + 1)"
            let title = o["title"]?.string.flatMap { $0.isEmpty ? nil : $0 }
            out.append(Passage(key: key, title: title, text: t, first: true))
        }
        return out
    }

    /// The chunks of a collection, in document order.
    public static func passages(collection: String) throws -> [Passage] {
        let store = try Collections.open(collection)
        let ids = try store.vectors().ids
        var out: [Passage] = [], seen = Set<String>()
        for start in stride(from: 0, to: ids.count, by: 512) {
            for c in try store.chunks(Array(ids[start..<min(ids.count, start + 512)])) {
                let first = seen.insert(c.documentKey).inserted
                out.append(Passage(key: c.documentKey, title: c.title, text: c.text, first: first))
            }
        }
        return out
    }

    /// Pairs: title → text (first passage of each titled document, titles of 3+ words), and one
    /// sentence of 6+ words → the rest of its passage (the sentence is left in 1 time in 10, so
    /// the model also learns plain word overlap), seeded.
    public static func pairs(_ passages: [Passage], titles: Bool, sentences: Bool, seed: UInt64) -> [TextPair] {
        var rng = SplitMix64(seed: seed)
        var out: [TextPair] = []
        for p in passages {
            if titles, p.first, let t = p.title, t.split(separator: " ").count >= 3 {
                out.append(TextPair(query: t, passage: p.text))
            }
            if sentences {
                let ss = split(p.text)
                let candidates = ss.indices.filter { ss[$0].split(separator: " ").count >= 6 }
                guard ss.count >= 2, !candidates.isEmpty else { continue }
                let pick = candidates[Int(rng.next() % UInt64(candidates.count))]
                let keep = rng.nextUnit() < 0.1
                let rest = ss.enumerated().filter { keep || $0.offset != pick }.map(\.element).joined(separator: " ")
                guard rest.split(separator: " ").count >= 10 else { continue }
                out.append(TextPair(query: ss[pick], passage: rest))
            }
        }
        return out
    }

    /// Questions drafted by a language model from passages (one per passage; at most `limit`
    /// passages, spread evenly over the list): the model is asked for one question the passage
    /// answers, greedy, and the first line is kept when it is a question of 4+ words.
    public static func draftQuestions(_ passages: [Passage], model: LanguageModel, limit: Int,
                                      progress: (Int, Int) -> Void = { _, _ in }, shouldStop: () -> Bool = { false }) throws -> [TextPair] {
        let stride = max(1, passages.count / max(1, limit))
        let chosen = Swift.stride(from: 0, to: passages.count, by: stride).prefix(limit).map { passages[$0] }
        var out: [TextPair] = []
        for (i, p) in chosen.enumerated() {
            if shouldStop() { break }
            let text = String(p.text.prefix(1500))
            // The passage first, then the request: small chat models follow this order best.
            let ask = "\(text)\n\nWrite a question about the text above."
            let ids = model.encodeChat(try model.chatTemplate.render([.user(ask)], addGenerationPrompt: true))
            let r = try model.generator().generate(prompt: ids, maxTokens: 40, sampling: .greedy, stop: ["\n"],
                                                   cache: model.makeCache(maxTokens: ids.count + 41))
            let q = r.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if q.hasSuffix("?"), q.split(separator: " ").count >= 4 { out.append(TextPair(query: q, passage: p.text)) }
            progress(i + 1, chosen.count)
        }
        return out
    }

    /// Sentences: split after . ! ? followed by a space and an upper-case letter or digit.
    static func split(_ text: String) -> [String] {
        let chars = Array(text)
        var out: [String] = [], start = 0
        var i = 0
        while i < chars.count {
            if ".!?".contains(chars[i]), i + 2 < chars.count, chars[i + 1] == " ", chars[i + 2].isUppercase || chars[i + 2].isNumber {
                out.append(String(chars[start...i]).trimmingCharacters(in: .whitespaces))
                start = i + 2
                i += 2
                continue
            }
            i += 1
        }
        if start < chars.count { out.append(String(chars[start...]).trimmingCharacters(in: .whitespaces)) }
        return out.filter { !$0.isEmpty }
    }
}
