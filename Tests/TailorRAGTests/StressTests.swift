// Many users at once on one loaded model and one collection: threads issue a mix of requests —
// generation through the batching engine with and without adapters, generation straight from a
// generator, embeddings, grounded answers — for a bounded time, and every result must equal the
// same request run alone. TAILOR_STRESS_SECONDS sets the time (default 20).
import Foundation
import Synchronization
import Testing
import TailorKernels
import TailorModels
import TailorTestSupport
@testable import TailorRAG

@Suite(.serialized) struct StressTests {
    enum Request: Sendable {
        case batched(prompt: Int, adapter: Bool)
        case direct(prompt: Int, adapter: Bool)
        case embed(Int)
        case ask(Int)
    }

    @Test func mixedConcurrentRequestsEachGetWhatTheyGetAlone() throws {
        let lm = try LanguageModel(TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"), threads: 2)
        let corpus = try RetrievalTests.Corpus(.sqlite)
        let engine = QueryEngine(retriever: try Retriever(store: corpus.store, embedder: corpus.embedder), model: lm)
        let batcher = BatchGenerator(model: lm, maxSequences: 8, prefillChunk: 128)
        defer { batcher.shutdown() }
        let config = try #require(lm.model as? LlamaModel).config
        let adapter = LoRAAdapter(for: config, rank: 4, alpha: 8, targets: LoRATarget.allCases)
        var rng = SplitMix64(seed: 99)
        for i in adapter.parameters.indices { adapter.parameters[i] = (Float(rng.nextUnit()) * 2 - 1) * 0.05 }
        try lm.adapters.add(adapter, name: "stress")
        let use = try lm.adapters.use("stress")

        let prompts = ["The three primary colors are", "Write a haiku about autumn:", "The capital of Italy is",
                       "List two uses of copper:", "A good breakfast includes"].map { lm.tokenizer.encode($0) }
        let texts = ["brake fluid", "How long is the battery warranty?", "chain replacement interval", "refund for an unridden bike"]
        let questions = ["How many charge cycles are the batteries covered for?", "How often are hydraulic brakes bled?"]
        var ask = engine.defaults
        ask.answerTokens = 24

        // Alone, one at a time.
        func generate(_ p: Int, _ adapter: Bool) throws -> [Int] {
            try lm.generator(adapters: adapter ? [use] : []).generate(prompt: prompts[p], maxTokens: 16, sampling: .greedy).tokens
        }
        var aloneGen: [String: [Int]] = [:]
        for p in prompts.indices { for a in [false, true] { aloneGen["\(p)-\(a)"] = try generate(p, a) } }
        let aloneEmbed = try texts.map { try corpus.embedder.embed([$0])[0] }
        let aloneAsk = try questions.map { try engine.ask($0, settings: ask) }
        #expect(aloneGen["0-false"] != aloneGen["0-true"], "the adapter changes the answer")

        let seconds = Double(ProcessInfo.processInfo.environment["TAILOR_STRESS_SECONDS"] ?? "") ?? 20
        let deadline = Date().addingTimeInterval(seconds)
        let done = Atomic<Int>(0)
        let mismatches = Mutex<[String]>([])
        let kinds = Mutex<[String: Int]>([:])
        DispatchQueue.concurrentPerform(iterations: 6) { worker in
            var rng = SplitMix64(seed: UInt64(worker) &+ 1)
            while Date() < deadline {
                let pick = Int(rng.next() % 8)
                let request: Request
                switch pick {
                case 0, 1, 2: request = .batched(prompt: Int(rng.next() % UInt64(prompts.count)), adapter: rng.next() % 2 == 0)
                case 3: request = .direct(prompt: Int(rng.next() % UInt64(prompts.count)), adapter: rng.next() % 2 == 0)
                case 4, 5: request = .embed(Int(rng.next() % UInt64(texts.count)))
                default: request = .ask(Int(rng.next() % UInt64(questions.count)))
                }
                do {
                    switch request {
                    case let .batched(p, a):
                        let r = try batcher.generate(GenerationRequest(prompt: prompts[p], maxTokens: 16, adapters: a ? [use] : []))
                        if r.tokens != aloneGen["\(p)-\(a)"] { mismatches.withLock { $0.append("batched \(p) adapter \(a)") } }
                        kinds.withLock { $0["batched", default: 0] += 1 }
                    case let .direct(p, a):
                        if try generate(p, a) != aloneGen["\(p)-\(a)"] { mismatches.withLock { $0.append("direct \(p) adapter \(a)") } }
                        kinds.withLock { $0["direct", default: 0] += 1 }
                    case let .embed(i):
                        if try corpus.embedder.embed([texts[i]])[0] != aloneEmbed[i] { mismatches.withLock { $0.append("embed \(i)") } }
                        kinds.withLock { $0["embed", default: 0] += 1 }
                    case let .ask(i):
                        let a = try engine.ask(questions[i], settings: ask)
                        if a.text != aloneAsk[i].text || a.sources.map(\.chunkID) != aloneAsk[i].sources.map(\.chunkID) {
                            mismatches.withLock { $0.append("ask \(i): \(a.text.debugDescription)") }
                        }
                        kinds.withLock { $0["ask", default: 0] += 1 }
                    }
                } catch {
                    mismatches.withLock { $0.append("\(request) failed: \(error)") }
                }
                done.add(1, ordering: .relaxed)
            }
        }
        let counts = kinds.withLock { $0 }
        print("stress: \(done.load(ordering: .relaxed)) requests in \(Int(seconds)) s: \(counts.sorted { $0.key < $1.key })")
        #expect(mismatches.withLock { $0 }.isEmpty, "\(mismatches.withLock { $0 }.prefix(5))")
        #expect(counts.count == 4, "every kind of request ran: \(counts)")
        _ = lm.adapters.unload("stress")
    }
}
