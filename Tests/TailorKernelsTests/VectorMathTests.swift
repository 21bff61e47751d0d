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
