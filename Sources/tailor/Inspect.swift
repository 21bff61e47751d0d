import ArgumentParser
import Foundation
import TailorFormats
import TailorKernels
import TailorModels
import TailorTokenizers

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a GGUF model file: architecture, hyper-parameters, tensors, tokenizer, chat template.")

    @Argument(help: "A .gguf file (or a model name from `tailor models`).")
    var file: String

    @Flag(help: "List every metadata key and tensor.")
    var all = false

    func run() async throws {
        let path = try runReportingErrors { try ModelCache.resolve(file) }
        let g = try runReportingErrors { try GGUFFile(path: path) }
        let arch = g["general.architecture"]?.string ?? "unknown"
        print("file:          \(path)")
        print("format:        GGUF v\(g.version), \(formatBytes(Int64(g.file.size))), alignment \(g.alignment)")
        if let n = g["general.name"]?.string { print("name:          \(n)") }
        print("architecture:  \(arch)")
        print("hyper-parameters:")
        for k in g.keys where k.hasPrefix(arch + ".") {
            print("  \(k.dropFirst(arch.count + 1)): \(g[k]!.summary())")
        }
        let params = g.tensors.reduce(0) { $0 + $1.elementCount }
        var byType: [GGMLType: (count: Int, elements: Int, bytes: Int)] = [:]
        for t in g.tensors {
            let e = byType[t.type] ?? (0, 0, 0)
            byType[t.type] = (e.count + 1, e.elements + t.elementCount, e.bytes + t.byteCount)
        }
        print("tensors:       \(g.tensors.count), \(String(format: "%.1f", Double(params) / 1e6))M parameters")
        for (type, s) in byType.sorted(by: { $0.value.bytes > $1.value.bytes }) {
            print(String(format: "  %-5@ %4d tensors  %8.1fM params  %@", type.description, s.count, Double(s.elements) / 1e6, formatBytes(Int64(s.bytes))))
        }
        let kind = g["tokenizer.ggml.model"]?.string ?? "none"
        let pre = g["tokenizer.ggml.pre"]?.string
        let vocab = g["tokenizer.ggml.tokens"]?.array?.count ?? 0
        print("tokenizer:     \(kind == "gpt2" ? "byte-level BPE (gpt2)" : kind == "llama" ? "SentencePiece BPE (llama)" : kind)\(pre.map { ", pre-tokenizer \($0)" } ?? ""), \(vocab) tokens")
        if let tok = try? Tokenizer(gguf: g) {
            func show(_ id: Int?) -> String { id.map { "\($0) \(tok.vocabulary.tokens[$0].debugDescription)" } ?? "none" }
            print("  bos: \(show(tok.bosID)) (added: \(tok.addBOS))   eos: \(show(tok.eosID))")
            print("  end of generation: \(tok.endOfGeneration.sorted().map { tok.vocabulary.tokens[$0] }.joined(separator: " "))")
        }
        if let tmpl = g["tokenizer.chat_template"]?.string {
            print("chat template (\(tmpl.count) characters):")
            print(tmpl.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
        } else {
            print("chat template: none in the file (Tailor uses ChatML)")
        }
        if all {
            print("metadata:")
            for k in g.keys { print("  \(k) = \(g[k]!.summary())") }
            print("tensors:")
            for t in g.tensors { print("  \(t.name)  \(t.type)  \(t.shape)  @\(t.offset)") }
        }
    }
}
