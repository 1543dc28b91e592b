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
    /// 1 in every pixel when the model said `motion` on the device's last frame, else 0:
    /// what lets a model hold on to an object already in view (motion v2.5: a car that has
    /// come close to the camera changes as much of the frame as a light does).
    case moving
    /// Per pixel, the share of time (a running average over `motion.activity_s`) the frame
    /// differs from the device's frame of 0.4 s before (3x3-blurred, brightness-matched, by 0.03
    /// or more; `CameraState.restlessLagSeconds`), whatever the frame rate: high where things
    /// never stop moving (foliage in wind, water), low where a person stands or passes now and
    /// then (motion v2.8).
    case restless

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
    var needsHistory: Bool { self == .previous || self == .background || self == .activity || self == .moving || self == .restless }
}

/// One device's camera history at the model's frame size: the last frame, the background
/// and the activity map, and what heals the background's ghosts (`healGhosts`). Time
/// constants are in seconds of frame time, so a camera sending 3 or 25 frames a second
/// keeps the same memory.
struct CameraState {
    private(set) var last: [Float]
    private(set) var background: [Float]
    private(set) var activity: [Float]
    /// The scene as it was before anything stood in it (`healGhosts`), in its own light level.
    private(set) var clean: [Float]
    /// Per pixel, seconds the frame has agreed with the background without a break.
    private(set) var settled: [Float]
    /// Per pixel, seconds the frame has matched `clean` but not the background without a break.
    private(set) var ghost: [Float]
    /// Per pixel, the share of time the frame has differed from `snapshot` (the `restless` channel).
    private(set) var restless: [Float]
    /// A frame at least `restlessLagSeconds` old, renewed every `restlessLagSeconds`, and when.
    private(set) var snapshot: [Float]
    private(set) var snapshotTs: Double
    /// Where the state's view sits in the camera's frames, px at the model's size (ViewAligner:
    /// a creeping camera's frames are moved back onto the view the planes were learnt on).
    var viewOffset: (y: Double, x: Double) = (0, 0)
    private(set) var ts: Double
    let width: Int, height: Int

    init(first: [Float], ts: Double, width: Int, height: Int) {
        let zeros = [Float](repeating: 0, count: first.count)
        last = first; background = first; activity = zeros
        clean = first; settled = zeros; ghost = zeros
        restless = zeros; snapshot = first; snapshotTs = ts
        self.ts = ts; self.width = width; self.height = height
    }

    /// A saved state (CameraStateFile). Timers are not saved; a file from before ghosts were
    /// healed has no clean background either: the background stands in for it; one from
    /// before v2.8 has no restless map (it starts at 0) and no snapshot (the last frame).
    init(last: [Float], background: [Float], activity: [Float], clean: [Float]? = nil,
         restless: [Float]? = nil, snapshot: [Float]? = nil, viewOffset: (y: Double, x: Double) = (0, 0),
         ts: Double, width: Int, height: Int) {
        let zeros = [Float](repeating: 0, count: last.count)
        self.viewOffset = viewOffset
        self.last = last; self.background = background; self.activity = activity
        self.clean = clean ?? background; settled = zeros; ghost = zeros
        self.restless = restless ?? zeros; self.snapshot = snapshot ?? last; snapshotTs = ts
        self.ts = ts; self.width = width; self.height = height
    }

    /// Work planes for `update` (the brightness-matched difference and its 3x3 row sums),
    /// kept between frames so that a frame allocates nothing. Not part of the state: not saved.
    private var difference: [Float] = []
    private var rowSums: [Float] = []
    private var cleanDifference: [Float] = []

    /// Folds `current` (taken at `ts`) into the state. dt is clamped at 0 (a clock that
    /// steps back freezes the averages rather than reversing them) and at the time
    /// constant (a camera back after an hour replaces, not extrapolates).
    /// `current` becomes `last`, and the old `last` plane comes back in `current` for the
    /// caller to overwrite with the next frame (no plane is allocated per frame).
    /// `hold`: where the frame differs from the background (by `ghostFit`), the background
    /// learns `hold` times slower, so a person standing still sinks into it over `hold` x
    /// `backgroundSeconds` rather than `backgroundSeconds` (MotionSettings.backgroundHold).
    /// `restless`: keep the restless map too (only a model that asks for it pays for it).
    /// `ghostSeconds`: how long a pixel must match `clean` and not the background before the
    /// background is reset there (MotionSettings.ghostSeconds).
    mutating func update(with current: inout [Float], ts newTs: Double, backgroundSeconds: Double, activitySeconds: Double,
                         hold: Double, ghostSeconds: Double = MotionSettings.defaultGhostSeconds, averages: Bool = true,
                         restless keepRestless: Bool = true) {
        defer { swap(&last, &current); ts = newTs }
        // A pair model only needs the last frame: skip the averages' per-pixel work.
        guard averages else { return }
        let dt = max(0, newTs - ts)
        let a = Float(1 - exp(-min(dt, backgroundSeconds) / backgroundSeconds))
        let aHeld = Float(1 - exp(-min(dt, backgroundSeconds) / (hold * backgroundSeconds)))
        let fit = CameraState.ghostFit
        let ad = Float(1 - exp(-min(dt, activitySeconds) / activitySeconds))
        let n = current.count, w = width, h = height
        guard n > 0 else { return }
        if difference.count != n {
            difference = [Float](repeating: 0, count: n)
            rowSums = [Float](repeating: 0, count: n)
            cleanDifference = [Float](repeating: 0, count: n)
        }
        // Unsafe buffers: the planes are all n long, and per-pixel bounds checks (and
        // Array's uniqueness checks on each write) cost more than the arithmetic.
        current.withUnsafeBufferPointer { cur in
            background.withUnsafeMutableBufferPointer { bg in
                activity.withUnsafeMutableBufferPointer { act in
                    difference.withUnsafeMutableBufferPointer { diff in
                        rowSums.withUnsafeMutableBufferPointer { rows in
                            // Matched to the background's mean brightness first, so that a light
                            // switched on does not make every pixel look active.
                            CameraState.matchedDifference(cur, UnsafeBufferPointer(bg), into: diff, rows: rows, width: w, height: h)
                            // The blur's vertical pass, fused with the averages it feeds (the
                            // difference plane has been read in full by now, so it takes
                            // each pixel's deviation for `healGhosts`).
                            for y in 0..<h {
                                let sums = CameraState.box3Rows(UnsafeBufferPointer(rows), y, width: w, height: h)
                                let actRow = act.baseAddress! + y * w, bgRow = bg.baseAddress! + y * w
                                let curRow = cur.baseAddress! + y * w, devRow = diff.baseAddress! + y * w
                                for i in 0..<w {
                                    let dev = abs(CameraState.box3Mean(sums, i))
                                    devRow[i] = dev
                                    actRow[i] += ad * (dev - actRow[i])
                                    bgRow[i] += (dev < fit ? a : aHeld) * (curRow[i] - bgRow[i])
                                }
                            }
                        }
                    }
                }
            }
        }
        healGhosts(current, dt: dt, backgroundSeconds: backgroundSeconds, ghostSeconds: ghostSeconds)
        if keepRestless { updateRestless(current, ts: newTs, rate: ad) }
    }

    /// `current` x g - `reference` into `diff`, g matching the frame's mean brightness to the
    /// reference's, and its 3x3 row sums into `rows` (for `box3Rows` / `box3Mean`). The sums run
    /// in pixel order: float addition is not associative, and the numpy mirror sums the same way.
    static func matchedDifference(_ current: UnsafeBufferPointer<Float>, _ reference: UnsafeBufferPointer<Float>,
                                  into diff: UnsafeMutableBufferPointer<Float>, rows: UnsafeMutableBufferPointer<Float>,
                                  width w: Int, height h: Int) {
        let n = current.count
        var sr: Float = 0, sc: Float = 0
        for i in 0..<n { sr += reference[i]; sc += current[i] }
        let g = sr / max(sc, 1e-3 * Float(n))
        for i in 0..<n { diff[i] = current[i] * g - reference[i] }
        box3RowSums(UnsafeBufferPointer(diff), into: rows, width: w, height: h)
    }

    /// How old the frame the restless map compares with is (and how often it is renewed).
    /// Fixed before any run: foliage swaying at about 1 Hz has moved in 0.4 s at 3 or 25 fps.
    static let restlessLagSeconds = 0.4

    /// The `restless` map: whether each pixel differs from `snapshot` (brightness-matched,
    /// 3x3-blurred, by `ghostFit`), averaged at `rate`; then the snapshot is renewed once it is
    /// `restlessLagSeconds` old. Models/training/motion_stream.py does the same.
    private mutating func updateRestless(_ current: [Float], ts newTs: Double, rate: Float) {
        let n = current.count, w = width, h = height, fit = CameraState.ghostFit
        let renew = newTs - snapshotTs >= CameraState.restlessLagSeconds
        current.withUnsafeBufferPointer { cur in
            snapshot.withUnsafeMutableBufferPointer { snap in
                restless.withUnsafeMutableBufferPointer { rest in
                    difference.withUnsafeMutableBufferPointer { diff in
                        rowSums.withUnsafeMutableBufferPointer { rows in
                            CameraState.matchedDifference(cur, UnsafeBufferPointer(snap), into: diff, rows: rows, width: w, height: h)
                            for y in 0..<h {
                                let sums = CameraState.box3Rows(UnsafeBufferPointer(rows), y, width: w, height: h)
                                let row = rest.baseAddress! + y * w
                                for x in 0..<w {
                                    let changed: Float = abs(CameraState.box3Mean(sums, x)) >= fit ? 1 : 0
                                    row[x] += rate * (changed - row[x])
                                }
                            }
                            if renew {
                                for i in 0..<n { snap[i] = cur[i] }
                            }
                        }
                    }
                }
            }
        }
        if renew { snapshotTs = newTs }
    }

    /// Ghosts: the background is a running average, so an object that stands still for a
    /// while (a person at a table, a car waiting) is partly absorbed; when it leaves, the spot
    /// differs from the background until the average forgets it, and v2.1 said motion for
    /// 20-60 s after a person or a car had gone (Models/motion.md). `clean` keeps the scene as
    /// it was before: it follows the background slowly (`cleanFactor` x background_s) where
    /// the frame agrees with the background and the background with it, and takes in a
    /// change (a parked car) only once the frame has agreed with the background that long
    /// without a break. Where the frame has matched `clean` but not the background for
    /// `ghostSeconds` without a break, the background is reset to `clean` there: the object
    /// has gone. Comparisons with `clean` are matched to its own mean brightness, so a light
    /// change needs nothing done to it. `difference` holds each pixel's deviation from the
    /// background (before this frame's update). Models/training/motion_stream.py does the same.
    private mutating func healGhosts(_ current: [Float], dt: Double, backgroundSeconds: Double, ghostSeconds: Double) {
        let n = current.count, w = width, h = height
        let ks = CameraState.cleanFactor * backgroundSeconds
        let ak = Float(1 - exp(-min(dt, ks) / ks))
        let fit = CameraState.ghostFit, step = Float(dt), ghostSeconds = Float(ghostSeconds), accept = Float(ks)
        current.withUnsafeBufferPointer { cur in
            background.withUnsafeMutableBufferPointer { bg in
                clean.withUnsafeMutableBufferPointer { k in
                    settled.withUnsafeMutableBufferPointer { settled in
                        ghost.withUnsafeMutableBufferPointer { ghost in
                            difference.withUnsafeBufferPointer { dev in
                                cleanDifference.withUnsafeMutableBufferPointer { diffK in
                                    rowSums.withUnsafeMutableBufferPointer { rows in
                                        var sk: Float = 0, sb: Float = 0, sc: Float = 0
                                        for i in 0..<n { sk += k[i]; sb += bg[i]; sc += cur[i] }
                                        let floor = 1e-3 * Float(n)
                                        let gk = sk / max(sc, floor)
                                        // `clean`'s light level against the background's, from the
                                        // pixels where the two agree: the whole means would count
                                        // the ghost itself as a light change.
                                        var toClean = sk / max(sb, floor)
                                        // One pass for both (adding 0 leaves a float sum as it was).
                                        var agreeing = 0, ska: Float = 0, sba: Float = 0
                                        for i in 0..<n {
                                            let ki = k[i], bi = bg[i]
                                            let agree = abs(bi * toClean - ki) < fit
                                            agreeing += agree ? 1 : 0
                                            ska += agree ? ki : 0
                                            sba += agree ? bi : 0
                                            diffK[i] = cur[i] * gk - ki
                                        }
                                        if agreeing >= n / 10 { toClean = ska / max(sba, floor) }
                                        let toBackground = 1 / toClean
                                        CameraState.box3RowSums(UnsafeBufferPointer(diffK), into: rows, width: w, height: h)
                                        for y in 0..<h {
                                            let sums = CameraState.box3Rows(UnsafeBufferPointer(rows), y, width: w, height: h)
                                            // Selects, not branches, so that the loop vectorises.
                                            let row = y * w
                                            for x in 0..<w {
                                                let i = row + x, d = dev[i], kk = k[i]
                                                let devK = abs(CameraState.box3Mean(sums, x))
                                                let g: Float = (devK < fit) && (d >= fit) ? ghost[i] + step : 0
                                                ghost[i] = g
                                                let healed = g >= ghostSeconds ? kk * toBackground : bg[i]
                                                bg[i] = healed
                                                let agrees = d < fit
                                                let st: Float = agrees ? settled[i] + step : 0
                                                settled[i] = st
                                                let b = healed * toClean
                                                let tracked = abs(b - kk) < fit ? kk + ak * (b - kk) : (st >= accept ? b : kk)
                                                k[i] = agrees ? tracked : kk
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A pixel agrees with a background within this (3x3 box mean, brightness matched): the
    /// same bar as `rescaleFit`, fixed before any run.
    static let ghostFit: Float = rescaleFit
    /// `clean`'s time constant, and how long a change must stand before it takes it in, in
    /// background time constants. Fixed before any run.
    static let cleanFactor = 5.0

    /// Whether the model said `lighting` on the last frame.
    private(set) var lit = false
    /// The `moving` channel: whether the model said `motion` on the last frame (or, when the
    /// model holds it through lighting, `lighting` on the last and `motion` on the one before).
    /// Not saved: a device resumed after a restart starts with nothing in view.
    private(set) var moved = false
    /// Whether the model said `motion` on the last frame, whatever `moved` says.
    private var saidMotion = false

    /// The model's verdict on the last frame. `lighting` re-bases the background: rescaled
    /// to the frame's light level when that explains the frame (`rescaleFit`; a light switched: what it
    /// learnt stays, so a person in view is not copied into it and left behind as a ghost;
    /// with a copy, 28 % of the simulator's empty-room frames after such switches said
    /// motion); replaced by the frame when it does not (day/night, blown-out highlights)
    /// or when `lighting` comes twice in a row. The activity map is brightness-matched and
    /// stays. `holdingMoving`: the verdict was `lighting` and the model holds the `moving`
    /// channel through one such frame after a `motion` one (`vigil.moving_through_lighting`),
    /// since an object whose exposure step was taken for lighting is still in view.
    /// Models/training/motion_stream.py does the same.
    mutating func observe(lighting: Bool, motion: Bool, holdingMoving: Bool = false) {
        defer {
            moved = motion || (holdingMoving && saidMotion)
            lit = lighting; saidMotion = motion
        }
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
        var rows = [Float](repeating: 0, count: x.count), out = rows
        x.withUnsafeBufferPointer { x in
            rows.withUnsafeMutableBufferPointer { rows in
                out.withUnsafeMutableBufferPointer { box3(x, into: $0, rows: rows, width: w, height: h) }
            }
        }
        return out
    }

    /// `box3` into `out`, with `rows` (as long) for the row sums: no allocation.
    static func box3(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>, rows: UnsafeMutableBufferPointer<Float>,
                     width w: Int, height h: Int) {
        box3RowSums(x, into: rows, width: w, height: h)
        for y in 0..<h {
            let sums = box3Rows(UnsafeBufferPointer(rows), y, width: w, height: h), outRow = out.baseAddress! + y * w
            for i in 0..<w { outRow[i] = box3Mean(sums, i) }
        }
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
