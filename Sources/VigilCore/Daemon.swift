import Foundation
import MQTT

/// Wires the stages together: broker -> engine (decode, adapt, infer) -> store.
/// Services start in order (models, store, engine, broker) and stop in reverse.
public final class Daemon: @unchecked Sendable {
    // @unchecked Sendable: `current*` and `mqtt` are guarded by `lock` (reload swaps them); the rest is immutable.
    public var config: Config { lock.withLock { currentConfig } }
    public let counters = Counters()
    public var models: [String: Model] { lock.withLock { currentModels } }
    public let store: Store
    public var engine: Engine { lock.withLock { currentEngine } }
    let lock = NSLock()
    private var mqtt: MQTTClient?
    var currentConfig: Config
    var currentModels: [String: Model]
    var currentEngine: Engine
    /// Held while a frame is handed to the engine, and by reload while it drains and swaps engines.
    let submitGate = NSLock()
    /// Where every detection goes (store, and whatever else is wired in); reload reuses it for the new engine.
    let sink: @Sendable (Detection) -> Void
    /// Called after a successful reload with the new config (Service/Reload.swift).
    var reloadHooks: [@Sendable (Config) -> Void] = []
    public let startedAt = Date()

    public init(config: Config) throws {
        self.currentConfig = config
        log.setLevel(config.logLevel)
        var models: [String: Model] = [:]
        // Load only the models some pipeline uses, once each.
        for p in config.pipelines where models[p.model] == nil {
            guard let m = config.model(named: p.model) else { continue }
            guard FileManager.default.fileExists(atPath: m.path) else {
                throw ModelError(model: m.name, path: m.path, message: "model file not found (models.\(m.name).path)")
            }
            models[m.name] = try Model(name: m.name, path: m.path, threads: m.threads)
        }
        self.currentModels = models
        let pipelines = try config.pipelines.map { try Pipeline.build($0, model: models[$0.model]!) }
        let store = try Store(settings: config.storage, counters: counters)
        self.store = store
        let counters = self.counters
        sink = { detection in
            counters.inferenceFinished(model: detection.model, ms: detection.latencyMs)
            store.append(detection)
        }
        currentEngine = Engine(pipelines: pipelines, limits: config.limits, counters: counters, sink: sink)
    }

    /// Connects to the broker and subscribes. A broker that is not up is logged once and
    /// retried in the background with capped exponential backoff.
    public func start() throws {
        let b = config.mqtt
        let options = MQTTOptions(host: b.host, port: b.port, clientID: b.clientID, username: b.username,
                                  password: b.password, tls: b.tls, keepalive: b.keepalive,
                                  cleanSession: b.cleanSession, reconnectMinDelay: 1, reconnectMaxDelay: 30)
        var handlers = MQTTHandlers()
        let qos = b.qos
        let address = b.address
        let wasConnected = Flag()
        handlers.connected = { [weak self] rc, reason in
            guard let self else { return }
            guard rc == 0 else {
                log.limited(.error, key: "broker-refused", "broker \(address) refused the connection: \(reason)")
                return
            }
            log.notice("connected to broker \(address)" + (wasConnected.getAndSet() ? " again" : ""))
            self.counters.metrics.add(MetricName.brokerConnects)
            // The current config's topics: a reload may have changed them since start().
            for s in Daemon.subscriptions(self.config) {
                do { try self.client?.subscribe(s, qos: qos) } catch { log.error("\(error)") }
            }
        }
        handlers.disconnected = { rc, reason in
            if rc != 0 {
                log.limited(.warning, key: "broker-lost", "lost broker \(address): \(reason); reconnecting with backoff up to 30 s")
            }
        }
        handlers.message = { [weak self] in self?.submit($0) }
        let client = try MQTTClient(options: options, handlers: handlers)
        lock.withLock { mqtt = client }
        if let first = try client.start() {
            log.error("cannot reach broker \(address): \(first.detail); retrying with backoff up to 30 s")
        }
    }

    var client: MQTTClient? { lock.withLock { mqtt } }

    /// Hands a frame to the current engine (on the MQTT thread; waits only while a reload swaps engines).
    func submit(_ message: MQTTMessage) {
        submitGate.withLock { engine.submit(message) }
    }

    /// Stops the broker client and forgets it (reload, when the broker settings changed).
    func stopClient() {
        let c = lock.withLock { () -> MQTTClient? in defer { mqtt = nil }; return mqtt }
        c?.stop()
    }

    /// Each pipeline's subscription once, in config order.
    static func subscriptions(_ config: Config) -> [String] {
        var seen = Set<String>()
        return config.pipelines.map(\.topic.subscription).filter { seen.insert($0).inserted }
    }

    public var isConnected: Bool { client?.isConnected ?? false }

    /// Stops taking frames, finishes the ones in flight, and commits everything.
    public func stop() {
        let c = lock.withLock { () -> MQTTClient? in defer { mqtt = nil }; return mqtt }
        c?.stop()
        engine.stop()
        store.close()
    }

    /// One line for logs and systemd's STATUS=.
    public func statusLine() -> String {
        let s = counters.snapshot()
        return "frames \(s.totalReceived), detections \(s.stored), rejected \(s.totalRejected), dropped \(s.totalDropped)"
    }
}

/// A thread-safe boolean that remembers whether it was ever set.
final class Flag: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    func getAndSet() -> Bool { lock.withLock { defer { value = true }; return value } }
}
