import ArgumentParser
import Foundation
import TailorKernels
import TailorModels

struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a sentence-transformers BERT folder to a GGUF file (llama.cpp's bert layout).")
    @Argument(help: "The model folder (config.json, model.safetensors, tokenizer.json) or a cache name.") var input: String
    @Argument(help: "The .gguf file to write.") var output: String
    @Option(help: "Weight type: F32 or F16.") var type: String = "F32"

    func validate() throws {
        guard ["f32", "f16"].contains(type.lowercased()) else { throw ValidationError("--type must be F32 or F16") }
    }

    func run() async throws {
        let dir = try runReportingErrors { try ModelCache.resolve(input, default: ModelCache.defaultEmbeddingModel) }
        try runReportingErrors { try BertGGUF.write(directory: dir, to: output, type: type.lowercased() == "f16" ? .f16 : .f32) }
        print("wrote \(output)")
    }
}
