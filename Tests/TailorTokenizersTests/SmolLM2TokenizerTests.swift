import Foundation
import Testing
import TailorFormats
@testable import TailorTokenizers

@Suite struct SmolLM2TokenizerTests {
    static let tokenizer: Result<Tokenizer, Error> = Result {
        try Tokenizer(gguf: GGUFFile(path: TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf")))
    }

    @Test func goldenHardStrings() throws {
        let tok = try Self.tokenizer.get()
        let golden = try TestPaths.goldenJSON("smollm2-tokenizer.json") as! [String: Any]
        let cases = golden["cases"] as! [[String: Any]]
        #expect(cases.count == 20)
        for c in cases {
            let text = c["text"] as! String
            let ids = (c["ids"] as! [NSNumber]).map(\.intValue)
            let got = tok.encode(text)
            #expect(got == ids, "ids of \(text.debugDescription)")
            #expect(tok.decode(got, special: true) == (c["decoded"] as! String))
        }
    }

    @Test func goldenPrompts() throws {
        let tok = try Self.tokenizer.get()
        let golden = try TestPaths.goldenJSON("smollm2-greedy.json") as! [String: Any]
        for p in golden["greedy"] as! [[String: Any]] {
            let ids = (p["prompt_ids"] as! [NSNumber]).map(\.intValue)
            #expect(tok.encode(p["text"] as! String) == ids, "prompt \(p["name"]!)")
        }
    }

    @Test func specialTokensAreTextWhenNotParsed() throws {
        let tok = try Self.tokenizer.get()
        let ids = tok.encode("<|im_start|>", parseSpecial: false)
        #expect(!ids.contains(1))
        #expect(tok.decode(ids) == "<|im_start|>")
        #expect(tok.endOfGeneration.contains(2))
        #expect(tok.bosID == 1 && tok.eosID == 2 && !tok.addBOS)
    }

    @Test func streamingDecodeHoldsBackPartialCharacters() throws {
        let tok = try Self.tokenizer.get()
        let text = "emoji 🎉🚀 日本語 naïve"
        var dec = StreamingDecoder(tokenizer: tok)
        var out = ""
        var sawPartial = false
        for id in tok.encode(text) {
            let piece = dec.push(id)
            #expect(!piece.contains("\u{FFFD}"))
            if piece.isEmpty { sawPartial = true }
            out += piece
        }
        out += dec.flush()
        #expect(out == text)
        #expect(sawPartial, "this text has characters split across tokens")
    }
}

@Suite struct PreTokenizerTests {
    @Test func splitsMatchPythonRegex() throws {
        let fixture = try TestPaths.fixture("pretokenizers.json") as! [String: [[String: Any]]]
        #expect(fixture.count == 5)
        for (name, cases) in fixture.sorted(by: { $0.key < $1.key }) {
            let pre = try #require(RulePreTokenizer(preName: name), "pre-tokenizer \(name)")
            var mismatches = 0
            for c in cases {
                let text = c["text"] as! String
                let expected = c["pieces"] as! [String]
                let got = pre.split(text)
                if got != expected {
                    mismatches += 1
                    if mismatches <= 3 { print("\(name): \(text.debugDescription)\n  expected \(expected)\n  got      \(got)") }
                }
            }
            print("pre-tokenizer \(name): \(cases.count - mismatches)/\(cases.count) identical")
            #expect(mismatches == 0, "\(name)")
        }
    }

    @Test func unknownPreTokenizerIsAnError() {
        #expect(RulePreTokenizer(preName: "no-such-thing") == nil)
        #expect(TokenizerError.unsupportedPreTokenizer("x").description.contains("supported"))
    }
}
