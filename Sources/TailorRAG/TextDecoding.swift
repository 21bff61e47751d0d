// Bytes to text: UTF-8 (with or without a byte-order mark), UTF-16/32 by their marks or by the
// pattern of zero bytes, and single-byte Windows-1252/Latin-1 text as a reported fallback.
import Foundation

public enum TextDecoding {
    public struct Decoded { public var text: String; public var encoding: String; public var note: String? }

    public static func decode(_ data: Data, path: String) throws -> Decoded {
        let bytes = [UInt8](data)
        func strip(_ n: Int) -> Data { data.subdata(in: (data.startIndex + n)..<data.endIndex) }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            guard let s = String(validating: bytes[3...], as: UTF8.self) else {
                throw RAGError.badEncoding(path: path, detail: "starts with a UTF-8 byte-order mark but is not valid UTF-8; re-save it as UTF-8")
            }
            return Decoded(text: s, encoding: "utf-8", note: nil)
        }
        if bytes.starts(with: [0xFF, 0xFE, 0, 0]) || bytes.starts(with: [0, 0, 0xFE, 0xFF]) {
            let enc: String.Encoding = bytes[0] == 0xFF ? .utf32LittleEndian : .utf32BigEndian
            if let s = String(data: strip(4), encoding: enc) { return Decoded(text: s, encoding: "utf-32", note: "decoded as UTF-32 (byte-order mark)") }
        }
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) {
            let enc: String.Encoding = bytes[0] == 0xFF ? .utf16LittleEndian : .utf16BigEndian
            guard let s = String(data: strip(2), encoding: enc) else {
                throw RAGError.badEncoding(path: path, detail: "starts with a UTF-16 byte-order mark but is not valid UTF-16")
            }
            return Decoded(text: s, encoding: "utf-16", note: "decoded as UTF-16 (byte-order mark)")
        }
        if !bytes.contains(0), let s = String(validating: bytes, as: UTF8.self) {
            return Decoded(text: s, encoding: "utf-8", note: nil)
        }
        // UTF-16 without a mark: ASCII-range text has a zero in every other byte.
        let sample = bytes.prefix(4096)
        if sample.count >= 4 {
            var evenZero = 0, oddZero = 0
            for (i, b) in sample.enumerated() where b == 0 { if i % 2 == 0 { evenZero += 1 } else { oddZero += 1 } }
            let half = sample.count / 2
            if oddZero > half * 6 / 10 && evenZero < half / 10, let s = String(data: data, encoding: .utf16LittleEndian) {
                return Decoded(text: s, encoding: "utf-16le", note: "decoded as UTF-16LE (no byte-order mark)")
            }
            if evenZero > half * 6 / 10 && oddZero < half / 10, let s = String(data: data, encoding: .utf16BigEndian) {
                return Decoded(text: s, encoding: "utf-16be", note: "decoded as UTF-16BE (no byte-order mark)")
            }
        }
        if bytes.contains(0) { throw RAGError.badEncoding(path: path, detail: "looks binary (contains NUL bytes), not text") }
        // Single-byte text. Windows-1252 leaves 0x81 0x8D 0x8F 0x90 0x9D undefined; Latin-1 maps all.
        let undefined1252: Set<UInt8> = [0x81, 0x8D, 0x8F, 0x90, 0x9D]
        if !bytes.contains(where: undefined1252.contains), let s = String(data: data, encoding: .windowsCP1252) {
            return Decoded(text: s, encoding: "windows-1252", note: "not valid UTF-8; decoded as windows-1252 (re-save as UTF-8 if characters look wrong)")
        }
        let s = String(decoding: bytes.map { UInt16($0) }, as: UTF16.self)
        return Decoded(text: s, encoding: "latin-1", note: "not valid UTF-8; decoded as latin-1 (re-save as UTF-8 if characters look wrong)")
    }

    /// Normalizes line ends to \n.
    public static func normalizeNewlines(_ s: String) -> String {
        guard s.unicodeScalars.contains("\r") else { return s }
        return s.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
    }
}
