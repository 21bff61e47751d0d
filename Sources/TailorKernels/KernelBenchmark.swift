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

extension KernelBenchmark {
    public struct PackedResult: Codable, Sendable {
        public let type: String
        public let rows: Int, cols: Int, tokens: Int
        public let kernel: String
        /// Int8 multiply-adds per second (10⁹), one thread, median over the repetitions.
        public let gmacs: Double
    }

    /// The packed kernels alone on one thread: `rows × cols` random weights of `type`, `tokens`
    /// activation rows quantized once, products repeated.
    public static func packed(type: GGMLType, rows: Int, cols: Int, tokens: Int, repetitions: Int,
                              kernel: PackedGEMM.Kernel? = nil) -> PackedResult {
        let kernel = kernel ?? PackedGEMM.kernel(tokens: tokens, type: type)
        let w = (0..<rows * cols).map { _ in Float.random(in: -0.1..<0.1) }
        let bytes = w.withUnsafeBufferPointer { Quantizer.quantize($0.baseAddress!, count: rows * cols, to: type) }
        let packed = bytes.withUnsafeBytes { PackedWeights(type: type, rows: rows, cols: cols, source: $0.baseAddress!) }
        let x = (0..<tokens * cols).map { _ in Float.random(in: -2..<2) }
        let acts = QuantizedActivations(n: cols, tokens: tokens)
        let k = PackedWeights.isK(type)
        x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, blocks32: !k, blocks256: k, grouped: false) }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: tokens * rows)
        defer { y.deallocate() }
        let macs = Double(rows) * Double(cols) * Double(tokens)
        let calls = max(1, Int(2e9 / macs))
        var times: [Double] = []
        PackedGEMM.run(kernel, packed, acts, tokens: tokens, groups: 0..<packed.groups, y, ldy: rows, accumulate: false)
        for _ in 0..<repetitions {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<calls { PackedGEMM.run(kernel, packed, acts, tokens: tokens, groups: 0..<packed.groups, y, ldy: rows, accumulate: false) }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(calls))
        }
        let ns = times.sorted()[times.count / 2]
        return PackedResult(type: type.description, rows: rows, cols: cols, tokens: tokens, kernel: kernel.rawValue, gmacs: macs / ns)
    }

    public struct PeakResult: Codable, Sendable {
        public let unit: String
        /// Int8 multiply-adds per second (10⁹) of one thread.
        public let gmacs: Double
    }

    /// The int8 multiply-add peak of one core: independent VNNI dot products (vpdpbusd, 64 per
    /// instruction) and, where present, AMX tile products (the packed kernel's tile shapes).
    public static func peak(repetitions: Int = 5) -> [PeakResult] {
        var out: [PeakResult] = []
        #if TAILOR_AVX512
        var times: [Double] = []
        let n = 2_000_000
        for _ in 0..<repetitions {
            let t0 = DispatchTime.now().uptimeNanoseconds
            VNNIPeak.loop(n)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0))
        }
        out.append(PeakResult(unit: "avx512-vnni (vpdpbusd zmm)", gmacs: Double(n) * 16 * 64 / times.sorted()[times.count / 2]))
        #endif
        #if TAILOR_AMX
        if AMXPacked.available {
            var t: [Double] = []
            let m = 200_000
            tailor_amx_configure()
            for _ in 0..<repetitions {
                let t0 = DispatchTime.now().uptimeNanoseconds
                tailor_amx_peak(m)
                t.append(Double(DispatchTime.now().uptimeNanoseconds - t0))
            }
            tailor_amx_release()
            out.append(PeakResult(unit: "amx-int8 (16×32 · 32×16 tiles)", gmacs: Double(m) * 2 * 8192 / t.sorted()[t.count / 2]))
        }
        #endif
        return out
    }
}

#if TAILOR_AVX512
import _Builtin_intrinsics.intel
enum VNNIPeak {
    /// `n` rounds of 16 independent vpdpbusd.
    @inline(never) static func loop(_ n: Int) {
        let a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5)
        var c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0
        var c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0
        for _ in 0..<n {
            c0 = _mm512_dpbusd_epi32(c0, a, b); c1 = _mm512_dpbusd_epi32(c1, a, b); c2 = _mm512_dpbusd_epi32(c2, a, b); c3 = _mm512_dpbusd_epi32(c3, a, b)
            c4 = _mm512_dpbusd_epi32(c4, a, b); c5 = _mm512_dpbusd_epi32(c5, a, b); c6 = _mm512_dpbusd_epi32(c6, a, b); c7 = _mm512_dpbusd_epi32(c7, a, b)
            c8 = _mm512_dpbusd_epi32(c8, a, b); c9 = _mm512_dpbusd_epi32(c9, a, b); c10 = _mm512_dpbusd_epi32(c10, a, b); c11 = _mm512_dpbusd_epi32(c11, a, b)
            c12 = _mm512_dpbusd_epi32(c12, a, b); c13 = _mm512_dpbusd_epi32(c13, a, b); c14 = _mm512_dpbusd_epi32(c14, a, b); c15 = _mm512_dpbusd_epi32(c15, a, b)
        }
        let s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)), _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)))
        let t = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)), _mm512_add_epi32(_mm512_add_epi32(c12, c13), _mm512_add_epi32(c14, c15)))
        if _mm512_reduce_add_epi32(_mm512_add_epi32(s, t)) == 42 { print("") }
    }
}
#endif
