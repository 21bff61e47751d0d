// Keys and values of every position seen so far, per layer, so each new token attends to the
// past without recomputing it. Layout per layer: [capacity × kvDim] fp32, position-major, so a
// new token appends one contiguous row. Grows by doubling up to `maxTokens`.

public final class KVCache {
    public let layers: Int
    public let kvDim: Int
    public let maxTokens: Int
    public private(set) var capacity: Int
    /// Positions filled.
    public internal(set) var count = 0
    /// The token ids behind the filled positions, when the caller records them (for prefix reuse).
    public var tokens: [Int] = []
    var reusablePrefix: Int { min(count, tokens.count) }
    var keys: [UnsafeMutablePointer<Float>]
    var values: [UnsafeMutablePointer<Float>]

    public init(layers: Int, kvDim: Int, maxTokens: Int, initialCapacity: Int = 256) {
        self.layers = layers
        self.kvDim = kvDim
        self.maxTokens = maxTokens
        capacity = min(maxTokens, initialCapacity)
        keys = (0..<layers).map { _ in .allocate(capacity: min(maxTokens, initialCapacity) * kvDim) }
        values = (0..<layers).map { _ in .allocate(capacity: min(maxTokens, initialCapacity) * kvDim) }
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Makes room for `n` positions in total.
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        var c = capacity
        while c < n { c *= 2 }
        c = min(c, maxTokens)
        for l in 0..<layers {
            for which in 0..<2 {
                let old = which == 0 ? keys[l] : values[l]
                let new = UnsafeMutablePointer<Float>.allocate(capacity: c * kvDim)
                new.update(from: old, count: count * kvDim)
                old.deallocate()
                if which == 0 { keys[l] = new } else { values[l] = new }
            }
        }
        capacity = c
    }

    /// Forgets positions from `n` on (to rewind, or to reuse a shared prompt prefix).
    public func truncate(to n: Int) {
        count = min(count, max(0, n))
        if tokens.count > count { tokens.removeLast(tokens.count - count) }
    }

    public func clear() { count = 0; tokens = [] }

    /// Bytes in use by the cache buffers.
    public var bytes: Int { 2 * layers * capacity * kvDim * MemoryLayout<Float>.size }
}
