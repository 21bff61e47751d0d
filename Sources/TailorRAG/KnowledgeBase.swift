// A collection opened with its embedder: the tasks the CLI and the server run on collections
// (ingest, reindex, search, ask), as library calls whose settings come with each call.
import Foundation
import TailorKernels
import TailorModels

/// A collection and the embedder that indexes it.
// @unchecked Sendable: both are safe to share (the store serializes its writes, the embedder's
// computations take turns on the compute scheduler); nothing here is mutated after init.
public final class KnowledgeBase: @unchecked Sendable {
    public let store: any CollectionStore
    public let embedder: SentenceEmbedder

    public init(store: any CollectionStore, embedder: SentenceEmbedder) {
        self.store = store
        self.embedder = embedder
    }

    /// Opens a collection (a name, or for SQLite also a folder path; nil: the default) where
    /// `store` says (nil: TAILOR_STORE, else $TAILOR_HOME/collections) with `embedder` (default:
    /// the one that built it, else all-MiniLM-L6-v2). With `create`, a missing collection is
    /// created; otherwise it is an error naming the known ones.
    public static func open(_ collection: String?, store location: StoreLocation? = nil, embedder: String? = nil, create: Bool = false,
                            threads: Int = ThreadPool.availableCores) throws -> KnowledgeBase {
        // The embedder is loaded before a new collection is made, so a bad model name leaves nothing behind.
        let existing = try Collections.exists(collection, at: location) ? try Collections.open(collection, at: location) : nil
        if existing == nil && !create {
            throw RAGError.collectionNotFound(collection ?? Collections.defaultName, known: try Collections.names(at: location))
        }
        let e = try embedderFor(existing, model: embedder, threads: threads)
        return KnowledgeBase(store: try existing ?? Collections.open(collection, at: location, create: true), embedder: e)
    }

    /// The embedder for a collection: the one asked for, else the one that built it, else the default.
    public static func embedderFor(_ store: (any CollectionStore)?, model: String?, threads: Int = ThreadPool.availableCores) throws -> SentenceEmbedder {
        try SentenceEmbedder(model ?? store?.embedder()?.name, threads: threads)
    }

    /// The chunker for this embedder: at most `maxTokens` (default 256) per chunk, within the
    /// embedder's limit.
    public func chunker(maxTokens: Int? = nil, overlap: Int = 32) -> Chunker {
        Chunker(maxTokens: min(maxTokens ?? 256, embedder.maxTokens - 2), overlap: overlap, countTokens: embedder.countTokens)
    }

    /// Adds files and folders (only new and changed files are embedded; files gone from an
    /// ingested folder are removed). `shouldStop` is checked between batches.
    public func ingest(_ paths: [String], options: IngestOptions = IngestOptions(), chunkTokens: Int? = nil, overlap: Int = 32,
                       shouldStop: @escaping () -> Bool = { false },
                       progress: @escaping (IngestProgress) -> Void = { _ in }) throws -> IngestSummary {
        let ingestor = try Ingestor(store: store, embedder: embedder, chunker: chunker(maxTokens: chunkTokens, overlap: overlap),
                                    options: options)
        ingestor.shouldStop = shouldStop
        return try ingestor.ingest(paths, progress: progress)
    }

    public struct ReindexProgress: Sendable {
        public var done: Int
        public var total: Int
        public var chunksPerSecond: Double
        public var eta: Double? { chunksPerSecond > 0 && total > done ? Double(total - done) / chunksPerSecond : nil }
    }

    public struct ReindexSummary: Sendable, Codable {
        public var chunks: Int
        public var embedder: String
        public var dimension: Int
        /// False when `shouldStop` ended it early (run it again to finish).
        public var finished: Bool
    }

    /// Re-embeds every chunk with this knowledge base's embedder. Resumable: the collection keeps
    /// its old embeddings until every chunk has a new one.
    public func reindex(batchSize: Int = 128, shouldStop: () -> Bool = { false },
                        progress: (ReindexProgress) -> Void = { _ in }) throws -> ReindexSummary {
        if try store.info("reindexing") != embedder.name { try store.clearPending(); try store.setInfo("reindexing", embedder.name) }
        let total = try store.chunkCount()
        var done = try store.pendingCount()
        let start = Date(), startDone = done
        while true {
            if shouldStop() { return ReindexSummary(chunks: total, embedder: embedder.name, dimension: embedder.dimension, finished: false) }
            let batch = try store.chunksToReembed(limit: max(1, batchSize))
            if batch.isEmpty { break }
            let vectors = try embedder.embed(batch.map(\.text))
            try store.savePending(zip(batch.map(\.id), vectors).map { ($0, $1) })
            done += batch.count
            progress(ReindexProgress(done: done, total: total, chunksPerSecond: Double(done - startDone) / max(Date().timeIntervalSince(start), 1e-9)))
        }
        try store.commitReembedding(embedderName: embedder.name, dimension: embedder.dimension)
        if let dir = store.cacheDirectory {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent("vectors.hnsw"))
            try? FileManager.default.removeItem(at: dir.appendingPathComponent("vectors.f32"))
        }
        return ReindexSummary(chunks: total, embedder: embedder.name, dimension: embedder.dimension, finished: true)
    }

    /// A retriever over this collection.
    public func retriever(defaults: RetrievalSettings = RetrievalSettings(), index: IndexOptions = IndexOptions()) throws -> Retriever {
        try Retriever(store: store, embedder: embedder, defaults: defaults, index: index)
    }

    /// A question-answering engine over this collection with `model`.
    public func engine(model: LanguageModel, reranker: (any Reranker)? = EmbeddingReranker(), defaults: AskSettings = AskSettings(),
                       index: IndexOptions = IndexOptions()) throws -> QueryEngine {
        QueryEngine(retriever: try retriever(defaults: defaults.retrieval, index: index), model: model, reranker: reranker, defaults: defaults)
    }
}

public enum Rerankers {
    /// A reranker by name: "default" (embedding + keyword overlap), "none", or the folder of a
    /// cross-encoder model.
    public static func named(_ spec: String, threads: Int = ThreadPool.availableCores) throws -> (any Reranker)? {
        switch spec {
        case "default": return EmbeddingReranker()
        case "none": return nil
        default: return CrossEncoderReranker(try CrossEncoder(directory: spec, threads: threads))
        }
    }
}
