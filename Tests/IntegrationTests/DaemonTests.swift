import Foundation
import ONNX
import SQLite
import TestSupport
import XCTest

/// vigild as users run it: a real mosquitto, the real binary, a real SQLite file and a real model.
final class DaemonTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-it") }
    override func tearDown() { dir.remove() }

    func config(port: Int, extra: String = "", db: String? = nil, mqttExtra: String = "") -> String {
        dir.write("vigil.json", """
            {
              "node": "test-node",
              "mqtt": { "host": "127.0.0.1", "port": \(port), "client_id": "vigild-\(UUID().uuidString.prefix(6))"\(mqttExtra) },
              "storage": { "path": "\(db ?? dir.file("vigil.db"))", "commit_interval_ms": 50 },
              "limits": { "max_payload_bytes": 1048576 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [
                { "name": "env", "topic": "sensors/{device}/env", "format": "json",
                  "fields": ["AM2301.Temperature", "AM2301.Humidity", "pressure", "co2"], "model": "tiny" },
                { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" }
              ]\(extra)
            }
            """)
    }

    func startDaemon(_ configPath: String) throws -> ChildProcess {
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", configPath], outputPath: dir.file("vigild.log"))
        XCTAssertTrue(waitUntil(timeout: 15) { d.output.contains("ready") || !d.isRunning }, d.output)
        return d
    }

    func rows(_ sql: String = "SELECT device, pipeline, label, score, scores, uuid, model, latency_ms FROM detections ORDER BY id") throws -> [[SQLValue]] {
        guard FileManager.default.fileExists(atPath: dir.file("vigil.db")) else { return [] }
        return try Database(path: dir.file("vigil.db"), mode: .readOnly).query(sql)
    }

    func count() -> Int { Int((try? rows("SELECT count(*) FROM detections").first?.first?.int) ?? 0) }

    func testFramesBecomeRowsWithTheModelsOwnScores() throws {
        let broker = try Broker()
        let daemon = try startDaemon(config(port: broker.port))
        defer { daemon.stop() }
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let pub = try TestClient(port: broker.port)
        let session = try ModelSession(path: Paths.fixture("tiny_classifier.onnx"))
        var expected: [String: [Float]] = [:]
        var mids: [Int32] = []
        for i in 0..<30 {
            let x: [Float] = [Float(i) * 0.1, 20 - Float(i), 1013, 400 + Float(i)]
            let device = "dev\(i % 3)"
            if i % 2 == 0 {
                mids.append(try pub.publish("sensors/\(device)/env",
                    #"{"AM2301":{"Temperature":\#(x[0]),"Humidity":\#(x[1])},"pressure":\#(x[2]),"co2":\#(x[3])}"#))
            } else {
                mids.append(try pub.publish("sensors/\(device)/vec", f32le(x)))
            }
            expected["\(i)"] = try session.run(x, shape: [1, 4])[0].values
        }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 15) { self.count() == 30 }, "rows: \(count())\n\(daemon.output)")
        let all = try rows()
        XCTAssertEqual(Set(all.map { $0[0].string! }), ["dev0", "dev1", "dev2"])
        XCTAssertEqual(all.filter { $0[1].string == "env" }.count, 15)
        XCTAssertEqual(Set(all.map { $0[5].string! }).count, 30, "uuids are unique")
        XCTAssertTrue(all.allSatisfy { $0[6].string == "tiny" && ($0[7].double ?? -1) >= 0 })
        // Frames of one device arrive in order; match each row to the frame that made it.
        for dev in 0..<3 {
            let devRows = all.filter { $0[0].string == "dev\(dev)" }
            let frames = (0..<30).filter { $0 % 3 == dev }
            XCTAssertEqual(devRows.count, frames.count)
            for (row, i) in zip(devRows, frames) {
                let want = expected["\(i)"]!
                let labels = ["low", "mid", "high"]
                let best = want.indices.max { want[$0] < want[$1] }!
                XCTAssertEqual(row[2].string, labels[best])
                XCTAssertEqual(row[3].double!, Double(want[best]), accuracy: 1e-5)
                let scores = try JSONSerialization.jsonObject(with: Data(row[4].string!.utf8)) as! [String: Double]
                for (k, l) in labels.enumerated() { XCTAssertEqual(scores[l]!, Double(want[k]), accuracy: 1e-5) }
            }
        }
        let mode = try Database(path: dir.file("vigil.db"), mode: .readOnly).scalar("PRAGMA journal_mode").string
        XCTAssertEqual(mode, "wal")
    }

    func testBadInputIsRejectedCountedAndTheNextGoodFrameProcessed() throws {
        let broker = try Broker()
        let daemon = try startDaemon(config(port: broker.port))
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []
        for _ in 0..<50 { mids.append(try pub.publish("sensors/a/env", "{\"AM2301\": {")) }     // malformed JSON
        mids.append(try pub.publish("sensors/a/vec", f32le([1, 2, 3])))                          // wrong length
        mids.append(try pub.publish("sensors/a/vec", f32le([1, .nan, 3, 4])))                    // NaN
        mids.append(try pub.publish("sensors/a/vec", f32le([1, 2, .infinity, 4])))               // Inf
        mids.append(try pub.publish("sensors/a/vec", [UInt8](repeating: 0, count: 10 << 20)))    // 10 MB
        mids.append(try pub.publish("sensors/a/env", #"{"AM2301":{"Temperature":1,"Humidity":2},"pressure":3,"co2":4}"#))
        mids.append(try pub.publish("sensors/a/vec", f32le([1, 2, 3, 4])))
        XCTAssertTrue(pub.waitForAcks(mids, timeout: 20))
        XCTAssertTrue(waitUntil(timeout: 15) { self.count() == 2 }, daemon.output)
        XCTAssertTrue(daemon.isRunning)
        XCTAssertEqual(daemon.stop(), 0)
        let out = daemon.output
        XCTAssertTrue(out.contains("stopped: frames 56, detections 2, rejected 54"), out)
        XCTAssertTrue(out.contains("similar messages suppressed") || out.components(separatedBy: "invalid JSON").count - 1 <= 6,
                      "malformed payloads are logged without flooding:\n\(out)")
        XCTAssertLessThanOrEqual(out.components(separatedBy: "invalid JSON").count - 1, 5, out)
        XCTAssertTrue(out.contains("over limits.max_payload_bytes"), out)
        XCTAssertTrue(out.contains("topic sensors/a/vec"), "rejections name the topic:\n\(out)")
    }

    func testMissingModelFileGivesOneClearLine() throws {
        let path = config(port: 1).replacingOccurrences(of: "", with: "")
        let text = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: Paths.fixture("tiny_classifier.onnx"), with: "/nonexistent/motion.onnx")
        _ = dir.write("vigil.json", text)
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", path], outputPath: dir.file("out.log"))
        d.process.waitUntilExit()
        XCTAssertNotEqual(d.process.terminationStatus, 0)
        let lines = d.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, d.output)
        XCTAssertTrue(d.output.contains("/nonexistent/motion.onnx"), d.output)
        XCTAssertTrue(d.output.contains("model \"tiny\""), d.output)
    }

    func testUnreachableBrokerIsNamedAndJoinedWhenItAppears() throws {
        let port = freePort()
        let daemon = try startDaemon(config(port: port))
        defer { daemon.stop() }
        XCTAssertTrue(waitUntil { daemon.output.contains("cannot reach broker 127.0.0.1:\(port)") }, daemon.output)
        XCTAssertTrue(daemon.isRunning)
        let broker = try Broker(port: port)
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let pub = try TestClient(port: broker.port)
        try pub.publish("sensors/z/vec", f32le([0, 0, 0, 1]))
        XCTAssertTrue(waitUntil(timeout: 10) { self.count() == 1 }, daemon.output)
    }

    func testReconnectsAfterBrokerRestartAndKeepsProcessing() throws {
        let broker = try Broker()
        let daemon = try startDaemon(config(port: broker.port))
        defer { daemon.stop() }
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        broker.stop()
        XCTAssertTrue(waitUntil { daemon.output.contains("lost broker") }, daemon.output)
        try broker.start()
        XCTAssertTrue(waitUntil(timeout: 15) { daemon.output.contains("connected to broker 127.0.0.1:\(broker.port) again") }, daemon.output)
        let pub = try TestClient(port: broker.port)
        XCTAssertTrue(waitForOnline(port: broker.port, node: "test-node"), "subscribed again")
        try pub.publish("sensors/r/vec", f32le([1, 1, 1, 1]))
        XCTAssertTrue(waitUntil(timeout: 10) { self.count() == 1 }, daemon.output)
    }

    func testPersistentSessionDeliversFramesPublishedWhileTheDaemonWasDown() throws {
        let broker = try Broker()
        let path = config(port: broker.port)
        var daemon = try startDaemon(path)
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        XCTAssertEqual(daemon.stop(), 0, "SIGTERM exits 0")
        let wal = (try? FileManager.default.attributesOfItem(atPath: dir.file("vigil.db-wal"))[.size] as? Int) ?? 0
        XCTAssertEqual(wal, 0, "a clean stop folds the WAL into the database")
        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []
        for i in 0..<20 { mids.append(try pub.publish("sensors/p/vec", f32le([Float(i), 0, 0, 0]))) }
        XCTAssertTrue(pub.waitForAcks(mids))
        daemon = try startDaemon(path)
        defer { daemon.stop() }
        XCTAssertTrue(waitUntil(timeout: 15) { self.count() == 20 }, "rows \(count()):\n\(daemon.output)")
    }

    func testDetectionsArePublishedLiveWhenAskedFor() throws {
        let broker = try Broker()
        let daemon = try startDaemon(config(port: broker.port, mqttExtra: ", \"publish_detections\": true"))
        defer { daemon.stop() }
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let sub = try TestClient(port: broker.port, subscribe: ["vigil/test-node/detections/#"])
        try sub.publish("sensors/cam9/vec", f32le([1, 2, 3, 4]))
        XCTAssertTrue(waitUntil(timeout: 10) { sub.messages.count == 1 }, daemon.output)
        let m = sub.messages[0]
        XCTAssertEqual(m.topic, "vigil/test-node/detections/vec/cam9")
        let obj = try JSONSerialization.jsonObject(with: Data(m.payload)) as! [String: Any]
        XCTAssertEqual(obj["device"] as? String, "cam9")
        XCTAssertNotNil(obj["uuid"] as? String)
        XCTAssertTrue(waitUntil(timeout: 5) { (try? self.rows("SELECT uuid FROM detections").first?.first?.string) == obj["uuid"] as? String })
    }

    func testCheckConfigNamesTheBadKey() throws {
        let good = config(port: 1883)
        let ok = try ChildProcess(Paths.executable("vigild"), ["--check-config", good], outputPath: dir.file("ok.log"))
        ok.process.waitUntilExit()
        XCTAssertEqual(ok.process.terminationStatus, 0, ok.output)
        let text = try String(contentsOfFile: good, encoding: .utf8).replacingOccurrences(of: "\"commit_interval_ms\"", with: "\"comit_interval_ms\"")
        let bad = dir.write("bad.json", text)
        let c = try ChildProcess(Paths.executable("vigild"), ["--check-config", bad], outputPath: dir.file("bad.log"))
        c.process.waitUntilExit()
        XCTAssertNotEqual(c.process.terminationStatus, 0)
        XCTAssertTrue(c.output.contains("storage.comit_interval_ms: unknown key"), c.output)
        XCTAssertTrue(c.output.contains("bad.json:4"), c.output)
    }
}
