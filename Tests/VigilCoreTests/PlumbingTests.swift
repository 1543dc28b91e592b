import Foundation
import SQLite
import Sockets
import TestSupport
@testable import VigilCore
import XCTest

/// The small shared pieces of issue 20: the Mutex box, the syscall helper and its short
/// writes, the hand-made UTC timestamp, rows decoded by column name, typed SQLite codes.
final class PlumbingTests: XCTestCase {
    func testGuardedCountsEveryIncrementFromManyThreads() {
        let n = Guarded(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { n.withLock { $0 += 1 } }
        }
        XCTAssertEqual(n.value, 80_000)
    }

    func testWriteAllFinishesShortWritesThroughAPipe() throws {
        // A pipe holds 64 KiB: a 1 MiB write returns short many times while the reader drains it.
        let pipe = Pipe()
        let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let reader = Guarded(Data())
        let done = DispatchSemaphore(value: 0)
        let handle = pipe.fileHandleForReading
        DispatchQueue.global().async {
            let all = handle.readDataToEndOfFile()
            reader.set(all)
            done.signal()
        }
        try FileDescriptor.writeAll(pipe.fileHandleForWriting.fileDescriptor, bytes)
        try pipe.fileHandleForWriting.close()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(Array(reader.value), bytes)
    }

    func testSyscallThrowsTheTypedErrno() {
        XCTAssertThrowsError(try syscall { open("/nonexistent-\(UUID().uuidString)/x", O_RDONLY) }) { error in
            XCTAssertEqual(error as? Errno, Errno(ENOENT))
        }
        XCTAssertThrowsError(try AppendFile(path: "/nonexistent-\(UUID().uuidString)/x")) { error in
            XCTAssertTrue("\(error)".contains("No such file or directory"), "\(error)")
        }
    }

    func testUTCTimestampMatchesFoundationAcrossLeapYearsAndCenturies() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for t in [0.0, 951_782_400.5, 1_709_164_800.999, 4_107_542_399.25, 1_800_000_000.123, -86_400.0] {
            XCTAssertEqual(UTCTimestamp.string(t), f.string(from: Date(timeIntervalSince1970: t)), "\(t)")
        }
    }

    func testRowsDecodeByColumnNameAndSayWhichColumnIsMissing() throws {
        struct Row: Decodable, Equatable { var name: String; var score: Double?; var n: Int64 }
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t(n INTEGER, name TEXT, score REAL); INSERT INTO t VALUES (1, 'a', NULL), (2, 'b', 0.5)")
        XCTAssertEqual(try db.fetch(Row.self, "SELECT score, name, n FROM t ORDER BY n"),
                       [Row(name: "a", score: nil, n: 1), Row(name: "b", score: 0.5, n: 2)])
        XCTAssertThrowsError(try db.fetch(Row.self, "SELECT name, n FROM t")) { error in
            XCTAssertTrue("\(error)".contains("no column score"), "\(error)")
        }
    }

    func testCloudRecordsKeepTheWireFormat() throws {
        let db = try Database(path: ":memory:")
        try Schema.migrator.migrate(db)
        try db.execute("""
            INSERT INTO alerts(uuid, ts, pipeline, device, state, label, score, severity, actions)
            VALUES ('u1', 12.5, 'p', 'd', 'raised', NULL, 0.75, 'critical', '[{"action":"siren","ok":true}]')
            """)
        let rows = try db.fetch(OutboxRow<CloudAlert>.self, """
            SELECT id, 'alert' AS type, uuid, 'gw' AS node, ts, pipeline, device, state, label, score, severity, actions FROM alerts
            """)
        XCTAssertEqual(try JSONValue(encoding: rows[0].record).serialized,
                       #"{"type":"alert","uuid":"u1","node":"gw","ts":12.5,"pipeline":"p","device":"d","state":"raised","label":null,"score":0.75,"severity":"critical","actions":[{"action":"siren","ok":true}]}"#)
    }

    func testSQLiteErrorsCarryATypedCode() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t(x TEXT UNIQUE); INSERT INTO t VALUES ('a')")
        XCTAssertThrowsError(try db.execute("INSERT INTO t VALUES ('a')")) { error in
            switch (error as? SQLiteError)?.result {
            case .constraint: break
            default: XCTFail("\(error)")
            }
        }
    }
}
