import Foundation
import MQTT

/// The daemon's whole configuration, validated. See etc/vigil.json for every key.
public struct Config: Sendable {
    public var node: String
    public var mqtt: BrokerSettings
    public var storage: StorageSettings
    public var models: [ModelSettings]
    public var pipelines: [PipelineSettings]
    public var actions: [ActionSettings]
    public var sync: SyncSettings?
    public var http: HTTPSettings?
    public var limits: LimitSettings
    public var logLevel: LogLevel
    /// Home Assistant MQTT discovery (alerts); nil when the key is absent.
    public var homeAssistant: HomeAssistantSettings? = nil
    /// Where the config was read from (reload reads it again).
    public var file: String?
    /// What is valid but unsafe; vigild logs each at start, `--check-config` prints them.
    public var warnings: [ConfigWarning] = []

    public static let defaultPath = "/etc/vigil/vigil.json"

    public func model(named name: String) -> ModelSettings? { models.first { $0.name == name } }
    public func action(named name: String) -> ActionSettings? { actions.first { $0.name == name } }
}

/// Something valid but unsafe in a config: logged at start; `vigild --check-config`
/// prints it, and fails on a `severe` one (an exposed secret).
public struct ConfigWarning: Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var message: String
    public var severe = false
    public var description: String { "\(key): \(message)" }
}

public struct BrokerSettings: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 1883
    public var clientID: String?
    public var username: String?
    public var passwordFile: String?
    public var password: String?
    public var tls: MQTTTLS?
    public var keepalive = 30
    public var qos: Int32 = 1
    public var cleanSession = false
    /// Publish every detection on `vigil/{node}/detections/{pipeline}/{device}` (QoS 0).
    public var publishDetections = false

    public var address: String { "\(host):\(port)" }
}

public struct StorageSettings: Sendable, Equatable {
    public var path = "/var/lib/vigil/vigil.db"
    public var retentionDays = 30.0
    public var maxSizeMB = 1024.0
    /// Rows are committed together at most this often...
    public var commitIntervalMs = 100
    /// ...or as soon as this many are waiting.
    public var commitRows = 500
    /// How often retention deletes old synced rows.
    public var maintenanceIntervalSeconds = 60.0
    /// Below this much free space on its file system, the log stops growing (0: never).
    public var minFreeMB = 64.0
    /// What an acknowledged frame survives (Intake/IntakeJournal.swift).
    public var durability = Durability.process
    /// The intake journal's directory; empty: `intake/` beside the database.
    public var intakePath = ""
    /// The most the evidence of alerts (Evidence/) may take on disk; the oldest goes first.
    /// 64 MB holds some 300 camera alerts at 160x120 or 600 audio alerts: an SD card's worth
    /// of room that never crowds out the log.
    public var evidenceMB = 64.0
    /// The evidence folder; empty: `evidence/` beside the database.
    public var evidencePath = ""
    /// The most the saved camera states (`motion-state/` beside the database) may take;
    /// the states written least recently go first (CameraStateFolder).
    public var motionStateMB = Double(CameraStateFolder.defaultMaxBytes >> 20)

    /// Where evidence lives.
    public var evidenceDirectory: String {
        evidencePath.isEmpty ? URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("evidence").path : evidencePath
    }

    /// Where the journal lives.
    public var intakeDirectory: String {
        intakePath.isEmpty ? URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("intake").path : intakePath
    }

    public init() {}
}

public struct ModelSettings: Sendable, Equatable {
    public var name: String
    public var path: String
    /// ONNX Runtime intra-op threads; 0 lets it choose.
    public var threads: Int
}

public struct LimitSettings: Sendable, Equatable {
    /// Payloads larger than this are rejected before decoding.
    public var maxPayloadBytes = 4 * 1024 * 1024
    /// Frames waiting for inference per pipeline and lane before `submit` waits for room.
    /// Deep enough to absorb what a broker delivers in one burst after a reconnect (its
    /// stored session) or after the gateway's CPU was busy elsewhere for a moment: at 16,000
    /// readings/s a depth of 2048 overflowed on such bursts while the workers were 70 % idle,
    /// 8192 did not. Small frames cost ~250 bytes each here; `maxQueueBytes` bounds the memory.
    public var queueDepth = 16384
    /// Inference workers (frames of one device always stay in order).
    public var workers = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
    /// Bytes of payload waiting for inference across all pipelines; past it `submit` waits
    /// for room (back-pressure to the broker), so queued memory stays bounded.
    public var maxQueueBytes = 64 << 20
    /// Stream state (previous frame, audio buffer, sensor window) of a device silent this
    /// long is freed.
    public var deviceTTL: Double = 3600
    /// Journaled frames whose rows are not committed yet, in MB of segment files; past it
    /// reading from the broker waits (the broker keeps the frames in vigild's session).
    public var intakeMaxMB = 256
    /// A payload `ts` further ahead of the arrival time than this is rejected (`badTimestamp`).
    /// Sensors and gateway each keep NTP time, so minutes cover any honest disagreement.
    public var maxClockSkew: Double = 300
    /// Members one JSON object in a payload may have; more is rejected (`tooLarge`). Tasmota
    /// and Zigbee2MQTT send tens.
    public var maxJSONKeys = 1024

    public init() {}

    /// How long one frame may keep a lane busy and still count as progress for liveness
    /// (Service/Health.swift): 1 s per 64 KiB of the largest payload allowed, at least 60 s. One
    /// 4 MiB payload (the default maximum) took ~8 s here (issue 20), so the default 64 s leaves
    /// a gateway 8 times slower room; a wedged lane is still a stall, only later.
    public var frameAllowance: Double { max(60, Double(maxPayloadBytes) / 65_536) }

    /// ONNX Runtime intra-op threads for a model whose config does not say: the cores
    /// shared among the workers, so that workers x threads does not oversubscribe the CPU.
    public var defaultModelThreads: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, workers))
    }
}

public struct HTTPSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// A file holding the bearer token `/evidence/` asks for; without it, evidence is served
    /// to loopback clients only (camera frames are private).
    public var tokenFile: String? = nil
}

public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case error = 3, warning = 4, notice = 5, info = 6, debug = 7
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
    public var name: String {
        switch self {
        case .error: "error"
        case .warning: "warning"
        case .notice: "notice"
        case .info: "info"
        case .debug: "debug"
        }
    }
    public init?(name: String) {
        guard let l = LogLevel.allCases.first(where: { $0.name == name }) else { return nil }
        self = l
    }
}

extension Config {
    /// Reads and validates a config file.
    public static func load(path: String) throws -> Config {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file (permissions?)" : "no such file"
            throw ConfigError(file: path, path: "", message: reason)
        }
        var c = try parse(Array(data), file: path)
        c.file = path
        return c
    }

    /// Parses and validates config text. Relative paths are resolved against the config's folder.
    public static func parse(_ text: [UInt8], file: String? = nil) throws -> Config {
        let root = try ConfigObject.root(text: text, file: file)
        var warnings: [ConfigWarning] = []
        let base = file.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? FileManager.default.currentDirectoryPath
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : URL(fileURLWithPath: p, relativeTo: URL(fileURLWithPath: base + "/")).standardizedFileURL.path }

        let node = try root.string("node") ?? ProcessInfo.processInfo.hostName
        guard !node.isEmpty, !node.contains(where: { "/+#".contains($0) }) else {
            throw root.error("node", "must be a non-empty name without '/', '+' or '#'")
        }
        let logLevelName = try root.string("log_level", default: "info")
        guard let logLevel = LogLevel(name: logLevelName) else {
            throw root.error("log_level", "must be one of \(LogLevel.allCases.map(\.name).joined(separator: ", "))")
        }

        let mqtt = try parseBroker(root.object("mqtt"), node: node, resolve: resolve)
        var storage = StorageSettings()
        if let s = try root.object("storage") {
            storage.path = resolve(try s.string("path", default: storage.path))
            storage.retentionDays = try s.double("retention_days", default: storage.retentionDays, in: 0...36500)
            storage.maxSizeMB = try s.double("max_size_mb", default: storage.maxSizeMB, in: 1...1_000_000)
            storage.commitIntervalMs = try s.int("commit_interval_ms", default: storage.commitIntervalMs, in: 1...60_000)
            storage.commitRows = try s.int("commit_rows", default: storage.commitRows, in: 1...100_000)
            storage.minFreeMB = try s.double("min_free_mb", default: storage.minFreeMB, in: 0...1_000_000)
            let durability = try s.string("durability", default: storage.durability.rawValue)
            guard let d = Durability(rawValue: durability) else {
                throw s.error("durability", "must be one of \(Durability.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(durability)\")")
            }
            storage.durability = d
            if let p = try s.string("intake_path") { storage.intakePath = resolve(p) }
            storage.evidenceMB = try s.double("evidence_mb", default: storage.evidenceMB, in: 0...1_000_000)
            if let p = try s.string("evidence_path") { storage.evidencePath = resolve(p) }
            storage.motionStateMB = try s.double("motion_state_mb", default: storage.motionStateMB, in: 1...1_000_000)
            try s.finish()
        }

        var limits = LimitSettings()
        if let l = try root.object("limits") {
            limits.maxPayloadBytes = try l.int("max_payload_bytes", default: limits.maxPayloadBytes, in: 16...(256 << 20))
            limits.queueDepth = try l.int("queue_depth", default: limits.queueDepth, in: 1...1_000_000)
            limits.workers = try l.int("workers", default: limits.workers, in: 1...64)
            limits.maxQueueBytes = try l.int("max_queue_bytes", default: limits.maxQueueBytes, in: 1024...(4 << 30))
            limits.deviceTTL = try l.double("device_ttl_s", default: limits.deviceTTL, in: 1...(86_400 * 30))
            limits.intakeMaxMB = try l.int("intake_max_mb", default: limits.intakeMaxMB, in: 4...1_000_000)
            limits.maxClockSkew = try l.double("max_clock_skew_s", default: limits.maxClockSkew, in: 0...(86_400 * 366))
            limits.maxJSONKeys = try l.int("max_json_keys", default: limits.maxJSONKeys, in: 1...100_000)
            try l.finish()
        }

        var models: [ModelSettings] = []
        for (name, m) in try root.namedObjects("models") ?? [] {
            let path = resolve(try m.requiredString("path"))
            let threads = try m.int("threads", default: limits.defaultModelThreads, in: 0...64)
            try m.finish()
            models.append(ModelSettings(name: name, path: path, threads: threads))
        }

        let actions = try (root.namedObjects("actions") ?? []).map { name, obj in
            try ActionSettings.parse(name: name, obj, resolve: resolve)
        }

        guard let pipelineObjects = try root.objectArray("pipelines"), !pipelineObjects.isEmpty else {
            throw root.error("pipelines", "at least one pipeline is required")
        }
        var pipelines: [PipelineSettings] = []
        for p in pipelineObjects {
            let settings = try PipelineSettings.parse(p, resolve: resolve)
            if pipelines.contains(where: { $0.name == settings.name }) {
                throw p.error("name", "duplicate pipeline name \"\(settings.name)\"")
            }
            if !models.contains(where: { $0.name == settings.model }) {
                throw p.error("model", "names model \"\(settings.model)\", which is not under \"models\" (have: \(models.map(\.name).joined(separator: ", ")))")
            }
            for (i, a) in (settings.alert?.actions ?? []).enumerated() where !actions.contains(where: { $0.name == a }) {
                throw p.error("alert.actions[\(i)]", "names action \"\(a)\", which is not under \"actions\"")
            }
            for earlier in pipelines {
                if let topic = settings.topic.overlap(with: earlier.topic) {
                    throw p.error("topic", "\"\(settings.topic.pattern)\" overlaps pipeline \"\(earlier.name)\" (\"\(earlier.topic.pattern)\"): a message such as \(topic) goes only to the first pipeline that matches, so this one would never see it; make the topics disjoint")
                }
            }
            var withState = settings
            if settings.isImage {
                // Camera state is saved next to the log (docs/pipelines.md).
                var m = settings.motion ?? MotionSettings()
                m.stateDirectory = URL(fileURLWithPath: storage.path).deletingLastPathComponent().appendingPathComponent("motion-state").path
                withState.motion = m
            }
            pipelines.append(withState)
        }

        let sync = try root.object("sync").map { try SyncSettings.parse($0, node: node, resolve: resolve) }

        var http: HTTPSettings?
        if let h = try root.object("http") {
            let listen = try h.string("listen", default: "127.0.0.1:9108")
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                  (0...65535).contains(port) else {
                throw h.error("listen", "must be HOST:PORT, got \"\(listen)\"")
            }
            http = HTTPSettings(host: String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port)
            if let t = try h.string("token_file") {
                let path = resolve(t)
                guard FileManager.default.isReadableFile(atPath: path) else { throw h.error("token_file", "cannot read \(path)") }
                http?.tokenFile = path
            }
            if let h = http, ["", "0.0.0.0", "::", "*"].contains(h.host) {
                warnings.append(ConfigWarning(key: "http.listen", message: "\"\(listen)\" serves /healthz and /metrics to every network the gateway is on (they have no authentication); listen on 127.0.0.1 or one LAN address unless that is meant"))
            }
            try h.finish()
        }
        let homeAssistant = try root.object("homeassistant").map(HomeAssistantSettings.parse)
        try root.finish()
        var config = Config(node: node, mqtt: mqtt, storage: storage, models: models, pipelines: pipelines,
                            actions: actions, sync: sync, http: http, limits: limits, logLevel: logLevel, file: file)
        config.homeAssistant = homeAssistant
        // Secrets live in files so the config can be shared; a file others can read defeats that.
        let secrets: [(String, String?)] = [
            ("mqtt.password_file", mqtt.passwordFile), ("mqtt.tls.key_file", mqtt.tls?.keyFile),
            ("sync.mqtt.password_file", sync?.mqtt?.broker.passwordFile), ("sync.mqtt.tls.key_file", sync?.mqtt?.broker.tls?.keyFile),
            ("sync.http.token_file", sync?.http?.tokenFile), ("http.token_file", http?.tokenFile),
        ]
        for case let (key, path?) in secrets {
            if let why = secretExposure(path) { warnings.append(ConfigWarning(key: key, message: why, severe: true)) }
        }
        config.warnings = warnings
        return config
    }

    static func parseBroker(_ obj: ConfigObject?, node: String, resolve: (String) -> String) throws -> BrokerSettings {
        var b = BrokerSettings()
        b.clientID = "vigild-\(node)"
        guard let m = obj else { return b }
        b.host = try m.string("host", default: b.host)
        b.port = try m.int("port", default: b.port, in: 1...65535)
        b.clientID = try m.string("client_id") ?? b.clientID
        b.username = try m.string("username")
        if let pf = try m.string("password_file") {
            let path = resolve(pf)
            b.passwordFile = path
            b.password = try readSecret(path, m, key: "password_file")
        }
        b.tls = try parseTLS(m.object("tls"), resolve: resolve)
        b.keepalive = try m.int("keepalive_s", default: b.keepalive, in: 5...3600)
        b.qos = Int32(try m.int("qos", default: Int(b.qos), in: 0...2))
        b.cleanSession = try m.bool("clean_session", default: b.cleanSession)
        b.publishDetections = try m.bool("publish_detections", default: b.publishDetections)
        try m.finish()
        return b
    }

    static func parseTLS(_ t: ConfigObject?, resolve: (String) -> String) throws -> MQTTTLS? {
        guard let t else { return nil }
        var tls = MQTTTLS()
        for key in ["ca_file", "cert_file", "key_file"] {
            guard let p = try t.string(key) else { continue }
            let path = resolve(p)
            guard FileManager.default.isReadableFile(atPath: path) else { throw t.error(key, "cannot read \(path)") }
            switch key {
            case "ca_file": tls.caFile = path
            case "cert_file": tls.certFile = path
            default: tls.keyFile = path
            }
        }
        if (tls.certFile == nil) != (tls.keyFile == nil) {
            throw t.error(tls.certFile == nil ? "cert_file" : "key_file", "cert_file and key_file go together (mutual TLS)")
        }
        try t.finish()
        return tls
    }

    /// Why a secret file is exposed (any permission for "other" users), or nil when it is
    /// not. Group access is left alone: packaging may share the file with a `vigil` group.
    static func secretExposure(_ path: String) -> String? {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
              let mode = (attrs[.posixPermissions] as? NSNumber)?.intValue else { return nil }
        guard mode & 0o007 != 0 else { return nil }
        return "\(path) is readable by other users (mode \(String(mode & 0o777, radix: 8))); chmod 600 it (owner vigil) so only vigild reads it"
    }

    /// Reads a secret from a file, trimming the trailing newline editors add.
    static func readSecret(_ path: String, _ obj: ConfigObject, key: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw obj.error(key, "cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
    }
}
