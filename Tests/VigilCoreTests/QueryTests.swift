import Foundation
import SQLite
import TestSupport
@testable import VigilCore
@testable import VigilTools
import XCTest

final class QueryTests: XCTestCase {
    var dir: TempDir!
    override func setUp() { dir = TempDir("vigil-query") }
    override func tearDown() { dir.remove() }

    // MARK: times

    func testDurations() {
        XCTAssertEqual(TimeSpec.duration("15m"), 900)
        XCTAssertEqual(TimeSpec.duration("2h"), 7200)
        XCTAssertEqual(TimeSpec.duration("7d"), 604_800)
        XCTAssertEqual(TimeSpec.duration("1h30m"), 5400)
        XCTAssertEqual(TimeSpec.duration("1.5h"), 5400)
        XCTAssertEqual(TimeSpec.duration("90s"), 90)
        XCTAssertEqual(TimeSpec.duration("1w"), 604_800)
        for bad in ["", "15", "m", "15x", "-5m", "1h30", "2 h", "1..5h"] { XCTAssertNil(TimeSpec.duration(bad), bad) }
    }

    func testInstants() {
        let now = 1_800_000_000.0
        XCTAssertEqual(TimeSpec.instant("15m", now: now), now - 900)
        XCTAssertEqual(TimeSpec.instant("now", now: now), now)
        XCTAssertEqual(TimeSpec.instant("@1700000000.5", now: now), 1_700_000_000.5)
        XCTAssertEqual(TimeSpec.iso8601("2026-11-29T14:00:00Z"), 1_795_960_800)
        XCTAssertEqual(TimeSpec.iso8601("2026-11-29 14:00:00"), 1_795_960_800, "no offset means UTC")
        XCTAssertEqual(TimeSpec.iso8601("2026-11-29T14:00"), 1_795_960_800)
        XCTAssertEqual(TimeSpec.iso8601("2026-11-29"), 1_795_910_400)
        XCTAssertEqual(TimeSpec.iso8601("2026-11-29T16:00:00+02:00"), 1_795_960_800)
        XCTAssertEqual(TimeSpec.iso8601("2026-11-29T09:30:00-0430"), 1_795_960_800)
        XCTAssertEqual(TimeSpec.iso8601("2026-11-29T14:00:00.250Z")!, 1_795_960_800.25, accuracy: 1e-6)
        for bad in ["2026-02-30", "2026-13-01", "2026-11-29T25:00", "29/11/2026", "2026-11-29T14:00:00Zjunk", "yester", "+"] {
            XCTAssertNil(TimeSpec.instant(bad, now: now), bad)
        }
        XCTAssertEqual(TimeSpec.format(1_795_960_800.25), "2026-11-29T14:00:00.250Z")
        XCTAssertEqual(TimeSpec.format(1_795_960_800.9996), "2026-11-29T14:00:01.000Z")
        XCTAssertEqual(TimeSpec.age(3 * 3600 + 5 * 60), "3h05m")
    }

    func testNearestRankPercentiles() {
        let v = (1...100).map(Double.init)
        XCTAssertEqual(Percentile.nearestRank(v, 50), 50)
        XCTAssertEqual(Percentile.nearestRank(v, 95), 95)
        XCTAssertEqual(Percentile.nearestRank(v, 99), 99)
        XCTAssertEqual(Percentile.nearestRank(v, 100), 100)
        // 5 values: p50 is rank ceil(2.5) = 3, p95 rank ceil(4.75) = 5.
        XCTAssertEqual(Percentile.nearestRank([1, 2, 3, 4, 50], 50), 3)
        XCTAssertEqual(Percentile.nearestRank([1, 2, 3, 4, 50], 95), 50)
        XCTAssertEqual(Percentile.nearestRank([7], 0), 7)
        XCTAssertNil(Percentile.nearestRank([], 50))
    }

    // MARK: formatting

    func testTableJSONLinesAndCSV() throws {
        let table = ResultTable(columns: [Column("id", .integer, inTable: false), Column("ts", .time), Column("device", .text),
                                          Column("score", .real(decimals: 3)), Column("scores", .json, inTable: false)],
                                rows: [[.integer(1), .real(1_795_960_800.5), .text("cam,\"front\""), .real(0.91234), .text(#"{"a":0.5}"#)],
                                       [.integer(2), .real(1_795_960_801), .text("b"), .null, .text("not json")]])
        let t = table.render(.table)
        XCTAssertEqual(t, """
            TIME                  DEVICE       SCORE
            2026-11-29 14:00:00Z  cam,"front"  0.912
            2026-11-29 14:00:01Z  b                -

            """)
        let lines = table.render(.jsonl).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let first = try JSONParser.parse(String(lines[0]))
        XCTAssertEqual(first["time"], .string("2026-11-29T14:00:00.500Z"))
        XCTAssertEqual(first["scores"]?["a"], .number(0.5), "JSON columns are embedded as JSON")
        XCTAssertEqual(first["device"], .string("cam,\"front\""))
        XCTAssertEqual(try JSONParser.parse(String(lines[1]))["scores"], .string("not json"))
        XCTAssertEqual(try JSONParser.parse(String(lines[1]))["score"], .null)
        let csv = table.render(.csv).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(csv[0], "id,ts,time,device,score,scores")
        XCTAssertEqual(csv[1], #"1,1795960800.5,2026-11-29T14:00:00.500Z,"cam,""front""",0.91234,"{""a"":0.5}""#)
        XCTAssertEqual(csv[2], "2,1795960801.0,2026-11-29T14:00:01.000Z,b,,not json")
    }

    func testTableOnATerminalJSONLinesElsewhere() {
        XCTAssertEqual(OutputFormat.automatic(isTTY: true), .table)
        XCTAssertEqual(OutputFormat.automatic(isTTY: false), .jsonl)
    }

    // MARK: a log written by the daemon's own store

    /// Writes rows through `Store` (the daemon's single writer), as vigild does.
    func makeLog(detections: [Detection], alerts: [AlertRecord] = []) throws -> String {
        var s = StorageSettings()
        s.path = dir.file("vigil.db")
        let store = try Store(settings: s)
        for a in alerts { store.append(a) }
        for d in detections { store.append(d) }
        store.close()
        return s.path
    }

    func detection(_ ts: Double, _ pipeline: String, _ device: String, _ label: String, _ score: Double, latency: Double = 1) -> Detection {
        Detection(ts: ts, pipeline: pipeline, device: device, model: "m", label: label, score: score,
                  scores: [(label, score)], latencyMs: latency)
    }

    func testFiltersLimitAndOrder() throws {
        let t0 = 1_795_960_800.0
        var ds: [Detection] = []
        for i in 0..<60 {
            ds.append(detection(t0 + Double(i), i % 2 == 0 ? "camera" : "audio", "dev\(i % 3)", i % 5 == 0 ? "motion" : "still",
                                Double(i) / 60))
        }
        let reader = try LogReader(path: try makeLog(detections: ds))
        var f = RowFilter()
        var (t, more) = try reader.detections(f, limit: nil)
        XCTAssertEqual(t.rows.count, 60)
        XCTAssertFalse(more)
        (t, more) = try reader.detections(f, limit: 10)
        XCTAssertTrue(more)
        let ts = t.rows.map { $0[t.column(named: "ts")!].double! }
        XCTAssertEqual(ts, (50..<60).map { t0 + Double($0) }, "the newest rows, oldest first")
        f.since = t0 + 10; f.until = t0 + 20
        XCTAssertEqual(try reader.detections(f, limit: nil).0.rows.count, 10, "since inclusive, until exclusive")
        f = RowFilter(); f.pipelines = ["camera"]; f.devices = ["dev1", "dev2"]
        XCTAssertEqual(try reader.detections(f, limit: nil).0.rows.count, 20)
        f = RowFilter(); f.devices = ["dev*"]; f.labels = ["motion"]
        XCTAssertEqual(try reader.detections(f, limit: nil).0.rows.count, 12)
        f = RowFilter(); f.minScore = 0.5
        XCTAssertEqual(try reader.detections(f, limit: nil).0.rows.count, 30)
        f = RowFilter(); f.afterID = 55
        XCTAssertEqual(try reader.detections(f, limit: nil).0.rows.map { $0[0].int! }, [56, 57, 58, 59, 60])
        XCTAssertEqual(try reader.maxID("detections"), 60)
        // A hostile value is bound, never spliced into SQL.
        f = RowFilter(); f.devices = ["x' OR '1'='1"]
        XCTAssertEqual(try reader.detections(f, limit: nil).0.rows.count, 0)
    }

    func testAlertsAndStats() throws {
        let t0 = 1_795_960_800.0
        var ds: [Detection] = []
        // camera/a: latencies 1...100 ms; camera/b: 10 rows at 5 ms.
        for i in 1...100 { ds.append(detection(t0 + Double(i), "camera", "a", i <= 30 ? "motion" : "still", 0.9, latency: Double(i))) }
        for i in 1...10 { ds.append(detection(t0 + Double(i), "camera", "b", "still", 0.1, latency: 5)) }
        let alerts = [
            AlertRecord(ts: t0 + 5, pipeline: "camera", device: "a", state: "raised", label: "motion", score: 0.9, severity: "warning",
                        actions: #"[{"action":"siren","ok":true}]"#),
            AlertRecord(ts: t0 + 9, pipeline: "camera", device: "a", state: "cleared", label: "motion", score: 0.2, severity: "warning"),
            AlertRecord(ts: t0 + 50, pipeline: "camera", device: "a", state: "raised", label: "motion", score: 0.95, severity: "critical"),
            AlertRecord(ts: t0 + 7, pipeline: "audio", device: "mic", state: "raised", label: "smoke_alarm", score: 0.8, severity: "critical"),
        ]
        let reader = try LogReader(path: try makeLog(detections: ds, alerts: alerts))
        var f = RowFilter()
        f.states = ["raised"]
        let (a, _) = try reader.alerts(f, limit: nil)
        XCTAssertEqual(a.rows.count, 3)
        let json = try JSONParser.parse(a.jsonLine(a.rows[0]))
        XCTAssertEqual(json["actions"]?.serialized, #"[{"action":"siren","ok":true}]"#)
        XCTAssertEqual(json["state"], .string("raised"))

        let (groups, total) = try reader.stats(RowFilter())
        XCTAssertEqual(groups.map { "\($0.pipeline)/\($0.device)" }, ["audio/mic", "camera/a", "camera/b"])
        let ga = groups[1]
        XCTAssertEqual(ga.detections, 100)
        XCTAssertEqual(ga.p50, 50); XCTAssertEqual(ga.p95, 95); XCTAssertEqual(ga.p99, 99)
        XCTAssertEqual(ga.alerts, 2)
        XCTAssertEqual(ga.labels.map { "\($0.0)=\($0.1)" }, ["still=70", "motion=30"])
        XCTAssertEqual(ga.labelSummary, "still 70 (70%), motion 30 (30%)")
        XCTAssertEqual(groups[0].detections, 0, "a device with alerts but no detections still shows")
        XCTAssertEqual(groups[0].alerts, 1)
        XCTAssertEqual(groups[2].p99, 5)
        XCTAssertEqual(total.detections, 110)
        XCTAssertEqual(total.alerts, 3)
        XCTAssertEqual(total.p50, 45, "110 latencies: 1...100 and ten 5s; rank 55")
        var ranged = RowFilter()
        ranged.since = t0 + 20
        let (rg, _) = try reader.stats(ranged)
        XCTAssertEqual(rg.first { $0.device == "a" }?.detections, 81)
        XCTAssertEqual(rg.first { $0.device == "a" }?.alerts, 1, "only the raise at +50 is in range")
        XCTAssertNil(rg.first { $0.device == "b" })
    }

    func testSyncStatusReadsTheStoresMetaKeys() throws {
        let t0 = 1_795_960_800.0
        let path = try makeLog(detections: (0..<5).map { detection(t0 + Double($0), "p", "d", "x", 0.5) },
                               alerts: [AlertRecord(ts: t0 + 2, pipeline: "p", device: "d", state: "raised", label: "x", score: 1, severity: "info")])
        var s = try LogReader(path: path).syncStatus(now: t0 + 100)
        XCTAssertEqual(s.unsyncedDetections, 5)
        XCTAssertEqual(s.unsyncedAlerts, 1)
        XCTAssertEqual(s.oldestUnsynced, t0)
        XCTAssertNil(s.lastSyncAt)
        XCTAssertEqual(s.droppedDetections, 0)
        XCTAssertTrue(s.text(zone: .utc).contains("last sync:            never"), s.text(zone: .utc))
        let rw = try Database(path: path)
        try rw.execute("UPDATE detections SET synced_at = \(t0 + 50) WHERE id <= 3")
        try rw.execute("""
            INSERT INTO meta(key, value) VALUES ('last_sync_at', '\(t0 + 50)'), ('dropped_detections', '12'),
                ('dropped_alerts', 1), ('last_sync_error', 'connection refused')
            """)
        s = try LogReader(path: path).syncStatus(now: t0 + 100)
        XCTAssertEqual(s.unsyncedDetections, 2)
        XCTAssertEqual(s.oldestUnsynced, t0 + 2)
        XCTAssertEqual(s.lastSyncAt, t0 + 50)
        XCTAssertEqual(s.droppedDetections, 12)
        XCTAssertEqual(s.droppedAlerts, 1)
        XCTAssertEqual(s.lastSyncError, "connection refused")
        XCTAssertTrue(s.text(zone: .utc).contains("last sync:            2026-11-29 14:00:50Z (50s ago)"), s.text(zone: .utc))
        XCTAssertEqual(s.json["backlog"], .number(3))
    }

    func testMissingAndForeignDatabasesGetClearErrors() throws {
        XCTAssertThrowsError(try LogReader(path: dir.file("nope.db"))) { e in
            XCTAssertTrue("\(e)".contains("no database at \(dir.file("nope.db"))"), "\(e)")
        }
        let other = try Database(path: dir.file("other.db"))
        try other.execute("CREATE TABLE t(x)")
        XCTAssertThrowsError(try LogReader(path: dir.file("other.db"))) { e in
            XCTAssertTrue("\(e)".contains("is not a Vigil log"), "\(e)")
        }
        XCTAssertThrowsError(try LogReader(path: dir.path)) { e in XCTAssertTrue("\(e)".contains("is a directory"), "\(e)") }
        let text = dir.write("notes.txt", String(repeating: "not a database\n", count: 100))
        XCTAssertThrowsError(try LogReader(path: text)) { e in XCTAssertTrue("\(e)".contains("notes.txt is not a SQLite database"), "\(e)") }
    }

    func testReaderDoesNotBlockTheWriterAndSeesItsCommits() throws {
        var s = StorageSettings()
        s.path = dir.file("live.db")
        s.commitIntervalMs = 10
        let store = try Store(settings: s)
        defer { store.close() }
        store.append(detection(1, "p", "d", "x", 0.5))
        store.flush()
        let reader = try LogReader(path: s.path)
        XCTAssertEqual(try reader.maxID("detections"), 1)
        // Writes commit while the reader is open; each query sees the latest commit.
        for i in 0..<50 { store.append(detection(Double(i + 2), "p", "d", "x", 0.5)) }
        store.flush()
        XCTAssertEqual(try reader.maxID("detections"), 51)
        XCTAssertThrowsError(try reader.db.execute("DELETE FROM detections"), "the connection is read-only")
    }

    func testImmutableFallbackWhenNoWALFileExists() throws {
        // A stopped daemon leaves no -wal; the reader must still open when -shm cannot be made.
        // (Run as root the folder is always writable, so this checks the direct helper.)
        let path = try makeLog(detections: [detection(1, "p", "d", "x", 0.5)])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + "-wal"), "a clean close removes the WAL")
        let uri = "file:" + path + "?immutable=1"
        let db = try Database(path: uri, mode: .readOnly)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM detections").int, 1)
    }
}
