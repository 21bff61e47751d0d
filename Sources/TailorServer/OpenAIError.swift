// Errors as OpenAI clients expect them: {"error": {"message", "type", "param", "code"}} with the
// matching status code, rendered at the edge of the server only.
import Foundation
import Hummingbird
import NIOCore
import TailorModels
import TailorRAG

public struct OpenAIError: Error, HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let message: String
    public let type: String
    public let param: String?
    public let code: String?
    /// Seconds to wait before retrying (429, 503).
    public let retryAfter: Int?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    static func badRequest(_ m: String, param: String? = nil, code: String? = nil) -> OpenAIError {
        OpenAIError(status: .badRequest, message: m, type: "invalid_request_error", param: param, code: code)
    }
    static func notFound(_ m: String, param: String? = "model", code: String = "model_not_found") -> OpenAIError {
        OpenAIError(status: .notFound, message: m, type: "invalid_request_error", param: param, code: code)
    }
    static func unauthorized() -> OpenAIError {
        OpenAIError(status: .unauthorized, message: "Incorrect or missing API key: send it as 'Authorization: Bearer KEY' (one of the --api-key values the server was started with).",
                    type: "invalid_request_error", code: "invalid_api_key")
    }
    static func tooLarge(_ limit: Int) -> OpenAIError {
        OpenAIError(status: .contentTooLarge, message: "The request body is larger than the server's limit of \(limit) bytes.", type: "invalid_request_error", code: "request_too_large")
    }
    static func busy(queued: Int, limit: Int) -> OpenAIError {
        OpenAIError(status: .tooManyRequests, message: "The server is busy: \(queued) requests are waiting (limit \(limit)). Retry shortly.",
                    type: "server_busy", code: "rate_limit_exceeded", retryAfter: 1)
    }
    /// The client went away before the answer was ready (nginx's 499: nobody reads it; logs do).
    static let clientClosed = OpenAIError(status: .init(code: 499, reasonPhrase: "Client Closed Request"),
                                          message: "The client closed the connection; the request was cancelled.", type: "client_closed", code: "client_closed")
    static func unavailable(_ m: String, code: String = "service_unavailable", retryAfter: Int = 5) -> OpenAIError {
        OpenAIError(status: .serviceUnavailable, message: m, type: "server_error", code: code, retryAfter: retryAfter)
    }

    /// A library error as the client should see it.
    static func from(_ error: Error) -> OpenAIError {
        if let e = error as? OpenAIError { return e }
        if let e = error as? ModelError {
            switch e {
            case .contextFull, .promptTooLong:
                return .badRequest(e.description, param: "messages", code: "context_length_exceeded")
            case .modelNotFound:
                return .notFound(e.description)
            case .badAdapter(let m):
                return m.contains("no adapter") ? .notFound(m, code: "adapter_not_found") : .badRequest(m, param: "model")
            case .emptyPrompt, .badToken:
                return .badRequest(e.description, param: "messages")
            default:
                return OpenAIError(status: .internalServerError, message: e.description, type: "server_error")
            }
        }
        if let e = error as? RAGError {
            let d = "\(e)"
            if case .collectionNotFound = e { return .notFound(d, code: "collection_not_found") }
            // The collections' database is down or refused us: not the client's fault, try later.
            if case .postgres = e { return OpenAIError(status: .serviceUnavailable, message: d, type: "server_error", code: "store_unavailable", retryAfter: 5) }
            return .badRequest(d)
        }
        if let e = error as? DecodingError { return .badRequest("The request body is not valid JSON for this endpoint: \(describe(e))") }
        if let e = error as? HTTPError {
            if e.status == .contentTooLarge { return OpenAIError(status: .contentTooLarge, message: "The request body is too large.", type: "invalid_request_error", code: "request_too_large") }
            return OpenAIError(status: e.status, message: e.body ?? "\(e.status)", type: "invalid_request_error")
        }
        return OpenAIError(status: .internalServerError, message: "\(error)", type: "server_error")
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String { c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch e {
        case .keyNotFound(let k, let ctx): return "missing field '\(path(ctx.codingPath + [k]))'"
        case .typeMismatch(let t, let ctx): return "field '\(path(ctx.codingPath))' should be \(t)"
        case .valueNotFound(let t, let ctx): return "field '\(path(ctx.codingPath))' is null, expected \(t)"
        case .dataCorrupted(let ctx): return ctx.debugDescription + (ctx.codingPath.isEmpty ? "" : " at '\(path(ctx.codingPath))'")
        @unknown default: return "\(e)"
        }
    }

    struct Body: Encodable {
        struct Inner: Encodable { let message: String; let type: String; let param: String?; let code: String? }
        let error: Inner
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.withoutEscapingSlashes]
        // Encode explicit nulls for param/code, as OpenAI does.
        var json = "{\"error\":{\"message\":" + String(decoding: try enc.encode(message), as: UTF8.self)
        json += ",\"type\":" + String(decoding: try enc.encode(type), as: UTF8.self)
        json += ",\"param\":" + (param.map { String(decoding: (try? enc.encode($0)) ?? Data("null".utf8), as: UTF8.self) } ?? "null")
        json += ",\"code\":" + (code.map { String(decoding: (try? enc.encode($0)) ?? Data("null".utf8), as: UTF8.self) } ?? "null") + "}}"
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}
