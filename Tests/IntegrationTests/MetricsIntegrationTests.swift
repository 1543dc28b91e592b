import Foundation
import SQLite
import TestSupport
import XCTest

/// /metrics scraped from a real vigild (real broker, model and log): every counter listed from
/// the first scrape, the standard process_* metrics, and the per-device last-seen gauge with its cap.
final class MetricsIntegrationTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-metrics") }
    override func tearDown() { dir.remove() }

    func config(brokerPort: Int, httpPort: Int, ttl: Double = 3600) -> String {
        dir.write("vigil.json", """
            {
              "node": "metrics-it",
              "mqtt": { "host": "127.0.0.1", "port": \(brokerPort), "client_id": "vigild-metrics-\(brokerPort)" },
              "storage": { "path": "\(dir.file("vigil.db"))", "commit_interval_ms": 50 },
              "limits": { "device_ttl_s": \(ttl) },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [
                { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny",
                  "alert": { "labels": ["high"], "min_score": 0.99, "actions": ["led"] } }
              ],
              "actions": { "led": { "type": "file", "path": "\(dir.file("led"))", "value": "1" } },
              "http": { "listen": "127.0.0.1:\(httpPort)" }
            }
            """)
    }

    func start(_ config: String) throws -> ChildProcess {
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", config], outputPath: dir.file("vigild.log"))
        XCTAssertTrue(d.waitSubscribed(), d.output)
        return d
    }

    /// Sample lines by name with labels (`name{a="b"}`) -> value.
    func samples(_ body: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            out[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return out
    }

    func scrape(_ port: Int) -> String { httpGet("http://127.0.0.1:\(port)/metrics").body }

    func rowCount() -> Int {
        Int((try? Database(path: dir.file("vigil.db"), mode: .readOnly).query("SELECT count(*) FROM detections").first?.first?.int) ?? 0)
    }

    func testEveryCounterIsListedAtZeroBeforeItsFirstEventAndProcessMetricsAreReal() throws {
        let broker = try Broker()
        let http = freePort()
        let daemon = try start(config(brokerPort: broker.port, httpPort: http))
        defer { daemon.stop() }
        XCTAssertTrue(waitUntil { httpGet("http://127.0.0.1:\(http)/healthz").status == 200 })
        let body = scrape(http)
        let s = samples(body)
        // Every counter family has a series in the first scrape (histograms have none until observed).
        let counters = body.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") && $0.hasSuffix(" counter") }
            .map { String($0.split(separator: " ")[2]) }
        XCTAssertGreaterThanOrEqual(counters.count, 15, body)
        for name in counters {
            XCTAssertTrue(s.keys.contains { $0 == name || $0.hasPrefix(name + "{") }, "\(name) has no series before its first event:\n\(body)")
        }
        for (series, value) in [(#"vigil_reloads_total{result="ok"}"#, 0.0), (#"vigil_reloads_total{result="failed"}"#, 0),
                                (#"vigil_frames_received_total{pipeline="vec"}"#, 0),
                                (#"vigil_frames_rejected_total{pipeline="vec",reason="malformed"}"#, 0),
                                (#"vigil_alerts_total{pipeline="vec",state="raised"}"#, 0),
                                (#"vigil_actions_total{action="led",outcome="ok"}"#, 0),
                                ("vigil_rows_stored_total", 0), ("vigil_store_errors_total", 0), ("vigil_intake_waits_total", 0),
                                ("vigil_broker_connects_total", 1)] {
            XCTAssertEqual(s[series], value, "\(series)\n\(body)")
        }
        // process_*: compared with what /proc says of the same process.
        let pid = daemon.process.processIdentifier
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let rssKB = Double(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }!.split(separator: " ")[1])!
        let rss = try XCTUnwrap(s["process_resident_memory_bytes"], body)
        XCTAssertGreaterThan(rss, 1_048_576)
        XCTAssertEqual(rss / (rssKB * 1024), 1, accuracy: 0.5, "resident memory as /proc/PID/status says")
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        XCTAssertEqual(try XCTUnwrap(s["process_open_fds"]), Double(fds), accuracy: 8, body)
        XCTAssertGreaterThan(try XCTUnwrap(s["process_max_fds"]), 0)
        let started = try XCTUnwrap(s["process_start_time_seconds"], body)
        let now = Date().timeIntervalSince1970
        XCTAssertLessThanOrEqual(started, now + 1)
        XCTAssertGreaterThan(started, now - 120, "started during this test")
        let cpu = try XCTUnwrap(s["process_cpu_seconds_total"], body)
        XCTAssertGreaterThan(cpu, 0)
        // A reload: the counter goes from 0 to 1 (it used to appear only now).
        daemon.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 15) { self.samples(self.scrape(http))[#"vigil_reloads_total{result="ok"}"#] == 1 }, daemon.output)
        XCTAssertGreaterThanOrEqual(samples(scrape(http))["process_cpu_seconds_total"] ?? 0, cpu, "CPU time only grows")
    }

    func testLastFrameGaugePerDeviceIsCappedAndForgetsSilentDevices() throws {
        let broker = try Broker()
        let http = freePort()
        let daemon = try start(config(brokerPort: broker.port, httpPort: http, ttl: 3))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        let before = Date().timeIntervalSince1970
        XCTAssertTrue(pub.waitForAcks(try (0..<3).map { try pub.publish("sensors/cam\($0)/vec", f32le([1, 2, 3, 4])) }))
        // The PUBACK comes from the broker, before vigild has the message: the bound is its row.
        XCTAssertTrue(waitUntil(timeout: 15) { self.rowCount() == 3 })
        let after = Date().timeIntervalSince1970
        let s = samples(scrape(http))
        for d in 0..<3 {
            let t = try XCTUnwrap(s[#"vigil_last_frame_timestamp_seconds{pipeline="vec",device="cam\#(d)"}"#], "\(s)")
            XCTAssertTrue((before - 0.01)...(after + 0.01) ~= t, "\(t) not in \(before)...\(after)")
        }
        // Silent for the device TTL: the series goes.
        XCTAssertTrue(waitUntil(timeout: 10) { !self.scrape(http).contains("vigil_last_frame_timestamp_seconds{") })
        // 1003 devices at once: the first 1000 get a series, the other 3 frames are counted.
        XCTAssertTrue(pub.waitForAcks(try (0..<1003).map { try pub.publish("sensors/dev\($0)/vec", f32le([1, 2, 3, 4])) }, timeout: 60))
        XCTAssertTrue(waitUntil(timeout: 60) { self.rowCount() == 1006 }, "\(rowCount())")
        let capped = samples(scrape(http))
        XCTAssertEqual(capped[#"vigil_last_frame_untracked_total{pipeline="vec"}"#], 3, "\(capped.filter { $0.key.contains("last_frame") })")
        let series = capped.keys.filter { $0.hasPrefix("vigil_last_frame_timestamp_seconds{") }
        XCTAssertLessThanOrEqual(series.count, 1000)
        XCTAssertFalse(series.contains { $0.contains(#"device="dev1002""#) }, "the last devices are past the cap")
        XCTAssertTrue(daemon.output.contains("already lists 1000 devices"), daemon.output)
    }
}
