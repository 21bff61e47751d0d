// Fine-tuning a BERT encoder: as a text classifier (`tailor tune-classifier`) or as a retriever
// (`tailor tune-retriever`). The safeguards are the LoRA trainer's: a validation set measured at
// the start and every few steps, early stopping, the best model kept, and atomic checkpoints
// (weights, Adam moments, state) from which a re-run resumes bit for bit. The optimizer is AdamW
// (no decay on biases and LayerNorm), with linear warm-up and linear decay, as Hugging Face's
// Trainer defaults. The result is a Hugging Face model directory: BertForSequenceClassification
// for a classifier, a sentence-transformers model for a retriever.
import Foundation
import TailorFormats
import TailorKernels
import TailorModels
import TailorTokenizers

// MARK: data

/// One labelled text of a classification file: `{"text": …, "label": …}` (`input` for `text`).
public struct LabelledText: Sendable, Equatable {
    public var text: String
    public var label: String
    public init(text: String, label: String) { self.text = text; self.label = label }

    public static func load(_ path: String) throws -> [LabelledText] {
        try JSONLines.read(path) { o, where_ in
            guard let text = o["text"]?.string ?? o["input"]?.string else {
                throw TuningError.badData("\(where_): needs a \"text\" (or \"input\") string, e.g. {\"text\": \"A warm, funny film.\", \"label\": \"positive\"}")
            }
            guard let label = o["label"]?.string ?? o["label"]?.int.map(String.init) else {
                throw TuningError.badData("\(where_): needs a \"label\" (a string or an integer)")
            }
            return LabelledText(text: text, label: label)
        }
    }
}

/// A (query, passage) pair for retriever training: `{"query", "passage"}`; `question`/`anchor`
/// for the query, `positive`/`document` for the passage; an optional `negative` passage.
public struct TextPair: Sendable, Equatable, Codable {
    public var query: String
    public var passage: String
    public var negative: String?
    public init(query: String, passage: String, negative: String? = nil) { self.query = query; self.passage = passage; self.negative = negative }

    public static func load(_ path: String) throws -> [TextPair] {
        try JSONLines.read(path) { o, where_ in
            guard let q = o["query"]?.string ?? o["question"]?.string ?? o["anchor"]?.string else {
                throw TuningError.badData("\(where_): needs a \"query\" string, e.g. {\"query\": \"what lowers blood pressure\", \"passage\": \"…\"}")
            }
            guard let p = o["passage"]?.string ?? o["positive"]?.string ?? o["document"]?.string else {
                throw TuningError.badData("\(where_): needs a \"passage\" string (the text that answers the query)")
            }
            return TextPair(query: q, passage: p, negative: o["negative"]?.string)
        }
    }
}

enum JSONLines {
    /// Each non-empty line of a JSONL file through `parse(object, "file:line")`.
    static func read<T>(_ path: String, _ parse: (JSONValue, String) throws -> T) throws -> [T] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw TuningError.badData("\(path): cannot read the file") }
        var out: [T] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let s = line.trimmingCharacters(in: .whitespaces)
            if s.isEmpty { continue }
            let where_ = "\(path):\(i + 1)"
            guard let o = try? JSONValue.parse(s), case .object = o else { throw TuningError.badData("\(where_): not a JSON object") }
            out.append(try parse(o, where_))
        }
        guard !out.isEmpty else { throw TuningError.badData("\(path): no examples") }
        return out
    }
}

// MARK: options

public struct EncoderTuneOptions: Codable, Equatable, Sendable {
    public var epochs = 3
    public var learningRate: Float = 5e-5
    public var batchSize = 16
    public var accumulation = 1
    public var maxLength = 128
    public var warmupRatio: Float = 0.1
    public var weightDecay: Float = 0.01
    public var clipNorm: Float = 1.0
    public var dropout: Float = 0.1
    /// Embeddings and the first N layers are not trained.
    public var freezeLayers = 0
    public var evalEvery: Int?
    public var patience = 3
    public var seed: UInt64 = 42
    public var maxSteps: Int?
    /// Retrieval: the similarity scale of the ranking loss (sentence-transformers' 20).
    public var scale: Float = 20
    public init() {}

    public func validate(layers: Int) throws {
        func bad(_ s: String) -> TuningError { .badOption(s) }
        guard epochs > 0 else { throw bad("--epochs must be at least 1") }
        guard learningRate > 0, learningRate < 1 else { throw bad("--lr must be between 0 and 1 (typical encoder rates are 2e-5 to 1e-4)") }
        guard batchSize > 0, accumulation > 0 else { throw bad("--batch and --accumulate must be at least 1") }
        guard maxLength >= 4 else { throw bad("--max-len must be at least 4 tokens") }
        guard dropout >= 0, dropout < 1 else { throw bad("--dropout must be in [0, 1)") }
        guard freezeLayers >= 0, freezeLayers <= layers else { throw bad("--freeze-layers must be between 0 and \(layers) (the encoder's layers)") }
        guard patience > 0 else { throw bad("--patience must be at least 1") }
        if let e = evalEvery, e <= 0 { throw bad("--eval-every must be at least 1") }
    }
}

public enum EncoderTask: Sendable, Equatable {
    case classification(labels: [String])
    case retrieval
}

public struct EncoderValidation: Sendable {
    public var loss: Double
    /// Classification: accuracy; retrieval: how often the query's own passage ranks first in its batch.
    public var accuracy: Double
}

public struct EncoderTrainingSummary: Sendable {
    public var steps: Int
    public var stoppedEarly: Bool
    public var bestStep: Int?
    public var best: EncoderValidation?
    public var initial: EncoderValidation?
    public var seconds: Double
    public var samplesPerSecond: Double
    public var trainedSamples: Int
    public var resumedFrom: Int?
}

// MARK: trainer

public final class EncoderTrainer {
    public let task: EncoderTask
    public let options: EncoderTuneOptions
    public let model: EncoderTrainingModel
    public let sourceDirectory: String
    public let outputDirectory: String
    let tokenizer: any EncoderTokenizer
    /// Classification: (text, label index); retrieval: (query, passage, negative?).
    let trainItems: [[EncodedText]], trainTargets: [Int]
    let valItems: [[EncodedText]], valTargets: [Int]
    public var stopRequested: () -> Bool = { false }
    public var afterCheckpoint: (Int) throws -> Void = { _ in }
    var m: [Float], v: [Float]
    public let stepsPerEpoch: Int, totalSteps: Int, evalEvery: Int

    public static let checkpointName = "checkpoint.safetensors"
    public static let metricsName = "metrics.jsonl"

    /// A classifier trainer; `labels` fixes the label order (default: sorted labels of the training data).
    public convenience init(classifierFrom encoder: String, train: [LabelledText], validation: [LabelledText], labels: [String]? = nil,
                            options: EncoderTuneOptions, outputDirectory: String, threads: Int = ThreadPool.availableCores) throws {
        let labels = labels ?? Array(Set(train.map(\.label))).sorted()
        guard labels.count >= 2 else { throw TuningError.badData("the training data has \(labels.count) label(s); a classifier needs at least two") }
        for (name, set) in [("training", train), ("validation", validation)] {
            if let bad = set.first(where: { !labels.contains($0.label) }) {
                throw TuningError.badData("\(name) label \"\(bad.label)\" is not one of the labels \(labels.joined(separator: ", ")); fix the data or --labels")
            }
        }
        try self.init(task: .classification(labels: labels), encoder: encoder, options: options, outputDirectory: outputDirectory, threads: threads) { tok, len in
            (train.map { [tok.encode($0.text, maxLength: len)] }, train.map { labels.firstIndex(of: $0.label)! },
             validation.map { [tok.encode($0.text, maxLength: len)] }, validation.map { labels.firstIndex(of: $0.label)! })
        }
    }

    /// A retriever trainer on (query, passage) pairs.
    public convenience init(retrieverFrom encoder: String, train: [TextPair], validation: [TextPair],
                            options: EncoderTuneOptions, outputDirectory: String, threads: Int = ThreadPool.availableCores) throws {
        func items(_ t: any EncoderTokenizer, _ len: Int, _ pairs: [TextPair]) -> [[EncodedText]] {
            pairs.map { p in [t.encode(p.query, maxLength: len), t.encode(p.passage, maxLength: len)] + (p.negative.map { [t.encode($0, maxLength: len)] } ?? []) }
        }
        // Passages that occur twice are not each other's negatives: the target carries the passage's identity.
        var ids: [String: Int] = [:]
        func key(_ p: TextPair) -> Int { if let k = ids[p.passage] { return k }; ids[p.passage] = ids.count; return ids.count - 1 }
        let tk = train.map(key), vk = validation.map(key)
        try self.init(task: .retrieval, encoder: encoder, options: options, outputDirectory: outputDirectory, threads: threads) { tok, len in
            (items(tok, len, train), tk, items(tok, len, validation), vk)
        }
    }

    init(task: EncoderTask, encoder: String, options: EncoderTuneOptions, outputDirectory: String, threads: Int,
         data: (any EncoderTokenizer, Int) throws -> ([[EncodedText]], [Int], [[EncodedText]], [Int])) throws {
        self.task = task
        self.options = options
        sourceDirectory = encoder
        self.outputDirectory = outputDirectory
        let labels: Int
        if case .classification(let l) = task { labels = l.count } else { labels = 0 }
        model = try EncoderTrainingModel(directory: encoder, labels: labels, frozenLayers: options.freezeLayers, dropout: options.dropout,
                                         seed: options.seed, threads: threads)
        try options.validate(layers: model.config.layers)
        tokenizer = try EncoderTokenizers.load(directory: encoder)
        let maxLen = min(options.maxLength, model.config.maxPositions - model.config.positionOffset)
        (trainItems, trainTargets, valItems, valTargets) = try data(tokenizer, maxLen)
        guard !trainItems.isEmpty else { throw TuningError.badData("no training examples") }
        if task == .retrieval && options.batchSize < 2 { throw TuningError.badOption("--batch must be at least 2: the other passages of a batch are each query's negatives") }
        m = [Float](repeating: 0, count: model.trainable.count)
        v = m
        let perStep = options.batchSize * options.accumulation
        stepsPerEpoch = max(1, (trainItems.count + perStep - 1) / perStep)
        totalSteps = min(options.maxSteps ?? Int.max, stepsPerEpoch * options.epochs)
        evalEvery = options.evalEvery ?? max(1, stepsPerEpoch / 2)
    }

    public var trainingCount: Int { trainItems.count }
    public var validationCount: Int { valItems.count }

    // MARK: schedule and optimizer

    /// Linear warm-up to the peak rate, then linear decay to zero at the last step.
    public func learningRate(step s: Int) -> Float {
        let warm = Int((options.warmupRatio * Float(totalSteps)).rounded(.up))
        if s < warm { return options.learningRate * Float(s + 1) / Float(warm) }
        return options.learningRate * max(0, Float(totalSteps - s) / Float(max(1, totalSteps - warm)))
    }

    func examples(step s: Int) -> [[Int]] {
        TrainingLoop<EncoderTuneOptions>.batches(step: s, count: trainItems.count, stepsPerEpoch: stepsPerEpoch, batch: options.batchSize,
                                                 accumulation: options.accumulation, seed: options.seed)
    }

    /// Loss (summed), examples and correct predictions of one batch of `items`.
    func run(_ idx: [Int], items: [[EncodedText]], targets: [Int], backward: Bool, seed: UInt64?) throws -> (loss: Double, count: Int, correct: Int) {
        switch task {
        case .classification:
            let batch = EncoderBatch(idx.map { items[$0][0] })
            let t = idx.map { targets[$0] }
            let r = try model.classify(batch, targets: t, backward: backward, dropoutSeed: seed)
            let K = model.labelCount
            let correct = t.indices.filter { i in
                let row = r.logits[(i * K)..<((i + 1) * K)]
                return row.indices.max { row[$0] < row[$1] }! - i * K == t[i]
            }.count
            return (r.loss, idx.count, correct)
        case .retrieval:
            let Q = idx.count
            let negatives = idx.compactMap { items[$0].count > 2 ? items[$0][2] : nil }
            let batch = EncoderBatch(idx.map { items[$0][0] } + idx.map { items[$0][1] } + negatives)
            let e = try model.embed(batch, dropoutSeed: seed)
            let H = model.config.hidden
            let keys = idx.map { targets[$0] } + [Int](repeating: -1, count: negatives.count)
            let r = RankingLoss.multipleNegatives(queries: Array(e.embeddings[0..<(Q * H)]), passages: Array(e.embeddings[(Q * H)...]),
                                                  dimension: H, scale: options.scale, passageKeys: keys)
            if backward { model.embeddingBackward(r.dQueries + r.dPassages, embeddings: e.embeddings, norms: e.norms) }
            return (r.loss, Q, r.correct)
        }
    }

    /// One optimizer step (forward, backward, AdamW) without validation or checkpoints: for benchmarks.
    public func trainStep(_ s: Int) throws -> (loss: Double, gradNorm: Float, samples: Int) { try step(s) }

    func step(_ s: Int) throws -> (loss: Double, gradNorm: Float, samples: Int) {
        let T = model.trainable, G = model.gradients
        (G + T.lowerBound).update(repeating: 0, count: T.count)
        var loss = 0.0, count = 0
        for (i, micro) in examples(step: s).enumerated() {
            let seed = options.seed &+ UInt64(s) &* 0x1000_0001 &+ UInt64(i)
            let r = try run(micro, items: trainItems, targets: trainTargets, backward: true, seed: seed)
            loss += r.loss; count += r.count
        }
        let n = Float(max(count, 1))
        // Mean over the step's examples, and the global norm, in parallel slices.
        let parts = model.pool.threads, per = (T.count + parts - 1) / parts
        var partial = [Double](repeating: 0, count: parts)
        partial.withUnsafeMutableBufferPointer { out in
            model.pool.dispatch(parts) { i in
                let lo = T.lowerBound + i * per, hi = min(T.upperBound, lo + per)
                if lo < hi { out[i] = VectorMath.scaleSumSquares(G + lo, hi - lo, 1 / n) }
            }
        }
        let norm = Float(partial.reduce(0, +).squareRoot())
        let clip: Float = options.clipNorm > 0 && norm > options.clipNorm ? options.clipNorm / (norm + 1e-6) : 1
        adamW(step: s, lr: learningRate(step: s), gradScale: clip)
        return (count > 0 ? loss / Double(count) : 0, norm, count)
    }

    func adamW(step s: Int, lr: Float, gradScale: Float) {
        let b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8
        let t = Float(s + 1)
        let c1 = 1 - pow(b1, t), c2 = 1 - pow(b2, t)
        let P = model.parameters, G = model.gradients, base = model.trainable.lowerBound
        let tensors = model.tensors.filter { $0.offset >= base }
        m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
            let M = mp.baseAddress!, V = vp.baseAddress!
            // Slices of at most 1M parameters, so that the big embedding table is shared among threads.
            var slices: [(offset: Int, count: Int, decays: Bool)] = []
            for t in tensors {
                for lo in stride(from: 0, to: t.count, by: 1 << 20) { slices.append((t.offset + lo, min(1 << 20, t.count - lo), t.decays)) }
            }
            model.pool.dispatch(slices.count) { k in
                let sl = slices[k], j = sl.offset - base
                VectorMath.adamW(P + sl.offset, G + sl.offset, M + j, V + j, sl.count, lr: lr, weightDecay: sl.decays ? options.weightDecay : 0,
                                 beta1: b1, beta2: b2, c1: c1, c2: c2, eps: eps, gradScale: gradScale)
            }
        } }
    }

    /// Loss per example and accuracy on the validation set (no dropout).
    public func validate() throws -> EncoderValidation? {
        guard !valItems.isEmpty else { return nil }
        var loss = 0.0, count = 0, correct = 0
        for i in stride(from: 0, to: valItems.count, by: options.batchSize) {
            let r = try run(Array(i..<min(valItems.count, i + options.batchSize)), items: valItems, targets: valTargets, backward: false, seed: nil)
            loss += r.loss; count += r.count; correct += r.correct
        }
        return EncoderValidation(loss: loss / Double(max(count, 1)), accuracy: Double(correct) / Double(max(count, 1)))
    }

    // MARK: the loop

    var dataFingerprint: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ x: Int) { h = (h ^ UInt64(bitPattern: Int64(x))) &* 0x100_0000_01b3 }
        if case .classification(let labels) = task { for l in labels { for b in l.utf8 { mix(Int(b)) }; mix(-3) } }
        for (items, targets) in [(trainItems, trainTargets), (valItems, valTargets)] {
            for (it, t) in zip(items, targets) { for e in it { e.ids.forEach(mix); mix(-1) }; mix(t); mix(-2) }
            mix(-4)
        }
        return h
    }

    /// Whether `v` beats the best validation so far: a classifier by accuracy (ties: lower
    /// loss), as the metric users ship on; a retriever by its ranking loss.
    func improves(_ v: EncoderValidation, bestLoss: Double?, bestAccuracy: Double?) -> Bool {
        guard let bestLoss else { return true }
        if case .classification = task, let bestAccuracy {
            return v.accuracy > bestAccuracy + 1e-12 || (abs(v.accuracy - bestAccuracy) <= 1e-12 && v.loss < bestLoss)
        }
        return v.loss < bestLoss
    }

    /// Trains to the end (or early stop, or a stop request), resuming from a checkpoint in the
    /// output directory; the best model is there in Hugging Face's layout.
    @discardableResult
    public func run(_ report: (TrainingEvent) -> Void = { _ in }) throws -> EncoderTrainingSummary {
        let T = model.trainable
        let loop = TrainingLoop<EncoderTuneOptions>(
            outputDirectory: outputDirectory, options: options, dataFingerprint: dataFingerprint, totalSteps: totalSteps,
            stepsPerEpoch: stepsPerEpoch, evalEvery: evalEvery, patience: options.patience, unit: "samples",
            learningRate: { self.learningRate(step: $0) },
            step: { s in let r = try self.step(s); return StepOutcome(loss: r.loss, gradNorm: r.gradNorm, units: r.samples) },
            validate: { try self.validate().map { Validation(loss: $0.loss, accuracy: $0.accuracy) } },
            improves: { v, state in self.improves(EncoderValidation(loss: v.loss, accuracy: v.accuracy ?? 0), bestLoss: state.bestLoss, bestAccuracy: state.bestAccuracy) },
            saveBest: { try self.save() },
            checkpointTensors: { [("parameters", Array(UnsafeBufferPointer(start: self.model.parameters + T.lowerBound, count: T.count))),
                                  ("adam_m", self.m), ("adam_v", self.v)] },
            restore: { f in
                let params = try f.floats("parameters"), mm = try f.floats("adam_m"), vv = try f.floats("adam_v")
                guard params.count == T.count, mm.count == self.m.count, vv.count == self.v.count else {
                    throw TuningError.badCheckpoint(path: self.outputDirectory + "/" + EncoderTrainer.checkpointName, reason: "its tensors do not fit this model")
                }
                params.withUnsafeBufferPointer { (self.model.parameters + T.lowerBound).update(from: $0.baseAddress!, count: T.count) }
                self.m = mm; self.v = vv
            },
            stopRequested: stopRequested, afterCheckpoint: afterCheckpoint)
        let o = try loop.run(report)
        let st = o.state
        return EncoderTrainingSummary(
            steps: st.step, stoppedEarly: st.stoppedEarly, bestStep: st.bestStep,
            best: st.bestLoss.map { EncoderValidation(loss: $0, accuracy: st.bestAccuracy ?? 0) },
            initial: st.initialLoss.map { EncoderValidation(loss: $0, accuracy: st.initialAccuracy ?? 0) },
            seconds: st.seconds, samplesPerSecond: o.unitsPerSecond, trainedSamples: st.trained, resumedFrom: o.resumedFrom)
    }

    /// Writes the current model to the output directory (Hugging Face layout).
    public func save() throws {
        try EncoderExport.write(model, task: task, source: sourceDirectory, to: outputDirectory,
                                training: .object([("base_model", .string(URL(fileURLWithPath: sourceDirectory).lastPathComponent)),
                                                   ("training_examples", .int(trainItems.count)), ("validation_examples", .int(valItems.count)),
                                                   ("options", try JSONValue.encode(options))]))
    }
}
