// Keys and values of every position seen so far, per layer, so each new token attends to the
// past without recomputing it. Layout per layer: [capacity × kvDim], position-major, so a new
// token appends one contiguous row; fp32 for Precision.exact, fp16 for .fast (half the memory,
// as llama.cpp's default cache). Grows by doubling up to `maxTokens`. All layers' keys and values
// live in one allocation, so a finished request's cache goes back to the system at once (many
// small blocks freed on the batching thread would stay in its malloc arena).
import TailorKernels

// Not Sendable: a cache belongs to one session, used by one request at a time.
public final class KVCache {
    public let layers: Int
    public let kvDim: Int
    public let maxTokens: Int
    /// fp16 storage (else fp32).
    public let isHalf: Bool
    /// The arithmetic of the sessions that use it: .fast with fp16 storage, .exact with fp32.
    public var precision: Precision { isHalf ? .fast : .exact }
    public private(set) var capacity: Int
    /// Positions filled.
    public internal(set) var count = 0
    /// The token ids behind the filled positions, when the caller records them (for prefix reuse).
    public var tokens: [Int] = []
    var reusablePrefix: Int { min(count, tokens.count) }
    var keys: [UnsafeMutableRawPointer]
    var values: [UnsafeMutableRawPointer]
    private var storage: UnsafeMutableRawPointer
    var elementSize: Int { isHalf ? 2 : 4 }

    public init(layers: Int, kvDim: Int, maxTokens: Int, half: Bool = false, initialCapacity: Int = 256) {
        self.layers = layers
        self.kvDim = kvDim
        self.maxTokens = maxTokens
        isHalf = half
        let c = max(1, min(maxTokens, initialCapacity))
        capacity = c
        (storage, keys, values) = KVCache.allocate(layers: layers, bytesPerLayer: c * kvDim * (half ? 2 : 4))
    }

    deinit { storage.deallocate() }

    /// One block for every layer's keys then values, each layer's part 64-byte aligned.
    private static func allocate(layers: Int, bytesPerLayer: Int) -> (UnsafeMutableRawPointer, [UnsafeMutableRawPointer], [UnsafeMutableRawPointer]) {
        let stride = (bytesPerLayer + 63) / 64 * 64
        let block = UnsafeMutableRawPointer.allocate(byteCount: max(64, 2 * layers * stride), alignment: 64)
        return (block, (0..<layers).map { block + $0 * stride }, (0..<layers).map { block + (layers + $0) * stride })
    }

    /// Makes room for `n` positions in total.
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        var c = capacity
        while c < n { c *= 2 }
        c = min(c, maxTokens)
        let (block, k, v) = KVCache.allocate(layers: layers, bytesPerLayer: c * kvDim * elementSize)
        for l in 0..<layers {
            k[l].copyMemory(from: keys[l], byteCount: count * kvDim * elementSize)
            v[l].copyMemory(from: values[l], byteCount: count * kvDim * elementSize)
        }
        storage.deallocate()
        (storage, keys, values) = (block, k, v)
        capacity = c
    }

    /// Writes rows for positions start..<start+T of layer l. k, v: [T × kvDim].
    func store(layer l: Int, start: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, count T: Int) {
        let n = T * kvDim
        if isHalf {
            let kd = keys[l].assumingMemoryBound(to: UInt16.self) + start * kvDim
            let vd = values[l].assumingMemoryBound(to: UInt16.self) + start * kvDim
            for i in 0..<n { kd[i] = floatToHalf(k[i]); vd[i] = floatToHalf(v[i]) }
        } else {
            (keys[l].assumingMemoryBound(to: Float.self) + start * kvDim).update(from: k, count: n)
            (values[l].assumingMemoryBound(to: Float.self) + start * kvDim).update(from: v, count: n)
        }
    }

    /// Forgets positions from `n` on (to rewind, or to reuse a shared prompt prefix).
    public func truncate(to n: Int) {
        count = min(count, max(0, n))
        if tokens.count > count { tokens.removeLast(tokens.count - count) }
    }

    public func clear() { count = 0; tokens = [] }

    /// Copies positions 0..<n of `other` (same layers, width and storage) into this cache and
    /// makes them its whole content: a shared prompt prefix computed once, reused.
    public func copyPrefix(of other: KVCache, count n: Int) {
        precondition(other.layers == layers && other.kvDim == kvDim && other.isHalf == isHalf && n <= other.count && n <= maxTokens)
        reserve(n)
        let bytes = n * kvDim * elementSize
        for l in 0..<layers {
            keys[l].copyMemory(from: other.keys[l], byteCount: bytes)
            values[l].copyMemory(from: other.values[l], byteCount: bytes)
        }
        count = n
        tokens = Array(other.tokens.prefix(n))
    }

    /// Bytes in use by the cache buffers.
    public var bytes: Int { 2 * layers * capacity * kvDim * elementSize }
}
