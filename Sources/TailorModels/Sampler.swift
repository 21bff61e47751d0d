// Picks the next token from logits. The chain follows llama.cpp's default order: repetition
// penalty, top-k, top-p (Holtzman et al. 2019), min-p, then temperature and a seeded draw.
// Temperature 0 is greedy.
import Foundation
import TailorKernels

public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float = 0.8
    public var topK: Int = 40
    public var topP: Float = 0.95
    public var minP: Float = 0.05
    public var repetitionPenalty: Float = 1.0
    /// How many recent tokens the repetition penalty looks at.
    public var repetitionWindow: Int = 64
    public var seed: UInt64? = nil

    public init() {}

    public static var greedy: SamplingParameters { var p = SamplingParameters(); p.temperature = 0; return p }
}

public struct Sampler {
    public let parameters: SamplingParameters
    private var rng: SplitMix64

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed ?? UInt64.random(in: 0...UInt64.max))
    }

    /// The next token, given the logits and the tokens so far (for the repetition penalty).
    public mutating func sample(_ logits: [Float], history: [Int] = []) -> Int {
        var l = logits
        let p = parameters
        if p.repetitionPenalty != 1 {
            for id in Set(history.suffix(p.repetitionWindow)) where id >= 0 && id < l.count {
                l[id] = l[id] > 0 ? l[id] / p.repetitionPenalty : l[id] * p.repetitionPenalty
            }
        }
        if p.temperature <= 0 { return argmax(l) }

        // Candidates sorted by logit, cut by top-k.
        var cand = Array(l.indices)
        let k = p.topK > 0 ? min(p.topK, cand.count) : cand.count
        if k < cand.count {
            cand = partialTop(l, k)
        } else {
            cand.sort { l[$0] > l[$1] }
        }
        // Probabilities before temperature, for top-p and min-p (as llama.cpp does).
        var probs = softmax(cand.map { l[$0] })
        if p.topP < 1 {
            var cum: Float = 0, keep = cand.count
            for (i, pr) in probs.enumerated() { cum += pr; if cum >= p.topP { keep = i + 1; break } }
            cand = Array(cand.prefix(keep)); probs = Array(probs.prefix(keep))
        }
        if p.minP > 0, let top = probs.first {
            let keep = max(1, probs.firstIndex { $0 < p.minP * top } ?? probs.count)
            cand = Array(cand.prefix(keep))
        }
        let scaled = softmax(cand.map { l[$0] / p.temperature })
        var r = Float(Double(rng.next() >> 11) / Double(1 << 53))
        for (i, pr) in scaled.enumerated() {
            r -= pr
            if r <= 0 { return cand[i] }
        }
        return cand.last!
    }

    func argmax(_ l: [Float]) -> Int {
        l.withUnsafeBufferPointer { VectorMath.argmax($0.baseAddress!, $0.count) }
    }

    func softmax(_ x: [Float]) -> [Float] {
        guard let m = x.max() else { return [] }
        let e = x.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// Indices of the k largest logits, largest first.
    func partialTop(_ l: [Float], _ k: Int) -> [Int] {
        var heap: [Int] = []  // min-heap by logit of size k, kept simple: k is small
        heap.reserveCapacity(k + 1)
        var minIdx = -1
        for i in l.indices {
            if heap.count < k {
                heap.append(i)
                if heap.count == k { minIdx = heap.indices.min { l[heap[$0]] < l[heap[$1]] }! }
            } else if l[i] > l[heap[minIdx]] {
                heap[minIdx] = i
                minIdx = heap.indices.min { l[heap[$0]] < l[heap[$1]] }!
            }
        }
        return heap.sorted { l[$0] > l[$1] || (l[$0] == l[$1] && $0 < $1) }
    }
}

/// A small, fast, seedable generator (Steele et al., SplitMix64), so a seed reproduces a run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The whole state: saving it saves the stream's position.
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}
