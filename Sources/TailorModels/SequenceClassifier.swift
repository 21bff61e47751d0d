// Text classification with a fine-tuned BERT (Hugging Face BertForSequenceClassification, as
// `tailor tune-classifier` writes it or transformers saves it): the encoder, the pooler
// (tanh(W·h[CLS] + b)) and a linear classifier; softmax scores over the labels of config.json.
import Foundation
import TailorFormats
import TailorKernels
import TailorTokenizers

// @unchecked Sendable: the encoder and head are immutable and calls only read them (concurrent
// calls take turns on the compute scheduler); `batchSize` is set by the owner before sharing.
public final class SequenceClassifier: @unchecked Sendable {
    public let directory: String
    public let encoder: BertModel
    public let tokenizer: any EncoderTokenizer
    public let labels: [String]
    public let maxLength: Int
    public var batchSize = 32
    let poolW: [Float], poolB: [Float], clsW: [Float], clsB: [Float]

    public init(directory: String, threads: Int = ThreadPool.availableCores) throws {
        self.directory = directory
        let cfgPath = directory + "/config.json"
        guard let text = try? String(contentsOfFile: cfgPath, encoding: .utf8) else { throw ModelError.modelNotFound(cfgPath) }
        let cfg = try JSONValue.parse(text)
        guard case .object(let idToLabel)? = cfg["id2label"], !idToLabel.isEmpty else {
            throw ModelError.badHyperParameter(key: "id2label", value: "missing", reason: "\(cfgPath) names no labels: is this a classifier (tailor tune-classifier writes one)?")
        }
        var labels = [String](repeating: "", count: idToLabel.count)
        for (k, v) in idToLabel {
            guard let i = Int(k), i >= 0, i < labels.count, let name = v.string else {
                throw ModelError.badHyperParameter(key: "id2label", value: k, reason: "ids must be 0..<\(labels.count) with string labels")
            }
            labels[i] = name
        }
        self.labels = labels
        encoder = try BertModel(directory: directory, threads: threads)
        tokenizer = try EncoderTokenizers.load(directory: directory)
        maxLength = encoder.config.maxPositions - encoder.config.positionOffset
        let st: SafetensorsFile
        do { st = try SafetensorsFile(path: directory + "/model.safetensors") } catch { throw ModelError.format(error) }
        let H = encoder.config.hidden, K = labels.count
        func load(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let info = st.tensor(name) else { throw ModelError.format(.missingTensor(name)) }
            guard info.shape == shape else { throw ModelError.tensorShape(name: name, expected: shape, found: info.shape) }
            do { return try st.floats(name) } catch { throw ModelError.format(error) }
        }
        poolW = try load("bert.pooler.dense.weight", [H, H]); poolB = try load("bert.pooler.dense.bias", [H])
        clsW = try load("classifier.weight", [K, H]); clsB = try load("classifier.bias", [K])
    }

    /// Logits [K] of each text.
    public func logits(_ texts: [String]) throws -> [[Float]] {
        let H = encoder.config.hidden, K = labels.count
        var out = [[Float]](repeating: [], count: texts.count)
        let encoded = texts.map { tokenizer.encode($0, maxLength: maxLength) }
        let order = encoded.indices.sorted { encoded[$0].count < encoded[$1].count }
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let idx = Array(order[start..<min(order.count, start + batchSize)])
            let (hidden, L) = try encoder.forward(idx.map { encoded[$0] })
            for (b, i) in idx.enumerated() {
                let cls = hidden[(b * L * H)..<(b * L * H + H)]
                var pooled = [Float](repeating: 0, count: H)
                for o in 0..<H {
                    var s = poolB[o]
                    for (j, x) in cls.enumerated() { s += poolW[o * H + j] * x }
                    pooled[o] = tanh(s)
                }
                out[i] = (0..<K).map { k in var s = clsB[k]; for j in 0..<H { s += clsW[k * H + j] * pooled[j] }; return s }
            }
        }
        return out
    }

    /// The label of each text and the probability of every label.
    public func classify(_ texts: [String]) throws -> [(label: String, scores: [Float])] {
        try logits(texts).map { z in
            let m = z.max() ?? 0
            let e = z.map { exp($0 - m) }, s = e.reduce(0, +)
            let p = e.map { $0 / s }
            return (labels[p.indices.max { p[$0] < p[$1] }!], p)
        }
    }
}
