// The LoRA training loop: AdamW with decoupled weight decay, linear warm-up then cosine decay,
// gradient clipping by global norm, gradient accumulation, a validation loss every few steps,
// early stopping with patience, the best adapter kept, and atomic checkpoints from which a
// killed run resumes to the same result, bit for bit (same options, data and thread count).
import Foundation
import TailorFormats
import TailorKernels
import TailorModels

public struct TuneOptions: Codable, Equatable, Sendable {
    public var epochs = 3
    public var learningRate: Float = 2e-4
    public var rank = 8
    public var alpha: Float = 16
    public var dropout: Float = 0.05
    public var targets: [LoRATarget] = LoRATarget.allCases
    /// Sequences per micro-batch.
    public var batchSize = 8
    /// Micro-batches per optimizer step.
    public var accumulation = 1
    public var maxLength = 512
    public var warmupRatio: Float = 0.05
    public var weightDecay: Float = 0.01
    public var clipNorm: Float = 1.0
    /// Steps between validations (and checkpoints); nil: about four times per epoch.
    public var evalEvery: Int?
    /// Validations without improvement before stopping.
    public var patience = 3
    public var seed: UInt64 = 42
    /// Stop after this many optimizer steps (nil: all epochs).
    public var maxSteps: Int?
    public init() {}

    public func validate() throws {
        func bad(_ s: String) -> TuningError { .badOption(s) }
        guard epochs > 0 else { throw bad("--epochs must be at least 1") }
        guard learningRate > 0, learningRate < 1 else { throw bad("--lr must be between 0 and 1 (typical LoRA rates are 1e-4 to 5e-4)") }
        guard rank > 0, rank <= 256 else { throw bad("--rank must be between 1 and 256 (typical: 8 or 16)") }
        guard alpha > 0 else { throw bad("--alpha must be positive (typical: twice the rank)") }
        guard dropout >= 0, dropout < 1 else { throw bad("--dropout must be in [0, 1)") }
        guard batchSize > 0, accumulation > 0 else { throw bad("--batch and --accumulate must be at least 1") }
        guard maxLength >= 8 else { throw bad("--max-len must be at least 8 tokens") }
        guard patience > 0 else { throw bad("--patience must be at least 1") }
        if let e = evalEvery, e <= 0 { throw bad("--eval-every must be at least 1") }
    }
}

/// What the display shows after each step or validation.
public struct TrainingEvent: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var epoch: Double
    public var loss: Double?
    public var validationLoss: Double?
    public var bestValidationLoss: Double?
    public var learningRate: Float
    public var gradNorm: Float?
    public var tokensPerSecond: Double
    public var elapsed: Double
    public var eta: Double
    public var improved = false
    public var resumedFrom: Int?
    /// Encoder training counts examples, not tokens.
    public var samplesPerSecond: Double? = nil
    public var validationAccuracy: Double? = nil
}

public struct TrainingSummary: Sendable {
    public var steps: Int
    public var stoppedEarly: Bool
    public var bestStep: Int?
    public var bestValidationLoss: Double?
    public var initialValidationLoss: Double?
    public var finalTrainingLoss: Double?
    public var trainedTokens: Int
    public var seconds: Double
    public var tokensPerSecond: Double
    public var resumedFrom: Int?
}

public final class LoRATrainer {
    public let lm: LanguageModel
    public let base: LlamaModel
    public let options: TuneOptions
    public let train: [TokenizedExample]
    public let validation: [TokenizedExample]
    public let outputDirectory: String
    public let model: LoRAModel
    /// Set (from another thread or a signal handler) to stop after the current step, with a checkpoint.
    public var stopRequested: () -> Bool = { false }
    /// Called after each checkpoint is written (tests use it to interrupt a run).
    public var afterCheckpoint: (Int) throws -> Void = { _ in }

    var m: [Float], v: [Float]
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    public let evalEvery: Int

    public static let checkpointName = "checkpoint.safetensors"
    public static let metricsName = "metrics.jsonl"
    public static let curveName = "loss.svg"

    public init(model lm: LanguageModel, train: [TokenizedExample], validation: [TokenizedExample], options: TuneOptions,
                outputDirectory: String, threads: Int = ThreadPool.availableCores) throws {
        try options.validate()
        guard let base = lm.model as? LlamaModel else { throw TuningError.unsupportedModel("LoRA training supports Llama-family models (SmolLM2, Llama, Qwen2, Mistral); \(lm.name) is not one") }
        guard !train.isEmpty else { throw TuningError.badOption("no training examples") }
        self.lm = lm
        self.base = base
        self.options = options
        self.train = train
        self.validation = validation
        self.outputDirectory = outputDirectory
        let ad = LoRAAdapter(for: base.config, rank: options.rank, alpha: options.alpha, targets: options.targets)
        ad.initialize(seed: options.seed)
        model = try LoRAModel(base: base, adapter: ad, dropout: options.dropout, threads: threads)
        m = [Float](repeating: 0, count: ad.parameterCount)
        v = m
        let perStep = options.batchSize * options.accumulation
        stepsPerEpoch = max(1, (train.count + perStep - 1) / perStep)
        totalSteps = min(options.maxSteps ?? Int.max, stepsPerEpoch * options.epochs)
        evalEvery = options.evalEvery ?? max(1, stepsPerEpoch / 4)
    }

    public var adapter: LoRAAdapter { model.adapter }

    // MARK: schedule and optimizer

    /// Linear warm-up to the peak rate, then cosine decay to zero at the last step.
    public func learningRate(step s: Int) -> Float {
        let warm = Int((options.warmupRatio * Float(totalSteps)).rounded(.up))
        if s < warm { return options.learningRate * Float(s + 1) / Float(warm) }
        let progress = Float(s - warm) / Float(max(1, totalSteps - warm))
        return options.learningRate * 0.5 * (1 + cos(Float.pi * progress))
    }

    /// Example indices of optimizer step `s`: epoch e visits the examples in a seeded shuffle.
    func examples(step s: Int) -> [[Int]] {
        TrainingLoop<TuneOptions>.batches(step: s, count: train.count, stepsPerEpoch: stepsPerEpoch, batch: options.batchSize,
                                          accumulation: options.accumulation, seed: options.seed)
    }

    /// One optimizer step; returns the mean loss, the gradient norm before clipping and the tokens run.
    func step(_ s: Int) -> (loss: Double, gradNorm: Float, tokens: Int) {
        model.zeroGradients()
        var loss = 0.0, count = 0, tokens = 0
        for (i, micro) in examples(step: s).enumerated() {
            let batch = PackedBatch(micro.map { train[$0] }, maxLength: options.maxLength)
            let seed = options.seed &+ UInt64(s) &* 0x1000_0001 &+ UInt64(i)
            let r = model.run(batch, backward: true, dropoutSeed: seed)
            loss += r.loss; count += r.count; tokens += batch.rows
        }
        let n = Float(max(count, 1))
        var norm2: Double = 0
        for i in model.gradients.indices { model.gradients[i] /= n; norm2 += Double(model.gradients[i] * model.gradients[i]) }
        let norm = Float(norm2.squareRoot())
        let clip: Float = options.clipNorm > 0 && norm > options.clipNorm ? options.clipNorm / (norm + 1e-6) : 1
        adamW(step: s, lr: learningRate(step: s), gradScale: clip)
        return (count > 0 ? loss / Double(count) : 0, norm, tokens)
    }

    func adamW(step s: Int, lr: Float, gradScale: Float) {
        let b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8, wd = options.weightDecay
        let t = Float(s + 1)
        let c1 = 1 - pow(b1, t), c2 = 1 - pow(b2, t)
        let g = model.gradients
        model.adapter.parameters.withUnsafeMutableBufferPointer { p in
            m.withUnsafeMutableBufferPointer { m in
                v.withUnsafeMutableBufferPointer { v in
                    for i in 0..<p.count {
                        let gi = g[i] * gradScale
                        p[i] -= lr * wd * p[i]
                        m[i] = b1 * m[i] + (1 - b1) * gi
                        v[i] = b2 * v[i] + (1 - b2) * gi * gi
                        p[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
                    }
                }
            }
        }
    }

    /// Mean loss per trained token over the validation set (no dropout).
    public func validationLoss() -> Double? {
        guard !validation.isEmpty else { return nil }
        var loss = 0.0, count = 0
        for i in stride(from: 0, to: validation.count, by: options.batchSize) {
            let b = PackedBatch(Array(validation[i..<min(validation.count, i + options.batchSize)]), maxLength: options.maxLength)
            let r = model.run(b, backward: false)
            loss += r.loss; count += r.count
        }
        return count > 0 ? loss / Double(count) : nil
    }

    // MARK: the loop

    var dataFingerprint: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for e in train + [TokenizedExample(ids: [-1], trained: [false])] + validation {
            for (id, t) in zip(e.ids, e.trained) { h = (h ^ UInt64(bitPattern: Int64(id * 2 + (t ? 1 : 0)))) &* 0x100_0000_01b3 }
        }
        return h
    }

    /// Trains to the end (or early stop, or a stop request), resuming from a checkpoint in the
    /// output directory when one is there. The best adapter (lowest validation loss; the last one
    /// without validation) is in the output directory as PEFT files and a GGUF LoRA.
    @discardableResult
    public func run(_ report: (TrainingEvent) -> Void = { _ in }) throws -> TrainingSummary {
        let loop = TrainingLoop<TuneOptions>(
            outputDirectory: outputDirectory, options: options, dataFingerprint: dataFingerprint, totalSteps: totalSteps,
            stepsPerEpoch: stepsPerEpoch, evalEvery: evalEvery, patience: options.patience, unit: "tokens",
            learningRate: { self.learningRate(step: $0) },
            step: { s in let r = self.step(s); return StepOutcome(loss: r.loss, gradNorm: r.gradNorm, units: r.tokens) },
            validate: { self.validationLoss().map { Validation(loss: $0) } },
            improves: { v, state in v.loss < (state.bestLoss ?? .infinity) },
            saveBest: { try self.saveAdapter() },
            checkpointTensors: { [("parameters", self.adapter.parameters), ("adam_m", self.m), ("adam_v", self.v)] },
            restore: { f in
                let params = try f.floats("parameters"), mm = try f.floats("adam_m"), vv = try f.floats("adam_v")
                guard params.count == self.adapter.parameterCount, mm.count == self.m.count, vv.count == self.v.count else {
                    throw TuningError.badCheckpoint(path: self.outputDirectory + "/" + LoRATrainer.checkpointName, reason: "tensor sizes do not fit the adapter")
                }
                self.adapter.parameters = params; self.m = mm; self.v = vv
            },
            stopRequested: stopRequested, afterCheckpoint: afterCheckpoint)
        let o = try loop.run(report)
        return TrainingSummary(steps: o.state.step, stoppedEarly: o.state.stoppedEarly, bestStep: o.state.bestStep,
                               bestValidationLoss: o.state.bestLoss, initialValidationLoss: o.state.initialLoss,
                               finalTrainingLoss: o.lastLoss, trainedTokens: o.state.trained, seconds: o.state.seconds,
                               tokensPerSecond: o.unitsPerSecond, resumedFrom: o.resumedFrom)
    }

    /// Writes the current adapter as PEFT files and a GGUF LoRA in the output directory.
    public func saveAdapter() throws {
        let cfg = base.config
        try AdapterFiles.savePEFT(adapter, config: cfg, to: outputDirectory, baseModel: lm.name, dropout: options.dropout)
        try AdapterFiles.saveGGUF(adapter, config: cfg, to: outputDirectory + "/" + AdapterFiles.ggufName, name: lm.name + " LoRA")
        let info: JSONValue = .object([("base_model_file", .string(URL(fileURLWithPath: lm.path).lastPathComponent)),
                                        ("base_model_name", .string(lm.name)), ("training_examples", .int(train.count)),
                                        ("validation_examples", .int(validation.count)), ("options", try JSONValue.encode(options))])
        try (info.serialized() + "\n").write(toFile: outputDirectory + "/tailor_training.json", atomically: true, encoding: .utf8)
    }

    static func differences<T: Encodable>(_ a: T, _ b: T) -> String {
        let ea = (try? JSONValue.encode(a)) ?? .null, eb = (try? JSONValue.encode(b)) ?? .null
        guard case .object(let x) = ea, case .object(let y) = eb else { return "?" }
        let diffs = x.compactMap { k, va -> String? in
            let vb = y.first { $0.0 == k }?.1
            return vb == va ? nil : "\(k): \(va.serialized()) then, \(vb?.serialized() ?? "none") now"
        }
        return diffs.joined(separator: "; ")
    }
}

extension JSONValue {
    /// Any Encodable as a JSONValue (through JSON text).
    static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONValue.parse(String(decoding: try JSONEncoder().encode(value), as: UTF8.self))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// metrics.jsonl: one JSON object per line, appended as training goes.
struct MetricsLog {
    let path: String
    private(set) var lines: [JSONValue] = []
    private var unwritten = 0

    /// Opens the log, keeping only lines up to `keepThroughStep` (a resumed run continues it).
    init(path: String, keepThroughStep: Int) throws {
        self.path = path
        if keepThroughStep >= 0, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            lines = text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }.filter { ($0["step"]?.int ?? 0) <= keepThroughStep }
        }
        try write()
    }

    mutating func append(_ v: JSONValue) { lines.append(v); unwritten += 1 }

    mutating func flush() throws { if unwritten > 0 { try write() } }

    private mutating func write() throws {
        try lines.map { $0.serialized() + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        unwritten = 0
    }
}

/// The loss curve as a self-contained SVG: training loss per step (light) with its moving average,
/// validation loss as points joined by a line.
public enum LossCurve {
    public static func svg(train: [(Double, Double)], validation: [(Double, Double)], title: String = "Loss") -> String {
        let W = 640.0, H = 360.0, left = 56.0, right = 16.0, top = 32.0, bottom = 40.0
        let all = train + validation
        guard !all.isEmpty else { return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"360\"></svg>\n" }
        let maxX = max(1, all.map(\.0).max()!), minY = all.map(\.1).min()!, maxY = all.map(\.1).max()!
        let lo = max(minY >= 0 ? 0 : -Double.infinity, minY - 0.05 * max(maxY - minY, 1e-3)), hi = maxY + 0.05 * max(maxY - minY, 1e-3)
        func px(_ x: Double) -> Double { left + x / maxX * (W - left - right) }
        func py(_ y: Double) -> Double { top + (hi - y) / (hi - lo) * (H - top - bottom) }
        func path(_ pts: [(Double, Double)]) -> String {
            pts.enumerated().map { i, p in String(format: "%@%.1f,%.1f", i == 0 ? "M" : "L", px(p.0), py(p.1)) }.joined(separator: " ")
        }
        var smooth: [(Double, Double)] = []
        var avg: Double?
        for p in train { avg = avg.map { 0.9 * $0 + 0.1 * p.1 } ?? p.1; smooth.append((p.0, avg!)) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" viewBox=\"0 0 \(Int(W)) \(Int(H))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(Int(W / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">\(title)</text>\n"
        for k in 0...4 {
            let y = lo + (hi - lo) * Double(k) / 4
            s += String(format: "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", left, W - right, py(y), py(y))
            s += String(format: "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n", left - 6, py(y) + 4, y)
        }
        s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">step</text>\n", (left + W - right) / 2, H - 8)
        s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%d</text>\n", px(maxX), H - bottom + 16, Int(maxX))
        s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">0</text>\n", px(0), H - bottom + 16)
        if !train.isEmpty {
            s += "<path d=\"\(path(train))\" fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\"/>\n"
            s += "<path d=\"\(path(smooth))\" fill=\"none\" stroke=\"#3182bd\" stroke-width=\"2\"/>\n"
        }
        if !validation.isEmpty {
            s += "<path d=\"\(path(validation))\" fill=\"none\" stroke=\"#e6550d\" stroke-width=\"2\"/>\n"
            for p in validation { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#e6550d\"/>", px(p.0), py(p.1)) }
            s += "\n"
        }
        s += String(format: "<text x=\"%.0f\" y=\"46\" fill=\"#3182bd\">training loss</text>", W - right - 180)
        s += String(format: "<text x=\"%.0f\" y=\"46\" fill=\"#e6550d\">validation loss</text>\n", W - right - 90)
        return s + "</svg>\n"
    }

    static func write(metrics: [JSONValue], to path: String) throws {
        let train = metrics.compactMap { m -> (Double, Double)? in
            guard let s = m["step"]?.double, let l = m["loss"]?.double else { return nil }
            return (s, l)
        }
        let val = metrics.compactMap { m -> (Double, Double)? in
            guard let s = m["step"]?.double, let l = m["val_loss"]?.double else { return nil }
            return (s, l)
        }
        try svg(train: train, validation: val).write(toFile: path, atomically: true, encoding: .utf8)
    }
}
