import Foundation

/// `homeassistant: { "discovery": true, "prefix": "homeassistant", "score_interval_s": 1 }`
public struct HomeAssistantSettings: Sendable, Equatable {
    public var discovery = false
    public var prefix = "homeassistant"
    /// The score sensor is updated at most this often per pipeline and device.
    public var scoreIntervalSeconds = 1.0

    static func parse(_ o: ConfigObject) throws -> HomeAssistantSettings {
        var s = HomeAssistantSettings()
        s.discovery = try o.bool("discovery", default: s.discovery)
        s.prefix = try o.string("prefix", default: s.prefix)
        guard !s.prefix.isEmpty, !s.prefix.contains(where: { "+#".contains($0) }), !s.prefix.hasSuffix("/") else {
            throw o.error("prefix", "must be a topic prefix without '+', '#' or a trailing '/'")
        }
        s.scoreIntervalSeconds = try o.double("score_interval_s", default: s.scoreIntervalSeconds, in: 0...3600)
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
    /// Home Assistant: retained `ON`/`OFF`.
    public func state(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/state/\(pipeline)/\(device)" }
    /// Home Assistant: the latest score, QoS 0, throttled.
    public func score(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/score/\(pipeline)/\(device)" }
    /// Every detection as JSON, QoS 0, when `mqtt.publish_detections` is on.
    public func detections(_ pipeline: String, _ device: String) -> String { "vigil/\(node)/detections/\(pipeline)/\(device)" }
}

/// Home Assistant MQTT discovery messages (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
/// `<prefix>/<component>/<node_id>/<object_id>/config`, retained, one binary_sensor (the
/// alert state) and one sensor (the score) per pipeline and device, grouped under one HA
/// device per vigil device, available while `vigil/{node}/status` is `online`.
public enum HomeAssistantDiscovery {
    /// HA allows `[a-zA-Z0-9_-]` in node and object ids.
    static func id(_ s: String) -> String {
        String(s.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") ? $0 : "_" })
    }

    /// motion and sound models map to HA's classes; anomaly and the rest are a `problem`.
    public static func deviceClass(task: String) -> String {
        switch task {
        case "motion": "motion"
        case "sound": "sound"
        default: "problem"
        }
    }

    /// (topic, payload) pairs to publish retained: the score sensor, and the binary_sensor
    /// when the pipeline has alert rules (`alerts`).
    public static func messages(settings: HomeAssistantSettings, topics: AlertTopics, pipeline: String, device: String,
                                task: String, model: String, alerts: Bool = true) -> [(String, String)] {
        let node = id("vigil_" + topics.node)
        let object = id(pipeline + "_" + device)
        let haDevice: JSONValue = .object([
            ("identifiers", .array([.string(id("vigil_\(topics.node)_\(device)"))])),
            ("name", .string("\(device) (\(topics.node))")),
            ("manufacturer", .string("Vigil")),
            ("model", .string("vigild \(VigilVersion.string)")),
        ])
        let availability: [(String, JSONValue)] = [
            ("availability_topic", .string(topics.status)),
            ("payload_available", .string("online")),
            ("payload_not_available", .string("offline")),
        ]
        let binary: JSONValue = .object([
            ("name", .string("\(pipeline) alert")),
            ("unique_id", .string("\(node)_\(object)_alert")),
            ("object_id", .string("\(node)_\(object)_alert")),
            ("state_topic", .string(topics.state(pipeline, device))),
            ("payload_on", .string("ON")),
            ("payload_off", .string("OFF")),
            ("device_class", .string(deviceClass(task: task))),
            ("json_attributes_topic", .string(topics.alerts(pipeline, device))),
        ] + availability + [("device", haDevice)])
        let score: JSONValue = .object([
            ("name", .string("\(pipeline) score")),
            ("unique_id", .string("\(node)_\(object)_score")),
            ("object_id", .string("\(node)_\(object)_score")),
            ("state_topic", .string(topics.score(pipeline, device))),
            ("state_class", .string("measurement")),
            ("suggested_display_precision", .number(2)),
            ("icon", .string("mdi:gauge")),
        ] + availability + [("device", haDevice)])
        let p = settings.prefix
        let sensor = ("\(p)/sensor/\(node)/\(object)_score/config", score.serialized)
        return alerts ? [("\(p)/binary_sensor/\(node)/\(object)_alert/config", binary.serialized), sensor] : [sensor]
    }
}
