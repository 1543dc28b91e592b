import Foundation
import Sockets
import TestSupport
import VigilCore
import XCTest

/// sd_notify against a datagram socket that plays systemd's part.
final class ServiceNotifyTests: XCTestCase {
    func testSendsEachMessageAsOneDatagramToAPathSocket() throws {
        let dir = TempDir("vigil-notify")
        defer { dir.remove() }
        let systemd = try UnixDatagramReceiver(path: dir.file("notify.sock"))
        let n = SdNotify(environment: ["NOTIFY_SOCKET": systemd.path])
        XCTAssertTrue(n.isEnabled)
        XCTAssertNil(n.watchdogInterval)
        n.ready(status: "running: 2 pipelines")
        let ready = try XCTUnwrap(systemd.receive(timeout: 5))
        let lines = ready.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "READY=1")
        XCTAssertTrue(lines.contains("STATUS=running: 2 pipelines"), ready)
        XCTAssertTrue(lines.contains("MAINPID=\(getpid())"), ready)
        n.status("12.0 frames/s\nalerts 1")
        XCTAssertEqual(systemd.receive(timeout: 5), "STATUS=12.0 frames/s alerts 1\n", "STATUS= is one line")
        n.watchdog()
        XCTAssertEqual(systemd.receive(timeout: 5), "WATCHDOG=1\n")
        n.reloading()
        let reloading = try XCTUnwrap(systemd.receive(timeout: 5))
        XCTAssertTrue(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), reloading)
        n.stopping()
        XCTAssertTrue(try XCTUnwrap(systemd.receive(timeout: 5)).hasPrefix("STOPPING=1\n"))
    }

    func testAbstractSocket() throws {
        let name = "@vigil-test-\(UUID().uuidString.prefix(8))"
        let systemd = try UnixDatagramReceiver(path: name)
        SdNotify(environment: ["NOTIFY_SOCKET": name]).watchdog()
        XCTAssertEqual(systemd.receive(timeout: 5), "WATCHDOG=1\n")
    }

    func testWatchdogIntervalFromEnvironment() {
        let me = getpid()
        XCTAssertEqual(SdNotify(environment: ["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"]).watchdogInterval, 30)
        XCTAssertEqual(SdNotify(environment: ["WATCHDOG_USEC": "500000", "WATCHDOG_PID": "\(me)"]).watchdogInterval, 0.5)
        XCTAssertNil(SdNotify(environment: ["WATCHDOG_USEC": "500000", "WATCHDOG_PID": "\(me + 1)"]).watchdogInterval,
                     "the watchdog is meant for another process")
        XCTAssertNil(SdNotify(environment: ["WATCHDOG_USEC": "0"]).watchdogInterval)
    }

    func testOutsideSystemdEverythingIsANoOp() {
        let n = SdNotify(environment: [:])
        XCTAssertFalse(n.isEnabled)
        XCTAssertFalse(n.send(["READY=1"]))
    }

    func testMissingSocketIsNotFatal() {
        let n = SdNotify(environment: ["NOTIFY_SOCKET": "/nonexistent/notify.sock"])
        XCTAssertFalse(n.send(["WATCHDOG=1"]))
    }
}

final class ServiceMetricsTests: XCTestCase {
    func testPrometheusTextForCountersGaugesAndHistograms() {
        let m = MetricsRegistry()
        m.describe("t_latency_seconds", .histogram, "Latency.", buckets: [0.01, 0.1, 1])
        m.describe("t_actions_total", .counter, "Actions.")
        m.observe("t_latency_seconds", [.init("model", "motion")], 0.005)
        m.observe("t_latency_seconds", [.init("model", "motion")], 0.05)
        m.observe("t_latency_seconds", [.init("model", "motion")], 5)
        m.add("t_actions_total", [.init("action", "siren"), .init("outcome", "ok")])
        m.add("t_actions_total", [.init("action", "siren"), .init("outcome", "ok")])
        m.add("t_actions_total", [.init("action", "say \"hi\"\\"), .init("outcome", "failed")])
        m.set("t_gauge", [], 2.5)
        var out = ""
        m.render(into: &out)
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("# TYPE t_latency_seconds histogram"), out)
        XCTAssertTrue(lines.contains(#"t_latency_seconds_bucket{model="motion",le="0.01"} 1"#), out)
        XCTAssertTrue(lines.contains(#"t_latency_seconds_bucket{model="motion",le="0.1"} 2"#), out)
        XCTAssertTrue(lines.contains(#"t_latency_seconds_bucket{model="motion",le="1"} 2"#), out)
        XCTAssertTrue(lines.contains(#"t_latency_seconds_bucket{model="motion",le="+Inf"} 3"#), out)
        XCTAssertTrue(lines.contains(#"t_latency_seconds_count{model="motion"} 3"#), out)
        XCTAssertTrue(lines.contains(#"t_latency_seconds_sum{model="motion"} 5.055"#), out)
        XCTAssertTrue(lines.contains(#"t_actions_total{action="siren",outcome="ok"} 2"#), out)
        XCTAssertTrue(lines.contains(#"t_actions_total{action="say \"hi\"\\",outcome="failed"} 1"#), "label values escaped:\n\(out)")
        XCTAssertTrue(lines.contains("t_gauge 2.5"), out)
        XCTAssertEqual(m.observations("t_latency_seconds"), 3)
    }

    func testCountersHooksForOtherStages() {
        let c = Counters()
        c.alertRaised("camera")
        c.alert("camera", state: "cleared")
        c.actionRun("siren", outcome: "ok")
        c.actionRun("notify", outcome: "timeout")
        c.inferenceFinished(model: "motion", ms: 3)
        c.setSyncLag(12)
        c.setUnsyncedRows(40)
        XCTAssertEqual(c.alertsRaised, 2)
        XCTAssertEqual(c.unsyncedRows, 40)
        var out = ""
        c.metrics.render(into: &out)
        XCTAssertTrue(out.contains(#"vigil_alerts_total{pipeline="camera",state="raised"} 1"#), out)
        XCTAssertTrue(out.contains(#"vigil_actions_total{action="notify",outcome="timeout"} 1"#), out)
        XCTAssertTrue(out.contains(#"vigil_inference_duration_seconds_bucket{model="motion",le="0.005"} 1"#), out)
        XCTAssertTrue(out.contains("vigil_sync_lag_seconds 12"), out)
        XCTAssertTrue(out.contains("# HELP vigil_unsynced_rows "), out)
    }
}

/// The loopback HTTP server, exercised with curl.
final class ServiceHTTPTests: XCTestCase {
    func curl(_ args: [String]) throws -> (status: Int, body: String) { try ServiceHTTPTests.curl(args) }

    static func curl(_ args: [String]) throws -> (status: Int, body: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let split = text.range(of: "\n", options: .backwards)!
        return (Int(text[split.upperBound...]) ?? -1, String(text[..<split.lowerBound]))
    }

    func testRoutesMethodsAndLimits() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else { throw XCTSkip("curl not installed") }
        let server = try HTTPServer(host: "127.0.0.1", port: 0) { req in
            req.path == "/hello" ? HTTPResponse(200, "hi \(req.query)\n") : HTTPResponse(404, "no\n")
        }
        server.maxRequestBytes = 2048
        server.start()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        XCTAssertNotEqual(server.port, 0)
        var r = try curl([base + "/hello?x=1"])
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.body, "hi x=1\n")
        XCTAssertEqual(try curl([base + "/nope"]).status, 404)
        r = try curl(["-X", "POST", "-d", "a=b", base + "/hello"])
        XCTAssertEqual(r.status, 405)
        r = try curl(["-I", base + "/hello"])
        XCTAssertEqual(r.status, 200)
        XCTAssertFalse(r.body.contains("hi"), "HEAD has no body: \(r.body)")
        XCTAssertTrue(r.body.contains("Content-Length: 4"), r.body)
        r = try curl(["-H", "X-Big: " + String(repeating: "a", count: 4000), base + "/hello"])
        XCTAssertEqual(r.status, 431, "requests are bounded in size")
        // Many clients at once: each gets its answer.
        let group = DispatchGroup()
        let ok = Counter()
        for _ in 0..<12 {
            group.enter()
            Thread.detachNewThread {
                if (try? ServiceHTTPTests.curl([base + "/hello"]).status) == 200 { ok.bump() }
                group.leave()
            }
        }
        group.wait()
        XCTAssertEqual(ok.value, 12)
    }

    func testSlowClientTimesOutAndTheServerGoesOn() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else { throw XCTSkip("curl not installed") }
        let server = try HTTPServer(host: "127.0.0.1", port: 0, maxOpen: 2) { _ in HTTPResponse(200, "ok\n") }
        server.timeout = 0.5
        server.start()
        defer { server.stop() }
        // A client that connects and says nothing is told it timed out; others are served meanwhile.
        let silent = try SilentClient(port: server.port)
        let r = try curl(["http://127.0.0.1:\(server.port)/"])
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(silent.readAll().contains("408"), "the silent client was told it timed out")
    }

    /// Issue 15, item 10: idle connections that fill every place are closed, oldest first,
    /// so a probe is served at once instead of after their timeouts.
    func testIdleConnectionsAreClosedToServeNewOnes() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else { throw XCTSkip("curl not installed") }
        let server = try HTTPServer(host: "127.0.0.1", port: 0, maxOpen: 2) { _ in HTTPResponse(200, "ok\n") }
        server.timeout = 30
        server.start()
        defer { server.stop() }
        let silent = try (0..<5).map { _ in try SilentClient(port: server.port) }
        XCTAssertTrue(waitUntil(timeout: 5) { server.openConnections == 2 })
        let r = try curl(["http://127.0.0.1:\(server.port)/"])
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(silent[0].readAll(), "", "the oldest idle connection was closed, unanswered")
    }

    func testListenErrorNamesTheAddress() {
        XCTAssertThrowsError(try HTTPServer(host: "not-an-ip", port: 9108) { _ in HTTPResponse(200, "") }) { e in
            XCTAssertTrue("\(e)".contains("not-an-ip:9108"), "\(e)")
        }
        let a = try? HTTPServer(host: "127.0.0.1", port: 0) { _ in HTTPResponse(200, "") }
        XCTAssertThrowsError(try HTTPServer(host: "127.0.0.1", port: a!.port) { _ in HTTPResponse(200, "") }) { e in
            XCTAssertTrue("\(e)".contains("127.0.0.1:\(a!.port)"), "\(e)")
            XCTAssertTrue("\(e)".contains("in use"), "\(e)")
        }
    }
}

final class Counter: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var n = 0
    func bump() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// A TCP client that connects and sends nothing.
final class SilentClient {
    let conn: TCPConnection
    init(port: Int) throws {
        // No pause before the next client: the server accepts on one thread from the kernel's
        // FIFO queue and stamps each with a monotonic clock, so connect order is age order.
        conn = try TCPConnection.connect(host: "127.0.0.1", port: port)
    }
    func readAll() -> String {
        String(decoding: conn.read(limit: 4096, deadline: TCPConnection.now() + 5) { _ in false }.bytes, as: UTF8.self)
    }
}

/// Log lines: levels, journald priority prefixes, rate limiting with a count.
final class ServiceLogTests: XCTestCase {
    final class Lines: @unchecked Sendable {
        // @unchecked Sendable: guarded by `lock`.
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ s: String) { lock.withLock { lines.append(s) } }
        var all: [String] { lock.withLock { lines } }
    }

    func testJournaldPrefixesAndLevels() {
        let out = Lines()
        let j = Logger(journald: true, sink: { out.add($0) })
        j.setLevel(.notice)
        j.error("disk full")
        j.warning("slow")
        j.notice("ready")
        j.info("hidden")
        j.debug("hidden")
        XCTAssertEqual(out.all, ["<3>disk full\n", "<4>slow\n", "<5>ready\n"])
        let plain = Lines()
        let p = Logger(journald: false, sink: { plain.add($0) })
        p.notice("ready")
        let line = plain.all.first ?? ""
        XCTAssertTrue(line.hasSuffix("Z NOTICE ready\n"), line)
        XCTAssertTrue(line.hasPrefix("20"), "starts with a UTC timestamp: \(line)")
    }

    /// Issue 15, item 4: a 64 KB device name or topic does not make a 64 KB line.
    func testLongNamesAndLinesAreCut() {
        let out = Lines()
        let j = Logger(journald: true, sink: { out.add($0) })
        let name = String(repeating: "x", count: 65_000)
        XCTAssertEqual(Logger.clip("cam1"), "cam1")
        XCTAssertEqual(Logger.clip(name).utf8.count, 120 + "...(65000 bytes)".utf8.count)
        j.warning("device \(name)")
        let line = out.all.first ?? ""
        XCTAssertLessThan(line.utf8.count, Logger.maxMessageBytes + 64)
        XCTAssertTrue(line.contains("line of 65007 bytes cut"), line.suffix(60).description)
    }

    func testRepeatedMessagesAreCountedNotRepeated() {
        let out = Lines()
        let l = Logger(journald: true, sink: { out.add($0) })
        l.burst = 3
        l.window = 2
        for i in 0..<50 { l.limited(.warning, key: "bad-payload", "payload \(i) is malformed") }
        l.limited(.warning, key: "other", "another key passes")
        XCTAssertEqual(out.all.filter { $0.contains("is malformed") }.count, 3, "\(out.all)")
        XCTAssertTrue(out.all.contains("<4>another key passes\n"))
        // The flood stopped: the count still comes out once the window ends.
        l.flushSuppressed()
        XCTAssertFalse(out.all.contains { $0.contains("suppressed") }, "not before the window ends")
        let windowEnded = Date().timeIntervalSince1970 + 2.05   // the clock moved on, not waited for
        l.flushSuppressed(now: windowEnded)
        XCTAssertTrue(out.all.contains("<4>47 similar messages suppressed (bad-payload)\n"), "\(out.all)")
        l.flushSuppressed(now: windowEnded)
        XCTAssertEqual(out.all.filter { $0.contains("suppressed") }.count, 1, "reported once")
        l.limited(.warning, key: "bad-payload", "payload 51 is malformed")
        XCTAssertTrue(out.all.last?.contains("payload 51") ?? false, "a new window passes again")
    }
}
