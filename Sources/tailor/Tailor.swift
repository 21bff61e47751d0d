import ArgumentParser
import Foundation
import TailorKernels
import TailorModels
import TailorTuning

@main
enum TailorMain {
    static func main() async {
        OpenBLASSetup.ensureCoreType(reexecuting: CommandLine.arguments)
        await Tailor.main()
    }
}

struct Tailor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tailor",
        abstract: "Customize a local language model with your own data: retrieval, fine-tuning, or both.",
        version: "0.1.0",
        subcommands: [Chat.self, Ask.self, Generate.self, Ingest.self, Search.self, CollectionsCommand.self, Reindex.self, Migrate.self, Extract.self, Eval.self, Embed.self, Similarity.self, Inspect.self, Models.self, Bench.self, Serve.self, Quantize.self, Convert.self, Tune.self, Merge.self, TuneClassifier.self, Classify.self, TuneRetriever.self, Compare.self],
        defaultSubcommand: nil)
}

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "Model: a .gguf path or a name in the model cache (see `tailor models`).")
    var model: String?

    @Option(name: [.short, .long], help: "Threads for the model (default: all cores).")
    var threads: Int = ThreadPool.availableCores

    @Option(name: .long, help: "Context window in tokens (default: the model's, at most 4096).")
    var ctx: Int?

    @Option(help: "Arithmetic: fast (8-bit activations, fp16 cache, like llama.cpp) or exact (fp32, like transformers).")
    var precision: PrecisionOption = .fast

    @Option(help: "A LoRA adapter to apply (a directory from `tailor tune`, PEFT files, or a GGUF LoRA).")
    var adapter: String?

    @Option(name: .customLong("adapter-scale"), help: "How strongly to apply the adapter (1: as trained, 0: not at all).")
    var adapterScale: Float = 1

    /// The adapter given with --adapter, loaded on `lm` by `loadModel`.
    func adapters(_ lm: LanguageModel) throws -> [AdapterUse] {
        guard adapter != nil else { return [] }
        return [try runReportingErrors { try lm.adapters.use("cli", scale: adapterScale) }]
    }

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard adapterScale.isFinite else { throw ValidationError("--adapter-scale must be a number") }
        if let ctx, ctx < 16 { throw ValidationError("--ctx must be at least 16 tokens") }
    }
}

/// Sampling options shared by generate and chat.
struct SamplingOptions: ParsableArguments {
    @Option(name: .customLong("temp"), help: "Temperature; 0 is greedy.")
    var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: all).")
    var topK: Int = 40
    @Option(name: .customLong("top-p"), help: "Keep the smallest set of tokens whose probability reaches p.")
    var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Drop tokens less likely than min-p × the most likely one.")
    var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Penalty for tokens among the last 64 (1: none).")
    var repeatPenalty: Float = 1.0
    @Option(name: .long, help: "Random seed, for reproducible sampling.")
    var seed: UInt64?
    @Option(name: .long, help: "Stop when this text is generated (repeatable).")
    var stop: [String] = []

    func validate() throws {
        guard temperature >= 0 else { throw ValidationError("--temp must be 0 or more") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard minP >= 0 && minP < 1 else { throw ValidationError("--min-p must be in [0, 1)") }
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 or more") }
        guard repeatPenalty > 0 else { throw ValidationError("--repeat-penalty must be positive") }
    }

    var parameters: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = temperature
        p.topK = topK
        p.topP = topP
        p.minP = minP
        p.repetitionPenalty = repeatPenalty
        p.seed = seed
        return p
    }
}


/// Writes to standard error (progress, statistics), keeping standard output for results.
func note(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Prints text immediately (streamed tokens).
func emit(_ s: String) {
    FileHandle.standardOutput.write(Data(s.utf8))
}

/// Turns library errors into a clean message and exit code instead of a crash.
func runReportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as ValidationError {
        throw e
    } catch let e as CustomStringConvertible & Error {
        note("error: \(e.description)")
        throw ExitCode.failure
    }
}

func loadModel(_ opts: ModelOptions) throws -> LanguageModel {
    try runReportingErrors {
        let lm = try LanguageModel(opts.model, threads: opts.threads, precision: opts.precision.value)
        if let path = opts.adapter { try lm.adapters.load(name: "cli", path: path) }
        return lm
    }
}

func formatBytes(_ b: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(b), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[i])
}

enum PrecisionOption: String, ExpressibleByArgument, CaseIterable {
    case fast, exact
    var value: Precision { self == .fast ? .fast : .exact }
}
