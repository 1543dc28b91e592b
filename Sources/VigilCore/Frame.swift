import Foundation

/// A decoded sensor payload, before it is adapted to a model's input.
public enum Frame: Sendable {
    /// A raw float vector (`f32le`).
    case vector([Float])
    /// One value per configured field, nil where the payload lacked it (`json`).
    case readings([Float?])
    /// An 8-bit grey image, row-major (`pgm`, `gray8`).
    case image(width: Int, height: Int, pixels: [UInt8])
    /// Mono audio samples in [-1, 1] (`wav`, `pcm_s16le`).
    case audio(sampleRate: Int, samples: [Float])
}

/// Why a payload or frame was rejected, with a message that names what was wrong.
public struct FrameError: Error, CustomStringConvertible, Sendable {
    public let reason: RejectReason
    public let message: String
    public init(_ reason: RejectReason, _ message: String) { self.reason = reason; self.message = message }
    public var description: String { message }
}

/// A frame with the time it describes.
public struct TimedFrame: Sendable {
    public var frame: Frame
    /// Epoch seconds: the payload's own `ts` when it has one, else the arrival time.
    public var ts: Double
}

/// Turns one payload into a frame. Decoders are stateless and never allocate more than
/// the payload's size justifies.
public protocol PayloadDecoder: Sendable {
    func decode(_ payload: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame
}

/// One input ready for the model.
public struct ModelInput: Sendable {
    public var values: [Float]
    public var shape: [Int]
    public var ts: Double
}

/// Per pipeline and device: turns frames into model inputs, keeping whatever history the
/// model needs (previous frame, audio ring, sensor window). Confined to the device's
/// worker lane, so implementations need no locks.
public protocol StreamAdapter: AnyObject {
    /// Zero or more inputs for this frame (an audio chunk may fill several windows or none).
    func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput]
}

@inline(__always)
func allFinite(_ v: [Float]) -> Bool {
    // A sum is NaN/Inf exactly when some element is non-finite... except for overflow,
    // so test elements directly; this loop vectorises.
    var ok = true
    for x in v where !x.isFinite { ok = false; break }
    return ok
}

/// `json`: an object; `fields` are dotted paths; optional `ts` in epoch seconds
/// (milliseconds are recognised by size).
public struct JSONFieldsDecoder: PayloadDecoder {
    public let fields: [String]
    public init(fields: [String]) { self.fields = fields }

    public func decode(_ payload: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame {
        let value: JSONValue
        do {
            value = try JSONParser.parse(payload)
        } catch {
            throw FrameError(.malformed, "invalid JSON: \(error)")
        }
        guard case .object = value else { throw FrameError(.malformed, "expected a JSON object") }
        var readings: [Float?] = []
        readings.reserveCapacity(fields.count)
        var present = 0
        for f in fields {
            guard let v = value.value(atPath: f), v != .null else { readings.append(nil); continue }
            guard let d = v.double else { throw FrameError(.malformed, "field \(f) is not a number") }
            guard d.isFinite, Float(d).isFinite else { throw FrameError(.nonFinite, "field \(f) is not finite") }
            readings.append(Float(d))
            present += 1
        }
        guard present > 0 else {
            throw FrameError(.malformed, "none of the fields \(fields.joined(separator: ", ")) is present")
        }
        var ts = receivedAt
        if let t = value["ts"]?.double, t.isFinite, t > 0 {
            ts = t > 1e11 ? t / 1000 : t
        }
        return TimedFrame(frame: .readings(readings), ts: ts)
    }
}

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

/// Feeds a frame's values to a model whose input holds exactly that many values:
/// `f32le` vectors and `json` readings with every field present.
public final class DirectAdapter: StreamAdapter {
    let shape: [Int]
    let count: Int

    public init(shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
    }

    public func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput] {
        let values: [Float]
        switch frame.frame {
        case .vector(let v):
            values = v
        case .readings(let r):
            var out: [Float] = []
            out.reserveCapacity(r.count)
            for (i, x) in r.enumerated() {
                guard let x else { throw FrameError(.wrongSize, "field #\(i + 1) is missing and the model needs every field") }
                out.append(x)
            }
            values = out
        default:
            throw FrameError(.wrongSize, "this pipeline feeds vectors, got another kind of frame")
        }
        guard values.count == count else {
            throw FrameError(.wrongSize, "frame holds \(values.count) values, the model takes \(count)")
        }
        return [ModelInput(values: values, shape: shape, ts: frame.ts)]
    }
}
