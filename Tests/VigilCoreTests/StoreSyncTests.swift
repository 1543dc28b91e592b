import Foundation
import MQTT
import TestSupport
@testable import VigilCore
import XCTest

/// SyncService against a real mosquitto standing in for the cloud.
final class StoreSyncTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-storesync") }
    override func tearDown() { dir.remove() }

    func uuids(_ messages: [MQTTMessage]) -> [String] {
        messages.flatMap { m -> [String] in
            let array = (try? JSONSerialization.jsonObject(with: Data(m.payload)) as? [[String: Any]]) ?? []
            return array.compactMap { $0["uuid"] as? String }
        }
    }

    func testAnAlertGoesAtOnceNotAtTheNextTick() throws {
        let cloud = try Broker()
        let receiver = try TestClient(port: cloud.port, subscribe: ["vigil/+/records"])
        defer { receiver.close() }
        var storage = StorageSettings()
        storage.path = dir.file("vigil.db")
        storage.minFreeMB = 0
        let store = try Store(settings: storage)
        defer { store.close() }
        var broker = BrokerSettings()
        broker.port = cloud.port
        broker.clientID = "sync-\(UUID().uuidString.prefix(6))"
        var settings = SyncSettings(mqtt: .init(broker: broker, topic: "vigil/gw/records"))
        settings.intervalSeconds = 600   // the tick will not come during this test
        let sync = SyncService(settings: settings, node: "gw", store: store)
        store.onAlertsCommitted { sync.kick() }
        for i in 0..<30 {
            store.append(Detection(ts: Double(i), pipeline: "p", device: "d", model: "m", label: "x", score: 1,
                                   scores: [("x", 1)], latencyMs: 1))
        }
        store.flush()
        sync.start()
        defer { sync.stop() }
        // Connecting sends what is waiting.
        XCTAssertTrue(waitUntil(timeout: 10) { self.uuids(receiver.messages).count == 30 })
        XCTAssertTrue(waitUntil { sync.status.rowsAcknowledged == 30 })
        let alert = AlertRecord(ts: 100, pipeline: "p", device: "d", state: "raised", label: "x", score: 1, severity: "critical")
        store.append(alert)
        XCTAssertTrue(waitUntil(timeout: 10) { self.uuids(receiver.messages).contains(alert.uuid) })
        XCTAssertTrue(waitUntil { (try? store.stats().unsyncedAlerts) == 0 })
        let status = sync.status
        XCTAssertTrue(status.ready)
        XCTAssertEqual(status.rowsAcknowledged, 31)
        XCTAssertNil(status.lastError)
        XCTAssertNotNil(status.lastSyncAt)
    }
}
