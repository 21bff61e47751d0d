// A model's token table as GGUF stores it (`tokenizer.ggml.*`).

/// What a token is for, numbered as llama.cpp's `llama_token_type`.
public enum TokenKind: Int, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

public struct Vocabulary: Sendable {
    public let tokens: [String]
    public let kinds: [TokenKind]
    public let scores: [Float]
    public let ids: [String: Int32]

    public init(tokens: [String], kinds: [TokenKind]? = nil, scores: [Float]? = nil) {
        self.tokens = tokens
        self.kinds = kinds ?? Array(repeating: .normal, count: tokens.count)
        self.scores = scores ?? Array(repeating: 0, count: tokens.count)
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        self.ids = ids
    }

    public var count: Int { tokens.count }

    public func id(_ text: String) -> Int? { ids[text].map(Int.init) }

    public func kind(_ id: Int) -> TokenKind { id >= 0 && id < kinds.count ? kinds[id] : .undefined }

    /// Tokens that are written as text but mean something to the model (`<|im_start|>`), longest
    /// first, so that the longest match wins when one is a prefix of another.
    func specialTokens(includeControl: Bool) -> [(text: [UInt8], id: Int)] {
        var out: [(text: [UInt8], id: Int)] = []
        for (i, k) in kinds.enumerated() {
            let wanted = k == .userDefined || (includeControl && (k == .control || k == .unknown))
            if wanted, !tokens[i].isEmpty { out.append((Array(tokens[i].utf8), i)) }
        }
        return out.sorted { $0.text.count > $1.text.count || ($0.text.count == $1.text.count && $0.id < $1.id) }
    }
}
