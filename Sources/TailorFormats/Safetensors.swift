// safetensors reader (Hugging Face's format: an 8-byte little-endian header length, a JSON
// header of tensor names → dtype, shape, data_offsets, then the raw data). Memory-mapped;
// every offset and size is checked against the file before use.
import Foundation
import TailorKernels

public struct SafetensorsTensor: Sendable, Equatable {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    /// Offset from the start of the file.
    public let offset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

// @unchecked Sendable: parsed once in init and never changed; the tensor data is a read-only mapping.
public final class SafetensorsFile: @unchecked Sendable {
    public let file: MappedFile
    public let tensors: [String: SafetensorsTensor]
    public let metadata: [String: String]
    public var path: String { file.path }

    static let dtypeSizes: [String: Int] = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                                            "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8]

    public convenience init(path: String) throws(FormatError) {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(FormatError) {
        self.file = file
        guard file.size >= 8 else { throw .truncated(what: "safetensors header length", offset: 0, needed: 8, fileSize: file.size) }
        let n = UInt64(littleEndian: file.bytes.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(file.size - 8), n <= 100_000_000 else {
            throw .badHeader("safetensors header claims \(n) bytes but the file has \(file.size): the file is truncated or not safetensors")
        }
        let headerBytes = UnsafeRawBufferPointer(start: file.bytes + 8, count: Int(n))
        let dataStart = 8 + Int(n)
        let json: JSONValue
        do { json = try JSONValue.parse(String(decoding: headerBytes, as: UTF8.self)) } catch {
            throw .badHeader("safetensors header is not valid JSON (\(error)): the file is corrupted or not safetensors")
        }
        guard case .object(let entries) = json else { throw .badHeader("safetensors header is not a JSON object") }
        var tensors: [String: SafetensorsTensor] = [:]
        var metadata: [String: String] = [:]
        for (name, v) in entries {
            if name == "__metadata__" {
                if case .object(let kv) = v { for (k, s) in kv { metadata[k] = s.string ?? s.serialized() } }
                continue
            }
            guard let dtype = v["dtype"]?.string, let shapeV = v["shape"]?.array, let offs = v["data_offsets"]?.array, offs.count == 2,
                  let begin = offs[0].int, let end = offs[1].int else {
                throw .badTensor(name: name, reason: "header entry needs dtype, shape and data_offsets [begin, end]")
            }
            guard let size = Self.dtypeSizes[dtype] else { throw .badTensor(name: name, reason: "unknown dtype \(dtype)") }
            var shape: [Int] = []
            var count = 1
            for d in shapeV {
                guard let x = d.int, x >= 0 else { throw .badTensor(name: name, reason: "bad shape \(shapeV.map { $0.serialized() })") }
                let (c, o) = count.multipliedReportingOverflow(by: x)
                guard !o else { throw .badTensor(name: name, reason: "shape overflows") }
                count = c; shape.append(x)
            }
            guard begin >= 0, end >= begin, end <= file.size - dataStart else {
                throw .tensorOutOfBounds(name: name, end: dataStart + max(end, 0), fileSize: file.size)
            }
            guard end - begin == count * size else {
                throw .badTensor(name: name, reason: "\(end - begin) bytes of data for \(dtype) \(shape) (needs \(count * size))")
            }
            tensors[name] = SafetensorsTensor(name: name, dtype: dtype, shape: shape, offset: dataStart + begin, byteCount: end - begin)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    public func tensor(_ name: String) -> SafetensorsTensor? { tensors[name] }

    public func data(_ t: SafetensorsTensor) -> UnsafeRawPointer { file.bytes + t.offset }

    /// The tensor's values as fp32 (F32, F16 and BF16 tensors).
    public func floats(_ name: String) throws(FormatError) -> [Float] {
        guard let t = tensors[name] else { throw .missingTensor(name) }
        let p = data(t)
        let n = t.elementCount
        switch t.dtype {
        case "F32": return (0..<n).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        case "F16": return (0..<n).map { halfToFloat(p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        case "BF16": return (0..<n).map { bf16ToFloat(p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        default: throw .badTensor(name: name, reason: "dtype \(t.dtype) is not a float type (F32, F16, BF16)")
        }
    }
}
