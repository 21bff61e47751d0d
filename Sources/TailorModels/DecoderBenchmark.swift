// Speed of a decoder, measured as llama-bench does: prefill (one batch of p tokens) and decode
// (n tokens one at a time), each repeated, reported as mean ± standard deviation.
import Foundation
import Synchronization
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
    /// Multiply-adds of the weight matrices per token (attention over the cache not counted):
    /// prefill tokens/s × this is the rate to hold against the machine's int8 peak.
    public var matrixMACsPerToken: Int?
    public var peakResidentBytes: Int
    /// Prefill tokens/s at each prompt length asked for (the first is `prefill`).
    public var prefillByLength: [PrefillLength] = []
    /// Seconds to load the model (reading, repacking), when the caller measured it.
    public var loadSeconds: Double?
    public var decodeGBps: Double { Double(bytesPerToken) * decode.median / 1e9 }

    public struct PrefillLength: Codable, Sendable {
        public var tokens: Int
        public var tokensPerSecond: BenchStat
    }
}

public enum DecoderBenchmark {
    /// Runs `repetitions` rounds (after one warm-up) of prefill and decode on fresh caches.
    public static func run(_ lm: LanguageModel, promptTokens p: Int, generatedTokens n: Int, repetitions: Int,
                           progress: (String) -> Void = { _ in }) throws -> DecoderBenchResult {
        try run(lm, promptLengths: [p], generatedTokens: n, repetitions: repetitions, progress: progress)
    }

    /// The same with a prefill test per prompt length (each a fresh cache and prompt).
    public static func run(_ lm: LanguageModel, promptLengths: [Int], generatedTokens n: Int, repetitions: Int,
                           progress: (String) -> Void = { _ in }) throws -> DecoderBenchResult {
        let model = lm.model
        let V = model.vocabularySize
        let lengths = promptLengths.filter { $0 > 0 }
        let p = promptLengths.first ?? 0
        // Deterministic pseudo-random tokens, as llama-bench uses random tokens.
        var rng = SplitMix64(seed: 1234)
        let prompt = (0..<max(1, lengths.max() ?? 1)).map { _ in Int(rng.next() % UInt64(V)) }
        var byLength = [[Double]](repeating: [], count: lengths.count)
        var decode: [Double] = []
        for rep in 0...repetitions {
            for (i, len) in lengths.enumerated() {
                let cache = lm.makeCache(maxTokens: len + 1)
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try model.forward(Array(prompt.prefix(len)), cache: cache, allLogits: false)
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if rep > 0 { byLength[i].append(Double(len) / dt) }
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
                                  prefill: BenchStat(samples: byLength.first ?? []), decode: BenchStat(samples: decode),
                                  bytesPerToken: weightBytesPerToken(lm), matrixMACsPerToken: matrixMACsPerToken(lm), peakResidentBytes: peakResidentBytes(),
                                  prefillByLength: zip(lengths, byLength).map { DecoderBenchResult.PrefillLength(tokens: $0, tokensPerSecond: BenchStat(samples: $1)) })
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

    /// Multiply-adds of the 2-D weight matrices per token (the output head included, the
    /// embedding lookup not).
    public static func matrixMACsPerToken(_ lm: LanguageModel) -> Int {
        var total = 0
        var hasOutput = false
        for t in lm.file.tensors where t.shape.count == 2 {
            if t.name == "output.weight" { hasOutput = true }
            if t.name == "token_embd.weight" { continue }
            total += t.elementCount
        }
        if !hasOutput, let e = lm.file.tensor("token_embd.weight") { total += e.elementCount }
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

/// Aggregate decoding speed of N sequences stepped together (continuous batching).
public struct ParallelBenchResult: Codable, Sendable {
    public var sequences: Int
    /// Decoded tokens per second, all sequences together (steps with no prompt work).
    public var decodeTokensPerSecond: Double
    /// A step's time, which is each sequence's time per token: median and 95th percentile.
    public var msPerTokenP50: Double
    public var msPerTokenP95: Double
    /// Prompt tokens per second while all prompts are computed.
    public var prefillTokensPerSecond: Double
    /// KV cache bytes each sequence holds at the end.
    public var kvBytesPerSequence: Int
    public var peakResidentBytes: Int
    public var repetitions: Int

    enum CodingKeys: String, CodingKey {
        case sequences, repetitions
        case decodeTokensPerSecond = "decode_tok_s", msPerTokenP50 = "ms_per_token_p50", msPerTokenP95 = "ms_per_token_p95"
        case prefillTokensPerSecond = "prefill_tok_s", kvBytesPerSequence = "kv_bytes_per_sequence", peakResidentBytes = "peak_rss_bytes"
    }
}

extension DecoderBenchmark {
    /// For each width N: N requests at once, each a different `promptTokens`-token prompt (random
    /// tokens, as llama-bench uses) then `generatedTokens` greedy tokens, through a BatchGenerator;
    /// medians over `repetitions` runs after a warm-up.
    public static func parallel(_ lm: LanguageModel, widths: [Int], promptTokens p: Int = 64, generatedTokens n: Int = 128,
                                repetitions: Int = 3, progress: (String) -> Void = { _ in }) throws -> [ParallelBenchResult] {
        let V = lm.model.vocabularySize
        var out: [ParallelBenchResult] = []
        for width in widths {
            var decodeRates: [Double] = [], prefillRates: [Double] = [], stepTimes: [Double] = []
            var kvBytes = 0
            let steps = Mutex<[BatchStep]>([])
            let engine = BatchGenerator(model: lm, maxSequences: width, prefillChunk: max(1, p), prefillBudget: max(1, p) * width,
                                        prefixCacheBytes: 0)
            defer { engine.shutdown() }
            engine.onStep = { s in steps.withLock { $0.append(s) } }
            for rep in 0...repetitions {
                steps.withLock { $0 = [] }
                var rng = SplitMix64(seed: 1234 &+ UInt64(width) &* 7919 &+ UInt64(rep))
                let group = DispatchGroup()
                let failure = Mutex<ModelError?>(nil)
                for _ in 0..<width {
                    var r = GenerationRequest(prompt: (0..<max(1, p)).map { _ in Int(rng.next() % UInt64(V)) }, maxTokens: n)
                    r.ignoreEndOfGeneration = true
                    group.enter()
                    engine.submit(r) { event in
                        switch event {
                        case .finished: group.leave()
                        case .failed(let e): failure.withLock { $0 = e }; group.leave()
                        case .text: break
                        }
                        return true
                    }
                }
                group.wait()
                if let e = failure.withLock({ $0 }) { throw e }
                let all = steps.withLock { $0 }
                let decode = all.filter { $0.prefillTokens == 0 && $0.decodeTokens > 0 }
                let prefill = all.filter { $0.prefillTokens > 0 }
                if rep > 0 {
                    decodeRates.append(Double(decode.reduce(0) { $0 + $1.decodeTokens }) / max(1e-9, decode.reduce(0) { $0 + $1.seconds }))
                    prefillRates.append(Double(prefill.reduce(0) { $0 + $1.prefillTokens }) / max(1e-9, prefill.reduce(0) { $0 + $1.seconds }))
                    stepTimes += decode.filter { $0.decodeTokens == width }.map(\.seconds)
                }
                progress(rep == 0 ? "\(width) sequences: warm-up done" : "\(width) sequences: repetition \(rep)/\(repetitions)")
            }
            // fp16 keys and values of every layer for the prompt and the generated tokens.
            kvBytes = 2 * lm.model.layerCount * lm.model.kvWidth * (lm.precision == .fast ? 2 : 4) * (p + n)
            let sorted = stepTimes.sorted()
            func pct(_ q: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] * 1000 }
            out.append(ParallelBenchResult(sequences: width, decodeTokensPerSecond: BenchStat(samples: decodeRates).median,
                                           msPerTokenP50: pct(0.5), msPerTokenP95: pct(0.95),
                                           prefillTokensPerSecond: BenchStat(samples: prefillRates).median,
                                           kvBytesPerSequence: kvBytes, peakResidentBytes: peakResidentBytes(), repetitions: repetitions))
        }
        return out
    }
}
