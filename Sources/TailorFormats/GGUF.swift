// GGUF reader: the model file format of llama.cpp (ggml docs/gguf.md, versions 2 and 3).
// Like llama.cpp's gguf.cpp it knows keys, values and tensor descriptors, not models: models ask
// for what they need by name. Every count, length and offset is checked against the file size
// before it is used, so a truncated or hostile file ends in a FormatError, never a crash.
import TailorKernels

/// A metadata value. Arrays may nest.
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), float32(Float), bool(Bool), string(String)
    case uint64(UInt64), int64(Int64), float64(Double)
    indirect case array([GGUFValue])

    /// The value as an integer, when it is one of the integer types (or a bool).
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        case .bool(let v): return v ? 1 : 0
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return int.map(Double.init)
        }
    }
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return int.map { $0 != 0 }
    }
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    public var array: [GGUFValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// GGUF's numeric code for the value's type.
    public var typeCode: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    /// A short human rendering; long arrays are summarized.
    public func summary(maxItems: Int = 8) -> String {
        switch self {
        case .string(let s): return s.count > 120 ? "\"\(s.prefix(117))…\" (\(s.count) chars)" : "\"\(s)\""
        case .array(let a):
            let head = a.prefix(maxItems).map { $0.summary(maxItems: 3) }.joined(separator: ", ")
            return a.count > maxItems ? "[\(head), …] (\(a.count) items)" : "[\(head)]"
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        case .bool(let b): return "\(b)"
        default: return "\(int ?? 0)"
        }
    }
}

/// Where a tensor lives in the file and what it holds. `shape` is ggml's: innermost dimension first.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let type: GGMLType
    /// Offset from the start of the file.
    public let offset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped GGUF file.
// @unchecked Sendable: parsed once in init and never changed; the tensor data is a read-only mapping.
public final class GGUFFile: @unchecked Sendable {
    public let file: MappedFile
    public let version: UInt32
    /// Metadata in file order.
    public let keys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    private let tensorIndex: [String: Int]

    public var path: String { file.path }

    public convenience init(path: String) throws(FormatError) {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(FormatError) {
        self.file = file
        var r = ByteReader(base: file.bytes, size: file.size)
        let magic = try r.bytes(4, what: "magic")
        guard magic == [0x47, 0x47, 0x55, 0x46] else {
            let shown = magic.map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            throw .badMagic(found: "\"\(shown)\"")
        }
        version = try r.u32("version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        let tensorCount = try r.u64("tensor count")
        let kvCount = try r.u64("metadata count")
        // Each tensor descriptor needs at least 24 bytes, each key/value at least 13.
        guard tensorCount <= UInt64(file.size / 24) else { throw .tooLarge(what: "tensor count", count: tensorCount) }
        guard kvCount <= UInt64(file.size / 13) else { throw .tooLarge(what: "metadata count", count: kvCount) }

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try r.string("metadata key")
            let type = try r.u32("type of \(key)")
            let value = try r.value(type: type, key: key, depth: 0)
            guard metadata[key] == nil else { throw .duplicateKey(key) }
            keys.append(key)
            metadata[key] = value
        }
        self.keys = keys
        self.metadata = metadata

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.int, v > 0, v & (v - 1) == 0, v <= 1 << 20 else {
                throw .badAlignment(UInt64(truncatingIfNeeded: a.int ?? 0))
            }
            alignment = v
        }
        self.alignment = alignment

        struct Raw { let name: String; let shape: [Int]; let type: GGMLType; let rel: UInt64 }
        var raws: [Raw] = []
        raws.reserveCapacity(Int(tensorCount))
        var index: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let name = try r.string("tensor name")
            let nd = try r.u32("dimension count of \(name)")
            guard (1...4).contains(nd) else { throw .badTensor(name: name, reason: "\(nd) dimensions (1 to 4 allowed)") }
            var shape: [Int] = []
            var total = 1
            for _ in 0..<nd {
                let d = try r.u64("shape of \(name)")
                guard d > 0, d < UInt64(Int32.max) else { throw .badTensor(name: name, reason: "dimension \(d) is out of range") }
                let (t, o) = total.multipliedReportingOverflow(by: Int(d))
                guard !o, t <= file.size * 8 + 64 else { throw .badTensor(name: name, reason: "shape \(shape + [Int(d)]) is larger than the file") }
                total = t
                shape.append(Int(d))
            }
            let code = try r.u32("type of \(name)")
            guard let type = GGMLType(rawValue: code) else { throw .unsupportedTensorType(name: name, type: code) }
            guard shape[0] % type.blockSize == 0 else {
                throw .badTensor(name: name, reason: "row length \(shape[0]) is not a multiple of \(type)'s block size \(type.blockSize)")
            }
            let rel = try r.u64("offset of \(name)")
            guard rel % UInt64(alignment) == 0 else { throw .badTensor(name: name, reason: "offset \(rel) is not aligned to \(alignment)") }
            guard index[name] == nil else { throw .duplicateTensor(name) }
            index[name] = raws.count
            raws.append(Raw(name: name, shape: shape, type: type, rel: rel))
        }
        let headerEnd = r.offset
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(raws.count)
        for raw in raws {
            guard let bytes = raw.type.byteCount(elements: raw.shape.reduce(1, *)) else {
                throw .badTensor(name: raw.name, reason: "size overflows")
            }
            guard raw.rel <= UInt64(file.size) else {
                throw .tensorOutOfBounds(name: raw.name, end: Int.max, fileSize: file.size)
            }
            let start = dataOffset + Int(raw.rel)
            let (end, o) = start.addingReportingOverflow(bytes)
            guard !o, end <= file.size else { throw .tensorOutOfBounds(name: raw.name, end: o ? Int.max : end, fileSize: file.size) }
            infos.append(GGUFTensorInfo(name: raw.name, shape: raw.shape, type: raw.type, offset: start, byteCount: bytes))
        }
        tensors = infos
        tensorIndex = index
    }

    public func tensor(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor, in place in the mapping.
    public func data(_ info: GGUFTensorInfo) -> UnsafeRawPointer { file.bytes + info.offset }

    // MARK: typed metadata access

    public subscript(key: String) -> GGUFValue? { metadata[key] }

    public func int(_ key: String) throws(FormatError) -> Int {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let i = v.int else { throw .wrongKeyType(key: key, expected: "an integer") }
        return i
    }
    public func double(_ key: String) throws(FormatError) -> Double {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let d = v.double else { throw .wrongKeyType(key: key, expected: "a number") }
        return d
    }
    public func string(_ key: String) throws(FormatError) -> String {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let s = v.string else { throw .wrongKeyType(key: key, expected: "a string") }
        return s
    }
    public func strings(_ key: String) throws(FormatError) -> [String] {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let a = v.array else { throw .wrongKeyType(key: key, expected: "an array of strings") }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let s = e.string else { throw .wrongKeyType(key: key, expected: "an array of strings") }
            out.append(s)
        }
        return out
    }
    public func numbers(_ key: String) throws(FormatError) -> [Double] {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let a = v.array else { throw .wrongKeyType(key: key, expected: "an array of numbers") }
        var out: [Double] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let d = e.double else { throw .wrongKeyType(key: key, expected: "an array of numbers") }
            out.append(d)
        }
        return out
    }
}

/// Bounds-checked little-endian reads over the mapping.
struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    var offset = 0

    mutating func need(_ n: Int, _ what: String) throws(FormatError) {
        guard n >= 0, n <= size - offset else { throw .truncated(what: what, offset: offset, needed: n, fileSize: size) }
    }
    mutating func bytes(_ n: Int, what: String) throws(FormatError) -> [UInt8] {
        try need(n, what)
        let out = Array(UnsafeRawBufferPointer(start: base + offset, count: n))
        offset += n
        return out
    }
    mutating func scalar<T: FixedWidthInteger>(_ t: T.Type, _ what: String) throws(FormatError) -> T {
        try need(MemoryLayout<T>.size, what)
        let v = T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return v
    }
    mutating func u32(_ what: String) throws(FormatError) -> UInt32 { try scalar(UInt32.self, what) }
    mutating func u64(_ what: String) throws(FormatError) -> UInt64 { try scalar(UInt64.self, what) }

    mutating func string(_ what: String) throws(FormatError) -> String {
        let n = try u64("length of \(what)")
        guard n <= UInt64(size - offset) else { throw .truncated(what: what, offset: offset, needed: Int(clamping: n), fileSize: size) }
        let buf = UnsafeRawBufferPointer(start: base + offset, count: Int(n))
        offset += Int(n)
        // Tokenizer vocabularies hold byte pieces that are not valid UTF-8 on their own; keep them
        // losslessly decodable by repairing rather than rejecting.
        return String(decoding: buf, as: UTF8.self)
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws(FormatError) -> GGUFValue {
        switch type {
        case 0: return .uint8(try scalar(UInt8.self, key))
        case 1: return .int8(try scalar(Int8.self, key))
        case 2: return .uint16(try scalar(UInt16.self, key))
        case 3: return .int16(try scalar(Int16.self, key))
        case 4: return .uint32(try scalar(UInt32.self, key))
        case 5: return .int32(try scalar(Int32.self, key))
        case 6: return .float32(Float(bitPattern: try scalar(UInt32.self, key)))
        case 7:
            let b = try scalar(UInt8.self, key)
            return .bool(b != 0)
        case 8: return .string(try string(key))
        case 10: return .uint64(try scalar(UInt64.self, key))
        case 11: return .int64(try scalar(Int64.self, key))
        case 12: return .float64(Double(bitPattern: try scalar(UInt64.self, key)))
        case 9:
            guard depth < 8 else { throw .nestingTooDeep(key: key) }
            let et = try u32("array type of \(key)")
            let n = try u64("array length of \(key)")
            let minSize: Int
            switch et {
            case 0, 1, 7: minSize = 1
            case 2, 3: minSize = 2
            case 4, 5, 6: minSize = 4
            case 8, 10, 11, 12: minSize = 8
            case 9: minSize = 12
            default: throw .badValueType(key: key, type: et)
            }
            guard n <= UInt64((size - offset) / minSize) else { throw .tooLarge(what: "array length of \(key)", count: n) }
            var out: [GGUFValue] = []
            out.reserveCapacity(Int(n))
            for _ in 0..<n { out.append(try value(type: et, key: key, depth: depth + 1)) }
            return .array(out)
        default:
            throw .badValueType(key: key, type: type)
        }
    }
}
