// BERT encoders in GGUF files, as llama.cpp's converter writes them (architecture "bert"):
// tensor names token_embd / position_embd / token_types / blk.N.attn_q…layer_output_norm, and a
// WordPiece vocabulary stored with "▁" marking word starts instead of "##" marking
// continuations. `BertGGUF.write` produces such a file from a sentence-transformers folder.
import Foundation
import TailorFormats
import TailorKernels
import TailorTokenizers

public enum BertGGUF {
    /// HF name (after any "bert." prefix) → GGUF name, for one layer index.
    static func layerNames(_ i: Int) -> [(String, String)] {
        let h = "encoder.layer.\(i).", g = "blk.\(i)."
        let pairs: [(String, String)] = [
            ("attention.self.query", "attn_q"), ("attention.self.key", "attn_k"), ("attention.self.value", "attn_v"),
            ("attention.output.dense", "attn_output"), ("attention.output.LayerNorm", "attn_output_norm"),
            ("intermediate.dense", "ffn_up"), ("output.dense", "ffn_down"), ("output.LayerNorm", "layer_output_norm"),
        ]
        var out: [(String, String)] = []
        for (hf, gg) in pairs {
            out.append((h + hf + ".weight", g + gg + ".weight"))
            out.append((h + hf + ".bias", g + gg + ".bias"))
        }
        return out
    }
    static let globalNames: [(String, String)] = [
        ("embeddings.word_embeddings.weight", "token_embd.weight"), ("embeddings.position_embeddings.weight", "position_embd.weight"),
        ("embeddings.token_type_embeddings.weight", "token_types.weight"), ("embeddings.LayerNorm.weight", "token_embd_norm.weight"),
        ("embeddings.LayerNorm.bias", "token_embd_norm.bias"),
    ]

    /// Writes a sentence-transformers BERT folder as a GGUF file (weights as F32 or F16).
    public static func write(directory: String, to output: String, type: GGMLType = .f32) throws {
        let e = try SentenceEmbedder(directory, threads: 1)
        let cfg = e.encoder.config
        let st = try SafetensorsFile(path: directory + "/model.safetensors")
        let prefix = ["", "bert.", "roberta."].first { st.tensor($0 + "embeddings.word_embeddings.weight") != nil } ?? ""
        var w = GGUFWriter()
        w.set("general.architecture", .string("bert"))
        w.set("general.name", .string(URL(fileURLWithPath: directory).lastPathComponent))
        w.set("bert.context_length", .uint32(UInt32(cfg.maxPositions)))
        w.set("bert.embedding_length", .uint32(UInt32(cfg.hidden)))
        w.set("bert.feed_forward_length", .uint32(UInt32(cfg.intermediate)))
        w.set("bert.block_count", .uint32(UInt32(cfg.layers)))
        w.set("bert.attention.head_count", .uint32(UInt32(cfg.heads)))
        w.set("bert.attention.layer_norm_epsilon", .float32(cfg.eps))
        w.set("bert.attention.causal", .bool(false))
        w.set("bert.pooling_type", .uint32(e.pooling == .cls ? 2 : 1))
        w.set("general.file_type", .uint32(type == .f16 ? 1 : 0))
        guard let tok = e.tokenizer as? WordPieceTokenizer else {
            throw ModelError.unsupportedArchitecture("\(cfg.positionOffset > 0 ? "roberta" : "bert") with a non-WordPiece tokenizer (GGUF conversion covers BERT/WordPiece)")
        }
        var special: Set<Int> = [tok.clsID, tok.sepID, tok.unkID, tok.padID]
        for (i, t) in tok.tokens.enumerated() where t.hasPrefix("[") && t.hasSuffix("]") { special.insert(i) }
        w.set("tokenizer.ggml.model", .string("bert"))
        w.set("tokenizer.ggml.token_type_count", .uint32(UInt32(cfg.typeVocabulary)))
        w.set("tokenizer.ggml.tokens", .array(tok.tokens.enumerated().map { i, t in
            if special.contains(i) { return .string(t) }
            return .string(t.hasPrefix(tok.continuingPrefix) ? String(t.dropFirst(tok.continuingPrefix.count)) : "\u{2581}" + t)
        }))
        w.set("tokenizer.ggml.token_type", .array(tok.tokens.indices.map { .int32(special.contains($0) ? 3 : 1) }))
        w.set("tokenizer.ggml.cls_token_id", .uint32(UInt32(tok.clsID)))
        w.set("tokenizer.ggml.seperator_token_id", .uint32(UInt32(tok.sepID)))
        w.set("tokenizer.ggml.unknown_token_id", .uint32(UInt32(tok.unkID)))
        w.set("tokenizer.ggml.padding_token_id", .uint32(UInt32(tok.padID)))
        for (hf, gg) in globalNames + (0..<cfg.layers).flatMap(layerNames) {
            guard let t = st.tensor(prefix + hf) else { throw ModelError.format(.missingTensor(prefix + hf)) }
            let f = try st.floats(prefix + hf)
            let shape = Array(t.shape.reversed())
            let ggType: GGMLType = t.shape.count == 2 ? type : .f32
            let bytes = f.withUnsafeBufferPointer { Quantizer.quantize($0.baseAddress!, count: f.count, to: ggType) }
            w.addTensor(name: gg, shape: shape, type: ggType, data: bytes)
        }
        try w.write(to: output)
    }
}

extension BertModel {
    /// Loads a BERT GGUF file (architecture "bert").
    public convenience init(gguf g: GGUFFile, threads: Int = ThreadPool.availableCores, precision: EncoderPrecision = .preferred) throws {
        guard g["general.architecture"]?.string == "bert" else {
            throw ModelError.unsupportedArchitecture(g["general.architecture"]?.string ?? "unknown")
        }
        func int(_ k: String) throws -> Int { try g.int("bert.\(k)") }
        let vocab = g.tensor("token_embd.weight")?.shape.last ?? 0
        let json: JSONValue = .object([
            ("hidden_size", .int(try int("embedding_length"))), ("num_hidden_layers", .int(try int("block_count"))),
            ("num_attention_heads", .int(try int("attention.head_count"))), ("intermediate_size", .int(try int("feed_forward_length"))),
            ("max_position_embeddings", .int(try int("context_length"))),
            ("type_vocab_size", .int(g.tensor("token_types.weight")?.shape.last ?? 2)), ("vocab_size", .int(vocab)),
            ("layer_norm_eps", .double((try? g.double("bert.attention.layer_norm_epsilon")) ?? 1e-12)),
        ])
        let cfg = try BertConfig(json: json)
        var names: [String: String] = [:]
        for (hf, gg) in BertGGUF.globalNames + (0..<cfg.layers).flatMap(BertGGUF.layerNames) { names[hf] = gg }
        try self.init(config: cfg, threads: threads, precision: precision) { hf, shape in
            guard let gg = names[hf], let t = g.tensor(gg) else { throw ModelError.format(.missingTensor(names[hf] ?? hf)) }
            guard Array(t.shape.reversed()) == shape || (shape.count == 1 && t.elementCount == shape[0]) else {
                throw ModelError.tensorShape(name: gg, expected: shape.reversed(), found: t.shape)
            }
            var out = [Float](repeating: 0, count: t.elementCount)
            out.withUnsafeMutableBufferPointer { QuantReference.dequantize(t.type, g.data(t), $0.baseAddress!, count: t.elementCount) }
            return out
        }
    }
}

extension WordPieceTokenizer {
    /// The WordPiece vocabulary of a BERT GGUF file ("▁word" → "word", "piece" → "##piece").
    public convenience init(gguf g: GGUFFile) throws {
        let toks = try g.strings("tokenizer.ggml.tokens")
        let kinds = (try? g.numbers("tokenizer.ggml.token_type")) ?? []
        var vocab: [String: Int] = [:]
        for (i, t) in toks.enumerated() {
            let control = i < kinds.count && kinds[i] == 3
            let piece = control ? t : t.hasPrefix("\u{2581}") ? String(t.dropFirst()) : "##" + t
            if vocab[piece] == nil { vocab[piece] = i }
        }
        func name(_ key: String, _ fallback: String) -> String { g[key]?.int.flatMap { $0 < toks.count ? toks[$0] : nil } ?? fallback }
        try self.init(vocab: vocab, normalizer: BertNormalizer(lowercase: true),
                      unk: name("tokenizer.ggml.unknown_token_id", "[UNK]"), cls: name("tokenizer.ggml.cls_token_id", "[CLS]"),
                      sep: name("tokenizer.ggml.seperator_token_id", "[SEP]"), pad: name("tokenizer.ggml.padding_token_id", "[PAD]"))
    }
}
