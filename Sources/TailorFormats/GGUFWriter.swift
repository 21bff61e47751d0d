// GGUF writer (version 3), the inverse of GGUFFile: metadata in insertion order, tensor
// descriptors, then tensor data each aligned to `general.alignment`.
import Foundation
import TailorKernels

public struct GGUFWriter {
    public private(set) var keys: [String] = []
    public private(set) var values: [String: GGUFValue] = [:]
    private var tensors: [(name: String, shape: [Int], type: GGMLType, data: [UInt8])] = []
    public var alignment = 32

    public init() {}

    /// Sets a metadata value, keeping the key's first position.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
        if key == "general.alignment", let a = value.int { alignment = a }
    }

    public mutating func remove(_ key: String) {
        values[key] = nil
        keys.removeAll { $0 == key }
    }

    /// Adds a tensor. `shape` is innermost-first, as ggml stores it.
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, data: [UInt8]) {
        precondition(type.byteCount(elements: shape.reduce(1, *)) == data.count, "tensor \(name): \(data.count) bytes do not fit \(type) \(shape)")
        tensors.append((name, shape, type, data))
    }

    /// The whole file as bytes.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func putValue(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): put(x)
            case .int8(let x): put(x)
            case .uint16(let x): put(x)
            case .int16(let x): put(x)
            case .uint32(let x): put(x)
            case .int32(let x): put(x)
            case .float32(let x): put(x.bitPattern)
            case .bool(let b): put(UInt8(b ? 1 : 0))
            case .string(let s): putString(s)
            case .uint64(let x): put(x)
            case .int64(let x): put(x)
            case .float64(let x): put(x.bitPattern)
            case .array(let a):
                put(a.first?.typeCode ?? 4)
                put(UInt64(a.count))
                for e in a { putValue(e) }
            }
        }
        out.append(contentsOf: Array("GGUF".utf8))
        put(UInt32(3))
        put(UInt64(tensors.count))
        put(UInt64(keys.count))
        for k in keys {
            putString(k)
            let v = values[k]!
            put(v.typeCode)
            putValue(v)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset = (offset + t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            putString(t.name)
            put(UInt32(t.shape.count))
            for d in t.shape { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(off))
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out.append(contentsOf: t.data)
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    /// Writes the file atomically (temporary file, then rename), so a crash never leaves half a model.
    public func write(to path: String) throws {
        let data = Data(serialized())
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
