// A trained encoder as a Hugging Face model directory:
//   classifier — config.json (architectures BertForSequenceClassification, id2label/label2id),
//     model.safetensors with "bert."-prefixed encoder and pooler tensors and "classifier.*",
//     the tokenizer files: loadable by transformers' AutoModelForSequenceClassification and by
//     `tailor classify`;
//   retriever — the source sentence-transformers directory (modules, pooling, tokenizer) with the
//     new weights: loadable by sentence-transformers and usable by every `tailor` command that
//     takes an embedding model (`-e DIR`).
import Foundation
import TailorFormats
import TailorModels

public enum EncoderExport {
    static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "vocab.json", "merges.txt"]
    static let sentenceTransformerFiles = ["modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json"]
    public static let trainingInfoName = "tailor_training.json"

    public static func write(_ m: EncoderTrainingModel, task: EncoderTask, source: String, to dir: String, training: JSONValue) throws {
        let src = URL(fileURLWithPath: source).standardizedFileURL.path, dst = URL(fileURLWithPath: dir).standardizedFileURL.path
        guard src != dst else { throw TuningError.badOption("the output directory is the source model's directory (\(source)); choose another -o") }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var config = try JSONValue.parse(String(contentsOfFile: source + "/config.json", encoding: .utf8))
        var w = SafetensorsWriter()
        w.metadata = [("format", "pt")]
        let P = m.parameters
        func floats(_ t: EncoderTensor) -> [Float] { Array(UnsafeBufferPointer(start: P + t.offset, count: t.count)) }
        switch task {
        case .classification(let labels):
            config = config.setting("architectures", .array([.string("BertForSequenceClassification")]))
                .setting("id2label", .object(labels.enumerated().map { (String($0.offset), .string($0.element)) }))
                .setting("label2id", .object(labels.enumerated().map { ($0.element, .int($0.offset)) }))
                .setting("problem_type", .string("single_label_classification"))
            for t in m.tensors {
                w.add(t.name.hasPrefix("classifier.") ? t.name : "bert." + t.name, shape: t.shape, floats: floats(t))
            }
        case .retrieval:
            for t in m.tensors { w.add(t.name, shape: t.shape, floats: floats(t)) }
            // Tensors the training did not touch (the pooler) are carried over as they were.
            if let st = try? SafetensorsFile(path: source + "/model.safetensors") {
                let prefix = ["", "bert."].first { st.tensor($0 + "embeddings.word_embeddings.weight") != nil } ?? ""
                for (name, info) in st.tensors.sorted(by: { $0.key < $1.key }) {
                    let bare = name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
                    guard m.tensor(bare) == nil else { continue }
                    w.add(bare, dtype: info.dtype, shape: info.shape, bytes: Data(bytes: st.data(info), count: info.byteCount))
                }
            }
            for f in sentenceTransformerFiles where fm.fileExists(atPath: source + "/" + f) {
                try copy(source + "/" + f, dir + "/" + f)
            }
        }
        for f in tokenizerFiles where fm.fileExists(atPath: source + "/" + f) { try copy(source + "/" + f, dir + "/" + f) }
        try w.write(to: dir + "/model.safetensors")
        try (config.serialized() + "\n").write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        try (training.serialized() + "\n").write(toFile: dir + "/" + trainingInfoName, atomically: true, encoding: .utf8)
    }

    static func copy(_ from: String, _ to: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let data = try Data(contentsOf: URL(fileURLWithPath: from))
        if let old = try? Data(contentsOf: URL(fileURLWithPath: to)), old == data { return }
        try data.write(to: URL(fileURLWithPath: to), options: .atomic)
    }
}

extension JSONValue {
    /// The object with `key` set to `value` (replaced in place, or appended).
    func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var kv) = self else { return self }
        if let i = kv.firstIndex(where: { $0.0 == key }) { kv[i].1 = value } else { kv.append((key, value)) }
        return .object(kv)
    }
}
