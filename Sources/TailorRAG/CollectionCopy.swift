// Copies a collection from one store to another (`tailor migrate`: SQLite to PostgreSQL and
// back; `compare`'s working copies): documents, chunks with their embeddings (not recomputed),
// and file records. Resumable: documents already in the destination with the same content hash
// are skipped, so a run that was stopped or lost its connection finishes where it left off; the
// destination ends as a mirror of the source (documents it has that the source has not are removed).
import Foundation

public enum CollectionCopy {
    /// Documents from which a copy into an empty collection loads in bulk (see `bulkLoading`).
    public static let bulkThreshold = 5000

    public struct Progress: Sendable {
        public var done: Int
        public var total: Int
        /// Once the documents are in: the share of the vector index built (a bulk load's last step).
        public var indexBuilt: Double? = nil
    }

    public struct Summary: Sendable, Codable {
        public var documents: Int
        public var copied: Int
        public var alreadyThere: Int
        public var removed: Int
        public var chunks: Int
        public var files: Int
        /// False when `shouldStop` ended it early (run it again to finish).
        public var finished: Bool
    }

    public static func copy(from source: any CollectionStore, to destination: any CollectionStore, batchSize: Int = 32,
                            shouldStop: () -> Bool = { false }, progress: (Progress) -> Void = { _ in }) throws -> Summary {
        guard let (embedder, dimension) = try source.embedder() else {
            throw RAGError.store("\(source.location) is empty (no embedder recorded): nothing to copy")
        }
        try destination.bind(embedderName: embedder, dimension: dimension)
        let want = try source.documentKeys(), have = try destination.documentKeys()
        let todo = want.keys.filter { have[$0] != want[$0] }.sorted()
        let extra = have.keys.filter { want[$0] == nil }.sorted()
        var summary = Summary(documents: want.count, copied: 0, alreadyThere: want.count - todo.count, removed: 0, chunks: 0, files: 0,
                              finished: false)
        if !extra.isEmpty { try destination.put([], deleteKeys: extra, files: []); summary.removed = extra.count }
        if have.isEmpty && todo.count >= bulkThreshold { try destination.bulkLoading(true) { _ in } }
        progress(Progress(done: summary.alreadyThere, total: want.count))
        var i = 0
        while i < todo.count {
            if shouldStop() { return summary }
            let keys = Array(todo[i..<min(todo.count, i + max(1, batchSize))])
            let docs = try source.documents(keys)
            try destination.put(docs, deleteKeys: [], files: [])
            summary.copied += docs.count
            summary.chunks += docs.reduce(0) { $0 + $1.chunks.count }
            i += keys.count
            progress(Progress(done: summary.alreadyThere + i, total: want.count))
        }
        // File records last: until they are there, an ingest into the destination re-reads the
        // files, so a copy stopped before this point loses nothing.
        try destination.bulkLoading(false) { share in progress(Progress(done: want.count, total: want.count, indexBuilt: share)) }
        let files = try source.files()
        try destination.put([], deleteKeys: [], files: files)
        summary.files = files.count
        summary.finished = true
        return summary
    }
}
