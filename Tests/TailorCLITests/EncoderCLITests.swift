import Foundation
import Testing

/// tune-classifier / classify / tune-retriever as a user runs them, on the real binary and
/// all-MiniLM-L6-v2, with real data (Rotten Tomatoes reviews, SciFact).
@Suite(.serialized) struct EncoderCLITests {
    let cli = CLITests()
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let reviews = repo.appendingPathComponent("examples/sentiment-lora/data")
    static let scifact = repo.deletingLastPathComponent().appendingPathComponent("shared/data/beir-scifact")

    func temp() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-enc-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    func lines(_ file: URL, _ n: Int) throws -> String {
        try String(contentsOf: file, encoding: .utf8).split(separator: "\n").prefix(n).joined(separator: "\n") + "\n"
    }

    @Test func tuneClassifierWithBaselinesThenClassify() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = dir.appendingPathComponent("train.jsonl"), test = dir.appendingPathComponent("test.jsonl")
        try lines(Self.reviews.appendingPathComponent("train-labels.jsonl"), 96).write(to: train, atomically: true, encoding: .utf8)
        try lines(Self.reviews.appendingPathComponent("test-labels.jsonl"), 40).write(to: test, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("clf").path
        let r = try cli.tailor(["tune-classifier", train.path, "-o", out, "--test", test.path, "--max-steps", "4", "--eval-every", "2",
                                "--lr", "1e-4", "--max-len", "64", "-t", "2", "--describe", "positive=A positive movie review."])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("86 examples, 10 for validation"), "\(r.err)")
        #expect(r.out.contains("| zero-shot (label descriptions) |") && r.out.contains("| linear probe (frozen embeddings) |")
                && r.out.contains("| fine-tuned encoder |"), "\(r.out)")
        for f in ["config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl", "loss.svg", "checkpoint.safetensors",
                  "evaluation.md", "evaluation.json", "tailor_training.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + f), "missing \(f)")
        }
        let ev = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/evaluation.json"))) as? [String: Any])
        let systems = try #require(ev["systems"] as? [[String: Any]])
        #expect(systems.count == 3 && ev["items"] as? Int == 40)
        for s in systems { #expect(((s["accuracy_low"] as? Double) ?? 2) <= ((s["accuracy"] as? Double) ?? -1)) }

        // classify: JSONL in (ids kept), JSON lines out; plain lines; bad input named.
        let c = try cli.tailor(["classify", "-m", out, "--json"], stdin: "{\"id\": \"a\", \"text\": \"A wonderful, moving film.\"}\n{\"id\": 7, \"input\": \"Tedious and dull.\"}\n")
        #expect(c.status == 0, "\(c.err)")
        let rows = c.out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.count == 2)
        #expect(rows.first?["id"] as? String == "a" && rows.last?["id"] as? Int == 7)
        for row in rows {
            let scores = try #require(row["scores"] as? [String: Double])
            #expect(Set(scores.keys) == ["negative", "positive"] && abs(scores.values.reduce(0, +) - 1) < 1e-4)
            #expect(["negative", "positive"].contains(row["label"] as? String ?? ""))
        }
        let plain = try cli.tailor(["classify", "-m", out], stdin: "Great fun.\nAwful.\n")
        #expect(plain.status == 0 && plain.out.split(separator: "\n").count == 2, "\(plain.err)")
        let bad = try cli.tailor(["classify", "-m", out], stdin: "fine\n{\"id\": 2}\n")
        #expect(bad.status != 0 && bad.err.contains("stdin:2: needs a \"text\" string"), "\(bad.err)")
        let badData = dir.appendingPathComponent("bad.jsonl")
        try "{\"text\": \"ok\", \"label\": \"positive\"}\n{\"text\": \"no label\"}\n".write(to: badData, atomically: true, encoding: .utf8)
        let bd = try cli.tailor(["tune-classifier", badData.path, "-o", dir.appendingPathComponent("x").path])
        #expect(bd.status != 0 && bd.err.contains("bad.jsonl:2: needs a \"label\""), "\(bd.err)")
        let fr = try cli.tailor(["tune-classifier", train.path, "-o", dir.appendingPathComponent("x").path, "--freeze-layers", "9"])
        #expect(fr.status != 0 && fr.err.contains("--freeze-layers must be between 0 and 6"), "\(fr.err)")
    }

    /// Pairs generated from a corpus, nDCG@10 before/after on judged SciFact queries, and a
    /// collection re-embedded with the tuned retriever.
    @Test func tuneRetrieverFromACorpusAndReindexACollection() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A small BEIR folder: the documents judged for 15 test queries plus 120 others.
        let qrels = try String(contentsOf: Self.scifact.appendingPathComponent("qrels/test.tsv"), encoding: .utf8).split(separator: "\n").dropFirst()
        let judged = Array(qrels.prefix(20))
        let docIDs = Set(judged.map { String($0.split(separator: "\t")[1]) })
        let queryIDs = Set(judged.map { String($0.split(separator: "\t")[0]) })
        var corpus: [String] = []
        for line in try String(contentsOf: Self.scifact.appendingPathComponent("corpus.jsonl"), encoding: .utf8).split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if docIDs.contains(o["_id"] as? String ?? "") || corpus.count < 120 { corpus.append(String(line)) }
        }
        let queries = try String(contentsOf: Self.scifact.appendingPathComponent("queries.jsonl"), encoding: .utf8).split(separator: "\n").filter { l in
            queryIDs.contains(((try? JSONSerialization.jsonObject(with: Data(l.utf8))) as? [String: Any])?["_id"] as? String ?? "")
        }
        let beir = dir.appendingPathComponent("beir")
        try FileManager.default.createDirectory(at: beir.appendingPathComponent("qrels"), withIntermediateDirectories: true)
        try (corpus.joined(separator: "\n") + "\n").write(to: beir.appendingPathComponent("corpus.jsonl"), atomically: true, encoding: .utf8)
        try (queries.joined(separator: "\n") + "\n").write(to: beir.appendingPathComponent("queries.jsonl"), atomically: true, encoding: .utf8)
        try ("query-id\tcorpus-id\tscore\n" + judged.joined(separator: "\n") + "\n").write(to: beir.appendingPathComponent("qrels/test.tsv"), atomically: true, encoding: .utf8)

        let out = dir.appendingPathComponent("ret").path
        let r = try cli.tailor(["tune-retriever", "--corpus", beir.appendingPathComponent("corpus.jsonl").path, "-o", out, "--beir", beir.path,
                                "--generate", "titles,sentences,questions", "--draft-limit", "3",
                                "--max-steps", "3", "--batch", "8", "--max-len", "96", "--eval-every", "3", "-t", "2", "--json"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("generated") && r.err.contains("pairs from"), "\(r.err)")
        #expect(r.err.contains("drafted ") && !r.err.contains("drafted 0 "), "\(r.err)")
        let pairs = try String(contentsOfFile: out + "/pairs.jsonl", encoding: .utf8)
        #expect(pairs.contains("?\""), "drafted questions are among the pairs")
        let res = try #require(try JSONSerialization.jsonObject(with: Data(r.out.split(separator: "\n").last!.utf8)) as? [String: Any])
        let before = try #require(res["ndcg10_before"] as? Double), after = try #require(res["ndcg10_after"] as? Double)
        #expect(before > 0.3 && after > 0.3, "nDCG@10 \(before) → \(after)")
        for f in ["pairs.jsonl", "modules.json", "1_Pooling/config.json", "config.json", "model.safetensors", "evaluation.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + f), "missing \(f)")
        }
        // A collection built with the base embedder, re-embedded with the tuned one, still answers searches.
        let docs = dir.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try "Vitamin D deficiency is associated with a higher risk of hip fractures in elderly women. The effect was strongest in women over seventy who lived in care homes. Supplements given for two years halved the difference.".write(to: docs.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        try "Regular exercise lowers blood pressure in adults with hypertension. Thirty minutes of brisk walking on most days was enough in the trial. The benefit faded within a month of stopping.".write(to: docs.appendingPathComponent("b.txt"), atomically: true, encoding: .utf8)
        let col = dir.appendingPathComponent("col").path
        #expect(try cli.tailor(["ingest", docs.path, "-c", col]).status == 0)
        let re = try cli.tailor(["reindex", "-c", col, "-m", out])
        #expect(re.status == 0, "\(re.err)")
        let s = try cli.tailor(["search", "fracture risk and vitamin D", "-c", col, "--mode", "vector", "-k", "1", "--json"])
        #expect(s.status == 0, "\(s.err)")
        #expect(s.out.contains("a.txt"), "\(s.out)")
        // Pairs generated from the collection's chunks (inverse cloze: a sentence → the rest).
        let fromCollection = try cli.tailor(["tune-retriever", "-c", col, "-o", dir.appendingPathComponent("ret2").path, "--generate", "sentences",
                                             "--max-steps", "1", "--batch", "2", "--val-fraction", "0", "-t", "2"])
        #expect(fromCollection.status == 0, "\(fromCollection.err)")
        #expect(fromCollection.err.contains("generated 2 pairs from 2 passages"), "\(fromCollection.err)")
        let none = try cli.tailor(["tune-retriever", "-o", dir.appendingPathComponent("ret3").path])
        #expect(none.status != 0 && none.err.contains("give training pairs"), "\(none.err)")
    }
}
