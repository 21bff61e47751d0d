import Foundation
import Testing
import TailorModels
import TailorTestSupport
@testable import TailorRAG

@Suite(.serialized) struct RetrievalTests {
    /// The fixture corpus ingested once with the real embedder.
    final class Corpus: @unchecked Sendable {
        let ws: Workspace
        let store: any CollectionStore
        let embedder: SentenceEmbedder
        init(_ backend: StoreBackend) throws {
            ws = try Workspace()
            embedder = try SharedEmbedder.get()
            store = try backend.make(ws)
            _ = try Ingestor(store: store, embedder: embedder, chunker: Chunker(maxTokens: 64, overlap: 16, countTokens: embedder.countTokens)).ingest([ws.docs.path])
        }
        static let sqlite = Result { try Corpus(.sqlite) }
        static let postgresql = Result { try Corpus(.postgresql) }
        static func shared(_ b: StoreBackend) throws -> Corpus { try (b == .sqlite ? sqlite : postgresql).get() }
    }

    func retriever(_ mode: RetrievalMode, _ backend: StoreBackend = .sqlite) throws -> (Retriever, Corpus) {
        let c = try Corpus.shared(backend)
        let r = try Retriever(store: c.store, embedder: c.embedder, defaults: RetrievalSettings(mode: mode))
        return (r, c)
    }

    @Test(arguments: RetrievalMode.allCases, StoreBackend.allCases)
    func findsTheRightPassage(mode: RetrievalMode, backend: StoreBackend) throws {
        let (r, c) = try retriever(mode, backend)
        let cases: [(String, String, String)] = [
            ("How often are hydraulic brakes bled with mineral oil?", "handbook.md", "bled every twelve months"),
            ("battery warranty charge cycles", "warranty.pdf", "800 charge cycles"),
            ("return an unridden bike refund", "faq.html", "refund the full price"),
            ("sintered brake pad price", "parts.csv", "BP-200"),
            ("motor stops assisting in cold weather", "tickets.jsonl", "firmware update 2.4"),
            ("torque wrench chain checker for new mechanics", "onboarding.docx", "torque wrench"),
        ]
        for (q, file, fact) in cases {
            let top = try #require(try r.retrieve(q, k: 3).first, "\(mode): no result for \(q)")
            #expect(top.chunk.path == c.ws.path(file), "\(mode): \(q) → \(top.chunk.path)")
            #expect(top.chunk.text.contains(fact), "\(mode): \(q) → \(top.chunk.text)")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func citationsPointAtTheSource(backend: StoreBackend) throws {
        let (r, c) = try retriever(.hybrid, backend)
        let pdf = try #require(try r.retrieve("batteries covered for charge cycles", k: 1).first)
        #expect((pdf.chunk.chunk.pageStart!...pdf.chunk.chunk.pageEnd!).contains(2) && pdf.chunk.text.contains("800 charge cycles"))
        #expect(pdf.chunk.location.hasPrefix("page"))
        let md = try #require(try r.retrieve("replace pads thinner than 1.5 millimetres", k: 1).first)
        #expect(md.chunk.location.hasSuffix("Brakes > Pad wear") || md.chunk.location.hasSuffix("Brakes"), "\(md.chunk.location)")
        // The offsets select the chunk's text from the document as loaded.
        let doc = try Loaders.load(c.ws.path("handbook.md"))[0]
        #expect(doc.text.scalarSlice(md.chunk.chunk.start, md.chunk.chunk.end) == md.chunk.text)
        let csv = try #require(try r.retrieve("organic brake pad", k: 1).first)
        #expect(csv.chunk.chunk.rowStart != nil)
    }

    @Test(arguments: StoreBackend.allCases)
    func filtersRestrictResults(backend: StoreBackend) throws {
        let (r, c) = try retriever(.hybrid, backend)
        for mode in RetrievalMode.allCases {
            let r = try Retriever(store: r.store, embedder: r.embedder, defaults: RetrievalSettings(mode: mode))
            let pdfOnly = try r.retrieve("warranty brakes returns", k: 10, filter: Filter(types: [.pdf]))
            #expect(!pdfOnly.isEmpty && pdfOnly.allSatisfy { $0.chunk.type == .pdf }, "\(mode)")
            let glob = try r.retrieve("brakes", k: 10, filter: try Filter.parse(["path=*.csv"]))
            #expect(!glob.isEmpty && glob.allSatisfy { $0.chunk.path == c.ws.path("parts.csv") }, "\(mode)")
            let meta = try r.retrieve("problem with the bike", k: 10, filter: try Filter.parse(["priority=high"]))
            #expect(meta.map(\.chunk.documentKey) == [c.ws.path("tickets.jsonl") + "#T-2"], "\(mode)")
            let none = try r.retrieve("brakes", k: 10, filter: try Filter.parse(["author=Nobody"]))
            #expect(none.isEmpty, "\(mode)")
        }
        #expect(throws: RAGError.self) { try Filter.parse(["type=exe"]) }
        #expect(throws: RAGError.self) { try Filter.parse(["nonsense"]) }
    }

    @Test(arguments: StoreBackend.allCases)
    func hybridFusesBothRankings(backend: StoreBackend) throws {
        let (r, _) = try retriever(.hybrid, backend)
        let results = try r.retrieve("chain replacement interval", k: 5)
        #expect(results.count == 5)
        for x in results {
            var expected = 0.0
            if let v = x.vectorRank { expected += 1 / (60 + Double(v)) }
            if let k = x.keywordRank { expected += 1 / (60 + Double(k)) }
            #expect(abs(x.score - expected) < 1e-12)
        }
        #expect(zip(results, results.dropFirst()).allSatisfy { $0.score >= $1.score })
        // Weighting one side reorders toward it.
        var s = r.defaults
        s.keywordWeight = 0
        let vectorOnly = try r.retrieve("chain replacement interval", k: 5, settings: s)
        #expect(vectorOnly.map(\.chunk.id) == (try r.retrieve("chain replacement interval", k: 5, settings: RetrievalSettings(mode: .vector))).map(\.chunk.id))
    }

    @Test(arguments: StoreBackend.allCases)
    func mmrDiversifies(backend: StoreBackend) throws {
        let (r, c) = try retriever(.vector, backend)
        let plain = try r.retrieve("brake pads", k: 4)
        var s = r.defaults
        s.mmrLambda = 0.3
        let diverse = try r.retrieve("brake pads", k: 4, settings: s)
        #expect(diverse.count == 4)
        #expect(diverse[0].chunk.id == plain[0].chunk.id, "the most relevant stays first")
        func redundancy(_ xs: [ScoredChunk]) throws -> Float {
            let v = try c.store.embeddings(xs.map(\.chunk.id))
            var worst: Float = -1
            for i in v.indices { for j in v.indices where j > i { worst = max(worst, SentenceEmbedderCos(v[i], v[j])) } }
            return worst
        }
        #expect(try redundancy(diverse) <= redundancy(plain) + 1e-6)
    }

    @Test func exactSearchMatchesBruteForce() {
        var rng = SystemRandomNumberGenerator()
        let n = 6000, d = 48
        let data = (0..<(n * d)).map { _ in Float.random(in: -1...1, using: &rng) }
        let m = VectorMatrix(ids: (0..<n).map(Int64.init), data: data, dimension: d)
        let q = VectorMatrix.normalized((0..<d).map { _ in Float.random(in: -1...1, using: &rng) })
        let got = ExactSearch(m, threads: 2).search(q, k: 10, allowed: nil)
        let brute = (0..<n).map { r in (r, (0..<d).reduce(Float(0)) { $0 + m.row(r)[$1] * q[$1] }) }.sorted { $0.1 > $1.1 }.prefix(10)
        #expect(got.map(\.row) == brute.map(\.0))
        let even = ExactSearch(m, threads: 2).search(q, k: 5, allowed: { $0 % 2 == 0 })
        #expect(even.allSatisfy { $0.row % 2 == 0 })
    }

    /// Clustered random vectors, like real embeddings (they are far from uniform).
    static func clustered(_ n: Int, _ d: Int, seed: UInt64) -> [Float] {
        var s = seed
        func rnd() -> Float { s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: s >> 11) % 2_000_001) / 1_000_000 - 1 }
        let centers = (0..<50).map { _ in (0..<d).map { _ in rnd() } }
        var out: [Float] = []
        for i in 0..<n { let c = centers[i % 50]; for j in 0..<d { out.append(c[j] + 0.35 * rnd()) } }
        return out
    }

    @Test func hnswRecallPersistenceAndIncrementalInsert() throws {
        let n = 8000, d = 64
        let all = Self.clustered(n + 200, d, seed: 7)
        let data = Array(all[0..<(n * d)])
        let m = VectorMatrix(ids: (0..<n).map { Int64($0 + 1) }, data: data, dimension: d)
        let h = HNSWIndex(m, M: 16, efConstruction: 100)
        h.build(threads: 2)
        let exact = ExactSearch(m, threads: 2)
        let queries = (0..<200).map { i in VectorMatrix.normalized(Array(all[((n + i) * d)..<((n + i + 1) * d)])) }
        func recall(_ idx: VectorSearcher) -> Double {
            var hit = 0
            for q in queries {
                let truth = Set(exact.search(q, k: 10, allowed: nil).map(\.row))
                hit += idx.search(q, k: 10, allowed: nil).filter { truth.contains($0.row) }.count
            }
            return Double(hit) / Double(queries.count * 10)
        }
        let r = recall(h)
        #expect(r >= 0.95, "HNSW recall@10 = \(r)")
        // Saved and loaded: the same graph, the same answers.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("v.hnsw")
        try h.write(to: file, generation: 3)
        let (loaded, gen, added) = try #require(HNSWIndex.load(from: file, matrix: m))
        #expect(gen == 3 && added == 0)
        for q in queries.prefix(20) { #expect(loaded.search(q, k: 10, allowed: nil).map(\.row) == h.search(q, k: 10, allowed: nil).map(\.row)) }
        // More rows since it was saved: they are inserted on load.
        let more = Self.clustered(1000, d, seed: 99)
        let m2 = VectorMatrix(ids: (0..<(n + 1000)).map { Int64($0 + 1) }, data: data + more, dimension: d)
        let (grown, _, added2) = try #require(HNSWIndex.load(from: file, matrix: m2))
        #expect(added2 == 1000 && grown.inserted == n + 1000)
        let probe = VectorMatrix.normalized(Array(more[(500 * d)..<(501 * d)]))
        #expect(grown.search(probe, k: 1, allowed: nil).first?.row == n + 500)
        // A collection that lost rows needs a rebuild: the saved graph is not used.
        let m3 = VectorMatrix(ids: (0..<(n - 1)).map { Int64($0 + 2) }, data: Array(data[d...]), dimension: d)
        #expect(HNSWIndex.load(from: file, matrix: m3) == nil)
        // A damaged file is not used either.
        var bytes = try Data(contentsOf: file)
        bytes.replaceSubrange(100..<140, with: Data(repeating: 0xFF, count: 40))
        try bytes.write(to: file)
        #expect(HNSWIndex.load(from: file, matrix: m) == nil)
    }

    @Test func vectorCacheIsUsedAndRefreshed() throws {
        let ws = try Workspace()
        let e = try SharedEmbedder.get()
        let store = try SQLiteStore(directory: ws.collection, create: true)
        let ing = try Ingestor(store: store, embedder: e, chunker: Chunker(maxTokens: 64, overlap: 16, countTokens: e.countTokens))
        _ = try ing.ingest([ws.path("handbook.md")])
        var index = IndexOptions()
        index.vectorCacheThreshold = 0
        let r = try Retriever(store: store, embedder: e, defaults: RetrievalSettings(mode: .vector), index: index)
        let first = try r.retrieve("brake fluid", k: 3).map(\.chunk.id)
        let gen = try store.generation()
        let cached = try #require(VectorMatrix.cached(at: r.vectorsURL!, generation: gen))
        #expect(cached.count == (try store.chunkCount()))
        let r2 = try Retriever(store: store, embedder: e, defaults: RetrievalSettings(mode: .vector), index: index)
        #expect(try r2.retrieve("brake fluid", k: 3).map(\.chunk.id) == first)
        // A change to the collection makes the cache stale; it is rebuilt with the new chunks.
        _ = try ing.ingest([ws.path("faq.html")])
        #expect(VectorMatrix.cached(at: r.vectorsURL!, generation: try store.generation()) == nil)
        let after = try r2.retrieve("return an unridden bike", k: 1)
        #expect(after.first?.chunk.path == ws.path("faq.html"))
        #expect(VectorMatrix.cached(at: r.vectorsURL!, generation: try store.generation())?.count == (try store.chunkCount()))
    }

    @Test func retrieverUsesAPersistedHNSWIndex() throws {
        let (r, c) = try retriever(.vector)
        let exact = try r.retrieve("chain wear", k: 3).map(\.chunk.id)
        var index = IndexOptions()
        index.kind = .hnsw
        let h = try Retriever(store: c.store, embedder: c.embedder, defaults: RetrievalSettings(mode: .vector), index: index)
        #expect(try h.retrieve("chain wear", k: 3).map(\.chunk.id) == exact, "on a tiny collection HNSW is exact")
        #expect(FileManager.default.fileExists(atPath: h.hnswURL!.path))
    }
}

func SentenceEmbedderCos(_ a: [Float], _ b: [Float]) -> Float { SentenceEmbedder.cosine(a, b) }
