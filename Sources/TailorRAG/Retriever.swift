// Retrieval: vector search (exact or HNSW, or the store's own index), BM25 keyword search (the
// store's keyword index: SQLite FTS5 or PostgreSQL full-text search), and hybrid
// fusion by reciprocal rank (Cormack et al. 2009, k = 60), with metadata filters and optional
// maximal-marginal-relevance diversification (Carbonell & Goldstein 1998).
import Foundation
import Synchronization
import TailorKernels
import TailorModels

public struct ScoredChunk: Sendable {
    public var chunk: StoredChunk
    /// The mode's score: cosine (vector), BM25 (keyword), or fused reciprocal-rank score (hybrid).
    public var score: Double
    public var vectorRank: Int?
    public var keywordRank: Int?
}

public enum RetrievalMode: String, Sendable, CaseIterable, Codable { case vector, keyword, hybrid }

/// Which chunks may be returned: any of the path globs, any of the types, and every metadata field.
public struct Filter: Sendable, Equatable {
    public var paths: [String] = []
    public var types: [DocumentType] = []
    public var metadata: [String: String] = [:]
    public init(paths: [String] = [], types: [DocumentType] = [], metadata: [String: String] = [:]) {
        self.paths = paths; self.types = types; self.metadata = metadata
    }

    public var isEmpty: Bool { paths.isEmpty && types.isEmpty && metadata.isEmpty }

    /// Parses `path=GLOB`, `type=pdf`, `FIELD=VALUE` (VALUE may hold * and ? wildcards).
    public static func parse(_ items: [String]) throws -> Filter {
        var f = Filter()
        for item in items {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw RAGError.badFilter("'\(item)': write FIELD=VALUE, e.g. path=docs/*.md, type=pdf, author=Ada")
            }
            let k = String(item[..<eq]).trimmingCharacters(in: .whitespaces), v = String(item[item.index(after: eq)...])
            switch k {
            case "path": f.paths.append(v)
            case "type":
                guard let t = DocumentType(rawValue: v.lowercased()) else {
                    throw RAGError.badFilter("type '\(v)': one of \(DocumentType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                f.types.append(t)
            default: f.metadata[k] = v
            }
        }
        return f
    }

}

/// How one search runs: passed with each call, so one retriever serves many requests.
public struct RetrievalSettings: Sendable, Equatable {
    public var mode: RetrievalMode = .hybrid
    public var vectorWeight = 1.0
    public var keywordWeight = 1.0
    /// Reciprocal rank fusion constant.
    public var rrfK = 60.0
    /// Candidates each retriever contributes before fusion (at least k).
    public var candidates = 100
    /// MMR trade-off (1 = relevance only, 0 = diversity only); nil disables MMR.
    public var mmrLambda: Double? = nil

    public init(mode: RetrievalMode = .hybrid) { self.mode = mode }
}

/// How a retriever builds and keeps its vector index: fixed when it is made.
public struct IndexOptions: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case auto, exact, hnsw }
    public var kind: Kind = .auto
    /// Collections with at least this many chunks use HNSW under `.auto`.
    public var hnswThreshold = 50_000
    public var efSearch = 64
    /// Collections with at least this many chunks keep a mapped vector file (vectors.f32).
    public var vectorCacheThreshold = 20_000
    public var threads = ThreadPool.availableCores
    /// Called while an HNSW graph is built (rows done, rows in all).
    public var progress: (@Sendable (Int, Int) -> Void)? = nil

    public init() {}
}

// @unchecked Sendable: its configuration is immutable, the store and embedder are safe to share,
// and the loaded index is one immutable value swapped under a lock.
public final class Retriever: @unchecked Sendable {
    public let store: any CollectionStore
    public let embedder: any Embedder
    /// The settings of a search that gives none.
    public let defaults: RetrievalSettings
    public let indexOptions: IndexOptions

    /// The vectors and search structure of one generation of the collection.
    struct LoadedIndex: Sendable {
        let generation: Int
        let matrix: VectorMatrix
        let searcher: any VectorSearcher
        let rowOfID: [Int64: Int]
    }
    private let loaded = Mutex<LoadedIndex?>(nil)
    /// Held while an index is being loaded or built, so concurrent first searches build it once.
    private let building = NSLock()

    public init(store: any CollectionStore, embedder: any Embedder, defaults: RetrievalSettings = RetrievalSettings(),
                index: IndexOptions = IndexOptions()) throws {
        self.store = store
        self.embedder = embedder
        self.defaults = defaults
        self.indexOptions = index
        if let (n, d) = try store.embedder(), n != embedder.name || d != embedder.dimension {
            throw RAGError.modelMismatch(collection: store.name, built: n, requested: embedder.name)
        }
    }

    /// Where the HNSW graph and the mapped vectors of a store without its own index are kept.
    public var hnswURL: URL? { store.cacheDirectory?.appendingPathComponent("vectors.hnsw") }
    public var vectorsURL: URL? { store.cacheDirectory?.appendingPathComponent("vectors.f32") }

    /// Loads (or refreshes after the collection changed) the vectors and the search structure.
    public func prepareIndex() throws {
        guard store.cacheDirectory != nil else { return }   // the store searches its vectors itself
        _ = try currentIndex()
    }

    func currentIndex() throws -> LoadedIndex {
        let gen = try store.generation()
        if let l = loaded.withLock({ $0 }), l.generation == gen { return l }
        building.lock()
        defer { building.unlock() }
        if let l = loaded.withLock({ $0 }), l.generation == gen { return l }
        let o = indexOptions
        let m: VectorMatrix
        if let url = vectorsURL, let cached = VectorMatrix.cached(at: url, generation: gen) { m = cached }
        else {
            let (ids, data, dim) = try store.vectors()
            m = VectorMatrix(ids: ids, data: data, dimension: dim)
            // Large collections keep a mapped copy of their vectors: the next search opens it at once.
            if ids.count >= o.vectorCacheThreshold, let url = vectorsURL { try? m.writeCache(to: url, generation: gen) }
        }
        let ids = m.ids
        let rowOfID = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($0.element, $0.offset) })
        let searcher: any VectorSearcher
        let useHNSW = o.kind == .hnsw || (o.kind == .auto && ids.count >= o.hnswThreshold)
        if useHNSW {
            if let url = hnswURL, let (h, savedGen, added) = HNSWIndex.load(from: url, matrix: m) {
                if added > 0 || savedGen != gen { try? h.write(to: url, generation: gen) }
                h.efSearch = o.efSearch
                searcher = h
            } else {
                let h = HNSWIndex(m)
                h.build(threads: o.threads, progress: o.progress)
                h.efSearch = o.efSearch
                if let url = hnswURL { try? h.write(to: url, generation: gen) }
                searcher = h
            }
        } else {
            searcher = ExactSearch(m, threads: o.threads)
        }
        let l = LoadedIndex(generation: gen, matrix: m, searcher: searcher, rowOfID: rowOfID)
        loaded.withLock { $0 = l }
        return l
    }

    public func embedQuery(_ query: String) throws -> [Float] {
        VectorMatrix.normalized(try embedder.embed([query])[0])
    }

    /// The `k` best chunks for `query` under `settings` (default: the retriever's), best first.
    public func retrieve(_ query: String, k: Int, filter: Filter? = nil, settings: RetrievalSettings? = nil) throws -> [ScoredChunk] {
        let settings = settings ?? defaults
        let q = settings.mode == .keyword && settings.mmrLambda == nil ? [] : try embedQuery(query)
        return try retrieve(query, vector: q, k: k, filter: filter, settings: settings)
    }

    /// As `retrieve(_:k:filter:settings:)` with the query embedding already computed.
    public func retrieve(_ query: String, vector q: [Float], k: Int, filter: Filter?, settings: RetrievalSettings? = nil) throws -> [ScoredChunk] {
        guard k > 0 else { return [] }
        let s = settings ?? defaults
        let (mode, mmrLambda, candidates, rrfK) = (s.mode, s.mmrLambda, s.candidates, s.rrfK)
        let (vectorWeight, keywordWeight) = (s.vectorWeight, s.keywordWeight)
        let filter = filter?.isEmpty == true ? nil : filter
        let pool = mmrLambda == nil ? k : max(k * 4, 20)
        let n = max(candidates, pool)
        var vec: [(id: Int64, score: Double)] = []
        var kw: [(id: Int64, score: Double)] = []
        if mode != .keyword { vec = try vectorSearch(q, k: mode == .vector ? pool : n, filter: filter) }
        if mode != .vector { kw = try store.keywordSearch(query, limit: mode == .keyword ? pool : n, filter: filter) }
        var fused: [(id: Int64, score: Double, v: Int?, w: Int?)]
        switch mode {
        case .vector: fused = vec.enumerated().map { ($0.element.id, $0.element.score, $0.offset + 1, nil) }
        case .keyword: fused = kw.enumerated().map { ($0.element.id, $0.element.score, nil, $0.offset + 1) }
        case .hybrid:
            var score: [Int64: Double] = [:], vr: [Int64: Int] = [:], kr: [Int64: Int] = [:]
            for (r, x) in vec.enumerated() { score[x.id, default: 0] += vectorWeight / (rrfK + Double(r + 1)); vr[x.id] = r + 1 }
            for (r, x) in kw.enumerated() { score[x.id, default: 0] += keywordWeight / (rrfK + Double(r + 1)); kr[x.id] = r + 1 }
            fused = score.map { ($0.key, $0.value, vr[$0.key], kr[$0.key]) }
            // Ties broken by the better single rank, then by id, so results are stable.
            fused.sort { a, b in
                if a.score != b.score { return a.score > b.score }
                let ra = min(a.v ?? .max, a.w ?? .max), rb = min(b.v ?? .max, b.w ?? .max)
                return ra != rb ? ra < rb : a.id < b.id
            }
        }
        fused = Array(fused.prefix(pool))
        if let lambda = mmrLambda, fused.count > 1 {
            fused = mmr(fused, vectors: try store.embeddings(fused.map(\.id)).map(VectorMatrix.normalized), query: q, k: k, lambda: lambda)
        }
        fused = Array(fused.prefix(k))
        let chunks = try store.chunks(fused.map(\.id))
        let byID = Dictionary(uniqueKeysWithValues: chunks.map { ($0.id, $0) })
        return fused.compactMap { f in byID[f.id].map { ScoredChunk(chunk: $0, score: f.score, vectorRank: f.v, keywordRank: f.w) } }
    }

    func vectorSearch(_ q: [Float], k: Int, filter: Filter?) throws -> [(id: Int64, score: Double)] {
        if let found = try store.vectorSearch(q, k: k, filter: filter, options: indexOptions) { return found }
        let index = try currentIndex()
        let m = index.matrix, s = index.searcher, rowOfID = index.rowOfID
        guard m.count > 0 else { return [] }
        var allowed: ((Int) -> Bool)? = nil
        if let filter {
            let ids = try store.chunkIDs(matching: filter)
            var mask = [Bool](repeating: false, count: m.count)
            for id in ids { if let r = rowOfID[id] { mask[r] = true } }
            allowed = { mask[$0] }
            // A narrow filter is faster (and exact) as a scan of the allowed rows.
            if s is HNSWIndex && ids.count < m.count / 20 {
                return ExactSearch(m, threads: indexOptions.threads).search(q, k: k, allowed: allowed).map { (m.ids[$0.row], Double($0.score)) }
            }
        }
        return s.search(q, k: k, allowed: allowed).map { (m.ids[$0.row], Double($0.score)) }
    }

    /// Maximal marginal relevance over `items` with their (normalized) embeddings.
    func mmr(_ items: [(id: Int64, score: Double, v: Int?, w: Int?)], vectors: [[Float]], query q: [Float], k: Int,
             lambda: Double) -> [(id: Int64, score: Double, v: Int?, w: Int?)] {
        func dot(_ a: [Float], _ b: [Float]) -> Double {
            guard a.count == b.count, !a.isEmpty else { return 0 }
            return a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in Double(dotProduct(x.baseAddress!, y.baseAddress!, a.count)) } }
        }
        let rel = vectors.map { dot($0, q) }
        var chosen: [Int] = [], left = Array(items.indices)
        while chosen.count < k && !left.isEmpty {
            var best = left[0], bestScore = -Double.infinity
            for i in left {
                var maxSim = 0.0
                for j in chosen { maxSim = max(maxSim, dot(vectors[i], vectors[j])) }
                let s = lambda * rel[i] - (1 - lambda) * maxSim
                if s > bestScore { bestScore = s; best = i }
            }
            chosen.append(best)
            left.removeAll { $0 == best }
        }
        return chosen.map { items[$0] }
    }

    /// Lucene's English stop words (as bm25s and Elasticsearch use them).
    static var stopWords: Set<String> { KeywordQuery.stopWords }
}
