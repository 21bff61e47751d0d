import Foundation
import Testing
import TailorFormats
import TailorModels
import TailorTestSupport
@testable import TailorTuning

@Suite struct DatasetTests {
    func write(_ text: String) throws -> String {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("train-\(UUID().uuidString).jsonl")
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u.path
    }

    @Test func formatsAndErrors() throws {
        let p = try write("""
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
            {"prompt": "2+2=", "completion": "4"}
            {"instruction": "Translate", "input": "chat", "output": "cat"}

            {"text": "Plain document text."}
            """)
        defer { try? FileManager.default.removeItem(atPath: p) }
        let ex = try TrainingExample.load(p)
        #expect(ex == [.chat([.user("Hi"), .assistant("Hello!")]), .completion(prompt: "2+2=", completion: "4"),
                       .completion(prompt: "Translate\n\nchat", completion: "cat"), .text("Plain document text.")])
        let cases: [(String, String)] = [
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}", ":1: no assistant message"),
            ("{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}", ":1: messages[0].role is \"bot\""),
            ("{\"text\": \"ok\"}\n{\"prompt\": \"p\"}", ":2: \"completion\" must be a non-empty string"),
            ("{\"question\": \"q\"}", ":1: unknown format (fields: question)"),
            ("{\"text\": \"ok\"}\n{broken", ":2: not valid JSON"),
        ]
        for (text, expected) in cases {
            let f = try write(text)
            defer { try? FileManager.default.removeItem(atPath: f) }
            do { _ = try TrainingExample.load(f); Issue.record("should fail: \(text)") }
            catch let e as DatasetError { #expect(e.description.hasPrefix(f + expected), "\(e)") }
        }
    }

    @Test func chatTemplateMasksAllButAssistantTurns() throws {
        let lm = try LanguageModel(TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"), threads: 1)
        let f = ExampleFormatter(model: lm)
        let msgs: [ChatMessage] = [.system("Be brief."), .user("What is 2+2?"), .assistant("4."), .user("And 3+3?"), .assistant("6.")]
        let t = try f.tokenize(.chat(msgs))
        // The ids are exactly what inference would see for the whole conversation.
        let whole = lm.encodeChat(try lm.chatTemplate.render(msgs, addGenerationPrompt: false))
        #expect(t.ids == whole)
        // Trained: each answer and its end-of-turn token; nothing else.
        let trainedIDs = t.ids.indices.filter { t.trained[$0] }.map { t.ids[$0] }
        #expect(trainedIDs == lm.tokenizer.encode("4.<|im_end|>6.<|im_end|>", addSpecial: false, parseSpecial: true))
        #expect(trainedIDs.filter { lm.tokenizer.endOfGeneration.contains($0) }.count == 2, "the end-of-turn token is trained")
        #expect(t.targets.count == t.ids.count - 1)
        #expect(t.targets.filter { $0 >= 0 }.count == t.trainedCount)
        // A prompt/completion pair is a one-turn chat; plain text trains everything but BOS.
        let c = try f.tokenize(.completion(prompt: "2+2=", completion: "4"))
        #expect(c.ids.indices.filter { c.trained[$0] }.map { c.ids[$0] } == lm.tokenizer.encode("4<|im_end|>", addSpecial: false, parseSpecial: true))
        let p = try f.tokenize(.text("Some text."))
        #expect(p.trainedCount == p.ids.count - (lm.tokenizer.addBOS ? 1 : 0))
        #expect(p.ids.last == lm.tokenizer.eosID)
    }
}

@Suite struct DataSplitTests {
    @Test func seededHoldOutIsDisjointAndComplete() {
        let items = Array(0..<100)
        let a = DataSplit.holdOut(items, fraction: 0.1, seed: 42)
        let b = DataSplit.holdOut(items, fraction: 0.1, seed: 42)
        #expect(a.validation.count == 10 && a.train.count == 90 && a.note == nil)
        #expect(a.train == b.train && a.validation == b.validation, "the same seed gives the same split")
        #expect(Set(a.train).isDisjoint(with: a.validation) && Set(a.train + a.validation) == Set(items))
        #expect(DataSplit.holdOut(items, fraction: 0.1, seed: 7).validation != a.validation)
        let few = DataSplit.holdOut(Array(0..<5), fraction: 0.2, seed: 1)
        #expect(few.validation.isEmpty && few.note?.contains("too few") == true)
        #expect(DataSplit.holdOut(items, fraction: 0, seed: 1).validation.isEmpty)
    }
}
