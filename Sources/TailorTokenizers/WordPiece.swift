// BERT's tokenizer (Devlin et al. 2019; Hugging Face tokenizers' BertNormalizer,
// BertPreTokenizer and WordPiece): clean and lowercase the text, strip accents, space out CJK
// characters, split at whitespace and punctuation, then cut each word greedily into the longest
// vocabulary pieces ("##" marks a continuation). Built from tokenizer.json or vocab.txt.
import Foundation
import TailorFormats

/// The text normalization of BERT models.
public struct BertNormalizer: Sendable {
    public var cleanText = true
    public var handleChineseChars = true
    public var stripAccents = true
    public var lowercase = true

    public init(lowercase: Bool = true, stripAccents: Bool? = nil) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }
    static func isChinese(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    public func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if cleanText {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
                if Self.isWhitespace(s) { out.append(" "); continue }
            }
            if handleChineseChars, Self.isChinese(s.value) {
                out.append(" "); out.append(s); out.append(" ")
                continue
            }
            out.append(s)
        }
        var str = String(out)
        if stripAccents {
            var kept = String.UnicodeScalarView()
            for s in str.decomposedStringWithCanonicalMapping.unicodeScalars where s.properties.generalCategory != .nonspacingMark {
                kept.append(s)
            }
            str = String(kept)
        }
        if lowercase { str = str.lowercased() }
        return str
    }
}

/// Splits at whitespace (dropped) and punctuation (each mark its own word).
public struct BertPreTokenizer: PreTokenizer {
    public init() {}
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        return CharClass.isPunctuation(s)
    }
    public func split(_ text: String) -> [String] {
        var words: [String] = []
        var cur = String.UnicodeScalarView()
        func flush() { if !cur.isEmpty { words.append(String(cur)); cur = String.UnicodeScalarView() } }
        for s in text.unicodeScalars {
            if BertNormalizer.isWhitespace(s) || s.properties.isWhitespace { flush(); continue }
            if Self.isPunctuation(s) { flush(); words.append(String(s)); continue }
            cur.append(s)
        }
        flush()
        return words
    }
}

/// A tokenized input for an encoder: ids, segment (token type) ids and the attention mask.
public struct EncodedText: Sendable, Equatable {
    public var ids: [Int]
    public var typeIDs: [Int]
    public var count: Int { ids.count }
    public init(ids: [Int], typeIDs: [Int]) { self.ids = ids; self.typeIDs = typeIDs }
}

public final class WordPieceTokenizer: Sendable {
    public let vocab: [String: Int]
    public let tokens: [String]
    public let normalizer: BertNormalizer
    public let preTokenizer = BertPreTokenizer()
    public let unkID: Int, clsID: Int, sepID: Int, padID: Int
    public let continuingPrefix: String
    public let maxCharsPerWord: Int

    public init(vocab: [String: Int], normalizer: BertNormalizer, unk: String = "[UNK]", cls: String = "[CLS]",
                sep: String = "[SEP]", pad: String = "[PAD]", continuingPrefix: String = "##", maxCharsPerWord: Int = 100) throws(TokenizerError) {
        self.vocab = vocab
        var toks = [String](repeating: "", count: (vocab.values.max() ?? -1) + 1)
        for (t, i) in vocab where i >= 0 { toks[i] = t }
        tokens = toks
        self.normalizer = normalizer
        guard let u = vocab[unk], let c = vocab[cls], let s = vocab[sep] else { throw .missing("\(unk), \(cls) or \(sep) token in the vocabulary") }
        unkID = u; clsID = c; sepID = s
        padID = vocab[pad] ?? 0
        self.continuingPrefix = continuingPrefix
        self.maxCharsPerWord = maxCharsPerWord
    }

    /// Loads `tokenizer.json` from a model directory, or `vocab.txt` (+ `tokenizer_config.json`).
    public convenience init(directory: String) throws {
        let fm = FileManager.default
        let tj = directory + "/tokenizer.json"
        if fm.fileExists(atPath: tj) {
            let json = try JSONValue.parse(String(contentsOfFile: tj, encoding: .utf8))
            guard let model = json["model"], model["type"]?.string == "WordPiece", case .object(let kv)? = model["vocab"] else {
                throw TokenizerError.unsupportedModel("\(json["model"]?["type"]?.string ?? "unknown") in \(tj) (WordPiece is supported for encoders)")
            }
            var vocab: [String: Int] = [:]
            for (t, i) in kv { if let i = i.int { vocab[t] = i } }
            let n = json["normalizer"]
            let lower = n?["lowercase"]?.bool ?? true
            var norm = BertNormalizer(lowercase: lower, stripAccents: n?["strip_accents"]?.bool)
            norm.cleanText = n?["clean_text"]?.bool ?? true
            norm.handleChineseChars = n?["handle_chinese_chars"]?.bool ?? true
            try self.init(vocab: vocab, normalizer: norm, unk: model["unk_token"]?.string ?? "[UNK]",
                          continuingPrefix: model["continuing_subword_prefix"]?.string ?? "##",
                          maxCharsPerWord: model["max_input_chars_per_word"]?.int ?? 100)
            return
        }
        let vt = directory + "/vocab.txt"
        guard fm.fileExists(atPath: vt) else { throw TokenizerError.missing("tokenizer.json or vocab.txt in \(directory)") }
        var vocab: [String: Int] = [:]
        for (i, line) in try String(contentsOfFile: vt, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let t = line.trimmingCharacters(in: .init(charactersIn: "\r"))
            if !t.isEmpty, vocab[t] == nil { vocab[t] = i }
        }
        var lower = true
        var strip: Bool?
        if let cfg = try? JSONValue.parse(String(contentsOfFile: directory + "/tokenizer_config.json", encoding: .utf8)) {
            lower = cfg["do_lower_case"]?.bool ?? true
            strip = cfg["strip_accents"]?.bool
        }
        try self.init(vocab: vocab, normalizer: BertNormalizer(lowercase: lower, stripAccents: strip))
    }

    /// WordPiece pieces of text, without special tokens.
    public func tokenize(_ text: String) -> [Int] {
        var out: [Int] = []
        for word in preTokenizer.split(normalizer.normalize(text)) {
            let chars = Array(word.unicodeScalars)
            if chars.count > maxCharsPerWord { out.append(unkID); continue }
            var pieces: [Int] = []
            var start = 0
            var bad = false
            while start < chars.count {
                var end = chars.count
                var found: Int?
                while start < end {
                    var s = String(String.UnicodeScalarView(chars[start..<end]))
                    if start > 0 { s = continuingPrefix + s }
                    if let id = vocab[s] { found = id; break }
                    end -= 1
                }
                guard let id = found else { bad = true; break }
                pieces.append(id)
                start = end
            }
            if bad { out.append(unkID) } else { out += pieces }
        }
        return out
    }

    /// [CLS] text [SEP], truncated to `maxLength` tokens in all.
    public func encode(_ text: String, maxLength: Int) -> EncodedText {
        let body = Array(tokenize(text).prefix(max(0, maxLength - 2)))
        let ids = [clsID] + body + [sepID]
        return EncodedText(ids: ids, typeIDs: Array(repeating: 0, count: ids.count))
    }

    /// [CLS] a [SEP] b [SEP] with segment ids 0/1, truncating the longer side first (for
    /// cross-encoders).
    public func encode(_ a: String, _ b: String, maxLength: Int) -> EncodedText {
        var ta = tokenize(a), tb = tokenize(b)
        while ta.count + tb.count > max(0, maxLength - 3) {
            if ta.count >= tb.count { ta.removeLast() } else { tb.removeLast() }
        }
        let ids = [clsID] + ta + [sepID] + tb + [sepID]
        return EncodedText(ids: ids, typeIDs: Array(repeating: 0, count: ta.count + 2) + Array(repeating: 1, count: tb.count + 1))
    }

    public func decode(_ ids: [Int]) -> String {
        var out = ""
        for id in ids where id >= 0 && id < tokens.count {
            let t = tokens[id]
            if t.hasPrefix(continuingPrefix) { out += t.dropFirst(continuingPrefix.count) }
            else { out += (out.isEmpty ? "" : " ") + t }
        }
        return out
    }
}
