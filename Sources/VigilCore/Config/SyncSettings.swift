import Foundation
import MQTT

/// Where and how the log is forwarded to the cloud (DESIGN.md, cloud sync).
public struct SyncSettings: Sendable, Equatable {
    public struct MQTTTarget: Sendable, Equatable {
        public var broker: BrokerSettings
        public var topic: String
        public init(broker: BrokerSettings, topic: String) { self.broker = broker; self.topic = topic }
    }
    public struct HTTPTarget: Sendable, Equatable {
        public var url: String
        public var tokenFile: String?
        public var gzip: Bool
        public var timeoutSeconds: Double
        public init(url: String, tokenFile: String? = nil, gzip: Bool = false, timeoutSeconds: Double = 10) {
            self.url = url; self.tokenFile = tokenFile; self.gzip = gzip; self.timeoutSeconds = timeoutSeconds
        }
    }
    public var mqtt: MQTTTarget?
    public var http: HTTPTarget?
    public var batch = 100
    public var intervalSeconds = 5.0
    /// Retry delays while the uplink is down: doubling from min to max, with jitter.
    public var backoffMinSeconds = 1.0
    public var backoffMaxSeconds = 60.0
    /// MQTT batches published and not yet acknowledged (PUBACK) at once.
    public var maxInFlight = 4
    /// An MQTT connection without CONNACK after this long is given up and tried again.
    public var connectTimeoutSeconds = 15.0
    /// Send alerts' evidence too (after alerts, before detections), in batches of their own.
    /// Off by default: it puts camera frames on the uplink.
    public var evidence = false
    /// The most one evidence batch holds, in KB of archives before base64 (an archive larger
    /// than this goes alone). 96 KB stays under AWS IoT Core's 128 KB once base64 adds a third.
    public var evidenceBatchKB = 96

    public init(mqtt: MQTTTarget? = nil, http: HTTPTarget? = nil) { self.mqtt = mqtt; self.http = http }

    static func parse(_ s: ConfigObject, node: String, resolve: (String) -> String) throws -> SyncSettings {
        var out = SyncSettings()
        if let m = try s.object("mqtt") {
            let topic = try m.string("topic", default: "vigil/{node}/records")
            // Reuse the broker parser for host/port/tls/credentials; topic is read here first.
            var broker = try Config.parseBroker(m, node: node, resolve: resolve)
            if !m.has("client_id") { broker.clientID = "vigild-\(node)-sync" }
            // Sync only publishes and resends by itself: no broker-side session unless asked for.
            if !m.has("clean_session") { broker.cleanSession = true }
            let resolved = topic.replacingOccurrences(of: "{node}", with: node)
            guard MQTTClient.isValidTopic(resolved) else { throw m.error("topic", "\"\(topic)\" is not a valid topic to publish to") }
            out.mqtt = MQTTTarget(broker: broker, topic: resolved)
        }
        if let h = try s.object("http") {
            let url = try h.requiredString("url")
            guard let u = URL(string: url), ["http", "https"].contains(u.scheme ?? "") else {
                throw h.error("url", "must be an http:// or https:// URL")
            }
            out.http = HTTPTarget(url: url, tokenFile: try h.string("token_file").map(resolve),
                                  gzip: try h.bool("gzip", default: false),
                                  timeoutSeconds: try h.double("timeout_s", default: 10, in: 0.1...600))
            try h.finish()
        }
        out.batch = try s.int("batch", default: out.batch, in: 1...10_000)
        out.intervalSeconds = try s.double("interval_s", default: out.intervalSeconds, in: 0.01...86_400)
        out.backoffMinSeconds = try s.double("backoff_min_s", default: out.backoffMinSeconds, in: 0.01...3600)
        out.backoffMaxSeconds = try s.double("backoff_max_s", default: out.backoffMaxSeconds, in: out.backoffMinSeconds...86_400)
        out.maxInFlight = try s.int("max_inflight", default: out.maxInFlight, in: 1...1000)
        out.connectTimeoutSeconds = try s.double("connect_timeout_s", default: out.connectTimeoutSeconds, in: 0.1...600)
        out.evidence = try s.bool("evidence", default: out.evidence)
        out.evidenceBatchKB = try s.int("evidence_batch_kb", default: out.evidenceBatchKB, in: 1...(64 << 10))
        if out.mqtt == nil && out.http == nil { throw s.error("", "needs \"mqtt\" or \"http\"") }
        if out.mqtt != nil && out.http != nil { throw s.error("", "takes \"mqtt\" or \"http\", not both") }
        try s.finish()
        return out
    }
}
