import Foundation
import Testing
@testable import TailorTokenizers

@Suite struct WordPieceTests {
    static let tokenizer = Result { try WordPieceTokenizer(directory: TestPaths.model("all-MiniLM-L6-v2")) }

    @Test func pairsMatchHuggingFaceTokenizers() throws {
        let tok = try Self.tokenizer.get()
        let cases = try TestPaths.fixture("wordpiece-pairs.json") as! [[String: Any]]
        for c in cases {
            let e = tok.encode(c["a"] as! String, c["b"] as! String, maxLength: c["max_length"] as! Int)
            #expect(e.ids == (c["ids"] as! [NSNumber]).map(\.intValue), "\(c["a"]!)")
            #expect(e.typeIDs == (c["type_ids"] as! [NSNumber]).map(\.intValue))
        }
    }

    @Test func vocabTxtLoadsLikeTokenizerJSON() throws {
        let json = try Self.tokenizer.get()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-vocab-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try TestPaths.model("all-MiniLM-L6-v2")
        for f in ["vocab.txt", "tokenizer_config.json"] { try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dir + "/" + f) }
        let txt = try WordPieceTokenizer(directory: dir)
        for s in ["Hello, World!", "naïve café", "unaffable 日本語 tokens"] {
            #expect(txt.encode(s, maxLength: 64) == json.encode(s, maxLength: 64))
        }
    }

    @Test func missingFilesAreAClearError() {
        #expect(throws: Error.self) { try WordPieceTokenizer(directory: "/nonexistent") }
    }
}
