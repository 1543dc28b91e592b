import Foundation
import ONNX
import SQLite
import TestSupport
import XCTest

/// `store: "events"` with the real vigild, broker, model and log: fewer rows, the same
/// `vigilctl stats`, and summaries that reach the cloud like any detection.
final class StorePolicyIntegrationTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-policy") }
    override func tearDown() { dir.remove() }

    func config(localPort: Int, cloudPort: Int, store: String) -> String {
        dir.write("vigil-\(store).json", """
            {
              "node": "test-node",
              "mqtt": { "host": "127.0.0.1", "port": \(localPort), "client_id": "vigild-\(UUID().uuidString.prefix(6))" },
              "storage": { "path": "\(dir.file("\(store).db"))", "commit_interval_ms": 50 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny",
                               "store": "\(store)"\(store == "events" ? ", \"summary_s\": 600" : "") } ],
              "sync": { "mqtt": { "host": "127.0.0.1", "port": \(cloudPort), "topic": "vigil/{node}/records" },
                        "batch": 25, "interval_s": 0.2, "backoff_min_s": 0.2, "backoff_max_s": 1, "connect_timeout_s": 2 }
            }
            """)
    }

    func count(_ db: String, _ sql: String) -> Int {
        Int((try? Database(path: db, mode: .readOnly).query(sql).first?.first?.int) ?? -1)
    }

    func stats(_ db: String) throws -> [String: Any] {
        let r = try VigilctlIntegrationTests.run(["stats", "--db", db, "--format", "jsonl"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.lines.count, 1, r.stdout)
        return try JSONSerialization.jsonObject(with: Data((r.lines.first ?? "{}").utf8)) as! [String: Any]
    }

    /// The same frames under `all` and `events`: `events` stores the non-background rows and a
    /// summary (written at the reload), the cloud receives them, and `stats` says the same.
    func testEventsStoresFewerRowsAndStatsAndSyncAgreeWithAll() throws {
        let local = try Broker(), cloud = try Broker()
        let receiver = try CloudReceiver(port: cloud.port, expectedNode: "test-node")
        defer { receiver.close() }
        let session = try ModelSession(path: Paths.fixture("tiny_classifier.onnx"))
        let frames: [[Float]] = (0..<40).map { (i: Int) -> [Float] in
            let a = Float(i % 7) * 0.8 - 2, b = Float(i % 5) - 2
            return [a, b, Float(i % 3), Float(i % 11) * 0.3]
        }
        var expected: [String: Int] = [:]
        for x in frames {
            let s = try session.run(x, shape: [1, 4])[0].values
            expected[["low", "mid", "high"][s.indices.max { s[$0] < s[$1] }!], default: 0] += 1
        }
        XCTAssertGreaterThan(expected["low"] ?? 0, 0, "the frames include background")
        XCTAssertGreaterThan(frames.count - (expected["low"] ?? 0), 0, "and events")
        var byPolicy: [String: [String: Any]] = [:]
        for store in ["all", "events"] {
            let db = dir.file("\(store).db")
            let daemon = try ChildProcess(Paths.executable("vigild"), ["--config", config(localPort: local.port, cloudPort: cloud.port, store: store)],
                                          outputPath: dir.file("vigild-\(store).log"))
            defer { daemon.stop() }
            XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
            let pub = try TestClient(port: local.port)
            defer { pub.close() }
            XCTAssertTrue(pub.waitForAcks(try frames.map { try pub.publish("sensors/cam1/vec", f32le($0)) }))
            let events = frames.count - (expected["low"] ?? 0)
            let want = store == "all" ? frames.count : events
            XCTAssertTrue(waitUntil(timeout: 15) { self.count(db, "SELECT count(*) FROM detections") == want },
                          "\(store): \(count(db, "SELECT count(*) FROM detections")) rows\n\(daemon.output)")
            if store == "events" {
                XCTAssertEqual(count(db, "SELECT count(*) FROM detections WHERE label = 'low'"), 0, "no background rows")
                // A reload ends the open period: its summary is stored and synced like any detection.
                daemon.signal(SIGHUP)
                XCTAssertTrue(waitUntil(timeout: 15) { self.count(db, "SELECT count(*) FROM detections WHERE label = '_summary'") == 1 }, daemon.output)
                let scores = try Database(path: db, mode: .readOnly).query("SELECT scores FROM detections WHERE label = '_summary'")[0][0].string!
                let counts = try JSONSerialization.jsonObject(with: Data(scores.utf8)) as! [String: Double]
                XCTAssertEqual(counts["_period_s"], 600)
                XCTAssertEqual(counts.filter { $0.key != "_period_s" }.mapValues { Int($0) }, expected, "the summary counts every frame")
            }
            let uuids = Set(try Database(path: db, mode: .readOnly).query("SELECT uuid FROM detections").map { $0[0].string! })
            XCTAssertTrue(waitUntil(timeout: 20) { uuids.isSubset(of: receiver.uuids) }, "\(store): not every row reached the cloud\n\(daemon.output)")
            XCTAssertEqual(daemon.stop(), 0)
            byPolicy[store] = try stats(db)
            // `vigilctl detections` lists what is stored; the summary is found by its label.
            let listed = try VigilctlIntegrationTests.run(["detections", "--db", db, "--format", "jsonl", "--limit", "0"], in: dir)
            XCTAssertEqual(listed.status, 0, listed.stderr)
            XCTAssertEqual(listed.lines.count, count(db, "SELECT count(*) FROM detections"))
            let summaries = try VigilctlIntegrationTests.run(["detections", "--db", db, "--format", "jsonl", "--label", "_summary"], in: dir)
            XCTAssertEqual(summaries.lines.count, store == "events" ? 1 : 0, summaries.stdout + summaries.stderr)
        }
        for store in ["all", "events"] {
            XCTAssertEqual(byPolicy[store]?["detections"] as? Int, frames.count, "\(store): \(byPolicy[store]!)")
            XCTAssertEqual(byPolicy[store]?["labels"] as? [String: Int], expected, "\(store)")
        }
        XCTAssertEqual(receiver.bad, 0)
    }
}
