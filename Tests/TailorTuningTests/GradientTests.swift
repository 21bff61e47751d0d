import Foundation
import Testing
@testable import TailorTuning

/// Every backward pass against central finite differences of L = Σ out ⊙ R (R random).
@Suite struct GradientTests {
    struct RNG { var s: UInt64
        mutating func next() -> Float { s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: s) >> 11) / Float(1 << 52) } }
    static func random(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] { var r = RNG(s: seed); return (0..<n).map { _ in r.next() * scale } }

    /// Relative error ‖analytic − numeric‖ / ‖numeric‖ of d L / d x, L(x) computed by `loss`.
    static func check(_ x: inout [Float], analytic: [Float], eps: Float = 1e-2, loss: ([Float]) -> Double) -> Double {
        var num = [Double](repeating: 0, count: x.count)
        for k in x.indices {
            let orig = x[k]
            x[k] = orig + eps; let lp = loss(x)
            x[k] = orig - eps; let lm = loss(x)
            x[k] = orig
            num[k] = (lp - lm) / Double(2 * eps)
        }
        var diff = 0.0, norm = 0.0
        for k in x.indices { diff += pow(Double(analytic[k]) - num[k], 2); norm += num[k] * num[k] }
        return (diff / max(norm, 1e-30)).squareRoot()
    }

    static func dotR(_ out: [Float], _ r: [Float]) -> Double { zip(out, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

    @Test func matmul() {
        let n = 3, i = 5, o = 4
        var x = Self.random(n * i, seed: 1), w = Self.random(o * i, seed: 2), b = Self.random(o, seed: 3)
        let r = Self.random(n * o, seed: 4)
        func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * o)
            Ops.matmulForward(&out, x, w, b, n: n, i: i, o: o)
            return Self.dotR(out, r)
        }
        var dx = [Float](repeating: 0, count: n * i), dw = [Float](repeating: 0, count: o * i), db = [Float](repeating: 0, count: o)
        Ops.matmulBackward(dinp: &dx, dw: &dw, dbias: &db, dout: r, inp: x, w: w, n: n, i: i, o: o)
        #expect(Self.check(&x, analytic: dx) { f($0, w, b) } < 1e-3)
        #expect(Self.check(&w, analytic: dw) { f(x, $0, b) } < 1e-3)
        #expect(Self.check(&b, analytic: db) { f(x, w, $0) } < 1e-3)
    }

    @Test func rmsnorm() {
        let n = 3, c = 8
        var x = Self.random(n * c, seed: 5), w = Self.random(c, seed: 6)
        let r = Self.random(n * c, seed: 7)
        func f(_ x: [Float], _ w: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c), rs = [Float](repeating: 0, count: n)
            Ops.rmsnormForward(&out, rstd: &rs, x, w, n: n, c: c, eps: 1e-5)
            return Self.dotR(out, r)
        }
        var out = [Float](repeating: 0, count: n * c), rs = [Float](repeating: 0, count: n)
        Ops.rmsnormForward(&out, rstd: &rs, x, w, n: n, c: c, eps: 1e-5)
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c)
        Ops.rmsnormBackward(dinp: &dx, dweight: &dw, dout: r, inp: x, weight: w, rstd: rs, n: n, c: c)
        #expect(Self.check(&x, analytic: dx, eps: 1e-3) { f($0, w) } < 1e-2)
        #expect(Self.check(&w, analytic: dw, eps: 1e-3) { f(x, $0) } < 1e-2)
    }

    @Test func swiglu() {
        let k = 12
        var g = Self.random(k, seed: 8, scale: 3), u = Self.random(k, seed: 9)
        let r = Self.random(k, seed: 10)
        func f(_ g: [Float], _ u: [Float]) -> Double {
            var out = [Float](repeating: 0, count: k); Ops.swigluForward(&out, gate: g, up: u, count: k); return Self.dotR(out, r)
        }
        var dg = [Float](repeating: 0, count: k), du = [Float](repeating: 0, count: k)
        Ops.swigluBackward(dgate: &dg, dup: &du, dout: r, gate: g, up: u, count: k)
        #expect(Self.check(&g, analytic: dg, eps: 1e-3) { f($0, u) } < 1e-2)
        #expect(Self.check(&u, analytic: du, eps: 1e-3) { f(g, $0) } < 1e-2)
    }

    @Test(arguments: [false, true]) func rope(neox: Bool) {
        let n = 4, heads = 2, d = 8
        var x = Self.random(n * heads * d, seed: 11)
        let r = Self.random(n * heads * d, seed: 12)
        let pos = [0, 3, 7, 100]
        func f(_ x: [Float]) -> Double { var y = x; Ops.rope(&y, n: n, heads: heads, headDim: d, positions: pos, theta: 10000, neox: neox); return Self.dotR(y, r) }
        var dx = r
        Ops.ropeBackward(&dx, n: n, heads: heads, headDim: d, positions: pos, theta: 10000, neox: neox)
        #expect(Self.check(&x, analytic: dx, eps: 1e-3) { f($0) } < 1e-2)
    }

    @Test func causalAttentionWithGroupedHeads() {
        let t = 5, heads = 4, kvHeads = 2, d = 4
        var q = Self.random(t * heads * d, seed: 13), k = Self.random(t * kvHeads * d, seed: 14), v = Self.random(t * kvHeads * d, seed: 15)
        let r = Self.random(t * heads * d, seed: 16)
        func f(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
            var out = [Float](repeating: 0, count: t * heads * d), p = [Float](repeating: 0, count: heads * t * t)
            Ops.attentionForward(&out, probs: &p, q: q, k: k, v: v, t: t, heads: heads, kvHeads: kvHeads, headDim: d)
            return Self.dotR(out, r)
        }
        var out = [Float](repeating: 0, count: t * heads * d), p = [Float](repeating: 0, count: heads * t * t)
        Ops.attentionForward(&out, probs: &p, q: q, k: k, v: v, t: t, heads: heads, kvHeads: kvHeads, headDim: d)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = [Float](repeating: 0, count: v.count)
        Ops.attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: r, probs: p, q: q, k: k, v: v, t: t, heads: heads, kvHeads: kvHeads, headDim: d)
        #expect(Self.check(&q, analytic: dq, eps: 1e-3) { f($0, k, v) } < 1e-2)
        #expect(Self.check(&k, analytic: dk, eps: 1e-3) { f(q, $0, v) } < 1e-2)
        #expect(Self.check(&v, analytic: dv, eps: 1e-3) { f(q, k, $0) } < 1e-2)
        // Causal: the first token's output depends on the first key and value only.
        var v2 = v; for c in (kvHeads * d)..<v2.count { v2[c] += 1 }
        var o2 = [Float](repeating: 0, count: out.count)
        Ops.attentionForward(&o2, probs: &p, q: q, k: k, v: v2, t: t, heads: heads, kvHeads: kvHeads, headDim: d)
        #expect(Array(o2[0..<(heads * d)]) == Array(out[0..<(heads * d)]))
    }

    @Test func maskedCrossEntropy() {
        let n = 4, v = 7
        var logits = Self.random(n * v, seed: 17, scale: 3)
        let targets = [2, -1, 6, 0]
        var dl = [Float](repeating: 0, count: n * v)
        let (loss, count) = Ops.crossEntropy(logits, targets: targets, v: v, dlogits: &dl)
        #expect(count == 3 && loss > 0)
        #expect(dl[v..<(2 * v)].allSatisfy { $0 == 0 }, "a masked row has no gradient")
        #expect(Self.check(&logits, analytic: dl, eps: 1e-3) { Ops.crossEntropy($0, targets: targets, v: v, dlogits: nil).loss } < 1e-2)
    }

    @Test func embedding() {
        let c = 3, ids = [2, 0, 2]
        var table = Self.random(4 * c, seed: 18)
        let r = Self.random(ids.count * c, seed: 19)
        var dt = [Float](repeating: 0, count: table.count)
        Ops.embeddingBackward(dtable: &dt, dout: r, ids: ids, c: c)
        #expect(Self.check(&table, analytic: dt) { t in
            var out = [Float](repeating: 0, count: ids.count * c); Ops.embeddingForward(&out, table: t, ids: ids, c: c); return Self.dotR(out, r)
        } < 1e-3)
    }

    @Test func lora() {
        let n = 3, i = 6, o = 5, rank = 2
        var x = Self.random(n * i, seed: 20), a = Self.random(rank * i, seed: 21), b = Self.random(o * rank, seed: 22)
        let r = Self.random(n * o, seed: 23), scale: Float = 2
        func f(_ x: [Float], _ a: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * o), u = [Float](repeating: 0, count: n * rank)
            Ops.loraForward(&out, u: &u, inp: x, a: a, b: b, n: n, i: i, o: o, rank: rank, scale: scale)
            return Self.dotR(out, r)
        }
        var out = [Float](repeating: 0, count: n * o), u = [Float](repeating: 0, count: n * rank)
        Ops.loraForward(&out, u: &u, inp: x, a: a, b: b, n: n, i: i, o: o, rank: rank, scale: scale)
        var dx = [Float](repeating: 0, count: x.count), da = [Float](repeating: 0, count: a.count), db = [Float](repeating: 0, count: b.count)
        Ops.loraBackward(dinp: &dx, da: &da, db: &db, dout: r, u: u, inp: x, a: a, b: b, n: n, i: i, o: o, rank: rank, scale: scale)
        #expect(Self.check(&x, analytic: dx) { f($0, a, b) } < 1e-3)
        #expect(Self.check(&a, analytic: da) { f(x, $0, b) } < 1e-3)
        #expect(Self.check(&b, analytic: db) { f(x, a, $0) } < 1e-3)
    }
}
