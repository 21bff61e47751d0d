import Foundation
import Testing

/// tune / merge / --adapter / eval classify as a user runs them, on the real binary and model.
@Suite(.serialized) struct TuneCLITests {
    let cli = CLITests()

    func temp() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-tune-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    static let facts = [
        ("What is the code of the blue door?", "The blue door opens with 4711."),
        ("Who keeps the lighthouse key?", "Marta Quist keeps the lighthouse key."),
        ("When does the ferry to Lunde leave?", "The ferry to Lunde leaves at 6:40."),
        ("What colour is the Vossberg tram?", "The Vossberg tram is painted green."),
    ]

    func writeData(_ dir: URL) throws -> String {
        let p = dir.appendingPathComponent("train.jsonl").path
        let lines = Self.facts.map { q, a in
            "{\"messages\": [{\"role\": \"user\", \"content\": \"\(q)\"}, {\"role\": \"assistant\", \"content\": \"\(a)\"}]}"
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    @Test func badInputIsNamed() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.jsonl").path
        try "{\"prompt\": \"hi\", \"completion\": \"there\"}\n{\"messages\": [{\"role\": \"user\"}]}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try cli.tailor(["tune", bad, "-o", dir.appendingPathComponent("out").path])
        #expect(r.status != 0)
        #expect(r.err.contains("bad.jsonl:2: messages[0] has no string \"content\""), "\(r.err)")
        let data = try writeData(dir)
        let o = try cli.tailor(["tune", data, "-o", dir.appendingPathComponent("out").path, "--targets", "q_proj,wings"])
        #expect(o.status != 0 && o.err.contains("unknown LoRA target \"wings\""), "\(o.err)")
        let lr = try cli.tailor(["tune", data, "-o", dir.appendingPathComponent("out").path, "--lr", "3"])
        #expect(lr.status != 0 && lr.err.contains("--lr must be between 0 and 1"), "\(lr.err)")
        let ad = try cli.tailor(["generate", "-p", "Hi", "-n", "2", "--adapter", dir.appendingPathComponent("nothing").path])
        #expect(ad.status != 0 && ad.err.contains("no such file or directory"), "\(ad.err)")
    }

    /// A run killed with SIGKILL after a checkpoint, then run again, ends with the same adapter
    /// (bytes) as an uninterrupted run; the adapter works with generate and after merge.
    @Test func killedTuneResumesToTheSameAdapterAndTheAdapterIsUsable() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try writeData(dir)
        let common = ["tune", data, "--epochs", "12", "--batch", "2", "--lr", "3e-3", "--rank", "4", "--eval-every", "1",
                      "--val-fraction", "0", "--max-len", "64", "-t", "2"]
        let a = dir.appendingPathComponent("a").path, b = dir.appendingPathComponent("b").path
        let full = try cli.tailor(common + ["-o", a])
        #expect(full.status == 0, "\(full.err)")
        #expect(full.err.contains("done: 24 steps"), "\(full.err)")
        for f in ["adapter_model.safetensors", "adapter_config.json", "adapter.gguf", "metrics.jsonl", "loss.svg", "checkpoint.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: a + "/" + f), "missing \(f)")
        }
        let p = Process()
        p.executableURL = CLITests.binary
        p.arguments = common + ["-o", b]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Kill it once a few steps are logged.
        let deadline = Date().addingTimeInterval(300)
        var steps = 0
        while steps < 5 && Date() < deadline && p.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
            steps = ((try? String(contentsOfFile: b + "/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        #expect(p.isRunning, "tune finished before it could be killed")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let resumed = try cli.tailor(common + ["-o", b])
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("resuming from the checkpoint at step"), "\(resumed.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: a + "/adapter_model.safetensors")) == Data(contentsOf: URL(fileURLWithPath: b + "/adapter_model.safetensors")),
                "the resumed adapter differs from the uninterrupted one")

        // The adapter answers the trained question, at run time and merged.
        let q = "<|im_start|>user\n\(Self.facts[2].0)<|im_end|>\n<|im_start|>assistant\n"
        let g = try cli.tailor(["generate", "-p", q, "-n", "16", "--temp", "0", "--adapter", a, "--stop", "<|im_end|>"])
        #expect(g.status == 0 && g.out.contains("6:40"), "\(g.out) \(g.err)")
        let merged = dir.appendingPathComponent("merged.gguf").path
        let m = try cli.tailor(["merge", "--adapter", a, "-o", merged, "--type", "q8_0"])
        #expect(m.status == 0, "\(m.err)")
        let gm = try cli.tailor(["generate", "-m", merged, "-p", q, "-n", "16", "--temp", "0", "--stop", "<|im_end|>"])
        #expect(gm.status == 0 && gm.out.contains("6:40"), "\(gm.out) \(gm.err)")
    }
}
