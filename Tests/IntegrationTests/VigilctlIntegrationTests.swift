import Foundation
import SQLite
import TestSupport
@testable import VigilCore
import XCTest

/// Every vigilctl subcommand as users run it: the real binary against a log written by a
/// real vigild, fed by `vigilctl simulate` through a real mosquitto.
final class VigilctlIntegrationTests: XCTestCase {
    // One daemon and log for the class: starting them is the slow part. Tests that add rows
    // use their own device names, and counts are checked against SQL run at the same moment.
    nonisolated(unsafe) static var dir: TempDir!
    nonisolated(unsafe) static var broker: Broker!
    /// The "cloud" that vigild syncs to: a second broker.
    nonisolated(unsafe) static var cloud: Broker!
    nonisolated(unsafe) static var daemon: ChildProcess!
    nonisolated(unsafe) static var simulateOutput = ""

    var dir: TempDir { Self.dir }
    var db: String { Self.dir.file("vigil.db") }
    var configPath: String { Self.dir.file("vigil.json") }

    override class func setUp() {
        super.setUp()
        dir = TempDir("vigilctl-it")
        do {
            broker = try Broker()
            cloud = try Broker()
            _ = dir.write("vigil.json", """
                {
                  "node": "ctl-test",
                  "mqtt": { "host": "127.0.0.1", "port": \(broker.port), "client_id": "vigild-ctl-\(UUID().uuidString.prefix(6))" },
                  // relative: resolved against this file's folder, as vigilctl must do too
                  "storage": { "path": "vigil.db", "commit_interval_ms": 50 },
                  "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" },
                              "motion": { "path": "\(Paths.fixture("motion_small.onnx"))" },
                              "sound": { "path": "\(Paths.fixture("sound_small.onnx"))" } },
                  "pipelines": [
                    { "name": "env", "topic": "sensors/{device}/env", "format": "json",
                      "fields": ["temperature", "humidity", "temperature", "humidity"], "model": "tiny" },
                    { "name": "vec", "topic": "sensors/{device}/vector", "format": "f32le", "model": "tiny",
                      "alert": { "labels": ["high"], "min_score": 0.4, "clear_below": 0.35, "cooldown_s": 0,
                                 "severity": "critical", "actions": ["mark"] } },
                    { "name": "camera", "topic": "sensors/{device}/camera", "format": "pgm", "model": "motion" },
                    { "name": "audio", "topic": "sensors/{device}/audio", "format": "wav", "model": "sound", "hop": 1 },
                  ],
                  "actions": { "mark": { "type": "file", "path": "\(dir.file("mark"))", "value": "1" } },
                  "sync": { "mqtt": { "host": "127.0.0.1", "port": \(cloud.port), "topic": "vigil/{node}/records" },
                            "interval_s": 1, "backoff_min_s": 1, "backoff_max_s": 2 },
                }
                """)
            daemon = try ChildProcess(Paths.executable("vigild"), ["--config", dir.file("vigil.json")], outputPath: dir.file("vigild.log"))
            guard daemon.waitSubscribed() else {
                XCTFail("vigild did not connect: \(daemon.output)")
                return
            }
            let sim = try run(["simulate", "--broker", "127.0.0.1:\(broker.port)", "--devices", "3", "--kinds", "env,vector",
                               "--rate", "50", "--count", "20", "--seed", "3", "--quiet"], in: dir)
            simulateOutput = sim.stdout + sim.stderr
            guard sim.status == 0 else { XCTFail("simulate failed: \(simulateOutput)"); return }
            let path = dir.file("vigil.db")
            if !waitUntil(timeout: 20, { count(path, "SELECT count(*) FROM detections") == 120 }) {
                XCTFail("rows: \(count(path, "SELECT count(*) FROM detections"))\n\(daemon.output)")
            }
            // Camera frames (PGM) and audio chunks (WAV at the small sound model's 8 kHz) on other devices.
            let av = try run(["simulate", "--broker", "127.0.0.1:\(broker.port)", "--devices", "2", "--kinds", "camera,audio",
                              "--device-prefix", "cam", "--rate", "20", "--count", "20", "--sample-rate", "8000", "--quiet"], in: dir)
            simulateOutput += av.stdout + av.stderr
            // Camera: the first frame of a device only primes it (19 each); audio: 0.5 s chunks of 4000 samples
            // in windows of 800 with hop 800 (5 per chunk, 100 each).
            if !waitUntil(timeout: 20, { count(path, "SELECT count(*) FROM detections WHERE device GLOB 'cam-*'") == 2 * (19 + 100) }) {
                XCTFail("camera/audio rows: \(count(path, "SELECT count(*) FROM detections WHERE device GLOB 'cam-*'"))\n\(daemon.output)")
            }
            // The seeded vectors make some devices score "high" above 0.4: the daemon writes alerts.
            if !waitUntil(timeout: 10, { count(path, "SELECT count(*) FROM alerts WHERE actions LIKE '%ok%'") > 0 }) {
                XCTFail("no alerts with action outcomes: \(count(path, "SELECT count(*) FROM alerts"))\n\(daemon.output)")
            }
        } catch {
            XCTFail("setup: \(error)")
        }
    }

    override class func tearDown() {
        daemon?.stop()
        // Releasing a Broker stops it and removes its folder: statics are never released by
        // themselves, and stopping alone left two folders in /tmp on every run.
        broker = nil
        cloud = nil
        dir?.remove()
        super.tearDown()
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    }

    static func run(_ args: [String], in dir: TempDir, executable: String = Paths.executable("vigilctl")) throws -> Result {
        let id = UUID().uuidString.prefix(8)
        let outPath = dir.file("out-\(id)"), errPath = dir.file("err-\(id)")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        p.waitUntilExit()
        return Result(status: p.terminationStatus,
                      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    func ctl(_ args: String...) throws -> Result { try Self.run(args, in: dir) }

    static func count(_ path: String, _ sql: String, _ values: [SQLValue] = []) -> Int {
        guard let db = try? Database(path: path, mode: .readOnly) else { return -1 }
        return Int((try? db.scalar(sql, values).int) ?? -1)
    }

    func sql(_ q: String, _ values: [SQLValue] = []) throws -> [[SQLValue]] {
        try Database(path: db, mode: .readOnly).query(q, values)
    }

    func json(_ line: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
    }

    // MARK: simulate

    func testSimulateSentEveryMessageAndTheDaemonStoredThem() throws {
        XCTAssertTrue(Self.simulateOutput.contains("sent 120 messages (env 60, vector 60) to 127.0.0.1:\(Self.broker.port)"), Self.simulateOutput)
        XCTAssertTrue(Self.simulateOutput.contains("acknowledged 120, failed 0, unacknowledged 0"), Self.simulateOutput)
        XCTAssertTrue(Self.simulateOutput.contains("sent=120 acked=120 failed=0 "), "the key=value line scripts read:\n\(Self.simulateOutput)")
        let devices = try sql("SELECT device, pipeline, count(*) FROM detections WHERE device LIKE 'sim-%' GROUP BY 1, 2 ORDER BY 1, 2")
        XCTAssertEqual(devices.map { "\($0[0].string!)/\($0[1].string!)=\($0[2].int!)" },
                       ["sim-001/env=20", "sim-001/vec=20", "sim-002/env=20", "sim-002/vec=20", "sim-003/env=20", "sim-003/vec=20"])
    }

    func testCameraFramesAndAudioChunksFromSimulateAreDecodedByTheDaemon() throws {
        XCTAssertTrue(Self.simulateOutput.contains("sent 80 messages (camera 40, audio 40)"), Self.simulateOutput)
        XCTAssertFalse(Self.daemon.output.contains("rejected"), Self.daemon.output)
        let r = try ctl("stats", "--db", db, "--device", "cam-*", "--format", "jsonl")
        XCTAssertEqual(r.status, 0, r.stderr)
        let groups = try r.lines.map(json)
        XCTAssertEqual(groups.map { "\($0["pipeline"]!)/\($0["device"]!)=\($0["detections"]!)" },
                       ["audio/cam-001=100", "audio/cam-002=100", "camera/cam-001=19", "camera/cam-002=19"])
        for g in groups {
            let labels = Set((g["labels"] as! [String: Int]).keys)
            XCTAssertTrue(labels.isSubset(of: g["pipeline"] as! String == "camera" ? ["still", "motion"] : ["quiet", "loud"]), "\(labels)")
        }
    }

    // MARK: detections

    func testDetectionsInEveryFormatMatchTheDatabase() throws {
        let all = try ctl("detections", "--db", db, "--device", "sim-*", "--limit", "0", "--format", "jsonl")
        XCTAssertEqual(all.status, 0, all.stderr)
        let rows = try sql("SELECT id, uuid, label, score, pipeline, device FROM detections WHERE device GLOB 'sim-*' ORDER BY id")
        XCTAssertEqual(all.lines.count, 120)
        for (line, row) in zip(all.lines, rows) {
            let o = try json(line)
            XCTAssertEqual(o["id"] as? Int, Int(row[0].int!))
            XCTAssertEqual(o["uuid"] as? String, row[1].string)
            XCTAssertEqual(o["label"] as? String, row[2].string)
            // Foundation's Linux JSON reader rounds the last digit or two; vigilctl prints the shortest exact form.
            XCTAssertEqual(o["score"] as! Double, row[3].double!, accuracy: 1e-12)
            XCTAssertNotNil((o["scores"] as? [String: Double])?["mid"], "scores are embedded JSON")
            XCTAssertTrue((o["time"] as? String)?.hasSuffix("Z") ?? false)
        }

        let csv = try ctl("detections", "--db", db, "--device", "sim-*", "-n", "0", "--format", "csv")
        XCTAssertEqual(csv.lines.first, "id,ts,time,pipeline,device,model,label,score,latency_ms,scores,uuid,synced_at,synced_at_time")
        XCTAssertEqual(csv.lines.count, 121)

        // The storage.path of --config (relative to the config's folder) names the same file.
        let table = try ctl("detections", "--config", configPath, "--format", "table", "--device", "sim-*")
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertEqual(table.lines.count, 101, "header and the default 100 rows")
        XCTAssertEqual(table.lines[0].split(separator: " ", omittingEmptySubsequences: true),
                       ["TIME", "PIPELINE", "DEVICE", "LABEL", "SCORE", "LATENCY_MS"])
        XCTAssertTrue(table.stderr.contains("showing the newest 100 rows"), table.stderr)
        let lastID = rows.last![0].int!
        let lastUUIDRow = try sql("SELECT label, device FROM detections WHERE id = ?", [.integer(lastID)])[0]
        let lastLine = table.lines.last!.split(separator: " ", omittingEmptySubsequences: true)
        // TIME is two words (date, local time).
        XCTAssertEqual(lastLine[3], Substring(lastUUIDRow[1].string!), "newest last")
        XCTAssertEqual(lastLine[4], Substring(lastUUIDRow[0].string!))
    }

    func testDetectionFilters() throws {
        func n(_ args: String...) throws -> Int {
            // Rows of other tests' devices (tail-*) are left out unless a test names devices itself.
            let devices = args.contains { $0.hasPrefix("--device") } ? [] : ["--device", "sim-*"]
            let r = try Self.run(["detections", "--db", db, "--format", "jsonl", "--limit", "0"] + devices + args, in: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            return r.lines.count
        }
        XCTAssertEqual(try n("--pipeline", "env", "--device", "sim-002"), 20)
        XCTAssertEqual(try n("--pipeline=env", "--device=sim-002", "--since=1h"), 20, "--option=value works too")
        XCTAssertEqual(try n("--pipeline", "env,vec", "--device", "sim-001", "--device", "sim-003"), 80)
        let label = try sql("SELECT label, count(*) FROM detections WHERE device GLOB 'sim-*' GROUP BY label ORDER BY 2 DESC")[0]
        XCTAssertEqual(try n("--label", label[0].string!), Int(label[1].int!))
        XCTAssertEqual(try n("--min-score", "0.9"), Self.count(db, "SELECT count(*) FROM detections WHERE device GLOB 'sim-*' AND score >= 0.9"))
        XCTAssertEqual(try n("--since", "1h"), 120)
        XCTAssertEqual(try n("--since", "2000-01-01", "--until", "2000-01-02T00:00:00Z"), 0)
        let mid = try sql("SELECT ts FROM detections WHERE device GLOB 'sim-*' ORDER BY ts LIMIT 1 OFFSET 50")[0][0].double!
        XCTAssertEqual(try n("--since", "@\(mid)"), Self.count(db, "SELECT count(*) FROM detections WHERE device GLOB 'sim-*' AND ts >= ?", [.real(mid)]))
        XCTAssertEqual(try n("--until", "@\(mid)"), 50)
    }

    // MARK: alerts, stats, sync, export

    func testAlertsListWhatTheDaemonWrote() throws {
        let r = try ctl("alerts", "--db", db, "--format", "jsonl", "--limit", "0", "--device", "sim-*")
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try sql("SELECT uuid, state, label, device, severity FROM alerts WHERE device GLOB 'sim-*' ORDER BY id")
        XCTAssertGreaterThan(rows.count, 0)
        XCTAssertEqual(r.lines.count, rows.count)
        for (line, row) in zip(r.lines, rows) {
            let o = try json(line)
            XCTAssertEqual(o["uuid"] as? String, row[0].string)
            XCTAssertEqual(o["state"] as? String, row[1].string)
            XCTAssertEqual(o["label"] as? String, "high")
            XCTAssertEqual(o["severity"] as? String, "critical")
            XCTAssertNotNil(o["actions"] as? [Any], "actions are embedded JSON: \(line)")
        }
        let table = try ctl("alerts", "--db", db, "--format", "table", "--device", "sim-*")
        XCTAssertEqual(table.lines.count, rows.count + 1)
        XCTAssertEqual(table.lines[0].split(separator: " ", omittingEmptySubsequences: true),
                       ["TIME", "PIPELINE", "DEVICE", "STATE", "LABEL", "SCORE", "ACTIONS", "EVIDENCE"], "severity is in --wide")
        XCTAssertTrue(table.lines[1].contains("raised"), table.stdout)
        let dev = rows[0][3].string!
        let one = try ctl("alerts", "--db", db, "--format", "jsonl", "--limit", "0", "--device", dev, "--pipeline", "vec")
        XCTAssertEqual(one.lines.count, rows.filter { $0[3].string == dev }.count)
        let raised = try ctl("alerts", "--db", db, "--format", "jsonl", "--limit", "0", "--state", "raised", "--device", "sim-*")
        XCTAssertEqual(raised.lines.count, Self.count(db, "SELECT count(*) FROM alerts WHERE state = 'raised' AND device GLOB 'sim-*'"))
        XCTAssertGreaterThan(raised.lines.count, 0)
        let bad = try ctl("alerts", "--db", db, "--state", "open")
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--state: expected raised or cleared, got \"open\""), bad.stderr)
    }

    func testStatsPerPipelineAndDevice() throws {
        let r = try ctl("stats", "--db", db, "--format", "jsonl", "--device", "sim-*")
        XCTAssertEqual(r.status, 0, r.stderr)
        let groups = try r.lines.map(json)
        XCTAssertEqual(groups.map { "\($0["pipeline"]!)/\($0["device"]!)=\($0["detections"]!)" },
                       ["env/sim-001=20", "env/sim-002=20", "env/sim-003=20", "vec/sim-001=20", "vec/sim-002=20", "vec/sim-003=20"])
        // Nearest rank over the group's latencies, recomputed here from the rows.
        let lat = try sql("SELECT latency_ms FROM detections WHERE pipeline = 'vec' AND device = 'sim-002' ORDER BY latency_ms").map { $0[0].double! }
        let g = groups[4]
        XCTAssertEqual(g["p50_ms"] as! Double, lat[9], accuracy: 1e-9, "rank ceil(0.50 × 20) = 10")
        XCTAssertEqual(g["p95_ms"] as! Double, lat[18], accuracy: 1e-9, "rank 19")
        XCTAssertEqual(g["p99_ms"] as! Double, lat[19], accuracy: 1e-9, "rank 20")
        let labels = g["labels"] as! [String: Int]
        XCTAssertEqual(labels.values.reduce(0, +), 20)
        for (label, n) in labels {
            XCTAssertEqual(n, Self.count(db, "SELECT count(*) FROM detections WHERE pipeline = 'vec' AND device = 'sim-002' AND label = ?", [.text(label)]))
        }
        XCTAssertEqual(g["alerts"] as? Int, Self.count(db, "SELECT count(*) FROM alerts WHERE pipeline = 'vec' AND device = 'sim-002' AND state = 'raised'"))
        XCTAssertEqual(groups.map { $0["alerts"] as! Int }.reduce(0, +),
                       Self.count(db, "SELECT count(*) FROM alerts WHERE state = 'raised' AND device GLOB 'sim-*'"))
        let table = try ctl("stats", "--db", db, "--format", "table", "--device", "sim-*", "--since", "1d")
        XCTAssertTrue(table.lines.first?.hasPrefix("from ") ?? false, table.stdout)
        XCTAssertTrue(table.lines.contains { $0.hasPrefix("(all)") && $0.contains(" 120 ") }, table.stdout)
        let none = try ctl("stats", "--db", db, "--format", "jsonl", "--until", "2000-01-01")
        XCTAssertEqual(none.lines.count, 0)
    }

    func testSyncReportsWhatTheDaemonsSyncDid() throws {
        // Uplink up: everything gets acknowledged, and the store records when.
        XCTAssertTrue(waitUntil(timeout: 20) {
            Self.count(self.db, "SELECT count(*) FROM detections WHERE synced_at IS NULL")
                + Self.count(self.db, "SELECT count(*) FROM alerts WHERE synced_at IS NULL") == 0
        }, Self.daemon.output)
        var r = try ctl("sync", "--db", db, "--format", "jsonl")
        XCTAssertEqual(r.status, 0, r.stderr)
        var o = try json(r.lines[0])
        XCTAssertEqual(o["backlog"] as? Int, 0)
        XCTAssertTrue(o["oldest_unsynced_ts"] is NSNull)
        let lastSync = try XCTUnwrap(o["last_sync_ts"] as? Double, r.stdout)
        XCTAssertLessThan(abs(Date().timeIntervalSince1970 - lastSync), 120)
        XCTAssertEqual(o["detections"] as? Int, Self.count(db, "SELECT count(*) FROM detections"))
        var text = try ctl("sync", "--db", db, "--format", "table")
        XCTAssertTrue(text.stdout.contains("backlog:              0 rows (0 detections, 0 alerts)"), text.stdout)
        XCTAssertTrue(text.stdout.contains("oldest unsynced:      none"), text.stdout)
        XCTAssertFalse(text.stdout.contains("last sync:            never"), text.stdout)
        if !FileManager.default.fileExists(atPath: "/etc/vigil/vigil.json") {
            XCTAssertFalse(text.stdout.contains("uplink:"), "no config read, no uplink line:\n\(text.stdout)")
        }
        let viaConfig = try ctl("sync", "--config", configPath, "--format", "table")
        XCTAssertTrue(viaConfig.stdout.hasPrefix("uplink:"), viaConfig.stdout)
        XCTAssertTrue(viaConfig.stdout.contains("mqtt 127.0.0.1:\(Self.cloud.port)\n"), viaConfig.stdout)

        // Uplink down: new rows wait, and the backlog names them.
        Self.cloud.stop()
        defer { try? Self.cloud.start() }
        let before = Date().timeIntervalSince1970
        let sim = try ctl("simulate", "--config", configPath, "--kinds", "vector", "--device-prefix", "offline",
                          "--count", "6", "--rate", "50", "--quiet")
        XCTAssertEqual(sim.status, 0, sim.stdout + sim.stderr)
        XCTAssertTrue(waitUntil(timeout: 15) { Self.count(self.db, "SELECT count(*) FROM detections WHERE device = 'offline-001'") == 6 })
        XCTAssertTrue(waitUntil(timeout: 15) {
            (try? Database(path: self.db, mode: .readOnly).scalar("SELECT value FROM meta WHERE key = 'last_sync_error'").string ?? "")?.isEmpty == false
        }, "the failed uplink is recorded: \(Self.daemon.output)")
        r = try ctl("sync", "--db", db, "--format", "jsonl")
        o = try json(r.lines[0])
        let waiting = Self.count(db, "SELECT count(*) FROM detections WHERE synced_at IS NULL")
            + Self.count(db, "SELECT count(*) FROM alerts WHERE synced_at IS NULL")
        XCTAssertEqual(o["backlog"] as? Int, waiting)
        XCTAssertGreaterThanOrEqual(waiting, 6)
        let oldest = try XCTUnwrap(o["oldest_unsynced_ts"] as? Double)
        XCTAssertGreaterThanOrEqual(oldest, before - 1)
        XCTAssertNotNil(o["last_sync_error"] as? String)
        text = try ctl("sync", "--db", db, "--format", "table")
        XCTAssertTrue(text.stdout.contains("backlog:              \(waiting) rows"), text.stdout)
        XCTAssertFalse(text.stdout.contains("last sync error:      none"), text.stdout)
    }

    func testExportStreamsEveryRow() throws {
        let r = try ctl("export", "detections", "--db", db, "--format", "csv", "--device", "sim-*")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.lines.count, 121)
        XCTAssertTrue(r.stderr.contains("exported 120 detections"), r.stderr)
        let alerts = try ctl("export", "alerts", "--db", db, "--state", "raised", "--device", "sim-*")
        XCTAssertEqual(alerts.lines.count, Self.count(db, "SELECT count(*) FROM alerts WHERE state = 'raised' AND device GLOB 'sim-*'"))
        let state = try ctl("export", "alerts", "--db", db, "--state", "up")
        XCTAssertEqual(state.status, 2)
        XCTAssertTrue(state.stderr.contains("--state: expected raised or cleared, got \"up\""), state.stderr)
        let bad = try ctl("export", "everything", "--db", db)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("expected detections or alerts, got \"everything\""), bad.stderr)
    }

    // MARK: tail

    func testTailFollowsNewRowsAndStopsCleanlyOnSIGINT() throws {
        let tail = try ChildProcess(Paths.executable("vigilctl"), ["tail", "-f", "--db", db, "--format", "jsonl", "-n", "3", "--interval", "100"],
                                    outputPath: dir.file("tail.out"))
        defer { tail.stop(SIGKILL) }
        XCTAssertTrue(waitUntil(timeout: 10) { tail.output.split(separator: "\n").count >= 3 }, tail.output)
        Thread.sleep(forTimeInterval: 0.3)   // the point: 3 polls pass and print nothing (a negative check)
        XCTAssertEqual(tail.output.split(separator: "\n").count, 3, "the newest 3, then nothing until rows arrive")
        // The broker comes from the daemon's config (mqtt.host, mqtt.port).
        let sim = try ctl("simulate", "--config", configPath, "--kinds", "vector", "--device-prefix", "tail",
                          "--count", "5", "--rate", "20", "--quiet")
        XCTAssertEqual(sim.status, 0, sim.stdout + sim.stderr)
        func newRows() -> [[String: Any]] {
            tail.output.split(separator: "\n").dropFirst(3).compactMap { try? json(String($0)) }
        }
        // The tail device's vectors may raise alerts too: they are followed as well.
        let alerts = { Self.count(self.db, "SELECT count(*) FROM alerts WHERE device = 'tail-001'") }
        XCTAssertTrue(waitUntil(timeout: 15) { newRows().filter { $0["kind"] as? String == "detection" }.count == 5 }, tail.output)
        XCTAssertTrue(waitUntil(timeout: 5) { newRows().filter { $0["kind"] as? String == "alert" }.count == alerts() }, tail.output)
        let rows = newRows()
        XCTAssertEqual(rows.count, 5 + alerts(), tail.output)
        XCTAssertTrue(rows.allSatisfy { $0["device"] as? String == "tail-001" }, tail.output)
        let ids = rows.filter { $0["kind"] as? String == "detection" }.map { $0["id"] as! Int }
        XCTAssertEqual(ids, ids.sorted(), "in the order written")
        XCTAssertEqual(tail.stop(SIGINT), 0, "Ctrl-C ends tail with status 0")
    }

    func testSimulateDumpWritesTheSamePayloadsForTheSameSeed() throws {
        let a = TempDir("dump-a"), b = TempDir("dump-b")
        defer { a.remove(); b.remove() }
        for d in [a, b] {
            let r = try ctl("simulate", "--dump", d.path + "/out", "--kinds", "camera,audio,env,vector", "--count", "2", "--seed", "11",
                            "--size", "320x240")
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("wrote 8 payloads"), r.stdout)
            XCTAssertTrue(r.stdout.contains("sent=8 "), r.stdout)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: a.path + "/out").sorted()
        XCTAssertEqual(names.count, 8)
        XCTAssertEqual(Set(names.map { String($0.split(separator: ".").last!) }), ["pgm", "wav", "json", "f32"])
        XCTAssertTrue(names[0].hasPrefix("0000000-sim-001-"), "\(names)")
        for n in names {
            let x = FileManager.default.contents(atPath: a.path + "/out/" + n)!
            let y = FileManager.default.contents(atPath: b.path + "/out/" + n)!
            if n.hasSuffix(".pgm") { XCTAssertEqual(x.count, 15 + 320 * 240) }
            if n.hasSuffix(".wav") { XCTAssertEqual(x.count, 44 + 16000) }
            if n.hasSuffix(".f32") { XCTAssertEqual(x.count, 16) }
            if !n.hasSuffix(".json") { XCTAssertEqual(x, y, "\(n): same seed, same payload") }   // env carries the send time
        }
        let noCount = try ctl("simulate", "--dump", a.path + "/x")
        XCTAssertEqual(noCount.status, 2)
        XCTAssertTrue(noCount.stderr.contains("--dump needs --count or --duration"), noCount.stderr)
    }

    func testSimulateStopsOnSIGINTWithASummary() throws {
        let sim = try ChildProcess(Paths.executable("vigilctl"),
                                   ["simulate", "--broker", "127.0.0.1:\(Self.broker.port)", "--kinds", "camera,audio",
                                    "--topic-prefix", "elsewhere", "--rate", "10"],
                                   outputPath: dir.file("sim.out"))
        defer { sim.stop(SIGKILL) }
        XCTAssertTrue(waitUntil(timeout: 10) { sim.output.contains("simulate:") }, "progress each second:\n\(sim.output)")
        XCTAssertEqual(sim.stop(SIGINT), 0, sim.output)
        XCTAssertTrue(sim.output.contains("sent "), sim.output)
        XCTAssertTrue(sim.output.contains("failed 0, unacknowledged 0"), sim.output)
    }

    // MARK: read-only, as another user

    /// A user who may read the log but not write its folder (the usual operator, not in the
    /// vigil group's write set): while the daemon runs (its -shm exists, read-only to us),
    /// and after it stopped cleanly (no -wal: the file is opened immutable).
    func testAUserWhoCannotWriteTheFolderCanStillReadTheLog() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to run vigilctl as another user")
        }
        func asNobody(_ args: String...) throws -> Result {
            try Self.run(["--reuid=65534", "--regid=65534", "--clear-groups", Paths.executable("vigilctl")] + args,
                         in: dir, executable: "/usr/bin/setpriv")
        }
        let live = try asNobody("detections", "--db", db, "--device", "sim-*", "--limit", "0", "--format", "jsonl")
        XCTAssertEqual(live.status, 0, live.stderr)
        XCTAssertEqual(live.lines.count, 120)

        let stoppedDir = TempDir("vigilctl-ro")
        defer { stoppedDir.remove() }
        var settings = StorageSettings()
        settings.path = stoppedDir.file("vigil.db")
        do {
            let store = try Store(settings: settings)
            for i in 0..<7 {
                store.append(Detection(ts: Double(1_795_960_800 + i), pipeline: "p", device: "d", model: "m", label: "x",
                                       score: 0.5, scores: [("x", 0.5)], latencyMs: 1))
            }
            store.close()
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: settings.path + "-wal"))
        let stopped = try asNobody("stats", "--db", settings.path, "--since", "2026-01-01", "--format", "jsonl")
        XCTAssertEqual(stopped.status, 0, stopped.stderr)
        XCTAssertTrue(stopped.stdout.contains("\"detections\":7"), stopped.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: settings.path + "-shm"), "nothing was created")
    }

    func testTailUnderContinuousWritesPrintsEveryRowOnce() throws {
        let tail = try ChildProcess(Paths.executable("vigilctl"),
                                    ["tail", "--db", db, "--format", "jsonl", "-n", "0", "--interval", "10", "--device", "flood-*",
                                     "--only", "detections"],
                                    outputPath: dir.file("flood.out"))
        defer { tail.stop(SIGKILL) }
        Thread.sleep(forTimeInterval: 0.3)   // tail takes its starting row (-n 0) first; it prints nothing to wait on
        let sim = try ctl("simulate", "--config", configPath, "--kinds", "vector", "--device-prefix", "flood", "--devices", "2",
                          "--count", "100", "--rate", "100", "--quiet")
        XCTAssertEqual(sim.status, 0, sim.stdout + sim.stderr)
        XCTAssertTrue(waitUntil(timeout: 20) { Self.count(self.db, "SELECT count(*) FROM detections WHERE device GLOB 'flood-*'") == 200 })
        XCTAssertTrue(waitUntil(timeout: 10) { tail.output.split(separator: "\n").count >= 200 }, "\(tail.output.split(separator: "\n").count) lines")
        Thread.sleep(forTimeInterval: 0.2)   // a row printed twice would show here (a negative check)
        XCTAssertEqual(tail.stop(SIGINT), 0)
        let ids = try tail.output.split(separator: "\n").map { try json(String($0))["id"] as! Int }
        XCTAssertEqual(ids.count, 200, "every row once")
        XCTAssertEqual(Set(ids).count, 200, "no row twice")
        let want = try sql("SELECT id FROM detections WHERE device GLOB 'flood-*' ORDER BY id").map { Int($0[0].int!) }
        XCTAssertEqual(Set(ids), Set(want))
    }

    // MARK: check-config, models

    func testCheckConfigAndModels() throws {
        let ok = try ctl("check-config", configPath)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("\(configPath): OK (4 pipelines, 3 models)"), ok.stdout)
        let text = try String(contentsOfFile: configPath, encoding: .utf8).replacingOccurrences(of: "\"commit_interval_ms\"", with: "\"comit_interval_ms\"")
        let bad = dir.write("bad.json", text)
        let r = try ctl("check-config", "--config", bad)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("bad.json:5: storage.comit_interval_ms: unknown key"), r.stderr)

        let m = try ctl("models", Paths.fixture("tiny_classifier.onnx"), Paths.fixture("free_dims.onnx"))
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertTrue(m.stdout.contains("input:    x float[1, 4]"), m.stdout)
        XCTAssertTrue(m.stdout.contains("output:   scores float[1, 3]"), m.stdout)
        XCTAssertTrue(m.stdout.contains("labels:   low, mid, high"), m.stdout)
        XCTAssertTrue(m.stdout.contains("input:    window float[1, 8, fields]"), "free dimensions by name:\n\(m.stdout)")
        XCTAssertTrue(m.stdout.contains("vigil.threshold  0.5"), m.stdout)
        let j = try ctl("models", "--format", "jsonl", Paths.fixture("free_dims.onnx"))
        let o = try json(j.lines[0])
        XCTAssertEqual(((o["inputs"] as! [[String: Any]])[0]["shape"] as! [Any]).map { "\($0)" }, ["1", "8", "fields"])
        let two = try ctl("models", Paths.fixture("two_inputs.onnx"))
        XCTAssertEqual(two.status, 1)
        XCTAssertTrue(two.stdout.contains("contract: NOT MET: needs exactly one float32 input"), two.stdout)
    }

    // MARK: help, errors, exit codes

    func testHelpForEverySubcommandAndErrorsThatNameTheFault() throws {
        for name in ["detections", "alerts", "tail", "stats", "sync", "export", "simulate", "check-config", "models"] {
            let r = try ctl(name, "--help")
            XCTAssertEqual(r.status, 0, name)
            XCTAssertTrue(r.stdout.hasPrefix("usage: vigilctl \(name)"), r.stdout)
        }
        let top = try ctl("--help")
        XCTAssertTrue(top.stdout.contains("simulate"), top.stdout)

        let typo = try ctl("detections", "--db", db, "--sincee", "1h")
        XCTAssertEqual(typo.status, 2)
        XCTAssertTrue(typo.stderr.contains("unknown option --sincee (did you mean --since?)"), typo.stderr)
        let when = try ctl("detections", "--db", db, "--since", "yester")
        XCTAssertEqual(when.status, 2)
        XCTAssertTrue(when.stderr.contains("--since: expected 15m, -1h"), when.stderr)
        XCTAssertTrue(when.stderr.contains("got \"yester\""), when.stderr)
        let limit = try ctl("detections", "--db", db, "--limit", "-1")
        XCTAssertEqual(limit.status, 2)
        XCTAssertTrue(limit.stderr.contains("--limit: expected a whole number"), limit.stderr)
        let score = try ctl("detections", "--db", db, "--min-score", "2")
        XCTAssertTrue(score.stderr.contains("--min-score: expected a number from 0 to 1, got \"2\""), score.stderr)
        let format = try ctl("sync", "--db", db, "--format", "xml")
        XCTAssertTrue(format.stderr.contains("--format: expected one of table, jsonl, csv, got \"xml\""), format.stderr)
        let twice = try ctl("detections", "--db", db, "--limit", "1", "--limit", "2")
        XCTAssertTrue(twice.stderr.contains("--limit given twice"), twice.stderr)
        let missing = try ctl("detections", "--db", db, "--since")
        XCTAssertTrue(missing.stderr.contains("--since needs a value"), missing.stderr)
        let unknown = try ctl("detectoins")
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("unknown command detectoins (did you mean detections?)"), unknown.stderr)

        let noDB = try ctl("detections", "--db", dir.file("nope.db"))
        XCTAssertEqual(noDB.status, 3)
        XCTAssertTrue(noDB.stderr.contains("no database at \(dir.file("nope.db"))"), noDB.stderr)
        let noConfig = try ctl("stats", "--config", dir.file("nope.json"))
        XCTAssertEqual(noConfig.status, 1)
        XCTAssertTrue(noConfig.stderr.contains("cannot read config \(dir.file("nope.json")): no such file"), noConfig.stderr)

        let port = freePort()
        let noBroker = try ctl("simulate", "--broker", "127.0.0.1:\(port)", "--count", "1", "--quiet")
        XCTAssertEqual(noBroker.status, 4)
        XCTAssertTrue(noBroker.stderr.contains("cannot connect to broker 127.0.0.1:\(port)"), noBroker.stderr)
        let badRate = try ctl("simulate", "--rate", "camera=fast")
        XCTAssertEqual(badRate.status, 2)
        XCTAssertTrue(badRate.stderr.contains("--rate: expected messages per second above 0, got \"fast\""), badRate.stderr)
        let badKind = try ctl("simulate", "--kinds", "camera,radar")
        XCTAssertTrue(badKind.stderr.contains("--kinds: unknown kind \"radar\""), badKind.stderr)
    }
}
