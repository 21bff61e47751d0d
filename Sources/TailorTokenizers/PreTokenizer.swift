// Pre-tokenizers: split text into the words that BPE merges within, as the regular expressions of
// each model family do (GPT-2's `'s|'t|…| ?\p{L}+| ?\p{N}+|…`, Llama 3's, Qwen 2's). The patterns are
// matched by hand over Unicode scalars, which is exact for these patterns and far faster than a
// regex engine; tests compare them with Python's `regex` module on hard and random strings.

/// Splits text into pieces; concatenated, the pieces give back the text.
public protocol PreTokenizer: Sendable {
    func split(_ text: String) -> [String]
}

/// Unicode classes used by the patterns (`\p{L}`, `\p{N}`, `\p{P}`, `\s`).
enum CharClass {
    @inline(__always) static func isLetter(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 { return (s.value | 0x20) >= 0x61 && (s.value | 0x20) <= 0x7A }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }
    @inline(__always) static func isNumber(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 { return s.value >= 0x30 && s.value <= 0x39 }
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }
    @inline(__always) static func isSpace(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 { return s.value == 0x20 || (s.value >= 0x09 && s.value <= 0x0D) }
        return s.properties.isWhitespace
    }
    @inline(__always) static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }
    @inline(__always) static func isNewline(_ s: Unicode.Scalar) -> Bool { s == "\r" || s == "\n" }
}

/// One splitting rule: given scalars and a fragment range, the ranges it matches. Text between
/// matches is kept as pieces of its own, as llama.cpp's `unicode_regex_split` does.
public enum SplitRule: Sendable, Equatable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3's pattern, with `\p{N}{1,maxDigits}` (3 for Llama 3, 1 for Qwen 2).
    case llama3(maxDigits: Int)
    /// `\p{N}`: every digit alone.
    case singleDigits
    /// `\p{N}+`
    case digitRuns
    /// `[0-9][0-9][0-9]`
    case asciiDigitTriples
    /// `[\p{P}\$\+<=>\^~\|]+`
    case punctuationRuns

    static let extraPunctuation: Set<Unicode.Scalar> = ["$", "+", "<", "=", ">", "^", "~", "|"]

    func matches(_ s: [Unicode.Scalar], _ range: Range<Int>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = range.lowerBound
        let end = range.upperBound
        switch self {
        case .gpt2, .llama3:
            while i < end {
                let n = self == .gpt2 ? gpt2Match(s, i, end) : llama3Match(s, i, end)
                out.append(i..<(i + n))
                i += n
            }
        case .singleDigits:
            while i < end { if CharClass.isNumber(s[i]) { out.append(i..<(i + 1)) }; i += 1 }
        case .digitRuns, .asciiDigitTriples, .punctuationRuns:
            while i < end {
                if self == .asciiDigitTriples {
                    if i + 3 <= end, (i..<(i + 3)).allSatisfy({ s[$0].value >= 0x30 && s[$0].value <= 0x39 }) {
                        out.append(i..<(i + 3)); i += 3
                    } else { i += 1 }
                    continue
                }
                let digits = self == .digitRuns
                let test: (Unicode.Scalar) -> Bool = { c in
                    digits ? CharClass.isNumber(c) : (CharClass.isPunctuation(c) || SplitRule.extraPunctuation.contains(c))
                }
                if test(s[i]) {
                    var j = i + 1
                    while j < end, test(s[j]) { j += 1 }
                    out.append(i..<j); i = j
                } else { i += 1 }
            }
        }
        return out
    }

    /// Length of a contraction `'s|'t|'re|'ve|'m|'ll|'d` at i, or 0.
    private func contraction(_ s: [Unicode.Scalar], _ i: Int, _ end: Int, caseInsensitive: Bool) -> Int {
        guard s[i] == "'", i + 1 < end else { return 0 }
        func lower(_ c: Unicode.Scalar) -> Unicode.Scalar {
            caseInsensitive && c.value >= 65 && c.value <= 90 ? Unicode.Scalar(c.value + 32)! : c
        }
        let a = lower(s[i + 1])
        if a == "s" || a == "t" || a == "m" || a == "d" { return 2 }
        if i + 2 < end {
            let b = lower(s[i + 2])
            if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return 3 }
        }
        return 0
    }

    /// Whitespace alternatives shared by both patterns: `\s+(?!\S)|\s+`.
    private func trailingSpace(_ s: [Unicode.Scalar], _ i: Int, _ end: Int) -> Int {
        var j = i
        while j < end, CharClass.isSpace(s[j]) { j += 1 }
        let run = j - i
        if run > 1 && j < end { return run - 1 }
        return run
    }

    private func gpt2Match(_ s: [Unicode.Scalar], _ i: Int, _ end: Int) -> Int {
        let c = s[i]
        let k = contraction(s, i, end, caseInsensitive: false)
        if k > 0 { return k }
        let lead = (c == " " && i + 1 < end) ? 1 : 0
        let first = s[i + lead]
        if CharClass.isLetter(first) {
            var j = i + lead
            while j < end, CharClass.isLetter(s[j]) { j += 1 }
            return j - i
        }
        if CharClass.isNumber(first) {
            var j = i + lead
            while j < end, CharClass.isNumber(s[j]) { j += 1 }
            return j - i
        }
        let isOther: (Unicode.Scalar) -> Bool = { !CharClass.isSpace($0) && !CharClass.isLetter($0) && !CharClass.isNumber($0) }
        if isOther(first) {
            var j = i + lead
            while j < end, isOther(s[j]) { j += 1 }
            return j - i
        }
        return max(1, trailingSpace(s, i, end))
    }

    private func llama3Match(_ s: [Unicode.Scalar], _ i: Int, _ end: Int) -> Int {
        guard case .llama3(let maxDigits) = self else { return 1 }
        let c = s[i]
        let k = contraction(s, i, end, caseInsensitive: true)
        if k > 0 { return k }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if CharClass.isLetter(c) || (!CharClass.isNewline(c) && !CharClass.isNumber(c) && i + 1 < end && CharClass.isLetter(s[i + 1])) {
            var j = CharClass.isLetter(c) ? i : i + 1
            while j < end, CharClass.isLetter(s[j]) { j += 1 }
            return j - i
        }
        // \p{N}{1,maxDigits}
        if CharClass.isNumber(c) {
            var j = i
            while j < end, j - i < maxDigits, CharClass.isNumber(s[j]) { j += 1 }
            return j - i
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        let lead = (c == " " && i + 1 < end) ? 1 : 0
        let isOther: (Unicode.Scalar) -> Bool = { !CharClass.isSpace($0) && !CharClass.isLetter($0) && !CharClass.isNumber($0) }
        if isOther(s[i + lead]) {
            var j = i + lead
            while j < end, isOther(s[j]) { j += 1 }
            while j < end, CharClass.isNewline(s[j]) { j += 1 }
            return j - i
        }
        // \s*[\r\n]+ : up to and including the last newline of the whitespace run
        var j = i
        var lastNewline = -1
        while j < end, CharClass.isSpace(s[j]) {
            if CharClass.isNewline(s[j]) { lastNewline = j }
            j += 1
        }
        if lastNewline >= 0 { return lastNewline + 1 - i }
        return max(1, trailingSpace(s, i, end))
    }
}

/// Applies rules in sequence, each to the pieces the previous one made.
public struct RulePreTokenizer: PreTokenizer {
    public let rules: [SplitRule]
    public init(rules: [SplitRule]) { self.rules = rules }

    /// The rules llama.cpp uses for a `tokenizer.ggml.pre` value; nil when unknown.
    public init?(preName: String) {
        switch preName {
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            rules = [.singleDigits, .gpt2]
        case "gpt-2", "gpt2", "mpt", "olmo", "jais", "phi-2", "trillion":
            rules = [.gpt2]
        case "llama3", "llama-v3", "llama-bpe", "dbrx", "smaug-bpe", "falcon3", "pixtral", "chatglm-bpe":
            rules = [.llama3(maxDigits: 3)]
        case "qwen2", "stablelm2", "hunyuan", "deepseek-r1-qwen", "megrez":
            rules = [.llama3(maxDigits: 1)]
        case "default":
            rules = [.punctuationRuns, .gpt2, .digitRuns, .asciiDigitTriples]
        default:
            return nil
        }
    }

    public func split(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var pieces: [Range<Int>] = s.isEmpty ? [] : [0..<s.count]
        for rule in rules {
            var next: [Range<Int>] = []
            for piece in pieces {
                var at = piece.lowerBound
                for m in rule.matches(s, piece) {
                    if m.lowerBound > at { next.append(at..<m.lowerBound) }
                    next.append(m)
                    at = m.upperBound
                }
                if at < piece.upperBound { next.append(at..<piece.upperBound) }
            }
            pieces = next
        }
        return pieces.map { r in
            var str = String.UnicodeScalarView()
            str.append(contentsOf: s[r])
            return String(str)
        }
    }
}
