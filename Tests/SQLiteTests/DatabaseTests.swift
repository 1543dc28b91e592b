import Foundation
import SQLite
import XCTest

final class DatabaseTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "vigil-sqlite-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testRoundTripOfEveryValueType() throws {
        let db = try Database(path: dir + "/a.db")
        try db.execute("CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB, n)")
        let ins = try db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)")
        try ins.run([.integer(Int64.max), .real(0.1 + 0.2), .text("héllo \"quoted\" 🙂"), .blob([0, 1, 255]), .null])
        try ins.run([.integer(-1), .real(-.infinity), .text(""), .blob([]), .null])
        let rows = try db.query("SELECT i, r, s, b, n FROM t ORDER BY rowid")
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0], [.integer(Int64.max), .real(0.1 + 0.2), .text("héllo \"quoted\" 🙂"), .blob([0, 1, 255]), .null])
        XCTAssertEqual(rows[1][0], .integer(-1))
        XCTAssertEqual(rows[1][1], .real(-.infinity))
        XCTAssertEqual(rows[1][2], .text(""))
    }

    func testSyntaxErrorCarriesSQL() throws {
        let db = try Database(path: dir + "/a.db")
        XCTAssertThrowsError(try db.prepare("SELEC nothing")) { e in
            let err = e as! SQLiteError
            XCTAssertEqual(err.sql, "SELEC nothing")
            XCTAssertTrue(err.description.contains("syntax error"), err.description)
            XCTAssertTrue(err.description.contains("prepare"), err.description)
        }
    }

    func testConstraintViolationIsTypedAndStatementStaysUsable() throws {
        let db = try Database(path: dir + "/a.db")
        try db.execute("CREATE TABLE t(u TEXT UNIQUE)")
        let ins = try db.prepare("INSERT INTO t VALUES (?)")
        try ins.run([.text("x")])
        XCTAssertThrowsError(try ins.run([.text("x")])) { XCTAssertTrue(($0 as! SQLiteError).isConstraint) }
        try ins.run([.text("y")])
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t").int, 2)
    }

    func testFullDatabaseIsReportedAsFull() throws {
        let db = try Database(path: dir + "/a.db")
        try db.execute("CREATE TABLE t(x BLOB)")
        // A page cap makes SQLite answer SQLITE_FULL exactly as a full disk does.
        try db.execute("PRAGMA max_page_count = 8")
        let ins = try db.prepare("INSERT INTO t VALUES (?)")
        var sawFull = false
        for _ in 0..<100 {
            do { try ins.run([.blob([UInt8](repeating: 7, count: 4000))]) } catch let e as SQLiteError {
                sawFull = e.isFull
                break
            }
        }
        XCTAssertTrue(sawFull)
    }

    func testTransactionRollsBackOnThrow() throws {
        let db = try Database(path: dir + "/a.db")
        try db.execute("CREATE TABLE t(x)")
        struct Boom: Error {}
        XCTAssertThrowsError(try db.transaction {
            try db.execute("INSERT INTO t VALUES (1)")
            throw Boom()
        })
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t").int, 0)
        XCTAssertTrue(db.isAutocommit)
    }

    func testMigratorAppliesOnceInOrderAndRefusesNewerSchema() throws {
        let path = dir + "/m.db"
        let m = Migrator(["CREATE TABLE a(x)", "ALTER TABLE a ADD COLUMN y"])
        do {
            let db = try Database(path: path)
            XCTAssertEqual(try m.migrate(db), [1, 2])
            XCTAssertEqual(try m.migrate(db), [])
            XCTAssertEqual(db.userVersion, 2)
        }
        let db = try Database(path: path)
        XCTAssertThrowsError(try Migrator(["CREATE TABLE a(x)"]).migrate(db)) {
            XCTAssertTrue("\($0)".contains("newer"), "\($0)")
        }
    }

    func testReadOnlyConnectionCannotWrite() throws {
        let path = dir + "/r.db"
        try Database(path: path).execute("CREATE TABLE t(x)")
        let ro = try Database(path: path, mode: .readOnly)
        XCTAssertThrowsError(try ro.execute("INSERT INTO t VALUES (1)")) { XCTAssertTrue(($0 as! SQLiteError).isReadOnly, "\($0)") }
    }

    func testOpeningAMissingDirectoryNamesThePath() {
        XCTAssertThrowsError(try Database(path: dir + "/no/such/dir/x.db")) { e in
            XCTAssertTrue("\(e)".contains("/no/such/dir/x.db"), "\(e)")
        }
    }
}
