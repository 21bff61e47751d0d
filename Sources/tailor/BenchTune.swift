import ArgumentParser
import Foundation
import TailorKernels
import TailorModels
import TailorTuning

struct BenchTune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tune",
        abstract: "LoRA training tokens/s and peak memory (forward, backward and AdamW on random sequences, every token trained).")

    @Option(name: [.short, .long], help: "Model: a .gguf path or a name in the model cache.") var model: String?
    @Option(name: [.short, .long], help: "Threads (default: all cores).") var threads: Int = ThreadPool.availableCores
    @Option(help: "LoRA rank.") var rank: Int = 8
    @Option(help: "Projections to adapt (see `tailor tune --help`).") var targets: String = "all"
    @Option(help: "Sequences per step.") var batch: Int = 8
    @Option(help: "Tokens per sequence.") var seq: Int = 256
    @Option(help: "Measured steps after one warm-up step.") var steps: Int = 5
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        guard steps >= 1, batch >= 1, seq >= 2 else { throw ValidationError("--steps, --batch must be at least 1 and --seq at least 2") }
        try runReportingErrors {
            let lm = try LanguageModel(model, threads: threads, precision: .exact)
            guard let base = lm.model as? LlamaModel else { throw TuningError.unsupportedModel("LoRA training needs a Llama-family model") }
            let ad = LoRAAdapter(for: base.config, rank: rank, alpha: Float(2 * rank), targets: try LoRATarget.parseList(targets))
            ad.initialize(seed: 1)
            // B = 0 would make some products trivially zero: give it values, as after a few steps.
            var rng = SplitMix64(seed: 2)
            for i in ad.parameters.indices where ad.parameters[i] == 0 { ad.parameters[i] = Float(rng.nextUnit() - 0.5) * 0.01 }
            let model = try LoRAModel(base: base, adapter: ad, dropout: 0, threads: threads)
            let V = base.config.vocabulary
            let examples = (0..<batch).map { _ in
                TokenizedExample(ids: (0..<seq).map { _ in Int(rng.next() % UInt64(V)) }, trained: [Bool](repeating: true, count: seq))
            }
            let packed = PackedBatch(examples, maxLength: seq)
            var times: [Double] = []
            let clock = ContinuousClock()
            for s in 0...steps {
                let t0 = clock.now
                model.zeroGradients()
                model.run(packed, backward: true)
                // The optimizer's cost: one AdamW update over all parameters.
                var m = [Float](repeating: 0, count: ad.parameterCount), v = m
                for i in ad.parameters.indices {
                    let g = model.gradients[i]
                    m[i] = 0.9 * m[i] + 0.1 * g; v[i] = 0.999 * v[i] + 0.001 * g * g
                    ad.parameters[i] -= 1e-9 * m[i] / (v[i].squareRoot() + 1e-8)
                }
                let d = clock.now - t0
                let secs = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                if s > 0 { times.append(secs) }
                if !json { note(String(format: "step %d: %.2f s (%.1f tokens/s)%@", s, secs, Double(batch * seq) / secs, s == 0 ? " (warm-up)" : "")) }
            }
            let sorted = times.sorted()
            let median = sorted[sorted.count / 2]
            let tps = Double(batch * seq) / median
            let peak = DecoderBenchmark.peakResidentBytes()
            if json {
                print("{\"tokens_per_second\": \(tps), \"median_step_seconds\": \(median), \"peak_resident_bytes\": \(peak), \"threads\": \(threads), \"rank\": \(rank), \"batch\": \(batch), \"seq\": \(seq), \"trainable_parameters\": \(ad.parameterCount)}")
            } else {
                print(String(format: "| %@ | LoRA r=%d %@ | %d × %d | %d threads | %.1f tokens/s | peak %@ |", lm.name, rank, targets, batch, seq, threads, tps, formatBytes(Int64(peak))))
            }
        }
    }
}

struct BenchTuneClassifier: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tune-classifier",
        abstract: "Encoder fine-tuning examples/s: full training steps (forward, backward, AdamW, dropout on) of a classifier on your labelled texts.")

    @Option(name: [.short, .long], help: "Encoder (default: all-MiniLM-L6-v2).") var model: String?
    @Option(help: "Labelled texts (JSONL {\"text\", \"label\"}).") var data: String
    @Option(name: [.short, .long], help: "Threads (default: all cores).") var threads: Int = ThreadPool.availableCores
    @Option(help: "Examples per step.") var batch: Int = 16
    @Option(name: .customLong("max-len"), help: "Longest text in tokens.") var maxLen: Int = 128
    @Option(help: "Measured steps after two warm-up steps.") var steps: Int = 20
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        guard steps >= 1, batch >= 1 else { throw ValidationError("--steps and --batch must be at least 1") }
        try runReportingErrors {
            let encoder = try ModelCache.resolve(model, default: ModelCache.defaultEmbeddingModel)
            var o = EncoderTuneOptions()
            o.batchSize = batch; o.maxLength = maxLen; o.maxSteps = steps + 2; o.epochs = 1000
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-bench-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: out) }
            let trainer = try EncoderTrainer(classifierFrom: encoder, train: LabelledText.load(data), validation: [], options: o,
                                             outputDirectory: out, threads: threads)
            var times: [Double] = [], samples = 0
            let clock = ContinuousClock()
            for s in 0..<(steps + 2) {
                let t0 = clock.now
                let r = try trainer.trainStep(s)
                let d = clock.now - t0
                let secs = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                if s >= 2 { times.append(secs); samples += r.samples }
                if !json { note(String(format: "step %d: %.3f s, loss %.4f%@", s, secs, r.loss, s < 2 ? " (warm-up)" : "")) }
            }
            let eps = Double(samples) / times.reduce(0, +)
            let median = times.sorted()[times.count / 2]
            let peak = DecoderBenchmark.peakResidentBytes()
            if json {
                print("{\"examples_per_second\": \(eps), \"median_step_seconds\": \(median), \"peak_resident_bytes\": \(peak), \"threads\": \(threads), \"batch\": \(batch), \"steps\": \(steps), \"trainable_parameters\": \(trainer.model.trainable.count)}")
            } else {
                print(String(format: "| %@ | classifier, full fine-tuning | batch %d | %d threads | %.1f examples/s | peak %@ |",
                             URL(fileURLWithPath: encoder).lastPathComponent, batch, threads, eps, formatBytes(Int64(peak))))
            }
        }
    }
}
