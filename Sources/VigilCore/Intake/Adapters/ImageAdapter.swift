import Foundation

/// Resizes grey images by area averaging: each output pixel is the mean of the input area
/// it covers (fractional pixels weighted by overlap). Downscaling this way is anti-aliased
/// without a separate filter; upscaling degrades to a blend of the nearest pixels.
/// Weight tables are built once per size pair.
public struct AreaResizer: Sendable {
    public let srcWidth, srcHeight, dstWidth, dstHeight: Int
    /// For each output column/row: the (input index, weight) pairs, weights summing to 1.
    let xTaps: [[(Int, Float)]]
    let yTaps: [[(Int, Float)]]

    public init(from src: (width: Int, height: Int), to dst: (width: Int, height: Int)) {
        srcWidth = src.width; srcHeight = src.height; dstWidth = dst.width; dstHeight = dst.height
        xTaps = AreaResizer.taps(src.width, dst.width)
        yTaps = AreaResizer.taps(src.height, dst.height)
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
        // Horizontal pass into a srcHeight x dstWidth buffer, then vertical.
        var rows = [Float](repeating: 0, count: srcHeight * dstWidth)
        for y in 0..<srcHeight {
            let base = y * srcWidth
            for (x, taps) in xTaps.enumerated() {
                var acc: Float = 0
                for (s, w) in taps { acc += Float(pixels[base + s]) * w }
                rows[y * dstWidth + x] = acc
            }
        }
        for (y, taps) in yTaps.enumerated() {
            let o = offset + y * dstWidth
            for x in 0..<dstWidth {
                var acc: Float = 0
                for (s, w) in taps { acc += rows[s * dstWidth + x] * w }
                out[o + x] = acc / 255
            }
        }
    }
}

extension AreaResizer {
    /// Whole-number ratios (640x480 -> 160x120): integer block sums, no weights.
    func resizeByBlocks(_ pixels: [UInt8], into out: inout [Float], at offset: Int) {
        let fx = srcWidth / dstWidth, fy = srcHeight / dstHeight
        let scale = 1 / (Float(fx * fy) * 255)
        var acc = [UInt32](repeating: 0, count: dstWidth)
        for oy in 0..<dstHeight {
            for i in acc.indices { acc[i] = 0 }
            for ky in 0..<fy {
                var p = (oy * fy + ky) * srcWidth
                for ox in 0..<dstWidth {
                    var sum: UInt32 = 0
                    for _ in 0..<fx { sum &+= UInt32(pixels[p]); p += 1 }
                    acc[ox] &+= sum
                }
            }
            let o = offset + oy * dstWidth
            for ox in 0..<dstWidth { out[o + ox] = Float(acc[ox]) * scale }
        }
    }
}

/// Camera stream state: resizes each frame to the model's input and fills the channels
/// the model asks for (`vigil.channels`: previous, current, background, activity, weight;
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
    private var weights: [Float] = []
    /// Times the background was reset after the model said `lighting` (for tests, metrics).
    public private(set) var rebaselines = 0

    /// Where this device's state is saved (nil: not saved), and the frame time it last was.
    let stateFile: CameraStateFile?
    private var savedAt = -Double.infinity
    /// Frame time the state started learning (nil when it was resumed from a file).
    private var learningSince: Double?

    public init(shape: [Int], width: Int, height: Int, channels: [CameraChannel],
                motion: MotionSettings = MotionSettings(), pipeline: String = "", device: String = "", weightValue: Float = 1) {
        self.shape = shape; self.width = width; self.height = height; self.channels = channels
        self.motion = motion; self.masks = motion.resolved(for: device).masks; self.weightValue = weightValue
        let keeps = channels.contains(.background) || channels.contains(.activity)
        stateFile = keeps && motion.saveSeconds > 0 ? motion.stateDirectory.map {
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
            }
        }
        let plane = width * height
        var current = [Float](repeating: 0, count: plane)
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
        let made = input(current, state!, frame.ts)
        // In place: a local copy of the state would copy its planes (copy on write) every frame.
        state!.update(with: current, ts: frame.ts,
                      backgroundSeconds: motion.backgroundSeconds ?? MotionSettings.defaultBackgroundSeconds,
                      activitySeconds: motion.activitySeconds ?? MotionSettings.defaultActivitySeconds,
                      averages: channels.contains(.background) || channels.contains(.activity))
        if let file = stateFile, frame.ts - savedAt >= motion.saveSeconds {
            savedAt = frame.ts
            // A failed save (disk full, permissions) only costs the resume after a restart.
            try? file.save(state!)
        }
        return [made]
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
            case .weight: values += weights
            }
        }
        return ModelInput(values: values, shape: shape, ts: ts)
    }

    /// `lighting` from the model: the whole picture changed (lights, auto-exposure, day and
    /// night), so the background is re-based (`CameraState.observe`).
    public func observe(_ detection: inout Detection) {
        guard channels.contains(.background), state != nil else { return }
        let lighting = detection.label == ImageAdapter.lightingLabel
        state!.observe(lighting: lighting)
        if lighting { rebaselines += 1 }
    }

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
}
