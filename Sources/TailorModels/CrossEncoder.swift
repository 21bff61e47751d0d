// A cross-encoder (Nogueira & Cho 2019): BERT reads query and passage together as a pair and a
// classification head scores their relevance — Hugging Face's BertForSequenceClassification
// (pooler: dense + tanh over [CLS], then a linear classifier) or RoBERTa's head (dense + tanh,
// then out_proj, over <s>). Scores are the raw logit of the single label (or the last label).
import CBLAS
import Foundation
import TailorFormats
import TailorKernels
import TailorTokenizers

// @unchecked Sendable: the encoder and head are immutable; scoring runs one call at a time under
// `lock`; `batchSize` is set by the owner before the model is shared.
public final class CrossEncoder: @unchecked Sendable {
    public let directory: String
    public let encoder: BertModel
    public let tokenizer: any EncoderTokenizer
    public let maxLength: Int
    public var batchSize = 16
    let denseW: [Float], denseB: [Float]
    let outW: [Float], outB: [Float]
    let labels: Int
    private let lock = NSLock()

    public var name: String { URL(fileURLWithPath: directory).lastPathComponent }

    public init(directory: String, threads: Int = ThreadPool.availableCores) throws {
        self.directory = directory
        encoder = try BertModel(directory: directory, threads: threads)
        tokenizer = try EncoderTokenizers.load(directory: directory)
        let st: SafetensorsFile
        do { st = try SafetensorsFile(path: directory + "/model.safetensors") } catch { throw ModelError.format(error) }
        let H = encoder.config.hidden
        func t(_ name: String) throws -> [Float] {
            guard st.tensor(name) != nil else { throw ModelError.format(.missingTensor(name)) }
            do { return try st.floats(name) } catch let e as FormatError { throw ModelError.format(e) }
        }
        if st.tensor("bert.pooler.dense.weight") != nil || st.tensor("pooler.dense.weight") != nil {
            let p = st.tensor("bert.pooler.dense.weight") != nil ? "bert." : ""
            denseW = try t(p + "pooler.dense.weight"); denseB = try t(p + "pooler.dense.bias")
            outW = try t("classifier.weight"); outB = try t("classifier.bias")
        } else if st.tensor("classifier.dense.weight") != nil {
            denseW = try t("classifier.dense.weight"); denseB = try t("classifier.dense.bias")
            outW = try t("classifier.out_proj.weight"); outB = try t("classifier.out_proj.bias")
        } else {
            throw ModelError.modelNotFound("\(directory) has no classification head (pooler + classifier); a cross-encoder is a BertForSequenceClassification checkpoint")
        }
        labels = outB.count
        guard denseW.count == H * H, outW.count == labels * H, labels >= 1 else {
            throw ModelError.tensorShape(name: "classifier", expected: [labels, H], found: [outW.count / max(H, 1), H])
        }
        maxLength = encoder.config.maxPositions - encoder.config.positionOffset
    }

    /// Relevance of each passage to the query (higher is more relevant).
    public func score(_ query: String, _ passages: [String]) throws -> [Float] {
        lock.lock(); defer { lock.unlock() }
        let H = encoder.config.hidden
        var out = [Float](repeating: 0, count: passages.count)
        for start in stride(from: 0, to: passages.count, by: batchSize) {
            let idx = Array(start..<min(passages.count, start + batchSize))
            let batch = idx.map { tokenizer.encode(query, passages[$0], maxLength: maxLength) }
            let (hidden, L) = try encoder.forward(batch)
            for (bi, i) in idx.enumerated() {
                let cls = Array(hidden[(bi * L * H)..<(bi * L * H + H)])
                var pooled = [Float](repeating: 0, count: H)
                for o in 0..<H {
                    var s = denseB[o]
                    for k in 0..<H { s += denseW[o * H + k] * cls[k] }
                    pooled[o] = tanh(s)
                }
                let label = labels - 1
                var logit = outB[label]
                for k in 0..<H { logit += outW[label * H + k] * pooled[k] }
                out[i] = logit
            }
        }
        return out
    }
}
