import ArgumentParser
import Foundation
import TailorEval
import TailorFormats
import TailorKernels
import TailorModels
import TailorTuning

/// Options shared by `tune-classifier` and `tune-retriever`.
struct EncoderTrainingOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "Encoder to start from: a Hugging Face BERT directory or a name in the model cache (default: all-MiniLM-L6-v2).") var model: String?
    @Option(name: .shortAndLong, help: "Output directory: the tuned model (Hugging Face layout), metrics.jsonl, loss.svg and a checkpoint.") var output: String
    @Option(help: "Validation examples (JSONL); without it a seeded share of the data is held out.") var val: String?
    @Option(name: .customLong("val-fraction"), help: "Share of the data held out for validation when --val is not given (0: none).") var valFraction: Double = 0.1
    @Option(help: "Passes over the training data.") var epochs: Int = 3
    @Option(help: "Peak learning rate.") var lr: Float?
    @Option(help: "Examples per batch.") var batch: Int?
    @Option(help: "Batches per optimizer step (gradient accumulation).") var accumulate: Int = 1
    @Option(name: .customLong("max-len"), help: "Longest text in tokens; longer texts are cut.") var maxLen: Int?
    @Option(name: .customLong("freeze-layers"), help: "Keep the embeddings and the first N layers as they are (0: train everything).") var freezeLayers: Int = 0
    @Option(help: "Hidden dropout while training.") var dropout: Float = 0.1
    @Option(help: "Share of the steps spent warming up the learning rate.") var warmup: Float = 0.1
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay (not on biases and LayerNorm).") var weightDecay: Float = 0.01
    @Option(help: "Clip gradients to this global norm (0: off).") var clip: Float = 1.0
    @Option(name: .customLong("eval-every"), help: "Steps between validations and checkpoints (default: two per epoch).") var evalEvery: Int?
    @Option(help: "Stop after this many validations without improvement.") var patience: Int = 3
    @Option(help: "Random seed (split, order, initialisation, dropout).") var seed: UInt64 = 42
    @Option(name: .customLong("max-steps"), help: "Stop after this many optimizer steps.") var maxSteps: Int?
    @Option(name: [.short, .long], help: "Threads (default: all cores).") var threads: Int = ThreadPool.availableCores
    @Flag(help: "Discard a checkpoint in the output directory and start over.") var fresh = false
    @Flag(help: "Print one JSON line per step and validation, and the results as JSON.") var json = false

    func options(lr defaultLR: Float, batch defaultBatch: Int, maxLen defaultLen: Int) -> EncoderTuneOptions {
        var o = EncoderTuneOptions()
        o.epochs = epochs; o.learningRate = lr ?? defaultLR; o.batchSize = batch ?? defaultBatch; o.accumulation = accumulate
        o.maxLength = maxLen ?? defaultLen; o.freezeLayers = freezeLayers; o.dropout = dropout; o.warmupRatio = warmup
        o.weightDecay = weightDecay; o.clipNorm = clip; o.evalEvery = evalEvery; o.patience = patience; o.seed = seed; o.maxSteps = maxSteps
        return o
    }

    /// Holds out a seeded share of `items` for validation when no --val file is given.
    func split<T>(_ items: [T], loadVal: (String) throws -> [T]) throws -> (train: [T], val: [T]) {
        if let val { return (items, try loadVal(val)) }
        let s = DataSplit.holdOut(items, fraction: valFraction, seed: seed)
        if let n = s.note { note("note: " + n) }
        return (s.train, s.validation)
    }

    func validate() throws {
        guard valFraction >= 0, valFraction < 1 else { throw ValidationError("--val-fraction must be in [0, 1)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    /// Runs the trainer with the live display (or JSON lines); returns its summary.
    func train(_ trainer: EncoderTrainer, what: String) throws -> EncoderTrainingSummary {
        if fresh { try? FileManager.default.removeItem(atPath: output + "/" + EncoderTrainer.checkpointName) }
        installInterruptHandler()
        trainer.stopRequested = { stopRequested.load(ordering: .relaxed) }
        let o = trainer.options
        note("tuning \(URL(fileURLWithPath: trainer.sourceDirectory).lastPathComponent) as \(what): \(trainer.trainingCount) examples, \(trainer.validationCount) for validation; "
             + "\(trainer.totalSteps) steps of \(o.batchSize * o.accumulation), \(formatCount(trainer.model.trainable.count)) trainable parameters"
             + (o.freezeLayers > 0 ? " (embeddings and \(o.freezeLayers) layers frozen)" : ""))
        let line = ProgressLine()
        var isClassifier = false
        if case .classification = trainer.task { isClassifier = true }
        var bestAccuracy: Double?
        let summary = try runReportingErrors {
            try trainer.run { e in
                if e.improved || e.step == 0 { bestAccuracy = e.validationAccuracy ?? bestAccuracy }
                if json {
                    var f: [(String, JSONValue)] = [("step", .int(e.step)), ("epoch", .double(e.epoch))]
                    if let l = e.loss { f.append(("loss", .double(l))) }
                    if let v = e.validationLoss { f.append(("val_loss", .double(v))) }
                    if let a = e.validationAccuracy { f.append(("val_accuracy", .double(a))) }
                    if let s = e.samplesPerSecond { f.append(("samples_per_second", .double(s))) }
                    print(JSONValue.object(f).serialized())
                    return
                }
                if let r = e.resumedFrom {
                    note("resuming from the checkpoint at step \(r)" + (e.bestValidationLoss.map { String(format: " (best validation loss %.4f)", $0) } ?? ""))
                    return
                }
                if let v = e.validationLoss {
                    line.finish()
                    note(String(format: "step %d/%d: validation loss %.4f, accuracy %.1f%%", e.step, e.totalSteps, v, 100 * (e.validationAccuracy ?? 0))
                         + (e.improved ? " (best so far: saved)" : "") + (e.loss.map { String(format: ", training loss %.4f", $0) } ?? ""))
                    return
                }
                var s = "step \(e.step)/\(e.totalSteps) · epoch " + String(format: "%.2f", e.epoch)
                if let l = e.loss { s += String(format: " · loss %.4f", l) }
                if isClassifier, let a = bestAccuracy { s += String(format: " · best val accuracy %.1f%%", 100 * a) }
                else if let b = e.bestValidationLoss { s += String(format: " · best val %.4f", b) }
                s += String(format: " · lr %.2e", e.learningRate)
                if let sps = e.samplesPerSecond { s += String(format: " · %.1f examples/s · ETA %@", sps, formatDuration(e.eta)) }
                line.update(s, force: e.step == e.totalSteps)
            }
        }
        line.finish()
        try reportTrainingEnd(steps: summary.steps, seconds: summary.seconds,
                              rate: summary.samplesPerSecond > 0 ? String(format: "%.1f examples/s", summary.samplesPerSecond) : nil,
                              stoppedEarly: summary.stoppedEarly, patience: o.patience)
        if let b = summary.best, let s = summary.bestStep {
            if case .classification = trainer.task {
                note(String(format: "best validation accuracy %.1f%% (loss %.4f) at step %d", 100 * b.accuracy, b.loss, s)
                     + (summary.initial.map { String(format: "; before tuning %.1f%% (%.4f)", 100 * $0.accuracy, $0.loss) } ?? ""))
            } else {
                note(String(format: "best validation loss %.4f (query's own passage first in its batch: %.1f%%) at step %d", b.loss, 100 * b.accuracy, s)
                     + (summary.initial.map { String(format: "; before tuning %.4f (%.1f%%)", $0.loss, 100 * $0.accuracy) } ?? ""))
            }
        }
        return summary
    }
}

struct TuneClassifier: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune-classifier",
        abstract: "Fine-tune a BERT-family encoder as a text classifier (sentiment, topics, intents) on the CPU.",
        discussion: """
        DATA.jsonl holds one example per line: {"text": "…", "label": "…"} ("input" is accepted for "text"). The classifier is Hugging Face's BertForSequenceClassification (a head on the pooled [CLS] output); all layers are trained, or --freeze-layers N keeps the lower ones. The output directory is a Hugging Face model (config.json with the labels, model.safetensors, tokenizer) that transformers' AutoModelForSequenceClassification and `tailor classify -m DIR` load. Running the same command again resumes from the checkpoint.

        With --test, the tuned classifier and two baselines on the same encoder are measured on the test items with 95% intervals: zero-shot (each text gets the label whose description it embeds closest to) and a linear probe (logistic regression on frozen embeddings). Results go to DIR/evaluation.md and evaluation.json.
        """)

    @Argument(help: "Training examples (JSONL {\"text\", \"label\"}).") var data: String
    @OptionGroup var common: EncoderTrainingOptions
    @Option(help: "Labels, comma-separated, in the order of the model's outputs (default: those in DATA, sorted).") var labels: String?
    @Option(help: "Held-out test items (JSONL {\"text\", \"label\"}): measure the classifier and the baselines on them.") var test: String?
    @Option(name: .customLong("describe"), help: "Zero-shot description of a label, as label=text (repeatable; default: the label itself).") var describe: [String] = []
    @Flag(name: .customLong("no-baselines"), help: "With --test, measure only the tuned classifier.") var noBaselines = false

    func run() async throws {
        try common.validate()
        let encoder = try runReportingErrors { try ModelCache.resolve(common.model, default: ModelCache.defaultEmbeddingModel) }
        let all = try runReportingErrors { try LabelledText.load(data) }
        let (train, val) = try runReportingErrors { try common.split(all, loadVal: LabelledText.load) }
        let labelList = labels.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let testItems = try test.map { t in try runReportingErrors { try LabelledText.load(t) } }
        var descriptions: [String: String] = [:]
        for d in describe {
            guard let eq = d.firstIndex(of: "=") else { throw ValidationError("--describe \(d): write it as label=description") }
            descriptions[String(d[..<eq]).trimmingCharacters(in: .whitespaces)] = String(d[d.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        }
        let trainer = try runReportingErrors {
            try EncoderTrainer(classifierFrom: encoder, train: train, validation: val, labels: labelList,
                               options: common.options(lr: 5e-5, batch: 16, maxLen: 128), outputDirectory: common.output, threads: common.threads)
        }
        let summary = try common.train(trainer, what: "a classifier")
        guard case .classification(let classes) = trainer.task else { return }
        print("classifier: \(displayPath(common.output)) (labels: \(classes.joined(separator: ", "))); metrics: \(EncoderTrainer.metricsName), curve: \(LoRATrainer.curveName)")
        guard let testItems else { return }
        let line = ProgressLine()
        let results = try runReportingErrors {
            try ClassifierEvaluation.run(encoder: encoder, classifier: common.output, train: train, test: testItems, labels: classes,
                                         descriptions: classes.map { descriptions[$0] ?? $0 }, baselines: !noBaselines, threads: common.threads) { s in
                line.update(s)
            }
        }
        line.finish()
        let report = ClassifierEvaluation.markdown(results, test: test!, trainCount: train.count, summary: summary)
        try report.write(toFile: common.output + "/evaluation.md", atomically: true, encoding: .utf8)
        let json = ClassifierEvaluation.json(results)
        try (json.serialized() + "\n").write(toFile: common.output + "/evaluation.json", atomically: true, encoding: .utf8)
        if common.json { print(json.serialized()) } else { print(report) }
    }
}

struct Classify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Label texts with a classifier from `tailor tune-classifier` (or any Hugging Face BertForSequenceClassification).",
        discussion: """
        Input: one text per line, or JSONL {"id", "text"} per line ("input" is accepted for "text"); - or no --input reads standard input. Output: with --json, one {"id", "label", "scores"} line per text (scores: the probability of each label); otherwise label, probability and text, tab-separated.
        """)

    @Option(name: [.short, .long], help: "The classifier directory.") var model: String
    @Option(name: [.short, .long], help: "Input file (- for standard input).") var input: String = "-"
    @Option(name: [.short, .long], help: "Threads (default: all cores).") var threads: Int = ThreadPool.availableCores
    @Flag(help: "Print JSON lines {\"id\", \"label\", \"scores\"}.") var json = false

    func run() async throws {
        let clf = try runReportingErrors { try SequenceClassifier(directory: ModelCache.resolve(model), threads: threads) }
        let text: String
        if input == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let t = try? String(contentsOfFile: input, encoding: .utf8) else { note("error: \(input): cannot read the file"); throw ExitCode.failure }
            text = t
        }
        var items: [(id: JSONValue, text: String)] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let s = raw.trimmingCharacters(in: .whitespaces)
            if s.isEmpty { continue }
            if s.hasPrefix("{") {
                guard let o = try? JSONValue.parse(s), case .object = o else {
                    note("error: \(input == "-" ? "stdin" : input):\(i + 1): starts with { but is not a JSON object"); throw ExitCode.failure
                }
                guard let t = o["text"]?.string ?? o["input"]?.string else {
                    note("error: \(input == "-" ? "stdin" : input):\(i + 1): needs a \"text\" string, e.g. {\"id\": 1, \"text\": \"A warm, funny film.\"}"); throw ExitCode.failure
                }
                items.append((o["id"] ?? .int(i + 1), t))
            } else {
                items.append((.int(i + 1), s))
            }
        }
        installInterruptHandler()
        let line = ProgressLine()
        for start in stride(from: 0, to: items.count, by: 256) {
            if stopRequested.load(ordering: .relaxed) { throw ExitCode(130) }
            let part = Array(items[start..<min(items.count, start + 256)])
            let preds = try runReportingErrors { try clf.classify(part.map(\.text)) }
            for (it, p) in zip(part, preds) {
                if json {
                    print(JSONValue.object([("id", it.id), ("label", .string(p.label)),
                                            ("scores", .object(zip(clf.labels, p.scores).map { ($0, .double(Double($1))) }))]).serialized())
                } else {
                    print("\(p.label)\t\(String(format: "%.3f", p.scores.max() ?? 0))\t\(it.text)")
                }
            }
            if items.count > 256 { line.update("classified \(min(items.count, start + 256))/\(items.count)") }
        }
        line.finish()
    }
}

struct TuneRetriever: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune-retriever",
        abstract: "Fine-tune an embedding model on (query, passage) pairs so that retrieval finds your passages.",
        discussion: """
        PAIRS.jsonl holds {"query", "passage"} per line (optionally "negative": a passage that does not answer). Training uses the multiple-negatives ranking loss: each query against every passage of its batch, its own passage the one to rank first (larger --batch: more negatives). Without PAIRS, pairs are generated from a collection (-c) or a corpus (--corpus): a document's title as the query of its text, a sentence of a passage as the query of the rest (the inverse cloze task), and with --generate questions, questions that a language model drafts from passages.

        The output directory is a sentence-transformers model: use it with `tailor reindex -c NAME -m DIR` (re-embeds a collection), `tailor embed -m DIR` or `tailor eval retrieval -m DIR`. With --beir DIR (corpus.jsonl, queries.jsonl, qrels/test.tsv) nDCG@10 on the judged queries is measured before and after.
        """)

    @Argument(help: "Training pairs (JSONL {\"query\", \"passage\"}); omit to generate them.") var pairs: String?
    @OptionGroup var common: EncoderTrainingOptions
    @Option(name: [.customShort("c"), .long], help: "Generate pairs from this collection's chunks.") var collection: String?
    @Option(help: "Generate pairs from this corpus (JSONL {\"title\", \"text\"}, BEIR's corpus.jsonl).") var corpus: String?
    @Option(name: .customLong("generate"), help: "Kinds of generated pairs, comma-separated: titles, sentences, questions (drafted from passages by the --draft-model language model; slower).") var generate: String = "titles,sentences"
    @Option(name: .customLong("draft-model"), help: "Language model that drafts questions (default: the default chat model).") var draftModel: String?
    @Option(name: .customLong("draft-limit"), help: "Passages to draft questions for (spread over the collection).") var draftLimit: Int = 500
    @Option(name: .customLong("max-pairs"), help: "At most this many generated pairs (seeded sample).") var maxPairs: Int?
    @Option(help: "Evaluate nDCG@10 before and after on a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv).") var beir: String?
    @Option(help: "Similarity scale of the ranking loss.") var scale: Float = 20

    func run() async throws {
        try common.validate()
        let encoder = try runReportingErrors { try ModelCache.resolve(common.model, default: ModelCache.defaultEmbeddingModel) }
        var all: [TextPair]
        if let pairs {
            all = try runReportingErrors { try TextPair.load(pairs) }
        } else {
            let kinds = Set(generate.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            guard !kinds.isEmpty, kinds.isSubset(of: ["titles", "sentences", "questions"]) else { throw ValidationError("--generate takes titles, sentences and/or questions") }
            let passages = try runReportingErrors { () -> [PairGenerator.Passage] in
                if let corpus { return try PairGenerator.passages(corpus: corpus) }
                guard let collection else { throw TuningError.badOption("give training pairs (PAIRS.jsonl), or -c COLLECTION or --corpus FILE to generate them from") }
                return try PairGenerator.passages(collection: collection)
            }
            all = PairGenerator.pairs(passages, titles: kinds.contains("titles"), sentences: kinds.contains("sentences"), seed: common.seed)
            if kinds.contains("questions") {
                installInterruptHandler()
                let lm = try runReportingErrors { try LanguageModel(draftModel, threads: common.threads) }
                let line = ProgressLine()
                let drafted = try runReportingErrors {
                    try PairGenerator.draftQuestions(passages, model: lm, limit: draftLimit, progress: { d, n in
                        line.update("drafting questions with \(lm.name): \(d)/\(n) passages")
                    }, shouldStop: { stopRequested.load(ordering: .relaxed) })
                }
                line.finish()
                if stopRequested.load(ordering: .relaxed) { throw ExitCode(130) }
                note("drafted \(drafted.count) questions with \(lm.name)")
                all += drafted
            }
            note("generated \(all.count) pairs from \(passages.count) passages (\(kinds.sorted().joined(separator: " and ")))")
        }
        if let maxPairs, all.count > maxPairs {
            var rng = SplitMix64(seed: common.seed &+ 99)
            for i in stride(from: all.count - 1, to: 0, by: -1) { all.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            all = Array(all.prefix(maxPairs))
        }
        if pairs == nil {
            try? FileManager.default.createDirectory(atPath: common.output, withIntermediateDirectories: true)
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try all.map { String(decoding: try enc.encode($0), as: UTF8.self) + "\n" }.joined().write(toFile: common.output + "/pairs.jsonl", atomically: true, encoding: .utf8)
        }
        let (train, val) = try runReportingErrors { try common.split(all, loadVal: TextPair.load) }
        var opts = common.options(lr: 2e-5, batch: 32, maxLen: 256)
        opts.scale = scale
        let trainer = try runReportingErrors {
            try EncoderTrainer(retrieverFrom: encoder, train: train, validation: val, options: opts, outputDirectory: common.output, threads: common.threads)
        }
        var before: RetrievalScore?
        let line = ProgressLine()
        defer { line.finish() }
        if let beir {
            before = try runReportingErrors { try RetrievalScore.measure(beir: beir, model: encoder, threads: common.threads) { line.update("before tuning: " + $0) } }
            line.finish()
            note(String(format: "before tuning: nDCG@10 %.4f, Recall@10 %.4f on %d queries", before!.ndcg10, before!.recall10, before!.queries))
        }
        _ = try common.train(trainer, what: "a retriever")
        print("retriever: \(displayPath(common.output)) — re-embed a collection with `tailor reindex -c NAME -m \(displayPath(common.output))`")
        if let beir, let before {
            let after = try runReportingErrors { try RetrievalScore.measure(beir: beir, model: common.output, threads: common.threads) { line.update("after tuning: " + $0) } }
            let result: JSONValue = .object([("queries", .int(after.queries)), ("ndcg10_before", .double(before.ndcg10)), ("ndcg10_after", .double(after.ndcg10)),
                                             ("recall10_before", .double(before.recall10)), ("recall10_after", .double(after.recall10))])
            try (result.serialized() + "\n").write(toFile: common.output + "/evaluation.json", atomically: true, encoding: .utf8)
            if common.json { print(result.serialized()) } else {
                print(String(format: "nDCG@10 %.4f → %.4f, Recall@10 %.4f → %.4f (%d judged queries)", before.ndcg10, after.ndcg10, before.recall10, after.recall10, after.queries))
            }
        }
    }
}
