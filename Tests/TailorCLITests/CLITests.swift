import Foundation
import Testing
import TailorTestSupport

/// Runs the real `tailor` binary as a user would.
@Suite(.serialized) struct CLITests {
    struct Run { let status: Int32; let out: String; let err: String }

    static var binary: URL { TestPaths.tailorBinary }

    func tailor(_ args: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Run {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    @Test func benchMatvecMeasuresEachTypeFromCacheAndMemory() throws {
        let r = try tailor(["bench", "matvec", "--types", "q4_1,q8_0", "--rows", "64", "--cols", "512", "-r", "1", "-t", "2", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])
        #expect(rows.count == 4)
        #expect(rows.compactMap { $0["type"] as? String } == ["Q4_1", "Q4_1", "Q8_0", "Q8_0"])
        for row in rows { #expect((row["gbPerSecond"] as? Double ?? 0) > 0) }
        let bad = try tailor(["bench", "matvec", "--types", "q3_x"])
        #expect(bad.status != 0)
        #expect(bad.err.contains("unknown type q3_x") && bad.err.contains("Q4_1"), "\(bad.err)")
        let cols = try tailor(["bench", "matvec", "--types", "q4_K", "--cols", "576"])
        #expect(cols.status != 0)
        #expect(cols.err.contains("--cols 576") && cols.err.contains("256"), "\(cols.err)")
        let reps = try tailor(["bench", "matvec", "-r", "0"])
        #expect(reps.status != 0)
        #expect(reps.err.contains("-r must be at least 1"), "\(reps.err)")
    }

    @Test func benchQGEMMRunsEveryKernelByName() throws {
        let r = try tailor(["bench", "qgemm", "--types", "q5_k,q5_0", "--rows", "32", "--cols", "256", "--tokens", "1,40",
                            "--kernels", "all", "-r", "1", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let products = try #require(j["products"] as? [[String: Any]])
        let kernels = Set(products.compactMap { $0["kernel"] as? String })
        #expect(kernels.contains("reference"), "\(kernels)")
        #expect(products.count == 2 * 2 * kernels.count)
        for p in products { #expect((p["gmacs"] as? Double ?? 0) > 0) }
        let bad = try tailor(["bench", "qgemm", "--kernels", "fastest"])
        #expect(bad.status != 0 && bad.err.contains("--kernels: 'fastest' is not a kernel"), "\(bad.err)")
        let type = try tailor(["bench", "qgemm", "--types", "q3_k", "--cols", "256"])
        #expect(type.status != 0 && type.err.contains("q5_k"), "\(type.err)")
    }

    @Test func benchModelCountsTheMatrixMultiplyAdds() throws {
        let r = try tailor(["bench", "-m", "SmolLM2-135M-Instruct.Q4_1.gguf", "-p", "16,32", "-n", "2", "-r", "1", "-t", "2", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        // SmolLM2-135M: 30 layers of q, k, v, o (576×576, 192×576 twice) and gate, up, down (1536×576),
        // and the output head tied to the 49152 × 576 embedding.
        let layer = 576 * 576 * 2 + 192 * 576 * 2 + 3 * 1536 * 576
        #expect(j["matrixMACsPerToken"] as? Int == 30 * layer + 49152 * 576)
        let lengths = try #require(j["prefillByLength"] as? [[String: Any]])
        #expect(lengths.compactMap { $0["tokens"] as? Int } == [16, 32])
    }

    @Test func benchMemoryTakesABufferSize() throws {
        let r = try tailor(["bench", "memory", "--mib", "16", "-t", "1", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(j["mib"] as? Int == 16)
        #expect((j["read_gbps"] as? Double ?? 0) > 0)
        let bad = try tailor(["bench", "memory", "--mib", "0"])
        #expect(bad.status != 0)
        #expect(bad.err.contains("--mib must be from 1 to 65536 (got 0)"), "\(bad.err)")
    }

    @Test func generateContinuesThePrompt() throws {
        let r = try tailor(["generate", "-p", "The capital of France is", "-n", "6", "--temp", "0"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.hasPrefix(" Paris"), "continuation only: \(r.out.debugDescription)")
    }

    @Test func generateParsesSpecialTokensInThePrompt() throws {
        let prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        let r = try tailor(["generate", "-p", prompt, "-n", "20", "--temp", "0", "--precision", "exact"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("Paris"))
        #expect(!r.out.contains("<|im_start|>"))
    }

    @Test func chatOnceAndInteractive() throws {
        // Exact precision: under 8-bit activations (the default, like llama.cpp) SmolLM2 starts
        // this answer in French, as llama.cpp does.
        let once = try tailor(["chat", "--once", "What is the capital of France?", "--temp", "0", "--precision", "exact"])
        #expect(once.status == 0, "\(once.err)")
        #expect(once.out.contains("Paris"))
        let multi = try tailor(["chat", "--temp", "0", "-n", "40", "--precision", "exact", "--system", "You answer in one short sentence."],
                               stdin: "What is the capital of France?\nAnd of Italy?\n")
        #expect(multi.status == 0, "\(multi.err)")
        #expect(multi.out.contains("Paris") && multi.out.contains("Rome"), "\(multi.out)")
    }

    @Test func inspectAndModels() throws {
        let i = try tailor(["inspect", "SmolLM2-135M-Instruct.Q4_1.gguf"])
        #expect(i.status == 0, "\(i.err)")
        for s in ["architecture:  llama", "block_count: 30", "Q4_1", "byte-level BPE (gpt2), pre-tokenizer smollm", "chat template"] {
            #expect(i.out.contains(s), "inspect shows \(s)")
        }
        let m = try tailor(["models"])
        #expect(m.status == 0 && m.out.contains("SmolLM2-135M-Instruct.Q4_1.gguf") && m.out.contains("[default chat]"))
    }

    @Test func badInputGivesAClearErrorNotACrash() throws {
        let missing = try tailor(["generate", "-m", "/nonexistent/model.gguf", "-p", "x"])
        #expect(missing.status == 1)
        #expect(missing.err.contains("no model"), "\(missing.err)")

        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-bad-\(UUID()).gguf")
        try Data("this is not a model file at all".utf8).write(to: bad)
        defer { try? FileManager.default.removeItem(at: bad) }
        let r = try tailor(["inspect", bad.path])
        #expect(r.status == 1)
        #expect(r.err.contains("not a GGUF file"), "\(r.err)")
        let g = try tailor(["chat", "-m", bad.path, "--once", "hi"])
        #expect(g.status == 1 && g.err.contains("not a GGUF file"), "\(g.err)")

        let v = try tailor(["generate", "-p", "x", "--temp", "-1"])
        #expect(v.status != 0 && v.err.contains("--temp"), "\(v.err)")
    }
}

@Suite(.serialized) struct EmbedCLITests {
    let cli = CLITests()

    @Test func embedJSONLAndPlainLines() throws {
        let r = try cli.tailor(["embed"], stdin: "{\"id\": \"a\", \"text\": \"A man is eating food.\"}\n{\"id\": 7, \"text\": \"Someone eats.\"}\n")
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("{\"id\":\"a\",\"embedding\":["))
        #expect(lines[1].hasPrefix("{\"id\":\"7\""))
        let plain = try cli.tailor(["embed"], stdin: "one\ntwo\n")
        #expect(plain.out.split(separator: "\n").count == 2)
        let emb = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect((emb["embedding"] as! [Double]).count == 384)
    }

    @Test func npyOutputAndSimilarity() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-\(UUID()).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try cli.tailor(["embed", "--format", "npy", "-o", path], stdin: "one\ntwo\nthree\n")
        #expect(r.status == 0, "\(r.err)")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(data.starts(with: [0x93] + Array("NUMPY".utf8)))
        #expect(String(decoding: data.prefix(128), as: UTF8.self).contains("'shape': (3, 384)"))
        #expect(data.count % 64 == (3 * 384 * 4) % 64)
        let s = try cli.tailor(["similarity", "A man is eating food.", "Someone is having a meal."])
        let d = try cli.tailor(["similarity", "A man is eating food.", "The stock market fell today."])
        #expect(Double(s.out.trimmingCharacters(in: .whitespacesAndNewlines))! > Double(d.out.trimmingCharacters(in: .whitespacesAndNewlines))! + 0.3)
    }

    @Test func badJSONLineNamesTheLine() throws {
        let r = try cli.tailor(["embed"], stdin: "fine text\n{\"text\": 3}\n")
        #expect(r.status == 1)
        #expect(r.err.contains("line 2") && r.err.contains("\"text\""), "\(r.err)")
    }
}
