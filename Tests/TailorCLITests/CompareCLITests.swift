import Foundation
import Testing

/// `tailor compare` in a reduced form of the committed examples (examples/compare-*), on the real model.
@Suite(.serialized) struct CompareCLITests {
    let cli = CLITests()
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples")

    func temp() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-compare-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    func json(_ s: String) throws -> [String: Any] { try #require(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any]) }

    @Test func knowledgeTaskAllFourSystemsWithFreshnessAndResume() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = Self.examples.appendingPathComponent("compare-knowledge/data")
        let out = dir.appendingPathComponent("report").path
        let args = ["compare", "--eval", data.appendingPathComponent("eval.jsonl").path, "--limit", "4",
                    "--docs", data.appendingPathComponent("docs").path, "--train", data.appendingPathComponent("documents.jsonl").path,
                    "--max-steps", "2", "--batch", "4", "--max-len", "128",
                    "--fresh-docs", data.appendingPathComponent("fresh-docs").path, "--fresh-eval", data.appendingPathComponent("fresh-eval.jsonl").path,
                    "--changes", "weekly", "-o", out, "--json"]
        let r = try cli.tailor(args)
        #expect(r.status == 0, "\(r.err)")
        let rep = try json(r.out)
        let sums = try #require(rep["summaries"] as? [[String: Any]])
        #expect(sums.compactMap { $0["system"] as? String } == ["base", "base+rag", "tuned", "tuned+rag"])
        for s in sums {
            let m = try #require(s["metrics"] as? [String: Any])
            #expect(m["contains"] != nil && m["f1"] != nil && m["exact_match"] != nil)
            #expect((s["latencyP50Ms"] as? Double ?? 0) > 0)
        }
        let rag = try #require(sums.first { $0["system"] as? String == "base+rag" }?["metrics"] as? [String: Any])
        #expect(rag["retrieval_recall"] != nil && rag["citations_valid"] != nil)
        #expect((rep["freshness"] as? [[String: Any]])?.count == 4)
        let costs = try #require(rep["costs"] as? [String: Any])
        #expect((costs["trainingSeconds"] as? Double ?? 0) > 0 && (costs["indexSeconds"] as? Double ?? 0) > 0)
        #expect((costs["trainingPeakBytes"] as? Int ?? 0) > 0 && (costs["indexChunks"] as? Int ?? 0) > 0)
        let rec = try #require(rep["recommendation"] as? [String: Any])
        #expect((rec["headline"] as? String)?.contains("points answer contains over base") == true, "\(rec)")
        let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        #expect(md.contains("## Recommendation") && md.contains("## RAG or fine-tuning, measured") && md.contains("## Freshness"))
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("<table>") && !html.contains("src=\"http"), "self-contained")

        // Run again: everything comes from the caches (collection, adapter checkpoint, item results).
        let cached = try String(contentsOfFile: out + "/results/base-rag.jsonl", encoding: .utf8)
        let again = try cli.tailor(args)
        #expect(again.status == 0, "\(again.err)")
        #expect(try String(contentsOfFile: out + "/results/base-rag.jsonl", encoding: .utf8) == cached, "cached items are not recomputed")
        let rep2 = try json(again.out)
        #expect((rep2["summaries"] as? [[String: Any]])?.count == 4)
    }

    @Test func classificationTaskWithLabelledTrainingItems() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = Self.examples.appendingPathComponent("sentiment-lora/data")
        let template = "Is the sentiment of this movie review positive or negative? Answer with one word.\\n\\nReview: {input}"
        let r = try cli.tailor(["compare", "--eval", data.appendingPathComponent("test-labels.jsonl").path, "--limit", "6",
                                "--train", data.appendingPathComponent("train-labels.jsonl").path, "--max-steps", "2", "--batch", "4", "--tune-classifier",
                                "--template", template, "-o", dir.appendingPathComponent("r").path, "--json"])
        #expect(r.status == 0, "\(r.err)")
        let rep = try json(r.out)
        #expect(rep["kind"] as? String == "classification")
        let sums = try #require(rep["summaries"] as? [[String: Any]])
        #expect(sums.compactMap { $0["system"] as? String } == ["base", "tuned", "encoder-classifier"])
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r/classifier/model.safetensors").path))
        for s in sums { #expect((s["metrics"] as? [String: Any])?["accuracy"] != nil && (s["metrics"] as? [String: Any])?["macro_f1"] != nil) }
        #expect((rep["notes"] as? [String])?.contains { $0.contains("RAG systems are not run") } == true)
        let bad = try cli.tailor(["compare", "--eval", data.appendingPathComponent("test-labels.jsonl").path, "--adapter", "x", "--train", "y"])
        #expect(bad.status != 0 && bad.err.contains("not both"))
    }

    @Test func generationTaskOnTheBaseModelAlone() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let eval = dir.appendingPathComponent("gen.jsonl").path
        try """
            {"input": "Write a short headline for this news: The city council approved a new bike lane on Main Street.", "reference": "Council approves Main Street bike lane"}
            {"input": "Write a short headline for this news: Heavy rain flooded several roads in the valley overnight.", "reference": "Overnight rain floods valley roads"}
            """.write(toFile: eval, atomically: true, encoding: .utf8)
        let r = try cli.tailor(["compare", "--eval", eval, "-o", dir.appendingPathComponent("r").path, "--json"])
        #expect(r.status == 0, "\(r.err)")
        let rep = try json(r.out)
        #expect(rep["kind"] as? String == "generation")
        let sums = try #require(rep["summaries"] as? [[String: Any]])
        #expect(sums.count == 1)
        let m = try #require(sums.first?["metrics"] as? [String: Any])
        let rouge = try #require(m["rouge_l"] as? [String: Any]), chrf = try #require(m["chrf"] as? [String: Any])
        #expect((rouge["mean"] as? Double ?? -1) >= 0 && (chrf["mean"] as? Double ?? 0) > 0, "\(m)")
        let rec = try #require(rep["recommendation"] as? [String: Any])
        #expect(rec["system"] as? String == "base")
    }
}
