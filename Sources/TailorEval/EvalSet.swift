// Evaluation sets (JSONL), one item per line, of three task kinds:
//   knowledge QA     {"question", "answer"} or {"question", "answers": [...]}
//   classification   {"input", "label"}            ("text" is accepted for "input")
//   generation       {"input", "reference"}
// All lines of a file are one kind; errors name the line and the field.
import Foundation
import TailorFormats

public enum TaskKind: String, Codable, Sendable { case qa, classification, generation }

public struct EvalItem: Equatable, Sendable {
    public var id: String
    public var kind: TaskKind
    /// The question (QA) or input text.
    public var input: String
    /// Reference answers (QA), the label (classification, one), or the reference text (generation, one).
    public var references: [String]
}

public enum EvalError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case badLine(path: String, line: Int, detail: String)
    case empty(path: String)

    public var description: String {
        switch self {
        case let .unreadable(p, r): return "\(p): cannot read (\(r))"
        case let .badLine(p, l, d): return "\(p):\(l): \(d)"
        case let .empty(p): return "\(p): no evaluation items (one JSON object per line: {\"question\", \"answer\"}, {\"input\", \"label\"} or {\"input\", \"reference\"})"
        }
    }
}

public struct EvalSet: Sendable {
    public var path: String
    public var kind: TaskKind
    public var items: [EvalItem]

    /// Labels of a classification set, in order of first appearance.
    public var labels: [String] {
        var seen = Set<String>()
        return items.compactMap { $0.references.first }.filter { seen.insert($0).inserted }
    }

    public static func load(_ path: String) throws -> EvalSet {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw EvalError.unreadable(path: path, reason: error.localizedDescription) }
        var items: [EvalItem] = []
        var kind: TaskKind?
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            func bad(_ s: String) -> EvalError { .badLine(path: path, line: i + 1, detail: s) }
            let v: JSONValue
            do { v = try JSONValue.parse(line) } catch { throw bad("not valid JSON (\(error))") }
            guard case .object(let fields) = v else { throw bad("an item must be a JSON object") }
            let id = v["id"].map { $0.string ?? $0.serialized() } ?? "\(items.count + 1)"
            let item: EvalItem
            if let q = v["question"] {
                guard let question = q.string, !question.isEmpty else { throw bad("\"question\" must be a non-empty string") }
                var answers: [String] = []
                if let a = v["answer"] { guard let s = a.string else { throw bad("\"answer\" must be a string") }; answers = [s] }
                if let a = v["answers"] {
                    guard let arr = a.array, !arr.isEmpty, arr.allSatisfy({ $0.string != nil }) else { throw bad("\"answers\" must be a non-empty array of strings") }
                    answers += arr.compactMap(\.string)
                }
                guard !answers.isEmpty else { throw bad("a question needs \"answer\" or \"answers\"") }
                item = EvalItem(id: id, kind: .qa, input: question, references: answers)
            } else if let input = (v["input"] ?? v["text"]) {
                guard let s = input.string, !s.isEmpty else { throw bad("\"input\" must be a non-empty string") }
                if let l = v["label"] {
                    let label = l.string ?? l.serialized()
                    guard !label.isEmpty else { throw bad("\"label\" must not be empty") }
                    item = EvalItem(id: id, kind: .classification, input: s, references: [label])
                } else if let r = v["reference"] {
                    guard let ref = r.string, !ref.isEmpty else { throw bad("\"reference\" must be a non-empty string") }
                    item = EvalItem(id: id, kind: .generation, input: s, references: [ref])
                } else {
                    throw bad("an \"input\" needs a \"label\" (classification) or a \"reference\" (generation)")
                }
            } else {
                throw bad("unknown item (fields: \(fields.map(\.0).joined(separator: ", "))); use {\"question\", \"answer\"}, {\"input\", \"label\"} or {\"input\", \"reference\"}")
            }
            if let k = kind, k != item.kind {
                throw bad("this is a \(item.kind.rawValue) item but the file started with \(k.rawValue) items; put each task in its own file")
            }
            kind = item.kind
            items.append(item)
        }
        guard let k = kind else { throw EvalError.empty(path: path) }
        return EvalSet(path: path, kind: k, items: items)
    }
}
