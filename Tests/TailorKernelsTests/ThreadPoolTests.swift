// The shared compute scheduler: several threads using one pool at once each get their own
// results; operations started inside an operation run inline instead of deadlocking.
import Foundation
import Synchronization
import Testing
@testable import TailorKernels

@Suite struct ThreadPoolTests {
    @Test func concurrentCallersGetTheirOwnResults() throws {
        let pool = ThreadPool(threads: 2)
        let callers = 6, rounds = 200, n = 10_000
        let wrong = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            let out = UnsafeMutablePointer<Int>.allocate(capacity: n)
            defer { out.deallocate() }
            for r in 0..<rounds {
                let k = c * 1000 + r
                pool.parallelFor(n, minChunk: 64) { range in for i in range { out[i] = i &* k } }
                for i in stride(from: 0, to: n, by: 97) where out[i] != i &* k { wrong.add(1, ordering: .relaxed) }
                var hits = [Int](repeating: 0, count: 37)
                hits.withUnsafeMutableBufferPointer { h in
                    let base = h.baseAddress!
                    pool.forEachChunk(37, chunk: 3) { range, _ in for i in range { base[i] += 1 } }
                }
                if hits.contains(where: { $0 != 1 }) { wrong.add(1, ordering: .relaxed) }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
    }

    @Test func nestedOperationsRunInline() {
        let pool = ThreadPool(threads: 2)
        let total = Atomic<Int>(0)
        pool.dispatch(4) { _ in
            pool.parallelFor(100, minChunk: 10) { r in total.add(r.count, ordering: .relaxed) }
        }
        #expect(total.load(ordering: .relaxed) == 400)
        // withTurn holds the pool across operations; its own operations still run.
        let inside = Atomic<Int>(0)
        pool.withTurn {
            pool.parallelFor(50, minChunk: 1) { r in inside.add(r.count, ordering: .relaxed) }
            pool.withTurn { pool.parallelFor(50, minChunk: 1) { r in inside.add(r.count, ordering: .relaxed) } }
        }
        #expect(inside.load(ordering: .relaxed) == 100)
    }

    @Test func sharedPoolIsOnePerSize() {
        #expect(ThreadPool.shared(threads: 2) === ThreadPool.shared(threads: 2))
        #expect(ThreadPool.shared(threads: 1).threads == 1)
    }
}
