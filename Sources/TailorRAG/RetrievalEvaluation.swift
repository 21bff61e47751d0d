// Retrieval quality on a BEIR-layout test set (Thakur et al. 2021): corpus.jsonl, queries.jsonl,
// qrels TSV. Metrics as pytrec_eval computes them for BEIR: nDCG@10 with linear gains, Recall@k,
// and MRR@10, averaged over the queries that have judgements, at the document level (a
// document ranks where its best chunk ranks).
import Foundation
import TailorFormats
import TailorKernels
import TailorModels

public struct RetrievalMetrics: Codable, Sendable, Equatable {
    public var ndcg10 = 0.0
    public var recall10 = 0.0
    public var recall100 = 0.0
    public var mrr10 = 0.0
    public var queries = 0
}

public enum RetrievalEvaluation {
    /// Queries (id → text) from a BEIR queries.jsonl.
    public static func loadQueries(_ path: String) throws -> [(id: String, text: String)] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) }
        catch { throw RAGError.unreadable(path: path, reason: "\(error.localizedDescription)") }
        var out: [(String, String)] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.allSatisfy(\.isWhitespace) {
            guard let v = try? JSONValue.parse(String(line)) else { throw RAGError.badRecord(path: path, line: i + 1, detail: "not valid JSON") }
            guard let id = v["_id"].flatMap(JSONLoader.scalar) ?? v["id"].flatMap(JSONLoader.scalar), let t = v["text"]?.string else {
                throw RAGError.badRecord(path: path, line: i + 1, detail: "a query needs \"_id\" and \"text\"")
            }
            out.append((id, t))
        }
        return out
    }

    /// Judgements: query id → (document id → relevance), from a TSV with an optional header.
    public static func loadQrels(_ path: String) throws -> [String: [String: Int]] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) }
        catch { throw RAGError.unreadable(path: path, reason: "\(error.localizedDescription)") }
        var out: [String: [String: Int]] = [:]
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let f = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
            if f.isEmpty { continue }
            if i == 0 && f.first == "query-id" { continue }
            // BEIR: query-id corpus-id score; TREC: query-id 0 corpus-id score.
            guard f.count == 3 || f.count == 4, let score = Int(f.last!) else {
                throw RAGError.badRecord(path: path, line: i + 1, detail: "expected 'query-id<TAB>corpus-id<TAB>score'")
            }
            out[f[0], default: [:]][f[f.count - 2]] = score
        }
        return out
    }

    /// nDCG@10, Recall@10, Recall@100 and reciprocal rank@10 of one ranking.
    public static func score(ranked: [String], relevant: [String: Int]) -> RetrievalMetrics {
        var m = RetrievalMetrics(queries: 1)
        var dcg = 0.0
        for (i, d) in ranked.prefix(10).enumerated() { if let r = relevant[d], r > 0 { dcg += Double(r) / log2(Double(i + 2)) } }
        let ideal = relevant.values.filter { $0 > 0 }.sorted(by: >)
        var idcg = 0.0
        for (i, r) in ideal.prefix(10).enumerated() { idcg += Double(r) / log2(Double(i + 2)) }
        m.ndcg10 = idcg > 0 ? dcg / idcg : 0
        let rel = Set(relevant.filter { $0.value > 0 }.keys)
        if !rel.isEmpty {
            m.recall10 = Double(ranked.prefix(10).filter(rel.contains).count) / Double(rel.count)
            m.recall100 = Double(ranked.prefix(100).filter(rel.contains).count) / Double(rel.count)
        }
        if let first = ranked.prefix(10).firstIndex(where: rel.contains) { m.mrr10 = 1 / Double(first + 1) }
        return m
    }

    public static func mean(_ ms: [RetrievalMetrics]) -> RetrievalMetrics {
        guard !ms.isEmpty else { return RetrievalMetrics() }
        let n = Double(ms.count)
        return RetrievalMetrics(ndcg10: ms.map(\.ndcg10).reduce(0, +) / n, recall10: ms.map(\.recall10).reduce(0, +) / n,
                                recall100: ms.map(\.recall100).reduce(0, +) / n, mrr10: ms.map(\.mrr10).reduce(0, +) / n, queries: ms.count)
    }

    /// Document ids in the order their first chunk appears (a chunk key is `path#id`).
    public static func documentRanking(_ results: [ScoredChunk]) -> [String] {
        var seen: Set<String> = [], out: [String] = []
        for r in results {
            let key = r.chunk.documentKey
            let id = key.hasPrefix(r.chunk.path + "#") ? String(key.dropFirst(r.chunk.path.count + 1)) : key
            if seen.insert(id).inserted { out.append(id) }
        }
        return out
    }
}

/// The one retrieval evaluator: the corpus is ingested into a collection as `tailor ingest` would
/// (chunked, embedded), each judged query is retrieved in each mode, and documents are scored by
/// their best chunk. `tailor eval retrieval` and the retriever fine-tuning's before/after both
/// report its numbers.
public struct RetrievalEvaluator {
    public struct ModeResult: Codable, Sendable { public var mode: String; public var metrics: RetrievalMetrics; public var msPerQuery: Double }
    public struct Report: Codable, Sendable {
        public var corpus: String, embedder: String, documents: Int, chunks: Int, chunkTokens: Int, queries: Int
        public var ingestSeconds: Double, queryEmbeddingMsPerQuery: Double, modes: [ModeResult]
    }

    public var corpus: String
    public var queries: String
    public var qrels: String
    /// Embedding model (default: the collection's, else all-MiniLM-L6-v2).
    public var embedder: String?
    /// Keep the ingested corpus in this collection and reuse it (nil: a temporary one).
    public var collection: String?
    /// Where the collection is made (nil: TAILOR_STORE, else the default folder).
    public var store: StoreLocation?
    public var modes: [RetrievalMode] = [.vector, .keyword, .hybrid]
    /// Chunks retrieved per query (enough for 100 distinct documents).
    public var depth = 300
    public var chunkTokens: Int?
    public var threads = ThreadPool.availableCores

    public init(corpus: String, queries: String, qrels: String) {
        self.corpus = corpus
        self.queries = queries
        self.qrels = qrels
    }

    /// A BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.
    public init(beir folder: String) {
        self.init(corpus: folder + "/corpus.jsonl", queries: folder + "/queries.jsonl", qrels: folder + "/qrels/test.tsv")
    }

    public func run(shouldStop: @escaping () -> Bool = { false }, progress: @escaping (String) -> Void = { _ in }) throws -> Report {
        let qs = try RetrievalEvaluation.loadQueries(queries)
        let judged = try RetrievalEvaluation.loadQrels(qrels)
        guard FileManager.default.isReadableFile(atPath: corpus) else { throw RAGError.badInput("\(corpus): no such file") }
        let evalQueries = qs.filter { judged[$0.id] != nil }
        guard !evalQueries.isEmpty else { throw RAGError.badInput("none of the \(qs.count) queries in \(queries) has a judgement in \(qrels)") }

        let temp = collection == nil
        let location = try store ?? .default
        let tempName = "tailor-eval-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let spec: String?
        switch location {
        case .folder: spec = temp ? FileManager.default.temporaryDirectory.appendingPathComponent(tempName).path : collection
        case .postgres: spec = temp ? tempName : collection
        }
        defer {
            if temp, let spec {
                if case .folder = location { try? FileManager.default.removeItem(atPath: spec) } else { try? Collections.delete(spec, at: location) }
            }
        }
        let kb = try KnowledgeBase.open(spec, store: location, embedder: embedder, create: true, threads: threads)
        var opts = IngestOptions()
        opts.loader = LoaderOptions(textField: "text", idField: "_id")
        let summary = try kb.ingest([corpus], options: opts, chunkTokens: chunkTokens, shouldStop: shouldStop) { p in
            if p.phase == .embedding {
                var s = String(format: "embedding the corpus: %d/%d chunks, %.1f chunks/s", p.chunksDone, p.chunksTotal, p.chunksPerSecond)
                if let eta = p.eta { s += String(format: ", ETA %.0f s", eta) }
                progress(s)
            } else if p.phase == .reading { progress("reading the corpus…") }
        }
        if summary.interrupted { throw CancellationError() }
        if let f = summary.failed.first { throw RAGError.badInput(f.reason) }
        let stats = try kb.store.stats()
        var settings = RetrievalSettings()
        settings.candidates = depth
        var index = IndexOptions()
        index.threads = threads
        let retriever = try kb.retriever(defaults: settings, index: index)
        let t0 = Date()
        let vectors = try kb.embedder.embed(evalQueries.map(\.text)).map(VectorMatrix.normalized)
        let queryEmbedSeconds = Date().timeIntervalSince(t0)
        var rows: [ModeResult] = []
        for mode in modes {
            settings.mode = mode
            var per: [RetrievalMetrics] = []
            let start = Date()
            for (i, q) in evalQueries.enumerated() {
                if shouldStop() { throw CancellationError() }
                let results = try retriever.retrieve(q.text, vector: vectors[i], k: depth, filter: nil, settings: settings)
                per.append(RetrievalEvaluation.score(ranked: RetrievalEvaluation.documentRanking(results), relevant: judged[q.id]!))
                progress("\(mode.rawValue): \(i + 1)/\(evalQueries.count) queries")
            }
            let secs = Date().timeIntervalSince(start)
            rows.append(ModeResult(mode: mode.rawValue, metrics: RetrievalEvaluation.mean(per), msPerQuery: 1000 * secs / Double(evalQueries.count)))
        }
        return Report(corpus: corpus, embedder: kb.embedder.name, documents: stats.documents, chunks: stats.chunks,
                      chunkTokens: kb.chunker(maxTokens: chunkTokens).maxTokens, queries: evalQueries.count, ingestSeconds: summary.seconds,
                      queryEmbeddingMsPerQuery: 1000 * queryEmbedSeconds / Double(evalQueries.count), modes: rows)
    }
}
