// What a loader makes of a file: clean text in blocks that keep the file's structure (headings,
// pages, table rows), so that chunks can say exactly where they came from.
import Foundation

/// The kinds of file Tailor reads.
public enum DocumentType: String, Sendable, CaseIterable, Codable {
    case text, markdown, html, pdf, docx, csv, tsv, json, jsonl

    /// The type for a file name, by extension; nil when Tailor has no loader for it.
    public init?(path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "txt", "text", "log", "rst": self = .text
        case "md", "markdown", "mdown", "mkd": self = .markdown
        case "html", "htm", "xhtml": self = .html
        case "pdf": self = .pdf
        case "docx": self = .docx
        case "csv": self = .csv
        case "tsv", "tab": self = .tsv
        case "json": self = .json
        case "jsonl", "ndjson": self = .jsonl
        default: return nil
        }
    }
}

/// One structural piece of a document: a heading, a paragraph, a list item, a table row, a
/// code block. Offsets are in Unicode scalars (code points, as Python's `str` counts) into
/// `Document.text`.
public struct Block: Sendable, Equatable {
    public enum Kind: String, Sendable { case heading, paragraph, listItem, row, code }
    public var kind: Kind
    public var text: String
    /// Headings above this block, outermost first (a heading block's own path ends with itself).
    public var headingPath: [String]
    /// 1-based page (PDF).
    public var page: Int?
    /// 1-based data row (CSV/TSV), or 1-based line (JSONL records).
    public var row: Int?
    public var start: Int = 0
    public var end: Int = 0

    public init(_ kind: Kind, _ text: String, headingPath: [String] = [], page: Int? = nil, row: Int? = nil) {
        self.kind = kind; self.text = text; self.headingPath = headingPath; self.page = page; self.row = row
    }
}

/// A loaded document. `text` is the blocks joined by blank lines; every block's `start..<end`
/// is its exact span in `text`.
public struct Document: Sendable {
    /// The file it came from (absolute path).
    public var path: String
    /// Unique key in a collection: the path, or `path#id` for one record of a JSON/JSONL file.
    public var key: String
    public var type: DocumentType
    public var title: String?
    public var blocks: [Block]
    public var text: String
    /// Everything else known about the document (JSON fields, PDF/DOCX properties, front matter).
    public var metadata: [String: String]
    /// Things the user should know (e.g. "decoded as windows-1252").
    public var notes: [String]

    public init(path: String, key: String? = nil, type: DocumentType, title: String? = nil,
                blocks: [Block], metadata: [String: String] = [:], notes: [String] = []) {
        self.path = path; self.key = key ?? path; self.type = type; self.title = title
        self.metadata = metadata; self.notes = notes
        var text = "", offset = 0
        var placed: [Block] = []
        for var b in blocks {
            let t = b.text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !t.isEmpty else { continue }
            if !placed.isEmpty { text += "\n\n"; offset += 2 }
            b.text = t
            b.start = offset
            offset += t.unicodeScalars.count
            b.end = offset
            text += t
            placed.append(b)
        }
        self.blocks = placed
        self.text = text
    }

    /// A hash of what the document says (text, structure, metadata): re-embedding is needed
    /// exactly when it changes.
    public var contentHash: String {
        var h = StableHash()
        h.add(type.rawValue); h.add(title ?? "")
        for b in blocks { h.add(b.kind.rawValue); h.add(b.text); h.add(b.headingPath.joined(separator: "\u{1}")); h.add("\(b.page ?? 0),\(b.row ?? 0)") }
        for k in metadata.keys.sorted() { h.add(k); h.add(metadata[k]!) }
        return h.hex
    }
}

/// 128-bit FNV-1a-style hash (two independent 64-bit lanes) for change detection — not for
/// security. Stable across runs and machines.
public struct StableHash {
    private var a: UInt64 = 0xcbf2_9ce4_8422_2325
    private var b: UInt64 = 0x8422_2325_cbf2_9ce4
    public init() {}
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for x in bytes {
            a = (a ^ UInt64(x)) &* 0x0000_0100_0000_01b3
            b = (b ^ UInt64(x)) &* 0x0000_0001_0000_01b3 &+ 0x9e37_79b9
        }
    }
    public mutating func add(_ s: String) {
        var s = s
        s.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: UInt8(0xff)) { add($0) }
    }
    public mutating func add(_ d: Data) { d.withUnsafeBytes { add($0) } }
    public var hex: String { String(format: "%016llx%016llx", a, b) }
}

extension String {
    /// The substring at Unicode-scalar offsets `start..<end`.
    public func scalarSlice(_ start: Int, _ end: Int) -> String {
        let s = unicodeScalars
        let i = s.index(s.startIndex, offsetBy: start), j = s.index(i, offsetBy: end - start)
        return String(s[i..<j])
    }
}
