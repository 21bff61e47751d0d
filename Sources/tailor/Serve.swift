import ArgumentParser
import Foundation
import TailorKernels
import TailorModels
import TailorServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models, adapters and collections over an OpenAI-compatible HTTP API.",
        discussion: """
            Any OpenAI client works against http://HOST:PORT/v1. The model name picks the system: \
            MODEL (the base model), MODEL+lora:ADAPTER, MODEL+rag:COLLECTION or \
            MODEL+lora:ADAPTER+rag:COLLECTION (see GET /v1/models). Every model in the cache and every \
            collection in TAILOR_HOME (or in --store: a folder or a PostgreSQL database) is served; -m loads models at start instead of on first use. \
            Without --api-key the server listens on 127.0.0.1 only.
            """)

    @Option(help: "Address to listen on (without --api-key: 127.0.0.1 only).") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on.") var port: Int = 8080
    @Option(name: .customLong("api-key"), help: "A key clients must send as 'Authorization: Bearer KEY' (repeatable).") var apiKeys: [String] = []
    @Option(name: [.short, .customLong("model")], help: "A model to load at start (name in the model cache or path; repeatable).") var models: [String] = []
    @Option(name: .customLong("adapter"), help: "A LoRA adapter to serve, as NAME=DIR (repeatable); requests name it as MODEL+lora:NAME.") var adapters: [String] = []
    @Option(name: [.short, .long], help: "Threads for the models (default: all cores).") var threads: Int = ThreadPool.availableCores
    @Option(help: "Arithmetic: fast (8-bit activations) or exact (fp32).") var precision: PrecisionOption = .fast
    @Option(name: .customLong("max-sequences"), help: "Requests decoded together at most; more wait in line.") var maxSequences: Int = 64
    @Option(name: .customLong("max-queue"), help: "Requests that may wait in line before new ones get 429.") var maxQueue: Int = 256
    @Option(name: .customLong("max-tokens"), help: "Most tokens a request may ask to generate.") var maxTokens: Int = 4096
    @Option(name: .customLong("max-prompt-tokens"), help: "Longest prompt accepted, in tokens.") var maxPromptTokens: Int = 4096
    @Option(name: .customLong("max-body-mib"), help: "Largest request body accepted, in MiB.") var maxBodyMiB: Int = 16
    @Option(name: .customLong("prefix-cache-mib"), help: "Memory for shared prompt prefixes computed once and reused (0: off).") var prefixCacheMiB: Int = 256
    @Option(name: .customLong("max-file-mib"), help: "Largest file accepted by POST /v1/files, in MiB.") var maxFileMiB: Int = 512
    @OptionGroup var store: StoreOption
    @Option(name: .customLong("reports"), help: "A folder of `tailor compare` reports to show on the web page (repeatable; default: $TAILOR_HOME/reports).") var reports: [String] = []

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be from 1 to 65535") }
        guard threads >= 1, maxSequences >= 1, maxQueue >= 0, maxTokens >= 1, maxPromptTokens >= 16, maxBodyMiB >= 1 else {
            throw ValidationError("--threads, --max-sequences, --max-tokens and --max-body-mib must be at least 1, --max-prompt-tokens at least 16")
        }
        for a in adapters where a.split(separator: "=", maxSplits: 1).count != 2 {
            throw ValidationError("--adapter \(a): write NAME=DIR, e.g. --adapter support=./my-adapter")
        }
        if apiKeys.contains(where: { $0.isEmpty }) { throw ValidationError("--api-key must not be empty") }
    }

    func run() async throws {
        var c = ServerConfiguration()
        c.host = host
        if apiKeys.isEmpty && !["127.0.0.1", "localhost", "::1"].contains(host) {
            note("No --api-key given: listening on 127.0.0.1 only (give --api-key KEY to serve other machines).")
            c.host = "127.0.0.1"
        }
        c.port = port; c.apiKeys = apiKeys; c.models = models; c.threads = threads; c.precision = precision.value
        c.maxSequences = maxSequences; c.maxQueue = maxQueue; c.maxTokens = maxTokens; c.maxPromptTokens = maxPromptTokens
        c.maxBodyBytes = maxBodyMiB << 20
        c.prefixCacheBytes = max(0, prefixCacheMiB) << 20
        c.maxFileBytes = max(1, maxFileMiB) << 20
        if !reports.isEmpty { c.reportDirectories = reports.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath).standardizedFileURL } }
        c.defaultMaxTokens = min(512, maxTokens)
        c.collections = try store.location()
        for a in adapters {
            let kv = a.split(separator: "=", maxSplits: 1).map(String.init)
            let path = URL(fileURLWithPath: (kv[1] as NSString).expandingTildeInPath).standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: path) else { note("error: --adapter \(kv[0]): \(path) does not exist"); throw ExitCode.failure }
            c.adapters[kv[0]] = path
        }
        let backend = Backend(configuration: c)
        try runReportingErrors { try backend.preload() }
        note("Serving on http://\(c.host):\(c.port)/v1 (OpenAI-compatible) — models from \(ModelCache.directory.path)"
             + (c.apiKeys.isEmpty ? "" : ", \(c.apiKeys.count) API key(s)") + ". Ctrl-C stops.")
        let app = buildApplication(backend)
        try await app.runService()
        backend.shutdown()
    }
}
