// `tailor serve` as users run it, driven by the real `openai` Python client (PyPI): chat, streaming,
// an adapter, a collection with citations, embeddings, errors.
import Foundation
import Testing
import TailorTestSupport

@Suite(.serialized) struct EndToEndTests {
    static var binary: URL {
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("tailor")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tailor")
    }

    /// A free loopback port.
    static func freePort() -> Int {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Whether GET /health answers (a plain socket: Foundation's URL loading is not what we test).
    static func healthy(_ port: Int) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { return false }
        let req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        _ = req.withCString { send(s, $0, strlen($0), 0) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(s, &buf, buf.count, 0)
        return n > 0 && String(decoding: buf[0..<n], as: UTF8.self).contains("\"ok\"")
    }

    @Test func openAIClientAgainstTailorServe() throws {
        let f = try Fixtures.shared.get()
        let port = Self.freePort()
        let server = Process()
        server.executableURL = Self.binary
        // No prefix reuse: the streamed answer is compared with the same question's plain one.
        // A home of its own (the models linked in): the files and vector stores it makes stay there.
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-e2e-home-\(port)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try? FileManager.default.createSymbolicLink(at: home.appendingPathComponent("models"), withDestinationURL: TestPaths.modelCache)
        defer { try? FileManager.default.removeItem(at: home) }
        server.environment = ProcessInfo.processInfo.environment.merging(["TAILOR_HOME": home.path]) { $1 }
        server.arguments = ["serve", "--port", String(port), "--api-key", "sekret", "-t", "2", "--adapter", "support=\(f.adapterDir.path)", "-m", f.model,
                            "--prefix-cache-mib", "0"]
        // The server's output goes to a file (a pipe nobody reads would block it once full) that
        // a failure prints.
        let logURL = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-serve-\(port).log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        server.standardError = log
        server.standardOutput = log
        try server.run()
        defer { if server.isRunning { server.terminate() }; server.waitUntilExit(); try? log.close() }
        func serverLog() -> String {
            let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            let exit = server.isRunning ? "running" : "exited with \(server.terminationStatus) (\(server.terminationReason == .uncaughtSignal ? "signal" : "exit"))"
            return "tailor serve \(exit); its output:\n" + String(text.suffix(20000))
        }
        // Wait for it to answer.
        var up = false
        for _ in 0..<300 where !up {
            Thread.sleep(forTimeInterval: 0.1)
            up = Self.healthy(port)
        }
        #expect(up, "tailor serve did not answer on port \(port): \(serverLog())")
        let py = Process()
        py.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        py.arguments = ["python3", TestPaths.repoRoot.appendingPathComponent("scripts/e2e/openai_client.py").path,
                        "http://127.0.0.1:\(port)/v1", "sekret", f.model, "support", f.collectionDir.path]
        let out = Pipe(), err = Pipe()
        py.standardOutput = out
        py.standardError = err
        try py.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        py.waitUntilExit()
        #expect(py.terminationStatus == 0, "openai client failed: \(String(decoding: e, as: UTF8.self).suffix(3000))\n\(serverLog())")
        let parsed = try? JSONSerialization.jsonObject(with: o) as? [String: Any]
        let r = try #require(parsed, "\(String(decoding: o, as: UTF8.self))")
        print("openai \(r["openai_version"] ?? "?"): \(r)")
        let models = r["models"] as? [String] ?? []
        #expect(models.contains { $0.contains("SmolLM2") } && models.contains { $0.contains("MiniLM") })
        let chat = r["chat"] as? String ?? ""
        #expect(!chat.isEmpty)
        #expect(r["streamed"] as? String == chat, "streamed: \(r["streamed"] ?? "")")
        #expect((r["stream_chunks"] as? Int ?? 0) > 1)
        #expect((r["adapter_chat"] as? String ?? chat) != chat)
        let cites = r["citations"] as? [[String: Any]] ?? []
        #expect(cites.contains { ($0["file"] as? String)?.hasSuffix("battery.md") == true })
        #expect(r["embedding_dims"] as? [Int] == [384, 384])
        #expect((r["bad_model"] as? [String: Any])?["status"] as? Int == 404)
        #expect((r["bad_key"] as? [String: Any])?["status"] as? Int == 401)
        // Files and vector stores.
        let file = r["file"] as? [String: Any] ?? [:]
        #expect(file["filename"] as? String == "tyres.md" && file["purpose"] as? String == "assistants" && (file["bytes"] as? Int ?? 0) > 50)
        #expect(r["file_listed"] as? Bool == true)
        #expect((r["file_content"] as? String)?.contains("3.5 bar") == true)
        let storeFiles = r["store_files"] as? [[Any]] ?? []
        #expect(storeFiles.count == 2 && storeFiles.allSatisfy { $0.last as? String == "completed" }, "\(storeFiles)")
        let store = r["store"] as? [String: Any] ?? [:]
        #expect(store["completed"] as? Int == 2 && store["status"] as? String == "completed" && store["name"] as? String == "bike docs")
        #expect(r["stores_listed"] as? Bool == true)
        let hits = r["search"] as? [[String: Any]] ?? []
        #expect(hits.first?["filename"] as? String == "tyres.md" && (hits.first?["text"] as? String)?.contains("42 mm") == true, "\(hits)")
        #expect((hits.first?["score"] as? Double ?? 0) > (hits.last?["score"] as? Double ?? 1) || hits.count == 1)
        #expect(r["filtered_search"] as? [String] == ["lights.md"], "only the file whose attributes match")
        #expect((r["store_citations"] as? [String] ?? []).contains { $0.hasSuffix("tyres.md") }, "\(r["store_citations"] ?? "")")
        #expect(!(r["after_remove"] as? [String] ?? ["?"]).contains("lights.md"))
        #expect(r["store_deleted"] as? Bool == true && r["file_deleted"] as? Bool == true)
        #expect(r["deleted_file"] as? Int == 404)
    }
}
