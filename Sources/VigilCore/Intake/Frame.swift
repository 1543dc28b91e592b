import Foundation

/// A decoded sensor payload, before it is adapted to a model's input.
public enum Frame: Sendable {
    /// A raw float vector (`f32le`).
    case vector([Float])
    /// One value per configured field, nil where the payload lacked it (`json`).
    case readings([Float?])
    /// An 8-bit grey image, row-major, 0 = black, 255 = white (`pgm`, `gray8`).
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
    /// Epoch seconds: the payload's own `ts` when it has one, else the arrival time
    /// (for audio: the time of the chunk's last sample).
    public var ts: Double
    /// When the payload arrived (epoch seconds, the gateway's clock). Equal to `ts` when the
    /// payload has no time of its own.
    public var receivedAt: Double
    public init(frame: Frame, ts: Double, receivedAt: Double? = nil) {
        self.frame = frame; self.ts = ts; self.receivedAt = receivedAt ?? ts
    }
    /// Whether `ts` came from the payload (a sensor's clock) rather than from the arrival time.
    public var hasOwnTime: Bool { ts != receivedAt }
}

/// Turns one payload into a frame.
///
/// Contract: stateless and thread-safe; never allocates more than the payload's size
/// justifies (sizes declared in headers are checked against the bytes present, and
/// against caps, before anything is allocated); bad input throws a `FrameError` whose
/// message says what was wrong. Never traps on any byte sequence.
public protocol PayloadDecoder: Sendable {
    func decode(_ payload: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame
}

/// One input ready for the model.
public struct ModelInput: Sendable {
    public var values: [Float]
    public var shape: [Int]
    /// The time the detection describes (for an audio window: the time of its last sample).
    public var ts: Double
    /// Where it came from, for its detection's uuid (`RowID.derived`): set by the engine
    /// from the frame and the window's place in it; 0 gives a random uuid.
    public var identity: UInt64 = 0
    /// The device's baseline rows for a stateful model (`vigil.state`), shape `stateShape`
    /// ([1, rows, fields]); empty for every other model.
    public var state: [Float]
    public var stateShape: [Int]
    public init(values: [Float], shape: [Int], ts: Double, state: [Float] = [], stateShape: [Int] = []) {
        self.values = values; self.shape = shape; self.ts = ts; self.state = state; self.stateShape = stateShape
    }
}

/// Per pipeline and device: turns frames into model inputs, keeping whatever history the
/// model needs (previous frame, audio ring, sensor window).
///
/// Contract: one instance per (pipeline, device), created on the device's first frame and
/// dropped after `limits.device_ttl_s` of silence; confined to the device's worker lane,
/// so implementations need no locks. A thrown error rejects that frame only; the state
/// stays usable for the next frame.
public protocol StreamAdapter: AnyObject {
    /// Zero or more inputs for this frame (an audio chunk may fill several windows or none;
    /// a camera's first frame has no predecessor yet).
    func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput]
    /// True when the last frame has inputs left that `inputs(for:)` did not return: an
    /// adapter may hand out a long frame's inputs in bounded runs (audio windows), and the
    /// engine runs each before asking for the next, so one payload's inputs never all sit
    /// in memory at once. Asked after `inputs(for:)` and after each `moreInputs()`.
    var hasMoreInputs: Bool { get }
    /// The next run of the last frame's inputs.
    func moreInputs() -> [ModelInput]

    /// Called with each detection made from this adapter's inputs, in order, before it is
    /// stored or judged by the rules (possibly a few frames later: the lane turns queued
    /// frames into inputs before it runs them, unless `verdictShapesNextInput`): an adapter
    /// that keeps per-device state about scores learns from it (the anomaly baseline's
    /// false-alarm budget, which may set the device's alert threshold; a camera background
    /// re-based when the model says `lighting`). Default: nothing.
    func observe(_ detection: inout Detection)

    /// True when `observe` changes what the next frame's inputs are (a camera's `moving`
    /// channel, its background re-based on `lighting`): the lane then runs a device's queued
    /// frames one at a time, each verdict observed before the next frame is read, so the
    /// verdicts do not depend on how far behind the lane is. Default: false (batched).
    var verdictShapesNextInput: Bool { get }

    /// Called once when the adapter is dropped (device TTL, engine stop or reload), on its
    /// lane: state that outlives it (the anomaly baseline) is handed over now. Default: nothing.
    func retire()
}

extension StreamAdapter {
    public var hasMoreInputs: Bool { false }
    public func moreInputs() -> [ModelInput] { [] }
    public func observe(_ detection: inout Detection) {}
    public var verdictShapesNextInput: Bool { false }
    public func retire() {}
}

@inline(__always)
func allFinite(_ v: [Float]) -> Bool {
    // A sum would overflow to Inf on large finite values, so test elements directly.
    var ok = true
    for x in v where !x.isFinite { ok = false; break }
    return ok
}
