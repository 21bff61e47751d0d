import Foundation
import Testing
@testable import TailorKernels

/// The fused fp32 kernels of Precision.exact (and the fp16 cache helpers) against the scalar
/// references, on random rows of every fused type.
@Suite struct QuantDotTests {
    @Test(arguments: [GGMLType.f32, .f16, .q4_0, .q4_1, .q5_0, .q8_0, .q4_K, .q6_K, .q2_K, .q3_K, .q5_K, .q5_1])
    func fusedDotEqualsReference(_ type: GGMLType) {
        var rng = SplitMix64Test(seed: 100 + UInt64(type.rawValue))
        let n = 1536
        let x = (0..<n).map { _ in Float(Int(rng.next() % 20001) - 10000) / 5000 }
        var sums = [Float](repeating: 0, count: n / 32)
        x.withUnsafeBufferPointer { xp in sums.withUnsafeMutableBufferPointer { QuantDot.blockSums(xp.baseAddress!, n, into: $0.baseAddress!) } }
        var scratch = [Float](repeating: 0, count: n)
        for _ in 0..<6 {
            let row: [UInt8]
            switch type {
            case .f32: row = (0..<n).flatMap { _ in withUnsafeBytes(of: Float(Int(rng.next() % 2001) - 1000) / 1000) { Array($0) } }
            case .f16: row = (0..<n).flatMap { _ in withUnsafeBytes(of: floatToHalf(Float(Int(rng.next() % 2001) - 1000) / 1000)) { Array($0) } }
            case .q2_K, .q3_K, .q5_K, .q5_1:
                var r = Q8DotTests.randomRow(.q8_0, n: n, rng: &rng)  // any bytes; scales fixed below
                r = Array(r.prefix(type.byteCount(elements: n)!)) + Array(repeating: 0, count: max(0, type.byteCount(elements: n)! - r.count))
                row = sanitize(r, type)
            default: row = Q8DotTests.randomRow(type, n: n, rng: &rng)
            }
            let (fast, ref, mag) = row.withUnsafeBytes { r in
                x.withUnsafeBufferPointer { xp in sums.withUnsafeBufferPointer { sp in scratch.withUnsafeMutableBufferPointer { scr in
                    var w = [Float](repeating: 0, count: n)
                    w.withUnsafeMutableBufferPointer { QuantReference.dequantize(type, r.baseAddress!, $0.baseAddress!, count: n) }
                    let mag = zip(w, x).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
                    return (QuantDot.dot(type, r.baseAddress!, xp.baseAddress!, sp.baseAddress!, n, scratch: scr.baseAddress!),
                            QuantReference.dot(type, r.baseAddress!, xp.baseAddress!, count: n), mag)
                } } }
            }
            #expect(abs(fast - ref) <= 1e-5 * max(1, mag), "\(type): fused \(fast) vs reference \(ref)")
        }
    }

    /// Gives random K-quant and Q5_1 blocks small finite half scales.
    func sanitize(_ r: [UInt8], _ type: GGMLType) -> [UInt8] {
        var r = r
        let offsets: [Int] = type == .q2_K ? [80, 82] : type == .q3_K ? [108] : type == .q5_K ? [0, 2] : [0, 2]
        for b in 0..<(r.count / type.blockBytes) {
            for o in offsets {
                let h = floatToHalf(0.01)
                r[b * type.blockBytes + o] = UInt8(h & 0xFF); r[b * type.blockBytes + o + 1] = UInt8(h >> 8)
            }
        }
        return r
    }

    @Test func halfCacheHelpersEqualScalar() {
        var rng = SplitMix64Test(seed: 5)
        let n = 77
        let x = (0..<n).map { _ in Float(Int(rng.next() % 2001) - 1000) / 300 }
        let h = (0..<n).map { _ in floatToHalf(Float(Int(rng.next() % 2001) - 1000) / 300) }
        let d = x.withUnsafeBufferPointer { xp in h.withUnsafeBufferPointer { HalfDot.dot(xp.baseAddress!, $0.baseAddress!, n) } }
        let ref = zip(x, h).reduce(Float(0)) { $0 + $1.0 * halfToFloat($1.1) }
        #expect(abs(d - ref) < 1e-3)
        var y = x
        y.withUnsafeMutableBufferPointer { yp in h.withUnsafeBufferPointer { HalfDot.axpy(0.5, $0.baseAddress!, yp.baseAddress!, n) } }
        for i in 0..<n { #expect(abs(y[i] - (x[i] + 0.5 * halfToFloat(h[i]))) < 1e-5) }
    }

    /// The fused attention kernels give exactly what one `dot` per key and one `axpy` per value
    /// give (the decoder's outputs must not move), for the head widths of SmolLM2 (64) and
    /// Gemma 3 (256), a width with a remainder (40) and key counts around the 4-key step.
    @Test(arguments: [64, 256, 40])
    func attentionKernelsEqualOneRowAtATime(_ dim: Int) {
        var rng = SplitMix64Test(seed: UInt64(dim))
        let stride = 3 * dim + 8
        for count in [1, 3, 4, 7, 130] {
            let q = (0..<dim).map { _ in Float(Int(rng.next() % 2001) - 1000) / 700 }
            let cache = (0..<(count * stride)).map { _ in floatToHalf(Float(Int(rng.next() % 2001) - 1000) / 500) }
            var scores = [Float](repeating: 0, count: count)
            q.withUnsafeBufferPointer { qp in cache.withUnsafeBufferPointer { kp in scores.withUnsafeMutableBufferPointer {
                HalfDot.scores(qp.baseAddress!, kp.baseAddress! + 5, stride: stride, count: count, dim: dim, scale: 0.125, into: $0.baseAddress!)
            } } }
            for j in 0..<count {
                let ref = q.withUnsafeBufferPointer { qp in cache.withUnsafeBufferPointer { HalfDot.dot(qp.baseAddress!, $0.baseAddress! + 5 + j * stride, dim) } } * 0.125
                #expect(scores[j] == ref, "score \(j) of \(count), dim \(dim)")
            }
            var o = [Float](repeating: .nan, count: dim), ref = [Float](repeating: 0, count: dim)
            scores.withUnsafeBufferPointer { wp in cache.withUnsafeBufferPointer { vp in o.withUnsafeMutableBufferPointer {
                HalfDot.weightedSum(wp.baseAddress!, vp.baseAddress! + 5, stride: stride, count: count, dim: dim, into: $0.baseAddress!)
            } } }
            for j in 0..<count {
                cache.withUnsafeBufferPointer { vp in ref.withUnsafeMutableBufferPointer { HalfDot.axpy(scores[j], vp.baseAddress! + 5 + j * stride, $0.baseAddress!, dim) } }
            }
            #expect(o == ref, "weighted sum of \(count) rows, dim \(dim)")
        }
        var x = (0..<37).map { _ in Float(Int(rng.next() % 200001) - 100000) / 7 }
        let rounded = x.map { halfToFloat(floatToHalf($0)) }
        x.withUnsafeMutableBufferPointer { HalfDot.roundToHalf($0.baseAddress!, 37) }
        #expect(x == rounded)
    }
}
