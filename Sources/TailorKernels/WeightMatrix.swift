// A weight matrix as the model file stores it: `rows` rows of `cols` elements each, every row a
// run of quantized blocks, read in place from the memory map (never copied).
import CBLAS

public struct WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    /// Output features (ggml's ne[1]).
    public let rows: Int
    /// Input features (ggml's ne[0]); a whole number of blocks.
    public let cols: Int
    public let data: UnsafeRawPointer
    public let rowBytes: Int
    /// Keeps the mapping (or buffer) alive.
    public let owner: AnyObject?

    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer, owner: AnyObject?) {
        precondition(cols % type.blockSize == 0)
        self.type = type
        self.rows = rows
        self.cols = cols
        self.data = data
        self.rowBytes = cols / type.blockSize * type.blockBytes
        self.owner = owner
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Dequantizes row `r` into `out[0..<cols]`.
    @inline(__always)
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        FastDequant.row(type, row(r), out, count: cols)
    }
}

/// Activations × weightsᵀ in fp32, the way transformers computes on dequantized weights.
public enum MatMul {
    /// y[t, o] = Σ_i x[t, i] · W[o, i]  for t in 0..<tokens.
    /// x: [tokens × W.cols], y: [tokens × W.rows].
    public static func forward(_ x: UnsafePointer<Float>, _ w: WeightMatrix, _ y: UnsafeMutablePointer<Float>,
                               tokens: Int, pool: ThreadPool) {
        if tokens <= 2 {
            pool.parallelFor(w.rows, minChunk: 16) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: w.cols)
                defer { scratch.deallocate() }
                for r in range {
                    w.dequantizeRow(r, into: scratch)
                    for t in 0..<tokens {
                        y[t * w.rows + r] = dot(scratch, x + t * w.cols, w.cols)
                    }
                }
            }
            return
        }
        // Prefill: dequantize a panel of rows, then one sgemm per panel.
        let panel = min(w.rows, 512)
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: panel * w.cols)
        defer { buf.deallocate() }
        var r0 = 0
        while r0 < w.rows {
            let n = min(panel, w.rows - r0)
            pool.parallelFor(n, minChunk: 8) { range in
                for r in range { w.dequantizeRow(r0 + r, into: buf + r * w.cols) }
            }
            // y[:, r0..<r0+n] = x · panelᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(n), Int32(w.cols),
                        1, x, Int32(w.cols), buf, Int32(w.cols), 0, y + r0, Int32(w.rows))
            r0 += n
        }
    }

    /// Σ a[i]·b[i] with eight independent accumulators (vectorizes).
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            let va = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let vb = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            acc.addProduct(va, vb)
            i += 16
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
}
