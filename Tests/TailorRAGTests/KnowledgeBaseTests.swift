// The collection tasks as library calls (what the CLI and the server call): open or create with
// an embedder, ingest, reindex, search and ask with settings per call.
import Foundation
import Testing
import TailorModels
import TailorTestSupport
@testable import TailorRAG

@Suite(.serialized) struct KnowledgeBaseTests {
    @Test(arguments: StoreBackend.allCases)
    func openIngestSearchReindexAsk(backend: StoreBackend) throws {
        let ws = try Workspace()
        let location = try backend.location(ws)
        let name = backend == .sqlite ? ws.collection.path : "kb-" + UUID().uuidString.prefix(8).lowercased()
        if backend == .postgresql { ws.cleanups.append { try? Collections.delete(name, at: location) } }
        // A missing collection is an error unless asked to create it.
        #expect(throws: RAGError.self) { try KnowledgeBase.open(name, store: location, embedder: try TestPaths.model("all-MiniLM-L6-v2")) }
        let kb = try KnowledgeBase.open(name, store: location, embedder: try TestPaths.model("all-MiniLM-L6-v2"), create: true)
        var seen: [IngestProgress.Phase] = []
        let s = try kb.ingest([ws.docs.path], chunkTokens: 64, overlap: 16) { seen.append($0.phase) }
        #expect(s.filesAdded == 9 && s.chunksEmbedded > 0)
        #expect(seen.contains(.embedding) && seen.last == .done)
        // Reopened without naming the embedder, it uses the one that built it.
        let again = try KnowledgeBase.open(name, store: location)
        #expect(again.embedder.name == kb.embedder.name)
        let hits = try again.retriever().retrieve("How often are hydraulic brakes bled?", k: 3)
        #expect(hits.first?.chunk.path.hasSuffix("handbook.md") == true)
        // Settings per call: the same retriever answers a keyword search and a vector search.
        let r = try kb.retriever()
        let kw = try r.retrieve("mineral oil", k: 3, settings: RetrievalSettings(mode: .keyword))
        #expect(kw.allSatisfy { $0.keywordRank != nil && $0.vectorRank == nil })
        // Reindexing with the same embedder re-embeds every chunk and changes no answer.
        var progress = 0
        let re = try kb.reindex(batchSize: 16) { _ in progress += 1 }
        let chunks = try kb.store.chunkCount()
        #expect(re.finished && re.chunks == chunks && progress > 0)
        #expect(try kb.retriever().retrieve("How often are hydraulic brakes bled?", k: 3).map(\.chunk.id) == hits.map(\.chunk.id))
        // An interrupted reindex says so and can be run again.
        let stopped = try kb.reindex(shouldStop: { true })
        #expect(!stopped.finished)
        #expect(try kb.reindex().finished)
        #expect(try kb.store.integrityProblems().isEmpty)
    }

    @Test func askWithSettingsPerCall() throws {
        let s = try AnswerTests.Setup.shared.get()
        let kb = KnowledgeBase(store: s.corpus.store, embedder: s.corpus.embedder)
        let engine = try kb.engine(model: s.model)
        var brief = engine.defaults
        brief.answerTokens = 12
        brief.passages = 1
        let a = try engine.ask("How many charge cycles are the batteries covered for?", settings: brief)
        #expect(a.sources.count == 1 && a.timings.generatedTokens <= 12)
        #expect(a.timings.promptTokens > 0 && a.timings.prefillMs > 0)
        // Time to first token is what the user waits: retrieval and prefill included.
        #expect(a.timings.timeToFirstTokenMs >= a.timings.retrievalMs + a.timings.prefillMs)
        // The engine's defaults are untouched by the call.
        #expect(engine.defaults.passages == 5 && engine.defaults.answerTokens == 384)
        #expect(try Rerankers.named("none") == nil)
        #expect(try Rerankers.named("default") is EmbeddingReranker)
        #expect(throws: (any Error).self) { try Rerankers.named("/no/such/cross-encoder") }
    }
}
