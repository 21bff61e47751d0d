import Foundation
import Testing
import TailorTestSupport

/// The commands that take a collection, on a real PostgreSQL with pgvector (`--store URL` or
/// TAILOR_STORE), as a user runs them: two ingests at once, a killed ingest, migrate both ways,
/// the JSON of `collections`, eval retrieval, and bad URLs.
@Suite(.serialized) struct PostgresCLITests {
    let cli = CLITests()
    func json(_ s: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(s.utf8)) }

    func temp() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-pgcli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    /// `count` Markdown files next to a copy of the fixture corpus.
    func corpus(_ dir: URL, count: Int = 60, parts: Int = 4) throws -> URL {
        let docs = dir.appendingPathComponent("docs")
        try FileManager.default.copyItem(at: KnowledgeCLITests.fixtures, to: docs)
        let para = "The quick brown fox jumps over the lazy dog near the river bank while the sun sets slowly. "
        for i in 0..<count {
            let body = (0..<parts).map { s in "## Part \(s)\n\n" + String(repeating: para, count: 6) + "Unique marker \(i)-\(s)." }.joined(separator: "\n\n")
            try "# Document \(i)\n\n\(body)\n".write(to: docs.appendingPathComponent("doc-\(i).md"), atomically: true, encoding: .utf8)
        }
        return docs
    }

    func start(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = CLITests.binary
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    @Test func twoIngestsAtOnceThenSearchStatsMigrateAndDelete() throws {
        let url = try TestPostgres.url()
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let docs = try corpus(dir)
        let name = "cli-" + UUID().uuidString.prefix(8).lowercased()
        defer { _ = try? cli.tailor(["collections", "delete", name, "--store", url, "--yes"]) }
        // Two processes ingest the same folder into one collection at the same time.
        let a = try start(["ingest", docs.path, "-c", name, "--store", url, "-t", "1"])
        let b = try start(["ingest", docs.path, "-c", name, "--store", url, "-t", "1"])
        a.waitUntilExit(); b.waitUntilExit()
        #expect(a.terminationStatus == 0 && b.terminationStatus == 0)
        let st = try #require(try json(cli.tailor(["collections", "stats", name, "--store", url, "--json"]).out) as? [String: Any])
        #expect(st["documents"] as? Int == 71, "every document once: \(st)")
        #expect((st["directory"] as? String)?.hasPrefix("postgresql://tailor@") == true, "no password in \(st)")
        let check = try cli.tailor(["collections", "check", name, "--store", url, "--json"])
        #expect(try check.status == 0 && (json(check.out) as? [String: Any])?["ok"] as? Bool == true, "\(check.out)")
        // Each marker once.
        let s = try cli.tailor(["search", "Unique marker 42-3", "-c", name, "--mode", "keyword", "--json", "-k", "3"], environment: ["TAILOR_STORE": url])
        let hits = try #require(try json(s.out) as? [[String: Any]], "\(s.err)")
        #expect((hits.first?["text"] as? String)?.contains("Unique marker 42-3.") == true)
        let v = try cli.tailor(["search", "how long is the battery warranty", "-c", name, "--store", url, "-k", "1"])
        #expect(v.status == 0 && v.out.contains("warranty.pdf — page"), "\(v.out)\(v.err)")
        // Listed with the others in the database.
        let list = try #require(try json(cli.tailor(["collections", "--store", url, "--json"]).out) as? [[String: Any]])
        #expect(list.contains { $0["name"] as? String == name })

        // To SQLite and back under another name: the same documents; an ingest of the copy embeds nothing.
        let folder = dir.appendingPathComponent("collections").path
        let m = try cli.tailor(["migrate", "-c", name, "--from", url, "--to", folder, "--json"])
        #expect(m.status == 0, "\(m.err)")
        let rep = try #require(try json(m.out) as? [String: Any])
        #expect((rep["summary"] as? [String: Any])?["copied"] as? Int == 71)
        let again = try #require(try json(cli.tailor(["ingest", docs.path, "-c", name, "--store", folder, "--json"]).out) as? [String: Any])
        #expect((again["summary"] as? [String: Any])?["chunksEmbedded"] as? Int == 0)
        let back = name + "-back"
        defer { _ = try? cli.tailor(["collections", "delete", back, "--store", url, "--yes"]) }
        let mb = try cli.tailor(["migrate", "-c", name, "--from", folder, "--to", url, "--as", back])
        #expect(mb.status == 0 && mb.out.contains("71 documents"), "\(mb.out)\(mb.err)")
        let sb = try #require(try json(cli.tailor(["collections", "stats", back, "--store", url, "--json"]).out) as? [String: Any])
        #expect(sb["chunks"] as? Int == st["chunks"] as? Int)

        let del = try cli.tailor(["collections", "delete", name, "--store", url, "--yes", "--json"])
        #expect(try del.status == 0 && (json(del.out) as? [String: Any])?["deleted"] as? String == name)
        let gone = try cli.tailor(["search", "x", "-c", name, "--store", url])
        #expect(gone.status != 0 && gone.err.contains("no collection named '\(name)'"))
    }

    @Test func killedIngestResumesWithWholeDocuments() throws {
        let url = try TestPostgres.url()
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let docs = try corpus(dir, count: 200, parts: 8)
        let name = "kill-" + UUID().uuidString.prefix(8).lowercased()
        defer { _ = try? cli.tailor(["collections", "delete", name, "--store", url, "--yes"]) }
        let p = try start(["ingest", docs.path, "-c", name, "--store", url, "-t", "1"])
        var committed = 0
        let deadline = Date().addingTimeInterval(120)
        while committed == 0 && Date() < deadline && p.isRunning {
            Thread.sleep(forTimeInterval: 0.2)
            if let st = try? cli.tailor(["collections", "stats", name, "--store", url, "--json"]), st.status == 0,
               let o = try? json(st.out) as? [String: Any] { committed = o["documents"] as? Int ?? 0 }
        }
        #expect(p.isRunning, "ingest finished before it could be killed")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(try cli.tailor(["collections", "check", name, "--store", url]).status == 0)
        let r = try cli.tailor(["ingest", docs.path, "-c", name, "--store", url, "--json"])
        #expect(r.status == 0, "\(r.err)")
        let rep = try #require(try json(r.out) as? [String: Any])
        #expect((rep["stats"] as? [String: Any])?["documents"] as? Int == 211)
        #expect(try cli.tailor(["collections", "check", name, "--store", url]).status == 0)
    }

    @Test func benchSearchOnPostgreSQL() throws {
        let url = try TestPostgres.url()
        let scifact = TestPaths.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/beir-scifact")
        let r = try cli.tailor(["bench", "search", "--store", url, "--sizes", "3000", "--base", "300", "--n-queries", "10", "--json",
                                "--corpus", scifact.appendingPathComponent("corpus.jsonl").path,
                                "--queries", scifact.appendingPathComponent("queries.jsonl").path])
        #expect(r.status == 0, "\(r.err)")
        let size = try #require(((try json(r.out) as? [String: Any])?["sizes"] as? [[String: Any]])?.first, "\(r.out)")
        #expect(size["backend"] as? String == "postgresql" && size["chunks"] as? Int == 3000)
        #expect((size["hnswRecallAt10"] as? Double ?? 0) > 0.9, "\(size)")
        #expect((size["rawHnswP50ms"] as? Double ?? 0) > 0 && (size["storeChunksPerSecond"] as? Double ?? 0) > 0)
        let list = try #require(try json(cli.tailor(["collections", "--store", url, "--json"]).out) as? [[String: Any]])
        #expect(!list.contains { ($0["name"] as? String)?.hasPrefix("bench-search-") == true }, "the benchmark's collection is removed")
    }

    @Test func evalRetrievalAndBadStores() throws {
        let url = try TestPostgres.url()
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        try ["{\"_id\": \"d1\", \"title\": \"Brakes\", \"text\": \"Hydraulic brakes are bled every twelve months with mineral oil.\"}",
             "{\"_id\": \"d2\", \"title\": \"Tyres\", \"text\": \"City tyres run at four and a half bar of pressure.\"}",
             "{\"_id\": \"d3\", \"title\": \"Chains\", \"text\": \"Replace the chain when it has stretched by half a percent.\"}"]
            .joined(separator: "\n").write(to: dir.appendingPathComponent("corpus.jsonl"), atomically: true, encoding: .utf8)
        try ["{\"_id\": \"q1\", \"text\": \"how often to bleed hydraulic brakes\"}", "{\"_id\": \"q2\", \"text\": \"tyre pressure for city bikes\"}"]
            .joined(separator: "\n").write(to: dir.appendingPathComponent("queries.jsonl"), atomically: true, encoding: .utf8)
        try "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n".write(to: dir.appendingPathComponent("qrels.tsv"), atomically: true, encoding: .utf8)
        let before = try #require(try json(cli.tailor(["collections", "--store", url, "--json"]).out) as? [[String: Any]]).count
        let r = try cli.tailor(["eval", "retrieval", "--corpus", dir.appendingPathComponent("corpus.jsonl").path,
                                "--queries", dir.appendingPathComponent("queries.jsonl").path,
                                "--qrels", dir.appendingPathComponent("qrels.tsv").path, "--store", url, "--json"])
        #expect(r.status == 0, "\(r.err)")
        let modes = try #require((try json(r.out) as? [String: Any])?["modes"] as? [[String: Any]])
        for m in modes { #expect((m["metrics"] as? [String: Any])?["ndcg10"] as? Double == 1.0, "\(m)") }
        let after = try #require(try json(cli.tailor(["collections", "--store", url, "--json"]).out) as? [[String: Any]]).count
        #expect(after == before, "the temporary collection is removed")

        let wrong = try cli.tailor(["search", "x", "--store", "postgresql://tailor:WRONG@127.0.0.1:\(URLComponents(string: url)!.port!)/tailor"])
        #expect(wrong.status != 0 && wrong.err.contains("password authentication failed") && !wrong.err.contains("WRONG"), "\(wrong.err)")
        let bad = try cli.tailor(["search", "x", "--store", "mysql://x@y/z"])
        #expect(bad.status != 0 && bad.err.contains("postgresql://USER"), "\(bad.err)")
    }
}
