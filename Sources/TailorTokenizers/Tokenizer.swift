// The tokenizer a model file describes: special-token splitting, a pre-tokenizer, a BPE model,
// and byte-exact decoding. Built from GGUF metadata by `Tokenizer(gguf:)`.
import TailorFormats

/// Turns one pre-tokenized word into token ids, and one id back into bytes.
public protocol TokenizerModel: Sendable {
    func encode(word: String, into out: inout [Int])
    func bytes(of id: Int) -> [UInt8]
}

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case unsupportedModel(String)
    case unsupportedPreTokenizer(String)
    case badMerge(index: Int, text: String)
    case missing(String)
    case badTokenID(Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .unsupportedModel(let m):
            return "tokenizer model \"\(m)\" is not supported (gpt2 byte-level BPE and llama SentencePiece BPE are)."
        case .unsupportedPreTokenizer(let p):
            return "pre-tokenizer \"\(p)\" is not known; supported: smollm, gpt2, llama3/llama-bpe, qwen2, default, and their aliases."
        case let .badMerge(i, t):
            return "merge \(i) (\"\(t)\") is not two tokens separated by a space: the tokenizer data is corrupted."
        case .missing(let what):
            return "the model file has no \(what); it cannot be tokenized."
        case let .badTokenID(id, n):
            return "token id \(id) is outside the vocabulary (0..<\(n))."
        }
    }
}

public final class Tokenizer: Sendable {
    public let vocabulary: Vocabulary
    public let model: any TokenizerModel
    public let preTokenizer: (any PreTokenizer)?
    public let bosID: Int?
    public let eosID: Int?
    public let addBOS: Bool
    public let addEOS: Bool
    /// SentencePiece models put a space before the text (`add_space_prefix`).
    public let addSpacePrefix: Bool
    /// Tokens that end a generation: EOS, end-of-turn and the like.
    public let endOfGeneration: Set<Int>
    public let isSentencePiece: Bool
    private let specialsAll: [(text: [UInt8], id: Int)]
    private let specialsUser: [(text: [UInt8], id: Int)]

    public init(vocabulary: Vocabulary, model: any TokenizerModel, preTokenizer: (any PreTokenizer)?,
                bosID: Int?, eosID: Int?, addBOS: Bool, addEOS: Bool, addSpacePrefix: Bool,
                extraEndOfGeneration: [Int] = []) {
        self.vocabulary = vocabulary
        self.model = model
        self.preTokenizer = preTokenizer
        self.bosID = bosID
        self.eosID = eosID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        isSentencePiece = model is SentencePieceBPE
        specialsAll = vocabulary.specialTokens(includeControl: true)
        specialsUser = vocabulary.specialTokens(includeControl: false)
        // As llama.cpp does: besides the declared ids, control tokens whose text marks the end of
        // a turn stop generation too.
        let endTexts: Set<String> = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                     "<EOT>", "<|end_of_text|>", "<｜end▁of▁sentence｜>", "</s>", "<|eom_id|>"]
        var eog = Set(extraEndOfGeneration)
        if let eosID { eog.insert(eosID) }
        for (i, t) in vocabulary.tokens.enumerated() where vocabulary.kinds[i] == .control || vocabulary.kinds[i] == .userDefined {
            if endTexts.contains(t) { eog.insert(i) }
        }
        endOfGeneration = eog
    }

    /// Builds the tokenizer a GGUF file describes.
    public convenience init(gguf: GGUFFile) throws(TokenizerError) {
        let tokens: [String]
        do { tokens = try gguf.strings("tokenizer.ggml.tokens") } catch { throw .missing("tokenizer.ggml.tokens") }
        let kinds = (try? gguf.numbers("tokenizer.ggml.token_type"))?.map { TokenKind(rawValue: Int($0)) ?? .normal }
        let scores = (try? gguf.numbers("tokenizer.ggml.scores"))?.map { Float($0) }
        let vocab = Vocabulary(tokens: tokens, kinds: kinds?.count == tokens.count ? kinds : nil,
                               scores: scores?.count == tokens.count ? scores : nil)
        let kind = gguf["tokenizer.ggml.model"]?.string ?? "llama"
        func optID(_ key: String) -> Int? {
            guard let v = gguf[key]?.int, v >= 0, v < tokens.count else { return nil }
            return v
        }
        let model: any TokenizerModel
        var pre: (any PreTokenizer)?
        var defaultBOS = false, defaultSpacePrefix = false
        switch kind {
        case "gpt2":
            let preName = gguf["tokenizer.ggml.pre"]?.string ?? "default"
            guard let p = RulePreTokenizer(preName: preName) else { throw .unsupportedPreTokenizer(preName) }
            pre = p
            let merges: [String]
            do { merges = try gguf.strings("tokenizer.ggml.merges") } catch { throw .missing("tokenizer.ggml.merges") }
            let ignore = ["llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"].contains(preName)
            model = try ByteLevelBPE(vocab: vocab, merges: merges, ignoreMerges: ignore)
        case "llama":
            model = SentencePieceBPE(vocab: vocab, unknownID: optID("tokenizer.ggml.unknown_token_id") ?? 0)
            defaultBOS = true
            defaultSpacePrefix = true
        default:
            throw .unsupportedModel(kind)
        }
        var extra: [Int] = []
        if let eot = optID("tokenizer.ggml.eot_token_id") { extra.append(eot) }
        if let eom = optID("tokenizer.ggml.eom_token_id") { extra.append(eom) }
        self.init(vocabulary: vocab, model: model, preTokenizer: pre,
                  bosID: optID("tokenizer.ggml.bos_token_id"), eosID: optID("tokenizer.ggml.eos_token_id"),
                  addBOS: gguf["tokenizer.ggml.add_bos_token"]?.bool ?? defaultBOS,
                  addEOS: gguf["tokenizer.ggml.add_eos_token"]?.bool ?? false,
                  addSpacePrefix: gguf["tokenizer.ggml.add_space_prefix"]?.bool ?? defaultSpacePrefix,
                  extraEndOfGeneration: extra)
    }

    /// Token ids for `text`. With `parseSpecial`, special-token texts inside it (`<|im_start|>`)
    /// become those tokens, as llama.cpp does; `addSpecial` adds BOS/EOS as the model asks.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int] {
        var out: [Int] = []
        if addSpecial, addBOS, let b = bosID { out.append(b) }
        var prevSpecial = true
        for fragment in partition(Array(text.utf8), parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                out.append(id)
                prevSpecial = true
            case .text(let bytes):
                var s = String(decoding: bytes, as: UTF8.self)
                if isSentencePiece {
                    if addSpacePrefix && prevSpecial { s = " " + s }
                    model.encode(word: s, into: &out)
                } else if let pre = preTokenizer {
                    for word in pre.split(s) { model.encode(word: word, into: &out) }
                } else {
                    model.encode(word: s, into: &out)
                }
                prevSpecial = false
            }
        }
        if addSpecial, addEOS, let e = eosID { out.append(e) }
        return out
    }

    enum Fragment { case text([UInt8]), token(Int) }

    /// Splits raw text at special-token texts, longest tokens first (llama.cpp's tokenizer_st_partition).
    func partition(_ text: [UInt8], parseSpecial: Bool) -> [Fragment] {
        guard !text.isEmpty else { return [] }
        var frags: [Fragment] = [.text(text)]
        for special in parseSpecial ? specialsAll : specialsUser {
            let needle = special.text
            var next: [Fragment] = []
            for f in frags {
                guard case .text(let t) = f, t.count >= needle.count else { next.append(f); continue }
                var start = 0, i = 0
                while i + needle.count <= t.count {
                    if t[i] == needle[0], t[i..<(i + needle.count)].elementsEqual(needle) {
                        if i > start { next.append(.text(Array(t[start..<i]))) }
                        next.append(.token(special.id))
                        i += needle.count
                        start = i
                    } else { i += 1 }
                }
                if start < t.count { next.append(.text(Array(t[start...]))) }
            }
            frags = next
        }
        return frags
    }

    /// The bytes a token stands for. Control tokens (BOS, `<|im_end|>`) are empty unless `special`.
    public func bytes(of id: Int, special: Bool = false) -> [UInt8] {
        guard id >= 0, id < vocabulary.count else { return [] }
        switch vocabulary.kinds[id] {
        case .control, .unknown: return special ? Array(vocabulary.tokens[id].utf8) : []
        case .userDefined: return Array(vocabulary.tokens[id].utf8)
        default: return model.bytes(of: id)
        }
    }

    /// Text of a sequence of ids. Invalid UTF-8 (a sequence cut mid-character) becomes U+FFFD.
    public func decode(_ ids: [Int], special: Bool = false) -> String {
        var bytes: [UInt8] = []
        for (n, id) in ids.enumerated() {
            var b = self.bytes(of: id, special: special)
            if n == 0, isSentencePiece, addSpacePrefix, b.first == 0x20 { b.removeFirst() }
            bytes += b
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var vocabularySize: Int { vocabulary.count }
}

/// Decodes a stream of tokens into text, holding back bytes of a character that is not complete
/// yet, so that a multi-byte character split across tokens is printed whole.
public struct StreamingDecoder {
    let tokenizer: Tokenizer
    let special: Bool
    private var pending: [UInt8] = []
    private var first = true

    public init(tokenizer: Tokenizer, special: Bool = false) {
        self.tokenizer = tokenizer
        self.special = special
    }

    /// The text that token `id` completes (possibly empty).
    public mutating func push(_ id: Int) -> String {
        var b = tokenizer.bytes(of: id, special: special)
        if first, tokenizer.isSentencePiece, tokenizer.addSpacePrefix, b.first == 0x20 { b.removeFirst() }
        if !b.isEmpty { first = false }
        pending += b
        let cut = completePrefixLength(pending)
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Whatever is still held back, with incomplete characters replaced by U+FFFD.
    public mutating func flush() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside a multi-byte character.
    func completePrefixLength(_ b: [UInt8]) -> Int {
        let n = b.count
        // Look back at most 3 bytes for the lead byte of a trailing incomplete sequence.
        var i = n - 1
        var back = 0
        while i >= 0, back < 4 {
            let c = b[i]
            if c & 0xC0 != 0x80 {
                let need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1
                return (n - i) < need && c >= 0xC0 && c < 0xF8 ? i : n
            }
            i -= 1; back += 1
        }
        return n
    }
}
