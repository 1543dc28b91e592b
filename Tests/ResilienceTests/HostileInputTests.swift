import Foundation
import SQLite
import TestSupport
import XCTest

/// Issue 15, items 1-4, 10: payloads and peers that once stalled, blinded or ballooned
/// vigild without saying so. Each scenario runs the real binary against a real broker;
/// figures are printed as `[resilience]` lines (times are reported, never asserted).
final class HostileInputTests: ResilienceCase {
    var broker: Broker!

    override func tearDown() {
        broker = nil
        super.tearDown()
    }

    /// A config with a json pipeline (4 fields, one reading per detection) and whatever else is asked for.
    func config(id: String, limits: String = "", pipelines: String = "", models: String = "", extra: String = "") throws -> String {
        broker = try Broker()
        return dir.write("vigil.json", """
            {
              "node": "res-node",
              "mqtt": { "host": "127.0.0.1", "port": \(broker.port), "client_id": "vigild-res-\(id)" },
              "storage": { "path": "\(dbPath)", "commit_interval_ms": 50 },
              "limits": { \(limits) },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } \(models) },
              "pipelines": [
                { "name": "env", "topic": "sensors/{device}/env", "format": "json", "fields": ["a", "b", "c", "d"], "model": "tiny" }
                \(pipelines)
              ]
              \(extra)
            }
            """)
    }

    func reading(_ a: Double, ts: String? = nil) -> String {
        #"{\#(ts.map { "\"ts\":\($0)," } ?? "")"a":\#(a),"b":1,"c":2,"d":3}"#
    }

    func rows(device: String) -> Int { int("SELECT count(*) FROM detections WHERE device = '\(device)'") }

    // MARK: item 1

    /// One `ts` from the future (2100, tomorrow, a microsecond epoch read as milliseconds)
    /// used to become the device's newest mark, and every later reading was dropped as
    /// `outOfOrder`. Now each is rejected as `badTimestamp` and the device keeps working;
    /// µs and ns epochs of now are read as now.
    func testAFutureTimestampDoesNotBlindTheDevice() throws {
        let daemon = try startDaemon(try config(id: "ts"))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let now = Date().timeIntervalSince1970
        let payloads = [
            reading(1),                                                   // arrival time
            reading(2, ts: "4102444800"),                                 // 2100-01-01: rejected
            reading(3, ts: String(Int(now + 86_400))),                    // tomorrow: rejected
            reading(4, ts: String(Int64((now + 2) * 1e6))),                     // in 2 s, in µs: accepted
            reading(5, ts: String(Int64((now + 2) * 1e6) * 1000 + 1_000_000)),  // 1 ms later, in ns: accepted
        ] + (6...10).map { reading(Double($0)) }   // arrival times: in order by arrival, though before the mark
        var mids: [Int32] = []
        for p in payloads { mids.append(try pub.publish("sensors/d1/env", p)) }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 20) { self.rows(device: "d1") >= 8 }, "rows \(rows(device: "d1"))\n\(daemon.output.suffix(2000))")
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(rows(device: "d1"), 8, "every reading but the two from the future is a row")
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(stopped["rejected"], 2, daemon.output.suffix(2000).description)
        XCTAssertTrue(daemon.output.contains("topic sensors/d1/env: rejected (badTimestamp)"), daemon.output.suffix(2000).description)
        XCTAssertTrue(daemon.output.contains("limits.max_clock_skew_s"))
        XCTAssertFalse(daemon.output.contains("outOfOrder"))
        // The µs and ns readings were stored at now, not in year 58,900.
        let newest = query("SELECT max(ts) FROM detections").first?.first?.double ?? 0
        XCTAssertLessThan(newest, Date().timeIntervalSince1970 + 5)
        report("future ts: \(stopped["rejected"] ?? -1) of 10 readings rejected (badTimestamp), \(rows(device: "d1")) rows, newest ts \(fmt(newest - now)) s after the test started")
    }

    // MARK: item 2

    /// A 60,000-key object (877 KB) used to hold a lane for seconds (quadratic duplicate-key
    /// check) and then made a row. Now objects over `limits.max_json_keys` are rejected,
    /// named and counted, and the other devices' readings are processed meanwhile.
    func testAHugeJSONObjectIsRejectedAndOthersKeepFlowing() throws {
        let daemon = try startDaemon(try config(id: "keys", limits: #""max_payload_bytes": 2097152"#))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let keys = 60_000
        let hostile = "{" + (0..<keys).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + #","a":1,"b":2,"c":3,"d":4}"#
        let start = Date()
        var mids = [try pub.publish("sensors/hostile/env", hostile)]
        for i in 0..<20 { mids.append(try pub.publish("sensors/g\(i % 4)/env", reading(Double(i)))) }
        XCTAssertTrue(pub.waitForAcks(mids, timeout: 30))
        XCTAssertTrue(waitUntil(timeout: 60) { self.rowCount() >= 20 }, "rows \(rowCount())\n\(daemon.output.suffix(2000))")
        let seconds = -start.timeIntervalSinceNow
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(rowCount(), 20)
        XCTAssertEqual(rows(device: "hostile"), 0)
        XCTAssertEqual(stoppedLine(daemon.output)?["rejected"], 1)
        XCTAssertTrue(daemon.output.contains("topic sensors/hostile/env: rejected (tooLarge)"), daemon.output.suffix(2000).description)
        XCTAssertTrue(daemon.output.contains("limits.max_json_keys"))
        report("json keys: one \(hostile.utf8.count / 1024) KB object of \(keys) keys: \(rows(device: "hostile")) rows, rejected \(stoppedLine(daemon.output)?["rejected"] ?? -1); "
               + "20 other readings stored \(fmt(seconds, 2)) s after it was sent")
    }

    // MARK: item 3

    /// vigild's resident and peak memory (MB), from /proc.
    func memory(_ pid: Int32) -> (rss: Int, peak: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return -1 }
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1) / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// A 16-bit mono WAV of `seconds` at `rate` Hz.
    func wav(rate: Int, seconds: Double) -> [UInt8] {
        let n = Int(Double(rate) * seconds)
        func u32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        func u16(_ v: Int) -> [UInt8] { (0..<2).map { UInt8((v >> (8 * $0)) & 0xff) } }
        var data = [UInt8](repeating: 0, count: 2 * n)
        for i in 0..<n {
            let v = UInt16(bitPattern: Int16((i * 37) % 2000 - 1000))
            data[2 * i] = UInt8(v & 0xff); data[2 * i + 1] = UInt8(v >> 8)
        }
        return Array("RIFF".utf8) + u32(36 + data.count) + Array("WAVEfmt ".utf8) + u32(16) + u16(1) + u16(1)
            + u32(rate) + u32(2 * rate) + u16(2) + u16(16) + Array("data".utf8) + u32(data.count) + data
    }

    /// A valid 3.9 MB WAV at 1 kHz into an 8 kHz model with `resample`: 15.6 M samples after
    /// resampling, ~39,900 windows of 800. They were all made at once (RSS +200 MB for one
    /// payload); now they go through the model in bounded runs, every window still a row.
    func testALongWAVIsWindowedInBoundedRuns() throws {
        let path = try config(id: "wav", limits: #""max_payload_bytes": 8388608, "max_queue_bytes": 16777216"#,
                              pipelines: #", { "name": "wav", "topic": "sensors/{device}/wav", "format": "wav", "resample": true, "model": "sound" }"#,
                              models: #", "sound": { "path": "\#(Paths.fixture("sound_small.onnx"))" }"#)
        let daemon = try startDaemon(path)
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let payload = wav(rate: 1000, seconds: 1950)
        let before = memory(daemon.pid)
        XCTAssertTrue(pub.waitForAcks([try pub.publish("sensors/mic1/wav", payload)], timeout: 30))
        // 1,950,000 samples x 8 = 15,600,000 at 8 kHz; windows of 800 every 400.
        let expected = (15_600_000 - 800) / 400   // give or take the resampler's last sample
        XCTAssertTrue(waitUntil(timeout: 300, interval: 0.2) { self.rows(device: "mic1") >= expected }, "rows \(rows(device: "mic1"))")
        let after = memory(daemon.pid)
        XCTAssertEqual(daemon.stop(), 0)
        let stored = rows(device: "mic1")
        XCTAssertGreaterThanOrEqual(stored, expected)
        XCTAssertLessThanOrEqual(stored, expected + 1)
        XCTAssertEqual(stoppedLine(daemon.output)?["rejected"], 0)
        // Bounded by max_queue_bytes (16 MB) plus the payload's own samples, not by its windows.
        XCTAssertLessThan(after.peak - before.rss, 100, "peak RSS \(after.peak) MB from \(before.rss) MB")
        report("long wav: \(payload.count / 1000) KB at 1 kHz -> \(stored) windows, all stored; RSS \(before.rss) -> \(after.rss) MB, peak \(after.peak) MB")
    }

    // MARK: item 4

    /// The discovery configs vigild published, latest payload per topic.
    func configs(_ watch: TestClient) -> [String: [UInt8]] {
        var latest: [String: [UInt8]] = [:]
        for m in watch.messages where m.topic.hasSuffix("/config") { latest[m.topic] = m.payload }
        return latest
    }

    func haConfig(id: String, limits: String, ha: String) throws -> String {
        try config(id: id, limits: limits,
                   pipelines: #", { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny", "alert": { "labels": ["high"], "min_score": 0.5, "cooldown_s": 0 } }"#,
                   extra: #", "homeassistant": { \#(ha) }"#)
    }

    /// Home Assistant discovery kept one retained config per device name ever seen, forever,
    /// and `a.b` and `a_b` shared one id. Now a device silent past `homeassistant.forget_after_s`
    /// (unavailable from `limits.device_ttl_s` on) has its configs removed (empty retained
    /// payloads), ids carry a hash of the raw names, and a 20 KB device name does not make a
    /// 20 KB log line.
    func testDiscoveryExpiresAndIdsDoNotCollide() throws {
        let daemon = try startDaemon(try haConfig(id: "ha", limits: #""device_ttl_s": 2"#, ha: #""discovery": true, "forget_after_s": 3"#))
        defer { daemon.stop() }
        let watch = try TestClient(port: broker.port, subscribe: ["homeassistant/#"])
        defer { watch.close() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let long = String(repeating: "x", count: 20_000)
        var mids: [Int32] = []
        for d in ["a.b", "a_b", long] {
            mids.append(try pub.publish("sensors/\(d)/vec", f32le([0, 0, 10, 0])))   // "high": raises an alert
        }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 10) { self.rowCount() >= 3 }, daemon.output.suffix(2000).description)
        // 2 configs per device (score sensor, the `high` label's binary_sensor), each id its own;
        // the empty configs removing earlier versions' per-pipeline entities do not count.
        XCTAssertTrue(waitUntil(timeout: 5) { self.configs(watch).values.filter { !$0.isEmpty }.count >= 6 }, "\(configs(watch).keys.sorted())")
        let ids = configs(watch).values.compactMap { p -> String? in
            (try? JSONSerialization.jsonObject(with: Data(p)) as? [String: Any])?["unique_id"] as? String
        }
        XCTAssertEqual(Set(ids).count, 6, "unique ids collide: \(ids.sorted())")
        // Silent past forget_after_s: every config is removed with an empty retained payload.
        let cleared = waitUntil(timeout: 15) { self.configs(watch).values.allSatisfy { $0.isEmpty } }
        XCTAssertTrue(cleared, "\(configs(watch).filter { !$0.value.isEmpty }.keys.sorted())")
        let later = try TestClient(port: broker.port, subscribe: ["homeassistant/#"])
        defer { later.close() }
        XCTAssertTrue(later.sync(), "every retained config delivered")
        XCTAssertEqual(later.messages.filter { !$0.payload.isEmpty }.count, 0, "nothing retained is left")
        XCTAssertEqual(daemon.stop(), 0)
        let longest = daemon.output.split(separator: "\n").map(\.utf8.count).max() ?? 0
        XCTAssertLessThan(longest, 2000, "a 20 KB device name is shortened in log lines")
        report("homeassistant: 3 devices (a.b, a_b, a 20 KB name): \(Set(ids).count) distinct unique ids of \(ids.count), "
               + "configs \(cleared ? "" : "not ")cleared after the 2 s ttl; longest log line \(longest) bytes")
    }

    /// Configs retained by an earlier run (before a restart, or before discovery was capped)
    /// are found at connect and removed after the device TTL, unless their device comes back.
    func testDiscoveryLeftByAnEarlierRunIsRemoved() throws {
        let path = try haConfig(id: "haleft", limits: #""device_ttl_s": 60"#, ha: #""discovery": true"#)
        var daemon = try startDaemon(path)
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        XCTAssertTrue(pub.waitForAcks([try pub.publish("sensors/gone/vec", f32le([10, 0, 0, 0])),
                                       try pub.publish("sensors/back/vec", f32le([10, 0, 0, 0]))]))
        func retained() -> [String] {
            guard let c = try? TestClient(port: broker.port, subscribe: ["homeassistant/#"]) else { return [] }
            defer { c.close() }
            c.sync()   // every retained config delivered
            return c.messages.filter { !$0.payload.isEmpty }.map(\.topic).sorted()
        }
        XCTAssertTrue(waitUntil(timeout: 10) { retained().count == 4 }, "\(retained())")
        XCTAssertEqual(daemon.stop(), 0)
        // The next run forgets devices after 2 s; only `back` is heard from again.
        _ = dir.write("vigil.json", try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: #""device_ttl_s": 60"#, with: #""device_ttl_s": 2"#))
        daemon = try startDaemon(path, log: "vigild2.log")
        defer { daemon.stop() }
        let stop = StopFlag()
        let feeder = Worker { [pub] in
            // The pause is the point: `back` is heard from every 0.3 s, well inside the 2 s TTL.
            while !stop.isSet { _ = try? pub.publish("sensors/back/vec", f32le([10, 0, 0, 0])); Thread.sleep(forTimeInterval: 0.3) }
        }
        let left = waitUntil(timeout: 15, interval: 0.5) { retained().allSatisfy { $0.contains("_back_") } }
        let now = retained()
        stop.set()
        feeder.join()
        XCTAssertTrue(left, "\(now)")
        XCTAssertEqual(now.count, 2, "the configs of `back` stay: \(now)")
        XCTAssertTrue(daemon.output.contains("an earlier run left"), daemon.output.suffix(2000).description)
        report("homeassistant: after a restart, \(now.count) of 4 retained configs left after the 2 s ttl (the 2 of the device still heard from should stay)")
    }

    /// At most `homeassistant.max_devices` pairs are announced; the rest are logged, not retained.
    func testDiscoveryIsCapped() throws {
        let daemon = try startDaemon(try haConfig(id: "hacap", limits: "", ha: #""discovery": true, "max_devices": 4"#))
        defer { daemon.stop() }
        let watch = try TestClient(port: broker.port, subscribe: ["homeassistant/#", "vigil/res-node/state/#"])
        defer { watch.close() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        var mids: [Int32] = []
        for i in 0..<6 { mids.append(try pub.publish("sensors/d\(i)/vec", f32le([0, 0, 10, 0]))) }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 10) { self.rowCount() >= 6 }, daemon.output.suffix(2000).description)
        // Per device: the score sensor and the `high` label's binary_sensor (and an empty config
        // removing the per-pipeline entity of earlier versions, not counted).
        func announced() -> [String] { configs(watch).filter { !$0.value.isEmpty }.keys.sorted() }
        XCTAssertTrue(waitUntil(timeout: 5) { announced().count >= 8 })
        Thread.sleep(forTimeInterval: 0.3)   // the point: no ninth config comes (vigild publishes it on its own time)
        XCTAssertEqual(announced().count, 8, "4 devices of 6 announced: \(announced())")
        let states = Set(watch.messages.filter { $0.topic.hasPrefix("vigil/res-node/state/") }.map { $0.topic.split(separator: "/")[4] })
        XCTAssertEqual(states.count, 4, "no retained state for the others: \(states.sorted())")
        XCTAssertTrue(daemon.output.contains("homeassistant.max_devices (4) reached"), daemon.output.suffix(2000).description)
        report("homeassistant: 6 devices, \(announced().count / 2) announced (max_devices 4)")
    }

    // MARK: item 10

    /// 21 connections that never send a request used to hold every HTTP slot (5 s each), so
    /// /healthz took 13 s and a monitor called the node dead. Now it answers at once.
    func testIdleConnectionsDoNotStarveHealthz() throws {
        let port = freePort()
        let daemon = try startDaemon(try config(id: "http", extra: #", "http": { "listen": "127.0.0.1:\#(port)" }"#))
        defer { daemon.stop() }
        var idle: [Int32] = []
        for _ in 0..<21 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            XCTAssertEqual(rc, 0)
            idle.append(fd)
        }
        defer { for fd in idle { close(fd) } }
        // No pause: vigild accepts from the kernel's FIFO queue on one thread, so the 21 idle
        // connections are taken before the /healthz request behind them.
        let start = Date()
        let status = healthz(port: port, timeout: 3)
        let ms = -start.timeIntervalSinceNow * 1000
        XCTAssertEqual(status, 200, "/healthz with 21 idle connections open")
        report("healthz with 21 idle connections: \(status) in \(fmt(ms)) ms")
    }

    /// GET /healthz with curl; the status, or 0 when no answer came within `timeout`.
    func healthz(port: Int, timeout: Double) -> Int {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", String(timeout), "http://127.0.0.1:\(port)/healthz"]
        let pipe = Pipe()
        p.standardOutput = pipe
        guard (try? p.run()) != nil else { return -1 }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Int(String(decoding: data, as: UTF8.self)) ?? -1
    }

    /// Every alert was one notice line: 50,000 alerts, 50,000 lines. Now alert lines are
    /// rate-limited per pipeline like rejections (the alerts table and topic keep every one).
    func testAnAlertStormIsLoggedRateLimited() throws {
        let path = try config(id: "storm",
                              pipelines: #", { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny", "alert": { "labels": ["high"], "min_score": 0.5, "clear_below": 0.4, "cooldown_s": 0 } }"#)
        let daemon = try startDaemon(path)
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let frames = 1000   // alternating high/low: 500 raised, 500 cleared
        var mids: [Int32] = []
        for i in 0..<frames { mids.append(try pub.publish("sensors/s1/vec", f32le(i % 2 == 0 ? [0, 0, 10, 0] : [10, 0, 0, 0]))) }
        XCTAssertTrue(pub.waitForAcks(mids, timeout: 30))
        XCTAssertTrue(waitUntil(timeout: 30) { self.int("SELECT count(*) FROM alerts") >= frames }, "alerts \(int("SELECT count(*) FROM alerts"))")
        XCTAssertEqual(daemon.stop(), 0)
        let alertLines = daemon.output.split(separator: "\n").filter { $0.contains("alert raised") || $0.contains("alert cleared") }.count
        XCTAssertLessThan(alertLines, 100, "\(frames) alerts, \(alertLines) alert log lines")
        report("alert storm: \(frames) alerts stored, \(alertLines) alert log lines")
    }
}
