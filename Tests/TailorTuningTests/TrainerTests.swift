import Foundation
import Testing
import TailorFormats
import TailorKernels
import TailorModels
import TailorTestSupport
@testable import TailorTuning

@Suite(.serialized) struct TrainerTests {
    static func model() throws -> LanguageModel {
        try LanguageModel(TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"), threads: 2, precision: .exact)
    }

    static let facts: [(String, String)] = [
        ("What is the code of the blue door?", "The blue door opens with 4711."),
        ("Who keeps the lighthouse key?", "Marta Quist keeps the lighthouse key."),
        ("When does the ferry to Lunde leave?", "The ferry to Lunde leaves at 6:40."),
        ("What colour is the Vossberg tram?", "The Vossberg tram is painted green."),
        ("Which dish is served on Tuesdays?", "On Tuesdays the canteen serves barley soup."),
        ("Where is the spare ladder?", "The spare ladder hangs behind the boathouse."),
        ("How many bells does the chapel have?", "The chapel has seven bells."),
        ("What is the name of the harbour cat?", "The harbour cat is called Pepper."),
    ]

    static func examples(_ lm: LanguageModel, _ pairs: [(String, String)]) throws -> [TokenizedExample] {
        let f = ExampleFormatter(model: lm)
        return try pairs.map { try f.tokenize(.completion(prompt: $0.0, completion: $0.1)) }
    }

    static func tempDir() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("tune-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    struct Interrupted: Error {}

    /// A run interrupted after a checkpoint and resumed by a new trainer ends bit-identical to an
    /// uninterrupted one: parameters, the saved adapter and the logged losses.
    @Test func resumedRunIsBitIdentical() throws {
        let lm = try Self.model()
        let ex = try Self.examples(lm, Self.facts)
        var o = TuneOptions()
        o.epochs = 2; o.batchSize = 2; o.accumulation = 2; o.evalEvery = 1; o.dropout = 0.1; o.rank = 4; o.alpha = 8
        o.learningRate = 1e-3; o.maxLength = 48; o.patience = 10
        let train = Array(ex[0..<6]), val = Array(ex[6...])
        let a = Self.tempDir(), b = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }
        let full = try LoRATrainer(model: lm, train: train, validation: val, options: o, outputDirectory: a, threads: 2)
        let s1 = try full.run()
        #expect(s1.steps == 4)
        let first = try LoRATrainer(model: lm, train: train, validation: val, options: o, outputDirectory: b, threads: 2)
        first.afterCheckpoint = { step in if step == 2 { throw Interrupted() } }
        #expect(throws: Interrupted.self) { try first.run() }
        let second = try LoRATrainer(model: lm, train: train, validation: val, options: o, outputDirectory: b, threads: 2)
        let s2 = try second.run()
        #expect(s2.resumedFrom == 2)
        #expect(s2.steps == 4)
        #expect(second.adapter.parameters == full.adapter.parameters, "resumed parameters differ")
        #expect(try Data(contentsOf: URL(fileURLWithPath: a + "/adapter_model.safetensors")) == Data(contentsOf: URL(fileURLWithPath: b + "/adapter_model.safetensors")))
        func losses(_ d: String) throws -> [String] {
            try String(contentsOfFile: d + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
                let v = try JSONValue.parse(String(line))
                return "\(v["step"]?.int ?? -1) \(v["loss"]?.double ?? -1) \(v["val_loss"]?.double ?? -1)"
            }
        }
        #expect(try losses(a) == losses(b))
        // Resuming with other options is refused with the differences named.
        var other = o
        other.learningRate = 5e-4
        let c = try LoRATrainer(model: lm, train: train, validation: val, options: other, outputDirectory: b, threads: 2)
        do { try c.run(); Issue.record("resume with other options should fail") }
        catch let e as TuningError { #expect(e.description.contains("learningRate"), "\(e)") }
    }

    /// A learning rate that wrecks the model: validation loss rises, training stops after
    /// `patience` validations, and the best adapter (the untrained one, B = 0) is what is saved.
    @Test func earlyStoppingKeepsTheBestAdapter() throws {
        let lm = try Self.model()
        let ex = try Self.examples(lm, Self.facts)
        var o = TuneOptions()
        o.epochs = 20; o.batchSize = 4; o.evalEvery = 1; o.patience = 2; o.rank = 4; o.alpha = 8
        o.learningRate = 0.3; o.clipNorm = 0; o.warmupRatio = 0; o.maxLength = 48; o.dropout = 0
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try LoRATrainer(model: lm, train: Array(ex[0..<4]), validation: Array(ex[4...]), options: o, outputDirectory: dir, threads: 2)
        let s = try t.run()
        #expect(s.stoppedEarly)
        #expect(s.steps == 2, "stops after two validations without improvement, not \(s.steps)")
        #expect(s.bestStep == 0)
        let base = try #require(lm.model as? LlamaModel)
        let saved = try AdapterFiles.load(dir, for: base.config)
        for l in 0..<saved.layers {
            for tg in saved.targets {
                let ob = saved.offsetB(layer: l, target: tg), n = saved.shapes[tg]!.outputs * saved.rank
                #expect(saved.parameters[ob..<(ob + n)].allSatisfy { $0 == 0 })
            }
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/loss.svg"))
    }

    /// The model learns: eight made-up facts, then the tuned model answers one of them word for
    /// word (greedy), which the base model cannot.
    @Test func learnsFactsAndAnswersWithTheAdapter() throws {
        let lm = try Self.model()
        let ex = try Self.examples(lm, Array(Self.facts[0..<4]))
        var o = TuneOptions()
        o.epochs = 25; o.batchSize = 4; o.rank = 8; o.alpha = 16; o.learningRate = 3e-3; o.maxLength = 64; o.dropout = 0
        o.warmupRatio = 0.1
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try LoRATrainer(model: lm, train: ex, validation: [], options: o, outputDirectory: dir, threads: 2)
        let s = try t.run()
        let losses = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONValue.parse(String($0))["loss"]?.double }
        #expect(losses.count == 25)
        #expect(losses.last! < 0.1 * losses.first!, "training loss \(losses.first!) → \(losses.last!)")
        #expect(s.finalTrainingLoss == losses.last)
        let base = try #require(lm.model as? LlamaModel)
        func answer(_ q: String, _ adapters: [AdapterUse]) throws -> String {
            let prompt = lm.encodeChat(try lm.chatTemplate.render([.user(q)], addGenerationPrompt: true))
            var p = SamplingParameters(); p.temperature = 0
            return try lm.generator(adapters: adapters).generate(prompt: prompt, maxTokens: 24, sampling: p, stop: [], cache: lm.makeCache(maxTokens: 256)) { _ in true }.text
        }
        let before = try answer(Self.facts[2].0, [])
        let tuned = try AdapterFiles.load(dir, for: base.config)
        let after = try answer(Self.facts[2].0, [AdapterUse(tuned)])
        #expect(after.trimmingCharacters(in: .whitespacesAndNewlines) == Self.facts[2].1, "tuned: \(after)")
        #expect(!before.contains("6:40"), "base: \(before)")
        // The GGUF LoRA file holds the same adapter.
        let g = try AdapterFiles.load(dir + "/adapter.gguf", for: base.config)
        #expect(g.parameters == tuned.parameters)
    }
}
