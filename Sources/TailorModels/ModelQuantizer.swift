// Re-quantizes a GGUF model to another block type, as llama-quantize does: 2-D weight matrices
// get the target type (K-quants fall back to Q5_0 / Q8_0 where rows are not a multiple of 256),
// norms and other vectors stay as they are, metadata is copied.
import Foundation
import TailorFormats
import TailorKernels

public enum ModelQuantizer {
    /// llama.cpp's LLAMA_FTYPE values for `general.file_type`.
    static func fileType(_ t: GGMLType) -> UInt32 {
        switch t {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        case .q5_0: return 8
        case .q4_K: return 14
        case .q5_K: return 16
        case .q6_K: return 18
        default: return 0
        }
    }

    public struct Summary { public var tensors: Int; public var quantized: Int; public var fallbacks: [String: GGMLType]; public var bytes: Int }

    /// Writes `input` re-quantized to `type` at `output`. `progress(done, total)` after each tensor.
    public static func quantize(input: String, output: String, type: GGMLType,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> Summary {
        try rewrite(input: input, output: output, type: type, progress: progress)
    }

    /// Copies `input` to `output`, re-quantizing 2-D weight matrices to `type` (nil: each keeps
    /// its own type). `adjust(name, values)` may change a tensor's fp32 values (returning true);
    /// changed tensors are re-quantized even when their type stays. `metadata` adds or replaces keys.
    public static func rewrite(input: String, output: String, type: GGMLType?, metadata: [String: GGUFValue] = [:],
                               adjust: ((String, inout [Float]) -> Bool)? = nil,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> Summary {
        if let type, !Quantizer.supported.contains(type) {
            throw ModelError.badHyperParameter(key: "--type", value: type.description, reason: "supported types are \(Quantizer.supported.map(\.description).joined(separator: ", "))")
        }
        let src: GGUFFile
        do { src = try GGUFFile(path: input) } catch { throw ModelError.format(error) }
        var w = GGUFWriter()
        w.alignment = src.alignment
        for k in src.keys { w.set(k, src[k]!) }
        if let type { w.set("general.file_type", .uint32(fileType(type))) }
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { w.set(k, v) }
        var summary = Summary(tensors: 0, quantized: 0, fallbacks: [:], bytes: 0)
        for (i, t) in src.tensors.enumerated() {
            let isMatrix = t.shape.count == 2 && t.name.hasSuffix(".weight") && !t.name.contains("norm")
            var target = isMatrix ? (type ?? t.type) : t.type
            if isMatrix, t.shape[0] % target.blockSize != 0 {
                target = target == .q6_K ? .q8_0 : .q5_0
                summary.fallbacks[t.name] = target
            }
            var f: [Float] = []
            var changed = false
            if let adjust, isMatrix {
                f = [Float](repeating: 0, count: t.elementCount)
                f.withUnsafeMutableBufferPointer { QuantReference.dequantize(t.type, src.data(t), $0.baseAddress!, count: t.elementCount) }
                changed = adjust(t.name, &f)
            }
            if target == t.type && !changed {
                w.addTensor(name: t.name, shape: t.shape, type: t.type, data: Array(UnsafeRawBufferPointer(start: src.data(t), count: t.byteCount)))
            } else {
                if f.isEmpty {
                    f = [Float](repeating: 0, count: t.elementCount)
                    f.withUnsafeMutableBufferPointer { QuantReference.dequantize(t.type, src.data(t), $0.baseAddress!, count: t.elementCount) }
                }
                let bytes = f.withUnsafeBufferPointer { Quantizer.quantize($0.baseAddress!, count: t.elementCount, to: target) }
                w.addTensor(name: t.name, shape: t.shape, type: target, data: bytes)
                summary.quantized += 1
            }
            summary.tensors += 1
            progress(i + 1, src.tensors.count)
        }
        try w.write(to: output)
        summary.bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        return summary
    }
}
