import Foundation

/// What a camera model can ask for, per input channel, in its `vigil.channels` metadata
/// (Models/README.md). Every plane is H x W at the model's frame size.
public enum CameraChannel: String, Sendable, CaseIterable {
    /// The device's previous frame, grey / 255.
    case previous
    /// This frame, grey / 255.
    case current
    /// The device's background: a running average of its frames (`motion.background_s`),
    /// rescaled to the latest frame's light level when the model says `lighting`, reset to
    /// that frame when it says so twice in a row (`CameraState.observe`).
    case background
    /// Per pixel, a running average (`motion.activity_s`) of how far the frame strays from
    /// the background once its mean brightness is matched: high where things keep moving.
    case activity
    /// 0 in masked pixels; elsewhere the model's `vigil.min_area` / the pipeline's
    /// `min_area` (1 when the pipeline does not set one).
    case weight

    /// What a model without `vigil.channels` gets, by its channel count.
    static func defaults(_ count: Int) -> [CameraChannel]? {
        switch count {
        case 1: [.current]
        case 2: [.previous, .current]
        case 3: [.current, .current, .current]    // grey as RGB
        default: nil
        }
    }

    /// Channels that need the device's history: the first frame of a device makes no input.
    var needsHistory: Bool { self == .previous || self == .background || self == .activity }
}

/// One device's camera history at the model's frame size: the last frame, the background
/// and the activity map. Time constants are in seconds of frame time, so a camera sending
/// 3 or 25 frames a second keeps the same memory.
struct CameraState {
    private(set) var last: [Float]
    private(set) var background: [Float]
    private(set) var activity: [Float]
    private(set) var ts: Double
    let width: Int, height: Int

    init(first: [Float], ts: Double, width: Int, height: Int) {
        last = first; background = first; activity = [Float](repeating: 0, count: first.count)
        self.ts = ts; self.width = width; self.height = height
    }

    /// A saved state (CameraStateFile).
    init(last: [Float], background: [Float], activity: [Float], ts: Double, width: Int, height: Int) {
        self.last = last; self.background = background; self.activity = activity
        self.ts = ts; self.width = width; self.height = height
    }

    /// Work planes for `update` (the brightness-matched difference and its 3x3 row sums),
    /// kept between frames so that a frame allocates nothing. Not part of the state: not saved.
    private var difference: [Float] = []
    private var rowSums: [Float] = []

    /// Folds `current` (taken at `ts`) into the state. dt is clamped at 0 (a clock that
    /// steps back freezes the averages rather than reversing them) and at the time
    /// constant (a camera back after an hour replaces, not extrapolates).
    /// `current` becomes `last`, and the old `last` plane comes back in `current` for the
    /// caller to overwrite with the next frame (no plane is allocated per frame).
    mutating func update(with current: inout [Float], ts newTs: Double, backgroundSeconds: Double, activitySeconds: Double,
                         averages: Bool = true) {
        defer { swap(&last, &current); ts = newTs }
        // A pair model only needs the last frame: skip the averages' per-pixel work.
        guard averages else { return }
        let dt = max(0, newTs - ts)
        let a = Float(1 - exp(-min(dt, backgroundSeconds) / backgroundSeconds))
        let ad = Float(1 - exp(-min(dt, activitySeconds) / activitySeconds))
        let n = current.count, w = width, h = height
        guard n > 0 else { return }
        if difference.count != n {
            difference = [Float](repeating: 0, count: n)
            rowSums = [Float](repeating: 0, count: n)
        }
        // Unsafe buffers: the planes are all n long, and per-pixel bounds checks (and
        // Array's uniqueness checks on each write) cost more than the arithmetic.
        current.withUnsafeBufferPointer { cur in
            background.withUnsafeMutableBufferPointer { bg in
                activity.withUnsafeMutableBufferPointer { act in
                    difference.withUnsafeMutableBufferPointer { diff in
                        rowSums.withUnsafeMutableBufferPointer { rows in
                            // Match the frame's mean brightness to the background's first, so that a
                            // light switched on does not make every pixel look active. The sums run
                            // in pixel order: float addition is not associative.
                            var sb: Float = 0, sc: Float = 0
                            for i in 0..<n { sb += bg[i]; sc += cur[i] }
                            let g = sb / max(sc, 1e-3 * Float(n))
                            for i in 0..<n { diff[i] = cur[i] * g - bg[i] }
                            CameraState.box3RowSums(UnsafeBufferPointer(diff), into: rows, width: w, height: h)
                            // The blur's vertical pass, fused with the averages it feeds (the
                            // difference plane has been read in full by now).
                            for y in 0..<h {
                                let sums = CameraState.box3Rows(UnsafeBufferPointer(rows), y, width: w, height: h)
                                let actRow = act.baseAddress! + y * w, bgRow = bg.baseAddress! + y * w
                                let curRow = cur.baseAddress! + y * w
                                for i in 0..<w {
                                    let dev = CameraState.box3Mean(sums, i)
                                    actRow[i] += ad * (abs(dev) - actRow[i])
                                    bgRow[i] += a * (curRow[i] - bgRow[i])
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether the model said `lighting` on the last frame.
    private(set) var lit = false

    /// The model's verdict on the last frame. `lighting` re-bases the background: rescaled
    /// to the frame's light level when that explains the frame (`rescaleFit`; a light switched: what it
    /// learnt stays, so a person in view is not copied into it and left behind as a ghost;
    /// with a copy, 28 % of the simulator's empty-room frames after such switches said
    /// motion); replaced by the frame when it does not (day/night, blown-out highlights)
    /// or when `lighting` comes twice in a row. The activity map is brightness-matched and
    /// stays. Models/training/motion_stream.py does the same.
    mutating func observe(lighting: Bool) {
        defer { lit = lighting }
        guard lighting else { return }
        var sb: Float = 0, sl: Float = 0
        for i in last.indices { sb += background[i]; sl += last[i] }
        let g = sl / max(sb, 1e-3 * Float(last.count))
        let scaled = background.map { min(1, max(0, $0 * g)) }
        let residual = CameraState.box3(zip(last, scaled).map { $0 - $1 }, width: width, height: height).map(abs).sorted()
        let p90 = residual[residual.count * 9 / 10]
        background = p90 < CameraState.rescaleFit && !lit ? scaled : last
    }

    /// 90 % of the pixels (after a 3x3 box blur) within this of the rescaled background:
    /// the frame is the old scene in another light (a person in view covers less). Fixed,
    /// not tuned: 1.4x the 90th percentile of 10/255 sensor noise after the blur (0.021).
    static let rescaleFit: Float = 0.03

    /// 3x3 box mean with edge pixels repeated (sensor noise averages out before the
    /// deviation is taken).
    static func box3(_ x: [Float], width w: Int, height h: Int) -> [Float] {
        guard !x.isEmpty else { return x }
        var rows = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { x in rows.withUnsafeMutableBufferPointer { box3RowSums(x, into: $0, width: w, height: h) } }
        var out = [Float](repeating: 0, count: x.count)
        rows.withUnsafeBufferPointer { rows in
            out.withUnsafeMutableBufferPointer { out in
                for y in 0..<h {
                    let sums = box3Rows(rows, y, width: w, height: h), outRow = out.baseAddress! + y * w
                    for i in 0..<w { outRow[i] = box3Mean(sums, i) }
                }
            }
        }
        return out
    }

    // The blur in three pieces that `box3` and `update` share, so that both give the same
    // bits: sums across each row, the rows above and below (repeated at the edges), and the
    // mean of three row sums. Sums run left to right, as in x[i - 1] + x[i] + x[i + 1].
    // Rows are pointers, not offsets: an offset's overflow check in an inner loop keeps the
    // compiler from vectorising it.

    /// Each pixel's sum with its left and right neighbours, edge pixels repeated.
    static func box3RowSums(_ x: UnsafeBufferPointer<Float>, into rows: UnsafeMutableBufferPointer<Float>,
                            width w: Int, height h: Int) {
        guard w > 0 else { return }
        for y in 0..<h {
            let row = x.baseAddress! + y * w, out = rows.baseAddress! + y * w
            guard w > 1 else { out[0] = row[0] + row[0] + row[0]; continue }
            out[0] = row[0] + row[0] + row[1]
            // Edges apart, so that the inner loop has no clamping.
            let left = row, centre = row + 1, right = row + 2, inner = out + 1
            for i in 0..<(w - 2) { inner[i] = left[i] + centre[i] + right[i] }
            out[w - 1] = row[w - 2] + row[w - 1] + row[w - 1]
        }
    }

    /// Row y of the row sums and the rows above and below it, edge rows repeated.
    @inline(__always)
    static func box3Rows(_ rows: UnsafeBufferPointer<Float>, _ y: Int, width w: Int, height h: Int)
        -> (above: UnsafePointer<Float>, here: UnsafePointer<Float>, below: UnsafePointer<Float>) {
        let base = rows.baseAddress!
        return (base + max(y - 1, 0) * w, base + y * w, base + min(y + 1, h - 1) * w)
    }

    @inline(__always)
    static func box3Mean(_ r: (above: UnsafePointer<Float>, here: UnsafePointer<Float>, below: UnsafePointer<Float>),
                         _ i: Int) -> Float {
        (r.above[i] + r.here[i] + r.below[i]) / 9
    }
}

/// The weight plane for one source-frame size: 0 where a model pixel's centre falls in a
/// mask, `value` elsewhere.
struct WeightPlane {
    static func make(masks: [MotionMask], value: Float, source: (width: Int, height: Int),
                     width: Int, height: Int) -> [Float] {
        var out = [Float](repeating: value, count: width * height)
        guard !masks.isEmpty else { return out }
        let sx = Double(source.width) / Double(width), sy = Double(source.height) / Double(height)
        for y in 0..<height {
            let cy = (Double(y) + 0.5) * sy
            for x in 0..<width where masks.contains(where: { $0.contains((Double(x) + 0.5) * sx, cy) }) {
                out[y * width + x] = 0
            }
        }
        return out
    }
}
