// The rows of one forward pass over several sessions (continuous batching): each step's tokens
// become consecutive rows of one activation matrix, so every weight matrix is read once for all
// of them, while positions, the KV cache, attention and LoRA adapters stay per session.
//
// Steps of few tokens (decoding) come first: their products run through the matrix-vector
// kernels together, one output per (row, token) computed exactly as for that token alone; each
// longer step (a prompt or a chunk of one) runs its own matrix product, as it would alone. So a
// sequence's output does not depend on what else is in the batch.
//
// Shapes: T rows in all, C width, V vocabulary.
import Foundation
import TailorKernels

struct DecoderBatch {
    let steps: [DecoderStep]
    let precision: Precision
    /// Step indices in row order: the short steps, then the long ones.
    let order: [Int]
    /// First row of each step (by step index) and its token count.
    let firstRow: [Int]
    let count: [Int]
    /// The cache position of each step's first token.
    let start: [Int]
    /// Rows in all, and how many of the first belong to short steps.
    let rows: Int
    let shortRows: Int
    /// The position of each row.
    let positions: [Int]

    init(_ steps: [DecoderStep], vocabulary: Int) throws {
        guard let first = steps.first else { throw ModelError.emptyPrompt }
        precision = first.session.precision
        var seen = Set<ObjectIdentifier>()
        for s in steps {
            guard !s.tokens.isEmpty else { throw ModelError.emptyPrompt }
            guard s.session.precision == precision else {
                throw ModelError.badBatch("every session of one forward pass must have the same precision")
            }
            guard seen.insert(ObjectIdentifier(s.session.cache)).inserted else {
                throw ModelError.badBatch("a session appears twice in one forward pass")
            }
            let c = s.session.cache
            guard c.count + s.tokens.count <= c.maxTokens else {
                throw ModelError.contextFull(used: c.count, adding: s.tokens.count, limit: c.maxTokens)
            }
            for t in s.tokens where t < 0 || t >= vocabulary { throw ModelError.badToken(t, vocabularySize: vocabulary) }
        }
        self.steps = steps
        let isShort = steps.map { $0.tokens.count <= MatMul.vectorLimit }
        order = steps.indices.filter { isShort[$0] } + steps.indices.filter { !isShort[$0] }
        var firstRow = [Int](repeating: 0, count: steps.count)
        var r = 0, short = 0
        var positions: [Int] = []
        for i in order {
            firstRow[i] = r
            let start = steps[i].session.cache.count
            positions += start..<(start + steps[i].tokens.count)
            r += steps[i].tokens.count
            if isShort[i] { short = r }
        }
        self.firstRow = firstRow
        count = steps.map(\.tokens.count)
        start = steps.map(\.session.cache.count)
        rows = r
        shortRows = short
        self.positions = positions
        for s in steps { s.session.cache.reserve(s.session.cache.count + s.tokens.count) }
    }

    /// The long steps (each its own matrix product).
    var longSteps: ArraySlice<Int> { order.drop { count[$0] <= MatMul.vectorLimit } }

    /// Writes each row's token embedding: `lookup(token, row pointer)`.
    func embed(into x: UnsafeMutablePointer<Float>, width C: Int, _ lookup: (Int, UnsafeMutablePointer<Float>) -> Void) {
        for (i, s) in steps.enumerated() {
            for (t, id) in s.tokens.enumerated() { lookup(id, x + (firstRow[i] + t) * C) }
        }
    }

    /// y = x·Wᵀ (+ y with `accumulate`) for every row and matrix: the short rows together through
    /// the matrix-vector kernels, each long step by itself. x: [T × cols], each y: [T × W.rows].
    func matmul(_ x: UnsafePointer<Float>, _ outputs: [(WeightMatrix, UnsafeMutablePointer<Float>)], pool: ThreadPool,
                accumulate: Bool = false) {
        guard let cols = outputs.first?.0.cols else { return }
        if MatMul.tokenIndependent(outputs.map(\.0), precision: precision) {
            MatMul.forward(x, outputs, tokens: rows, pool: pool, precision: precision, accumulate: accumulate)
            return
        }
        if shortRows > 0 {
            MatMul.forward(x, outputs, tokens: shortRows, pool: pool, precision: precision, accumulate: accumulate, rowByRow: true)
        }
        for i in longSteps {
            let r = firstRow[i]
            MatMul.forward(x + r * cols, outputs.map { ($0.0, $0.1 + r * $0.0.rows) }, tokens: count[i], pool: pool,
                           precision: precision, accumulate: accumulate)
        }
    }

    /// Adds each session's LoRA adapters on `target` of `layer`: y[rows] += scale·(x·Aᵀ)·Bᵀ.
    /// x: [T × in], y: [T × out].
    func applyAdapters(layer: Int, target: LoRATarget, x: UnsafePointer<Float>, inputs: Int,
                       y: UnsafeMutablePointer<Float>, outputs: Int) {
        for (i, s) in steps.enumerated() where !s.session.adapters.isEmpty {
            let r = firstRow[i]
            for use in s.session.adapters {
                use.adapter.apply(layer: layer, target: target, x: x + r * inputs, y: y + r * outputs, tokens: count[i], scale: use.scale)
            }
        }
    }

    /// Whether any session applies an adapter.
    var hasAdapters: Bool { steps.contains { !$0.session.adapters.isEmpty } }

    /// cos/sin of every row's position for `invFreq` ([T × 2·half]).
    func ropeAngles(_ invFreq: [Float]) -> [Float] { DecoderOps.ropeAngles(invFreq: invFreq, positions: positions) }

    /// Stores the rows' keys and values ([T × KV]) in their sessions' caches at layer `l`.
    func store(layer l: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, width KV: Int) {
        for (i, s) in steps.enumerated() {
            s.session.cache.store(layer: l, start: start[i], keys: k + firstRow[i] * KV, values: v + firstRow[i] * KV, count: count[i])
        }
    }

    /// Causal attention of every row over its own session's cache (layer l): the short rows in one
    /// parallel operation over (row, head), each long step as it would run alone.
    /// q, out: [T × H·D].
    func attention(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, layer l: Int, heads H: Int, kvHeads: Int,
                   headDim D: Int, scale: Float, window: Int? = nil, pool: ThreadPool) {
        if shortRows > 0 {
            // The step of each short row.
            var stepOfRow = [Int](repeating: 0, count: shortRows)
            for i in order where count[i] <= MatMul.vectorLimit {
                for t in 0..<count[i] { stepOfRow[firstRow[i] + t] = i }
            }
            let steps = self.steps, positions = self.positions
            let scratch = DecoderOps.AttentionScratch(threads: pool.threads, positions: (positions.prefix(shortRows).max() ?? 0) + 1, headDim: D)
            defer { scratch.free() }
            stepOfRow.withUnsafeBufferPointer { stepOfRow in
                pool.dispatch(shortRows * H) { job, thread in
                    let row = job / H, h = job % H
                    let cache = steps[stepOfRow[row]].session.cache
                    DecoderOps.attendOne(q: q + row * H * D, out: out + row * H * D, cache: cache, layer: l, position: positions[row],
                                         head: h, heads: H, kvHeads: kvHeads, headDim: D, scale: scale, window: window,
                                         scratch: scratch.of(thread))
                }
            }
        }
        for i in longSteps {
            let r = firstRow[i]
            DecoderOps.attention(q: q + r * H * D, out: out + r * H * D, cache: steps[i].session.cache, layer: l, tokens: count[i],
                                 start: start[i], heads: H, kvHeads: kvHeads, headDim: D, scale: scale, window: window, pool: pool)
        }
    }

    /// Marks the new positions filled in every cache.
    func commit() {
        for (i, s) in steps.enumerated() { s.session.cache.count = start[i] + count[i] }
    }

    /// The logits each step asked for: the final norm of its last row (or all its rows), times
    /// the output matrix. x: [T × C] the residual stream after the last block.
    func logits(x: UnsafePointer<Float>, width C: Int, vocabulary V: Int, pool: ThreadPool,
                norm: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                output: WeightMatrix) -> [[Float]] {
        var result = [[Float]](repeating: [], count: steps.count)
        // Steps that want their last row only: gathered, through the matrix-vector kernels.
        let lastOnly = order.filter { !steps[$0].allLogits }
        if !lastOnly.isEmpty {
            let n = lastOnly.count
            let xs = UnsafeMutablePointer<Float>.allocate(capacity: n * C)
            let xn = UnsafeMutablePointer<Float>.allocate(capacity: n * C)
            let out = UnsafeMutablePointer<Float>.allocate(capacity: n * V)
            defer { xs.deallocate(); xn.deallocate(); out.deallocate() }
            for (j, i) in lastOnly.enumerated() { (xs + j * C).update(from: x + (firstRow[i] + count[i] - 1) * C, count: C) }
            norm(xs, xn, n)
            MatMul.forward(xn, output, out, tokens: n, pool: pool, precision: precision, rowByRow: true)
            for (j, i) in lastOnly.enumerated() { result[i] = Array(UnsafeBufferPointer(start: out + j * V, count: V)) }
        }
        for i in order where steps[i].allLogits {
            let n = count[i]
            let xn = UnsafeMutablePointer<Float>.allocate(capacity: n * C)
            defer { xn.deallocate() }
            norm(x + firstRow[i] * C, xn, n)
            var logits = [Float](repeating: 0, count: n * V)
            logits.withUnsafeMutableBufferPointer { MatMul.forward(xn, output, $0.baseAddress!, tokens: n, pool: pool, precision: precision) }
            result[i] = logits
        }
        return result
    }
}
