import Foundation
import Testing
@testable import TailorTuning

/// The encoder's backward passes against central finite differences (see GradientTests).
@Suite struct EncoderGradientTests {
    typealias G = GradientTests

    @Test func layernorm() {
        let n = 3, c = 8
        var x = G.random(n * c, seed: 31), w = G.random(c, seed: 32), b = G.random(c, seed: 33)
        let r = G.random(n * c, seed: 34)
        func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), s = m
            Ops.layernormForward(&out, mean: &m, rstd: &s, x, w, b, n: n, c: c, eps: 1e-5)
            return G.dotR(out, r)
        }
        var out = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), s = m
        Ops.layernormForward(&out, mean: &m, rstd: &s, x, w, b, n: n, c: c, eps: 1e-5)
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c), db = dw
        Ops.layernormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: r, inp: x, weight: w, mean: m, rstd: s, n: n, c: c)
        #expect(G.check(&x, analytic: dx, eps: 1e-3) { f($0, w, b) } < 1e-2)
        #expect(G.check(&w, analytic: dw, eps: 1e-3) { f(x, $0, b) } < 1e-2)
        #expect(G.check(&b, analytic: db, eps: 1e-3) { f(x, w, $0) } < 1e-2)
    }

    @Test func gelu() {
        let n = 40
        var x = G.random(n, seed: 35, scale: 3)
        let r = G.random(n, seed: 36)
        func f(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            Ops.geluForward(&out, x, count: n)
            return G.dotR(out, r)
        }
        var dx = [Float](repeating: 0, count: n)
        Ops.geluBackward(dinp: &dx, dout: r, inp: x, count: n)
        #expect(G.check(&x, analytic: dx, eps: 1e-3) { f($0) } < 1e-2)
        // Φ(0) = 0.5: GELU(0) = 0, GELU'(0) = 0.5.
        var o: [Float] = [0], d: [Float] = [0]
        Ops.geluForward(&o, [0], count: 1)
        Ops.geluBackward(dinp: &d, dout: [1], inp: [0], count: 1)
        #expect(o[0] == 0 && abs(d[0] - 0.5) < 1e-7)
    }

    /// Padding keys get no attention and no gradient; the rest matches finite differences.
    @Test func maskedAttention() {
        let t = 5, valid = 3, h = 2, d = 4, w = h * d
        var q = G.random(t * w, seed: 37), k = G.random(t * w, seed: 38), v = G.random(t * w, seed: 39)
        let r = G.random(t * w, seed: 40)
        func f(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
            var out = [Float](repeating: 0, count: t * w), p = [Float](repeating: 0, count: h * t * t)
            Ops.maskedAttentionForward(&out, probs: &p, q: q, k: k, v: v, t: t, valid: valid, heads: h, headDim: d)
            return G.dotR(out, r)
        }
        var out = [Float](repeating: 0, count: t * w), p = [Float](repeating: 0, count: h * t * t)
        Ops.maskedAttentionForward(&out, probs: &p, q: q, k: k, v: v, t: t, valid: valid, heads: h, headDim: d)
        var dq = [Float](repeating: 0, count: t * w), dk = dq, dv = dq
        Ops.maskedAttentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: r, probs: p, q: q, k: k, v: v, t: t, valid: valid, heads: h, headDim: d)
        #expect(G.check(&q, analytic: dq) { f($0, k, v) } < 1e-2)
        #expect(G.check(&k, analytic: dk) { f(q, $0, v) } < 1e-2)
        #expect(G.check(&v, analytic: dv) { f(q, k, $0) } < 1e-2)
        #expect(dk[(valid * w)...].allSatisfy { $0 == 0 } && dv[(valid * w)...].allSatisfy { $0 == 0 })
        // Changing a padding key or value changes nothing.
        var k2 = k, v2 = v
        k2[(t - 1) * w] += 5; v2[(t - 1) * w] += 5
        #expect(f(q, k2, v2) == f(q, k, v))
    }

    @Test func meanPooling() {
        let t = 4, valid = 3, c = 5
        var x = G.random(t * c, seed: 41)
        let r = G.random(c, seed: 42)
        func f(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: c)
            Ops.meanPoolForward(&out, x, valid: valid, c: c)
            return G.dotR(out, r)
        }
        var dx = [Float](repeating: 0, count: t * c)
        Ops.meanPoolBackward(dinp: &dx, dout: r, valid: valid, c: c)
        #expect(G.check(&x, analytic: dx) { f($0) } < 1e-3)
        #expect(dx[(valid * c)...].allSatisfy { $0 == 0 })
    }
}
