import Foundation
import Testing
@testable import TailorKernels

/// The integer kernels of Precision.fast: SIMD equals the scalar reference, and both are within
/// 8-bit activation rounding of the exact fp32 dot product.
@Suite struct Q8DotTests {
    static func randomRow(_ type: GGMLType, n: Int, rng: inout SplitMix64Test) -> [UInt8] {
        var bytes = (0..<(n / type.blockSize * type.blockBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        // Keep half-precision scales finite and modest.
        let halfOffsets: [Int]
        switch type {
        case .q4_0, .q8_0, .q5_0: halfOffsets = [0]
        case .q4_1: halfOffsets = [0, 2]
        case .q4_K, .q5_K: halfOffsets = [0, 2]
        case .q6_K: halfOffsets = [208]
        default: halfOffsets = []
        }
        for b in 0..<(n / type.blockSize) {
            for o in halfOffsets {
                let h = floatToHalf(Float(rng.next() % 1000) / 20000 + 0.001)
                bytes[b * type.blockBytes + o] = UInt8(h & 0xFF)
                bytes[b * type.blockBytes + o + 1] = UInt8(h >> 8)
            }
        }
        return bytes
    }

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q8_0, .q4_K, .q6_K])
    func simdEqualsReferenceAndNearExact(_ type: GGMLType) {
        var rng = SplitMix64Test(seed: UInt64(type.rawValue) + 7)
        let n = 1536, tokens = 3
        let x = (0..<(n * tokens)).map { _ in Float(Int(rng.next() % 20001) - 10000) / 3000 }
        let acts = QuantizedActivations(n: n, tokens: tokens)
        x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, blocks32: true, blocks256: true) }
        for _ in 0..<8 {
            let row = Self.randomRow(type, n: n, rng: &rng)
            row.withUnsafeBytes { r in
                for t in 0..<tokens {
                    let fast = Q8Dot.dot(type, r.baseAddress!, acts, token: t)
                    let ref = Q8Dot.reference(type, r.baseAddress!, acts, token: t)
                    let exact = x.withUnsafeBufferPointer { QuantReference.dot(type, r.baseAddress!, $0.baseAddress! + t * n, count: n) }
                    var absSum: Float = 0
                    var w = [Float](repeating: 0, count: n)
                    w.withUnsafeMutableBufferPointer { QuantReference.dequantize(type, r.baseAddress!, $0.baseAddress!, count: n) }
                    for i in 0..<n { absSum += abs(w[i] * x[t * n + i]) }
                    #expect(abs(fast - ref) <= 1e-4 * max(1, absSum), "\(type): simd \(fast) vs reference \(ref)")
                    // 8-bit activations: error well under 1% of Σ|w·x|.
                    #expect(abs(ref - exact) <= 0.01 * absSum, "\(type): int8 \(ref) vs exact \(exact)")
                }
            }
        }
    }

    /// The vector 32-block quantizer gives the reference's bytes, scale and sum: on random values,
    /// exact halves (x·127/amax landing on .5, where rounding must go to even), zeros and a
    /// block that is all zero.
    @Test func vectorBlockQuantizationEqualsReference() {
        var rng = SplitMix64Test(seed: 11)
        var blocks: [[Float]] = (0..<200).map { _ in (0..<32).map { _ in Float(Int(rng.next() % 20001) - 10000) / 313 } }
        blocks.append((0..<32).map { j in j == 0 ? 127 : Float(j) + 0.5 })   // ties: q = j + 0.5 exactly
        blocks.append([Float](repeating: 0, count: 32))
        blocks.append((0..<32).map { j in j % 3 == 0 ? 0 : -Float(j) * 1e-3 })
        for x in blocks {
            var q1 = [Int8](repeating: 0, count: 32), q2 = [Int8](repeating: 0, count: 32)
            let r1 = x.withUnsafeBufferPointer { xp in q1.withUnsafeMutableBufferPointer { QuantizedActivations.block32(xp.baseAddress!, $0.baseAddress!) } }
            let r2 = x.withUnsafeBufferPointer { xp in q2.withUnsafeMutableBufferPointer { QuantizedActivations.block32Vector(xp.baseAddress!, $0.baseAddress!) } }
            #expect(q1 == q2)
            #expect(r1.0 == r2.0 && r1.1 == r2.1)
        }
    }

    /// The vector 256-block quantizer gives the reference's bytes, sums and scale: random values,
    /// ties at .5, the largest magnitude negative, both signs of it (the first one counts), an
    /// all-zero block and one whose largest value sits in the last lane.
    @Test func vectorBlock256EqualsReference() {
        var rng = SplitMix64Test(seed: 19)
        var blocks: [[Float]] = (0..<50).map { _ in (0..<256).map { _ in Float(Int(rng.next() % 20001) - 10000) / 313 } }
        blocks.append((0..<256).map { j in j == 0 ? -127 : Float(j % 120) + 0.5 })
        blocks.append((0..<256).map { j in j == 40 ? 9 : (j == 200 ? -9 : Float(j % 7) - 3) })
        blocks.append((0..<256).map { j in j == 40 ? -9 : (j == 200 ? 9 : Float(j % 7) - 3) })
        blocks.append([Float](repeating: 0, count: 256))
        blocks.append((0..<256).map { j in j == 255 ? 50 : Float(j % 5) * 0.01 })
        for x in blocks {
            var q1 = [Int8](repeating: 0, count: 256), q2 = [Int8](repeating: 1, count: 256)
            var s1 = [Int16](repeating: 0, count: 16), s2 = [Int16](repeating: 1, count: 16)
            let d1 = x.withUnsafeBufferPointer { xp in q1.withUnsafeMutableBufferPointer { q in s1.withUnsafeMutableBufferPointer {
                QuantizedActivations.block256(xp.baseAddress!, q.baseAddress!, $0.baseAddress!) } } }
            let d2 = x.withUnsafeBufferPointer { xp in q2.withUnsafeMutableBufferPointer { q in s2.withUnsafeMutableBufferPointer {
                QuantizedActivations.block256Vector(xp.baseAddress!, q.baseAddress!, $0.baseAddress!) } } }
            #expect(q1 == q2)
            #expect(s1 == s2)
            #expect(d1 == d2)
        }
    }

    @Test func activationQuantizationRoundTrips() {
        var rng = SplitMix64Test(seed: 3)
        let n = 512
        let x = (0..<n).map { _ in Float(Int(rng.next() % 2001) - 1000) / 77 }
        let a = QuantizedActivations(n: n, tokens: 1)
        x.withUnsafeBufferPointer { a.quantize($0.baseAddress!, blocks32: true, blocks256: true) }
        for b in 0..<(n / 32) {
            let d = a.d32[b]
            var sum: Int32 = 0
            for j in 0..<32 {
                let q = a.q32[32 * b + j]
                sum += Int32(q)
                #expect(abs(Float(q) * d - x[32 * b + j]) <= d * 0.51 + 1e-3 * abs(x[32 * b + j]))
            }
            #expect(sum == a.sum32[b])
        }
        for b in 0..<(n / 256) {
            let d = a.dK[b]
            for j in 0..<256 { #expect(abs(Float(a.qK[256 * b + j]) * d - x[256 * b + j]) <= abs(d) * 0.51) }
            for g in 0..<16 {
                let s = (0..<16).reduce(Int16(0)) { $0 + Int16(a.qK[256 * b + 16 * g + $1]) }
                #expect(s == a.bsumsK[16 * b + g])
            }
        }
    }
}

struct SplitMix64Test {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct Q8PairTests {
    /// Rows of 1…9 blocks: every partial last group of the four-block (and two-block Q8_0)
    /// kernels, for one row and for two, against the reference; a second token checks that a
    /// row's padding never picks up the next token's activations. Q4_K: 1…6 super-blocks.
    @Test(arguments: [GGMLType.q4_1, .q8_0, .q4_0, .q5_0, .q4_K])
    func everyBlockCountEqualsReference(_ type: GGMLType) {
        var rng = SplitMix64Test(seed: 23)
        let superBlocks = Q8Dot.uses256(type)
        for blocks in 1...(superBlocks ? 6 : 9) {
            let n = type.blockSize * blocks
            let x = (0..<(2 * n)).map { _ in Float(Int(rng.next() % 20001) - 10000) / 3000 }
            let acts = QuantizedActivations(n: n, tokens: 2)
            x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, blocks32: !superBlocks, blocks256: superBlocks) }
            let rows = Q8DotTests.randomRow(type, n: 2 * n, rng: &rng)
            rows.withUnsafeBytes { r in
                let r0 = r.baseAddress!, r1 = r.baseAddress! + blocks * type.blockBytes
                // Float sums in another order: within 1e-4 of Σ|w·x| (at least 1).
                func scale(_ row: UnsafeRawPointer, _ t: Int) -> Float {
                    var w = [Float](repeating: 0, count: n)
                    w.withUnsafeMutableBufferPointer { QuantReference.dequantize(type, row, $0.baseAddress!, count: n) }
                    return 1e-4 * max(1, (0..<n).reduce(Float(0)) { $0 + abs(w[$1] * x[t * n + $1]) })
                }
                for t in 0..<2 {
                    let (a, b) = Q8Dot.dot2(type, r0, r1, acts, token: t)
                    let ra = Q8Dot.reference(type, r0, acts, token: t), rb = Q8Dot.reference(type, r1, acts, token: t)
                    #expect(abs(a - ra) <= scale(r0, t), "\(type) \(blocks) blocks, token \(t): \(a) vs \(ra)")
                    #expect(abs(b - rb) <= scale(r1, t), "\(type) \(blocks) blocks, token \(t): \(b) vs \(rb)")
                    let one = Q8Dot.dot(type, r1, acts, token: t)
                    #expect(abs(one - rb) <= scale(r1, t), "\(type) \(blocks) blocks, one row: \(one) vs \(rb)")
                }
            }
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q8_0, .q4_0, .q5_0, .q4_K])
    func pairEqualsSingles(_ type: GGMLType) {
        var rng = SplitMix64Test(seed: 11)
        let n = Q8Dot.uses256(type) ? 768 : 576
        let x = (0..<n).map { _ in Float(Int(rng.next() % 20001) - 10000) / 3000 }
        let acts = QuantizedActivations(n: n, tokens: 1)
        x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, blocks32: !Q8Dot.uses256(type), blocks256: Q8Dot.uses256(type)) }
        let rows = Q8DotTests.randomRow(type, n: 2 * n, rng: &rng)  // two adjacent rows
        rows.withUnsafeBytes { r in
            let r0 = r.baseAddress!, r1 = r.baseAddress! + n / type.blockSize * type.blockBytes
            let (a, b) = Q8Dot.dot2(type, r0, r1, acts, token: 0)
            #expect(abs(a - Q8Dot.reference(type, r0, acts, token: 0)) < 1e-3)
            #expect(abs(b - Q8Dot.reference(type, r1, acts, token: 0)) < 1e-3)
        }
    }
}
