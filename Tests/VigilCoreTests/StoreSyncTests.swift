import Foundation
import MQTT
import TestSupport
@testable import VigilCore
@testable import VigilTools
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

    /// A store in the test's folder, a mosquitto standing in for the cloud, a client reading what it gets.
    func cloudAndStore() throws -> (cloud: Broker, receiver: TestClient, store: Store, settings: SyncSettings) {
        let cloud = try Broker()
        let receiver = try TestClient(port: cloud.port, subscribe: ["vigil/+/records"])
        var storage = StorageSettings()
        storage.path = dir.file("vigil.db")
        storage.minFreeMB = 0
        let store = try Store(settings: storage)
        var broker = BrokerSettings()
        broker.port = cloud.port
        broker.clientID = "sync-\(UUID().uuidString.prefix(6))"
        return (cloud, receiver, store, SyncSettings(mqtt: .init(broker: broker, topic: "vigil/gw/records")))
    }

    func testAnAlertGoesAtOnceNotAtTheNextTick() throws {
        let (cloud, receiver, store, base) = try cloudAndStore()
        defer { receiver.close(); store.close(); cloud.stop() }
        var settings = base
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

    /// Enrollments go to the cloud with the other records (issue 18), once acknowledged marked
    /// synced; the record carries what is needed to rebuild it (prototypes in base64).
    func testEnrollmentsAreSyncedByUUIDAndMarked() throws {
        let (cloud, receiver, store, settings) = try cloudAndStore()
        defer { receiver.close(); store.close(); cloud.stop() }
        let e = Enrollment(pipeline: "audio", label: "kettle", kind: .positive, modelVersion: "1.2.0",
                           prototypes: [[0.6, 0.8], [1, 0]], threshold: 0.95, source: "k1.wav,k2.wav")
        try EnrollmentLog.insert(e, path: dir.file("vigil.db"))
        let sync = SyncService(settings: settings, node: "gw", store: store)
        sync.start()
        defer { sync.stop() }
        XCTAssertTrue(waitUntil(timeout: 10) { self.uuids(receiver.messages).contains(e.uuid) })
        let records = receiver.messages.flatMap { m in (try? JSONSerialization.jsonObject(with: Data(m.payload)) as? [[String: Any]]) ?? [] }
        let r = try XCTUnwrap(records.first { $0["uuid"] as? String == e.uuid })
        XCTAssertEqual(r["type"] as? String, "enrollment")
        XCTAssertEqual(r["label"] as? String, "kettle")
        XCTAssertEqual(r["kind"] as? String, "positive")
        XCTAssertEqual(r["node"] as? String, "gw")
        let bytes = try XCTUnwrap(Data(base64Encoded: r["prototypes"] as? String ?? ""))
        XCTAssertEqual(Enrollment.prototypes(from: Array(bytes), dim: 2), e.prototypes)
        XCTAssertTrue(waitUntil(timeout: 10) {
            (try? store.withDatabase { try $0.query("SELECT synced_at FROM enrollments").first?.first?.double }) != nil
        })
    }
}
