// Row dequantization for the hot path. The common formats get straight-line loops the compiler
// vectorizes; the rest go through the scalar reference. Tested against QuantReference.

public enum FastDequant {
    public static func row(_ type: GGMLType, _ src: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let nb = count / type.blockSize
        switch type {
        case .f32:
            y.update(from: src.assumingMemoryBound(to: Float.self), count: count)
        case .f16:
            halfToFloatTable.withUnsafeBufferPointer { t in
                for i in 0..<count { y[i] = t[Int(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))] }
            }
        case .q8_0:
            halfToFloatTable.withUnsafeBufferPointer { t in
                for b in 0..<nb {
                    let p = src + b * 34
                    let d = t[Int(p.loadUnaligned(as: UInt16.self))]
                    let q = (p + 2).assumingMemoryBound(to: Int8.self)
                    let o = y + b * 32
                    for j in 0..<32 { o[j] = Float(q[j]) * d }
                }
            }
        case .q4_0:
            halfToFloatTable.withUnsafeBufferPointer { t in
                for b in 0..<nb {
                    let p = src + b * 18
                    let d = t[Int(p.loadUnaligned(as: UInt16.self))]
                    let q = (p + 2).assumingMemoryBound(to: UInt8.self)
                    let o = y + b * 32
                    for j in 0..<16 {
                        o[j] = Float(Int32(q[j] & 0xF) - 8) * d
                        o[j + 16] = Float(Int32(q[j] >> 4) - 8) * d
                    }
                }
            }
        case .q4_1:
            halfToFloatTable.withUnsafeBufferPointer { t in
                for b in 0..<nb {
                    let p = src + b * 20
                    let d = t[Int(p.loadUnaligned(as: UInt16.self))]
                    let m = t[Int(p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))]
                    let q = (p + 4).assumingMemoryBound(to: UInt8.self)
                    let o = y + b * 32
                    for j in 0..<16 {
                        o[j] = Float(q[j] & 0xF) * d + m
                        o[j + 16] = Float(q[j] >> 4) * d + m
                    }
                }
            }
        default:
            QuantReference.dequantize(type, src, y, count: count)
        }
    }
}
