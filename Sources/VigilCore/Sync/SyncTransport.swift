import Foundation
import MQTT

/// Why a batch did not reach the cloud, in words for the log and `meta.last_sync_error`.
public struct SyncFailure: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// What the syncer hears from its transport, always on the syncer's queue.
struct SyncTransportEvents: Sendable {
    /// The transport can take batches (connected, or always for HTTP).
    var ready: @Sendable () -> Void
    /// The connection went down: batches in flight are lost; it retries by itself after `retryIn` s.
    var lost: @Sendable (_ reason: String, _ retryIn: Double) -> Void
}

/// Carries one JSON batch to the cloud and says whether the cloud acknowledged it.
/// Lifecycle: `start` once, `send` only while `isReady`, `stop` once. Every method is called
/// on the syncer's queue, and every callback comes back on it.
protocol SyncTransport: AnyObject {
    /// Where batches go, for log lines ("cloud broker host:port", "https://...").
    var target: String { get }
    var isReady: Bool { get }
    /// Batches that may be awaiting acknowledgement at once.
    var maxInFlight: Int { get }
    func start(_ events: SyncTransportEvents)
    /// `done` runs exactly once: success on the cloud's acknowledgement (PUBACK, HTTP 2xx).
    func send(_ payload: [UInt8], done: @escaping @Sendable (Result<Void, SyncFailure>) -> Void)
    /// Called on each sync tick: gives up on acknowledgements that are overdue.
    func tick()
    func stop()
}

/// Batches as MQTT publishes at QoS 1 to the cloud broker; a batch counts as delivered on
/// its PUBACK. The transport owns its reconnects: after a loss it drops the client and dials
/// again after an exponential delay with jitter (libmosquitto's own reconnect has no jitter).
final class MQTTSyncTransport: SyncTransport, @unchecked Sendable {
    // @unchecked Sendable: all mutable state is used only on `queue` (checked where it changes);
    // MQTT callbacks hop onto it.
    let settings: SyncSettings.MQTTTarget
    private let queue: DispatchQueue
    private var events: SyncTransportEvents?
    private var client: MQTTClient?
    /// Bumped on every (re)connect, so callbacks of an abandoned client are ignored.
    private var generation = 0
    private var connected = false
    private var stopped = false
    private var backoff: Backoff
    private var pending: [Int32: (sentAt: Double, done: @Sendable (Result<Void, SyncFailure>) -> Void)] = [:]
    let maxInFlight: Int
    /// No PUBACK within this many seconds counts as a lost connection.
    let ackTimeout: Double
    /// No CONNACK within this many seconds counts as a failed connection.
    let connectTimeout: Double

    init(settings: SyncSettings.MQTTTarget, sync: SyncSettings, queue: DispatchQueue) {
        self.settings = settings
        self.queue = queue
        self.maxInFlight = sync.maxInFlight
        self.backoff = Backoff(min: sync.backoffMinSeconds, max: sync.backoffMaxSeconds)
        self.ackTimeout = Double(max(10, settings.broker.keepalive * 2))
        self.connectTimeout = sync.connectTimeoutSeconds
    }

    var target: String { "cloud broker \(settings.broker.address)" }
    var isReady: Bool { connected }

    private var tlsNote: String {
        guard let tls = settings.broker.tls else { return "" }
        var parts = ["TLS"]
        if let ca = tls.caFile { parts.append("ca_file \(ca)") }
        if let cert = tls.certFile { parts.append("cert_file \(cert)") }
        return " (" + parts.joined(separator: ", ") + ")"
    }

    func start(_ events: SyncTransportEvents) {
        self.events = events
        connect()
    }

    private func connect() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard !stopped else { return }
        generation += 1
        let gen = generation
        let b = settings.broker
        var h = MQTTHandlers()
        h.connected = { [weak self] rc, reason in
            guard let self else { return }
            self.queue.async { self.onConnect(gen, rc, reason) }
        }
        h.disconnected = { [weak self] rc, reason in
            guard let self else { return }
            self.queue.async { self.onDisconnect(gen, rc, reason) }
        }
        h.published = { [weak self] mid in
            guard let self else { return }
            self.queue.async { self.onPublished(gen, mid) }
        }
        h.log = { [weak self] level, message in
            log.debug("sync: libmosquitto: \(message)")
            // libmosquitto says why a TLS handshake failed only in its log (OpenSSL's reason).
            // Kept at once, not on the queue: a handshake that fails inside start() is reported
            // by start() before a hop onto the queue could land.
            guard let self, message.contains("OpenSSL") || message.contains("certificate") else { return }
            self.libraryError.set(message)
        }
        // Reconnects are ours (with jitter): libmosquitto's own are pushed out of the way.
        let options = MQTTOptions(host: b.host, port: b.port, clientID: b.clientID, username: b.username,
                                  password: b.password, tls: b.tls, keepalive: b.keepalive, cleanSession: b.cleanSession,
                                  reconnectMinDelay: 3600, reconnectMaxDelay: 3600, maxInflight: max(20, maxInFlight))
        libraryError.set(nil)
        do {
            let c = try MQTTClient(options: options, handlers: h)
            client = c
            if let first = try c.start() {
                lose(gen, first.detail)
                return
            }
        } catch {
            lose(gen, "\(error)")
            return
        }
        // libmosquitto does not always report a connection the broker dropped during the
        // handshake (a broker that wants a client certificate, say): give up after a while.
        queue.asyncAfter(deadline: .now() + connectTimeout) { [weak self] in
            guard let self, gen == self.generation, !self.connected else { return }
            var reason = "no answer (CONNACK) within \(String(format: "%g", self.connectTimeout)) s"
            if let tls = b.tls, tls.certFile == nil {
                reason += "; if the broker wants a client certificate, set tls.cert_file and tls.key_file"
            }
            self.lose(gen, reason)
        }
    }

    private let libraryError = Guarded<String?>(nil)

    private func onConnect(_ gen: Int, _ rc: Int32, _ reason: String) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard gen == generation, !stopped else { return }
        guard rc == 0 else {
            lose(gen, "refused the connection: \(reason)")
            return
        }
        connected = true
        backoff.reset()
        log.notice("sync: connected to \(target)\(tlsNote)")
        events?.ready()
    }

    private func onDisconnect(_ gen: Int, _ rc: Int32, _ reason: String) {
        guard gen == generation, !stopped else { return }
        lose(gen, reason)
    }

    private func onPublished(_ gen: Int, _ mid: Int32) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard gen == generation else { return }
        pending.removeValue(forKey: mid)?.done(.success(()))
    }

    /// Forgets the client and what it had in flight, and dials again after a jittered delay.
    private func lose(_ gen: Int, _ reason: String) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard gen == generation, !stopped else { return }
        generation += 1
        let wasConnected = connected
        connected = false
        let old = client
        client = nil
        var detail = reason
        if let lib = libraryError.value, !detail.contains(lib) { detail += " (\(lib))" }
        let message = (wasConnected ? "lost \(target)" : "cannot connect to \(target)") + tlsNote + ": " + detail
        let failed = pending.values.map(\.done)
        pending.removeAll()
        for done in failed { done(.failure(SyncFailure(message: message))) }
        // Stopping joins the old network thread, which can sit in a blocking TLS read until its
        // keepalive runs out: do it off this queue. Its late callbacks carry an old generation.
        if let old { DispatchQueue.global().async { old.stop() } }
        let delay = backoff.next()
        events?.lost(message, delay)
        queue.asyncAfter(deadline: .now() + delay) { [weak self] in self?.connect() }
    }

    func send(_ payload: [UInt8], done: @escaping @Sendable (Result<Void, SyncFailure>) -> Void) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard connected, let c = client else {
            done(.failure(SyncFailure(message: "not connected to \(target)")))
            return
        }
        do {
            let mid = try c.publish(settings.topic, payload, qos: max(1, settings.broker.qos))
            pending[mid] = (Date().timeIntervalSince1970, done)
        } catch {
            done(.failure(SyncFailure(message: "publish to \(settings.topic) on \(target): \(error)")))
            lose(generation, "\(error)")
        }
    }

    func tick() {
        let now = Date().timeIntervalSince1970
        if let oldest = pending.values.map(\.sentAt).min(), now - oldest > ackTimeout {
            lose(generation, "no PUBACK within \(Int(ackTimeout)) s")
        }
    }

    func stop() {
        stopped = true
        connected = false
        pending.removeAll()
        guard let c = client else { return }
        client = nil
        // A clean DISCONNECT when the link is healthy; a stuck handshake does not hold up shutdown.
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            c.stop()
            done.signal()
        }
        _ = done.wait(timeout: .now() + 2)
    }
}
