// A persistent pool of worker threads for the parallel loops of a forward pass. A 135M-parameter
// model runs ~150 parallel operations per token, so dispatch must cost about a microsecond:
// workers spin on an atomic epoch between operations (as llama.cpp's threadpool does), and only
// sleep on a condition variable after a while without work.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CBLAS

public final class ThreadPool: @unchecked Sendable {
    public let threads: Int

    private let epoch = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let running = Atomic<Int>(0)
    private let lock = NSCondition()
    private var job: ((Int, Int) -> Void)?
    private var chunkCount = 0
    private var workers: [Thread] = []
    /// Pause iterations a waiting thread spins before it yields its core, and yields before a
    /// worker sleeps. Spinning is what makes dispatch cheap; yielding soon keeps several pools
    /// (or other programs) on a busy machine from starving each other.
    private let spinLimit = 4_000
    private let yieldLimit = 2_000

    public init(threads: Int) {
        self.threads = max(1, threads)
        // Our threads parallelize GEMMs themselves; OpenBLAS's own threads would fight them.
        openblas_set_num_threads(1)
        running.store(self.threads - 1, ordering: .relaxed)
        for i in 1..<self.threads {
            let t = Thread { [unowned(unsafe) self] in self.workerLoop(index: i) }
            t.name = "tailor-worker-\(i)"
            t.stackSize = 1 << 20
            workers.append(t)
            t.start()
        }
    }

    deinit {
        stopping.store(true, ordering: .sequentiallyConsistent)
        epoch.add(1, ordering: .sequentiallyConsistent)
        lock.lock(); lock.broadcast(); lock.unlock()
        // Workers read this object's fields: wait until every one has left its loop.
        while running.load(ordering: .acquiring) > 0 { spinPause() }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while epoch.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < spinLimit { spinPause(); continue }
                if spins < spinLimit + yieldLimit { sched_yield(); continue }
                lock.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while epoch.load(ordering: .sequentiallyConsistent) == seen { lock.wait() }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                lock.unlock()
            }
            seen = epoch.load(ordering: .acquiring)
            if stopping.load(ordering: .acquiring) { running.subtract(1, ordering: .releasing); return }
            runChunks(thread: index)
            pending.subtract(1, ordering: .releasing)
        }
    }

    private func runChunks(thread: Int) {
        guard let job else { return }
        while true {
            let c = nextChunk.add(1, ordering: .relaxed).oldValue
            if c >= chunkCount { break }
            job(c, thread)
        }
    }

    /// Runs `body(range)` over `0..<count` split into chunks of at least `minChunk`, in parallel,
    /// and returns when all are done. Not reentrant: call it from one thread at a time.
    public func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(1, minChunk)))
        if chunks == 1 || threads == 1 { body(0..<count); return }
        let per = (count + chunks - 1) / chunks
        withoutActuallyEscaping(body) { body in
            dispatch(chunks) { c in
                let lo = c * per, hi = min(count, lo + per)
                if lo < hi { body(lo..<hi) }
            }
        }
    }

    /// Runs `body(chunk)` for chunk in 0..<chunks across the workers and the caller.
    public func dispatch(_ chunks: Int, _ body: (Int) -> Void) {
        dispatch(chunks) { c, _ in body(c) }
    }

    /// Runs `body(chunk, thread)` for chunk in 0..<chunks: whichever thread is free takes the next
    /// chunk; `thread` (0 for the caller, 1… for the workers) names per-thread scratch.
    public func dispatch(_ chunks: Int, _ body: (_ chunk: Int, _ thread: Int) -> Void) {
        guard chunks > 1, threads > 1 else { for c in 0..<chunks { body(c, 0) }; return }
        withoutActuallyEscaping(body) { body in
            job = body
            chunkCount = chunks
            nextChunk.store(0, ordering: .relaxed)
            pending.store(workers.count, ordering: .relaxed)
            epoch.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                lock.lock(); lock.broadcast(); lock.unlock()
            }
            runChunks(thread: 0)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins < spinLimit { spinPause() } else { sched_yield() }
            }
            job = nil
        }
    }

    /// The number of cores this process may use.
    public static var availableCores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

@inline(__always) func spinPause() { tailor_cpu_relax() }
