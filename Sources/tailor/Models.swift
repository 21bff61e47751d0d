import ArgumentParser
import Foundation
import TailorFormats
import TailorModels

struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the models in the model cache.")

    func run() async throws {
        let entries = ModelCache.list()
        print("model cache: \(ModelCache.directory.path)")
        if entries.isEmpty {
            print("  (empty: run ./scripts/setup to fetch the default models)")
            return
        }
        for e in entries {
            var kind = e.isDirectory ? "encoder (safetensors)" : "file"
            if !e.isDirectory, e.name.hasSuffix(".gguf"), let g = try? GGUFFile(path: e.path) {
                kind = "GGUF \(g["general.architecture"]?.string ?? "?")"
                if let n = g["general.name"]?.string { kind += ", \(n)" }
            }
            let tag = e.name == ModelCache.defaultChatModel ? "  [default chat]" : e.name == ModelCache.defaultEmbeddingModel ? "  [default embeddings]" : ""
            print("  \(e.name)  \(formatBytes(e.bytes))  \(kind)\(tag)")
        }
    }
}
