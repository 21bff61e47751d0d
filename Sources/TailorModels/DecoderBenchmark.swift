// Speed of a decoder, measured as llama-bench does: prefill (one batch of p tokens) and decode
// (n tokens one at a time), each repeated, reported as mean ± standard deviation.
import Foundation
import TailorKernels

public struct BenchStat: Codable, Sendable {
    public var samples: [Double]
    public init(samples: [Double]) { self.samples = samples }
    public var mean: Double { samples.reduce(0, +) / Double(max(1, samples.count)) }
    public var stddev: Double {
        guard samples.count > 1 else { return 0 }
        let m = mean
        return (samples.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(samples.count - 1)).squareRoot()
    }
    public var median: Double { let s = samples.sorted(); return s.isEmpty ? 0 : s[s.count / 2] }
}

public struct DecoderBenchResult: Codable, Sendable {
    public var model: String
    public var threads: Int
    public var promptTokens: Int
    public var generatedTokens: Int
    /// Tokens per second.
    public var prefill: BenchStat
    public var decode: BenchStat
    /// Weight bytes read per decoded token.
    public var bytesPerToken: Int
    public var peakResidentBytes: Int
    public var decodeGBps: Double { Double(bytesPerToken) * decode.median / 1e9 }
}

public enum DecoderBenchmark {
    /// Runs `repetitions` rounds (after one warm-up) of prefill and decode on fresh caches.
    public static func run(_ lm: LanguageModel, promptTokens p: Int, generatedTokens n: Int, repetitions: Int,
                           progress: (String) -> Void = { _ in }) throws -> DecoderBenchResult {
        let model = lm.model
        let V = model.vocabularySize
        // Deterministic pseudo-random tokens, as llama-bench uses random tokens.
        var rng = SplitMix64(seed: 1234)
        let prompt = (0..<max(1, p)).map { _ in Int(rng.next() % UInt64(V)) }
        var prefill: [Double] = [], decode: [Double] = []
        for rep in 0...repetitions {
            if p > 0 {
                let cache = lm.makeCache(maxTokens: p + 1)
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try model.forward(prompt, cache: cache, allLogits: false)
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if rep > 0 { prefill.append(Double(p) / dt) }
            }
            if n > 0 {
                let cache = lm.makeCache(maxTokens: n + 1)
                var tok = prompt[0]
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<n {
                    let logits = try model.forward([tok], cache: cache, allLogits: false)
                    tok = argmax(logits)
                }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if rep > 0 { decode.append(Double(n) / dt) }
            }
            progress(rep == 0 ? "warm-up done" : "repetition \(rep)/\(repetitions)")
        }
        return DecoderBenchResult(model: lm.name, threads: model.pool.threads, promptTokens: p, generatedTokens: n,
                                  prefill: BenchStat(samples: prefill), decode: BenchStat(samples: decode),
                                  bytesPerToken: weightBytesPerToken(lm), peakResidentBytes: peakResidentBytes())
    }

    static func argmax(_ l: [Float]) -> Int {
        l.withUnsafeBufferPointer { VectorMath.argmax($0.baseAddress!, $0.count) }
    }

    /// Bytes of every matrix a decoded token multiplies with (all but the embedding lookup).
    public static func weightBytesPerToken(_ lm: LanguageModel) -> Int {
        var total = 0
        var hasOutput = false
        for t in lm.file.tensors {
            if t.name == "output.weight" { hasOutput = true }
            if t.name == "token_embd.weight" { continue }
            total += t.byteCount
        }
        if !hasOutput, let e = lm.file.tensor("token_embd.weight") { total += e.byteCount }  // tied output
        return total
    }

    /// The process's peak resident set (VmHWM), in bytes.
    public static func peakResidentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}
