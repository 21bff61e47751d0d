// The server's routes in-process (Hummingbird's router testing): the OpenAI shapes, the model
// names that pick base, adapter or retrieval, the limits and errors.
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TailorModels
import TailorRAG
import TailorTestSupport
@testable import TailorServer

struct Fixtures {
    let model = "SmolLM2-135M-Instruct.Q4_1.gguf"
    let adapterDir: URL
    let collectionDir: URL

    /// A PEFT adapter with random weights, and a collection of three small documents.
    static let shared: Result<Fixtures, Error> = Result {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let lm = try LanguageModel(try TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"))
        let config = (lm.model as! LlamaModel).config
        let ad = LoRAAdapter(for: config, rank: 4, alpha: 8, targets: LoRATarget.allCases)
        var rng = SplitMix64(seed: 5)
        for i in ad.parameters.indices { ad.parameters[i] = (Float(rng.nextUnit()) * 2 - 1) * 0.2 }
        let adapterDir = root.appendingPathComponent("adapter")
        try FileManager.default.createDirectory(at: adapterDir, withIntermediateDirectories: true)
        try writePEFT(ad, config: config, to: adapterDir)
        let docs = root.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try "# Brakes\n\nHydraulic brakes on Velora bikes are bled every twelve months with mineral oil.".write(to: docs.appendingPathComponent("brakes.md"), atomically: true, encoding: .utf8)
        try "# Battery\n\nThe Velora battery warranty covers 800 charge cycles or three years.".write(to: docs.appendingPathComponent("battery.md"), atomically: true, encoding: .utf8)
        try "# Returns\n\nAn unridden bike can be returned within thirty days for a full refund.".write(to: docs.appendingPathComponent("returns.md"), atomically: true, encoding: .utf8)
        let collection = root.appendingPathComponent("collection")
        let kb = try KnowledgeBase.open(collection.path, embedder: try TestPaths.model("all-MiniLM-L6-v2"), create: true)
        _ = try kb.ingest([docs.path])
        return Fixtures(adapterDir: adapterDir, collectionDir: collection)
    }

    /// PEFT files, as `tailor tune` writes them (adapter_config.json + adapter_model.safetensors).
    static func writePEFT(_ ad: LoRAAdapter, config: LlamaConfig, to dir: URL) throws {
        var w = SafetensorsWriterForTests()
        for l in 0..<ad.layers {
            for t in ad.targets {
                let s = ad.shapes[t]!, r = ad.rank
                let key = "base_model.model.model.layers.\(l).\(t.moduleName)"
                let oa = ad.offsetA(layer: l, target: t), ob = ad.offsetB(layer: l, target: t)
                w.add(key + ".lora_A.weight", shape: [r, s.inputs], Array(ad.parameters[oa..<(oa + r * s.inputs)]))
                var b = [Float](repeating: 0, count: s.outputs * r)
                let permuted = LoRAAdapter.isPermuted(t, architecture: config.architecture)
                for row in 0..<s.outputs {
                    let hf = permuted ? LoRAAdapter.huggingFaceRow(row, headDim: config.headDim) : row
                    for c in 0..<r { b[hf * r + c] = ad.parameters[ob + row * r + c] }
                }
                w.add(key + ".lora_B.weight", shape: [s.outputs, r], b)
            }
        }
        try w.write(to: dir.appendingPathComponent("adapter_model.safetensors"))
        let cfg = "{\"peft_type\": \"LORA\", \"r\": \(ad.rank), \"lora_alpha\": \(Int(ad.alpha)), \"target_modules\": [\"q_proj\"]}"
        try cfg.write(to: dir.appendingPathComponent("adapter_config.json"), atomically: true, encoding: .utf8)
    }

    func configuration(_ adjust: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
        var c = ServerConfiguration()
        c.threads = 2
        c.adapters = ["support": adapterDir.path]
        c.defaultMaxTokens = 16
        // The routes' answers are compared with the generator's alone: no prefix reuse (which in
        // fast precision may flip a near tie).
        c.prefixCacheBytes = 0
        adjust(&c)
        return c
    }
}

/// A minimal safetensors writer (F32 tensors), so the tests need not link the tuning module.
struct SafetensorsWriterForTests {
    var tensors: [(String, [Int], [Float])] = []
    mutating func add(_ name: String, shape: [Int], _ v: [Float]) { tensors.append((name, shape, v)) }
    func write(to url: URL) throws {
        var header = "{", offset = 0
        for (i, (n, s, v)) in tensors.enumerated() {
            header += (i > 0 ? "," : "") + "\"\(n)\":{\"dtype\":\"F32\",\"shape\":[\(s.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + 4 * v.count)]}"
            offset += 4 * v.count
        }
        header += "}"
        while (header.utf8.count + 8) % 8 != 0 { header += " " }
        var data = Data()
        var len = UInt64(header.utf8.count).littleEndian
        data.append(Data(bytes: &len, count: 8))
        data.append(Data(header.utf8))
        for (_, _, v) in tensors { v.withUnsafeBytes { data.append(contentsOf: $0) } }
        try data.write(to: url)
    }
}

func body(_ json: String) -> ByteBuffer { ByteBuffer(string: json) }

/// The server of a route test, run with its tasks on threads of its own: the other suites'
/// tests compute for minutes on Swift's cooperative threads (two on this machine), and an
/// in-process server whose handlers wait behind them misses its deadlines. (`tailor serve` has
/// no such neighbours: its heavy work runs off the cooperative pool.)
struct RouteTestApp {
    let app: Application<RouterResponder<TailorRequestContext>>
    static let executor = ThreadsExecutor()

    func test<V: Sendable>(_ setup: TestingSetup, _ body: @Sendable (any TestClientProtocol) async throws -> V) async throws -> V {
        try await withTaskExecutorPreference(Self.executor) {
            try await app.test(setup, body)
        }
    }
}

/// A task executor over a concurrent dispatch queue (threads apart from the cooperative pool).
final class ThreadsExecutor: TaskExecutor {
    let queue = DispatchQueue(label: "route-tests", attributes: .concurrent)
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let me = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: me) }
    }
}

/// Sends a POST on a plain socket to the loopback server and returns the socket, unread (the test
/// then reads some of the answer or none, and closes it: a client going away).
func rawPost(port: Int, path: String, json: String) throws -> Int32 {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard ok == 0 else { close(s); throw POSIXError(.ECONNREFUSED) }
    let request = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n" + json
    _ = request.withCString { send(s, $0, strlen($0), 0) }
    return s
}

/// Polls `condition` every 20 ms for up to `seconds`; whether it came true.
func eventually(within seconds: Double, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}
func object(_ r: TestResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any], "\(String(buffer: r.body))")
}
let jsonHeaders: HTTPFields = [.contentType: "application/json"]

@Suite(.serialized) struct RouteTests {
    static let backend: Result<Backend, Error> = Result { Backend(configuration: try Fixtures.shared.get().configuration()) }

    /// The routes on a real loopback server: requests go through HTTP as clients send them
    /// (AsyncHTTPClient, which reconnects after a generating route closes its connection), and a
    /// client can go away mid-request.
    func app(_ backend: Backend) -> RouteTestApp {
        RouteTestApp(app: Application(router: buildRouter(backend), configuration: .init(address: .hostname("127.0.0.1", port: 0))))
    }

    @Test func healthModelsAndMetrics() async throws {
        let b = try Self.backend.get()
        try await app(b).test(.ahc(.http)) { client in
            try await client.execute(uri: "/health", method: .get) { r in
                #expect(r.status == .ok)
                let o = try object(r)
                #expect(o["status"] as? String == "ok")
            }
            try await client.execute(uri: "/v1/models", method: .get) { r in
                #expect(r.status == .ok)
                let o = try object(r)
                let ids = (o["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                #expect(ids.contains { $0.contains("SmolLM2") }, "\(ids)")
                #expect(ids.contains { $0.contains("MiniLM") }, "\(ids)")
                #expect(ids.contains { $0.hasSuffix("+lora:support") }, "\(ids)")
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("tailor_requests_total"))
            }
        }
    }

    @Test func chatCompletionsPlainStreamedAndWithAnAdapter() async throws {
        let b = try Self.backend.get()
        let f = try Fixtures.shared.get()
        let ask = #"{"model": "\#(f.model)", "messages": [{"role": "user", "content": "What is the capital of France?"}], "temperature": 0, "max_tokens": 12}"#
        // The same greedy answer the generator gives alone.
        let lm = try b.model(f.model).lm
        let ids = lm.encodeChat(try lm.chatTemplate.render([.user("What is the capital of France?")], addGenerationPrompt: true))
        let alone = try lm.generator().generate(prompt: ids, maxTokens: 12, sampling: .greedy)
        try await app(b).test(.ahc(.http)) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(ask)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                let o = try object(r)
                #expect(o["object"] as? String == "chat.completion")
                let msg = (o["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
                #expect(msg?["content"] as? String == alone.text)
                let usage = try #require(o["usage"] as? [String: Int])
                #expect(usage["prompt_tokens"] == ids.count && usage["completion_tokens"] == alone.tokens.count)
            }
            // Streamed: server-sent events, the same text, then [DONE].
            let streamed = ask.replacingOccurrences(of: "\"max_tokens\": 12", with: "\"max_tokens\": 12, \"stream\": true, \"stream_options\": {\"include_usage\": true}")
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(streamed)) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "text/event-stream")
                let lines = String(buffer: r.body).split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
                #expect(lines.last == "[DONE]")
                var text = ""
                var usage: [String: Any]?
                for l in lines.dropLast() {
                    let o = try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any])
                    #expect(o["object"] as? String == "chat.completion.chunk")
                    if let d = (o["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any], let c = d["content"] as? String { text += c }
                    if let u = o["usage"] as? [String: Any] { usage = u }
                }
                #expect(text == alone.text)
                #expect(usage?["completion_tokens"] as? Int == alone.tokens.count)
            }
            // MODEL+lora:support applies the adapter (another answer), loaded without reloading the base.
            let tuned = ask.replacingOccurrences(of: "\"model\": \"\(f.model)\"", with: "\"model\": \"\(f.model)+lora:support\"")
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(tuned)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                let o = try object(r)
                let msg = (o["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
                #expect(msg?["content"] as? String != alone.text)
            }
            let again = try b.model(f.model).lm
            #expect(again === lm)
        }
    }

    /// A client that goes away mid-answer frees its place in the batch at once, streamed or not
    /// (one after the other: the engine's counters are the test's evidence).
    @Test func aClientThatGoesAwayFreesItsPlace() async throws {
        let b = try Self.backend.get()
        let f = try Fixtures.shared.get()
        let engine = try b.model(f.model).engine
        try await app(b).test(.live) { client in
            let port = try #require(client.port)
            for streamed in [true, false] {
                // 3000 tokens past the end of turn: seconds of work if nobody stopped it.
                let req = #"{"model": "\#(f.model)", "prompt": "Count to a thousand: 1, 2, 3,", "max_tokens": 3000, "ignore_eos": true, "temperature": 0, "stream": \#(streamed)}"#
                let before = engine.statistics
                let s = try rawPost(port: port, path: "/v1/completions", json: req)
                #expect(await eventually(within: 20) { engine.statistics.decodedTokens > before.decodedTokens + 20 }, "the request is decoding")
                if streamed {
                    var buf = [UInt8](repeating: 0, count: 512)
                    #expect(recv(s, &buf, buf.count, 0) > 0, "the first events arrive")
                }
                let atClose = engine.statistics
                close(s)
                // Freed at the engine's next steps (a step can be slow while other tests compute:
                // counted in steps, not seconds).
                let freed = await eventually(within: 120) { engine.statistics.activeSequences == 0 }
                let after = engine.statistics
                #expect(freed, "streamed \(streamed): the sequence is still decoding after its client left: at close \(atClose), now \(after)")
                #expect(after.finishedRequests == before.finishedRequests + 1, "streamed \(streamed)")
                #expect(after.steps - atClose.steps <= 8, "streamed \(streamed): \(after.steps - atClose.steps) steps after the client left")
                #expect(after.decodedTokens - before.decodedTokens < 1000, "streamed \(streamed): it stopped soon after the client left, not at 3000 tokens")
            }
        }
    }

    /// A request for a model that another request is loading gets 503 with Retry-After (the
    /// openai client retries it); once loaded, the same request is answered.
    @Test func aModelStillLoadingAnswers503WithRetryAfter() async throws {
        let f = try Fixtures.shared.get()
        let b = Backend(configuration: f.configuration())
        let path = try ModelCache.resolve(f.model)
        b.loadingModels.withLock { _ = $0.insert(path) }     // as while another request loads it
        let ask = #"{"model": "\#(f.model)", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}"#
        try await app(b).test(.ahc(.http)) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(ask)) { r in
                #expect(r.status == .serviceUnavailable)
                #expect(r.headers[.retryAfter] == "1")
                let e = try #require(try object(r)["error"] as? [String: Any])
                #expect(e["code"] as? String == "model_loading")
            }
            b.loadingModels.withLock { _ = $0.remove(path) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(ask)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
            }
        }
        b.shutdown()
    }

    @Test func groundedAnswersCarryTheirCitations() async throws {
        let b = try Self.backend.get()
        let f = try Fixtures.shared.get()
        let req = #"{"model": "\#(f.model)+rag:\#(f.collectionDir.path)", "messages": [{"role": "user", "content": "How many charge cycles does the battery warranty cover?"}], "temperature": 0, "max_tokens": 40}"#
        try await app(b).test(.ahc(.http)) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(req)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                let o = try object(r)
                let cites = try #require(o["citations"] as? [[String: Any]])
                #expect(cites.contains { ($0["file"] as? String)?.hasSuffix("battery.md") == true && ($0["snippet"] as? String)?.contains("800") == true })
                #expect(cites.allSatisfy { $0["chunk_id"] != nil && $0["location"] != nil })
            }
            let streamed = req.replacingOccurrences(of: "\"max_tokens\": 40", with: "\"max_tokens\": 40, \"stream\": true")
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(streamed)) { r in
                let chunks = String(buffer: r.body).split(separator: "\n").filter { $0.hasPrefix("data: {") }
                let last = try #require(try JSONSerialization.jsonObject(with: Data(chunks.last!.dropFirst(6).utf8)) as? [String: Any])
                #expect((last["citations"] as? [[String: Any]])?.isEmpty == false, "the last chunk carries the citations")
            }
        }
    }

    @Test func jsonObjectResponsesAreJSON() async throws {
        let b = try Self.backend.get()
        let f = try Fixtures.shared.get()
        let req = #"{"model": "\#(f.model)", "messages": [{"role": "user", "content": "Give the name and age of a fictional person."}], "temperature": 0, "max_tokens": 60, "response_format": {"type": "json_object"}}"#
        try await app(b).test(.ahc(.http)) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(req)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                let o = try object(r)
                let content = try #require(((o["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String)
                let finish = (o["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String
                if finish == "stop" {
                    #expect((try? JSONSerialization.jsonObject(with: Data(content.utf8))) is [String: Any], "not a JSON object: \(content)")
                } else {
                    #expect(content.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{"), "\(content)")
                }
            }
        }
    }

    @Test func completionsEmbeddingsAndRerank() async throws {
        let b = try Self.backend.get()
        let f = try Fixtures.shared.get()
        try await app(b).test(.ahc(.http)) { client in
            try await client.execute(uri: "/v1/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "\#(f.model)", "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0}"#)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                let o = try object(r)
                let choice = (o["choices"] as? [[String: Any]])?.first
                #expect((choice?["text"] as? String)?.isEmpty == false)
            }
            try await client.execute(uri: "/v1/embeddings", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "all-MiniLM-L6-v2", "input": ["A man is eating.", "Someone has a meal."]}"#)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                let o = try object(r)
                let data = try #require(o["data"] as? [[String: Any]])
                let v = data.compactMap { ($0["embedding"] as? [NSNumber])?.map(\.floatValue) }
                #expect(v.count == 2 && v.allSatisfy { $0.count == 384 })
                let cos = zip(v[0], v[1]).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                #expect(cos > 0.5, "similar sentences: cosine \(cos)")
            }
            try await client.execute(uri: "/v1/embeddings", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "all-MiniLM-L6-v2", "input": "A man is eating.", "encoding_format": "base64"}"#)) { r in
                let o = try object(r)
                let s = try #require((o["data"] as? [[String: Any]])?.first?["embedding"] as? String)
                #expect(Data(base64Encoded: s)?.count == 384 * 4)
            }
            try await client.execute(uri: "/v1/rerank", method: .post, headers: jsonHeaders,
                                     body: body(#"{"query": "battery warranty", "documents": ["Brakes are bled yearly.", "The battery is covered for 800 cycles.", "Returns within 30 days."], "top_n": 2}"#)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                let o = try object(r)
                let results = try #require(o["results"] as? [[String: Any]])
                #expect(results.count == 2 && results.first?["index"] as? Int == 1)
            }
        }
    }

    @Test func errorsAreOpenAIShaped() async throws {
        let b = try Self.backend.get()
        let f = try Fixtures.shared.get()
        @Sendable func check(_ r: TestResponse, _ status: HTTPResponse.Status, _ code: String? = nil) throws {
            #expect(r.status == status, "\(String(buffer: r.body))")
            let o = try object(r)
            let e = try #require(o["error"] as? [String: Any])
            #expect((e["message"] as? String)?.isEmpty == false && e["type"] is String && e.keys.contains("param") && e.keys.contains("code"))
            if let code { #expect(e["code"] as? String == code, "\(e)") }
        }
        try await app(b).test(.ahc(.http)) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}"#)) { try check($0, .notFound, "model_not_found") }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "\#(f.model)+lora:nope", "messages": [{"role": "user", "content": "hi"}]}"#)) { try check($0, .notFound, "adapter_not_found") }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "\#(f.model)", "messages": "hello"}"#)) { try check($0, .badRequest) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "\#(f.model)", "messages": [{"role": "user", "content": "hi"}], "n": 2}"#)) { try check($0, .badRequest) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "\#(f.model)", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 999999}"#)) { try check($0, .badRequest) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body("{not json")) { try check($0, .badRequest) }
        }
        // Keys, body size, queue depth and prompt length limits.
        let limited = Backend(configuration: f.configuration { c in
            c.apiKeys = ["sekret"]; c.maxBodyBytes = 2048; c.maxQueue = 0; c.maxPromptTokens = 20
        })
        try await app(limited).test(.ahc(.http)) { client in
            let hi = body(#"{"model": "\#(f.model)", "messages": [{"role": "user", "content": "hi"}]}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: hi) { try check($0, .unauthorized, "invalid_api_key") }
            var auth = jsonHeaders
            auth[.authorization] = "Bearer wrong"
            try await client.execute(uri: "/v1/models", method: .get, headers: auth) { try check($0, .unauthorized) }
            auth[.authorization] = "Bearer sekret"
            try await client.execute(uri: "/v1/models", method: .get, headers: auth) { #expect($0.status == .ok) }
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok, "health needs no key") }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: auth,
                                     body: body(String(repeating: " ", count: 4000) + "{}")) { try check($0, .contentTooLarge) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: auth, body: hi) { r in
                try check(r, .tooManyRequests)
                #expect(r.headers[.retryAfter] != nil)
            }
        }
        let short = Backend(configuration: f.configuration { $0.maxPromptTokens = 20 })
        try await app(short).test(.ahc(.http)) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                     body: body(#"{"model": "\#(f.model)", "messages": [{"role": "user", "content": "\#(String(repeating: "word ", count: 60))"}]}"#)) {
                try check($0, .badRequest, "context_length_exceeded")
            }
        }
    }
}
