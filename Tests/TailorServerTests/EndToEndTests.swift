// `tailor serve` as users run it, driven by the real `openai` Python client (PyPI): chat, streaming,
// an adapter, a collection with citations, embeddings, errors.
import Foundation
import Synchronization
import Testing
import TailorRAG
import TailorTestSupport

@Suite(.serialized) struct EndToEndTests {
    static var binary: URL { TestPaths.tailorBinary }

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

    /// A temporary TAILOR_HOME with the models linked in: what a server makes stays there.
    static func makeHome() throws -> URL {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-e2e-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: home.appendingPathComponent("models"), withDestinationURL: TestPaths.modelCache)
        return home
    }

    /// `tailor serve` started as users start it, its output in a file (a pipe nobody reads would
    /// block it once full) that failures print.
    final class RunningServer {
        let process = Process()
        let port = EndToEndTests.freePort()
        let logURL: URL
        private let log: FileHandle

        init(home: URL, arguments: [String]) throws {
            process.executableURL = EndToEndTests.binary
            process.environment = ProcessInfo.processInfo.environment.merging(["TAILOR_HOME": home.path]) { $1 }
            process.arguments = ["serve", "--port", String(port), "--api-key", "sekret", "-t", "2"] + arguments
            logURL = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-serve-\(port).log")
            FileManager.default.createFile(atPath: logURL.path, contents: nil)
            log = try FileHandle(forWritingTo: logURL)
            process.standardError = log
            process.standardOutput = log
            try process.run()
        }

        /// Waits until GET /health answers.
        func waitUntilUp() -> Bool {
            for _ in 0..<600 {
                if EndToEndTests.healthy(port) { return true }
                if !process.isRunning { return false }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return false
        }

        var output: String {
            let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            let exit = process.isRunning ? "running" : "exited with \(process.terminationStatus) (\(process.terminationReason == .uncaughtSignal ? "signal" : "exit"))"
            return "tailor serve \(exit); its output:\n" + String(text.suffix(20000))
        }

        /// Stops it: SIGTERM (a shutdown), or SIGKILL (a crash).
        func stop(kill: Bool = false) {
            if process.isRunning {
                if kill { Foundation.kill(process.processIdentifier, SIGKILL) } else { process.terminate() }
            }
            process.waitUntilExit()
            try? log.close()
        }

        deinit { stop() }
    }

    /// Runs a script of scripts/e2e with python3: (exit status, stdout, stderr).
    static func python(_ script: String, _ args: [String]) throws -> (Int32, Data, String) {
        let py = Process()
        py.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        py.arguments = ["python3", TestPaths.repoRoot.appendingPathComponent("scripts/e2e/" + script).path] + args
        let out = Pipe(), err = Pipe()
        py.standardOutput = out
        py.standardError = err
        try py.run()
        // stderr is read on another thread: a full pipe would block the script.
        let errData = Mutex(Data())
        let reader = Thread { let d = err.fileHandleForReading.readDataToEndOfFile(); errData.withLock { $0 = d } }
        reader.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        py.waitUntilExit()
        while reader.isExecuting || !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        return (py.terminationStatus, o, String(errData.withLock { String(decoding: $0, as: UTF8.self) }.suffix(3000)))
    }

    @Test func openAIClientAgainstTailorServe() throws {
        let f = try Fixtures.shared.get()
        let home = try Self.makeHome()
        defer { try? FileManager.default.removeItem(at: home) }
        // No prefix reuse: the streamed answer is compared with the same question's plain one.
        let server = try RunningServer(home: home, arguments: ["--adapter", "support=\(f.adapterDir.path)", "-m", f.model, "--prefix-cache-mib", "0"])
        defer { server.stop() }
        #expect(server.waitUntilUp(), "tailor serve did not answer on port \(server.port): \(server.output)")
        let (status, o, e) = try Self.python("openai_client.py", ["http://127.0.0.1:\(server.port)/v1", "sekret", f.model, "support", f.collectionDir.path])
        #expect(status == 0, "openai client failed: \(e)\n\(server.output)")
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
        // Fine-tuning jobs.
        #expect((r["job_created"] as? [String: Any])?["object"] as? String == "fine_tuning.job")
        let job = r["job"] as? [String: Any] ?? [:]
        #expect(job["status"] as? String == "succeeded", "\(job)")
        let tuned = job["fine_tuned_model"] as? String ?? ""
        #expect(tuned.hasPrefix(f.model + "+lora:ftjob-"), "\(tuned)")
        #expect((job["trained_tokens"] as? Int ?? 0) > 0)
        #expect(r["job_loss_steps"] as? [Int] == [1, 2, 3, 4, 5, 6], "a loss event per step: \(r["job_loss_steps"] ?? "")")
        #expect(!(r["job_checkpoints"] as? [String] ?? []).isEmpty)
        #expect(r["jobs_listed"] as? Bool == true)
        #expect((r["tuned_chat"] as? String)?.isEmpty == false && r["tuned_listed"] as? Bool == true, "\(r["tuned_chat"] ?? "") \(r["tuned_listed"] ?? "")")
        #expect(r["cancelled_final"] as? String == "cancelled")
        #expect(r["wrong_purpose"] as? Int == 400)
    }

    /// Vector stores kept in PostgreSQL (`tailor serve --store postgresql://…`), driven by the
    /// openai client: the same answers as with the SQLite collections.
    @Test func vectorStoresInPostgreSQL() throws {
        let f = try Fixtures.shared.get()
        let url = try TestPostgres.url()
        let home = try Self.makeHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let server = try RunningServer(home: home, arguments: ["-m", f.model, "--store", url])
        defer { server.stop() }
        #expect(server.waitUntilUp(), "tailor serve did not answer on port \(server.port): \(server.output)")
        let (status, o, e) = try Self.python("vector_stores_client.py", ["http://127.0.0.1:\(server.port)/v1", "sekret", f.model])
        #expect(status == 0, "openai client failed: \(e)\n\(server.output)")
        let r = try #require(try? JSONSerialization.jsonObject(with: o) as? [String: Any], "\(String(decoding: o, as: UTF8.self))")
        let statuses = (r["store_files"] as? [[Any]] ?? []).map { $0.last as? String }
        #expect(statuses == ["completed", "completed"], "\(r)")
        #expect(r["stores_listed"] as? Bool == true)
        let hits = r["search"] as? [[String: Any]] ?? []
        #expect(hits.first?["filename"] as? String == "tyres.md" && (hits.first?["text"] as? String)?.contains("42 mm") == true, "\(r)")
        #expect(r["filtered_search"] as? [String] == ["lights.md"])
        #expect((r["store_citations"] as? [String] ?? []).contains { $0.hasSuffix("tyres.md") }, "\(r)")
        #expect(!(r["after_remove"] as? [String] ?? ["?"]).contains("lights.md"))
        #expect(r["store_deleted"] as? Bool == true && r["listed_after_delete"] as? Bool == false)
        // The store was a collection in PostgreSQL (and is gone with it).
        let id = try #require(r["store_id"] as? String)
        let list = Process()
        list.executableURL = TestPaths.tailorBinary
        list.arguments = ["collections", "--store", url, "--json"]
        let pipe = Pipe(); list.standardOutput = pipe
        try list.run()
        let listed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        list.waitUntilExit()
        #expect(list.terminationStatus == 0 && !listed.contains(id))
    }

    /// A fine-tuning job and an ingest under way when the server is killed resume when it starts
    /// again (the job from its last checkpoint), and finish.
    @Test func jobsAndIngestsResumeAfterARestart() throws {
        let f = try Fixtures.shared.get()
        let home = try Self.makeHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let first = try RunningServer(home: home, arguments: ["-m", f.model])
        #expect(first.waitUntilUp(), "\(first.output)")
        let (s1, o1, e1) = try Self.python("resume_after_restart.py", ["start", "http://127.0.0.1:\(first.port)/v1", "sekret", f.model])
        #expect(s1 == 0, "\(e1)\n\(first.output)")
        let started = try #require(try JSONSerialization.jsonObject(with: o1) as? [String: Any], "\(String(decoding: o1, as: UTF8.self))")
        #expect(started["job_status"] as? String == "running" && (started["job_step"] as? Int ?? 0) >= 5, "\(started)")
        first.stop(kill: true)
        let second = try RunningServer(home: home, arguments: ["-m", f.model])
        defer { second.stop() }
        #expect(second.waitUntilUp(), "\(second.output)")
        let ids = ["job", "store", "file"].map { started[$0] as? String ?? "" }
        let (s2, o2, e2) = try Self.python("resume_after_restart.py", ["finish", "http://127.0.0.1:\(second.port)/v1", "sekret"] + ids)
        #expect(s2 == 0, "\(e2)\n\(second.output)")
        let done = try #require(try JSONSerialization.jsonObject(with: o2) as? [String: Any], "\(String(decoding: o2, as: UTF8.self))")
        print("after a restart: \(done)")
        #expect(done["job_status"] as? String == "succeeded" && done["job_step"] as? Int == 40, "\(done)")
        let resumed = done["resumed"] as? [String] ?? []
        #expect(resumed.contains { $0.contains("Resumed from the checkpoint at step") }, "the job went on from its checkpoint: \(resumed)")
        #expect(done["file_status"] as? String == "completed" && (done["chunks"] as? Int ?? 0) > 100, "\(done)")
        #expect((done["search"] as? [String] ?? []).contains { $0.contains("model 2999") }, "the whole document is searchable")
    }

    /// The web page in headless Chromium (Debian's, driven by Selenium): a grounded chat with its
    /// sources, a collection made and a file uploaded and ingested, a report opened — each step
    /// screenshotted, and the screenshots checked for what they must show.
    @Test func webPageInHeadlessChromium() throws {
        let f = try Fixtures.shared.get()
        let home = try Self.makeHome()
        defer { try? FileManager.default.removeItem(at: home) }
        // A collection of the fixture's documents, and a comparison report, in the server's home.
        let kb = try KnowledgeBase.open(home.appendingPathComponent("collections/bikes").path, embedder: try TestPaths.model("all-MiniLM-L6-v2"), create: true)
        let docs = home.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try "# Tyres\n\nVelora city bikes ship with 42 mm puncture-resistant tyres inflated to 3.5 bar.".write(to: docs.appendingPathComponent("tyres.md"), atomically: true, encoding: .utf8)
        _ = try kb.ingest([docs.path])
        let report = home.appendingPathComponent("reports/bikes-rag-vs-tuning")
        try FileManager.default.createDirectory(at: report, withIntermediateDirectories: true)
        try "<html><body style='font:20px sans-serif'><h1>Comparison report</h1><p>RAG answered 9 of 10; fine-tuning 6 of 10.</p></body></html>"
            .write(to: report.appendingPathComponent("report.html"), atomically: true, encoding: .utf8)
        let upload = home.appendingPathComponent("warranty.md")
        try "# Warranty\n\nThe Velora frame warranty lasts ten years.".write(to: upload, atomically: true, encoding: .utf8)
        let training = home.appendingPathComponent("examples.jsonl")
        try (0..<16).map { #"{"messages": [{"role": "user", "content": "Who makes bike \#($0)?"}, {"role": "assistant", "content": "Velora makes it."}]}"# }
            .joined(separator: "\n").write(to: training, atomically: true, encoding: .utf8)
        let server = try RunningServer(home: home, arguments: ["-m", f.model])
        defer { server.stop() }
        #expect(server.waitUntilUp(), "\(server.output)")
        // Kept after the run (.build/screenshots) for a person to look at.
        let shots = TestPaths.repoRoot.appendingPathComponent(".build/screenshots")
        let (status, o, e) = try Self.python("web_page.py", ["http://127.0.0.1:\(server.port)", "sekret", f.model, "bikes", shots.path, upload.path, training.path])
        #expect(status == 0, "\(e)\n\(server.output)")
        let r = try #require(try JSONSerialization.jsonObject(with: o) as? [String: Any], "\(String(decoding: o, as: UTF8.self))\n\(e)")
        print("web page: \(r)")
        #expect(r["error"] == nil, "\(r["error"] ?? "") — page: \(r["page_text"] ?? "") console: \(r["console"] ?? "")")
        #expect((r["answer"] as? String)?.isEmpty == false)
        #expect((r["sources"] as? [String] ?? []).contains { $0.contains("tyres.md") }, "\(r["sources"] ?? "")")
        #expect((r["passage"] as? String)?.contains("3.5 bar") == true)
        func ink(_ k: String) -> Double { ((r[k] as? [String: Any])?["ink_share"] as? Double) ?? 0 }
        #expect(ink("chat_answer_region") > 0.01, "the answer is drawn: \(r["chat_answer_region"] ?? "")")
        #expect(ink("chat_passage_region") > 0.01, "the opened passage is drawn: \(r["chat_passage_region"] ?? "")")
        #expect((r["ingest_rows"] as? [String] ?? []).contains { $0.contains("warranty.md") && $0.contains("completed") }, "\(r["ingest_rows"] ?? "")")
        #expect((r["stores"] as? [String] ?? []).contains { $0.contains("web docs") })
        let bar = (r["progress_bar_region"] as? [String: Any])?["accent_share"] as? Double ?? 0
        #expect(bar > 0.9, "the progress bar is full: \(r["progress_bar_region"] ?? "")")
        #expect(ink("report_region") > 0.005 && (r["report_text"] as? String)?.contains("RAG answered 9 of 10") == true, "\(r["report_region"] ?? "") \(r["report_text"] ?? "")")
        #expect(r["page_fits_width"] as? Bool == true, "a long answer does not widen the page")
        #expect((r["job_rows"] as? [String] ?? []).contains { $0.contains("succeeded") && $0.contains("+lora:ftjob-") }, "\(r["job_rows"] ?? "")")
        #expect((r["curve_points"] as? Int ?? 0) >= 4, "a point per step")
        #expect(((r["curve_region"] as? [String: Any])?["accent_share"] as? Double ?? 0) > 0.002, "the loss curve is drawn: \(r["curve_region"] ?? "")")
        for name in ["chat.png", "collections.png", "tuning.png", "report.png"] {
            #expect(FileManager.default.fileExists(atPath: shots.appendingPathComponent(name).path), "\(name)")
        }
    }
}
