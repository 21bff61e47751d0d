// A chat/completion model ready to use: weights, tokenizer and chat template from one GGUF file,
// and the LoRA adapters loaded on it. Loaded once and shared by every request: what one request
// changes (its cache, precision, adapters and their scales) lives in its own session.
import Foundation
import Synchronization
import TailorFormats
import TailorKernels
import TailorTokenizers

// @unchecked Sendable: every property is immutable after init except the adapter registry, which
// guards itself; the tokenizer and chat template are read-only.
public final class LanguageModel: @unchecked Sendable {
    public let path: String
    public let file: GGUFFile
    public let model: any CausalLM
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate
    /// The precision sessions get unless they ask for another.
    public let precision: Precision
    /// LoRA adapters loaded on this model, by name; requests choose among them.
    public let adapters: AdapterRegistry

    /// Loads a model by path or cache name (see ModelCache.resolve).
    /// `precision` .fast (default) decodes with 8-bit activations like llama.cpp; .exact keeps
    /// fp32 activations like transformers. `pool`: the compute scheduler (default: the process's).
    public init(_ spec: String? = nil, threads: Int = ThreadPool.availableCores, precision: Precision = .fast,
                pool: ThreadPool? = nil) throws {
        path = try ModelCache.resolve(spec)
        file = try LanguageModel.open(path)
        model = try LanguageModel.architecture(file, pool: pool ?? ThreadPool.shared(threads: threads))
        self.precision = precision
        tokenizer = try Tokenizer(gguf: file)
        chatTemplate = try ChatTemplate(gguf: file, tokenizer: tokenizer)
        adapters = AdapterRegistry(model: model)
    }

    static func open(_ path: String) throws -> GGUFFile {
        do { return try GGUFFile(path: path) } catch { throw ModelError.format(error) }
    }

    /// The decoder for the file's `general.architecture`.
    public static func architecture(_ file: GGUFFile, pool: ThreadPool) throws -> any CausalLM {
        switch file["general.architecture"]?.string ?? "" {
        case "gemma3": return try Gemma3Model(file: file, pool: pool)
        default: return try LlamaModel(file: file, pool: pool)
        }
    }

    public var name: String {
        file["general.name"]?.string ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }

    /// A fresh session: a cache of up to `maxTokens` positions in `precision` (default: the
    /// model's), with `adapters`.
    public func session(precision: Precision? = nil, adapters: [AdapterUse] = [], maxTokens: Int? = nil) -> DecoderSession {
        DecoderSession(model: model, precision: precision ?? self.precision, adapters: adapters, maxTokens: maxTokens)
    }

    /// A generator in `precision` (default: the model's) applying `adapters`.
    public func generator(precision: Precision? = nil, adapters: [AdapterUse] = []) -> Generator {
        Generator(model: model, tokenizer: tokenizer, precision: precision ?? self.precision, adapters: adapters)
    }

    /// A cache in the model's precision (or `precision`), of up to `maxTokens` positions.
    public func makeCache(maxTokens: Int?, precision: Precision? = nil) -> KVCache {
        model.makeCache(maxTokens: maxTokens, precision: precision ?? self.precision)
    }

    /// Token ids for a rendered chat prompt: special tokens are parsed, BOS added only when the
    /// template did not already write it.
    public func encodeChat(_ text: String) -> [Int] {
        var ids = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        if tokenizer.addBOS, let bos = tokenizer.bosID, ids.first != bos { ids.insert(bos, at: 0) }
        return ids
    }
}

/// The LoRA adapters loaded on one base model, by name. Loading or unloading one never reloads
/// the base; a request holding an adapter keeps it alive after it is unloaded.
public final class AdapterRegistry: Sendable {
    private let shapes: [LoRATarget: (inputs: Int, outputs: Int)]?
    private let config: LlamaConfig?
    private let entries = Mutex<[String: LoRAAdapter]>([:])

    init(model: any CausalLM) {
        shapes = model.adapterShapes
        config = (model as? LlamaModel)?.config
    }

    /// Loads the adapter at `path` (a directory from `tailor tune`, PEFT files or a GGUF LoRA)
    /// under `name`, replacing one of that name.
    @discardableResult
    public func load(name: String, path: String) throws -> LoRAAdapter {
        guard let config else {
            throw ModelError.badAdapter("\(path): LoRA adapters apply to Llama-family models (llama, qwen2, mistral); this model is not one")
        }
        let a = try LoRAAdapter.load(path, for: config)
        entries.withLock { $0[name] = a }
        return a
    }

    /// Adds an adapter already in memory (a fine-tuning job's result) under `name`.
    public func add(_ adapter: LoRAAdapter, name: String) throws {
        guard let shapes else { throw ModelError.badAdapter("\(name): this model takes no LoRA adapters") }
        guard adapter.targets.allSatisfy({ adapter.shapes[$0]! == shapes[$0]! }) else {
            throw ModelError.badAdapter("\(name): the adapter's shapes do not fit this model (it was trained for another one)")
        }
        entries.withLock { $0[name] = adapter }
    }

    /// Forgets an adapter; returns whether it was loaded.
    @discardableResult
    public func unload(_ name: String) -> Bool { entries.withLock { $0.removeValue(forKey: name) != nil } }

    public var names: [String] { entries.withLock { $0.keys.sorted() } }

    public subscript(name: String) -> LoRAAdapter? { entries.withLock { $0[name] } }

    /// The adapter `name` with `scale`, for a request; an unknown name is an error that lists the
    /// loaded ones.
    public func use(_ name: String, scale: Float = 1) throws -> AdapterUse {
        guard let a = self[name] else {
            let known = names
            throw ModelError.badAdapter("no adapter \"\(name)\" is loaded" + (known.isEmpty ? "" : " (loaded: \(known.joined(separator: ", ")))"))
        }
        guard scale.isFinite else { throw ModelError.badAdapter("adapter \"\(name)\": scale must be a finite number") }
        return AdapterUse(a, scale: scale, name: name)
    }
}

/// Opens a GGUF file with the model errors' wording.
public enum GGUFFileLoader {
    public static func open(_ path: String) throws -> GGUFFile { try LanguageModel.open(path) }
}
