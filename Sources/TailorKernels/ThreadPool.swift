// A persistent pool of worker threads for the parallel loops of a forward pass. A 135M-parameter
// model runs ~150 parallel operations per token, so dispatch must cost about a microsecond:
// workers spin on an atomic epoch between operations (as llama.cpp's threadpool does), and only
// sleep on a condition variable after a while without work.
//
// One pool per process is the compute scheduler (`ThreadPool.shared`): the decoder, the embedder,
// the reranker and the trainer all run their parallel operations on it, so they never compete with
// spinning threads of their own. Callers on different threads take turns, one parallel operation
// at a time, first come first served: a long job (an embedding batch, a prefill) holds the cores
// for one operation, then the next caller in line (a decoding step) gets them. A caller that needs
// several operations back to back with state between them (quantized activations, then the
// products that read them) holds its turn across them with `withTurn`.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CBLAS

// @unchecked Sendable: the fields a parallel operation sets (`job`, `chunkCount`, the range
// cursors, the activation buffers) are written only by the thread that holds the turn, and read
// by the workers between the epoch's release and `pending`'s acquire; the turn queue is guarded
// by `turnLock`, everything else is atomic.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int

    /// The process's compute scheduler for `threads` threads (default: every core): created on
    /// first use, then shared by every model and job that asks for that many threads.
    public static func shared(threads: Int = availableCores) -> ThreadPool {
        let n = max(1, threads)
        return sharedPools.withLock { pools in
            if let p = pools[n] { return p }
            let p = ThreadPool(threads: n)
            pools[n] = p
            return p
        }
    }
    private static let sharedPools = Mutex<[Int: ThreadPool]>([:])

    // Turns: a ticket queue (first come, first served) of the threads that want the pool.
    private let turnLock = NSCondition()
    private var nextTicket = 0          // guarded by turnLock
    private var serving = 0             // guarded by turnLock
    /// The thread holding the turn (pthread_self as an integer; 0 when free), and how many nested
    /// `withTurn` calls it is in (touched only by that thread).
    private let owner = Atomic<UInt>(0)
    /// Threads waiting for a turn.
    private let waiting = Atomic<Int>(0)

    /// Whether another thread is waiting for the pool now: long jobs then cut their work into
    /// smaller operations, so that it waits less.
    public var isContended: Bool { waiting.load(ordering: .relaxed) > 0 }
    private var turnDepth = 0
    /// Whether the turn's holder is running chunks of an operation (a nested operation then runs
    /// inline on the calling thread).
    private var inOperation = false
    /// The workers' thread ids by index (1…), so that an operation started from inside a chunk
    /// runs inline, with that thread's own index for its scratch.
    private let workerIDs: Mutex<[UInt]>

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
    /// One front/back chunk cursor per thread's range, for `forEachChunk`.
    private let ranges: RangeCursors
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
        ranges = RangeCursors(self.threads)
        workerIDs = Mutex([UInt](repeating: 0, count: self.threads))
        for i in 1..<self.threads {
            let t = Thread { [unowned(unsafe) self] in
                self.workerIDs.withLock { $0[i] = ThreadPool.currentThreadID }
                self.workerLoop(index: i)
            }
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
        ranges.free()
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

    @inline(__always) static var currentThreadID: UInt { UInt(pthread_self()) }

    /// Runs `body` holding the pool: no other thread's operation runs on it until `body` returns
    /// (the caller's own operations inside do). Threads wanting the pool are served in the order
    /// they asked. Nested calls on the holding thread just run `body`.
    public func withTurn<R>(_ body: () throws -> R) rethrows -> R {
        let me = ThreadPool.currentThreadID
        if owner.load(ordering: .acquiring) == me {
            turnDepth += 1
            defer { turnDepth -= 1 }
            return try body()
        }
        turnLock.lock()
        let ticket = nextTicket
        nextTicket += 1
        waiting.add(1, ordering: .relaxed)
        while serving != ticket { turnLock.wait() }
        waiting.subtract(1, ordering: .relaxed)
        turnLock.unlock()
        owner.store(me, ordering: .releasing)
        turnDepth = 1
        defer {
            turnDepth = 0
            owner.store(0, ordering: .releasing)
            turnLock.lock()
            serving += 1
            if nextTicket != serving { turnLock.broadcast() }
            turnLock.unlock()
        }
        return try body()
    }

    /// Whether the calling thread is inside one of this pool's operations (a chunk on a worker,
    /// or the holder running chunks): a nested operation then runs inline.
    private var callerIsInsideOperation: Bool { insideIndex != nil }

    /// The calling thread's index when it is inside one of this pool's operations (0: the
    /// holder, 1…: a worker), else nil.
    private var insideIndex: Int? {
        let me = ThreadPool.currentThreadID
        if owner.load(ordering: .acquiring) == me { return inOperation ? 0 : nil }
        guard threads > 1 else { return nil }
        return workerIDs.withLock { ids in ids.indices.first { $0 > 0 && ids[$0] == me } }
    }

    /// Runs `body(range)` over `0..<count` split into chunks of at least `minChunk`, in parallel,
    /// and returns when all are done. Safe from any thread: callers take turns.
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
        // One thread: index 0 belongs to whoever holds the turn.
        guard threads > 1 else { withTurn { for c in 0..<chunks { body(c, 0) } }; return }
        // Inside an operation (a worker's chunk): inline, with this thread's own index.
        if let me = insideIndex { for c in 0..<chunks { body(c, me) }; return }
        guard chunks > 1 else { withTurn { for c in 0..<chunks { body(c, 0) } }; return }
        withTurn { run(chunks, body) }
    }

    private func run(_ chunks: Int, _ body: (_ chunk: Int, _ thread: Int) -> Void) {
        inOperation = true
        defer { inOperation = false }
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

    /// Runs `body(range, thread)` over `0..<count` for streaming loops (decoding's matrix-vector
    /// products): the items are cut into one contiguous range per thread, each range into chunks
    /// of `chunk` items (range starts are multiples of `chunk`). A thread walks its own range from
    /// the front, so its reads stay one sequential stream the hardware prefetcher follows; once
    /// done it takes chunks from the back of the ranges still unfinished, so a thread the machine
    /// slows down (another program, the hypervisor) no longer holds every other thread up.
    public func forEachChunk(_ count: Int, chunk: Int, _ body: (_ range: Range<Int>, _ thread: Int) -> Void) {
        guard count > 0 else { return }
        let chunk = max(1, chunk)
        let totalChunks = (count + chunk - 1) / chunk
        let parts = min(threads, totalChunks)
        // Inside an operation: inline, with this thread's own index for its scratch.
        if let me = insideIndex {
            for c in 0..<totalChunks { body((c * chunk)..<min(count, (c + 1) * chunk), me) }
            return
        }
        if parts == 1 {
            // Index 0 belongs to whoever holds the turn.
            withTurn { for c in 0..<totalChunks { body((c * chunk)..<min(count, (c + 1) * chunk), 0) } }
            return
        }
        withTurn {
            let perPart = (totalChunks + parts - 1) / parts        // chunks per range
            for p in 0..<parts {
                let first = min(totalChunks, p * perPart), last = min(totalChunks, first + perPart)
                ranges.reset(p, front: first, back: last)
            }
            let cursors = ranges
            run(parts) { own, thread in
                while let c = cursors.takeFront(own) { body((c * chunk)..<min(count, (c + 1) * chunk), thread) }
                for step in 1..<parts {
                    let other = (own + step) % parts
                    while let c = cursors.takeBack(other) { body((c * chunk)..<min(count, (c + 1) * chunk), thread) }
                }
            }
        }
    }

    /// Buffers for decoding's quantized activations, kept between calls: a fresh set per product
    /// cost eight allocations each time. Touched only by the thread holding the turn.
    private var activationBuffers: [QuantizedActivations] = []

    /// Quantized-activation buffers for `tokens` rows of width `n`, reused from earlier calls.
    /// Call it holding the turn (`withTurn`), and use the buffers before giving the turn up: the
    /// next holder may reuse them (the pool keeps the last eight shapes).
    func activations(n: Int, tokens: Int) -> QuantizedActivations {
        precondition(owner.load(ordering: .relaxed) == ThreadPool.currentThreadID, "activations(n:tokens:) outside withTurn")
        if let a = activationBuffers.first(where: { $0.n == n && $0.tokens == tokens }) { return a }
        let a = QuantizedActivations(n: n, tokens: tokens)
        if activationBuffers.count == 8 { activationBuffers.removeFirst() }
        activationBuffers.append(a)
        return a
    }

    /// The number of cores this process may use.
    public static var availableCores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

@inline(__always) func spinPause() { tailor_cpu_relax() }

/// For each thread's range, the unclaimed chunks [front, back): both ends in one atomic word so
/// the owner (taking from the front) and a helper (from the back) never claim the same chunk;
/// each word on its own cache line. Plain memory, so claiming a chunk costs no reference counting.
struct RangeCursors {
    private let words: UnsafeMutablePointer<UInt64>
    private static let spacing = 8          // 64 bytes between words

    init(_ count: Int) {
        words = .allocate(capacity: max(1, count) * Self.spacing)
        words.initialize(repeating: 0, count: max(1, count) * Self.spacing)
    }

    func free() { words.deallocate() }

    @inline(__always) private func word(_ i: Int) -> UnsafeMutablePointer<UInt64> { words + i * Self.spacing }
    @inline(__always) private static func pack(_ front: Int, _ back: Int) -> UInt64 { UInt64(front) | UInt64(back) << 32 }

    func reset(_ i: Int, front: Int, back: Int) { tailor_atomic_store64(word(i), Self.pack(front, back)) }

    /// Claims the first unclaimed chunk of range i (its owner's end), or nil when none is left.
    @inline(__always) func takeFront(_ i: Int) -> Int? { take(i, fromBack: false) }
    /// Claims the last unclaimed chunk of range i (a helper's end), or nil when none is left.
    @inline(__always) func takeBack(_ i: Int) -> Int? { take(i, fromBack: true) }

    @inline(__always) private func take(_ i: Int, fromBack: Bool) -> Int? {
        let p = word(i)
        var w = tailor_atomic_load64(p)
        while true {
            let f = Int(w & 0xFFFF_FFFF), b = Int(w >> 32)
            if f >= b { return nil }
            let claim = fromBack ? b - 1 : f
            if tailor_atomic_cas64(p, &w, fromBack ? Self.pack(f, b - 1) : Self.pack(f + 1, b)) != 0 { return claim }
        }
    }
}
