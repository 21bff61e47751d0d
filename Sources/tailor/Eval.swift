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
    @OptionGroup var store: StoreOption
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
        var evaluator = RetrievalEvaluator(corpus: corpus, queries: queries, qrels: qrels)
        evaluator.embedder = model; evaluator.collection = collection; evaluator.modes = modeList
        evaluator.store = try store.location()
        evaluator.depth = depth; evaluator.chunkTokens = chunkTokens; evaluator.threads = threads
        let line = ProgressLine()
        let report: RetrievalEvaluator.Report
        do {
            report = try runReportingErrors { try evaluator.run(shouldStop: { stopRequested.load(ordering: .relaxed) }) { line.update($0) } }
        } catch is CancellationError { line.finish(); throw ExitCode(130) }
        line.finish()
        let rows = report.modes
        if json { emit(try jsonString(report) + "\n"); return }
        print("Retrieval on \(displayPath(corpus)): \(report.documents) documents → \(report.chunks) chunks (≤ \(report.chunkTokens) tokens), \(report.queries) judged queries, embedder \(report.embedder)")
        print("mode      nDCG@10  Recall@10  Recall@100  MRR@10   ms/query")
        for r in rows {
            print(r.mode.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: "  %7.4f  %9.4f  %10.4f  %6.4f  %8.2f", r.metrics.ndcg10, r.metrics.recall10, r.metrics.recall100, r.metrics.mrr10, r.msPerQuery))
        }
        print(String(format: "(query embedding: %.2f ms/query; corpus ingested in %.1f s)", report.queryEmbeddingMsPerQuery, report.ingestSeconds))
    }
}
