import ArgumentParser
import Foundation
import TailorKernels
import TailorModels

struct Quantize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-quantize a GGUF model (like llama-quantize).")

    @Argument(help: "The model to read (.gguf path or cache name).") var input: String
    @Argument(help: "Where to write the new .gguf.") var output: String
    @Option(help: "Target type: \(Quantizer.supported.map(\.description).joined(separator: ", ")).") var type: String

    func validate() throws {
        guard let t = GGMLType(name: type), Quantizer.supported.contains(t) else {
            throw ValidationError("--type \(type) is not supported; choose one of \(Quantizer.supported.map(\.description).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let path = try runReportingErrors { try ModelCache.resolve(input) }
        let t = GGMLType(name: type)!
        let start = Date()
        let s = try runReportingErrors {
            try ModelQuantizer.quantize(input: path, output: output, type: t) { done, total in
                FileHandle.standardError.write(Data("\rquantizing: \(done)/\(total) tensors".utf8))
            }
        }
        note("")
        print("wrote \(output): \(formatBytes(Int64(s.bytes))), \(s.quantized) of \(s.tensors) tensors re-quantized to \(t) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        if !s.fallbacks.isEmpty {
            let byType = Dictionary(grouping: s.fallbacks, by: { $0.value }).mapValues(\.count)
            print("rows not a multiple of 256 fell back: " + byType.map { "\($0.value) tensors to \($0.key)" }.joined(separator: ", "))
        }
    }
}
