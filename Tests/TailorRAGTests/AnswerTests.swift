import Foundation
import Testing
import TailorModels
import TailorTestSupport
@testable import TailorRAG

/// Grounded answers end to end: the fixture corpus (facts about a made-up bicycle maker that no
/// model can know), the real embedder and the real SmolLM2-135M-Instruct.
@Suite(.serialized) struct AnswerTests {
    final class Setup: @unchecked Sendable {
        let corpus: RetrievalTests.Corpus
        let model: LanguageModel
        init() throws {
            corpus = try RetrievalTests.Corpus(.sqlite)
            model = try LanguageModel(TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"), threads: 2)
        }
        static let shared = Result { try Setup() }
        func engine() throws -> QueryEngine {
            let r = try Retriever(store: corpus.store, embedder: corpus.embedder)
            return QueryEngine(retriever: r, model: model)
        }
    }

    @Test func attributionBySentence() {
        let passages = ["Batteries are covered for 800 charge cycles or three years.", "Brakes are bled every twelve months with mineral oil."]
        let a = QueryEngine.attribute("The batteries are covered for 800 cycles. Use mineral oil for the brakes! The sky is blue.", to: passages)
        #expect(a.map(\.source) == [1, 2])
        #expect(a[0].sentence == "The batteries are covered for 800 cycles.")
        // A number the passage does not hold is not supported by it.
        #expect(QueryEngine.attribute("Batteries are covered for 900 charge cycles.", to: passages).isEmpty)
    }

    @Test func citationParsing() {
        #expect(QueryEngine.citations(in: "Bled yearly [1]. Pads [2, 3] and [4][5]; not [x] or [1a].") == [1, 2, 3, 4, 5])
        #expect(QueryEngine.citations(in: "no brackets").isEmpty)
    }

    @Test func answersWithTheFactAndCitesItsPassage() throws {
        let s = try Setup.shared.get()
        let e = try s.engine()
        var streamed = ""
        let a = try e.ask("How many charge cycles are the batteries covered for?") { streamed += $0; return true }
        #expect(a.covered)
        #expect(a.text.contains("800"), "answer: \(a.text)")
        #expect(streamed.trimmingCharacters(in: .whitespacesAndNewlines) == a.text, "the answer is streamed as generated")
        let holder = try #require(a.sources.first { $0.text.contains("800 charge cycles") }, "the passage with the fact is a source")
        #expect(holder.path.hasSuffix("warranty.pdf"))
        // SmolLM2-135M seldom writes [n] itself; the passage must at least support the answer.
        #expect(holder.cited || holder.supported, "the answer is tied to [\(holder.number)]: \(a.text)")
        #expect(a.attributions.contains { $0.source == holder.number && $0.sentence.contains("800") })
        #expect(a.invalidCitations.isEmpty)
        #expect(a.timings.promptTokens > 0 && a.timings.generatedTokens > 0 && a.timings.tokensPerSecond > 0)
        // Every source's offsets select its text from the document.
        let doc = try Loaders.load(holder.path)[0]
        #expect(doc.text.scalarSlice(holder.start, holder.end) == holder.text)
    }

    @Test func outOfScopeQuestionIsNotCovered() throws {
        let s = try Setup.shared.get()
        let e = try s.engine()
        let a = try e.ask("Who won the football world cup in 1998?")
        #expect(!a.covered)
        #expect(a.text == QueryEngine.notCovered)
        #expect(a.sources.isEmpty)
        // With the threshold at zero the model is asked anyway.
        var settings = e.defaults
        settings.minSimilarity = -1
        let forced = try e.ask("Who won the football world cup in 1998?", settings: settings)
        #expect(!forced.sources.isEmpty)
    }

    @Test func passagesFitTheContextBudget() throws {
        let s = try Setup.shared.get()
        let e = try s.engine()
        var settings = e.defaults
        settings.minSimilarity = -1
        settings.passages = 8
        settings.contextTokens = 420
        settings.answerTokens = 40
        let a = try e.ask("What does the handbook say about brakes, chains and tyres?", settings: settings)
        #expect(a.timings.promptTokens <= 420 - 40)
        #expect(!a.sources.isEmpty && a.sources.count < 8, "\(a.sources.count) passages")
    }

    @Test func rerankersReorder() throws {
        let s = try Setup.shared.get()
        let e = try s.engine()
        var settings = e.defaults
        settings.rerank = false
        let plain = try e.sources(for: "sintered brake pad price", settings: settings).passages
        let reranked = try e.sources(for: "sintered brake pad price").passages
        #expect(Set(plain.map(\.chunk.id)) == Set(reranked.map(\.chunk.id)))
        #expect(reranked.first?.chunk.path.hasSuffix("parts.csv") == true)
        #expect(zip(reranked, reranked.dropFirst()).allSatisfy { $0.score >= $1.score })
    }

    @Test func followUpBecomesStandalone() throws {
        let s = try Setup.shared.get()
        let e = try s.engine()
        let history: [ChatMessage] = [.user("How often are hydraulic brakes bled?"), .assistant("Every twelve months [1].")]
        let q = try e.standaloneQuestion("And which fluid should I use?", history: history)
        let words = contentWords(q)
        #expect(words.contains("fluid") && (words.contains("brake") || words.contains("hydraulic") || words.contains("bled")), "\(q)")
        let a = try e.ask("And which fluid should I use?", history: history, query: q)
        #expect(a.sources.contains { $0.text.contains("mineral oil") }, "retrieval found the brake passage for the follow-up")
    }
}
