import ArgumentParser
import Foundation
import TailorEval
import TailorFormats
import TailorKernels
import TailorModels
import TailorTuning

struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Which approach fits? Compare base, RAG, fine-tuned and fine-tuned + RAG on your own evaluation set.",
        discussion: """
        EVAL.jsonl holds one item per line: {"question", "answer"} (knowledge QA), {"input", "label"} (classification) or {"input", "reference"} (generation). RAG needs a collection (-c) or documents to index (--docs); fine-tuning needs an adapter (--adapter) or training data (--train: any `tailor tune` format, or {"input", "label"} items, which train the model to answer the evaluation prompt). The report (report.md, report.html, report.json) goes to -o; run the same command again to resume an interrupted comparison.
        """)

    @Option(help: "Evaluation items (JSONL).") var eval: String
    @Option(name: [.short, .long], help: "Model: a .gguf path or a name in the model cache.") var model: String?
    @Option(name: [.customShort("c"), .long], help: "Collection for the RAG systems.") var collection: String?
    @OptionGroup var store: StoreOption
    @Option(help: "Documents to index for the RAG systems (files or folders, repeatable).") var docs: [String] = []
    @Option(help: "A LoRA adapter for the fine-tuned systems.") var adapter: String?
    @Option(help: "Training data for the fine-tuned systems (trained here, resumable).") var train: String?
    @Option(help: "An encoder classifier from `tailor tune-classifier`, compared as one more system on classification items.") var classifier: String?
    @Flag(name: .customLong("tune-classifier"), help: "Also fine-tune an encoder classifier on the labelled --train items and compare it.") var tuneClassifier = false
    @Option(help: "The encoder --tune-classifier starts from (default: all-MiniLM-L6-v2).") var encoder: String?
    @Option(name: [.short, .long], help: "Report directory.") var output: String = "compare-report"
    @Option(name: .customLong("fresh-docs"), help: "Documents added after training (repeatable): tests freshness with --fresh-eval.") var freshDocs: [String] = []
    @Option(name: .customLong("fresh-eval"), help: "Items about the --fresh-docs.") var freshEval: String?
    @Option(help: "How often your data changes: never, monthly, weekly or daily.") var changes: String = "monthly"
    @Option(name: .customLong("latency-budget"), help: "Longest acceptable p95 latency per answer, in ms.") var latencyBudget: Double?
    @Option(name: .customLong("training-budget"), help: "Longest acceptable training run, in minutes.") var trainingBudget: Double?
    @Option(help: "Classification prompt: {input} is the item's text, {labels} the labels.") var template: String = LabelClassifier.defaultTemplate
    @Option(help: "Labels, comma-separated (default: those in the data).") var labels: String?
    @Option(name: .customLong("rag-k"), help: "Passages per RAG answer.") var ragK: Int = 4
    @Option(help: "Use only the first N items.") var limit: Int?
    @Option(help: "Training: passes over the data.") var epochs: Int = 2
    @Option(help: "Training: peak learning rate.") var lr: Float = 3e-4
    @Option(help: "Training: LoRA rank.") var rank: Int = 8
    @Option(help: "Training: sequences per step.") var batch: Int = 8
    @Option(name: .customLong("max-len"), help: "Training: longest sequence in tokens.") var maxLen: Int = 384
    @Option(name: .customLong("max-steps"), help: "Training: stop after this many steps.") var maxSteps: Int?
    @Option(name: [.short, .long], help: "Threads (default: all cores).") var threads: Int = ThreadPool.availableCores
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        guard let change = DataChange(rawValue: changes) else { throw ValidationError("--changes must be never, monthly, weekly or daily") }
        guard adapter == nil || train == nil || tuneClassifier else { throw ValidationError("give --adapter or --train, not both") }
        guard !tuneClassifier || train != nil else { throw ValidationError("--tune-classifier trains on the labelled --train items: give --train") }
        guard !tuneClassifier || classifier == nil else { throw ValidationError("give --classifier or --tune-classifier, not both") }
        guard collection == nil || docs.isEmpty else { throw ValidationError("give -c or --docs, not both") }
        guard (freshEval == nil) == freshDocs.isEmpty else { throw ValidationError("--fresh-docs and --fresh-eval go together") }
        var cfg = ComparisonConfig(evalPath: eval)
        cfg.model = model; cfg.collection = collection; cfg.store = try store.location(); cfg.documents = docs; cfg.adapter = adapter; cfg.train = train
        cfg.freshDocuments = freshDocs; cfg.freshEval = freshEval; cfg.outputDirectory = output; cfg.limit = limit; cfg.threads = threads
        cfg.declared.changes = change; cfg.declared.latencyBudgetMs = latencyBudget; cfg.declared.trainingBudgetMinutes = trainingBudget
        cfg.experiment.template = template.replacingOccurrences(of: "\\n", with: "\n")
        cfg.experiment.labels = labels.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        cfg.experiment.ragPassages = ragK
        cfg.tune.epochs = epochs; cfg.tune.learningRate = lr; cfg.tune.rank = rank; cfg.tune.alpha = Float(2 * rank)
        cfg.tune.batchSize = batch; cfg.tune.maxLength = maxLen; cfg.tune.maxSteps = maxSteps
        cfg.classifier = classifier; cfg.classifierEncoder = encoder
        if tuneClassifier {
            var o = EncoderTuneOptions()
            o.maxSteps = maxSteps
            cfg.tuneClassifier = o
        }
        installInterruptHandler()
        let comparison = Comparison(cfg)
        comparison.shouldStop = { stopRequested.load(ordering: .relaxed) }
        let line = ProgressLine()
        let report: ComparisonReport
        do {
            report = try runReportingErrors {
                try comparison.run { e in
                    switch e {
                    case .note(let s): line.finish(); note(s)
                    case let .ingest(d, t): line.update("indexing documents: \(d)/\(t) chunks")
                    case .training(let t):
                        if let r = t.resumedFrom { line.finish(); note("training: resuming from step \(r)"); return }
                        var s = "training: step \(t.step)/\(t.totalSteps)"
                        if let l = t.loss { s += String(format: " · loss %.4f", l) }
                        if let v = t.validationLoss { s += String(format: " · val %.4f", v) }
                        if t.tokensPerSecond > 0 { s += String(format: " · %.0f tok/s · ETA %@", t.tokensPerSecond, formatDuration(t.eta)) }
                        if let e = t.samplesPerSecond { s = "encoder classifier " + s + String(format: " · %.1f examples/s · ETA %@", e, formatDuration(t.eta)) }
                        line.update(s, force: t.step == t.totalSteps)
                    case let .items(s, d, n, fresh):
                        line.update("\(fresh ? "freshness: " : "")\(s.title): \(d)/\(n) items", force: d == n)
                    }
                }
            }
        } catch is CancellationError {
            line.finish()
            note("stopped; run the same command again to resume (finished items are kept)")
            throw ExitCode(130)
        }
        line.finish()
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
            return
        }
        let m = report.primary
        print("| system | \(m) | latency p50 |")
        print("| --- | ---: | ---: |")
        for s in report.summaries {
            let e = s.metrics[m]
            print(String(format: "| %@ | %@ | %.0f ms |", s.system.title, e.map { String(format: "%.3f (%.3f–%.3f)", $0.mean, $0.low, $0.high) } ?? "—", s.latencyP50Ms))
        }
        print("\n\(report.recommendation.headline)")
        for r in report.recommendation.reasons { print("- \(r)") }
        print("\nreport: \(displayPath(output))/report.md, report.html")
    }
}
