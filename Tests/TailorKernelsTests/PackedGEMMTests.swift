import Foundation
import Testing
@testable import TailorKernels

/// The packed kernels of batched decoding and prefill: every kernel gives the scalar reference's
/// bits, for row counts and token counts that do not divide the tile sizes; the reference is
/// within 8-bit activation rounding of the exact product; and a token's outputs do not depend on
/// the tokens multiplied with it.
@Suite struct PackedGEMMTests {
    static func matrix(_ type: GGMLType, rows: Int, n: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64Test(seed: seed)
        var out: [UInt8] = []
        for _ in 0..<rows { out += Q8DotTests.randomRow(type, n: n, rng: &rng) }
        return out
    }

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q8_0, .q4_K, .q5_K, .q6_K])
    func kernelEqualsReferenceAndNearExact(_ type: GGMLType) throws {
        let kernels = PackedGEMM.kernels(for: type)
        print("packed kernels on this machine for \(type): \(kernels.map(\.rawValue)); used: 1 token \(PackedGEMM.kernel(tokens: 1, type: type).rawValue), 16 tokens \(PackedGEMM.kernel(tokens: 16, type: type).rawValue), 64 tokens \(PackedGEMM.kernel(tokens: 64, type: type).rawValue)")
        let shapes = PackedWeights.isK(type) ? [(16, 256), (37, 512), (5, 768), (48, 1536)] : [(16, 32), (37, 96), (5, 576), (48, 1536)]
        for (rows, n) in shapes {
            let w = Self.matrix(type, rows: rows, n: n, seed: UInt64(rows * n) + UInt64(type.rawValue))
            var rng = SplitMix64Test(seed: UInt64(n))
            let maxTokens = 47
            let x = (0..<(n * maxTokens)).map { _ in Float(Int(rng.next() % 20001) - 10000) / 3000 }
            try w.withUnsafeBytes { wb in
                let packed = PackedWeights(type: type, rows: rows, cols: n, source: wb.baseAddress!)
                if !PackedWeights.isK(type) {
                    #expect(packed.byteCount == packed.groups * 16 * n / 32 * type.blockBytes, "the packed tiles hold the blocks' bytes")
                }
                let b32 = !PackedWeights.isK(type), b256 = PackedWeights.isK(type)
                for tokens in [1, 2, 3, 4, 5, 8, 11, 16, 17, 33, 47] {
                    let acts = QuantizedActivations(n: n, tokens: tokens)
                    x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, blocks32: b32, blocks256: b256) }
                    for accumulate in [false, true] {
                        var ref = [Float](repeating: 0.5, count: tokens * rows), fast = ref
                        ref.withUnsafeMutableBufferPointer { PackedGEMM.reference(packed, acts, tokens: tokens, groups: 0..<packed.groups, $0.baseAddress!, ldy: rows, accumulate: accumulate) }
                        // Every kernel this machine has gives the reference's bits.
                        for kernel in kernels where kernel != .reference {
                            var out = [Float](repeating: 0.5, count: tokens * rows)
                            out.withUnsafeMutableBufferPointer { PackedGEMM.run(kernel, packed, acts, tokens: tokens, groups: 0..<packed.groups, $0.baseAddress!, ldy: rows, accumulate: accumulate) }
                            #expect(out == ref, "\(kernel.rawValue) \(type) rows \(rows) n \(n) tokens \(tokens): max difference \(zip(out, ref).map { abs($0 - $1) }.max()!)")
                        }
                        fast.withUnsafeMutableBufferPointer { PackedGEMM.run(packed, acts, tokens: tokens, groups: 0..<packed.groups, $0.baseAddress!, ldy: rows, accumulate: accumulate) }
                        #expect(fast == ref, "\(type) rows \(rows) n \(n) tokens \(tokens): max difference \(zip(fast, ref).map { abs($0 - $1) }.max()!)")
                        // Token t alone gives the same outputs as token t among the others.
                        if !accumulate && tokens > 1 {
                            let one = QuantizedActivations(n: n, tokens: 1)
                            x.withUnsafeBufferPointer { one.quantize($0.baseAddress! + (tokens - 1) * n, blocks32: b32, blocks256: b256) }
                            var alone = [Float](repeating: 0, count: rows)
                            alone.withUnsafeMutableBufferPointer { PackedGEMM.run(packed, one, tokens: 1, groups: 0..<packed.groups, $0.baseAddress!, ldy: rows, accumulate: false) }
                            #expect(Array(fast[((tokens - 1) * rows)...]) == alone)
                        }
                    }
                    // Near the exact fp32 product of the dequantized weights.
                    var ref = [Float](repeating: 0, count: tokens * rows)
                    ref.withUnsafeMutableBufferPointer { PackedGEMM.reference(packed, acts, tokens: tokens, groups: 0..<packed.groups, $0.baseAddress!, ldy: rows, accumulate: false) }
                    for r in 0..<rows {
                        var row = [Float](repeating: 0, count: n)
                        row.withUnsafeMutableBufferPointer { QuantReference.dequantize(type, wb.baseAddress! + r * n / type.blockSize * type.blockBytes, $0.baseAddress!, count: n) }
                        for t in 0..<tokens {
                            var exact: Float = 0, absSum: Float = 0
                            for i in 0..<n { exact += row[i] * x[t * n + i]; absSum += abs(row[i] * x[t * n + i]) }
                            #expect(abs(ref[t * rows + r] - exact) <= 0.01 * absSum + 1e-5, "\(type) row \(r) token \(t): \(ref[t * rows + r]) vs \(exact)")
                        }
                    }
                }
            }
        }
    }
}
