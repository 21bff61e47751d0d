// Formats a conversation the way the model was trained to see it, by rendering the model's own
// `tokenizer.chat_template` (Jinja) — the same text transformers' apply_chat_template produces.
import TailorFormats
import TailorTokenizers

public struct ChatMessage: Codable, Equatable, Sendable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
    public static func system(_ s: String) -> ChatMessage { .init(role: "system", content: s) }
    public static func user(_ s: String) -> ChatMessage { .init(role: "user", content: s) }
    public static func assistant(_ s: String) -> ChatMessage { .init(role: "assistant", content: s) }
}

public struct ChatTemplate {
    public let source: String
    public let bosToken: String
    public let eosToken: String
    let template: JinjaTemplate

    /// ChatML, for models whose file carries no template.
    public static let chatML = """
    {% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
    """

    public init(source: String, bosToken: String = "", eosToken: String = "") throws {
        self.source = source
        self.bosToken = bosToken
        self.eosToken = eosToken
        template = try JinjaTemplate(source)
    }

    /// The template a GGUF file carries (`tokenizer.chat_template`), or ChatML when it has none.
    public init(gguf: GGUFFile, tokenizer: Tokenizer) throws {
        let src = gguf["tokenizer.chat_template"]?.string ?? ChatTemplate.chatML
        func text(_ id: Int?) -> String { id.map { tokenizer.vocabulary.tokens[$0] } ?? "" }
        try self.init(source: src, bosToken: text(tokenizer.bosID), eosToken: text(tokenizer.eosID))
    }

    public var hasOwnTemplate: Bool { source != ChatTemplate.chatML }

    /// Renders the conversation. `extra` adds variables (tools, date_string, …).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true,
                       extra: [String: JValue] = [:]) throws -> String {
        let msgs: JValue = .list(messages.map { .dict([("role", .string($0.role)), ("content", .string($0.content))]) })
        return try render(messages: msgs, addGenerationPrompt: addGenerationPrompt, extra: extra)
    }

    /// Renders messages given as template values (for messages with tool calls or extra fields).
    public func render(messages: JValue, addGenerationPrompt: Bool, extra: [String: JValue] = [:]) throws -> String {
        var ctx: [String: JValue] = [
            "messages": messages,
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        for (k, v) in extra { ctx[k] = v }
        return try template.render(ctx)
    }
}
