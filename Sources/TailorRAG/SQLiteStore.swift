// A collection on disk, the embedded default backend of `CollectionStore`: one SQLite database
// (GRDB) holding files, documents, chunks with their embeddings, and an FTS5 index for BM25. Every change to a document happens in one
// transaction, so a crash or Ctrl-C leaves each document either old or new, never half.
import Foundation
import GRDB
import TailorFormats

/// A chunk as stored, with what a citation needs.
public struct StoredChunk: Sendable {
    public var id: Int64
    public var documentKey: String
    public var path: String
    public var type: DocumentType
    public var title: String?
    public var chunk: Chunk
    public var metadata: [String: String]
    public var text: String { chunk.text }
    public var location: String { chunk.location }
}

public struct FileRecord: Sendable {
    public var path: String
    public var hash: String
    public var size: Int64
    public var mtime: Double
    public var status: String   // "ok" or "failed"
    public var error: String?
}

public struct CollectionStats: Sendable, Codable {
    public var name: String
    public var directory: String
    public var embedder: String?
    public var dimension: Int?
    public var files: Int
    public var failedFiles: Int
    public var documents: Int
    public var chunks: Int
    public var bytes: Int64
    public var types: [String: Int]
    public var createdAt: Date?
    public var updatedAt: Date?
}

// @unchecked Sendable: its state is the database, reached only through GRDB's DatabaseQueue,
// which serializes every access; the other properties are immutable.
public final class SQLiteStore: CollectionStore, @unchecked Sendable {
    public let directory: URL
    public let name: String
    let db: DatabaseQueue
    public var location: String { directory.path }
    public var backend: String { "sqlite" }
    public var cacheDirectory: URL? { directory }

    public static let fileName = "collection.sqlite"
    static let schemaVersion = "1"

    /// Opens (or with `create`, creates) the collection stored in `directory`.
    public init(directory: URL, create: Bool) throws {
        self.directory = directory
        name = directory.lastPathComponent
        let file = directory.appendingPathComponent(Self.fileName)
        if !FileManager.default.fileExists(atPath: file.path) {
            guard create else { throw RAGError.collectionNotFound(directory.path, known: []) }
            do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
            catch { throw RAGError.store("cannot create \(directory.path): \(error.localizedDescription)") }
        }
        var config = Configuration()
        config.busyMode = .timeout(10)
        do {
            db = try DatabaseQueue(path: file.path, configuration: config)
            try db.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode=WAL")
                try db.execute(sql: "PRAGMA synchronous=NORMAL")
            }
            try migrate()
        } catch let e as RAGError { throw e }
        catch { throw RAGError.store("\(file.path): \(error)") }
    }

    private func migrate() throws {
        try db.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS info(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS files(
                    path TEXT PRIMARY KEY, hash TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL,
                    status TEXT NOT NULL, error TEXT, ingested_at REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS documents(
                    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, path TEXT NOT NULL, type TEXT NOT NULL,
                    title TEXT, hash TEXT NOT NULL, metadata TEXT NOT NULL, text TEXT NOT NULL,
                    chunk_count INTEGER NOT NULL, ingested_at REAL NOT NULL);
                CREATE INDEX IF NOT EXISTS documents_path ON documents(path);
                CREATE TABLE IF NOT EXISTS chunks(
                    id INTEGER PRIMARY KEY AUTOINCREMENT, document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
                    ordinal INTEGER NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
                    heading TEXT NOT NULL, page_start INTEGER, page_end INTEGER, row_start INTEGER, row_end INTEGER,
                    tokens INTEGER NOT NULL, embedding BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
                CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(body, tokenize='porter unicode61 remove_diacritics 2');
                CREATE TABLE IF NOT EXISTS pending_embeddings(chunk_id INTEGER PRIMARY KEY, embedding BLOB NOT NULL);
                """)
            if try String.fetchOne(db, sql: "SELECT value FROM info WHERE key='schema'") == nil {
                try db.execute(sql: "INSERT INTO info(key, value) VALUES ('schema', ?), ('created_at', ?), ('generation', '0')",
                               arguments: [Self.schemaVersion, String(Date().timeIntervalSince1970)])
            }
        }
    }

    // MARK: info

    public func info(_ key: String) throws -> String? {
        try db.read { try String.fetchOne($0, sql: "SELECT value FROM info WHERE key=?", arguments: [key]) }
    }

    func setInfo(_ db: Database, _ key: String, _ value: String) throws {
        try db.execute(sql: "INSERT INTO info(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", arguments: [key, value])
    }

    /// The embedding model that built the collection, and its dimension.
    public func embedder() throws -> (name: String, dimension: Int)? {
        guard let n = try info("embedder"), let d = try info("dimension").flatMap(Int.init) else { return nil }
        return (n, d)
    }

    /// Records the embedder for an empty collection; for a built one, checks it is the same.
    public func bind(embedderName: String, dimension: Int) throws {
        if let (n, d) = try embedder() {
            if n != embedderName || d != dimension {
                throw RAGError.modelMismatch(collection: name, built: "\(n)", requested: "\(embedderName)")
            }
            return
        }
        try db.write { db in
            try setInfo(db, "embedder", embedderName)
            try setInfo(db, "dimension", String(dimension))
        }
    }

    /// Bumped by every write: a persisted vector index built at another generation is stale.
    public func generation() throws -> Int { try info("generation").flatMap(Int.init) ?? 0 }

    func bump(_ db: Database) throws {
        try db.execute(sql: "UPDATE info SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
        try setInfo(db, "updated_at", String(Date().timeIntervalSince1970))
    }

    // MARK: files and documents

    public func file(_ path: String) throws -> FileRecord? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM files WHERE path=?", arguments: [path]).map(Self.fileRecord)
        }
    }

    static func fileRecord(_ r: Row) -> FileRecord {
        FileRecord(path: r["path"], hash: r["hash"], size: r["size"], mtime: r["mtime"], status: r["status"], error: r["error"])
    }

    public func files() throws -> [FileRecord] {
        try db.read { try Row.fetchAll($0, sql: "SELECT * FROM files ORDER BY path").map(Self.fileRecord) }
    }

    /// Document key → content hash, for the documents that came from `path`.
    public func documentHashes(path: String) throws -> [String: String] {
        try db.read { db in
            var out: [String: String] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT key, hash FROM documents WHERE path=?", arguments: [path]) { out[r["key"]] = r["hash"] }
            return out
        }
    }

    public func documentKeys() throws -> [String: String] {
        try db.read { db in
            var out: [String: String] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT key, hash FROM documents") { out[r["key"]] = r["hash"] }
            return out
        }
    }

    public func put(_ docs: [DocumentRecord], deleteKeys: [String] = [], files: [FileRecord] = []) throws {
        try db.write { db in
            for key in deleteKeys { try deleteDocument(db, key: key) }
            let now = Date().timeIntervalSince1970
            let insertChunk = try db.cachedStatement(sql: """
                INSERT INTO chunks(document_id, ordinal, text, start, "end", heading, page_start, page_end, row_start, row_end, tokens, embedding)
                VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
                """)
            let insertFTS = try db.cachedStatement(sql: "INSERT INTO chunks_fts(rowid, body) VALUES (?, ?)")
            for d in docs {
                try deleteDocument(db, key: d.key)
                try db.execute(sql: """
                    INSERT INTO documents(key, path, type, title, hash, metadata, text, chunk_count, ingested_at)
                    VALUES (?,?,?,?,?,?,?,?,?)
                    """, arguments: [d.key, d.path, d.type.rawValue, d.title, d.hash, Self.encode(d.metadata), d.text, d.chunks.count, now])
                let docID = db.lastInsertedRowID
                for (c, v) in zip(d.chunks, d.vectors) {
                    try insertChunk.execute(arguments: [docID, c.ordinal, c.text, c.start, c.end, c.headingPath.joined(separator: "\u{1F}"),
                                                        c.pageStart, c.pageEnd, c.rowStart, c.rowEnd, c.tokens, Self.blob(v)])
                    try insertFTS.execute(arguments: [db.lastInsertedRowID, c.contextualText])
                }
            }
            for f in files {
                try db.execute(sql: """
                    INSERT INTO files(path, hash, size, mtime, status, error, ingested_at) VALUES (?,?,?,?,?,?,?)
                    ON CONFLICT(path) DO UPDATE SET hash=excluded.hash, size=excluded.size, mtime=excluded.mtime,
                        status=excluded.status, error=excluded.error, ingested_at=excluded.ingested_at
                    """, arguments: [f.path, f.hash, f.size, f.mtime, f.status, f.error, now])
            }
            try bump(db)
        }
    }

    public func documents(_ keys: [String]) throws -> [DocumentRecord] {
        try db.read { db in
            try keys.compactMap { key in
                guard let d = try Row.fetchOne(db, sql: "SELECT * FROM documents WHERE key=?", arguments: [key]) else { return nil }
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM chunks WHERE document_id=? ORDER BY ordinal, id", arguments: [d["id"] as Int64])
                return DocumentRecord(key: d["key"], path: d["path"], type: DocumentType(rawValue: d["type"]) ?? .text, title: d["title"],
                                      hash: d["hash"], metadata: Self.decode(d["metadata"]), text: d["text"],
                                      chunks: rows.map(Self.chunk), vectors: rows.map { Self.floats($0["embedding"]) })
            }
        }
    }

    private func deleteDocument(_ db: Database, key: String) throws {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM documents WHERE key=?", arguments: [key]) else { return }
        try db.execute(sql: "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE document_id=?)", arguments: [id])
        try db.execute(sql: "DELETE FROM chunks WHERE document_id=?", arguments: [id])
        try db.execute(sql: "DELETE FROM documents WHERE id=?", arguments: [id])
    }

    /// Removes a file and every document that came from it.
    public func removeFile(_ path: String) throws {
        try db.write { db in
            for key in try String.fetchAll(db, sql: "SELECT key FROM documents WHERE path=?", arguments: [path]) { try deleteDocument(db, key: key) }
            try db.execute(sql: "DELETE FROM files WHERE path=?", arguments: [path])
            try bump(db)
        }
    }

    /// Updates a file's modification time and size without touching its documents.
    public func touch(_ f: FileRecord) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE files SET mtime=?, size=? WHERE path=?", arguments: [f.mtime, f.size, f.path])
        }
    }

    // MARK: reading chunks and vectors

    public func chunkCount() throws -> Int { try db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM chunks") ?? 0 } }

    /// Every chunk id and embedding, in id order, as one row-major matrix.
    public func vectors() throws -> (ids: [Int64], matrix: [Float], dimension: Int) {
        let dim = try embedder()?.dimension ?? 0
        return try db.read { db in
            let n = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks") ?? 0
            var ids = [Int64](); ids.reserveCapacity(n)
            var m = [Float](); m.reserveCapacity(n * dim)
            let cursor = try Row.fetchCursor(db, sql: "SELECT id, embedding FROM chunks ORDER BY id")
            while let r = try cursor.next() {
                let data: Data = r[1]
                guard data.count == dim * 4 else { throw RAGError.store("chunk \(r[0] as Int64) has a \(data.count / 4)-dim embedding, expected \(dim); run `tailor reindex`") }
                ids.append(r[0])
                data.withUnsafeBytes { m.append(contentsOf: $0.bindMemory(to: Float.self)) }
            }
            return (ids, m, dim)
        }
    }

    /// The chunks with these ids (in the given order; unknown ids are skipped).
    public func chunks(_ ids: [Int64]) throws -> [StoredChunk] {
        guard !ids.isEmpty else { return [] }
        return try db.read { db in
            var byID: [Int64: StoredChunk] = [:]
            for part in stride(from: 0, to: ids.count, by: 500) {
                let slice = Array(ids[part..<min(ids.count, part + 500)])
                let rows = try Row.fetchAll(db, sql: """
                    SELECT c.*, d.key, d.path, d.type, d.title, d.metadata FROM chunks c JOIN documents d ON d.id = c.document_id
                    WHERE c.id IN (\(slice.map { _ in "?" }.joined(separator: ",")))
                    """, arguments: StatementArguments(slice))
                for r in rows { let c = Self.storedChunk(r); byID[c.id] = c }
            }
            return ids.compactMap { byID[$0] }
        }
    }

    static func chunk(_ r: Row) -> Chunk {
        let heading: String = r["heading"]
        return Chunk(ordinal: r["ordinal"], text: r["text"], start: r["start"], end: r["end"],
                     headingPath: heading.isEmpty ? [] : heading.components(separatedBy: "\u{1F}"),
                     pageStart: r["page_start"], pageEnd: r["page_end"], rowStart: r["row_start"], rowEnd: r["row_end"], tokens: r["tokens"])
    }

    static func storedChunk(_ r: Row) -> StoredChunk {
        StoredChunk(id: r["id"], documentKey: r["key"], path: r["path"], type: DocumentType(rawValue: r["type"]) ?? .text,
                    title: r["title"], chunk: chunk(r), metadata: decode(r["metadata"]))
    }

    static func floats(_ d: Data) -> [Float] { d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }

    /// The embeddings of these chunks (same order).
    public func embeddings(_ ids: [Int64]) throws -> [[Float]] {
        try db.read { db in
            try ids.map { id in
                guard let d = try Data.fetchOne(db, sql: "SELECT embedding FROM chunks WHERE id=?", arguments: [id]) else { return [] }
                return Self.floats(d)
            }
        }
    }

    /// BM25 over the FTS5 index (higher is better), optionally within the chunks `filter` allows.
    public func keywordSearch(_ query: String, limit: Int, filter: Filter?) throws -> [(id: Int64, score: Double)] {
        let ftsQuery = Self.ftsQuery(query)
        guard !ftsQuery.isEmpty else { return [] }
        let (whereSQL, args) = filter?.sql() ?? ("", [])
        let join = whereSQL.isEmpty ? "" : "JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.document_id"
        let sql = "SELECT chunks_fts.rowid, bm25(chunks_fts) AS s FROM chunks_fts \(join) WHERE chunks_fts MATCH ? \(whereSQL.isEmpty ? "" : "AND " + whereSQL) ORDER BY s LIMIT ?"
        return try db.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments([ftsQuery] + args + [limit]))
                .map { (id: $0[0], score: -($0[1] as Double)) }
        }
    }

    /// An FTS5 query matching any of the query's words, each quoted so that FTS5 operators in
    /// user text are taken literally.
    static func ftsQuery(_ query: String) -> String {
        KeywordQuery.terms(query).map { "\"\($0)\"" }.joined(separator: " OR ")
    }

    /// SQLite has no vector index of its own: the retriever keeps one in the collection's folder.
    public func vectorSearch(_ q: [Float], k: Int, filter: Filter?, options: IndexOptions) throws -> [(id: Int64, score: Double)]? { nil }

    /// Ids of the chunks a filter allows.
    public func chunkIDs(matching filter: Filter) throws -> Set<Int64> {
        let (w, args) = filter.sql()
        return try db.read { db in
            Set(try Int64.fetchAll(db, sql: "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id" + (w.isEmpty ? "" : " WHERE " + w),
                                   arguments: StatementArguments(args)))
        }
    }

    // MARK: re-embedding

    /// Chunks still to re-embed (no pending embedding yet), in id order.
    public func chunksToReembed(limit: Int) throws -> [(id: Int64, text: String)] {
        try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.id, f.body FROM chunks c JOIN chunks_fts f ON f.rowid = c.id
                WHERE c.id NOT IN (SELECT chunk_id FROM pending_embeddings) ORDER BY c.id LIMIT ?
                """, arguments: [limit]).map { (id: $0[0], text: $0[1]) }
        }
    }

    public func savePending(_ items: [(Int64, [Float])]) throws {
        try db.write { db in
            for (id, v) in items { try db.execute(sql: "INSERT OR REPLACE INTO pending_embeddings(chunk_id, embedding) VALUES (?, ?)", arguments: [id, Self.blob(v)]) }
        }
    }

    public func pendingCount() throws -> Int { try db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM pending_embeddings") ?? 0 } }

    /// Swaps every chunk to its pending embedding and records the new model, in one transaction.
    public func commitReembedding(embedderName: String, dimension: Int) throws {
        try db.write { db in
            let missing = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE id NOT IN (SELECT chunk_id FROM pending_embeddings)") ?? 0
            guard missing == 0 else { throw RAGError.store("\(missing) chunks have no new embedding yet; run `tailor reindex` again") }
            try db.execute(sql: "UPDATE chunks SET embedding = (SELECT embedding FROM pending_embeddings p WHERE p.chunk_id = chunks.id)")
            try db.execute(sql: "DELETE FROM pending_embeddings")
            try setInfo(db, "embedder", embedderName)
            try setInfo(db, "dimension", String(dimension))
            try setInfo(db, "reindexing", "")
            try bump(db)
        }
    }

    public func clearPending() throws { try db.write { try $0.execute(sql: "DELETE FROM pending_embeddings") } }
    public func setInfo(_ key: String, _ value: String) throws { try db.write { try setInfo($0, key, value) } }

    // MARK: stats

    public func stats() throws -> CollectionStats {
        let e = try embedder()
        return try db.read { db in
            var types: [String: Int] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT type, COUNT(*) FROM documents GROUP BY type") { types[r[0]] = r[1] }
            let created = try String.fetchOne(db, sql: "SELECT value FROM info WHERE key='created_at'").flatMap(Double.init)
            let updated = try String.fetchOne(db, sql: "SELECT value FROM info WHERE key='updated_at'").flatMap(Double.init)
            let size = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.fileSizeKey]))?
                .reduce(Int64(0)) { $0 + Int64((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) } ?? 0
            return CollectionStats(
                name: name, directory: directory.path, embedder: e?.name, dimension: e?.dimension,
                files: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM files WHERE status='ok'") ?? 0,
                failedFiles: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM files WHERE status!='ok'") ?? 0,
                documents: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents") ?? 0,
                chunks: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks") ?? 0,
                bytes: size, types: types,
                createdAt: created.map { Date(timeIntervalSince1970: $0) }, updatedAt: updated.map { Date(timeIntervalSince1970: $0) })
        }
    }

    /// Checks that every document has exactly its chunks, every chunk its FTS row and embedding.
    public func integrityProblems() throws -> [String] {
        try db.read { db in
            var out: [String] = []
            let check = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            if check != ["ok"] { out += check.map { "SQLite: \($0)" } }
            for r in try Row.fetchAll(db, sql: """
                SELECT d.key, d.chunk_count, (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id) AS n FROM documents d
                WHERE d.chunk_count != (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id)
                """) { out.append("\(r[0] as String): \(r[1] as Int) chunks recorded, \(r[2] as Int) stored") }
            let fts = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks_fts") ?? 0
            let chunks = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks") ?? 0
            if fts != chunks { out.append("\(fts) keyword-index rows for \(chunks) chunks") }
            let orphans = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)") ?? 0
            if orphans > 0 { out.append("\(orphans) chunks without a document") }
            return out
        }
    }

    // MARK: encoding

    static func blob(_ v: [Float]) -> Data { v.withUnsafeBufferPointer { Data(buffer: $0) } }

    static func encode(_ m: [String: String]) -> String {
        "{" + m.keys.sorted().map { "\(JSONValue.quote($0)):\(JSONValue.quote(m[$0]!))" }.joined(separator: ",") + "}"
    }

    static func decode(_ s: String) -> [String: String] {
        guard let d = s.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: d) as? [String: String] else { return [:] }
        return o
    }
}

extension Filter {
    /// The filter for SQLite: a WHERE clause over `d` (documents) and its arguments.
    func sql() -> (String, [DatabaseValueConvertible?]) {
        var parts: [String] = [], args: [DatabaseValueConvertible?] = []
        if !paths.isEmpty {
            var ors: [String] = []
            for p in paths {
                if p.hasPrefix("/") { ors.append("d.path GLOB ?"); args.append(p) }
                else { ors.append("(d.path GLOB ? OR d.path GLOB ?)"); args.append("*/" + p); args.append(p) }
            }
            parts.append("(" + ors.joined(separator: " OR ") + ")")
        }
        if !types.isEmpty {
            parts.append("d.type IN (" + types.map { _ in "?" }.joined(separator: ",") + ")")
            args += types.map(\.rawValue)
        }
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            if k == "title" { parts.append("d.title GLOB ?") }
            else { parts.append("json_extract(d.metadata, ?) GLOB ?"); args.append("$.\"" + k.replacingOccurrences(of: "\"", with: "") + "\"") }
            args.append(v)
        }
        return (parts.joined(separator: " AND "), args)
    }

}
