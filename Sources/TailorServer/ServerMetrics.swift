// GET /metrics in the Prometheus text format (swift-prometheus): requests by route and status,
// prompt and generated tokens, queue depth and active sequences, time to first token.
import Foundation
import Hummingbird
import Prometheus

final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let promptTokens: Counter
    let generatedTokens: Counter
    let queueDepth: Gauge
    let activeSequences: Gauge
    let timeToFirstToken: DurationHistogram

    init() {
        promptTokens = registry.makeCounter(name: "tailor_prompt_tokens_total", help: "Prompt tokens of the requests served.")
        generatedTokens = registry.makeCounter(name: "tailor_generated_tokens_total", help: "Tokens generated.")
        queueDepth = registry.makeGauge(name: "tailor_queue_depth", help: "Requests waiting for a place in a batch.")
        activeSequences = registry.makeGauge(name: "tailor_active_sequences", help: "Sequences being decoded.")
        timeToFirstToken = registry.makeDurationHistogram(name: "tailor_time_to_first_token_seconds",
            buckets: [.milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                      .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30)],
            help: "From a request's arrival to its first generated text.")
    }

    func request(route: String, status: Int) {
        registry.makeCounter(name: "tailor_requests_total", labels: [("route", route), ("status", String(status))],
                             help: "HTTP requests by route and status.").increment()
    }
}

/// Counts every request by its route and status (errors included).
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let route = Self.route(request.uri.path)
        do {
            let r = try await next(request, context)
            metrics.request(route: route, status: Int(r.status.code))
            return r
        } catch {
            let status = (error as? HTTPResponseError)?.status.code ?? 500
            metrics.request(route: route, status: Int(status))
            throw error
        }
    }

    /// The route without ids, so the label's values stay few.
    static func route(_ path: String) -> String {
        let known = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/rerank", "/health", "/metrics"]
        return known.first { path == $0 } ?? (path.hasPrefix("/v1/") ? "/v1/other" : "other")
    }
}

/// API keys: every /v1 route and /metrics ask for `Authorization: Bearer KEY` when the server has
/// keys; /health never does.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard !keys.isEmpty, path != "/health", path.hasPrefix("/v1") || path == "/metrics" else { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let key = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces) : ""
        guard keys.contains(key) else { throw OpenAIError.unauthorized() }
        return try await next(request, context)
    }
}
