import Foundation
import Testing
import TailorFormats
import TailorTokenizers
@testable import TailorModels

/// Real chat templates rendered byte-identical to Python jinja2 in transformers' environment
/// (fixture from scripts/reference/chat_templates.py).
@Suite struct ChatTemplateTests {
    @Test func templatesRenderLikeJinja2() throws {
        let fixture = try JSONValue.parse(try TestPaths.fixtureText("chat-templates.json"))
        let conversations = fixture["conversations"]!
        let tools = JValue(json: fixture["tools"]!)
        var compared = 0
        for t in fixture["templates"]!.array! {
            let name = t["name"]!.string!
            let template = try ChatTemplate(source: t["source"]!.string!, bosToken: t["bos"]!.string!, eosToken: t["eos"]!.string!)
            var extra: [String: JValue] = [:]
            if case .object(let kv) = t["extra"]! { for (k, v) in kv { extra[k] = JValue(json: v) } }
            for c in t["cases"]!.array! {
                let conv = c["conversation"]!.string!
                var ctx = extra
                if c["tools"]!.bool! { ctx["tools"] = tools }
                let messages = JValue(json: conversations[conv]!)
                let gen = c["add_generation_prompt"]!.bool!
                let label = "\(name) / \(conv) / gen=\(gen) tools=\(c["tools"]!.bool!)"
                if let expected = c["output"]?.string {
                    let got = try template.render(messages: messages, addGenerationPrompt: gen, extra: ctx)
                    #expect(got == expected, "\(label)")
                    if got != expected { print("--- \(label)\nexpected:\n\(expected.debugDescription)\ngot:\n\(got.debugDescription)") }
                } else {
                    let message = c["error"]!.string!
                    #expect(throws: TemplateError.self, "\(label) should raise \(message)") {
                        _ = try template.render(messages: messages, addGenerationPrompt: gen, extra: ctx)
                    }
                    do { _ = try template.render(messages: messages, addGenerationPrompt: gen, extra: ctx) } catch let e as TemplateError {
                        #expect(e.message == message)
                    }
                }
                compared += 1
            }
        }
        print("chat templates: \(compared) renders compared with jinja2")
        #expect(compared >= 80)
    }

    @Test func chatMessagesAPI() throws {
        let t = try ChatTemplate(source: ChatTemplate.chatML)
        let s = try t.render([.system("S"), .user("U")])
        #expect(s == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func syntaxErrorsNameTheLine() throws {
        #expect(throws: TemplateError.self) { try JinjaTemplate("line one\n{% if x %}unclosed") }
        do { _ = try JinjaTemplate("a\nb\n{{ 1 + }}") } catch let e as TemplateError {
            #expect(e.line == 3, "got \(e)")
        }
        #expect(throws: TemplateError.self) { try JinjaTemplate("{{ x | nosuchfilter }}").render(["x": .int(1)]) }
        #expect(throws: TemplateError.self) { try JinjaTemplate("{{ missing.attr }}").render([:]) }
    }
}
