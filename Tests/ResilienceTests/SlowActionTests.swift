import Foundation
import SQLite
import TestSupport
import XCTest

/// Issue 9, scenario 6: an exec action that outlives its timeout on every alert, while
/// frames keep flowing. Inference and storage go on at the input rate; the runs are
/// recorded as `timeout`.
final class SlowActionTests: ResilienceCase {
    func testSlowExecActionsDoNotDelayInferenceOrStorage() throws {
        let broker = try Broker()
        let path = dir.write("vigil.json", """
            {
              "node": "res-node",
              "mqtt": { "host": "127.0.0.1", "port": \(broker.port), "client_id": "vigild-res-slow" },
              "storage": { "path": "\(dbPath)", "commit_interval_ms": 100 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [
                { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny",
                  "alert": { "labels": ["high"], "min_score": 0.5, "cooldown_s": 1, "actions": ["slow"] } }
              ],
              "actions": { "slow": { "type": "exec", "argv": ["/bin/sleep", "5"], "timeout_s": 2, "max_concurrent": 16 } }
            }
            """)
        let daemon = try startDaemon(path)
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }

        // Two devices at 40 frames/s each; each one's score goes high for 1 s, low for 1 s,
        // so every device raises an alert every 2 s (x = [0,0,10,0] is "high", [10,0,0,0] "low").
        let devices = 2, perDevice = 40.0, seconds = 12.0
        let total = Int(Double(devices) * perDevice * seconds)
        let sentAt = Locked<[String: [Date]]>([:])
        // A reader notes when each row first shows up (rows of one device are in frame order).
        let seenAt = Locked<[String: [Date]]>([:])
        let stopReader = StopFlag()
        let reader = Worker { [dbPath] in
            var last: Int64 = 0
            var db: Database?
            while !stopReader.isSet {
                if db == nil { db = try? Database(path: dbPath, mode: .readOnly) }
                if let rows = try? db?.query("SELECT id, device FROM detections WHERE id > \(last) ORDER BY id") {
                    let now = Date()
                    for r in rows {
                        last = r[0].int ?? last
                        seenAt.with { $0[r[1].string ?? "?", default: []].append(now) }
                    }
                }
                Thread.sleep(forTimeInterval: 0.02)   // the reader's poll interval: when a row shows up, to 20 ms
            }
        }
        let start = Date()
        ResilienceCase.paced(rate: perDevice * Double(devices), count: total) { n in
            let device = "s\(n % devices)", k = n / devices
            let high = (k / Int(perDevice)) % 2 == 0
            let x: [Float] = high ? [0, 0, 10, 0] : [10, 0, 0, 0]
            sentAt.with { $0[device, default: []].append(Date()) }
            _ = try? pub.publish("sensors/\(device)/vec", f32le(x))
        }
        let publishSeconds = -start.timeIntervalSinceNow
        XCTAssertTrue(waitUntil(timeout: 30) { self.rowCount() == total }, "rows \(rowCount()) of \(total)\n\(daemon.output)")
        XCTAssertTrue(waitUntil(timeout: 10) { seenAt.get.values.reduce(0) { $0 + $1.count } == total }, "the reader saw every row")
        stopReader.set()
        reader.join()

        // Per-row delay: publish to visible in the file.
        var delays: [Double] = []
        let sent = sentAt.get, seen = seenAt.get
        for (device, times) in sent {
            let s = seen[device] ?? []
            XCTAssertEqual(s.count, times.count, device)
            for (a, b) in zip(times, s) { delays.append(b.timeIntervalSince(a)) }
        }
        let lastSeen = seen.values.compactMap(\.last).max() ?? Date()
        let rowRate = Double(total) / lastSeen.timeIntervalSince(start)

        // Every raise ran the action, and every run was cut at its timeout.
        XCTAssertTrue(waitUntil(timeout: 20) {
            self.int("SELECT count(*) FROM alerts WHERE state = 'raised' AND actions LIKE '%pending%'") == 0
        }, daemon.output)
        let raised = query("SELECT actions FROM alerts WHERE state = 'raised' ORDER BY id").compactMap { $0.first?.string }
        let statuses = raised.flatMap { json -> [String] in
            let runs = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]) ?? []
            return runs.map { $0["status"] as? String ?? "?" }
        }
        let expectedRaises = devices * Int((seconds / 2).rounded(.up))
        XCTAssertGreaterThan(raised.count, 0)
        XCTAssertEqual(statuses.count, raised.count, "one run per raise")
        XCTAssertEqual(Set(statuses), ["timeout"], "\(statuses)")
        XCTAssertTrue(daemon.isRunning)
        let actionLines = daemon.output.split(separator: "\n").filter { $0.contains("killed after") || $0.contains("timeout") }.count
        report("slow actions: \(raised.count) alerts raised (\(expectedRaises) high phases), each running `sleep 5` with timeout_s 2: "
               + "statuses \(Dictionary(statuses.map { ($0, 1) }, uniquingKeysWith: +)); "
               + "\(total) frames at \(fmt(perDevice * Double(devices), 0))/s over \(fmt(publishSeconds)) s -> \(rowCount()) rows at \(fmt(rowRate, 0)) rows/s; "
               + "publish-to-row delay median \(fmt(median(delays) * 1000, 0)) ms, p95 \(fmt(percentile(delays, 0.95) * 1000, 0)) ms, "
               + "max \(fmt((delays.max() ?? .nan) * 1000, 0)) ms (commit_interval_ms 100); \(actionLines) action log lines")

        // The stop line (also systemd's STATUS=) counts detections as the log and vigilctl do:
        // the alert rows stored beside them are not detections.
        XCTAssertEqual(daemon.stop(), 0)
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(stopped["detections"], rowCount(), daemon.output)
        XCTAssertEqual(stopped["alerts raised"], int("SELECT count(*) FROM alerts WHERE state = 'raised'"), daemon.output)
    }
}
