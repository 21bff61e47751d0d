// Scalar reference dequantization and dot products for the GGML block formats.
// Layouts follow ggml's `ggml-common.h` (block_q4_0 … block_q8_K); the arithmetic order follows
// `ggml-quants.c` dequantize_row_* so results match llama.cpp bit for bit.
// These are the references every fast kernel is tested against: keep them simple and forever.
//
// Block layouts (bytes, little-endian; f16 = IEEE half):
//   Q4_0  : d f16 | qs[16]                         32 elems, 18 B
//   Q4_1  : d f16 | m f16 | qs[16]                 32 elems, 20 B
//   Q5_0  : d f16 | qh u32 | qs[16]                32 elems, 22 B
//   Q5_1  : d f16 | m f16 | qh u32 | qs[16]        32 elems, 24 B
//   Q8_0  : d f16 | qs i8[32]                      32 elems, 34 B
//   Q8_1  : d f16 | s f16 | qs i8[32]              32 elems, 36 B
//   Q2_K  : scales[16] | qs[64] | d f16 | dmin f16          256 elems, 84 B
//   Q3_K  : hmask[32] | qs[64] | scales[12] | d f16         256 elems, 110 B
//   Q4_K  : d f16 | dmin f16 | scales[12] | qs[128]         256 elems, 144 B
//   Q5_K  : d f16 | dmin f16 | scales[12] | qh[32] | qs[128] 256 elems, 176 B
//   Q6_K  : ql[128] | qh[64] | scales i8[16] | d f16        256 elems, 210 B
//   Q8_K  : d f32 | qs i8[256] | bsums i16[16]              256 elems, 292 B

@inline(__always) private func u8(_ p: UnsafeRawPointer, _ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }
@inline(__always) private func i8(_ p: UnsafeRawPointer, _ i: Int) -> Int8 { p.load(fromByteOffset: i, as: Int8.self) }
@inline(__always) private func f16(_ p: UnsafeRawPointer, _ i: Int) -> Float { halfToFloat(p.loadUnaligned(fromByteOffset: i, as: UInt16.self)) }
@inline(__always) private func u32(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 { p.loadUnaligned(fromByteOffset: i, as: UInt32.self) }

/// The 6-bit scale and min of sub-block `j` packed in the 12 scale bytes of Q4_K / Q5_K.
@inline(__always)
func scaleMinK4(_ j: Int, _ q: UnsafeRawPointer) -> (UInt8, UInt8) {
    if j < 4 {
        return (u8(q, j) & 63, u8(q, j + 4) & 63)
    }
    let d = (u8(q, j + 4) & 0xF) | ((u8(q, j - 4) >> 6) << 4)
    let m = (u8(q, j + 4) >> 4) | ((u8(q, j) >> 6) << 4)
    return (d, m)
}

public enum QuantReference {
    /// Dequantizes one block of `type` at `src` into `type.blockSize` floats at `y`.
    public static func dequantizeBlock(_ type: GGMLType, _ src: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            y[0] = src.loadUnaligned(as: Float.self)
        case .f16:
            y[0] = f16(src, 0)
        case .bf16:
            y[0] = bf16ToFloat(src.loadUnaligned(as: UInt16.self))
        case .q4_0:
            let d = f16(src, 0)
            for j in 0..<16 {
                let q = u8(src, 2 + j)
                y[j] = Float(Int(q & 0xF) - 8) * d
                y[j + 16] = Float(Int(q >> 4) - 8) * d
            }
        case .q4_1:
            let d = f16(src, 0), m = f16(src, 2)
            for j in 0..<16 {
                let q = u8(src, 4 + j)
                y[j] = Float(q & 0xF) * d + m
                y[j + 16] = Float(q >> 4) * d + m
            }
        case .q5_0:
            let d = f16(src, 0)
            let qh = u32(src, 2)
            for j in 0..<16 {
                let q = u8(src, 6 + j)
                let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                y[j] = Float(Int((q & 0xF) | h0) - 16) * d
                y[j + 16] = Float(Int((q >> 4) | h1) - 16) * d
            }
        case .q5_1:
            let d = f16(src, 0), m = f16(src, 2)
            let qh = u32(src, 4)
            for j in 0..<16 {
                let q = u8(src, 8 + j)
                let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                y[j] = Float((q & 0xF) | h0) * d + m
                y[j + 16] = Float((q >> 4) | h1) * d + m
            }
        case .q8_0:
            let d = f16(src, 0)
            for j in 0..<32 { y[j] = Float(i8(src, 2 + j)) * d }
        case .q8_1:
            let d = f16(src, 0)
            for j in 0..<32 { y[j] = Float(i8(src, 4 + j)) * d }
        case .q2_K:
            let scales = src, q0 = src + 16
            let d = f16(src, 80), dmin = f16(src, 82)
            var out = 0, isc = 0
            for n in stride(from: 0, to: 256, by: 128) {
                let q = q0 + n / 4
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    for half in 0..<2 {
                        let sc = u8(scales, isc); isc += 1
                        let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                        for l in 0..<16 {
                            y[out] = dl * Float((u8(q, l + 16 * half) >> shift) & 3) - ml
                            out += 1
                        }
                    }
                    shift += 2
                }
            }
        case .q3_K:
            let hm = src, q0 = src + 32, sraw = src + 96
            let dAll = f16(src, 108)
            let scales = q3kScales(sraw)
            var out = 0, isc = 0
            var m: UInt8 = 1
            for n in stride(from: 0, to: 256, by: 128) {
                let q = q0 + n / 4
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    for half in 0..<2 {
                        let dl = dAll * Float(Int(scales[isc]) - 32); isc += 1
                        for l in 0..<16 {
                            let idx = l + 16 * half
                            let low = Int((u8(q, idx) >> shift) & 3)
                            let hi = (u8(hm, idx) & m) != 0 ? 0 : 4
                            y[out] = dl * Float(low - hi)
                            out += 1
                        }
                    }
                    shift += 2
                    m <<= 1
                }
            }
        case .q4_K:
            let d = f16(src, 0), dmin = f16(src, 2)
            let sc = src + 4, q0 = src + 16
            var out = 0, isc = 0
            for j in stride(from: 0, to: 256, by: 64) {
                let q = q0 + j / 2
                let (s1, m1) = scaleMinK4(isc, sc), (s2, m2) = scaleMinK4(isc + 1, sc)
                let d1 = d * Float(s1), mm1 = dmin * Float(m1)
                let d2 = d * Float(s2), mm2 = dmin * Float(m2)
                for l in 0..<32 { y[out + l] = d1 * Float(u8(q, l) & 0xF) - mm1 }
                for l in 0..<32 { y[out + 32 + l] = d2 * Float(u8(q, l) >> 4) - mm2 }
                out += 64; isc += 2
            }
        case .q5_K:
            let d = f16(src, 0), dmin = f16(src, 2)
            let sc = src + 4, qh = src + 16, q0 = src + 48
            var out = 0, isc = 0
            var u1: UInt8 = 1, u2: UInt8 = 2
            for j in stride(from: 0, to: 256, by: 64) {
                let ql = q0 + j / 2
                let (s1, m1) = scaleMinK4(isc, sc), (s2, m2) = scaleMinK4(isc + 1, sc)
                let d1 = d * Float(s1), mm1 = dmin * Float(m1)
                let d2 = d * Float(s2), mm2 = dmin * Float(m2)
                for l in 0..<32 {
                    let h: UInt8 = (u8(qh, l) & u1) != 0 ? 16 : 0
                    y[out + l] = d1 * Float((u8(ql, l) & 0xF) + h) - mm1
                }
                for l in 0..<32 {
                    let h: UInt8 = (u8(qh, l) & u2) != 0 ? 16 : 0
                    y[out + 32 + l] = d2 * Float((u8(ql, l) >> 4) + h) - mm2
                }
                out += 64; isc += 2
                u1 <<= 2; u2 <<= 2
            }
        case .q6_K:
            let d = f16(src, 208)
            var ql = src, qh = src + 128, sc = src + 192
            var out = 0
            for _ in 0..<2 {
                for l in 0..<32 {
                    let isc = l / 16
                    let h = u8(qh, l)
                    let q1 = Int((u8(ql, l) & 0xF) | ((h & 3) << 4)) - 32
                    let q2 = Int((u8(ql, l + 32) & 0xF) | (((h >> 2) & 3) << 4)) - 32
                    let q3 = Int((u8(ql, l) >> 4) | (((h >> 4) & 3) << 4)) - 32
                    let q4 = Int((u8(ql, l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
                    y[out + l] = d * Float(i8(sc, isc)) * Float(q1)
                    y[out + l + 32] = d * Float(i8(sc, isc + 2)) * Float(q2)
                    y[out + l + 64] = d * Float(i8(sc, isc + 4)) * Float(q3)
                    y[out + l + 96] = d * Float(i8(sc, isc + 6)) * Float(q4)
                }
                out += 128; ql += 64; qh += 32; sc += 8
            }
        case .q8_K:
            let d = src.loadUnaligned(as: Float.self)
            for j in 0..<256 { y[j] = d * Float(i8(src, 4 + j)) }
        }
    }

    /// Unpacks Q3_K's twelve bytes of 6-bit scales into sixteen values 0…63.
    @inline(__always)
    static func q3kScales(_ p: UnsafeRawPointer) -> [Int8] {
        let kmask1: UInt32 = 0x0303_0303, kmask2: UInt32 = 0x0f0f_0f0f
        var a0 = u32(p, 0), a1 = u32(p, 4), a2 = u32(p, 8)
        let tmp = a2
        a2 = ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
        let a3 = ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
        a0 = (a0 & kmask2) | (((tmp >> 0) & kmask1) << 4)
        a1 = (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4)
        var out = [Int8](repeating: 0, count: 16)
        for (w, word) in [a0, a1, a2, a3].enumerated() {
            for b in 0..<4 { out[w * 4 + b] = Int8(bitPattern: UInt8(truncatingIfNeeded: word >> UInt32(8 * b))) }
        }
        return out
    }

    /// Dequantizes `count` elements (a whole number of blocks) from `src` into `y`.
    public static func dequantize(_ type: GGMLType, _ src: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, count: Int) {
        precondition(count % type.blockSize == 0, "\(type) rows must hold whole blocks")
        let nb = count / type.blockSize
        for b in 0..<nb {
            dequantizeBlock(type, src + b * type.blockBytes, y + b * type.blockSize)
        }
    }

    /// Dot product of a quantized row with fp32 values: Σ dequant(row)[i] · x[i], summed in order.
    public static func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        let bs = type.blockSize
        var tmp = [Float](repeating: 0, count: bs)
        var sum: Float = 0
        tmp.withUnsafeMutableBufferPointer { t in
            for b in 0..<(count / bs) {
                dequantizeBlock(type, row + b * type.blockBytes, t.baseAddress!)
                for i in 0..<bs { sum += t[i] * x[b * bs + i] }
            }
        }
        return sum
    }
}
