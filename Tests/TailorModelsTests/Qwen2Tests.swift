import Foundation
import Testing
import TailorFormats
@testable import TailorModels

/// The qwen2 path (Q/K/V biases, NeoX RoPE, untied output) on a tiny random Qwen2 written by
/// scripts/reference/tiny_qwen2.py, against transformers' fp32 logits for the same weights.
@Suite struct Qwen2Tests {
    @Test func tinyQwen2MatchesTransformers() throws {
        guard let url = Bundle.module.url(forResource: "Fixtures/tiny-qwen2.gguf", withExtension: nil) else {
            throw TestPaths.Missing(description: "fixture tiny-qwen2.gguf is missing")
        }
        let model = try LlamaModel(file: GGUFFile(path: url.path))
        #expect(model.config.architecture == "qwen2" && model.config.ropeNeoX)
        let ref = try JSONValue.parse(try TestPaths.fixtureText("tiny-qwen2-logits.json"))
        let ids = ref["ids"]!.array!.map { $0.int! }
        let expected = ref["logits"]!.array!.map { $0.array!.map { Float($0.double!) } }
        let V = model.config.vocabulary
        let batched = try model.forward(ids, cache: model.makeCache(maxTokens: 64, precision: .exact), allLogits: true)
        let cache = model.makeCache(maxTokens: 64, precision: .exact)
        var maxDiff: Float = 0, maxStep: Float = 0
        for (t, id) in ids.enumerated() {
            let step = try model.forward([id], cache: cache)
            for v in 0..<V {
                maxDiff = max(maxDiff, abs(batched[t * V + v] - expected[t][v]))
                maxStep = max(maxStep, abs(step[v] - expected[t][v]))
            }
        }
        print("tiny qwen2 vs transformers: max |Δlogit| \(maxDiff) batched, \(maxStep) token by token")
        #expect(maxDiff < 1e-4 && maxStep < 1e-4)
    }
}
