import Foundation
import SQLite
import XCTest

/// The wrapper's questions about the file under a connection (issue 15, items 5 and 8).
final class FileStateTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "vigil-filestate-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func makeLog(_ path: String, rows: Int) throws -> Database {
        let db = try Database(path: path)
        try db.execute("PRAGMA journal_mode = WAL")
        try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT); CREATE INDEX t_s ON t(s)")
        try db.transaction {
            let ins = try db.prepare("INSERT INTO t(s) VALUES (?)")
            for i in 0..<rows { try ins.run([.text("row \(i) " + String(repeating: "x", count: 100))]) }
        }
        return db
    }

    /// A deleted file still takes writes in WAL mode; only `fileHasMoved` tells, and
    /// `copy(to:)` still reads every row (the WAL's too) through the connection.
    func testDeletedFileIsSeenAndItsRowsCanBeCopied() throws {
        let path = dir + "/a.db"
        let db = try makeLog(path, rows: 100)
        XCTAssertFalse(db.fileHasMoved)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        XCTAssertTrue(db.fileHasMoved)
        try db.execute("INSERT INTO t(s) VALUES ('after')")   // succeeds, into the deleted file
        try db.copy(to: path)
        let copy = try Database(path: path, mode: .readOnly)
        XCTAssertEqual(try copy.scalar("SELECT count(*) FROM t").int, 101)
        XCTAssertEqual(try copy.quickCheck(), ["ok"])
    }

    func testReplacedFileIsSeen() throws {
        let path = dir + "/a.db"
        let db = try makeLog(path, rows: 1)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".old")
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        XCTAssertTrue(db.fileHasMoved)
    }

    func testQuickCheckFindsADamagedPage() throws {
        let path = dir + "/a.db"
        do {
            let db = try makeLog(path, rows: 3000)
            XCTAssertEqual(try db.quickCheck(), ["ok"])
            try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let size = try XCTUnwrap((try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue)
        let file = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try file.seek(toOffset: UInt64(size / 2 / 4096 * 4096))
        try file.write(contentsOf: Data(repeating: 0xFF, count: 4096))
        try file.close()
        let db = try Database(path: path)
        let check = try db.quickCheck()
        XCTAssertNotEqual(check, ["ok"])
        XCTAssertLessThanOrEqual(check.count, 5)
    }

    func testReadOnlyConnectionSaysSo() throws {
        let path = dir + "/a.db"
        _ = try makeLog(path, rows: 1)
        XCTAssertFalse(try Database(path: path).isReadOnly)
        XCTAssertTrue(try Database(path: path, mode: .readOnly).isReadOnly)
    }
}
