// The comparison: the same evaluation items through up to four systems — the base model, base +
// retrieval (RAG), the fine-tuned model (LoRA adapter), fine-tuned + RAG — with identical prompts
// and greedy decoding, scored per item, with costs measured along the way. Results are cached
// per item, so an interrupted comparison resumes where it stopped.
import Foundation
import TailorFormats
import TailorModels
import TailorRAG
import TailorTuning

public enum SystemKind: String, Codable, CaseIterable, Sendable {
    case base, rag = "base+rag", tuned, tunedRAG = "tuned+rag"
    /// A fine-tuned encoder (BERT-family) classifier: classification tasks only.
    case classifier = "encoder-classifier"
    public var usesRetrieval: Bool { self == .rag || self == .tunedRAG }
    public var usesAdapter: Bool { self == .tuned || self == .tunedRAG }
    public var needsTraining: Bool { usesAdapter || self == .classifier }
    public var title: String {
        switch self {
        case .base: return "Base model"
        case .rag: return "RAG"
        case .tuned: return "Fine-tuned"
        case .tunedRAG: return "Fine-tuned + RAG"
        case .classifier: return "Fine-tuned encoder classifier"
        }
    }
}

/// One system's output on one item, with its scores and timings.
public struct ItemResult: Codable, Sendable {
    public var id: String
    public var system: SystemKind
    public var answer: String
    public var label: String?
    public var scores: [String: Double]
    public var latencyMs: Double
    public var timeToFirstTokenMs: Double
    public var generatedTokens: Int
    public var tokensPerSecond: Double
    public var sources: [String]?
}

public struct ExperimentOptions: Sendable {
    public var template = LabelClassifier.defaultTemplate
    public var labels: [String]?
    public var maxTokens: [TaskKind: Int] = [.qa: 48, .classification: 8, .generation: 96]
    /// Passages per RAG answer.
    public var ragPassages = 4
    public init() {}
}

public final class Experiment {
    public let model: LanguageModel
    public let set: EvalSet
    public var options: ExperimentOptions
    public let engine: QueryEngine?
    public let adapter: LoRAAdapter?
    /// A fine-tuned encoder classifier (classification sets only).
    public var classifier: SequenceClassifier?
    /// Where per-item results are cached (nil: no cache).
    public let cacheDirectory: String?
    public var shouldStop: () -> Bool = { false }

    public init(model: LanguageModel, set: EvalSet, engine: QueryEngine?, adapter: LoRAAdapter?, options: ExperimentOptions = .init(),
                cacheDirectory: String?) {
        self.model = model
        self.set = set
        self.engine = engine
        self.adapter = adapter
        self.options = options
        self.cacheDirectory = cacheDirectory
    }

    /// The systems this experiment can run: retrieval needs a collection, tuned ones an adapter.
    public var systems: [SystemKind] {
        SystemKind.allCases.filter {
            $0 == .classifier ? classifier != nil && set.kind == .classification
                : (!$0.usesRetrieval || engine != nil) && (!$0.usesAdapter || adapter != nil)
        }
    }

    public var labels: [String] { options.labels ?? set.labels }

    /// The user message for an item, the same for every system (RAG systems put the retrieved
    /// passages around it).
    public func prompt(_ item: EvalItem) -> String {
        switch item.kind {
        case .qa, .generation: return item.input
        case .classification:
            return options.template.replacingOccurrences(of: "{labels}", with: labels.joined(separator: ", "))
                .replacingOccurrences(of: "{input}", with: item.input)
        }
    }

    // MARK: running

    /// Runs every system on every item (cached results are reused); `progress(system, done, total)`.
    public func run(progress: (SystemKind, Int, Int) -> Void = { _, _, _ in }) throws -> [SystemKind: [ItemResult]] {
        var out: [SystemKind: [ItemResult]] = [:]
        for s in systems {
            var cached = loadCache(s)
            var results: [ItemResult] = []
            for (i, item) in set.items.enumerated() {
                if shouldStop() { break }
                let key = cacheKey(item, system: s)
                if let r = cached[key] { results.append(r) } else {
                    let r = try run(s, item)
                    results.append(r)
                    cached[key] = r
                    appendCache(s, key: key, r)
                }
                progress(s, i + 1, set.items.count)
            }
            out[s] = results
            if shouldStop() { break }
        }
        return out
    }

    /// One system on one item.
    public func run(_ s: SystemKind, _ item: EvalItem) throws -> ItemResult {
        let adapters = s.usesAdapter ? adapter.map { [AdapterUse($0, name: "tuned")] } ?? [] : []
        let maxTokens = options.maxTokens[item.kind] ?? 64
        let text: String
        var latency = 0.0, ttft = 0.0, tps = 0.0, generated = 0
        var sources: [String]? = nil
        var ragScores: [String: Double] = [:]
        if s == .classifier, let classifier {
            let start = Date()
            text = try classifier.classify([item.input])[0].label
            latency = Date().timeIntervalSince(start) * 1000
            ttft = latency
        } else if s.usesRetrieval, let engine {
            var settings = engine.defaults
            settings.passages = options.ragPassages
            settings.sampling = .greedy
            settings.answerTokens = maxTokens
            settings.adapters = adapters
            let a = try engine.ask(prompt(item), settings: settings)
            text = a.text
            latency = a.timings.totalMs
            ttft = a.timings.timeToFirstTokenMs
            tps = a.timings.tokensPerSecond
            generated = a.timings.generatedTokens
            sources = a.sources.map { "\($0.path)#\($0.location)" }
            if item.kind == .qa {
                ragScores["retrieval_recall"] = a.sources.contains { Metric.contains($0.text, item.references) == 1 } ? 1 : 0
                ragScores["citations_valid"] = a.invalidCitations.isEmpty && (!a.used.isEmpty || !a.covered) ? 1 : 0
            }
        } else {
            let start = Date()
            let ids = model.encodeChat(try model.chatTemplate.render([.user(prompt(item))], addGenerationPrompt: true))
            let r = try model.generator(adapters: adapters).generate(prompt: ids, maxTokens: maxTokens, sampling: .greedy,
                                                   stop: item.kind == .classification ? ["\n"] : [],
                                                   cache: model.makeCache(maxTokens: ids.count + maxTokens + 1))
            text = r.text.trimmingCharacters(in: .whitespacesAndNewlines)
            latency = Date().timeIntervalSince(start) * 1000
            ttft = r.prefillSeconds * 1000
            tps = r.tokensPerSecond
            generated = r.tokens.count
        }
        var scores = ragScores
        var label: String? = nil
        switch item.kind {
        case .qa:
            scores["exact_match"] = Metric.exactMatch(text, item.references)
            scores["f1"] = Metric.tokenF1(text, item.references)
            scores["contains"] = Metric.contains(text, item.references)
        case .classification:
            label = LabelClassifier.match(text, labels: labels)
            scores["accuracy"] = label == item.references[0] ? 1 : 0
        case .generation:
            scores["rouge_l"] = Metric.rougeL(text, item.references[0])
            scores["chrf"] = Metric.chrF(text, item.references[0])
        }
        return ItemResult(id: item.id, system: s, answer: text, label: label, scores: scores, latencyMs: latency,
                          timeToFirstTokenMs: ttft, generatedTokens: generated, tokensPerSecond: tps, sources: sources)
    }

    // MARK: cache

    /// What a system's answers depend on besides the item: the model file, the adapter's
    /// weights, the collection's contents (its generation). A change makes new cache keys.
    lazy var systemFingerprints: [SystemKind: String] = {
        var adapterHash: UInt64 = 0xcbf2_9ce4_8422_2325
        if let adapter {
            for v in adapter.parameters { adapterHash = (adapterHash ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
        }
        let store = engine.map { e in "\(e.retriever.store.location)@\((try? e.retriever.store.generation()) ?? -1)" } ?? ""
        var classifierID = ""
        if let c = classifier, let a = try? FileManager.default.attributesOfItem(atPath: c.directory + "/model.safetensors") {
            classifierID = c.directory + "@\((a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)/\((a[.size] as? Int) ?? 0)"
        }
        return [.classifier: classifierID, .base: model.path, .rag: model.path + "|" + store,
                .tuned: model.path + "|" + String(adapterHash, radix: 16), .tunedRAG: model.path + "|" + String(adapterHash, radix: 16) + "|" + store]
    }()

    func cacheKey(_ item: EvalItem, system: SystemKind) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        let text = (systemFingerprints[system] ?? "") + "\u{1}" + item.id + "\u{1}" + prompt(item) + "\u{1}" + item.references.joined(separator: "\u{2}")
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    func cachePath(_ s: SystemKind) -> String? {
        cacheDirectory.map { $0 + "/" + s.rawValue.replacingOccurrences(of: "+", with: "-") + ".jsonl" }
    }

    func loadCache(_ s: SystemKind) -> [String: ItemResult] {
        guard let p = cachePath(s), let text = try? String(contentsOfFile: p, encoding: .utf8) else { return [:] }
        var out: [String: ItemResult] = [:]
        let dec = JSONDecoder()
        for line in text.split(separator: "\n") {
            guard let entry = try? dec.decode(CacheEntry.self, from: Data(line.utf8)) else { continue }   // a torn last line
            out[entry.key] = entry.result
        }
        return out
    }

    struct CacheEntry: Codable { var key: String; var result: ItemResult }

    func appendCache(_ s: SystemKind, key: String, _ r: ItemResult) {
        guard let p = cachePath(s), let data = try? JSONEncoder().encode(CacheEntry(key: key, result: r)) else { return }
        if !FileManager.default.fileExists(atPath: p) { FileManager.default.createFile(atPath: p, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: p) else { return }
        h.seekToEndOfFile()
        h.write(data + Data("\n".utf8))
        try? h.close()
    }
}

/// What it cost to build each system, measured by the caller.
public struct Costs: Codable, Sendable {
    public var trainingSeconds: Double?
    public var trainingPeakBytes: Int?
    public var trainingTokensPerSecond: Double?
    public var trainingExamples: Int?
    public var adapterBytes: Int?
    /// The encoder classifier's training.
    public var classifierTrainingSeconds: Double?
    public var classifierExamplesPerSecond: Double?
    public var classifierBytes: Int?
    public var indexSeconds: Double?
    public var indexBytes: Int?
    public var indexChunks: Int?
    public var indexDocuments: Int?
    public init() {}
}

/// The summary of one system over the items: each metric with its interval and paired p-value
/// against the base model, and latency figures.
public struct SystemSummary: Codable, Sendable {
    public var system: SystemKind
    public var items: Int
    public var metrics: [String: Estimate]
    public var pValueVsBase: [String: Double]
    public var latencyP50Ms: Double
    public var latencyP95Ms: Double
    public var timeToFirstTokenP50Ms: Double
    public var tokensPerSecond: Double
}

public enum Summaries {
    public static func metricNames(_ kind: TaskKind) -> [String] {
        switch kind {
        case .qa: return ["contains", "f1", "exact_match", "retrieval_recall", "citations_valid"]
        case .classification: return ["accuracy", "macro_f1"]
        case .generation: return ["rouge_l", "chrf"]
        }
    }

    /// The headline metric. For QA it is "answer contains": small chat models answer in whole
    /// sentences ("The 37th President was Richard Nixon."), which exact match scores 0 and token
    /// F1 penalizes for every extra word, although the answer is right.
    public static func primary(_ kind: TaskKind) -> String {
        switch kind { case .qa: return "contains"; case .classification: return "accuracy"; case .generation: return "rouge_l" }
    }

    public static func percentile(_ v: [Double], _ p: Double) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted()
        return s[min(s.count - 1, Int((p * Double(s.count - 1)).rounded()))]
    }

    public static func summarize(_ results: [SystemKind: [ItemResult]], set: EvalSet, labels: [String]) -> [SystemSummary] {
        let gold = Dictionary(set.items.map { ($0.id, $0.references) }, uniquingKeysWith: { a, _ in a })
        let base = results[.base]
        return SystemKind.allCases.compactMap { s -> SystemSummary? in
            guard let rs = results[s], !rs.isEmpty else { return nil }
            var metrics: [String: Estimate] = [:], pv: [String: Double] = [:]
            for m in metricNames(set.kind) {
                if m == "macro_f1" {
                    let pred = rs.map(\.label), g = rs.map { gold[$0.id]?.first ?? "" }
                    metrics[m] = Estimate(resampling: rs.count) { idx in Metric.macroF1(predictions: idx.map { pred[$0] }, gold: idx.map { g[$0] }) }
                    continue
                }
                let values = rs.compactMap { $0.scores[m] }
                guard values.count == rs.count else { continue }
                metrics[m] = Estimate(values)
                if s != .base, let base, base.count == rs.count, zip(base, rs).allSatisfy({ $0.id == $1.id }) {
                    let b = base.compactMap { $0.scores[m] }
                    if b.count == values.count { pv[m] = Significance.pairedPValue(values, b) }
                }
            }
            return SystemSummary(system: s, items: rs.count, metrics: metrics, pValueVsBase: pv,
                                 latencyP50Ms: percentile(rs.map(\.latencyMs), 0.5), latencyP95Ms: percentile(rs.map(\.latencyMs), 0.95),
                                 timeToFirstTokenP50Ms: percentile(rs.map(\.timeToFirstTokenMs), 0.5),
                                 tokensPerSecond: percentile(rs.map(\.tokensPerSecond), 0.5))
        }
    }
}
