import ArgumentParser
import Foundation
import TailorFormats
import TailorKernels
import TailorModels
import TailorRAG

struct Embed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed texts: one text per line, or JSONL {\"id\", \"text\"}; writes JSONL {\"id\", \"embedding\"} or .npy.")

    @Option(name: [.short, .long], help: "Embedding model: a sentence-transformers directory or a cache name (default: all-MiniLM-L6-v2).")
    var model: String?
    @Option(name: [.short, .long], help: "Input file, or - for standard input.")
    var input: String = "-"
    @Option(help: "Output format: jsonl or npy.")
    var format: OutputFormat = .jsonl
    @Option(name: [.short, .long], help: "Output file (default: standard output; npy needs a file).")
    var output: String?
    @Option(name: [.short, .long], help: "Threads.")
    var threads: Int = ThreadPool.availableCores
    @Option(help: "Texts per batch.")
    var batch: Int = 32

    enum OutputFormat: String, ExpressibleByArgument { case jsonl, npy }

    func validate() throws {
        if format == .npy && output == nil { throw ValidationError("--format npy needs -o FILE.npy") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() async throws {
        let data: Data
        if input == "-" { data = FileHandle.standardInput.readDataToEndOfFile() }
        else {
            guard let d = FileManager.default.contents(atPath: input) else {
                note("error: cannot read \(input): no such file"); throw ExitCode.failure
            }
            data = d
        }
        let items = try runReportingErrors { try EmbedInput.parse(String(decoding: data, as: UTF8.self), source: input == "-" ? "standard input" : input) }
        let embedder = try runReportingErrors { try SentenceEmbedder(model, threads: threads) }
        embedder.batchSize = batch
        let start = Date()
        var vectors: [[Float]] = []
        let chunk = 256
        for s in stride(from: 0, to: items.count, by: chunk) {
            vectors += try runReportingErrors { try embedder.embed(items[s..<min(items.count, s + chunk)].map(\.text)) }
            if items.count > chunk {
                let done = min(items.count, s + chunk), rate = Double(done) / Date().timeIntervalSince(start)
                FileHandle.standardError.write(Data(String(format: "\rembedding: %d/%d texts, %.0f texts/s, ETA %.0f s", done, items.count, rate, Double(items.count - done) / rate).utf8))
            }
        }
        if items.count > chunk { note("") }
        switch format {
        case .jsonl:
            var out = ""
            for (item, v) in zip(items, vectors) {
                out += "{\"id\":\(JSONValue.quote(item.id)),\"embedding\":[" + v.map { String($0) }.joined(separator: ",") + "]}\n"
            }
            if let output { try Data(out.utf8).write(to: URL(fileURLWithPath: output)) } else { emit(out) }
        case .npy:
            try NPYFile.write(vectors, dimension: embedder.dimension, to: URL(fileURLWithPath: output!))
        }
    }
}

struct Similarity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cosine similarity of two texts' embeddings.")
    @Argument(help: "First text.") var a: String
    @Argument(help: "Second text.") var b: String
    @Option(name: [.short, .long], help: "Embedding model (default: all-MiniLM-L6-v2).") var model: String?

    func run() async throws {
        let e = try runReportingErrors { try SentenceEmbedder(model) }
        let v = try runReportingErrors { try e.embed([a, b]) }
        print(String(format: "%.4f", SentenceEmbedder.cosine(v[0], v[1])))
    }
}

/// Input lines for `tailor embed`: plain text lines, or JSONL objects with "text" (and "id").
enum EmbedInput {
    struct Item { let id: String; let text: String }
    struct BadLine: Error, CustomStringConvertible {
        let source: String, line: Int, reason: String
        var description: String { "\(source), line \(line): \(reason)" }
    }

    static func parse(_ text: String, source: String) throws -> [Item] {
        var items: [Item] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            if line.hasPrefix("{") {
                let v: JSONValue
                do { v = try JSONValue.parse(line) } catch { throw BadLine(source: source, line: i + 1, reason: "invalid JSON (\(error)); give one JSON object or one plain text per line") }
                guard let t = v["text"]?.string else { throw BadLine(source: source, line: i + 1, reason: "the object has no string field \"text\"") }
                let id = v["id"].map { $0.string ?? $0.serialized() } ?? String(items.count)
                items.append(Item(id: id, text: t))
            } else {
                items.append(Item(id: String(items.count), text: line))
            }
        }
        return items
    }
}

