// Generation: prefill the prompt once, then decode token by token with the KV cache, streaming
// text as whole characters and stopping on end-of-generation tokens or stop strings.
import Foundation
import TailorKernels
import TailorTokenizers

public enum FinishReason: String, Sendable, Codable {
    case stop        // an end-of-generation token or a stop string
    case length      // the token budget ran out
    case context     // the context window is full
    case cancelled   // the caller asked to stop
}

public struct GenerationResult: Sendable {
    public var text: String
    public var tokens: [Int]
    public var finishReason: FinishReason
    public var promptTokens: Int
    /// Seconds spent on the prompt and on generating.
    public var prefillSeconds: Double
    public var decodeSeconds: Double
    /// Prompt tokens taken from a cache instead of computed (a shared prefix).
    public var cachedPromptTokens: Int = 0
    /// Seconds the request waited for a place in a batch.
    public var queueSeconds: Double = 0
    public var tokensPerSecond: Double { decodeSeconds > 0 ? Double(tokens.count) / decodeSeconds : 0 }

    public init(text: String, tokens: [Int], finishReason: FinishReason, promptTokens: Int, prefillSeconds: Double,
                decodeSeconds: Double, cachedPromptTokens: Int = 0, queueSeconds: Double = 0) {
        self.text = text
        self.tokens = tokens
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.prefillSeconds = prefillSeconds
        self.decodeSeconds = decodeSeconds
        self.cachedPromptTokens = cachedPromptTokens
        self.queueSeconds = queueSeconds
    }
}

/// Turns generated tokens into text pieces ready to show: whole characters only, stop strings cut
/// off (text that could still become one is held back until it cannot).
public struct GeneratedText {
    public private(set) var text = ""
    public let stop: [String]
    private var emitted = 0               // characters of `text` already handed out
    private var decoder: StreamingDecoder
    private let holdBack: Int
    /// Whether a stop string ended the text.
    public private(set) var hitStop = false

    public init(tokenizer: Tokenizer, stop: [String]) {
        self.stop = stop.filter { !$0.isEmpty }
        decoder = StreamingDecoder(tokenizer: tokenizer)
        holdBack = (self.stop.map(\.count).max() ?? 1) - 1
    }

    /// Adds a token; returns the text now safe to show (possibly empty). After a stop string,
    /// `hitStop` is true and the text ends before it.
    public mutating func push(_ token: Int) -> String {
        text += decoder.push(token)
        if let r = stop.compactMap({ text.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            text = String(text[..<r.lowerBound])
            hitStop = true
            return ""
        }
        let safe = max(emitted, text.count - holdBack)
        guard safe > emitted else { return "" }
        let piece = String(text.dropFirst(emitted).prefix(safe - emitted))
        emitted = safe
        return piece
    }

    /// The end of generation: whatever was held back.
    public mutating func finish() -> String {
        if !hitStop { text += decoder.flush() }
        guard text.count > emitted else { return "" }
        let rest = String(text.dropFirst(emitted))
        emitted = text.count
        return rest
    }
}

public final class Generator {
    public let model: any CausalLM
    public let tokenizer: Tokenizer
    /// The precision of caches this generator makes (a cache passed in keeps its own).
    public let precision: Precision
    /// LoRA adapters applied with their scales.
    public let adapters: [AdapterUse]

    public init(model: any CausalLM, tokenizer: Tokenizer, precision: Precision = .exact, adapters: [AdapterUse] = []) {
        self.model = model
        self.tokenizer = tokenizer
        self.precision = precision
        self.adapters = adapters
    }

    /// Generates a continuation of `prompt` (token ids). Tokens already in `cache` that match the
    /// start of the prompt are reused, so a chat turn only prefills what is new.
    /// `onText` receives each piece of text as it is complete; returning false stops early.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, stop: [String] = [],
                         cache: KVCache? = nil, onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw ModelError.emptyPrompt }
        let cache = cache ?? model.makeCache(maxTokens: nil, precision: precision)
        let session = DecoderSession(cache: cache, adapters: adapters)
        var sampler = Sampler(sampling)
        let t0 = Date()
        // Reuse the cached prefix; the last prompt token is always recomputed to get its logits.
        let reuse = min(cache.reusablePrefix, commonPrefix(cache.tokens, prompt), prompt.count - 1)
        cache.truncate(to: reuse)
        var logits = try model.forward([DecoderStep(session, tokens: Array(prompt[reuse...]))])[0]
        cache.tokens = prompt
        let t1 = Date()

        var out: [Int] = []
        var text = GeneratedText(tokenizer: tokenizer, stop: stop)
        var reason = FinishReason.length
        while out.count < maxTokens {
            let next = sampler.sample(logits, history: prompt + out)
            if tokenizer.endOfGeneration.contains(next) { reason = .stop; break }
            out.append(next)
            let piece = text.push(next)
            if text.hitStop { reason = .stop; break }
            if !piece.isEmpty, !onText(piece) { reason = .cancelled; break }
            if cache.count >= cache.maxTokens { reason = .context; break }
            logits = try model.forward([DecoderStep(session, tokens: [next])])[0]
            cache.tokens.append(next)
        }
        let rest = text.finish()
        if !rest.isEmpty { _ = onText(rest) }
        let t2 = Date()
        return GenerationResult(text: text.text, tokens: out, finishReason: reason, promptTokens: prompt.count,
                                prefillSeconds: t1.timeIntervalSince(t0), decodeSeconds: t2.timeIntervalSince(t1),
                                cachedPromptTokens: reuse)
    }

    func commonPrefix(_ a: [Int], _ b: [Int]) -> Int {
        var i = 0
        while i < a.count, i < b.count, a[i] == b[i] { i += 1 }
        return i
    }
}
