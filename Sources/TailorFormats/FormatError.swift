/// Everything that can be wrong with a model file. Each message names the problem and a way out.
public enum FormatError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case badMagic(found: String)
    case unsupportedVersion(UInt32)
    case truncated(what: String, offset: Int, needed: Int, fileSize: Int)
    case tooLarge(what: String, count: UInt64)
    case badValueType(key: String, type: UInt32)
    case nestingTooDeep(key: String)
    case badString(what: String)
    case duplicateKey(String)
    case duplicateTensor(String)
    case badAlignment(UInt64)
    case badTensor(name: String, reason: String)
    case unsupportedTensorType(name: String, type: UInt32)
    case tensorOutOfBounds(name: String, end: Int, fileSize: Int)
    case missingKey(String)
    case wrongKeyType(key: String, expected: String)
    case missingTensor(String)
    case badHeader(String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open \(path): \(reason). Check the path, or run `tailor models` to list the model cache."
        case let .badMagic(found):
            return "not a GGUF file (magic \(found), expected \"GGUF\"). Give a .gguf model, or convert it with llama.cpp's convert_hf_to_gguf.py."
        case let .unsupportedVersion(v):
            return "GGUF version \(v) is not supported (versions 2 and 3 are). Re-convert the model with a current llama.cpp."
        case let .truncated(what, offset, needed, size):
            return "file is truncated: \(what) needs \(needed) bytes at offset \(offset) but the file has \(size). The download was probably cut short; fetch it again."
        case let .tooLarge(what, count):
            return "\(what) is \(count), more than the file could hold: the file is corrupted."
        case let .badValueType(key, type):
            return "metadata key \(key) has unknown value type \(type): the file is corrupted or from a newer format."
        case let .nestingTooDeep(key):
            return "metadata key \(key) nests arrays too deeply: the file is corrupted."
        case let .badString(what):
            return "\(what) is not valid UTF-8: the file is corrupted."
        case let .duplicateKey(k):
            return "metadata key \(k) appears twice: the file is corrupted."
        case let .duplicateTensor(n):
            return "tensor \(n) appears twice: the file is corrupted."
        case let .badAlignment(a):
            return "general.alignment is \(a); it must be a non-zero power of two."
        case let .badTensor(name, reason):
            return "tensor \(name): \(reason)."
        case let .unsupportedTensorType(name, type):
            return "tensor \(name) has type \(type), which Tailor does not support (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K…Q6_K are). Re-quantize the model to one of those."
        case let .tensorOutOfBounds(name, end, size):
            return "tensor \(name) ends at byte \(end) but the file has \(size): the file is truncated or corrupted."
        case let .missingKey(k):
            return "metadata key \(k) is missing; the file was not written for this architecture or is incomplete."
        case let .wrongKeyType(k, expected):
            return "metadata key \(k) should be \(expected)."
        case let .missingTensor(n):
            return "tensor \(n) is missing from the model file."
        case let .badHeader(m):
            return m
        }
    }
}
