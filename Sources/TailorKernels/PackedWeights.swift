// Weight matrices repacked at load for integer matrix products over many tokens (batched decoding
// and prefill), in the spirit of ik_llama.cpp's and llama.cpp's "repacked" CPU layouts: sixteen
// rows interleaved per block, so one 64-byte load gives four consecutive weights of each of the
// sixteen rows, one activation dword broadcast feeds all sixteen (vpdpbusd), and an AMX tile
// (sixteen rows × the block's bytes) loads straight from it.
//
// Layout: the rows in groups of 16 (the last group padded with zero rows), each group's blocks in
// order, each block a fixed-size tile:
//   Q4_0  qs: 4 chunks × 64 bytes, chunk j = for rows 0…15, bytes 4j…4j+3 of the row's nibble
//         bytes (low nibbles: values 4j…4j+3, high nibbles: 16+4j…16+4j+3); then d[16] (fp16)
//   Q4_1  the same, then d[16], m[16] (fp16)
//   Q5_0  the same nibbles, then d[16], then the rows' 32-bit qh (the fifth bits: bit k of row i's
//         dword is value k's), 16 × 4 bytes
//   Q8_0  qs: 8 chunks × 64 bytes, chunk j = for rows 0…15, values 4j…4j+3 as unsigned bytes
//         (the int8 value + 128); then d[16] (fp16)
//   Q4_K, Q5_K, Q6_K: a tile per 256-value super-block, laid out in PackedWeights+KQuants.swift.
// Every tile holds the bytes of the sixteen blocks it came from (Q4_K: its 6-bit scales unpacked
// to bytes, 3% more), so the packed matrix is about the size of the mapped one, and replaces it
// in memory for these kernels.
//
// The arithmetic (`PackedGEMM.reference`, kept forever; every kernel gives its bits exactly): for
// row r and token t, over the blocks b in order,
//   isum = Σ_k w_u[r, 32b+k]·q[t, 32b+k] − off·Σq[t, b]   (off: Q4_0 8, Q5_0 16, Q8_0 128, Q4_1 0)
//   acc  = fma(Float(isum), d[r,b]·dx[t,b], acc);   Q4_1 then acc = fma(m[r,b], s[t,b], acc)
// with q, dx, s the 8-bit activation blocks of `QuantizedActivations` (s = fp16(dx·Σq)). The
// integer sums are exact, and the float steps are the same whatever the number of tokens, so a
// token's outputs do not depend on the other tokens multiplied with it.
import Foundation

public final class PackedWeights: @unchecked Sendable {
    // @unchecked Sendable: written once in init, read-only afterwards.
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// Row groups of 16, and blocks per row (of 32 values; of 256 for the K-quants).
    public let groups: Int
    public let blocks: Int
    public let tileBytes: Int
    public let data: UnsafeMutableRawPointer
    public var byteCount: Int { groups * blocks * tileBytes }

    /// Types with a packed layout.
    public static func supports(_ t: GGMLType) -> Bool { t == .q4_0 || t == .q4_1 || t == .q5_0 || t == .q8_0 || isK(t) }

    /// Whether `t` is packed in 256-value super-blocks (multiplied with the 256-blocks of
    /// QuantizedActivations).
    public static func isK(_ t: GGMLType) -> Bool { t == .q4_K || t == .q5_K || t == .q6_K }

    /// Bytes of the weight values in a tile (the scales follow them).
    static func valueBytes(_ t: GGMLType) -> Int { t == .q8_0 ? 512 : 256 }

    static func tileBytes(_ t: GGMLType) -> Int {
        switch t {
        case .q4_0: return 256 + 32
        case .q4_1: return 256 + 64
        case .q5_0: return 256 + 32 + 64
        case .q4_K: return KTile.q4KBytes
        case .q5_K: return KTile.q5KBytes
        case .q6_K: return KTile.q6KBytes
        default: return 512 + 32
        }
    }

    /// Packs `rows` rows of `cols` values of type `type` from `source` (the file's row-major
    /// blocks), the row groups split over `pool`.
    public init(type: GGMLType, rows: Int, cols: Int, source: UnsafeRawPointer, pool: ThreadPool? = nil) {
        precondition(Self.supports(type) && cols % type.blockSize == 0 && rows > 0)
        self.type = type
        self.rows = rows
        self.cols = cols
        groups = (rows + 15) / 16
        blocks = cols / type.blockSize
        tileBytes = Self.tileBytes(type)
        data = .allocate(byteCount: max(64, groups * blocks * tileBytes), alignment: 64)
        let rowBytes = blocks * type.blockBytes
        let body = { (range: Range<Int>) in
            for g in range {
                for b in 0..<self.blocks {
                    self.packTile(group: g, block: b) { r in r < rows ? source + r * rowBytes + b * type.blockBytes : nil }
                }
            }
        }
        if let pool { pool.parallelFor(groups, minChunk: 4, body) } else { body(0..<groups) }
    }

    deinit { data.deallocate() }

    @inline(__always) public func tile(group g: Int, block b: Int) -> UnsafeRawPointer {
        UnsafeRawPointer(data + (g * blocks + b) * tileBytes)
    }

    /// Writes the tile of row group g, block b from the sixteen source blocks (nil: a padding row).
    private func packTile(group g: Int, block b: Int, _ source: (Int) -> UnsafeRawPointer?) {
        let t = data + (g * blocks + b) * tileBytes
        if Self.isK(type) { KTile.pack(type, t, (0..<16).map { source(g * 16 + $0) }); return }
        let vb = Self.valueBytes(type)
        let d = (t + vb).assumingMemoryBound(to: UInt16.self)
        for i in 0..<16 {
            guard let s = source(g * 16 + i) else {
                for j in 0..<(vb / 64) { (t + 64 * j + 4 * i).storeBytes(of: UInt32(type == .q8_0 ? 0x8080_8080 : 0), as: UInt32.self) }
                d[i] = 0
                if type == .q4_1 { d[16 + i] = 0 }
                if type == .q5_0 { (t + 288 + 4 * i).storeBytes(of: UInt32(0), as: UInt32.self) }
                continue
            }
            switch type {
            case .q5_0:
                // ggml's block: d (fp16), qh (4 bytes), qs (16 bytes).
                for j in 0..<4 { (t + 64 * j + 4 * i).storeBytes(of: s.loadUnaligned(fromByteOffset: 6 + 4 * j, as: UInt32.self), as: UInt32.self) }
                d[i] = s.loadUnaligned(as: UInt16.self)
                (t + 288 + 4 * i).storeBytes(of: s.loadUnaligned(fromByteOffset: 2, as: UInt32.self), as: UInt32.self)
            case .q4_0, .q4_1:
                let qs = s + (type == .q4_0 ? 2 : 4)
                for j in 0..<4 { (t + 64 * j + 4 * i).storeBytes(of: qs.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self), as: UInt32.self) }
                d[i] = s.loadUnaligned(as: UInt16.self)
                if type == .q4_1 { d[16 + i] = s.loadUnaligned(fromByteOffset: 2, as: UInt16.self) }
            default:
                for j in 0..<8 {
                    let v = s.loadUnaligned(fromByteOffset: 2 + 4 * j, as: UInt32.self) ^ 0x8080_8080
                    (t + 64 * j + 4 * i).storeBytes(of: v, as: UInt32.self)
                }
                d[i] = s.loadUnaligned(as: UInt16.self)
            }
        }
    }

    /// Value k (0…31) of row i (0…15) of a tile, as the unsigned byte the products use.
    @inline(__always) static func value(_ type: GGMLType, _ tile: UnsafeRawPointer, row i: Int, _ k: Int) -> Int32 {
        if type == .q8_0 { return Int32(tile.load(fromByteOffset: 64 * (k / 4) + 4 * i + k % 4, as: UInt8.self)) }
        let byte = tile.load(fromByteOffset: 64 * ((k % 16) / 4) + 4 * i + k % 4, as: UInt8.self)
        let nibble = Int32(k < 16 ? byte & 0x0F : byte >> 4)
        if type == .q5_0 { return nibble | Int32((tile.load(fromByteOffset: 288 + 4 * i, as: UInt32.self) >> UInt32(k)) & 1) << 4 }
        return nibble
    }

    /// The offset of the unsigned weights: Σ w_u·q − off·Σq is the signed product.
    @inline(__always) static func offset(_ type: GGMLType) -> Int32 {
        switch type {
        case .q4_0: return 8
        case .q5_0: return 16
        case .q8_0: return 128
        default: return 0
        }
    }
}

/// Products of 8-bit activations with packed weights.
public enum PackedGEMM {
    /// y[t, r] (+)= Σ_i x[t, i]·W[r, i] for rows `groups` (row groups of 16) of `w`, tokens
    /// 0..<tokens of `a`: the scalar reference of the block arithmetic in the file header.
    /// y: [tokens × ldy], row r of w at column r.
    public static func reference(_ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                                 _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        if PackedWeights.isK(w.type) { KTile.reference(w, a, tokens: tokens, groups: groups, y, ldy: ldy, accumulate: accumulate); return }
        let nb = w.blocks, n = a.n
        let off = PackedWeights.offset(w.type)
        for g in groups {
            for i in 0..<16 where g * 16 + i < w.rows {
                let r = g * 16 + i
                for t in 0..<tokens {
                    var acc: Float = 0
                    for b in 0..<nb {
                        let tile = w.tile(group: g, block: b)
                        let q = a.q32 + t * n + 32 * b
                        var isum: Int32 = 0
                        for k in 0..<32 { isum &+= PackedWeights.value(w.type, tile, row: i, k) &* Int32(q[k]) }
                        isum &-= off &* a.sum32[t * nb + b]
                        let scales = (tile + PackedWeights.valueBytes(w.type)).assumingMemoryBound(to: UInt16.self)
                        acc = acc.addingProduct(Float(isum), halfToFloat(scales[i]) * a.d32[t * nb + b])
                        if w.type == .q4_1 { acc = acc.addingProduct(halfToFloat(scales[16 + i]), a.s32[t * nb + b]) }
                    }
                    if accumulate { y[t * ldy + r] += acc } else { y[t * ldy + r] = acc }
                }
            }
        }
    }

    /// The kernels of the packed products. Which ones a build has depends on the CPU it was built
    /// for; which ones run depends on the CPU found at run time (AMX: the tile state granted).
    public enum Kernel: String, CaseIterable, Sendable {
        case reference
        case avx2 = "avx2"
        case avx512 = "avx512-vnni"
        case amx = "amx-int8"

        /// Whether this build and CPU can run it for `type`.
        public func available(for type: GGMLType) -> Bool {
            switch self {
            case .reference: return true
            case .avx2:
                #if TAILOR_AVX2
                return true
                #else
                return false
                #endif
            case .avx512:
                #if TAILOR_AVX512
                return true
                #else
                return false
                #endif
            case .amx:
                #if TAILOR_AMX
                return AMXPacked.available
                #else
                return false
                #endif
            }
        }
    }

    /// The kernels this machine can run for `type`, slowest first.
    public static func kernels(for type: GGMLType) -> [Kernel] { Kernel.allCases.filter { $0.available(for: type) } }

    /// Which kernel `run` uses for `tokens` tokens of `type` on this machine: AMX from a few dozen
    /// tokens where present, else the widest vector kernel.
    public static func kernel(tokens: Int, type: GGMLType = .q4_1) -> Kernel {
        #if TAILOR_AMX
        if AMXPacked.available, tokens >= (PackedWeights.isK(type) ? AMXPackedK.minimumTokens : AMXPacked.minimumTokens) { return .amx }
        #endif
        #if TAILOR_AVX512
        return .avx512
        #else
        return Kernel.avx2.available(for: type) ? .avx2 : .reference
        #endif
    }

    /// The same with the fastest kernel this build and CPU have.
    @inline(__always)
    public static func run(_ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                           _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        run(kernel(tokens: tokens, type: w.type), w, a, tokens: tokens, groups: groups, y, ldy: ldy, accumulate: accumulate)
    }

    /// The same with the kernel given (one that is `available` for the type).
    @inline(__always)
    public static func run(_ kernel: Kernel, _ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                           _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        switch kernel {
        case .reference: break
        case .avx2:
            #if TAILOR_AVX2
            AVX2Packed.run(w, a, tokens: tokens, groups: groups, y, ldy: ldy, accumulate: accumulate)
            return
            #endif
        case .avx512:
            #if TAILOR_AVX512
            AVX512Packed.run(w, a, tokens: tokens, groups: groups, y, ldy: ldy, accumulate: accumulate)
            return
            #endif
        case .amx:
            #if TAILOR_AMX
            if PackedWeights.isK(w.type) {
                AMXPackedK.run(w, a, tokens: tokens, groups: groups, y, ldy: ldy, accumulate: accumulate)
            } else {
                AMXPacked.run(w, a, tokens: tokens, groups: groups, y, ldy: ldy, accumulate: accumulate)
            }
            return
            #endif
        }
        reference(w, a, tokens: tokens, groups: groups, y, ldy: ldy, accumulate: accumulate)
    }
}
