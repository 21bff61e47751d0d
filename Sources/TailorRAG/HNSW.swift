// HNSW: a layered proximity graph (Malkov & Yashunin, "Efficient and robust approximate nearest
// neighbor search using Hierarchical Navigable Small World graphs", 2016). Insertion follows
// the paper's Algorithm 1 with the neighbour-selection heuristic (Algorithm 4); distance is
// 1 − cosine on normalized rows. The graph is saved next to the collection and reused while
// the collection is unchanged; rows added since are inserted when it is loaded.
import Foundation
import TailorKernels

struct MinHeap {
    var keys: [Float] = []
    var vals: [Int32] = []
    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var top: (Float, Int32) { (keys[0], vals[0]) }
    mutating func removeAll() { keys.removeAll(keepingCapacity: true); vals.removeAll(keepingCapacity: true) }

    mutating func push(_ k: Float, _ v: Int32) {
        keys.append(k); vals.append(v)
        var i = keys.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if keys[p] <= keys[i] { break }
            keys.swapAt(p, i); vals.swapAt(p, i); i = p
        }
    }

    @discardableResult mutating func pop() -> (Float, Int32) {
        let out = (keys[0], vals[0])
        let lk = keys.removeLast(), lv = vals.removeLast()
        if !keys.isEmpty {
            keys[0] = lk; vals[0] = lv
            var i = 0
            let n = keys.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && keys[l] < keys[m] { m = l }
                if r < n && keys[r] < keys[m] { m = r }
                if m == i { break }
                keys.swapAt(m, i); vals.swapAt(m, i); i = m
            }
        }
        return out
    }
}

public final class HNSWIndex: VectorSearcher, @unchecked Sendable {
    public let matrix: VectorMatrix
    public let M: Int
    public let M0: Int
    public let efConstruction: Int
    public var efSearch = 64
    public private(set) var inserted = 0

    var levels: [UInt8]
    var links0: [Int32]        // count × M0
    var count0: [UInt8]
    var upper: [[[Int32]]]     // node → level−1 → neighbours
    var entry: Int32 = -1
    var maxLevel = -1
    var visited: [UInt32]
    var stamp: UInt32 = 0
    var rng: UInt64
    let mult: Double

    public init(_ matrix: VectorMatrix, M: Int = 16, efConstruction: Int = 200, seed: UInt64 = 100) {
        self.matrix = matrix
        self.M = M; M0 = 2 * M; self.efConstruction = efConstruction
        let n = matrix.count
        levels = [UInt8](repeating: 0, count: n)
        links0 = [Int32](repeating: 0, count: n * 2 * M)
        count0 = [UInt8](repeating: 0, count: n)
        upper = [[[Int32]]](repeating: [], count: n)
        visited = [UInt32](repeating: 0, count: n)
        rng = seed
        mult = 1 / log(Double(M))
    }

    @inline(__always) func dist(_ a: Int32, _ q: UnsafePointer<Float>) -> Float {
        1 - dotProduct(matrix.row(Int(a)), q, matrix.dimension)
    }

    func randomLevel() -> Int {
        rng &+= 0x9E37_79B9_7F4A_7C15
        var z = rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = (Double(z >> 11) + 0.5) / Double(1 << 53)
        return min(Int(-log(u) * mult), 15)
    }

    func neighbours(_ node: Int32, _ level: Int) -> ArraySlice<Int32> {
        if level == 0 { let b = Int(node) * M0; return links0[b..<(b + Int(count0[Int(node)]))] }
        return upper[Int(node)][level - 1][...]
    }

    func setNeighbours(_ node: Int32, _ level: Int, _ list: [Int32]) {
        if level == 0 {
            let b = Int(node) * M0
            for (i, x) in list.enumerated() { links0[b + i] = x }
            count0[Int(node)] = UInt8(list.count)
        } else { upper[Int(node)][level - 1] = list }
    }

    func nextStamp() {
        stamp &+= 1
        if stamp == 0 { for i in visited.indices { visited[i] = 0 }; stamp = 1 }
    }

    /// The paper's SEARCH-LAYER: the `ef` closest nodes found from `entries`, as a max-heap
    /// (keys negated) of distances.
    func searchLayer(_ q: UnsafePointer<Float>, entries: [(Float, Int32)], ef: Int, level: Int) -> MinHeap {
        nextStamp()
        var candidates = MinHeap()
        var results = MinHeap()   // −distance: top is the farthest kept
        for (d, e) in entries {
            visited[Int(e)] = stamp
            candidates.push(d, e); results.push(-d, e)
        }
        while results.count > ef { results.pop() }
        while !candidates.isEmpty {
            let (d, c) = candidates.pop()
            if d > -results.top.0 && results.count >= ef { break }
            for nb in neighbours(c, level) {
                let i = Int(nb)
                if visited[i] == stamp { continue }
                visited[i] = stamp
                let dn = dist(nb, q)
                if results.count < ef || dn < -results.top.0 {
                    candidates.push(dn, nb)
                    results.push(-dn, nb)
                    if results.count > ef { results.pop() }
                }
            }
        }
        return results
    }

    /// The paper's heuristic: keep a candidate only if it is closer to the base than to every
    /// neighbour already kept (spreads links in all directions).
    func selectNeighbours(_ sortedCandidates: [(Float, Int32)], _ m: Int) -> [Int32] {
        if sortedCandidates.count <= m { return sortedCandidates.map(\.1) }
        var out: [Int32] = []
        out.reserveCapacity(m)
        for (d, c) in sortedCandidates {
            let pc = matrix.row(Int(c))
            var good = true
            for r in out where 1 - dotProduct(matrix.row(Int(r)), pc, matrix.dimension) < d { good = false; break }
            if good { out.append(c); if out.count == m { break } }
        }
        return out
    }

    static func ascending(_ h: MinHeap) -> [(Float, Int32)] {
        zip(h.keys, h.vals).map { (-$0.0, $0.1) }.sorted { $0.0 < $1.0 }
    }

    /// Inserts the next row of the matrix.
    public func insertNext() {
        let node = Int32(inserted)
        inserted += 1
        let q = matrix.row(Int(node))
        let level = randomLevel()
        levels[Int(node)] = UInt8(level)
        if level > 0 { upper[Int(node)] = [[Int32]](repeating: [], count: level) }
        guard entry >= 0 else { entry = node; maxLevel = level; return }
        var ep = entry
        var epDist = dist(ep, q)
        if maxLevel > level {
            for lc in stride(from: maxLevel, to: level, by: -1) {
                var changed = true
                while changed {
                    changed = false
                    for nb in neighbours(ep, lc) {
                        let d = dist(nb, q)
                        if d < epDist { epDist = d; ep = nb; changed = true }
                    }
                }
            }
        }
        var entries = [(epDist, ep)]
        for lc in stride(from: min(level, maxLevel), through: 0, by: -1) {
            let found = Self.ascending(searchLayer(q, entries: entries, ef: efConstruction, level: lc))
            let chosen = selectNeighbours(found, M)
            setNeighbours(node, lc, chosen)
            let cap = lc == 0 ? M0 : M
            for nb in chosen {
                var list = Array(neighbours(nb, lc))
                if list.count < cap { list.append(node); setNeighbours(nb, lc, list); continue }
                let pn = matrix.row(Int(nb))
                var cands = list.map { (1 - dotProduct(matrix.row(Int($0)), pn, matrix.dimension), $0) }
                cands.append((1 - dotProduct(q, pn, matrix.dimension), node))
                cands.sort { $0.0 < $1.0 }
                setNeighbours(nb, lc, selectNeighbours(cands, cap))
            }
            entries = found
        }
        if level > maxLevel { maxLevel = level; entry = node }
    }

    /// Inserts every row not yet in the graph.
    public func build(progress: ((Int, Int) -> Void)? = nil) {
        let n = matrix.count
        while inserted < n {
            insertNext()
            if inserted % 5000 == 0 { progress?(inserted, n) }
        }
    }

    public func search(_ query: [Float], k: Int, allowed: ((Int) -> Bool)?) -> [(row: Int, score: Float)] {
        guard entry >= 0, k > 0 else { return [] }
        return query.withUnsafeBufferPointer { qb -> [(row: Int, score: Float)] in
            let q = qb.baseAddress!
            var ep = entry
            var epDist = dist(ep, q)
            for lc in stride(from: maxLevel, to: 0, by: -1) {
                var changed = true
                while changed {
                    changed = false
                    for nb in neighbours(ep, lc) {
                        let d = dist(nb, q)
                        if d < epDist { epDist = d; ep = nb; changed = true }
                    }
                }
            }
            var ef = max(efSearch, k)
            while true {
                let found = Self.ascending(searchLayer(q, entries: [(epDist, ep)], ef: ef, level: 0))
                let kept = allowed == nil ? found : found.filter { allowed!(Int($0.1)) }
                if kept.count >= k || ef >= inserted { return kept.prefix(k).map { (Int($0.1), 1 - $0.0) } }
                ef = min(inserted, ef * 4)
            }
        }
    }

    // MARK: persistence

    static let magic: UInt64 = 0x3157_534E_4852_4C54  // "TLRHNSW1"

    /// Saves the graph with the chunk ids it covers and the store generation it was built at.
    public func write(to url: URL, generation: Int) throws {
        var out = Data()
        func put<T>(_ v: T) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        put(Self.magic); put(Int64(generation)); put(Int64(matrix.dimension)); put(Int64(M)); put(Int64(efConstruction))
        put(Int64(inserted)); put(Int64(entry)); put(Int64(maxLevel))
        matrix.ids[0..<inserted].withUnsafeBytes { out.append(contentsOf: $0) }
        levels[0..<inserted].withUnsafeBytes { out.append(contentsOf: $0) }
        count0[0..<inserted].withUnsafeBytes { out.append(contentsOf: $0) }
        links0[0..<(inserted * M0)].withUnsafeBytes { out.append(contentsOf: $0) }
        for i in 0..<inserted where levels[i] > 0 {
            for l in upper[i] { put(Int32(l.count)); l.withUnsafeBytes { out.append(contentsOf: $0) } }
        }
        let tmp = url.appendingPathExtension("tmp")
        try out.write(to: tmp)
        _ = try? FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: tmp, to: url)
    }

    /// Loads a saved graph for `matrix`; nil when there is none, it is damaged, or the
    /// collection lost chunks since (a rebuild is needed). Rows added since are inserted.
    public static func load(from url: URL, matrix: VectorMatrix) -> (HNSWIndex, generation: Int, added: Int)? {
        guard let d = try? Data(contentsOf: url, options: .mappedIfSafe), d.count >= 64 else { return nil }
        return d.withUnsafeBytes { raw -> (HNSWIndex, Int, Int)? in
            var off = 0
            func get<T>(_: T.Type) -> T? {
                guard off + MemoryLayout<T>.size <= raw.count else { return nil }
                defer { off += MemoryLayout<T>.size }
                return raw.loadUnaligned(fromByteOffset: off, as: T.self)
            }
            guard get(UInt64.self) == magic, let gen = get(Int64.self), let dim = get(Int64.self), let m = get(Int64.self),
                  let efc = get(Int64.self), let n = get(Int64.self).map(Int.init), let entry = get(Int64.self), let maxLevel = get(Int64.self),
                  dim == matrix.dimension, n <= matrix.count, m >= 2, m <= 127 else { return nil }
            let idx = HNSWIndex(matrix, M: Int(m), efConstruction: Int(efc))
            guard off + n * (8 + 2) + n * idx.M0 * 4 <= raw.count else { return nil }
            for i in 0..<n { if raw.loadUnaligned(fromByteOffset: off + i * 8, as: Int64.self) != matrix.ids[i] { return nil } }
            off += n * 8
            for i in 0..<n { idx.levels[i] = raw[off + i] }; off += n
            for i in 0..<n { idx.count0[i] = raw[off + i]; if Int(raw[off + i]) > idx.M0 { return nil } }; off += n
            for i in 0..<(n * idx.M0) {
                let v = raw.loadUnaligned(fromByteOffset: off + i * 4, as: Int32.self)
                guard v >= 0 && Int(v) < max(n, 1) else { return nil }
                idx.links0[i] = v
            }
            off += n * idx.M0 * 4
            for i in 0..<n where idx.levels[i] > 0 {
                var lists: [[Int32]] = []
                for _ in 0..<Int(idx.levels[i]) {
                    guard let c = get(Int32.self), c >= 0, c <= idx.M, off + Int(c) * 4 <= raw.count else { return nil }
                    lists.append((0..<Int(c)).map { raw.loadUnaligned(fromByteOffset: off + $0 * 4, as: Int32.self) })
                    off += Int(c) * 4
                }
                idx.upper[i] = lists
            }
            idx.entry = Int32(entry); idx.maxLevel = Int(maxLevel); idx.inserted = n
            guard n == 0 || (entry >= 0 && Int(entry) < n) else { return nil }
            let added = matrix.count - n
            idx.build()
            return (idx, Int(gen), added)
        }.map { ($0.0, generation: $0.1, added: $0.2) }
    }
}
