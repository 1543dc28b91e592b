import Foundation
import SQLite
import TestSupport
@testable import VigilCore
import XCTest

/// The per-device anomaly baseline through the real parts: vigild with the shipped anomaly
/// model, a private mosquitto, the SQLite log, and the vigilctl binary.
final class BaselineIntegrationTests: XCTestCase {
    func config(_ dir: TempDir, port: Int) -> String {
        dir.write("vigil.json", """
            {
              "node": "baseline-test",
              "mqtt": { "host": "127.0.0.1", "port": \(port), "client_id": "vigild-bl-\(UUID().uuidString.prefix(6))" },
              "storage": { "path": "vigil.db", "commit_interval_ms": 50 },
              "models": { "anomaly": { "path": "\(Paths.repo.appendingPathComponent("Models/anomaly.onnx").path)" } },
              "pipelines": [
                { "name": "env", "topic": "sensors/{device}/env", "format": "json", "model": "anomaly",
                  "fields": ["temperature", "pressure"],
                  "baseline": { "warmup_s": 60, "warmup_readings": 100, "snapshot_s": 1 },
                  "alert": { "max_false_alarms_per_day": 1 } }
              ]
            }
            """)
    }

    /// Readings 10 s apart, ending about 15 minutes ago at reading 220 (recent: a log without
    /// sync deletes rows older than `retention_days` by their time).
    static let firstReading = Int(Date().timeIntervalSince1970) - 3_100

    func readings(_ client: TestClient, device: String, from: Int, count: Int) throws {
        var mids: [Int32] = []
        for i in from..<(from + count) {
            let t = 20 + 0.3 * sin(Double(i) / 11) + 0.02 * Double(i % 7)
            let p = 1013 + Double((i / 40) % 3)   // a coarse sensor: 3 values
            mids.append(try client.publish("sensors/\(device)/env", #"{"temperature": \#(t), "pressure": \#(p), "ts": \#(Self.firstReading + i * 10)}"#))
        }
        XCTAssertTrue(client.waitForAcks(mids))
    }

    func baselineRows(_ dir: TempDir) throws -> [[String: Any]] {
        let r = try VigilctlIntegrationTests.run(["baseline", "--db", dir.file("vigil.db"), "--format", "jsonl"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try r.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// Learned state survives a restart (saved at stop, loaded at start), shows in vigilctl,
    /// and `vigilctl baseline reset` makes the running daemon start the device afresh.
    func testTheBaselineSurvivesARestartAndResetStartsItAfresh() throws {
        let dir = TempDir("baseline-it")
        defer { dir.remove() }
        let broker = try Broker()
        defer { broker.stop() }
        let path = config(dir, port: broker.port)
        let client = try TestClient(port: broker.port)
        defer { client.close() }
        func start() throws -> ChildProcess {
            let d = try ChildProcess(Paths.executable("vigild"), ["--config", path], outputPath: dir.file("vigild-\(UUID().uuidString.prefix(4)).log"))
            XCTAssertTrue(d.waitSubscribed(), d.output)
            return d
        }
        let db = dir.file("vigil.db")
        func detections() -> Int { VigilctlIntegrationTests.count(db, "SELECT count(*) FROM detections") }

        var daemon = try start()
        XCTAssertTrue(daemon.output.contains("each device alerts at its own threshold for 1.0 false alarms a day"), daemon.output)
        try readings(client, device: "boiler", from: 0, count: 150)
        XCTAssertTrue(waitUntil(timeout: 20) { detections() == 150 - 63 }, "\(detections())\n\(daemon.output)")
        XCTAssertEqual(daemon.stop(), 0)
        var rows = try baselineRows(dir)
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?["device"] as? String, "boiler")
        XCTAssertEqual(rows.first?["readings"] as? Int, 150, "saved at stop: every reading taken")
        XCTAssertEqual(rows.first?["status"] as? String, "ready", "150 readings over 1490 s pass a 100-reading, 60 s warm-up")
        XCTAssertNotNil(rows.first?["threshold"] as? Double)

        // Restart: the device goes on from 150 readings, and its window too (the intake journal's
        // committed frames rebuild it: every new reading makes a detection), without learning
        // the replayed readings a second time.
        daemon = try start()
        try readings(client, device: "boiler", from: 150, count: 70)
        XCTAssertTrue(waitUntil(timeout: 20) { detections() == 87 + 70 }, "\(detections())\n\(daemon.output)")
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? self.baselineRows(dir).first?["readings"] as? Int) ?? 0) >= 151 })
        XCTAssertLessThanOrEqual((try baselineRows(dir).first?["readings"] as? Int) ?? 999, 220, "replayed readings are not learned twice")
        // Reset while it runs: asked through the table, taken within 2 s, acted on at the device's next reading.
        let reset = try VigilctlIntegrationTests.run(["baseline", "reset", "--db", db, "--device", "boiler"], in: dir)
        XCTAssertEqual(reset.status, 0, reset.stderr)
        XCTAssertTrue(reset.stdout.contains("reset asked: pipeline env, device boiler"), reset.stdout)
        XCTAssertTrue(waitUntil(timeout: 10) { daemon.output.contains("baseline reset asked for") }, daemon.output)
        Thread.sleep(forTimeInterval: 5.2)   // the adapter hands its state over at most every 5 s
        try readings(client, device: "boiler", from: 220, count: 3)
        XCTAssertTrue(waitUntil(timeout: 10) { daemon.output.contains("baseline reset as asked") }, daemon.output)
        XCTAssertEqual(daemon.stop(), 0)
        rows = try baselineRows(dir)
        XCTAssertLessThanOrEqual(rows.first?["readings"] as? Int ?? 999, 3, "\(rows)")
        XCTAssertTrue((rows.first?["status"] as? String ?? "").hasPrefix("warming"), "\(rows)")
        // A reset of nothing says so.
        let none = try VigilctlIntegrationTests.run(["baseline", "reset", "--db", db, "--device", "nope"], in: dir)
        XCTAssertEqual(none.status, 1)
    }
}
