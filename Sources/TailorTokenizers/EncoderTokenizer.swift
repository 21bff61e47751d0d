// Tokenizers of encoder models (BERT's WordPiece, RoBERTa's byte-level BPE), behind one small
// protocol, and the factory that picks one from a model folder's tokenizer.json.
import Foundation
import TailorFormats

public protocol EncoderTokenizer: Sendable {
    /// Special tokens around one text, truncated to `maxLength` in all.
    func encode(_ text: String, maxLength: Int) -> EncodedText
    /// A pair of texts (cross-encoders), truncated longest-first.
    func encode(_ a: String, _ b: String, maxLength: Int) -> EncodedText
    var padID: Int { get }
    func decode(_ ids: [Int]) -> String
}

extension WordPieceTokenizer: EncoderTokenizer {}

public enum EncoderTokenizers {
    /// The tokenizer of a Hugging Face model folder: WordPiece (BERT) or byte-level BPE (RoBERTa),
    /// from tokenizer.json, else vocab.txt.
    public static func load(directory: String) throws -> any EncoderTokenizer {
        let tj = directory + "/tokenizer.json"
        if let text = try? String(contentsOfFile: tj, encoding: .utf8) {
            let json = try JSONValue.parse(text)
            if json["model"]?["type"]?.string == "BPE" { return try ByteLevelEncoderTokenizer(tokenizerJSON: json, source: tj) }
        }
        return try WordPieceTokenizer(directory: directory)
    }
}

/// RoBERTa's tokenizer: GPT-2 byte-level BPE, `<s> text </s>` and `<s> a </s></s> b </s>`.
// @unchecked Sendable: immutable after init (the BPE merges, the vocabulary and the specials).
public final class ByteLevelEncoderTokenizer: EncoderTokenizer, @unchecked Sendable {
    let bpe: ByteLevelBPE
    let vocabulary: Vocabulary
    let split = RulePreTokenizer(rules: [.gpt2])
    let addPrefixSpace: Bool
    public let bosID: Int, eosID: Int, padID: Int
    let specials: [(text: [UInt8], id: Int)]

    public init(tokenizerJSON json: JSONValue, source: String) throws {
        guard let model = json["model"], case .object(let kv)? = model["vocab"] else {
            throw TokenizerError.missing("model.vocab in \(source)")
        }
        var pairs: [(String, Int)] = []
        for (t, i) in kv { if let i = i.int { pairs.append((t, i)) } }
        var added: [(String, Int)] = []
        for a in json["added_tokens"]?.array ?? [] {
            if let c = a["content"]?.string, let i = a["id"]?.int { added.append((c, i)) }
        }
        let size = (pairs + added).map(\.1).max().map { $0 + 1 } ?? 0
        var tokens = [String](repeating: "", count: size)
        var kinds = [TokenKind](repeating: .normal, count: size)
        for (t, i) in pairs where i >= 0 { tokens[i] = t }
        for (t, i) in added where i >= 0 { tokens[i] = t; kinds[i] = .control }
        let vocab = Vocabulary(tokens: tokens, kinds: kinds)
        vocabulary = vocab
        var merges: [String] = []
        for m in model["merges"]?.array ?? [] {
            if let s = m.string { merges.append(s) }
            else if let a = m.array, a.count == 2, let x = a[0].string, let y = a[1].string { merges.append(x + " " + y) }
        }
        bpe = try ByteLevelBPE(vocab: vocab, merges: merges, ignoreMerges: false)
        addPrefixSpace = json["pre_tokenizer"]?["add_prefix_space"]?.bool ?? false
        bosID = vocab.id("<s>") ?? 0; eosID = vocab.id("</s>") ?? 2; padID = vocab.id("<pad>") ?? 1
        specials = vocab.specialTokens(includeControl: true)
    }

    func tokenize(_ text: String) -> [Int] {
        var out: [Int] = []
        var first = true
        for piece in partition(Array(text.utf8)) {
            switch piece {
            case .token(let t): out.append(t)
            case .text(let bytes):
                var s = String(decoding: bytes, as: UTF8.self)
                if addPrefixSpace && first && !s.hasPrefix(" ") { s = " " + s }
                for w in split.split(s) { bpe.encode(word: w, into: &out) }
            }
            first = false
        }
        return out
    }

    enum Piece { case text([UInt8]), token(Int) }

    /// Added tokens written in the text (`<mask>`) become those tokens.
    func partition(_ text: [UInt8]) -> [Piece] {
        guard !text.isEmpty else { return [] }
        var pieces: [Piece] = [.text(text)]
        for sp in specials {
            var next: [Piece] = []
            for p in pieces {
                guard case .text(let t) = p, t.count >= sp.text.count else { next.append(p); continue }
                var start = 0, i = 0
                while i + sp.text.count <= t.count {
                    if t[i..<(i + sp.text.count)].elementsEqual(sp.text) {
                        if i > start { next.append(.text(Array(t[start..<i]))) }
                        next.append(.token(sp.id)); i += sp.text.count; start = i
                    } else { i += 1 }
                }
                if start < t.count { next.append(.text(Array(t[start...]))) }
            }
            pieces = next
        }
        return pieces
    }

    public func encode(_ text: String, maxLength: Int) -> EncodedText {
        let ids = [bosID] + tokenize(text).prefix(max(0, maxLength - 2)) + [eosID]
        return EncodedText(ids: ids, typeIDs: Array(repeating: 0, count: ids.count))
    }

    public func encode(_ a: String, _ b: String, maxLength: Int) -> EncodedText {
        var ta = tokenize(a), tb = tokenize(b)
        while ta.count + tb.count > max(0, maxLength - 4) {
            if ta.count >= tb.count { ta.removeLast() } else { tb.removeLast() }
        }
        let ids = [bosID] + ta + [eosID, eosID] + tb + [eosID]
        return EncodedText(ids: ids, typeIDs: Array(repeating: 0, count: ids.count))
    }

    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && id < vocabulary.count && vocabulary.kinds[id] != .control { bytes += bpe.bytes(of: id) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
