// Throughput of the decoding kernels on their own: one matrix-vector product per call, from a
// matrix that stays in the caches and from one far larger than them (the decoding case).
import Foundation

public enum KernelBenchmark {
    public struct Result: Codable, Sendable {
        public let type: String
        public let rows: Int
        public let cols: Int
        public let bytes: Int
        public let threads: Int
        /// Medians over the repetitions.
        public let gbPerSecond: Double
        public let nanosecondsPerBlockRow: Double
    }

    /// `rows × cols` random weights quantized to `type`, `copies` distinct copies walked in turn
    /// (one copy: cache-resident; many: every call reads from memory).
    public static func matvec(type: GGMLType, rows: Int, cols: Int, copies: Int, calls: Int, repetitions: Int,
                              pool: ThreadPool) -> Result {
        let x = (0..<cols).map { _ in Float.random(in: -1..<1) }
        let w = (0..<rows * cols).map { _ in Float.random(in: -0.1..<0.1) }
        let bytes = w.withUnsafeBufferPointer { Quantizer.quantize($0.baseAddress!, count: rows * cols, to: type) }
        let buf = UnsafeMutableRawPointer.allocate(byteCount: bytes.count * copies, alignment: 64)
        defer { buf.deallocate() }
        for c in 0..<copies { bytes.withUnsafeBytes { (buf + c * bytes.count).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) } }
        let mats = (0..<copies).map { WeightMatrix(type: type, rows: rows, cols: cols, data: UnsafeRawPointer(buf + $0 * bytes.count), owner: nil) }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer { y.deallocate() }
        var times: [Double] = []
        x.withUnsafeBufferPointer { xp in
            for c in 0..<copies { MatMul.forward(xp.baseAddress!, mats[c], y, tokens: 1, pool: pool, precision: .fast) }
            for _ in 0..<repetitions {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for i in 0..<calls { MatMul.forward(xp.baseAddress!, mats[i % copies], y, tokens: 1, pool: pool, precision: .fast) }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(calls))
            }
        }
        let ns = times.sorted()[times.count / 2]
        let blockRows = Double(rows) * Double(cols / type.blockSize)
        return Result(type: type.description, rows: rows, cols: cols, bytes: bytes.count, threads: pool.threads,
                      gbPerSecond: Double(bytes.count) / ns, nanosecondsPerBlockRow: ns * Double(pool.threads) / blockRows)
    }
}
