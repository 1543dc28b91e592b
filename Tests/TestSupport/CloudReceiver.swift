import Foundation
import MQTT

/// The cloud side of MQTT sync: a persistent-session subscriber on the cloud broker that
/// counts the records in the batches it is sent (JSON arrays) and keeps their uuids.
public final class CloudReceiver: @unchecked Sendable {
    // @unchecked Sendable: mutable state is guarded by `lock`; `client` is set once in init.
    private var client: MQTTClient!
    private let lock = NSLock()
    private let expectedNode: String?
    private var _uuids: Set<String> = []
    private var _types: [String] = []
    private var _records = 0
    private var _bad = 0
    /// The broker granted the subscription (SUBACK): batches published from then on arrive.
    private var granted = false
    /// Evidence records' archives (base64 decoded), by alert uuid.
    private var _archives: [String: [UInt8]] = [:]

    /// `expectedNode`: records naming another node (or none) count as `bad`, like batches that are not JSON arrays.
    public init(port: Int, topic: String = "vigil/+/records", expectedNode: String? = nil,
                clientID: String = "cloud-\(UUID().uuidString.prefix(6))") throws {
        self.expectedNode = expectedNode
        var h = MQTTHandlers()
        let box = Box()
        h.connected = { rc, _ in
            guard rc == 0 else { return }
            _ = try? box.value?.client.subscribe(topic, qos: 1)
        }
        h.message = { m in box.value?.record(m) }
        h.subscribed = { _, _ in box.value?.markGranted() }
        client = try MQTTClient(options: MQTTOptions(host: "127.0.0.1", port: port, clientID: clientID,
                                                     cleanSession: false, reconnectMinDelay: 1, reconnectMaxDelay: 1),
                                handlers: h)
        box.value = self
        try client.start()
        guard waitUntil({ self.lock.withLock { self.granted } }) else {
            throw NSError(domain: "CloudReceiver", code: 1, userInfo: [NSLocalizedDescriptionKey: "no subscription granted by the cloud broker on \(port)"])
        }
    }

    final class Box: @unchecked Sendable { weak var value: CloudReceiver? }

    private func markGranted() { lock.withLock { granted = true } }

    private func record(_ m: MQTTMessage) {
        guard let array = try? JSONSerialization.jsonObject(with: Data(m.payload)) as? [[String: Any]] else {
            lock.withLock { _bad += 1 }
            return
        }
        lock.withLock {
            for r in array {
                _records += 1
                if let u = r["uuid"] as? String { _uuids.insert(u) }
                _types.append(r["type"] as? String ?? "?")
                if r["type"] as? String == "evidence", let u = r["uuid"] as? String, let b = r["archive"] as? String,
                   let data = Data(base64Encoded: b) {
                    _archives[u] = Array(data)
                }
                if let expectedNode, r["node"] as? String != expectedNode { _bad += 1 }
            }
        }
    }

    public var uuids: Set<String> { lock.withLock { _uuids } }
    public var types: [String] { lock.withLock { _types } }
    public var records: Int { lock.withLock { _records } }
    public var bad: Int { lock.withLock { _bad } }
    public var archives: [String: [UInt8]] { lock.withLock { _archives } }

    public func close() { client.stop() }
}
