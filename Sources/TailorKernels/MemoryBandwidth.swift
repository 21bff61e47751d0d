// Measures the machine's memory read bandwidth: the physical limit for decoding, which reads
// every weight once per token.
import Foundation

public enum MemoryBandwidth {
    /// Read bandwidth in bytes/s: the median of `repetitions` passes summing a buffer much larger
    /// than the caches, split across `pool`'s threads.
    public static func measure(bytes: Int = 1 << 30, repetitions: Int = 7, pool: ThreadPool) -> (median: Double, samples: [Double]) {
        let count = bytes / MemoryLayout<Float>.size
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buf.deallocate() }
        pool.parallelFor(count, minChunk: 1 << 16) { r in (buf + r.lowerBound).initialize(repeating: 1, count: r.count) }
        var samples: [Double] = []
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: pool.threads * 16)
        defer { partial.deallocate() }
        for _ in 0..<repetitions {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let chunks = pool.threads
            let per = count / chunks / 64 * 64
            pool.dispatch(chunks) { c in
                var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                var p = UnsafeRawPointer(buf + c * per)
                let end = p + per * 4
                while p < end {
                    a0 += p.load(as: SIMD16<Float>.self)
                    a1 += p.load(fromByteOffset: 64, as: SIMD16<Float>.self)
                    a2 += p.load(fromByteOffset: 128, as: SIMD16<Float>.self)
                    a3 += p.load(fromByteOffset: 192, as: SIMD16<Float>.self)
                    p += 256
                }
                partial[c * 16] = (a0 + a1 + a2 + a3).sum()
            }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(Double(per * chunks * 4) / dt)
        }
        return (samples.sorted()[samples.count / 2], samples)
    }
}
