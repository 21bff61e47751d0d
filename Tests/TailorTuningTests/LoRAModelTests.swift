import Foundation
import Testing
import TailorFormats
import TailorKernels
import TailorModels
import TailorTestSupport
@testable import TailorTuning

/// The whole model's loss and LoRA gradients against PyTorch + PEFT on the real SmolLM2
/// (scripts/reference/lora_reference.py wrote the fixture).
@Suite struct LoRAModelTests {
    struct Reference: Decodable {
        let rank: Int, alpha: Float, targets: [String], layers: [Int]
        let sequences: [[Int]], maskedPrefix: [Int], loss: Double, count: Int
    }

    static let targetOrder = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    /// The fixture's formula, in Hugging Face row order.
    static func formula(_ rows: Int, _ cols: Int, layer: Int, target: LoRATarget, a: Bool) -> [Float] {
        let t = Double(targetOrder.firstIndex(of: target.rawValue)!)
        var out = [Float](repeating: 0, count: rows * cols)
        for i in 0..<rows {
            for j in 0..<cols {
                let (di, dj, dl) = (Double(i), Double(j), Double(layer))
                out[i * cols + j] = Float(a ? 0.02 * sin(0.37 * di + 0.11 * dj + 1.3 * dl + t)
                                            : 0.02 * cos(0.23 * di + 0.19 * dj + 0.7 * dl + 2 * t))
            }
        }
        return out
    }

    /// Sets the adapter from the formula: B rows of q/k go to their GGUF positions.
    static func fill(_ ad: LoRAAdapter, config: LlamaConfig) {
        for l in 0..<ad.layers {
            for t in ad.targets {
                let s = ad.shapes[t]!
                let a = formula(ad.rank, s.inputs, layer: l, target: t, a: true)
                let b = formula(s.outputs, ad.rank, layer: l, target: t, a: false)
                let oa = ad.offsetA(layer: l, target: t), ob = ad.offsetB(layer: l, target: t)
                for i in 0..<a.count { ad.parameters[oa + i] = a[i] }
                let permuted = LoRAAdapter.isPermuted(t, architecture: config.architecture)
                for row in 0..<s.outputs {
                    let hf = permuted ? LoRAAdapter.huggingFaceRow(row, headDim: config.headDim) : row
                    for c in 0..<ad.rank { ad.parameters[ob + row * ad.rank + c] = b[hf * ad.rank + c] }
                }
            }
        }
    }

    static func batch(_ ref: Reference) -> PackedBatch {
        let examples = zip(ref.sequences, ref.maskedPrefix).map { ids, skip in
            TokenizedExample(ids: ids, trained: ids.indices.map { $0 >= skip + 1 })
        }
        return PackedBatch(examples, maxLength: 1024)
    }

    @Test func lossAndGradientsMatchPEFT() throws {
        let ref = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: TestPaths.fixtureURL(Bundle.module, "lora-reference.json")))
        let grads = try SafetensorsFile(path: TestPaths.fixtureURL(Bundle.module, "lora-reference.safetensors").path)
        let lm = try LanguageModel(TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"), threads: 2, precision: .exact)
        let base = try #require(lm.model as? LlamaModel)
        let ad = LoRAAdapter(for: base.config, rank: ref.rank, alpha: ref.alpha, targets: LoRATarget.allCases)
        Self.fill(ad, config: base.config)
        let model = try LoRAModel(base: base, adapter: ad, threads: 2)
        let b = Self.batch(ref)
        let (loss, count) = model.run(b, backward: true)
        #expect(count == ref.count)
        let mean = loss / Double(count)
        #expect(abs(mean - ref.loss) < 2e-4 * ref.loss, "loss \(mean) vs PEFT \(ref.loss)")
        var checked = 0
        for l in ref.layers {
            for t in LoRATarget.allCases {
                let s = ad.shapes[t]!
                let wantA = try grads.floats("layers.\(l).\(t.rawValue).lora_A.grad")
                let wantB = try grads.floats("layers.\(l).\(t.rawValue).lora_B.grad")
                let oa = ad.offsetA(layer: l, target: t), ob = ad.offsetB(layer: l, target: t)
                let gotA = (0..<wantA.count).map { model.gradients[oa + $0] / Float(count) }
                let permuted = LoRAAdapter.isPermuted(t, architecture: base.config.architecture)
                var gotB = [Float](repeating: 0, count: wantB.count)
                for row in 0..<s.outputs {
                    let hf = permuted ? LoRAAdapter.huggingFaceRow(row, headDim: base.config.headDim) : row
                    for c in 0..<ad.rank { gotB[hf * ad.rank + c] = model.gradients[ob + row * ad.rank + c] / Float(count) }
                }
                for (name, got, want) in [("A", gotA, wantA), ("B", gotB, wantB)] {
                    var diff: Double = 0, norm: Double = 0
                    for i in 0..<want.count { diff += Double(got[i] - want[i]) * Double(got[i] - want[i]); norm += Double(want[i] * want[i]) }
                    let rel = (diff / max(norm, 1e-30)).squareRoot()
                    #expect(rel < 3e-3, "layer \(l) \(t.rawValue) lora_\(name): relative error \(rel)")
                    checked += 1
                }
            }
        }
        #expect(checked == ref.layers.count * 14)
    }

    /// The training forward pass and the runtime adapter (LlamaModel.forward with `adapters`) agree.
    @Test func trainingForwardMatchesInferenceWithAdapter() throws {
        let lm = try LanguageModel(TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"), threads: 2, precision: .exact)
        let base = try #require(lm.model as? LlamaModel)
        let ad = LoRAAdapter(for: base.config, rank: 4, alpha: 8, targets: LoRATarget.allCases)
        Self.fill(ad, config: base.config)
        let ids = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 314]
        let model = try LoRAModel(base: base, adapter: ad, threads: 2)
        let (loss, count) = model.run(PackedBatch([TokenizedExample(ids: ids, trained: ids.map { _ in true })], maxLength: 64), backward: false)
        let logits = try base.forward(ids, cache: base.makeCache(maxTokens: 64, precision: .exact), adapters: [AdapterUse(ad)], allLogits: true)
        let V = base.config.vocabulary
        var want = 0.0
        for t in 0..<(ids.count - 1) {
            let row = logits[(t * V)..<((t + 1) * V)]
            let mx = row.max()!
            let lse = Double(mx) + log(row.reduce(0.0) { $0 + Double(exp($1 - mx)) })
            want += lse - Double(logits[t * V + ids[t + 1]])
        }
        #expect(count == ids.count - 1)
        #expect(abs(loss - want) < 1e-4 * want, "training \(loss) vs inference \(want)")
        // And the adapter changes the model: without it the loss differs.
        let plain = try base.forward(ids, cache: base.makeCache(maxTokens: 64, precision: .exact), allLogits: true)
        #expect(plain != logits)
    }
}
