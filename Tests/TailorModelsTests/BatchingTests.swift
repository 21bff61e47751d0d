// Many users, one model: sessions stepped together give each what it would get alone; adapters
// are chosen per request; continuous batching lets requests join and leave; prompt prefixes are
// shared.
import Foundation
import Synchronization
import Testing
import TailorKernels
@testable import TailorModels

/// A LoRA adapter with random weights (B not zero), so it changes the model's outputs.
func randomAdapter(_ config: LlamaConfig, seed: UInt64, rank: Int = 4, magnitude: Float = 0.05) -> LoRAAdapter {
    let ad = LoRAAdapter(for: config, rank: rank, alpha: Float(2 * rank), targets: LoRATarget.allCases)
    var rng = SplitMix64(seed: seed)
    for i in ad.parameters.indices { ad.parameters[i] = (Float(rng.nextUnit()) * 2 - 1) * magnitude }
    return ad
}

@Suite(.serialized) struct BatchingTests {
    static let lm: Result<LanguageModel, Error> = Result {
        try LanguageModel(try TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"))
    }
    static let prompts = [
        "Once upon a time, in a small village by the sea,",
        "The three primary colors are",
        "Q: What is the boiling point of water at sea level?\nA:",
        "def fibonacci(n):",
        "The capital of Japan is Tokyo. The capital of France is",
        "Photosynthesis is the process by which plants",
    ]

    func adapters(_ lm: LanguageModel) throws -> (AdapterUse, AdapterUse) {
        let config = try #require(lm.model as? LlamaModel).config
        return (AdapterUse(randomAdapter(config, seed: 1), scale: 1, name: "a"), AdapterUse(randomAdapter(config, seed: 2), scale: 0.5, name: "b"))
    }

    /// One forward pass over sessions of different lengths, adapters and kinds (prefill and
    /// decode) gives every session exactly the logits it gets alone.
    @Test(arguments: Precision.allCases)
    func sessionsTogetherEqualAlone(precision: Precision) throws {
        let lm = try Self.lm.get()
        let (a, b) = try adapters(lm)
        let uses: [[AdapterUse]] = [[], [a], [b], [a, b], [], [a]]
        let ids = Self.prompts.map { lm.tokenizer.encode($0) }
        // Alone: prefill, then two decode steps.
        var alone: [[[Float]]] = []
        for (i, p) in ids.enumerated() {
            let s = lm.session(precision: precision, adapters: uses[i], maxTokens: 64)
            var out = [try lm.model.forward([DecoderStep(s, tokens: p)])[0]]
            for t in [17, 42] { out.append(try lm.model.forward([DecoderStep(s, tokens: [t])])[0]) }
            alone.append(out)
        }
        // Together: the first three prefill while the others prefill in the next pass, so the
        // passes mix prompts and single decode tokens.
        let sessions = ids.indices.map { lm.session(precision: precision, adapters: uses[$0], maxTokens: 64) }
        var together = [[[Float]]](repeating: [], count: ids.count)
        var pos = [Int](repeating: 0, count: ids.count)   // next step of each: 0 prompt, 1 and 2 decode
        for round in 0..<4 {
            var steps: [DecoderStep] = [], who: [Int] = []
            for i in ids.indices where pos[i] < 3 && (i < 3 || round > 0) {
                steps.append(DecoderStep(sessions[i], tokens: pos[i] == 0 ? ids[i] : [[17, 42][pos[i] - 1]]))
                who.append(i)
            }
            for (j, out) in try lm.model.forward(steps).enumerated() { together[who[j]].append(out); pos[who[j]] += 1 }
        }
        for i in ids.indices {
            for k in 0..<3 {
                let d = zip(alone[i][k], together[i][k]).map { abs($0 - $1) }.max() ?? 1
                #expect(alone[i][k] == together[i][k], "prompt \(i) step \(k): max difference \(d)")
            }
        }
        // An adapter changes the outputs; scale 0 is the base model.
        #expect(alone[1][0] != alone[0][0])
        let s0 = lm.session(precision: precision, adapters: [AdapterUse(a.adapter, scale: 0)], maxTokens: 64)
        #expect(try lm.model.forward([DecoderStep(s0, tokens: ids[1])])[0] == lm.model.forward([DecoderStep(lm.session(precision: precision, maxTokens: 64), tokens: ids[1])])[0])
    }

    @Test func aSessionTwiceInOnePassIsAnError() throws {
        let lm = try Self.lm.get()
        let s = lm.session(maxTokens: 16)
        #expect(throws: ModelError.self) { try lm.model.forward([DecoderStep(s, tokens: [1]), DecoderStep(s, tokens: [2])]) }
        let e = lm.session(precision: .exact, maxTokens: 16)
        #expect(throws: ModelError.self) { try lm.model.forward([DecoderStep(s, tokens: [1]), DecoderStep(e, tokens: [2])]) }
    }

    /// Requests of different lengths joining and leaving while others run, some with adapters:
    /// each gets the tokens it gets from the plain generator alone.
    @Test(arguments: Precision.allCases)
    func continuousBatchingGivesEachWhatItGetsAlone(precision: Precision) throws {
        let lm = try Self.lm.get()
        let (a, b) = try adapters(lm)
        let uses: [[AdapterUse]] = [[], [a], [], [b], [a, b], []]
        let budgets = [20, 6, 14, 3, 11, 25]
        let ids = Self.prompts.map { lm.tokenizer.encode($0) }
        let alone = try ids.indices.map { i in
            try lm.generator(precision: precision, adapters: uses[i]).generate(prompt: ids[i], maxTokens: budgets[i], sampling: .greedy)
        }
        let engine = BatchGenerator(model: lm, maxSequences: 4, prefillChunk: 64, prefixCacheBytes: 0)
        defer { engine.shutdown() }
        let results = Mutex<[Int: GenerationResult]>([:])
        let group = DispatchGroup()
        for i in ids.indices {
            // The later requests arrive while the first ones are decoding (and two wait for a slot).
            if i == 3 { Thread.sleep(forTimeInterval: 0.05) }
            group.enter()
            var r = GenerationRequest(prompt: ids[i], maxTokens: budgets[i], adapters: uses[i], precision: precision)
            r.sampling = .greedy
            engine.submit(r) { event in
                switch event {
                case .finished(let res): results.withLock { $0[i] = res }; group.leave()
                case .failed(let e): Issue.record("request \(i) failed: \(e)"); group.leave()
                case .text: break
                }
                return true
            }
        }
        group.wait()
        let got = results.withLock { $0 }
        for i in ids.indices {
            let r = try #require(got[i])
            #expect(r.tokens == alone[i].tokens, "request \(i): \(r.text.debugDescription) vs \(alone[i].text.debugDescription)")
            #expect(r.text == alone[i].text)
            #expect(r.finishReason == alone[i].finishReason)
        }
        let stats = engine.statistics
        #expect(stats.finishedRequests == ids.count && stats.activeSequences == 0)
        #expect(stats.decodedTokens > 0 && stats.steps < budgets.reduce(0, +), "steps are shared: \(stats.steps)")
    }

    @Test func streamsCancelsAndStopsOnStrings() async throws {
        let lm = try Self.lm.get()
        let engine = BatchGenerator(model: lm, maxSequences: 8)
        defer { engine.shutdown() }
        let prompt = lm.tokenizer.encode("The capital of France is")
        let plain = try lm.generator().generate(prompt: prompt, maxTokens: 30, sampling: .greedy, stop: ["\n"])
        let (text, result, _) = engine.stream(GenerationRequest(prompt: prompt, maxTokens: 30, stop: ["\n"]))
        var streamed = ""
        for try await piece in text { streamed += piece }
        let r = try await result()
        #expect(streamed == plain.text && r.text == plain.text && r.finishReason == plain.finishReason)
        // Cancelling frees the slot and ends the request early.
        let handle = engine.submit(GenerationRequest(prompt: prompt, maxTokens: 500)) { _ in true }
        handle.cancel()
        let bad = GenerationRequest(prompt: [999_999], maxTokens: 5)
        #expect(throws: ModelError.self) { try engine.generate(bad) }
        // A prompt longer than its context is refused, not truncated.
        #expect(throws: ModelError.self) { try engine.generate(GenerationRequest(prompt: prompt, maxTokens: 5, contextTokens: 3)) }
        let after = try engine.generate(GenerationRequest(prompt: prompt, maxTokens: 4))
        #expect(after.tokens.count == 4)
    }

    /// `generate` lets go of its text callback before it returns, so callers may pass closures
    /// made non-escaping by `withoutActuallyEscaping` (which traps if one outlives its block: the
    /// server crashed so when the engine's thread still held a finished request's handler).
    @Test func generateDoesNotKeepItsCallback() throws {
        let lm = try Self.lm.get()
        let engine = BatchGenerator(model: lm, maxSequences: 4)
        defer { engine.shutdown() }
        let prompt = lm.tokenizer.encode("The capital of France is")
        func ask(_ onText: (String) -> Bool) throws -> GenerationResult {
            try withoutActuallyEscaping(onText) { onText in
                let box = UncheckedBox(onText)
                return try engine.generate(GenerationRequest(prompt: prompt, maxTokens: 2)) { box.value($0) }
            }
        }
        var pieces = 0
        for _ in 0..<200 { _ = try ask { _ in pieces += 1; return true } }
        #expect(pieces > 0)
    }

    /// A request cancelled while a step is running (its client left during the forward pass)
    /// still finishes, as cancelled, and frees its place: it used to leave the batch silently,
    /// its result never sent and the active count never lowered.
    @Test func cancelledDuringAStepStillFinishes() throws {
        let lm = try Self.lm.get()
        let engine = BatchGenerator(model: lm, maxSequences: 4)
        defer { engine.shutdown() }
        let prompt = lm.tokenizer.encode("Count to a hundred: 1, 2, 3,")
        let bDone = DispatchSemaphore(value: 0)
        let bReason = Mutex<FinishReason?>(nil)
        var long = GenerationRequest(prompt: prompt, maxTokens: 2000)
        long.ignoreEndOfGeneration = true
        // B first (it comes first in the batch), then A, whose first piece of text cancels B:
        // B has already been stepped in that pass.
        let b = engine.submit(long) { event in
            if case .finished(let r) = event { bReason.withLock { $0 = r.finishReason }; bDone.signal() }
            if case .failed = event { bDone.signal() }
            return true
        }
        let cancelled = Atomic<Bool>(false)
        let a = engine.submit(long) { event in
            if case .text = event, !cancelled.exchange(true, ordering: .relaxed) { b.cancel() }
            return true
        }
        #expect(bDone.wait(timeout: .now() + 60) == .success, "B never finished after being cancelled mid-step")
        #expect(bReason.withLock { $0 } == .cancelled)
        a.cancel()
        var idle = false
        for _ in 0..<600 where !idle { idle = engine.statistics.activeSequences == 0; if !idle { Thread.sleep(forTimeInterval: 0.01) } }
        #expect(idle, "\(engine.statistics)")
    }

    /// A prompt prefix shared by requests is computed once and reused, and reuse does not change
    /// the answers.
    @Test func sharedPrefixIsComputedOnce() throws {
        let lm = try Self.lm.get()
        let system = "You are a helpful assistant for a bicycle shop. You answer questions about repairs, parts and warranties briefly and politely."
        let questions = ["How often should brakes be bled?", "What does the warranty cover?", "Do you sell chains?"]
        let prompts = try questions.map { q in
            lm.encodeChat(try lm.chatTemplate.render([.system(system), .user(q)], addGenerationPrompt: true))
        }
        let alone = try prompts.map { try lm.generator().generate(prompt: $0, maxTokens: 12, sampling: .greedy) }
        let engine = BatchGenerator(model: lm, maxSequences: 4)
        defer { engine.shutdown() }
        var results: [GenerationResult] = []
        for p in prompts { results.append(try engine.generate(GenerationRequest(prompt: p, maxTokens: 12))) }
        #expect(results[0].cachedPromptTokens == 0)
        #expect(results[1].cachedPromptTokens >= 30 && results[2].cachedPromptTokens >= 30, "\(results.map(\.cachedPromptTokens))")
        for (r, a) in zip(results, alone) { #expect(r.tokens == a.tokens, "\(r.text.debugDescription) vs \(a.text.debugDescription)") }
        let s = try #require(engine.statistics.prefix)
        #expect(s.hits == 2 && s.lookups == 3 && s.hitRate > 0.3, "hit rate \(s.hitRate)")
        // Another adapter computes its own keys and values: no reuse across adapters.
        let (a, _) = try adapters(lm)
        let other = try engine.generate(GenerationRequest(prompt: prompts[1], maxTokens: 4, adapters: [a]))
        #expect(other.cachedPromptTokens == 0)
    }
}

@Suite struct AdapterRegistryTests {
    @Test func severalAdaptersLoadAndUnloadWithoutTheBase() throws {
        let lm = try BatchingTests.lm.get()
        let config = try #require(lm.model as? LlamaModel).config
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-adapters-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let base = lm.model
        try lm.adapters.add(randomAdapter(config, seed: 7), name: "support")
        try lm.adapters.add(randomAdapter(config, seed: 8), name: "legal")
        #expect(lm.adapters.names.contains("support") && lm.adapters.names.contains("legal"))
        let use = try lm.adapters.use("support", scale: 0.7)
        #expect(use.scale == 0.7 && use.adapter === lm.adapters["support"])
        #expect(lm.adapters.unload("legal"))
        #expect(!lm.adapters.names.contains("legal"))
        #expect(lm.model === base, "the base is never reloaded")
        // An unknown name says which ones are loaded.
        do { _ = try lm.adapters.use("nope"); Issue.record("expected an error") } catch let e as ModelError {
            #expect(e.description.contains("support"))
        }
        // A missing path names the path.
        do { try lm.adapters.load(name: "x", path: dir.appendingPathComponent("missing").path); Issue.record("expected an error") } catch let e as ModelError {
            #expect(e.description.contains("missing"))
        }
        _ = lm.adapters.unload("support")
    }
}

/// A non-Sendable value handed to the engine's thread while its owner waits (test only).
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
