import Foundation
import Testing
import TailorModels
import TailorTestSupport
@testable import TailorRAG

@Suite struct ChunkerTests {
    /// Words as tokens: easy to reason about in the small cases.
    static func words(_ s: String) -> Int { s.split(whereSeparator: \.isWhitespace).count }

    /// Invariants every chunking must keep.
    func checkInvariants(_ d: Document, _ chunks: [Chunk], _ chunker: Chunker) {
        var covered = [Bool](repeating: false, count: d.text.unicodeScalars.count)
        for c in chunks {
            #expect(d.text.scalarSlice(c.start, c.end) == c.text, "a chunk is an exact span")
            #expect(chunker.countTokens(c.contextualText) <= chunker.maxTokens + 2, "chunk \(c.ordinal) has \(chunker.countTokens(c.contextualText)) tokens")
            for i in c.start..<c.end { covered[i] = true }
        }
        let scalars = Array(d.text.unicodeScalars)
        let missed = covered.indices.filter { !covered[$0] && !scalars[$0].properties.isWhitespace }
        #expect(missed.isEmpty, "every character is in some chunk; missed \(missed.count)")
        #expect(chunks.map(\.ordinal) == Array(chunks.indices))
    }

    @Test func sentenceSplitting() {
        let t = "Dr. Smith arrived at 5 p.m. on Friday. He said: \"It works!\" Then he left. e.g. this stays. Values like 1.5 mm stay too. Last one"
        let u = Array(t.unicodeScalars)
        let spans = Chunker.sentences(u, 0, u.count).map { t.scalarSlice($0.0, $0.1) }
        #expect(spans == ["Dr. Smith arrived at 5 p.m. on Friday.", "He said: \"It works!\"", "Then he left. e.g. this stays.",
                          "Values like 1.5 mm stay too.", "Last one"])
    }

    @Test func smallSectionsShareAChunkAndBigOnesSplitBySentence() {
        var blocks: [Block] = [Block(.heading, "Guide", headingPath: ["Guide"])]
        blocks.append(Block(.paragraph, "Short intro here.", headingPath: ["Guide"]))
        blocks.append(Block(.heading, "Long", headingPath: ["Guide", "Long"]))
        let sentences = (1...12).map { "Sentence number \($0) has exactly seven words." }
        blocks.append(Block(.paragraph, sentences.joined(separator: " "), headingPath: ["Guide", "Long"]))
        let d = Document(path: "/x.md", type: .markdown, blocks: blocks)
        let chunker = Chunker(maxTokens: 30, overlap: 8, countTokens: Self.words)
        let chunks = chunker.chunk(d)
        checkInvariants(d, chunks, chunker)
        #expect(chunks[0].text == "Guide\n\nShort intro here.", "a section that does not fit starts a new chunk")
        #expect(chunks[0].headingPath == ["Guide"])
        #expect(chunks[1].text.hasPrefix("Long\n\nSentence number 1 "), "a heading starts the chunk of its section")
        // The long paragraph is cut between sentences, with one sentence (7 words ≤ 8) of overlap.
        for c in chunks.dropFirst() {
            #expect(c.headingPath == ["Guide", "Long"])
            #expect(c.text.hasSuffix("words."))
        }
        for c in chunks.dropFirst(2) {
            #expect(c.text.hasPrefix("Sentence number"))
            #expect(c.contextualText.hasPrefix("Guide > Long\n"))
        }
        for (a, b) in zip(chunks.dropFirst(), chunks.dropFirst(2)) {
            let lastOfA = a.text.components(separatedBy: ". ").last!
            #expect(b.text.hasPrefix(lastOfA.hasSuffix(".") ? String(lastOfA) : lastOfA + "."), "consecutive chunks overlap by a sentence")
            #expect(b.start < a.end)
        }
    }

    @Test func overlongSentenceBecomesWordWindows() {
        let long = (1...100).map { "w\($0)" }.joined(separator: " ")
        let d = Document(path: "/x.txt", type: .text, blocks: [Block(.paragraph, long)])
        let chunker = Chunker(maxTokens: 16, overlap: 0, countTokens: Self.words)
        let chunks = chunker.chunk(d)
        checkInvariants(d, chunks, chunker)
        #expect(chunks.count == 7)
        #expect(chunks.allSatisfy { Self.words($0.text) <= 16 })
    }

    @Test func rowsAndPagesAreRecorded() {
        let rows = (1...40).map { Block(.row, "item: part \($0); price: \($0) euro", row: $0) }
        let d = Document(path: "/p.csv", type: .csv, blocks: rows)
        let chunker = Chunker(maxTokens: 30, overlap: 0, countTokens: Self.words)
        let chunks = chunker.chunk(d)
        checkInvariants(d, chunks, chunker)
        #expect(chunks.first?.rowStart == 1)
        #expect(chunks.last?.rowEnd == 40)
        for (a, b) in zip(chunks, chunks.dropFirst()) { #expect(b.rowStart == a.rowEnd! + 1) }
        #expect(chunks[0].location == "rows 1–\(chunks[0].rowEnd!)")
        let pages = Document(path: "/d.pdf", type: .pdf, blocks: [Block(.paragraph, "one two", page: 1), Block(.paragraph, "three four", page: 2)])
        let pc = Chunker(maxTokens: 30, overlap: 0, countTokens: Self.words).chunk(pages)
        #expect(pc.count == 1 && pc[0].pageStart == 1 && pc[0].pageEnd == 2 && pc[0].location == "pages 1–2")
    }

    @Test func realDocumentsWithTheEmbeddersTokens() throws {
        let e = try SentenceEmbedder(TestPaths.model("all-MiniLM-L6-v2"))
        #expect(e.countTokens("Hello world") == 2)
        #expect(e.maxTokens == 256)
        let chunker = Chunker(maxTokens: 48, overlap: 12, countTokens: e.countTokens)
        for name in ["handbook.md", "faq.html", "warranty.pdf", "onboarding.docx", "parts.csv"] {
            for d in try Loaders.load(try LoaderTests.fixture(name)) {
                let chunks = chunker.chunk(d)
                #expect(!chunks.isEmpty, "\(name)")
                checkInvariants(d, chunks, chunker)
            }
        }
        // Unicode offsets: scalars, as Python counts them.
        let d = Document(path: "/u.txt", type: .text, blocks: [Block(.paragraph, "Crème brûlée 🍮 is a dessert."), Block(.paragraph, "Naïve café.")])
        let c = Chunker(maxTokens: 8, overlap: 0, countTokens: e.countTokens).chunk(d)
        checkInvariants(d, c, Chunker(maxTokens: 8, overlap: 0, countTokens: e.countTokens))
        #expect(c.last?.end == 41)
    }
}
