// Sentence embeddings as sentence-transformers computes them (Reimers & Gurevych 2019): a BERT
// encoder, pooling as the model's 1_Pooling/config.json says (mean, CLS or max over the
// attention mask), and L2 normalization when modules.json lists a Normalize module.
import Foundation
import TailorFormats
import TailorKernels
import TailorTokenizers

public protocol Embedder: AnyObject {
    var dimension: Int { get }
    var name: String { get }
    /// The most tokens one text may have (special tokens included); longer texts are truncated.
    var maxTokens: Int { get }
    /// Tokens of `text` without the special tokens around it, untruncated.
    func countTokens(_ text: String) -> Int
    func embed(_ texts: [String]) throws -> [[Float]]
}

public enum Pooling: String, Sendable { case mean, cls, max }

// @unchecked Sendable: the encoder and tokenizer are immutable; `embed` runs one call at a time
// under `lock`; `batchSize` is set by the owner before the embedder is shared.
public final class SentenceEmbedder: Embedder, @unchecked Sendable {
    public let directory: String
    public let encoder: BertModel
    public let tokenizer: any EncoderTokenizer
    public let pooling: Pooling
    public let normalize: Bool
    public let maxLength: Int
    public var batchSize = 32
    private let lock = NSLock()

    public var dimension: Int { encoder.config.hidden }
    /// The model-cache name, or the absolute path of a model outside the cache (a tuned retriever),
    /// so that a collection built with it finds it again.
    public var name: String {
        let url = URL(fileURLWithPath: directory).standardizedFileURL
        let cache = ModelCache.directory.standardizedFileURL.path
        return url.deletingLastPathComponent().path == cache ? url.lastPathComponent : url.path
    }

    /// Loads a sentence-transformers model directory, by path or model-cache name
    /// (default: all-MiniLM-L6-v2).
    /// `precision`: the encoder's linear layers (default: fp16 where the CPU has it, see
    /// EncoderPrecision.preferred).
    public init(_ spec: String? = nil, threads: Int = ThreadPool.availableCores, precision: EncoderPrecision = .preferred) throws {
        directory = try ModelCache.resolve(spec, default: ModelCache.defaultEmbeddingModel)
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: directory, isDirectory: &isDir)
        if !isDir.boolValue && directory.hasSuffix(".gguf") {
            // A BERT GGUF (llama.cpp's layout): pooling from bert.pooling_type, normalized like
            // llama.cpp's embeddings.
            let g: GGUFFile
            do { g = try GGUFFile(path: directory) } catch { throw ModelError.format(error) }
            encoder = try BertModel(gguf: g, threads: threads, precision: precision)
            tokenizer = try WordPieceTokenizer(gguf: g)
            pooling = g["bert.pooling_type"]?.int == 2 ? .cls : .mean
            normalize = true
            maxLength = encoder.config.maxPositions
            return
        }
        guard isDir.boolValue else {
            throw ModelError.modelNotFound("\(directory) (an embedding model is a directory with config.json, model.safetensors and tokenizer.json, or a BERT .gguf)")
        }
        encoder = try BertModel(directory: directory, threads: threads, precision: precision)
        tokenizer = try EncoderTokenizers.load(directory: directory)
        var pooling = Pooling.mean
        if let p = try? JSONValue.parse(String(contentsOfFile: directory + "/1_Pooling/config.json", encoding: .utf8)) {
            if p["pooling_mode_cls_token"]?.bool == true { pooling = .cls }
            else if p["pooling_mode_max_tokens"]?.bool == true { pooling = .max }
        }
        self.pooling = pooling
        var normalize = false
        if let m = try? JSONValue.parse(String(contentsOfFile: directory + "/modules.json", encoding: .utf8)), let mods = m.array {
            normalize = mods.contains { ($0["type"]?.string ?? "").hasSuffix("Normalize") }
        }
        self.normalize = normalize
        var maxLen = encoder.config.maxPositions - encoder.config.positionOffset
        if let s = try? JSONValue.parse(String(contentsOfFile: directory + "/sentence_bert_config.json", encoding: .utf8)),
           let m = s["max_seq_length"]?.int { maxLen = min(maxLen, m) }
        maxLength = maxLen
    }

    public func encode(_ text: String) -> EncodedText { tokenizer.encode(text, maxLength: maxLength) }

    public var maxTokens: Int { maxLength }
    private lazy var specialCount = tokenizer.encode("", maxLength: 16).count
    public func countTokens(_ text: String) -> Int { tokenizer.encode(text, maxLength: Int.max / 2).count - specialCount }

    /// Embeddings of `texts`, in order. Texts are sorted by length and padded per batch.
    ///
    /// Batches of `batchSize` texts are cut into one group per thread, as `BertModel.forward`
    /// does, but the groups of all batches go to whichever thread is free and each thread pools
    /// its own texts: no thread waits at the end of every batch for the other's group.
    public func embed(_ texts: [String]) throws -> [[Float]] {
        // One call at a time: the encoder's thread pool runs one operation at a time.
        lock.lock(); defer { lock.unlock() }
        let pool = encoder.pool
        var encoded = [EncodedText](repeating: EncodedText(ids: [], typeIDs: []), count: texts.count)
        encoded.withUnsafeMutableBufferPointer { e in
            let base = e.baseAddress!
            pool.parallelFor(texts.count, minChunk: 64) { r in for i in r { base[i] = encode(texts[i]) } }
        }
        try encoder.validate(encoded)
        let order = encoded.indices.sorted { encoded[$0].count > encoded[$1].count }
        // Groups (text indices) each thread encodes alone; batches that cannot be split evenly
        // (a single text, a query) run every operation across the threads afterwards.
        var rounds: [[[Int]]] = [], whole: [[Int]] = []
        var start = 0
        while start < order.count {
            let idx = Array(order[start..<min(order.count, start + batchSize)])
            let cuts = BertModel.groups(idx.map { encoded[$0].count }, parts: pool.threads)
            if cuts.count > 1 { rounds.append(cuts.map { Array(idx[$0]) }) } else { whole.append(idx) }
            start += batchSize
        }
        // One batch per parallel operation, so other requests sharing the compute scheduler (a
        // decoding step) wait for at most one batch; while one is waiting, batches run layer by
        // layer across the threads instead (many short operations: slower for the embedding,
        // but the other request waits for one layer, not one batch).
        var out = [[Float]](repeating: [], count: texts.count)
        out.withUnsafeMutableBufferPointer { o in
            let O = o.baseAddress!
            for groups in rounds {
                if pool.isContended {
                    let idx = groups.flatMap { $0 }
                    let batch = idx.map { encoded[$0] }
                    let hidden = encoder.hiddenStates(batch, exec: .parallel(pool))
                    for (b, v) in pooled(hidden.values, length: hidden.length, batch).enumerated() { O[idx[b]] = v }
                    continue
                }
                pool.dispatch(groups.count) { g in
                    let idx = groups[g]
                    let batch = idx.map { encoded[$0] }
                    let hidden = encoder.hiddenStates(batch, exec: .serial)
                    for (b, v) in pooled(hidden.values, length: hidden.length, batch).enumerated() { O[idx[b]] = v }
                }
            }
        }
        for idx in whole {
            let batch = idx.map { encoded[$0] }
            let (hidden, L) = try encoder.forward(batch)
            for (b, v) in pooled(hidden, length: L, batch).enumerated() { out[idx[b]] = v }
        }
        return out
    }

    /// Pools each text's rows of `hidden` ([B × L × H], padded to L) as the model says.
    func pooled(_ hidden: [Float], length L: Int, _ batch: [EncodedText]) -> [[Float]] {
        let H = dimension
        return batch.enumerated().map { bi, e in
            let n = e.count
            var v = [Float](repeating: pooling == .max ? -.infinity : 0, count: H)
            let base = bi * L * H
            switch pooling {
            case .cls: for h in 0..<H { v[h] = hidden[base + h] }
            case .mean:
                for t in 0..<n { for h in 0..<H { v[h] += hidden[base + t * H + h] } }
                for h in 0..<H { v[h] /= Float(n) }
            case .max:
                for t in 0..<n { for h in 0..<H { v[h] = max(v[h], hidden[base + t * H + h]) } }
            }
            if normalize {
                let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
                for h in 0..<H { v[h] /= norm }
            }
            return v
        }
    }

    public static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var d: Float = 0, na: Float = 0, nb: Float = 0
        for i in 0..<min(a.count, b.count) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
        return d / max((na * nb).squareRoot(), 1e-12)
    }
}
