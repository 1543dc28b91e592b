import Foundation
import Sockets
import TestSupport
@testable import VigilCore
import XCTest

/// The service layer around an in-process Daemon (real model, real SQLite file, no broker).
final class ServiceDaemonTests: XCTestCase {
    var dir: TempDir!
    override func setUp() { dir = TempDir("vigil-svc") }
    override func tearDown() { dir.remove() }

    func writeConfig(model: String = "tiny.onnx", pipelines extra: String = "", storage: String = "", topLevel: String = "") -> String {
        dir.write("vigil.json", """
            {
              "node": "svc",
              "mqtt": { "port": 1 },
              "storage": { "path": "\(dir.file("vigil.db"))"\(storage) },
              "models": { "tiny": { "path": "\(model)" } },
              "pipelines": [
                { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" }\(extra)
              ]\(topLevel)
            }
            """)
    }

    func makeDaemon() throws -> Daemon {
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier.onnx"), toPath: dir.file("tiny.onnx"))
        return try Daemon(config: Config.load(path: writeConfig()))
    }

    func testDefaultConfigParsesAndListsTheDocumentedKeys() throws {
        let path = Paths.repo.appendingPathComponent("etc/vigil.json").path
        let c = try Config.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))), file: "/etc/vigil/vigil.json")
        XCTAssertEqual(c.pipelines.map(\.name), ["camera", "audio", "environment"])
        XCTAssertEqual(c.models.map(\.path).sorted(), ["/usr/share/vigil/models/anomaly.onnx",
                                                       "/usr/share/vigil/models/motion.onnx",
                                                       "/usr/share/vigil/models/sound.onnx"])
        XCTAssertEqual(c.http, HTTPSettings(host: "127.0.0.1", port: 9108), "loopback by default")
        XCTAssertEqual(c.storage, StorageSettings(), "the file states the built-in defaults")
        XCTAssertEqual(c.limits.queueDepth, LimitSettings().queueDepth)
        XCTAssertEqual(c.limits.maxQueueBytes, LimitSettings().maxQueueBytes)
        XCTAssertEqual(c.limits.deviceTTL, LimitSettings().deviceTTL)
        XCTAssertEqual(c.pipelines[1].hop, .fraction(0.5))
        XCTAssertEqual(c.pipelines[0].maxWidth, 4096)
        // The documented mask example (a tree and a road) builds against the shipped motion model.
        XCTAssertEqual(c.pipelines[0].motion?.resolved(for: "yard").masks.count, 2)
        XCTAssertEqual(c.pipelines[0].motion?.resolved(for: "yard").minArea, 0.005)
        let shipped = Paths.repo.appendingPathComponent("Models/motion.onnx").path
        XCTAssertNoThrow(try Pipeline.build(c.pipelines[0], model: Model(name: "motion", path: shipped)))
        XCTAssertEqual(c.mqtt.host, "127.0.0.1")
        XCTAssertFalse(c.mqtt.cleanSession)
        XCTAssertNil(c.sync)
        XCTAssertEqual(c.pipelines[0].alert?.actions, ["siren"])
        XCTAssertEqual(c.logLevel, .info)
    }

    func testHealthzNamesWhyItIsNotReady() throws {
        let d = try makeDaemon()
        defer { d.stop() }
        let health = HealthMonitor(daemon: d)
        XCTAssertTrue(health.liveness().ok)
        let endpoints = Endpoints(daemon: d, health: health)
        let r = endpoints.handle(HTTPRequest(method: "GET", path: "/healthz", query: ""))
        XCTAssertEqual(r.status, 503)
        XCTAssertTrue(r.body.contains("not connected to broker 127.0.0.1:1"), r.body)
        let m = endpoints.handle(HTTPRequest(method: "GET", path: "/metrics", query: ""))
        XCTAssertEqual(m.status, 200)
        XCTAssertTrue(m.contentType.hasPrefix("text/plain; version=0.0.4"))
        for line in ["vigil_frames_received_total{pipeline=\"vec\"} 0", "vigil_frames_dropped_total{pipeline=\"vec\"} 0",
                     "vigil_broker_connected 0", "vigil_up 0"] {
            XCTAssertTrue(m.body.contains(line + "\n"), "missing \(line) in\n\(m.body)")
        }
        XCTAssertEqual(endpoints.handle(HTTPRequest(method: "GET", path: "/x", query: "")).status, 404)
    }

    func testAHungStoreWriterStopsTheWatchdogUntilItAnswers() throws {
        let d = try makeDaemon()
        defer { d.stop() }
        let systemd = try UnixDatagramReceiver(path: dir.file("notify.sock"))
        let notify = SdNotify(environment: ["NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "400000"])
        let health = HealthMonitor(daemon: d, stallAfter: 0.3)
        let watchdog = Watchdog(daemon: d, notify: notify, health: health)
        watchdog.start()
        defer { watchdog.stop() }
        func sawPing(within t: Double) -> Bool {
            let deadline = Date().addingTimeInterval(t)
            while Date() < deadline {
                if let m = systemd.receive(timeout: 0.1), m.contains("WATCHDOG=1") { return true }
            }
            return false
        }
        XCTAssertTrue(sawPing(within: 5), "pings while healthy")
        // Wedge the store's writer queue, as a hung SD card would.
        let release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { d.store.withDatabase { _ in release.wait() } }
        XCTAssertTrue(waitUntil(timeout: 10) { watchdog.isWithholding }, "the watchdog notices the hung writer")
        XCTAssertTrue(health.readiness().reasons.contains { $0.contains("store writer has not answered") },
                      "\(health.readiness())")
        while systemd.receive(timeout: 0.05) != nil {}   // what was sent before it noticed
        XCTAssertFalse(sawPing(within: 1.5), "no WATCHDOG=1 while the writer hangs")
        release.signal()
        XCTAssertTrue(sawPing(within: 10), "pings resume once the writer answers")
    }

    func testReloadPicksUpAChangedModelAndNewPipelines() throws {
        let d = try makeDaemon()
        defer { d.stop() }
        XCTAssertEqual(d.models["tiny"]?.labels, ["low", "mid", "high"])
        // A new version of the model file, and a second pipeline.
        try FileManager.default.removeItem(atPath: dir.file("tiny.onnx"))
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier_v2.onnx"), toPath: dir.file("tiny.onnx"))
        _ = writeConfig(pipelines: """
            ,
                { "name": "env", "topic": "sensors/{device}/env", "format": "json", "fields": ["a", "b", "c", "d"], "model": "tiny" }
            """)
        let report = try d.reload()
        XCTAssertEqual(d.models["tiny"]?.labels, ["cold", "warm", "hot"], "the replaced file is loaded")
        XCTAssertEqual(d.config.pipelines.map(\.name), ["vec", "env"])
        XCTAssertEqual(d.engine.pipelines.map(\.name), ["vec", "env"])
        XCTAssertFalse(report.reconnected)
        XCTAssertEqual(report.subscribed, ["sensors/+/env"], "(not connected here: the connect handler subscribes them)")
        XCTAssertEqual(d.counters.metrics.value(MetricName.reloads, [.init("result", "ok")]), 1)
    }

    func testInvalidReloadKeepsTheRunningConfig() throws {
        let d = try makeDaemon()
        defer { d.stop() }
        let engine = d.engine
        // Unknown key: rejected with its name and line.
        _ = dir.write("vigil.json", try String(contentsOfFile: dir.file("vigil.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"node\"", with: "\"nodee\""))
        XCTAssertThrowsError(try d.reload()) { e in XCTAssertTrue("\(e)".contains("nodee: unknown key"), "\(e)") }
        // A model that does not fit the pipeline: rejected, naming pipeline and model.
        _ = writeConfig(model: Paths.fixture("free_dims.onnx"))
        XCTAssertThrowsError(try d.reload()) { e in XCTAssertTrue("\(e)".contains("pipeline \"vec\""), "\(e)") }
        // A missing model file.
        _ = writeConfig(model: "/nonexistent/m.onnx")
        XCTAssertThrowsError(try d.reload()) { e in XCTAssertTrue("\(e)".contains("/nonexistent/m.onnx"), "\(e)") }
        XCTAssertTrue(d.engine === engine, "the running engine stays")
        XCTAssertEqual(d.models["tiny"]?.labels, ["low", "mid", "high"])
        XCTAssertEqual(d.counters.metrics.value(MetricName.reloads, [.init("result", "failed")]), 3)
    }

    func testAlertChangesAreReportedAsNeedingARestart() throws {
        let d = try makeDaemon()
        defer { d.stop() }
        let text = try String(contentsOfFile: writeConfig(), encoding: .utf8)
            .replacingOccurrences(of: #""model": "tiny" }"#, with: #""model": "tiny", "alert": { "min_score": 0.9 } }"#)
        _ = dir.write("vigil.json", text)
        let report = try d.reload()
        XCTAssertEqual(report.needsRestart, ["alert rules and actions"])
        XCTAssertTrue(report.description.contains("restart to apply alert rules and actions"), report.description)
        XCTAssertEqual(try d.reload().needsRestart, ["alert rules and actions"], "still differs from what the alert center runs")
    }

    func testStorageChangesWaitForARestart() throws {
        let d = try makeDaemon()
        defer { d.stop() }
        _ = writeConfig(storage: ", \"commit_rows\": 7")
        let report = try d.reload()
        XCTAssertEqual(report.needsRestart, ["storage"])
        XCTAssertEqual(d.config.storage.commitRows, StorageSettings().commitRows)
    }
}
