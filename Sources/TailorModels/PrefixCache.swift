// Prompt prefixes computed once and reused: requests that start the same way (one system prompt,
// the same retrieved passages, a chat's earlier turns) copy the keys and values of the shared
// start instead of computing them again. Entries are whole prompts, looked up by their longest
// common prefix with a new prompt, evicted least recently used beyond a byte budget. Keys and
// values depend on the adapters applied, so an entry serves only requests with the same adapters
// (and scales) and precision.
//
// Reuse computes the rest of the prompt in smaller steps than a full prefill would, and attention
// over a few rows uses other arithmetic than over many (fp16-rounded dot products against GEMMs):
// in `fast` precision an answer can differ where two tokens are nearly tied, as any batching
// difference may. `exact` sessions are never served from it, so they stay token-identical.
import Foundation
import Synchronization

public final class PrefixCache: Sendable {
    /// Most bytes of keys and values kept.
    public let capacityBytes: Int
    /// Shortest shared prefix worth reusing.
    public let minimumTokens: Int

    struct Entry {
        let key: String            // adapters and precision
        let cache: KVCache         // positions 0..<tokens.count, never written after insertion
        var lastUsed: UInt64
        var bytes: Int { cache.bytes }
    }
    struct State {
        var entries: [Entry] = []
        var clock: UInt64 = 0
        var bytes = 0
        var lookups = 0
        var hits = 0
        var promptTokens = 0
        var reusedTokens = 0
    }
    // @unchecked: entries hold KVCaches that are only read after insertion, under the lock.
    private let state: Mutex<UncheckedBox<State>>

    public init(capacityBytes: Int = 256 << 20, minimumTokens: Int = 16) {
        self.capacityBytes = capacityBytes
        self.minimumTokens = minimumTokens
        state = Mutex(UncheckedBox(State()))
    }

    static func key(_ session: DecoderSession) -> String {
        session.precision.rawValue + "|" + session.adapters.map { "\(ObjectIdentifier($0.adapter).hashValue)@\($0.scale)" }.joined(separator: ",")
    }

    /// Fills `session`'s empty cache with the longest cached prefix of `prompt` (leaving at least
    /// its last token to compute, for its logits); returns the number of positions filled.
    public func restore(_ prompt: [Int], into session: DecoderSession) -> Int {
        guard session.precision == .fast else { return 0 }
        let key = Self.key(session)
        return state.withLock { box in
            box.value.lookups += 1
            box.value.promptTokens += prompt.count
            var best = -1, bestLength = 0
            for (i, e) in box.value.entries.enumerated() where e.key == key {
                let n = commonPrefix(e.cache.tokens, prompt, limit: prompt.count - 1)
                if n > bestLength { best = i; bestLength = n }
            }
            guard best >= 0, bestLength >= minimumTokens, bestLength <= session.cache.maxTokens else { return 0 }
            box.value.clock += 1
            box.value.entries[best].lastUsed = box.value.clock
            session.cache.copyPrefix(of: box.value.entries[best].cache, count: bestLength)
            box.value.hits += 1
            box.value.reusedTokens += bestLength
            return bestLength
        }
    }

    /// Keeps a copy of the first `prompt.count` positions of `session`'s cache (a prompt just
    /// computed), unless an entry already holds all of it.
    public func insert(_ prompt: [Int], from session: DecoderSession) {
        let n = prompt.count
        guard session.precision == .fast, n >= minimumTokens, session.cache.count >= n else { return }
        let key = Self.key(session)
        let src = session.cache
        let perToken = 2 * src.layers * src.kvDim * (src.isHalf ? 2 : 4)
        guard n * perToken <= capacityBytes else { return }
        let exists = state.withLock { box in
            box.value.entries.contains { $0.key == key && $0.cache.count >= n && commonPrefix($0.cache.tokens, prompt, limit: n) == n }
        }
        if exists { return }
        let copy = KVCache(layers: src.layers, kvDim: src.kvDim, maxTokens: n, half: src.isHalf, initialCapacity: n)
        copy.copyPrefix(of: src, count: n)
        copy.tokens = prompt
        state.withLock { box in
            box.value.clock += 1
            // Entries this one contains are dropped (it serves every lookup they would).
            box.value.entries.removeAll { e in
                let covered = e.key == key && e.cache.count <= n && commonPrefix(e.cache.tokens, prompt, limit: n) == e.cache.count
                if covered { box.value.bytes -= e.bytes }
                return covered
            }
            box.value.entries.append(Entry(key: key, cache: copy, lastUsed: box.value.clock))
            box.value.bytes += copy.bytes
            while box.value.bytes > capacityBytes, let oldest = box.value.entries.indices.min(by: { box.value.entries[$0].lastUsed < box.value.entries[$1].lastUsed }) {
                box.value.bytes -= box.value.entries[oldest].bytes
                box.value.entries.remove(at: oldest)
            }
        }
    }

    public struct Statistics: Sendable, Codable {
        public var entries: Int
        public var bytes: Int
        public var lookups: Int
        public var hits: Int
        public var promptTokens: Int
        public var reusedTokens: Int
        /// Share of prompt tokens taken from the cache instead of computed.
        public var hitRate: Double { promptTokens > 0 ? Double(reusedTokens) / Double(promptTokens) : 0 }
    }

    public var statistics: Statistics {
        state.withLock { b in
            Statistics(entries: b.value.entries.count, bytes: b.value.bytes, lookups: b.value.lookups, hits: b.value.hits,
                       promptTokens: b.value.promptTokens, reusedTokens: b.value.reusedTokens)
        }
    }

    public func removeAll() { state.withLock { $0.value.entries = []; $0.value.bytes = 0 } }
}

/// A value a lock guards, marked Sendable by the lock's user (see each use).
struct UncheckedBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

func commonPrefix(_ a: [Int], _ b: [Int], limit: Int) -> Int {
    var i = 0
    let n = min(a.count, b.count, limit)
    while i < n, a[i] == b[i] { i += 1 }
    return i
}
