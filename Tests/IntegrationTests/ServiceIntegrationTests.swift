import Foundation
import SQLite
import Sockets
import TestSupport
import XCTest

/// vigild as systemd runs it: a datagram socket plays systemd (NOTIFY_SOCKET, WATCHDOG_USEC),
/// signals drive reload and stop, curl reads /healthz and /metrics. Real broker, model, SQLite.
final class ServiceIntegrationTests: XCTestCase {
    var dir: TempDir!
    override func setUp() { dir = TempDir("vigil-svc-it") }
    override func tearDown() { dir.remove() }

    /// Notifications received so far, collected on a background thread.
    final class Systemd: @unchecked Sendable {
        // @unchecked Sendable: `messages` is guarded by `lock`; the receiver is read by one thread.
        let socket: UnixDatagramReceiver
        private let lock = NSLock()
        private var messages: [String] = []
        private var done = false
        init(path: String) throws {
            socket = try UnixDatagramReceiver(path: path)
            Thread.detachNewThread { [self] in
                while !lock.withLock({ done }) {
                    if let m = socket.receive(timeout: 0.1) { lock.withLock { messages.append(m) } }
                }
            }
        }
        var all: [String] { lock.withLock { messages } }
        func count(_ s: String) -> Int { all.filter { $0.contains(s) }.count }
        func close() { lock.withLock { done = true } }
    }

    func writeConfig(brokerPort: Int, httpPort: Int, model: String, pipelines extra: String = "", log: String = "info") -> String {
        dir.write("vigil.json", """
            {
              "node": "svc-it",
              "log_level": "\(log)",
              "mqtt": { "host": "127.0.0.1", "port": \(brokerPort), "client_id": "vigild-svc-\(brokerPort)" },
              "storage": { "path": "\(dir.file("vigil.db"))", "commit_interval_ms": 50 },
              "models": { "tiny": { "path": "\(model)" } },
              "pipelines": [
                { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" }\(extra)
              ],
              "http": { "listen": "127.0.0.1:\(httpPort)" }
            }
            """)
    }

    func metric(_ body: String, _ line: String) -> Double? {
        for l in body.split(separator: "\n") where l.hasPrefix(line + " ") {
            return Double(l.dropFirst(line.count + 1))
        }
        return nil
    }

    func rows(_ sql: String) throws -> [[SQLValue]] {
        try Database(path: dir.file("vigil.db"), mode: .readOnly).query(sql)
    }

    func start(_ config: String, systemd: Systemd?, watchdogUsec: Int? = nil, extraEnv: [String: String] = [:]) throws -> ChildProcess {
        var env = extraEnv
        if let systemd { env["NOTIFY_SOCKET"] = systemd.socket.path }
        if let watchdogUsec { env["WATCHDOG_USEC"] = "\(watchdogUsec)" }
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", config], outputPath: dir.file("vigild.log"),
                                 environment: env)
        XCTAssertTrue(waitUntil(timeout: 20) { d.output.contains("ready") || !d.isRunning }, d.output)
        return d
    }

    func testNotifyLifecycleHealthAndMetrics() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else { throw XCTSkip("curl not installed") }
        let broker = try Broker()
        let http = freePort()
        let systemd = try Systemd(path: dir.file("notify.sock"))
        defer { systemd.close() }
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier.onnx"), toPath: dir.file("tiny.onnx"))
        let config = writeConfig(brokerPort: broker.port, httpPort: http, model: dir.file("tiny.onnx"))
        let daemon = try start(config, systemd: systemd, watchdogUsec: 1_000_000)
        defer { daemon.stop() }

        XCTAssertTrue(waitUntil { systemd.count("READY=1") == 1 }, "\(systemd.all)\n\(daemon.output)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.file("vigil.db")), "READY=1 comes after the store is open")
        XCTAssertTrue(waitUntil { systemd.count("WATCHDOG=1") >= 3 }, "pings at half of WATCHDOG_USEC: \(systemd.all)")
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        XCTAssertTrue(waitUntil { httpGet("http://127.0.0.1:\(http)/healthz").status == 200 }, httpGet("http://127.0.0.1:\(http)/healthz").body)

        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []
        for i in 0..<20 { mids.append(try pub.publish("sensors/d\(i % 2)/vec", f32le([Float(i), 1, 2, 3]))) }
        mids.append(try pub.publish("sensors/d0/vec", f32le([1, 2])))   // wrong size
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 15) {
            self.metric(httpGet("http://127.0.0.1:\(http)/metrics").body, #"vigil_frames_processed_total{pipeline="vec"}"#) == 20
        }, httpGet("http://127.0.0.1:\(http)/metrics").body)
        let m = httpGet("http://127.0.0.1:\(http)/metrics").body
        XCTAssertEqual(metric(m, #"vigil_frames_received_total{pipeline="vec"}"#), 21, m)
        XCTAssertEqual(metric(m, #"vigil_frames_rejected_total{pipeline="vec",reason="wrongSize"}"#), 1, m)
        XCTAssertEqual(metric(m, #"vigil_inference_duration_seconds_count{model="tiny"}"#), 20, m)
        XCTAssertEqual(metric(m, #"vigil_inference_duration_seconds_bucket{model="tiny",le="+Inf"}"#), 20, m)
        // One latency observation per detection, never less than the model's own run.
        XCTAssertEqual(metric(m, #"vigil_frame_latency_seconds_count{pipeline="vec"}"#), 20, m)
        XCTAssertGreaterThanOrEqual(metric(m, #"vigil_frame_latency_seconds_sum{pipeline="vec"}"#) ?? 0,
                                    metric(m, #"vigil_inference_duration_seconds_sum{model="tiny"}"#) ?? 1, m)
        XCTAssertEqual(metric(m, "vigil_broker_connected"), 1, m)
        XCTAssertGreaterThan(metric(m, "vigil_database_bytes") ?? 0, 0, m)
        XCTAssertTrue(waitUntil(timeout: 15) { systemd.all.contains { $0.contains("STATUS=") && $0.contains("frames 21") } },
                      "STATUS= carries live counters: \(systemd.all.filter { $0.contains("STATUS") })")
        XCTAssertTrue(systemd.all.contains { $0.contains("frames/s") && $0.contains("alerts 0") && $0.contains("unsynced") },
                      "\(systemd.all.filter { $0.contains("STATUS") })")

        // The broker goes away: /healthz says why; the watchdog keeps going (a restart would not help).
        broker.stop()
        XCTAssertTrue(waitUntil(timeout: 15) {
            let r = httpGet("http://127.0.0.1:\(http)/healthz")
            return r.status == 503 && r.body.contains("not connected to broker 127.0.0.1:\(broker.port)")
        }, httpGet("http://127.0.0.1:\(http)/healthz").body)
        let pings = systemd.count("WATCHDOG=1")
        XCTAssertTrue(waitUntil { systemd.count("WATCHDOG=1") > pings + 1 })
        try broker.start()
        XCTAssertTrue(waitUntil(timeout: 20) { httpGet("http://127.0.0.1:\(http)/healthz").status == 200 })

        // SIGHUP: RELOADING=1, then READY=1 again.
        daemon.signal(SIGHUP)
        XCTAssertTrue(waitUntil { systemd.count("READY=1") == 2 }, "\(systemd.all)")
        let reloading = systemd.all.firstIndex { $0.contains("RELOADING=1") }
        let readyAgain = systemd.all.lastIndex { $0.contains("READY=1") }
        XCTAssertNotNil(reloading)
        XCTAssertLessThan(reloading ?? .max, readyAgain ?? -1)

        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertTrue(systemd.all.contains { $0.hasPrefix("STOPPING=1") }, "\(systemd.all)")
        XCTAssertEqual(httpGet("http://127.0.0.1:\(http)/healthz").status, 0, "the listener is closed")
    }

    func testSighupReloadsModelAndTopicsKeepsTheConnectionAndRejectsABadConfig() throws {
        let broker = try Broker()
        let http = freePort()
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier.onnx"), toPath: dir.file("tiny.onnx"))
        let config = writeConfig(brokerPort: broker.port, httpPort: http, model: dir.file("tiny.onnx"))
        let daemon = try start(config, systemd: nil)
        defer { daemon.stop() }
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let pub = try TestClient(port: broker.port)
        try pub.publish("sensors/a/vec", f32le([1, 2, 3, 4]))
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? self.rows("SELECT count(*) FROM detections"))?.first?.first?.int ?? 0) == 1 })

        // New model file (labels cold,warm,hot) and a new pipeline on a new topic.
        try FileManager.default.removeItem(atPath: dir.file("tiny.onnx"))
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier_v2.onnx"), toPath: dir.file("tiny.onnx"))
        _ = writeConfig(brokerPort: broker.port, httpPort: http, model: dir.file("tiny.onnx"), pipelines: """
            ,
                { "name": "env", "topic": "sensors/{device}/env", "format": "json", "fields": ["a", "b", "c", "d"], "model": "tiny" }
            """)
        daemon.signal(SIGHUP)
        XCTAssertTrue(waitUntil { daemon.output.contains("reloaded") }, daemon.output)
        XCTAssertTrue(daemon.output.contains("broker connection kept"), daemon.output)
        XCTAssertTrue(daemon.output.contains("subscribed sensors/+/env"), daemon.output)
        Thread.sleep(forTimeInterval: 0.3)   // let the broker grant the new subscription (vigild shows no sign of the SUBACK)
        var mids = [try pub.publish("sensors/a/vec", f32le([1, 2, 3, 4]))]
        mids.append(try pub.publish("sensors/b/env", #"{"a":1,"b":2,"c":3,"d":4}"#))
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? self.rows("SELECT count(*) FROM detections"))?.first?.first?.int ?? 0) == 3 },
                      daemon.output)
        let labels = try rows("SELECT pipeline, label FROM detections ORDER BY id").map { "\($0[0].string!):\($0[1].string!)" }
        XCTAssertTrue(["low", "mid", "high"].contains(labels[0].split(separator: ":")[1]), "\(labels)")
        XCTAssertTrue(labels[1...].allSatisfy { ["cold", "warm", "hot"].contains($0.split(separator: ":")[1]) },
                      "frames after the reload use the new model file: \(labels)")
        XCTAssertEqual(Set(labels.map { $0.split(separator: ":")[0] }), ["vec", "env"])
        XCTAssertEqual(daemon.output.components(separatedBy: "connected to broker").count - 1, 1,
                       "one connection for the whole run:\n\(daemon.output)")
        let m = httpGet("http://127.0.0.1:\(http)/metrics").body
        XCTAssertEqual(metric(m, "vigil_broker_connects_total"), 1, m)

        // An invalid config: rejected with the key named, the running one stays.
        _ = dir.write("vigil.json", try String(contentsOfFile: config, encoding: .utf8)
            .replacingOccurrences(of: "\"log_level\"", with: "\"loglevel\""))
        daemon.signal(SIGHUP)
        XCTAssertTrue(waitUntil { daemon.output.contains("reload rejected") }, daemon.output)
        XCTAssertTrue(daemon.output.contains("loglevel: unknown key"), daemon.output)
        try pub.publish("sensors/c/env", #"{"a":1,"b":2,"c":3,"d":4}"#)
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? self.rows("SELECT count(*) FROM detections"))?.first?.first?.int ?? 0) == 4 },
                      "still running the previous config:\n\(daemon.output)")
        XCTAssertEqual(metric(httpGet("http://127.0.0.1:\(http)/metrics").body, #"vigil_reloads_total{result="failed"}"#), 1)
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testChangedBrokerSettingsReconnect() throws {
        let first = try Broker()
        let second = try Broker()
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier.onnx"), toPath: dir.file("tiny.onnx"))
        let http = freePort()
        _ = writeConfig(brokerPort: first.port, httpPort: http, model: dir.file("tiny.onnx"))
        let daemon = try start(dir.file("vigil.json"), systemd: nil)
        defer { daemon.stop() }
        XCTAssertTrue(waitUntil { daemon.output.contains("connected to broker 127.0.0.1:\(first.port)") }, daemon.output)
        _ = writeConfig(brokerPort: second.port, httpPort: http, model: dir.file("tiny.onnx"))
        daemon.signal(SIGHUP)
        XCTAssertTrue(waitUntil { daemon.output.contains("connected to broker 127.0.0.1:\(second.port)") }, daemon.output)
        XCTAssertTrue(daemon.output.contains("broker settings changed: reconnected"), daemon.output)
        let pub = try TestClient(port: second.port)
        try pub.publish("sensors/z/vec", f32le([0, 0, 0, 1]))
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? self.rows("SELECT count(*) FROM detections"))?.first?.first?.int ?? 0) == 1 },
                      daemon.output)
    }

    func testSigtermDrainsEveryReceivedFrameAndExitsZero() throws {
        let broker = try Broker()
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier.onnx"), toPath: dir.file("tiny.onnx"))
        let config = writeConfig(brokerPort: broker.port, httpPort: freePort(), model: dir.file("tiny.onnx"))
        let daemon = try start(config, systemd: nil)
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []
        for i in 0..<400 { mids.append(try pub.publish("sensors/d\(i % 4)/vec", f32le([Float(i), 0, 1, 2]))) }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertEqual(daemon.stop(SIGTERM, timeout: 30), 0, daemon.output)
        // Every frame vigild took is in the database: the stop line counts them.
        let line = try XCTUnwrap(daemon.output.split(separator: "\n").first { $0.contains("stopped: frames") }, daemon.output)
        func number(after word: String) -> Int? {
            guard let r = line.range(of: word + " ") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
        let received = try XCTUnwrap(number(after: "frames")), stored = try XCTUnwrap(number(after: "detections"))
        XCTAssertEqual(received, stored, String(line))
        XCTAssertEqual(try rows("SELECT count(*) FROM detections").first?.first?.int, Int64(stored))
        XCTAssertGreaterThan(received, 0)
    }

    func testSigtermIsBoundedWhenAnActionHangs() throws {
        let broker = try Broker()
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier.onnx"), toPath: dir.file("tiny.onnx"))
        // Every frame raises an alert whose action takes 20 s.
        let text = try String(contentsOfFile: writeConfig(brokerPort: broker.port, httpPort: freePort(), model: dir.file("tiny.onnx")),
                              encoding: .utf8)
            .replacingOccurrences(of: #""format": "f32le", "model": "tiny" }"#, with: """
                "format": "f32le", "model": "tiny",
                  "alert": { "labels": ["low", "mid", "high"], "min_score": 0, "actions": ["slow"] } }
                """)
            .replacingOccurrences(of: #""http":"#, with: """
                "actions": { "slow": { "type": "exec", "argv": ["/bin/sleep", "20"], "timeout_s": 60 } },
                  "http":
                """)
        let config = dir.write("vigil.json", text)
        let daemon = try start(config, systemd: nil, extraEnv: ["VIGIL_STOP_TIMEOUT_S": "1"])
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let pub = try TestClient(port: broker.port)
        try pub.publish("sensors/a/vec", f32le([1, 2, 3, 4]))
        XCTAssertTrue(waitUntil(timeout: 10) { daemon.output.contains("alert raised") }, daemon.output)
        XCTAssertEqual(daemon.stop(SIGTERM, timeout: 15), 0, "exits 0 before the action ends:\n\(daemon.output)")
        XCTAssertTrue(daemon.output.contains("still busy after 1.0 s"), daemon.output)
        XCTAssertTrue(daemon.output.contains("1 actions running"), daemon.output)
        XCTAssertEqual(try rows("SELECT count(*) FROM alerts WHERE state = 'raised'").first?.first?.int, 1,
                       "the alert row was committed before exit")
        XCTAssertEqual(try rows("SELECT count(*) FROM detections").first?.first?.int, 1)
    }

    func testJournaldPrioritiesWhenJournalStreamIsSet() throws {
        try FileManager.default.copyItem(atPath: Paths.fixture("tiny_classifier.onnx"), toPath: dir.file("tiny.onnx"))
        let config = writeConfig(brokerPort: freePort(), httpPort: freePort(), model: dir.file("tiny.onnx"))
        let daemon = try start(config, systemd: nil, extraEnv: ["JOURNAL_STREAM": "8:12345"])
        XCTAssertTrue(waitUntil { daemon.output.contains("cannot reach broker") }, daemon.output)
        XCTAssertEqual(daemon.stop(), 0)
        let lines = daemon.output.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("<5>vigild") && $0.contains("ready") }, daemon.output)
        XCTAssertTrue(lines.contains { $0.hasPrefix("<3>cannot reach broker") }, daemon.output)
        XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("<") }, "every line carries its priority:\n\(daemon.output)")
        XCTAssertFalse(daemon.output.contains("NOTICE"), "no timestamp/level text under journald")
    }
}

/// `make install` into a DESTDIR, the .deb built and inspected without installing it (nothing
/// outside temp folders changes; `make check-deb` installs it for real, as root), and
/// scripts/setup's plan for an arm64 gateway.
final class ServicePackagingTests: XCTestCase {
    func run(_ argv: [String], env: [String: String] = [:]) throws -> (Int32, String) {
        let dir = TempDir("vigil-pkg-out")
        defer { dir.remove() }
        let p = try ChildProcess(argv[0], Array(argv.dropFirst()), outputPath: dir.file("out"), environment: env)
        p.process.waitUntilExit()
        return (p.process.terminationStatus, p.output)
    }

    var binDir: String { URL(fileURLWithPath: Paths.executable("vigild")).deletingLastPathComponent().path }

    func testMakeInstallIntoDestdir() throws {
        let dest = TempDir("vigil-destdir")
        defer { dest.remove() }
        let (rc, out) = try run(["/usr/bin/make", "-C", Paths.repo.path, "install-files", "DESTDIR=\(dest.path)",
                                 "PREFIX=/opt/vigil", "BIN_DIR=\(binDir)", "MULTICALL="])
        XCTAssertEqual(rc, 0, out)
        for f in ["/opt/vigil/bin/vigild", "/opt/vigil/bin/vigilctl", "/etc/vigil/vigil.json",
                  "/opt/vigil/lib/systemd/system/vigild.service", "/opt/vigil/lib/sysusers.d/vigil.conf",
                  "/opt/vigil/lib/tmpfiles.d/vigil.conf", "/opt/vigil/share/vigil/models"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dest.path + f), "missing \(f)\n\(out)")
        }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: dest.path + "/opt/vigil/bin/vigild"))
        let unit = try String(contentsOfFile: dest.path + "/opt/vigil/lib/systemd/system/vigild.service", encoding: .utf8)
        XCTAssertTrue(unit.contains("ExecStart=/opt/vigil/bin/vigild --config /etc/vigil/vigil.json"), unit)
        let config = try String(contentsOfFile: dest.path + "/etc/vigil/vigil.json", encoding: .utf8)
        XCTAssertTrue(config.contains("/opt/vigil/share/vigil/models/motion.onnx"), "model paths follow PREFIX")
        // The installed config is still valid.
        let (crc, cout) = try run([Paths.executable("vigild"), "--check-config", dest.path + "/etc/vigil/vigil.json"])
        XCTAssertFalse(cout.contains("unknown key") || cout.contains("must be"), "rc \(crc): \(cout)")
    }

    /// The package as `make deb` builds it, from the debug build linked into one multi-call binary
    /// (as packaging/link-vigil does for the release build): extracted with dpkg-deb into a temp
    /// folder and checked by scripts/inspect-deb (files, modes, maintainer scripts, unit paths,
    /// Depends, and the extracted vigild/vigilctl running the shipped config and models).
    func testDebExtractedHasItsFilesModesScriptsAndRuns() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-shlibdeps") else { throw XCTSkip("dpkg-dev not installed") }
        let out = TempDir("vigil-deb")
        defer { out.remove() }
        let multicall = out.file("vigil-multicall")
        let (lrc, llog) = try run(["/bin/bash", Paths.repo.path + "/packaging/link-vigil"],
                                  env: ["BIN_DIR": binDir, "OUT": multicall])
        XCTAssertEqual(lrc, 0, llog)
        let (rc, log) = try run(["/bin/bash", Paths.repo.path + "/scripts/inspect-deb"],
                                env: ["BIN_DIR": binDir, "MULTICALL": multicall, "DEB_COMPRESS": "gzip"])
        XCTAssertEqual(rc, 0, log)
        XCTAssertFalse(log.contains("FAILED"), log)
        for expected in ["extract: ok", "file /usr/lib/systemd/system/vigild.service: ok", "file /usr/share/man/man8/vigild.8.gz: ok",
                         "file /usr/share/doc/vigil/copyright: ok", "mode vigild 0755 root: ok", "postinst is sh and parses: ok",
                         "md5sums match: ok", "unit ExecStart in the package: ok", "Depends not on the bundled ONNX Runtime: ok",
                         "vigild --version: vigild ", "vigilctl --version: vigilctl ", "shipped config and models load: ok"] {
            XCTAssertTrue(log.contains(expected), "missing \"\(expected)\":\n\(log)")
        }
        // Depends comes from dpkg-shlibdeps: the oldest versions with the symbols used, so no
        // Debian revision of this host's packages (e.g. "7.88.1-10+deb12u15") is in it.
        let depends = log.split(separator: "\n").first { $0.hasPrefix("Depends: ") } ?? ""
        XCTAssertTrue(depends.contains("libc6 (>= "), log)
        XCTAssertFalse(depends.contains("deb12") || depends.contains("ubuntu"), String(depends))
    }

    /// scripts/setup on an aarch64 gateway (planned here with ARCH=aarch64 DRY_RUN=1, which
    /// changes nothing): PyPI's aarch64 wheel, the arm64 package name; an unknown machine is refused.
    func testSetupPlansTheArm64PathAndRefusesOtherMachines() throws {
        let setup = Paths.repo.path + "/scripts/setup"
        let (rc, plan) = try run(["/bin/bash", setup], env: ["ARCH": "aarch64", "DRY_RUN": "1"])
        XCTAssertEqual(rc, 0, plan)
        for expected in ["machine: aarch64 (Debian architecture arm64)", "--platform manylinux_2_28_aarch64 onnxruntime==",
                         "/usr/local/lib/libonnxruntime.so.", "vigil_<version>_arm64.deb"] {
            XCTAssertTrue(plan.contains(expected), "missing \"\(expected)\":\n\(plan)")
        }
        XCTAssertFalse(plan.contains("x86_64"), plan)
        let (xrc, xplan) = try run(["/bin/bash", setup], env: ["ARCH": "amd64", "DRY_RUN": "1"])
        XCTAssertEqual(xrc, 0, xplan)
        XCTAssertTrue(xplan.contains("--platform manylinux_2_28_x86_64 ") && xplan.contains("_amd64.deb"), xplan)
        let (brc, bout) = try run(["/bin/bash", setup], env: ["ARCH": "riscv64", "DRY_RUN": "1"])
        XCTAssertNotEqual(brc, 0, bout)
        XCTAssertTrue(bout.contains("unsupported machine riscv64"), bout)
    }
}
