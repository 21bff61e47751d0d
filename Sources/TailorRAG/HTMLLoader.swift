// HTML to structured text: headings, paragraphs, list items and table rows, with boilerplate
// dropped — scripts, styles, navigation, page headers and footers, sidebars, forms, and
// elements whose role, id or class says they are navigation, menus, banners or cookie notices.
// A tolerant scanner (HTML in the wild is rarely well-formed), not a validating parser.
import Foundation

public struct HTMLLoader: Loader {
    public init() {}

    public func load(_ url: URL, options: LoaderOptions) throws -> [Document] {
        let (text, notes) = try Loaders.readText(url)
        let page = HTMLText.extract(text)
        return [Document(path: url.path, type: .html, title: page.title, blocks: page.blocks, metadata: page.metadata, notes: notes)]
    }
}

public enum HTMLText {
    public struct Page { public var title: String?; public var blocks: [Block]; public var metadata: [String: String] }

    static let rawText: Set<String> = ["script", "style", "textarea", "title", "xmp"]
    static let dropped: Set<String> = ["script", "style", "noscript", "template", "svg", "nav", "footer", "aside",
                                       "form", "iframe", "button", "select", "menu", "dialog", "object", "canvas"]
    static let void: Set<String> = ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                                    "param", "source", "track", "wbr"]
    static let blockTags: Set<String> = ["p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd",
                                         "table", "thead", "tbody", "tfoot", "tr", "pre", "blockquote", "figure",
                                         "figcaption", "caption", "address", "details", "summary", "body", "html",
                                         "h1", "h2", "h3", "h4", "h5", "h6", "hr", "center", "fieldset", "legend"]
    static let boilerplateWords = ["nav", "menu", "breadcrumb", "cookie", "sidebar", "footer", "banner", "share", "social", "advert", "skip-link", "popup", "newsletter"]

    public static func extract(_ html: String) -> Page {
        var s = Scanner(Array(html.unicodeScalars))
        var blocks: [Block] = []
        var title: String? = nil
        var meta: [String: String] = [:]
        var path: [(level: Int, text: String)] = []
        var buf = ""
        var kind = Block.Kind.paragraph
        var headingLevel = 0
        var preDepth = 0, articleDepth = 0
        var rowCells: [String]? = nil

        func flush() {
            let t = collapse(buf, keepLines: preDepth > 0 || kind == .code)
            buf = ""
            defer { kind = .paragraph }
            guard !t.isEmpty else { return }
            if rowCells != nil && kind != .heading { rowCells!.append(t); return }
            if headingLevel > 0 {
                while let last = path.last, last.level >= headingLevel { path.removeLast() }
                path.append((headingLevel, t))
                blocks.append(Block(.heading, t, headingPath: path.map(\.text)))
                headingLevel = 0
            } else {
                blocks.append(Block(kind, t, headingPath: path.map(\.text)))
            }
        }

        while !s.atEnd {
            if s.peek == "<" {
                guard let tag = s.tag() else { buf.unicodeScalars.append(s.next()); continue }
                if tag.isComment { continue }
                let name = tag.name
                if tag.closing {
                    if name == "pre" { flush(); preDepth = max(0, preDepth - 1) }
                    else if name == "article" || name == "main" { flush(); articleDepth = max(0, articleDepth - 1) }
                    else if name == "tr", let cells = rowCells {
                        flush()
                        rowCells = nil
                        if !cells.isEmpty { blocks.append(Block(.row, cells.joined(separator: " | "), headingPath: path.map(\.text))) }
                    } else if name == "td" || name == "th" { flush() }
                    else if blockTags.contains(name) { flush() }
                    continue
                }
                if name == "title" {
                    let t = collapse(decodeEntities(s.rawText(until: "title")), keepLines: false)
                    if title == nil && !t.isEmpty { title = t }
                    continue
                }
                if name == "meta", let n = tag.attributes["name"]?.lowercased(), let c = tag.attributes["content"], !c.isEmpty,
                   ["description", "author", "keywords"].contains(n) {
                    meta[n] = decodeEntities(c)
                    continue
                }
                if rawText.contains(name) { _ = s.rawText(until: name); continue }
                let roleOrClass = ((tag.attributes["role"] ?? "") + " " + (tag.attributes["id"] ?? "") + " " + (tag.attributes["class"] ?? "")).lowercased()
                let boiler = dropped.contains(name) || (name == "header" && articleDepth == 0) ||
                    (!roleOrClass.trimmingCharacters(in: .whitespaces).isEmpty && tag.attributes["role"] != "main" && name != "body" && name != "html" && name != "main" && name != "article" &&
                     boilerplateWords.contains { w in roleOrClass.split(whereSeparator: { " -_".contains($0) }).contains { $0 == w } || roleOrClass.contains(" \(w)-") || roleOrClass.hasPrefix("\(w)-") })
                if boiler && !void.contains(name) && !tag.selfClosing { s.skipElement(name); continue }
                if boiler { continue }
                switch name {
                case "br": buf += "\n"
                case "h1", "h2", "h3", "h4", "h5", "h6":
                    flush(); headingLevel = Int(String(name.dropFirst()))!; kind = .heading
                case "li": flush(); kind = .listItem
                case "pre": flush(); preDepth += 1; kind = .code
                case "article", "main": flush(); articleDepth += 1
                case "tr": flush(); rowCells = []
                case "td", "th": flush()
                case "img":
                    if let alt = tag.attributes["alt"], !alt.isEmpty { buf += " " + decodeEntities(alt) + " " }
                default:
                    if blockTags.contains(name) { flush() }
                }
                continue
            }
            if s.peek == "&" { buf += s.entity(); continue }
            buf.unicodeScalars.append(s.next())
        }
        flush()
        if let cells = rowCells, !cells.isEmpty { blocks.append(Block(.row, cells.joined(separator: " | "), headingPath: path.map(\.text))) }
        return Page(title: title, blocks: blocks, metadata: meta)
    }

    /// Collapses runs of whitespace to one space (inside <pre>, keeps line breaks and indentation).
    static func collapse(_ s: String, keepLines: Bool) -> String {
        if keepLines {
            let lines = s.split(separator: "\n", omittingEmptySubsequences: false).map { String($0.reversed().drop(while: \.isWhitespace).reversed()) }
            return lines.joined(separator: "\n").trimmingCharacters(in: .newlines)
        }
        var out = String.UnicodeScalarView(), space = false
        for u in s.unicodeScalars {
            if u == "\n" && !out.isEmpty && out.last != "\n" {
                // <br> line breaks survive as newlines; other whitespace collapses.
                if out.last == " " { out.removeLast() }
                out.append("\n"); space = false; continue
            }
            if u.properties.isWhitespace { space = true; continue }
            if space && !out.isEmpty && out.last != "\n" { out.append(" ") }
            space = false
            out.append(u)
        }
        return String(out).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let entities: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{a0}", "ndash": "–", "mdash": "—",
        "hellip": "…", "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”", "laquo": "«", "raquo": "»",
        "copy": "©", "reg": "®", "trade": "™", "deg": "°", "plusmn": "±", "times": "×", "divide": "÷", "middot": "·",
        "bull": "•", "euro": "€", "pound": "£", "yen": "¥", "cent": "¢", "sect": "§", "para": "¶", "micro": "µ",
        "eacute": "é", "egrave": "è", "ecirc": "ê", "aacute": "á", "agrave": "à", "acirc": "â", "auml": "ä",
        "ouml": "ö", "uuml": "ü", "Auml": "Ä", "Ouml": "Ö", "Uuml": "Ü", "szlig": "ß", "ccedil": "ç", "ntilde": "ñ",
        "iacute": "í", "oacute": "ó", "uacute": "ú", "alpha": "α", "beta": "β", "gamma": "γ", "mu": "μ", "pi": "π",
        "le": "≤", "ge": "≥", "ne": "≠", "rarr": "→", "larr": "←", "shy": "\u{ad}", "zwj": "\u{200d}", "thinsp": "\u{2009}",
    ]

    static func decodeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var sc = Scanner(Array(s.unicodeScalars))
        var out = ""
        while !sc.atEnd { if sc.peek == "&" { out += sc.entity() } else { out.unicodeScalars.append(sc.next()) } }
        return out
    }

    struct Tag {
        var name: String
        var closing = false
        var selfClosing = false
        var isComment = false
        var attributes: [String: String] = [:]
    }

    struct Scanner {
        let u: [Unicode.Scalar]
        var i = 0
        init(_ u: [Unicode.Scalar]) { self.u = u }
        var atEnd: Bool { i >= u.count }
        var peek: Unicode.Scalar { u[i] }
        mutating func next() -> Unicode.Scalar { defer { i += 1 }; return u[i] }
        func at(_ j: Int) -> Unicode.Scalar? { j < u.count ? u[j] : nil }

        func matches(_ s: String, at j: Int, caseInsensitive: Bool = true) -> Bool {
            var k = j
            for c in s.unicodeScalars {
                guard let x = at(k) else { return false }
                if caseInsensitive ? Character(x).lowercased() != Character(c).lowercased() : x != c { return false }
                k += 1
            }
            return true
        }

        /// A tag at `<`, or nil (and nothing consumed) when `<` is just text.
        mutating func tag() -> Tag? {
            guard let c1 = at(i + 1) else { return nil }
            if c1 == "!" {
                if matches("<!--", at: i) {
                    i += 4
                    while !atEnd && !matches("-->", at: i) { i += 1 }
                    i = min(u.count, i + 3)
                } else {
                    while !atEnd && peek != ">" { i += 1 }
                    if !atEnd { i += 1 }
                }
                return Tag(name: "!", isComment: true)
            }
            if c1 == "?" { while !atEnd && peek != ">" { i += 1 }; if !atEnd { i += 1 }; return Tag(name: "?", isComment: true) }
            var t = Tag(name: "")
            var j = i + 1
            if at(j) == "/" { t.closing = true; j += 1 }
            guard let f = at(j), f.properties.isAlphabetic else { return nil }
            var name = ""
            while let c = at(j), c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == ":" { name.unicodeScalars.append(c); j += 1 }
            t.name = name.lowercased()
            i = j
            // Attributes.
            while !atEnd {
                while !atEnd && peek.properties.isWhitespace { i += 1 }
                if atEnd { break }
                if peek == ">" { i += 1; return t }
                if peek == "/" { i += 1; if !atEnd && peek == ">" { t.selfClosing = true; i += 1; return t }; continue }
                var key = ""
                while !atEnd, !peek.properties.isWhitespace, peek != "=", peek != ">", !(peek == "/" && at(i + 1) == ">") {
                    key.unicodeScalars.append(next())
                }
                while !atEnd && peek.properties.isWhitespace { i += 1 }
                var value = ""
                if !atEnd && peek == "=" {
                    i += 1
                    while !atEnd && peek.properties.isWhitespace { i += 1 }
                    if !atEnd && (peek == "\"" || peek == "'") {
                        let q = next()
                        while !atEnd && peek != q { value.unicodeScalars.append(next()) }
                        if !atEnd { i += 1 }
                    } else {
                        while !atEnd && !peek.properties.isWhitespace && peek != ">" { value.unicodeScalars.append(next()) }
                    }
                }
                if !key.isEmpty { t.attributes[key.lowercased()] = value }
                if key.isEmpty && !atEnd && peek != ">" { i += 1 }
            }
            return t
        }

        /// Text up to `</name`, consuming the closing tag.
        mutating func rawText(until name: String) -> String {
            var out = ""
            while !atEnd {
                if peek == "<" && at(i + 1) == "/" && matches(name, at: i + 2) {
                    while !atEnd && peek != ">" { i += 1 }
                    if !atEnd { i += 1 }
                    return out
                }
                out.unicodeScalars.append(next())
            }
            return out
        }

        /// Skips an element and everything inside it (nested elements of the same name counted).
        mutating func skipElement(_ name: String) {
            if HTMLText.rawText.contains(name) { _ = rawText(until: name); return }
            var depth = 1
            while !atEnd {
                if peek == "<" {
                    guard let t = tag() else { i += 1; continue }
                    if t.isComment { continue }
                    if HTMLText.rawText.contains(t.name) && !t.closing { _ = rawText(until: t.name); continue }
                    if t.name == name {
                        if t.closing { depth -= 1; if depth == 0 { return } }
                        else if !t.selfClosing { depth += 1 }
                    }
                } else { i += 1 }
            }
        }

        /// An entity at `&` (`&amp;`, `&#233;`, `&#xE9;`), or "&" itself when it is not one.
        mutating func entity() -> String {
            var j = i + 1, name = ""
            while let c = at(j), c != ";", j - i < 12, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "#" { name.unicodeScalars.append(c); j += 1 }
            guard at(j) == ";" || (HTMLText.entities[name] != nil && ["amp", "lt", "gt", "quot", "nbsp"].contains(name)) else { i += 1; return "&" }
            let consumed = at(j) == ";" ? j + 1 : j
            if name.hasPrefix("#") {
                let num = name.dropFirst()
                let v = num.first == "x" || num.first == "X" ? UInt32(num.dropFirst(), radix: 16) : UInt32(num)
                if let v, let sc = Unicode.Scalar(v) { i = consumed; return String(Character(sc)) }
                i += 1; return "&"
            }
            if let e = HTMLText.entities[name] { i = consumed; return e }
            i += 1
            return "&"
        }
    }
}
