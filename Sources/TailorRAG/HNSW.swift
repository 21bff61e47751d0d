// HNSW: a layered proximity graph (Malkov & Yashunin, "Efficient and robust approximate nearest
// neighbor search using Hierarchical Navigable Small World graphs", 2016). Insertion follows
// the paper's Algorithm 1 with the neighbour-selection heuristic (Algorithm 4); distance is
// 1 − cosine on normalized rows. The graph is saved next to the collection and reused while
// the collection is unchanged; rows added since are inserted when it is loaded.
import Foundation
import Synchronization
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

// @unchecked Sendable: the graph is built under striped locks (and the entry lock), and read-only
// once shared; searches take their scratch from a locked pool; `efSearch` is set before sharing.
public final class HNSWIndex: VectorSearcher, @unchecked Sendable {
    public let matrix: VectorMatrix
    public let M: Int
    public let M0: Int
    public let efConstruction: Int
    public var efSearch = 64
    public var inserted: Int { insertedCount.load(ordering: .acquiring) }

    let n: Int
    let levels: UnsafeMutablePointer<UInt8>
    let links0: UnsafeMutablePointer<Int32>                 // n × M0
    let count0: UnsafeMutablePointer<UInt8>
    /// Per node with level ≥ 1: level × (1 + M) Int32s, a count then the neighbours, per level.
    let upper: UnsafeMutablePointer<UnsafeMutablePointer<Int32>?>
    var entry: Int32 = -1
    var maxLevel = -1
    var rng: UInt64
    let mult: Double
    /// Striped locks over nodes' neighbour lists, and one for the entry point.
    let stripes = 4096
    let locks: UnsafeMutablePointer<pthread_mutex_t>
    var globalLock = pthread_mutex_t()
    let insertedCount = Atomic<Int>(0)
    private var scratchPool: [Scratch] = []
    private let scratchLock = NSLock()

    /// Per-search state: a visited list (stamped, so it is never cleared) and buffers.
    final class Scratch {
        var visited: [UInt32]
        var stamp: UInt32 = 0
        var candidates = MinHeap()
        var results = MinHeap()
        var neighbourBuffer: [Int32]
        init(_ n: Int, _ m0: Int) { visited = [UInt32](repeating: 0, count: n); neighbourBuffer = [Int32](repeating: 0, count: m0) }
        func next() {
            stamp &+= 1
            if stamp == 0 { for i in visited.indices { visited[i] = 0 }; stamp = 1 }
        }
    }

    public init(_ matrix: VectorMatrix, M: Int = 16, efConstruction: Int = 200, seed: UInt64 = 100) {
        self.matrix = matrix
        self.M = M; M0 = 2 * M; self.efConstruction = efConstruction
        n = matrix.count
        levels = .allocate(capacity: max(1, n)); levels.initialize(repeating: 0, count: max(1, n))
        links0 = .allocate(capacity: max(1, n * M0)); links0.initialize(repeating: 0, count: max(1, n * M0))
        count0 = .allocate(capacity: max(1, n)); count0.initialize(repeating: 0, count: max(1, n))
        upper = .allocate(capacity: max(1, n)); upper.initialize(repeating: nil, count: max(1, n))
        locks = .allocate(capacity: stripes)
        for i in 0..<stripes { pthread_mutex_init(locks + i, nil) }
        pthread_mutex_init(&globalLock, nil)
        rng = seed
        mult = 1 / log(Double(M))
        // Levels are drawn up front, so that a node's upper lists exist before anyone links to it.
        for i in 0..<n { setLevel(i, randomLevel()) }
    }

    deinit {
        for i in 0..<n { upper[i]?.deallocate() }
        upper.deallocate(); levels.deallocate(); links0.deallocate(); count0.deallocate()
        for i in 0..<stripes { pthread_mutex_destroy(locks + i) }
        locks.deallocate()
    }

    func setLevel(_ i: Int, _ level: Int) {
        levels[i] = UInt8(level)
        upper[i]?.deallocate()
        upper[i] = nil
        if level > 0 {
            let p = UnsafeMutablePointer<Int32>.allocate(capacity: level * (1 + M))
            p.initialize(repeating: 0, count: level * (1 + M))
            upper[i] = p
        }
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

    @inline(__always) func lock(_ node: Int32) { pthread_mutex_lock(locks + Int(node) % stripes) }
    @inline(__always) func unlock(_ node: Int32) { pthread_mutex_unlock(locks + Int(node) % stripes) }

    /// Copies a node's neighbours at `level` into `buf` (under its lock); returns the count.
    @inline(__always) func readNeighbours(_ node: Int32, _ level: Int, into buf: UnsafeMutablePointer<Int32>) -> Int {
        lock(node); defer { unlock(node) }
        return neighboursUnlocked(node, level, into: buf)
    }

    @inline(__always) func neighboursUnlocked(_ node: Int32, _ level: Int, into buf: UnsafeMutablePointer<Int32>) -> Int {
        if level == 0 {
            let c = Int(count0[Int(node)])
            buf.update(from: links0 + Int(node) * M0, count: c)
            return c
        }
        let p = upper[Int(node)]! + (level - 1) * (1 + M)
        let c = Int(p[0])
        buf.update(from: p + 1, count: c)
        return c
    }

    /// Replaces a node's neighbours at `level` (caller holds its lock).
    func setNeighbours(_ node: Int32, _ level: Int, _ list: [Int32]) {
        if level == 0 {
            let b = links0 + Int(node) * M0
            for (i, x) in list.enumerated() { b[i] = x }
            count0[Int(node)] = UInt8(list.count)
        } else {
            let p = upper[Int(node)]! + (level - 1) * (1 + M)
            p[0] = Int32(list.count)
            for (i, x) in list.enumerated() { p[1 + i] = x }
        }
    }

    func scratch() -> Scratch {
        scratchLock.lock(); defer { scratchLock.unlock() }
        return scratchPool.popLast() ?? Scratch(n, M0)
    }
    func release(_ s: Scratch) { scratchLock.lock(); scratchPool.append(s); scratchLock.unlock() }

    /// Greedy descent through one layer from `ep` toward `q`.
    func greedy(_ q: UnsafePointer<Float>, _ ep: inout Int32, _ epDist: inout Float, level: Int, _ s: Scratch) {
        s.neighbourBuffer.withUnsafeMutableBufferPointer { buf in
            var changed = true
            while changed {
                changed = false
                let c = readNeighbours(ep, level, into: buf.baseAddress!)
                for i in 0..<c {
                    let nb = buf[i]
                    let d = dist(nb, q)
                    if d < epDist { epDist = d; ep = nb; changed = true }
                }
            }
        }
    }

    /// The paper's SEARCH-LAYER: the `ef` closest nodes found from `entries`, nearest first.
    func searchLayer(_ q: UnsafePointer<Float>, entries: [(Float, Int32)], ef: Int, level: Int, _ s: Scratch) -> [(Float, Int32)] {
        s.next()
        let stamp = s.stamp
        s.candidates.removeAll(); s.results.removeAll()
        for (d, e) in entries {
            s.visited[Int(e)] = stamp
            s.candidates.push(d, e); s.results.push(-d, e)
        }
        while s.results.count > ef { s.results.pop() }
        s.neighbourBuffer.withUnsafeMutableBufferPointer { buf in
            while !s.candidates.isEmpty {
                let (d, c) = s.candidates.pop()
                if d > -s.results.top.0 && s.results.count >= ef { break }
                let count = readNeighbours(c, level, into: buf.baseAddress!)
                for j in 0..<count {
                    let nb = buf[j]
                    let i = Int(nb)
                    if s.visited[i] == stamp { continue }
                    s.visited[i] = stamp
                    let dn = dist(nb, q)
                    if s.results.count < ef || dn < -s.results.top.0 {
                        s.candidates.push(dn, nb)
                        s.results.push(-dn, nb)
                        if s.results.count > ef { s.results.pop() }
                    }
                }
            }
        }
        return zip(s.results.keys, s.results.vals).map { (-$0.0, $0.1) }.sorted { $0.0 < $1.0 }
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

    /// Inserts row `node` (its level was drawn at init).
    func insert(_ node: Int32, _ s: Scratch) {
        let q = matrix.row(Int(node))
        let level = Int(levels[Int(node)])
        pthread_mutex_lock(&globalLock)
        var holdsGlobal = true
        if entry < 0 { entry = node; maxLevel = level; pthread_mutex_unlock(&globalLock); return }
        var ep = entry
        let top = maxLevel
        // Only an insertion that raises the top level keeps the global lock throughout.
        if level <= top { pthread_mutex_unlock(&globalLock); holdsGlobal = false }
        var epDist = dist(ep, q)
        if top > level {
            for lc in stride(from: top, to: level, by: -1) { greedy(q, &ep, &epDist, level: lc, s) }
        }
        var entries = [(epDist, ep)]
        var buf = [Int32](repeating: 0, count: M0)
        for lc in stride(from: min(level, top), through: 0, by: -1) {
            let found = searchLayer(q, entries: entries, ef: efConstruction, level: lc, s)
            let chosen = selectNeighbours(found, M)
            lock(node); setNeighbours(node, lc, chosen); unlock(node)
            let cap = lc == 0 ? M0 : M
            for nb in chosen {
                lock(nb)
                let c = buf.withUnsafeMutableBufferPointer { neighboursUnlocked(nb, lc, into: $0.baseAddress!) }
                var list = Array(buf[0..<c])
                if !list.contains(node) {
                    if list.count < cap { list.append(node); setNeighbours(nb, lc, list) }
                    else {
                        let pn = matrix.row(Int(nb))
                        var cands = list.map { (1 - dotProduct(matrix.row(Int($0)), pn, matrix.dimension), $0) }
                        cands.append((1 - dotProduct(q, pn, matrix.dimension), node))
                        cands.sort { $0.0 < $1.0 }
                        setNeighbours(nb, lc, selectNeighbours(cands, cap))
                    }
                }
                unlock(nb)
            }
            entries = found
        }
        if holdsGlobal {
            if level > maxLevel { maxLevel = level; entry = node }
            pthread_mutex_unlock(&globalLock)
        }
    }

    /// Inserts every row not yet in the graph, on `threads` threads.
    public func build(threads: Int = 1, progress: ((Int, Int) -> Void)? = nil) {
        let start = inserted
        guard start < n else { return }
        let done = Atomic<Int>(start)
        let progressLock = NSLock()
        let step = max(1000, n / 100)
        let body: (Int) -> Void = { i in
            let s = self.scratch()
            self.insert(Int32(start + i), s)
            self.release(s)
            let d = done.add(1, ordering: .relaxed).newValue
            if d % step == 0, let progress { progressLock.lock(); progress(d, self.n); progressLock.unlock() }
        }
        if threads <= 1 || n - start < 256 {
            for i in 0..<(n - start) { body(i) }
        } else {
            // The first rows go in one by one, so that the graph has a shape before threads share it.
            let serial = min(n - start, 256)
            for i in 0..<serial { body(i) }
            ThreadPool.shared(threads: threads).dispatch(n - start - serial) { body($0 + serial) }
        }
        insertedCount.store(n, ordering: .releasing)
    }

    public func search(_ query: [Float], k: Int, allowed: ((Int) -> Bool)?) -> [(row: Int, score: Float)] {
        guard entry >= 0, k > 0 else { return [] }
        let s = scratch()
        defer { release(s) }
        return query.withUnsafeBufferPointer { qb -> [(row: Int, score: Float)] in
            let q = qb.baseAddress!
            var ep = entry
            var epDist = dist(ep, q)
            for lc in stride(from: maxLevel, to: 0, by: -1) { greedy(q, &ep, &epDist, level: lc, s) }
            let total = inserted
            var ef = max(efSearch, k)
            while true {
                let found = searchLayer(q, entries: [(epDist, ep)], ef: ef, level: 0, s)
                let kept = allowed == nil ? found : found.filter { allowed!(Int($0.1)) }
                if kept.count >= k || ef >= total { return kept.prefix(k).map { (Int($0.1), 1 - $0.0) } }
                ef = min(total, ef * 4)
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
        let count = inserted
        matrix.ids[0..<count].withUnsafeBytes { out.append(contentsOf: $0) }
        out.append(UnsafeBufferPointer(start: levels, count: count))
        out.append(UnsafeBufferPointer(start: count0, count: count))
        out.append(UnsafeBufferPointer(start: links0, count: count * M0))
        for i in 0..<count where levels[i] > 0 {
            let p = upper[i]!
            for l in 0..<Int(levels[i]) {
                let b = p + l * (1 + M)
                out.append(UnsafeBufferPointer(start: b, count: 1 + Int(b[0])))
            }
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
            for i in 0..<n { idx.setLevel(i, Int(raw[off + i])) }; off += n
            for i in 0..<n { idx.count0[i] = raw[off + i]; if Int(raw[off + i]) > idx.M0 { return nil } }; off += n
            for i in 0..<(n * idx.M0) {
                let v = raw.loadUnaligned(fromByteOffset: off + i * 4, as: Int32.self)
                guard v >= 0 && Int(v) < max(n, 1) else { return nil }
                idx.links0[i] = v
            }
            off += n * idx.M0 * 4
            for i in 0..<n where idx.levels[i] > 0 {
                for l in 0..<Int(idx.levels[i]) {
                    guard let c = get(Int32.self), c >= 0, Int(c) <= idx.M, off + Int(c) * 4 <= raw.count else { return nil }
                    let list = (0..<Int(c)).map { raw.loadUnaligned(fromByteOffset: off + $0 * 4, as: Int32.self) }
                    guard list.allSatisfy({ $0 >= 0 && Int($0) < n }) else { return nil }
                    idx.setNeighbours(Int32(i), l + 1, list)
                    off += Int(c) * 4
                }
            }
            idx.entry = Int32(entry); idx.maxLevel = Int(maxLevel); idx.insertedCount.store(n, ordering: .releasing)
            guard n == 0 || (entry >= 0 && Int(entry) < n) else { return nil }
            let added = matrix.count - n
            idx.build(threads: ThreadPool.availableCores)
            return (idx, Int(gen), added)
        }.map { ($0.0, generation: $0.1, added: $0.2) }
    }
}
