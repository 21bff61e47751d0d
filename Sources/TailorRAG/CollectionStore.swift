// What a collection is stored in: one protocol, two backends — SQLite (a folder per collection,
// the embedded default; `SQLiteStore`) and PostgreSQL with pgvector (collections shared by
// several processes and machines; `PostgresStore`). Ingest, retrieval, reindexing, answers and
// the server talk to `CollectionStore` only.
import Foundation

/// A document as stored, with its chunks and their embeddings: what `write` stores and what a
/// migration copies from one store to another.
public struct DocumentRecord: Sendable {
    public var key: String
    public var path: String
    public var type: DocumentType
    public var title: String?
    public var hash: String
    public var metadata: [String: String]
    public var text: String
    public var chunks: [Chunk]
    public var vectors: [[Float]]

    public init(key: String, path: String, type: DocumentType, title: String?, hash: String, metadata: [String: String],
                text: String, chunks: [Chunk], vectors: [[Float]]) {
        self.key = key; self.path = path; self.type = type; self.title = title; self.hash = hash
        self.metadata = metadata; self.text = text; self.chunks = chunks; self.vectors = vectors
    }

    public init(_ p: Prepared) {
        let d = p.document
        self.init(key: d.key, path: d.path, type: d.type, title: d.title, hash: d.contentHash, metadata: d.metadata,
                  text: d.text, chunks: p.chunks, vectors: p.vectors)
    }
}

/// A document ready to store: its chunks and their embeddings.
public struct Prepared: Sendable {
    public var document: Document
    public var chunks: [Chunk]
    public var vectors: [[Float]]
    public init(document: Document, chunks: [Chunk], vectors: [[Float]]) { self.document = document; self.chunks = chunks; self.vectors = vectors }
}

public protocol CollectionStore: AnyObject, Sendable {
    /// The collection's name.
    var name: String { get }
    /// Where it lives, for messages and reports: its folder, or `postgresql://USER@HOST:PORT/DB#NAME`
    /// (never a password).
    var location: String { get }
    /// "sqlite" or "postgresql".
    var backend: String { get }
    /// A folder for what a retriever derives from the collection (mapped vectors, an HNSW graph);
    /// nil for a store that searches its vectors itself (`vectorSearch` answers).
    var cacheDirectory: URL? { get }

    // Settings and bookkeeping.
    func info(_ key: String) throws -> String?
    func setInfo(_ key: String, _ value: String) throws
    /// The embedding model that built the collection, and its dimension.
    func embedder() throws -> (name: String, dimension: Int)?
    /// Records the embedder for an empty collection; for a built one, checks it is the same.
    func bind(embedderName: String, dimension: Int) throws
    /// Bumped by every write: what a retriever derived at another generation is stale.
    func generation() throws -> Int

    // Files and documents.
    func file(_ path: String) throws -> FileRecord?
    func files() throws -> [FileRecord]
    /// Document key → content hash, for the documents that came from `path`.
    func documentHashes(path: String) throws -> [String: String]
    /// Document key → content hash, for every document.
    func documentKeys() throws -> [String: String]
    /// In one transaction: removes `deleteKeys`, replaces the given documents (old chunks out, new
    /// in) and records `files`. Readers see each document whole, old or new.
    func put(_ docs: [DocumentRecord], deleteKeys: [String], files: [FileRecord]) throws
    /// The stored documents with these keys (unknown keys are skipped).
    func documents(_ keys: [String]) throws -> [DocumentRecord]
    /// Removes a file and every document that came from it.
    func removeFile(_ path: String) throws
    /// Updates a file's modification time and size without touching its documents.
    func touch(_ f: FileRecord) throws

    // Chunks and search.
    func chunkCount() throws -> Int
    /// Every chunk id and embedding, in id order, as one row-major matrix.
    func vectors() throws -> (ids: [Int64], matrix: [Float], dimension: Int)
    /// The chunks with these ids (in the given order; unknown ids are skipped).
    func chunks(_ ids: [Int64]) throws -> [StoredChunk]
    /// The embeddings of these chunks (same order; an unknown id gives []).
    func embeddings(_ ids: [Int64]) throws -> [[Float]]
    /// BM25 over the keyword index for the words of `query` (any of them; stop words dropped),
    /// higher is better, optionally within the chunks `filter` allows.
    func keywordSearch(_ query: String, limit: Int, filter: Filter?) throws -> [(id: Int64, score: Double)]
    /// The `k` nearest chunks by cosine similarity, searched by the store itself; nil when it
    /// has no vector index of its own (the retriever then keeps one in `cacheDirectory`).
    func vectorSearch(_ q: [Float], k: Int, filter: Filter?, options: IndexOptions) throws -> [(id: Int64, score: Double)]?
    /// Ids of the chunks a filter allows.
    func chunkIDs(matching filter: Filter) throws -> Set<Int64>

    // Re-embedding with another model, resumable.
    /// Chunks still to re-embed (no pending embedding yet), in id order, with their indexed text.
    func chunksToReembed(limit: Int) throws -> [(id: Int64, text: String)]
    func savePending(_ items: [(Int64, [Float])]) throws
    func pendingCount() throws -> Int
    /// Swaps every chunk to its pending embedding and records the new model, in one transaction.
    func commitReembedding(embedderName: String, dimension: Int) throws
    func clearPending() throws

    /// Before a large copy into an empty collection (`true`) and after it (`false`): a store may
    /// set its vector index aside meanwhile (building it once is faster than inserting into it),
    /// reporting the share of the build done.
    func bulkLoading(_ on: Bool, progress: (Double) -> Void) throws

    func stats() throws -> CollectionStats
    /// What is inconsistent (empty: nothing): chunk counts, keyword index, vectors.
    func integrityProblems() throws -> [String]
}

extension CollectionStore {
    /// Stores prepared documents (see `put`).
    public func write(_ docs: [Prepared], deleteKeys: [String] = [], files: [FileRecord] = []) throws {
        try put(docs.map(DocumentRecord.init), deleteKeys: deleteKeys, files: files)
    }

    public func bulkLoading(_ on: Bool, progress: (Double) -> Void) throws {}

    public func keywordSearch(_ query: String, limit: Int) throws -> [(id: Int64, score: Double)] {
        try keywordSearch(query, limit: limit, filter: nil)
    }
}

/// The words a keyword search looks for: letters and digits runs, lower-cased, Lucene's English
/// stop words dropped, each once, in order.
enum KeywordQuery {
    /// Lucene's English stop words (as bm25s and Elasticsearch use them).
    static let stopWords: Set<String> = ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
                                         "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
                                         "these", "they", "this", "to", "was", "will", "with"]

    static func terms(_ query: String) -> [String] {
        var words: [String] = [], seen: Set<String> = []
        var cur = ""
        func take() {
            defer { cur = "" }
            let w = cur.lowercased()
            guard !w.isEmpty, !stopWords.contains(w), !seen.contains(w) else { return }
            seen.insert(w); words.append(w)
        }
        for ch in query.unicodeScalars {
            if ch.properties.isAlphabetic || ch.properties.numericType != nil { cur.unicodeScalars.append(ch) } else { take() }
        }
        take()
        return words
    }
}
