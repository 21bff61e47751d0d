import Foundation
import Testing

/// ingest / search / collections / reindex / eval as a user runs them, on the real binary and model.
@Suite(.serialized) struct KnowledgeCLITests {
    let cli = CLITests()
    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TailorRAGTests/Fixtures/docs")
    }

    func temp() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    func json(_ s: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(s.utf8)) }

    @Test func ingestSearchStatsDelete() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let col = dir.appendingPathComponent("col").path
        let r = try cli.tailor(["ingest", Self.fixtures.path, "-c", col])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("10 files seen — 9 new"), "\(r.out)")
        #expect(r.out.contains("broken.pdf: not a readable PDF"))
        #expect(r.out.contains("now 11 documents"))
        let again = try cli.tailor(["ingest", Self.fixtures.path, "-c", col, "--json"])
        let rep = try #require(try json(again.out) as? [String: Any])
        let summary = try #require(rep["summary"] as? [String: Any])
        #expect(summary["chunksEmbedded"] as? Int == 0 && summary["filesUnchanged"] as? Int == 9)
        #expect(try cli.tailor(["ingest", Self.fixtures.path, "-c", col, "--strict"]).status != 0, "--strict fails on unreadable files")

        let s = try cli.tailor(["search", "how long is the battery warranty", "-c", col, "-k", "2"])
        #expect(s.status == 0, "\(s.err)")
        #expect(s.out.hasPrefix("1. ") && s.out.contains("warranty.pdf — page"), "\(s.out)")
        #expect(s.out.contains("800 charge cycles"))
        let sj = try cli.tailor(["search", "sintered pad", "-c", col, "--mode", "keyword", "--json", "-k", "3"])
        let hits = try #require(try json(sj.out) as? [[String: Any]])
        #expect((hits.first?["path"] as? String)?.hasSuffix("parts.csv") == true)
        #expect(hits.first?["rowStart"] as? Int == 1 && hits.first?["rowEnd"] as? Int == 3, "the small table is one chunk")
        let f = try cli.tailor(["search", "brakes", "-c", col, "--filter", "type=pdf", "--json"])
        let fh = try #require(try json(f.out) as? [[String: Any]])
        #expect(!fh.isEmpty && fh.allSatisfy { ($0["path"] as? String)?.hasSuffix(".pdf") == true })
        let bad = try cli.tailor(["search", "x", "-c", col, "--filter", "type=exe"])
        #expect(bad.status != 0 && bad.err.contains("bad filter: type 'exe'"))

        let st = try cli.tailor(["collections", "stats", col, "--json"])
        let stats = try #require(try json(st.out) as? [String: Any])
        #expect(stats["documents"] as? Int == 11 && stats["embedder"] as? String == "all-MiniLM-L6-v2")
        #expect(try cli.tailor(["collections", "check", col]).out.contains("consistent"))
        let del = try cli.tailor(["collections", "delete", col, "--yes"])
        #expect(del.status == 0 && !FileManager.default.fileExists(atPath: col + "/collection.sqlite"))
        let gone = try cli.tailor(["search", "x", "-c", col])
        #expect(gone.status != 0 && gone.err.contains("no collection named"))
    }

    @Test func extractShowsStructureAndChunks() throws {
        let r = try cli.tailor(["extract", Self.fixtures.appendingPathComponent("warranty.pdf").path, "--chunks", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let docs = try #require(try json(r.out) as? [[String: Any]])
        let blocks = try #require(docs.first?["blocks"] as? [[String: Any]])
        #expect(blocks.map { $0["page"] as? Int } == [1, 2])
        let chunks = try #require(docs.first?["chunks"] as? [[String: Any]])
        #expect(chunks.count == 1 && (chunks[0]["location"] as? String) == "pages 1–2")
        let text = try cli.tailor(["extract", Self.fixtures.appendingPathComponent("handbook.md").path])
        #expect(text.out.contains("[heading 115-121 · Lumen Bikes Service Handbook > Brakes] Brakes"), "\(text.out)")
        let bad = try cli.tailor(["extract", Self.fixtures.appendingPathComponent("broken.pdf").path])
        #expect(bad.status != 0 && bad.err.contains("not a readable PDF"))
    }

    @Test func killedIngestLeavesWholeDocumentsAndResumes() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let docs = dir.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        let para = "The quick brown fox jumps over the lazy dog near the river bank while the sun sets slowly. "
        for i in 0..<60 {
            let body = (0..<6).map { s in "## Part \(s)\n\n" + String(repeating: para, count: 8) + "Unique marker \(i)-\(s)." }.joined(separator: "\n\n")
            try "# Document \(i)\n\n\(body)\n".write(to: docs.appendingPathComponent("doc-\(i).md"), atomically: true, encoding: .utf8)
        }
        let col = dir.appendingPathComponent("col").path
        let p = Process()
        p.executableURL = CLITests.binary
        p.arguments = ["ingest", docs.path, "-c", col, "-t", "1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait until some documents are committed, then kill it without warning.
        var committed = 0
        let deadline = Date().addingTimeInterval(120)
        while committed == 0 && Date() < deadline && p.isRunning {
            Thread.sleep(forTimeInterval: 0.2)
            if let st = try? cli.tailor(["collections", "stats", col, "--json"]), st.status == 0,
               let o = try? json(st.out) as? [String: Any] { committed = o["documents"] as? Int ?? 0 }
        }
        #expect(p.isRunning, "ingest finished before it could be killed; make the corpus bigger")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(committed > 0)
        let check = try cli.tailor(["collections", "check", col])
        #expect(check.status == 0, "\(check.out)")
        let partial = try #require(try json(cli.tailor(["collections", "stats", col, "--json"]).out) as? [String: Any])
        let partialDocs = try #require(partial["documents"] as? Int)
        #expect(partialDocs < 60)
        // Resume.
        let r = try cli.tailor(["ingest", docs.path, "-c", col, "--json"])
        #expect(r.status == 0, "\(r.err)")
        let rep = try #require(try json(r.out) as? [String: Any])
        let summary = try #require(rep["summary"] as? [String: Any])
        #expect(summary["documentsEmbedded"] as? Int == 60 - partialDocs)
        let stats = try #require(rep["stats"] as? [String: Any])
        #expect(stats["documents"] as? Int == 60)
        // Exactly the chunks of a clean run: no duplicates.
        let clean = dir.appendingPathComponent("clean").path
        let c = try #require(try json(cli.tailor(["ingest", docs.path, "-c", clean, "--json"]).out) as? [String: Any])
        #expect((c["stats"] as? [String: Any])?["chunks"] as? Int == stats["chunks"] as? Int)
        #expect(try cli.tailor(["collections", "check", col]).status == 0)
        // Every marker is findable exactly once.
        let s = try cli.tailor(["search", "Unique marker 42-3", "-c", col, "--mode", "keyword", "--json", "-k", "3"])
        let hits = try #require(try json(s.out) as? [[String: Any]])
        #expect((hits.first?["text"] as? String)?.contains("Unique marker 42-3.") == true)
    }

    @Test func watchFollowsAFolder() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let docs = dir.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try "# Start\n\nThe first note is about saddles.\n".write(to: docs.appendingPathComponent("a.md"), atomically: true, encoding: .utf8)
        let col = dir.appendingPathComponent("col").path
        let p = Process()
        p.executableURL = CLITests.binary
        p.arguments = ["ingest", docs.path, "-c", col, "--watch", "--interval", "0.3"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        func documents() -> Int {
            guard let st = try? cli.tailor(["collections", "stats", col, "--json"]), st.status == 0,
                  let o = try? json(st.out) as? [String: Any] else { return -1 }
            return o["documents"] as? Int ?? -1
        }
        func waitFor(_ n: Int) -> Bool {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline { if documents() == n { return true }; Thread.sleep(forTimeInterval: 0.2) }
            return false
        }
        #expect(waitFor(1))
        try "A second note about handlebars.\n".write(to: docs.appendingPathComponent("b.txt"), atomically: true, encoding: .utf8)
        #expect(waitFor(2), "a new file is picked up")
        try FileManager.default.removeItem(at: docs.appendingPathComponent("a.md"))
        #expect(waitFor(1), "a deleted file is dropped")
        let s = try cli.tailor(["search", "handlebars", "-c", col, "--mode", "keyword", "--json"])
        #expect(s.out.contains("b.txt"))
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "Ctrl-C ends --watch cleanly")
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.contains("1 new") && printed.contains("1 removed"), "\(printed)")
    }

    @Test func reindexReembedsAndRecordsTheModel() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let col = dir.appendingPathComponent("col").path
        #expect(try cli.tailor(["ingest", Self.fixtures.appendingPathComponent("handbook.md").path, "-c", col]).status == 0)
        // The same model under another name (a folder path) counts as another model.
        let home = ProcessInfo.processInfo.environment["TAILOR_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tailor")
        let copy = dir.appendingPathComponent("my-minilm")
        try FileManager.default.copyItem(at: home.appendingPathComponent("models/all-MiniLM-L6-v2"), to: copy)
        let mismatch = try cli.tailor(["search", "brakes", "-c", col, "-m", copy.path])
        #expect(mismatch.status != 0 && mismatch.err.contains("tailor reindex"), "\(mismatch.err)")
        let r = try cli.tailor(["reindex", "-c", col, "-m", copy.path])
        #expect(r.status == 0, "\(r.err)")
        // A model outside the model cache is recorded by its path, so later commands find it without -m.
        let recorded = copy.standardizedFileURL.path
        #expect(r.out.contains("with \(recorded) (384 dims)"), "\(r.out)")
        let s = try cli.tailor(["search", "brake fluid", "-c", col, "-m", copy.path, "-k", "1"])
        #expect(s.status == 0 && s.out.contains("mineral oil"), "\(s.out)\(s.err)")
        let plain = try cli.tailor(["search", "brake fluid", "-c", col, "-k", "1"])
        #expect(plain.status == 0 && plain.out.contains("mineral oil"), "\(plain.out)\(plain.err)")
        let st = try #require(try json(cli.tailor(["collections", "stats", col, "--json"]).out) as? [String: Any])
        #expect(st["embedder"] as? String == recorded)
    }

    @Test func evalRetrievalOnATinyBEIRSet() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = [("d1", "Brakes", "Hydraulic brakes are bled every twelve months with mineral oil."),
                      ("d2", "Tyres", "City tyres run at four and a half bar of pressure."),
                      ("d3", "Chains", "Replace the chain when it has stretched by half a percent."),
                      ("d4", "Warranty", "Frames carry a lifetime warranty for the first owner.")]
        try corpus.map { "{\"_id\": \"\($0.0)\", \"title\": \"\($0.1)\", \"text\": \"\($0.2)\"}" }.joined(separator: "\n")
            .write(to: dir.appendingPathComponent("corpus.jsonl"), atomically: true, encoding: .utf8)
        try ["{\"_id\": \"q1\", \"text\": \"how often to bleed hydraulic brakes\"}",
             "{\"_id\": \"q2\", \"text\": \"tyre pressure for city bikes\"}",
             "{\"_id\": \"q3\", \"text\": \"unjudged query\"}"].joined(separator: "\n")
            .write(to: dir.appendingPathComponent("queries.jsonl"), atomically: true, encoding: .utf8)
        try "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n".write(to: dir.appendingPathComponent("qrels.tsv"), atomically: true, encoding: .utf8)
        let r = try cli.tailor(["eval", "retrieval", "--corpus", dir.appendingPathComponent("corpus.jsonl").path,
                                "--queries", dir.appendingPathComponent("queries.jsonl").path,
                                "--qrels", dir.appendingPathComponent("qrels.tsv").path, "--json"])
        #expect(r.status == 0, "\(r.err)")
        let rep = try #require(try json(r.out) as? [String: Any])
        #expect(rep["queries"] as? Int == 2 && rep["documents"] as? Int == 4)
        let modes = try #require(rep["modes"] as? [[String: Any]])
        #expect(modes.map { $0["mode"] as? String } == ["vector", "keyword", "hybrid"])
        for m in modes {
            let metrics = try #require(m["metrics"] as? [String: Any])
            #expect(metrics["ndcg10"] as? Double == 1.0 && metrics["mrr10"] as? Double == 1.0, "\(m)")
        }
        let bad = try cli.tailor(["eval", "retrieval", "--corpus", "/nonexistent.jsonl", "--queries", dir.appendingPathComponent("queries.jsonl").path,
                                  "--qrels", dir.appendingPathComponent("qrels.tsv").path])
        #expect(bad.status != 0 && bad.err.contains("/nonexistent.jsonl"))
    }
}

/// `tailor ask` and `tailor chat -c` on the fixture corpus with the real models.
@Suite(.serialized) struct AskCLITests {
    let cli = CLITests()

    @Test func askCitesAndAgreesWithJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-ask-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let col = dir.appendingPathComponent("col").path
        #expect(try cli.tailor(["ingest", KnowledgeCLITests.fixtures.path, "-c", col]).status == 0)
        let q = "How many charge cycles are the batteries covered for?"
        let text = try cli.tailor(["ask", q, "-c", col])
        #expect(text.status == 0, "\(text.err)")
        #expect(text.out.contains("800"))
        #expect(text.out.contains("Sources:") && text.out.contains("warranty.pdf — page"), "\(text.out)")
        let js = try cli.tailor(["ask", q, "-c", col, "--json"])
        let a = try #require(try JSONSerialization.jsonObject(with: Data(js.out.utf8)) as? [String: Any])
        #expect(text.out.hasPrefix(try #require(a["text"] as? String)), "CLI text and JSON agree")
        let sources = try #require(a["sources"] as? [[String: Any]])
        #expect(sources.contains { (($0["cited"] as? Bool) == true || ($0["supported"] as? Bool) == true) && ($0["text"] as? String)?.contains("800 charge cycles") == true })
        let timings = try #require(a["timings"] as? [String: Any])
        #expect((timings["promptTokens"] as? Int ?? 0) > 0 && (timings["retrievalMs"] as? Double ?? -1) >= 0)
        let out = try cli.tailor(["ask", "Who won the football world cup in 1998?", "-c", col])
        #expect(out.status == 0 && out.out.contains("The documents do not cover this."))
        let chat = try cli.tailor(["chat", "-c", col, "--temp", "0", "-n", "60"],
                                  stdin: "How often are hydraulic brakes bled?\nWhich fluid is used for it?\n")
        #expect(chat.status == 0, "\(chat.err)")
        // Two turns, each answered and followed by its passages; the follow-up ("it") still
        // retrieves the brake passage. (What SmolLM2-135M makes of it is another matter.)
        let lists = chat.out.components(separatedBy: "\n").filter { $0.hasPrefix("Sources:") || $0.contains("passages it was given") }
        #expect(lists.count == 2, "\(chat.out)")
        let second = chat.out.components(separatedBy: lists[0]).last ?? ""
        #expect(second.contains("mineral oil"), "\(chat.out)")
    }
}
