import Foundation

/// Resizes grey images by area averaging: each output pixel is the mean of the input area
/// it covers (fractional pixels weighted by overlap). Downscaling this way is anti-aliased
/// without a separate filter; upscaling degrades to a blend of the nearest pixels.
/// Weight tables are built once per size pair.
public struct AreaResizer: Sendable {
    public let srcWidth, srcHeight, dstWidth, dstHeight: Int
    /// For each output column/row: the input indices and weights it averages.
    let xTaps: Taps
    let yTaps: Taps

    public init(from src: (width: Int, height: Int), to dst: (width: Int, height: Int)) {
        srcWidth = src.width; srcHeight = src.height; dstWidth = dst.width; dstHeight = dst.height
        xTaps = Taps(AreaResizer.taps(src.width, dst.width))
        yTaps = Taps(AreaResizer.taps(src.height, dst.height))
    }

    static func taps(_ n: Int, _ m: Int) -> [[(Int, Float)]] {
        let scale = Double(n) / Double(m)
        return (0..<m).map { i in
            let start = Double(i) * scale, end = Double(i + 1) * scale
            var t: [(Int, Float)] = []
            var s = Int(start.rounded(.down))
            while Double(s) < end, s < n {
                let overlap = min(end, Double(s + 1)) - max(start, Double(s))
                if overlap > 1e-9 { t.append((s, Float(overlap / scale))) }
                s += 1
            }
            return t
        }
    }

    /// Resizes `pixels` (srcWidth x srcHeight, row-major) and scales 0...255 to 0...1,
    /// writing dstWidth x dstHeight values into `out` from `offset`.
    public func resize(_ pixels: [UInt8], into out: inout [Float], at offset: Int) {
        precondition(pixels.count == srcWidth * srcHeight && out.count >= offset + dstWidth * dstHeight)
        if srcWidth % dstWidth == 0, srcHeight % dstHeight == 0 {
            return resizeByBlocks(pixels, into: &out, at: offset)
        }
        // Horizontal pass into a srcHeight x dstWidth buffer, then vertical. Each output sums
        // its taps in table order from 0: float sums depend on their order.
        let (sw, dw) = (srcWidth, dstWidth)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: srcHeight * dw) { rows in
            pixels.withUnsafeBufferPointer { src in
                xTaps.withSpans { start, index, weight in
                    for y in 0..<srcHeight {
                        let base = y * sw
                        for x in 0..<dw {
                            var acc: Float = 0
                            for t in start[x]..<start[x + 1] { acc += Float(src[base + index[t]]) * weight[t] }
                            rows[y * dw + x] = acc
                        }
                    }
                }
            }
            out.withUnsafeMutableBufferPointer { dst in
                yTaps.withSpans { start, index, weight in
                    for y in 0..<dstHeight {
                        let o = offset + y * dw
                        for x in 0..<dw {
                            var acc: Float = 0
                            for t in start[y]..<start[y + 1] { acc += rows[index[t] * dw + x] * weight[t] }
                            dst[o + x] = acc / 255
                        }
                    }
                }
            }
        }
    }
}

extension AreaResizer {
    /// One axis's taps in three flat tables: output i averages inputs index[t] with weights
    /// weight[t] for t in start[i]..<start[i + 1] (an array of arrays costs a pointer chase
    /// and a bounds check per tap).
    struct Taps: Sendable {
        let start: [Int]
        let index: [Int]
        let weight: [Float]

        init(_ taps: [[(Int, Float)]]) {
            var start = [0]
            for t in taps { start.append(start.last! + t.count) }
            self.start = start
            index = taps.flatMap { $0.map(\.0) }
            weight = taps.flatMap { $0.map(\.1) }
        }

        func withSpans<R>(_ body: (UnsafeBufferPointer<Int>, UnsafeBufferPointer<Int>, UnsafeBufferPointer<Float>) -> R) -> R {
            start.withUnsafeBufferPointer { s in
                index.withUnsafeBufferPointer { i in weight.withUnsafeBufferPointer { w in body(s, i, w) } }
            }
        }
    }

    /// Whole-number ratios (640x480 -> 160x120): integer block sums, no weights. Each band
    /// of fy input rows is first summed down its columns, then fx column sums make an output
    /// pixel. Integer sums do not depend on their order, so this is the same as summing each
    /// block pixel by pixel. Rows are pointers, not offsets: an offset's overflow check in
    /// the inner loop keeps the compiler from vectorising it.
    func resizeByBlocks(_ pixels: [UInt8], into out: inout [Float], at offset: Int) {
        let fx = srcWidth / dstWidth, fy = srcHeight / dstHeight, sw = srcWidth
        let scale = 1 / (Float(fx * fy) * 255)
        guard sw > 0, srcHeight > 0 else {
            // No pixels (nothing to point at): 0 * scale (NaN), what the block sums give.
            for i in 0..<(dstWidth * dstHeight) { out[offset + i] = 0 * scale }
            return
        }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: sw) { columns in
            let columns = columns.baseAddress!
            pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for oy in 0..<dstHeight {
                        columns.update(repeating: 0, count: sw)
                        for ky in 0..<fy {
                            let row = src.baseAddress! + (oy * fy + ky) * sw
                            for x in 0..<sw { columns[x] &+= UInt32(row[x]) }
                        }
                        let outRow = dst.baseAddress! + offset + oy * dstWidth
                        for ox in 0..<dstWidth {
                            let block = columns + ox * fx
                            var sum: UInt32 = 0
                            for k in 0..<fx { sum &+= block[k] }
                            outRow[ox] = Float(sum) * scale
                        }
                    }
                }
            }
        }
    }
}

/// Camera stream state: resizes each frame to the model's input and fills the channels
/// the model asks for (`vigil.channels`: previous, current, background, activity, restless, weight, moving;
/// by default previous + current for two channels). A model that needs history gets no
/// input for a device's first frame (there is nothing to compare it with).
public final class ImageAdapter: StreamAdapter {
    /// Model input shape, e.g. [1, 4, 120, 160].
    let shape: [Int]
    let width: Int
    let height: Int
    let channels: [CameraChannel]
    let motion: MotionSettings
    let masks: [MotionMask]
    /// The weight channel's value outside masks: the model's min_area / the pipeline's.
    let weightValue: Float
    private var state: CameraState?
    private var resizer: AreaResizer?
    /// Moves a creeping camera's frames back onto the state's view (nil: `motion.align` off).
    private var aligner: ViewAligner?
    private var weights: [Float] = []
    /// `weights` less the aligner's invented border (`bandedWeights`), for the offset's signs.
    private var banded: (sides: (y: Int, x: Int), plane: [Float])?
    /// This frame at the model's size. Reused: `CameraState.update` hands back the previous
    /// frame's plane in exchange, so a frame allocates no planes of its own.
    private var current: [Float] = []
    /// Times the background was reset after the model said `lighting` (for tests, metrics).
    public private(set) var rebaselines = 0
    /// Where the device's view sits in its frames (the aligner's offset; nil before its first frame).
    var viewOffset: (y: Double, x: Double)? { state?.viewOffset }

    /// Whether the model reads the running averages (background, activity, restless): only
    /// then does the state keep them, and is it saved.
    let keepsAverages: Bool
    /// Where this device's state is saved (nil: not saved), and the frame time it last was.
    let stateFile: CameraStateFile?
    private var savedAt = -Double.infinity
    /// Frame time the state started learning (nil when it was resumed from a file).
    private var learningSince: Double?

    public init(shape: [Int], width: Int, height: Int, channels: [CameraChannel],
                motion: MotionSettings = MotionSettings(), pipeline: String = "", device: String = "", weightValue: Float = 1) {
        self.shape = shape; self.width = width; self.height = height; self.channels = channels
        self.motion = motion; self.masks = motion.resolved(for: device).masks; self.weightValue = weightValue
        keepsAverages = channels.contains(.background) || channels.contains(.activity) || channels.contains(.restless)
        if keepsAverages && motion.align == true { aligner = ViewAligner(width: width, height: height) }
        stateFile = keepsAverages && motion.saveSeconds > 0 ? motion.stateDirectory.map {
            CameraStateFile(directory: $0, pipeline: pipeline, device: device)
        } : nil
    }

    /// The pre-background form: `channels` 1 (grey), 2 (previous, current) or 3 (grey as RGB).
    public convenience init(shape: [Int], width: Int, height: Int, channels: Int, pairs: Bool) {
        self.init(shape: shape, width: width, height: height,
                  channels: pairs ? [.previous, .current] : (CameraChannel.defaults(channels) ?? [.current]))
    }

    public func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput] {
        guard case .image(let w, let h, let pixels) = frame.frame else {
            throw FrameError(.wrongSize, "this pipeline feeds images, got another kind of frame")
        }
        if resizer?.srcWidth != w || resizer?.srcHeight != h {
            resizer = AreaResizer(from: (w, h), to: (width, height))
            if channels.contains(.weight) {
                weights = WeightPlane.make(masks: masks, value: weightValue, source: (w, h), width: width, height: height)
                banded = nil
            }
        }
        // The resize writes every value, so a reused plane needs no clearing.
        if current.count != width * height { current = [Float](repeating: 0, count: width * height) }
        resizer!.resize(pixels, into: &current, at: 0)
        guard channels.contains(where: \.needsHistory) else { return [input(current, nil, frame.ts)] }
        if state == nil, let saved = stateFile?.load(width: width, height: height) {
            // Resume what the device had learnt before a restart (or a TTL expiry).
            state = saved
            savedAt = frame.ts
        }
        guard state != nil else {
            state = CameraState(first: current, ts: frame.ts, width: width, height: height)
            savedAt = frame.ts
            learningSince = frame.ts
            return []
        }
        if aligner != nil {
            aligner!.align(&current, to: state!.background, restless: channels.contains(.restless) ? state!.restless : nil,
                           holding: state!.lit, offset: &state!.viewOffset)
        }
        let made = input(current, state!, frame.ts)
        // In place: a local copy of the state would copy its planes (copy on write) every frame.
        state!.update(with: &current, ts: frame.ts,
                      backgroundSeconds: motion.backgroundSeconds ?? MotionSettings.defaultBackgroundSeconds,
                      activitySeconds: motion.activitySeconds ?? MotionSettings.defaultActivitySeconds,
                      hold: motion.backgroundHold ?? 1,
                      ghostSeconds: motion.ghostSeconds ?? MotionSettings.defaultGhostSeconds,
                      averages: keepsAverages, restless: channels.contains(.restless))
        if let file = stateFile, frame.ts - savedAt >= motion.saveSeconds {
            savedAt = frame.ts
            // A failed save (disk full, permissions) only costs the resume after a restart.
            try? file.save(state!)
        }
        return [made]
    }

    /// The weight plane less `motion.alignBand` px on each side the aligner's shift invents
    /// (`warp` repeats the edge pixels there: `ox < 0` pulls from the right, so the right band
    /// goes); the plane itself while the offset is 0 or the model sets no band. Which band goes
    /// depends only on the offset's signs, so the banded plane is kept until they change.
    /// Models/training/motion_stream.py `banded_weight` does the same.
    func bandedWeights(offset: (y: Double, x: Double)) -> [Float] {
        let b = min(motion.alignBand, width, height)
        let sides = (y: offset.y < 0 ? -1 : offset.y > 0 ? 1 : 0, x: offset.x < 0 ? -1 : offset.x > 0 ? 1 : 0)
        guard b > 0, aligner != nil, !weights.isEmpty, sides != (0, 0) else { return weights }
        if let kept = banded, kept.sides == sides { return kept.plane }
        var w = weights
        let cols: Range<Int>? = sides.x < 0 ? (width - b)..<width : sides.x > 0 ? 0..<b : nil
        let rows: Range<Int>? = sides.y < 0 ? (height - b)..<height : sides.y > 0 ? 0..<b : nil
        if let cols { for y in 0..<height { for x in cols { w[y * width + x] = 0 } } }
        if let rows { for y in rows { for x in 0..<width { w[y * width + x] = 0 } } }
        banded = (sides, w)
        return w
    }

    func input(_ current: [Float], _ st: CameraState?, _ ts: Double) -> ModelInput {
        var values: [Float] = []
        values.reserveCapacity(current.count * channels.count)
        for c in channels {
            switch c {
            case .current: values += current
            case .previous: values += st!.last
            case .background: values += st!.background
            case .activity: values += st!.activity
            case .restless: values += st!.restless
            case .weight: values += st.map { bandedWeights(offset: $0.viewOffset) } ?? weights
            case .moving: values += repeatElement(st!.moved ? 1 : 0, count: current.count)
            }
        }
        return ModelInput(values: values, shape: shape, ts: ts)
    }

    /// `lighting` from the model: the whole picture changed (lights, auto-exposure, day and
    /// night), so the background is re-based (`CameraState.observe`); `motion`: the next
    /// frame's `moving` channel.
    public func observe(_ detection: inout Detection) {
        guard verdictShapesNextInput, state != nil else { return }
        let said = detection.label
        let lighting = said == ImageAdapter.lightingLabel && channels.contains(.background)
        state!.observe(lighting: lighting, motion: said == ImageAdapter.motionLabel,
                       holdingMoving: motion.movingThroughLighting && said == ImageAdapter.lightingLabel)
        if lighting { rebaselines += 1 }
    }

    /// The background's re-base, the `moving` channel and the aligner's hold read the last verdict.
    public var verdictShapesNextInput: Bool { channels.contains(.background) || channels.contains(.moving) }

    /// Dropped (device TTL, engine stop or reload): save what the device has learnt, so its
    /// next adapter resumes from now rather than from the last periodic save.
    /// Only a state that has learnt for a background time constant (or was resumed) is
    /// saved: device names come from topics, and a stream of one-frame devices must not
    /// leave a file each.
    public func retire() {
        guard let file = stateFile, let st = state else { return }
        let bg = motion.backgroundSeconds ?? MotionSettings.defaultBackgroundSeconds
        if let since = learningSince, st.ts - since < bg { return }
        try? file.save(st)
    }

    /// The label a background model gives a whole-frame change.
    public static let lightingLabel = "lighting"
    /// The label a camera model gives an object in view.
    public static let motionLabel = "motion"
}
