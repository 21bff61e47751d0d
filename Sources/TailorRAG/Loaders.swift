// Loaders: one per file type, each turning a file into Documents whose blocks keep the file's
// structure. `Loaders.load` picks by extension.
import Foundation
import TailorFormats

public struct LoaderOptions: Sendable {
    /// JSON/JSONL: the field holding the text (default: the first of text, content, body,
    /// abstract, passage, document, description present in the record).
    public var textField: String?
    /// JSON/JSONL: the field used as the record's id in its key (default: _id, id, uuid, or the line).
    public var idField: String?
    public init(textField: String? = nil, idField: String? = nil) { self.textField = textField; self.idField = idField }
}

public protocol Loader {
    func load(_ url: URL, options: LoaderOptions) throws -> [Document]
}

public enum Loaders {
    public static func loader(for type: DocumentType) -> any Loader {
        switch type {
        case .text: return PlainTextLoader()
        case .markdown: return MarkdownLoader()
        case .html: return HTMLLoader()
        case .pdf: return PDFLoader()
        case .docx: return DOCXLoader()
        case .csv: return CSVLoader(separator: ",")
        case .tsv: return CSVLoader(separator: "\t")
        case .json, .jsonl: return JSONLoader()
        }
    }

    /// Loads one file by its extension.
    public static func load(_ path: String, options: LoaderOptions = .init()) throws -> [Document] {
        guard let type = DocumentType(path: path) else { throw RAGError.unsupportedType(path: path) }
        return try loader(for: type).load(URL(fileURLWithPath: path), options: options)
    }

    static func read(_ url: URL) throws -> Data {
        do { return try Data(contentsOf: url, options: .mappedIfSafe) }
        catch { throw RAGError.unreadable(path: url.path, reason: (error as NSError).localizedDescription) }
    }

    static func readText(_ url: URL) throws -> (String, [String]) {
        let d = try TextDecoding.decode(read(url), path: url.path)
        return (TextDecoding.normalizeNewlines(d.text), d.note.map { [$0] } ?? [])
    }
}

/// Paragraphs of a text, split at blank lines.
func paragraphs(_ text: String) -> [String] {
    var out: [String] = [], cur: [Substring] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.allSatisfy(\.isWhitespace) { if !cur.isEmpty { out.append(cur.joined(separator: "\n")); cur = [] } }
        else { cur.append(line) }
    }
    if !cur.isEmpty { out.append(cur.joined(separator: "\n")) }
    return out
}

public struct PlainTextLoader: Loader {
    public init() {}
    public func load(_ url: URL, options: LoaderOptions) throws -> [Document] {
        let (text, notes) = try Loaders.readText(url)
        return [Document(path: url.path, type: .text, blocks: paragraphs(text).map { Block(.paragraph, $0) }, notes: notes)]
    }
}

/// CommonMark's block structure as far as retrieval needs it: ATX and setext headings, fenced
/// code, list items, table rows, paragraphs, and YAML front matter as metadata. Links and images
/// keep their text.
public struct MarkdownLoader: Loader {
    public init() {}
    public func load(_ url: URL, options: LoaderOptions) throws -> [Document] {
        let (text, notes) = try Loaders.readText(url)
        let (blocks, meta, title) = Self.parse(text)
        return [Document(path: url.path, type: .markdown, title: title, blocks: blocks, metadata: meta, notes: notes)]
    }

    static func parse(_ text: String) -> ([Block], [String: String], String?) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var meta: [String: String] = [:]
        if lines.first?.trimmingCharacters(in: .whitespaces) == "---",
           let close = lines.dropFirst().firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "---" || $0 == "..." }) {
            for l in lines[1..<close] {
                if let c = l.firstIndex(of: ":") {
                    let k = l[..<c].trimmingCharacters(in: .whitespaces)
                    var v = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
                    if v.count >= 2, let f = v.first, f == "\"" || f == "'", v.last == f { v = String(v.dropFirst().dropLast()) }
                    if !k.isEmpty && !v.isEmpty { meta[k] = v }
                }
            }
            lines.removeSubrange(0...close)
        }
        var blocks: [Block] = []
        var path: [(level: Int, text: String)] = []
        var para: [String] = []
        var kind = Block.Kind.paragraph
        var fence: String? = nil
        var title: String? = meta["title"]
        func headingPath() -> [String] { path.map(\.text) }
        func flush() {
            if !para.isEmpty {
                blocks.append(Block(kind, inline(para.joined(separator: "\n")), headingPath: headingPath()))
                para = []
            }
            kind = .paragraph
        }
        func heading(_ level: Int, _ t: String) {
            flush()
            let t = inline(t)
            while let last = path.last, last.level >= level { path.removeLast() }
            path.append((level, t))
            if level == 1 && title == nil { title = t }
            blocks.append(Block(.heading, t, headingPath: headingPath()))
        }
        var i = 0
        while i < lines.count {
            let line = lines[i]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            defer { i += 1 }
            if let f = fence {
                if trimmed.hasPrefix(f) && trimmed.allSatisfy({ $0 == f.first }) { flush() ; fence = nil }
                else { para.append(line) }
                continue
            }
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                flush(); fence = String(trimmed.prefix(while: { $0 == trimmed.first })); kind = .code
                continue
            }
            if trimmed.isEmpty { flush(); continue }
            if trimmed.hasPrefix("#") {
                let hashes = trimmed.prefix(while: { $0 == "#" }).count
                let rest = trimmed.dropFirst(hashes)
                if hashes <= 6 && (rest.isEmpty || rest.first == " " || rest.first == "\t") {
                    var t = rest.trimmingCharacters(in: .whitespaces)
                    while t.hasSuffix("#") { t.removeLast() }
                    heading(hashes, t.trimmingCharacters(in: .whitespaces))
                    continue
                }
            }
            // Setext underline: a paragraph line followed by === or ---.
            if !para.isEmpty && kind == .paragraph && !trimmed.isEmpty,
               trimmed.allSatisfy({ $0 == "=" }) || (trimmed.allSatisfy({ $0 == "-" }) && trimmed.count >= 2) {
                let t = para.joined(separator: " ")
                para = []
                heading(trimmed.first == "=" ? 1 : 2, t)
                continue
            }
            if trimmed.hasPrefix("|") {
                let cells = trimmed.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
                if cells.allSatisfy({ !$0.isEmpty && $0.allSatisfy { ":- ".contains($0) } }) { continue }  // |---|:--|
                flush()
                blocks.append(Block(.row, inline(cells.filter { !$0.isEmpty }.joined(separator: " | ")), headingPath: headingPath()))
                continue
            }
            if isListItem(trimmed) { flush(); kind = .listItem; para.append(trimmed); continue }
            if kind == .code { flush() }
            para.append(kind == .listItem ? trimmed : line)
        }
        flush()
        return (blocks, meta, title)
    }

    static func isListItem(_ t: String) -> Bool {
        if t.hasPrefix("- ") || t.hasPrefix("* ") || t.hasPrefix("+ ") { return true }
        let digits = t.prefix(while: \.isNumber)
        guard !digits.isEmpty, digits.count <= 9 else { return false }
        let rest = t.dropFirst(digits.count)
        return rest.hasPrefix(". ") || rest.hasPrefix(") ")
    }

    /// `![alt](src)` → alt, `[text](url)` → text.
    static func inline(_ s: String) -> String {
        guard s.contains("](") else { return s }
        var out = "", i = s.startIndex
        while i < s.endIndex {
            let isImage = s[i] == "!" && s.index(after: i) < s.endIndex && s[s.index(after: i)] == "["
            let open = isImage ? s.index(after: i) : i
            if s[open] == "[", let close = s[open...].firstIndex(of: "]"),
               s.index(after: close) < s.endIndex, s[s.index(after: close)] == "(",
               let paren = s[close...].firstIndex(of: ")") {
                out += s[s.index(after: open)..<close]
                i = s.index(after: paren)
                continue
            }
            out.append(s[i]); i = s.index(after: i)
        }
        return out
    }
}

/// CSV (RFC 4180: quoted fields, doubled quotes, newlines inside quotes) and TSV. The first row
/// names the columns; every other row becomes a block "column: value; column: value".
public struct CSVLoader: Loader {
    public let separator: Character
    public init(separator: Character) { self.separator = separator }

    public func load(_ url: URL, options: LoaderOptions) throws -> [Document] {
        let (text, notes) = try Loaders.readText(url)
        let rows = try Self.parse(text, separator: separator, path: url.path)
        guard let header = rows.first else {
            return [Document(path: url.path, type: separator == "," ? .csv : .tsv, blocks: [], notes: notes)]
        }
        let names = header.fields.enumerated().map { $0.element.trimmingCharacters(in: .whitespaces).isEmpty ? "column \($0.offset + 1)" : $0.element.trimmingCharacters(in: .whitespaces) }
        var blocks: [Block] = []
        for (n, r) in rows.dropFirst().enumerated() {
            if r.fields.count > names.count {
                throw RAGError.badRecord(path: url.path, line: r.line, detail: "row has \(r.fields.count) fields but the header names \(names.count); quote fields that contain \"\(separator == "\t" ? "\\t" : String(separator))\"")
            }
            let parts = zip(names, r.fields).compactMap { name, v -> String? in
                let v = v.trimmingCharacters(in: .whitespacesAndNewlines)
                return v.isEmpty ? nil : "\(name): \(v)"
            }
            if parts.isEmpty { continue }
            blocks.append(Block(.row, parts.joined(separator: "; "), row: n + 1))
        }
        return [Document(path: url.path, type: separator == "," ? .csv : .tsv, blocks: blocks,
                         metadata: ["columns": names.joined(separator: ", ")], notes: notes)]
    }

    struct Row { var fields: [String]; var line: Int }

    static func parse(_ text: String, separator: Character, path: String) throws -> [Row] {
        var rows: [Row] = [], fields: [String] = [], field = ""
        var inQuotes = false, line = 1, rowLine = 1, quoteLine = 1, fieldStarted = false
        var it = text.makeIterator()
        var pending: Character? = nil
        func endRow() {
            fields.append(field); field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { rows.append(Row(fields: fields, line: rowLine)) }
            fields = []
        }
        while let c = pending ?? it.next() {
            pending = nil
            if inQuotes {
                if c == "\"" {
                    if let n = it.next() {
                        if n == "\"" { field.append("\"") } else { inQuotes = false; pending = n }
                    } else { inQuotes = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"" where !fieldStarted || field.isEmpty: inQuotes = true; quoteLine = line; fieldStarted = true
            case separator: fields.append(field); field = ""; fieldStarted = false
            case "\n": endRow(); line += 1; rowLine = line; fieldStarted = false
            default: field.append(c); fieldStarted = true
            }
        }
        if inQuotes { throw RAGError.badRecord(path: path, line: quoteLine, detail: "a quoted field is never closed; add the missing \"") }
        if !field.isEmpty || !fields.isEmpty { endRow() }
        return rows
    }
}

/// JSON (an array of objects, or one object) and JSONL (one object per line). Each record is a
/// document keyed `path#id`; its text field is the text, a title field the heading, other
/// scalar fields the metadata.
public struct JSONLoader: Loader {
    public init() {}
    static let textFields = ["text", "content", "body", "abstract", "passage", "document", "description", "answer"]
    static let idFields = ["_id", "id", "uuid", "doc_id", "docid"]

    public func load(_ url: URL, options: LoaderOptions) throws -> [Document] {
        let (text, notes) = try Loaders.readText(url)
        var records: [(JSONValue, Int)] = []
        if url.pathExtension.lowercased() == "json" {
            let v: JSONValue
            do { v = try JSONValue.parse(text) }
            catch { throw RAGError.badRecord(path: url.path, line: 1, detail: "not valid JSON (\(error)); a JSON file holds one object or an array of objects") }
            if let a = v.array { records = a.map { ($0, 0) } } else { records = [(v, 0)] }
        } else {
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let l = line.trimmingCharacters(in: .whitespaces)
                if l.isEmpty { continue }
                do { records.append((try JSONValue.parse(l), i + 1)) }
                catch { throw RAGError.badRecord(path: url.path, line: i + 1, detail: "not valid JSON (\(error)); JSONL needs one JSON object per line") }
            }
        }
        var docs: [Document] = []
        var seen: Set<String> = []
        for (n, (rec, line)) in records.enumerated() {
            let where_ = line > 0 ? line : n + 1
            guard case .object(let pairs) = rec else {
                throw RAGError.badRecord(path: url.path, line: where_, detail: "a record must be a JSON object, e.g. {\"text\": \"...\"}")
            }
            let keys = pairs.map(\.0)
            let tf = options.textField ?? Self.textFields.first(where: { f in keys.contains(f) && rec[f]?.string != nil })
            guard let tf, let body = rec[tf].flatMap(Self.scalar) else {
                if let f = options.textField {
                    throw RAGError.badRecord(path: url.path, line: where_, detail: "record has no field '\(f)' (fields: \(keys.joined(separator: ", ")))")
                }
                throw RAGError.noTextField(path: url.path, line: where_, fields: keys)
            }
            let idf = options.idField ?? Self.idFields.first(where: keys.contains)
            var id = idf.flatMap { rec[$0] }.flatMap(Self.scalar) ?? (line > 0 ? "L\(line)" : "\(n + 1)")
            if seen.contains(id) { id += "@\(where_)" }
            seen.insert(id)
            let title = rec["title"]?.string.flatMap { $0.isEmpty ? nil : $0 }
            var meta: [String: String] = [:]
            for (k, v) in pairs where k != tf && k != "title" {
                if let s = Self.scalar(v) { meta[k] = s }
            }
            var blocks: [Block] = []
            if let title { blocks.append(Block(.heading, title, headingPath: [title])) }
            for p in paragraphs(TextDecoding.normalizeNewlines(body)) {
                blocks.append(Block(.paragraph, p, headingPath: title.map { [$0] } ?? []))
            }
            if line > 0 { meta["line"] = String(line) }
            docs.append(Document(path: url.path, key: url.path + "#" + id, type: url.pathExtension.lowercased() == "json" ? .json : .jsonl,
                                 title: title, blocks: blocks, metadata: meta, notes: n == 0 ? notes : []))
        }
        return docs
    }

    static func scalar(_ v: JSONValue) -> String? {
        switch v {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }
}
