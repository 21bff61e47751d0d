// `tailor compare` end to end: build what the systems need (a collection from documents, an
// adapter from training data), measure what that costs, run the experiment, optionally test
// freshness with documents added afterwards, and write the report. Every step resumes: the
// collection only embeds new files, training resumes from its checkpoint, items are cached.
import Foundation
import TailorFormats
import TailorKernels
import TailorModels
import TailorRAG
import TailorTuning

public struct ComparisonConfig: Sendable {
    public var evalPath: String
    public var model: String?
    public var collection: String?
    /// Where `collection` is (nil: TAILOR_STORE, else the default folder).
    public var store: StoreLocation?
    public var documents: [String] = []
    public var adapter: String?
    public var train: String?
    public var tune = TuneOptions()
    /// An encoder classifier (a `tailor tune-classifier` directory) for classification sets.
    public var classifier: String?
    /// Train an encoder classifier from the labelled --train items (into OUT/classifier).
    public var tuneClassifier: EncoderTuneOptions?
    /// The encoder it starts from (default: all-MiniLM-L6-v2).
    public var classifierEncoder: String?
    public var experiment = ExperimentOptions()
    public var freshDocuments: [String] = []
    public var freshEval: String?
    public var declared = Declared()
    public var outputDirectory = "compare-report"
    public var limit: Int?
    public var threads = ThreadPool.availableCores
    public init(evalPath: String) { self.evalPath = evalPath }
}

public enum ComparisonEvent: Sendable {
    case note(String)
    case ingest(done: Int, total: Int)
    case training(TrainingEvent)
    case items(system: SystemKind, done: Int, total: Int, fresh: Bool)
}

public final class Comparison {
    public let config: ComparisonConfig
    public var shouldStop: () -> Bool = { false }

    public init(_ config: ComparisonConfig) { self.config = config }

    var out: String { config.outputDirectory }

    public func run(_ report: (ComparisonEvent) -> Void = { _ in }) throws -> ComparisonReport {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var set = try EvalSet.load(config.evalPath)
        if let n = config.limit { set.items = Array(set.items.prefix(n)) }
        var notes: [String] = []
        let lm = try LanguageModel(config.model, threads: config.threads)
        var costs = loadCosts()
        var options = config.experiment
        if set.kind == .classification, options.labels == nil { options.labels = set.labels }

        // Retrieval: an existing collection, or one built here from documents.
        var store: (any CollectionStore)?
        if let c = config.collection {
            store = try Collections.open(c, at: config.store)
            let st = try store!.stats()
            costs.indexBytes = Int(st.bytes); costs.indexChunks = st.chunks; costs.indexDocuments = st.documents
            notes.append("RAG uses the existing collection \(st.name) (\(st.documents) documents, \(st.chunks) chunks); its build time is not measured here.")
        } else if !config.documents.isEmpty {
            let dir = URL(fileURLWithPath: out + "/collection")
            let (s, seconds) = try ingest(config.documents, into: dir, report)
            store = s
            if seconds > 0.5 || costs.indexSeconds == nil { costs.indexSeconds = max(seconds, costs.indexSeconds ?? 0) }
            let st = try s.stats()
            costs.indexBytes = Int(st.bytes); costs.indexChunks = st.chunks; costs.indexDocuments = st.documents
        }
        var engine: QueryEngine?
        if let store {
            let embedder = try SentenceEmbedder(try store.embedder()?.name, threads: config.threads)
            engine = QueryEngine(retriever: try Retriever(store: store, embedder: embedder), model: lm)
        }

        // Fine-tuning: an adapter given, or one trained here.
        guard let llama = lm.model as? LlamaModel else { throw TuningError.unsupportedModel("compare needs a Llama-family model for its adapter") }
        var adapter: LoRAAdapter?
        if let a = config.adapter {
            adapter = try AdapterFiles.load(a, for: llama.config)
            if let logged = TrainingLog.costs(adapterDirectory: a) {
                costs.trainingSeconds = logged.seconds; costs.trainingTokensPerSecond = logged.tokensPerSecond
                costs.trainingPeakBytes = logged.peakBytes; costs.trainingExamples = logged.examples
                costs.adapterBytes = (try? FileManager.default.attributesOfItem(atPath: a + "/" + AdapterFiles.peftWeights)[.size] as? Int) ?? nil
                notes.append("The fine-tuned systems use the adapter \(a); its training cost is read from its training log (metrics.jsonl).")
            } else {
                notes.append("The fine-tuned systems use the adapter \(a); its training cost is not known here.")
            }
        } else if let t = config.train {
            adapter = try train(t, model: lm, options: options, costs: &costs, report)
        }
        saveCosts(costs)
        if engine == nil { notes.append("No collection (-c) or documents (--docs): the RAG systems are not run.") }
        if adapter == nil { notes.append("No adapter (--adapter) or training data (--train): the fine-tuned systems are not run.") }

        var classifier: SequenceClassifier?
        if set.kind == .classification {
            var dir = config.classifier
            if dir == nil, let o = config.tuneClassifier, let t = config.train {
                dir = try trainClassifier(t, labels: options.labels ?? set.labels, options: o, costs: &costs, report)
            } else if let d = dir, let log = EncoderTrainingLog.costs(directory: d) {
                costs.classifierTrainingSeconds = log.seconds; costs.classifierExamplesPerSecond = log.examplesPerSecond
            }
            if let dir {
                let c = try SequenceClassifier(directory: dir, threads: config.threads)
                let missing = Set(set.labels).subtracting(c.labels)
                guard missing.isEmpty else {
                    throw TuningError.badData("the classifier \(dir) does not know the labels \(missing.sorted().joined(separator: ", ")) of \(config.evalPath) (it has \(c.labels.joined(separator: ", ")))")
                }
                costs.classifierBytes = (try? FileManager.default.attributesOfItem(atPath: dir + "/model.safetensors")[.size] as? Int) ?? nil
                classifier = c
                notes.append("The encoder classifier is \(dir) (\(c.encoder.config.layers) layers, \(c.encoder.config.hidden) wide).")
            }
        }
        saveCosts(costs)
        let exp = Experiment(model: lm, set: set, engine: engine, adapter: adapter, options: options, cacheDirectory: out + "/results")
        exp.classifier = classifier
        exp.shouldStop = shouldStop
        try FileManager.default.createDirectory(atPath: out + "/results", withIntermediateDirectories: true)
        let results = try exp.run { s, d, n in report(.items(system: s, done: d, total: n, fresh: false)) }
        if shouldStop() { throw CancellationError() }
        let summaries = Summaries.summarize(results, set: set, labels: exp.labels)

        // Freshness: new documents after training; RAG sees them, the tuned model does not.
        var fresh: [SystemSummary]?
        var freshCount: Int?
        if let fe = config.freshEval, !config.freshDocuments.isEmpty, let store {
            var freshSet = try EvalSet.load(fe)
            if let n = config.limit { freshSet.items = Array(freshSet.items.prefix(n)) }
            let dir = URL(fileURLWithPath: out + "/collection-fresh")
            // A working copy of the collection (from either backend), then the new documents into it.
            if !Collections.exists(dir) { _ = try CollectionCopy.copy(from: store, to: try SQLiteStore(directory: dir, create: true)) }
            let (fs, _) = try ingest(config.freshDocuments, into: dir, report)
            let fengine = QueryEngine(retriever: try Retriever(store: fs, embedder: try SentenceEmbedder(try fs.embedder()?.name, threads: config.threads)), model: lm)
            let fexp = Experiment(model: lm, set: freshSet, engine: fengine, adapter: adapter, options: options, cacheDirectory: out + "/results-fresh")
            fexp.shouldStop = shouldStop
            try FileManager.default.createDirectory(atPath: out + "/results-fresh", withIntermediateDirectories: true)
            let fr = try fexp.run { s, d, n in report(.items(system: s, done: d, total: n, fresh: true)) }
            if shouldStop() { throw CancellationError() }
            fresh = Summaries.summarize(fr, set: freshSet, labels: fexp.labels)
            freshCount = freshSet.items.count
        }

        let rec = Advisor.recommend(kind: set.kind, summaries: summaries, costs: costs, declared: config.declared, freshness: fresh)
        let df = ISO8601DateFormatter()
        df.formatOptions = [.withFullDate]
        let r = ComparisonReport(title: "Which approach fits? \(URL(fileURLWithPath: config.evalPath).lastPathComponent)",
                                 model: lm.name, evalPath: config.evalPath, kind: set.kind, items: set.items.count, summaries: summaries,
                                 costs: costs, declared: config.declared, freshness: fresh, freshItems: freshCount,
                                 recommendation: rec, notes: notes, date: df.string(from: Date()))
        try ReportWriter.write(r, to: out)
        return r
    }

    func ingest(_ paths: [String], into dir: URL, _ report: (ComparisonEvent) -> Void) throws -> (any CollectionStore, Double) {
        let existing = Collections.exists(dir) ? try SQLiteStore(directory: dir, create: false) : nil
        let embedder = try SentenceEmbedder(try existing?.embedder()?.name, threads: config.threads)
        let store = try existing ?? SQLiteStore(directory: dir, create: true)
        let chunker = Chunker(maxTokens: min(256, embedder.maxTokens - 2), overlap: 32, countTokens: embedder.countTokens)
        let ing = try Ingestor(store: store, embedder: embedder, chunker: chunker)
        ing.shouldStop = shouldStop
        let t0 = Date()
        let summary = try withoutActuallyEscaping(report) { report in
            try ing.ingest(paths) { p in report(.ingest(done: p.chunksDone, total: p.chunksTotal)) }
        }
        if summary.interrupted { throw CancellationError() }
        for f in summary.failed { report(.note("could not read \(f.path): \(f.reason)")) }
        return (store, summary.chunksEmbedded > 0 ? Date().timeIntervalSince(t0) : 0)
    }

    /// Trains (or resumes training) an adapter into OUT/adapter; the first complete run's cost is kept.
    func train(_ path: String, model lm: LanguageModel, options: ExperimentOptions, costs: inout Costs,
               _ report: (ComparisonEvent) -> Void) throws -> LoRAAdapter {
        let formatter = ExampleFormatter(model: lm)
        var examples: [TrainingExample]
        do { examples = try TrainingExample.load(path) } catch let e as DatasetError {
            // Labelled items ({"input", "label"}) train the model to answer the evaluation's prompt.
            guard let set = try? EvalSet.load(path), set.kind == .classification else { throw e }
            let exp = Experiment(model: lm, set: set, engine: nil, adapter: nil, options: options, cacheDirectory: nil)
            examples = set.items.map { .completion(prompt: exp.prompt($0), completion: $0.references[0]) }
        }
        var tokenized = try examples.map { try formatter.tokenize($0) }
        var val: [TokenizedExample] = []
        if tokenized.count >= 20 {
            (tokenized, val) = DataSplit.holdOut(tokenized, count: min(100, max(2, tokenized.count / 10)), seed: config.tune.seed)
        }
        let dir = out + "/adapter"
        let trainer = try LoRATrainer(model: lm, train: tokenized, validation: val, options: config.tune, outputDirectory: dir, threads: config.threads)
        trainer.stopRequested = shouldStop
        MemoryPeak.reset()
        let s = try trainer.run { report(.training($0)) }
        if shouldStop() { throw CancellationError() }
        if s.resumedFrom == nil || costs.trainingSeconds == nil {
            costs.trainingSeconds = s.seconds
            costs.trainingPeakBytes = MemoryPeak.bytes()
            costs.trainingTokensPerSecond = s.tokensPerSecond
        }
        costs.trainingExamples = tokenized.count
        costs.adapterBytes = (try? FileManager.default.attributesOfItem(atPath: dir + "/" + AdapterFiles.peftWeights)[.size] as? Int) ?? nil
        let llama = lm.model as! LlamaModel
        return try AdapterFiles.load(dir, for: llama.config)
    }

    /// Trains (or resumes) an encoder classifier on the labelled training items into OUT/classifier.
    func trainClassifier(_ path: String, labels: [String], options o: EncoderTuneOptions, costs: inout Costs,
                         _ report: (ComparisonEvent) -> Void) throws -> String {
        var items = try LabelledText.load(path)
        var val: [LabelledText] = []
        if items.count >= 20 {
            var rng = SplitMix64(seed: o.seed)
            for i in stride(from: items.count - 1, to: 0, by: -1) { items.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let n = min(200, max(2, items.count / 10))
            val = Array(items.suffix(n)); items.removeLast(n)
        }
        let dir = out + "/classifier"
        let encoder = try ModelCache.resolve(config.classifierEncoder, default: ModelCache.defaultEmbeddingModel)
        let trainer = try EncoderTrainer(classifierFrom: encoder, train: items, validation: val, labels: labels, options: o,
                                         outputDirectory: dir, threads: config.threads)
        trainer.stopRequested = shouldStop
        let s = try trainer.run { report(.training($0)) }
        if shouldStop() { throw CancellationError() }
        if s.resumedFrom == nil || costs.classifierTrainingSeconds == nil {
            costs.classifierTrainingSeconds = s.seconds
            costs.classifierExamplesPerSecond = s.samplesPerSecond
        }
        return dir
    }

    func loadCosts() -> Costs {
        guard let d = try? Data(contentsOf: URL(fileURLWithPath: out + "/costs.json")) else { return Costs() }
        return (try? JSONDecoder().decode(Costs.self, from: d)) ?? Costs()
    }

    func saveCosts(_ c: Costs) {
        if let d = try? JSONEncoder().encode(c) { try? d.write(to: URL(fileURLWithPath: out + "/costs.json"), options: .atomic) }
    }
}

/// What `tailor tune-classifier` logged about the run that made a classifier.
public enum EncoderTrainingLog {
    public static func costs(directory dir: String) -> (seconds: Double, examplesPerSecond: Double?)? {
        guard let text = try? String(contentsOfFile: dir + "/" + EncoderTrainer.metricsName, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        guard let last = lines.last(where: { $0["elapsed"] != nil }), let secs = last["elapsed"]?.double else { return nil }
        return (secs, last["samples_per_second"]?.double)
    }
}

/// What `tailor tune` logged about the run that made an adapter.
public enum TrainingLog {
    public static func costs(adapterDirectory dir: String) -> (seconds: Double, tokensPerSecond: Double?, peakBytes: Int?, examples: Int?)? {
        guard let text = try? String(contentsOfFile: dir + "/" + LoRATrainer.metricsName, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        guard let seconds = lines.compactMap({ $0["elapsed"]?.double }).last else { return nil }
        let tps = lines.compactMap { $0["tokens_per_second"]?.double }.last
        let peak = lines.compactMap { $0["peak_rss"]?.int }.max()
        var examples: Int?
        if let info = try? String(contentsOfFile: dir + "/tailor_training.json", encoding: .utf8), let v = try? JSONValue.parse(info) {
            examples = v["training_examples"]?.int
        }
        return (seconds, tps, peak, examples)
    }
}

/// The process's peak resident memory, resettable (Linux: /proc/self/clear_refs).
public enum MemoryPeak {
    public static func reset() { try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8) }
    public static func bytes() -> Int { DecoderBenchmark.peakResidentBytes() }
}
