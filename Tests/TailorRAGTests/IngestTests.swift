import Foundation
import Testing
import TailorModels
import TailorTestSupport
@testable import TailorRAG

/// A copy of the fixture corpus and an empty collection, both removed afterwards.
final class Workspace {
    let root: URL
    let docs: URL
    let collection: URL
    /// Run when the workspace goes (PostgreSQL collections made for it are dropped).
    var cleanups: [() -> Void] = []
    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-rag-\(UUID().uuidString)")
        docs = root.appendingPathComponent("docs")
        collection = root.appendingPathComponent("collection")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: TestPaths.fixtureURL(Bundle.module, "docs"), to: docs)
    }
    deinit {
        for c in cleanups { c() }
        try? FileManager.default.removeItem(at: root)
    }
    func path(_ name: String) -> String { docs.appendingPathComponent(name).path }
    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
        // A different modification time even within the same second.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(Double.random(in: 1...1000))], ofItemAtPath: path(name))
    }
}

enum SharedEmbedder {
    /// A fresh embedder (suites run in parallel; one embedder runs one batch at a time).
    static func get() throws -> SentenceEmbedder { try SentenceEmbedder(TestPaths.model("all-MiniLM-L6-v2")) }
}

@Suite(.serialized) struct IngestTests {
    func chunker(_ e: SentenceEmbedder) -> Chunker { Chunker(maxTokens: 64, overlap: 16, countTokens: e.countTokens) }

    @Test(arguments: StoreBackend.allCases)
    func ingestEveryFormatThenChangeDeleteAndReingest(backend: StoreBackend) throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        let store = try backend.make(ws)
        let ing = try Ingestor(store: store, embedder: e, chunker: chunker(e))
        let s1 = try ing.ingest([ws.docs.path])
        // 10 supported files (photo.xyz is not one); broken.pdf fails and is listed with its reason.
        #expect(s1.filesSeen == 10)
        #expect(s1.filesAdded == 9)
        #expect(s1.failed.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["broken.pdf"])
        #expect(s1.failed[0].reason.contains("not a readable PDF"))
        #expect(Set(s1.notes.map { URL(fileURLWithPath: $0.path).lastPathComponent }) == ["legacy-notes.txt", "utf16-notes.txt"])
        // 8 single-document files + 3 JSONL records.
        #expect(s1.documentsEmbedded == 11)
        let st1 = try store.stats()
        #expect(st1.documents == 11 && st1.files == 9 && st1.failedFiles == 1)
        #expect(st1.chunks == s1.chunksEmbedded)
        #expect(st1.embedder == "all-MiniLM-L6-v2" && st1.dimension == 384)
        #expect(try store.integrityProblems().isEmpty)

        // Nothing changed: nothing embedded.
        let s2 = try ing.ingest([ws.docs.path])
        #expect(s2.chunksEmbedded == 0 && s2.filesUnchanged == 9 && s2.failed.count == 1)

        // Touched but same bytes: still nothing embedded.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5000)], ofItemAtPath: ws.path("faq.html"))
        #expect(try ing.ingest([ws.docs.path]).chunksEmbedded == 0)

        // One Markdown file changed, one file deleted, one JSONL record edited, one file added.
        try ws.write("handbook.md", "# Handbook\n\nThe workshop opens at seven.\n")
        try FileManager.default.removeItem(atPath: ws.path("stores.tsv"))
        var tickets = try String(contentsOfFile: ws.path("tickets.jsonl"), encoding: .utf8)
        tickets = tickets.replacingOccurrences(of: "rim tape", with: "rim tape and the tube")
        try ws.write("tickets.jsonl", tickets)
        try ws.write("new.txt", "A brand new note about saddles.\n")
        let s3 = try ing.ingest([ws.docs.path])
        #expect(s3.filesAdded == 1 && s3.filesUpdated == 2 && s3.filesRemoved == 1)
        #expect(s3.documentsEmbedded == 3, "handbook, ticket T-3 and new.txt only")
        #expect(s3.documentsUnchanged == 2, "tickets T-1 and T-2 keep their embeddings")
        let st3 = try store.stats()
        #expect(st3.documents == 11 - 1 + 1)
        #expect(try store.documentHashes(path: ws.path("stores.tsv")).isEmpty)
        #expect(try store.integrityProblems().isEmpty)
        let hits = try store.keywordSearch("workshop opens seven", limit: 5)
        let top = try store.chunks([hits[0].id])[0]
        #expect(top.path == ws.path("handbook.md") && top.text.contains("opens at seven"))
        #expect(try store.keywordSearch("Korenmarkt", limit: 5).isEmpty, "deleted file's chunks are gone")

        // A JSONL record removed from the file is removed from the collection.
        try ws.write("tickets.jsonl", tickets.split(separator: "\n").prefix(2).joined(separator: "\n") + "\n")
        let s4 = try ing.ingest([ws.docs.path])
        #expect(s4.documentsRemoved == 1 && s4.documentsEmbedded == 0)
        #expect(try store.documentHashes(path: ws.path("tickets.jsonl")).count == 2)
    }

    @Test(arguments: StoreBackend.allCases)
    func includeAndExcludeGlobs(backend: StoreBackend) throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        let store = try backend.make(ws)
        var opts = IngestOptions()
        opts.include = ["*.md", "*.csv", "*.tsv"]
        opts.exclude = ["stores.*"]
        let ing = try Ingestor(store: store, embedder: e, chunker: chunker(e), options: opts)
        let s = try ing.ingest([ws.docs.path])
        #expect(s.filesSeen == 2)
        #expect(Set(try store.files().map { URL(fileURLWithPath: $0.path).lastPathComponent }) == ["handbook.md", "parts.csv"])
    }

    @Test(arguments: StoreBackend.allCases)
    func anotherEmbedderIsRefused(backend: StoreBackend) throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        let store = try backend.make(ws)
        _ = try Ingestor(store: store, embedder: e, chunker: chunker(e)).ingest([ws.path("handbook.md")])
        #expect(throws: RAGError.modelMismatch(collection: store.name, built: "all-MiniLM-L6-v2", requested: "other-model")) {
            try store.bind(embedderName: "other-model", dimension: 384)
        }
        let msg = RAGError.modelMismatch(collection: "c", built: "a", requested: "b").description
        #expect(msg.contains("tailor reindex -c c -m b"))
    }

    @Test(arguments: StoreBackend.allCases)
    func stoppedRunResumesWithoutDuplicates(backend: StoreBackend) throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        // Many small files so that several batches are needed.
        for i in 0..<40 { try ws.write("note-\(i).md", "# Note \(i)\n\nParagraph about topic \(i). " + String(repeating: "More words here. ", count: 30)) }
        let store = try backend.make(ws)
        var opts = IngestOptions(); opts.batchSize = 16
        let ing = try Ingestor(store: store, embedder: e, chunker: chunker(e), options: opts)
        var batches = 0
        ing.shouldStop = { batches >= 2 }
        let s1 = try ing.ingest([ws.docs.path]) { p in if p.phase == .embedding { batches += 1 } }
        #expect(s1.interrupted)
        let partial = try store.stats()
        #expect(partial.documents > 0 && partial.documents < 51)
        #expect(try store.integrityProblems().isEmpty, "only whole documents are stored")
        ing.shouldStop = { false }
        let s2 = try ing.ingest([ws.docs.path])
        #expect(!s2.interrupted)
        #expect(s2.documentsEmbedded + partial.documents == 51)
        // The same result as an uninterrupted run.
        let clean = try backend.make(ws, "clean")
        _ = try Ingestor(store: clean, embedder: e, chunker: chunker(e), options: opts).ingest([ws.docs.path])
        #expect(try store.stats().documents == clean.stats().documents)
        #expect(try store.stats().chunks == clean.stats().chunks)
        #expect(try store.integrityProblems().isEmpty)
    }
}
