import CMosquitto
import Foundation

/// An error from libmosquitto, naming the operation and broker or topic at fault.
public struct MQTTError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let operation: String
    public let detail: String

    public var description: String { "MQTT \(operation) failed: \(detail)" }
}

/// Turns a libmosquitto status into a typed error; errno-based codes read errno.
func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
    guard rc != MOSQ_ERR_SUCCESS.rawValue else { return }
    throw MQTTError(code: rc, operation: operation(), detail: MQTTClient.describe(rc))
}

public struct MQTTMessage: Sendable {
    public let topic: String
    public let payload: [UInt8]
    public let qos: Int32
    public let retain: Bool
    public let receivedAt: Double
    /// The broker's packet identifier (QoS 1/2; 0 for QoS 0). A resend after a reconnect
    /// carries the same one (MQTT 3.1.1, 4.4).
    public let mid: Int32

    public init(topic: String, payload: [UInt8], qos: Int32 = 0, retain: Bool = false,
                receivedAt: Double = Date().timeIntervalSince1970, mid: Int32 = 0) {
        self.topic = topic; self.payload = payload; self.qos = qos; self.retain = retain
        self.receivedAt = receivedAt; self.mid = mid
    }
}

public struct MQTTTLS: Sendable, Equatable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile; self.certFile = certFile; self.keyFile = keyFile
    }
}

public struct MQTTWill: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: Int32
    public var retain: Bool
    public init(topic: String, payload: String, qos: Int32 = 1, retain: Bool = true) {
        self.topic = topic; self.payload = Array(payload.utf8); self.qos = qos; self.retain = retain
    }
}

public struct MQTTOptions: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var clientID: String?
    public var username: String?
    public var password: String?
    public var tls: MQTTTLS?
    public var keepalive: Int
    public var cleanSession: Bool
    public var will: MQTTWill?
    /// Reconnect backoff: doubles from min to max seconds.
    public var reconnectMinDelay: Int
    public var reconnectMaxDelay: Int
    /// Messages in flight at QoS 1/2 before publishes queue locally.
    public var maxInflight: Int

    public init(host: String = "127.0.0.1", port: Int = 1883, clientID: String? = nil,
                username: String? = nil, password: String? = nil, tls: MQTTTLS? = nil,
                keepalive: Int = 30, cleanSession: Bool = true, will: MQTTWill? = nil,
                reconnectMinDelay: Int = 1, reconnectMaxDelay: Int = 30, maxInflight: Int = 100) {
        self.host = host; self.port = port; self.clientID = clientID
        self.username = username; self.password = password; self.tls = tls
        self.keepalive = keepalive; self.cleanSession = cleanSession; self.will = will
        self.reconnectMinDelay = reconnectMinDelay; self.reconnectMaxDelay = reconnectMaxDelay
        self.maxInflight = maxInflight
    }

    public var address: String { "\(host):\(port)" }
}

/// Callbacks from the network thread. They run on libmosquitto's loop thread and must
/// return quickly: hand work to a queue.
public struct MQTTHandlers: Sendable {
    public var connected: @Sendable (_ code: Int32, _ reason: String) -> Void = { _, _ in }
    public var disconnected: @Sendable (_ code: Int32, _ reason: String) -> Void = { _, _ in }
    public var message: @Sendable (MQTTMessage) -> Void = { _ in }
    /// A QoS>0 publish was acknowledged (PUBACK/PUBCOMP), or a QoS 0 publish was sent.
    public var published: @Sendable (_ mid: Int32) -> Void = { _ in }
    public var subscribed: @Sendable (_ mid: Int32, _ grantedQoS: [Int32]) -> Void = { _, _ in }
    /// libmosquitto's own log lines (`level` is a MOSQ_LOG_* bit): the only place it says why
    /// a TLS handshake failed (OpenSSL's reason, e.g. "certificate verify failed").
    public var log: @Sendable (_ level: Int32, _ message: String) -> Void = { _, _ in }
    public init() {}
}

/// One libmosquitto client with its own network thread (`mosquitto_loop_start`).
///
/// @unchecked Sendable: libmosquitto is built thread-safe (its publish/subscribe take the
/// handle's mutexes) and `handlers` is immutable after init.
public final class MQTTClient: @unchecked Sendable {
    private static let libraryInit: Void = { mosquitto_lib_init() }()

    private let handle: OpaquePointer
    public let options: MQTTOptions
    let handlers: MQTTHandlers
    private let stateLock = NSLock()
    private var running = false
    private var _connected = false

    public init(options: MQTTOptions, handlers: MQTTHandlers) throws {
        _ = MQTTClient.libraryInit
        guard let h = mosquitto_new(options.clientID, options.cleanSession, nil) else {
            throw MQTTError(code: Int32(errno), operation: "create client",
                            detail: options.clientID == nil && !options.cleanSession
                                ? "a persistent session needs a client_id" : String(cString: strerror(errno)))
        }
        self.handle = h
        self.options = options
        self.handlers = handlers
        // Every stored property is set, so a throw from here on runs deinit, which frees the handle.
        try configure()
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        installCallbacks()
    }

    deinit {
        // The loop thread holds an unretained pointer to self: stop it before freeing.
        mosquitto_disconnect(handle)
        mosquitto_loop_stop(handle, true)
        mosquitto_destroy(handle)
    }

    private func configure() throws {
        _ = mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311)
        // Small messages (alerts, acks, detections) go out at once instead of waiting on
        // Nagle's algorithm for the peer's delayed ACK (up to 40 ms on Linux).
        _ = mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1)
        mosquitto_max_inflight_messages_set(handle, UInt32(options.maxInflight))
        try check(mosquitto_reconnect_delay_set(handle, UInt32(options.reconnectMinDelay),
                                                UInt32(options.reconnectMaxDelay), true),
                  "set reconnect delay")
        if let user = options.username {
            try check(mosquitto_username_pw_set(handle, user, options.password), "set username")
        }
        if let tls = options.tls {
            for (key, file) in [("tls.ca_file", tls.caFile), ("tls.cert_file", tls.certFile), ("tls.key_file", tls.keyFile)] {
                if let file, !FileManager.default.isReadableFile(atPath: file) {
                    throw MQTTError(code: MOSQ_ERR_INVAL.rawValue, operation: "configure TLS",
                                    detail: "\(key) \(file) is not readable")
                }
            }
            // With no CA file, trust the system store (the usual case for public brokers).
            let capath: String? = tls.caFile == nil ? "/etc/ssl/certs" : nil
            try check(mosquitto_tls_set(handle, tls.caFile, capath, tls.certFile, tls.keyFile, nil),
                      "configure TLS for \(options.address)")
        }
        if let will = options.will {
            try check(will.payload.withUnsafeBytes {
                mosquitto_will_set(handle, will.topic, Int32($0.count), $0.baseAddress, will.qos, will.retain)
            }, "set last will on \(will.topic)")
        }
    }

    private func installCallbacks() {
        mosquitto_connect_callback_set(handle) { _, obj, rc in
            guard let client = MQTTClient.from(obj) else { return }
            client.setConnected(rc == 0)
            client.handlers.connected(rc, rc == 0 ? "connected" : String(cString: mosquitto_connack_string(rc)))
        }
        mosquitto_disconnect_callback_set(handle) { _, obj, rc in
            guard let client = MQTTClient.from(obj) else { return }
            client.setConnected(false)
            client.handlers.disconnected(rc, rc == 0 ? "disconnected by request" : MQTTClient.describe(rc))
        }
        mosquitto_message_callback_set(handle) { _, obj, msg in
            guard let client = MQTTClient.from(obj), let msg else { return }
            let m = msg.pointee
            let topic = String(cString: m.topic)
            let payload: [UInt8]
            if m.payloadlen > 0, let p = m.payload {
                payload = Array(UnsafeRawBufferPointer(start: p, count: Int(m.payloadlen)))
            } else {
                payload = []
            }
            client.handlers.message(MQTTMessage(topic: topic, payload: payload, qos: m.qos, retain: m.retain, mid: m.mid))
        }
        mosquitto_publish_callback_set(handle) { _, obj, mid in
            MQTTClient.from(obj)?.handlers.published(mid)
        }
        mosquitto_log_callback_set(handle) { _, obj, level, text in
            guard let client = MQTTClient.from(obj), let text else { return }
            client.handlers.log(level, String(cString: text))
        }
        mosquitto_subscribe_callback_set(handle) { _, obj, mid, count, granted in
            guard let client = MQTTClient.from(obj) else { return }
            let g = granted.map { Array(UnsafeBufferPointer(start: $0, count: Int(count))) } ?? []
            client.handlers.subscribed(mid, g)
        }
    }

    private static func from(_ obj: UnsafeMutableRawPointer?) -> MQTTClient? {
        obj.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }
    }

    private func setConnected(_ v: Bool) { stateLock.withLock { _connected = v } }

    public var isConnected: Bool { stateLock.withLock { _connected } }

    /// Starts the network thread and the first connection attempt. A broker that is not
    /// there yet is not an error: the thread retries with capped exponential backoff and
    /// reports through `handlers.disconnected`. Returns the first attempt's error, if any,
    /// so the caller can log it once.
    @discardableResult
    public func start() throws -> MQTTError? {
        let already = stateLock.withLock { () -> Bool in
            defer { running = true }
            return running
        }
        if already { return nil }
        let rc = mosquitto_connect_async(handle, options.host, Int32(options.port), Int32(options.keepalive))
        if rc == MOSQ_ERR_SUCCESS.rawValue {
            try check(mosquitto_loop_start(handle), "start network thread")
            return nil
        }
        if rc == MOSQ_ERR_INVAL.rawValue {
            throw MQTTError(code: rc, operation: "connect to \(options.address)", detail: MQTTClient.describe(rc))
        }
        // libmosquitto's network thread only retries connections it once made; when the very
        // first attempt fails (broker not up yet), retry here with the same capped backoff
        // and start the thread once a connection attempt is under way.
        let firstError = MQTTError(code: rc, operation: "connect to \(options.address)", detail: MQTTClient.describe(rc))
        retryFirstConnect(after: options.reconnectMinDelay)
        return firstError
    }

    private func retryFirstConnect(after delay: Int) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(delay)) { [weak self] in
            guard let self else { return }
            // Under the lock so that stop() cannot slip between the check and the thread start.
            let started = self.stateLock.withLock { () -> Bool in
                guard self.running else { return true }
                return mosquitto_reconnect_async(self.handle) == MOSQ_ERR_SUCCESS.rawValue
                    && mosquitto_loop_start(self.handle) == MOSQ_ERR_SUCCESS.rawValue
            }
            if started { return }
            self.retryFirstConnect(after: min(delay * 2, self.options.reconnectMaxDelay))
        }
    }

    /// Disconnects cleanly (no last will) and joins the network thread.
    public func stop() {
        let was = stateLock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        guard was else { return }
        mosquitto_disconnect(handle)
        mosquitto_loop_stop(handle, false)
    }

    /// Subscribes; returns the message id. Subscriptions made before the connection is up
    /// are not kept by libmosquitto: call this from `handlers.connected`.
    @discardableResult
    public func subscribe(_ pattern: String, qos: Int32 = 1) throws -> Int32 {
        var mid: Int32 = 0
        try check(mosquitto_subscribe(handle, &mid, pattern, qos), "subscribe to \(pattern)")
        return mid
    }

    @discardableResult
    public func unsubscribe(_ pattern: String) throws -> Int32 {
        var mid: Int32 = 0
        try check(mosquitto_unsubscribe(handle, &mid, pattern), "unsubscribe from \(pattern)")
        return mid
    }

    /// Queues a publish; returns its message id (acknowledged later through `published`).
    @discardableResult
    public func publish(_ topic: String, _ payload: [UInt8], qos: Int32 = 1, retain: Bool = false) throws -> Int32 {
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes {
            mosquitto_publish(handle, &mid, topic, Int32($0.count), $0.baseAddress, qos, retain)
        }
        try check(rc, "publish to \(topic)")
        return mid
    }

    @discardableResult
    public func publish(_ topic: String, _ text: String, qos: Int32 = 1, retain: Bool = false) throws -> Int32 {
        try publish(topic, Array(text.utf8), qos: qos, retain: retain)
    }

    /// True when `topic` matches the subscription pattern `pattern` (`+` and `#` wildcards).
    public static func topic(_ topic: String, matches pattern: String) -> Bool {
        var result = false
        return mosquitto_topic_matches_sub(pattern, topic, &result) == MOSQ_ERR_SUCCESS.rawValue && result
    }

    /// True when `pattern` is a valid subscription pattern.
    public static func isValidSubscription(_ pattern: String) -> Bool {
        mosquitto_sub_topic_check(pattern) == MOSQ_ERR_SUCCESS.rawValue
    }

    public static func isValidTopic(_ topic: String) -> Bool {
        mosquitto_pub_topic_check(topic) == MOSQ_ERR_SUCCESS.rawValue
    }

    static func describe(_ rc: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(rc))
    }

    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, rev: Int32 = 0
        mosquitto_lib_version(&major, &minor, &rev)
        return "\(major).\(minor).\(rev)"
    }
}
