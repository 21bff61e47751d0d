// OpenAI's vector stores over Tailor's collections: a vector store IS a collection (its id is the
// collection's name, so `MODEL+rag:vs_…` answers from it, and `tailor ingest -c NAME` collections
// are vector stores too). What OpenAI's API adds — the files added through it, their status and
// attributes, the chunking asked for — is kept in $TAILOR_HOME/server/vector_stores/ID.json.
// Files are ingested one at a time in the background; an ingest cut short by a restart is
// resumed when the server starts again (ingesting is incremental, so nothing is done twice).
import Foundation
import Synchronization
import TailorFormats
import TailorModels
import TailorRAG

/// How files are cut into chunks: OpenAI's `auto` (800 tokens, 400 overlap, within the
/// embedder's limit) or `static` with its sizes.
struct ChunkingStrategy: Codable, Sendable, Equatable {
    struct Static: Codable, Sendable, Equatable {
        var max_chunk_size_tokens: Int
        var chunk_overlap_tokens: Int
    }
    var type: String
    var `static`: Static?

    static let auto = ChunkingStrategy(type: "auto", static: nil)

    func validated() throws -> ChunkingStrategy {
        switch type {
        case "auto": return .auto
        case "static":
            guard let s = `static` else { throw OpenAIError.badRequest("chunking_strategy static needs {\"max_chunk_size_tokens\", \"chunk_overlap_tokens\"}", param: "chunking_strategy") }
            guard (100...4096).contains(s.max_chunk_size_tokens) else {
                throw OpenAIError.badRequest("max_chunk_size_tokens must be from 100 to 4096", param: "chunking_strategy.static.max_chunk_size_tokens")
            }
            guard s.chunk_overlap_tokens >= 0, s.chunk_overlap_tokens <= s.max_chunk_size_tokens / 2 else {
                throw OpenAIError.badRequest("chunk_overlap_tokens must be at least 0 and at most half of max_chunk_size_tokens", param: "chunking_strategy.static.chunk_overlap_tokens")
            }
            return self
        default:
            throw OpenAIError.badRequest("chunking_strategy type '\(type)': use auto or static", param: "chunking_strategy")
        }
    }

    /// Chunk tokens and overlap for the ingest (the chunker keeps chunks within the embedder's limit).
    var tokens: (Int, Int) {
        guard let s = `static` else { return (800, 400) }
        return (s.max_chunk_size_tokens, s.chunk_overlap_tokens)
    }
}

struct FileError: Codable, Sendable, Equatable {
    var code: String
    var message: String
}

/// A file in a vector store (OpenAI's `vector_store.file`), with its ingest progress.
struct VectorStoreFile: Codable, Sendable, Equatable {
    var id: String
    var object = "vector_store.file"
    var vector_store_id: String
    var created_at: Int
    var status: String               // in_progress, completed, failed, cancelled
    var last_error: FileError?
    var usage_bytes = 0
    var chunking_strategy: ChunkingStrategy
    var attributes: [String: JSONValue]?
    /// Tailor's: chunks embedded of those found, while in progress and after.
    var chunks_done: Int?
    var chunks_total: Int?
}

struct VectorStoreRecord: Codable, Sendable {
    var id: String
    var name: String?
    var created_at: Int
    var last_active_at: Int?
    var metadata: [String: String]?
    var chunking_strategy: ChunkingStrategy
    var files: [VectorStoreFile]
}

/// OpenAI's `vector_store` object.
struct VectorStoreObject: Codable, Sendable {
    struct Counts: Codable, Sendable {
        var in_progress = 0, completed = 0, failed = 0, cancelled = 0, total = 0
        init() {}
        /// The counts of files with these statuses.
        init(_ statuses: [String]) {
            for s in statuses {
                switch s {
                case "in_progress": in_progress += 1
                case "completed": completed += 1
                case "failed": failed += 1
                default: cancelled += 1
                }
            }
            total = statuses.count
        }
    }
    var id: String
    var object = "vector_store"
    var created_at: Int
    var name: String?
    var usage_bytes: Int
    var file_counts: Counts
    var status: String
    var last_active_at: Int?
    var metadata: [String: String]?
    var expires_after: JSONValue? = nil
    var expires_at: Int? = nil
}

final class VectorStores: Sendable {
    let directory: URL
    let files: FileStore
    private unowned let backend: Backend
    /// Records by id (read from disk on first use, written through on every change).
    private let records = Mutex<[String: VectorStoreRecord]>([:])
    /// Files waiting for the ingest worker, in order; whether the worker runs.
    private let pending = Mutex<(queue: [(store: String, file: String)], running: Bool)>(([], false))
    private let worker = DispatchQueue(label: "tailor.server.ingest", qos: .utility)

    /// Where the stores' collections are (the server's collections folder or database).
    var collections: StoreLocation { backend.configuration.collections }

    init(backend: Backend, files: FileStore, directory: URL) {
        self.backend = backend
        self.files = files
        self.directory = directory
    }

    // MARK: records

    private func url(_ id: String) -> URL { directory.appendingPathComponent(id + ".json") }

    private func load(_ id: String) -> VectorStoreRecord? {
        if let r = records.withLock({ $0[id] }) { return r }
        guard let data = try? Data(contentsOf: url(id)), let r = try? JSONDecoder().decode(VectorStoreRecord.self, from: data) else { return nil }
        records.withLock { $0[id] = r }
        return r
    }

    /// Changes a record and writes it (atomically) before anyone sees the change.
    @discardableResult
    private func update(_ id: String, _ change: (inout VectorStoreRecord) throws -> Void) throws -> VectorStoreRecord {
        guard var r = load(id) else { throw Self.notFound(id) }
        try change(&r)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try JSONEncoder().encode(r).write(to: url(id), options: .atomic)
        records.withLock { $0[id] = r }
        return r
    }

    static func notFound(_ id: String) -> OpenAIError {
        OpenAIError.notFound("No vector store '\(id)' (GET /v1/vector_stores lists them)", param: "vector_store_id", code: "vector_store_not_found")
    }

    /// The record of a vector store, made on first use for a collection made outside the API.
    private func record(_ id: String) throws -> VectorStoreRecord {
        if let r = load(id) { return r }
        guard (try? Collections.exists(id, at: collections)) == true, let store = try? Collections.open(id, at: collections) else { throw Self.notFound(id) }
        let created = (try? store.stats().createdAt).flatMap { $0 }.map { Int($0.timeIntervalSince1970) }
        let r = VectorStoreRecord(id: id, name: id, created_at: created ?? Int(Date().timeIntervalSince1970), chunking_strategy: .auto, files: [])
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try JSONEncoder().encode(r).write(to: url(id), options: .atomic)
        records.withLock { $0[id] = r }
        return r
    }

    func object(_ r: VectorStoreRecord) -> VectorStoreObject {
        var counts = VectorStoreObject.Counts(r.files.map(\.status))
        // A collection made outside the API: its ingested files count as completed.
        let store = try? Collections.open(r.id, at: collections)
        if r.files.isEmpty, let n = try? store?.files().count {
            counts.completed = n; counts.total = n
        }
        let bytes = (try? store?.stats().bytes).flatMap { $0 }.map(Int.init) ?? 0
        return VectorStoreObject(id: r.id, created_at: r.created_at, name: r.name, usage_bytes: bytes, file_counts: counts,
                                 status: counts.in_progress > 0 ? "in_progress" : "completed", last_active_at: r.last_active_at, metadata: r.metadata)
    }

    // MARK: stores

    func create(name: String?, fileIDs: [String], chunking: ChunkingStrategy?, metadata: [String: String]?) throws -> VectorStoreObject {
        let strategy = try (chunking ?? .auto).validated()
        for f in fileIDs { _ = try files.get(f) }
        let id = APIRoutes.newID("vs_")
        _ = try KnowledgeBase.open(id, store: collections, create: true, threads: backend.configuration.threads)
        let now = Int(Date().timeIntervalSince1970)
        let r = VectorStoreRecord(id: id, name: name, created_at: now, last_active_at: now, metadata: metadata, chunking_strategy: strategy, files: [])
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try JSONEncoder().encode(r).write(to: url(id), options: .atomic)
        records.withLock { $0[id] = r }
        for f in fileIDs { _ = try addFile(id, fileID: f, chunking: nil, attributes: nil) }
        return object(try record(id))
    }

    func list() -> [VectorStoreObject] {
        var ids = Set((try? Collections.names(at: collections)) ?? [])
        for f in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] where f.hasSuffix(".json") {
            ids.insert(String(f.dropLast(5)))
        }
        return ids.compactMap { try? object(record($0)) }.sorted { ($0.created_at, $0.id) > ($1.created_at, $1.id) }
    }

    func get(_ id: String) throws -> VectorStoreObject { object(try record(id)) }

    func modify(_ id: String, name: String?, metadata: [String: String]?) throws -> VectorStoreObject {
        _ = try record(id)
        return object(try update(id) { r in
            if let name { r.name = name }
            if let metadata { r.metadata = metadata }
        })
    }

    func delete(_ id: String) throws {
        _ = try record(id)
        pending.withLock { $0.queue.removeAll { $0.store == id } }
        backend.forgetCollection(id)
        try? Collections.delete(id, at: collections)
        try? FileManager.default.removeItem(at: url(id))
        _ = records.withLock { $0.removeValue(forKey: id) }
    }

    // MARK: files

    func addFile(_ id: String, fileID: String, chunking: ChunkingStrategy?, attributes: [String: JSONValue]?) throws -> VectorStoreFile {
        let file = try files.get(fileID)
        let base = try record(id)
        let strategy = try (chunking ?? base.chunking_strategy).validated()
        if let attributes, attributes.count > 16 { throw OpenAIError.badRequest("attributes: at most 16 keys", param: "attributes") }
        let entry = VectorStoreFile(id: file.id, vector_store_id: id, created_at: Int(Date().timeIntervalSince1970), status: "in_progress",
                                    usage_bytes: file.bytes, chunking_strategy: strategy, attributes: attributes)
        try update(id) { r in
            r.files.removeAll { $0.id == file.id }
            r.files.append(entry)
            r.last_active_at = entry.created_at
        }
        enqueue(store: id, file: file.id)
        return entry
    }

    func listFiles(_ id: String, status: String?) throws -> [VectorStoreFile] {
        try record(id).files.filter { status == nil || $0.status == status }.sorted { ($0.created_at, $0.id) > ($1.created_at, $1.id) }
    }

    func getFile(_ id: String, fileID: String) throws -> VectorStoreFile {
        guard let f = try record(id).files.first(where: { $0.id == fileID }) else {
            throw OpenAIError.notFound("Vector store '\(id)' has no file '\(fileID)'", param: "file_id", code: "file_not_found")
        }
        return f
    }

    /// Takes a file out of the store (its chunks too); the uploaded file itself stays.
    func removeFile(_ id: String, fileID: String) throws {
        _ = try getFile(id, fileID: fileID)
        pending.withLock { $0.queue.removeAll { $0.store == id && $0.file == fileID } }
        if let file = try? files.get(fileID) { try backend.collection(id).store.removeFile(files.path(file).path) }
        try update(id) { $0.files.removeAll { $0.id == fileID } }
    }

    // MARK: the ingest worker

    /// Queues every file left in progress by an earlier run of the server.
    func resumeInterrupted() {
        for f in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] where f.hasSuffix(".json") {
            guard let r = load(String(f.dropLast(5))) else { continue }
            for file in r.files where file.status == "in_progress" { enqueue(store: r.id, file: file.id) }
        }
    }

    private func enqueue(store: String, file: String) {
        let start = pending.withLock { p -> Bool in
            p.queue.append((store, file))
            if p.running { return false }
            p.running = true
            return true
        }
        if start { worker.async { self.drain() } }
    }

    private func drain() {
        while let job = pending.withLock({ p -> (store: String, file: String)? in
            if p.queue.isEmpty { p.running = false; return nil }
            return p.queue.removeFirst()
        }) {
            ingest(store: job.store, file: job.file)
        }
    }

    private func ingest(store id: String, file fileID: String) {
        func finish(_ status: String, _ error: FileError? = nil) {
            _ = try? update(id) { r in
                guard let i = r.files.firstIndex(where: { $0.id == fileID }) else { return }
                r.files[i].status = status
                r.files[i].last_error = error
            }
        }
        guard let file = try? files.get(fileID) else { finish("failed", FileError(code: "file_not_found", message: "the uploaded file \(fileID) was deleted")); return }
        guard let entry = try? getFile(id, fileID: fileID), entry.status == "in_progress" else { return }
        do {
            let kb = try backend.collection(id)
            let (tokens, overlap) = entry.chunking_strategy.tokens
            var lastWrite = Date.distantPast
            let summary = try kb.ingest([files.path(file).path], chunkTokens: tokens, overlap: min(overlap, tokens / 2),
                                        shouldStop: { [weak self] in (try? self?.getFile(id, fileID: fileID)) == nil }) { [weak self] p in
                // Progress for the web page, written at most twice a second.
                guard p.phase == .embedding || p.phase == .done, Date().timeIntervalSince(lastWrite) > 0.5 else { return }
                lastWrite = Date()
                _ = try? self?.update(id) { r in
                    guard let i = r.files.firstIndex(where: { $0.id == fileID }) else { return }
                    r.files[i].chunks_done = p.chunksDone
                    r.files[i].chunks_total = p.chunksTotal
                }
            }
            if summary.interrupted { return }   // removed from the store meanwhile
            if let failure = summary.failed.first ?? summary.skipped.first {
                finish("failed", FileError(code: "invalid_file", message: "\(file.filename): \(failure.reason)"))
            } else {
                _ = try? update(id) { r in
                    guard let i = r.files.firstIndex(where: { $0.id == fileID }) else { return }
                    r.files[i].status = "completed"
                    r.files[i].last_error = nil
                    // An unchanged file embeds nothing: it keeps the count it had.
                    r.files[i].chunks_done = max(summary.chunksEmbedded, r.files[i].chunks_done ?? 0)
                    r.files[i].chunks_total = r.files[i].chunks_done
                }
            }
        } catch {
            finish("failed", FileError(code: "server_error", message: "\(file.filename): \(error)"))
        }
    }


    // MARK: search

    /// OpenAI's attribute filters: {type: eq|ne|gt|gte|lt|lte|in|nin, key, value} and
    /// {type: and|or, filters: [...]}.
    static func matches(_ filter: JSONValue, _ attributes: [String: JSONValue]) throws -> Bool {
        guard let type = filter["type"]?.string else { throw OpenAIError.badRequest("filters: each filter needs a type", param: "filters") }
        switch type {
        case "and", "or":
            guard let subs = filter["filters"]?.array else { throw OpenAIError.badRequest("filters: '\(type)' needs a filters array", param: "filters") }
            let results = try subs.map { try matches($0, attributes) }
            return type == "and" ? results.allSatisfy { $0 } : results.contains(true)
        case "eq", "ne", "gt", "gte", "lt", "lte", "in", "nin":
            guard let key = filter["key"]?.string, let value = filter["value"] else {
                throw OpenAIError.badRequest("filters: '\(type)' needs key and value", param: "filters")
            }
            let have = attributes[key]
            switch type {
            case "eq": return have.map { same($0, value) } ?? false
            case "ne": return !(have.map { same($0, value) } ?? false)
            case "in", "nin":
                guard let options = value.array else { throw OpenAIError.badRequest("filters: '\(type)' needs an array value", param: "filters") }
                let found = have.map { h in options.contains { same(h, $0) } } ?? false
                return type == "in" ? found : !found
            default:
                guard let h = have, let order = compare(h, value) else { return false }
                switch type {
                case "gt": return order > 0
                case "gte": return order >= 0
                case "lt": return order < 0
                default: return order <= 0
                }
            }
        default:
            throw OpenAIError.badRequest("filters: type '\(type)' is not one of eq, ne, gt, gte, lt, lte, in, nin, and, or", param: "filters")
        }
    }

    private static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.double, let y = b.double { return x == y }
        return a == b
    }

    private static func compare(_ a: JSONValue, _ b: JSONValue) -> Int? {
        if let x = a.double, let y = b.double { return x < y ? -1 : (x > y ? 1 : 0) }
        if let x = a.string, let y = b.string { return x < y ? -1 : (x > y ? 1 : 0) }
        return nil
    }

    struct SearchHit: Codable, Sendable {
        struct Content: Codable, Sendable { var type = "text"; var text: String }
        var file_id: String
        var filename: String
        var score: Double
        var attributes: [String: JSONValue]
        var content: [Content]
        /// Tailor's: where in the file (heading, page) and the chunk's id.
        var location: String?
        var chunk_id: Int64
    }

    func search(_ id: String, queries: [String], filters: JSONValue?, maxResults: Int) throws -> [SearchHit] {
        let r = try record(id)
        let kb = try backend.collection(id)
        // Files the filter lets through, as path globs (uploads have glob-safe names).
        var filter: Filter? = nil
        var byPath: [String: VectorStoreFile] = [:]
        for f in r.files { if let sf = try? files.get(f.id) { byPath[files.path(sf).path] = f } }
        if let filters {
            let allowed = try byPath.filter { try Self.matches(filters, $0.value.attributes ?? [:]) }.map(\.key)
            if allowed.isEmpty { return [] }
            filter = Filter(paths: allowed.sorted())
        }
        let retriever = try kb.retriever()
        var best: [Int64: (ScoredChunk, Double)] = [:]
        for q in queries {
            let vector = try retriever.embedQuery(q)
            let hits = try retriever.retrieve(q, vector: vector, k: maxResults, filter: filter)
            // The score clients expect: the cosine similarity of query and chunk (0…1 in practice).
            let embeddings = try kb.store.embeddings(hits.map(\.chunk.id))
            for (h, e) in zip(hits, embeddings) {
                let sim = Double(zip(vector, e).reduce(Float(0)) { $0 + $1.0 * $1.1 })
                if (best[h.chunk.id]?.1 ?? -2) < sim { best[h.chunk.id] = (h, sim) }
            }
        }
        return best.values.sorted { $0.1 > $1.1 }.prefix(maxResults).map { (h, sim) in
            let entry = byPath[h.chunk.path]
            return SearchHit(file_id: entry?.id ?? h.chunk.path, filename: URL(fileURLWithPath: h.chunk.path).lastPathComponent,
                             score: (sim * 10_000).rounded() / 10_000, attributes: entry?.attributes ?? [:],
                             content: [.init(text: h.chunk.text)], location: h.chunk.location.isEmpty ? nil : h.chunk.location, chunk_id: h.chunk.id)
        }
    }
}
