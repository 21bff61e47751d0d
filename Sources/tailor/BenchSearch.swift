import ArgumentParser
import Foundation
import TailorFormats
import TailorKernels
import TailorModels
import TailorRAG

struct BenchSearch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search",
        abstract: "Ingest throughput, query latency (exact, HNSW, keyword) and HNSW recall@10 at several collection sizes.",
        discussion: """
            Real texts (sentences of a BEIR corpus) are ingested through the whole pipeline; that run gives the
            ingest throughput and the base vectors. Larger sizes repeat the base vectors with small perturbations.
            --export writes the vectors, queries and exact top-10 for scripts/bench-search-peers (hnswlib).
            """)
    @Option(help: "BEIR corpus.jsonl whose sentences are the base texts.") var corpus: String = "../shared/data/beir-scifact/corpus.jsonl"
    @Option(help: "BEIR queries.jsonl (the queries).") var queries: String = "../shared/data/beir-scifact/queries.jsonl"
    @Option(help: "Base texts ingested for real.") var base: Int = 10_000
    @Option(help: "Collection sizes in chunks, comma-separated.") var sizes: String = "10000,100000,1000000"
    @Option(name: .customLong("n-queries"), help: "Queries timed per size.") var nQueries: Int = 200
    @Option(help: "HNSW ef at search time.") var ef: Int = 64
    @Option(name: [.short, .long], help: "Embedding model.") var model: String?
    @Option(name: [.short, .long], help: "Threads.") var threads: Int = ThreadPool.availableCores
    @Option(help: "Folder for the benchmark collections (default: a temporary folder, removed afterwards).") var workdir: String?
    @Option(help: "Write vectors-N.npy, truth-N.npy and queries.npy here for the peer benchmark.") var export: String?
    @Option(name: .customLong("store"), help: "Measure collections in this PostgreSQL database instead of SQLite: postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE.") var storeURL: String?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        installInterruptHandler()
        let sizeList = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizeList.isEmpty, sizeList.allSatisfy({ $0 > 0 }) else { throw ValidationError("--sizes: give positive numbers, e.g. 10000,100000") }
        let docs = try runReportingErrors { try Loaders.load(URL(fileURLWithPath: corpus).standardizedFileURL.path, options: LoaderOptions(textField: "text", idField: "_id")) }
        var texts: [String] = []
        outer: for d in docs {
            for b in d.blocks where b.kind == .paragraph {
                let u = Array(b.text.unicodeScalars)
                for (s, e) in Chunker.sentences(u, 0, u.count) where e - s >= 40 {
                    texts.append(b.text.scalarSlice(s, e))
                    if texts.count == base { break outer }
                }
            }
        }
        let qs = try runReportingErrors { try RetrievalEvaluation.loadQueries(queries) }.prefix(nQueries).map(\.text)
        let temp = workdir == nil
        let work = workdir.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory.appendingPathComponent("tailor-bench-search-\(getpid())")
        defer { if temp { try? FileManager.default.removeItem(at: work) } }
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let embedder = try runReportingErrors { try SentenceEmbedder(model, threads: threads) }

        // 1. The real pipeline over the base texts.
        let input = work.appendingPathComponent("base.jsonl")
        try texts.enumerated().map { "{\"id\": \"s\($0.offset)\", \"text\": \(JSONValue.quote($0.element))}" }.joined(separator: "\n")
            .write(to: input, atomically: true, encoding: .utf8)
        let baseDir = work.appendingPathComponent("base")
        try? FileManager.default.removeItem(at: baseDir)
        let store = try runReportingErrors { try SQLiteStore(directory: baseDir, create: true) }
        let ingestor = try runReportingErrors { try Ingestor(store: store, embedder: embedder) }
        let line = ProgressLine()
        let summary = try runReportingErrors {
            try ingestor.ingest([input.path]) { p in
                if p.phase == .embedding { line.update(String(format: "ingesting %d base texts: %d/%d chunks, %.1f chunks/s", texts.count, p.chunksDone, p.chunksTotal, p.chunksPerSecond)) }
            }
        }
        line.finish()
        let ingestRate = Double(summary.chunksEmbedded) / summary.seconds
        let (ids, data, dim) = try store.vectors()
        let baseMatrix = VectorMatrix(ids: ids, data: data, dimension: dim)
        let baseTexts = try store.chunks(ids).map(\.text)
        let t0 = Date()
        let qv = try runReportingErrors { try embedder.embed(qs) }.map(VectorMatrix.normalized)
        let queryEmbedMs = 1000 * Date().timeIntervalSince(t0) / Double(qs.count)
        let exportURL = export.map { URL(fileURLWithPath: $0) }
        if let exportURL {
            try FileManager.default.createDirectory(at: exportURL, withIntermediateDirectories: true)
            try NPYFile.write(qv, dimension: dim, to: exportURL.appendingPathComponent("queries.npy"))
        }
        // 2. Each size.
        var results: [SearchBenchResult] = []
        for n in sizeList {
            if stopRequested.load(ordering: .relaxed) { throw ExitCode(130) }
            let location = try runReportingErrors { try storeURL.map { try StoreLocation.parse($0) } }
            let r = try runReportingErrors { () throws -> SearchBenchResult in
                if case .postgres(let url) = location {
                    return try SearchBenchmark.runPostgres(n: n, baseTexts: baseTexts, base: baseMatrix, queries: qv, queryTexts: qs,
                                                           embedderName: embedder.name, location: url, efSearch: ef) { line.update($0) }
                }
                return try SearchBenchmark.run(n: n, baseTexts: baseTexts, base: baseMatrix, queries: qv, queryTexts: qs,
                                               embedderName: embedder.name, directory: work.appendingPathComponent("size-\(n)"),
                                               efSearch: ef, threads: threads, export: exportURL) { line.update($0) }
            }
            line.finish()
            try? FileManager.default.removeItem(at: work.appendingPathComponent("size-\(n)"))
            results.append(r)
            if !json {
                if let p50 = r.rawHnswP50ms, let p95 = r.rawHnswP95ms { print(String(format: "%8d chunks (PostgreSQL): pgvector's bare query p50 %.3f ms p95 %.3f ms", n, p50, p95)) }
                print(String(format: "%8d chunks: store %.0f chunks/s; exact p50 %.2f ms p95 %.2f ms; HNSW build %.1f s, p50 %.3f ms p95 %.3f ms, recall@10 %.4f (ef %d); keyword p50 %.2f ms p95 %.2f ms",
                             n, r.storeChunksPerSecond, r.exactP50ms, r.exactP95ms, r.hnswBuildSeconds, r.hnswP50ms, r.hnswP95ms, r.hnswRecallAt10, ef, r.keywordP50ms, r.keywordP95ms))
            }
        }
        if json {
            struct Out: Codable { var embedder: String; var threads: Int; var baseTexts: Int; var ingestChunksPerSecond: Double; var queryEmbeddingMs: Double; var sizes: [SearchBenchResult] }
            emit(try jsonString(Out(embedder: embedder.name, threads: threads, baseTexts: texts.count, ingestChunksPerSecond: ingestRate, queryEmbeddingMs: queryEmbedMs, sizes: results)) + "\n")
        } else {
            print(String(format: "ingest (load, chunk, embed, store) of %d texts: %.1f chunks/s; query embedding %.2f ms", texts.count, ingestRate, queryEmbedMs))
        }
    }
}
