// Structure-aware chunking, sized in the embedder's tokens: sections first (a heading and what
// follows it), then blocks (paragraphs, list items, rows), then sentences, then word windows
// for a sentence longer than a chunk. Consecutive chunks of one section overlap by whole
// sentences up to `overlap` tokens. Every chunk is an exact span of its document's text.
import Foundation

public struct Chunk: Sendable, Equatable {
    public var ordinal: Int
    /// Exactly `document.text[start..<end]` (Unicode-scalar offsets).
    public var text: String
    public var start: Int
    public var end: Int
    /// Headings the chunk sits under, outermost first.
    public var headingPath: [String]
    public var pageStart: Int?
    public var pageEnd: Int?
    public var rowStart: Int?
    public var rowEnd: Int?
    /// Embedder tokens of `text` (without special tokens).
    public var tokens: Int

    /// What the embedder and the keyword index see: the heading path (when the chunk does not
    /// already start with its heading), then the text.
    public var contextualText: String {
        let h = headingPath.joined(separator: " > ")
        if h.isEmpty || text.hasPrefix(headingPath.last!) { return text }
        return h + "\n" + text
    }

    /// "page 3", "pages 3–4", "rows 10–14", "Install > Linux" — where the chunk is, for a citation.
    public var location: String {
        var parts: [String] = []
        if let p = pageStart { parts.append(pageEnd.map { $0 != p ? "pages \(p)–\($0)" : "page \(p)" } ?? "page \(p)") }
        if let r = rowStart { parts.append(rowEnd.map { $0 != r ? "rows \(r)–\($0)" : "row \(r)" } ?? "row \(r)") }
        if !headingPath.isEmpty { parts.append(headingPath.joined(separator: " > ")) }
        return parts.joined(separator: ", ")
    }
}

public struct Chunker {
    /// Most tokens in a chunk's contextual text (special tokens excluded).
    public var maxTokens: Int
    public var overlap: Int
    public let countTokens: (String) -> Int

    public init(maxTokens: Int = 256, overlap: Int = 32, countTokens: @escaping (String) -> Int) {
        self.maxTokens = max(8, maxTokens); self.overlap = max(0, min(overlap, maxTokens / 2)); self.countTokens = countTokens
    }

    struct Unit { var start: Int; var end: Int; var tokens: Int; var block: Int; var sentence: Bool }

    public func chunk(_ doc: Document) -> [Chunk] {
        let scalars = Array(doc.text.unicodeScalars)
        func slice(_ a: Int, _ b: Int) -> String { var s = String.UnicodeScalarView(); s.append(contentsOf: scalars[a..<b]); return String(s) }
        var chunks: [Chunk] = []

        // Sections: runs of blocks with the same heading path.
        var sections: [[Int]] = []
        for (i, b) in doc.blocks.enumerated() {
            if let last = sections.last?.last, doc.blocks[last].headingPath == b.headingPath, b.kind != .heading { sections[sections.count - 1].append(i) }
            else { sections.append([i]) }
        }

        var cur: [Unit] = []
        var curTokens = 0
        var curPath: [String]? = nil

        func budget(_ path: [String]) -> Int {
            let h = path.joined(separator: " > ")
            return maxTokens - (h.isEmpty ? 0 : countTokens(h) + 1)
        }
        func close(keepOverlap: Bool) {
            guard let first = cur.first, let last = cur.last else { return }
            let bs = doc.blocks[first.block...last.block]
            let pages = bs.compactMap(\.page), rows = bs.compactMap(\.row)
            let text = slice(first.start, last.end)
            chunks.append(Chunk(ordinal: chunks.count, text: text, start: first.start, end: last.end,
                                headingPath: curPath ?? [], pageStart: pages.min(), pageEnd: pages.max(),
                                rowStart: rows.min(), rowEnd: rows.max(), tokens: countTokens(text)))
            var kept: [Unit] = []
            if keepOverlap && overlap > 0 {
                var t = 0
                for u in cur.reversed() {
                    guard u.sentence || doc.blocks[u.block].kind == .row, t + u.tokens <= overlap, kept.count + 1 < cur.count else { break }
                    kept.insert(u, at: 0); t += u.tokens
                }
            }
            cur = kept
            curTokens = kept.reduce(0) { $0 + $1.tokens }
            curPath = kept.isEmpty ? nil : kept.dropFirst().reduce(doc.blocks[kept[0].block].headingPath) { commonPrefix($0, doc.blocks[$1.block].headingPath) }
        }
        func add(_ u: Unit, path: [String]) {
            if curPath == nil { curPath = path }
            else if curPath != path { curPath = commonPrefix(curPath!, path) }
            cur.append(u); curTokens += u.tokens
        }

        for section in sections {
            let path = doc.blocks[section.last!].headingPath
            let units = section.flatMap { self.units(ofBlock: $0, doc: doc, scalars: scalars, limit: budget(path)) }
            let sectionTokens = units.reduce(0) { $0 + $1.tokens }
            // A whole small section joins the open chunk when it fits; otherwise it starts a new one.
            if !cur.isEmpty {
                let merged = commonPrefix(curPath ?? [], path)
                if curTokens + sectionTokens > budget(merged) { close(keepOverlap: false) }
            }
            for u in units {
                let b = budget(curPath.map { commonPrefix($0, path) } ?? path)
                if !cur.isEmpty && curTokens + u.tokens > b { close(keepOverlap: true) }
                add(u, path: path)
            }
        }
        close(keepOverlap: false)
        return chunks
    }

    private func commonPrefix(_ a: [String], _ b: [String]) -> [String] {
        var out: [String] = []
        for (x, y) in zip(a, b) { if x == y { out.append(x) } else { break } }
        return out
    }

    /// A block as one unit, or as sentences when it is longer than `limit`, or as word windows
    /// for a sentence longer than `limit`.
    private func units(ofBlock bi: Int, doc: Document, scalars: [Unicode.Scalar], limit: Int) -> [Unit] {
        let b = doc.blocks[bi]
        let t = countTokens(b.text)
        if t <= limit { return [Unit(start: b.start, end: b.end, tokens: t, block: bi, sentence: false)] }
        var out: [Unit] = []
        for (s, e) in Self.sentences(scalars, b.start, b.end) {
            var text = String.UnicodeScalarView(); text.append(contentsOf: scalars[s..<e])
            let st = countTokens(String(text))
            if st <= limit { out.append(Unit(start: s, end: e, tokens: st, block: bi, sentence: true)); continue }
            // Word windows.
            var words: [(Int, Int)] = []
            var i = s
            while i < e {
                while i < e && scalars[i].properties.isWhitespace { i += 1 }
                let ws = i
                while i < e && !scalars[i].properties.isWhitespace { i += 1 }
                if i > ws { words.append((ws, i)) }
            }
            var ws = 0
            while ws < words.count {
                // Grow the window while it fits (counting tokens word by word, then checking the span).
                var we = ws, acc = 0
                while we < words.count {
                    var w = String.UnicodeScalarView(); w.append(contentsOf: scalars[words[we].0..<words[we].1])
                    let wt = max(1, countTokens(String(w)))
                    if acc + wt > limit && we > ws { break }
                    acc += wt; we += 1
                }
                out.append(Unit(start: words[ws].0, end: words[we - 1].1, tokens: acc, block: bi, sentence: true))
                ws = we
            }
        }
        return out
    }

    static let abbreviations: Set<String> = ["e.g", "i.e", "etc", "vs", "dr", "mr", "mrs", "ms", "prof", "fig", "figs", "al",
                                             "no", "vol", "approx", "ca", "cf", "st", "jr", "sr", "inc", "ltd", "co", "eq", "ref", "refs"]

    /// Sentence spans in `scalars[from..<to]`: ends at . ! ? (and closing quotes/brackets) before
    /// white space and an upper-case letter, digit or opening quote — not after a common
    /// abbreviation or a single initial; line breaks inside a block end sentences too.
    public static func sentences(_ u: [Unicode.Scalar], _ from: Int, _ to: Int) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        var start = from
        var i = from
        func skipSpace(_ j: Int) -> Int { var j = j; while j < to && u[j].properties.isWhitespace { j += 1 }; return j }
        while i < to {
            let c = u[i]
            if c == "\n" {
                if i > start { out.append((start, trimEnd(u, start, i))) }
                start = skipSpace(i + 1); i = start; continue
            }
            if c == "." || c == "!" || c == "?" {
                var e = i + 1
                while e < to, "\"'”’)]".unicodeScalars.contains(u[e]) { e += 1 }
                guard e < to, u[e].properties.isWhitespace else { i += 1; continue }
                let n = skipSpace(e)
                guard n < to else { break }
                let next = u[n]
                let startsSentence = next.properties.isUppercase || ("0"..."9").contains(next) || "\"'“‘([".unicodeScalars.contains(next)
                if c == "." {
                    var w = i - 1
                    while w >= start && !u[w].properties.isWhitespace { w -= 1 }
                    var word = String.UnicodeScalarView(); word.append(contentsOf: u[(w + 1)..<i])
                    let lw = String(word).lowercased()
                    if abbreviations.contains(lw) || (word.count == 1 && word.first!.properties.isUppercase) { i += 1; continue }
                }
                if startsSentence {
                    out.append((start, e))
                    start = n; i = n; continue
                }
            }
            i += 1
        }
        if start < to { out.append((start, trimEnd(u, start, to))) }
        return out.filter { $0.1 > $0.0 }
    }

    static func trimEnd(_ u: [Unicode.Scalar], _ s: Int, _ e: Int) -> Int {
        var e = e
        while e > s && u[e - 1].properties.isWhitespace { e -= 1 }
        return e
    }
}
