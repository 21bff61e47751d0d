// Writing LoRA adapters in the two layouts other tools read (PEFT and GGUF LoRA; the layouts are
// described in TailorModels' LoRAAdapter+Files.swift, which reads them), and merging one into a
// model file.
import CBLAS
import Foundation
import TailorFormats
import TailorKernels
import TailorModels

public enum AdapterFiles {
    public static let peftWeights = AdapterLayout.peftWeights
    public static let peftConfig = AdapterLayout.peftConfig
    public static let ggufName = AdapterLayout.ggufName

    /// Writes the adapter as PEFT files in `directory` (created if needed).
    public static func savePEFT(_ ad: LoRAAdapter, config: LlamaConfig, to directory: String, baseModel: String, dropout: Float) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var w = SafetensorsWriter()
        w.metadata = [("format", "pt")]
        for l in 0..<ad.layers {
            for t in ad.targets {
                let s = ad.shapes[t]!, r = ad.rank
                let key = "base_model.model.model.layers.\(l).\(t.moduleName)"
                let oa = ad.offsetA(layer: l, target: t), ob = ad.offsetB(layer: l, target: t)
                w.add(key + ".lora_A.weight", shape: [r, s.inputs], floats: Array(ad.parameters[oa..<(oa + r * s.inputs)]))
                var b = [Float](repeating: 0, count: s.outputs * r)
                let permuted = LoRAAdapter.isPermuted(t, architecture: config.architecture)
                for row in 0..<s.outputs {
                    let hf = permuted ? LoRAAdapter.huggingFaceRow(row, headDim: config.headDim) : row
                    for c in 0..<r { b[hf * r + c] = ad.parameters[ob + row * r + c] }
                }
                w.add(key + ".lora_B.weight", shape: [s.outputs, r], floats: b)
            }
        }
        try w.write(to: directory + "/" + peftWeights)
        let cfg: JSONValue = .object([
            ("peft_type", .string("LORA")), ("task_type", .string("CAUSAL_LM")),
            ("base_model_name_or_path", .string(baseModel)),
            ("r", .int(ad.rank)), ("lora_alpha", .double(Double(ad.alpha))), ("lora_dropout", .double(Double(dropout))),
            ("target_modules", .array(ad.targets.map { .string($0.rawValue) })),
            ("bias", .string("none")), ("fan_in_fan_out", .bool(false)), ("inference_mode", .bool(true)),
            ("init_lora_weights", .bool(true)), ("use_rslora", .bool(false)), ("use_dora", .bool(false)),
            ("modules_to_save", .null), ("layers_to_transform", .null), ("rank_pattern", .object([])), ("alpha_pattern", .object([])),
        ])
        try (cfg.serialized() + "\n").write(toFile: directory + "/" + peftConfig, atomically: true, encoding: .utf8)
    }

    /// Writes the adapter as a llama.cpp GGUF LoRA file.
    public static func saveGGUF(_ ad: LoRAAdapter, config: LlamaConfig, to path: String, name: String) throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string(config.architecture))
        w.set("general.type", .string("adapter"))
        w.set("general.name", .string(name))
        w.set("adapter.type", .string("lora"))
        w.set("adapter.lora.alpha", .float32(ad.alpha))
        for l in 0..<ad.layers {
            for t in ad.targets {
                let s = ad.shapes[t]!, r = ad.rank
                let oa = ad.offsetA(layer: l, target: t), ob = ad.offsetB(layer: l, target: t)
                let a = Array(ad.parameters[oa..<(oa + r * s.inputs)]), b = Array(ad.parameters[ob..<(ob + s.outputs * r)])
                w.addTensor(name: "blk.\(l).\(t.ggufName).weight.lora_a", shape: [s.inputs, r], type: .f32, data: bytes(a))
                w.addTensor(name: "blk.\(l).\(t.ggufName).weight.lora_b", shape: [r, s.outputs], type: .f32, data: bytes(b))
            }
        }
        try w.write(to: path)
    }

    static func bytes(_ f: [Float]) -> [UInt8] { f.withUnsafeBytes { Array($0) } }

    /// Loads an adapter for a model with `config` (see `LoRAAdapter.load`, which inference uses).
    public static func load(_ path: String, for config: LlamaConfig) throws -> LoRAAdapter {
        try LoRAAdapter.load(path, for: config)
    }
}

public enum AdapterMerge {
    /// Writes `model` with the adapter folded into its weights (W += α/r · B·A), re-quantized to
    /// `type` (nil: each matrix keeps its type).
    @discardableResult
    public static func merge(model: String, adapter: LoRAAdapter, config: LlamaConfig, output: String, type: GGMLType?,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> ModelQuantizer.Summary {
        var byName: [String: (Int, LoRATarget)] = [:]
        for l in 0..<adapter.layers { for t in adapter.targets { byName["blk.\(l).\(t.ggufName).weight"] = (l, t) } }
        return try ModelQuantizer.rewrite(input: model, output: output, type: type,
                                          adjust: { name, w in
            guard let (l, t) = byName[name] else { return false }
            let s = adapter.shapes[t]!, r = adapter.rank
            adapter.parameters.withUnsafeBufferPointer { p in
                w.withUnsafeMutableBufferPointer { wp in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(s.outputs), Int32(s.inputs), Int32(r), adapter.scale,
                                p.baseAddress! + adapter.offsetB(layer: l, target: t), Int32(r),
                                p.baseAddress! + adapter.offsetA(layer: l, target: t), Int32(s.inputs), 1, wp.baseAddress!, Int32(s.inputs))
                }
            }
            return true
        }, progress: progress)
    }
}
