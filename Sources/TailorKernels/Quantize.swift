// fp32 → GGML block quantizers (the inverse of QuantReference), for `tailor quantize`.
// Q8_0, Q4_0, Q4_1 and Q5_0 follow ggml's reference quantize_row_*_ref exactly. Q4_K, Q5_K and Q6_K
// use a direct per-sub-block min/max fit with 6/8-bit scales rather than ggml's iterative
// search (make_qkx2_quants), so their error is slightly higher than llama-quantize's
// (measured in the tests).

public enum Quantizer {
    public static let supported: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q4_K, .q5_K, .q6_K, .f16, .f32]

    /// Quantizes `count` values (whole blocks) into `type`'s block layout.
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, to type: GGMLType) -> [UInt8] {
        precondition(count % type.blockSize == 0)
        var out = [UInt8](repeating: 0, count: type.byteCount(elements: count)!)
        out.withUnsafeMutableBytes { o in
            let dst = o.baseAddress!
            let nb = count / type.blockSize
            for b in 0..<nb {
                let src = x + b * type.blockSize
                let blk = dst + b * type.blockBytes
                switch type {
                case .f32: blk.storeBytes(of: src[0], as: Float.self)
                case .f16: blk.storeBytes(of: floatToHalf(src[0]), as: UInt16.self)
                case .q8_0: q8_0(src, blk)
                case .q4_0: q4_0(src, blk)
                case .q4_1: q4_1(src, blk)
                case .q5_0: q5_0(src, blk)
                case .q4_K: q4_K(src, blk)
                case .q5_K: q4_K(src, blk, bits: 5)
                case .q6_K: q6_K(src, blk)
                default: preconditionFailure("no quantizer for \(type)")
                }
            }
        }
        return out
    }

    @inline(__always) static func putHalf(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: Float) {
        p.storeBytes(of: floatToHalf(v), toByteOffset: o, as: UInt16.self)
    }

    static func q8_0(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
        putHalf(p, 0, d)
        for j in 0..<32 { p.storeBytes(of: Int8((x[j] * id).rounded()), toByteOffset: 2 + j, as: Int8.self) }
    }

    static func q4_0(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
        var amax: Float = 0, mx: Float = 0
        for j in 0..<32 where abs(x[j]) > amax { amax = abs(x[j]); mx = x[j] }
        let d = mx / -8, id: Float = d != 0 ? 1 / d : 0
        putHalf(p, 0, d)
        for j in 0..<16 {
            let a = min(15, Int8(clamping: Int((x[j] * id + 8.5).rounded(.towardZero))))
            let b = min(15, Int8(clamping: Int((x[j + 16] * id + 8.5).rounded(.towardZero))))
            p.storeBytes(of: UInt8(a) | (UInt8(b) << 4), toByteOffset: 2 + j, as: UInt8.self)
        }
    }

    static func q4_1(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for j in 0..<32 { lo = min(lo, x[j]); hi = max(hi, x[j]) }
        let d = (hi - lo) / 15, id: Float = d != 0 ? 1 / d : 0
        putHalf(p, 0, d); putHalf(p, 2, lo)
        for j in 0..<16 {
            let a = min(15, Int8(clamping: Int(((x[j] - lo) * id + 0.5).rounded(.towardZero))))
            let b = min(15, Int8(clamping: Int(((x[j + 16] - lo) * id + 0.5).rounded(.towardZero))))
            p.storeBytes(of: UInt8(a) | (UInt8(b) << 4), toByteOffset: 4 + j, as: UInt8.self)
        }
    }

    static func q5_0(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
        var amax: Float = 0, mx: Float = 0
        for j in 0..<32 where abs(x[j]) > amax { amax = abs(x[j]); mx = x[j] }
        let d = mx / -16, id: Float = d != 0 ? 1 / d : 0
        putHalf(p, 0, d)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let a = UInt8(min(31, Int8(clamping: Int((x[j] * id + 16.5).rounded(.towardZero)))))
            let b = UInt8(min(31, Int8(clamping: Int((x[j + 16] * id + 16.5).rounded(.towardZero)))))
            p.storeBytes(of: (a & 0xF) | ((b & 0xF) << 4), toByteOffset: 6 + j, as: UInt8.self)
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
        }
        p.storeBytes(of: qh, toByteOffset: 2, as: UInt32.self)
    }

    /// Q4_K: eight sub-blocks of 32, each with a 6-bit scale and min under fp16 super-scales.
    /// Q4_K (bits 4) and Q5_K (bits 5): eight sub-blocks of 32 with 6-bit scales and mins;
    /// Q5_K keeps each value's fifth bit in qh (bit j of byte l: value l of sub-block j).
    static func q4_K(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer, bits: Int = 4) {
        let top = Float((1 << bits) - 1)
        var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
        for j in 0..<8 {
            var lo: Float = 0, hi = -Float.greatestFiniteMagnitude
            for l in 0..<32 { lo = min(lo, x[32 * j + l]); hi = max(hi, x[32 * j + l]) }
            scales[j] = max(0, (hi - lo) / top)
            mins[j] = -lo
        }
        let maxScale = scales.max()!, maxMin = mins.max()!
        let d = maxScale / 63, dmin = maxMin / 63
        var sc = [UInt8](repeating: 0, count: 8), mn = [UInt8](repeating: 0, count: 8)
        for j in 0..<8 {
            sc[j] = d > 0 ? UInt8(min(63, max(0, (scales[j] / d).rounded()))) : 0
            mn[j] = dmin > 0 ? UInt8(min(63, max(0, (mins[j] / dmin).rounded()))) : 0
        }
        putHalf(p, 0, d); putHalf(p, 2, dmin)
        let dq = halfToFloat(floatToHalf(d)), dmq = halfToFloat(floatToHalf(dmin))
        for j in 0..<4 {
            p.storeBytes(of: (sc[j] & 63) | ((sc[j + 4] >> 4) << 6), toByteOffset: 4 + j, as: UInt8.self)
            p.storeBytes(of: (mn[j] & 63) | ((mn[j + 4] >> 4) << 6), toByteOffset: 8 + j, as: UInt8.self)
            p.storeBytes(of: (sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4), toByteOffset: 12 + j, as: UInt8.self)
        }
        var q = [UInt8](repeating: 0, count: 256)
        for j in 0..<8 {
            let s = dq * Float(sc[j]), m = dmq * Float(mn[j])
            for l in 0..<32 {
                let v = s > 0 ? ((x[32 * j + l] + m) / s).rounded() : 0
                q[32 * j + l] = UInt8(min(top, max(0, v)))
            }
        }
        // Q4_K: qs at 16; Q5_K: qh (32 bytes) at 16, qs at 48.
        let qs = bits == 5 ? 48 : 16
        for c in 0..<4 {
            for l in 0..<32 {
                p.storeBytes(of: (q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4), toByteOffset: qs + 32 * c + l, as: UInt8.self)
            }
        }
        if bits == 5 {
            for l in 0..<32 {
                var h: UInt8 = 0
                for j in 0..<8 where q[32 * j + l] >= 16 { h |= 1 << UInt8(j) }
                p.storeBytes(of: h, toByteOffset: 16 + l, as: UInt8.self)
            }
        }
    }

    /// Q6_K: sixteen sub-blocks of 16 with 8-bit scales, 6-bit values in [-32, 31].
    static func q6_K(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer) {
        var sub = [Float](repeating: 0, count: 16)
        for g in 0..<16 {
            var amax: Float = 0, mx: Float = 0
            for l in 0..<16 where abs(x[16 * g + l]) > amax { amax = abs(x[16 * g + l]); mx = x[16 * g + l] }
            sub[g] = mx / -32
        }
        var amax: Float = 0
        for s in sub { amax = max(amax, abs(s)) }
        let d = amax / 127
        putHalf(p, 208, d)
        let dq = halfToFloat(floatToHalf(d))
        var q = [UInt8](repeating: 32, count: 256)
        for g in 0..<16 {
            let sc = d > 0 ? Int8(clamping: Int((sub[g] / d).rounded())) : 0
            p.storeBytes(of: sc, toByteOffset: 192 + g, as: Int8.self)
            let s = dq * Float(sc)
            for l in 0..<16 {
                let v = s != 0 ? (x[16 * g + l] / s).rounded() : 0
                q[16 * g + l] = UInt8(Int(min(31, max(-32, v))) + 32)
            }
        }
        for n in 0..<2 {
            for l in 0..<32 {
                let a = q[128 * n + l], b = q[128 * n + l + 32], c = q[128 * n + l + 64], e = q[128 * n + l + 96]
                p.storeBytes(of: (a & 0xF) | ((c & 0xF) << 4), toByteOffset: 64 * n + l, as: UInt8.self)
                p.storeBytes(of: (b & 0xF) | ((e & 0xF) << 4), toByteOffset: 64 * n + l + 32, as: UInt8.self)
                p.storeBytes(of: (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6), toByteOffset: 128 + 32 * n + l, as: UInt8.self)
            }
        }
    }
}
