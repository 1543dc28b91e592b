import Foundation

/// `homeassistant: { "discovery": true, "prefix": "homeassistant", "score_interval_s": 1, "max_devices": 1000, "forget_after_s": 604800 }`
public struct HomeAssistantSettings: Sendable, Equatable {
    public var discovery = false
    public var prefix = "homeassistant"
    /// The score sensor is updated at most this often per pipeline and device.
    public var scoreIntervalSeconds = 1.0
    /// Pipeline and device pairs announced at once; past it new devices are not announced
    /// (counted and logged). Each costs retained messages on the broker (a config and a state
    /// per alert entity, the score's config, the availability), kept until the device has been
    /// silent for `forget_after_s`.
    public var maxDevices = 1000
    /// Also an `image` entity per camera pipeline and device: the trigger frame of its last
    /// alert (Evidence/), retained on the broker. Off by default: it puts frames on the broker.
    public var snapshots = false
    /// A device silent for `limits.device_ttl_s` is shown unavailable (and its alert OFF); one
    /// silent this long (at least the TTL) loses its entities: their retained configs are removed.
    public var forgetAfterSeconds = 7 * 86_400.0

    static func parse(_ o: ConfigObject) throws -> HomeAssistantSettings {
        var s = HomeAssistantSettings()
        s.discovery = try o.bool("discovery", default: s.discovery)
        s.prefix = try o.string("prefix", default: s.prefix)
        guard !s.prefix.isEmpty, !s.prefix.contains(where: { "+#".contains($0) }), !s.prefix.hasSuffix("/") else {
            throw o.error("prefix", "must be a topic prefix without '+', '#' or a trailing '/'")
        }
        s.scoreIntervalSeconds = try o.double("score_interval_s", default: s.scoreIntervalSeconds, in: 0...3600)
        s.maxDevices = try o.int("max_devices", default: s.maxDevices, in: 1...100_000)
        s.snapshots = try o.bool("snapshots", default: s.snapshots)
        s.forgetAfterSeconds = try o.double("forget_after_s", default: s.forgetAfterSeconds, in: 1...(86_400 * 365))
        try o.finish()
        return s
    }
}

/// The topics vigild publishes for a node (the promise to subscribers).
public struct AlertTopics: Sendable {
    public let node: String
    public init(node: String) { self.node = node }
    /// Retained `online`/`offline`; `offline` is the last will.
    public var status: String { "vigil/\(node)/status" }
    /// Raised and cleared transitions, JSON, QoS 1, not retained.
    public func alerts(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/alerts/\(pipeline)/\(device)" }
    /// Home Assistant: retained `ON`/`OFF`, whatever label raised.
    public func state(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/state/\(pipeline)/\(device)" }
    /// Home Assistant: retained `ON`/`OFF` of one alert entity: `state/{pipeline}/{device}/{label}`
    /// (`/_enrolled` for enrolled sounds); the pipeline's own topic for `.any`.
    public func state(_ pipeline: String, _ device: String, _ entity: AlertEntity) -> String {
        entity.segment.map { state(pipeline, device) + "/" + $0 } ?? state(pipeline, device)
    }
    /// Home Assistant: retained `online`/`offline` per pipeline and device: `offline` once the
    /// device has been silent for `limits.device_ttl_s` (its entities show unavailable).
    public func availability(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/availability/\(pipeline)/\(device)" }
    /// Home Assistant: the latest score, QoS 0, throttled.
    public func score(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/score/\(pipeline)/\(device)" }
    /// Home Assistant `image`: the last alert's trigger frame, PNG, retained (`homeassistant.snapshots`).
    public func snapshot(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/snapshot/\(pipeline)/\(device)" }
    /// Every detection as JSON, QoS 0, when `mqtt.publish_detections` is on.
    public func detections(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/detections/\(pipeline)/\(device)" }
}

/// One alert binary_sensor of a pipeline and device in Home Assistant. A rule that lists
/// labels gets one per label, each with its own `device_class` (a pipeline alerting on glass
/// and smoke shows a `smoke` entity and a `safety` one, not one `safety` for both), plus one
/// for enrolled sounds when its model has an embedding output. A rule without labels alerts on
/// any label of the model (521 for AudioSet), so it keeps one entity for all (`.any`).
///
/// Enrolled sounds share one entity per pipeline and device, not one per enrolled label:
/// enrollments come and go while vigild runs (`vigilctl enroll` / `unenroll`), so per-label
/// entities would be announced mid-run and left dead after an unenroll until
/// `forget_after_s`; which sound it was is in the entity's attributes (the alert message's
/// `label`).
public enum AlertEntity: Hashable, Sendable {
    case any
    case label(String)
    case enrolled

    /// A pipeline's alert entities: its rule's `labels` (and enrolled sounds), or `.any`.
    public static func of(labels: [String], enrolls: Bool) -> [AlertEntity] {
        labels.isEmpty ? [.any] : labels.map { .label($0) } + (enrolls ? [.enrolled] : [])
    }

    /// The entity among `entities` an alert of `label` shows on (a rule with labels only
    /// raises for those and for enrolled sounds).
    static func showing(_ label: String, in entities: [AlertEntity]) -> AlertEntity? {
        if entities.contains(.any) { return .any }
        if entities.contains(.label(label)) { return .label(label) }
        return entities.contains(.enrolled) ? .enrolled : nil
    }

    /// Its part of ids and topics (nil: the pipeline and device's own). A label is used as it
    /// is when it is a valid id of at most 32 characters not starting with `_`; others are
    /// cut, sanitised and hashed, so `_enrolled` is never a label's.
    var segment: String? {
        switch self {
        case .any: return nil
        case .enrolled: return "_enrolled"
        case .label(let l):
            let plain = HomeAssistantDiscovery.id(l)
            return plain == l && l.count <= 32 && !l.hasPrefix("_") && !l.isEmpty
                ? l : HomeAssistantDiscovery.id(String(l.prefix(32))) + "_" + HomeAssistantDiscovery.hash(l)
        }
    }
}

/// Home Assistant MQTT discovery messages (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
/// `<prefix>/<component>/<node_id>/<object_id>/config`, retained, the alert binary_sensors
/// (`AlertEntity`) and one sensor (the score) per pipeline and device, grouped under one HA
/// device per vigil device, available while `vigil/{node}/status` is `online` and the
/// device's own availability topic is (`availability_mode: all`). Keys as HA 2025.10 reads
/// them: `default_entity_id` (`<domain>.<id>`) replaces `object_id`, deprecated in 2025.10 and
/// read until 2026.4 (HA's deprecation notice: "Replace the object_id option with
/// default_entity_id").
public enum HomeAssistantDiscovery {
    /// HA allows `[a-zA-Z0-9_-]` in node and object ids.
    static func id(_ s: String) -> String {
        String(s.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") ? $0 : "_" })
    }

    /// 8 hex digits of FNV-1a over the raw names (NUL-separated). Ids are `id(names)` plus
    /// this, because `id` alone maps `a.b` and `a_b` (or pipeline `x_y` with device `z`, and
    /// `x` with `y_z`) to one id, and Home Assistant would merge two devices' entities.
    static func hash(_ parts: String...) -> String {
        var h: UInt32 = 0x811c9dc5
        for (i, p) in parts.enumerated() {
            if i > 0 { h = (h ^ 0) &* 0x01000193 }
            for b in p.utf8 { h = (h ^ UInt32(b)) &* 0x01000193 }
        }
        return String(format: "%08x", h)
    }

    /// The object id of a pipeline and device: readable (cut to 64 characters; a device
    /// name may be 64 KB) and unique (the hash of the raw names).
    static func object(pipeline: String, device: String) -> String {
        id(String((pipeline + "_" + device).prefix(64))) + "_" + hash(pipeline, device)
    }

    /// The retained config topics of a pipeline and device: (binary_sensor, sensor, image).
    public static func configTopics(settings: HomeAssistantSettings, topics: AlertTopics, pipeline: String, device: String) -> (alert: String, score: String, snapshot: String) {
        let node = id("vigil_" + topics.node)
        let object = object(pipeline: pipeline, device: device)
        return ("\(settings.prefix)/binary_sensor/\(node)/\(object)_alert/config", "\(settings.prefix)/sensor/\(node)/\(object)_score/config",
                "\(settings.prefix)/image/\(node)/\(object)_snapshot/config")
    }

    /// The retained config topic of one alert entity (`.any`: the `alert` of `configTopics`).
    public static func configTopic(settings: HomeAssistantSettings, topics: AlertTopics, pipeline: String, device: String,
                                   entity: AlertEntity) -> String {
        guard let segment = entity.segment else { return configTopics(settings: settings, topics: topics, pipeline: pipeline, device: device).alert }
        return "\(settings.prefix)/binary_sensor/\(id("vigil_" + topics.node))/\(object(pipeline: pipeline, device: device))_\(segment)_alert/config"
    }

    /// The class of one alert entity: a label's own (`labelClass`), else the task's; enrolled sounds are `sound`.
    public static func deviceClass(task: String, entity: AlertEntity) -> String {
        switch entity {
        case .any: return deviceClass(task: task)
        case .label(let l): return deviceClass(task: task, labels: [l])
        case .enrolled: return "sound"
        }
    }

    /// The binary_sensor's class (HA's BinarySensorDeviceClass): from the alert's labels when
    /// they name what HA has a class for (a smoke alarm is `smoke`, breaking glass `safety`:
    /// "on means unsafe"; HA has no glass-break class and declined to add one for now,
    /// home-assistant/architecture discussion 1455; `tamper` means the sensor is tampered with), else from the model's task (`motion`,
    /// `sound`; anomaly and the rest are a `problem`). Labels of different classes in one
    /// alert make it `safety`, the generic one.
    public static func deviceClass(task: String, labels: [String] = []) -> String {
        let byTask: String
        switch task {
        case "motion": byTask = "motion"
        case "sound": byTask = "sound"
        default: byTask = "problem"
        }
        let classes = Set(labels.map { labelClass($0) ?? byTask })
        return classes.count == 1 ? classes.first! : (classes.isEmpty ? byTask : "safety")
    }

    /// HA's class for one alert label, when its name says (AudioSet and common names).
    static func labelClass(_ label: String) -> String? {
        let l = label.lowercased()
        if l.contains("smoke") || l.contains("fire") { return "smoke" }
        if l.contains("carbon_monoxide") || l.contains("carbon monoxide") { return "carbon_monoxide" }
        if l.contains("glass") { return "safety" }
        if l.contains("gas") { return "gas" }
        if l == "motion" || l.contains("person") { return "motion" }
        return nil
    }

    /// (topic, payload) pairs to publish retained: the score sensor, and the alert
    /// binary_sensors when the pipeline has alert rules (`alerts`). With per-label entities the
    /// single per-pipeline alert entity earlier versions announced gets an empty config first,
    /// so Home Assistant drops it instead of keeping a dead entity.
    public static func messages(settings: HomeAssistantSettings, topics: AlertTopics, pipeline: String, device: String,
                                task: String, model: String, alerts: Bool = true, snapshot: Bool = false,
                                alertLabels: [String] = [], enrolls: Bool = false) -> [(String, String)] {
        let node = id("vigil_" + topics.node)
        let object = object(pipeline: pipeline, device: device)
        let haDevice: JSONValue = .object([
            ("identifiers", .array([.string(id(String("vigil_\(topics.node)_\(device)".prefix(64))) + "_" + hash(topics.node, device))])),
            ("name", .string("\(device.prefix(64)) (\(topics.node))")),
            ("manufacturer", .string("Vigil")),
            ("model", .string("vigild \(VigilVersion.string)")),
        ])
        func available(_ topic: String) -> JSONValue {
            .object([("topic", .string(topic)), ("payload_available", .string("online")), ("payload_not_available", .string("offline"))])
        }
        // vigild up, and the device not silent for the TTL.
        let availability: [(String, JSONValue)] = [
            ("availability", .array([available(topics.status), available(topics.availability(pipeline, device))])),
            ("availability_mode", .string("all")),
        ]
        // Every entity: its name and ids, its own keys, then availability and the device.
        func entity(_ domain: String, _ kind: String, _ keys: [(String, JSONValue)], name: String? = nil) -> JSONValue {
            .object([
                ("name", .string(name ?? "\(pipeline) \(kind)")),
                ("unique_id", .string("\(node)_\(object)_\(kind)")),
                ("default_entity_id", .string("\(domain).\(node)_\(object)_\(kind)")),
            ] + keys + availability + [("device", haDevice)])
        }
        let entities = AlertEntity.of(labels: alertLabels, enrolls: enrolls)
        let binaries = entities.map { e -> (String, String) in
            let name: String
            switch e {
            case .any: name = "\(pipeline) alert"
            case .label(let l): name = "\(pipeline) \(l)"
            case .enrolled: name = "\(pipeline) enrolled sound"
            }
            let binary = entity("binary_sensor", e.segment.map { "\($0)_alert" } ?? "alert", [
                ("state_topic", .string(topics.state(pipeline, device, e))),
                ("payload_on", .string("ON")),
                ("payload_off", .string("OFF")),
                ("device_class", .string(deviceClass(task: task, entity: e))),
                ("json_attributes_topic", .string(topics.alerts(pipeline, device))),
            ], name: name)
            return (configTopic(settings: settings, topics: topics, pipeline: pipeline, device: device, entity: e), binary.serialized)
        }
        let score = entity("sensor", "score", [
            ("state_topic", .string(topics.score(pipeline, device))),
            ("state_class", .string("measurement")),
            ("suggested_display_precision", .number(2)),
            ("icon", .string("mdi:gauge")),
        ])
        let t = configTopics(settings: settings, topics: topics, pipeline: pipeline, device: device)
        let sensor = (t.score, score.serialized)
        let migrated = entities == [.any] ? [] : [(t.alert, "")]
        var out = alerts ? migrated + binaries + [sensor] : [sensor]
        if snapshot && alerts {
            let image = entity("image", "snapshot", [
                ("image_topic", .string(topics.snapshot(pipeline, device))),
                ("content_type", .string("image/png")),
            ])
            out.append((t.snapshot, image.serialized))
        }
        return out
    }
}

/// The pipeline and device pairs vigild has announced to Home Assistant, and when each last
/// made a detection: at most `maxDevices`. A pair silent for `ttl` seconds turns stale (shown
/// unavailable); one silent for `forgetAfter` is forgotten (its retained configs are then
/// removed, so a broker does not keep one per name ever seen).
final class DiscoveredDevices: @unchecked Sendable {
    // @unchecked Sendable: `lastSeen` and `stale` are guarded by `lock`.
    struct Key: Hashable, Sendable { let pipeline: String; let device: String }
    enum Sighting { case new, known, returned, overCap }
    let maxDevices: Int
    let ttl: Double
    let forgetAfter: Double
    private let lock = NSLock()
    private var lastSeen: [Key: Double] = [:]
    private var stale: Set<Key> = []

    init(maxDevices: Int, ttl: Double, forgetAfter: Double? = nil) {
        self.maxDevices = maxDevices; self.ttl = ttl; self.forgetAfter = max(ttl, forgetAfter ?? ttl)
    }

    /// Notes a detection of this pair at `now` (monotonic seconds).
    func saw(pipeline: String, device: String, now: Double) -> Sighting {
        let key = Key(pipeline: pipeline, device: device)
        return lock.withLock {
            if lastSeen[key] != nil {
                lastSeen[key] = now
                return stale.remove(key) != nil ? .returned : .known
            }
            guard lastSeen.count < maxDevices else { return .overCap }
            lastSeen[key] = now
            return .new
        }
    }

    /// The pairs that turned stale (silent for `ttl`) since the last call, and the ones
    /// forgotten (silent for `forgetAfter`).
    func expire(now: Double) -> (stale: [Key], gone: [Key]) {
        lock.withLock {
            let gone = lastSeen.filter { now - $0.value > forgetAfter }.map(\.key)
            for k in gone { lastSeen[k] = nil; stale.remove(k) }
            let newlyStale = lastSeen.filter { now - $0.value > ttl && !stale.contains($0.key) }.map(\.key)
            stale.formUnion(newlyStale)
            return (newlyStale, gone)
        }
    }

    func isStale(_ key: Key) -> Bool { lock.withLock { stale.contains(key) } }

    func contains(pipeline: String, device: String) -> Bool {
        lock.withLock { lastSeen[Key(pipeline: pipeline, device: device)] != nil }
    }

    var all: [Key] { lock.withLock { Array(lastSeen.keys) } }
    var count: Int { lock.withLock { lastSeen.count } }
}
