// safetensors writer, the inverse of SafetensorsFile: tensors in the order added, each F32 (or
// raw bytes of another dtype), the header padded with spaces to a multiple of 8 bytes.
import Foundation

public struct SafetensorsWriter {
    private var entries: [(name: String, dtype: String, shape: [Int], data: Data)] = []
    public var metadata: [(String, String)] = []

    public init() {}

    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count, "tensor \(name): \(floats.count) values do not fit \(shape)")
        entries.append((name, "F32", shape, floats.withUnsafeBufferPointer { Data(buffer: $0) }))
    }

    public mutating func add(_ name: String, dtype: String, shape: [Int], bytes: Data) {
        entries.append((name, dtype, shape, bytes))
    }

    public func serialized() -> Data {
        var fields: [(String, JSONValue)] = []
        if !metadata.isEmpty { fields.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) }))) }
        var offset = 0
        for e in entries {
            fields.append((e.name, .object([("dtype", .string(e.dtype)), ("shape", .array(e.shape.map { .int($0) })),
                                            ("data_offsets", .array([.int(offset), .int(offset + e.data.count)]))])))
            offset += e.data.count
        }
        var header = Array(JSONValue.object(fields).serialized().utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for e in entries { out.append(e.data) }
        return out
    }

    /// Writes atomically (temporary file, then rename).
    public func write(to path: String) throws {
        try serialized().write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
