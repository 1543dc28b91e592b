import Foundation

/// A camera pipeline's `motion` key: how the per-device background and activity adapt,
/// which parts of the picture are ignored, and how much of it must change.
/// Read by `ImageAdapter` for models whose `vigil.channels` ask for that state.
public struct MotionSettings: Sendable, Equatable {
    /// Time constant of the per-device background (a running average of the frames);
    /// nil: the model's `vigil.background_s`, else `defaultBackgroundSeconds`.
    public var backgroundSeconds: Double?
    /// Time constant of the per-pixel activity (how far each pixel keeps straying from the
    /// background) and restless maps (how much of the time it keeps changing): areas that
    /// keep changing, such as swaying trees, stop counting.
    /// nil: the model's `vigil.activity_s`, else `defaultActivitySeconds`.
    public var activitySeconds: Double?
    /// How many times slower the background learns where the frame differs from it, so that
    /// a person standing still is not absorbed within `background_s` (1: the same rate
    /// everywhere). nil: the model's `vigil.background_hold`, else 1.
    public var backgroundHold: Double?
    /// How long a pixel must match the device's clean background (the scene before anything
    /// stood in it) and not the running one before the running one is reset there: what it
    /// kept of a person or car that stood and left (a ghost) stops saying motion after this.
    /// nil: the model's `vigil.ghost_s`, else `defaultGhostSeconds`.
    public var ghostSeconds: Double?
    /// Whether each frame is moved back onto the device's view before the state reads it, so a
    /// camera that creeps (a pole in the wind, a bracket settling) does not turn every edge in
    /// the picture into motion (ViewAligner). nil: the model's `vigil.align` ("1": on), else off.
    public var align: Bool?
    /// Whether the `moving` channel stays on through one `lighting` verdict that follows a
    /// `motion` one: a car whose paint blows out the exposure is taken for a light change on
    /// one frame, and is still in view on the next. Not a config key: the model's
    /// `vigil.moving_through_lighting` ("1"), as it was tuned with (motion v2.14).
    public var movingThroughLighting = false
    /// Px (at the model's size) left out of the weight plane on each side of the frame that the
    /// aligner's shift invents (it repeats the edge there): nothing was seen there, and what an
    /// object left of itself in the background at that border is never healed. Not a config key:
    /// the model's `vigil.align_band` (0 without it), as it was tuned with (motion v2.14).
    public var alignBand = 0

    /// How often (frame time) a device's state is saved, so a restart resumes it; 0: never.
    public var saveSeconds = 300.0
    /// Where states are saved: `motion-state/` next to the log (set from `storage.path`,
    /// not a config key); nil: not saved.
    public var stateDirectory: String?

    public static let defaultBackgroundSeconds = 20.0
    public static let defaultActivitySeconds = 60.0
    /// Chosen on the tuning split on 2026-12-03 (the smallest of 0.5, 1 and 2 s that left its
    /// swaying tree at 0 false pairs, before the restless map); models since v2.9 declare theirs.
    public static let defaultGhostSeconds = 1.0
    /// Fraction of the frame (0...1) that must change; nil: the model's `vigil.min_area`.
    public var minArea: Double?
    /// Areas never watched, in source-frame pixel coordinates.
    public var masks: [MotionMask] = []
    /// Per-device additions: masks added to the pipeline's, a min_area that replaces it.
    public var devices: [String: DeviceMotion] = [:]

    public struct DeviceMotion: Sendable, Equatable {
        public var masks: [MotionMask] = []
        public var minArea: Double?
        public init(masks: [MotionMask] = [], minArea: Double? = nil) { self.masks = masks; self.minArea = minArea }
    }

    public init() {}

    /// What one device gets: the pipeline's masks plus its own, its own min_area if set.
    public func resolved(for device: String) -> (masks: [MotionMask], minArea: Double?) {
        let d = devices[device]
        return (masks + (d?.masks ?? []), d?.minArea ?? minArea)
    }

    /// These settings with the time constants the model was tuned with filled in where the
    /// config leaves them out (`vigil.background_s`, `vigil.activity_s`, `vigil.background_hold`,
    /// `vigil.ghost_s`, `vigil.align`), and what only the model sets
    /// (`vigil.moving_through_lighting`, `vigil.align_band`).
    public func applying(model: [String: String]) -> MotionSettings {
        var s = self
        func meta(_ k: String) -> Double? { model[k].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } }
        s.backgroundSeconds = s.backgroundSeconds ?? meta("vigil.background_s") ?? MotionSettings.defaultBackgroundSeconds
        s.activitySeconds = s.activitySeconds ?? meta("vigil.activity_s") ?? MotionSettings.defaultActivitySeconds
        s.backgroundHold = s.backgroundHold ?? meta("vigil.background_hold").map { max(1, $0) } ?? 1
        s.ghostSeconds = s.ghostSeconds ?? meta("vigil.ghost_s") ?? MotionSettings.defaultGhostSeconds
        s.align = s.align ?? (model["vigil.align"] == "1")
        s.movingThroughLighting = model["vigil.moving_through_lighting"] == "1"
        s.alignBand = model["vigil.align_band"].flatMap { Int($0) }.map { max($0, 0) } ?? 0
        return s
    }

    /// Whether anything here needs the model's weight channel.
    var usesWeight: Bool {
        minArea != nil || !masks.isEmpty || devices.values.contains { $0.minArea != nil || !$0.masks.isEmpty }
    }

    /// `frame`: the pipeline's frame size when the config knows it (gray8), to check that
    /// masks fall inside it.
    static func parse(_ m: ConfigObject, frame: (width: Int, height: Int)?) throws -> MotionSettings {
        var s = MotionSettings()
        s.backgroundSeconds = try m.double("background_s", in: 0.1...86_400)
        s.activitySeconds = try m.double("activity_s", in: 0.1...86_400)
        s.backgroundHold = try m.double("background_hold", in: 1...100)
        s.ghostSeconds = try m.double("ghost_s", in: 0.05...3600)
        s.align = try m.bool("align")
        s.minArea = try m.double("min_area", in: 0.00001...1)
        s.saveSeconds = try m.double("save_s", default: s.saveSeconds, in: 0...86_400)
        s.masks = try MotionMask.parseList(m, "masks", frame: frame)
        if let devices = try m.namedObjects("devices") {
            for (name, d) in devices {
                let dm = DeviceMotion(masks: try MotionMask.parseList(d, "masks", frame: frame),
                                      minArea: try d.double("min_area", in: 0.00001...1))
                try d.finish()
                s.devices[name] = dm
            }
        }
        try m.finish()
        return s
    }
}

/// A polygon in source-frame pixel coordinates (x right, y down, origin at the top-left
/// corner of the frame as the camera sends it). A rectangle is a four-point polygon.
public struct MotionMask: Sendable, Equatable {
    public var points: [(x: Double, y: Double)]

    public init(points: [(x: Double, y: Double)]) { self.points = points }
    public init(rect x: Double, _ y: Double, _ w: Double, _ h: Double) {
        points = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    }

    public static func == (a: MotionMask, b: MotionMask) -> Bool {
        a.points.count == b.points.count && zip(a.points, b.points).allSatisfy { $0.x == $1.x && $0.y == $1.y }
    }

    /// Even-odd rule: a point on a shared edge belongs to one side only.
    public func contains(_ x: Double, _ y: Double) -> Bool {
        var inside = false
        var j = points.count - 1
        for i in points.indices {
            let (xi, yi) = points[i], (xj, yj) = points[j]
            if (yi > y) != (yj > y), x < (xj - xi) * (y - yi) / (yj - yi) + xi { inside.toggle() }
            j = i
        }
        return inside
    }

    static func parseList(_ obj: ConfigObject, _ key: String, frame: (width: Int, height: Int)?) throws -> [MotionMask] {
        guard let items = try obj.objectArray(key) else { return [] }
        return try items.map { m in
            let mask: MotionMask
            switch (m.has("rect"), m.has("polygon")) {
            case (true, false):
                let r = try numbers(m, "rect")
                guard r.count == 4 else { throw m.error("rect", "must be [x, y, width, height]") }
                guard r[2] > 0, r[3] > 0 else { throw m.error("rect", "width and height must be positive") }
                mask = MotionMask(rect: r[0], r[1], r[2], r[3])
                _ = m.raw("polygon")
            case (false, true):
                guard case .array(let pts)? = m.raw("polygon") else { throw m.error("polygon", "must be an array of [x, y] points") }
                guard pts.count >= 3 else { throw m.error("polygon", "needs at least 3 points, got \(pts.count)") }
                mask = MotionMask(points: try pts.enumerated().map { i, p in
                    guard case .array(let xy) = p, xy.count == 2, case .number(let x) = xy[0], case .number(let y) = xy[1] else {
                        throw m.error("polygon[\(i)]", "must be a point [x, y]")
                    }
                    return (x, y)
                })
                _ = m.raw("rect")
            default:
                throw m.error("", "a mask is either {\"rect\": [x, y, width, height]} or {\"polygon\": [[x, y], ...]}")
            }
            for (i, p) in mask.points.enumerated() {
                guard p.x.isFinite, p.y.isFinite, p.x >= 0, p.y >= 0 else {
                    throw m.error(m.has("rect") ? "rect" : "polygon[\(i)]", "coordinates are source-frame pixels, 0 or more")
                }
                if let f = frame, p.x > Double(f.width) || p.y > Double(f.height) {
                    throw m.error(m.has("rect") ? "rect" : "polygon[\(i)]",
                                  "(\(JSONValue.format(p.x)), \(JSONValue.format(p.y))) is outside the \(f.width)x\(f.height) frame")
                }
            }
            try m.finish()
            return mask
        }
    }

    static func numbers(_ m: ConfigObject, _ key: String) throws -> [Double] {
        guard case .array(let items)? = m.raw(key) else { throw m.error(key, "must be an array of numbers") }
        return try items.enumerated().map { i, v in
            guard case .number(let d) = v else { throw m.error("\(key)[\(i)]", "must be a number") }
            return d
        }
    }
}
