// A chat/completion model ready to use: weights, tokenizer and chat template from one GGUF file.
import Foundation
import TailorFormats
import TailorKernels
import TailorTokenizers

public final class LanguageModel: @unchecked Sendable {
    public let path: String
    public let file: GGUFFile
    public let model: any CausalLM
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate

    /// Loads a model by path or cache name (see ModelCache.resolve).
    /// `precision` .fast (default) decodes with 8-bit activations like llama.cpp; .exact keeps
    /// fp32 activations like transformers.
    public init(_ spec: String? = nil, threads: Int = ThreadPool.availableCores, precision: Precision = .fast) throws {
        path = try ModelCache.resolve(spec)
        file = try LanguageModel.open(path)
        model = try LanguageModel.architecture(file, threads: threads)
        model.precision = precision
        tokenizer = try Tokenizer(gguf: file)
        chatTemplate = try ChatTemplate(gguf: file, tokenizer: tokenizer)
    }

    static func open(_ path: String) throws -> GGUFFile {
        do { return try GGUFFile(path: path) } catch { throw ModelError.format(error) }
    }

    /// The decoder for the file's `general.architecture`.
    public static func architecture(_ file: GGUFFile, threads: Int) throws -> any CausalLM {
        switch file["general.architecture"]?.string ?? "" {
        case "gemma3": return try Gemma3Model(file: file, threads: threads)
        default: return try LlamaModel(file: file, threads: threads)
        }
    }

    public var name: String {
        file["general.name"]?.string ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }

    public func generator() -> Generator { Generator(model: model, tokenizer: tokenizer) }

    /// Token ids for a rendered chat prompt: special tokens are parsed, BOS added only when the
    /// template did not already write it.
    public func encodeChat(_ text: String) -> [Int] {
        var ids = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        if tokenizer.addBOS, let bos = tokenizer.bosID, ids.first != bos { ids.insert(bos, at: 0) }
        return ids
    }
}

/// Opens a GGUF file with the model errors' wording.
public enum GGUFFileLoader {
    public static func open(_ path: String) throws -> GGUFFile { try LanguageModel.open(path) }
}
