import ArgumentParser
import Foundation
import TailorKernels
import TailorModels
import TailorRAG

/// Options for answering from a collection (ask, chat -c).
struct GroundingOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "Collection to answer from (name or folder). Default: \(Collections.defaultName).")
    var collection: String?
    @Option(name: .short, help: "Most passages put in the prompt.") var k: Int = 5
    @Option(help: "Passages retrieved before reranking.") var candidates: Int = 20
    @Option(help: "Retrieval: vector, keyword or hybrid.") var mode: RetrievalMode = .hybrid
    @Option(help: "Only matching chunks: path=GLOB, type=pdf, FIELD=VALUE (repeatable).") var filter: [String] = []
    @Option(help: "Reranker: default (embedding + keyword overlap), none, or the path of a cross-encoder model folder.")
    var reranker: String = "default"
    @Option(name: .customLong("min-similarity"), help: "Below this question–passage cosine similarity the documents count as not covering the question.")
    var minSimilarity: Double = 0.25
    @Option(help: "Embedding model (default: the collection's).") var embedder: String?
    @OptionGroup var store: StoreOption

    func validate() throws {
        guard k >= 1 else { throw ValidationError("-k must be at least 1") }
        guard candidates >= k else { throw ValidationError("--candidates must be at least -k") }
    }

    var config: GroundingConfig {
        GroundingConfig(collection: collection, k: k, candidates: candidates, mode: mode, filter: filter, reranker: reranker,
                        minSimilarity: minSimilarity, embedder: embedder, store: store.spec)
    }
}

/// What answering from a collection needs (from `GroundingOptions` or `chat -c`).
struct GroundingConfig {
    var collection: String?
    var k = 5
    var candidates = 20
    var mode = RetrievalMode.hybrid
    var filter: [String] = []
    var reranker = "default"
    var minSimilarity = 0.25
    var embedder: String?
    /// --store: where the collection is.
    var store: String?

    /// The ask settings these options give.
    func settings(ctx: Int?) throws -> AskSettings {
        var s = AskSettings()
        s.candidates = candidates
        s.passages = k
        s.minSimilarity = minSimilarity
        s.filter = try runReportingErrors { try Filter.parse(filter) }
        s.contextTokens = ctx
        s.retrieval.mode = mode
        return s
    }

    func makeEngine(model lm: LanguageModel, threads: Int, ctx: Int?, adapters: [AdapterUse] = [],
                    adjust: (inout AskSettings) -> Void = { _ in }) throws -> QueryEngine {
        var defaults = try settings(ctx: ctx)
        defaults.adapters = adapters
        adjust(&defaults)
        var index = IndexOptions()
        index.threads = threads
        return try runReportingErrors {
            let kb = try KnowledgeBase.open(collection, store: try StoreLocation.parse(store), embedder: embedder, threads: threads)
            return try kb.engine(model: lm, reranker: try Rerankers.named(reranker, threads: threads), defaults: defaults, index: index)
        }
    }
}

struct Ask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer a question from your documents, citing the passages it comes from.",
        discussion: "Retrieves passages from the collection, asks the model to answer only from them with [n] citations, and lists the sources.")

    @Argument(help: "The question.") var question: String
    @OptionGroup var grounding: GroundingOptions
    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.short, .customLong("n-predict")], help: "Most tokens in the answer.") var n: Int = 384
    @Option(name: .customLong("temp"), help: "Temperature (0: greedy, reproducible).") var temperature: Float = 0
    @Option(name: .customLong("repeat-penalty"), help: "Penalty for repeating recent tokens (1: none).") var repeatPenalty: Float = 1.0
    @Option(help: "Instructions for the model (default: answer only from the numbered sources, citing them).") var system: String?
    @Flag(help: "Print the answer, sources and timings as JSON.") var json = false

    func run() async throws {
        let lm = try loadModel(modelOptions)
        let engine = try grounding.config.makeEngine(model: lm, threads: modelOptions.threads, ctx: modelOptions.ctx,
                                                     adapters: try modelOptions.adapters(lm)) { s in
            s.answerTokens = n
            s.sampling.temperature = temperature
            s.sampling.repetitionPenalty = repeatPenalty
            s.system = system
        }
        let answer = try runReportingErrors {
            try engine.ask(question) { piece in if !json { emit(piece) }; return true }
        }
        if json { emit(try jsonString(answer) + "\n"); return }
        emit("\n")
        printSources(answer)
    }
}

func printSources(_ a: Answer) {
    guard !a.sources.isEmpty else { return }
    let used = a.used
    print(used.isEmpty ? "\nNo passage supports the answer. The passages it was given:" : "\nSources:")
    for c in used.isEmpty ? a.sources : used {
        var head = "  [\(c.number)] \(displayPath(c.path))"
        if c.documentKey != c.path { head += " #" + c.documentKey.dropFirst(c.path.count + 1) }
        if !c.location.isEmpty { head += " — " + c.location }
        if !c.cited && c.supported { head += "  (supports the answer; not cited by the model)" }
        print(head)
        print("      \"" + snippet(c.text, query: a.query, width: 160) + "\"")
    }
    for n in a.invalidCitations {
        note("warning: the answer cites [\(n)], which is none of the \(a.sources.count) passages it was given")
    }
}
