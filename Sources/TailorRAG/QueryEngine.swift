// Grounded answers: retrieve, rerank, fit the best passages into the model's context, ask the
// model to answer only from them with numbered citations, and check the citations it wrote.
import Foundation
import TailorKernels
import TailorModels

/// Reorders retrieved passages by relevance to the query.
public protocol Reranker: AnyObject {
    var name: String { get }
    /// The candidates with new scores, best first.
    func rerank(_ query: String, queryVector: [Float], _ candidates: [ScoredChunk], store: any CollectionStore) throws -> [ScoredChunk]
}

/// The default reranker, needing no extra model: cosine similarity of the query and passage
/// embeddings, plus a bonus for the share of the query's content words the passage contains.
public final class EmbeddingReranker: Reranker {
    public var keywordWeight: Double
    public init(keywordWeight: Double = 0.3) { self.keywordWeight = keywordWeight }
    public var name: String { "embedding+keywords" }

    public func rerank(_ query: String, queryVector: [Float], _ candidates: [ScoredChunk], store: any CollectionStore) throws -> [ScoredChunk] {
        let vectors = try store.embeddings(candidates.map(\.chunk.id))
        let terms = contentWords(query)
        var out = candidates
        for i in out.indices {
            let v = VectorMatrix.normalized(vectors[i])
            var cos = 0.0
            if v.count == queryVector.count { for j in v.indices { cos += Double(v[j] * queryVector[j]) } }
            let words = contentWords(out[i].chunk.text + " " + out[i].chunk.chunk.headingPath.joined(separator: " "))
            let cover = terms.isEmpty ? 0 : Double(terms.filter { t in words.contains(t) }.count) / Double(terms.count)
            out[i].score = cos + keywordWeight * cover
        }
        return out.sorted { $0.score > $1.score }
    }
}

/// A cross-encoder reranker (a BertForSequenceClassification checkpoint given by path).
public final class CrossEncoderReranker: Reranker {
    public let model: CrossEncoder
    public init(_ model: CrossEncoder) { self.model = model }
    public var name: String { "cross-encoder \(model.name)" }
    public func rerank(_ query: String, queryVector: [Float], _ candidates: [ScoredChunk], store: any CollectionStore) throws -> [ScoredChunk] {
        let s = try model.score(query, candidates.map(\.chunk.chunk.contextualText))
        var out = candidates
        for i in out.indices { out[i].score = Double(s[i]) }
        return out.sorted { $0.score > $1.score }
    }
}

/// Lower-cased words without stop words, with a light stemming (plural and -ing/-ed endings).
func contentWords(_ s: String) -> Set<String> {
    var out: Set<String> = []
    for w in s.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
        var t = String(w)
        if Retriever.stopWords.contains(t) || questionWords.contains(t) || t.count < 2 { continue }
        for suf in ["ing", "ed", "es", "s"] where t.count > suf.count + 3 && t.hasSuffix(suf) { t.removeLast(suf.count); break }
        out.insert(t)
    }
    return out
}

let questionWords: Set<String> = ["what", "which", "who", "whom", "whose", "when", "where", "why", "how", "do", "does", "did",
                                  "can", "could", "should", "would", "i", "me", "my", "we", "our", "you", "your", "about", "much", "many"]

/// Holds streamed text back until a sentence or line is complete, and stops the stream when a
/// sentence or line repeats one already given.
struct RepetitionGuard {
    private(set) var accepted = ""
    private var pending = ""
    private var seen: Set<String> = []

    /// Text that is safe to show now, and whether to stop (a repeat was found).
    mutating func push(_ piece: String) -> (text: String, stop: Bool) {
        pending += piece
        var out = ""
        while let end = pending.firstIndex(where: { ".!?\n".contains($0) }) {
            let unit = String(pending[...end])
            let key = unit.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            if key.count > 8 {
                if seen.contains(key) { pending = ""; accepted += out; return (out, true) }
                seen.insert(key)
            }
            out += unit
            pending = String(pending[pending.index(after: end)...])
        }
        accepted += out
        return (out, false)
    }

    /// What is left at the end of the stream.
    mutating func flush() -> String? {
        defer { pending = "" }
        guard !pending.isEmpty else { return nil }
        accepted += pending
        return pending
    }
}

/// A passage given to the model, as the answer lists it.
public struct Citation: Sendable, Codable {
    public var number: Int
    public var chunkID: Int64
    public var path: String
    public var documentKey: String
    public var title: String?
    public var location: String
    public var start: Int
    public var end: Int
    public var text: String
    /// Relevance from the reranker (or the retriever), and cosine similarity to the question.
    public var score: Double
    public var similarity: Double
    /// The answer cites it as [number].
    public var cited: Bool
    /// A sentence of the answer is supported by this passage (most of its content words, and
    /// all of its numbers, are in it) — found by comparing texts, whether or not the model cited it.
    public var supported: Bool = false
}

/// A sentence of the answer and the passage that supports it.
public struct Attribution: Sendable, Codable {
    public var sentence: String
    public var source: Int
    /// Share of the sentence's content words found in the passage.
    public var overlap: Double
}

public struct Answer: Sendable, Codable {
    public var question: String
    /// The query retrieval ran with (the question made standalone in a conversation).
    public var query: String
    public var text: String
    /// False when the documents do not cover the question (nothing relevant was found, or the
    /// model said so).
    public var covered: Bool
    /// The passages in the prompt, numbered as the answer cites them.
    public var sources: [Citation]
    /// Numbers the answer cites that match no passage.
    public var invalidCitations: [Int]
    /// Each answer sentence that a passage supports.
    public var attributions: [Attribution] = []
    public var timings: Timings

    public struct Timings: Sendable, Codable {
        public var retrievalMs = 0.0
        public var rerankMs = 0.0
        /// Fitting passages and conversation into the prompt, and tokenizing it.
        public var promptBuildMs = 0.0
        public var promptTokens = 0
        /// Prompt tokens reused from a cache rather than computed.
        public var cachedPromptTokens = 0
        /// Computing the prompt (prefill).
        public var prefillMs = 0.0
        public var generatedTokens = 0
        /// From the question to the first word of the answer: retrieval, reranking, building the
        /// prompt, prefill and the first decoding step (what the user waits).
        public var timeToFirstTokenMs = 0.0
        public var tokensPerSecond = 0.0
        public var totalMs = 0.0
    }

    public var cited: [Citation] { sources.filter(\.cited) }
    /// Sources cited by the model or supporting a sentence of the answer.
    public var used: [Citation] { sources.filter { $0.cited || $0.supported } }
}

/// A callback handed to another thread while its owner waits for that thread to finish with it.
// @unchecked Sendable: only one thread calls it at a time (see its use in QueryEngine.ask).
final class CallbackBox: @unchecked Sendable {
    let call: (String) -> Bool
    init(_ call: @escaping (String) -> Bool) { self.call = call }
}

/// Writes the grounded prompt: instructions, numbered passages, the conversation, the question.
public struct PromptBuilder {
    public var system = """
        You answer questions using only the numbered sources you are given. Cite the source of each fact with its number in square brackets, for example [1]. If the sources do not answer the question, say: "The documents do not cover this."
        """
    public init() {}

    public func passage(_ n: Int, _ c: StoredChunk) -> String {
        var head = "[\(n)] " + URL(fileURLWithPath: c.path).lastPathComponent
        if !c.location.isEmpty { head += " — " + c.location }
        return head + "\n" + c.text
    }

    public func messages(question: String, passages: [StoredChunk], history: [ChatMessage]) -> [ChatMessage] {
        let sources = passages.enumerated().map { passage($0.offset + 1, $0.element) }.joined(separator: "\n\n")
        return [.system(system)] + history + [.user("Sources:\n\n\(sources)\n\nQuestion: \(question)")]
    }
}

/// How one question is answered: passed with each call, so one engine serves many requests with
/// different settings at once.
public struct AskSettings: Sendable {
    /// Passages retrieved before reranking, and most passages put in the prompt.
    public var candidates = 20
    public var passages = 5
    /// Below this cosine similarity between question and best passage, the documents are taken
    /// not to cover the question and the model is not asked.
    public var minSimilarity = 0.25
    /// Tokens kept free for the answer (and the most it may use).
    public var answerTokens = 384
    /// Context the prompt may use (nil: the model's, at most 4096).
    public var contextTokens: Int? = nil
    public var sampling = SamplingParameters.greedy
    public var filter: Filter? = nil
    /// Rerank the candidates with the engine's reranker (when it has one).
    public var rerank = true
    /// Instructions that replace the prompt builder's own (nil: keep them).
    public var system: String? = nil
    /// How the retriever searches.
    public var retrieval = RetrievalSettings()
    /// LoRA adapters the model applies for this answer, and its precision (nil: the model's).
    public var adapters: [AdapterUse] = []
    public var precision: Precision? = nil
    /// Generate through this batching engine (a server's: the answer is decoded together with
    /// other requests) instead of a generator of its own.
    public var batcher: BatchGenerator? = nil

    public init() {}
}

// @unchecked Sendable: its properties are immutable; the retriever guards its index cache and the
// model and reranker are shared read-only (their computations take turns on the compute scheduler).
public final class QueryEngine: @unchecked Sendable {
    public let retriever: Retriever
    public let model: LanguageModel
    public let reranker: (any Reranker)?
    public let prompt: PromptBuilder
    /// The settings of a call that gives none.
    public let defaults: AskSettings
    public static let notCovered = "The documents do not cover this."

    public init(retriever: Retriever, model: LanguageModel, reranker: (any Reranker)? = EmbeddingReranker(),
                prompt: PromptBuilder = PromptBuilder(), defaults: AskSettings = AskSettings()) {
        self.retriever = retriever
        self.model = model
        self.reranker = reranker
        self.prompt = prompt
        self.defaults = defaults
    }

    /// The context a prompt may use under `settings`.
    public func contextTokens(_ settings: AskSettings) -> Int {
        min(settings.contextTokens ?? 4096, model.model.contextLength)
    }

    /// Retrieves, reranks and selects the passages for `query` (no generation).
    public func sources(for query: String, settings: AskSettings? = nil) throws
        -> (passages: [ScoredChunk], similarity: [Double], retrievalMs: Double, rerankMs: Double) {
        let settings = settings ?? defaults
        let t0 = Date()
        let qv = try retriever.embedQuery(query)
        var found = try retriever.retrieve(query, vector: qv, k: settings.candidates, filter: settings.filter, settings: settings.retrieval)
        let t1 = Date()
        if settings.rerank, let reranker, !found.isEmpty { found = try reranker.rerank(query, queryVector: qv, found, store: retriever.store) }
        let t2 = Date()
        let vectors = try retriever.store.embeddings(found.map(\.chunk.id))
        let sims = vectors.map { v -> Double in
            let n = VectorMatrix.normalized(v)
            return n.count == qv.count ? zip(n, qv).reduce(0.0) { $0 + Double($1.0 * $1.1) } : 0
        }
        return (found, sims, t1.timeIntervalSince(t0) * 1000, t2.timeIntervalSince(t1) * 1000)
    }

    /// Answers `question` from the collection. `history` is the conversation so far (without
    /// sources); `query` overrides what retrieval searches for (a standalone rewrite).
    public func ask(_ question: String, history: [ChatMessage] = [], query: String? = nil, settings: AskSettings? = nil,
                    onText: (String) -> Bool = { _ in true }) throws -> Answer {
        let settings = settings ?? defaults
        let start = Date()
        let q = query ?? question
        let (found, sims, retrievalMs, rerankMs) = try sources(for: q, settings: settings)
        var timings = Answer.Timings(retrievalMs: retrievalMs, rerankMs: rerankMs)
        // Relevant passages only; none → not covered, without asking the model.
        var chosen: [(ScoredChunk, Double)] = zip(found, sims).filter { $0.1 >= settings.minSimilarity }.map { ($0.0, $0.1) }
        if chosen.isEmpty {
            _ = onText(Self.notCovered)
            timings.totalMs = Date().timeIntervalSince(start) * 1000
            return Answer(question: question, query: q, text: Self.notCovered, covered: false, sources: [], invalidCitations: [], timings: timings)
        }
        chosen = Array(chosen.prefix(settings.passages))
        var builder = prompt
        if let system = settings.system { builder.system = system }
        let contextTokens = contextTokens(settings)
        let answerTokens = min(settings.answerTokens, contextTokens / 2)
        // Fit the passages (and as much recent conversation as fits) into the context budget.
        let budget = contextTokens - answerTokens
        var hist = history
        var ids: [Int] = []
        while true {
            let msgs = builder.messages(question: question, passages: chosen.map(\.0.chunk), history: hist)
            ids = model.encodeChat(try model.chatTemplate.render(msgs, addGenerationPrompt: true))
            if ids.count <= budget { break }
            if !hist.isEmpty { hist.removeFirst(min(2, hist.count)); continue }
            if chosen.count > 1 { chosen.removeLast(); continue }
            // One passage still too long: cut it to fit.
            var c = chosen[0].0
            let over = ids.count - budget
            let keep = max(0, c.chunk.text.count - over * 4 - 16)
            c.chunk.chunk.text = String(c.chunk.text.prefix(keep))
            chosen[0].0 = c
            if keep == 0 { break }
        }
        var firstToken: Date? = nil
        var guardLoop = RepetitionGuard()
        let prefillStart = Date()
        let result: GenerationResult = try withoutActuallyEscaping(onText) { onText in
            let receive: (String) -> Bool = { piece in
                if firstToken == nil { firstToken = Date() }
                // A small model can loop on a sentence: stop before it says it a second time.
                let (safe, stop) = guardLoop.push(piece)
                if !safe.isEmpty && !onText(safe) { return false }
                return !stop
            }
            if let batcher = settings.batcher {
                let request = GenerationRequest(prompt: ids, maxTokens: answerTokens, sampling: settings.sampling, adapters: settings.adapters,
                                                precision: settings.precision, contextTokens: contextTokens)
                // `generate` waits until the request ends: the engine's thread calls `receive`
                // while this thread is blocked, never both at once, and lets go of the closure
                // before returning (as `withoutActuallyEscaping` requires).
                let box = CallbackBox(receive)
                return try batcher.generate(request) { box.call($0) }
            }
            let gen = model.generator(precision: settings.precision, adapters: settings.adapters)
            let cache = model.makeCache(maxTokens: contextTokens, precision: settings.precision)
            return try gen.generate(prompt: ids, maxTokens: answerTokens, sampling: settings.sampling, cache: cache, onText: receive)
        }
        var text = result.finishReason == .cancelled ? guardLoop.accepted : result.text
        if result.finishReason != .cancelled, let rest = guardLoop.flush() { _ = onText(rest) }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let numbers = Self.citations(in: text)
        var sources: [Citation] = []
        for (i, (sc, sim)) in chosen.enumerated() {
            let c = sc.chunk
            sources.append(Citation(number: i + 1, chunkID: c.id, path: c.path, documentKey: c.documentKey, title: c.title,
                                    location: c.location, start: c.chunk.start, end: c.chunk.end, text: c.text,
                                    score: sc.score, similarity: sim, cited: numbers.contains(i + 1)))
        }
        let invalid = numbers.filter { $0 < 1 || $0 > chosen.count }.sorted()
        let attributions = Self.attribute(text, to: chosen.map(\.0.chunk.chunk.contextualText))
        for a in attributions { sources[a.source - 1].supported = true }
        timings.promptTokens = ids.count
        timings.cachedPromptTokens = result.cachedPromptTokens
        timings.prefillMs = result.prefillSeconds * 1000
        timings.generatedTokens = result.tokens.count
        timings.timeToFirstTokenMs = (firstToken ?? Date()).timeIntervalSince(start) * 1000
        timings.promptBuildMs = prefillStart.timeIntervalSince(start) * 1000 - retrievalMs - rerankMs
        timings.tokensPerSecond = result.tokensPerSecond
        timings.totalMs = Date().timeIntervalSince(start) * 1000
        let covered = !text.lowercased().contains("do not cover") && !text.lowercased().contains("don't cover")
        return Answer(question: question, query: q, text: text, covered: covered, sources: sources, invalidCitations: invalid,
                      attributions: attributions, timings: timings)
    }

    /// For each sentence of `answer`, the passage (1-based) holding most of its content words
    /// and all of its numbers, when that is at least `minOverlap` of them.
    public static func attribute(_ answer: String, to passages: [String], minOverlap: Double = 0.5) -> [Attribution] {
        let u = Array(answer.unicodeScalars)
        let words = passages.map(contentWords)
        var out: [Attribution] = []
        for (s, e) in Chunker.sentences(u, 0, u.count) {
            let sentence = answer.scalarSlice(s, e)
            let w = contentWords(sentence.replacingOccurrences(of: #"\[\d+\]"#, with: " ", options: .regularExpression))
            guard w.count >= 1 else { continue }
            let numbers = w.filter { $0.allSatisfy(\.isNumber) }
            var best = -1, bestOverlap = 0.0
            for (i, pw) in words.enumerated() {
                guard numbers.allSatisfy(pw.contains) else { continue }
                let o = Double(w.intersection(pw).count) / Double(w.count)
                if o > bestOverlap { bestOverlap = o; best = i }
            }
            if best >= 0 && bestOverlap >= minOverlap && (w.count >= 2 || !numbers.isEmpty) {
                out.append(Attribution(sentence: sentence, source: best + 1, overlap: bestOverlap))
            }
        }
        return out
    }

    /// Numbers cited as [1], [2, 3] or [1][2].
    public static func citations(in text: String) -> Set<Int> {
        var out: Set<Int> = []
        var i = text.startIndex
        while let open = text[i...].firstIndex(of: "[") {
            guard let close = text[open...].firstIndex(of: "]") else { break }
            let inside = text[text.index(after: open)..<close]
            let parts = inside.split(whereSeparator: { $0 == "," || $0 == " " || $0 == ";" })
            if !parts.isEmpty, parts.allSatisfy({ Int($0) != nil }) { for p in parts { out.insert(Int(p)!) } }
            i = text.index(after: close)
        }
        return out
    }

    /// A follow-up question made standalone with the conversation (so retrieval can use it):
    /// the model rewrites it; if the rewrite is unusable, the previous question is prepended.
    public func standaloneQuestion(_ question: String, history: [ChatMessage], settings: AskSettings? = nil) throws -> String {
        let settings = settings ?? defaults
        let previous = history.filter { $0.role == "user" }.map(\.content)
        guard let last = previous.last else { return question }
        let convo = history.suffix(4).map { "\($0.role == "user" ? "User" : "Assistant"): \($0.content.prefix(400))" }.joined(separator: "\n")
        let msgs: [ChatMessage] = [
            .system("Rewrite the user's last question so that it can be understood without the conversation. Reply with the rewritten question only."),
            .user("Conversation:\n\(convo)\n\nLast question: \(question)\n\nRewritten question:"),
        ]
        let ids = model.encodeChat(try model.chatTemplate.render(msgs, addGenerationPrompt: true))
        let r = try model.generator(precision: settings.precision, adapters: settings.adapters)
            .generate(prompt: ids, maxTokens: 48, sampling: .greedy, stop: ["\n"],
                      cache: model.makeCache(maxTokens: min(contextTokens(settings), ids.count + 64), precision: settings.precision))
        let rewrite = r.text.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "\"")))
        // A usable rewrite keeps the question's own content words and is not a long answer.
        let own = contentWords(question)
        let kept = own.isEmpty ? 1 : Double(own.intersection(contentWords(rewrite)).count) / Double(own.count)
        if !rewrite.isEmpty && rewrite.count < 300 && kept >= 0.5 && rewrite != question {
            // Keep the previous question's words too, for retrieval.
            return rewrite.contains(last) ? rewrite : rewrite + " (" + last + ")"
        }
        return last + " " + question
    }
}
