// Evaluates a parsed Jinja2 template: scopes, loops, filters, tests, methods and globals.
import Foundation

public struct JinjaTemplate {
    let nodes: [Node]

    /// Parses a template with transformers' settings for chat templates (trim_blocks and
    /// lstrip_blocks on).
    public init(_ source: String, trimBlocks: Bool = true, lstripBlocks: Bool = true) throws {
        var lexer = JinjaLexer(source, trimBlocks: trimBlocks, lstripBlocks: lstripBlocks)
        var parser = JinjaParser(try lexer.lex())
        nodes = try parser.parseNodes(until: []).nodes
    }

    public func render(_ context: [String: JValue]) throws -> String {
        let r = Renderer(globals: context)
        var out = ""
        try r.run(nodes, &out)
        return out
    }
}

private enum LoopSignal: Error { case breakLoop, continueLoop }

final class Renderer {
    var scopes: [[String: JValue]]
    /// Innermost first: the `loop` object of each enclosing for.
    init(globals: [String: JValue]) {
        var base: [String: JValue] = [:]
        base["raise_exception"] = .callable(JCallable(name: "raise_exception") { a, _ in
            throw TemplateError(a.first?.str ?? "raise_exception called")
        })
        base["range"] = .callable(JCallable(name: "range") { a, _ in
            let n = a.compactMap { $0.number.map(Int.init) }
            let (lo, hi, step) = n.count == 1 ? (0, n[0], 1) : n.count == 2 ? (n[0], n[1], 1) : n.count == 3 ? (n[0], n[1], n[2]) : (0, 0, 1)
            guard step != 0 else { throw TemplateError("range() step must not be zero") }
            guard abs((hi - lo) / step) < 1_000_000 else { throw TemplateError("range() is too long") }
            return .list(Array(stride(from: lo, to: hi, by: step)).map { .int($0) })
        })
        base["namespace"] = .callable(JCallable(name: "namespace") { a, kw in
            let d = JDict()
            if case .dict(let init0)? = a.first { for (k, v) in init0.pairs { d[k] = v } }
            for (k, v) in kw { d[k] = v }
            return .namespace(d)
        })
        base["dict"] = .callable(JCallable(name: "dict") { _, kw in .dict(kw) })
        base["strftime_now"] = .callable(JCallable(name: "strftime_now") { a, _ in
            .string(strftime(a.first?.str ?? "%Y-%m-%d", Date()))
        })
        for (k, v) in globals { base[k] = v }
        scopes = [base]
    }

    func lookup(_ n: String) -> JValue {
        for s in scopes.reversed() { if let v = s[n] { return v } }
        return .undefined(n)
    }

    func assign(_ n: String, _ v: JValue) { scopes[scopes.count - 1][n] = v }

    func run(_ nodes: [Node], _ out: inout String) throws {
        for n in nodes { try run(n, &out) }
    }

    func run(_ node: Node, _ out: inout String) throws {
        switch node {
        case .text(let s): out += s
        case .output(let e, let line):
            do { out += try eval(e).str } catch let e as TemplateError where e.line == nil { throw TemplateError(e.message, line: line) }
        case .ifChain(let branches, let otherwise, let line):
            do {
                for (cond, body) in branches where try eval(cond).truthy { try run(body, &out); return }
                try run(otherwise, &out)
            } catch let e as TemplateError where e.line == nil { throw TemplateError(e.message, line: line) }
        case .forLoop(let targets, let iterable, let filter, let body, let otherwise, let line):
            do {
                try runFor(targets, iterable, filter, body, otherwise, &out)
            } catch let e as TemplateError where e.line == nil { throw TemplateError(e.message, line: line) }
        case .set(let target, let value, let line):
            do {
                let v = try eval(value)
                switch target {
                case .name(let n): assign(n, v)
                case .attribute(let obj, let attr):
                    guard case .namespace(let d) = try eval(obj) else { throw TemplateError("can only set attributes of a namespace") }
                    d[attr] = v
                default: throw TemplateError("cannot assign to this target")
                }
            } catch let e as TemplateError where e.line == nil { throw TemplateError(e.message, line: line) }
        case .setBlock(let name, let body, let line):
            var s = ""
            try run(body, &s)
            if name.hasPrefix("\u{0}filter:") {
                out += try applyFilter(String(name.dropFirst(8)), .string(s), [], [], line: line).str
            } else {
                assign(name, .string(s))
            }
        case .macro(let name, let params, let body):
            let captured = self
            assign(name, .callable(JCallable(name: name) { args, kwargs in
                var local: [String: JValue] = [:]
                for (i, (pn, def)) in params.enumerated() {
                    if i < args.count { local[pn] = args[i] }
                    else if let kv = kwargs.first(where: { $0.0 == pn }) { local[pn] = kv.1 }
                    else if let def { local[pn] = try captured.eval(def) }
                    else { local[pn] = .undefined(pn) }
                }
                captured.scopes.append(local)
                defer { captured.scopes.removeLast() }
                var s = ""
                try captured.run(body, &s)
                return .string(s)
            }))
        case .breakLoop: throw LoopSignal.breakLoop
        case .continueLoop: throw LoopSignal.continueLoop
        case .block(let body): try run(body, &out)
        }
    }

    func runFor(_ targets: [String], _ iterable: Expr, _ filter: Expr?, _ body: [Node], _ otherwise: [Node], _ out: inout String) throws {
        var items = try eval(iterable).iterate()
        scopes.append([:])
        defer { scopes.removeLast() }
        func bind(_ item: JValue) throws {
            if targets.count == 1 { assign(targets[0], item); return }
            let parts = try item.iterate()
            guard parts.count == targets.count else { throw TemplateError("cannot unpack \(parts.count) values into \(targets.count) names") }
            for (t, v) in zip(targets, parts) { assign(t, v) }
        }
        if let filter {
            items = try items.filter { try bind($0); return try eval(filter).truthy }
        }
        if items.isEmpty { try run(otherwise, &out); return }
        let n = items.count
        for (i, item) in items.enumerated() {
            try bind(item)
            let loop = JDict([
                ("index", .int(i + 1)), ("index0", .int(i)), ("revindex", .int(n - i)), ("revindex0", .int(n - i - 1)),
                ("first", .bool(i == 0)), ("last", .bool(i == n - 1)), ("length", .int(n)),
                ("previtem", i > 0 ? items[i - 1] : .undefined("previtem")),
                ("nextitem", i < n - 1 ? items[i + 1] : .undefined("nextitem")),
            ])
            loop["cycle"] = .callable(JCallable(name: "cycle") { a, _ in a.isEmpty ? .none : a[i % a.count] })
            assign("loop", .dict(loop))
            do { try run(body, &out) } catch LoopSignal.breakLoop { break } catch LoopSignal.continueLoop { continue }
        }
    }

    // MARK: expressions

    func eval(_ e: Expr) throws -> JValue {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let items): return .list(try items.map(eval))
        case .dict(let pairs): return .dict(try pairs.map { (try eval($0.0).str, try eval($0.1)) })
        case .attribute(let obj, let name):
            let o = try eval(obj)
            return try getAttribute(o, name)
        case .index(let obj, let idx):
            let o = try eval(obj), i = try eval(idx)
            return try getItem(o, i)
        case .slice(let obj, let a, let b, let c):
            return try slice(try eval(obj), try a.map(eval), try b.map(eval), try c.map(eval))
        case .call(let fn, let args, let kwargs):
            let a = try args.map(eval)
            let k = try kwargs.map { ($0.0, try eval($0.1)) }
            if case .attribute(let objExpr, let method) = fn {
                let obj = try eval(objExpr)
                if let r = try callMethod(obj, method, a, k) { return r }
            }
            guard case .callable(let c) = try eval(fn) else {
                throw TemplateError("\(describe(fn)) is not callable")
            }
            return try c.call(a, k)
        case .filter(let v, let name, let args, let kwargs):
            return try applyFilter(name, try eval(v), try args.map(eval), try kwargs.map { ($0.0, try eval($0.1)) }, line: nil)
        case .test(let v, let name, let args, let negated):
            let r = try applyTest(name, try eval(v), try args.map(eval))
            return .bool(negated ? !r : r)
        case .unary(let op, let x):
            let v = try eval(x)
            if op == "not" { return .bool(!v.truthy) }
            switch v {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            default: throw TemplateError("cannot negate \(v.typeName)")
            }
        case .conditional(let then, let test, let otherwise):
            if try eval(test).truthy { return try eval(then) }
            return try otherwise.map(eval) ?? .undefined("conditional")
        case .binary(let op, let l, let r):
            if op == "and" { let a = try eval(l); return a.truthy ? try eval(r) : a }
            if op == "or" { let a = try eval(l); return a.truthy ? a : try eval(r) }
            return try binary(op, try eval(l), try eval(r))
        }
    }

    func describe(_ e: Expr) -> String {
        switch e {
        case .name(let n): return n
        case .attribute(let o, let a): return describe(o) + "." + a
        default: return "expression"
        }
    }

    func getAttribute(_ o: JValue, _ name: String) throws -> JValue {
        switch o {
        case .dict(let d), .namespace(let d): return d[name] ?? .undefined(name)
        case .undefined(let n): throw TemplateError("'\(n)' is undefined (reading .\(name))")
        default: return .undefined(name)
        }
    }

    func getItem(_ o: JValue, _ i: JValue) throws -> JValue {
        switch (o, i) {
        case (.list(let l), .int(let k)):
            let idx = k < 0 ? l.items.count + k : k
            return idx >= 0 && idx < l.items.count ? l.items[idx] : .undefined("[\(k)]")
        case (.string(let s), .int(let k)):
            let chars = Array(s)
            let idx = k < 0 ? chars.count + k : k
            return idx >= 0 && idx < chars.count ? .string(String(chars[idx])) : .undefined("[\(k)]")
        case (.dict(let d), _), (.namespace(let d), _): return d[i.str] ?? .undefined(i.str)
        case (.undefined(let n), _): throw TemplateError("'\(n)' is undefined (reading [\(i.repr)])")
        default: return .undefined("[\(i.repr)]")
        }
    }

    func slice(_ o: JValue, _ a: JValue?, _ b: JValue?, _ c: JValue?) throws -> JValue {
        func sliced<T>(_ arr: [T]) throws -> [T] {
            let n = arr.count
            let step = c?.number.map(Int.init) ?? 1
            guard step != 0 else { throw TemplateError("slice step cannot be zero") }
            func norm(_ v: JValue?, _ def: Int) -> Int {
                guard let x = v?.number.map(Int.init) else { return def }
                let y = x < 0 ? x + n : x
                return step > 0 ? min(max(y, 0), n) : min(max(y, -1), n - 1)
            }
            var out: [T] = []
            if step > 0 {
                var i = norm(a, 0)
                let end = norm(b, n)
                while i < end { out.append(arr[i]); i += step }
            } else {
                var i = norm(a, n - 1)
                let end = norm(b, -1)
                while i > end { out.append(arr[i]); i += step }
            }
            return out
        }
        switch o {
        case .list(let l): return .list(try sliced(l.items))
        case .string(let s): return .string(String(try sliced(Array(s))))
        default: throw TemplateError("cannot slice \(o.typeName)")
        }
    }

    func binary(_ op: String, _ a: JValue, _ b: JValue) throws -> JValue {
        switch op {
        case "==": return .bool(a.equals(b))
        case "!=": return .bool(!a.equals(b))
        case "~": return .string(a.str + b.str)
        case "in", "not in":
            let r: Bool
            switch b {
            case .string(let s): r = s.contains(a.str) && (a.str.isEmpty || s.range(of: a.str) != nil)
            case .list(let l): r = l.items.contains { $0.equals(a) }
            case .dict(let d), .namespace(let d): r = d[a.str] != nil
            case .undefined, .none: r = false
            default: throw TemplateError("'in' needs a string, list or dict, not \(b.typeName)")
            }
            return .bool(op == "in" ? r : !r)
        case "<", ">", "<=", ">=":
            let c: Int
            if case .string(let x) = a, case .string(let y) = b { c = x < y ? -1 : x == y ? 0 : 1 }
            else if let x = a.number, let y = b.number { c = x < y ? -1 : x == y ? 0 : 1 }
            else { throw TemplateError("cannot compare \(a.typeName) with \(b.typeName)") }
            switch op { case "<": return .bool(c < 0); case ">": return .bool(c > 0); case "<=": return .bool(c <= 0); default: return .bool(c >= 0) }
        case "+":
            switch (a, b) {
            case let (.string(x), .string(y)): return .string(x + y)
            case let (.list(x), .list(y)): return .list(x.items + y.items)
            case let (.int(x), .int(y)): return .int(x &+ y)
            default:
                if let x = a.number, let y = b.number, !(a.isBoolLike && b.isBoolLike) { return .double(x + y) }
                throw TemplateError("cannot add \(a.typeName) and \(b.typeName)")
            }
        case "-", "*", "/", "//", "%", "**":
            if op == "*", case .string(let s) = a, case .int(let n) = b { return .string(String(repeating: s, count: max(0, n))) }
            if op == "*", case .list(let l) = a, case .int(let n) = b { return .list(Array((0..<max(0, n)).map { _ in l.items }.joined())) }
            if op == "%", case .string(let s) = a { return .string(percentFormat(s, b)) }
            guard let x = a.number, let y = b.number else { throw TemplateError("cannot apply \(op) to \(a.typeName) and \(b.typeName)") }
            let ints: (Int, Int)? = { if case .int(let i) = a, case .int(let j) = b { return (i, j) }; return nil }()
            switch op {
            case "-": return ints.map { .int($0.0 &- $0.1) } ?? .double(x - y)
            case "*": return ints.map { .int($0.0 &* $0.1) } ?? .double(x * y)
            case "/":
                guard y != 0 else { throw TemplateError("division by zero") }
                return .double(x / y)
            case "//":
                guard y != 0 else { throw TemplateError("division by zero") }
                if let (i, j) = ints { return .int(Int((Double(i) / Double(j)).rounded(.down))) }
                return .double((x / y).rounded(.down))
            case "%":
                guard y != 0 else { throw TemplateError("modulo by zero") }
                if let (i, j) = ints { let m = i % j; return .int(m != 0 && (m < 0) != (j < 0) ? m + j : m) }
                let m = x.truncatingRemainder(dividingBy: y)
                return .double(m != 0 && (m < 0) != (y < 0) ? m + y : m)
            default:
                if let (i, j) = ints, j >= 0 { return .int(Int(pow(Double(i), Double(j)))) }
                return .double(pow(x, y))
            }
        default:
            throw TemplateError("unknown operator \(op)")
        }
    }

    func percentFormat(_ fmt: String, _ arg: JValue) -> String {
        var args: [JValue] = []
        if case .list(let l) = arg { args = l.items } else { args = [arg] }
        var out = "", i = 0
        var chars = Array(fmt)[...]
        while let c = chars.popFirst() {
            if c == "%", let n = chars.popFirst() {
                if n == "%" { out.append("%"); continue }
                let v = i < args.count ? args[i] : .none
                i += 1
                out += n == "r" ? v.repr : v.str
            } else { out.append(c) }
        }
        return out
    }

    // MARK: methods

    func callMethod(_ o: JValue, _ m: String, _ a: [JValue], _ k: [(String, JValue)]) throws -> JValue? {
        switch o {
        case .string(let s):
            func chars(_ v: JValue?) -> Set<Character>? { v.map { Set($0.str) } }
            switch m {
            case "strip": return .string(pyStrip(s, chars(a.first), left: true, right: true))
            case "lstrip": return .string(pyStrip(s, chars(a.first), left: true, right: false))
            case "rstrip": return .string(pyStrip(s, chars(a.first), left: false, right: true))
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(titleCase(s))
            case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
            case "startswith", "endswith":
                let options: [String] = { if case .list(let l)? = a.first { return l.items.map(\.str) }; return [a.first?.str ?? ""] }()
                return .bool(options.contains { m == "startswith" ? s.hasPrefix($0) : s.hasSuffix($0) })
            case "split":
                let maxsplit = (a.count > 1 ? a[1].number.map(Int.init) : k.first { $0.0 == "maxsplit" }?.1.number.map(Int.init)) ?? -1
                if let sep = a.first, !sep.isNone {
                    return .list(pySplit(s, sep.str, maxsplit).map { .string($0) })
                }
                return .list(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
            case "replace":
                guard a.count >= 2 else { throw TemplateError("replace() needs two arguments") }
                return .string(s.replacingOccurrences(of: a[0].str, with: a[1].str))
            case "find":
                guard let r = s.range(of: a.first?.str ?? "") else { return .int(-1) }
                return .int(s.distance(from: s.startIndex, to: r.lowerBound))
            case "count": return .int(a.first.map { s.components(separatedBy: $0.str).count - 1 } ?? 0)
            case "join": return .string(try (a.first ?? .list([])).iterate().map(\.str).joined(separator: s))
            case "format":
                var out = "", idx = 0
                var rest = s[...]
                while let r = rest.range(of: "{}") { out += rest[..<r.lowerBound]; out += idx < a.count ? a[idx].str : ""; idx += 1; rest = rest[r.upperBound...] }
                return .string(out + rest)
            default: return nil
            }
        case .list(let l):
            switch m {
            case "append": l.items.append(a.first ?? .none); return JValue.none
            case "pop":
                guard !l.items.isEmpty else { throw TemplateError("pop from empty list") }
                if let i = a.first?.number.map(Int.init) { return l.items.remove(at: i < 0 ? l.items.count + i : i) }
                return l.items.removeLast()
            case "index":
                guard let i = l.items.firstIndex(where: { $0.equals(a.first ?? .none) }) else { throw TemplateError("value not in list") }
                return .int(i)
            case "count": return .int(l.items.filter { $0.equals(a.first ?? .none) }.count)
            default: return nil
            }
        case .dict(let d):
            switch m {
            case "items": return .list(d.pairs.map { .list([.string($0.0), $0.1]) })
            case "keys": return .list(d.keys.map { .string($0) })
            case "values": return .list(d.pairs.map(\.1))
            case "get": return d[a.first?.str ?? ""] ?? (a.count > 1 ? a[1] : .none)
            case "update":
                if case .dict(let other)? = a.first { for (kk, v) in other.pairs { d[kk] = v } }
                for (kk, v) in k { d[kk] = v }
                return JValue.none
            default: return nil
            }
        default:
            return nil
        }
    }

    // MARK: filters

    func kwarg(_ k: [(String, JValue)], _ name: String) -> JValue? { k.first { $0.0 == name }?.1 }

    func applyFilter(_ name: String, _ v: JValue, _ a: [JValue], _ k: [(String, JValue)], line: Int?) throws -> JValue {
        switch name {
        case "trim": return .string(pyStrip(v.str, a.first.map { Set($0.str) }, left: true, right: true))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.count)
            case .list(let l): return .int(l.items.count)
            case .dict(let d): return .int(d.keys.count)
            case .undefined, .none: return .int(0)
            default: throw TemplateError("\(v.typeName) has no length")
            }
        case "upper": return .string(v.str.uppercased())
        case "lower": return .string(v.str.lowercased())
        case "title": return .string(titleCase(v.str))
        case "capitalize": let s = v.str; return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "default", "d":
            let boolean = (a.count > 1 ? a[1] : kwarg(k, "boolean"))?.truthy ?? false
            if v.isUndefined || (boolean && !v.truthy) { return a.first ?? kwarg(k, "default_value") ?? .string("") }
            return v
        case "join":
            let sep = a.first?.str ?? kwarg(k, "d")?.str ?? ""
            if let attr = kwarg(k, "attribute")?.str { return .string(try v.iterate().map { try getAttribute($0, attr).str }.joined(separator: sep)) }
            return .string(try v.iterate().map(\.str).joined(separator: sep))
        case "tojson":
            let indent = (a.first ?? kwarg(k, "indent")).flatMap { $0.number.map(Int.init) }
            return .string(toJSON(v, indent: indent, sortKeys: kwarg(k, "sort_keys")?.truthy ?? false))
        case "first":
            if case .string(let s) = v { return s.first.map { .string(String($0)) } ?? .undefined("first") }
            return try v.iterate().first ?? .undefined("first")
        case "last":
            if case .string(let s) = v { return s.last.map { .string(String($0)) } ?? .undefined("last") }
            return try v.iterate().last ?? .undefined("last")
        case "list": return .list(try v.iterate())
        case "reverse":
            if case .string(let s) = v { return .string(String(s.reversed())) }
            return .list(try v.iterate().reversed())
        case "string": return .string(v.str)
        case "int":
            if let n = v.number { return .int(Int(n)) }
            return .int(Int(v.str.trimmingCharacters(in: .whitespaces)) ?? (a.first?.number.map(Int.init) ?? 0))
        case "float":
            if let n = v.number { return .double(n) }
            return .double(Double(v.str.trimmingCharacters(in: .whitespaces)) ?? 0)
        case "abs":
            if case .int(let i) = v { return .int(abs(i)) }
            return .double(abs(v.number ?? 0))
        case "round":
            let prec = a.first?.number.map(Int.init) ?? 0
            let f = pow(10, Double(prec))
            return .double(((v.number ?? 0) * f).rounded() / f)
        case "safe", "escape_once": return v
        case "e", "escape":
            var s = ""
            for c in v.str {
                switch c { case "&": s += "&amp;"; case "<": s += "&lt;"; case ">": s += "&gt;"; case "\"": s += "&#34;"; case "'": s += "&#39;"; default: s.append(c) }
            }
            return .string(s)
        case "replace":
            guard a.count >= 2 else { throw TemplateError("replace filter needs two arguments") }
            return .string(v.str.replacingOccurrences(of: a[0].str, with: a[1].str))
        case "items":
            guard case .dict(let d) = v else { return .list([]) }
            return .list(d.pairs.map { .list([.string($0.0), $0.1]) })
        case "selectattr", "rejectattr":
            guard let attr = a.first?.str else { throw TemplateError("\(name) needs an attribute name") }
            let keep = try v.iterate().filter { item in
                let value = try getAttribute(item, attr)
                let r = a.count > 1 ? try applyTest(a[1].str, value, Array(a.dropFirst(2))) : value.truthy
                return name == "selectattr" ? r : !r
            }
            return .list(keep)
        case "select", "reject":
            let keep = try v.iterate().filter { item in
                let r = a.isEmpty ? item.truthy : try applyTest(a[0].str, item, Array(a.dropFirst()))
                return name == "select" ? r : !r
            }
            return .list(keep)
        case "map":
            if let attr = kwarg(k, "attribute")?.str {
                return .list(try v.iterate().map { item in
                    let r = try getAttribute(item, attr)
                    if r.isUndefined, let d = kwarg(k, "default") { return d }
                    return r
                })
            }
            guard let f = a.first?.str else { throw TemplateError("map needs a filter name or attribute=") }
            return .list(try v.iterate().map { try applyFilter(f, $0, Array(a.dropFirst()), [], line: line) })
        case "unique":
            var seen: [JValue] = []
            for x in try v.iterate() where !seen.contains(where: { $0.equals(x) }) { seen.append(x) }
            return .list(seen)
        case "sort":
            let rev = kwarg(k, "reverse")?.truthy ?? false
            let attr = kwarg(k, "attribute")?.str
            let items = try v.iterate()
            let sorted = try items.sorted { x, y in
                let a1 = try attr.map { try getAttribute(x, $0) } ?? x, b1 = try attr.map { try getAttribute(y, $0) } ?? y
                let less = try binary("<", a1, b1).truthy
                return rev ? try binary(">", a1, b1).truthy : less
            }
            return .list(sorted)
        case "indent":
            let width = (a.first ?? kwarg(k, "width"))?.number.map(Int.init) ?? 4
            let first = (a.count > 1 ? a[1] : kwarg(k, "first"))?.truthy ?? false
            let blank = (a.count > 2 ? a[2] : kwarg(k, "blank"))?.truthy ?? false
            let pad = String(repeating: " ", count: width)
            let lines = v.str.components(separatedBy: "\n")
            var out: [String] = []
            for (i, l) in lines.enumerated() {
                if i == 0 { out.append(first ? pad + l : l) }
                else { out.append(l.isEmpty && !blank ? l : pad + l) }
            }
            return .string(out.joined(separator: "\n"))
        case "wordcount": return .int(v.str.split(whereSeparator: { $0.isWhitespace }).count)
        case "center":
            let w = a.first?.number.map(Int.init) ?? 80, s = v.str
            let padTotal = max(0, w - s.count), left = padTotal / 2
            return .string(String(repeating: " ", count: left) + s + String(repeating: " ", count: padTotal - left))
        case "batch", "slice":
            throw TemplateError("filter \(name) is not supported")
        default:
            throw TemplateError("unknown filter \(name)")
        }
    }

    // MARK: tests

    func applyTest(_ name: String, _ v: JValue, _ a: [JValue]) throws -> Bool {
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "string": if case .string = v { return true }; return false
        case "number": switch v { case .int, .double: return true; default: return false }
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "mapping": switch v { case .dict, .namespace: return true; default: return false }
        case "iterable": switch v { case .list, .dict, .string: return true; default: return false }
        case "sequence": switch v { case .list, .string, .dict: return true; default: return false }
        case "callable": if case .callable = v { return true }; return false
        case "odd": return Int(v.number ?? 0) % 2 != 0
        case "even": return Int(v.number ?? 0) % 2 == 0
        case "divisibleby":
            let d = Int(a.first?.number ?? 1)
            return d != 0 && Int(v.number ?? 0) % d == 0
        case "equalto", "eq", "==", "sameas": return v.equals(a.first ?? .none)
        case "ne", "!=": return !v.equals(a.first ?? .none)
        case "lt", "lessthan", "<": return try binary("<", v, a.first ?? .none).truthy
        case "gt", "greaterthan", ">": return try binary(">", v, a.first ?? .none).truthy
        case "le", "<=": return try binary("<=", v, a.first ?? .none).truthy
        case "ge", ">=": return try binary(">=", v, a.first ?? .none).truthy
        case "in": return try binary("in", v, a.first ?? .none).truthy
        case "lower": return v.str == v.str.lowercased()
        case "upper": return v.str == v.str.uppercased()
        default: throw TemplateError("unknown test \(name)")
        }
    }
}

extension JValue {
    var isBoolLike: Bool { if case .bool = self { return true }; return false }
}

/// Python's str.strip family: whitespace by default, else the given characters.
func pyStrip(_ s: String, _ chars: Set<Character>?, left: Bool, right: Bool) -> String {
    let strip: (Character) -> Bool = { c in chars.map { $0.contains(c) } ?? c.isWhitespace }
    var sub = s[...]
    if left { while let f = sub.first, strip(f) { sub = sub.dropFirst() } }
    if right { while let l = sub.last, strip(l) { sub = sub.dropLast() } }
    return String(sub)
}

func pySplit(_ s: String, _ sep: String, _ maxsplit: Int) -> [String] {
    guard !sep.isEmpty else { return [s] }
    var out: [String] = []
    var rest = s[...]
    while maxsplit < 0 || out.count < maxsplit, let r = rest.range(of: sep) {
        out.append(String(rest[..<r.lowerBound]))
        rest = rest[r.upperBound...]
    }
    out.append(String(rest))
    return out
}

func titleCase(_ s: String) -> String {
    var out = ""
    var prevLetter = false
    for c in s {
        out += prevLetter ? c.lowercased() : c.uppercased()
        prevLetter = c.isLetter
    }
    return out
}

/// A small strftime for `strftime_now` (the directives chat templates use).
func strftime(_ fmt: String, _ date: Date) -> String {
    let cal = Calendar(identifier: .gregorian)
    let c = cal.dateComponents(in: TimeZone.current, from: date)
    let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
    let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    var out = ""
    var it = fmt.makeIterator()
    while let ch = it.next() {
        guard ch == "%", let d = it.next() else { out.append(ch); continue }
        switch d {
        case "d": out += String(format: "%02d", c.day ?? 1)
        case "e": out += String(c.day ?? 1)
        case "m": out += String(format: "%02d", c.month ?? 1)
        case "Y": out += String(c.year ?? 1970)
        case "y": out += String(format: "%02d", (c.year ?? 1970) % 100)
        case "b": out += String(months[(c.month ?? 1) - 1].prefix(3))
        case "B": out += months[(c.month ?? 1) - 1]
        case "a": out += String(days[(c.weekday ?? 1) - 1].prefix(3))
        case "A": out += days[(c.weekday ?? 1) - 1]
        case "H": out += String(format: "%02d", c.hour ?? 0)
        case "M": out += String(format: "%02d", c.minute ?? 0)
        case "S": out += String(format: "%02d", c.second ?? 0)
        case "%": out += "%"
        default: out += "%" + String(d)
        }
    }
    return out
}
