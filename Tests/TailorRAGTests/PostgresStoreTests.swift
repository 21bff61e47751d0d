import Foundation
import PostgresNIO
import Synchronization
import Testing
import TailorModels
import TailorTestSupport
@testable import TailorRAG

/// What only the PostgreSQL store has to show (the shared store tests run on it too): several
/// writers at once, the same keyword ranking as SQLite, copies both ways, and clear errors for
/// connection problems. Runs against a real PostgreSQL 18 with pgvector (scripts/postgres).
@Suite(.serialized) struct PostgresStoreTests {
    func chunker(_ e: SentenceEmbedder) -> Chunker { Chunker(maxTokens: 64, overlap: 16, countTokens: e.countTokens) }

    @Test func concurrentWritersStoreEveryDocumentOnce() throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        for i in 0..<60 { try ws.write("note-\(i).md", "# Note \(i)\n\nTopic \(i) and its details. " + String(repeating: "Filler words. ", count: 20)) }
        let store = try StoreBackend.postgresql.make(ws)
        let location = try StoreBackend.postgresql.location(ws)
        // Two writers with their own connections (as two processes would have), same files, same time.
        let errors = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { w in
            do {
                let s = try Collections.open(store.name, at: location)
                var opts = IngestOptions(); opts.batchSize = 8
                _ = try Ingestor(store: s, embedder: try SharedEmbedder.get(), chunker: chunker(e), options: opts).ingest([ws.docs.path])
            } catch { errors.withLock { $0.append("writer \(w): \(error)") } }
        }
        #expect(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
        let st = try store.stats()
        #expect(st.documents == 11 + 60, "every document once")
        #expect(try store.integrityProblems().isEmpty)
        // The same collection ingested by one writer has the same chunks.
        let single = try StoreBackend.postgresql.make(ws, "single")
        _ = try Ingestor(store: single, embedder: e, chunker: chunker(e)).ingest([ws.docs.path])
        #expect(try single.stats().chunks == st.chunks)
        #expect(try single.documentKeys() == store.documentKeys())
    }

    @Test func hnswSearchWithFiltersUsesTheIndexAndKeepsToTheFilter() throws {
        let c = try RetrievalTests.Corpus.shared(.postgresql)
        let store = try #require(c.store as? PostgresStore)
        var exact = IndexOptions(), hnsw = IndexOptions()
        exact.kind = .exact; hnsw.kind = .hnsw
        let q = VectorMatrix.normalized(try c.embedder.embed(["brake pads and their price"])[0])
        // On a small collection the graph finds the exact neighbours.
        let a = try #require(try store.vectorSearch(q, k: 5, filter: nil, options: exact))
        let b = try #require(try store.vectorSearch(q, k: 5, filter: nil, options: hnsw))
        #expect(a.map(\.id) == b.map(\.id))
        // With a filter the iterative scan goes on until k allowed rows are found.
        let pdf = Filter(types: [.pdf])
        let allowed = try store.chunkIDs(matching: pdf)
        let f = try #require(try store.vectorSearch(q, k: 3, filter: pdf, options: hnsw))
        #expect(!f.isEmpty && f.allSatisfy { allowed.contains($0.id) })
        #expect(f.map(\.id) == (try store.vectorSearch(q, k: 3, filter: pdf, options: exact) ?? []).map(\.id))
        // The query's shape can use the HNSW index (operator class and cast as it needs them).
        let plan = try store.database.withConnection { conn -> String in
            try conn.query("BEGIN")
            defer { _ = try? conn.query("ROLLBACK") }
            try conn.query("SET LOCAL enable_seqscan = off")   // a tiny table: make the planner show the index path
            var bind = PostgresBindings(); bind.append(q)
            return try conn.query("EXPLAIN SELECT id FROM \(store.s).chunks ORDER BY embedding <=> $1::float4[]::vector LIMIT 5", bind)
                .map { try $0.decode(String.self) }.joined(separator: "\n")
        }
        #expect(plan.contains("chunks_embedding"), "\(plan)")
    }

    @Test func bulkLoadBuildsTheIndexOnceWithProgress() throws {
        let ws = try Workspace()
        let store = try #require(try StoreBackend.postgresql.make(ws) as? PostgresStore)
        let e = try SharedEmbedder.get()
        let base = VectorMatrix(ids: [1, 2, 3], data: try e.embed(["brakes", "tyres", "lights"]).flatMap { $0 }, dimension: e.dimension)
        try store.bind(embedderName: e.name, dimension: e.dimension)
        try store.bulkLoading(true) { _ in }
        #expect(try store.integrityProblems().contains { $0.contains("vector index") }, "set aside during the load")
        try store.write(SearchBenchmark.batch(0..<6000, baseTexts: ["a brake pad", "a tyre", "a light"], base: base))
        var shares: [Double] = []
        try store.bulkLoading(false) { shares.append($0) }
        #expect(zip(shares, shares.dropFirst()).allSatisfy { $0 <= $1 } && shares.allSatisfy { (0...1).contains($0) }, "\(shares)")
        #expect(try store.integrityProblems().isEmpty, "the index is back")
        var hnsw = IndexOptions(); hnsw.kind = .hnsw
        #expect(try store.vectorSearch(base.ids.indices.map { base.row($0)[0] }.isEmpty ? [] : Array(UnsafeBufferPointer(start: base.row(1), count: e.dimension)),
                                       k: 3, filter: nil, options: hnsw)?.count == 3)
    }

    @Test func keywordRankingMatchesSQLite() throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        let lite = try StoreBackend.sqlite.make(ws), pg = try StoreBackend.postgresql.make(ws)
        for s in [lite, pg] { _ = try Ingestor(store: s, embedder: e, chunker: chunker(e)).ingest([ws.docs.path]) }
        var same = 0, total = 0
        for q in ["brake pads price", "battery warranty charge cycles", "refund unridden bike", "motor cold weather firmware",
                  "torque wrench", "hydraulic brakes mineral oil", "chain wear checker", "opening hours workshop"] {
            let a = try lite.keywordSearch(q, limit: 3), b = try pg.keywordSearch(q, limit: 3)
            let ka = try lite.chunks(a.map(\.id)).map { "\($0.documentKey)/\($0.chunk.ordinal)" }
            let kb = try pg.chunks(b.map(\.id)).map { "\($0.documentKey)/\($0.chunk.ordinal)" }
            total += 1
            if ka.first == kb.first { same += 1 }
            // Same BM25 formula and statistics: the scores agree closely (the stemmers differ a little).
            if let x = a.first, let y = b.first, ka.first == kb.first { #expect(abs(x.score - y.score) / x.score < 0.15, "\(q): \(x.score) vs \(y.score)") }
        }
        #expect(same == total, "the best keyword hit is the same chunk on both backends (\(same)/\(total))")
    }

    @Test func migrateBothWaysAndResume() throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        let lite = try StoreBackend.sqlite.make(ws)
        _ = try Ingestor(store: lite, embedder: e, chunker: chunker(e)).ingest([ws.docs.path])
        let pg = try StoreBackend.postgresql.make(ws)
        // Stopped after the first batch, then run again: finishes, nothing twice.
        var copied = 0
        let partial = try CollectionCopy.copy(from: lite, to: pg, batchSize: 4, shouldStop: { copied >= 4 }) { copied = $0.done }
        #expect(!partial.finished && partial.copied == 4)
        let rest = try CollectionCopy.copy(from: lite, to: pg, batchSize: 4)
        #expect(rest.finished && rest.alreadyThere == 4 && rest.copied == 7)
        #expect(try pg.documentKeys() == lite.documentKeys())
        #expect(try pg.stats().chunks == lite.stats().chunks && pg.files().map(\.path) == lite.files().map(\.path))
        #expect(try pg.integrityProblems().isEmpty)
        // Same chunks, same embeddings, same search results.
        let ra = try Retriever(store: lite, embedder: e), rb = try Retriever(store: pg, embedder: e)
        for q in ["battery warranty", "brake pad price", "refund"] {
            let a = try ra.retrieve(q, k: 3, settings: RetrievalSettings(mode: .vector)), b = try rb.retrieve(q, k: 3, settings: RetrievalSettings(mode: .vector))
            #expect(a.map { "\($0.chunk.documentKey)/\($0.chunk.chunk.ordinal)" } == b.map { "\($0.chunk.documentKey)/\($0.chunk.chunk.ordinal)" })
            for (x, y) in zip(a, b) { #expect(abs(x.score - y.score) < 1e-5) }
        }
        // An ingest into the copy embeds nothing (the file records came along).
        #expect(try Ingestor(store: pg, embedder: e, chunker: chunker(e)).ingest([ws.docs.path]).chunksEmbedded == 0)
        // And back to SQLite.
        let back = try StoreBackend.sqlite.make(ws, "back")
        #expect(try CollectionCopy.copy(from: pg, to: back).copied == 11)
        #expect(try back.documentKeys() == lite.documentKeys() && back.integrityProblems().isEmpty)
        let a = try lite.documents(["\(ws.path("handbook.md"))"]), b = try back.documents(["\(ws.path("handbook.md"))"])
        #expect(a.first?.chunks.map(\.text) == b.first?.chunks.map(\.text) && a.first?.vectors == b.first?.vectors)
    }

    @Test func connectionProblemsGiveClearErrors() throws {
        let good = try PostgresURL(try TestPostgres.url())
        func message(_ spec: String) -> String {
            do { _ = try Collections.names(at: try StoreLocation.parse(spec)); return "no error" } catch { return "\(error)" }
        }
        let wrong = message("postgresql://\(good.user):not-the-password@\(good.host):\(good.port)/\(good.database)")
        #expect(wrong.contains("password authentication failed") && wrong.contains("postgresql://\(good.user)@\(good.host):\(good.port)"), "\(wrong)")
        #expect(!wrong.contains("not-the-password"))
        let down = message("postgresql://tailor:secret@127.0.0.1:1/tailor")
        #expect(down.contains("cannot connect") && down.contains("127.0.0.1:1") && !down.contains("secret"), "\(down)")
        let nodb = message("postgresql://\(good.user):\(good.password ?? "")@\(good.host):\(good.port)/no_such_db")
        #expect(nodb.contains("no_such_db") && nodb.contains("does not exist"), "\(nodb)")
        // A user who may not enable pgvector in a database that does not have it yet.
        let admin = try PGConnection(url: good)
        defer { admin.close() }
        if try admin.query("SELECT 1 FROM pg_roles WHERE rolname = 'tailor_plain'").isEmpty {
            _ = try? admin.query("CREATE ROLE tailor_plain LOGIN PASSWORD 'plain'")
        }
        if try admin.query("SELECT 1 FROM pg_database WHERE datname = 'tailor_noext'").isEmpty {
            _ = try? admin.query("CREATE DATABASE tailor_noext")
        }
        let noext = message("postgresql://tailor_plain:plain@\(good.host):\(good.port)/tailor_noext")
        #expect(noext.contains("pgvector") && noext.contains("CREATE EXTENSION vector") && noext.contains("tailor_noext"), "\(noext)")
        // TLS: preferred by default (this server has none, so plain), required on request.
        #expect(good.sslMode == "prefer")
        let tls = message("postgresql://\(good.user):\(good.password ?? "")@\(good.host):\(good.port)/\(good.database)?sslmode=require")
        #expect(tls.contains("does not offer TLS") && tls.contains("sslmode=require"), "\(tls)")
        #expect(throws: RAGError.self) { try PostgresURL("postgresql://a@b/c?sslmode=sometimes") }
        #expect(throws: RAGError.self) { try StoreLocation.parse("mysql://x@y/z") }
        #expect(PostgresURL.redact("postgresql://a:b@c/d") == "postgresql://a:***@c/d")
    }

    @Test func droppedConnectionMidIngestThenRerunFinishes() throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        for i in 0..<40 { try ws.write("note-\(i).md", "# Note \(i)\n\nParagraph about topic \(i). " + String(repeating: "More words here. ", count: 30)) }
        let store = try StoreBackend.postgresql.make(ws) as! PostgresStore
        var opts = IngestOptions(); opts.batchSize = 8
        let ing = try Ingestor(store: store, embedder: e, chunker: chunker(e), options: opts)
        var batches = 0
        // The server ends the sessions that work on this collection at the third and fifth batches (as a
        // restart would). The ingest goes on on new connections, or stops with an error naming
        // the server; either way a re-run finishes with every document once.
        do {
            _ = try ing.ingest([ws.docs.path]) { p in
                guard p.phase == .embedding else { return }
                batches += 1
                if batches == 3 || batches == 5 {
                    let admin = try? PGConnection(url: store.database.url)
                    _ = try? admin?.query("""
                        SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                        AND backend_type = 'client backend' AND query LIKE '%\(store.schema)%'
                        """)
                    admin?.close()
                }
            }
        } catch {
            #expect("\(error)".contains("postgresql://tailor@") && "\(error)".contains("run the command again"), "\(error)")
        }
        #expect(batches >= 5)
        #expect(try store.integrityProblems().isEmpty, "only whole documents were stored")
        let partial = try store.stats().documents
        let s2 = try ing.ingest([ws.docs.path])
        #expect(!s2.interrupted && s2.failed.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["broken.pdf"])
        #expect(try store.stats().documents == 51 && partial <= 51)
        #expect(try store.integrityProblems().isEmpty)
    }
}
