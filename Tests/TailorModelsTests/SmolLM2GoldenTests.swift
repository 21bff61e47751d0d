import Foundation
import Testing
import TailorFormats
import TailorTokenizers
@testable import TailorModels

/// SmolLM2 against transformers (fp32 arithmetic, which this engine follows); see
/// ../shared/golden/README.md for the checks.
@Suite(.serialized) struct SmolLM2GoldenTests {
    static let model: Result<LlamaModel, Error> = Result {
        try LlamaModel(file: GGUFFile(path: TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")))
    }

    func logSoftmax(_ l: ArraySlice<Float>) -> [Double] {
        let m = Double(l.max()!)
        let lse = m + log(l.reduce(0.0) { $0 + exp(Double($1) - m) })
        return l.map { Double($0) - lse }
    }

    @Test func teacherForcedMatchesTransformers() throws {
        let model = try Self.model.get()
        let golden = try TestPaths.goldenJSON("smollm2-forced.json") as! [String: Any]
        let forced = golden["forced"] as! [String: Any]
        let ids = (forced["ids"] as! [NSNumber]).map(\.intValue)
        let ref = forced["transformers"] as! [[String: Any]]
        let V = model.config.vocabulary
        let logits = try model.forward(ids, cache: model.makeCache(maxTokens: 512, precision: .exact), allLogits: true)
        var agree = 0
        var klSum = 0.0, maxLogitDiff: Float = 0
        for (pos, r) in ref.enumerated() {
            let row = logits[(pos * V)..<((pos + 1) * V)]
            let lp = logSoftmax(row)
            let top = (r["top"] as! [[NSNumber]]).map { (id: $0[0].intValue, logit: $0[1].doubleValue) }
            let lse = (r["lse"] as! NSNumber).doubleValue
            let argmax = row.indices.max { row[$0] < row[$1] }! - pos * V
            if argmax == top[0].id { agree += 1 }
            for t in top {
                let pRef = t.logit - lse
                klSum += exp(pRef) * (pRef - lp[t.id])
                maxLogitDiff = max(maxLogitDiff, abs(row[pos * V + t.id] - Float(t.logit)))
            }
        }
        let agreement = Double(agree) / Double(ref.count)
        let meanKL = klSum / Double(ref.count)
        print("teacher-forced vs transformers: top-1 agreement \(agree)/\(ref.count), mean KL \(meanKL), max |Δlogit| over top-10 \(maxLogitDiff)")
        #expect(agreement >= 0.995)
        #expect(meanKL <= 2e-4)
    }

    @Test func greedyMatchesTransformersUpToFirstNearTie() throws {
        let model = try Self.model.get()
        let golden = try TestPaths.goldenJSON("smollm2-greedy.json") as! [String: Any]
        for p in golden["greedy"] as! [[String: Any]] {
            let prompt = (p["prompt_ids"] as! [NSNumber]).map(\.intValue)
            let ref = p["transformers"] as! [String: Any]
            let refIDs = (ref["ids"] as! [NSNumber]).map(\.intValue)
            let margins = (ref["top2_margins"] as! [NSNumber]).map(\.doubleValue)
            let checkUpTo = margins.firstIndex { $0 < 0.05 } ?? refIDs.count
            let cache = model.makeCache(maxTokens: 512, precision: .exact)
            var logits = try model.forward(prompt, cache: cache)
            var got: [Int] = []
            for _ in 0..<checkUpTo {
                let next = logits.indices.max { logits[$0] < logits[$1] }!
                got.append(next)
                logits = try model.forward([next], cache: cache)
            }
            print("greedy \(p["name"]!): \(checkUpTo) tokens compared (first near-tie at \(checkUpTo))")
            #expect(got == Array(refIDs.prefix(checkUpTo)), "prompt \(p["name"]!)")
        }
    }

    @Test func batchedPrefillEqualsTokenByToken() throws {
        let model = try Self.model.get()
        let ids = [504, 3575, 282, 4649, 314, 7042, 30, 198, 198, 504, 1797, 1918]
        let batched = try model.forward(ids, cache: model.makeCache(maxTokens: 64, precision: .exact), allLogits: true)
        let cache = model.makeCache(maxTokens: 64, precision: .exact)
        let V = model.config.vocabulary
        var maxDiff: Float = 0
        for (t, id) in ids.enumerated() {
            let one = try model.forward([id], cache: cache)
            for i in 0..<V { maxDiff = max(maxDiff, abs(one[i] - batched[t * V + i])) }
        }
        print("batched vs token-by-token: max |Δlogit| \(maxDiff)")
        #expect(maxDiff < 1e-3)
    }

    @Test func contextOverflowIsAnError() throws {
        let model = try Self.model.get()
        let cache = model.makeCache(maxTokens: 4, precision: .exact)
        #expect(throws: ModelError.self) { try model.forward([1, 2, 3, 4, 5], cache: cache) }
        #expect(throws: ModelError.self) { try model.forward([999_999], cache: cache) }
    }
}
