// A collection in PostgreSQL with pgvector: the same documents, chunks, files, filters, hybrid
// retrieval, incremental ingest and re-embedding as the SQLite store, shared by every process
// (on any machine) that names the same database.
//
// Each collection is a schema ("tailor_NAME") listed in public.tailor_collections:
//   info(key, value)            embedder, dimension, generation, chunk and token counters
//   files, documents            as in SQLite (metadata as jsonb)
//   chunks                      text and position, `embedding vector(D)` with an HNSW index
//                               (cosine; m = 16, ef_construction = 200), `tsv tsvector` with a
//                               GIN index, `length` (tokens, for BM25)
//   postings(lexeme, chunk_id,  the keyword index BM25 reads: one row per chunk and word, with
//            tf, len)           its count and the chunk's length (a B-tree on (lexeme, chunk))
//   terms(lexeme, df)           document frequencies, kept in step by every write
//   pending_embeddings          re-embedding in progress
// Keyword search ranks with BM25 (k1 = 1.2, b = 0.75, FTS5's formula and idf floor) computed
// from `postings` and `terms`, so both backends rank alike (the tsvector's GIN index serves
// SQL users' own `@@` queries); the text reaches `to_tsvector`
// lower-cased, without diacritics and split at every non-alphanumeric character, as FTS5's
// unicode61 tokenizer splits it. Every write transaction takes the collection's advisory lock:
// concurrent writers (several `tailor ingest` at once) queue for the moment of writing (their
// embedding work runs in parallel) and each document is stored once.
import Foundation
import PostgresNIO
import TailorFormats

// @unchecked Sendable: all state is in the database, reached through the pool's connections
// (one caller at a time each); the properties are immutable.
public final class PostgresStore: CollectionStore, @unchecked Sendable {
    public let name: String
    public let database: PostgresCollections
    /// The quoted schema name, ready for SQL.
    let s: String
    let schema: String
    /// The advisory lock key that serializes this collection's writers.
    let writeLock: Int64

    public var location: String { database.url.redacted + "#" + name }
    public var backend: String { "postgresql" }
    public var cacheDirectory: URL? { nil }

    /// HNSW build parameters: those of Tailor's own index (HNSWIndex), so both backends search
    /// graphs of the same quality (pgvector's defaults are m 16, ef_construction 64).
    static let hnswM = 16, hnswEfConstruction = 200
    static let k1 = 1.2, b = 0.75

    /// Opens (or with `create`, creates) the collection `name` in `database`.
    public init(database: PostgresCollections, name: String, create: Bool) throws {
        self.database = database
        self.name = name
        schema = "tailor_" + name
        s = Self.quote(schema)
        var h = StableHash(); h.add("tailor collection " + name)
        writeLock = Int64(bitPattern: UInt64(h.hex.prefix(16), radix: 16) ?? 0)
        let exists = try database.collectionNames().contains(name)
        if !exists {
            guard create else { throw RAGError.collectionNotFound(name, known: try database.collectionNames()) }
            try createSchema()
        } else {
            try upgrade()
        }
    }

    static func postingsTable(_ s: String) -> String {
        """
        CREATE TABLE \(s).postings(lexeme text NOT NULL, chunk_id bigint NOT NULL REFERENCES \(s).chunks(id) ON DELETE CASCADE,
            tf integer NOT NULL, len integer NOT NULL, PRIMARY KEY (lexeme, chunk_id))
        """
    }
    static func postingsIndex(_ s: String) -> String { "CREATE INDEX postings_chunk ON \(s).postings(chunk_id)" }

    /// Collections made before the postings table (schema 1) get it, filled from their tsvectors.
    private func upgrade() throws {
        guard try info("schema") == "1" else { return }
        try writing { c in
            guard try Self.info(c, s, "schema") == "1" else { return }
            try c.query(Self.postingsTable(s))
            try c.query(Self.postingsIndex(s))
            try c.query("""
                INSERT INTO \(s).postings(lexeme, chunk_id, tf, len)
                SELECT u.lexeme, c.id, array_length(u.positions, 1), c.length FROM \(s).chunks c, unnest(c.tsv) u
                """)
            try setInfo(c, "schema", "2")
        }
    }

    static func quote(_ identifier: String) -> String { "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    private func createSchema() throws {
        try database.transaction { c in
            try c.query("SELECT pg_advisory_xact_lock(\(PostgresCollections.setupLock))")
            var nb = PostgresBindings(); nb.append(name)
            if try !c.query("SELECT 1 FROM public.tailor_collections WHERE name = $1", nb).isEmpty { return }
            for sql in [
                "CREATE SCHEMA IF NOT EXISTS \(s)",
                "CREATE TABLE \(s).info(key text PRIMARY KEY, value text NOT NULL)",
                """
                CREATE TABLE \(s).files(path text PRIMARY KEY, hash text NOT NULL, size bigint NOT NULL, mtime double precision NOT NULL,
                    status text NOT NULL, error text, ingested_at double precision NOT NULL)
                """,
                """
                CREATE TABLE \(s).documents(id bigserial PRIMARY KEY, key text NOT NULL UNIQUE, path text NOT NULL, type text NOT NULL,
                    title text, hash text NOT NULL, metadata jsonb NOT NULL, text text NOT NULL, chunk_count integer NOT NULL,
                    ingested_at double precision NOT NULL)
                """,
                "CREATE INDEX documents_path ON \(s).documents(path)",
                """
                CREATE TABLE \(s).chunks(id bigserial PRIMARY KEY,
                    document_id bigint NOT NULL REFERENCES \(s).documents(id) ON DELETE CASCADE,
                    ordinal integer NOT NULL, text text NOT NULL, start integer NOT NULL, "end" integer NOT NULL, heading text NOT NULL,
                    page_start integer, page_end integer, row_start integer, row_end integer, tokens integer NOT NULL,
                    body text NOT NULL, tsv tsvector NOT NULL, length integer NOT NULL, embedding vector NOT NULL)
                """,
                "CREATE INDEX chunks_document ON \(s).chunks(document_id)",
                "CREATE INDEX chunks_tsv ON \(s).chunks USING gin(tsv)",
                "CREATE TABLE \(s).terms(lexeme text PRIMARY KEY, df integer NOT NULL)",
                Self.postingsTable(s), Self.postingsIndex(s),
                "CREATE TABLE \(s).pending_embeddings(chunk_id bigint PRIMARY KEY, embedding vector NOT NULL)",
            ] { try c.query(sql) }
            var b = PostgresBindings()
            b.append(String(Date().timeIntervalSince1970))
            try c.query("""
                INSERT INTO \(s).info(key, value) VALUES ('schema', '2'), ('created_at', $1), ('generation', '0'),
                    ('chunks', '0'), ('tokens', '0')
                """, b)
            var r = PostgresBindings(); r.append(name); r.append(schema); r.append(Date().timeIntervalSince1970)
            try c.query("INSERT INTO public.tailor_collections(name, schema, created_at) VALUES ($1, $2, $3)", r)
        }
    }

    // MARK: info

    public func info(_ key: String) throws -> String? {
        try database.withConnection { c in try Self.info(c, s, key) }
    }

    static func info(_ c: PGConnection, _ s: String, _ key: String) throws -> String? {
        var b = PostgresBindings(); b.append(key)
        return try c.query("SELECT value FROM \(s).info WHERE key = $1", b).first?.decode(String.self)
    }

    func setInfo(_ c: PGConnection, _ key: String, _ value: String) throws {
        var b = PostgresBindings(); b.append(key); b.append(value)
        try c.query("INSERT INTO \(s).info(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", b)
    }

    public func setInfo(_ key: String, _ value: String) throws {
        try database.withConnection { c in try setInfo(c, key, value) }
    }

    public func embedder() throws -> (name: String, dimension: Int)? {
        try database.withConnection { c in
            guard let n = try Self.info(c, s, "embedder"), let d = try Self.info(c, s, "dimension").flatMap(Int.init) else { return nil }
            return (n, d)
        }
    }

    public func bind(embedderName: String, dimension: Int) throws {
        if let (n, d) = try embedder() {
            if n != embedderName || d != dimension {
                throw RAGError.modelMismatch(collection: name, built: n, requested: embedderName)
            }
            return
        }
        try writing { c in
            if let n = try Self.info(c, s, "embedder") {   // another process bound it meanwhile
                let d = try Self.info(c, s, "dimension").flatMap(Int.init) ?? 0
                if n != embedderName || d != dimension { throw RAGError.modelMismatch(collection: name, built: n, requested: embedderName) }
                return
            }
            try setInfo(c, "embedder", embedderName)
            try setInfo(c, "dimension", String(dimension))
            try fixDimension(c, dimension)
        }
    }

    /// Gives the embedding column its dimension and (re)builds the HNSW index on it.
    private func fixDimension(_ c: PGConnection, _ dimension: Int) throws {
        try c.query("DROP INDEX IF EXISTS \(s).chunks_embedding")
        try c.query("ALTER TABLE \(s).chunks ALTER COLUMN embedding TYPE vector(\(dimension))")
        // Vectors stay in the row (MAIN: out of line only if the row cannot hold them), so a scan
        // reads them without detoasting; the texts go out of line first.
        try c.query("ALTER TABLE \(s).chunks ALTER COLUMN embedding SET STORAGE MAIN")
        try c.query("""
            CREATE INDEX chunks_embedding ON \(s).chunks USING hnsw (embedding vector_cosine_ops)
            WITH (m = \(Self.hnswM), ef_construction = \(Self.hnswEfConstruction))
            """)
    }

    /// Drops the HNSW index (a bulk load is faster without it; `buildVectorIndex` makes it again).
    public func dropVectorIndex() throws {
        try writing { c in try c.query("DROP INDEX IF EXISTS \(s).chunks_embedding") }
    }

    /// Builds the HNSW index if it is missing (with the server's parallel maintenance workers),
    /// reporting the share done about every second (read from pg_stat_progress_create_index).
    public func buildVectorIndex(progress: ((Double) -> Void)? = nil) throws {
        try writing { c in
            try c.query("SET LOCAL maintenance_work_mem = '4GB'")
            let create = """
                CREATE INDEX IF NOT EXISTS chunks_embedding ON \(s).chunks USING hnsw (embedding vector_cosine_ops)
                WITH (m = \(Self.hnswM), ef_construction = \(Self.hnswEfConstruction))
                """
            guard let progress else { try c.query(create); return }
            var pid = PostgresBindings(); pid.append(try c.query("SELECT pg_backend_pid()")[0].decode(Int32.self))
            try c.query(create) {
                // The build's progress, seen from another connection.
                let row = try? database.withConnection { w in
                    try w.query("SELECT blocks_done, blocks_total FROM pg_stat_progress_create_index WHERE pid = $1", pid).first
                }
                if let (done, total) = try? row?.decode((Int64, Int64).self), total > 0 { progress(Double(done) / Double(total)) }
            }
        }
    }

    /// A large copy into an empty collection loads without the HNSW index and builds it after
    /// (an interrupted copy's next run builds it at its end; meanwhile searches scan, exactly).
    public func bulkLoading(_ on: Bool, progress: (Double) -> Void) throws {
        if on { try dropVectorIndex() } else { try withoutActuallyEscaping(progress) { try buildVectorIndex(progress: $0) } }
    }

    public func generation() throws -> Int { try info("generation").flatMap(Int.init) ?? 0 }

    /// A write transaction: the collection's writers take turns; the generation is bumped.
    private func writing<T>(_ body: (PGConnection) throws -> T) throws -> T {
        try database.transaction { c in
            try c.query("SELECT pg_advisory_xact_lock(\(writeLock))")
            let r = try body(c)
            var b = PostgresBindings(); b.append(String(Date().timeIntervalSince1970))
            try c.query("UPDATE \(s).info SET value = (value::bigint + 1)::text WHERE key = 'generation'")
            try c.query("INSERT INTO \(s).info(key, value) VALUES ('updated_at', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", b)
            return r
        }
    }

    // MARK: files and documents

    static let fileColumns = "path, hash, size, mtime, status, error"

    static func fileRecord(_ r: PostgresRow) throws -> FileRecord {
        let (path, hash, size, mtime, status, error) = try r.decode((String, String, Int64, Double, String, String?).self)
        return FileRecord(path: path, hash: hash, size: size, mtime: mtime, status: status, error: error)
    }

    public func file(_ path: String) throws -> FileRecord? {
        try database.withConnection { c in
            var b = PostgresBindings(); b.append(path)
            return try c.query("SELECT \(Self.fileColumns) FROM \(s).files WHERE path = $1", b).first.map(Self.fileRecord)
        }
    }

    public func files() throws -> [FileRecord] {
        try database.withConnection { c in try c.query("SELECT \(Self.fileColumns) FROM \(s).files ORDER BY path").map(Self.fileRecord) }
    }

    public func documentHashes(path: String) throws -> [String: String] {
        try database.withConnection { c in
            var b = PostgresBindings(); b.append(path)
            var out: [String: String] = [:]
            for r in try c.query("SELECT key, hash FROM \(s).documents WHERE path = $1", b) {
                let (k, h) = try r.decode((String, String).self); out[k] = h
            }
            return out
        }
    }

    public func documentKeys() throws -> [String: String] {
        try database.withConnection { c in
            var out: [String: String] = [:]
            for r in try c.query("SELECT key, hash FROM \(s).documents") { let (k, h) = try r.decode((String, String).self); out[k] = h }
            return out
        }
    }

    public func put(_ docs: [DocumentRecord], deleteKeys: [String] = [], files: [FileRecord] = []) throws {
        // One record per key (the last one given wins, as writing them in turn would).
        var byKey: [String: Int] = [:]
        for (i, d) in docs.enumerated() { byKey[d.key] = i }
        let docs = docs.enumerated().filter { byKey[$0.element.key] == $0.offset }.map(\.element)
        let dim = try embedder()?.dimension
        for d in docs {
            guard d.chunks.count == d.vectors.count else { throw RAGError.store("\(d.key): \(d.chunks.count) chunks but \(d.vectors.count) embeddings") }
            for v in d.vectors where v.count != (dim ?? v.count) || v.isEmpty {
                throw RAGError.store("\(d.key): a \(v.count)-dimensional embedding; the collection has \(dim ?? 0) dimensions")
            }
        }
        // A few statements per call however many documents it holds (arrays unnested).
        try writing { c in
            try deleteDocuments(c, keys: deleteKeys + docs.map(\.key))
            let now = Date().timeIntervalSince1970
            if !docs.isEmpty { try insertDocuments(c, docs, now: now) }
            if !files.isEmpty {
                var b = PostgresBindings()
                b.append(files.map(\.path)); b.append(files.map(\.hash)); b.append(files.map(\.size)); b.append(files.map(\.mtime))
                b.append(files.map(\.status)); b.append(files.map { $0.error ?? "" }); b.append(files.map { $0.error != nil }); b.append(now)
                try c.query("""
                    INSERT INTO \(s).files(path, hash, size, mtime, status, error, ingested_at)
                    SELECT x.p, x.h, x.sz, x.mt, x.st, CASE WHEN x.he THEN x.e END, $8
                    FROM unnest($1::text[], $2::text[], $3::int8[], $4::float8[], $5::text[], $6::text[], $7::bool[]) AS x(p, h, sz, mt, st, e, he)
                    ON CONFLICT (path) DO UPDATE SET hash = excluded.hash, size = excluded.size, mtime = excluded.mtime,
                        status = excluded.status, error = excluded.error, ingested_at = excluded.ingested_at
                    """, b)
            }
        }
    }

    /// The documents, then all their chunks in one statement (the embeddings as one flat float4
    /// array cut into rows), then their terms' document frequencies and the collection's counters.
    private func insertDocuments(_ c: PGConnection, _ docs: [DocumentRecord], now: Double) throws {
        var b = PostgresBindings()
        b.append(docs.map(\.key)); b.append(docs.map(\.path)); b.append(docs.map(\.type.rawValue))
        b.append(docs.map { $0.title ?? "" }); b.append(docs.map { $0.title != nil }); b.append(docs.map(\.hash))
        b.append(docs.map { SQLiteStore.encode($0.metadata) }); b.append(docs.map(\.text)); b.append(docs.map(\.chunks.count)); b.append(now)
        var idOf: [String: Int64] = [:]
        for r in try c.query("""
            INSERT INTO \(s).documents(key, path, type, title, hash, metadata, text, chunk_count, ingested_at)
            SELECT x.k, x.p, x.t, CASE WHEN x.ht THEN x.ti END, x.h, x.m::jsonb, x.tx, x.n, $10
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::text[], $9::int8[])
                WITH ORDINALITY AS x(k, p, t, ti, ht, h, m, tx, n, i)
            ORDER BY x.i RETURNING id, key
            """, b) {
            let (id, key) = try r.decode((Int64, String).self); idOf[key] = id
        }
        let withChunks = docs.filter { !$0.chunks.isEmpty }
        guard !withChunks.isEmpty else { return }
        var docIDs: [Int64] = [], ch: [Chunk] = [], vectors: [Float] = []
        for d in withChunks {
            guard let id = idOf[d.key] else { throw RAGError.store("\(d.key): the document row was not written") }
            docIDs += Array(repeating: id, count: d.chunks.count)
            ch += d.chunks
            for v in d.vectors { vectors += v }
        }
        let dim = withChunks[0].vectors[0].count
        let bodies = ch.map(\.contextualText)
        let normalized = bodies.map(Self.indexText)
        let lengths = normalized.map(Self.tokenCount)
        var cb = PostgresBindings()
        cb.append(docIDs)
        cb.append(ch.map(\.ordinal)); cb.append(ch.map(\.text)); cb.append(ch.map(\.start)); cb.append(ch.map(\.end))
        cb.append(ch.map { $0.headingPath.joined(separator: "\u{1F}") })
        cb.append(ch.map { $0.pageStart ?? -1 }); cb.append(ch.map { $0.pageEnd ?? -1 })
        cb.append(ch.map { $0.rowStart ?? -1 }); cb.append(ch.map { $0.rowEnd ?? -1 })
        cb.append(ch.map(\.tokens)); cb.append(bodies); cb.append(normalized); cb.append(lengths)
        cb.append(vectors); cb.append(dim)
        try c.query("""
            INSERT INTO \(s).chunks(document_id, ordinal, text, start, "end", heading, page_start, page_end, row_start, row_end,
                                    tokens, body, tsv, length, embedding)
            SELECT x.d, x.o, x.t, x.st, x.en, x.h, NULLIF(x.ps, -1), NULLIF(x.pe, -1), NULLIF(x.rs, -1), NULLIF(x.re, -1),
                   x.tk, x.b, to_tsvector('public.tailor_english', x.n), x.l,
                   (($15::float4[])[(x.i - 1) * $16 + 1 : x.i * $16])::vector
            FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::int8[], $8::int8[], $9::int8[],
                        $10::int8[], $11::int8[], $12::text[], $13::text[], $14::int8[])
                WITH ORDINALITY AS x(d, o, t, st, en, h, ps, pe, rs, re, tk, b, n, l, i)
            ORDER BY x.i
            """, cb)
        var t = PostgresBindings(); t.append(Array(Set(docIDs)))
        try c.query("""
            INSERT INTO \(s).postings(lexeme, chunk_id, tf, len)
            SELECT u.lexeme, c.id, array_length(u.positions, 1), c.length FROM \(s).chunks c, unnest(c.tsv) u WHERE c.document_id = ANY($1::int8[])
            """, t)
        try c.query("""
            INSERT INTO \(s).terms(lexeme, df)
            SELECT u.lexeme, count(*) FROM \(s).chunks c, unnest(c.tsv) u WHERE c.document_id = ANY($1::int8[]) GROUP BY u.lexeme ORDER BY u.lexeme
            ON CONFLICT (lexeme) DO UPDATE SET df = \(s).terms.df + excluded.df
            """, t)
        try addCounters(c, chunks: ch.count, tokens: lengths.reduce(0, +))
    }

    private func addCounters(_ c: PGConnection, chunks: Int, tokens: Int) throws {
        guard chunks != 0 || tokens != 0 else { return }
        var b = PostgresBindings(); b.append(chunks); b.append(tokens)
        try c.query("""
            UPDATE \(s).info SET value = (value::bigint + CASE key WHEN 'chunks' THEN $1::bigint ELSE $2::bigint END)::text
            WHERE key IN ('chunks', 'tokens')
            """, b)
    }

    /// Removes these documents (unknown keys are skipped) with their chunks, terms and counts.
    private func deleteDocuments(_ c: PGConnection, keys: [String]) throws {
        guard !keys.isEmpty else { return }
        var b = PostgresBindings(); b.append(keys)
        let ids = try c.query("SELECT id FROM \(s).documents WHERE key = ANY($1::text[])", b).map { try $0.decode(Int64.self) }
        guard !ids.isEmpty else { return }
        var i = PostgresBindings(); i.append(ids)
        try c.query("""
            UPDATE \(s).terms t SET df = t.df - x.n
            FROM (SELECT u.lexeme, count(*) AS n FROM \(s).chunks c, unnest(c.tsv) u WHERE c.document_id = ANY($1::int8[]) GROUP BY u.lexeme) x
            WHERE t.lexeme = x.lexeme
            """, i)
        let counts = try c.query("SELECT count(*), coalesce(sum(length), 0)::int8 FROM \(s).chunks WHERE document_id = ANY($1::int8[])", i)[0]
            .decode((Int64, Int64).self)
        try addCounters(c, chunks: -Int(counts.0), tokens: -Int(counts.1))
        try c.query("DELETE FROM \(s).chunks WHERE document_id = ANY($1::int8[])", i)
        try c.query("DELETE FROM \(s).documents WHERE id = ANY($1::int8[])", i)
    }

    public func documents(_ keys: [String]) throws -> [DocumentRecord] {
        guard !keys.isEmpty else { return [] }
        return try database.withConnection { c in
            var b = PostgresBindings(); b.append(keys)
            var docs: [Int64: DocumentRecord] = [:], order: [Int64] = []
            for r in try c.query("SELECT id, key, path, type, title, hash, metadata::text, text FROM \(s).documents WHERE key = ANY($1::text[])", b) {
                let (id, key, path, type, title, hash, meta, text) = try r.decode((Int64, String, String, String, String?, String, String, String).self)
                docs[id] = DocumentRecord(key: key, path: path, type: DocumentType(rawValue: type) ?? .text, title: title, hash: hash,
                                          metadata: SQLiteStore.decode(meta), text: text, chunks: [], vectors: [])
                order.append(id)
            }
            var ib = PostgresBindings(); ib.append(order)
            for r in try c.query("SELECT c.document_id, \(Self.chunkColumns), c.embedding::float4[] FROM \(s).chunks c WHERE c.document_id = ANY($1::int8[]) ORDER BY c.document_id, c.ordinal, c.id", ib) {
                let ra = r.makeRandomAccess()
                let docID = try ra[0].decode(Int64.self)
                docs[docID]?.chunks.append(try Self.chunk(r, from: 1))
                docs[docID]?.vectors.append(try ra[11].decode([Float].self))
            }
            let byKey = Dictionary(uniqueKeysWithValues: docs.values.map { ($0.key, $0) })
            return keys.compactMap { byKey[$0] }
        }
    }

    public func removeFile(_ path: String) throws {
        try writing { c in
            var b = PostgresBindings(); b.append(path)
            try deleteDocuments(c, keys: try c.query("SELECT key FROM \(s).documents WHERE path = $1", b).map { try $0.decode(String.self) })
            try c.query("DELETE FROM \(s).files WHERE path = $1", b)
        }
    }

    public func touch(_ f: FileRecord) throws {
        try database.withConnection { c in
            var b = PostgresBindings(); b.append(f.mtime); b.append(f.size); b.append(f.path)
            try c.query("UPDATE \(s).files SET mtime = $1, size = $2 WHERE path = $3", b)
        }
    }

    // MARK: chunks

    public func chunkCount() throws -> Int { Int(try info("chunks") ?? "0") ?? 0 }

    public func vectors() throws -> (ids: [Int64], matrix: [Float], dimension: Int) {
        let dim = try embedder()?.dimension ?? 0
        return try database.withConnection { c in
            var ids: [Int64] = [], m: [Float] = []
            for r in try c.query("SELECT id, embedding::float4[] FROM \(s).chunks ORDER BY id") {
                let (id, v) = try r.decode((Int64, [Float]).self)
                guard v.count == dim else { throw RAGError.store("chunk \(id) has a \(v.count)-dim embedding, expected \(dim); run `tailor reindex`") }
                ids.append(id); m += v
            }
            return (ids, m, dim)
        }
    }

    static let chunkColumns = "c.ordinal, c.text, c.start, c.\"end\", c.heading, c.page_start, c.page_end, c.row_start, c.row_end, c.tokens"

    /// A chunk from the 10 columns of `chunkColumns`, starting at column `from`.
    static func chunk(_ r: PostgresRow, from i: Int) throws -> Chunk {
        let ra = r.makeRandomAccess()
        func int(_ k: Int) throws -> Int { Int(try ra[i + k].decode(Int32.self)) }
        func opt(_ k: Int) throws -> Int? { try ra[i + k].decode(Int32?.self).map(Int.init) }
        let heading = try ra[i + 4].decode(String.self)
        return Chunk(ordinal: try int(0), text: try ra[i + 1].decode(String.self), start: try int(2), end: try int(3),
                     headingPath: heading.isEmpty ? [] : heading.components(separatedBy: "\u{1F}"),
                     pageStart: try opt(5), pageEnd: try opt(6), rowStart: try opt(7), rowEnd: try opt(8), tokens: try int(9))
    }

    public func chunks(_ ids: [Int64]) throws -> [StoredChunk] {
        guard !ids.isEmpty else { return [] }
        return try database.withConnection { c in
            var b = PostgresBindings(); b.append(ids)
            var byID: [Int64: StoredChunk] = [:]
            for r in try c.query("""
                SELECT c.id, \(Self.chunkColumns), d.key, d.path, d.type, d.title, d.metadata::text
                FROM \(s).chunks c JOIN \(s).documents d ON d.id = c.document_id WHERE c.id = ANY($1::int8[])
                """, b) {
                let ra = r.makeRandomAccess()
                let id = try ra[0].decode(Int64.self)
                byID[id] = StoredChunk(id: id, documentKey: try ra[11].decode(String.self), path: try ra[12].decode(String.self),
                                       type: DocumentType(rawValue: try ra[13].decode(String.self)) ?? .text, title: try ra[14].decode(String?.self),
                                       chunk: try Self.chunk(r, from: 1), metadata: SQLiteStore.decode(try ra[15].decode(String.self)))
            }
            return ids.compactMap { byID[$0] }
        }
    }

    public func embeddings(_ ids: [Int64]) throws -> [[Float]] {
        guard !ids.isEmpty else { return [] }
        return try database.withConnection { c in
            var b = PostgresBindings(); b.append(ids)
            var byID: [Int64: [Float]] = [:]
            for r in try c.query("SELECT id, embedding::float4[] FROM \(s).chunks WHERE id = ANY($1::int8[])", b) {
                let (id, v) = try r.decode((Int64, [Float]).self); byID[id] = v
            }
            return ids.map { byID[$0] ?? [] }
        }
    }

    // MARK: search

    /// Text as the keyword index takes it: lower-cased, diacritics removed, every run of
    /// characters that are not letters or digits one space (FTS5's unicode61 splits there).
    static func indexText(_ text: String) -> String {
        let folded = text.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil)
        var out = String.UnicodeScalarView(), space = true
        for ch in folded.unicodeScalars {
            if ch.properties.isAlphabetic || ch.properties.numericType != nil { out.append(ch); space = false }
            else if !space { out.append(" "); space = true }
        }
        return String(out)
    }

    static func tokenCount(_ normalized: String) -> Int {
        normalized.split(separator: " ", omittingEmptySubsequences: true).count
    }

    public func keywordSearch(_ query: String, limit: Int, filter: Filter?) throws -> [(id: Int64, score: Double)] {
        let terms = KeywordQuery.terms(query)
        guard !terms.isEmpty, limit > 0 else { return [] }
        var b = PostgresBindings()
        b.append(terms.map(Self.indexText).joined(separator: " ")); b.append(limit)
        let (whereSQL, filterJoin) = try filterSQL(filter, &b)
        // BM25 as FTS5 computes it: idf = ln((N − n + 0.5) / (n + 0.5)), at least 1e-6;
        // tf·(k1 + 1) / (tf + k1·(1 − b + b·length/avgdl)), summed over the query's terms.
        let sql = """
            WITH ql AS (SELECT DISTINCT u.lexeme FROM unnest(to_tsvector('public.tailor_english', $1)) u),
                 st AS (SELECT (SELECT value::float8 FROM \(s).info WHERE key = 'chunks') AS n,
                               (SELECT value::float8 FROM \(s).info WHERE key = 'tokens') AS total),
                 q AS (SELECT t.lexeme, greatest(ln((st.n - t.df + 0.5) / (t.df + 0.5)), 1e-6) AS idf
                       FROM \(s).terms t JOIN ql ON ql.lexeme = t.lexeme, st WHERE t.df > 0)
            SELECT p.chunk_id, sum(q.idf * (p.tf * \(Self.k1 + 1))
                                   / (p.tf + \(Self.k1) * (\(1 - Self.b) + \(Self.b) * p.len / (st.total / st.n)))) AS score
            FROM q JOIN \(s).postings p ON p.lexeme = q.lexeme CROSS JOIN st
            \(filterJoin.isEmpty ? "" : "JOIN \(s).chunks c ON c.id = p.chunk_id " + filterJoin)
            \(whereSQL.isEmpty ? "" : "WHERE " + whereSQL)
            GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT $2
            """
        return try database.withConnection { c in
            try c.query(sql, b).map { r in let (id, score) = try r.decode((Int64, Double).self); return (id: id, score: score) }
        }
    }

    public func vectorSearch(_ q: [Float], k: Int, filter: Filter?, options: IndexOptions) throws -> [(id: Int64, score: Double)]? {
        guard k > 0, !q.isEmpty else { return [] }
        var b = PostgresBindings()
        b.append(q); b.append(k)
        let (whereSQL, filterJoin) = try filterSQL(filter, &b)
        let sql = """
            SELECT c.id, 1 - (c.embedding <=> $1::float4[]::vector) AS score FROM \(s).chunks c \(filterJoin)
            \(whereSQL.isEmpty ? "" : "WHERE " + whereSQL)
            ORDER BY c.embedding <=> $1::float4[]::vector LIMIT $2
            """
        // The search's settings hold for its transaction only. Small collections (under the
        // HNSW threshold, or --index exact) are scanned: exact, like SQLite's. Otherwise pgvector
        // returns at most ef_search rows, and with a filter scans on until k pass it (0.8's
        // iterative scan); asked for by name (--index hnsw) the index is used even where the
        // planner would scan.
        let scan: String
        switch options.kind {
        case .exact: scan = "'off'"
        case .hnsw: scan = "'on'"
        case .auto: scan = "CASE WHEN (SELECT value::bigint FROM \(s).info WHERE key = 'chunks') < \(options.hnswThreshold) THEN 'off' ELSE 'on' END"
        }
        var settings = [
            "SELECT set_config('enable_indexscan', \(scan), true)",
            "SET LOCAL hnsw.ef_search = \(min(1000, max(options.efSearch, k)))",   // pgvector's range: 1–1000
        ]
        if options.kind == .hnsw { settings.append("SET LOCAL enable_seqscan = off") }
        if filter != nil { settings.append("SET LOCAL hnsw.iterative_scan = relaxed_order") }
        // One round trip: every statement is sent before the first answer is read.
        let answers = try database.withConnection { c in
            try c.pipeline([("BEGIN", PostgresBindings())] + settings.map { ($0, PostgresBindings()) } + [(sql, b), ("COMMIT", PostgresBindings())])
        }
        let rows = try answers[answers.count - 2].map { r in let (id, score) = try r.decode((Int64, Double).self); return (id: id, score: score) }
        return rows.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
    }

    public func chunkIDs(matching filter: Filter) throws -> Set<Int64> {
        var b = PostgresBindings()
        let (w, join) = try filterSQL(filter, &b)
        return try database.withConnection { c in
            Set(try c.query("SELECT c.id FROM \(s).chunks c \(join)" + (w.isEmpty ? "" : " WHERE " + w), b).map { try $0.decode(Int64.self) })
        }
    }

    /// The filter as SQL over `d` (the chunk's document), its values appended to `b`; and the
    /// join that brings `d` in (empty without a filter).
    func filterSQL(_ filter: Filter?, _ b: inout PostgresBindings) throws -> (String, String) {
        guard let f = filter, !f.isEmpty else { return ("", "") }
        var parts: [String] = []
        func param(_ v: String) -> String { b.append(v); return "$\(b.count)" }
        if !f.paths.isEmpty {
            var ors: [String] = []
            for p in f.paths {
                if p.hasPrefix("/") { ors.append("d.path ~ \(param(Self.globRegex(p)))") }
                else { ors.append("(d.path ~ \(param(Self.globRegex("*/" + p))) OR d.path ~ \(param(Self.globRegex(p))))") }
            }
            parts.append("(" + ors.joined(separator: " OR ") + ")")
        }
        if !f.types.isEmpty {
            b.append(f.types.map(\.rawValue))
            parts.append("d.type = ANY($\(b.count)::text[])")
        }
        for (k, v) in f.metadata.sorted(by: { $0.key < $1.key }) {
            if k == "title" { parts.append("d.title ~ \(param(Self.globRegex(v)))") }
            else { parts.append("(d.metadata ->> \(param(k))) ~ \(param(Self.globRegex(v)))") }
        }
        return (parts.joined(separator: " AND "), "JOIN \(s).documents d ON d.id = c.document_id")
    }

    /// A GLOB pattern (SQLite's: * any run, ? one character, [...] a set, [^...] not in it;
    /// case-sensitive, the whole text) as an anchored POSIX regular expression.
    static func globRegex(_ glob: String) -> String {
        var out = "^", chars = Array(glob), i = 0
        while i < chars.count {
            let ch = chars[i]
            switch ch {
            case "*": out += ".*"
            case "?": out += "."
            case "[":
                if let close = chars[(i + 1)...].firstIndex(of: "]"), close > i + 1 {
                    var set = String(chars[(i + 1)..<close])
                    if set.hasPrefix("^") || set.hasPrefix("!") { set = "^" + set.dropFirst() }
                    out += "[" + set.replacingOccurrences(of: "\\", with: "\\\\") + "]"
                    i = close
                } else { out += "\\[" }
            default:
                if "\\.^$|()+{}]".contains(ch) { out += "\\" }
                out.append(ch)
            }
            i += 1
        }
        return out + "$"
    }

    // MARK: re-embedding

    public func chunksToReembed(limit: Int) throws -> [(id: Int64, text: String)] {
        try database.withConnection { c in
            var b = PostgresBindings(); b.append(limit)
            return try c.query("""
                SELECT c.id, c.body FROM \(s).chunks c
                WHERE NOT EXISTS (SELECT 1 FROM \(s).pending_embeddings p WHERE p.chunk_id = c.id) ORDER BY c.id LIMIT $1
                """, b).map { r in let (id, t) = try r.decode((Int64, String).self); return (id: id, text: t) }
        }
    }

    public func savePending(_ items: [(Int64, [Float])]) throws {
        guard let dim = items.first?.1.count, dim > 0 else { return }
        guard items.allSatisfy({ $0.1.count == dim }) else { throw RAGError.store("re-embedding: vectors of different dimensions in one batch") }
        try database.withConnection { c in
            var b = PostgresBindings(); b.append(items.map(\.0)); b.append(items.flatMap(\.1)); b.append(dim)
            try c.query("""
                INSERT INTO \(s).pending_embeddings(chunk_id, embedding)
                SELECT x.id, (($2::float4[])[(x.i - 1) * $3 + 1 : x.i * $3])::vector FROM unnest($1::int8[]) WITH ORDINALITY AS x(id, i)
                ON CONFLICT (chunk_id) DO UPDATE SET embedding = excluded.embedding
                """, b)
        }
    }

    public func pendingCount() throws -> Int {
        try database.withConnection { c in Int(try c.query("SELECT count(*) FROM \(s).pending_embeddings")[0].decode(Int64.self)) }
    }

    public func commitReembedding(embedderName: String, dimension: Int) throws {
        try writing { c in
            let missing = try c.query("""
                SELECT count(*) FROM \(s).chunks c WHERE NOT EXISTS (SELECT 1 FROM \(s).pending_embeddings p WHERE p.chunk_id = c.id)
                """)[0].decode(Int64.self)
            guard missing == 0 else { throw RAGError.store("\(missing) chunks have no new embedding yet; run `tailor reindex` again") }
            try c.query("DROP INDEX IF EXISTS \(s).chunks_embedding")
            try c.query("ALTER TABLE \(s).chunks ALTER COLUMN embedding TYPE vector")
            try c.query("UPDATE \(s).chunks c SET embedding = p.embedding FROM \(s).pending_embeddings p WHERE p.chunk_id = c.id")
            try c.query("DELETE FROM \(s).pending_embeddings")
            try setInfo(c, "embedder", embedderName)
            try setInfo(c, "dimension", String(dimension))
            try setInfo(c, "reindexing", "")
            try fixDimension(c, dimension)
        }
    }

    public func clearPending() throws { try database.withConnection { c in try c.query("DELETE FROM \(s).pending_embeddings") } }

    // MARK: stats

    public func stats() throws -> CollectionStats {
        let e = try embedder()
        return try database.withConnection { c in
            var types: [String: Int] = [:]
            for r in try c.query("SELECT type, count(*) FROM \(s).documents GROUP BY type") {
                let (t, n) = try r.decode((String, Int64).self); types[t] = Int(n)
            }
            func count(_ sql: String) throws -> Int { Int(try c.query(sql)[0].decode(Int64.self)) }
            var sb = PostgresBindings(); sb.append(schema)
            let bytes = try c.query("""
                SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relkind = 'r'
                """, sb)[0].decode(Int64.self)
            let created = try Self.info(c, s, "created_at").flatMap(Double.init)
            let updated = try Self.info(c, s, "updated_at").flatMap(Double.init)
            return CollectionStats(
                name: name, directory: location, embedder: e?.name, dimension: e?.dimension,
                files: try count("SELECT count(*) FROM \(s).files WHERE status = 'ok'"),
                failedFiles: try count("SELECT count(*) FROM \(s).files WHERE status <> 'ok'"),
                documents: try count("SELECT count(*) FROM \(s).documents"),
                chunks: try count("SELECT count(*) FROM \(s).chunks"),
                bytes: bytes, types: types,
                createdAt: created.map { Date(timeIntervalSince1970: $0) }, updatedAt: updated.map { Date(timeIntervalSince1970: $0) })
        }
    }

    public func integrityProblems() throws -> [String] {
        let dim = try embedder()?.dimension
        return try database.withConnection { c in
            var out: [String] = []
            for r in try c.query("""
                SELECT d.key, d.chunk_count, (SELECT count(*) FROM \(s).chunks c WHERE c.document_id = d.id) AS n FROM \(s).documents d
                WHERE d.chunk_count <> (SELECT count(*) FROM \(s).chunks c WHERE c.document_id = d.id)
                """) {
                let (k, recorded, stored) = try r.decode((String, Int32, Int64).self)
                out.append("\(k): \(recorded) chunks recorded, \(stored) stored")
            }
            let (n, tokens) = try c.query("SELECT count(*), coalesce(sum(length), 0)::int8 FROM \(s).chunks")[0].decode((Int64, Int64).self)
            let counted = Int64(try Self.info(c, s, "chunks") ?? "") ?? -1, countedTokens = Int64(try Self.info(c, s, "tokens") ?? "") ?? -1
            if counted != n || countedTokens != tokens {
                out.append("keyword statistics count \(counted) chunks and \(countedTokens) tokens, the collection has \(n) and \(tokens)")
            }
            let wrongDF = try c.query("""
                SELECT count(*) FROM (SELECT u.lexeme, count(*) AS n FROM \(s).chunks c, unnest(c.tsv) u GROUP BY u.lexeme) x
                FULL JOIN (SELECT lexeme, df FROM \(s).terms WHERE df <> 0) t ON t.lexeme = x.lexeme
                WHERE x.n IS DISTINCT FROM t.df
                """)[0].decode(Int64.self)
            if wrongDF > 0 { out.append("\(wrongDF) keyword-index terms with a wrong document frequency") }
            let (postings, expected) = try c.query("""
                SELECT (SELECT count(*) FROM \(s).postings), (SELECT count(*) FROM \(s).chunks c, unnest(c.tsv) u)
                """)[0].decode((Int64, Int64).self)
            if postings != expected { out.append("\(postings) keyword postings for \(expected) chunk words") }
            if let dim {
                let wrong = try c.query("SELECT count(*) FROM \(s).chunks WHERE vector_dims(embedding) <> \(dim)")[0].decode(Int64.self)
                if wrong > 0 { out.append("\(wrong) chunks with an embedding that is not \(dim)-dimensional") }
                var ib = PostgresBindings(); ib.append(schema)
                if try c.query("SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'chunks_embedding'", ib).isEmpty {
                    out.append("the vector index (HNSW) is missing")
                }
            }
            return out
        }
    }
}
