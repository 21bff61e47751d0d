import Foundation
import Testing
import TailorTestSupport
@testable import TailorFormats

@Suite struct SafetensorsTests {
    func file(_ header: String, data: [UInt8]) throws -> String {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes += $0 }
        bytes += Array(header.utf8) + data
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-\(UUID()).safetensors").path
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    @Test func readsFloatTypes() throws {
        let f32: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]           // 1.0, 2.0
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]                     // 1.0, -2.0
        let bf16: [UInt8] = [0x80, 0x3F]                                // 1.0
        let h = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2,1],"data_offsets":[8,12]},"c":{"dtype":"BF16","shape":[1],"data_offsets":[12,14]}}"#
        let p = try file(h, data: f32 + f16 + bf16)
        defer { try? FileManager.default.removeItem(atPath: p) }
        let s = try SafetensorsFile(path: p)
        #expect(try s.floats("a") == [1, 2])
        #expect(try s.floats("b") == [1, -2])
        #expect(try s.floats("c") == [1])
        #expect(s.metadata["format"] == "pt")
        #expect(s.tensor("b")?.shape == [2, 1])
    }

    @Test func badFilesAreErrorsNotCrashes() throws {
        let cases: [(String, [UInt8])] = [
            ("not json", []),
            (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, [0, 0, 0, 0]),          // data past the end
            (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, Array(repeating: 0, count: 8)),  // size mismatch
            (#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#, [0]),                      // unknown dtype
            (#"{"a":{"shape":[1]}}"#, [0]),                                                        // missing fields
            (#"[1,2,3]"#, []),
        ]
        for (h, d) in cases {
            let p = try file(h, data: d)
            defer { try? FileManager.default.removeItem(atPath: p) }
            #expect(throws: FormatError.self, "\(h)") { _ = try SafetensorsFile(path: p) }
        }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { bytes += $0 }
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-\(UUID()).safetensors").path
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(atPath: p) }
        #expect(throws: FormatError.self) { _ = try SafetensorsFile(path: p) }
    }

    @Test func realModel() throws {
        let s = try SafetensorsFile(path: TestPaths.model("all-MiniLM-L6-v2") + "/model.safetensors")
        #expect(s.tensor("embeddings.word_embeddings.weight")?.shape == [30522, 384])
    }
}
