import Foundation
import Testing
@testable import TailorModels

@Suite struct SamplerTests {
    let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.0, 2.9]

    @Test func greedyIsArgmax() {
        var s = Sampler(.greedy)
        #expect(s.sample(logits) == 1)
    }

    @Test func seedReproducesAndDiffers() {
        var p = SamplingParameters(); p.temperature = 1.5; p.topK = 0; p.topP = 1; p.minP = 0; p.seed = 42
        var a = Sampler(p), b = Sampler(p)
        let ra = (0..<200).map { _ in a.sample(logits) }, rb = (0..<200).map { _ in b.sample(logits) }
        #expect(ra == rb)
        #expect(Set(ra).count >= 4, "high temperature explores")
        p.seed = 43
        var c = Sampler(p)
        #expect((0..<200).map { _ in c.sample(logits) } != ra)
    }

    @Test func topKOneIsGreedy() {
        var p = SamplingParameters(); p.temperature = 5; p.topK = 1; p.seed = 1
        var s = Sampler(p)
        #expect((0..<50).allSatisfy { _ in s.sample(logits) == 1 })
    }

    @Test func topPAndMinPCutTheTail() {
        var p = SamplingParameters(); p.temperature = 1; p.topK = 0; p.topP = 0.5; p.minP = 0; p.seed = 3
        var s = Sampler(p)
        // softmax: token 1 ≈ 0.37, 5 ≈ 0.34 → top-p 0.5 keeps {1, 5}.
        let seen = Set((0..<300).map { _ in s.sample(logits) })
        #expect(seen == [1, 5])
        p.topP = 1; p.minP = 0.5
        var m = Sampler(p)
        // min-p 0.5 keeps tokens with p ≥ 0.5·p(1): 1, 5, 2 (exp(-0.5) ≈ 0.61).
        #expect(Set((0..<300).map { _ in m.sample(logits) }) == [1, 2, 5])
    }

    @Test func repetitionPenaltyAvoidsRecentTokens() {
        var p = SamplingParameters.greedy; p.repetitionPenalty = 2
        var s = Sampler(p)
        #expect(s.sample(logits, history: [1]) == 5)
        #expect(s.sample(logits, history: [1, 5]) == 2)
    }

    @Test func partialTopMatchesFullSort() {
        let s = Sampler(.greedy)
        var rng = SplitMix64(seed: 9)
        let l = (0..<1000).map { _ in Float(rng.next() % 10000) / 100 }
        #expect(s.partialTop(l, 20) == Array(l.indices.sorted { l[$0] > l[$1] || (l[$0] == l[$1] && $0 < $1) }.prefix(20)))
    }
}
