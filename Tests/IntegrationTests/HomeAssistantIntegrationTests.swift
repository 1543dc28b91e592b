import Foundation
import MQTT
import TestSupport
@testable import VigilCore
import XCTest

/// Home Assistant discovery against the real broker and vigild: the current keys, a
/// binary_sensor per alert label with its own device class, and a silent device shown unavailable with its alert OFF
/// after `limits.device_ttl_s`, available (and ON) again when it returns, forgotten after
/// `homeassistant.forget_after_s`.
final class HomeAssistantIntegrationTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-ha") }
    override func tearDown() { dir.remove() }

    /// The tiny model's scores (low, mid, high) under sound-model names.
    func config(port: Int, smokeLabels: String = #""glass_breaking", "smoke_alarm""#) -> String {
        let labels = dir.write("labels.txt", "background\nglass_breaking\nsmoke_alarm\n")
        return dir.write("vigil.json", """
            {
              "node": "ha-node",
              "mqtt": { "host": "127.0.0.1", "port": \(port), "client_id": "vigild-ha-\(port)" },
              "storage": { "path": "\(dir.file("vigil.db"))", "commit_interval_ms": 50 },
              "limits": { "device_ttl_s": 2 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [
                { "name": "smoke", "topic": "sensors/{device}/smoke", "format": "f32le", "model": "tiny", "labels_file": "\(labels)",
                  "alert": { "labels": [\(smokeLabels)], "min_score": 0.55 } },
                { "name": "glass", "topic": "sensors/{device}/glass", "format": "f32le", "model": "tiny", "labels_file": "\(labels)",
                  "alert": { "labels": ["glass_breaking"], "min_score": 0.55 } }
              ],
              "homeassistant": { "discovery": true, "forget_after_s": 7 }
            }
            """)
    }

    func text(_ p: [UInt8]) -> String { String(decoding: p, as: UTF8.self) }

    func json(_ p: [UInt8]) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(p)) as! [String: Any] }

    func testDiscoveryKeysClassesAndASilentDeviceGoesUnavailableThenIsForgotten() throws {
        let broker = try Broker()
        let daemon = try ChildProcess(Paths.executable("vigild"), ["--config", config(port: broker.port)], outputPath: dir.file("vigild.log"))
        defer { daemon.stop() }
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let watch = try TestClient(port: broker.port, subscribe: ["vigil/ha-node/#", "homeassistant/#"])
        defer { watch.close() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        func values(_ topic: String) -> [String] { watch.messages.filter { $0.topic == topic }.map { self.text($0.payload) } }
        let state = "vigil/ha-node/state/smoke/kitchen", available = "vigil/ha-node/availability/smoke/kitchen"
        let smokeState = state + "/smoke_alarm", glassState = state + "/glass_breaking"

        // Up: smoke_alarm (the tiny model's "high") at 0.61 raises.
        XCTAssertTrue(pub.waitForAcks([try pub.publish("sensors/kitchen/smoke", f32le([0, 0, 1, 0])),
                                       try pub.publish("sensors/hall/glass", f32le([0, 0, 0, 0]))]))
        XCTAssertTrue(waitUntil(timeout: 15) { values(smokeState).last == "ON" }, "\(values(smokeState))\n\(daemon.output)")
        XCTAssertEqual(values(state).last, "ON", "the pipeline's own state topic as before")
        XCTAssertEqual(values(glassState).last, "OFF", "the other label's entity is not raised")
        XCTAssertEqual(values(available), ["online"])
        let configs = watch.messages.filter { $0.topic.hasPrefix("homeassistant/binary_sensor/") && !$0.payload.isEmpty }
        // The smoke pipeline alerts on glass and smoke: an entity each, each with its class.
        let kitchen = configs.filter { $0.topic.contains("/smoke_kitchen_") }
        XCTAssertEqual(kitchen.count, 2, "\(kitchen.map(\.topic))")
        let smoke = try json(XCTUnwrap(kitchen.first { $0.topic.hasSuffix("_smoke_alarm_alert/config") }).payload)
        let kitchenGlass = try json(XCTUnwrap(kitchen.first { $0.topic.hasSuffix("_glass_breaking_alert/config") }).payload)
        let glass = try json(XCTUnwrap(configs.first { $0.topic.contains("/glass_hall_") }).payload)
        XCTAssertEqual(smoke["device_class"] as? String, "smoke")
        XCTAssertEqual(smoke["state_topic"] as? String, smokeState)
        XCTAssertEqual(kitchenGlass["device_class"] as? String, "safety")
        XCTAssertEqual(glass["device_class"] as? String, "safety")
        // The per-pipeline entity of earlier versions is removed: an empty retained config.
        let legacy = try XCTUnwrap(watch.messages.first { $0.topic.hasPrefix("homeassistant/binary_sensor/vigil_ha-node/smoke_kitchen_") && $0.topic.hasSuffix("_alert/config")
            && !$0.topic.contains("_smoke_alarm_") && !$0.topic.contains("_glass_breaking_") })
        XCTAssertTrue(legacy.payload.isEmpty)
        XCTAssertNil(smoke["object_id"], "deprecated in HA 2025.10")
        XCTAssertTrue((smoke["default_entity_id"] as? String)?.hasPrefix("binary_sensor.vigil_ha-node_smoke_kitchen_") ?? false, "\(smoke)")
        XCTAssertEqual(smoke["availability_mode"] as? String, "all")
        XCTAssertEqual((smoke["availability"] as? [[String: String]])?.map { $0["topic"] ?? "" },
                       ["vigil/ha-node/status", available])
        let score = try json(XCTUnwrap(watch.messages.first { $0.topic.hasPrefix("homeassistant/sensor/") && $0.topic.contains("/smoke_kitchen_") }).payload)
        XCTAssertTrue((score["default_entity_id"] as? String)?.hasPrefix("sensor.") ?? false, "\(score)")

        // Silent for the TTL (2 s): unavailable, and the alert no longer "Detected".
        XCTAssertTrue(waitUntil(timeout: 10) { values(available).last == "offline" }, "\(values(available))\n\(daemon.output)")
        XCTAssertEqual(values(state).last, "OFF")
        XCTAssertEqual(values(smokeState).last, "OFF")
        // Back while its alert is still raised (nothing cleared it): available and ON again.
        XCTAssertTrue(pub.waitForAcks([try pub.publish("sensors/kitchen/smoke", f32le([0, 0, 1, 0]))]))
        XCTAssertTrue(waitUntil(timeout: 10) { values(available).last == "online" }, "\(values(available))")
        XCTAssertTrue(waitUntil { values(state).last == "ON" && values(smokeState).last == "ON" }, "\(values(state)) \(values(smokeState))")
        // Retained: what Home Assistant reads after its own restart.
        let late = try TestClient(port: broker.port, subscribe: [state, smokeState, glassState, available])
        XCTAssertTrue(waitUntil { late.messages.count >= 4 })
        XCTAssertEqual(Set(late.messages.map { "\($0.topic)=\(self.text($0.payload))" }),
                       ["\(state)=ON", "\(smokeState)=ON", "\(glassState)=OFF", "\(available)=online"])
        late.close()

        // Silent for forget_after_s (7 s): the entities are removed (empty retained configs).
        for config in kitchen.map(\.topic) {
            XCTAssertTrue(waitUntil(timeout: 20) { watch.messages.contains { $0.topic == config && $0.payload.isEmpty } },
                          "\(config): \(watch.messages.filter { $0.topic == config }.count)\n\(daemon.output)")
        }
        XCTAssertTrue(waitUntil { [available, state, smokeState, glassState].allSatisfy { values($0).last == "" } },
                      "\([available, state, smokeState, glassState].map { values($0) })")
        XCTAssertTrue(daemon.output.contains("shown unavailable"), daemon.output)
    }

    /// Enrolled sounds (Enrollment/): a rule listing `smoke_alarm` on a model that can enroll
    /// shows an enrolled sound's alert on the pipeline's one `_enrolled` entity, not on
    /// `smoke_alarm`'s; silent for the TTL both are OFF; back, the enrolled one is ON again.
    /// AlertCenter itself, on the real broker (no shipped test model enrolls in a second).
    func testAnEnrolledSoundShowsOnTheEnrolledEntity() throws {
        let broker = try Broker()
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "ha-center"), handlers: MQTTHandlers())
        _ = try client.start()
        defer { client.stop() }
        XCTAssertTrue(waitUntil { client.isConnected })
        let outlet = MQTTOutlet()
        outlet.set(client)
        let watch = try TestClient(port: broker.port, subscribe: ["vigil/ha-node/#", "homeassistant/#"])
        defer { watch.close() }
        var alert = AlertSettings()
        alert.labels = ["smoke_alarm"]
        var info = AlertCenter.PipelineInfo(name: "audio", alert: alert, modelLabels: ["background", "smoke_alarm"], task: "sound", model: "m")
        info.enrolls = true
        let center = AlertCenter(node: "ha-node", pipelines: [info], actions: ActionSet([], outlet: outlet),
                                 homeAssistant: HomeAssistantSettings(discovery: true), outlet: outlet,
                                 record: { _ in }, updateActions: { _, _ in }, deviceTTL: 2)
        func doorbell() -> Detection {
            var d = Detection(ts: Date().timeIntervalSince1970, pipeline: "audio", device: "hall", model: "m", label: "our doorbell", score: 0.9,
                              scores: [("background", 0.05), ("smoke_alarm", 0.05), ("our doorbell", 0.9)], latencyMs: 1)
            d.enrolledFrom = 2
            return d
        }
        func values(_ topic: String) -> [String] { watch.messages.filter { $0.topic == topic }.map { self.text($0.payload) } }
        let enrolled = "vigil/ha-node/state/audio/hall/_enrolled", smoke = "vigil/ha-node/state/audio/hall/smoke_alarm"
        let available = "vigil/ha-node/availability/audio/hall"

        center.handle(doorbell())
        XCTAssertTrue(waitUntil { values(enrolled) == ["OFF", "ON"] }, "\(values(enrolled))")
        XCTAssertEqual(values(smoke), ["OFF"])
        let configs = watch.messages.filter { $0.topic.hasPrefix("homeassistant/binary_sensor/") && !$0.payload.isEmpty }
        XCTAssertEqual(configs.count, 2, "smoke_alarm and enrolled sounds: \(configs.map(\.topic))")
        let entity = try json(XCTUnwrap(configs.first { $0.topic.hasSuffix("__enrolled_alert/config") }).payload)
        XCTAssertEqual(entity["device_class"] as? String, "sound")
        XCTAssertEqual(entity["state_topic"] as? String, enrolled)

        center.expireDevices(now: monotonicSeconds() + 3)
        XCTAssertTrue(waitUntil { values(available).last == "offline" && values(enrolled).last == "OFF" }, "\(values(available)) \(values(enrolled))")
        XCTAssertEqual(values(smoke).last, "OFF")
        center.handle(doorbell())
        XCTAssertTrue(waitUntil { values(available).last == "online" && values(enrolled).last == "ON" }, "\(values(available)) \(values(enrolled))")
        XCTAssertEqual(values(smoke).last, "OFF")
    }

    /// A label dropped from the rule between runs: its entity's retained config, left by the
    /// first run, is removed after the TTL, while the device (heard from all along) stays
    /// available and its other entity stays.
    func testALabelLeftOutOfTheRuleLosesItsEntityNotItsDevice() throws {
        let broker = try Broker()
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        func retained(_ filter: String) -> [String: String] {
            guard let c = try? TestClient(port: broker.port, subscribe: [filter]) else { return [:] }
            defer { c.close() }
            c.sync()
            return Dictionary(c.messages.filter { !$0.payload.isEmpty }.map { ($0.topic, self.text($0.payload)) }, uniquingKeysWith: { _, b in b })
        }
        var daemon = try ChildProcess(Paths.executable("vigild"), ["--config", config(port: broker.port)], outputPath: dir.file("vigild.log"))
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        XCTAssertTrue(pub.waitForAcks([try pub.publish("sensors/kitchen/smoke", f32le([0, 0, 1, 0]))]))
        XCTAssertTrue(waitUntil(timeout: 10) { retained("homeassistant/binary_sensor/#").keys.filter { $0.contains("/smoke_kitchen_") }.count == 2 })
        let glassConfig = try XCTUnwrap(retained("homeassistant/binary_sensor/#").keys.first { $0.hasSuffix("_glass_breaking_alert/config") })
        XCTAssertEqual(daemon.stop(), 0)

        daemon = try ChildProcess(Paths.executable("vigild"), ["--config", config(port: broker.port, smokeLabels: #""smoke_alarm""#)],
                                  outputPath: dir.file("vigild2.log"))
        defer { daemon.stop() }
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        // Heard from at every check (0.3 s apart), well inside the 2 s TTL.
        let removed = waitUntil(timeout: 15, interval: 0.3) {
            _ = try? pub.publish("sensors/kitchen/smoke", f32le([0, 0, 1, 0]))
            return retained("homeassistant/binary_sensor/#")[glassConfig] == nil
        }
        let available = retained("vigil/ha-node/availability/#")
        let configs = retained("homeassistant/binary_sensor/#").keys.filter { $0.contains("/smoke_kitchen_") }
        XCTAssertTrue(removed, daemon.output)
        XCTAssertTrue(daemon.output.contains("an earlier run left"), daemon.output)
        XCTAssertEqual(available["vigil/ha-node/availability/smoke/kitchen"], "online", "the device's availability stays: \(available)")
        XCTAssertEqual(configs.count, 1)
        XCTAssertTrue(configs.first?.hasSuffix("_smoke_alarm_alert/config") ?? false, "\(configs)")
    }
}
