// LoRA adapters on disk, in the two layouts other tools read:
//  - PEFT (Hugging Face): a directory with adapter_config.json and adapter_model.safetensors,
//    keys base_model.model.model.layers.N.<module>.lora_A.weight [r × in] / lora_B.weight [out × r],
//    rows in Hugging Face order;
//  - GGUF LoRA (llama.cpp `--lora`): general.type = adapter, adapter.type = lora,
//    adapter.lora.alpha, tensors blk.N.<name>.weight.lora_a (ggml [in, r]) and .lora_b
//    (ggml [r, out]), rows in the GGUF model's order.
// Reading them lives here so inference needs no training code; TailorTuning writes them.
import Foundation
import TailorFormats
import TailorKernels

/// The file names of an adapter directory.
public enum AdapterLayout {
    public static let peftWeights = "adapter_model.safetensors"
    public static let peftConfig = "adapter_config.json"
    public static let ggufName = "adapter.gguf"
}

extension LoRAAdapter {
    static func bad(_ path: String, _ reason: String) -> ModelError { .badAdapter("\(path): \(reason)") }

    /// Loads an adapter for a model with `config`: a PEFT directory (or its adapter_config.json /
    /// adapter_model.safetensors), or a GGUF LoRA file.
    public static func load(_ path: String, for config: LlamaConfig) throws -> LoRAAdapter {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw LoRAAdapter.bad(path, "no such file or directory (give an adapter directory from `tailor tune -o`, or a GGUF LoRA file)")
        }
        if isDir.boolValue { return try loadPEFT(directory: path, config: config) }
        if path.hasSuffix(".gguf") { return try loadGGUF(path, config: config) }
        let dir = (path as NSString).deletingLastPathComponent
        if path.hasSuffix(AdapterLayout.peftConfig) || path.hasSuffix(AdapterLayout.peftWeights) { return try loadPEFT(directory: dir.isEmpty ? "." : dir, config: config) }
        throw LoRAAdapter.bad(path, "not an adapter: expected a PEFT directory (adapter_config.json + adapter_model.safetensors) or a .gguf LoRA file")
    }

    static func loadPEFT(directory: String, config: LlamaConfig) throws -> LoRAAdapter {
        let cpath = directory + "/" + AdapterLayout.peftConfig, wpath = directory + "/" + AdapterLayout.peftWeights
        func bad(_ p: String, _ r: String) -> ModelError { LoRAAdapter.bad(p, r) }
        guard let text = try? String(contentsOfFile: cpath, encoding: .utf8) else { throw bad(cpath, "missing or unreadable") }
        let c: JSONValue
        do { c = try JSONValue.parse(text) } catch { throw bad(cpath, "not valid JSON (\(error))") }
        if let type = c["peft_type"]?.string, type != "LORA" { throw bad(cpath, "peft_type is \(type); only LORA adapters are supported") }
        guard let r = c["r"]?.int, r > 0 else { throw bad(cpath, "\"r\" (the rank) must be a positive integer") }
        let alpha = Float(c["lora_alpha"]?.double ?? Double(r))
        if c["use_dora"]?.bool == true { throw bad(cpath, "DoRA adapters (use_dora) are not supported") }
        if c["fan_in_fan_out"]?.bool == true { throw bad(cpath, "fan_in_fan_out adapters (GPT-2 Conv1D layout) are not supported") }
        if let p = c["rank_pattern"], case .object(let kv) = p, !kv.isEmpty { throw bad(cpath, "per-module ranks (rank_pattern) are not supported") }
        if let p = c["alpha_pattern"], case .object(let kv) = p, !kv.isEmpty { throw bad(cpath, "per-module alphas (alpha_pattern) are not supported") }
        let effectiveAlpha = c["use_rslora"]?.bool == true ? alpha * Float(r).squareRoot() : alpha
        let st: SafetensorsFile
        do { st = try SafetensorsFile(path: wpath) } catch { throw bad(wpath, "\(error)") }
        // Which targets the file has, from its keys.
        func key(_ l: Int, _ t: LoRATarget, _ ab: String) -> String? {
            let stem = "model.layers.\(l).\(t.moduleName).lora_\(ab)"
            for k in ["base_model.model." + stem + ".weight", "base_model.model." + stem + ".default.weight", stem + ".weight"] where st.tensor(k) != nil { return k }
            return nil
        }
        let targets = LoRATarget.allCases.filter { key(0, $0, "A") != nil }
        guard !targets.isEmpty else { throw bad(wpath, "no LoRA tensors for a Llama-family model (expected keys like base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight)") }
        let ad = LoRAAdapter(for: config, rank: r, alpha: effectiveAlpha, targets: targets)
        for l in 0..<config.layers {
            for t in targets {
                let s = ad.shapes[t]!
                guard let ka = key(l, t, "A"), let kb = key(l, t, "B") else { throw bad(wpath, "layer \(l) has no \(t.rawValue) LoRA weights (adapters for some layers only are not supported)") }
                guard st.tensor(ka)!.shape == [r, s.inputs], st.tensor(kb)!.shape == [s.outputs, r] else {
                    throw bad(wpath, "\(ka): shapes \(st.tensor(ka)!.shape) / \(st.tensor(kb)!.shape) do not fit this model (expected [\(r), \(s.inputs)] / [\(s.outputs), \(r)]): the adapter was trained for another model")
                }
                let a: [Float], b: [Float]
                do { a = try st.floats(ka); b = try st.floats(kb) } catch { throw bad(wpath, "\(error)") }
                let oa = ad.offsetA(layer: l, target: t), ob = ad.offsetB(layer: l, target: t)
                for i in 0..<a.count { ad.parameters[oa + i] = a[i] }
                let permuted = LoRAAdapter.isPermuted(t, architecture: config.architecture)
                for row in 0..<s.outputs {
                    let hf = permuted ? LoRAAdapter.huggingFaceRow(row, headDim: config.headDim) : row
                    for k in 0..<r { ad.parameters[ob + row * r + k] = b[hf * r + k] }
                }
            }
        }
        return ad
    }

    static func loadGGUF(_ path: String, config: LlamaConfig) throws -> LoRAAdapter {
        func bad(_ r: String) -> ModelError { LoRAAdapter.bad(path, r) }
        let f: GGUFFile
        do { f = try GGUFFile(path: path) } catch { throw bad("\(error)") }
        guard f["general.type"]?.string == "adapter", f["adapter.type"]?.string == "lora" else {
            throw bad("not a LoRA adapter (general.type = \(f["general.type"]?.string ?? "none")); pass the base model with -m and the adapter with --adapter")
        }
        let targets = LoRATarget.allCases.filter { f.tensor("blk.0.\($0.ggufName).weight.lora_a") != nil }
        guard let first = targets.first, let ta = f.tensor("blk.0.\(first.ggufName).weight.lora_a"), ta.shape.count == 2 else {
            throw bad("no lora_a tensors")
        }
        let r = ta.shape[1]
        let alpha = Float(f["adapter.lora.alpha"]?.double ?? Double(r))
        let ad = LoRAAdapter(for: config, rank: r, alpha: alpha, targets: targets)
        for l in 0..<config.layers {
            for t in targets {
                let s = ad.shapes[t]!
                guard let a = f.tensor("blk.\(l).\(t.ggufName).weight.lora_a"), let b = f.tensor("blk.\(l).\(t.ggufName).weight.lora_b") else {
                    throw bad("layer \(l) has no \(t.ggufName) LoRA tensors")
                }
                guard a.shape == [s.inputs, r], b.shape == [r, s.outputs] else {
                    throw bad("blk.\(l).\(t.ggufName): shapes \(a.shape) / \(b.shape) do not fit this model: the adapter was made for another model")
                }
                ad.parameters.withUnsafeMutableBufferPointer { p in
                    QuantReference.dequantize(a.type, f.data(a), p.baseAddress! + ad.offsetA(layer: l, target: t), count: a.elementCount)
                    QuantReference.dequantize(b.type, f.data(b), p.baseAddress! + ad.offsetB(layer: l, target: t), count: b.elementCount)
                }
            }
        }
        return ad
    }
}
