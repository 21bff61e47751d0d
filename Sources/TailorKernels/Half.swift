// IEEE half (binary16) and bfloat16 conversions.
// Converting one half at a time through Float16 is slow in hot loops; a 256 KiB table turns it
// into a single load.

/// Float values of every 16-bit half pattern.
public let halfToFloatTable: [Float] = (0...0xFFFF).map { Float(Float16(bitPattern: UInt16($0))) }

@inline(__always)
public func halfToFloat(_ bits: UInt16) -> Float {
    halfToFloatTable.withUnsafeBufferPointer { $0[Int(bits)] }
}

@inline(__always)
public func floatToHalf(_ x: Float) -> UInt16 { Float16(x).bitPattern }

@inline(__always)
public func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// Round-to-nearest-even, as PyTorch and ggml do; NaN stays NaN.
@inline(__always)
public func floatToBF16(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
    let rounded = u &+ (0x7FFF &+ ((u >> 16) & 1))
    return UInt16(truncatingIfNeeded: rounded >> 16)
}
