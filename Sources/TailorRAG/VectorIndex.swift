// Nearest neighbours by cosine similarity: an exact scan (SIMD dot products over all rows,
// split across threads) and an HNSW graph (Malkov & Yashunin 2016) for large collections.
import Foundation
import TailorFormats
import TailorKernels

/// Inner product of two float vectors (AVX2 through Swift SIMD when built with -march=native).
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i &+ 32 <= n {
        s0 += ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        s1 += ra.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self)
        s2 += ra.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD8<Float>.self)
        s3 += ra.loadUnaligned(fromByteOffset: (i &+ 24) &* 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: (i &+ 24) &* 4, as: SIMD8<Float>.self)
        i &+= 32
    }
    while i &+ 8 <= n {
        s0 += ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        i &+= 8
    }
    var s = ((s0 + s1) + (s2 + s3)).sum()
    while i < n { s += a[i] * b[i]; i &+= 1 }
    return s
}

/// Row-major vectors (L2-normalized on the way in) with the chunk id of each row.
// @unchecked Sendable: the rows are written in init (or mapped read-only) and never changed.
public final class VectorMatrix: @unchecked Sendable {
    public let ids: [Int64]
    public let dimension: Int
    /// count × dimension floats, row-major; owned, never moved.
    public let base: UnsafeMutablePointer<Float>
    public var count: Int { ids.count }

    /// Keeps a mapped file alive when the rows live in it.
    private let mapping: MappedFile?

    public init(ids: [Int64], data: [Float], dimension: Int) {
        precondition(data.count == ids.count * dimension)
        self.ids = ids; self.dimension = dimension
        mapping = nil
        base = .allocate(capacity: max(1, data.count))
        data.withUnsafeBufferPointer { base.initialize(from: $0.baseAddress!, count: data.count) }
        for r in 0..<ids.count {
            let row = base + r * dimension
            let n = dotProduct(row, row, dimension).squareRoot()
            if n > 0 && abs(n - 1) > 1e-6 { for i in 0..<dimension { row[i] /= n } }
        }
    }

    deinit { if mapping == nil { base.deallocate() } }

    // A cache file: "TLRVEC01", generation, count, dimension (Int64 each), ids, then rows (fp32),
    // already normalized. Mapped, not read: a million rows open at once.
    static let cacheMagic: UInt64 = 0x3130_4345_5652_4C54

    private init(ids: [Int64], dimension: Int, mapping: MappedFile, offset: Int) {
        self.ids = ids; self.dimension = dimension; self.mapping = mapping
        base = UnsafeMutablePointer(mutating: (mapping.bytes + offset).assumingMemoryBound(to: Float.self))
    }

    /// The rows cached at `url` when they were written at `generation`; nil otherwise.
    public static func cached(at url: URL, generation: Int) -> VectorMatrix? {
        guard let m = try? MappedFile(path: url.path), m.size >= 32 else { return nil }
        let h = m.bytes
        guard h.loadUnaligned(as: UInt64.self) == cacheMagic,
              h.loadUnaligned(fromByteOffset: 8, as: Int64.self) == Int64(generation) else { return nil }
        let n = Int(h.loadUnaligned(fromByteOffset: 16, as: Int64.self)), d = Int(h.loadUnaligned(fromByteOffset: 24, as: Int64.self))
        guard n >= 0, d > 0, m.size == 32 + n * 8 + n * d * 4 else { return nil }
        let ids = (0..<n).map { h.loadUnaligned(fromByteOffset: 32 + $0 * 8, as: Int64.self) }
        return VectorMatrix(ids: ids, dimension: d, mapping: m, offset: 32 + n * 8)
    }

    /// Writes the rows for `cached(at:generation:)` (atomically).
    public func writeCache(to url: URL, generation: Int) throws {
        let tmp = url.appendingPathExtension("tmp")
        var head = Data()
        for v in [Int64(bitPattern: Self.cacheMagic), Int64(generation), Int64(count), Int64(dimension)] {
            withUnsafeBytes(of: v.littleEndian) { head.append(contentsOf: $0) }
        }
        ids.withUnsafeBytes { head.append(contentsOf: $0) }
        guard FileManager.default.createFile(atPath: tmp.path, contents: head) else {
            throw RAGError.store("cannot create \(tmp.path)")
        }
        let fh = try FileHandle(forWritingTo: tmp)
        try fh.seekToEnd()
        let rowsPerWrite = max(1, (1 << 24) / max(1, dimension * 4))
        var r = 0
        while r < count {
            let m = min(rowsPerWrite, count - r)
            try fh.write(contentsOf: Data(bytes: base + r * dimension, count: m * dimension * 4))
            r += m
        }
        try fh.close()
        _ = try? FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: tmp, to: url)
    }

    public static func normalized(_ v: [Float]) -> [Float] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return n > 0 ? v.map { $0 / n } : v
    }

    @inline(__always) public func row(_ r: Int) -> UnsafePointer<Float> { UnsafePointer(base + r &* dimension) }
}

/// Keeps the k best (highest score) of a stream.
struct TopK {
    let k: Int
    private(set) var items: [(score: Float, row: Int32)] = []  // min-heap on score
    init(_ k: Int) { self.k = k; items.reserveCapacity(k) }
    var worst: Float { items.count < k ? -.infinity : items[0].score }

    mutating func push(_ score: Float, _ row: Int32) {
        if items.count < k {
            items.append((score, row))
            var i = items.count - 1
            while i > 0 { let p = (i - 1) / 2; if items[p].score <= items[i].score { break }; items.swapAt(p, i); i = p }
        } else if score > items[0].score {
            items[0] = (score, row)
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l].score < items[m].score { m = l }
                if r < items.count && items[r].score < items[m].score { m = r }
                if m == i { break }
                items.swapAt(m, i); i = m
            }
        }
    }
    func sorted() -> [(row: Int, score: Float)] { items.sorted { $0.score > $1.score }.map { (Int($0.row), $0.score) } }
}

public protocol VectorSearcher: AnyObject, Sendable {
    /// The k rows most similar to the (normalized) query, best first; `allowed` restricts rows.
    func search(_ query: [Float], k: Int, allowed: ((Int) -> Bool)?) -> [(row: Int, score: Float)]
}

/// Exact search: every row's dot product with the query, split across threads.
public final class ExactSearch: VectorSearcher {
    public let matrix: VectorMatrix
    let pool: ThreadPool
    public init(_ matrix: VectorMatrix, threads: Int = ThreadPool.availableCores) {
        self.matrix = matrix; pool = ThreadPool.shared(threads: threads)
    }

    public func search(_ query: [Float], k: Int, allowed: ((Int) -> Bool)?) -> [(row: Int, score: Float)] {
        let n = matrix.count, d = matrix.dimension
        guard n > 0, k > 0 else { return [] }
        let parts = n < 4096 ? 1 : pool.threads
        var partial = [TopK](repeating: TopK(k), count: parts)
        let m = UnsafePointer(matrix.base)
        query.withUnsafeBufferPointer { q in
                partial.withUnsafeMutableBufferPointer { outRef in
                    let out = outRef
                    let body: (Int) -> Void = { p in
                        let lo = n * p / parts, hi = n * (p + 1) / parts
                        var top = TopK(k)
                        for r in lo..<hi {
                            if let allowed, !allowed(r) { continue }
                            let s = dotProduct(q.baseAddress!, m + r &* d, d)
                            if s > top.worst { top.push(s, Int32(r)) }
                        }
                        out[p] = top
                    }
                    if parts == 1 { body(0) } else { pool.dispatch(parts, body) }
                }
        }
        var top = TopK(k)
        for p in partial { for it in p.items { top.push(it.score, it.row) } }
        return top.sorted()
    }
}
