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
    @OptionGroup var store: StoreOption
    @Option(name: .customLong("min-similarity"), help: "With -c: below this similarity the documents do not cover a question.")
    var minSimilarity: Double = 0.25

    func run() async throws {
        let lm = try loadModel(modelOptions)
        if collection != nil { try runGrounded(lm); return }
        let ctx = modelOptions.ctx ?? min(lm.model.contextLength, 4096)
        let cache = lm.makeCache(maxTokens: ctx)
        let gen = lm.generator(adapters: try modelOptions.adapters(lm))
        var history: [ChatMessage] = []
        if let system { history.append(.system(system)) }

        func answer(_ text: String) throws -> String {
            history.append(.user(text))
            let ids = try runReportingErrors { try lm.fitToContext(&history, budget: ctx - min(n, ctx / 2)) }
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
        g.collection = collection; g.store = store.spec; g.k = ragK; g.candidates = max(20, ragK); g.embedder = embedder
        g.reranker = reranker; g.minSimilarity = minSimilarity
        let engine = try g.makeEngine(model: lm, threads: modelOptions.threads, ctx: modelOptions.ctx,
                                      adapters: try modelOptions.adapters(lm)) { s in
            s.answerTokens = n
            s.sampling = sampling.parameters
            if let system { s.system = system + "\n" + PromptBuilder().system }
        }
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
}
