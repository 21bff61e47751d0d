import ArgumentParser
import Foundation
import TailorModels
import TailorRAG

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

    @Option(name: [.customShort("c"), .long], help: "Answer from this collection: retrieval on every turn, with cited sources.")
    var collection: String?
    @Option(name: .customLong("rag-k"), help: "With -c: most passages per answer.") var ragK: Int = 5
    @Option(help: "With -c: embedding model (default: the collection's).") var embedder: String?
    @Option(help: "With -c: default, none, or a cross-encoder folder.") var reranker: String = "default"
    @Option(name: .customLong("min-similarity"), help: "With -c: below this similarity the documents do not cover a question.")
    var minSimilarity: Double = 0.25

    func run() async throws {
        let lm = try loadModel(modelOptions)
        if collection != nil { try runGrounded(lm); return }
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

        try converse(greeting: "Chatting with \(lm.name). Ctrl-D to quit.") { _ = try answer($0) }
    }

    /// `--once`, or one turn per line of standard input (with a prompt on a terminal).
    func converse(greeting: String, _ turn: (String) throws -> Void) throws {
        if let once { try turn(once); return }
        let interactive = isatty(STDIN_FILENO) != 0
        if interactive { note(greeting) }
        while true {
            if interactive { emit("> ") }
            guard let line = readLine(strippingNewline: true) else { if interactive { emit("\n") }; break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            try turn(text)
        }
    }

    /// Chat over a collection: each turn is made standalone, answered from retrieved passages,
    /// and its sources listed.
    func runGrounded(_ lm: LanguageModel) throws {
        var g = GroundingConfig()
        g.collection = collection; g.k = ragK; g.candidates = max(20, ragK); g.embedder = embedder
        g.reranker = reranker; g.minSimilarity = minSimilarity
        let engine = try g.makeEngine(model: lm, threads: modelOptions.threads, ctx: modelOptions.ctx)
        engine.answerTokens = min(n, engine.contextTokens / 2)
        engine.sampling = sampling.parameters
        if let system { engine.prompt.system = system + "\n" + engine.prompt.system }
        var history: [ChatMessage] = []
        func turn(_ text: String) throws {
            let query = history.isEmpty ? text : try runReportingErrors { try engine.standaloneQuestion(text, history: history) }
            if query != text && isatty(STDERR_FILENO) != 0 { note("(searching for: \(query))") }
            let a = try runReportingErrors { try engine.ask(text, history: history, query: query) { emit($0); return true } }
            emit("\n")
            printSources(a)
            history += [.user(text), .assistant(a.text)]
        }
        try converse(greeting: "Chatting with \(lm.name) over collection '\(engine.retriever.store.name)'. Ctrl-D to quit.", turn)
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
