// The request and response bodies of the OpenAI API that the server speaks (chat completions,
// completions, embeddings, models) and the Jina / llama-server rerank shape, as clients send and
// expect them: https://platform.openai.com/docs/api-reference. Fields Tailor does not use are
// accepted and ignored, as OpenAI-compatible servers do.
import Foundation

/// A message's content: a string, or an array of parts of which the text ones are used.
struct MessageContent: Codable, Sendable {
    var text: String

    init(_ text: String) { self.text = text }

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { text = s; return }
        if c.decodeNil() { text = ""; return }
        struct Part: Decodable { var type: String; var text: String? }
        let parts = try c.decode([Part].self)
        guard parts.allSatisfy({ $0.type == "text" }) else {
            throw OpenAIError.badRequest("only text content parts are supported (got \(parts.map(\.type).filter { $0 != "text" }.joined(separator: ", ")))", param: "messages")
        }
        text = parts.compactMap(\.text).joined()
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(text)
    }
}

struct ChatMessageBody: Codable, Sendable {
    var role: String
    var content: MessageContent?
}

/// `stop`: one string or several.
struct StopSequences: Codable, Sendable {
    var values: [String]
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { values = [s] } else if c.decodeNil() { values = [] } else { values = try c.decode([String].self) }
    }
    func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(values) }
}

struct ResponseFormat: Codable, Sendable { var type: String }
struct StreamOptions: Codable, Sendable { var include_usage: Bool? }
/// llama-server's per-request adapters: `"lora": [{"id", "scale"}]` (id: a loaded adapter's name
/// or its index in /v1/models' adapter list).
struct LoRARequest: Codable, Sendable {
    var id: LoRAID
    var scale: Float?
    struct LoRAID: Codable, Sendable {
        var name: String
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { name = String(i) } else { name = try c.decode(String.self) }
        }
        func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(name) }
    }
}

struct ChatCompletionRequest: Codable, Sendable {
    var model: String
    var messages: [ChatMessageBody]
    var stream: Bool?
    var stream_options: StreamOptions?
    var temperature: Float?
    var top_p: Float?
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var stop: StopSequences?
    var seed: UInt64?
    var n: Int?
    var response_format: ResponseFormat?
    var frequency_penalty: Float?
    var presence_penalty: Float?
    var lora: [LoRARequest]?
    /// llama-server's: go on past the end-of-turn token until max_tokens (benchmarks).
    var ignore_eos: Bool?
}

struct CompletionRequest: Codable, Sendable {
    var model: String
    var prompt: PromptText
    var stream: Bool?
    var stream_options: StreamOptions?
    var temperature: Float?
    var top_p: Float?
    var max_tokens: Int?
    var stop: StopSequences?
    var seed: UInt64?
    var n: Int?
    var lora: [LoRARequest]?
    /// llama-server's: go on past the end-of-turn token until max_tokens (benchmarks).
    var ignore_eos: Bool?

    /// A prompt string (an array of one string is accepted too).
    struct PromptText: Codable, Sendable {
        var text: String
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { text = s; return }
            let a = try c.decode([String].self)
            guard a.count == 1 else { throw OpenAIError.badRequest("give one prompt per request (got \(a.count))", param: "prompt") }
            text = a[0]
        }
        func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(text) }
    }
}

struct Usage: Codable, Sendable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int
}

/// A source of a grounded answer (the extra `citations` field of RAG responses).
struct CitationBody: Codable, Sendable {
    var number: Int
    var chunk_id: Int64
    var file: String
    var location: String
    var title: String?
    var snippet: String
    var score: Double
    var cited: Bool
}

struct ChatCompletionResponse: Codable, Sendable {
    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage
    var citations: [CitationBody]?
    var system_fingerprint: String?

    struct Choice: Codable, Sendable {
        var index: Int
        var message: ChatMessageBody
        var finish_reason: String
    }
}

struct ChatCompletionChunk: Codable, Sendable {
    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
    var citations: [CitationBody]?

    struct Choice: Codable, Sendable {
        var index: Int
        var delta: Delta
        var finish_reason: String?
    }
    struct Delta: Codable, Sendable {
        var role: String?
        var content: String?
    }
}

struct CompletionResponse: Codable, Sendable {
    var id: String
    var object = "text_completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
    struct Choice: Codable, Sendable {
        var index: Int
        var text: String
        var finish_reason: String?
    }
}

struct EmbeddingRequest: Codable, Sendable {
    var model: String
    var input: Inputs
    var encoding_format: String?
    var dimensions: Int?

    /// One string or an array of strings (token arrays are not accepted).
    struct Inputs: Codable, Sendable {
        var texts: [String]
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { texts = [s]; return }
            if let a = try? c.decode([String].self) { texts = a; return }
            throw OpenAIError.badRequest("input must be a string or an array of strings (token ids are not accepted)", param: "input")
        }
        func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(texts) }
    }
}

struct EmbeddingResponse: Codable, Sendable {
    var object = "list"
    var data: [Item]
    var model: String
    var usage: EmbeddingUsage
    struct Item: Codable, Sendable {
        var object = "embedding"
        var index: Int
        var embedding: EmbeddingValue
    }
    struct EmbeddingUsage: Codable, Sendable { var prompt_tokens: Int; var total_tokens: Int }
    /// Floats, or base64 of little-endian float32s (`encoding_format: "base64"`, which the
    /// openai Python client asks for by default).
    enum EmbeddingValue: Codable, Sendable {
        case floats([Float])
        case base64(String)
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .floats(let f): try c.encode(f)
            case .base64(let s): try c.encode(s)
            }
        }
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .base64(s) } else { self = .floats(try c.decode([Float].self)) }
        }
    }
}

struct RerankRequest: Codable, Sendable {
    var model: String?
    var query: String
    var documents: [String]
    var top_n: Int?
    var return_documents: Bool?
}

struct RerankResponse: Codable, Sendable {
    var model: String
    var results: [Result]
    var usage: Usage?
    struct Result: Codable, Sendable {
        var index: Int
        var relevance_score: Double
        var document: Document?
    }
    struct Document: Codable, Sendable { var text: String }
}

struct ModelList: Codable, Sendable {
    var object = "list"
    var data: [Model]
    struct Model: Codable, Sendable {
        var id: String
        var object = "model"
        var created: Int
        var owned_by: String
        /// What it is: "model" (a decoder), "embedder", "adapter", "collection".
        var kind: String
    }
}
