// The packed layouts of the K-quants (ggml's Q4_K, Q5_K and Q6_K super-blocks of 256 values), for
// PackedGEMM: one tile per row group of 16 and super-block, in units of 64 bytes = four
// consecutive values × sixteen rows, as the 32-blocks' tiles.
//
// Q4_K (2368 bytes): qs 4 chunks × 8 units (unit (j, k) = bytes 4k…4k+3 of chunk j of the rows'
//   nibbles: low nibbles values 4k…4k+3 of sub-block 2j, high nibbles of sub-block 2j+1), then
//   the 6-bit scales and mins unpacked to bytes ([8 sub-blocks][16 rows] each), d[16], dmin[16].
// Q5_K (2880 bytes): Q4_K's tile, then the fifth bits: qh as 8 units (unit k = bytes 4k…4k+3 of
//   the row's 32 qh bytes; bit s of byte l is value l of sub-block s).
// Q6_K (3360 bytes, the rows' 16 × 210): ql as 32 units (unit (h, m) = bytes 4m…4m+3 of half h's
//   64 low-bit bytes), qh as 16 units (unit (h, n) = bytes 4n…4n+3 of half h's 32 high-bit
//   bytes), scales [16 sub-blocks][16 rows] (int8), d[16].
//
// The arithmetic (the reference below; llama.cpp's q4_K·q8_K and q6_K·q8_K block math, every
// kernel gives its bits): per super-block b, with q8_K activations (q, dx, bsums of 16),
//   Q4_K  sumi = Σ_s sc_s·Σ q4·q,   summ = Σ_s m_s·(bsum_2s + bsum_2s+1)   (Q5_K: q5 for q4)
//         acc = fma(Float(sumi), d·dx, acc);  acc = fma(Float(summ), −(dmin·dx), acc)
//   Q6_K  sumi = Σ_s16 sc_s16·(Σ q6·q − 32·bsum_s16)
//         acc = fma(Float(sumi), d·dx, acc)
enum KTile {
    static let q4KBytes = 2048 + 256 + 64
    static let q5KBytes = q4KBytes + 512
    static let q6KBytes = 2048 + 1024 + 256 + 32

    /// Writes one tile from the sixteen source super-blocks (nil: a padding row, all zero).
    static func pack(_ type: GGMLType, _ t: UnsafeMutableRawPointer, _ rows: [UnsafeRawPointer?]) {
        t.initializeMemory(as: UInt8.self, repeating: 0, count: PackedWeights.tileBytes(type))
        for (i, src) in rows.enumerated() {
            guard let s = src else { continue }
            if type != .q6_K {
                // ggml's Q4_K: d, dmin, scales[12], qs[128]; Q5_K: d, dmin, scales[12], qh[32], qs[128].
                let qs = type == .q4_K ? 16 : 48
                for j in 0..<4 {
                    for k in 0..<8 {
                        (t + 512 * j + 64 * k + 4 * i).storeBytes(of: s.loadUnaligned(fromByteOffset: qs + 32 * j + 4 * k, as: UInt32.self), as: UInt32.self)
                    }
                }
                if type == .q5_K {
                    for k in 0..<8 { (t + q4KBytes + 64 * k + 4 * i).storeBytes(of: s.loadUnaligned(fromByteOffset: 16 + 4 * k, as: UInt32.self), as: UInt32.self) }
                }
                for sb in 0..<8 {
                    let (sc, m) = scaleMinK4(sb, s + 4)
                    (t + 2048 + 16 * sb + i).storeBytes(of: sc, as: UInt8.self)
                    (t + 2176 + 16 * sb + i).storeBytes(of: m, as: UInt8.self)
                }
                (t + 2304 + 2 * i).storeBytes(of: s.loadUnaligned(as: UInt16.self), as: UInt16.self)
                (t + 2336 + 2 * i).storeBytes(of: s.loadUnaligned(fromByteOffset: 2, as: UInt16.self), as: UInt16.self)
            } else {
                for h in 0..<2 {
                    for m in 0..<16 {
                        (t + 64 * (16 * h + m) + 4 * i).storeBytes(of: s.loadUnaligned(fromByteOffset: 64 * h + 4 * m, as: UInt32.self), as: UInt32.self)
                    }
                    for n in 0..<8 {
                        (t + 2048 + 64 * (8 * h + n) + 4 * i).storeBytes(of: s.loadUnaligned(fromByteOffset: 128 + 32 * h + 4 * n, as: UInt32.self), as: UInt32.self)
                    }
                }
                for sb in 0..<16 { (t + 3072 + 16 * sb + i).storeBytes(of: s.load(fromByteOffset: 192 + sb, as: UInt8.self), as: UInt8.self) }
                (t + 3328 + 2 * i).storeBytes(of: s.loadUnaligned(fromByteOffset: 208, as: UInt16.self), as: UInt16.self)
            }
        }
    }

    /// Value v (0…255) of row i of a tile: Q4_K 0…15, Q5_K 0…31, Q6_K 0…63 (before its −32).
    static func value(_ type: GGMLType, _ t: UnsafeRawPointer, row i: Int, _ v: Int) -> Int32 {
        if type != .q6_K {
            let s = v / 32, l = v % 32
            let byte = t.load(fromByteOffset: 512 * (s / 2) + 64 * (l / 4) + 4 * i + l % 4, as: UInt8.self)
            let nibble = Int32(s % 2 == 0 ? byte & 0x0F : byte >> 4)
            guard type == .q5_K else { return nibble }
            let high = t.load(fromByteOffset: q4KBytes + 64 * (l / 4) + 4 * i + l % 4, as: UInt8.self)
            return nibble | Int32((high >> UInt8(s)) & 1) << 4
        }
        let h = v / 128, r = v % 128, kq = r / 32, l = r % 32
        let m = (kq % 2 == 0 ? 0 : 8) + l / 4
        let lowBits = t.load(fromByteOffset: 64 * (16 * h + m) + 4 * i + l % 4, as: UInt8.self)
        let nibble = kq < 2 ? lowBits & 0x0F : lowBits >> 4
        let high = t.load(fromByteOffset: 2048 + 64 * (8 * h + l / 4) + 4 * i + l % 4, as: UInt8.self)
        return Int32(nibble | ((high >> UInt8(2 * kq)) & 3) << 4)
    }

    static func reference(_ w: PackedWeights, _ a: QuantizedActivations, tokens: Int, groups: Range<Int>,
                          _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let nb = w.blocks, n = a.n
        for g in groups {
            for i in 0..<16 where g * 16 + i < w.rows {
                let r = g * 16 + i
                for t in 0..<tokens {
                    var acc: Float = 0
                    for b in 0..<nb {
                        let tile = w.tile(group: g, block: b)
                        let q = a.qK + t * n + 256 * b, bs = a.bsumsK + t * (n / 16) + 16 * b
                        let dx = a.dK[t * nb + b]
                        var sumi: Int32 = 0
                        if w.type != .q6_K {
                            var summ: Int32 = 0
                            for sb in 0..<8 {
                                var isum: Int32 = 0
                                for l in 0..<32 { isum &+= value(w.type, tile, row: i, 32 * sb + l) &* Int32(q[32 * sb + l]) }
                                let sc = Int32(tile.load(fromByteOffset: 2048 + 16 * sb + i, as: UInt8.self))
                                let m = Int32(tile.load(fromByteOffset: 2176 + 16 * sb + i, as: UInt8.self))
                                sumi &+= sc &* isum
                                summ &+= m &* (Int32(bs[2 * sb]) &+ Int32(bs[2 * sb + 1]))
                            }
                            let d = halfToFloat(tile.load(fromByteOffset: 2304 + 2 * i, as: UInt16.self))
                            let dmin = halfToFloat(tile.load(fromByteOffset: 2336 + 2 * i, as: UInt16.self))
                            acc = acc.addingProduct(Float(sumi), d * dx)
                            acc = acc.addingProduct(Float(summ), -(dmin * dx))
                        } else {
                            for sb in 0..<16 {
                                var isum: Int32 = 0
                                for l in 0..<16 { isum &+= value(.q6_K, tile, row: i, 16 * sb + l) &* Int32(q[16 * sb + l]) }
                                isum &-= 32 &* Int32(bs[sb])
                                sumi &+= Int32(tile.load(fromByteOffset: 3072 + 16 * sb + i, as: Int8.self)) &* isum
                            }
                            let d = halfToFloat(tile.load(fromByteOffset: 3328 + 2 * i, as: UInt16.self))
                            acc = acc.addingProduct(Float(sumi), d * dx)
                        }
                    }
                    if accumulate { y[t * ldy + r] += acc } else { y[t * ldy + r] = acc }
                }
            }
        }
    }
}
