import ArgumentParser
import Foundation
import TailorModels

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk with a model. Type a message and press Enter; Ctrl-D quits.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "System prompt.")
    var system: String?

    @Option(help: "Answer this one message and exit (for scripts).")
    var once: String?

    @Option(name: [.short, .customLong("n-predict")], help: "Tokens per answer at most.")
    var n: Int = 512

    func run() async throws {
        let lm = try loadModel(modelOptions)
        let ctx = modelOptions.ctx ?? min(lm.model.contextLength, 4096)
        let cache = lm.model.makeCache(maxTokens: ctx)
        let gen = lm.generator()
        var history: [ChatMessage] = []
        if let system { history.append(.system(system)) }

        func answer(_ text: String) throws -> String {
            history.append(.user(text))
            let ids = try fitToContext(lm, &history, budget: ctx - min(n, ctx / 2))
            let result = try runReportingErrors {
                try gen.generate(prompt: ids, maxTokens: n, sampling: sampling.parameters, stop: sampling.stop,
                                 cache: cache) { piece in emit(piece); return true }
            }
            emit("\n")
            history.append(.assistant(result.text))
            return result.text
        }

        if let once {
            _ = try answer(once)
            return
        }
        let interactive = isatty(STDIN_FILENO) != 0
        if interactive { note("Chatting with \(lm.name). Ctrl-D to quit.") }
        while true {
            if interactive { emit("> ") }
            guard let line = readLine(strippingNewline: true) else { if interactive { emit("\n") }; break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            _ = try answer(text)
        }
    }

    /// Renders the conversation, dropping the oldest turns (never the system prompt or the new
    /// message) until it fits the budget.
    func fitToContext(_ lm: LanguageModel, _ history: inout [ChatMessage], budget: Int) throws -> [Int] {
        while true {
            let text = try runReportingErrors { try lm.chatTemplate.render(history, addGenerationPrompt: true) }
            let ids = lm.encodeChat(text)
            if ids.count <= budget { return ids }
            let first = history.first?.role == "system" ? 1 : 0
            if history.count - first <= 1 {
                note("error: the message is \(ids.count) tokens, more than the \(budget) the context allows; shorten it or raise --ctx")
                throw ExitCode.failure
            }
            history.remove(at: first)
        }
    }
}
