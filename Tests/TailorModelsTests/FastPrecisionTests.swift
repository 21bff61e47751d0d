import Foundation
import Testing
import TailorFormats
import TailorKernels
import TailorTokenizers
@testable import TailorModels

/// Precision.fast (8-bit activation blocks, fp16 cache) uses llama.cpp's kind of arithmetic but
/// cannot be bit-identical to it: 8-bit rounding turns the last-bit differences of every fp32
/// step (ggml's own exp, its double-precision RMS sums) into different integers. So it is held to
/// llama.cpp's accuracy instead: against the exact (transformers) reference, its divergence is
/// compared with llama.cpp's own, measured from the same golden file. Measured: 0.0030 for
/// Tailor's fast path, 0.0013 for llama.cpp — within 2.5×, not yet equal (see BENCHMARKS.md).
@Suite(.serialized) struct FastPrecisionTests {
    static let model: Result<LlamaModel, Error> = Result {
        try LlamaModel(file: GGUFFile(path: TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")))
    }

    func kl(_ ref: [String: Any], _ logProbs: (Int) -> Double) -> Double {
        let top = (ref["top"] as! [[NSNumber]]).map { ($0[0].intValue, $0[1].doubleValue) }
        let lse = (ref["lse"] as! NSNumber).doubleValue
        return top.reduce(0.0) { acc, t in let p = t.1 - lse; return acc + exp(p) * (p - logProbs(t.0)) }
    }

    @Test func decodeIsAsAccurateAsLlamaCpp() throws {
        let model = try Self.model.get()
        let golden = try TestPaths.goldenJSON("smollm2-forced.json") as! [String: Any]
        let forced = golden["forced"] as! [String: Any]
        let ids = (forced["ids"] as! [NSNumber]).map(\.intValue)
        let exact = forced["transformers"] as! [[String: Any]], llama = forced["llamacpp"] as! [[String: Any]]
        let cache = model.makeCache(maxTokens: 512, precision: .fast)
        var agree = 0, klFast = 0.0, klLlama = 0.0
        for (pos, id) in ids.enumerated() {
            let row = try model.forward([id], cache: cache)   // token by token: the integer decode path
            let m = Double(row.max()!)
            let lse = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
            let top = (exact[pos]["top"] as! [[NSNumber]])[0][0].intValue
            if row.indices.max(by: { row[$0] < row[$1] }) == top { agree += 1 }
            klFast += kl(exact[pos]) { Double(row[$0]) - lse }
            // llama.cpp's own distance from the exact reference, over the tokens both list.
            let lt = Dictionary(uniqueKeysWithValues: (llama[pos]["top"] as! [[NSNumber]]).map { ($0[0].intValue, $0[1].doubleValue) })
            let llse = (llama[pos]["lse"] as! NSNumber).doubleValue
            klLlama += kl(exact[pos]) { lt[$0].map { $0 - llse } ?? (Double(row[$0]) - lse) }
        }
        klFast /= Double(ids.count); klLlama /= Double(ids.count)
        print("fast precision vs transformers: top-1 \(agree)/\(ids.count), mean KL \(klFast); llama.cpp vs transformers: mean KL \(klLlama)")
        #expect(Double(agree) / Double(ids.count) >= 0.96)
        #expect(klFast <= 2.5 * klLlama)
    }

    @Test func fastGreedyAnswersLikeExact() throws {
        let model = try Self.model.get()
        let tok = try Tokenizer(gguf: model.file)
        let gen = Generator(model: model, tokenizer: tok)
        let prompt = tok.encode("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
        let r = try gen.generate(prompt: prompt, maxTokens: 30, sampling: .greedy)
        #expect(r.text.contains("Paris"))
        #expect(r.finishReason == .stop)
    }
}
