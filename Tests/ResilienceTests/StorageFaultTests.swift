import Foundation
import SQLite
import TestSupport
import VigilCore
import XCTest

/// Issue 15, items 5-8: storage faults. The database deleted under a running daemon, a
/// read-only database, a file system with less free space than `min_free_mb`, and bad
/// storage at start (a corrupt file, a full disk). Every row is stored or counted, and the
/// user is told which file and what to do.
final class StorageFaultTests: ResilienceCase {
    var tmpfs: TmpfsMount?

    override func tearDown() {
        tmpfs?.unmount()
        super.tearDown()
    }

    /// A small tmpfs at `dir/name`, or the test is skipped (not root).
    func mountTmpfs(_ name: String, sizeMB: Int) throws -> String {
        let at = dir.file(name)
        do {
            tmpfs = try TmpfsMount(at: at, sizeMB: sizeMB)
        } catch let why as TmpfsMount.Unavailable {
            report("storage faults: skipped, no tmpfs: \(why)")
            throw XCTSkip("\(why)")
        }
        return at
    }

    func writeConfig(db: String, broker: Broker, http: Int? = nil, storage extra: String = "") -> String {
        dir.write("vigil.json", """
            {
              "node": "res-node",
              "mqtt": { "host": "127.0.0.1", "port": \(broker.port), "client_id": "vigild-res-storage" },
              \(http.map { "\"http\": { \"listen\": \"127.0.0.1:\($0)\" }," } ?? "")
              "storage": { "path": "\(db)", "commit_interval_ms": 100 \(extra) },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" } ]
            }
            """)
    }

    /// Publishes `count` QoS 1 frames (devices `prefix0`...`prefix3`) and waits until the broker acknowledged them.
    func publish(_ pub: TestClient, _ count: Int, prefix: String, rate: Double = 400) {
        var mids: [Int32] = []
        ResilienceCase.paced(rate: rate, count: count) { i in
            if let mid = try? pub.publish("sensors/\(prefix)\(i % 4)/vec", f32le([Float(i % 11), 1, 2, 3])) { mids.append(mid) }
        }
        XCTAssertEqual(mids.count, count)
        XCTAssertTrue(pub.waitForAcks(mids, timeout: 20))
    }

    /// `chattr FLAG path`; true when it worked.
    func chattr(_ flag: String, _ path: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        p.arguments = [flag, path]
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    func occurrences(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    // MARK: item 5

    /// `rm vigil.db*` under a running daemon: found within seconds (the file's link count is
    /// 0), logged as an ERROR, /healthz says so, and the file is written again from the
    /// connection that still holds the deleted one, so no row is lost.
    func testDeletedDatabaseIsDetectedRecreatedAndKeepsItsRows() throws {
        let broker = try Broker()
        let http = freePort()
        let daemon = try startDaemon(writeConfig(db: dbPath, broker: broker, http: http))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        publish(pub, 200, prefix: "before")
        XCTAssertTrue(waitUntil(timeout: 20) { self.rowCount() == 200 }, daemon.output)

        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dbPath + suffix) }
        let t0 = Date()
        let detected = waitUntil(timeout: 10, interval: 0.05) { daemon.output.contains("was deleted") }
        let secondsToDetect = -t0.timeIntervalSinceNow
        XCTAssertTrue(detected, daemon.output)
        XCTAssertTrue(daemon.output.contains("ERROR"), daemon.output)
        let health = httpGet("http://127.0.0.1:\(http)/healthz")
        XCTAssertEqual(health.status, 503, health.body)
        XCTAssertTrue(health.body.contains("deleted"), health.body)
        XCTAssertTrue(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: self.dbPath) }, daemon.output)

        publish(pub, 200, prefix: "after")
        XCTAssertTrue(waitUntil(timeout: 20) { self.rowCount() == 400 }, "rows \(rowCount())\n\(daemon.output)")
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(integrity(), "ok")
        XCTAssertEqual(rowCount(), 400, "the 200 rows of the deleted file are in the new one, with the 200 after")
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(stopped["frames"], 400)
        XCTAssertEqual(stopped["rows not stored"] ?? 0, 0)
        report("deleted database: detected \(fmt(secondsToDetect, 2)) s after rm; /healthz \(health.status) (\(health.body.trimmingCharacters(in: .whitespacesAndNewlines))); "
               + "rows after: \(rowCount()) of 400 (200 from before the deletion); integrity_check ok")
    }

    // MARK: item 6

    /// A read-only database file (the immutable attribute, which holds for root too, where
    /// file modes do not): vigild starts, says which file and what to do, and every row it
    /// could not write is counted in the stop line.
    func testReadOnlyDatabaseCountsEveryRowItCannotWrite() throws {
        let db = dbPath
        try seedDatabase(db, rows: 10)
        guard chattr("+i", db) else { throw XCTSkip("chattr +i \(db) failed (not root, or a file system without it)") }
        defer { _ = chattr("-i", db) }

        let broker = try Broker()
        let http = freePort()
        let daemon = try startDaemon(writeConfig(db: db, broker: broker, http: http))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        XCTAssertTrue(daemon.isRunning, daemon.output)
        XCTAssertTrue(daemon.output.contains(db) && daemon.output.contains("read-only"), daemon.output)
        let frames = 300
        publish(pub, frames, prefix: "ro")
        let health = httpGet("http://127.0.0.1:\(http)/healthz")
        XCTAssertEqual(health.status, 503, health.body)
        XCTAssertEqual(daemon.stop(), 0)
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(stopped["frames"], frames, daemon.output)
        XCTAssertEqual(stopped["detections"], 0, daemon.output)
        XCTAssertEqual(stopped["rows not stored"], frames, "every row is stored or counted\n\(daemon.output)")
        XCTAssertEqual(rowCount(db: db), 10, "the seed rows, nothing more")
        report("read-only database: \(frames) frames, 0 rows stored, rows not stored \(stopped["rows not stored"] ?? -1) in the stop line; /healthz \(health.status)")
    }

    /// The same file made writable while vigild runs: it is opened again and the rows that
    /// waited in memory are stored.
    func testReadOnlyDatabaseMadeWritableStoresTheRowsThatWaited() throws {
        let db = dbPath
        try seedDatabase(db, rows: 10)
        guard chattr("+i", db) else { throw XCTSkip("chattr +i \(db) failed (not root, or a file system without it)") }
        defer { _ = chattr("-i", db) }
        let broker = try Broker()
        let daemon = try startDaemon(writeConfig(db: db, broker: broker))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let frames = 300
        publish(pub, frames, prefix: "ro")
        XCTAssertEqual(rowCount(db: db), 10)
        XCTAssertTrue(chattr("-i", db))
        let t0 = Date()
        XCTAssertTrue(waitUntil(timeout: 10) { self.rowCount(db: db) == 10 + frames }, "rows \(rowCount(db: db))\n\(daemon.output)")
        let seconds = -t0.timeIntervalSinceNow
        XCTAssertEqual(daemon.stop(), 0)
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(stopped["detections"], frames, daemon.output)
        XCTAssertEqual(stopped["rows not stored"] ?? 0, 0, daemon.output)
        report("read-only database made writable: the \(frames) rows that waited in memory stored \(fmt(seconds, 2)) s after chattr -i")
    }

    /// A read-only file system at start (a WAL log there cannot even be opened): vigild says
    /// which file and why, runs on with the rows in memory, and stores them once the file
    /// system is writable again.
    func testReadOnlyFileSystemAtStartStoresOnceWritable() throws {
        let disk = try mountTmpfs("rofs", sizeMB: 8)
        let db = disk + "/vigil.db"
        try seedDatabase(dbPath, rows: 10)   // beside the mount: nothing of this process holds it open
        try FileManager.default.copyItem(atPath: dbPath, toPath: db)
        try tmpfs!.remount(readOnly: true)
        let broker = try Broker()
        let daemon = try startDaemon(writeConfig(db: db, broker: broker))
        defer { daemon.stop() }
        XCTAssertTrue(daemon.isRunning, daemon.output)
        let message = daemon.output.split(separator: "\n").first(where: { $0.contains("cannot open the log") }).map(String.init) ?? ""
        XCTAssertTrue(message.contains(db) && message.contains("not writable"), daemon.output)
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let frames = 100
        publish(pub, frames, prefix: "rofs")
        try tmpfs!.remount(readOnly: false)
        let t0 = Date()
        XCTAssertTrue(waitUntil(timeout: 10) { self.rowCount(db: db) == 10 + frames }, "rows \(rowCount(db: db))\n\(daemon.output)")
        let seconds = -t0.timeIntervalSinceNow
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual((stoppedLine(daemon.output) ?? [:])["detections"], frames, daemon.output)
        report("read-only file system at start: vigild ran on; \(frames) rows stored \(fmt(seconds, 2)) s after the remount rw")
    }

    // MARK: item 7

    /// An 8 MB file system under the default `min_free_mb` (64): the log still gets a
    /// minimum working size, the warning comes once, and every row is stored.
    func testFreeSpaceUnderMinFreeAtStartStillStoresRows() throws {
        let disk = try mountTmpfs("small", sizeMB: 8)
        let db = disk + "/vigil.db"
        let broker = try Broker()
        let daemon = try startDaemon(writeConfig(db: db, broker: broker))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let frames = 500
        publish(pub, frames, prefix: "small")
        XCTAssertTrue(waitUntil(timeout: 20) { self.rowCount(db: db) == frames }, "rows \(rowCount(db: db))\n\(daemon.output)")
        Thread.sleep(forTimeInterval: 1)   // a flood of warnings would show here (it came every 100 ms)
        XCTAssertEqual(daemon.stop(), 0)
        let warnings = occurrences("under storage.min_free_mb", in: daemon.output)
        XCTAssertEqual(warnings, 1, daemon.output)
        XCTAssertEqual(rowCount(db: db), frames)
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(stopped["detections"], frames, daemon.output)
        report("free space under min_free_mb at start (8 MB tmpfs, min_free_mb 64): \(rowCount(db: db)) of \(frames) rows stored, \(warnings) warning")
    }

    // MARK: item 8

    /// A log with rows, closed cleanly: what the corrupt cases start from.
    func seedDatabase(_ path: String, rows: Int) throws {
        var settings = StorageSettings()
        settings.path = path
        let store = try Store(settings: settings)
        for i in 0..<rows {
            store.append(Detection(ts: 1_700_000_000 + Double(i), pipeline: "vec", device: "seed", model: "tiny",
                                   label: "high", score: 0.9, scores: [("low", 0.1), ("high", 0.9)], latencyMs: 1))
        }
        store.close()
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// Random bytes, a truncated file, one damaged page: vigild names the file, moves it
    /// aside as `vigil.db.corrupt-<time>`, starts a fresh log and stores new rows in it.
    func testCorruptDatabaseAtStartIsMovedAsideAndAFreshLogStarted() throws {
        let broker = try Broker()
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        var figures: [String] = []
        for fault in ["random bytes", "truncated", "one damaged page"] {
            let sub = dir.file(fault.replacingOccurrences(of: " ", with: "-"))
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            let db = sub + "/vigil.db"
            try seedDatabase(db, rows: 3000)
            let size = (try FileManager.default.attributesOfItem(atPath: db)[.size] as? NSNumber)?.intValue ?? 0
            let file = FileHandle(forWritingAtPath: db)!
            switch fault {
            case "random bytes":
                try file.truncate(atOffset: 0)
                try file.write(contentsOf: Data((0..<65536).map { _ in UInt8.random(in: 0...255) }))
            case "truncated":
                try file.truncate(atOffset: UInt64(size / 2))
            default:
                // A page in the middle of the detections table.
                try file.seek(toOffset: UInt64(size / 2 / 4096 * 4096))
                try file.write(contentsOf: Data((0..<4096).map { _ in UInt8.random(in: 0...255) }))
            }
            try file.close()

            let daemon = try startDaemon(writeConfig(db: db, broker: broker), log: "vigild-\(fault).log")
            XCTAssertTrue(daemon.isRunning, "\(fault): \(daemon.output)")
            XCTAssertTrue(daemon.output.contains(db) && daemon.output.contains("corrupt"), "\(fault): \(daemon.output)")
            let aside = (try FileManager.default.contentsOfDirectory(atPath: sub)).filter { $0.hasPrefix("vigil.db.corrupt-") }
            XCTAssertTrue(aside.contains { !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }, "\(fault): \(aside)")
            publish(pub, 50, prefix: "fresh")
            XCTAssertTrue(waitUntil(timeout: 20) { self.rowCount(db: db) == 50 }, "\(fault): rows \(rowCount(db: db))\n\(daemon.output)")
            XCTAssertEqual(daemon.stop(), 0)
            XCTAssertEqual(integrity(db: db), "ok")
            figures.append("\(fault): moved aside as \(aside.first ?? "?"), 50 of 50 new rows stored")
        }
        report("corrupt database at start: " + figures.joined(separator: "; "))
    }

    /// No room to create the log at all: vigild says which file, how much is free and what to
    /// do, runs on (alerts keep working) with the rows in memory, and stores them all once
    /// space returns.
    func testFullDiskAtStartNamesTheFileRunsOnAndStoresOnceSpaceReturns() throws {
        let disk = try mountTmpfs("full", sizeMB: 1)
        XCTAssertTrue(FileManager.default.createFile(atPath: disk + "/filler", contents: nil))
        let filler = FileHandle(forWritingAtPath: disk + "/filler")!
        while (try? filler.write(contentsOf: Data(repeating: 0x5A, count: 4096))) != nil {}
        try? filler.close()
        let db = disk + "/vigil.db"
        let broker = try Broker()
        let http = freePort()
        let daemon = try startDaemon(writeConfig(db: db, broker: broker, http: http))
        defer { daemon.stop() }
        XCTAssertTrue(daemon.isRunning, daemon.output)
        let message = daemon.output.split(separator: "\n").first(where: { $0.contains("cannot open the log") }).map(String.init) ?? ""
        XCTAssertTrue(message.contains(db), "the message names the file:\n\(daemon.output)")
        XCTAssertTrue(message.contains("free space there"), "the message says what to do:\n\(daemon.output)")
        let health = httpGet("http://127.0.0.1:\(http)/healthz")
        XCTAssertEqual(health.status, 503, health.body)

        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let frames = 200
        publish(pub, frames, prefix: "full")
        XCTAssertEqual(rowCount(db: db), 0)
        try FileManager.default.removeItem(atPath: disk + "/filler")
        let t0 = Date()
        XCTAssertTrue(waitUntil(timeout: 20) { self.rowCount(db: db) == frames }, "rows \(rowCount(db: db))\n\(daemon.output)")
        let secondsToStore = -t0.timeIntervalSinceNow
        XCTAssertTrue(waitUntil(timeout: 10) { httpGet("http://127.0.0.1:\(http)/healthz").status == 200 }, httpGet("http://127.0.0.1:\(http)/healthz").body)
        XCTAssertEqual(daemon.stop(), 0)
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(stopped["detections"], frames, daemon.output)
        XCTAssertEqual(stopped["rows not stored"] ?? 0, 0, daemon.output)
        XCTAssertEqual(integrity(db: db), "ok")
        report("full disk at start: \(message.drop { $0 != "s" }.prefix(260))...; /healthz \(health.status); "
               + "\(frames) frames held in memory, all stored \(fmt(secondsToStore, 2)) s after the filler was deleted")
    }
}
