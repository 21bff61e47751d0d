// Retrieval quality on a BEIR-layout test set (Thakur et al. 2021): corpus.jsonl, queries.jsonl,
// qrels TSV. Metrics as pytrec_eval computes them for BEIR: nDCG@10 with linear gains, Recall@k,
// and MRR@10, averaged over the queries that have judgements, at the document level (a
// document ranks where its best chunk ranks).
import Foundation
import TailorFormats

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
