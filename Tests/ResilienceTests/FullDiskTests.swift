import Foundation
import TestSupport
import XCTest

/// Issue 9, scenario 4: the database on a small tmpfs that fills up under load. vigild keeps
/// running, counts what it drops, and keeps everything again once space returns.
final class FullDiskTests: ResilienceCase {
    var tmpfs: TmpfsMount?

    override func tearDown() {
        tmpfs?.unmount()
        super.tearDown()
    }

    func freeMB(_ path: String) -> Double {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return -1 }
        return Double(s.f_bavail) * Double(s.f_frsize) / 1_048_576
    }

    func testFullDiskDropsAreCountedAndTheDaemonRecovers() throws {
        let disk = dir.file("disk")
        do {
            tmpfs = try TmpfsMount(at: disk, sizeMB: 8)
        } catch let why as TmpfsMount.Unavailable {
            report("full disk: skipped, no tmpfs: \(why)")
            throw XCTSkip("\(why)")
        }
        // Leave about 2 MB for the database, of which storage.min_free_mb keeps 1 MB free.
        let filler = disk + "/filler"
        XCTAssertTrue(FileManager.default.createFile(atPath: filler, contents: Data(repeating: 0xA5, count: 6 << 20)))
        let db = disk + "/vigil.db"
        let broker = try Broker()
        let path = dir.write("vigil.json", """
            {
              "node": "res-node",
              "mqtt": { "host": "127.0.0.1", "port": \(broker.port), "client_id": "vigild-res-disk" },
              "storage": { "path": "\(db)", "commit_interval_ms": 100, "min_free_mb": 1 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" } ]
            }
            """)
        let daemon = try startDaemon(path)
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let published = Locked(0)
        var dropped: Int { int("SELECT value FROM meta WHERE key = 'dropped_detections'", db: db) }
        let rate = 400.0

        // Load until the store starts dropping, then a while longer on the full disk.
        let stop = StopFlag()
        let filling = Worker {
            ResilienceCase.paced(rate: rate, count: 200_000, stop: stop) { i in
                _ = try? pub.publish("sensors/d\(i % 4)/vec", f32le([Float(i % 11), 1, 2, 3]))
                published.with { $0 += 1 }
            }
        }
        let t0 = Date()
        let full = waitUntil(timeout: 90, interval: 0.1) { dropped > 0 }
        let framesUntilFull = published.get
        let secondsUntilFull = -t0.timeIntervalSinceNow
        // A while longer on the full disk: until 1,000 more frames were dropped (2.5 s at 400/s), not a fixed time.
        let firstDropped = dropped
        XCTAssertTrue(!full || waitUntil(timeout: 30, interval: 0.1) { dropped >= firstDropped + 1000 }, "drops stopped at \(dropped)")
        stop.set()
        filling.join()
        XCTAssertTrue(full, "the disk never filled: \(freeMB(disk)) MB free\n\(daemon.output)")
        XCTAssertTrue(waitUntil(timeout: 20) { self.rowCount(db: db) + dropped == published.get },
                      "rows \(rowCount(db: db)) + dropped \(dropped) != frames \(published.get)")
        let droppedWhileFull = dropped
        let rowsWhileFull = rowCount(db: db)
        let freeWhileFull = freeMB(disk)
        XCTAssertTrue(daemon.isRunning, "vigild runs on with a full disk")
        XCTAssertTrue(daemon.output.contains("under storage.min_free_mb"), daemon.output)

        // Space comes back: nothing more is dropped, new frames are kept.
        try FileManager.default.removeItem(atPath: filler)
        let after = 1000
        let recovering = Worker {
            ResilienceCase.paced(rate: rate, count: after) { i in
                _ = try? pub.publish("sensors/after\(i % 4)/vec", f32le([Float(i % 11), 1, 2, 3]))
                published.with { $0 += 1 }
            }
        }
        XCTAssertTrue(waitUntil(timeout: 20) { daemon.output.contains("free on the disk again") }, daemon.output)
        let droppedAtRecovery = dropped
        recovering.join()
        XCTAssertTrue(waitUntil(timeout: 20) { self.int("SELECT count(*) FROM detections WHERE device LIKE 'after%'", db: db) == after },
                      daemon.output)
        XCTAssertEqual(dropped, droppedAtRecovery, "nothing is dropped once space is back")
        XCTAssertTrue(daemon.isRunning)

        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(integrity(db: db), "ok")
        let rows = rowCount(db: db), finalDropped = dropped
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(rows + finalDropped, published.get, "every frame is a row or counted as dropped")
        XCTAssertEqual(stopped["frames"], published.get)
        report("full disk: 8 MB tmpfs, 6 MB filler; dropping began after \(framesUntilFull) frames (\(fmt(secondsUntilFull)) s at \(fmt(rate, 0))/s); "
               + "while full: \(rowsWhileFull) rows kept, \(droppedWhileFull) dropped (meta dropped_detections), \(fmt(freeWhileFull, 2)) MB free; "
               + "filler deleted: \(after) of \(after) new frames stored, dropped stayed \(finalDropped); "
               + "total \(published.get) frames = \(rows) rows + \(finalDropped) dropped; integrity_check ok; still running")
    }
}
