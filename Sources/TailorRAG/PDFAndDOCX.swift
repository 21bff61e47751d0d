// PDF through poppler-glib (text per page; lines joined into paragraphs, hyphenation undone)
// and DOCX (a ZIP of WordprocessingML) through ZIPFoundation and Foundation's XMLParser.
import CPoppler
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import ZIPFoundation

public struct PDFLoader: Loader {
    public init() {}

    public func load(_ url: URL, options: LoaderOptions) throws -> [Document] {
        let path = url.path
        guard FileManager.default.isReadableFile(atPath: path) else { throw RAGError.unreadable(path: path, reason: "no such file or not readable") }
        var err: UnsafeMutablePointer<GError>? = nil
        guard let uri = g_filename_to_uri(path, nil, &err) else {
            defer { if err != nil { g_error_free(err) } }
            throw RAGError.pdf(path: path, detail: err.map { String(cString: $0.pointee.message) } ?? "bad path")
        }
        defer { g_free(uri) }
        guard let doc = poppler_document_new_from_file(uri, nil, &err) else {
            let msg = err.map { String(cString: $0.pointee.message) } ?? "unknown error"
            if err != nil { g_error_free(err) }
            throw RAGError.pdf(path: path, detail: msg)
        }
        defer { g_object_unref(UnsafeMutableRawPointer(doc)) }
        func prop(_ f: (OpaquePointer?) -> UnsafeMutablePointer<gchar>?) -> String? {
            guard let p = f(doc) else { return nil }
            defer { g_free(p) }
            let s = String(cString: p).trimmingCharacters(in: .whitespacesAndNewlines)
            return s.isEmpty ? nil : s
        }
        var meta: [String: String] = [:]
        let title = prop(poppler_document_get_title)
        if let a = prop(poppler_document_get_author) { meta["author"] = a }
        if let s = prop(poppler_document_get_subject) { meta["subject"] = s }
        let n = Int(poppler_document_get_n_pages(doc))
        meta["pages"] = String(n)
        var blocks: [Block] = []
        for p in 0..<n {
            guard let page = poppler_document_get_page(doc, Int32(p)) else { continue }
            defer { g_object_unref(UnsafeMutableRawPointer(page)) }
            guard let t = poppler_page_get_text(page) else { continue }
            let text = String(cString: t)
            g_free(t)
            for para in Self.paragraphs(fromPageText: text) {
                blocks.append(Block(.paragraph, para, page: p + 1))
            }
        }
        var notes: [String] = []
        if n > 0 && blocks.isEmpty { notes.append("no text layer (a scanned PDF needs OCR first)") }
        return [Document(path: path, type: .pdf, title: title, blocks: blocks, metadata: meta, notes: notes)]
    }

    /// Joins a page's lines into paragraphs: a blank line, or a short line ending a sentence,
    /// ends a paragraph; a line ending in a hyphen before a lower-case word is re-joined.
    static func paragraphs(fromPageText text: String) -> [String] {
        let lines = TextDecoding.normalizeNewlines(text).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let lengths = lines.map(\.count).filter { $0 > 0 }.sorted()
        let typical = lengths.isEmpty ? 0 : lengths[lengths.count * 3 / 4]
        var out: [String] = [], cur = ""
        for (i, line) in lines.enumerated() {
            if line.isEmpty { if !cur.isEmpty { out.append(cur); cur = "" }; continue }
            if cur.isEmpty { cur = line }
            else if cur.hasSuffix("-"), let f = line.first, f.isLowercase { cur.removeLast(); cur += line }
            else { cur += " " + line }
            let endsSentence = line.last.map { ".:!?".contains($0) } ?? false
            let nextIsLast = i + 1 >= lines.count
            if !nextIsLast && endsSentence && Double(line.count) < Double(typical) * 0.7 { out.append(cur); cur = "" }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }
}

public struct DOCXLoader: Loader {
    public init() {}

    public func load(_ url: URL, options: LoaderOptions) throws -> [Document] {
        let path = url.path
        guard FileManager.default.isReadableFile(atPath: path) else { throw RAGError.unreadable(path: path, reason: "no such file or not readable") }
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) }
        catch { throw RAGError.docx(path: path, detail: "not a ZIP archive") }
        func entry(_ name: String) throws -> Data? {
            guard let e = archive[name] else { return nil }
            var data = Data()
            do { _ = try archive.extract(e) { data.append($0) } }
            catch { throw RAGError.docx(path: path, detail: "cannot unpack \(name): \(error)") }
            return data
        }
        guard let body = try entry("word/document.xml") else {
            throw RAGError.docx(path: path, detail: "no word/document.xml inside; is it a .doc or another ZIP renamed?")
        }
        var levels: [String: Int] = [:], listStyles: Set<String> = []
        if let styles = try entry("word/styles.xml") { (levels, listStyles) = StyleLevels.parse(styles) }
        let parser = BodyParser(levels: levels, listStyles: listStyles)
        guard parser.parse(body) else { throw RAGError.docx(path: path, detail: "word/document.xml is not well-formed XML: \(parser.error ?? "")") }
        var meta: [String: String] = [:]
        if let core = try entry("docProps/core.xml") { meta = CoreProperties.parse(core) }
        let title = meta.removeValue(forKey: "title") ?? parser.blocks.first(where: { $0.kind == .heading })?.text
        return [Document(path: path, type: .docx, title: title, blocks: parser.blocks, metadata: meta)]
    }

    /// styles.xml: style id → heading level ("heading N" by name, or an outline level).
    final class StyleLevels: NSObject, XMLParserDelegate {
        var levels: [String: Int] = [:]
        var lists: Set<String> = []
        var current: String?
        static func parse(_ d: Data) -> ([String: Int], Set<String>) {
            let s = StyleLevels(), p = XMLParser(data: d)
            p.delegate = s
            _ = p.parse()
            return (s.levels, s.lists)
        }
        func parser(_ parser: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName q: String?, attributes a: [String: String]) {
            switch e {
            case "w:style": current = a["w:styleId"]
            case "w:name":
                guard let id = current, let v = a["w:val"]?.lowercased() else { return }
                if v.hasPrefix("list") { lists.insert(id) }
                if v == "title" { levels[id] = 1 }
                else if v.hasPrefix("heading "), let n = Int(v.dropFirst(8)) { levels[id] = n + 1 }
            case "w:outlineLvl":
                if let id = current, levels[id] == nil, let n = a["w:val"].flatMap(Int.init), n < 9 { levels[id] = n + 2 }
            default: break
            }
        }
    }

    final class CoreProperties: NSObject, XMLParserDelegate {
        var meta: [String: String] = [:]
        var text = ""
        static func parse(_ d: Data) -> [String: String] {
            let s = CoreProperties(), p = XMLParser(data: d)
            p.delegate = s
            _ = p.parse()
            return s.meta
        }
        func parser(_ parser: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName q: String?, attributes a: [String: String]) { text = "" }
        func parser(_ parser: XMLParser, foundCharacters s: String) { text += s }
        func parser(_ parser: XMLParser, didEndElement e: String, namespaceURI: String?, qualifiedName q: String?) {
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !t.isEmpty else { return }
            switch e {
            case "dc:title": meta["title"] = t
            case "dc:creator": meta["author"] = t
            case "dc:subject": meta["subject"] = t
            case "cp:keywords": meta["keywords"] = t
            case "dc:description": meta["description"] = t
            default: break
            }
        }
    }

    /// document.xml: paragraphs (headings by style), list items, table rows.
    final class BodyParser: NSObject, XMLParserDelegate {
        let levels: [String: Int]
        let listStyles: Set<String>
        var blocks: [Block] = []
        var error: String?
        var path: [(level: Int, text: String)] = []
        var para = ""
        var inText = false
        var style: String?
        var isList = false
        var tableDepth = 0
        var cell = ""
        var cells: [String] = []

        init(levels: [String: Int], listStyles: Set<String>) { self.levels = levels; self.listStyles = listStyles }

        func parse(_ d: Data) -> Bool {
            let p = XMLParser(data: d)
            p.delegate = self
            let ok = p.parse()
            if !ok { error = p.parserError.map { "\($0)" } ?? "line \(p.lineNumber)" }
            return ok
        }

        func parser(_ parser: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName q: String?, attributes a: [String: String]) {
            switch e {
            case "w:p": para = ""; style = nil; isList = false
            case "w:pStyle": style = a["w:val"]
            case "w:numPr": isList = true
            case "w:t": inText = true
            case "w:tab": para += "\t"
            case "w:br", "w:cr": para += "\n"
            case "w:tbl": tableDepth += 1
            case "w:tr" where tableDepth == 1: cells = []
            case "w:tc" where tableDepth == 1: cell = ""
            default: break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters s: String) { if inText { para += s } }

        func parser(_ parser: XMLParser, didEndElement e: String, namespaceURI: String?, qualifiedName q: String?) {
            switch e {
            case "w:t": inText = false
            case "w:p":
                let t = para.trimmingCharacters(in: .whitespacesAndNewlines)
                para = ""
                guard !t.isEmpty else { return }
                if tableDepth > 0 { cell += (cell.isEmpty ? "" : " ") + t; return }
                if let s = style, let level = levels[s] ?? Self.builtinLevel(s) {
                    while let last = path.last, last.level >= level { path.removeLast() }
                    path.append((level, t))
                    blocks.append(Block(.heading, t, headingPath: path.map(\.text)))
                } else {
                    blocks.append(Block(isList || style.map(listStyles.contains) == true ? .listItem : .paragraph, t, headingPath: path.map(\.text)))
                }
            case "w:tc" where tableDepth == 1: cells.append(cell.trimmingCharacters(in: .whitespacesAndNewlines))
            case "w:tr" where tableDepth == 1:
                let row = cells.filter { !$0.isEmpty }
                if !row.isEmpty { blocks.append(Block(.row, row.joined(separator: " | "), headingPath: path.map(\.text))) }
            case "w:tbl": tableDepth -= 1
            default: break
            }
        }

        /// Word's built-in style ids when styles.xml is missing: Title, Heading1…Heading9.
        static func builtinLevel(_ s: String) -> Int? {
            let l = s.lowercased()
            if l == "title" { return 1 }
            if l.hasPrefix("heading"), let n = Int(l.dropFirst(7)) { return n + 1 }
            return nil
        }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { error = "\(parseError) at line \(parser.lineNumber)" }
    }
}
