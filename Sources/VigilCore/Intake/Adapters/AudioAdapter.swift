import Foundation

/// Streaming sample-rate converter: a box (moving-average) low-pass when downsampling,
/// then linear interpolation. Keeps its position and history across chunks, so chunk
/// boundaries leave no seams. Good enough for classifiers that look at mel bands; not
/// a hi-fi converter.
struct Resampler {
    let from: Int
    let to: Int
    /// Input samples per output sample.
    let step: Double
    /// Box filter width (1 = off).
    let taps: Int
    private var history: [Float] = []
    private var sum: Float = 0
    /// Position of the next output sample, in input samples from the current chunk's start
    /// (-1 is the last sample of the previous chunk).
    private var t: Double = 0
    private var last: Float?

    init(from: Int, to: Int) {
        self.from = from; self.to = to
        step = Double(from) / Double(to)
        taps = max(1, Int(step.rounded(.down)))
    }

    mutating func process(_ input: [Float]) -> [Float] {
        var x = input
        if taps > 1 {
            // Running mean over the last `taps` samples; history spans chunks.
            for i in x.indices {
                let v = x[i]
                history.append(v)
                sum += v
                if history.count > taps { sum -= history.removeFirst() }
                x[i] = sum / Float(history.count)
            }
        }
        var out: [Float] = []
        out.reserveCapacity(Int(Double(x.count) / step) + 2)
        while true {
            let i = Int(t.rounded(.down))
            let frac = Float(t - Double(i))
            if i + 1 >= x.count { break }
            let a = i < 0 ? (last ?? x[0]) : x[i]
            out.append(a + (x[i + 1] - a) * frac)
            t += step
        }
        if !x.isEmpty {
            t -= Double(x.count)
            last = x[x.count - 1]
        }
        return out
    }
}

/// Audio stream state: cuts chunks of any length into model-sized windows that advance
/// by `hop` samples (window/2 by default), resampling a mismatched rate when allowed.
/// A window's timestamp is the time of its last sample. The stream keeps its own clock:
/// the first chunk's arrival time is the time of its last sample, and each contiguous
/// chunk advances the clock by its duration (so a burst of chunks delivered at once
/// still gets distinct, ordered times). A chunk that starts more than one window after
/// the clock is a gap: it starts a fresh buffer anchored on its arrival, so a window
/// never splices sound from two separate moments.
///
/// A chunk is windowed incrementally, at most `maxWindows` windows per call: a valid 3.9 MB
/// WAV at 1 kHz into an 8 kHz model is 15.6 M samples after resampling and ~39,000
/// windows, which, made at once, took 200 MB for one payload. The rest of the chunk waits
/// (at its own rate, not resampled) until `moreInputs()` asks for the next windows, so
/// memory is the payload's own samples plus one run's windows, whatever the payload.
public final class AudioWindowAdapter: StreamAdapter {
    let shape: [Int]
    let window: Int
    let hop: Int
    let rate: Int
    let resample: Bool
    /// Windows one call returns at most; Engine runs them before asking for more.
    let maxWindows: Int
    private var buffer: [Float] = []
    private var resampler: Resampler?
    private var lastEnd: Double?
    /// The current chunk's samples (at `pendingRate`) not yet fed to `buffer`, from `pendingAt`.
    private var pending: [Float] = []
    private var pendingAt = 0
    private var pendingRate = 1
    /// Time of the current chunk's last sample.
    private var pendingEnd = 0.0
    /// Input samples fed to the buffer at a time (bounds the resampled slice).
    static let feedSamples = 8192

    public init(shape: [Int], window: Int, hop: Int, rate: Int, resample: Bool, maxWindows: Int = 256) {
        precondition(window > 0 && hop > 0 && hop <= window && maxWindows > 0)
        self.shape = shape; self.window = window; self.hop = hop; self.rate = rate; self.resample = resample
        self.maxWindows = maxWindows
        buffer.reserveCapacity(window * 2)
    }

    public func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput] {
        guard case .audio(let inRate, let raw) = frame.frame else {
            throw FrameError(.wrongSize, "this pipeline feeds audio, got another kind of frame")
        }
        if inRate != rate {
            guard resample else {
                throw FrameError(.unsupported, "audio at \(inRate) Hz but the model takes \(rate) Hz; send \(rate) Hz or set \"resample\": true")
            }
            if resampler?.from != inRate { resampler = Resampler(from: inRate, to: rate) }
        } else {
            resampler = nil
        }
        // A chunk that arrives while the last one still has windows to give (the engine
        // always drains first, so only a caller that does not) takes its place: its samples follow.
        let rest = pendingAt < pending.count ? Array(pending[pendingAt...]) : []
        let seconds = Double(raw.count) / Double(inRate)
        let end: Double
        if let lastEnd, frame.ts - seconds - lastEnd <= Double(window) / Double(rate) {
            // Contiguous: the stream's own clock advances by the chunk's duration, so
            // timestamps stay monotonic even when chunks arrive in a burst.
            end = lastEnd + seconds
        } else {
            // First chunk, or after a gap: anchor on the arrival time.
            if lastEnd != nil { buffer.removeAll(keepingCapacity: true) }
            end = frame.ts
        }
        lastEnd = end
        pending = rest.isEmpty ? raw : rest + raw
        pendingAt = 0
        pendingRate = inRate
        pendingEnd = end
        return moreInputs()
    }

    /// The next windows of the current chunk (at most `maxWindows`); none once it is used up.
    public func moreInputs() -> [ModelInput] {
        var out: [ModelInput] = []
        var start = 0
        while out.count < maxWindows {
            if start + window <= buffer.count {
                // The buffer's last sample is the last one fed: the chunk's end, less what is still pending.
                let bufferEnd = pendingEnd - Double(pending.count - pendingAt) / Double(pendingRate)
                let lastIndex = start + window - 1
                let ts = bufferEnd - Double(buffer.count - 1 - lastIndex) / Double(rate)
                out.append(ModelInput(values: Array(buffer[start..<start + window]), shape: shape, ts: ts))
                start += hop
                continue
            }
            guard pendingAt < pending.count else { break }
            if start > 0 { buffer.removeFirst(start); start = 0 }
            let slice = pending[pendingAt..<min(pending.count, pendingAt + AudioWindowAdapter.feedSamples)]
            pendingAt += slice.count
            if resampler != nil { buffer += resampler!.process(Array(slice)) } else { buffer += slice }
        }
        if start > 0 { buffer.removeFirst(start) }
        if pendingAt >= pending.count && !pending.isEmpty { pending = []; pendingAt = 0 }   // free the chunk now
        return out
    }

    public var hasMoreInputs: Bool { pendingAt < pending.count || buffer.count >= window }
}
