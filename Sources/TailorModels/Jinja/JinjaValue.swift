// Values of the template language, with Python's semantics where templates rely on them:
// truthiness, equality, str() and repr(), ordered dicts, and lists shared by reference.
import Foundation
import TailorFormats

public final class JList { public var items: [JValue]; public init(_ i: [JValue]) { items = i } }
public final class JDict {
    public private(set) var keys: [String] = []
    public private(set) var storage: [String: JValue] = [:]
    public init() {}
    public init(_ pairs: [(String, JValue)]) { for (k, v) in pairs { self[k] = v } }
    public subscript(key: String) -> JValue? {
        get { storage[key] }
        set {
            if let v = newValue {
                if storage[key] == nil { keys.append(key) }
                storage[key] = v
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }
    var pairs: [(String, JValue)] { keys.map { ($0, storage[$0]!) } }
}

public struct JCallable {
    let name: String
    let call: ([JValue], [(String, JValue)]) throws -> JValue
}

public enum JValue {
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list(JList)
    case dict(JDict)
    case namespace(JDict)
    case callable(JCallable)

    public static func list(_ items: [JValue]) -> JValue { .list(JList(items)) }
    public static func dict(_ pairs: [(String, JValue)]) -> JValue { .dict(JDict(pairs)) }

    /// Builds a value from JSON.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map { JValue(json: $0) })
        case .object(let kv): self = .dict(kv.map { ($0.0, JValue(json: $0.1)) })
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true }; return false }
    var isNone: Bool { if case .none = self { return true }; return false }

    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l): return !l.items.isEmpty
        case .dict(let d): return !d.keys.isEmpty
        case .namespace, .callable: return true
        }
    }

    /// Python's str().
    var str: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python's repr().
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloat(d)
        case .string(let s): return pythonStringRepr(s)
        case .list(let l): return "[" + l.items.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.pairs.map { pythonStringRepr($0.0) + ": " + $0.1.repr }.joined(separator: ", ") + "}"
        case .namespace: return "<Namespace>"
        case .callable(let c): return "<function \(c.name)>"
        }
    }

    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "none"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "string"
        case .list: return "list"
        case .dict: return "dict"
        case .namespace: return "namespace"
        case .callable: return "function"
        }
    }

    /// Python ==.
    func equals(_ o: JValue) -> Bool {
        switch (self, o) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.list(a), .list(b)): return a.items.count == b.items.count && zip(a.items, b.items).allSatisfy { $0.equals($1) }
        case let (.dict(a), .dict(b)):
            return a.keys.count == b.keys.count && a.keys.allSatisfy { k in b[k].map { a[k]!.equals($0) } ?? false }
        case let (.namespace(a), .namespace(b)): return a === b
        default:
            if let x = number, let y = o.number { return x == y }
            return false
        }
    }

    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Items when iterated: list items, dict keys, string characters.
    func iterate() throws -> [JValue] {
        switch self {
        case .list(let l): return l.items
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined, .none: return []
        default: throw TemplateError("\(typeName) is not iterable")
        }
    }
}

func pythonFloat(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d > 0 ? "inf" : "-inf" }
    if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
    var s = "\(d)"
    // Swift writes 1e-05 as "1e-05" like Python; large exponents as "1e+20" like Python.
    if s.contains("e") && !s.contains("e-") && !s.contains("e+") { s = s.replacingOccurrences(of: "e", with: "e+") }
    return s
}

func pythonStringRepr(_ s: String) -> String {
    let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for u in s.unicodeScalars {
        switch u {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if Character(u) == quote { out += "\\" + String(quote) }
            else if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\x%02x", u.value) }
            else { out.unicodeScalars.append(u) }
        }
    }
    out.append(quote)
    return out
}

/// `json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=…)` as transformers' tojson does.
func toJSON(_ v: JValue, indent: Int?, sortKeys: Bool = false, level: Int = 0) -> String {
    let str = JSONValue.quote
    let nl = indent.map { "\n" + String(repeating: " ", count: $0 * (level + 1)) } ?? ""
    let close = indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
    let itemSep = indent == nil ? ", " : ","
    switch v {
    case .undefined, .none: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d): return d.isNaN ? "NaN" : d.isInfinite ? (d > 0 ? "Infinity" : "-Infinity") : pythonFloat(d)
    case .string(let s): return str(s)
    case .list(let l):
        if l.items.isEmpty { return "[]" }
        return "[" + nl + l.items.map { toJSON($0, indent: indent, sortKeys: sortKeys, level: level + 1) }.joined(separator: itemSep + nl) + close + "]"
    case .dict(let d), .namespace(let d):
        if d.keys.isEmpty { return "{}" }
        let keys = sortKeys ? d.keys.sorted() : d.keys
        return "{" + nl + keys.map { str($0) + ": " + toJSON(d[$0]!, indent: indent, sortKeys: sortKeys, level: level + 1) }.joined(separator: itemSep + nl) + close + "}"
    case .callable(let c): return str("<function \(c.name)>")
    }
}
