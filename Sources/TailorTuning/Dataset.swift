// Training data: JSONL in the formats practitioners use, turned into token ids with a loss mask,
// formatted by the model's own chat template exactly as inference will see it.
//   {"messages": [{"role", "content"}, …]}        loss on assistant turns (and their end-of-turn token)
//   {"prompt", "completion"}                        loss on the completion
//   {"instruction", "input", "output"}  (Alpaca)    loss on the output
//   {"text"}                                        loss on everything (continued pre-training)
import Foundation
import TailorFormats
import TailorModels

public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case badLine(path: String, line: Int, detail: String)
    case empty(path: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read (\(reason))"
        case let .badLine(path, line, detail): return "\(path):\(line): \(detail)"
        case let .empty(path): return "\(path): no training examples (one JSON object per line, e.g. {\"messages\": [...]})"
        }
    }
}

/// One example as the user wrote it.
public enum TrainingExample: Equatable, Sendable {
    case chat([ChatMessage])
    case completion(prompt: String, completion: String)
    case text(String)

    /// Parses one JSONL line; errors name the field and the fix.
    public static func parse(_ v: JSONValue, path: String, line: Int) throws -> TrainingExample {
        func bad(_ s: String) -> DatasetError { .badLine(path: path, line: line, detail: s) }
        guard case .object(let pairs) = v else { throw bad("an example must be a JSON object") }
        let keys = Set(pairs.map(\.0))
        if let m = v["messages"] {
            guard let arr = m.array, !arr.isEmpty else { throw bad("\"messages\" must be a non-empty array of {\"role\", \"content\"}") }
            var msgs: [ChatMessage] = []
            for (i, x) in arr.enumerated() {
                guard let role = x["role"]?.string else { throw bad("messages[\(i)] has no \"role\" (system, user or assistant)") }
                guard ["system", "user", "assistant", "tool"].contains(role) else { throw bad("messages[\(i)].role is \"\(role)\"; use system, user or assistant") }
                guard let content = x["content"]?.string else { throw bad("messages[\(i)] has no string \"content\"") }
                msgs.append(ChatMessage(role: role, content: content))
            }
            guard msgs.contains(where: { $0.role == "assistant" }) else { throw bad("no assistant message: nothing to learn from") }
            return .chat(msgs)
        }
        if keys.contains("prompt") || keys.contains("completion") {
            guard let p = v["prompt"]?.string else { throw bad("\"prompt\" must be a string") }
            guard let c = v["completion"]?.string, !c.isEmpty else { throw bad("\"completion\" must be a non-empty string") }
            return .completion(prompt: p, completion: c)
        }
        if keys.contains("instruction") || keys.contains("output") {
            guard let ins = v["instruction"]?.string else { throw bad("\"instruction\" must be a string") }
            guard let out = v["output"]?.string, !out.isEmpty else { throw bad("\"output\" must be a non-empty string") }
            let input = v["input"]?.string ?? ""
            return .completion(prompt: input.isEmpty ? ins : ins + "\n\n" + input, completion: out)
        }
        if let t = v["text"] {
            guard let s = t.string, !s.isEmpty else { throw bad("\"text\" must be a non-empty string") }
            return .text(s)
        }
        throw bad("unknown format (fields: \(pairs.map(\.0).joined(separator: ", "))); use {\"messages\"}, {\"prompt\", \"completion\"}, {\"instruction\", \"input\", \"output\"} or {\"text\"}")
    }

    /// Reads a JSONL file.
    public static func load(_ path: String) throws -> [TrainingExample] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) }
        catch { throw DatasetError.unreadable(path: path, reason: error.localizedDescription) }
        var out: [TrainingExample] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let l = line.trimmingCharacters(in: .whitespaces)
            if l.isEmpty { continue }
            let v: JSONValue
            do { v = try JSONValue.parse(l) } catch { throw DatasetError.badLine(path: path, line: i + 1, detail: "not valid JSON (\(error))") }
            out.append(try parse(v, path: path, line: i + 1))
        }
        if out.isEmpty { throw DatasetError.empty(path: path) }
        return out
    }
}

/// Token ids and, per position, whether the model is trained to predict that token.
public struct TokenizedExample: Equatable, Sendable {
    public var ids: [Int]
    public var trained: [Bool]
    public var trainedCount: Int { trained.filter { $0 }.count }

    public init(ids: [Int], trained: [Bool]) {
        precondition(ids.count == trained.count)
        self.ids = ids
        self.trained = trained
    }

    /// Next-token targets for positions 0..<count−1 (−1 where the loss is masked).
    public var targets: [Int] { (0..<(ids.count - 1)).map { trained[$0 + 1] ? ids[$0 + 1] : -1 } }
}

public struct ExampleFormatter {
    public let model: LanguageModel
    public init(model: LanguageModel) { self.model = model }

    /// Formats with the model's chat template and marks the trained tokens. Segments are cut at
    /// the template's turn boundaries and tokenized one by one, so that each token belongs to
    /// one segment; the trained segments end with the end-of-turn token (and nothing after it).
    public func tokenize(_ e: TrainingExample) throws -> TokenizedExample {
        switch e {
        case .text(let t):
            var ids = model.tokenizer.encode(t, addSpecial: false, parseSpecial: false)
            if model.tokenizer.addBOS, let b = model.tokenizer.bosID { ids.insert(b, at: 0) }
            if let eos = model.tokenizer.eosID { ids.append(eos) }
            return TokenizedExample(ids: ids, trained: ids.indices.map { $0 > 0 || !model.tokenizer.addBOS })
        case let .completion(prompt, completion):
            return try tokenize(.chat([.user(prompt), .assistant(completion)]))
        case .chat(let msgs):
            var ids: [Int] = [], trained: [Bool] = []
            var done = ""
            func append(_ text: String, train: Bool) {
                var piece = model.tokenizer.encode(text, addSpecial: false, parseSpecial: true)
                if ids.isEmpty, model.tokenizer.addBOS, let b = model.tokenizer.bosID, piece.first != b { piece.insert(b, at: 0) }
                var mask = [Bool](repeating: train, count: piece.count)
                if train, let end = piece.firstIndex(where: { model.tokenizer.endOfGeneration.contains($0) }) {
                    for k in (end + 1)..<piece.count { mask[k] = false }
                }
                ids += piece; trained += mask
            }
            for (i, m) in msgs.enumerated() where m.role == "assistant" {
                let before = try model.chatTemplate.render(Array(msgs[..<i]), addGenerationPrompt: true)
                let through = try model.chatTemplate.render(Array(msgs[...i]), addGenerationPrompt: false)
                guard before.hasPrefix(done), through.hasPrefix(before) else {
                    throw DatasetError.badLine(path: "chat template", line: 0, detail: "the template does not render conversations by extension; cannot mask assistant turns")
                }
                append(String(before.dropFirst(done.count)), train: false)
                append(String(through.dropFirst(before.count)), train: true)
                done = through
            }
            return TokenizedExample(ids: ids, trained: trained)
        }
    }
}

/// Train/validation splits: a seeded shuffle, the last share held out.
public enum DataSplit {
    /// `items` shuffled with `seed`, the last `count` held out for validation.
    public static func holdOut<T>(_ items: [T], count: Int, seed: UInt64) -> (train: [T], validation: [T]) {
        guard count > 0, count < items.count else { return (items, []) }
        var all = items
        var rng = SplitMix64(seed: seed)
        for i in stride(from: all.count - 1, to: 0, by: -1) { all.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return (Array(all.dropLast(count)), Array(all.suffix(count)))
    }

    /// A share `fraction` held out when there are at least `minimum` items (else none, and a
    /// note saying so).
    public static func holdOut<T>(_ items: [T], fraction: Double, seed: UInt64, minimum: Int = 10) -> (train: [T], validation: [T], note: String?) {
        guard fraction > 0 else { return (items, [], nil) }
        let n = Int((Double(items.count) * fraction).rounded())
        guard items.count >= minimum, n > 0 else {
            return (items, [], "\(items.count) examples are too few to hold some out; training without validation (give --val)")
        }
        let (t, v) = holdOut(items, count: n, seed: seed)
        return (t, v, nil)
    }
}

/// Examples ready for LoRA training: tokenized, split, with what preparing them did.
public struct PreparedDataset: Sendable {
    public var train: [TokenizedExample]
    public var validation: [TokenizedExample]
    /// Things the user should know (examples held out, cut or skipped).
    public var notes: [String]
}

extension ExampleFormatter {
    /// Loads and tokenizes `train` (and `validation`, else holds out `validationFraction` of
    /// `train` with `seed`), notes the examples longer than `maxLength` and drops those with
    /// nothing to learn within it. An empty result is an error naming the file.
    public func prepare(train: String, validation: String?, validationFraction: Double, seed: UInt64, maxLength: Int) throws -> PreparedDataset {
        var notes: [String] = []
        var trainSet = try TrainingExample.load(train).map { try tokenize($0) }
        var valSet: [TokenizedExample] = []
        if let validation {
            valSet = try TrainingExample.load(validation).map { try tokenize($0) }
        } else {
            let s = DataSplit.holdOut(trainSet, fraction: validationFraction, seed: seed)
            trainSet = s.train; valSet = s.validation
            if let n = s.note { notes.append(n) }
        }
        let cut = (trainSet + valSet).filter { $0.ids.count > maxLength }.count
        if cut > 0 { notes.append("\(cut) examples are longer than --max-len \(maxLength) tokens and are cut (their end is not trained)") }
        let untrainable = trainSet.filter { e in !e.trained.prefix(maxLength).contains(true) }.count
        if untrainable > 0 {
            notes.append("\(untrainable) examples have nothing to learn within --max-len \(maxLength) tokens; they are skipped")
            trainSet = trainSet.filter { e in e.trained.prefix(maxLength).contains(true) }
        }
        guard !trainSet.isEmpty else { throw TuningError.badOption("\(train): no examples left to train on") }
        return PreparedDataset(train: trainSet, validation: valSet, notes: notes)
    }
}
