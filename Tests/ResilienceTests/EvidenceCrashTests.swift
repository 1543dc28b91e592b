import Foundation
import SQLite
import TestSupport
import VigilCore
import VigilTools
import XCTest

/// Evidence under an alert storm and SIGKILL (issue 21): the cap holds, every committed
/// evidence row names a complete archive at every moment (also right after a kill, before
/// any cleanup), and a restart keeps all of it except what eviction counted. An alert
/// killed while its capture still waited for its `after_s` gets its evidence after the
/// restart, from the journal's frames.
final class EvidenceCrashTests: ResilienceCase {
    func config(port: Int, evidenceMB: Double = 1.5, beforeSeconds: Double = 0.5, afterSeconds: Double = 0.1) -> String {
        dir.write("vigil.json", """
            {
              "node": "res",
              "mqtt": { "host": "127.0.0.1", "port": \(port), "client_id": "vigild-ev-\(UUID().uuidString.prefix(6))", "keepalive_s": 5 },
              "storage": { "path": "\(dbPath)", "commit_interval_ms": 50, "evidence_mb": \(evidenceMB) },
              "models": { "bright": { "path": "\(Paths.fixture("brightness.onnx"))" } },
              "pipelines": [
                { "name": "camera", "topic": "sensors/{device}/camera", "format": "gray8", "width": 96, "height": 72, "model": "bright",
                  "evidence": { "before_s": \(beforeSeconds), "after_s": \(afterSeconds) },
                  "alert": { "labels": ["bright"], "min_score": 0.5, "clear_below": 0.3, "cooldown_s": 0 } }
              ]
            }
            """)
    }

    /// Noise frames (they do not compress, so archives are ~7 KB a frame): bright every other frame.
    static func frame(_ i: Int, bright: Bool) -> [UInt8] {
        var x = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<(96 * 72)).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return bright ? UInt8(180 + x % 70) : UInt8(x % 40)
        }
    }

    /// Rows whose archive is missing, of the wrong size, or not ended as a tar archive ends.
    func badRows() -> [String] {
        query("SELECT alert_uuid, file, bytes FROM evidence").compactMap { r -> String? in
            guard let uuid = r[0].string, let file = r[1].string, let bytes = r[2].int else { return "?" }
            guard let data = FileManager.default.contents(atPath: file) else { return "\(uuid): no file" }
            guard data.count == Int(bytes) else { return "\(uuid): \(data.count) bytes, row says \(bytes)" }
            guard data.count >= 1024, data.suffix(1024).allSatisfy({ $0 == 0 }) else { return "\(uuid): not a whole archive" }
            return nil
        }
    }

    func evidenceBytes() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.file("evidence"))) ?? []).reduce(0) {
            $0 + (((try? FileManager.default.attributesOfItem(atPath: dir.file("evidence/" + $1)))?[.size] as? Int) ?? 0)
        }
    }

    /// The gap the storm leaves open: an alert raised less than `after_s` before a SIGKILL has
    /// its row committed while its capture still waits for the input after it. After the
    /// restart the journal replays those frames as history, and they give the alert its
    /// evidence: every frame byte-exact, once (another restart writes nothing again).
    func testAnAlertKilledWithinItsAfterSecondsGetsItsEvidenceFromTheJournalOnRestart() throws {
        let broker = try Broker()
        let path = config(port: broker.port, evidenceMB: 8, beforeSeconds: 2, afterSeconds: 3)
        var daemon = try startDaemon(path)
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        // 8 dark frames, the bright one that raises the alert, 3 dark ones after it, 100 ms apart.
        let frames = (0..<12).map { EvidenceCrashTests.frame($0, bright: $0 == 8) }
        ResilienceCase.paced(rate: 10, count: frames.count) { i in _ = try? pub.publish("sensors/cam1/camera", frames[i]) }
        XCTAssertTrue(waitUntil(timeout: 10) {
            self.rowCount() == frames.count && self.int("SELECT count(*) FROM alerts WHERE state = 'raised'") == 1
        }, daemon.output)
        let uuid = try XCTUnwrap(query("SELECT uuid FROM alerts WHERE state = 'raised'").first?.first?.string)
        XCTAssertEqual(int("SELECT count(*) FROM evidence"), 0, "the capture still waits for the 3 s after the trigger")
        daemon.signal(SIGKILL)
        _ = daemon.stop(SIGKILL, timeout: 5)

        daemon = try startDaemon(path, log: "vigild-1.log")
        XCTAssertTrue(waitUntil(timeout: 20) { self.int("SELECT count(*) FROM evidence WHERE alert_uuid = '\(uuid)'") == 1 },
                      "alert \(uuid): no evidence after the restart\n\(daemon.output)")
        let file = try XCTUnwrap(query("SELECT file FROM evidence WHERE alert_uuid = '\(uuid)'").first?.first?.string)
        let entries = try XCTUnwrap(Tar.entries(Array(try XCTUnwrap(FileManager.default.contents(atPath: file)))), file)
        XCTAssertEqual(entries.first?.name, "alert.json")
        XCTAssertTrue(String(decoding: entries.first?.bytes ?? [], as: UTF8.self).contains(uuid))
        let pngs = entries.filter { $0.name.hasSuffix(".png") }
        let names = (0..<12).map { String(format: "frame-%02d", $0) + ($0 == 8 ? "-trigger" : $0 == 7 ? "-reference" : "") + ".png" }
        XCTAssertEqual(pngs.map(\.name), names, "the 2 s before and the 3 s after the trigger, as the journal held them")
        for (png, sent) in zip(pngs, frames) { XCTAssertEqual(decodeGreyPNG(png.bytes)?.pixels, sent, png.name) }
        let inode = { (try? FileManager.default.attributesOfItem(atPath: file))?[.systemFileNumber] as? Int }
        let first = inode()

        // Once: a clean stop, and a restart that replays the same history, write nothing again.
        XCTAssertEqual(daemon.stop(), 0)
        daemon = try startDaemon(path, log: "vigild-2.log")
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(int("SELECT count(*) FROM evidence"), 1)
        XCTAssertEqual(inode(), first, "the archive is the one written after the first restart")
        XCTAssertEqual(int("SELECT value FROM meta WHERE key = 'dropped_evidence'"), 0)
        report("evidence of an alert killed within its after_s: kept after the restart, \(pngs.count) frames byte-exact from the journal, written once over 2 restarts")
    }

    func testSIGKILLDuringAnAlertStormLosesNoCommittedEvidenceAndReferencesNoHalfFile() throws {
        let broker = try Broker()
        let path = config(port: broker.port)
        var daemon = try startDaemon(path)
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        var sent = 0
        var kills = 0
        var checkedRows = 0
        var lostUncounted = 0
        for round in 0..<3 {
            // A storm: 12 cameras flipping dark/bright at 5 frames/s, every bright frame raises an alert (30 a second).
            let stop = StopFlag()
            let publisher = Worker { [sent] in
                ResilienceCase.paced(rate: 60, count: 100_000, stop: stop) { i in
                    let n = sent + i
                    _ = try? pub.publish("sensors/cam\(n % 12)/camera", EvidenceCrashTests.frame(n, bright: (n / 12) % 2 == 1))
                }
            }
            Thread.sleep(forTimeInterval: 2.5 + Double(round) * 0.7)   // the point: the storm runs this long before the kill
            // What is committed now, then the kill a moment later, in the middle of writes.
            // The count first: an eviction between the two reads then counts a row the snapshot
            // no longer has (harmless), never misses one it has (read the other way round, a row
            // evicted in between looked lost: seen once in a full run).
            let droppedBefore = int("SELECT value FROM meta WHERE key = 'dropped_evidence'")
            let before = Set(query("SELECT alert_uuid FROM evidence").compactMap { $0.first?.string })
            daemon.signal(SIGKILL)
            _ = daemon.stop(SIGKILL, timeout: 5)
            kills += 1
            stop.set()
            publisher.join()
            sent += 100_000
            // Right after the kill, before vigild cleans anything: no row names a half-written file.
            let bad = badRows()
            XCTAssertEqual(bad, [], "round \(round): rows naming incomplete archives right after SIGKILL")
            checkedRows += query("SELECT count(*) FROM evidence").first?.first?.int.map { Int($0) } ?? 0

            daemon = try startDaemon(path, log: "vigild-\(round).log")
            XCTAssertTrue(waitUntil(timeout: 10) { self.badRows().isEmpty })
            let after = Set(query("SELECT alert_uuid FROM evidence").compactMap { $0.first?.string })
            let droppedAfter = int("SELECT value FROM meta WHERE key = 'dropped_evidence'")
            let gone = before.subtracting(after).count
            // Evicted after the snapshot (by the writes in flight, or by the restart) is counted; nothing else goes.
            lostUncounted += max(0, gone - (droppedAfter - droppedBefore))
            XCTAssertLessThanOrEqual(gone, droppedAfter - droppedBefore, "round \(round): \(gone) committed archives gone, \(droppedAfter - droppedBefore) counted")
            let temps = ((try? FileManager.default.contentsOfDirectory(atPath: dir.file("evidence"))) ?? []).filter { $0.hasSuffix(".tmp") }
            XCTAssertEqual(temps, [], "temporary files are cleaned at start")
            XCTAssertLessThanOrEqual(evidenceBytes(), 1_572_864, "storage.evidence_mb holds")
            XCTAssertGreaterThan(after.count, 0)
        }
        _ = daemon.stop()
        XCTAssertEqual(badRows(), [])
        let rows = int("SELECT count(*) FROM evidence")
        let dropped = int("SELECT value FROM meta WHERE key = 'dropped_evidence'")
        let raised = int("SELECT count(*) FROM alerts WHERE state = 'raised'")
        XCTAssertGreaterThan(dropped, 0, "the storm passed the cap")
        XCTAssertLessThanOrEqual(rows + dropped, raised, "no alert has evidence twice")
        report("evidence under SIGKILL: \(kills) kills during a storm of \(raised) raised alerts; evidence kept \(rows), evicted and counted \(dropped), "
               + "on disk \(evidenceBytes()) bytes (cap 1572864); rows checked right after the kills \(checkedRows), naming incomplete files 0, lost uncounted \(lostUncounted); "
               + "raised alerts with neither evidence nor a count \(raised - rows - dropped)")
    }
}
