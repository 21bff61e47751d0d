import Foundation
import Testing
@testable import TailorKernels

/// The scalar references against the `gguf` package's numpy dequantizers (an independent
/// implementation), on synthetic random blocks and on real blocks from the model files
/// (fixture from scripts/reference/quant_blocks.py).
@Suite struct QuantBlockTests {
    struct Item {
        let type: GGMLType
        let source: String
        let bytes: [UInt8]
        let values: [Float]
        let xDot: Double
    }

    static func items() throws -> [Item] {
        guard let url = Bundle.module.url(forResource: "Fixtures/quant-blocks.json", withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile)
        }
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (root["items"] as! [[String: Any]]).map { d in
            Item(type: GGMLType(name: d["type"] as! String)!, source: d["source"] as! String,
                 bytes: Array(Data(base64Encoded: d["bytes"] as! String)!),
                 values: (d["values"] as! [NSNumber]).map(\.floatValue), xDot: (d["x_dot"] as! NSNumber).doubleValue)
        }
    }

    @Test func blockSizesMatchGGML() {
        // ggml-common.h static_asserts, restated.
        let expected: [GGMLType: (Int, Int)] = [
            .q4_0: (32, 18), .q4_1: (32, 20), .q5_0: (32, 22), .q5_1: (32, 24), .q8_0: (32, 34), .q8_1: (32, 36),
            .q2_K: (256, 84), .q3_K: (256, 110), .q4_K: (256, 144), .q5_K: (256, 176), .q6_K: (256, 210), .q8_K: (256, 292),
            .f32: (1, 4), .f16: (1, 2), .bf16: (1, 2),
        ]
        for (t, (bs, bb)) in expected {
            #expect(t.blockSize == bs && t.blockBytes == bb, "\(t)")
        }
    }

    @Test func referenceDequantizeMatchesNumpy() throws {
        let items = try Self.items()
        var covered = Set<GGMLType>()
        for item in items {
            let n = item.values.count
            #expect(item.type.byteCount(elements: n) == item.bytes.count, "\(item.type) \(item.source) size")
            var out = [Float](repeating: .nan, count: n)
            item.bytes.withUnsafeBytes { src in
                out.withUnsafeMutableBufferPointer { QuantReference.dequantize(item.type, src.baseAddress!, $0.baseAddress!, count: n) }
            }
            var maxErr: Float = 0
            for i in 0..<n { maxErr = max(maxErr, abs(out[i] - item.values[i]) / max(1, abs(item.values[i]))) }
            print("\(item.type) \(item.source): \(n) values, max relative error \(maxErr)")
            #expect(maxErr <= 1e-6, "\(item.type) \(item.source)")
            covered.insert(item.type)
        }
        let all: Set<GGMLType> = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
        #expect(all.isSubset(of: covered), "fixture covers every type")
    }

    @Test func referenceDotMatchesNumpy() throws {
        for item in try Self.items() {
            let n = item.values.count
            let x = (0..<n).map { Float(cos(Double($0) * 0.37)) }
            let got = item.bytes.withUnsafeBytes { src in
                x.withUnsafeBufferPointer { QuantReference.dot(item.type, src.baseAddress!, $0.baseAddress!, count: n) }
            }
            let scale = max(1, item.values.reduce(0) { $0 + abs(Double($1)) })
            #expect(abs(Double(got) - item.xDot) / scale <= 1e-6, "\(item.type) \(item.source): \(got) vs \(item.xDot)")
        }
    }

    @Test func fastDequantizeEqualsReference() throws {
        for item in try Self.items() {
            let n = item.values.count
            var ref = [Float](repeating: 0, count: n), fast = [Float](repeating: 1, count: n)
            item.bytes.withUnsafeBytes { src in
                ref.withUnsafeMutableBufferPointer { QuantReference.dequantize(item.type, src.baseAddress!, $0.baseAddress!, count: n) }
                fast.withUnsafeMutableBufferPointer { FastDequant.row(item.type, src.baseAddress!, $0.baseAddress!, count: n) }
            }
            #expect(ref == fast, "\(item.type) \(item.source)")
        }
    }

    @Test func halfAndBFloatConversions() {
        for bits in stride(from: 0, through: 0xFFFF, by: 7) {
            let f = halfToFloat(UInt16(bits))
            if f.isNaN { continue }
            #expect(floatToHalf(f) == UInt16(bits))
        }
        #expect(bf16ToFloat(floatToBF16(1.5)) == 1.5)
        #expect(floatToBF16(1.0 + 1.0 / 256) == floatToBF16(1.0))  // ties to even
    }

    /// `tailor quantize`'s block quantizers: dequantizing what they write gives the values back
    /// within each format's resolution, and more bits give less error (Q5_K's fifth bit is used).
    @Test func quantizersRoundTrip() {
        var rng = SplitMix64Test(seed: 42)
        let n = 4096
        // Roughly Gaussian weights (sum of uniforms), a few outliers.
        let x: [Float] = (0..<n).map { i in
            var v: Float = 0
            for _ in 0..<4 { v += Float(rng.next() % 10001) / 10000 - 0.5 }
            return i % 97 == 0 ? v * 6 : v * 0.05
        }
        let rms = (x.map { $0 * $0 }.reduce(0, +) / Float(n)).squareRoot()
        var errors: [GGMLType: Float] = [:]
        for type in Quantizer.supported {
            let bytes = x.withUnsafeBufferPointer { Quantizer.quantize($0.baseAddress!, count: n, to: type) }
            #expect(bytes.count == n / type.blockSize * type.blockBytes)
            var back = [Float](repeating: 0, count: n)
            bytes.withUnsafeBytes { b in back.withUnsafeMutableBufferPointer { QuantReference.dequantize(type, b.baseAddress!, $0.baseAddress!, count: n) } }
            let err = (zip(x, back).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(n)).squareRoot() / rms
            errors[type] = err
            let bound: Float = [.f32: 1e-7, .f16: 1e-3, .q8_0: 0.02, .q6_K: 0.08, .q5_0: 0.12, .q5_K: 0.12, .q4_0: 0.25, .q4_1: 0.25, .q4_K: 0.25][type] ?? 0.3
            #expect(err <= bound, "\(type): relative RMS error \(err)")
        }
        #expect(errors[.q5_K]! < 0.75 * errors[.q4_K]!, "Q5_K \(errors[.q5_K]!) against Q4_K \(errors[.q4_K]!)")
        #expect(errors[.q6_K]! < errors[.q4_K]!)
    }
}
