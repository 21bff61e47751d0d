import ArgumentParser
import Foundation
import TailorKernels
import TailorModels
import TailorRAG

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure quality on your own data.",
        subcommands: [EvalRetrieval.self, EvalClassify.self])
}

struct EvalRetrieval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval",
        abstract: "Retrieval quality on a BEIR-layout test set: nDCG@10, Recall@10/100, MRR@10 per mode.",
        discussion: """
            The corpus is ingested into a collection (a temporary one, or --collection to keep and reuse it:
            a second run embeds nothing), then every judged query is run in each mode.
            """)

    @Option(help: "corpus.jsonl: {\"_id\", \"title\", \"text\"} per line.") var corpus: String
    @Option(help: "queries.jsonl: {\"_id\", \"text\"} per line.") var queries: String
    @Option(help: "qrels TSV: query-id, corpus-id, score.") var qrels: String
    @Option(name: [.short, .long], help: "Embedding model (default: all-MiniLM-L6-v2).") var model: String?
    @Option(name: [.customShort("c"), .long], help: "Keep the ingested corpus in this collection (name or folder) and reuse it.") var collection: String?
    @Option(help: "Modes to evaluate, comma-separated.") var modes: String = "vector,keyword,hybrid"
    @Option(name: .customLong("chunk-tokens"), help: "Most tokens per chunk (default: the embedder's limit).") var chunkTokens: Int?
    @Option(help: "Chunks retrieved per query (enough for 100 distinct documents).") var depth: Int = 300
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores
    @Flag(help: "Print the results as JSON.") var json = false

    func run() async throws {
        installInterruptHandler()
        let modeList: [RetrievalMode] = try modes.split(separator: ",").map {
            guard let m = RetrievalMode(rawValue: $0.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--modes: '\($0)' is not one of vector, keyword, hybrid")
            }
            return m
        }
        let qs = try runReportingErrors { try RetrievalEvaluation.loadQueries(queries) }
        let judged = try runReportingErrors { try RetrievalEvaluation.loadQrels(qrels) }
        guard FileManager.default.isReadableFile(atPath: corpus) else { note("error: \(corpus): no such file"); throw ExitCode.failure }
        let evalQueries = qs.filter { judged[$0.id] != nil }
        guard !evalQueries.isEmpty else { note("error: none of the \(qs.count) queries in \(queries) has a judgement in \(qrels)"); throw ExitCode.failure }

        let temp = collection == nil
        let dir = temp ? FileManager.default.temporaryDirectory.appendingPathComponent("tailor-eval-\(getpid())") : try runReportingErrors { try Collections.url(collection) }
        defer { if temp { try? FileManager.default.removeItem(at: dir) } }
        let existing = Collections.exists(dir) ? try runReportingErrors { try Store(directory: dir, create: false) } : nil
        let embedder = try runReportingErrors { try embedderFor(existing, model: model, threads: threads) }
        let store = try runReportingErrors { try existing ?? Store(directory: dir, create: true) }
        var opts = IngestOptions()
        opts.loader = LoaderOptions(textField: "text", idField: "_id")
        let chunker = Chunker(maxTokens: min(chunkTokens ?? 256, embedder.maxTokens - 2), overlap: 32, countTokens: embedder.countTokens)
        let ingestor = try runReportingErrors { try Ingestor(store: store, embedder: embedder, chunker: chunker, options: opts) }
        ingestor.shouldStop = { stopRequested.load(ordering: .relaxed) }
        let line = ProgressLine()
        let summary = try runReportingErrors {
            try ingestor.ingest([corpus]) { p in
                if p.phase == .embedding {
                    var s = String(format: "embedding the corpus: %d/%d chunks, %.1f chunks/s", p.chunksDone, p.chunksTotal, p.chunksPerSecond)
                    if let eta = p.eta { s += ", ETA " + formatDuration(eta) }
                    line.update(s)
                } else if p.phase == .reading { line.update("reading the corpus…") }
            }
        }
        line.finish()
        if summary.interrupted { throw ExitCode(130) }
        if !summary.failed.isEmpty { for f in summary.failed { note("error: \(f.reason)") }; throw ExitCode.failure }
        let stats = try store.stats()
        let ingestSeconds = summary.seconds

        let retriever = try runReportingErrors { try Retriever(store: store, embedder: embedder) }
        retriever.candidates = depth
        retriever.threads = threads
        let t0 = Date()
        let vectors = try runReportingErrors { try embedder.embed(evalQueries.map(\.text)) }.map(VectorMatrix.normalized)
        let queryEmbedSeconds = Date().timeIntervalSince(t0)
        var rows: [ModeResult] = []
        for mode in modeList {
            retriever.mode = mode
            var per: [RetrievalMetrics] = []
            let start = Date()
            for (i, q) in evalQueries.enumerated() {
                let results = try runReportingErrors { try retriever.retrieve(q.text, vector: vectors[i], k: depth, filter: nil) }
                per.append(RetrievalEvaluation.score(ranked: RetrievalEvaluation.documentRanking(results), relevant: judged[q.id]!))
                line.update("\(mode.rawValue): \(i + 1)/\(evalQueries.count) queries")
            }
            line.finish()
            let secs = Date().timeIntervalSince(start)
            rows.append(ModeResult(mode: mode.rawValue, metrics: RetrievalEvaluation.mean(per), msPerQuery: 1000 * secs / Double(evalQueries.count)))
        }
        let report = Report(corpus: corpus, embedder: embedder.name, documents: stats.documents, chunks: stats.chunks,
                            chunkTokens: chunker.maxTokens, queries: evalQueries.count, ingestSeconds: ingestSeconds,
                            queryEmbeddingMsPerQuery: 1000 * queryEmbedSeconds / Double(evalQueries.count), modes: rows)
        if json { emit(try jsonString(report) + "\n"); return }
        print("Retrieval on \(displayPath(corpus)): \(stats.documents) documents → \(stats.chunks) chunks (≤ \(chunker.maxTokens) tokens), \(evalQueries.count) judged queries, embedder \(embedder.name)")
        print("mode      nDCG@10  Recall@10  Recall@100  MRR@10   ms/query")
        for r in rows {
            print(r.mode.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: "  %7.4f  %9.4f  %10.4f  %6.4f  %8.2f", r.metrics.ndcg10, r.metrics.recall10, r.metrics.recall100, r.metrics.mrr10, r.msPerQuery))
        }
        print(String(format: "(query embedding: %.2f ms/query; corpus ingested in %.1f s)", report.queryEmbeddingMsPerQuery, ingestSeconds))
    }

    struct ModeResult: Codable { var mode: String; var metrics: RetrievalMetrics; var msPerQuery: Double }
    struct Report: Codable {
        var corpus: String, embedder: String, documents: Int, chunks: Int, chunkTokens: Int, queries: Int
        var ingestSeconds: Double, queryEmbeddingMsPerQuery: Double, modes: [ModeResult]
    }
}
