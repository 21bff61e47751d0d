import Foundation
import Testing
@testable import TailorKernels

@Suite struct VectorMathTests {
    @Test func geluMatchesErfReference() {
        var x = (0..<4001).map { Float($0 - 2000) / 200 }   // −10 … 10
        x += [0, -0.0, 1e-8, -1e-8, 30, -30, 88, -88]
        let ref = x.map(VectorMath.geluScalar)
        var got = x
        got.withUnsafeMutableBufferPointer { VectorMath.gelu($0.baseAddress!, $0.count) }
        var worst: Float = 0
        for i in x.indices { worst = max(worst, abs(got[i] - ref[i]) / max(1, abs(ref[i]))) }
        print("vector GELU vs erf reference: max error \(worst)")
        #expect(worst < 1e-6)
    }

    /// The first index of the maximum, as the scalar loop finds it: random lengths (tails past the
    /// last 16), ties (the first wins), the maximum in the tail, NaNs, all −∞.
    @Test func argmaxEqualsTheScalarLoop() {
        func scalar(_ x: [Float]) -> Int {
            var b = 0
            for i in 1..<x.count where x[i] > x[b] || (x[b].isNaN && !x[i].isNaN) { b = i }
            return b
        }
        var rng = SplitMix64Test(seed: 5)
        var cases: [[Float]] = (1..<70).map { n in (0..<n).map { _ in Float(Int(rng.next() % 41) - 20) } }
        cases.append((0..<49152).map { i in i == 40000 || i == 45000 ? 9 : Float(i % 7) })
        cases.append((0..<35).map { i in i == 33 ? 5 : 1 })
        cases.append([.nan, 1, 3, .nan, 3, 2])
        cases.append([Float](repeating: -.infinity, count: 20))
        for x in cases {
            let got = x.withUnsafeBufferPointer { VectorMath.argmax($0.baseAddress!, $0.count) }
            #expect(got == scalar(x), "argmax of \(x.count) values: \(got), expected \(scalar(x))")
        }
    }
}

@Suite struct SwiGLUTests {
    /// silu(g)·u against the formula in Double, over −100…100 (the exp clamps at both ends).
    @Test func swigluMatchesTheFormula() {
        let g = (0..<4003).map { Float($0 - 2000) / 20 } + [0, -0.0, 88, -88, 100, -100]
        let u = g.indices.map { Float(($0 * 13) % 17) / 8 - 1 }
        var got = g
        got.withUnsafeMutableBufferPointer { gp in u.withUnsafeBufferPointer { VectorMath.swiglu(gp.baseAddress!, $0.baseAddress!, g.count) } }
        for i in g.indices {
            let a = Double(g[i])
            let ref = a / (1 + Foundation.exp(-a)) * Double(u[i])
            #expect(abs(Double(got[i]) - ref) <= 1e-6 * max(1, abs(ref)), "swiglu(\(g[i]), \(u[i])) = \(got[i]), expected \(ref)")
        }
    }
}

@Suite struct TrainingKernelTests {
    @Test func geluBackwardMatchesTheDerivative() {
        let x = (0..<4003).map { Float($0 - 2000) / 200 } + [0, 30, -30]
        var d = x.map { _ in Float(1.5) }
        d.withUnsafeMutableBufferPointer { dp in x.withUnsafeBufferPointer { VectorMath.geluBackward(dp.baseAddress!, $0.baseAddress!, $0.count) } }
        var worst = 0.0
        for (i, v) in x.enumerated() {
            let xv = Double(v)
            let want = 1.5 * (0.5 * (1 + erf(xv / 2.0.squareRoot())) + xv * exp(-0.5 * xv * xv) / (2 * Double.pi).squareRoot())
            worst = max(worst, abs(Double(d[i]) - want))
        }
        #expect(worst < 2e-6, "max error \(worst)")
    }

    /// The vector AdamW is the scalar formula, operation for operation: identical results.
    @Test func adamWVectorPathEqualsScalarPath() {
        let n = 8 * 37 + 5
        var p = (0..<n).map { Float(sin(Double($0))) }, m = (0..<n).map { Float(cos(Double($0))) * 0.01 }, v = (0..<n).map { Float($0 % 7) * 1e-4 }
        let g = (0..<n).map { Float(sin(Double($0) * 0.37)) * 0.1 }
        var (rp, rm, rv) = (p, m, v)
        let lr: Float = 1e-3, wd: Float = 0.01, b1: Float = 0.9, b2: Float = 0.999, c1: Float = 0.19, c2: Float = 0.002, eps: Float = 1e-8, s: Float = 0.5
        for i in 0..<n {
            let gi = g[i] * s
            rp[i] = rp[i] - (lr * wd) * rp[i]
            rm[i] = b1 * rm[i] + (1 - b1) * gi
            rv[i] = b2 * rv[i] + ((1 - b2) * gi) * gi
            rp[i] = rp[i] - (lr * (rm[i] / c1)) / ((rv[i] / c2).squareRoot() + eps)
        }
        p.withUnsafeMutableBufferPointer { pp in m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
            g.withUnsafeBufferPointer { gp in
                VectorMath.adamW(pp.baseAddress!, gp.baseAddress!, mp.baseAddress!, vp.baseAddress!, n, lr: lr, weightDecay: wd,
                                 beta1: b1, beta2: b2, c1: c1, c2: c2, eps: eps, gradScale: s)
            }
        } } }
        #expect(p == rp && m == rm && v == rv)
        var x = g
        let ss = x.withUnsafeMutableBufferPointer { VectorMath.scaleSumSquares($0.baseAddress!, n, 2) }
        #expect(x == g.map { $0 * 2 })
        #expect(abs(ss - g.reduce(0) { $0 + Double($1 * 2) * Double($1 * 2) }) < 1e-6)
    }
}

@Suite struct SoftmaxTests {
    @Test func softmaxMatchesScalar() {
        for n in [1, 7, 8, 13, 33, 70, 257] {
            var x = (0..<n).map { Float(($0 * 37) % 101) / 7 - 6 }
            let mx = x.max()!
            let e = x.map { exp(Double($0 - mx)) }
            let s = e.reduce(0, +)
            x += [Float](repeating: 42, count: 8)     // must stay as they are: only n values are rows
            x.withUnsafeMutableBufferPointer { VectorMath.softmax($0.baseAddress!, n) }
            for i in 0..<n { #expect(abs(Double(x[i]) - e[i] / s) < 1e-6, "n=\(n) i=\(i)") }
            #expect(x[n...].allSatisfy { $0 == 42 }, "n=\(n): wrote past the row")
        }
    }
}

@Suite struct EncoderAttentionTests {
    /// The vector kernel against the plain loops: head widths on and off the 32-wide path (and
    /// one not a multiple of 8, which takes the plain loops), texts of 1 to 130 tokens, rows
    /// inside a wider [Q | K | V] layout as the encoder stores them.
    @Test func vectorHeadMatchesPlainLoops() {
        var rng = SystemRandomNumberGenerator()
        for D in [32, 64, 40, 12] {
            for n in [1, 2, 3, 17, 70, 130] {
                let H = 3 * D, stride = 3 * H    // three heads, Q | K | V
                let qkv = (0..<(n * stride)).map { _ in Float.random(in: -2...2, using: &rng) }
                var got = [Float](repeating: .nan, count: n * H), ref = got
                let scale = 1 / Float(D).squareRoot()
                var scratch = [Float](repeating: .nan, count: EncoderAttention.scratchCount(tokens: n, headDim: D))
                qkv.withUnsafeBufferPointer { p in
                    let q = p.baseAddress! + D, k = q + H, v = q + 2 * H   // the second head
                    got.withUnsafeMutableBufferPointer { o in scratch.withUnsafeMutableBufferPointer { s in
                        EncoderAttention.head(q: q, k: k, v: v, stride: stride, out: o.baseAddress! + D, outStride: H,
                                              tokens: n, headDim: D, scale: scale, scratch: s.baseAddress!)
                    } }
                    ref.withUnsafeMutableBufferPointer { o in
                        EncoderAttention.reference(q: q, k: k, v: v, stride: stride, out: o.baseAddress! + D, outStride: H,
                                                   tokens: n, headDim: D, scale: scale)
                    }
                }
                var worst: Float = 0
                for i in 0..<n {
                    for d in 0..<D { worst = max(worst, abs(got[i * H + D + d] - ref[i * H + D + d])) }
                    // Only the head's own columns are written.
                    #expect(got[i * H].isNaN && got[i * H + 2 * D].isNaN)
                }
                #expect(worst < 1e-5, "D \(D), n \(n): largest difference \(worst)")
            }
        }
    }

    @Test func layerNormMatchesTheFormula() {
        for n in [1, 7, 8, 384, 389] {
            let x: [Float] = (0..<n).map { i -> Float in Float(i % 13) * 0.7 - 3 + Float(i) * 0.001 }
            let g: [Float] = (0..<n).map { i -> Float in 1 + Float(i % 5) * 0.1 }
            let b: [Float] = (0..<n).map { i -> Float in Float(i % 3) * 0.2 - 0.2 }
            let mean = x.map(Double.init).reduce(0, +) / Double(n)
            let variance = x.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(n)
            var got = x
            got.withUnsafeMutableBufferPointer { VectorMath.layerNorm($0.baseAddress!, n, gain: g, bias: b, eps: 1e-12) }
            for i in 0..<n {
                let normalized: Double = (Double(x[i]) - mean) / (variance + 1e-12).squareRoot()
                let want: Double = normalized * Double(g[i]) + Double(b[i])
                #expect(abs(Double(got[i]) - want) < 1e-5, "n \(n), i \(i): \(got[i]) vs \(want)")
            }
        }
    }
}
