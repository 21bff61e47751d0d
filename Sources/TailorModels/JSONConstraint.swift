// Constrained decoding for `response_format: json_object`: a pushdown automaton over the bytes of
// the text (RFC 8259's grammar) says whether a text is the start of a JSON value; the generator
// only takes tokens that keep it one, and stops when the value is complete.
public enum GenerationConstraint: Sendable, Equatable {
    /// One JSON object.
    case jsonObject
}

/// Whether bytes fed so far are a prefix of one JSON value (an object, with `objectOnly`).
struct JSONPrefix {
    private enum Expect { case value, key, colon, commaOrClose, keyOrClose, valueOrClose, end }
    private enum Number { case sign, zero, integer, dot, fraction, exponent, exponentSign, exponentDigits }
    private var stack: [UInt8] = []
    private var expect = Expect.value
    private var inString = false, stringIsKey = false, escape = false, hexLeft = 0
    private var number: Number?
    private var literal: [UInt8] = []
    let objectOnly: Bool
    /// The value is complete (only whitespace may follow).
    private(set) var isComplete = false

    init(objectOnly: Bool = true) { self.objectOnly = objectOnly }

    /// Feeds bytes; false (and the state left as it was at the first bad byte) when they cannot
    /// continue a JSON value.
    mutating func feed<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        for b in bytes where !feed(b) { return false }
        return true
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    mutating func feed(_ b: UInt8) -> Bool {
        if inString {
            if hexLeft > 0 {
                guard (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b) else { return false }
                hexLeft -= 1
                return true
            }
            if escape {
                escape = false
                if b == UInt8(ascii: "u") { hexLeft = 4; return true }
                return [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t")].contains(b)
            }
            if b == UInt8(ascii: "\\") { escape = true; return true }
            if b == UInt8(ascii: "\"") {
                inString = false
                if stringIsKey { expect = .colon } else { valueDone() }
                return true
            }
            return b >= 0x20
        }
        if !literal.isEmpty {
            guard b == literal[0] else { return false }
            literal.removeFirst()
            if literal.isEmpty { valueDone() }
            return true
        }
        if let n = number {
            if let next = Self.step(n, b) { number = next; return true }
            // The number ends here if it may: the byte is then read as structure.
            guard [.zero, .integer, .fraction, .exponentDigits].contains(n) else { return false }
            number = nil
            valueDone()
        }
        if Self.isSpace(b) { return true }
        switch expect {
        case .end: return false
        case .colon:
            guard b == UInt8(ascii: ":") else { return false }
            expect = .value
            return true
        case .commaOrClose:
            let top = stack.last
            if b == UInt8(ascii: ",") { expect = top == UInt8(ascii: "{") ? .key : .value; return true }
            if b == UInt8(ascii: "}"), top == UInt8(ascii: "{") { stack.removeLast(); valueDone(); return true }
            if b == UInt8(ascii: "]"), top == UInt8(ascii: "[") { stack.removeLast(); valueDone(); return true }
            return false
        case .key, .keyOrClose:
            if b == UInt8(ascii: "}"), expect == .keyOrClose { stack.removeLast(); valueDone(); return true }
            guard b == UInt8(ascii: "\"") else { return false }
            inString = true; stringIsKey = true
            return true
        case .value, .valueOrClose:
            if b == UInt8(ascii: "]"), expect == .valueOrClose { stack.removeLast(); valueDone(); return true }
            if stack.isEmpty && objectOnly && b != UInt8(ascii: "{") { return false }
            switch b {
            case UInt8(ascii: "{"): stack.append(b); expect = .keyOrClose
            case UInt8(ascii: "["): stack.append(b); expect = .valueOrClose
            case UInt8(ascii: "\""): inString = true; stringIsKey = false
            case UInt8(ascii: "-"): number = .sign
            case UInt8(ascii: "0"): number = .zero
            case 0x31...0x39: number = .integer
            case UInt8(ascii: "t"): literal = Array("rue".utf8)
            case UInt8(ascii: "f"): literal = Array("alse".utf8)
            case UInt8(ascii: "n"): literal = Array("ull".utf8)
            default: return false
            }
            return true
        }
    }

    private mutating func valueDone() {
        if stack.isEmpty { expect = .end; isComplete = true } else { expect = .commaOrClose }
    }

    private static func step(_ n: Number, _ b: UInt8) -> Number? {
        let digit = isDigit(b)
        switch n {
        case .sign: return b == UInt8(ascii: "0") ? .zero : (digit ? .integer : nil)
        case .zero: return b == UInt8(ascii: ".") ? .dot : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E") ? .exponent : nil)
        case .integer: return digit ? .integer : (b == UInt8(ascii: ".") ? .dot : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E") ? .exponent : nil))
        case .dot: return digit ? .fraction : nil
        case .fraction: return digit ? .fraction : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E") ? .exponent : nil)
        case .exponent: return b == UInt8(ascii: "+") || b == UInt8(ascii: "-") ? .exponentSign : (digit ? .exponentDigits : nil)
        case .exponentSign, .exponentDigits: return digit ? .exponentDigits : nil
        }
    }
}
