import Foundation
import SQLite
import TestSupport
@testable import VigilCore
import XCTest

/// The SQLite log on a real file: schema, batching, sync marks, retention, the size cap and a full disk.
final class StoreTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-store") }
    override func tearDown() { dir.remove() }

    func settings(_ path: String? = nil, maxMB: Double = 1024, retentionDays: Double = 30) -> StorageSettings {
        var s = StorageSettings()
        s.path = path ?? dir.file("vigil.db")
        s.maxSizeMB = maxMB
        s.retentionDays = retentionDays
        s.commitIntervalMs = 20
        s.maintenanceIntervalSeconds = 3600
        s.minFreeMB = 0
        return s
    }

    func detection(_ i: Int, ts: Double? = nil, device: String = "dev") -> Detection {
        Detection(ts: ts ?? 1_700_000_000 + Double(i), pipeline: "env", device: device, model: "tiny", label: "high",
                  score: 0.9, scores: [("low", 0.05), ("mid", 0.05), ("high", 0.9)], latencyMs: 1.5)
    }

    func alert(_ i: Int, ts: Double? = nil) -> AlertRecord {
        AlertRecord(ts: ts ?? 1_700_000_000 + Double(i), pipeline: "env", device: "dev", state: i % 2 == 0 ? "raised" : "cleared",
                    label: "high", score: 0.9, severity: "warning", actions: #"[{"action":"siren","ok":true}]"#)
    }

    func count(_ store: Store, _ sql: String) -> Int {
        store.withDatabase { Int(($0.scalarInt(sql)) ?? -1) }
    }

    func testSchemaIsVersionedInWALModeWithIndexesForTheQueriesMade() throws {
        let store = try Store(settings: settings())
        defer { store.close() }
        try store.withDatabase { db in
            XCTAssertEqual(db.userVersion, Schema.migrator.latestVersion)
            XCTAssertEqual(try db.scalar("PRAGMA journal_mode").string, "wal")
            func plan(_ sql: String) throws -> String {
                try db.query("EXPLAIN QUERY PLAN " + sql).map { $0.last?.string ?? "" }.joined(separator: "; ")
            }
            // vigilctl's queries and sync's reads use an index, not a scan of the table.
            for (sql, index) in [
                ("SELECT * FROM detections WHERE ts > 0 ORDER BY ts DESC LIMIT 20", "detections_ts"),
                ("SELECT * FROM detections WHERE pipeline = 'a' AND device = 'b' AND ts > 0", "detections_pipeline_device_ts"),
                ("SELECT * FROM detections WHERE synced_at IS NULL AND id > 0 ORDER BY id LIMIT 10", "detections_unsynced"),
                ("SELECT * FROM alerts WHERE synced_at IS NULL AND id > 0 ORDER BY id LIMIT 10", "alerts_unsynced"),
                ("SELECT * FROM alerts WHERE ts > 0 ORDER BY ts DESC LIMIT 20", "alerts_ts"),
                ("SELECT * FROM alerts WHERE pipeline = 'a' AND device = 'b' AND ts > 0", "alerts_pipeline_device_ts"),
                ("SELECT id FROM detections WHERE uuid = 'x'", "sqlite_autoindex_detections_1"),
            ] {
                let p = try plan(sql)
                XCTAssertTrue(p.contains(index), "\(sql): \(p)")
            }
        }
        // Reopening migrates nothing and keeps the version.
        store.close()
        let again = try Store(settings: settings())
        defer { again.close() }
        XCTAssertEqual(again.withDatabase { $0.userVersion }, Schema.migrator.latestVersion)
    }

    func testRowsAreCommittedInBatchesOnTheTick() throws {
        var s = settings()
        s.commitRows = 1000
        s.commitIntervalMs = 60_000
        let store = try Store(settings: s)
        defer { store.close() }
        for i in 0..<999 { store.append(detection(i)) }
        XCTAssertEqual(count(store, "SELECT count(*) FROM detections"), 0, "nothing is written before the window closes")
        XCTAssertEqual(store.pendingCount, 999)
        store.append(detection(999))   // the 1000th row closes the window at once
        XCTAssertTrue(waitUntil { self.count(store, "SELECT count(*) FROM detections") == 1000 })
        store.append(alert(0))          // an alert is committed without waiting for the tick
        XCTAssertTrue(waitUntil { self.count(store, "SELECT count(*) FROM alerts") == 1 })
    }

    func testUnsyncedGivesAlertsFirstAndOnlyAcknowledgedRowsAreMarked() throws {
        let store = try Store(settings: settings())
        defer { store.close() }
        for i in 0..<10 { store.append(detection(i)) }
        store.flush()
        for i in 0..<3 { store.append(alert(i)) }
        store.flush()
        let first = try store.unsynced(limit: 5, node: "gw")
        XCTAssertEqual(first.map(\.table), [.alerts, .alerts, .alerts, .detections, .detections])
        XCTAssertEqual(first[0].record["node"]?.string, "gw")
        XCTAssertEqual(first[0].record["type"]?.string, "alert")
        XCTAssertEqual(first[3].record["type"]?.string, "detection")
        XCTAssertEqual(first[3].record["scores"]?["high"]?.double, 0.9)
        XCTAssertEqual(first[0].record["actions"], .array([.object([("action", .string("siren")), ("ok", .bool(true))])]))
        // A cursor skips what is in flight.
        let cursor = SyncCursor(alerts: first[2].id, detections: first[4].id)
        let next = try store.unsynced(limit: 100, after: cursor, node: "gw")
        XCTAssertEqual(next.count, 8)
        XCTAssertTrue(Set(next.map(\.uuid)).isDisjoint(with: first.map(\.uuid)))

        XCTAssertEqual(try store.markSynced(first.map { ($0.table, $0.uuid) }, at: 1234.5), 5)
        XCTAssertEqual(try store.unsynced(limit: 100, node: "gw").count, 8)
        XCTAssertEqual(store.meta(MetaKey.lastSyncAt), "1234.5")
        let stats = try store.stats()
        XCTAssertEqual(stats.unsyncedAlerts, 0)
        XCTAssertEqual(stats.unsyncedDetections, 8)
        XCTAssertEqual(stats.oldestUnsyncedTs, 1_700_000_002)
        XCTAssertEqual(stats.lastSyncAt, 1234.5)
        store.recordSyncError("cloud down")
        XCTAssertEqual(try store.stats().lastSyncError, "cloud down")
        try store.markSynced(next.map { ($0.table, $0.uuid) })
        XCTAssertNil(try store.stats().lastSyncError, "a success clears the last error")
        XCTAssertEqual(try store.unsynced(limit: 100, node: "gw").count, 0)
    }

    func testAnAlertRewrittenWhileInFlightIsSentAgainInItsFinalForm() throws {
        let store = try Store(settings: settings())
        defer { store.close() }
        let a = alert(0)
        store.append(a)
        store.flush()
        let batch = try store.unsynced(limit: 10, node: "gw")
        XCTAssertEqual(batch.count, 1)
        // The alert's actions finish while its first batch waits for the cloud's ack.
        store.updateAlertActions(uuid: a.uuid, json: #"[{"action":"siren","ok":false}]"#)
        XCTAssertEqual(try store.markSynced(batch.map { ($0.table, $0.uuid) }, readSeq: batch[0].readSeq), 0)
        let again = try store.unsynced(limit: 10, node: "gw")
        XCTAssertEqual(again.map(\.uuid), [a.uuid])
        XCTAssertEqual(again[0].record["actions"], .array([.object([("action", .string("siren")), ("ok", .bool(false))])]))
        XCTAssertEqual(try store.markSynced(again.map { ($0.table, $0.uuid) }, readSeq: again[0].readSeq), 1)
        XCTAssertTrue(try store.unsynced(limit: 10, node: "gw").isEmpty)
    }

    func testRetentionDeletesOnlySyncedRowsOlderThanRetentionDays() throws {
        let store = try Store(settings: settings(retentionDays: 2))
        defer { store.close() }
        let now = 1_800_000_000.0
        let old = now - 3 * 86_400, recent = now - 86_400
        let rows = [detection(0, ts: old), detection(1, ts: old), detection(2, ts: recent), detection(3, ts: recent)]
        for d in rows { store.append(d) }
        let alerts = [alert(0, ts: old), alert(1, ts: old)]
        for a in alerts { store.append(a) }
        store.flush()
        // Synced: one old detection, one recent detection, one old alert.
        try store.markSynced([(.detections, rows[0].uuid), (.detections, rows[2].uuid), (.alerts, alerts[0].uuid)])
        let deleted = store.runRetention(now: now)
        XCTAssertEqual(deleted.detections, 1)
        XCTAssertEqual(deleted.alerts, 1)
        let left = store.withDatabase { try! $0.query("SELECT uuid FROM detections ORDER BY id").map { $0[0].string! } }
        XCTAssertEqual(left, [rows[1].uuid, rows[2].uuid, rows[3].uuid], "old unsynced and recent rows stay")
        XCTAssertEqual(count(store, "SELECT count(*) FROM alerts"), 1)
        XCTAssertEqual(try store.stats().droppedDetections, 0, "retention is not a drop")
    }

    /// Issue 19: a local-only log (no `sync`) is acknowledged by nobody, so retention goes by
    /// age alone; before, `retention_days` never applied and the log lived at its cap.
    func testWithoutSyncRetentionDeletesOldRowsWhateverSyncedAtSays() throws {
        let store = try Store(settings: settings(retentionDays: 2), keepsUnsynced: false)
        defer { store.close() }
        let now = 1_800_000_000.0
        let old = now - 3 * 86_400, recent = now - 86_400
        let rows = [detection(0, ts: old), detection(1, ts: old), detection(2, ts: recent)]
        for d in rows { store.append(d) }
        store.append(alert(0, ts: old))
        store.append(alert(1, ts: recent))
        store.flush()
        try store.markSynced([(.detections, rows[0].uuid)])   // synced or not makes no difference
        let deleted = store.runRetention(now: now)
        XCTAssertEqual(deleted.detections, 2)
        XCTAssertEqual(deleted.alerts, 1)
        let left = store.withDatabase { try! $0.query("SELECT uuid FROM detections ORDER BY id").map { $0[0].string! } }
        XCTAssertEqual(left, [rows[2].uuid], "only the recent row stays")
        XCTAssertEqual(count(store, "SELECT count(*) FROM alerts"), 1)
        XCTAssertEqual(try store.stats().droppedDetections, 0, "retention is not a drop")
    }

    /// Issue 19: a local-only log lives at its cap, dropping rows at every commit. That is the
    /// cap doing its job: one warning now and then (rate-limited), not an ERROR per commit.
    func testReachingTheCapIsARateLimitedWarningNotAnErrorPerCommit() throws {
        let lines = ServiceLogTests.Lines()
        let store = try Store(settings: settings(maxMB: 1), keepsUnsynced: false,
                              logger: Logger(journald: false, sink: { lines.add($0) }))
        defer { store.close() }
        // Commits of 50 rows: a commit refused within a few pages of the cap is the cap's doing
        // (LogWriter.makeRoom); one of 500 rows at a 1 MB cap can look like a full disk.
        for i in 0..<12_000 {
            store.append(detection(i))
            if i % 50 == 49 { store.flush() }
        }
        store.flush()
        let dropped = try store.stats().droppedDetections
        XCTAssertGreaterThan(dropped, 1_000, "many commits of 50 rows each dropped rows")
        let said = lines.all.filter { $0.contains("storage.max_size_mb") && $0.contains("dropped") }
        XCTAssertEqual(said.count, 1, "one line for many commits that dropped rows: \(said)")
        XCTAssertTrue(said.allSatisfy { $0.contains(" WARNING ") }, "\(said)")
        XCTAssertEqual(lines.all.filter { $0.contains(" ERROR ") }, [String]())
    }

    func testSizeCapDropsOldestDetectionsFirstKeepsAlertsAndCounts() throws {
        let store = try Store(settings: settings(maxMB: 1))
        for i in 0..<20 { store.append(alert(i, ts: 1_600_000_000 + Double(i))) }   // older than every detection
        store.flush()
        let total = 20_000
        for i in 0..<total {
            store.append(detection(i))
            if i % 500 == 499 { store.flush() }
        }
        store.flush()
        let stats = try store.stats()
        store.close()
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: dir.file("vigil.db"))[.size] as? NSNumber)?.int64Value ?? 0
        XCTAssertLessThanOrEqual(fileBytes, 1 << 20, "the file stays within max_size_mb")
        XCTAssertEqual(stats.alerts, 20, "alerts go last")
        XCTAssertGreaterThan(stats.droppedDetections, 0)
        XCTAssertEqual(stats.droppedAlerts, 0)
        XCTAssertEqual(stats.detections + stats.droppedDetections, total, "every row is either kept or counted as dropped")
        XCTAssertEqual(store.dropped.detections, stats.droppedDetections)
        let db = try Database(path: dir.file("vigil.db"), mode: .readOnly)
        XCTAssertEqual(try db.scalar("SELECT value FROM meta WHERE key = 'dropped_detections'").string, String(stats.droppedDetections))
        // The oldest went: what is left is the newest, without a gap.
        let minTs = try db.scalar("SELECT min(ts) FROM detections").double!
        let maxTs = try db.scalar("SELECT max(ts) FROM detections").double!
        XCTAssertEqual(maxTs, 1_700_000_000 + Double(total - 1))
        XCTAssertEqual(minTs, 1_700_000_000 + Double(stats.droppedDetections))
        XCTAssertEqual(try db.scalar("PRAGMA integrity_check").string, "ok")
    }

    func testWhenOnlyAlertsAreLeftTheOldestAlertsGo() throws {
        let store = try Store(settings: settings(maxMB: 1))
        defer { store.close() }
        let big = String(repeating: "x", count: 2000)
        for i in 0..<1000 {
            var a = alert(i)
            a.actions = #"[{"action":"log","detail":"\#(big)"}]"#
            store.append(a)
            if i % 50 == 49 { store.flush() }
        }
        store.flush()
        let stats = try store.stats()
        XCTAssertGreaterThan(stats.droppedAlerts, 0)
        XCTAssertEqual(stats.alerts + stats.droppedAlerts, 1000)
        let minTs = store.withDatabase { try! $0.scalar("SELECT min(ts) FROM alerts").double! }
        XCTAssertEqual(minTs, 1_700_000_000 + Double(stats.droppedAlerts), "the oldest alerts went")
    }

    func testFullDiskDropsByPolicyKeepsRunningAndRecoversWhenSpaceReturns() throws {
        // SQLite answers SQLITE_FULL at max_page_count exactly as on a full disk; set it below
        // the cap so that this is the disk, not the cap.
        let store = try Store(settings: settings(maxMB: 64))
        defer { store.close() }
        for i in 0..<5 { store.append(alert(i, ts: 1_600_000_000 + Double(i))) }
        store.flush()
        let fullPages = store.withDatabase { db -> Int64 in
            let pages = db.scalarInt("PRAGMA page_count")! + 60
            _ = try! db.query("PRAGMA max_page_count = \(pages)")
            return pages
        }
        for i in 0..<10_000 {
            store.append(detection(i))
            if i % 200 == 199 { store.flush() }
        }
        store.flush()
        XCTAssertEqual(store.pendingCount, 0, "nothing waits in memory: room was made on disk")
        var stats = try store.stats()
        XCTAssertLessThanOrEqual(stats.fileBytes, fullPages * 4096)
        XCTAssertGreaterThan(stats.droppedDetections, 0)
        XCTAssertEqual(stats.detections + stats.droppedDetections, 10_000)
        XCTAssertEqual(stats.alerts, 5)
        XCTAssertEqual(store.meta(MetaKey.droppedDetections), String(stats.droppedDetections))
        // Space returns: rows are kept again, and nothing more is dropped.
        _ = store.withDatabase { try! $0.query("PRAGMA max_page_count = 1000000") }
        let dropped = stats.droppedDetections
        for i in 10_000..<12_000 { store.append(detection(i)) }
        store.flush()
        stats = try store.stats()
        XCTAssertEqual(stats.droppedDetections, dropped)
        XCTAssertEqual(stats.detections, 12_000 - dropped)
        XCTAssertEqual(store.withDatabase { try! $0.scalar("PRAGMA integrity_check").string }, "ok")
    }

    func testRowsWaitInMemoryWhenNothingCanBeDeletedAndTheOverflowIsCounted() throws {
        // The disk is full before any row is stored: there is nothing to delete, so rows wait
        // in memory (up to maxPending, oldest detections dropped beyond it) and land later.
        let store = try Store(settings: settings(), maxPending: 300)
        defer { store.close() }
        store.withDatabase { db in
            _ = try! db.query("PRAGMA max_page_count = \(db.scalarInt("PRAGMA page_count")!)")
        }
        for i in 0..<500 { store.append(detection(i)) }
        store.append(alert(0))
        store.flush()
        XCTAssertEqual(store.pendingCount, 300)
        XCTAssertEqual(try store.stats().droppedDetections, 201)
        _ = store.withDatabase { try! $0.query("PRAGMA max_page_count = 1000000") }
        store.flush()
        let stats = try store.stats()
        XCTAssertEqual(stats.alerts, 1)
        XCTAssertEqual(stats.detections, 299)
        XCTAssertEqual(store.meta(MetaKey.droppedDetections), "201", "memory drops are recorded with the next commit")
        XCTAssertEqual(store.withDatabase { try! $0.scalar("SELECT min(ts) FROM detections").double }, 1_700_000_201)
    }

    /// Issue 15, item 6: a commit that keeps failing loses no row uncounted. The overflow of
    /// memory and what still waits at close are both counted (stop line, /metrics).
    func testEveryRowThatNeverReachesTheFileIsCounted() throws {
        let counters = Counters()
        let store = try Store(settings: settings(), counters: counters, maxPending: 300)
        store.withDatabase { db in
            _ = try! db.query("PRAGMA max_page_count = \(db.scalarInt("PRAGMA page_count")!)")
        }
        for i in 0..<500 { store.append(detection(i)) }
        store.append(alert(0))
        store.flush()
        XCTAssertEqual(counters.snapshot().notStored, 201, "the memory overflow")
        store.close()
        let s = counters.snapshot()
        XCTAssertEqual(s.stored, 0)
        XCTAssertEqual(s.notStored, 501, "what still waited at close: every row is stored or counted")
    }

    /// Issue 15, item 5: only the main file deleted, its -wal left behind (the WAL of the
    /// deleted file, which the new file must never read as its own). Every row is written
    /// again at the path, and the store goes on there.
    func testADeletedFileIsWrittenAgainWithEveryRow() throws {
        let counters = Counters()
        let store = try Store(settings: settings(), counters: counters)
        defer { store.close() }
        for i in 0..<300 { store.append(detection(i)) }
        store.flush()
        let path = dir.file("vigil.db")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "-wal"))
        try FileManager.default.removeItem(atPath: path)
        XCTAssertTrue(waitUntil(timeout: 5) { counters.currentStoreProblem?.contains("deleted") == true })
        XCTAssertTrue(waitUntil(timeout: 5) { FileManager.default.fileExists(atPath: path) })
        for i in 300..<400 { store.append(detection(i)) }
        store.flush()
        XCTAssertNil(counters.currentStoreProblem, "cleared by the first commit to the new file")
        let reader = try Database(path: path, mode: .readOnly)
        XCTAssertEqual(try reader.scalar("SELECT count(*) FROM detections").int, 400)
        XCTAssertEqual(try reader.quickCheck(), ["ok"])
    }

    /// Another file put at the path: vigild moves to it, and the rows of the one it had go
    /// beside it (`vigil.db.replaced-<time>`), not over it.
    func testAReplacedFileIsKeptAndTheOldRowsGoBesideIt() throws {
        let store = try Store(settings: settings())
        defer { store.close() }
        for i in 0..<300 { store.append(detection(i)) }
        store.flush()
        let path = dir.file("vigil.db")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))   // an empty file is an empty database
        XCTAssertTrue(waitUntil(timeout: 5) {
            ((try? FileManager.default.contentsOfDirectory(atPath: self.dir.path)) ?? []).contains { $0.hasPrefix("vigil.db.replaced-") }
        })
        for i in 300..<310 { store.append(detection(i)) }
        store.flush()
        let aside = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasPrefix("vigil.db.replaced-") })
        XCTAssertEqual(try Database(path: dir.file(aside), mode: .readOnly).scalar("SELECT count(*) FROM detections").int, 300)
        XCTAssertEqual(try Database(path: path, mode: .readOnly).scalar("SELECT count(*) FROM detections").int, 10)
    }

    func testALoweredCapShrinksTheFileAtOpen() throws {
        var store: Store? = try Store(settings: settings(maxMB: 8))
        for i in 0..<20_000 { store!.append(detection(i)) }
        store!.close()
        store = nil
        let before = (try FileManager.default.attributesOfItem(atPath: dir.file("vigil.db"))[.size] as? NSNumber)!.int64Value
        XCTAssertGreaterThan(before, 2 << 20)
        let small = try Store(settings: settings(maxMB: 1))
        defer { small.close() }
        let stats = try small.stats()
        XCTAssertLessThanOrEqual(stats.fileBytes, 1 << 20)
        XCTAssertGreaterThan(stats.droppedDetections, 0)
        XCTAssertEqual(stats.detections + stats.droppedDetections, 20_000)
    }

    func testARealFullDiskOnTmpfs() throws {
        let mnt = dir.file("mnt")
        let tmpfs: TmpfsMount
        do { tmpfs = try TmpfsMount(at: mnt, sizeMB: 8) } catch let why as TmpfsMount.Unavailable { throw XCTSkip("\(why)") }
        defer { tmpfs.unmount() }
        // Fill most of the disk with someone else's file, then let the log grow into the rest.
        let ballast = mnt + "/ballast"
        _ = FileManager.default.createFile(atPath: ballast, contents: Data(count: 4_000_000))
        var s = settings(mnt + "/vigil.db", maxMB: 1024)
        s.minFreeMB = 2
        let store = try Store(settings: s)
        defer { store.close() }
        for i in 0..<3 { store.append(alert(i, ts: 1_600_000_000 + Double(i))) }
        for i in 0..<15_000 {
            store.append(detection(i))
            if i % 250 == 249 { store.flush() }
        }
        store.flush()
        var stats = try store.stats()
        XCTAssertGreaterThan(stats.droppedDetections, 0, "the disk filled")
        XCTAssertEqual(stats.alerts, 3)
        XCTAssertEqual(stats.detections + stats.droppedDetections + store.pendingCount, 15_000)
        // Space returns.
        try FileManager.default.removeItem(atPath: ballast)
        let dropped = stats.droppedDetections
        for i in 15_000..<16_000 { store.append(detection(i)) }
        store.flush()
        XCTAssertEqual(store.pendingCount, 0)
        stats = try store.stats()
        XCTAssertEqual(stats.droppedDetections, dropped, "nothing more is dropped once there is space")
        XCTAssertEqual(stats.detections + stats.droppedDetections, 16_000)
        XCTAssertEqual(store.withDatabase { try! $0.scalar("PRAGMA integrity_check").string }, "ok")
    }
}

final class GzipTests: XCTestCase {
    func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let dir = TempDir("vigil-gzip")
        defer { dir.remove() }
        let path = dir.file("x.gz")
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "gzip -dc < '\(path)' > '\(path).out'"]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "gzip -d accepts the stream")
        return Array(FileManager.default.contents(atPath: path + ".out") ?? Data())
    }

    func testGzipRoundTripsThroughTheGzipTool() throws {
        var rng = SystemRandomNumberGenerator()
        let json = Array((0..<2000).map { i in
            #"{"type":"detection","uuid":"\#(UUID().uuidString.lowercased())","node":"gw","ts":\#(1_700_000_000 + i),"label":"motion","score":0.\#(i % 97)}"#
        }.joined(separator: ",").utf8)
        let cases: [[UInt8]] = [
            [], [65], Array("abcabcabcabcabcabc".utf8), json,
            (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &rng) },
            [UInt8](repeating: 7, count: 1_000_000),
            (0..<70_000).map { UInt8($0 % 251) },   // matches at distances near the window's end
        ]
        for c in cases {
            let z = Gzip.compress(c)
            XCTAssertEqual(try gunzip(z), c, "size \(c.count)")
        }
        let ratio = Double(Gzip.compress(json).count) / Double(json.count)
        XCTAssertLessThan(ratio, 0.5, "sync batches compress")
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xcbf4_3926)
    }
}

final class SyncSettingsAndBackoffTests: XCTestCase {
    func parse(_ sync: String) throws -> Config {
        try Config.parse(Array("""
            { "node": "gw", "models": { "tiny": { "path": "/m.onnx" } },
              "pipelines": [ { "name": "p", "topic": "s/{device}/x", "format": "f32le", "model": "tiny" } ],
              "sync": \(sync) }
            """.utf8))
    }

    func testSyncKeysAndTheirChecks() throws {
        let c = try parse("""
            { "mqtt": { "host": "cloud", "port": 8883 }, "batch": 50, "interval_s": 2, "backoff_min_s": 0.5,
              "backoff_max_s": 30, "max_inflight": 8, "connect_timeout_s": 20 }
            """)
        let s = try XCTUnwrap(c.sync)
        XCTAssertEqual(s.mqtt?.topic, "vigil/gw/records")
        XCTAssertEqual(s.mqtt?.broker.clientID, "vigild-gw-sync")
        XCTAssertEqual(s.mqtt?.broker.cleanSession, true, "sync resends by itself: no broker session by default")
        XCTAssertEqual(s.batch, 50)
        XCTAssertEqual(s.backoffMinSeconds, 0.5)
        XCTAssertEqual(s.backoffMaxSeconds, 30)
        XCTAssertEqual(s.maxInFlight, 8)
        XCTAssertEqual(s.connectTimeoutSeconds, 20)
        let h = try XCTUnwrap(try parse(#"{ "http": { "url": "https://x/ingest", "gzip": true, "token_file": "/t" } }"#).sync?.http)
        XCTAssertTrue(h.gzip)
        XCTAssertEqual(h.tokenFile, "/t")
        for (bad, says) in [
            (#"{ "batch": 5 }"#, "sync: needs \"mqtt\" or \"http\""),
            (#"{ "mqtt": { "host": "a" }, "http": { "url": "http://b" } }"#, "takes \"mqtt\" or \"http\", not both"),
            (#"{ "http": { "url": "ftp://b" } }"#, "sync.http.url: must be an http:// or https:// URL"),
            (#"{ "http": { "url": "http://b" }, "backoff_min_s": 5, "backoff_max_s": 1 }"#, "sync.backoff_max_s"),
            (#"{ "http": { "url": "http://b" }, "max_inflight": 0 }"#, "sync.max_inflight"),
        ] {
            XCTAssertThrowsError(try parse(bad), bad) { XCTAssertTrue("\($0)".contains(says), "\($0)") }
        }
    }

    func testBackoffDoublesUpToTheCapWithJitter() {
        var b = Backoff(min: 1, max: 8)
        for ceiling in [1.0, 2, 4, 8, 8, 8] {
            let d = b.next()
            XCTAssertGreaterThanOrEqual(d, ceiling / 2)
            XCTAssertLessThanOrEqual(d, ceiling)
        }
        // Jitter: many gateways do not all pick the same delay.
        let delays = Set((0..<20).map { _ -> Double in var x = Backoff(min: 1, max: 60); return x.next() })
        XCTAssertGreaterThan(delays.count, 10)
        b.reset()
        XCTAssertLessThanOrEqual(b.next(), 1)
    }
}
