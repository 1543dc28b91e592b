import Foundation
import TestSupport
import VigilCore
import XCTest

final class ConfigTests: XCTestCase {
    func parse(_ text: String) throws -> Config { try Config.parse(Array(text.utf8), file: "/etc/vigil/test.json") }

    let minimal = """
        {
          // comments and trailing commas are allowed
          "node": "gw1",
          "models": { "tiny": { "path": "/m/tiny.onnx", } },
          "pipelines": [
            { "name": "env", "topic": "sensors/{device}/env", "format": "json",
              "fields": ["AM2301.Temperature", "AM2301.Humidity"], "model": "tiny" },
          ],
        }
        """

    func testMinimalConfigWithDefaults() throws {
        let c = try parse(minimal)
        XCTAssertEqual(c.node, "gw1")
        XCTAssertEqual(c.mqtt.host, "127.0.0.1")
        XCTAssertEqual(c.mqtt.port, 1883)
        XCTAssertEqual(c.mqtt.clientID, "vigild-gw1")
        XCTAssertFalse(c.mqtt.cleanSession, "persistent session by default so QoS 1 frames survive a restart")
        XCTAssertEqual(c.pipelines[0].topic.subscription, "sensors/+/env")
        XCTAssertEqual(c.pipelines[0].fields, ["AM2301.Temperature", "AM2301.Humidity"])
        XCTAssertEqual(c.storage.path, "/var/lib/vigil/vigil.db")
    }

    func testUnknownKeyIsAnErrorNamingPathAndLine() {
        let text = minimal.replacingOccurrences(of: "\"format\": \"json\",", with: "\"format\": \"json\",\n \"feilds\": [],")
        XCTAssertThrowsError(try parse(text)) { e in
            let err = e as! ConfigError
            XCTAssertEqual(err.path, "pipelines[0].feilds")
            XCTAssertEqual(err.line, 7)
            XCTAssertTrue(err.description.contains("unknown key"), err.description)
            XCTAssertTrue(err.description.hasPrefix("/etc/vigil/test.json:7:"), err.description)
        }
    }

    func testBadValuesNameTheirKeys() {
        let cases: [(String, String, String)] = [
            ("\"port\": 99999", "mqtt.port", "between"),
            ("\"port\": \"x\"", "mqtt.port", "integer"),
            ("\"qos\": 3", "mqtt.qos", "between"),
            ("\"password_file\": \"/nonexistent/pw\"", "mqtt.password_file", "/nonexistent/pw"),
            ("\"tls\": {\"ca_file\": \"/nonexistent/ca.pem\"}", "mqtt.tls.ca_file", "cannot read"),
        ]
        for (mqtt, path, words) in cases {
            let text = minimal.replacingOccurrences(of: "\"node\": \"gw1\",", with: "\"node\": \"gw1\", \"mqtt\": { \(mqtt) },")
            XCTAssertThrowsError(try parse(text), mqtt) { e in
                let err = e as! ConfigError
                XCTAssertEqual(err.path, path, mqtt)
                XCTAssertTrue(err.description.contains(words), err.description)
            }
        }
    }

    func testPipelineMustNameAKnownModelAndFormat() {
        XCTAssertThrowsError(try parse(minimal.replacingOccurrences(of: "\"model\": \"tiny\"", with: "\"model\": \"nope\""))) {
            XCTAssertEqual(($0 as! ConfigError).path, "pipelines[0].model")
        }
        XCTAssertThrowsError(try parse(minimal.replacingOccurrences(of: "\"format\": \"json\"", with: "\"format\": \"jpeg\""))) {
            XCTAssertEqual(($0 as! ConfigError).path, "pipelines[0].format")
            XCTAssertTrue("\($0)".contains("pgm"), "\($0)")
        }
        XCTAssertThrowsError(try parse(minimal.replacingOccurrences(of: "sensors/{device}/env", with: "sensors/{device}/{device}"))) {
            XCTAssertEqual(($0 as! ConfigError).path, "pipelines[0].topic")
        }
    }

    func testSyntaxErrorGivesLine() {
        XCTAssertThrowsError(try parse("{\n \"node\": \"a\"\n \"x\": 1 }")) { e in
            let err = e as! ConfigError
            XCTAssertEqual(err.line, 3)
            XCTAssertTrue(err.description.contains("expected ','"), err.description)
        }
    }

    func testDesignExampleConfigParses() throws {
        // The example from DESIGN.md (cloud TLS file aside) must stay valid.
        let dir = TempDir()
        defer { dir.remove() }
        let ca = dir.write("ca.pem", "x")
        let text = """
            { "node": "gateway-01",
              "mqtt": { "host": "127.0.0.1", "port": 1883, "client_id": "vigild-gateway-01",
                        "username": null, "password_file": null, "tls": null,
                        "keepalive_s": 30, "qos": 1, "clean_session": false },
              "storage": { "path": "/var/lib/vigil/vigil.db", "retention_days": 30, "max_size_mb": 1024 },
              "models": { "motion": { "path": "/usr/share/vigil/models/motion.onnx", "threads": 1 },
                          "anomaly": { "path": "/usr/share/vigil/models/anomaly.onnx" } },
              "pipelines": [
                { "name": "camera", "topic": "sensors/{device}/camera", "format": "pgm", "model": "motion",
                  "alert": { "labels": ["motion"], "min_score": 0.5, "for_frames": 2,
                             "clear_below": 0.3, "cooldown_s": 30, "actions": ["siren"] } },
                { "name": "environment", "topic": "sensors/{device}/env", "format": "json",
                  "fields": ["temperature", "humidity"], "model": "anomaly",
                  "alert": { "min_score": 0.7, "actions": ["notify"] } } ],
              "actions": {
                "siren":  { "type": "mqtt", "topic": "actuators/siren/set", "payload": "ON" },
                "notify": { "type": "exec", "argv": ["/usr/local/bin/notify", "{pipeline}", "{device}", "{label}"], "timeout_s": 10 } },
              "sync": { "mqtt": { "host": "cloud.example.com", "port": 8883, "tls": { "ca_file": "\(ca)" },
                                  "topic": "vigil/{node}/records" }, "batch": 100, "interval_s": 5 },
              "http": { "listen": "127.0.0.1:9108" } }
            """
        let c = try parse(text)
        XCTAssertEqual(c.pipelines.count, 2)
        XCTAssertEqual(c.pipelines[0].alert?.forFrames, 2)
        XCTAssertEqual(c.actions.map(\.name), ["siren", "notify"])
        XCTAssertEqual(c.sync?.mqtt?.topic, "vigil/gateway-01/records")
        XCTAssertEqual(c.http?.port, 9108)
    }

    func testPasswordIsReadFromFile() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let pw = dir.write("pw", "s3cret\n")
        let c = try parse(minimal.replacingOccurrences(of: "\"node\": \"gw1\",", with: "\"node\": \"gw1\", \"mqtt\": {\"username\": \"u\", \"password_file\": \"\(pw)\"},"))
        XCTAssertEqual(c.mqtt.password, "s3cret")
    }

    func testRelativePathsResolveAgainstTheConfigFile() throws {
        let c = try Config.parse(Array(minimal.replacingOccurrences(of: "/m/tiny.onnx", with: "models/tiny.onnx").utf8), file: "/opt/vigil/etc/vigil.json")
        XCTAssertEqual(c.models[0].path, "/opt/vigil/etc/models/tiny.onnx")
    }

    /// Issue 15, items 1, 2, 4, 9: the new limits are validated; overlapping pipeline topics
    /// and wildcards in action topics are errors; unsafe settings are warnings.
    func testHostileInputKeysAndChecks() throws {
        let c = try parse(minimal.replacingOccurrences(of: "\"node\": \"gw1\",", with: """
            "node": "gw1", "limits": { "max_clock_skew_s": 30, "max_json_keys": 64 },
            "homeassistant": { "discovery": true, "max_devices": 10 },
            """))
        XCTAssertEqual(c.limits.maxClockSkew, 30)
        XCTAssertEqual(c.limits.maxJSONKeys, 64)
        XCTAssertEqual(c.homeAssistant?.maxDevices, 10)
        XCTAssertEqual(try parse(minimal).limits.maxClockSkew, 300)
        XCTAssertTrue(try parse(minimal).warnings.isEmpty)
        for (bad, key) in [(#""limits": { "max_json_keys": 0 }"#, "limits.max_json_keys"),
                           (#""limits": { "max_clock_skew_s": -1 }"#, "limits.max_clock_skew_s"),
                           (#""homeassistant": { "max_devices": 0 }"#, "homeassistant.max_devices"),
                           (#""actions": { "a": { "type": "mqtt", "topic": "x/#" } }"#, "actions.a.topic")] {
            XCTAssertThrowsError(try parse(minimal.replacingOccurrences(of: "\"node\": \"gw1\",", with: "\"node\": \"gw1\", \(bad),")), bad) { e in
                XCTAssertEqual((e as? ConfigError)?.path, key, "\(e)")
            }
        }
        XCTAssertNoThrow(try parse(minimal.replacingOccurrences(of: "\"node\": \"gw1\",", with: #""node": "gw1", "actions": { "a": { "type": "mqtt", "topic": "x/{device}/set" } },"#)))
        let two = minimal.replacingOccurrences(of: "\"model\": \"tiny\" },", with: """
            "model": "tiny" },
            { "name": "other", "topic": "sensors/+/+", "format": "f32le", "model": "tiny" },
            """)
        XCTAssertThrowsError(try parse(two)) { e in
            XCTAssertEqual((e as? ConfigError)?.path, "pipelines[1].topic")
            XCTAssertTrue("\(e)".contains("sensors/device/env"), "\(e)")
        }
        let listen = try parse(minimal.replacingOccurrences(of: "\"node\": \"gw1\",", with: #""node": "gw1", "http": { "listen": "0.0.0.0:9108" },"#))
        XCTAssertEqual(listen.warnings.map(\.key), ["http.listen"])
        XCTAssertFalse(listen.warnings[0].severe)
    }

    func testTopicOverlap() {
        func overlap(_ a: String, _ b: String) -> String? { TopicPattern(a)!.overlap(with: TopicPattern(b)!) }
        XCTAssertEqual(overlap("sensors/{device}/env", "sensors/#"), "sensors/device/env")
        XCTAssertEqual(overlap("sensors/#", "sensors"), "sensors")
        XCTAssertEqual(overlap("a/+/c", "a/b/+"), "a/b/c")
        XCTAssertEqual(overlap("#", "x/y"), "x/y")
        XCTAssertNil(overlap("sensors/{device}/env", "sensors/{device}/cam"))
        XCTAssertNil(overlap("a/b", "a/b/c"))
        XCTAssertNil(overlap("a/+", "b/#"))
    }
}
