import Foundation
import MQTT
import SQLite
import Sockets
import TestSupport
import XCTest
@testable import VigilCore

/// Issue 14: the intake journal, the redelivery filter and derived row ids.
final class IntakeJournalTests: XCTestCase {
    var dir: TempDir!
    override func setUp() { dir = TempDir("vigil-intake") }
    override func tearDown() { dir.remove() }

    func append(_ j: IntakeJournal, _ topic: String, _ payload: [UInt8], mid: Int32 = 0, at: Double = 1000) throws -> UInt64 {
        try j.append(topic: topic, payload: payload, mid: mid, receivedAt: at,
                     hash: FrameHash.frame(topic: topic, payload: payload))
    }

    func testEntriesComeBackInOrderWithTheirBytesAndRetiredMarks() throws {
        let path = dir.file("intake")
        do {
            let j = try IntakeJournal(directory: path, durability: .process, maxBytes: 64 << 20)
            _ = j.recover(retired: [])
            for i in 0..<100 {
                let seq = try append(j, "s/d\(i % 3)/x", Array("frame \(i)".utf8) + [0, 255], mid: Int32(i + 1), at: Double(i) + 0.25)
                XCTAssertEqual(seq, UInt64(i + 1))
            }
        }
        let j = try IntakeJournal(directory: path, durability: .process, maxBytes: 64 << 20)
        let r = j.recover(retired: Set(1...40))
        var entries: [IntakeJournal.Entry] = []
        r.replay { entries.append($0) }
        XCTAssertEqual(entries.count, 100)
        XCTAssertEqual(r.pending, 60)
        XCTAssertEqual(r.history, 40)
        XCTAssertEqual(r.tornBytes, 0)
        for (i, e) in entries.enumerated() {
            XCTAssertEqual(e.seq, UInt64(i + 1))
            XCTAssertEqual(e.topic, "s/d\(i % 3)/x")
            XCTAssertEqual(e.payload, Array("frame \(i)".utf8) + [0, 255])
            XCTAssertEqual(e.mid, Int32(i + 1))
            XCTAssertEqual(e.receivedAt, Double(i) + 0.25)
            XCTAssertEqual(e.retired, i < 40)
            XCTAssertEqual(e.hash, FrameHash.frame(topic: e.topic, payload: e.payload))
        }
        XCTAssertEqual(try append(j, "s/a/x", [1]), 101, "numbering goes on after a restart")
        XCTAssertEqual(j.pending.entries, 61)
    }

    func testATornRecordAtTheEndIsCutAndTheRestKept() throws {
        let path = dir.file("intake")
        do {
            let j = try IntakeJournal(directory: path, durability: .power, maxBytes: 64 << 20)
            _ = j.recover(retired: [])
            for i in 0..<10 { _ = try append(j, "s/d/x", [UInt8](repeating: UInt8(i), count: 100)) }
        }
        let seg = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: path).first { $0.hasSuffix(".seg") })
        let file = path + "/" + seg
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
        try AppendFile.truncate(file, to: size - 30)          // the last record half written
        var bytes = [UInt8](FileManager.default.contents(atPath: file)!)
        bytes[2 * 145 + 60] ^= 0xFF                              // and a flipped byte in the third record's payload (records are 145 bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let j = try IntakeJournal(directory: path, durability: .process, maxBytes: 64 << 20)
        let r = j.recover(retired: [])
        var seqs: [UInt64] = []
        r.replay { seqs.append($0.seq) }
        XCTAssertEqual(seqs, [1, 2], "recovery stops at the first record that does not check out")
        XCTAssertGreaterThan(r.tornBytes, 0)
        XCTAssertEqual(try append(j, "s/d/x", [7]), 3, "the next entry follows the last good one")
    }

    func testRetiredSegmentsAreDeletedButTheNewestIsKeptAsHistory() throws {
        let path = dir.file("intake")
        let j = try IntakeJournal(directory: path, durability: .process, maxBytes: 4 << 20, segmentBytes: 64 << 10)
        _ = j.recover(retired: [])
        let payload = [UInt8](repeating: 1, count: 1000)
        var seqs: [UInt64] = []
        for _ in 0..<400 { seqs.append(try append(j, "s/d/x", payload)) }
        let segments = { (try? FileManager.default.contentsOfDirectory(atPath: path))?.filter { $0.hasSuffix(".seg") }.count ?? 0 }
        XCTAssertGreaterThanOrEqual(segments(), 6, "400 KB in 64 KB segments")
        let pruned = Locked<UInt64>(0)
        j.onPrune { v in pruned.with { $0 = v } }
        j.retire(Array(seqs[0..<390]))
        // Sealed, fully retired segments are gone but one; the active one (entries 391-400 unretired) stays.
        XCTAssertEqual(segments(), 2)
        XCTAssertEqual(j.pending.entries, 10)
        XCTAssertGreaterThan(pruned.get, 1, "the store is told which marks it may forget")
        let again = try IntakeJournal(directory: path, durability: .process, maxBytes: 4 << 20)
        let r = again.recover(retired: Set(1...390))
        var entries: [IntakeJournal.Entry] = []
        r.replay { entries.append($0) }
        XCTAssertEqual(entries.filter { !$0.retired }.map(\.seq), Array(391...400))
        XCTAssertGreaterThan(entries.filter(\.retired).count, 0, "history to rebuild stream state from")
    }

    func testAppendWaitsWhileUnretiredFramesPassTheCapAndGoesOnWhenRetired() throws {
        let j = try IntakeJournal(directory: dir.file("intake"), durability: .process, maxBytes: 1 << 20, segmentBytes: 64 << 10)
        _ = j.recover(retired: [])
        let payload = [UInt8](repeating: 2, count: 10_000)
        var seqs: [UInt64] = []
        while j.pending.bytes <= 1 << 20 { seqs.append(try append(j, "s/d/x", payload)) }   // the append that passes the cap still goes
        let done = Locked(false)
        let hash = FrameHash.frame(topic: "s/d/x", payload: payload)
        let t = Thread { _ = try? j.append(topic: "s/d/x", payload: payload, mid: 0, receivedAt: 1, hash: hash); done.with { $0 = true } }
        t.start()
        Thread.sleep(forTimeInterval: 0.3)   // the point: still blocked after 0.3 s (nothing to wait on)
        XCTAssertFalse(done.get, "the append waits for room")
        j.retire(seqs)
        XCTAssertTrue(waitUntil(timeout: 5) { done.get }, "retiring makes room")
    }

    func testTheRedeliveryFilterOnlyMatchesRightAfterAConnect() {
        let f = RedeliveryFilter(window: 10)
        XCTAssertFalse(f.isRedelivery(mid: 7, qos: 1, hash: 42, now: 100))
        XCTAssertFalse(f.isRedelivery(mid: 7, qos: 1, hash: 42, now: 101), "outside the window a repeat is a new message")
        f.connected(now: 200)
        XCTAssertTrue(f.isRedelivery(mid: 7, qos: 1, hash: 42, now: 201), "same id and bytes after a reconnect: a resend")
        XCTAssertFalse(f.isRedelivery(mid: 7, qos: 1, hash: 100, now: 202), "same id, other bytes: a new message")
        XCTAssertFalse(f.isRedelivery(mid: 8, qos: 0, hash: 42, now: 202), "QoS 0 is never resent")
        f.remember(mid: 9, hash: 5)
        XCTAssertTrue(f.isRedelivery(mid: 9, qos: 1, hash: 5, now: 203), "entries remembered from the journal count")
        XCTAssertFalse(f.isRedelivery(mid: 9, qos: 1, hash: 5, now: 250), "the window closes")
    }

    func testDerivedRowIDsAreStableVersion7AndSpread() {
        let a = RowID.derived(ts: 1_700_000_000.123, identity: 99)
        XCTAssertEqual(a, RowID.derived(ts: 1_700_000_000.123, identity: 99))
        XCTAssertNotEqual(a, RowID.derived(ts: 1_700_000_000.123, identity: 100))
        XCTAssertEqual(Array(a)[14], "7", "version 7")
        XCTAssertTrue("89ab".contains(Array(a)[19]), "RFC 9562 variant")
        XCTAssertTrue(a.hasPrefix(String(format: "%08llx", UInt64(1_700_000_000_123) >> 16)), "time bits first: rows sort by ts")
        let many = Set((1...10_000).map { RowID.derived(ts: 5, identity: FrameHash.combine(12345, UInt64($0))) })
        XCTAssertEqual(many.count, 10_000)
    }

    func testTheSameFrameGivesTheSameDetectionAndAlertUUIDs() throws {
        // What makes a replayed or redelivered frame one row: the engine derives the uuid from the frame.
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "t": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "p", "topic": "s/{device}/x", "format": "f32le", "model": "t",
                               "alert": { "labels": ["high"], "min_score": 0.0 } } ] }
            """.utf8))
        let p = try Pipeline.build(c.pipelines[0], model: Model(name: "t", path: Paths.fixture("tiny_classifier.onnx")))
        func run() -> [Detection] {
            let sink = Sink()
            let engine = Engine(pipelines: [p], limits: LimitSettings(), counters: Counters()) { sink.add($0) }
            for i in 0..<20 { engine.submit(MQTTMessage(topic: "s/d/x", payload: f32le([Float(i), 1, 2, 3]), receivedAt: 1000 + Double(i))) }
            engine.stop()
            return sink.all
        }
        let first = run(), second = run()
        XCTAssertEqual(first.count, 20)
        XCTAssertEqual(first.map(\.uuid), second.map(\.uuid))
        XCTAssertEqual(Set(first.map(\.uuid)).count, 20)
        let rules = RulesEngine(node: "n", pipelines: [("p", c.pipelines[0].alert!, ["low", "high"])])
        let rules2 = RulesEngine(node: "n", pipelines: [("p", c.pipelines[0].alert!, ["low", "high"])])
        let raised = first.compactMap { rules.evaluate($0) }
        XCTAssertFalse(raised.isEmpty)
        XCTAssertEqual(raised.map(\.uuid), second.compactMap { rules2.evaluate($0) }.map(\.uuid))
    }

    func testTheStoreCommitsRetiredMarksWithTheRowsAndReportsThem() throws {
        var s = StorageSettings()
        s.path = dir.file("vigil.db")
        s.commitIntervalMs = 10_000
        let store = try Store(settings: s)
        let told = Locked<[UInt64]>([])
        store.onRetired { seqs in told.with { $0 += seqs } }
        store.append(Detection(ts: 1, pipeline: "p", device: "d", model: "m", label: "x", score: 1, scores: [("x", 1)], latencyMs: 1))
        store.appendRetired(7)
        store.appendRetired(8)
        XCTAssertEqual(try store.retiredIntakeSeqs(from: 0), [])
        store.flush()
        XCTAssertEqual(told.get, [7, 8])
        XCTAssertEqual(try store.retiredIntakeSeqs(from: 0), [7, 8])
        XCTAssertEqual(try store.retiredIntakeSeqs(from: 8), [8])
        store.pruneRetired(below: 8)
        store.flush()
        XCTAssertEqual(try store.retiredIntakeSeqs(from: 0), [8])
        store.close()
    }
}
