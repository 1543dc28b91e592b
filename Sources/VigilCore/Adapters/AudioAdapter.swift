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
public final class AudioWindowAdapter: StreamAdapter {
    let shape: [Int]
    let window: Int
    let hop: Int
    let rate: Int
    let resample: Bool
    private var buffer: [Float] = []
    private var resampler: Resampler?
    private var lastEnd: Double?

    public init(shape: [Int], window: Int, hop: Int, rate: Int, resample: Bool) {
        precondition(window > 0 && hop > 0 && hop <= window)
        self.shape = shape; self.window = window; self.hop = hop; self.rate = rate; self.resample = resample
        buffer.reserveCapacity(window * 2)
    }

    public func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput] {
        guard case .audio(let inRate, let raw) = frame.frame else {
            throw FrameError(.wrongSize, "this pipeline feeds audio, got another kind of frame")
        }
        var samples = raw
        if inRate != rate {
            guard resample else {
                throw FrameError(.unsupported, "audio at \(inRate) Hz but the model takes \(rate) Hz; send \(rate) Hz or set \"resample\": true")
            }
            if resampler?.from != inRate { resampler = Resampler(from: inRate, to: rate) }
            samples = resampler!.process(raw)
        } else {
            resampler = nil
        }
        let seconds = Double(samples.count) / Double(rate)
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
        buffer.append(contentsOf: samples)
        var out: [ModelInput] = []
        var start = 0
        while start + window <= buffer.count {
            let lastIndex = start + window - 1
            let ts = end - Double(buffer.count - 1 - lastIndex) / Double(rate)
            out.append(ModelInput(values: Array(buffer[start..<start + window]), shape: shape, ts: ts))
            start += hop
        }
        if start > 0 { buffer.removeFirst(start) }
        return out
    }
}
