// Training passes of a Llama-family decoder with LoRA on its projections (QLoRA-style: the base
// weights stay quantized in the memory map; each layer's matrices are dequantized into one
// scratch layer for its products, forward and backward, and never stored for the whole model).
//
// A batch is packed: its sequences are concatenated into N rows, so the projections run as one
// GEMM over all tokens with no padding, while attention and positions stay per sequence (a
// block-diagonal causal mask). Attention saves only its outputs and log-sum-exps and recomputes
// probabilities in the backward pass, so memory grows with N, not with N·T.
//
// Shapes: N rows, C width, Q = H·D query width, KV = Hkv·D, F feed-forward width, V vocabulary.
import CBLAS
import Foundation
import TailorKernels
import TailorModels

/// Sequences packed into rows, with next-token targets (−1 where the loss is masked).
public struct PackedBatch: Sendable {
    public private(set) var ids: [Int] = []
    public private(set) var targets: [Int] = []
    public private(set) var positions: [Int] = []
    /// Start row of each sequence, then the row count.
    public private(set) var starts: [Int] = [0]
    public var rows: Int { ids.count }
    public var trainedCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }

    /// Packs examples, each cut to its first `maxLength` tokens.
    public init(_ examples: [TokenizedExample], maxLength: Int) {
        for e in examples {
            let n = min(e.ids.count, maxLength)
            guard n > 0 else { continue }
            for i in 0..<n {
                ids.append(e.ids[i])
                positions.append(i)
                targets.append(i + 1 < n && e.trained[i + 1] ? e.ids[i + 1] : -1)
            }
            starts.append(ids.count)
        }
    }

    public var sequenceCount: Int { starts.count - 1 }
}

public enum TuningError: Error, CustomStringConvertible {
    case unsupportedModel(String)
    case badOption(String)
    case badCheckpoint(path: String, reason: String)
    case badAdapter(path: String, reason: String)
    case badData(String)

    public var description: String {
        switch self {
        case .unsupportedModel(let m): return m
        case .badOption(let m): return m
        case .badData(let m): return m
        case let .badCheckpoint(path, reason): return "\(path): \(reason)"
        case let .badAdapter(path, reason): return "\(path): \(reason)"
        }
    }
}

// @unchecked Sendable: a training model belongs to one training job, which runs its steps on one
// thread at a time (the parallel loops inside a step write disjoint slices); it is handed to that
// job, never used by two.
public final class LoRAModel: @unchecked Sendable {
    public let base: LlamaModel
    public let adapter: LoRAAdapter
    /// Gradients of the summed loss, in the adapter's parameter layout.
    public var gradients: [Float]
    /// Probability of dropping an input feature of each LoRA branch while training.
    public var dropout: Float
    public let pool: ThreadPool
    let cfg: LlamaConfig
    let head: UnsafeMutablePointer<Float>           // [V × C], the output matrix in fp32
    let layerWeights: [LoRATarget: UnsafeMutablePointer<Float>]
    private var saved: [SavedLayer] = []
    private var capacity = 0
    private var scratch = Scratch()
    private var attentionBuffers: [UnsafeMutablePointer<Float>] = []
    private var attentionScratchSize = 0
    private var headBuffers: (xn: UnsafeMutablePointer<Float>, dxn: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                              logits: UnsafeMutablePointer<Float>, losses: UnsafeMutablePointer<Double>)?

    public init(base: LlamaModel, adapter: LoRAAdapter, dropout: Float = 0, threads: Int = ThreadPool.availableCores) throws {
        guard base.config.architecture != "gemma3" else { throw TuningError.unsupportedModel("LoRA training supports Llama-family models (llama, qwen2, mistral)") }
        guard adapter.layers == base.config.layers else {
            throw TuningError.unsupportedModel("the adapter has \(adapter.layers) layers, the model \(base.config.layers)")
        }
        for t in adapter.targets {
            let s = LoRAAdapter.shapes(base.config)[t]!
            guard adapter.shapes[t]! == s else { throw TuningError.unsupportedModel("the adapter's \(t.rawValue) is \(adapter.shapes[t]!), the model's \(s)") }
        }
        self.base = base
        self.adapter = adapter
        self.dropout = dropout
        cfg = base.config
        pool = base.pool.threads == threads ? base.pool : ThreadPool.shared(threads: threads)
        gradients = [Float](repeating: 0, count: adapter.parameterCount)
        let C = cfg.embedding, V = cfg.vocabulary
        head = .allocate(capacity: V * C)
        let out = base.output, h = head
        pool.parallelFor(V, minChunk: 256) { r in for i in r { out.dequantizeRow(i, into: h + i * C) } }
        var lw: [LoRATarget: UnsafeMutablePointer<Float>] = [:]
        for (t, s) in LoRAAdapter.shapes(cfg) { lw[t] = .allocate(capacity: s.inputs * s.outputs) }
        layerWeights = lw
    }

    deinit {
        head.deallocate()
        layerWeights.values.forEach { $0.deallocate() }
        saved.forEach { $0.free() }
        scratch.free()
        attentionBuffers.forEach { $0.deallocate() }
        if let h = headBuffers { h.xn.deallocate(); h.dxn.deallocate(); h.rstd.deallocate(); h.logits.deallocate(); h.losses.deallocate() }
    }

    /// Bytes of fp32 buffers this model holds (activations for the largest batch so far, the
    /// fp32 output matrix, one dequantized layer, gradients).
    public var workingBytes: Int {
        let s = LoRAAdapter.shapes(cfg)
        return 4 * (cfg.vocabulary * cfg.embedding + s.values.reduce(0) { $0 + $1.inputs * $1.outputs } + gradients.count)
            + saved.reduce(0) { $0 + $1.bytes } + scratch.bytes + 4 * attentionScratchSize * attentionBuffers.count
            + (headBuffers == nil ? 0 : 4 * 128 * (2 * cfg.embedding + cfg.vocabulary + 3))
    }

    public func zeroGradients() { for i in gradients.indices { gradients[i] = 0 } }

    /// Runs the batch; with `backward`, adds the gradients of the summed loss to `gradients`.
    /// Returns the summed loss and the number of trained tokens. `dropoutSeed` picks the dropout
    /// masks (the same seed gives the same masks).
    @discardableResult
    public func run(_ batch: PackedBatch, backward: Bool, dropoutSeed: UInt64 = 0) -> (loss: Double, count: Int) {
        let N = batch.rows
        guard N > 0 else { return (0, 0) }
        let L = cfg.layers, C = cfg.embedding
        let p = dropout > 0 && backward ? dropout : 0
        prepare(rows: N, layers: backward ? L : 1)
        let x = scratch.x!
        for (r, id) in batch.ids.enumerated() { base.tokenEmbedding.dequantizeRow(id, into: x + r * C) }
        let rope = RopeTable(invFreq: base.invFreq, positions: batch.positions)
        for l in 0..<L {
            forwardLayer(l, batch, rope, saved[backward ? l : 0], dropout: p, seed: dropoutSeed)
        }
        let dx = scratch.dx!
        if backward { dx.update(repeating: 0, count: N * C) }
        let result = headLoss(batch, x: x, dx: backward ? dx : nil)
        if backward {
            for l in stride(from: L - 1, through: 0, by: -1) {
                backwardLayer(l, batch, rope, saved[l], dx: dx, dropout: p, seed: dropoutSeed)
            }
        }
        return result
    }

    // MARK: - buffers

    /// What one layer's backward pass needs from its forward pass.
    final class SavedLayer {
        let xIn, rstd1, q, k, v, att, lse, xMid, rstd2, g, u: UnsafeMutablePointer<Float>
        var loraU: [LoRATarget: UnsafeMutablePointer<Float>] = [:]
        let bytes: Int
        private let block: UnsafeMutablePointer<Float>

        init(rows n: Int, cfg: LlamaConfig, rank: Int, targets: [LoRATarget]) {
            let C = cfg.embedding, Q = cfg.qDim, KV = cfg.kvDim, F = cfg.feedForward, H = cfg.heads
            let sizes = [n * C, n, n * Q, n * KV, n * KV, n * Q, H * n, n * C, n, n * F, n * F] + targets.map { _ in n * rank }
            let total = sizes.reduce(0, +)
            block = .allocate(capacity: total)
            bytes = total * 4
            var ptrs: [UnsafeMutablePointer<Float>] = []
            var o = 0
            for s in sizes { ptrs.append(block + o); o += s }
            (xIn, rstd1, q, k, v, att, lse, xMid, rstd2, g, u) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6], ptrs[7], ptrs[8], ptrs[9], ptrs[10])
            for (i, t) in targets.enumerated() { loraU[t] = ptrs[11 + i] }
        }
        func free() { block.deallocate() }
    }

    /// Temporaries shared by all layers.
    struct Scratch {
        var x, xn, proj, h, dx, dxn, dh, dg, du, datt, dq, dk, dv, drop, tmp, loraGrad: UnsafeMutablePointer<Float>?
        var bytes = 0
        mutating func allocate(rows n: Int, cfg: LlamaConfig, rank: Int) {
            free()
            let C = cfg.embedding, Q = cfg.qDim, KV = cfg.kvDim, F = cfg.feedForward, W = max(C, F, Q)
            func a(_ k: Int) -> UnsafeMutablePointer<Float> { bytes += 4 * k; return .allocate(capacity: k) }
            x = a(n * C); xn = a(n * C); proj = a(n * C); h = a(n * F); dx = a(n * C); dxn = a(n * C)
            dh = a(n * F); dg = a(n * F); du = a(n * F); datt = a(n * Q); dq = a(n * Q); dk = a(n * KV); dv = a(n * KV)
            drop = a(n * W); tmp = a(n * W); loraGrad = a(n * rank)
        }
        mutating func free() {
            for p in [x, xn, proj, h, dx, dxn, dh, dg, du, datt, dq, dk, dv, drop, tmp, loraGrad] { p?.deallocate() }
            x = nil; bytes = 0
        }
    }

    private func prepare(rows n: Int, layers: Int) {
        if n > capacity {
            saved.forEach { $0.free() }
            saved = []
            capacity = n
            scratch.allocate(rows: n, cfg: cfg, rank: adapter.rank)
        }
        while saved.count < layers { saved.append(SavedLayer(rows: capacity, cfg: cfg, rank: adapter.rank, targets: adapter.targets)) }
    }

    private func dequantizeLayer(_ l: Int) {
        let b = base.blocks[l]
        let mats: [(LoRATarget, WeightMatrix)] = [(.q, b.wq), (.k, b.wk), (.v, b.wv), (.o, b.wo), (.gate, b.gate), (.up, b.up), (.down, b.down)]
        let jobs = mats.flatMap { (t, w) in stride(from: 0, to: w.rows, by: 64).map { (t, w, $0) } }
        let lw = layerWeights
        pool.parallelFor(jobs.count) { range in
            for j in range {
                let (t, w, r0) = jobs[j]
                let dst = lw[t]!
                for r in r0..<min(w.rows, r0 + 64) { w.dequantizeRow(r, into: dst + r * w.cols) }
            }
        }
    }

    // MARK: - one layer

    private func forwardLayer(_ l: Int, _ batch: PackedBatch, _ rope: RopeTable, _ s: SavedLayer, dropout p: Float, seed: UInt64) {
        let N = batch.rows, C = cfg.embedding, Q = cfg.qDim, KV = cfg.kvDim, F = cfg.feedForward
        let blk = base.blocks[l]
        let x = scratch.x!, xn = scratch.xn!, proj = scratch.proj!, h = scratch.h!
        dequantizeLayer(l)
        s.xIn.update(from: x, count: N * C)
        rmsnorm(x, blk.attnNorm, xn, rstd: s.rstd1, rows: N)
        project(l, .q, xn, s.q, N, s, p, seed)
        project(l, .k, xn, s.k, N, s, p, seed)
        project(l, .v, xn, s.v, N, s, p, seed)
        if let bq = blk.bq { addBias(s.q, bq, rows: N) }
        if let bk = blk.bk { addBias(s.k, bk, rows: N) }
        if let bv = blk.bv { addBias(s.v, bv, rows: N) }
        rope.apply(s.q, rows: N, heads: cfg.heads, headDim: cfg.headDim, neox: cfg.ropeNeoX, inverse: false, pool: pool)
        rope.apply(s.k, rows: N, heads: cfg.kvHeads, headDim: cfg.headDim, neox: cfg.ropeNeoX, inverse: false, pool: pool)
        attentionForward(batch, s)
        project(l, .o, s.att, proj, N, s, p, seed)
        add(x, proj, N * C)
        s.xMid.update(from: x, count: N * C)
        rmsnorm(x, blk.ffnNorm, xn, rstd: s.rstd2, rows: N)
        project(l, .gate, xn, s.g, N, s, p, seed)
        project(l, .up, xn, s.u, N, s, p, seed)
        let g = s.g, u = s.u
        pool.parallelFor(N * F, minChunk: 4096) { r in
            VectorMath.sigmoid(g + r.lowerBound, h + r.lowerBound, r.count)
            for i in r { h[i] *= g[i] * u[i] }
        }
        project(l, .down, h, proj, N, s, p, seed)
        add(x, proj, N * C)
        _ = (Q, KV)
    }

    private func backwardLayer(_ l: Int, _ batch: PackedBatch, _ rope: RopeTable, _ s: SavedLayer, dx: UnsafeMutablePointer<Float>,
                               dropout p: Float, seed: UInt64) {
        let N = batch.rows, C = cfg.embedding, Q = cfg.qDim, KV = cfg.kvDim, F = cfg.feedForward
        let blk = base.blocks[l]
        let xn = scratch.xn!, h = scratch.h!, dxn = scratch.dxn!, dh = scratch.dh!, dg = scratch.dg!, du = scratch.du!
        let datt = scratch.datt!, dq = scratch.dq!, dk = scratch.dk!, dv = scratch.dv!
        dequantizeLayer(l)
        // MLP: recompute its input and hidden state.
        normalize(s.xMid, s.rstd2, blk.ffnNorm, xn, rows: N)
        let g = s.g, u = s.u
        // dg holds σ(g) until the gradients overwrite it.
        pool.parallelFor(N * F, minChunk: 4096) { r in
            VectorMath.sigmoid(g + r.lowerBound, dg + r.lowerBound, r.count)
            for i in r { h[i] = g[i] * dg[i] * u[i] }
        }
        dh.update(repeating: 0, count: N * F)
        projectBackward(l, .down, h, dy: dx, dx: dh, N, s, p, seed)
        pool.parallelFor(N * F, minChunk: 4096) { r in
            for i in r {
                let a = g[i], sig = dg[i]
                du[i] = dh[i] * a * sig
                dg[i] = dh[i] * u[i] * sig * (1 + a * (1 - sig))
            }
        }
        dxn.update(repeating: 0, count: N * C)
        projectBackward(l, .gate, xn, dy: dg, dx: dxn, N, s, p, seed)
        projectBackward(l, .up, xn, dy: du, dx: dxn, N, s, p, seed)
        rmsnormBackward(dx: dx, dy: dxn, x: s.xMid, weight: blk.ffnNorm, rstd: s.rstd2, rows: N)
        // Attention.
        datt.update(repeating: 0, count: N * Q)
        projectBackward(l, .o, s.att, dy: dx, dx: datt, N, s, p, seed)
        dq.update(repeating: 0, count: N * Q)
        dk.update(repeating: 0, count: N * KV)
        dv.update(repeating: 0, count: N * KV)
        attentionBackward(batch, s, dout: datt, dq: dq, dk: dk, dv: dv)
        rope.apply(dq, rows: N, heads: cfg.heads, headDim: cfg.headDim, neox: cfg.ropeNeoX, inverse: true, pool: pool)
        rope.apply(dk, rows: N, heads: cfg.kvHeads, headDim: cfg.headDim, neox: cfg.ropeNeoX, inverse: true, pool: pool)
        normalize(s.xIn, s.rstd1, blk.attnNorm, xn, rows: N)
        dxn.update(repeating: 0, count: N * C)
        projectBackward(l, .q, xn, dy: dq, dx: dxn, N, s, p, seed)
        projectBackward(l, .k, xn, dy: dk, dx: dxn, N, s, p, seed)
        projectBackward(l, .v, xn, dy: dv, dx: dxn, N, s, p, seed)
        rmsnormBackward(dx: dx, dy: dxn, x: s.xIn, weight: blk.attnNorm, rstd: s.rstd1, rows: N)
    }

    // MARK: - projections with LoRA

    /// y = x·Wᵀ + scale·(drop(x)·Aᵀ)·Bᵀ, saving drop(x)·Aᵀ.
    private func project(_ l: Int, _ t: LoRATarget, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
                         _ s: SavedLayer, _ p: Float, _ seed: UInt64) {
        let sh = LoRAAdapter.shapes(cfg)[t]!, I = sh.inputs, O = sh.outputs
        GEMM.run(pool, transA: false, transB: true, m: n, n: O, k: I, alpha: 1, x, lda: I, layerWeights[t]!, ldb: I, beta: 0, y, ldc: O)
        guard adapter.has(t) else { return }
        let r = adapter.rank, u = s.loraU[t]!
        let input = p > 0 ? dropped(x, count: n * I, layer: l, target: t, p: p, seed: seed) : x
        adapter.parameters.withUnsafeBufferPointer { par in
            let a = par.baseAddress! + adapter.offsetA(layer: l, target: t), b = par.baseAddress! + adapter.offsetB(layer: l, target: t)
            GEMM.run(pool, transA: false, transB: true, m: n, n: r, k: I, alpha: 1, input, lda: I, a, ldb: I, beta: 0, u, ldc: r)
            GEMM.run(pool, transA: false, transB: true, m: n, n: O, k: r, alpha: adapter.scale, u, lda: r, b, ldb: r, beta: 1, y, ldc: O)
        }
    }

    /// dx += dy·W + (LoRA branch); dA, dB += their gradients.
    private func projectBackward(_ l: Int, _ t: LoRATarget, _ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                 _ n: Int, _ s: SavedLayer, _ p: Float, _ seed: UInt64) {
        let sh = LoRAAdapter.shapes(cfg)[t]!, I = sh.inputs, O = sh.outputs
        GEMM.run(pool, transA: false, transB: false, m: n, n: I, k: O, alpha: 1, dy, lda: O, layerWeights[t]!, ldb: I, beta: 1, dx, ldc: I)
        guard adapter.has(t) else { return }
        let r = adapter.rank, u = s.loraU[t]!, scale = adapter.scale, du = scratch.loraGrad!
        let input = p > 0 ? dropped(x, count: n * I, layer: l, target: t, p: p, seed: seed) : x
        let oa = adapter.offsetA(layer: l, target: t), ob = adapter.offsetB(layer: l, target: t)
        adapter.parameters.withUnsafeBufferPointer { par in
            gradients.withUnsafeMutableBufferPointer { gr in
                let a = par.baseAddress! + oa, b = par.baseAddress! + ob
                let da = gr.baseAddress! + oa, db = gr.baseAddress! + ob
                GEMM.run(pool, transA: true, transB: false, m: O, n: r, k: n, alpha: scale, dy, lda: O, u, ldb: r, beta: 1, db, ldc: r)
                GEMM.run(pool, transA: false, transB: false, m: n, n: r, k: O, alpha: scale, dy, lda: O, b, ldb: r, beta: 0, du, ldc: r)
                GEMM.run(pool, transA: true, transB: false, m: r, n: I, k: n, alpha: 1, du, lda: r, input, ldb: I, beta: 1, da, ldc: I)
                if p > 0 {
                    let tmp = scratch.tmp!
                    GEMM.run(pool, transA: false, transB: false, m: n, n: I, k: r, alpha: 1, du, lda: r, a, ldb: I, beta: 0, tmp, ldc: I)
                    let key = dropoutKey(seed, l, t), keep = 1 - p, inv = 1 / keep
                    pool.parallelFor(n * I, minChunk: 8192) { range in
                        for i in range where LoRAModel.kept(key, i, keep) { dx[i] += tmp[i] * inv }
                    }
                } else {
                    GEMM.run(pool, transA: false, transB: false, m: n, n: I, k: r, alpha: 1, du, lda: r, a, ldb: I, beta: 1, dx, ldc: I)
                }
            }
        }
    }

    private func dropoutKey(_ seed: UInt64, _ l: Int, _ t: LoRATarget) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (UInt64(l * 8 + LoRATarget.allCases.firstIndex(of: t)!) &* 0xD1B5_4A32_D192_ED03))
        return g.next()
    }

    @inline(__always) static func kept(_ key: UInt64, _ i: Int, _ keep: Float) -> Bool {
        var z = key &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) * (1 / 16_777_216) < keep
    }

    /// The input with dropout applied (inverted scaling), in scratch.drop.
    private func dropped(_ x: UnsafePointer<Float>, count: Int, layer: Int, target: LoRATarget, p: Float, seed: UInt64) -> UnsafePointer<Float> {
        let out = scratch.drop!, key = dropoutKey(seed, layer, target), keep = 1 - p, inv = 1 / keep
        pool.parallelFor(count, minChunk: 8192) { range in
            for i in range { out[i] = LoRAModel.kept(key, i, keep) ? x[i] * inv : 0 }
        }
        return UnsafePointer(out)
    }

    // MARK: - norms and element-wise

    private func rmsnorm(_ x: UnsafePointer<Float>, _ w: [Float], _ y: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, rows: Int) {
        let C = cfg.embedding, eps = cfg.normEps
        w.withUnsafeBufferPointer { w in
            let w = w.baseAddress!
            pool.parallelFor(rows, minChunk: 16) { range in
                for r in range {
                    let xr = x + r * C, yr = y + r * C
                    let s = 1 / (MatMul.dot(xr, xr, C) / Float(C) + eps).squareRoot()
                    rstd[r] = s
                    for j in 0..<C { yr[j] = w[j] * (xr[j] * s) }
                }
            }
        }
    }

    /// y = x·rstd·w from a saved rstd.
    private func normalize(_ x: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>, _ w: [Float], _ y: UnsafeMutablePointer<Float>, rows: Int) {
        let C = cfg.embedding
        w.withUnsafeBufferPointer { w in
            let w = w.baseAddress!
            pool.parallelFor(rows, minChunk: 16) { range in
                for r in range { let s = rstd[r]; for j in 0..<C { y[r * C + j] = w[j] * (x[r * C + j] * s) } }
            }
        }
    }

    /// dx += s·(dy⊙w − x̂·mean(dy⊙w⊙x̂)), x̂ = x·s.
    private func rmsnormBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: [Float],
                                 rstd: UnsafePointer<Float>, rows: Int) {
        let C = cfg.embedding
        weight.withUnsafeBufferPointer { w in
            let w = w.baseAddress!
            pool.parallelFor(rows, minChunk: 16) { range in
                for r in range {
                    let xr = x + r * C, g = dy + r * C, d = dx + r * C, s = rstd[r]
                    var dot: Float = 0
                    for j in 0..<C { dot += g[j] * w[j] * xr[j] }
                    let m = dot * s / Float(C)
                    for j in 0..<C { d[j] += s * (g[j] * w[j] - xr[j] * s * m) }
                }
            }
        }
    }

    private func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
        pool.parallelFor(n, minChunk: 8192) { r in for i in r { x[i] += y[i] } }
    }

    private func addBias(_ x: UnsafeMutablePointer<Float>, _ b: [Float], rows: Int) {
        for r in 0..<rows { for i in 0..<b.count { x[r * b.count + i] += b[i] } }
    }

    // MARK: - attention, per sequence and head

    /// Runs `body(job, part)` for every job, each thread (`part`) taking every threads-th job, so
    /// that per-thread scratch memory can be reused.
    private func forEachJob(_ jobs: Int, _ body: (Int, Int) -> Void) {
        let parts = min(pool.threads, jobs)
        pool.dispatch(parts) { part in
            var j = part
            while j < jobs { body(j, part); j += parts }
        }
    }

    /// One buffer of 2·T² floats per thread for the longest sequence of the batch, kept between calls.
    private func attentionScratch(_ batch: PackedBatch) -> [UnsafeMutablePointer<Float>] {
        let longest = (0..<batch.sequenceCount).map { batch.starts[$0 + 1] - batch.starts[$0] }.max() ?? 1
        if longest * longest * 2 > attentionScratchSize || attentionBuffers.count < pool.threads {
            attentionBuffers.forEach { $0.deallocate() }
            attentionScratchSize = longest * longest * 2
            attentionBuffers = (0..<pool.threads).map { _ in .allocate(capacity: attentionScratchSize) }
        }
        return attentionBuffers
    }

    private func attentionForward(_ batch: PackedBatch, _ s: SavedLayer) {
        let H = cfg.heads, D = cfg.headDim, Q = cfg.qDim, KV = cfg.kvDim, group = H / cfg.kvHeads, N = batch.rows
        let scale = 1 / Float(D).squareRoot()
        let seqs = batch.sequenceCount, starts = batch.starts
        let scratch = attentionScratch(batch)
        forEachJob(seqs * H) { job, part in
            let sq = job / H, h = job % H, kvh = h / group
            let s0 = starts[sq], T = starts[sq + 1] - s0
            let S = scratch[part]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(D), scale,
                        s.q + s0 * Q + h * D, Int32(Q), s.k + s0 * KV + kvh * D, Int32(KV), 0, S, Int32(T))
            for i in 0..<T {
                let row = S + i * T
                var mx = -Float.infinity
                for j in 0...i { mx = max(mx, row[j]) }
                let sum = VectorMath.expSubtracting(row, i + 1, mx)
                let inv = 1 / sum
                for j in 0...i { row[j] *= inv }
                for j in (i + 1)..<T { row[j] = 0 }
                s.lse[h * N + s0 + i] = mx + log(sum)
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(D), Int32(T), 1,
                        S, Int32(T), s.v + s0 * KV + kvh * D, Int32(KV), 0, s.att + s0 * Q + h * D, Int32(Q))
        }
    }

    /// One job per (sequence, key/value head), so that the query heads sharing K and V add
    /// their gradients in one thread.
    private func attentionBackward(_ batch: PackedBatch, _ s: SavedLayer, dout: UnsafePointer<Float>,
                                   dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>) {
        let H = cfg.heads, Hkv = cfg.kvHeads, D = cfg.headDim, Q = cfg.qDim, KV = cfg.kvDim, group = H / Hkv, N = batch.rows
        let scale = 1 / Float(D).squareRoot()
        let seqs = batch.sequenceCount, starts = batch.starts
        let scratch = attentionScratch(batch)
        forEachJob(seqs * Hkv) { job, part in
            let sq = job / Hkv, kvh = job % Hkv
            let s0 = starts[sq], T = starts[sq + 1] - s0
            let P = scratch[part], dP = P + T * T
            let kh = s.k + s0 * KV + kvh * D, vh = s.v + s0 * KV + kvh * D
            let dkh = dk + s0 * KV + kvh * D, dvh = dv + s0 * KV + kvh * D
            for h in (kvh * group)..<((kvh + 1) * group) {
                let qh = s.q + s0 * Q + h * D, oh = s.att + s0 * Q + h * D, doh = dout + s0 * Q + h * D, dqh = dq + s0 * Q + h * D
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(D), scale,
                            qh, Int32(Q), kh, Int32(KV), 0, P, Int32(T))
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(D), 1,
                            doh, Int32(Q), vh, Int32(KV), 0, dP, Int32(T))
                for i in 0..<T {
                    let lse = s.lse[h * N + s0 + i]
                    var di: Float = 0
                    for d in 0..<D { di += doh[i * Q + d] * oh[i * Q + d] }
                    let row = P + i * T, drow = dP + i * T
                    _ = VectorMath.expSubtracting(row, i + 1, lse)
                    for j in 0...i { drow[j] = row[j] * (drow[j] - di) * scale }
                    for j in (i + 1)..<T { row[j] = 0; drow[j] = 0 }
                }
                // dV += Pᵀ·dO; dQ += dS·K; dK += dSᵀ·Q
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(D), Int32(T), 1,
                            P, Int32(T), doh, Int32(Q), 1, dvh, Int32(KV))
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(D), Int32(T), 1,
                            dP, Int32(T), kh, Int32(KV), 1, dqh, Int32(Q))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(D), Int32(T), 1,
                            dP, Int32(T), qh, Int32(Q), 1, dkh, Int32(KV))
            }
        }
    }

    // MARK: - output head and loss

    /// Final norm, logits and cross-entropy for the trained rows only, in chunks; with `dx`,
    /// writes the gradient of the summed loss with respect to the residual stream.
    private func headLoss(_ batch: PackedBatch, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?) -> (loss: Double, count: Int) {
        let C = cfg.embedding, V = cfg.vocabulary, eps = cfg.normEps
        let rows = batch.targets.indices.filter { batch.targets[$0] >= 0 }
        guard !rows.isEmpty else { return (0, 0) }
        let chunk = 128
        if headBuffers == nil {
            headBuffers = (.allocate(capacity: chunk * C), .allocate(capacity: chunk * C), .allocate(capacity: chunk),
                           .allocate(capacity: chunk * V), .allocate(capacity: chunk))
        }
        let (xn, dxn, rstd, logits, losses) = headBuffers!
        var total = 0.0
        let norm = base.outputNorm
        var c0 = 0
        while c0 < rows.count {
            let m = min(chunk, rows.count - c0)
            let part = Array(rows[c0..<(c0 + m)])
            norm.withUnsafeBufferPointer { w in
                for (i, r) in part.enumerated() {
                    let xr = x + r * C
                    let s = 1 / (MatMul.dot(xr, xr, C) / Float(C) + eps).squareRoot()
                    rstd[i] = s
                    for j in 0..<C { xn[i * C + j] = w[j] * xr[j] * s }
                }
            }
            GEMM.run(pool, transA: false, transB: true, m: m, n: V, k: C, alpha: 1, xn, lda: C, head, ldb: C, beta: 0, logits, ldc: V)
            let targets = part.map { batch.targets[$0] }
            let wantGrad = dx != nil
            pool.parallelFor(m) { range in
                for i in range {
                    let row = logits + i * V
                    var mx = -Float.infinity
                    for j in 0..<V { mx = max(mx, row[j]) }
                    let t = targets[i], zt = row[t]
                    let sum = VectorMath.expSubtracting(row, V, mx)   // row now holds exp(z − max)
                    losses[i] = Double(mx + log(sum) - zt)
                    if wantGrad {
                        let inv = 1 / sum
                        for j in 0..<V { row[j] *= inv }
                        row[t] -= 1
                    }
                }
            }
            for i in 0..<m { total += losses[i] }
            if let dx {
                GEMM.run(pool, transA: false, transB: false, m: m, n: C, k: V, alpha: 1, logits, lda: V, head, ldb: C, beta: 0, dxn, ldc: C)
                norm.withUnsafeBufferPointer { w in
                    for (i, r) in part.enumerated() {
                        let xr = x + r * C, g = dxn + i * C, d = dx + r * C, s = rstd[i]
                        var dot: Float = 0
                        for j in 0..<C { dot += g[j] * w[j] * xr[j] }
                        let mm = dot * s / Float(C)
                        for j in 0..<C { d[j] += s * (g[j] * w[j] - xr[j] * s * mm) }
                    }
                }
            }
            c0 += m
        }
        return (total, rows.count)
    }
}

/// cos/sin of position·θ for every row of a batch.
struct RopeTable {
    let half: Int
    let cs: [Float], sn: [Float]

    init(invFreq: [Float], positions: [Int]) {
        half = invFreq.count
        var c = [Float](repeating: 0, count: positions.count * half), s = c
        for (r, p) in positions.enumerated() {
            for i in 0..<half {
                let a = Float(p) * invFreq[i]
                c[r * half + i] = cos(a)
                s[r * half + i] = sin(a)
            }
        }
        cs = c; sn = s
    }

    /// Rotates each head's first 2·half features; `inverse` rotates back (the backward pass).
    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim D: Int, neox: Bool, inverse: Bool, pool: ThreadPool) {
        let half = self.half
        cs.withUnsafeBufferPointer { cs in
            sn.withUnsafeBufferPointer { sn in
                let cs = cs.baseAddress!, sn = sn.baseAddress!
                pool.parallelFor(rows, minChunk: 32) { range in
                    for r in range {
                        for h in 0..<heads {
                            let v = x + (r * heads + h) * D
                            for i in 0..<half {
                                let c = cs[r * half + i], s = inverse ? -sn[r * half + i] : sn[r * half + i]
                                let (i0, i1) = neox ? (i, i + half) : (2 * i, 2 * i + 1)
                                let a = v[i0], b = v[i1]
                                v[i0] = a * c - b * s
                                v[i1] = a * s + b * c
                            }
                        }
                    }
                }
            }
        }
    }
}

/// sgemm over the pool: the output is cut into one block per thread, along its longer side.
enum GEMM {
    static func run(_ pool: ThreadPool, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                    _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float,
                    _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        let parts = (m * n * k < 1 << 18) ? 1 : pool.threads
        if parts == 1 {
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        let alongM = m >= n
        let total = alongM ? m : n
        let per = ((total + parts - 1) / parts + 15) & ~15
        pool.dispatch(parts) { i in
            let lo = i * per, hi = min(total, lo + per)
            guard lo < hi else { return }
            if alongM {
                let ap = transA ? a + lo : a + lo * lda
                cblas_sgemm(CblasRowMajor, ta, tb, Int32(hi - lo), Int32(n), Int32(k), alpha, ap, Int32(lda), b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
            } else {
                let bp = transB ? b + lo * ldb : b + lo
                cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(hi - lo), Int32(k), alpha, a, Int32(lda), bp, Int32(ldb), beta, c + lo, Int32(ldc))
            }
        }
    }
}
