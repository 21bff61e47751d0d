// The OpenAI-compatible endpoints: chat completions (the model name picks base, adapter or
// retrieval), completions, embeddings and rerank. Generation goes through each model's batching
// engine, so concurrent requests are decoded together; blocking work (loading, embedding,
// retrieval) runs off the event loops.
import Foundation
import Hummingbird
import NIOCore
import TailorKernels
import TailorModels
import TailorRAG

struct APIRoutes: Sendable {
    let backend: Backend
    var config: ServerConfiguration { backend.configuration }

    // MARK: plumbing

    func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: TailorRequestContext) async throws -> T {
        try await decode(type, request.body, context)
    }

    func decode<T: Decodable>(_ type: T.Type, _ body: RequestBody, _ context: TailorRequestContext) async throws -> T {
        let buffer: ByteBuffer
        do { buffer = try await body.collect(upTo: context.maxUploadSize) } catch {
            throw OpenAIError.tooLarge(context.maxUploadSize)
        }
        do { return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView)) }
        catch let e as OpenAIError { throw e }
        catch let e as DecodingError { throw OpenAIError.badRequest("The request body is not valid for this endpoint: \(OpenAIError.describe(e))") }
    }

    /// Runs a generating handler on the request's body so that a client that goes away before
    /// the handler returns cancels it: a non-streamed answer generated for nobody frees its place
    /// in the batch at once (a streamed one ends when a write fails). Hummingbird watches the
    /// connection meanwhile and closes it after the response.
    /// The response (an error too) says `Connection: close`, so clients do not send their next
    /// request on a connection about to close.
    static func cancellingOnDisconnect(_ request: Request, _ context: TailorRequestContext,
                                       _ body: (RequestBody) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await request.body.consumeWithCancellationOnInboundClose(body)
        } catch is CancellationError {
            response = try OpenAIError.clientClosed.response(from: request, context: context)
        } catch {
            response = try OpenAIError.from(error).response(from: request, context: context)
        }
        response.headers[.connection] = "close"
        return response
    }

    /// Runs a handler, turning whatever it throws into an OpenAI-shaped error.
    func guarded(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch { throw OpenAIError.from(error) }
    }

    func json<T: Encodable>(_ value: T) throws -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.withoutEscapingSlashes]
        var buffer = ByteBuffer()
        buffer.writeBytes(try enc.encode(value))
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    static func sse<T: Encodable>(_ value: T) -> ByteBuffer {
        let enc = JSONEncoder()
        enc.outputFormatting = [.withoutEscapingSlashes]
        let data = (try? enc.encode(value)) ?? Data("{}".utf8)
        return ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n")
    }

    /// Reads a generation's text to its end, recording the time to its first piece.
    static func drain(_ text: AsyncThrowingStream<String, Error>, _ metrics: ServerMetrics, arrived: ContinuousClock.Instant) async throws {
        var first = true
        for try await _ in text where first { first = false; metrics.timeToFirstToken.record(ContinuousClock.now - arrived) }
    }

    /// Streams a chat answer's opening chunk (the role) and a chunk per piece of its text,
    /// recording the time to the first piece; the caller writes the closing chunk.
    static func streamChat(_ text: AsyncThrowingStream<String, Error>, to writer: inout any ResponseBodyWriter, id: String, created: Int,
                           model: String, _ metrics: ServerMetrics, arrived: ContinuousClock.Instant) async throws {
        try await writer.write(sse(ChatCompletionChunk(id: id, created: created, model: model,
                                                       choices: [.init(index: 0, delta: .init(role: "assistant", content: ""), finish_reason: nil)])))
        var first = true
        for try await piece in text {
            if first { first = false; metrics.timeToFirstToken.record(ContinuousClock.now - arrived) }
            try await writer.write(sse(ChatCompletionChunk(id: id, created: created, model: model,
                                                           choices: [.init(index: 0, delta: .init(content: piece), finish_reason: nil)])))
        }
    }

    static func newID(_ prefix: String) -> String {
        prefix + String((0..<24).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
    }

    /// Sampling from the request, with llama-server's defaults where it says nothing.
    func sampling(temperature: Float?, topP: Float?, seed: UInt64?) throws -> SamplingParameters {
        var p = SamplingParameters()
        if let t = temperature {
            guard t >= 0 && t <= 2 else { throw OpenAIError.badRequest("temperature must be between 0 and 2", param: "temperature") }
            p.temperature = t
        }
        if let t = topP {
            guard t > 0 && t <= 1 else { throw OpenAIError.badRequest("top_p must be in (0, 1]", param: "top_p") }
            p.topP = t
        }
        p.seed = seed
        return p
    }

    func tokenBudget(_ asked: Int?) throws -> Int {
        guard let n = asked else { return config.defaultMaxTokens }
        guard n >= 1 else { throw OpenAIError.badRequest("max_tokens must be at least 1", param: "max_tokens") }
        guard n <= config.maxTokens else { throw OpenAIError.badRequest("max_tokens \(n) is more than this server allows (\(config.maxTokens))", param: "max_tokens") }
        return n
    }

    func checkQueue(_ engine: BatchGenerator) throws {
        let q = engine.statistics.queuedRequests
        if q >= config.maxQueue { throw OpenAIError.busy(queued: q, limit: config.maxQueue) }
    }

    func checkPrompt(_ count: Int) throws {
        if count > config.maxPromptTokens {
            throw OpenAIError.badRequest("The prompt is \(count) tokens, more than this server allows (\(config.maxPromptTokens)); shorten the messages.",
                                         param: "messages", code: "context_length_exceeded")
        }
    }

    /// The adapters a request asks for: its model name's, then llama-server's `lora` list.
    func adapters(_ system: SystemName, _ lora: [LoRARequest]?, _ served: ServedModel) async throws -> [AdapterUse] {
        var out: [AdapterUse] = []
        if let a = system.adapter { out.append(try await Blocking.run { try backend.adapter(a, on: served) }) }
        for l in lora ?? [] {
            let scale = l.scale ?? 1
            guard scale.isFinite else { throw OpenAIError.badRequest("lora scale must be a number", param: "lora") }
            var name = l.id.name
            // A number: the index among the served adapters, as llama-server numbers them.
            if let i = Int(name) {
                let names = config.adapters.keys.sorted()
                guard i >= 0 && i < names.count else { throw OpenAIError.badRequest("lora id \(i): the server has \(names.count) adapters", param: "lora") }
                name = names[i]
            }
            let n = name
            out.append(try await Blocking.run { try backend.adapter(n, on: served, scale: scale) })
        }
        return out
    }

    static func finishReason(_ r: FinishReason) -> String {
        switch r {
        case .stop, .cancelled: return "stop"
        case .length, .context: return "length"
        }
    }

    // MARK: chat

    func chat(_ r: ChatCompletionRequest) async throws -> Response {
        let arrived = ContinuousClock.now
        guard (r.n ?? 1) == 1 else { throw OpenAIError.badRequest("n must be 1: one choice per request", param: "n") }
        guard !r.messages.isEmpty else { throw OpenAIError.badRequest("messages must not be empty", param: "messages") }
        let system = try SystemName(parsing: r.model)
        let served = try await Blocking.run { try backend.model(system.base) }
        let adapters = try await self.adapters(system, r.lora, served)
        let sampling = try self.sampling(temperature: r.temperature, topP: r.top_p, seed: r.seed)
        let maxTokens = try tokenBudget(r.max_completion_tokens ?? r.max_tokens)
        let stop = r.stop?.values ?? []
        let messages = r.messages.map { ChatMessage(role: $0.role, content: $0.content?.text ?? "") }
        let json = r.response_format?.type == "json_object"
        if let f = r.response_format?.type, f != "json_object", f != "text" {
            throw OpenAIError.badRequest("response_format \(f) is not supported (json_object and text are)", param: "response_format")
        }
        try checkQueue(served.engine)
        let id = Self.newID("chatcmpl-"), created = Int(Date().timeIntervalSince1970)
        let stream = r.stream ?? false, includeUsage = r.stream_options?.include_usage ?? false

        if let collection = system.collection {
            guard messages.last?.role == "user" else { throw OpenAIError.badRequest("the last message must be the user's question", param: "messages") }
            // Grounded answers are prose with citations: json_object does not apply to them.
            return try await grounded(collection: collection, served: served, messages: messages, adapters: adapters, sampling: sampling,
                                      maxTokens: maxTokens, model: r.model, id: id, created: created, stream: stream,
                                      includeUsage: includeUsage, arrived: arrived)
        }
        var history = messages
        if json, !history.contains(where: { $0.role == "system" }) {
            history.insert(.system("Reply with one JSON object."), at: 0)
        }
        let ids = try served.lm.encodeChat(try served.lm.chatTemplate.render(history, addGenerationPrompt: true))
        try checkPrompt(ids.count)
        var request = GenerationRequest(prompt: ids, maxTokens: maxTokens, sampling: sampling, stop: stop, adapters: adapters,
                                        contextTokens: min(served.lm.model.contextLength, ids.count + maxTokens + 1))
        request.constraint = json ? .jsonObject : nil
        request.ignoreEndOfGeneration = r.ignore_eos ?? false
        backend.metrics.promptTokens.increment(by: Int64(ids.count))
        let (text, result, cancel) = served.engine.stream(request)
        if !stream {
            try await Self.drain(text, backend.metrics, arrived: arrived)
            let g = try await result()
            backend.metrics.generatedTokens.increment(by: Int64(g.tokens.count))
            return try self.json(ChatCompletionResponse(id: id, created: created, model: r.model,
                choices: [.init(index: 0, message: ChatMessageBody(role: "assistant", content: MessageContent(g.text)), finish_reason: Self.finishReason(g.finishReason))],
                usage: Usage(prompt_tokens: ids.count, completion_tokens: g.tokens.count, total_tokens: ids.count + g.tokens.count)))
        }
        let metrics = backend.metrics, model = r.model, promptCount = ids.count
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: ResponseBody { writer in
          // A client that goes away ends the loop (the write throws): the request is cancelled,
          // which frees its place in the batch.
          do {
            try await Self.streamChat(text, to: &writer, id: id, created: created, model: model, metrics, arrived: arrived)
            let g = try await result()
            metrics.generatedTokens.increment(by: Int64(g.tokens.count))
            try await writer.write(Self.sse(ChatCompletionChunk(id: id, created: created, model: model,
                choices: [.init(index: 0, delta: .init(), finish_reason: Self.finishReason(g.finishReason))],
                usage: includeUsage ? Usage(prompt_tokens: promptCount, completion_tokens: g.tokens.count, total_tokens: promptCount + g.tokens.count) : nil)))
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
          } catch {
            cancel()
            throw error
          }
        })
    }

    /// `MODEL+rag:COLLECTION`: the last user message answered from the collection, the earlier
    /// messages as the conversation; the sources in `citations`.
    func grounded(collection: String, served: ServedModel, messages: [ChatMessage], adapters: [AdapterUse], sampling: SamplingParameters,
                  maxTokens: Int, model: String, id: String, created: Int, stream: Bool, includeUsage: Bool,
                  arrived: ContinuousClock.Instant) async throws -> Response {
        let kb = try await Blocking.run { try backend.collection(collection) }
        let question = messages.last!.content
        let earlier = Array(messages.dropLast())
        let clientSystem = earlier.filter { $0.role == "system" }.map(\.content).joined(separator: "\n")
        let history = earlier.filter { $0.role != "system" }
        var settings = AskSettings()
        settings.answerTokens = maxTokens
        settings.sampling = sampling
        settings.adapters = adapters
        settings.batcher = served.engine
        settings.contextTokens = config.maxPromptTokens + maxTokens
        if !clientSystem.isEmpty { settings.system = clientSystem + "\n" + PromptBuilder().system }
        let engine = try kb.engine(model: served.lm, defaults: settings)
        let metrics = backend.metrics
        let (pieces, continuation) = AsyncThrowingStream<String, Error>.makeStream()
        let ask = Task<Answer, Error> {
            try await Blocking.run {
                let query = history.isEmpty ? question : try engine.standaloneQuestion(question, history: history)
                do {
                    let a = try engine.ask(question, history: history, query: query) { piece in
                        if case .terminated = continuation.yield(piece) { return false }
                        return true
                    }
                    continuation.finish()
                    return a
                } catch {
                    continuation.finish(throwing: error)
                    throw error
                }
            }
        }
        @Sendable func usage(_ a: Answer) -> Usage {
            Usage(prompt_tokens: a.timings.promptTokens, completion_tokens: a.timings.generatedTokens, total_tokens: a.timings.promptTokens + a.timings.generatedTokens)
        }
        if !stream {
            try await Self.drain(pieces, metrics, arrived: arrived)
            let a = try await ask.value
            metrics.promptTokens.increment(by: Int64(a.timings.promptTokens))
            metrics.generatedTokens.increment(by: Int64(a.timings.generatedTokens))
            return try json(ChatCompletionResponse(id: id, created: created, model: model,
                choices: [.init(index: 0, message: ChatMessageBody(role: "assistant", content: MessageContent(a.text)), finish_reason: "stop")],
                usage: usage(a), citations: Self.citations(a)))
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: ResponseBody { writer in
            do {
                try await Self.streamChat(pieces, to: &writer, id: id, created: created, model: model, metrics, arrived: arrived)
                let a = try await ask.value
                metrics.promptTokens.increment(by: Int64(a.timings.promptTokens))
                metrics.generatedTokens.increment(by: Int64(a.timings.generatedTokens))
                try await writer.write(Self.sse(ChatCompletionChunk(id: id, created: created, model: model,
                    choices: [.init(index: 0, delta: .init(), finish_reason: "stop")],
                    usage: includeUsage ? usage(a) : nil, citations: Self.citations(a))))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                // The answer's callback sees the stream finished and stops the generation.
                continuation.finish()
                ask.cancel()
                throw error
            }
        })
    }

    static func citations(_ a: Answer) -> [CitationBody] {
        a.sources.map { c in
            CitationBody(number: c.number, chunk_id: c.chunkID, file: c.path, location: c.location, title: c.title,
                         snippet: String(c.text.prefix(300)), score: c.score, cited: c.cited || c.supported)
        }
    }

    // MARK: completions

    func completion(_ r: CompletionRequest) async throws -> Response {
        let arrived = ContinuousClock.now
        guard (r.n ?? 1) == 1 else { throw OpenAIError.badRequest("n must be 1: one choice per request", param: "n") }
        let system = try SystemName(parsing: r.model)
        guard system.collection == nil else { throw OpenAIError.badRequest("+rag models answer chat messages: use /v1/chat/completions", param: "model") }
        let served = try await Blocking.run { try backend.model(system.base) }
        let adapters = try await self.adapters(system, r.lora, served)
        let sampling = try self.sampling(temperature: r.temperature, topP: r.top_p, seed: r.seed)
        let maxTokens = try tokenBudget(r.max_tokens)
        let ids = served.lm.tokenizer.encode(r.prompt.text, addSpecial: true, parseSpecial: true)
        guard !ids.isEmpty else { throw OpenAIError.badRequest("the prompt is empty", param: "prompt") }
        try checkPrompt(ids.count)
        try checkQueue(served.engine)
        backend.metrics.promptTokens.increment(by: Int64(ids.count))
        var request = GenerationRequest(prompt: ids, maxTokens: maxTokens, sampling: sampling, stop: r.stop?.values ?? [], adapters: adapters,
                                        contextTokens: min(served.lm.model.contextLength, ids.count + maxTokens + 1))
        request.ignoreEndOfGeneration = r.ignore_eos ?? false
        let (text, result, cancel) = served.engine.stream(request)
        let id = Self.newID("cmpl-"), created = Int(Date().timeIntervalSince1970), model = r.model
        let metrics = backend.metrics
        if !(r.stream ?? false) {
            try await Self.drain(text, metrics, arrived: arrived)
            let g = try await result()
            metrics.generatedTokens.increment(by: Int64(g.tokens.count))
            return try json(CompletionResponse(id: id, created: created, model: model,
                choices: [.init(index: 0, text: g.text, finish_reason: Self.finishReason(g.finishReason))],
                usage: Usage(prompt_tokens: ids.count, completion_tokens: g.tokens.count, total_tokens: ids.count + g.tokens.count)))
        }
        let includeUsage = r.stream_options?.include_usage ?? false, promptCount = ids.count
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: ResponseBody { writer in
          do {
            var first = true
            for try await piece in text {
                if first { first = false; metrics.timeToFirstToken.record(ContinuousClock.now - arrived) }
                try await writer.write(Self.sse(CompletionResponse(id: id, created: created, model: model, choices: [.init(index: 0, text: piece, finish_reason: nil)])))
            }
            let g = try await result()
            metrics.generatedTokens.increment(by: Int64(g.tokens.count))
            try await writer.write(Self.sse(CompletionResponse(id: id, created: created, model: model,
                choices: [.init(index: 0, text: "", finish_reason: Self.finishReason(g.finishReason))],
                usage: includeUsage ? Usage(prompt_tokens: promptCount, completion_tokens: g.tokens.count, total_tokens: promptCount + g.tokens.count) : nil)))
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
          } catch {
            cancel()
            throw error
          }
        })
    }

    // MARK: embeddings and rerank

    func embeddings(_ r: EmbeddingRequest) async throws -> Response {
        let texts = r.input.texts
        guard !texts.isEmpty else { throw OpenAIError.badRequest("input must not be empty", param: "input") }
        guard texts.count <= 2048 else { throw OpenAIError.badRequest("at most 2048 inputs per request (got \(texts.count))", param: "input") }
        if let f = r.encoding_format, f != "float", f != "base64" {
            throw OpenAIError.badRequest("encoding_format must be float or base64", param: "encoding_format")
        }
        let spec = r.model
        let (vectors, tokens, name) = try await Blocking.run { () throws -> ([[Float]], Int, String) in
            let e = try backend.embedder(spec)
            if let d = r.dimensions, d != e.dimension {
                throw OpenAIError.badRequest("\(e.name) gives \(e.dimension) dimensions; dimensions \(d) cannot be served", param: "dimensions")
            }
            let v = try e.embed(texts)
            return (v, texts.reduce(0) { $0 + e.countTokens($1) + 2 }, e.name)
        }
        _ = name
        let base64 = r.encoding_format == "base64"
        let items = vectors.enumerated().map { i, v in
            EmbeddingResponse.Item(index: i, embedding: base64 ? .base64(v.withUnsafeBytes { Data($0) }.base64EncodedString()) : .floats(v))
        }
        return try json(EmbeddingResponse(data: items, model: r.model, usage: .init(prompt_tokens: tokens, total_tokens: tokens)))
    }

    /// Jina's / llama-server's rerank: documents ordered by relevance to the query — by a
    /// cross-encoder when `model` is one, else by the cosine similarity of an embedder's vectors.
    func rerank(_ r: RerankRequest) async throws -> Response {
        guard !r.documents.isEmpty else { throw OpenAIError.badRequest("documents must not be empty", param: "documents") }
        let spec = r.model, query = r.query, docs = r.documents
        let scores = try await Blocking.run { () throws -> [Double] in
            if let spec, let path = try? ModelCache.resolve(spec, default: ModelCache.defaultEmbeddingModel),
               let cfg = try? String(contentsOfFile: path + "/config.json", encoding: .utf8), cfg.contains("ForSequenceClassification") {
                let ce = try CrossEncoder(directory: path, threads: config.threads)
                return try ce.score(query, docs).map(Double.init)
            }
            let e = try backend.embedder(spec)
            let v = try e.embed([query] + docs).map(VectorMatrix.normalized)
            return v.dropFirst().map { d in zip(v[0], d).reduce(0.0) { $0 + Double($1.0 * $1.1) } }
        }
        let ranked = scores.enumerated().sorted { $0.element > $1.element }
        let top = ranked.prefix(max(1, r.top_n ?? ranked.count))
        return try json(RerankResponse(model: r.model ?? ModelCache.defaultEmbeddingModel,
            results: top.map { .init(index: $0.offset, relevance_score: $0.element, document: (r.return_documents ?? false) ? .init(text: docs[$0.offset]) : nil) }))
    }
}
