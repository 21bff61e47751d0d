import Foundation
import Testing
import TailorKernels
import TailorTestSupport
@testable import TailorFormats

@Suite struct GGUFTests {
    func tempPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tailor-test-\(UUID().uuidString)-\(name)").path
    }

    /// A small file using every metadata type, nested arrays and two tensors.
    func sampleWriter() -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("general.alignment", .uint32(64))
        w.set("u8", .uint8(200)); w.set("i8", .int8(-5)); w.set("u16", .uint16(60000)); w.set("i16", .int16(-30000))
        w.set("u32", .uint32(4_000_000_000)); w.set("i32", .int32(-2_000_000_000)); w.set("f32", .float32(1.5))
        w.set("bool", .bool(true)); w.set("str", .string("héllo ✓")); w.set("u64", .uint64(1 << 40))
        w.set("i64", .int64(-(1 << 40))); w.set("f64", .float64(2.25))
        w.set("nested", .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])]))
        w.set("strings", .array([.string("a"), .string(""), .string("ü")]))
        w.addTensor(name: "a", shape: [4, 2], type: .f32, data: (0..<8).flatMap { withUnsafeBytes(of: Float($0)) { Array($0) } })
        w.addTensor(name: "b", shape: [32], type: .q8_0, data: [0, 0x3C] + (0..<32).map { UInt8($0) })
        return w
    }

    @Test func roundTripEveryValueType() throws {
        let w = sampleWriter()
        let path = tempPath("rt.gguf")
        try w.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let g = try GGUFFile(path: path)
        #expect(g.version == 3)
        #expect(g.alignment == 64)
        #expect(g.keys == w.keys)
        for k in w.keys { #expect(g[k] == w.values[k], "\(k)") }
        #expect(g.tensors.map(\.name) == ["a", "b"])
        let a = g.tensor("a")!
        #expect(a.shape == [4, 2] && a.type == .f32 && a.byteCount == 32 && a.offset % 64 == 0)
        #expect(g.data(a).loadUnaligned(fromByteOffset: 4 * 5, as: Float.self) == 5)
        let b = g.tensor("b")!
        var out = [Float](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { QuantReference.dequantize(.q8_0, g.data(b), $0.baseAddress!, count: 32) }
        #expect(out[3] == 3)  // d = 1.0 (0x3C00)
        #expect(try g.strings("strings") == ["a", "", "ü"])
        #expect(throws: FormatError.missingKey("nope")) { try g.int("nope") }
    }

    @Test func realModelHeader() throws {
        let g = try GGUFFile(path: TestPaths.model("SmolLM2-135M-Instruct.Q4_1.gguf"))
        #expect(g.version == 3)
        #expect(g.tensors.count == 272)
        #expect(try g.int("llama.block_count") == 30)
        #expect(try g.strings("tokenizer.ggml.tokens").count == 49152)
        #expect(g.tensor("token_embd.weight")?.type == .q8_0)
    }

    func expectRejected(_ bytes: [UInt8], _ what: String) {
        let path = tempPath("bad.gguf")
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try GGUFFile(path: path)
            Issue.record("\(what): accepted")
        } catch {
            #expect(!error.description.isEmpty)
        }
    }

    @Test func hostileHeadersAreErrors() {
        let good = sampleWriter().serialized()
        expectRejected([], "empty file")
        expectRejected(Array("GGML".utf8) + Array(good[4...]), "bad magic")
        var v = good; v[4] = 9; expectRejected(v, "version 9")
        // Huge tensor and metadata counts.
        var t = good; for i in 8..<16 { t[i] = 0xFF }; expectRejected(t, "huge tensor count")
        var m = good; for i in 16..<24 { m[i] = 0x7F }; expectRejected(m, "huge kv count")
        // Every truncation of the header is an error, never a crash.
        let headerEnd = good.count - 64 - 64
        for cut in stride(from: 0, to: headerEnd, by: 3) { expectRejected(Array(good[..<cut]), "truncated at \(cut)") }
        // Tensor data past the end.
        expectRejected(Array(good.dropLast(64 - 34 + 1)), "tensor data cut by one byte")
    }

    @Test func randomMutationsNeverCrash() throws {
        let good = sampleWriter().serialized()
        var rng = SystemRandomNumberGenerator()
        var rejected = 0, accepted = 0
        for round in 0..<3000 {
            var b = good
            let flips = 1 + round % 4
            for _ in 0..<flips {
                let i = Int.random(in: 0..<min(b.count, 400), using: &rng)
                b[i] = round % 3 == 0 ? 0xFF : UInt8.random(in: 0...255, using: &rng)
            }
            let path = tempPath("m.gguf")
            FileManager.default.createFile(atPath: path, contents: Data(b))
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                let g = try GGUFFile(path: path)
                // Whatever parsed must be internally consistent.
                for t in g.tensors { #expect(t.offset + t.byteCount <= g.file.size) }
                accepted += 1
            } catch is FormatError {
                rejected += 1
            }
        }
        print("mutations: \(rejected) rejected with an error, \(accepted) still valid")
        #expect(rejected > 100)
    }

    @Test func errorMessagesNameTheProblemAndTheFix() {
        #expect(FormatError.badMagic(found: "\"GGML\"").description.contains("not a GGUF file"))
        #expect(FormatError.truncated(what: "tensor count", offset: 8, needed: 8, fileSize: 10).description.contains("fetch it again"))
        #expect(FormatError.unsupportedTensorType(name: "x", type: 99).description.contains("Re-quantize"))
    }
}

extension Error {
    var description: String { String(describing: self) }
}
