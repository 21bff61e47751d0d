// Generation: prefill the prompt once, then decode token by token with the KV cache, streaming
// text as whole characters and stopping on end-of-generation tokens or stop strings.
import Foundation
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
    public var tokensPerSecond: Double { decodeSeconds > 0 ? Double(tokens.count) / decodeSeconds : 0 }
}

public final class Generator {
    public let model: any CausalLM
    public let tokenizer: Tokenizer

    public init(model: any CausalLM, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Generates a continuation of `prompt` (token ids). Tokens already in `cache` that match the
    /// start of the prompt are reused, so a chat turn only prefills what is new.
    /// `onText` receives each piece of text as it is complete; returning false stops early.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, stop: [String] = [],
                         cache: KVCache? = nil, onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw ModelError.emptyPrompt }
        let cache = cache ?? model.makeCache(maxTokens: nil)
        var sampler = Sampler(sampling)
        let t0 = Date()
        // Reuse the cached prefix; the last prompt token is always recomputed to get its logits.
        let reuse = min(cache.reusablePrefix, commonPrefix(cache.tokens, prompt), prompt.count - 1)
        cache.truncate(to: reuse)
        var logits = try model.forward(Array(prompt[reuse...]), cache: cache)
        cache.tokens = prompt
        let t1 = Date()

        var out: [Int] = []
        var text = ""
        var emitted = 0               // characters of `text` already handed to onText
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var reason = FinishReason.length
        var hitStopString = false
        let holdBack = (stop.map(\.count).max() ?? 1) - 1
        generation: while out.count < maxTokens {
            let next = sampler.sample(logits, history: prompt + out)
            if tokenizer.endOfGeneration.contains(next) { reason = .stop; break }
            out.append(next)
            text += decoder.push(next)
            if let r = stop.compactMap({ text.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
                text = String(text[..<r.lowerBound])
                reason = .stop
                hitStopString = true
                break generation
            }
            // Hold back text that could still become a stop string.
            let safe = max(emitted, text.count - holdBack)
            if safe > emitted {
                let piece = String(text.dropFirst(emitted).prefix(safe - emitted))
                emitted = safe
                if !onText(piece) { reason = .cancelled; break }
            }
            if cache.count >= cache.maxTokens { reason = .context; break }
            logits = try model.forward([next], cache: cache)
            cache.tokens.append(next)
        }
        if !hitStopString { text += decoder.flush() }
        if text.count > emitted { _ = onText(String(text.dropFirst(emitted))) }
        let t2 = Date()
        return GenerationResult(text: text, tokens: out, finishReason: reason, promptTokens: prompt.count,
                                prefillSeconds: t1.timeIntervalSince(t0), decodeSeconds: t2.timeIntervalSince(t1))
    }

    func commonPrefix(_ a: [Int], _ b: [Int]) -> Int {
        var i = 0
        while i < a.count, i < b.count, a[i] == b[i] { i += 1 }
        return i
    }
}
