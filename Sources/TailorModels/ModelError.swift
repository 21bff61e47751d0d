import TailorFormats

/// What can go wrong loading or running a model; each message says what to do about it.
public enum ModelError: Error, CustomStringConvertible {
    case unsupportedArchitecture(String)
    case badHyperParameter(key: String, value: String, reason: String)
    case tensorShape(name: String, expected: [Int], found: [Int])
    case contextFull(used: Int, adding: Int, limit: Int)
    case badToken(Int, vocabularySize: Int)
    case format(FormatError)
    case modelNotFound(String)
    case emptyPrompt
    case badAdapter(String)
    case badBatch(String)
    case promptTooLong(tokens: Int, budget: Int)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            return "model architecture \"\(a)\" is not supported (llama, qwen2 and gemma3 are: SmolLM2, Llama 2/3, TinyLlama, Mistral, Qwen2/2.5, Gemma 3)."
        case let .badHyperParameter(key, value, reason):
            return "\(key) = \(value): \(reason). The model file is corrupted or not for this architecture."
        case let .tensorShape(name, expected, found):
            return "tensor \(name) has shape \(found), expected \(expected): the file does not match its own hyper-parameters."
        case let .contextFull(used, adding, limit):
            return "context window full: \(used) tokens in use + \(adding) new > \(limit). Shorten the prompt or history, or raise --ctx (up to the model's trained length)."
        case let .badToken(id, n):
            return "token id \(id) is outside the vocabulary (0..<\(n))."
        case .format(let e):
            return e.description
        case .badAdapter(let m):
            return m
        case .badBatch(let m):
            return "invalid batch: \(m)."
        case let .promptTooLong(tokens, budget):
            return "the message is \(tokens) tokens, more than the \(budget) the context allows; shorten it or raise --ctx."

        case .emptyPrompt:
            return "the prompt has no tokens: give some text to continue."
        case .modelNotFound(let m):
            return "no model \"\(m)\": give a path to a .gguf file, or a name from `tailor models`; `./scripts/setup` fetches the default models."
        }
    }
}
