import Foundation
import MQTT
import TestSupport
import XCTest

/// Issue 9, scenario 3: the cloud broker is down for a while (minutes in the field, 25 s
/// here) while detections accumulate; when it is back everything is delivered.
final class CloudOutageTests: ResilienceCase {
    func testCloudOutageBacklogDrains() throws {
        let local = try Broker()
        // Persistence keeps the receiver's subscription (and what is queued for it) across the restart.
        let cloud = try Broker(persistence: true)
        let receiver = try CloudReceiver(port: cloud.port, clientID: "res-cloud-receiver")
        defer { receiver.close() }
        let path = dir.write("vigil.json", """
            {
              "node": "res-node",
              "mqtt": { "host": "127.0.0.1", "port": \(local.port), "client_id": "vigild-res-cloud" },
              "storage": { "path": "\(dbPath)", "commit_interval_ms": 100 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" } ],
              "sync": { "mqtt": { "host": "127.0.0.1", "port": \(cloud.port), "topic": "vigil/{node}/records" },
                        "batch": 100, "interval_s": 0.5, "max_inflight": 4,
                        "backoff_min_s": 0.5, "backoff_max_s": 4, "connect_timeout_s": 2 }
            }
            """)
        let daemon = try startDaemon(path)
        defer { daemon.stop() }
        let pub = try TestClient(port: local.port)
        defer { pub.close() }
        let rate = 100.0, outage = 25.0
        let published = Locked(0)
        func send(_ count: Int) -> Worker {
            Worker {
                ResilienceCase.paced(rate: rate, count: count) { i in
                    _ = try? pub.publish("sensors/cam\(i % 4)/vec", f32le([Float(i % 7), 1, 2, 3]))
                    published.with { $0 += 1 }
                }
            }
        }
        var unsynced: Int { int("SELECT count(*) FROM detections WHERE synced_at IS NULL") }

        // Normal traffic first: sync keeps up.
        send(Int(rate * 3)).join()
        XCTAssertTrue(waitUntil(timeout: 20) { self.rowCount() == 300 && unsynced == 0 }, daemon.output)

        // The uplink goes away; detections keep coming.
        cloud.stop()
        let down = send(Int(rate * outage))
        XCTAssertTrue(waitUntil(timeout: 15) { daemon.output.contains("rows stay unsynced") }, daemon.output)
        down.join()
        XCTAssertTrue(waitUntil(timeout: 20) { self.rowCount() == published.get }, "rows \(rowCount()) of \(published.get)")
        let backlog = unsynced
        XCTAssertGreaterThan(backlog, 0)

        // Back: the backlog drains and the cloud has every row.
        let back = Date()
        try cloud.start()
        XCTAssertTrue(waitUntil(timeout: 60, interval: 0.05) { unsynced == 0 }, "unsynced \(unsynced)\n\(daemon.output)")
        let drained = -back.timeIntervalSinceNow
        let stored = Set(query("SELECT uuid FROM detections").compactMap { $0.first?.string })
        XCTAssertTrue(waitUntil(timeout: 20) { stored.isSubset(of: receiver.uuids) },
                      "\(stored.subtracting(receiver.uuids).count) rows never reached the cloud")
        XCTAssertEqual(receiver.uuids, stored, "distinct uuids at the receiver == rows stored")
        XCTAssertTrue(daemon.isRunning)
        report("cloud outage: broker down \(fmt(outage, 0)) s at \(fmt(rate, 0)) frames/s, backlog \(backlog) unsynced rows; "
               + "drained \(fmt(drained, 2)) s after the cloud returned (\(fmt(Double(backlog) / drained, 0)) rows/s incl. reconnect); "
               + "\(receiver.uuids.count) distinct uuids at the receiver == \(stored.count) rows stored "
               + "(\(receiver.records - receiver.uuids.count) records received twice)")
    }
}
