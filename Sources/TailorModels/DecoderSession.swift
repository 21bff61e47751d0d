// What belongs to one request of a decoder: its KV cache, its precision and the LoRA adapters it
// applies with their scales. The model's weights are shared by every session and never changed
// by one; a session is used by one request at a time.
import TailorKernels

/// A LoRA adapter applied at run time with a scale (1 = as trained), as llama-server's per-request
/// `"lora": [{"id", "scale"}]` chooses them.
public struct AdapterUse: Sendable {
    public let adapter: LoRAAdapter
    public let scale: Float
    /// The name it was loaded under, for reports.
    public let name: String

    public init(_ adapter: LoRAAdapter, scale: Float = 1, name: String = "") {
        self.adapter = adapter
        self.scale = scale
        self.name = name
    }
}

/// One request's state for a decoder.
// @unchecked Sendable: a session is handed from the request's task to the batching engine and
// back, never used by two threads at once (the engine steps it only while the request waits).
public final class DecoderSession: @unchecked Sendable {
    public let cache: KVCache
    public let adapters: [AdapterUse]
    /// The cache's precision: .fast with an fp16 cache, .exact with fp32.
    public var precision: Precision { cache.precision }

    public init(cache: KVCache, adapters: [AdapterUse] = []) {
        self.cache = cache
        self.adapters = adapters
    }

    /// A fresh session for `model`: a cache of up to `maxTokens` positions (default: the model's
    /// context), fp16 for .fast and fp32 for .exact.
    public convenience init(model: any CausalLM, precision: Precision, adapters: [AdapterUse] = [], maxTokens: Int? = nil) {
        self.init(cache: model.makeCache(maxTokens: maxTokens, precision: precision), adapters: adapters)
    }
}

/// New tokens of one session in a forward pass.
public struct DecoderStep {
    public let session: DecoderSession
    public let tokens: [Int]
    /// Logits for every token ([T × V]) instead of the last one ([V]).
    public let allLogits: Bool

    public init(_ session: DecoderSession, tokens: [Int], allLogits: Bool = false) {
        self.session = session
        self.tokens = tokens
        self.allLogits = allLogits
    }
}
