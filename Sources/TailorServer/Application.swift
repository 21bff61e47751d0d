// The HTTP server: Hummingbird routes over the backend, built by `buildApplication` for
// `tailor serve` and for the tests alike (as Hummingbird's template does).
import Foundation
import Hummingbird
import Logging
import Synchronization
import TailorModels

/// The largest request body accepted (the configuration's, set when the application is built).
let bodyLimit = Atomic<Int>(16 << 20)

/// Each request's context: Hummingbird's, with the server's body limit.
public struct TailorRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: Source) { coreContext = .init(source: source) }
    public var maxUploadSize: Int { bodyLimit.load(ordering: .relaxed) }
}

/// The router of every route, over `backend`.
public func buildRouter(_ backend: Backend) -> Router<TailorRequestContext> {
    bodyLimit.store(backend.configuration.maxBodyBytes, ordering: .relaxed)
    let router = Router(context: TailorRequestContext.self)
    router.middlewares.add(MetricsMiddleware(metrics: backend.metrics))
    router.middlewares.add(APIKeyMiddleware(keys: Set(backend.configuration.apiKeys)))
    let api = APIRoutes(backend: backend)

    router.get("/") { _, _ -> Response in
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
    }
    router.get("/health") { _, _ -> Response in
        let stats = backend.engines.map(\.statistics)
        let body = "{\"status\":\"ok\",\"active_sequences\":\(stats.reduce(0) { $0 + $1.activeSequences }),\"queued_requests\":\(stats.reduce(0) { $0 + $1.queuedRequests })}"
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
    router.get("/metrics") { _, _ -> Response in
        let stats = backend.engines.map(\.statistics)
        backend.metrics.queueDepth.set(Double(stats.reduce(0) { $0 + $1.queuedRequests }))
        backend.metrics.activeSequences.set(Double(stats.reduce(0) { $0 + $1.activeSequences }))
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                        body: .init(byteBuffer: ByteBuffer(string: backend.metrics.registry.emitToString())))
    }
    router.get("/v1/models") { _, _ -> Response in try api.json(backend.catalog()) }
    router.get("/v1/models/{id}") { _, context -> Response in
        let id = context.parameters.get("id") ?? ""
        guard let m = backend.catalog().data.first(where: { $0.id == id }) else { throw OpenAIError.notFound("The model '\(id)' does not exist") }
        return try api.json(m)
    }
    router.post("/v1/chat/completions") { request, context -> Response in
        try await api.guarded { try await APIRoutes.cancellingOnDisconnect(request, context) { try await api.chat(try await api.decode(ChatCompletionRequest.self, $0, context)) } }
    }
    router.post("/v1/completions") { request, context -> Response in
        try await api.guarded { try await APIRoutes.cancellingOnDisconnect(request, context) { try await api.completion(try await api.decode(CompletionRequest.self, $0, context)) } }
    }
    router.post("/v1/embeddings") { request, context -> Response in
        try await api.guarded { try await api.embeddings(try await api.decode(EmbeddingRequest.self, request, context)) }
    }
    router.post("/v1/rerank") { request, context -> Response in
        try await api.guarded { try await api.rerank(try await api.decode(RerankRequest.self, request, context)) }
    }
    addFileRoutes(router, api, backend)
    addFineTuningRoutes(router, api, backend)
    addReportRoutes(router, api, backend)
    return router
}

/// The application `tailor serve` runs: the routes, the address, and the backend's models.
public func buildApplication(_ backend: Backend, logger: Logger? = nil) -> some ApplicationProtocol {
    let c = backend.configuration
    var log = logger ?? Logger(label: "tailor.serve")
    if logger == nil { log.logLevel = .info }
    return Application(router: buildRouter(backend),
                       configuration: .init(address: .hostname(c.host, port: c.port), serverName: "tailor"),
                       logger: log)
}
