import Foundation
import Testing
import TailorKernels
@testable import TailorModels

/// The many-query attention (two sgemms per block of 64 queries, causal key ranges) against the
/// one-query path, token by token, with and without a sliding window, fp32 and fp16 caches,
/// after a prefix already in the cache.
@Suite struct AttentionTests {
    @Test(arguments: [false, true])
    func blockedAttentionEqualsOneQueryAtATime(_ half: Bool) {
        let H = 6, Hkv = 2, D = 16, KV = Hkv * D, Q = H * D
        let start = 37, T = 150
        var rng = SystemRandomNumberGenerator()
        let keys = (0..<((start + T) * KV)).map { _ in Float.random(in: -1...1, using: &rng) }
        let values = (0..<((start + T) * KV)).map { _ in Float.random(in: -1...1, using: &rng) }
        let queries = (0..<(T * Q)).map { _ in Float.random(in: -1...1, using: &rng) }
        let cache = KVCache(layers: 1, kvDim: KV, maxTokens: 512, half: half)
        cache.reserve(start + T)
        keys.withUnsafeBufferPointer { k in values.withUnsafeBufferPointer { v in
            cache.store(layer: 0, start: 0, keys: k.baseAddress!, values: v.baseAddress!, count: start + T)
        } }
        let pool = ThreadPool(threads: 2)
        for window in [nil, 40] as [Int?] {
            var blocked = [Float](repeating: 0, count: T * Q), single = blocked
            queries.withUnsafeBufferPointer { q in
                blocked.withUnsafeMutableBufferPointer { o in
                    DecoderOps.attention(q: q.baseAddress!, out: o.baseAddress!, cache: cache, layer: 0, tokens: T, start: start,
                                         heads: H, kvHeads: Hkv, headDim: D, scale: 0.25, window: window, pool: pool)
                }
                single.withUnsafeMutableBufferPointer { o in
                    for t in 0..<T {
                        DecoderOps.attention(q: q.baseAddress! + t * Q, out: o.baseAddress! + t * Q, cache: cache, layer: 0, tokens: 1,
                                             start: start + t, heads: H, kvHeads: Hkv, headDim: D, scale: 0.25, window: window, pool: pool)
                    }
                }
            }
            // The one-query path rounds queries and weights to fp16 with an fp16 cache.
            let tol: Float = half ? 2e-3 : 1e-5
            let worst = zip(blocked, single).map { abs($0 - $1) }.max()!
            #expect(worst < tol, "window \(String(describing: window)), fp16 cache \(half): worst difference \(worst)")
        }
    }
}
