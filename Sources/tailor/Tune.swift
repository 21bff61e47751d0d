import ArgumentParser
import Foundation
import TailorFormats
import TailorKernels
import TailorModels
import TailorTuning

struct Tune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model on your examples with LoRA (on the CPU).",
        discussion: """
        DATA.jsonl holds one example per line: {"messages": [{"role", "content"}, ...]} (loss on the assistant turns), {"prompt", "completion"}, {"instruction", "input", "output"}, or {"text"} (continued pre-training on documents). The output directory gets the best adapter (adapter_model.safetensors + adapter_config.json for PEFT, adapter.gguf for llama.cpp), metrics.jsonl, loss.svg and a checkpoint; running the same command again resumes from it. Use the adapter with `tailor chat --adapter DIR` or fold it in with `tailor merge`.
        """)

    @Argument(help: "Training examples (JSONL).") var data: String
    @Option(name: [.short, .long], help: "Base model: a .gguf path or a name in the model cache.") var model: String?
    @Option(name: .shortAndLong, help: "Output directory for the adapter, metrics and checkpoint.") var output: String
    @Option(help: "Validation examples (JSONL); without it a seeded share of DATA is held out.") var val: String?
    @Option(name: .customLong("val-fraction"), help: "Share of DATA held out for validation when --val is not given (0: none).") var valFraction: Double = 0.1
    @Option(help: "Passes over the training data.") var epochs: Int = 3
    @Option(help: "Peak learning rate.") var lr: Float = 2e-4
    @Option(help: "LoRA rank r.") var rank: Int = 8
    @Option(help: "LoRA alpha (the update is scaled by alpha / rank).") var alpha: Float?
    @Option(help: "Dropout on the LoRA branch inputs.") var dropout: Float = 0.05
    @Option(help: "Projections to adapt: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, attention, mlp or all.") var targets: String = "all"
    @Option(help: "Sequences per micro-batch.") var batch: Int = 8
    @Option(help: "Micro-batches per optimizer step (gradient accumulation).") var accumulate: Int = 1
    @Option(name: .customLong("max-len"), help: "Longest sequence in tokens; longer examples are cut.") var maxLen: Int = 512
    @Option(help: "Share of the steps spent warming up the learning rate.") var warmup: Float = 0.05
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay.") var weightDecay: Float = 0.01
    @Option(help: "Clip gradients to this global norm (0: off).") var clip: Float = 1.0
    @Option(name: .customLong("eval-every"), help: "Steps between validations and checkpoints (default: four per epoch).") var evalEvery: Int?
    @Option(help: "Stop after this many validations without improvement.") var patience: Int = 3
    @Option(help: "Random seed (split, order, initialisation, dropout).") var seed: UInt64 = 42
    @Option(name: .customLong("max-steps"), help: "Stop after this many optimizer steps.") var maxSteps: Int?
    @Option(name: [.short, .long], help: "Threads (default: all cores).") var threads: Int = ThreadPool.availableCores
    @Flag(help: "Discard a checkpoint in the output directory and start over.") var fresh = false
    @Flag(help: "Print one JSON line per step and validation instead of the live display.") var json = false

    func run() async throws {
        var opts = TuneOptions()
        opts.epochs = epochs; opts.learningRate = lr; opts.rank = rank; opts.alpha = alpha ?? Float(2 * rank); opts.dropout = dropout
        opts.batchSize = batch; opts.accumulation = accumulate; opts.maxLength = maxLen; opts.warmupRatio = warmup
        opts.weightDecay = weightDecay; opts.clipNorm = clip; opts.evalEvery = evalEvery; opts.patience = patience
        opts.seed = seed; opts.maxSteps = maxSteps
        guard valFraction >= 0, valFraction < 1 else { throw ValidationError("--val-fraction must be in [0, 1)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        try runReportingErrors {
            opts.targets = try LoRATarget.parseList(targets)
            try opts.validate()
            let lm = try LanguageModel(model, threads: threads, precision: .exact)
            let prepared = try ExampleFormatter(model: lm).prepare(train: data, validation: val, validationFraction: valFraction,
                                                                   seed: seed, maxLength: maxLen)
            for n in prepared.notes { note("note: " + n) }
            let trainSet = prepared.train, valSet = prepared.validation
            let out = output
            if fresh {
                try? FileManager.default.removeItem(atPath: out + "/" + LoRATrainer.checkpointName)
            }
            let trainer = try LoRATrainer(model: lm, train: trainSet, validation: valSet, options: opts, outputDirectory: out, threads: threads)
            installInterruptHandler()
            trainer.stopRequested = { stopRequested.load(ordering: .relaxed) }
            let tokens = trainSet.reduce(0) { $0 + min($1.ids.count, maxLen) }
            note("tuning \(lm.name) with LoRA r=\(opts.rank) α=\(Int(opts.alpha)) on \(opts.targets.map(\.rawValue).joined(separator: ",")): "
                 + "\(trainSet.count) examples (\(tokens) tokens), \(valSet.count) for validation; "
                 + "\(trainer.totalSteps) steps of \(opts.batchSize * opts.accumulation) examples, \(formatCount(trainer.adapter.parameterCount)) trainable parameters")
            let line = ProgressLine()
            let summary = try trainer.run { e in
                if json {
                    var fields: [(String, JSONValue)] = [("step", .int(e.step)), ("epoch", .double(e.epoch))]
                    if let l = e.loss { fields.append(("loss", .double(l))) }
                    if let v = e.validationLoss { fields.append(("val_loss", .double(v))) }
                    fields.append(("lr", .double(Double(e.learningRate))))
                    fields.append(("tokens_per_second", .double(e.tokensPerSecond)))
                    print(JSONValue.object(fields).serialized())
                    return
                }
                if let r = e.resumedFrom {
                    note("resuming from the checkpoint at step \(r)" + (e.bestValidationLoss.map { String(format: " (best validation loss %.4f)", $0) } ?? ""))
                    return
                }
                var s = "step \(e.step)/\(e.totalSteps) · epoch " + String(format: "%.2f", e.epoch)
                if let l = e.loss { s += String(format: " · loss %.4f", l) }
                if let b = e.bestValidationLoss { s += String(format: " · best val %.4f", b) }
                s += String(format: " · lr %.2e", e.learningRate)
                if e.tokensPerSecond > 0 { s += String(format: " · %.0f tok/s · ETA %@", e.tokensPerSecond, formatDuration(e.eta)) }
                if let v = e.validationLoss {
                    line.finish()
                    note(String(format: "step %d/%d: validation loss %.4f", e.step, e.totalSteps, v) + (e.improved ? " (best so far: adapter saved)" : "")
                         + (e.loss.map { String(format: ", training loss %.4f", $0) } ?? ""))
                } else {
                    line.update(s, force: e.step == e.totalSteps)
                }
            }
            line.finish()
            try reportTrainingEnd(steps: summary.steps, seconds: summary.seconds,
                                  rate: summary.tokensPerSecond > 0 ? String(format: "%.0f tokens/s", summary.tokensPerSecond) : nil,
                                  stoppedEarly: summary.stoppedEarly, patience: opts.patience)
            if let b = summary.bestValidationLoss, let s = summary.bestStep {
                note(String(format: "best validation loss %.4f at step %d", b, s) + (summary.initialValidationLoss.map { String(format: " (%.4f before tuning)", $0) } ?? ""))
            }
            print("adapter: \(displayPath(out)) (PEFT: \(AdapterFiles.peftWeights), llama.cpp: \(AdapterFiles.ggufName)); metrics: \(LoRATrainer.metricsName), curve: \(LoRATrainer.curveName)")
        }
    }
}

/// The line after a training run: done (with its rate and an early stop), or stopped by Ctrl-C
/// with a checkpoint (exit 130).
func reportTrainingEnd(steps: Int, seconds: Double, rate: String?, stoppedEarly: Bool, patience: Int) throws {
    if stopRequested.load(ordering: .relaxed) {
        note("stopped at step \(steps) with a checkpoint; run the same command to resume")
        throw ExitCode(130)
    }
    var end = "done: \(steps) steps in \(formatDuration(seconds))"
    if let rate { end += " (\(rate))" }
    if stoppedEarly { end += "; stopped early (no improvement in \(patience) validations)" }
    note(end)
}

func formatCount(_ n: Int) -> String {
    n >= 1_000_000_000 ? String(format: "%.2f G", Double(n) / 1e9) : n >= 1_000_000 ? String(format: "%.2f M", Double(n) / 1e6) : n >= 1000 ? String(format: "%.1f k", Double(n) / 1e3) : "\(n)"
}

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fold a LoRA adapter into its base model and write a re-quantized GGUF.")

    @Option(name: [.short, .long], help: "Base model: a .gguf path or a name in the model cache.") var model: String?
    @Option(help: "The adapter (a directory from `tailor tune`, PEFT files, or a GGUF LoRA).") var adapter: String
    @Option(name: .shortAndLong, help: "Where to write the merged .gguf.") var output: String
    @Option(help: "Quantize the merged matrices to this type (default: each keeps its type): \(Quantizer.supported.map(\.description).joined(separator: ", ")).") var type: String?

    func run() async throws {
        var t: GGMLType?
        if let type {
            guard let g = GGMLType(name: type), Quantizer.supported.contains(g) else {
                throw ValidationError("--type \(type) is not supported; choose one of \(Quantizer.supported.map(\.description).joined(separator: ", "))")
            }
            t = g
        }
        try runReportingErrors {
            let path = try ModelCache.resolve(model)
            let file = try GGUFFileLoader.open(path)
            let base = try LlamaModel(file: file, threads: 1)
            let ad = try AdapterFiles.load(adapter, for: base.config)
            let start = Date()
            let s = try AdapterMerge.merge(model: path, adapter: ad, config: base.config, output: output, type: t) { done, total in
                FileHandle.standardError.write(Data("\rmerging: \(done)/\(total) tensors".utf8))
            }
            note("")
            print("wrote \(output): \(formatBytes(Int64(s.bytes))), \(s.quantized) tensors re-quantized, in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }
}
