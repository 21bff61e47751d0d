import Testing
import Foundation
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

    /// Decoding (8-bit activations, one contiguous row range per thread, pairs of rows, chunks
    /// taken from the back by a thread done early) over several matrices of one input — odd row
    /// counts included, so pairs meet matrix ends — against one row at a time.
    @Test(arguments: [1, 2, 3])
    func decodeRowsEqualSingleRowProducts(threads: Int) {
        var rng = SplitMix64Test(seed: 9)
        let cols = 256
        let shapes = [(GGMLType.q4_1, 301), (.q8_0, 1), (.q4_K, 64), (.q4_0, 37)]
        let rows = shapes.map { Q8DotTests.randomRow($0.0, n: $0.1 * cols, rng: &rng) }
        let pool = ThreadPool(threads: threads)
        for tokens in [1, 3] {
            let x = (0..<(tokens * cols)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 300 }
            let acts = QuantizedActivations(n: cols, tokens: tokens)
            x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, blocks32: true, blocks256: true) }
            for accumulate in [false, true] {
                rows[0].withUnsafeBytes { b0 in rows[1].withUnsafeBytes { b1 in rows[2].withUnsafeBytes { b2 in rows[3].withUnsafeBytes { b3 in
                    let mats = zip(shapes, [b0, b1, b2, b3]).map { WeightMatrix(type: $0.0, rows: $0.1, cols: cols, data: $1.baseAddress!, owner: nil) }
                    let ptrs = mats.map { m in UnsafeMutablePointer<Float>.allocate(capacity: tokens * m.rows) }
                    defer { ptrs.forEach { $0.deallocate() } }
                    for (p, m) in zip(ptrs, mats) { for i in 0..<(tokens * m.rows) { p[i] = Float(i % 5) } }
                    x.withUnsafeBufferPointer { xp in
                        MatMul.forward(xp.baseAddress!, Array(zip(mats, ptrs)), tokens: tokens, pool: pool, precision: .fast, accumulate: accumulate)
                    }
                    for (i, m) in mats.enumerated() {
                        var worst: Float = 0
                        for r in 0..<m.rows {
                            for t in 0..<tokens {
                                let want = (accumulate ? Float((t * m.rows + r) % 5) : 0) + Q8Dot.reference(m.type, m.row(r), acts, token: t)
                                worst = max(worst, abs(ptrs[i][t * m.rows + r] - want))
                            }
                        }
                        #expect(worst < 2e-3, "matrix \(i) (\(m.type)), \(tokens) tokens, accumulate \(accumulate): off by \(worst)")
                    }
                } } } }
            }
        }
    }

    @Test(arguments: [(1, 1000, 64), (2, 1000, 64), (2, 7, 2), (3, 130, 8), (4, 5, 8)])
    func forEachChunkRunsEveryItemOnce(threads: Int, count: Int, chunk: Int) {
        let pool = ThreadPool(threads: threads)
        let runs = UnsafeMutablePointer<Int>.allocate(capacity: count)
        defer { runs.deallocate() }
        runs.initialize(repeating: 0, count: count)
        for _ in 0..<3 {   // the cursors are reset between calls
            pool.forEachChunk(count, chunk: chunk) { range, thread in
                #expect(range.lowerBound % chunk == 0 && range.count <= chunk && range.count > 0)
                #expect((0..<threads).contains(thread))
                for i in range { runs[i] += 1 }
            }
        }
        #expect((0..<count).allSatisfy { runs[$0] == 3 })
    }

    /// A thread held up (here: thread 0 sleeps in every chunk it runs) leaves its range's tail to
    /// the others instead of everyone waiting for it.
    @Test func forEachChunkLetsAFreeThreadTakeASlowThreadsChunks() {
        let pool = ThreadPool(threads: 2)
        let count = 64, chunk = 2
        let byThread = UnsafeMutablePointer<Int>.allocate(capacity: count)
        defer { byThread.deallocate() }
        byThread.initialize(repeating: -1, count: count)
        pool.forEachChunk(count, chunk: chunk) { range, thread in
            if thread == 0 { usleep(5_000) }
            for i in range { byThread[i] = thread }
        }
        #expect((0..<count).allSatisfy { byThread[$0] >= 0 })
        let byWorker = (0..<count).filter { byThread[$0] == 1 }.count
        #expect(byWorker > count / 2, "the free thread ran \(byWorker) of \(count) items")
    }
}
