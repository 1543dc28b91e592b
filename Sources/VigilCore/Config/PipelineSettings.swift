import Foundation
import MQTT

/// How a pipeline's payloads are encoded (DESIGN.md, payload formats).
public enum PayloadFormat: String, Sendable, CaseIterable {
    case json, wav, pcm_s16le, pgm, gray8, f32le
}

/// A pipeline's topic with `{device}` naming one level.
public struct TopicPattern: Sendable, Equatable {
    public let pattern: String
    /// What is subscribed: `{device}` becomes `+`.
    public let subscription: String
    /// Index of the `{device}` level, if any.
    public let deviceLevel: Int?

    public init?(_ pattern: String) {
        let levels = pattern.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var device: Int?
        var sub: [String] = []
        for (i, l) in levels.enumerated() {
            if l == "{device}" {
                if device != nil { return nil }
                device = i
                sub.append("+")
            } else if l.contains("{") || l.contains("}") {
                return nil
            } else {
                sub.append(l)
            }
        }
        let s = sub.joined(separator: "/")
        guard !pattern.isEmpty, MQTTClient.isValidSubscription(s) else { return nil }
        self.pattern = pattern
        self.subscription = s
        self.deviceLevel = device
    }

    public func matches(_ topic: String) -> Bool { MQTTClient.topic(topic, matches: subscription) }

    /// A topic both patterns match, or nil when none can. The engine gives a message to the
    /// first pipeline that matches it, so a later pipeline overlapping an earlier one would
    /// silently miss those messages.
    public func overlap(with other: TopicPattern) -> String? {
        let a = subscription.split(separator: "/", omittingEmptySubsequences: false)
        let b = other.subscription.split(separator: "/", omittingEmptySubsequences: false)
        // A wildcard level is filled with "device"; '#' also matches its parent level.
        func rest(_ levels: ArraySlice<Substring>) -> [String] {
            levels.compactMap { $0 == "#" ? nil : ($0 == "+" ? "device" : String($0)) }
        }
        var out: [String] = []
        var i = 0
        while true {
            let endA = i >= a.count, endB = i >= b.count
            if endA && endB { break }
            if !endA && a[i] == "#" { out += endB ? [] : rest(b[i...]); break }
            if !endB && b[i] == "#" { out += endA ? [] : rest(a[i...]); break }
            if endA || endB { return nil }
            switch (a[i], b[i]) {
            case ("+", "+"): out.append("device")
            case ("+", let l), (let l, "+"): out.append(String(l))
            case let (x, y) where x == y: out.append(String(x))
            default: return nil
            }
            i += 1
        }
        let topic = out.joined(separator: "/")
        return matches(topic) && other.matches(topic) ? topic : nil
    }

    /// The device a topic names: the `{device}` level, else the levels matched by
    /// wildcards, else "default".
    public func device(in topic: String) -> String {
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        if let d = deviceLevel, d < levels.count { return String(levels[d]) }
        let subLevels = subscription.split(separator: "/", omittingEmptySubsequences: false)
        var wild: [Substring] = []
        for (i, s) in subLevels.enumerated() {
            if s == "+", i < levels.count { wild.append(levels[i]) }
            if s == "#" { wild.append(contentsOf: levels.dropFirst(i)); break }
        }
        return wild.isEmpty ? "default" : wild.joined(separator: "/")
    }
}

public struct PipelineSettings: Sendable {
    public var name: String
    public var topic: TopicPattern
    public var format: PayloadFormat
    public var model: String
    /// json: dotted paths of the values to read, in model input order.
    public var fields: [String]
    /// f32le: expected vector shape (without the batch dimension); nil takes the model's.
    public var shape: [Int]?
    /// gray8: frame size.
    public var width: Int?
    public var height: Int?
    /// pcm_s16le: sample rate; wav: optional, the rate the model takes when its metadata does not say.
    public var sampleRate: Int?
    /// wav, pcm_s16le: how far successive windows advance (default half a window).
    public var hop: Hop?
    /// wav, pcm_s16le: convert a stream whose rate differs from the model's instead of rejecting it.
    public var resample = false
    /// json: readings per model input (default: the model's `vigil.window`, else its input's).
    public var window: Int?
    /// pgm: largest image accepted, checked on the header before anything is allocated.
    public var maxWidth = 4096
    public var maxHeight = 4096
    /// Replaces the model's labels: one per line, or a CSV column (`display_name`, `label`
    /// or `name`). Resolved against the config's folder.
    public var labelsFile: String?
    /// Many labels scored as one: the group's score is the highest of its members'.
    public var labelGroups: [LabelGroup] = []
    public var alert: AlertSettings?
    /// pgm, gray8: background, activity, masks and minimum area (`motion` key).
    public var motion: MotionSettings?
    /// json with a stateful anomaly model: the per-device baseline (nil: the defaults).
    public var baseline: BaselineSettings?
    /// What raised alerts keep of the input (`evidence`); nil: the defaults for the kind of input.
    public var evidence: EvidenceSettings?
    /// Which detections reach the log (`store`, `summary_s`): every one, or events and summaries.
    public var store: StorePolicy = .all

    /// Audio window advance: a fraction of the window or a number of samples.
    public enum Hop: Sendable, Equatable {
        case fraction(Double)
        case samples(Int)

        public func samples(window: Int) -> Int {
            switch self {
            case .fraction(let f): return max(1, Int((Double(window) * f).rounded()))
            case .samples(let n): return n
            }
        }
    }

    public struct LabelGroup: Sendable, Equatable {
        public var name: String
        public var members: [String]
        public init(name: String, members: [String]) { self.name = name; self.members = members }
    }

    public init(name: String, topic: TopicPattern, format: PayloadFormat, model: String, fields: [String] = [],
                shape: [Int]? = nil, width: Int? = nil, height: Int? = nil, sampleRate: Int? = nil,
                alert: AlertSettings? = nil) {
        self.name = name; self.topic = topic; self.format = format; self.model = model; self.fields = fields
        self.shape = shape; self.width = width; self.height = height; self.sampleRate = sampleRate; self.alert = alert
    }

    public var isAudio: Bool { format == .wav || format == .pcm_s16le }
    public var isImage: Bool { format == .pgm || format == .gray8 }

    static func parse(_ p: ConfigObject, resolve: (String) -> String = { $0 }) throws -> PipelineSettings {
        let name = try p.requiredString("name")
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
            throw p.error("name", "use letters, digits, '_', '-' or '.' only")
        }
        let topicText = try p.requiredString("topic")
        guard let topic = TopicPattern(topicText) else {
            throw p.error("topic", "\"\(topicText)\" is not a valid MQTT subscription (one {device} level allowed)")
        }
        let formatName = try p.requiredString("format")
        guard let format = PayloadFormat(rawValue: formatName) else {
            throw p.error("format", "unknown format \"\(formatName)\" (one of \(PayloadFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let model = try p.requiredString("model")
        let fields = try p.stringArray("fields") ?? []
        if format == .json, fields.isEmpty { throw p.error("fields", "a json pipeline needs the fields to read") }
        if format != .json, !fields.isEmpty { throw p.error("fields", "only json pipelines read fields") }
        let shape = try p.intArray("shape")
        if let shape, shape.isEmpty || shape.contains(where: { $0 <= 0 }) { throw p.error("shape", "must list positive sizes") }
        let width = try p.int("width", in: 1...16384)
        let height = try p.int("height", in: 1...16384)
        if format == .gray8, width == nil || height == nil { throw p.error(width == nil ? "width" : "height", "gray8 needs width and height") }
        let rate = try p.int("sample_rate", in: 1000...384_000)
        if format == .pcm_s16le, rate == nil { throw p.error("sample_rate", "pcm_s16le needs sample_rate") }
        var s = PipelineSettings(name: name, topic: topic, format: format, model: model, fields: fields,
                                 shape: shape, width: width, height: height, sampleRate: rate)
        func only(_ key: String, _ allowed: Bool, _ what: String) throws {
            if !allowed, p.has(key) { throw p.error(key, "only \(what) pipelines take \(key)") }
        }
        try only("width", format == .gray8, "gray8")
        try only("height", format == .gray8, "gray8")
        try only("shape", format == .f32le, "f32le")
        try only("sample_rate", s.isAudio, "wav and pcm_s16le")
        try only("hop", s.isAudio, "wav and pcm_s16le")
        try only("resample", s.isAudio, "wav and pcm_s16le")
        try only("window", format == .json, "json")
        try only("max_width", format == .pgm, "pgm")
        try only("max_height", format == .pgm, "pgm")
        if let h = try p.double("hop") {
            if h > 0, h <= 1 {
                s.hop = .fraction(h)
            } else if h > 1, h == h.rounded(), h < 1e9 {
                s.hop = .samples(Int(h))
            } else {
                throw p.error("hop", "must be a fraction of the window (0 < hop <= 1) or a whole number of samples")
            }
        }
        s.resample = try p.bool("resample", default: false)
        s.window = try p.int("window", in: 1...100_000)
        s.maxWidth = try p.int("max_width", default: s.maxWidth, in: 1...65536)
        s.maxHeight = try p.int("max_height", default: s.maxHeight, in: 1...65536)
        s.labelsFile = try p.string("labels_file").map(resolve)
        if let g = try p.object("label_groups") {
            for key in g.keys {
                guard let members = try g.stringArray(key), !members.isEmpty else {
                    throw g.error(key, "must list at least one of the model's labels")
                }
                s.labelGroups.append(LabelGroup(name: key, members: members))
            }
            guard !s.labelGroups.isEmpty else { throw p.error("label_groups", "must name at least one group") }
            try g.finish()
        }
        try only("motion", s.isImage, "pgm and gray8")
        if let m = try p.object("motion") {
            s.motion = try MotionSettings.parse(m, frame: format == .gray8 ? (width!, height!) : nil)
        }
        s.alert = try p.object("alert").map(AlertSettings.parse)
        try only("baseline", format == .json, "json")
        if let b = try p.object("baseline") {
            var bs = BaselineSettings()
            bs.horizonSeconds = try b.double("horizon_s", default: bs.horizonSeconds, in: 60...86_400 * 365)
            bs.warmupSeconds = try b.double("warmup_s", default: bs.warmupSeconds, in: 0...86_400 * 365)
            bs.warmupReadings = try b.int("warmup_readings", in: 0...100_000_000)
            bs.snapshotSeconds = try b.double("snapshot_s", default: bs.snapshotSeconds, in: 1...86_400)
            if let m = try b.object("min_scale") {
                for key in m.keys {
                    guard let v = try m.double(key, in: 0...Double.greatestFiniteMagnitude) else { continue }
                    guard fields.contains(key) else { throw m.error(key, "is not one of the pipeline's fields (\(fields.joined(separator: ", ")))") }
                    bs.minScale[key] = v
                }
                try m.finish()
            }
            try b.finish()
            s.baseline = bs
        }
        if p.raw("evidence") != nil { s.evidence = try EvidenceSettings.parse(p, kind: s.kind) }
        s.store = try StorePolicy.parse(p)
        try p.finish()
        return s
    }
}

/// Which of a pipeline's detections become rows of the log (docs/storage.md, "What is stored").
public enum StorePolicy: Sendable, Equatable {
    /// Every detection (the default).
    case all
    /// Detections whose label is not the background, and per device one summary row every
    /// `summarySeconds` with the period's counts per label and its highest event score.
    case events(summarySeconds: Double)

    public static let defaultSummarySeconds = 300.0

    static func parse(_ p: ConfigObject) throws -> StorePolicy {
        let name = try p.string("store", default: "all")
        switch name {
        case "all":
            if p.has("summary_s") { throw p.error("summary_s", "only \"store\": \"events\" writes summaries") }
            return .all
        case "events":
            return .events(summarySeconds: try p.double("summary_s", default: defaultSummarySeconds, in: 10...86_400))
        default:
            throw p.error("store", "unknown store policy \"\(name)\" (one of all, events)")
        }
    }
}

/// When a pipeline raises and clears an alert (the rules engine reads these).
public struct AlertSettings: Sendable, Equatable {
    /// Labels that count; empty means any label other than the model's first ("normal"/"still").
    public var labels: [String] = []
    public var minScore = 0.5
    /// False when `min_score` was not written: the model's `vigil.threshold` is used then.
    public var minScoreGiven = false
    public var forFrames = 1
    public var forSeconds: Double?
    public var clearBelow: Double?
    public var clearFrames = 1
    public var clearAfterSeconds: Double?
    public var cooldownSeconds = 30.0
    public var severity = "warning"
    public var actions: [String] = []
    /// Stricter bars for single labels: such a label counts towards raising only once its
    /// own score has been >= `minScore` for `forFrames` consecutive detections of the device
    /// (e.g. a smoke alarm at 0.99 for 2 windows while glass raises on one window at 0.95).
    /// Clearing is unchanged.
    public var labelRules: [String: LabelRule] = [:]
    /// The false-alarm budget of a pipeline whose model takes a baseline (stateful
    /// anomaly): each device alerts at the quantile of its own score history that this
    /// many readings a day pass; `min_score`, when written, is a floor under it.
    /// nil: `defaultFalseAlarmsPerDay`. Ignored by other pipelines (vigild says so at start).
    public var maxFalseAlarmsPerDay: Double?
    public static let defaultFalseAlarmsPerDay = 1.0

    public struct LabelRule: Sendable, Equatable {
        /// nil: the alert's own `min_score`.
        public var minScore: Double?
        public var forFrames: Int
        public init(minScore: Double?, forFrames: Int = 1) { self.minScore = minScore; self.forFrames = forFrames }
    }

    /// These settings with the model's recommended threshold when `min_score` was left out
    /// (a `clear_below` above it comes down to it).
    public func applying(modelThreshold: Double?) -> AlertSettings {
        guard !minScoreGiven, let t = modelThreshold, (0...1).contains(t) else { return self }
        var s = self
        s.minScore = t
        if let c = s.clearBelow, c > t { s.clearBelow = t }
        return s
    }

    static func parse(_ a: ConfigObject) throws -> AlertSettings {
        var s = AlertSettings()
        s.labels = try a.stringArray("labels") ?? []
        s.minScoreGiven = a.has("min_score")
        s.minScore = try a.double("min_score", default: s.minScore, in: 0...1)
        s.forFrames = try a.int("for_frames", default: s.forFrames, in: 1...100_000)
        s.forSeconds = try a.double("for_s", in: 0...86_400)
        s.clearBelow = try a.double("clear_below", in: 0...1)
        if let c = s.clearBelow, c > s.minScore { throw a.error("clear_below", "must not be above min_score (\(s.minScore))") }
        s.clearFrames = try a.int("clear_frames", default: s.clearFrames, in: 1...100_000)
        s.clearAfterSeconds = try a.double("clear_after_s", in: 0...86_400)
        s.cooldownSeconds = try a.double("cooldown_s", default: s.cooldownSeconds, in: 0...86_400 * 7)
        s.maxFalseAlarmsPerDay = try a.double("max_false_alarms_per_day", in: 0.001...100_000)
        s.severity = try a.string("severity", default: s.severity)
        guard ["info", "warning", "critical"].contains(s.severity) else {
            throw a.error("severity", "must be info, warning or critical")
        }
        s.actions = try a.stringArray("actions") ?? []
        for (label, r) in try a.namedObjects("label_rules") ?? [] {
            let rule = LabelRule(minScore: try r.double("min_score", in: 0...1),
                                 forFrames: try r.int("for_frames", default: 1, in: 1...100_000))
            try r.finish()
            guard r.has("min_score") || r.has("for_frames") else {
                throw r.error("min_score", "label rule for \(label) needs min_score or for_frames")
            }
            s.labelRules[label] = rule
        }
        if !s.labels.isEmpty, let stray = s.labelRules.keys.sorted().first(where: { !s.labels.contains($0) }) {
            throw a.error("label_rules", "\(stray) is not one of this alert's labels \(s.labels)")
        }
        try a.finish()
        return s
    }
}
