import Foundation
import ONNX
import SQLite
import TestSupport
import XCTest

/// Alerts as users see them: the real vigild, a real mosquitto, the tiny model, real
/// scripts, a real HTTP server, and the alerts table in the real SQLite file.
final class AlertIntegrationTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-alerts") }
    override func tearDown() { dir.remove() }

    /// x = [0, 0, t, 0] gives the tiny model's "high" score: t=1 -> 0.61, t=0.5 -> 0.48, t=-3 -> 0.01.
    func frame(_ t: Float) -> [UInt8] { f32le([0, 0, t, 0]) }

    /// Where the daemon serves /healthz and /metrics (a new free port per test).
    lazy var httpPort = freePort()

    func config(port: Int, actions: String, alert: String, alertActions: String, webhookPort: Int = 9) -> String {
        dir.write("vigil.json", """
            {
              "node": "test-node",
              "mqtt": { "host": "127.0.0.1", "port": \(port), "client_id": "vigild-\(UUID().uuidString.prefix(6))", "keepalive_s": 5 },
              "storage": { "path": "\(dir.file("vigil.db"))", "commit_interval_ms": 50 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [
                { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny",
                  "alert": { "labels": ["high"], \(alert), "severity": "critical", "actions": [\(alertActions)] } }
              ],
              "actions": { \(actions) },
              "homeassistant": { "discovery": true },
              "http": { "listen": "127.0.0.1:\(httpPort)" }
            }
            """)
    }

    func startDaemon(_ configPath: String) throws -> ChildProcess {
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", configPath], outputPath: dir.file("vigild.log"))
        XCTAssertTrue(d.waitSubscribed(), d.output)
        XCTAssertTrue(d.output.contains(": 2 of 2 topic filters granted"), "the pipeline's topic and Home Assistant's leftovers\n\(d.output)")
        return d
    }

    func alerts() -> [[SQLValue]] {
        guard FileManager.default.fileExists(atPath: dir.file("vigil.db")),
              let db = try? Database(path: dir.file("vigil.db"), mode: .readOnly) else { return [] }
        return (try? db.query("SELECT uuid, device, state, label, score, severity, actions FROM alerts ORDER BY id")) ?? []
    }

    func detections() -> Int {
        guard let db = try? Database(path: dir.file("vigil.db"), mode: .readOnly) else { return 0 }
        return Int((try? db.scalar("SELECT count(*) FROM detections").int) ?? 0)
    }

    func actions(_ row: [SQLValue]) -> [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(row[6].string!.utf8)) as? [[String: Any]]) ?? []
    }

    func text(_ p: [UInt8]) -> String { String(decoding: p, as: UTF8.self) }

    func testAnOscillatingScoreGivesOneAlertItsActionsAndAClear() throws {
        let broker = try Broker()
        let server = try WebhookReceiver(in: dir, fail: 2, status: 204)
        let hookPort = server.port
        defer { server.stop() }
        let script = dir.write("notify.sh", "#!/bin/sh\nprintf '%s|' \"$@\" >> \(dir.file("exec.log"))\necho \"$VIGIL_STATE\" >> \(dir.file("exec.log"))\necho notified \"$1\"\n")
        chmod(script, 0o755)
        let led = dir.write("brightness", "0")
        let path = config(port: broker.port, actions: """
            "siren": { "type": "mqtt", "topic": "actuators/{device}/siren", "payload": "ON", "clear_payload": "OFF" },
            "notify": { "type": "exec", "argv": ["\(script)", "{device}", "{label}", "{state}"], "timeout_s": 10, "on_clear": true },
            "led": { "type": "file", "path": "\(led)", "value": "1", "clear_value": "0" },
            "hook": { "type": "webhook", "url": "http://127.0.0.1:\(hookPort)/alert", "timeout_s": 5, "retries": 3 }
            """, alert: #""min_score": 0.55, "for_frames": 2, "clear_below": 0.3, "clear_frames": 2, "cooldown_s": 0"#,
            alertActions: #""siren", "notify", "led", "hook""#)
        let daemon = try startDaemon(path)
        defer { daemon.stop() }
        let watch = try TestClient(port: broker.port, subscribe: ["vigil/#", "actuators/#", "homeassistant/#"])
        defer { watch.close() }
        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []
        // Up twice (raise), then 30 frames wobbling around min_score, then down (clear).
        var ts: [Float] = [1, 1]
        for i in 0..<30 { ts.append(i % 3 == 0 ? 0.5 : 1) }
        ts += [-3, -3]
        for t in ts { mids.append(try pub.publish("sensors/cam1/vec", frame(t))) }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 20) { self.detections() == ts.count && self.alerts().count == 2 }, daemon.output)
        XCTAssertTrue(waitUntil(timeout: 20) { self.alerts().allSatisfy { !$0[6].string!.contains("pending") } },
                      "actions finished: \(alerts().map { $0[6] })\n\(daemon.output)")
        let rows = alerts()
        XCTAssertEqual(rows.map { $0[2].string! }, ["raised", "cleared"])
        XCTAssertEqual(rows.map { $0[1].string! }, ["cam1", "cam1"])
        XCTAssertEqual(rows.map { $0[3].string! }, ["high", "high"])
        XCTAssertEqual(rows[0][5].string, "critical")
        XCTAssertEqual(rows[0][4].double!, 0.613, accuracy: 0.01)

        let raised = actions(rows[0])
        XCTAssertEqual(raised.map { $0["action"] as? String }, ["siren", "notify", "led", "hook"])
        XCTAssertEqual(raised.map { $0["status"] as? String }, ["ok", "ok", "ok", "ok"], "\(raised)")
        XCTAssertEqual(raised.last?["attempts"] as? Int, 3, "the webhook failed twice, then got through")
        XCTAssertTrue(raised.allSatisfy { ($0["duration_ms"] as? Double ?? -1) >= 0 })
        let cleared = actions(rows[1])
        XCTAssertEqual(cleared.map { $0["action"] as? String }, ["siren", "notify", "led"], "the webhook is not on_clear")

        // Messages: one raised and one cleared alert, the siren on and off, the LED off again.
        XCTAssertTrue(waitUntil { watch.messages.filter { $0.topic == "actuators/cam1/siren" }.count == 2 })
        let alertMessages = watch.messages.filter { $0.topic == "vigil/test-node/alerts/vec/cam1" }
        XCTAssertEqual(alertMessages.count, 2)
        let first = try JSONSerialization.jsonObject(with: Data(alertMessages[0].payload)) as! [String: Any]
        XCTAssertEqual(first["uuid"] as? String, rows[0][0].string)
        XCTAssertEqual(first["state"] as? String, "raised")
        XCTAssertEqual(alertMessages[0].qos, 1)
        XCTAssertEqual(watch.messages.filter { $0.topic == "actuators/cam1/siren" }.map { self.text($0.payload) }, ["ON", "OFF"])
        XCTAssertEqual(try String(contentsOfFile: led, encoding: .utf8), "0")
        XCTAssertEqual(try String(contentsOfFile: dir.file("exec.log"), encoding: .utf8), "cam1|high|raised|raised\ncam1|high|cleared|cleared\n")
        XCTAssertTrue(daemon.output.contains("action notify"), "exec output goes to the log:\n\(daemon.output)")
        let hook = server.bodies
        XCTAssertEqual(hook.count, 3)
        XCTAssertTrue(hook.allSatisfy { $0.contains(rows[0][0].string!) }, "every attempt posts the same alert")

        // Home Assistant: discovery for the device, the state ON then OFF, the node online.
        let configs = watch.messages.filter { $0.topic.hasPrefix("homeassistant/") && !$0.payload.isEmpty }
        // Object ids end with 8 hex digits of FNV-1a over the raw pipeline and device names; the
        // rule lists `high`, so it has its own binary_sensor and the per-pipeline one is removed.
        XCTAssertEqual(Set(configs.map(\.topic)), ["homeassistant/binary_sensor/vigil_test-node/vec_cam1_1f1cab75_high_alert/config",
                                                   "homeassistant/sensor/vigil_test-node/vec_cam1_1f1cab75_score/config"])
        XCTAssertEqual(watch.messages.filter { $0.topic == "homeassistant/binary_sensor/vigil_test-node/vec_cam1_1f1cab75_alert/config" }.map(\.payload), [[]])
        let binary = try JSONSerialization.jsonObject(with: Data(configs.first { $0.topic.contains("binary_sensor") }!.payload)) as! [String: Any]
        XCTAssertEqual(binary["device_class"] as? String, "problem")
        XCTAssertEqual(binary["state_topic"] as? String, "vigil/test-node/state/vec/cam1/high")
        XCTAssertEqual(watch.messages.filter { $0.topic == "vigil/test-node/state/vec/cam1/high" }.map { self.text($0.payload) }, ["OFF", "ON", "OFF"])
        XCTAssertEqual(watch.messages.filter { $0.topic == "vigil/test-node/state/vec/cam1" }.map { self.text($0.payload) }, ["OFF", "ON", "OFF"])
        XCTAssertFalse(watch.messages.filter { $0.topic == "vigil/test-node/score/vec/cam1" }.isEmpty)
        XCTAssertEqual(watch.messages.filter { $0.topic == "vigil/test-node/status" }.map { self.text($0.payload) }, ["online"])

        // /metrics counts the transitions per pipeline and every action by outcome.
        let metrics = try String(contentsOf: URL(string: "http://127.0.0.1:\(httpPort)/metrics")!, encoding: .utf8)
        for line in [#"vigil_alerts_total{pipeline="vec",state="raised"} 1"#, #"vigil_alerts_total{pipeline="vec",state="cleared"} 1"#,
                     #"vigil_actions_total{action="hook",outcome="ok"} 1"#, #"vigil_actions_total{action="siren",outcome="ok"} 2"#] {
            XCTAssertTrue(metrics.contains(line), "\(line) in:\n\(metrics)")
        }

        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertTrue(daemon.output.contains("alerts raised 1, cleared 1"), daemon.output)
        // Retained: a client that comes later learns the node is offline and sees the discovery config.
        let late = try TestClient(port: broker.port, subscribe: ["vigil/test-node/status", "homeassistant/#"])
        defer { late.close() }
        XCTAssertTrue(waitUntil { late.messages.count >= 3 })
        XCTAssertEqual(late.messages.filter { $0.topic == "vigil/test-node/status" }.map { self.text($0.payload) }, ["offline"])
    }

    func testCooldownAndTheLastWill() throws {
        let broker = try Broker()
        let path = config(port: broker.port, actions: "", alert: #""min_score": 0.55, "cooldown_s": 3600"#, alertActions: "")
        let daemon = try startDaemon(path)
        let watch = try TestClient(port: broker.port, subscribe: ["vigil/test-node/#"])
        defer { watch.close() }
        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []
        // Up, down, up, down... : without the cooldown every "up" would raise.
        for i in 0..<20 { mids.append(try pub.publish("sensors/door/vec", frame(i % 2 == 0 ? 1 : -3))) }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 20) { self.detections() == 20 }, daemon.output)
        XCTAssertTrue(waitUntil { self.alerts().count == 2 })
        Thread.sleep(forTimeInterval: 0.3)   // the point: no third alert row comes (a negative check)
        XCTAssertEqual(alerts().map { $0[2].string! }, ["raised", "cleared"], "one raise per cooldown_s")
        XCTAssertEqual(alerts().first?[6].string, "[]")
        XCTAssertEqual(watch.messages.filter { $0.topic.hasPrefix("vigil/test-node/alerts/") }.count, 2)

        // A daemon that dies without a goodbye: the broker publishes its will.
        XCTAssertTrue(waitUntil { watch.messages.contains { $0.topic == "vigil/test-node/status" && self.text($0.payload) == "online" } })
        daemon.signal(SIGKILL)
        daemon.process.waitUntilExit()
        XCTAssertTrue(waitUntil(timeout: 15) { watch.messages.last { $0.topic == "vigil/test-node/status" }.map { self.text($0.payload) } == "offline" },
                      "\(watch.messages.filter { $0.topic == "vigil/test-node/status" }.map { self.text($0.payload) })")
    }

    func testASlowActionDelaysNeitherStorageNorOtherAlertsAndAPayloadCannotInjectAnOption() throws {
        let broker = try Broker()
        // Runs until the test creates `gate`: "still running" holds without timing assumptions.
        let slow = dir.write("slow.sh", "#!/bin/sh\necho \"$@\" >> \(dir.file("slow.log"))\nwhile [ ! -f \(dir.file("gate")) ]; do sleep 0.02; done\n")
        chmod(slow, 0o755)
        let path = config(port: broker.port, actions: """
            "slow": { "type": "exec", "argv": ["\(slow)", "{device}"], "timeout_s": 30, "max_concurrent": 4 }
            """, alert: #""min_score": 0.55"#, alertActions: #""slow""#)
        let daemon = try startDaemon(path)
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        try pub.publish("sensors/a/vec", frame(1))
        XCTAssertTrue(waitUntil(timeout: 10) { self.alerts().count == 1 }, daemon.output)
        // While a's action sleeps: more frames are stored and b raises its own alert, with its row written at once.
        var mids: [Int32] = []
        for _ in 0..<10 { mids.append(try pub.publish("sensors/b/vec", frame(1))) }
        mids.append(try pub.publish("sensors/--output=x/vec", frame(1)))
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 10) { self.alerts().count == 3 && self.detections() == 12 }, daemon.output)
        let pending = alerts().filter { $0[6].string!.contains("pending") }
        XCTAssertTrue(Set(pending.map { $0[1].string! }).isSuperset(of: ["a", "b"]), "a's and b's actions are still running: \(alerts().map { $0[6] })")
        _ = dir.write("gate", "")
        XCTAssertTrue(waitUntil(timeout: 20) { self.alerts().allSatisfy { !$0[6].string!.contains("pending") } }, daemon.output)
        let byDevice = Dictionary(uniqueKeysWithValues: alerts().map { ($0[1].string!, actions($0)) })
        XCTAssertEqual(byDevice["a"]?.first?["status"] as? String, "ok")
        XCTAssertEqual(byDevice["b"]?.first?["status"] as? String, "ok")
        XCTAssertEqual(byDevice["--output=x"]?.first?["status"] as? String, "error")
        XCTAssertTrue((byDevice["--output=x"]?.first?["detail"] as? String ?? "").contains("starts with '-'"))
        let ran = try String(contentsOfFile: dir.file("slow.log"), encoding: .utf8)
        XCTAssertEqual(Set(ran.split(separator: "\n")), ["a", "b"], "the script never saw the option-like device")
    }
}
