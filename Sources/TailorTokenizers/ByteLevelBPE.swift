// Byte-level BPE (GPT-2, Llama 3, Qwen 2, SmolLM): text bytes are mapped to printable characters
// (GPT-2's bytes_to_unicode), then merged by rank. Radford et al. 2019; Sennrich et al. 2016.

/// GPT-2's reversible byte ↔ character map: printable Latin-1 bytes stand for themselves, the
/// rest are shifted to U+0100 and above.
enum ByteMap {
    static let byteToChar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable { table[b] = Unicode.Scalar(UInt32(b))! } else { table[b] = Unicode.Scalar(256 + n)!; n += 1 }
        }
        return table
    }()
    static let charToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { m[c.value] = UInt8(b) }
        return m
    }()
}

public struct ByteLevelBPE: TokenizerModel {
    let vocab: Vocabulary
    /// (left id, right id) packed → (rank, merged id).
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let byteIDs: [Int32]
    /// Llama 3 looks a whole word up before merging (`ignore_merges`).
    let ignoreMerges: Bool

    public init(vocab: Vocabulary, merges: [String], ignoreMerges: Bool) throws(TokenizerError) {
        self.vocab = vocab
        self.ignoreMerges = ignoreMerges
        var m: [UInt64: (rank: Int32, id: Int32)] = [:]
        m.reserveCapacity(merges.count)
        for (rank, line) in merges.enumerated() {
            guard let sp = line.firstIndex(of: " ", after: 1) else {
                throw .badMerge(index: rank, text: line)
            }
            let a = String(line[..<sp]), b = String(line[line.index(after: sp)...])
            guard let ia = vocab.ids[a], let ib = vocab.ids[b], let ic = vocab.ids[a + b] else { continue }
            let key = UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib))
            if m[key] == nil { m[key] = (Int32(rank), ic) }
        }
        self.merges = m
        byteIDs = ByteMap.byteToChar.map { vocab.ids[String($0)] ?? -1 }
    }

    public func encode(word: String, into out: inout [Int]) {
        let bytes = Array(word.utf8)
        if ignoreMerges {
            var mapped = String.UnicodeScalarView()
            for b in bytes { mapped.append(ByteMap.byteToChar[Int(b)]) }
            if let id = vocab.ids[String(mapped)] { out.append(Int(id)); return }
        }
        var syms: [Int32] = bytes.map { byteIDs[Int($0)] }.filter { $0 >= 0 }
        while syms.count > 1 {
            var best = Int32.max, at = -1, merged: Int32 = 0
            for i in 0..<(syms.count - 1) {
                let key = UInt64(UInt32(syms[i])) << 32 | UInt64(UInt32(syms[i + 1]))
                if let m = merges[key], m.rank < best { best = m.rank; at = i; merged = m.id }
            }
            if at < 0 { break }
            syms[at] = merged
            syms.remove(at: at + 1)
        }
        for s in syms { out.append(Int(s)) }
    }

    public func bytes(of id: Int) -> [UInt8] {
        var out: [UInt8] = []
        for c in vocab.tokens[id].unicodeScalars {
            if let b = ByteMap.charToByte[c.value] { out.append(b) } else { out.append(contentsOf: Array(String(c).utf8)) }
        }
        return out
    }
}

extension String {
    /// First index of `c` at or after character offset `after` (merge lines like "Ġ Ġ" split at the second space).
    func firstIndex(of c: Character, after: Int) -> String.Index? {
        guard let start = index(startIndex, offsetBy: after, limitedBy: endIndex) else { return nil }
        return self[start...].firstIndex(of: c)
    }
}
