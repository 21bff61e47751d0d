// A chat/completion model ready to use: weights, tokenizer and chat template from one GGUF file.
import Foundation
import TailorFormats
import TailorKernels
import TailorTokenizers

public final class LanguageModel: @unchecked Sendable {
    public let path: String
    public let file: GGUFFile
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate

    /// Loads a model by path or cache name (see ModelCache.resolve).
    public init(_ spec: String? = nil, threads: Int = ThreadPool.availableCores) throws {
        path = try ModelCache.resolve(spec)
        do {
            file = try GGUFFile(path: path)
        } catch let e as FormatError {
            throw ModelError.format(e)
        }
        model = try LlamaModel(file: file, threads: threads)
        tokenizer = try Tokenizer(gguf: file)
        chatTemplate = try ChatTemplate(gguf: file, tokenizer: tokenizer)
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
