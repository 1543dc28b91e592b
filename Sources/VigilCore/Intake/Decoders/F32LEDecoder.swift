import Foundation

/// `f32le`: raw little-endian float32 values.
public struct F32LEDecoder: PayloadDecoder {
    /// Values one payload must hold, when known.
    public let expectedCount: Int?
    public init(expectedCount: Int?) { self.expectedCount = expectedCount }

    public func decode(_ payload: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame {
        guard payload.count % 4 == 0, !payload.isEmpty else {
            throw FrameError(.wrongSize, "f32le payload of \(payload.count) bytes is not a whole number of float32 values")
        }
        let n = payload.count / 4
        if let e = expectedCount, n != e {
            throw FrameError(.wrongSize, "f32le payload holds \(n) values, expected \(e)")
        }
        var values = [Float](repeating: 0, count: n)
        values.withUnsafeMutableBytes { dst in
            payload.withUnsafeBytes { src in dst.copyMemory(from: src) }
        }
        #if _endian(big)
        values = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
        #endif
        guard allFinite(values) else { throw FrameError(.nonFinite, "f32le payload holds NaN or Inf") }
        return TimedFrame(frame: .vector(values), ts: receivedAt)
    }
}
