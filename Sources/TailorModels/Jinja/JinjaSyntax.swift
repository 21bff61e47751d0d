// A Jinja2 template engine for chat templates (Jinja2 template designer documentation). It
// covers what real chat templates use — for/if/elif/set/macro, namespaces, loop variables,
// string and list methods, the common filters and tests — with the whitespace rules
// transformers renders them with (trim_blocks, lstrip_blocks) and its `tojson`.
// This file: lexing and parsing into a syntax tree. JinjaRuntime.swift evaluates it.

public struct TemplateError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public let line: Int?
    public var description: String { line.map { "chat template, line \($0): \(message)" } ?? "chat template: \(message)" }
    init(_ message: String, line: Int? = nil) { self.message = message; self.line = line }
}

indirect enum Expr {
    case literal(JValue)
    case name(String)
    case attribute(Expr, String)
    case index(Expr, Expr)
    case slice(Expr, Expr?, Expr?, Expr?)
    case call(Expr, [Expr], [(String, Expr)])
    case filter(Expr, String, [Expr], [(String, Expr)])
    case test(Expr, String, [Expr], negated: Bool)
    case unary(String, Expr)
    case binary(String, Expr, Expr)
    case conditional(then: Expr, test: Expr, otherwise: Expr?)
    case list([Expr])
    case dict([(Expr, Expr)])
}

indirect enum Node {
    case text(String)
    case output(Expr, line: Int)
    case ifChain([(Expr, [Node])], otherwise: [Node], line: Int)
    case forLoop(targets: [String], iterable: Expr, filter: Expr?, body: [Node], otherwise: [Node], line: Int)
    case set(target: Expr, value: Expr, line: Int)
    case setBlock(name: String, body: [Node], line: Int)
    case macro(name: String, params: [(String, Expr?)], body: [Node])
    case breakLoop, continueLoop
    /// `{% generation %}…{% endgeneration %}` (transformers' assistant-mask marker): renders its body.
    case block([Node])
}

// MARK: lexer

enum Tok: Equatable {
    case text(String)
    case exprOpen, exprClose, stmtOpen, stmtClose
    case name(String)
    case string(String)
    case int(Int)
    case float(Double)
    case op(String)
}

struct Lexed { let tok: Tok; let line: Int }

struct JinjaLexer {
    let src: [Character]
    var i = 0
    var line = 1
    var out: [Lexed] = []
    let trimBlocks: Bool
    let lstripBlocks: Bool

    init(_ s: String, trimBlocks: Bool, lstripBlocks: Bool) {
        src = Array(s)
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
    }

    func peek(_ k: Int = 0) -> Character? { i + k < src.count ? src[i + k] : nil }

    mutating func lex() throws -> [Lexed] {
        var text = ""
        var stripNextLeading = false     // a `-%}` / `-}}` asked to strip the following whitespace
        var trimNextNewline = false      // trim_blocks after `%}` / `#}`
        var textStart = 0                // where the pending text began in the source
        func flush(_ s: inout String, _ out: inout [Lexed], _ line: Int) {
            if !s.isEmpty { out.append(Lexed(tok: .text(s), line: line)) }
            s = ""
        }
        while i < src.count {
            let c = src[i]
            if c == "{", let n = peek(1), n == "{" || n == "%" || n == "#" {
                let minus = peek(2) == "-"
                let plus = peek(2) == "+"
                if minus {
                    while let last = text.last, last.isWhitespace { text.removeLast() }
                } else if lstripBlocks && !plus && (n == "%" || n == "#") {
                    // Strip spaces and tabs before a block tag that starts its line (Jinja2's
                    // lstrip_blocks): the line starts after the text's last newline, or, with no
                    // newline in the text, where the text itself starts a line.
                    var k = text.endIndex
                    while k > text.startIndex {
                        let p = text.index(before: k)
                        if text[p] == " " || text[p] == "\t" { k = p } else { break }
                    }
                    let startsLine = k == text.startIndex
                        ? (textStart == 0 || src[textStart - 1] == "\n")
                        : text[text.index(before: k)] == "\n"
                    if startsLine { text.removeSubrange(k...) }
                }
                flush(&text, &out, line)
                i += (minus || plus) ? 3 : 2
                if n == "#" {
                    // Comment: skip to `#}`.
                    var closedMinus = false
                    while i < src.count {
                        if src[i] == "#", peek(1) == "}" { i += 2; break }
                        if src[i] == "-", peek(1) == "#", peek(2) == "}" { closedMinus = true; i += 3; break }
                        if src[i] == "\n" { line += 1 }
                        i += 1
                    }
                    stripNextLeading = closedMinus
                    trimNextNewline = trimBlocks && !closedMinus
                } else {
                    out.append(Lexed(tok: n == "{" ? .exprOpen : .stmtOpen, line: line))
                    let closeChar: Character = n == "{" ? "}" : "%"
                    let (minusClose, isRaw) = try lexTag(close: closeChar)
                    out.append(Lexed(tok: n == "{" ? .exprClose : .stmtClose, line: line))
                    stripNextLeading = minusClose
                    trimNextNewline = trimBlocks && !minusClose && n == "%"
                    if isRaw { try lexRaw(&text) }
                }
                if stripNextLeading {
                    while i < src.count, src[i].isWhitespace { if src[i] == "\n" { line += 1 }; i += 1 }
                } else if trimNextNewline, i < src.count, src[i] == "\n" {
                    i += 1; line += 1
                } else if trimNextNewline, i + 1 < src.count, src[i] == "\r", src[i + 1] == "\n" {
                    i += 2; line += 1
                }
                stripNextLeading = false
                trimNextNewline = false
                textStart = i
                continue
            }
            if c == "\n" { line += 1 }
            text.append(c)
            i += 1
        }
        flush(&text, &out, line)
        return out
    }

    /// `{% raw %}…{% endraw %}`: everything up to the end tag is text.
    mutating func lexRaw(_ text: inout String) throws {
        var body = ""
        while i < src.count {
            if src[i] == "{", peek(1) == "%" {
                var j = i + 2
                if j < src.count, src[j] == "-" { j += 1 }
                while j < src.count, src[j] == " " { j += 1 }
                if String(src[j..<min(src.count, j + 6)]) == "endraw" {
                    if src[i + 2] == "-" { while let l = body.last, l.isWhitespace { body.removeLast() } }
                    while j < src.count, !(src[j] == "%" && j + 1 < src.count && src[j + 1] == "}") { j += 1 }
                    i = j + 2
                    out.append(Lexed(tok: .text(body), line: line))
                    return
                }
            }
            if src[i] == "\n" { line += 1 }
            body.append(src[i]); i += 1
        }
        throw TemplateError("{% raw %} is never closed by {% endraw %}", line: line)
    }

    /// Lexes inside `{{ … }}` or `{% … %}`; returns whether it closed with `-` and whether it was `raw`.
    mutating func lexTag(close: Character) throws -> (Bool, Bool) {
        let startCount = out.count
        while true {
            guard i < src.count else { throw TemplateError("a tag is never closed", line: line) }
            let c = src[i]
            if c == "\n" { line += 1; i += 1; continue }
            if c.isWhitespace { i += 1; continue }
            if c == "-", peek(1) == close, peek(2) == "}" { i += 3; return (true, isRawTag(startCount)) }
            if c == close, peek(1) == "}" { i += 2; return (false, isRawTag(startCount)) }
            if c.isLetter || c == "_" {
                var s = ""
                while let d = peek(), d.isLetter || d.isNumber || d == "_" { s.append(d); i += 1 }
                out.append(Lexed(tok: .name(s), line: line)); continue
            }
            if c.isNumber {
                var s = ""
                var isFloat = false
                while let d = peek(), d.isNumber || d == "_" || (d == "." && !isFloat && (peek(1)?.isNumber ?? false)) {
                    if d == "." { isFloat = true }
                    if d != "_" { s.append(d) }
                    i += 1
                }
                if let d = peek(), d == "e" || d == "E", let e = peek(1), e.isNumber || ((e == "-" || e == "+") && (peek(2)?.isNumber ?? false)) {
                    isFloat = true
                    s.append("e"); i += 1
                    if e == "-" || e == "+" { s.append(e); i += 1 }
                    while let d = peek(), d.isNumber { s.append(d); i += 1 }
                }
                if isFloat { out.append(Lexed(tok: .float(Double(s) ?? 0), line: line)) }
                else { out.append(Lexed(tok: .int(Int(s) ?? 0), line: line)) }
                continue
            }
            if c == "'" || c == "\"" {
                i += 1
                var s = ""
                while true {
                    guard let d = peek() else { throw TemplateError("a string is never closed", line: line) }
                    i += 1
                    if d == c { break }
                    if d == "\\", let e = peek() {
                        i += 1
                        switch e {
                        case "n": s.append("\n")
                        case "t": s.append("\t")
                        case "r": s.append("\r")
                        case "\\": s.append("\\")
                        case "'": s.append("'")
                        case "\"": s.append("\"")
                        case "0": s.append("\0")
                        case "b": s.append("\u{8}")
                        case "f": s.append("\u{c}")
                        case "u", "x", "U":
                            let n = e == "x" ? 2 : e == "u" ? 4 : 8
                            let hex = String(src[i..<min(src.count, i + n)])
                            if let v = UInt32(hex, radix: 16), let sc = Unicode.Scalar(v) { s.unicodeScalars.append(sc); i += n }
                            else { s.append("\\"); s.append(e) }
                        case "\n": line += 1
                        default: s.append("\\"); s.append(e)
                        }
                        continue
                    }
                    if d == "\n" { line += 1 }
                    s.append(d)
                }
                out.append(Lexed(tok: .string(s), line: line)); continue
            }
            let two = String(src[i..<min(src.count, i + 2)])
            if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
                out.append(Lexed(tok: .op(two), line: line)); i += 2; continue
            }
            if "+-*/%~<>=()[]{},.:|?!".contains(c) {
                out.append(Lexed(tok: .op(String(c)), line: line)); i += 1; continue
            }
            throw TemplateError("unexpected character \(c) in a tag", line: line)
        }
    }

    func isRawTag(_ start: Int) -> Bool {
        out.count == start + 1 && out[start].tok == .name("raw")
    }
}

// MARK: parser

struct JinjaParser {
    let toks: [Lexed]
    var p = 0

    init(_ toks: [Lexed]) { self.toks = toks }

    var line: Int { p < toks.count ? toks[p].line : (toks.last?.line ?? 0) }
    func peek(_ k: Int = 0) -> Tok? { p + k < toks.count ? toks[p + k].tok : nil }
    mutating func next() -> Tok? { defer { p += 1 }; return peek() }

    func err(_ m: String) -> TemplateError { TemplateError(m, line: line) }

    mutating func expect(_ t: Tok, _ what: String) throws {
        guard peek() == t else { throw err("expected \(what)") }
        p += 1
    }
    mutating func expectName(_ n: String) throws { try expect(.name(n), "'\(n)'") }
    mutating func accept(_ t: Tok) -> Bool { if peek() == t { p += 1; return true }; return false }
    mutating func acceptOp(_ s: String) -> Bool { accept(.op(s)) }
    mutating func name() throws -> String {
        guard case .name(let n)? = peek() else { throw err("expected a name") }
        p += 1; return n
    }

    /// Parses nodes until a statement whose keyword is in `until` (left unconsumed, after `{%`).
    mutating func parseNodes(until: Set<String>) throws -> (nodes: [Node], end: String?) {
        var nodes: [Node] = []
        while let t = peek() {
            switch t {
            case .text(let s): p += 1; nodes.append(.text(s))
            case .exprOpen:
                let l = line
                p += 1
                let e = try parseExpr()
                try expect(.exprClose, "}}")
                nodes.append(.output(e, line: l))
            case .stmtOpen:
                guard case .name(let kw)? = peek(1) else { throw err("expected a statement keyword after {%") }
                if until.contains(kw) { p += 2; return (nodes, kw) }
                p += 2
                nodes.append(try parseStatement(kw))
            default:
                throw err("unexpected token")
            }
        }
        if !until.isEmpty { throw err("missing {% \(until.sorted().joined(separator: " or ")) %}") }
        return (nodes, nil)
    }

    mutating func endTag() throws { try expect(.stmtClose, "%}") }

    mutating func parseStatement(_ kw: String) throws -> Node {
        let l = line
        switch kw {
        case "if":
            var branches: [(Expr, [Node])] = []
            var cond = try parseExpr()
            try endTag()
            while true {
                let (body, end) = try parseNodes(until: ["elif", "else", "endif"])
                branches.append((cond, body))
                if end == "elif" { cond = try parseExpr(); try endTag(); continue }
                if end == "else" {
                    try endTag()
                    let (otherwise, _) = try parseNodes(until: ["endif"])
                    try endTag()
                    return .ifChain(branches, otherwise: otherwise, line: l)
                }
                try endTag()
                return .ifChain(branches, otherwise: [], line: l)
            }
        case "for":
            var targets = [try name()]
            while acceptOp(",") { targets.append(try name()) }
            try expectName("in")
            let iter = try parseExpr(allowConditional: false)
            var filter: Expr?
            if accept(.name("if")) { filter = try parseExpr(allowConditional: false) }
            _ = accept(.name("recursive"))
            try endTag()
            let (body, end) = try parseNodes(until: ["else", "endfor"])
            var otherwise: [Node] = []
            if end == "else" { try endTag(); otherwise = try parseNodes(until: ["endfor"]).nodes }
            try endTag()
            return .forLoop(targets: targets, iterable: iter, filter: filter, body: body, otherwise: otherwise, line: l)
        case "set":
            var target: Expr = .name(try name())
            if acceptOp(".") { target = .attribute(target, try name()) }
            if acceptOp(",") { throw err("tuple assignment in {% set %} is not supported") }
            if peek() == .stmtClose {
                guard case .name(let n) = target else { throw err("block set needs a plain name") }
                try endTag()
                let (body, _) = try parseNodes(until: ["endset"])
                try endTag()
                return .setBlock(name: n, body: body, line: l)
            }
            try expect(.op("="), "'=' in {% set %}")
            let v = try parseExpr()
            try endTag()
            return .set(target: target, value: v, line: l)
        case "macro":
            let n = try name()
            try expect(.op("("), "'(' after the macro name")
            var params: [(String, Expr?)] = []
            while !acceptOp(")") {
                let pn = try name()
                var def: Expr?
                if acceptOp("=") { def = try parseExpr() }
                params.append((pn, def))
                if !acceptOp(",") { try expect(.op(")"), "')'"); break }
            }
            try endTag()
            let (body, _) = try parseNodes(until: ["endmacro"])
            try endTag()
            return .macro(name: n, params: params, body: body)
        case "break": try endTag(); return .breakLoop
        case "continue": try endTag(); return .continueLoop
        case "generation":
            try endTag()
            let (body, _) = try parseNodes(until: ["endgeneration"])
            try endTag()
            return .block(body)
        case "filter":
            let fname = try name()
            try endTag()
            let (body, _) = try parseNodes(until: ["endfilter"])
            try endTag()
            // Rendered by evaluating the body into a string and filtering it.
            return .setBlock(name: "\u{0}filter:" + fname, body: body, line: l)
        default:
            throw err("unknown statement {% \(kw) %}")
        }
    }

    // Expressions, lowest precedence first (as Jinja2's parser).
    mutating func parseExpr(allowConditional: Bool = true) throws -> Expr {
        let e = try parseOr()
        if allowConditional, accept(.name("if")) {
            let test = try parseOr()
            var otherwise: Expr?
            if accept(.name("else")) { otherwise = try parseExpr() }
            return .conditional(then: e, test: test, otherwise: otherwise)
        }
        return e
    }
    mutating func parseOr() throws -> Expr {
        var e = try parseAnd()
        while accept(.name("or")) { e = .binary("or", e, try parseAnd()) }
        return e
    }
    mutating func parseAnd() throws -> Expr {
        var e = try parseNot()
        while accept(.name("and")) { e = .binary("and", e, try parseNot()) }
        return e
    }
    mutating func parseNot() throws -> Expr {
        if accept(.name("not")) { return .unary("not", try parseNot()) }
        return try parseCompare()
    }
    mutating func parseCompare() throws -> Expr {
        var e = try parseMath1()
        while true {
            if case .op(let o)? = peek(), ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                p += 1; e = .binary(o, e, try parseMath1())
            } else if accept(.name("in")) {
                e = .binary("in", e, try parseMath1())
            } else if peek() == .name("not"), peek(1) == .name("in") {
                p += 2; e = .binary("not in", e, try parseMath1())
            } else { return e }
        }
    }
    mutating func parseMath1() throws -> Expr {
        var e = try parseConcat()
        while case .op(let o)? = peek(), o == "+" || o == "-" { p += 1; e = .binary(o, e, try parseConcat()) }
        return e
    }
    mutating func parseConcat() throws -> Expr {
        var e = try parseMath2()
        while acceptOp("~") { e = .binary("~", e, try parseMath2()) }
        return e
    }
    mutating func parseMath2() throws -> Expr {
        var e = try parsePow()
        while case .op(let o)? = peek(), ["*", "/", "//", "%"].contains(o) { p += 1; e = .binary(o, e, try parsePow()) }
        return e
    }
    mutating func parsePow() throws -> Expr {
        var e = try parseUnary()
        while acceptOp("**") { e = .binary("**", e, try parseUnary()) }
        return e
    }
    mutating func parseUnary() throws -> Expr {
        if acceptOp("-") { return try parseFilters(.unary("-", try parseUnary(withFilters: false))) }
        if acceptOp("+") { return try parseFilters(try parseUnary(withFilters: false)) }
        return try parseUnary(withFilters: true)
    }
    mutating func parseUnary(withFilters: Bool) throws -> Expr {
        if acceptOp("-") { return .unary("-", try parseUnary(withFilters: false)) }
        let e = try parsePostfix(try parsePrimary())
        return withFilters ? try parseFilters(e) : e
    }
    mutating func parseFilters(_ base: Expr) throws -> Expr {
        var e = base
        while true {
            if acceptOp("|") {
                var n = try name()
                while acceptOp(".") { n += "." + (try name()) }
                var args: [Expr] = [], kwargs: [(String, Expr)] = []
                if peek() == .op("(") { (args, kwargs) = try parseArgs() }
                e = .filter(e, n, args, kwargs)
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                let n = try name()
                var args: [Expr] = []
                if peek() == .op("(") { args = try parseArgs().0 }
                else if let t = peek(), startsPrimary(t) { args = [try parsePostfix(try parsePrimary())] }
                e = .test(e, n, args, negated: negated)
            } else { return e }
        }
    }
    func startsPrimary(_ t: Tok) -> Bool {
        switch t {
        case .string, .int, .float: return true
        case .name(let n): return !["and", "or", "else", "if", "in", "not", "is"].contains(n)
        default: return false
        }
    }
    mutating func parseArgs() throws -> ([Expr], [(String, Expr)]) {
        try expect(.op("("), "'('")
        var args: [Expr] = [], kwargs: [(String, Expr)] = []
        while !acceptOp(")") {
            if case .name(let n)? = peek(), peek(1) == .op("=") {
                p += 2; kwargs.append((n, try parseExpr()))
            } else {
                args.append(try parseExpr())
            }
            if !acceptOp(",") { try expect(.op(")"), "')'"); break }
        }
        return (args, kwargs)
    }
    mutating func parsePostfix(_ base: Expr) throws -> Expr {
        var e = base
        while true {
            if acceptOp(".") {
                if case .int(let i)? = peek() { p += 1; e = .index(e, .literal(.int(i))); continue }
                e = .attribute(e, try name())
            } else if peek() == .op("[") {
                p += 1
                var parts: [Expr?] = [nil]
                var isSlice = false
                while !acceptOp("]") {
                    if acceptOp(":") { isSlice = true; parts.append(nil); continue }
                    parts[parts.count - 1] = try parseExpr()
                }
                if isSlice {
                    while parts.count < 3 { parts.append(nil) }
                    e = .slice(e, parts[0], parts[1], parts[2])
                } else {
                    guard let idx = parts[0] else { throw err("empty subscript []") }
                    e = .index(e, idx)
                }
            } else if peek() == .op("(") {
                let (a, k) = try parseArgs()
                e = .call(e, a, k)
            } else { return e }
        }
    }
    mutating func parsePrimary() throws -> Expr {
        guard let t = next() else { throw err("unexpected end of expression") }
        switch t {
        case .string(var s):
            while case .string(let more)? = peek() { s += more; p += 1 }  // adjacent literals concatenate
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .float(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            let e = try parseExpr()
            if acceptOp(",") {
                var items = [e]
                while !acceptOp(")") { items.append(try parseExpr()); if !acceptOp(",") { try expect(.op(")"), "')'"); break } }
                return .list(items)
            }
            try expect(.op(")"), "')'")
            return e
        case .op("["):
            var items: [Expr] = []
            while !acceptOp("]") { items.append(try parseExpr()); if !acceptOp(",") { try expect(.op("]"), "']'"); break } }
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !acceptOp("}") {
                let k = try parseExpr()
                try expect(.op(":"), "':' in a dict literal")
                pairs.append((k, try parseExpr()))
                if !acceptOp(",") { try expect(.op("}"), "'}'"); break }
            }
            return .dict(pairs)
        default:
            p -= 1
            throw err("unexpected token in expression")
        }
    }
}
