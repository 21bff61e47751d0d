// SentencePiece-style BPE (Llama 2, Mistral, TinyLlama, Gemma): spaces become "▁", characters
// are merged by the score of the merged piece, and pieces missing from the vocabulary fall back
// to byte tokens <0xXX>. Kudo & Richardson 2018; llama.cpp's llm_tokenizer_spm.

public struct SentencePieceBPE: TokenizerModel {
    let vocab: Vocabulary
    let byteIDs: [Int32]
    let unknownID: Int

    public init(vocab: Vocabulary, unknownID: Int) {
        self.vocab = vocab
        self.unknownID = unknownID
        byteIDs = (0..<256).map { b in vocab.ids["<0x" + String(format2Hex: b) + ">"] ?? -1 }
    }

    public func encode(word: String, into out: inout [Int]) {
        let text = word.replacingSpaces()
        // Symbols are whole characters (UTF-8 sequences); merges never split one.
        var pieces: [String] = text.unicodeScalars.map { String($0) }
        guard !pieces.isEmpty else { return }
        var alive = [Bool](repeating: true, count: pieces.count)
        var next = Array(1...pieces.count); next[pieces.count - 1] = -1
        var prev = Array(-1..<(pieces.count - 1))
        // Recorded merges, for re-splitting a piece that is not itself a token.
        var split: [String: (String, String)] = [:]

        struct Bigram: Comparable {
            let score: Float, left: Int, right: Int, text: String
            static func < (a: Bigram, b: Bigram) -> Bool { a.score < b.score || (a.score == b.score && a.left > b.left) }
        }
        var heap = Heap<Bigram>()
        func tryAdd(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let t = pieces[l] + pieces[r]
            guard let id = vocab.ids[t] else { return }
            heap.push(Bigram(score: vocab.scores[Int(id)], left: l, right: r, text: t))
        }
        for i in 0..<(pieces.count - 1) { tryAdd(i, i + 1) }
        while let b = heap.pop() {
            guard alive[b.left], alive[b.right], next[b.left] == b.right, pieces[b.left] + pieces[b.right] == b.text else { continue }
            split[b.text] = (pieces[b.left], pieces[b.right])
            pieces[b.left] = b.text
            alive[b.right] = false
            next[b.left] = next[b.right]
            if next[b.right] >= 0 { prev[next[b.right]] = b.left }
            tryAdd(prev[b.left], b.left)
            tryAdd(b.left, next[b.left])
        }
        func emit(_ p: String) {
            if let id = vocab.ids[p] { out.append(Int(id)); return }
            if let (a, b) = split[p] { emit(a); emit(b); return }
            for byte in p.utf8 {
                let id = byteIDs[Int(byte)]
                out.append(id >= 0 ? Int(id) : unknownID)
            }
        }
        var i = 0
        while i >= 0 { emit(pieces[i]); i = next[i] }
    }

    public func bytes(of id: Int) -> [UInt8] {
        let t = vocab.tokens[id]
        if vocab.kind(id) == .byte, t.count == 6, t.hasPrefix("<0x"), let b = UInt8(t.dropFirst(3).prefix(2), radix: 16) {
            return [b]
        }
        return Array(t.replacingOccurrences(of: "\u{2581}", with: " ").utf8)
    }
}

extension String {
    init(format2Hex b: Int) {
        let hex = Array("0123456789ABCDEF")
        self = String([hex[b >> 4], hex[b & 15]])
    }
    func replacingSpaces() -> String { replacingOccurrences(of: " ", with: "\u{2581}") }
    func replacingOccurrences(of a: String, with b: String) -> String {
        guard !a.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}

extension Substring {
    func range(of needle: String) -> Range<Substring.Index>? {
        let n = Array(needle.unicodeScalars)
        guard let first = n.first else { return nil }
        var i = unicodeScalars.startIndex
        while i < unicodeScalars.endIndex {
            if unicodeScalars[i] == first {
                var j = i, k = 0
                while k < n.count, j < unicodeScalars.endIndex, unicodeScalars[j] == n[k] {
                    j = unicodeScalars.index(after: j); k += 1
                }
                if k == n.count { return i..<j }
            }
            i = unicodeScalars.index(after: i)
        }
        return nil
    }
}

/// A binary max-heap.
struct Heap<T: Comparable> {
    private var items: [T] = []
    mutating func push(_ x: T) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[p] < items[i] { items.swapAt(p, i); i = p } else { break }
        }
    }
    mutating func pop() -> T? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count, items[m] < items[l] { m = l }
            if r < items.count, items[m] < items[r] { m = r }
            if m == i { break }
            items.swapAt(i, m); i = m
        }
        return top
    }
}
