import Foundation
import Testing
import TailorFormats
import TailorTokenizers
@testable import TailorModels

/// Gemma 3 270M (SentencePiece tokenizer, sliding-window decoder) against llama.cpp
/// (fixture from scripts/reference/gemma3_llamacpp.py). llama.cpp quantizes activations to 8
/// bits, this engine computes in fp32, so logits agree to about 0.1–0.2: token ids must be
/// identical, greedy output identical up to the first step where llama.cpp's top-2 margin is
/// under 0.3, and teacher-forced top-1 agreement high.
@Suite(.serialized) struct Gemma3Tests {
    static let lm: Result<LanguageModel, Error> = Result {
        try LanguageModel(try TestPaths.model("gemma-3-270m-Q4_K_M.gguf"))
    }
    static func fixture() throws -> JSONValue { try JSONValue.parse(try TestPaths.fixtureText("gemma3-llamacpp.json")) }

    @Test func sentencePieceTokenizerMatchesLlamaCpp() throws {
        let tok = try Self.lm.get().tokenizer
        #expect(tok.isSentencePiece && tok.addBOS)
        var n = 0
        for c in try Self.fixture()["tokenizer"]!.array! {
            let text = c["text"]!.string!
            let ids = c["ids"]!.array!.map { $0.int! }
            let got = tok.encode(text)
            #expect(got == ids, "\(text.debugDescription)")
            if text != "", !text.contains("<start_of_turn>") {
                #expect(tok.decode(got) == text, "round trip \(text.debugDescription)")
            }
            n += 1
        }
        print("gemma3 tokenizer: \(n) strings compared with llama.cpp")
    }

    @Test func greedyMatchesLlamaCppAwayFromNearTies() throws {
        let lm = try Self.lm.get()
        for g in try Self.fixture()["greedy"]!.array! {
            let prompt = g["prompt_ids"]!.array!.map { $0.int! }
            let ref = g["ids"]!.array!.map { $0.int! }
            let margins = g["top2_margins"]!.array!.map { $0.double! }
            let upTo = margins.firstIndex { $0 < 0.3 } ?? ref.count
            let r = try lm.generator().generate(prompt: prompt, maxTokens: upTo, sampling: .greedy)
            print("gemma3 greedy: \(upTo) tokens compared")
            #expect(Array(r.tokens.prefix(upTo)) == Array(ref.prefix(min(upTo, r.tokens.count))), "\(g["text"]!.string!)")
        }
    }

    @Test func teacherForcedAgreesWithLlamaCpp() throws {
        let lm = try Self.lm.get()
        let forced = try Self.fixture()["forced"]!
        let ids = forced["ids"]!.array!.map { $0.int! }
        let logits = try lm.model.forward(ids, cache: lm.makeCache(maxTokens: 512), allLogits: true)
        let V = lm.model.vocabularySize
        var agree = 0, clear = 0, clearAgree = 0, maxDiff = 0.0
        let positions = forced["positions"]!.array!
        for (i, p) in positions.enumerated() {
            let top = p["top"]!.array!.map { ($0.array![0].int!, $0.array![1].double!) }
            let row = logits[(i * V)..<((i + 1) * V)]
            let best = row.indices.max { row[$0] < row[$1] }! - i * V
            if best == top[0].0 { agree += 1 }
            // Where llama.cpp's choice is clear (top-2 margin ≥ 0.7, above its 8-bit noise), ours must match.
            if top[0].1 - top[1].1 >= 0.7 {
                clear += 1
                if best == top[0].0 { clearAgree += 1 }
            }
            for (t, l) in top.prefix(3) { maxDiff = max(maxDiff, abs(Double(row[i * V + t]) - l)) }
        }
        print("gemma3 teacher-forced vs llama.cpp: top-1 \(agree)/\(positions.count); at clear positions \(clearAgree)/\(clear); max |Δlogit| over top-3 \(maxDiff)")
        #expect(clearAgree == clear)
        #expect(Double(agree) / Double(positions.count) >= 0.9)
        #expect(maxDiff < 1.0)
    }
}
