import Testing
@testable import TailorKernels

@Suite struct MatMulTests {
    /// The prefill path (dequantized panels through sgemm, taken by whichever thread is free) for
    /// several matrices of one input, writing and accumulating, against plain loops over the
    /// dequantized weights.
    @Test(arguments: [1, 2, 3])
    func panelsEqualPlainLoops(threads: Int) {
        var rng = SplitMix64Test(seed: 5)
        let cols = 64, tokens = 9
        let shapes = [(GGMLType.q4_0, 600), (.q8_0, 37), (.q4_1, 256)]
        let rows = shapes.map { Q8DotTests.randomRow($0.0, n: $0.1 * cols, rng: &rng) }
        let x = (0..<(tokens * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        let pool = ThreadPool(threads: threads)
        for accumulate in [false, true] {
            rows[0].withUnsafeBytes { b0 in rows[1].withUnsafeBytes { b1 in rows[2].withUnsafeBytes { b2 in
                let mats = zip(shapes, [b0, b1, b2]).map { WeightMatrix(type: $0.0, rows: $0.1, cols: cols, data: $1.baseAddress!, owner: nil) }
                let start = mats.map { m in (0..<(tokens * m.rows)).map { Float($0 % 7) } }
                var ys = start
                let ptrs = ys.indices.map { i in UnsafeMutablePointer<Float>.allocate(capacity: ys[i].count) }
                defer { ptrs.forEach { $0.deallocate() } }
                for i in ptrs.indices { ptrs[i].initialize(from: ys[i], count: ys[i].count) }
                x.withUnsafeBufferPointer { xp in
                    MatMul.forward(xp.baseAddress!, Array(zip(mats, ptrs)), tokens: tokens, pool: pool, accumulate: accumulate)
                }
                for (i, m) in mats.enumerated() {
                    var w = [Float](repeating: 0, count: cols)
                    for r in 0..<m.rows {
                        w.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
                        for t in 0..<tokens {
                            var s: Float = 0
                            for c in 0..<cols { s += x[t * cols + c] * w[c] }
                            ys[i][t * m.rows + r] = (accumulate ? start[i][t * m.rows + r] : 0) + s
                        }
                    }
                    let worst = (0..<ys[i].count).map { abs(ptrs[i][$0] - ys[i][$0]) }.max()!
                    #expect(worst < 1e-3, "matrix \(i) (\(m.type)), accumulate \(accumulate): off by \(worst)")
                }
            } } }
        }
    }

    @Test func dispatchRunsEveryChunkOnceAndNamesItsThread() {
        let pool = ThreadPool(threads: 2)
        // One slot per chunk: only a chunk run twice (or concurrently) could disturb its own slot.
        let runs = UnsafeMutablePointer<Int>.allocate(capacity: 100)
        let threadOf = UnsafeMutablePointer<Int>.allocate(capacity: 100)
        defer { runs.deallocate(); threadOf.deallocate() }
        runs.initialize(repeating: 0, count: 100)
        threadOf.initialize(repeating: -1, count: 100)
        pool.dispatch(100) { c, thread in
            runs[c] += 1
            threadOf[c] = thread
        }
        #expect((0..<100).allSatisfy { runs[$0] == 1 })
        #expect((0..<100).allSatisfy { (0..<2).contains(threadOf[$0]) })
    }
}
