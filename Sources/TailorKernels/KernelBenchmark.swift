// Throughput of the decoding kernels on their own: one matrix-vector product per call, from a
// matrix that stays in the caches and from one far larger than them (the decoding case).
import Foundation
import CBLAS

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

extension KernelBenchmark {
    public struct GEMMResult: Codable, Sendable {
        public let precision: String
        public let m: Int, n: Int, k: Int
        /// Median over the repetitions, one thread.
        public let gflops: Double
    }

    /// Y[m × n] += X[m × k]·Wᵀ on the calling thread, as the encoder's linear layers do it:
    /// fp32 through OpenBLAS sgemm, or fp16 through `HalfGEMM` with weights packed beforehand.
    public static func gemm(m: Int, n: Int, k: Int, half: Bool, repetitions: Int) -> GEMMResult {
        let x = (0..<m * k).map { _ in Float.random(in: -2..<2) }
        let w = (0..<n * k).map { _ in Float.random(in: -0.1..<0.1) }
        var y = [Float](repeating: 0, count: m * n)
        let packed = half ? w.withUnsafeBufferPointer { HalfWeights($0.baseAddress!, outputs: n, inputs: k) } : nil
        openblas_set_num_threads(1)
        let calls = max(1, Int(2e9 / (2 * Double(m) * Double(n) * Double(k))))
        var times: [Double] = []
        x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in y.withUnsafeMutableBufferPointer { yb in
            let X = xb.baseAddress!, W = wb.baseAddress!, Y = yb.baseAddress!
            func sgemm(_ r: Range<Int>) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(n), Int32(k), 1,
                            X + r.lowerBound * k, Int32(k), W, Int32(k), 1, Y + r.lowerBound * n, Int32(n))
            }
            func once() {
                if let packed { HalfGEMM.multiplyAdd(X, rows: m, packed, into: Y) { sgemm($0) } } else { sgemm(0..<m) }
            }
            once()
            for _ in 0..<repetitions {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<calls { once() }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(calls))
            }
        } } }
        let ns = times.sorted()[times.count / 2]
        return GEMMResult(precision: half ? "fp16" : "fp32", m: m, n: n, k: k, gflops: 2 * Double(m) * Double(n) * Double(k) / ns)
    }
}
