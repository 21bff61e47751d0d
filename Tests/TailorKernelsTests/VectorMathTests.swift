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
        for n in [1, 7, 8, 33, 257] {
            var x = (0..<n).map { Float(($0 * 37) % 101) / 7 - 6 }
            let mx = x.max()!
            let e = x.map { exp(Double($0 - mx)) }
            let s = e.reduce(0, +)
            x.withUnsafeMutableBufferPointer { VectorMath.softmax($0.baseAddress!, n) }
            for i in 0..<n { #expect(abs(Double(x[i]) - e[i] / s) < 1e-6, "n=\(n) i=\(i)") }
        }
    }
}
