import Dispatch

/// Parallel loops over a fixed number of workers. `threads` = 1 runs inline.
public struct ThreadPool: Sendable {
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    /// Runs `body(chunkStart..<chunkEnd)` over `0..<count` split into about `threads` equal chunks.
    @inline(__always)
    public func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(1, minChunk)))
        if chunks == 1 { body(0..<count); return }
        let per = (count + chunks - 1) / chunks
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = c * per, hi = min(count, lo + per)
                if lo < hi { body(lo..<hi) }
            }
        }
    }

    /// The number of cores this process may use.
    public static var availableCores: Int {
        #if os(Linux)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return ProcessInfo.processInfo.activeProcessorCount
        #endif
    }
}

#if os(Linux)
import Glibc
#else
import Foundation
#endif
