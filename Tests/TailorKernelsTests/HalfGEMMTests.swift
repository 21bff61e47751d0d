import Testing
import Foundation
@testable import TailorKernels

#if TAILOR_AVX512FP16
@Suite struct HalfGEMMTests {
    static func values(_ n: Int, scale: Float, rng: inout SplitMix64Test) -> [Float] {
        (0..<n).map { _ in Float(Int(rng.next() % 20001) - 10000) / 10000 * scale }
    }

    /// Every edge of the kernel: rows not a multiple of 8 (and of the row chunk), outputs not a
    /// multiple of 64 (masked columns), K not a multiple of 16 (masked conversion) nor of the
    /// flush interval; Y's starting values kept. The kernel makes the reference's roundings, so
    /// only the order of fp32 additions may differ.
    @Test(arguments: [(1, 1, 1), (8, 64, 64), (9, 65, 17), (13, 100, 130), (350, 130, 384), (23, 384, 1536), (7, 1152, 383)])
    func equalsReferenceRoundings(m: Int, n: Int, k: Int) {
        var rng = SplitMix64Test(seed: UInt64(m * 7919 + n * 31 + k))
        let x = Self.values(m * k, scale: 3, rng: &rng), w = Self.values(n * k, scale: 0.2, rng: &rng)
        let start = Self.values(m * n, scale: 1, rng: &rng)
        var got = start, want = start
        let packed = w.withUnsafeBufferPointer { HalfWeights($0.baseAddress!, outputs: n, inputs: k) }
        var fellBack = false
        x.withUnsafeBufferPointer { xp in
            got.withUnsafeMutableBufferPointer { HalfGEMM.multiplyAdd(xp.baseAddress!, rows: m, packed, into: $0.baseAddress!) { _ in fellBack = true } }
            w.withUnsafeBufferPointer { wp in
                want.withUnsafeMutableBufferPointer { HalfGEMM.reference(xp.baseAddress!, rows: m, wp.baseAddress!, outputs: n, inputs: k, into: $0.baseAddress!) }
            }
        }
        #expect(!fellBack)
        let worst = zip(got, want).map { abs($0 - $1) / max(1, abs($1)) }.max()!
        #expect(worst < 1e-5, "\(m)×\(n)×\(k): off by \(worst)")
        // And close to the exact product: fp16 rounding, not a wrong index.
        var exact = start
        for i in 0..<m { for j in 0..<n { var s = 0.0; for c in 0..<k { s += Double(x[i * k + c]) * Double(w[j * k + c]) }; exact[i * n + j] += Float(s) } }
        let err = zip(got, exact).map { abs($0 - $1) }.max()!
        #expect(err < 2e-3 * Float(k).squareRoot(), "\(m)×\(n)×\(k): \(err) from the exact product")
    }

    /// Inputs that could overflow fp16 sums go to the fp32 fallback, those rows only, and
    /// nothing is written for them.
    @Test func largeInputsFallBack() {
        let m = 40, n = 70, k = 4096
        var rng = SplitMix64Test(seed: 9)
        var x = Self.values(m * k, scale: 1, rng: &rng)
        let w = Self.values(n * k, scale: 1, rng: &rng)
        x[39 * k + 5] = 1e6
        let packed = w.withUnsafeBufferPointer { HalfWeights($0.baseAddress!, outputs: n, inputs: k) }
        var y = [Float](repeating: 0, count: m * n)
        var fallback: [Range<Int>] = []
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { HalfGEMM.multiplyAdd(xp.baseAddress!, rows: m, packed, into: $0.baseAddress!) { fallback.append($0) } }
        }
        #expect(fallback.count == 1)
        #expect(fallback.first?.contains(39) == true)
        let untouched = fallback.first ?? 0..<0
        #expect(untouched.allSatisfy { r in (0..<n).allSatisfy { y[r * n + $0] == 0 } })
        #expect(y[0] != 0)
    }
}
#endif
