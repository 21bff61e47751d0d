// A LoRA adapter (Hu et al. 2021): for each adapted projection y = x·Wᵀ of a frozen model,
// y += (α/r) · (x·Aᵀ)·Bᵀ with A [r × in] and B [out × r]. Applied at run time, unmerged.
//
// Rows of B follow the model file's row order: GGUF Llama files permute the rows of Q and K
// (for adjacent-pair RoPE), so B of q_proj/k_proj is in that order here and is permuted back
// when written in the Hugging Face layout (see `huggingFaceRow`).
import CBLAS
import Foundation
import TailorKernels

/// The projections LoRA can adapt, named as PEFT names them.
public enum LoRATarget: String, CaseIterable, Codable, Sendable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// The tensor name in GGUF files (blk.N.<name>.weight).
    public var ggufName: String {
        switch self {
        case .q: return "attn_q"
        case .k: return "attn_k"
        case .v: return "attn_v"
        case .o: return "attn_output"
        case .gate: return "ffn_gate"
        case .up: return "ffn_up"
        case .down: return "ffn_down"
        }
    }

    /// The module path inside a Hugging Face Llama layer.
    public var moduleName: String {
        switch self {
        case .q, .k, .v, .o: return "self_attn." + rawValue
        default: return "mlp." + rawValue
        }
    }

    /// Parses "q_proj", "q", "attn_q", or the groups "attention", "mlp", "all".
    public static func parseList(_ text: String) throws -> [LoRATarget] {
        var out: [LoRATarget] = []
        for raw in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !raw.isEmpty {
            switch raw {
            case "all", "all-linear": out += allCases
            case "attention", "attn": out += [.q, .k, .v, .o]
            case "mlp", "ffn": out += [.gate, .up, .down]
            default:
                guard let t = allCases.first(where: { $0.rawValue == raw || $0.rawValue == raw + "_proj" || $0.ggufName == raw }) else {
                    throw ModelError.badAdapter("unknown LoRA target \"\(raw)\"; use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, attention, mlp or all")
                }
                out.append(t)
            }
        }
        var seen = Set<LoRATarget>()
        let unique = allCases.filter { t in out.contains(t) && seen.insert(t).inserted }
        guard !unique.isEmpty else { throw ModelError.badAdapter("no LoRA targets given") }
        return unique
    }
}

// @unchecked Sendable: `parameters` change only while the adapter is being trained or loaded, by
// the one job that owns it; once registered for inference (AdapterRegistry) it is only read.
public final class LoRAAdapter: @unchecked Sendable {
    public let rank: Int
    public let alpha: Float
    public let targets: [LoRATarget]
    public let layers: Int
    /// (inputs, outputs) of each target's projection.
    public let shapes: [LoRATarget: (inputs: Int, outputs: Int)]
    /// All parameters, flat: for each layer, for each target in order, A (r×in) then B (out×r).
    public var parameters: [Float]
    private let offsets: [Int]   // [layer * targets.count + t] → offset of A

    public var scale: Float { alpha / Float(rank) }
    public var parameterCount: Int { parameters.count }

    public init(rank: Int, alpha: Float, targets: [LoRATarget], layers: Int, shapes: [LoRATarget: (inputs: Int, outputs: Int)]) {
        precondition(rank > 0 && layers > 0)
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        self.layers = layers
        self.shapes = shapes
        var offs: [Int] = []
        var n = 0
        for _ in 0..<layers {
            for t in targets {
                offs.append(n)
                let s = shapes[t]!
                n += rank * s.inputs + s.outputs * rank
            }
        }
        offsets = offs
        parameters = [Float](repeating: 0, count: n)
    }

    /// An adapter shaped for a Llama-family model.
    public convenience init(for config: LlamaConfig, rank: Int, alpha: Float, targets: [LoRATarget]) {
        self.init(rank: rank, alpha: alpha, targets: targets, layers: config.layers, shapes: LoRAAdapter.shapes(config))
    }

    public static func shapes(_ c: LlamaConfig) -> [LoRATarget: (inputs: Int, outputs: Int)] {
        [.q: (c.embedding, c.qDim), .k: (c.embedding, c.kvDim), .v: (c.embedding, c.kvDim), .o: (c.qDim, c.embedding),
         .gate: (c.embedding, c.feedForward), .up: (c.embedding, c.feedForward), .down: (c.feedForward, c.embedding)]
    }

    public func has(_ t: LoRATarget) -> Bool { targets.contains(t) }

    /// Offset of A (r × in) of `target` in `layer`; B (out × r) follows it.
    public func offsetA(layer: Int, target: LoRATarget) -> Int {
        offsets[layer * targets.count + targets.firstIndex(of: target)!]
    }

    public func offsetB(layer: Int, target: LoRATarget) -> Int {
        offsetA(layer: layer, target: target) + rank * shapes[target]!.inputs
    }

    /// PEFT's initialisation: A uniform in ±1/√in (Kaiming-uniform with a = √5), B zero, so the
    /// adapted model starts equal to the base.
    public func initialize(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for l in 0..<layers {
            for t in targets {
                let s = shapes[t]!
                let bound = 1 / Float(s.inputs).squareRoot()
                let a = offsetA(layer: l, target: t), b = offsetB(layer: l, target: t)
                for i in 0..<(rank * s.inputs) { parameters[a + i] = (Float(rng.nextUnit()) * 2 - 1) * bound }
                for i in 0..<(s.outputs * rank) { parameters[b + i] = 0 }
            }
        }
    }

    /// y[N × out] += s · (α/r) · (x·Aᵀ)·Bᵀ for x [N × in], s the scale it is applied with.
    public func apply(layer: Int, target: LoRATarget, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, tokens n: Int,
                      scale s: Float = 1) {
        guard has(target), s != 0 else { return }
        let shape = shapes[target]!, r = rank
        let u = UnsafeMutablePointer<Float>.allocate(capacity: n * r)
        defer { u.deallocate() }
        parameters.withUnsafeBufferPointer { p in
            let a = p.baseAddress! + offsetA(layer: layer, target: target), b = p.baseAddress! + offsetB(layer: layer, target: target)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(r), Int32(shape.inputs), 1, x, Int32(shape.inputs), a, Int32(shape.inputs), 0, u, Int32(r))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(shape.outputs), Int32(r), scale * s, u, Int32(r), b, Int32(r), 1, y, Int32(shape.outputs))
        }
    }

    /// The Hugging Face row of GGUF row `row` of a Q (heads = H) or K (heads = Hkv) projection.
    /// llama.cpp's converter stores, within each head of width D, HF rows (s·D/2 + i) at 2i + s.
    public static func huggingFaceRow(_ row: Int, headDim d: Int) -> Int {
        let h = row / d, within = row % d
        let i = within / 2, s = within % 2
        return h * d + s * (d / 2) + i
    }

    /// Whether rows of `target`'s B are permuted between GGUF and Hugging Face order.
    public static func isPermuted(_ t: LoRATarget, architecture: String) -> Bool {
        architecture == "llama" || architecture == "mistral" ? (t == .q || t == .k) : false
    }
}
