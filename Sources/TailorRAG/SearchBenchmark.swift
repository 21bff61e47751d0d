// `tailor bench search`: ingest throughput, query latency (exact, HNSW, keyword) and HNSW
// recall@10 against exact search, at several collection sizes. The base vectors are real: a set
// of texts ingested through the whole pipeline (load, chunk, embed, store). Larger sizes repeat
// new points between pairs of them (plus a little noise), so that every size has the structure
// of real embeddings without exact duplicates; their texts repeat, for the keyword index.
import Foundation
import PostgresNIO
import TailorKernels
import TailorModels

public struct SearchBenchResult: Codable, Sendable {
    public var chunks: Int
    /// Chunks/s writing precomputed chunks and embeddings into the store (SQLite + FTS5).
    public var storeChunksPerSecond: Double
    public var loadVectorsSeconds: Double
    public var exactP50ms: Double
    public var exactP95ms: Double
    public var keywordP50ms: Double
    public var keywordP95ms: Double
    public var hnswBuildSeconds: Double
    public var hnswP50ms: Double
    public var hnswP95ms: Double
    public var hnswRecallAt10: Double
    public var efSearch: Int
    public var storeBytes: Int64
    /// "sqlite" or "postgresql".
    public var backend: String = "sqlite"
    /// PostgreSQL: the same queries sent as bare SQL (pgvector's own query, no retriever around
    /// it), HNSW p50/p95 in ms.
    public var rawHnswP50ms: Double? = nil
    public var rawHnswP95ms: Double? = nil
}

public enum SearchBenchmark {
    public static func percentile(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return 0 }
        return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
    }

    /// Deterministic standard normal numbers (SplitMix64 + Box–Muller).
    struct Gaussian {
        var state: UInt64
        mutating func uniform() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return (Double((z ^ (z >> 31)) >> 11) + 0.5) / Double(1 << 53)
        }
        mutating func next() -> Float { Float((-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())) }
    }

    /// Row i of a collection built from `base` (T real rows): row i itself for i < T; beyond,
    /// a new point between two real rows (weights 0.5–0.9 and the rest) plus a little noise,
    /// re-normalized — distinct points on the same manifold as the real embeddings.
    public static func vector(_ i: Int, base: VectorMatrix, sigma: Float = 0.01) -> [Float] {
        let T = base.count, d = base.dimension
        let a = base.row(i % T)
        guard i >= T else { return VectorMatrix.normalized((0..<d).map { a[$0] }) }
        var g = Gaussian(state: UInt64(i) &* 0x2545_F491_4F6C_DD1D)
        let b = base.row(Int(g.uniform() * Double(T)) % T)
        let w = Float(0.5 + 0.4 * g.uniform())
        var v = (0..<d).map { w * a[$0] + (1 - w) * b[$0] }
        for j in 0..<d { v[j] += sigma * g.next() }
        return VectorMatrix.normalized(v)
    }

    /// The benchmark's documents: one chunk each, a base text and a vector per row.
    static func batch(_ range: Range<Int>, baseTexts: [String], base: VectorMatrix) -> [Prepared] {
        range.map { j in
            let text = baseTexts[j % baseTexts.count]
            let doc = Document(path: "/bench/doc-\(j / 100).txt", key: "/bench/doc-\(j / 100).txt#\(j)", type: .text, blocks: [Block(.paragraph, text)])
            let chunk = Chunk(ordinal: 0, text: doc.text, start: 0, end: doc.text.unicodeScalars.count, headingPath: [], tokens: 0)
            return Prepared(document: doc, chunks: [chunk], vectors: [vector(j, base: base)])
        }
    }

    /// Writes the `n` chunks in transactions of 2000; the chunks stored per second.
    static func load(_ store: any CollectionStore, n: Int, baseTexts: [String], base: VectorMatrix,
                     progress: (String) -> Void) throws -> Double {
        let t0 = Date()
        var i = 0
        while i < n {
            let end = min(n, i + 2000)
            try store.write(batch(i..<end, baseTexts: baseTexts, base: base))
            i = end
            progress(String(format: "%d chunks: storing %d/%d in %@ (%.0f chunks/s)", n, i, n, store.backend, Double(i) / Date().timeIntervalSince(t0)))
        }
        return Double(n) / Date().timeIntervalSince(t0)
    }

    /// Builds a collection of `n` chunks in PostgreSQL and measures it: loading (documents and
    /// chunks written as by ingest, the HNSW index built after the load, as pgvector advises for
    /// bulk loads), exact and HNSW search through the store, HNSW recall@10 against exact, BM25,
    /// and pgvector's bare query for comparison.
    public static func runPostgres(n: Int, baseTexts: [String], base: VectorMatrix, queries: [[Float]], queryTexts: [String],
                                   embedderName: String, location: PostgresURL, efSearch: Int,
                                   progress: @escaping (String) -> Void) throws -> SearchBenchResult {
        let db = try PostgresCollections.shared(location)
        let name = "bench-search-\(n)"
        if try db.collectionNames().contains(name) { try db.dropCollection(name) }
        defer { try? db.dropCollection(name) }
        let store = try PostgresStore(database: db, name: name, create: true)
        try store.bind(embedderName: embedderName, dimension: base.dimension)
        try store.dropVectorIndex()
        let storeRate = try load(store, n: n, baseTexts: baseTexts, base: base, progress: progress)
        progress("\(n) chunks: building the HNSW index in PostgreSQL")
        let t2 = Date()
        try store.buildVectorIndex { share in progress(String(format: "%d chunks: building the HNSW index in PostgreSQL (%.0f%%)", n, 100 * share)) }
        let buildSeconds = Date().timeIntervalSince(t2)
        try db.withConnection { c in _ = try c.query("ANALYZE \(store.s).chunks") }
        var exactOptions = IndexOptions(), hnswOptions = IndexOptions()
        exactOptions.kind = .exact
        hnswOptions.kind = .hnsw; hnswOptions.efSearch = efSearch
        var exactTimes: [Double] = [], truth: [Set<Int64>] = []
        for (qi, q) in queries.enumerated() {
            let s = Date()
            let r = try store.vectorSearch(q, k: 10, filter: nil, options: exactOptions) ?? []
            exactTimes.append(Date().timeIntervalSince(s) * 1000)
            truth.append(Set(r.map(\.id)))
            if qi % 20 == 0 { progress("\(n) chunks: exact search \(qi)/\(queries.count)") }
        }
        var hTimes: [Double] = [], hit = 0
        for (qi, q) in queries.enumerated() {
            let s = Date()
            let r = try store.vectorSearch(q, k: 10, filter: nil, options: hnswOptions) ?? []
            hTimes.append(Date().timeIntervalSince(s) * 1000)
            hit += r.filter { truth[qi].contains($0.id) }.count
        }
        // pgvector's own query, as any client would send it.
        var raw: [Double] = []
        try db.withConnection { c in
            try c.query("SET hnsw.ef_search = \(efSearch)")
            for q in queries {
                var b = PostgresBindings(); b.append(q)
                let s = Date()
                _ = try c.query("SELECT id FROM \(store.s).chunks ORDER BY embedding <=> $1::float4[]::vector LIMIT 10", b)
                raw.append(Date().timeIntervalSince(s) * 1000)
            }
            try c.query("RESET hnsw.ef_search")
        }
        var kwTimes: [Double] = []
        for q in queryTexts {
            let s = Date()
            _ = try store.keywordSearch(q, limit: 10)
            kwTimes.append(Date().timeIntervalSince(s) * 1000)
        }
        let bytes = try store.stats().bytes
        var r = SearchBenchResult(
            chunks: n, storeChunksPerSecond: storeRate, loadVectorsSeconds: 0,
            exactP50ms: percentile(exactTimes, 0.5), exactP95ms: percentile(exactTimes, 0.95),
            keywordP50ms: percentile(kwTimes, 0.5), keywordP95ms: percentile(kwTimes, 0.95),
            hnswBuildSeconds: buildSeconds, hnswP50ms: percentile(hTimes, 0.5), hnswP95ms: percentile(hTimes, 0.95),
            hnswRecallAt10: Double(hit) / Double(max(1, truth.reduce(0) { $0 + $1.count })), efSearch: efSearch, storeBytes: bytes)
        r.backend = "postgresql"
        r.rawHnswP50ms = percentile(raw, 0.5); r.rawHnswP95ms = percentile(raw, 0.95)
        return r
    }

    /// Builds a collection of `n` chunks in `directory` and measures it.
    public static func run(n: Int, baseTexts: [String], base: VectorMatrix, queries: [[Float]], queryTexts: [String],
                           embedderName: String, directory: URL, efSearch: Int, threads: Int,
                           export: URL? = nil, progress: @escaping (String) -> Void) throws -> SearchBenchResult {
        try? FileManager.default.removeItem(at: directory)
        let store = try SQLiteStore(directory: directory, create: true)
        try store.bind(embedderName: embedderName, dimension: base.dimension)
        let storeRate = try load(store, n: n, baseTexts: baseTexts, base: base, progress: progress)
        // Load the vectors as a search would.
        let t1 = Date()
        let (ids, data, dim) = try store.vectors()
        let m = VectorMatrix(ids: ids, data: data, dimension: dim)
        let loadSeconds = Date().timeIntervalSince(t1)
        // Exact.
        let exact = ExactSearch(m, threads: threads)
        var exactTimes: [Double] = [], truth: [[Int]] = []
        for q in queries {
            let s = Date()
            let r = exact.search(q, k: 10, allowed: nil)
            exactTimes.append(Date().timeIntervalSince(s) * 1000)
            truth.append(r.map(\.row))
        }
        // Keyword.
        var kwTimes: [Double] = []
        for q in queryTexts {
            let s = Date()
            _ = try store.keywordSearch(q, limit: 10)
            kwTimes.append(Date().timeIntervalSince(s) * 1000)
        }
        // HNSW.
        let t2 = Date()
        let h = HNSWIndex(m)
        h.build(threads: threads) { d, total in progress(String(format: "%d chunks: HNSW %d/%d (%.0f s)", n, d, total, Date().timeIntervalSince(t2))) }
        let buildSeconds = Date().timeIntervalSince(t2)
        h.efSearch = efSearch
        var hTimes: [Double] = []
        var hit = 0
        for (qi, q) in queries.enumerated() {
            let s = Date()
            let r = h.search(q, k: 10, allowed: nil)
            hTimes.append(Date().timeIntervalSince(s) * 1000)
            let t = Set(truth[qi])
            hit += r.filter { t.contains($0.row) }.count
        }
        if let export {
            progress("\(n) chunks: exporting vectors for the peer benchmark")
            try NPYFile.write(rows: m.count, dimension: m.dimension, to: export.appendingPathComponent("vectors-\(n).npy")) { r, data in
                data.append(UnsafeBufferPointer(start: m.row(r), count: m.dimension))
            }
            try NPYFile.writeInt32(truth, to: export.appendingPathComponent("truth-\(n).npy"))
        }
        let bytes = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.fileSizeKey]))?
            .reduce(Int64(0)) { $0 + Int64((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) } ?? 0
        return SearchBenchResult(
            chunks: n, storeChunksPerSecond: storeRate, loadVectorsSeconds: loadSeconds,
            exactP50ms: percentile(exactTimes, 0.5), exactP95ms: percentile(exactTimes, 0.95),
            keywordP50ms: percentile(kwTimes, 0.5), keywordP95ms: percentile(kwTimes, 0.95),
            hnswBuildSeconds: buildSeconds, hnswP50ms: percentile(hTimes, 0.5), hnswP95ms: percentile(hTimes, 0.95),
            hnswRecallAt10: Double(hit) / Double(queries.count * 10), efSearch: efSearch, storeBytes: bytes)
    }
}

/// NumPy .npy files (version 1.0, little-endian), for handing vectors to peer benchmarks.
public enum NPYFile {
    static func header(_ descr: String, _ shape: String) -> Data {
        var h = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        while (10 + h.utf8.count + 1) % 64 != 0 { h += " " }
        h += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(h.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: Array(h.utf8))
        return d
    }

    /// Writes `rows` × `dimension` floats; `appendRow(r, &data)` appends row r's floats.
    public static func write(rows: Int, dimension: Int, to url: URL, appendRow: (Int, inout Data) -> Void) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: header("<f4", "(\(rows), \(dimension))")) else {
            throw RAGError.badInput("\(url.path): cannot create the file (is the folder writable?)")
        }
        let fh = try FileHandle(forWritingTo: url)
        defer { try? fh.close() }
        try fh.seekToEnd()
        var buf = Data()
        for r in 0..<rows {
            appendRow(r, &buf)
            if buf.count > 1 << 24 { try fh.write(contentsOf: buf); buf.removeAll(keepingCapacity: true) }
        }
        try fh.write(contentsOf: buf)
    }

    public static func write(_ rows: [[Float]], dimension: Int, to url: URL) throws {
        try write(rows: rows.count, dimension: dimension, to: url) { r, data in rows[r].withUnsafeBufferPointer { data.append($0) } }
    }

    public static func writeInt32(_ rows: [[Int]], to url: URL) throws {
        let d = rows.first?.count ?? 0
        var data = header("<i4", "(\(rows.count), \(d))")
        for r in rows { for x in r { withUnsafeBytes(of: Int32(x).littleEndian) { data.append(contentsOf: $0) } } }
        try data.write(to: url)
    }
}
