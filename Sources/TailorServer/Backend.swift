// What the server serves, loaded once and shared by every request: decoders (each with its
// batching engine and its LoRA adapters), embedders and collections, found by the names clients
// use. Models load on first use (or at start with -m); loading never blocks the event loops.
import Foundation
import Synchronization
import TailorKernels
import TailorModels
import TailorRAG

public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Keys a client must send as `Authorization: Bearer KEY`; none: no key is asked, and the
    /// server only listens on loopback.
    public var apiKeys: [String] = []
    /// Models loaded at start (names in the model cache or paths); others load on first use.
    public var models: [String] = []
    /// LoRA adapters by name (a directory from `tailor tune`, PEFT files or a GGUF LoRA).
    public var adapters: [String: String] = [:]
    public var threads = ThreadPool.availableCores
    public var precision: Precision = .fast
    /// Limits: request body bytes, prompt tokens, tokens a request may ask for (and the default),
    /// requests waiting for a place in a batch, sequences decoded together.
    public var maxBodyBytes = 16 << 20
    /// The largest file accepted by POST /v1/files.
    public var maxFileBytes = 512 << 20
    public var maxPromptTokens = 4096
    public var maxTokens = 4096
    public var defaultMaxTokens = 512
    public var maxQueue = 256
    public var maxSequences = 64
    /// Bytes of shared prompt prefixes kept for reuse (0: none).
    public var prefixCacheBytes = 256 << 20
    /// Where collections are found by name (vector stores are made here too).
    public var collections: StoreLocation = (try? StoreLocation.default) ?? .folder(Collections.directory)
    /// Folders of `tailor compare` reports shown on the web page: each folder holding a
    /// report.html, or whose subfolders do.
    public var reportDirectories: [URL] = [ModelCache.home.appendingPathComponent("reports")]
    /// Where the server keeps uploaded files, vector stores' records and fine-tuning jobs.
    public var dataDirectory = ModelCache.home.appendingPathComponent("server")

    public init() {}
}

/// A request's system, from its model name: `MODEL`, `MODEL+lora:ADAPTER`, `MODEL+rag:COLLECTION`,
/// `MODEL+lora:ADAPTER+rag:COLLECTION`.
struct SystemName: Sendable, Equatable {
    var base: String
    var adapter: String?
    var collection: String?

    init(base: String, adapter: String? = nil, collection: String? = nil) {
        self.base = base; self.adapter = adapter; self.collection = collection
    }

    init(parsing name: String) throws {
        let parts = name.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty else {
            throw OpenAIError.badRequest("model: give a model name (see GET /v1/models), e.g. SmolLM2-135M-Instruct.Q4_1.gguf or SmolLM2+rag:docs", param: "model")
        }
        base = first
        for p in parts.dropFirst() {
            if p.hasPrefix("lora:"), p.count > 5, adapter == nil { adapter = String(p.dropFirst(5)); continue }
            if p.hasPrefix("rag:"), p.count > 4, collection == nil { collection = String(p.dropFirst(4)); continue }
            throw OpenAIError.badRequest("model '\(name)': after the model name, '+lora:ADAPTER' and '+rag:COLLECTION' may follow (once each); '\(p)' is neither", param: "model")
        }
    }
}

/// A decoder being served: the model, its batching engine.
final class ServedModel: Sendable {
    let name: String
    let lm: LanguageModel
    let engine: BatchGenerator
    init(name: String, lm: LanguageModel, engine: BatchGenerator) { self.name = name; self.lm = lm; self.engine = engine }
}

public final class Backend: Sendable {
    public let configuration: ServerConfiguration
    let metrics: ServerMetrics
    private let models = Mutex<[String: ServedModel]>([:])           // by resolved path
    /// Paths of the models being loaded now.
    let loadingModels = Mutex<Set<String>>([])
    private let embedders = Mutex<[String: SentenceEmbedder]>([:])   // by resolved path
    private let collections = Mutex<[String: KnowledgeBase]>([:])    // by collection name
    /// Held while a model, embedder or collection loads, so two first requests load it once
    /// (recursive: a collection loads its embedder).
    private let loading = NSRecursiveLock()

    /// Uploaded files (OpenAI's Files API).
    let files: FileStore
    private let stores = Mutex<VectorStores?>(nil)

    public init(configuration: ServerConfiguration) {
        self.configuration = configuration
        metrics = ServerMetrics()
        files = FileStore(directory: configuration.dataDirectory.appendingPathComponent("files"))
    }

    /// Vector stores (OpenAI's API over the collections).
    var vectorStores: VectorStores {
        stores.withLock { s in
            if let s { return s }
            let v = VectorStores(backend: self, files: files, directory: configuration.dataDirectory.appendingPathComponent("vector_stores"))
            s = v
            return v
        }
    }

    private let tuning = Mutex<FineTuningJobs?>(nil)

    /// Fine-tuning jobs (OpenAI's API over `tailor tune`).
    var fineTuning: FineTuningJobs {
        tuning.withLock { t in
            if let t { return t }
            let j = FineTuningJobs(backend: self, directory: configuration.dataDirectory.appendingPathComponent("fine_tuning"))
            t = j
            return j
        }
    }

    /// Loads the models named at start, and resumes the ingests and fine-tuning jobs an earlier
    /// run left unfinished.
    public func preload() throws {
        for m in configuration.models { _ = try model(m, waitWhileLoading: true) }
        vectorStores.resumeInterrupted()
        fineTuning.resumeInterrupted()
    }

    /// The decoder a name (or unique part of a cache name, or path) gives, loaded on first use.
    /// A request for a model another request is loading gets 503 with Retry-After (clients
    /// retry; llama-server answers so while it loads); the server's own work (`waitWhileLoading`:
    /// preloading, fine-tuning jobs) waits instead.
    func model(_ spec: String, waitWhileLoading: Bool = false) throws -> ServedModel {
        let path: String
        do { path = try ModelCache.resolve(spec) } catch { throw OpenAIError.notFound("The model '\(spec)' does not exist: \(error). GET /v1/models lists what is served.") }
        if let m = models.withLock({ $0[path] }) { return m }
        if !waitWhileLoading && loadingModels.withLock({ $0.contains(path) }) {
            throw OpenAIError.unavailable("The model \(URL(fileURLWithPath: path).lastPathComponent) is loading; retry in a moment",
                                          code: "model_loading", retryAfter: 1)
        }
        loading.lock()
        defer { loading.unlock() }
        if let m = models.withLock({ $0[path] }) { return m }
        loadingModels.withLock { _ = $0.insert(path) }
        defer { loadingModels.withLock { _ = $0.remove(path) } }
        guard path.hasSuffix(".gguf") else { throw OpenAIError.notFound("'\(spec)' is not a chat model (it is an embedding model or a folder); GET /v1/models lists the chat models") }
        let lm = try LanguageModel(path, threads: configuration.threads, precision: configuration.precision)
        let served = ServedModel(name: URL(fileURLWithPath: path).lastPathComponent, lm: lm,
                                 engine: BatchGenerator(model: lm, maxSequences: configuration.maxSequences,
                                                        prefixCacheBytes: configuration.prefixCacheBytes))
        models.withLock { $0[path] = served }
        return served
    }

    /// The adapter `name` on `model` (loaded there from its configured path on first use).
    func adapter(_ name: String, on model: ServedModel, scale: Float = 1) throws -> AdapterUse {
        if model.lm.adapters[name] == nil {
            // Configured adapters, then fine-tuning jobs' (a succeeded job's id, or ID-step-N).
            guard let path = configuration.adapters[name] ?? fineTuning.adapterPath(name) else {
                let known = configuration.adapters.keys.sorted() + model.lm.adapters.names.filter { configuration.adapters[$0] == nil }
                throw OpenAIError.notFound("No adapter '\(name)'" + (known.isEmpty ? "; start the server with --adapter NAME=DIR" : " (served: \(known.joined(separator: ", ")))"),
                                           code: "adapter_not_found")
            }
            loading.lock()
            defer { loading.unlock() }
            if model.lm.adapters[name] == nil { try model.lm.adapters.load(name: name, path: path) }
        }
        return try model.lm.adapters.use(name, scale: scale)
    }

    /// An embedding model by name (default all-MiniLM-L6-v2).
    func embedder(_ spec: String?) throws -> SentenceEmbedder {
        let path: String
        do { path = try ModelCache.resolve(spec, default: ModelCache.defaultEmbeddingModel) } catch {
            throw OpenAIError.notFound("The embedding model '\(spec ?? "")' does not exist: \(error). GET /v1/models lists the embedders.")
        }
        if let e = embedders.withLock({ $0[path] }) { return e }
        loading.lock()
        defer { loading.unlock() }
        if let e = embedders.withLock({ $0[path] }) { return e }
        let e: SentenceEmbedder
        do { e = try SentenceEmbedder(path, threads: configuration.threads) } catch {
            throw OpenAIError.notFound("'\(spec ?? path)' is not an embedding model: \(error)")
        }
        embedders.withLock { $0[path] = e }
        return e
    }

    /// A collection by name, with the embedder that built it.
    func collection(_ name: String) throws -> KnowledgeBase {
        if let kb = collections.withLock({ $0[name] }) { return kb }
        loading.lock()
        defer { loading.unlock() }
        if let kb = collections.withLock({ $0[name] }) { return kb }
        let store: any CollectionStore
        do { store = try Collections.open(name, at: configuration.collections) } catch let e as RAGError {
            if case .postgres = e { throw e }
            let known = ((try? Collections.names(at: configuration.collections)) ?? []).joined(separator: ", ")
            throw OpenAIError.notFound("No collection '\(name)' (collections: \(known)); create one with `tailor ingest PATH -c \(name)` or POST /v1/vector_stores",
                                       code: "collection_not_found")
        }
        let kb = KnowledgeBase(store: store, embedder: try embedder(try store.embedder()?.name))
        collections.withLock { $0[name] = kb }
        return kb
    }

    /// Drops a deleted collection from the cache.
    func forgetCollection(_ name: String) {
        _ = collections.withLock { $0.removeValue(forKey: name) }
    }

    /// The decoders, embedders, adapters and collections to list in /v1/models.
    func catalog() -> ModelList {
        let now = Int(Date().timeIntervalSince1970)
        let entries = ModelCache.list()
        var out: [ModelList.Model] = []
        let decoders = entries.filter { !$0.isDirectory && $0.name.hasSuffix(".gguf") && !isAdapterFile($0.path) }
        for d in decoders { out.append(.init(id: d.name, created: now, owned_by: "tailor", kind: "model")) }
        for e in entries where e.isDirectory && FileManager.default.fileExists(atPath: e.path + "/config.json") {
            out.append(.init(id: e.name, created: now, owned_by: "tailor", kind: "embedder"))
        }
        let base = decoders.first { $0.name == ModelCache.defaultChatModel }?.name ?? decoders.first?.name
        let loaded = models.withLock { Array($0.values) }
        var adapters = Set(configuration.adapters.keys)
        for m in loaded { adapters.formUnion(m.lm.adapters.names) }
        if let base {
            for a in adapters.sorted() { out.append(.init(id: "\(base)+lora:\(a)", created: now, owned_by: "tailor", kind: "adapter")) }
            for c in (try? Collections.names(at: configuration.collections)) ?? [] {
                out.append(.init(id: "\(base)+rag:\(c)", created: now, owned_by: "tailor", kind: "collection"))
                for a in adapters.sorted() { out.append(.init(id: "\(base)+lora:\(a)+rag:\(c)", created: now, owned_by: "tailor", kind: "collection")) }
            }
        }
        // Fine-tuned models: each succeeded job's adapter on its base.
        for j in fineTuning.list() where j.status == "succeeded" {
            if let m = j.fine_tuned_model { out.append(.init(id: m, created: j.finished_at ?? j.created_at, owned_by: "tailor", kind: "fine-tuned")) }
        }
        return ModelList(data: out)
    }

    private func isAdapterFile(_ path: String) -> Bool {
        guard let f = try? GGUFFileLoader.open(path) else { return false }
        return f["general.type"]?.string == "adapter"
    }

    /// The engines of the loaded models (for limits and metrics).
    var engines: [BatchGenerator] { models.withLock { $0.values.map(\.engine) } }

    public func shutdown() {
        for m in models.withLock({ Array($0.values) }) { m.engine.shutdown() }
    }
}

/// Runs blocking work (model loads, embeddings, grounded answers) on threads of its own, not on
/// the server's event loops or Swift's cooperative pool.
enum Blocking {
    static let queue = DispatchQueue(label: "tailor.server.blocking", qos: .userInitiated, attributes: .concurrent)
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in queue.async { c.resume(with: Result { try body() }) } }
    }
}
