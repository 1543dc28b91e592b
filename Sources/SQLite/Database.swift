import CSQLite
import Foundation

/// An error from SQLite, with the operation and SQL that caused it.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The primary result code (`SQLITE_FULL`, `SQLITE_BUSY`, ...).
    public let code: Int32
    public let extendedCode: Int32
    public let message: String
    public let operation: String
    public let sql: String?

    /// The primary result code as a value to `switch` on; nil for a code SQLite may add later.
    public var result: SQLiteResultCode? { SQLiteResultCode(rawValue: code) }

    public var isFull: Bool { result == .full }
    public var isBusy: Bool { result == .busy || result == .locked }
    public var isConstraint: Bool { result == .constraint }
    public var isReadOnly: Bool { result == .readOnly }
    public var isCorrupt: Bool { result == .corrupt || result == .notADatabase }
    public var isCantOpen: Bool { result == .cantOpen }

    public var description: String {
        var s = "SQLite \(operation) failed: \(message) (code \(extendedCode))"
        if let sql { s += " in: \(sql)" }
        return s
    }
}

/// SQLite's primary result codes (https://sqlite.org/rescode.html), the low byte of every
/// extended code: what callers `switch` on instead of comparing numbers.
public enum SQLiteResultCode: Int32, Sendable {
    case error = 1, `internal`, permission, abort, busy, locked, noMemory, readOnly, interrupt, ioError,
         corrupt, notFound, full, cantOpen, `protocol`, empty, schema, tooBig, constraint, mismatch,
         misuse, noLargeFile, authorization, format, range, notADatabase, notice, warning
}

/// Turns a SQLite status into a typed error; the one place C status codes are read.
@inline(__always)
func check(_ rc: Int32, _ db: OpaquePointer?, _ operation: @autoclosure () -> String,
           sql: String? = nil) throws {
    if rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE { return }
    let msg = db.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        ?? String(cString: sqlite3_errstr(rc))
    let ext = db.map { sqlite3_extended_errcode($0) } ?? rc
    throw SQLiteError(code: rc & 0xff, extendedCode: ext, message: msg, operation: operation(), sql: sql)
}

/// A value bound to or read from a statement.
public enum SQLValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public var int: Int64? {
        switch self {
        case .integer(let v): return v
        case .real(let v): return Int64(v)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .integer(let v): return Double(v)
        case .real(let v): return v
        default: return nil
        }
    }
    public var string: String? {
        if case .text(let s) = self { return s }
        return nil
    }
    public var isNull: Bool { self == .null }
}

/// One SQLite connection. Not thread-safe by design: the owner confines it to one
/// queue or thread (the store's writer queue, a vigilctl command).
public final class Database {
    public enum Mode: Sendable { case readWrite, readOnly }

    let handle: OpaquePointer
    public let path: String

    /// Opens (creating when read-write) the database at `path`.
    public init(path: String, mode: Mode = .readWrite, busyTimeoutMs: Int32 = 5000) throws {
        var db: OpaquePointer?
        let flags: Int32 = (mode == .readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        if rc != SQLITE_OK {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc & 0xff, extendedCode: rc, message: message,
                              operation: "open \(path)", sql: nil)
        }
        self.handle = db!
        self.path = path
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMs)
    }

    deinit {
        // close_v2 defers the close until every statement is finalized, so a
        // statement outliving its database cannot crash.
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &err)
        if let err { sqlite3_free(err) }
        try check(rc, handle, "execute", sql: sql)
    }

    /// Prepares a statement for repeated use.
    public func prepare(_ sql: String) throws -> Statement {
        try Statement(database: self, sql: sql)
    }

    /// Runs a query and returns all rows (for small results: pragmas, reports).
    public func query(_ sql: String, _ bindings: [SQLValue] = []) throws -> [[SQLValue]] {
        let st = try prepare(sql)
        try st.bind(bindings)
        var rows: [[SQLValue]] = []
        while try st.step() { rows.append(st.row()) }
        return rows
    }

    /// Runs a query and returns the first column of the first row.
    public func scalar(_ sql: String, _ bindings: [SQLValue] = []) throws -> SQLValue {
        try query(sql, bindings).first?.first ?? .null
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    public var userVersion: Int {
        get { Int((try? scalar("PRAGMA user_version").int) ?? 0) }
    }
    public func setUserVersion(_ v: Int) throws { try execute("PRAGMA user_version = \(v)") }

    public var changes: Int { Int(sqlite3_changes(handle)) }
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    public var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }

    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }
}

/// A prepared statement, reset and rebound for each use.
public final class Statement {
    let handle: OpaquePointer
    // Held so the connection outlives its statements.
    let database: Database
    public let sql: String

    init(database: Database, sql: String) throws {
        var st: OpaquePointer?
        let rc = sqlite3_prepare_v3(database.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &st, nil)
        try check(rc, database.handle, "prepare", sql: sql)
        guard let st else {
            throw SQLiteError(code: SQLITE_MISUSE, extendedCode: SQLITE_MISUSE, message: "empty statement",
                              operation: "prepare", sql: sql)
        }
        self.handle = st
        self.database = database
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    /// Resets the statement and binds positional parameters (1-based in SQL, 0-based here).
    public func bind(_ values: [SQLValue]) throws {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(handle, idx)
            case .integer(let x): rc = sqlite3_bind_int64(handle, idx, x)
            case .real(let x): rc = sqlite3_bind_double(handle, idx, x)
            case .text(let s): rc = sqlite3_bind_text(handle, idx, s, -1, csqlite_transient())
            case .blob(let b):
                rc = b.withUnsafeBytes { sqlite3_bind_blob(handle, idx, $0.baseAddress, Int32($0.count), csqlite_transient()) }
            }
            try check(rc, database.handle, "bind parameter \(idx)", sql: sql)
        }
    }

    /// Advances; true while a row is available.
    public func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        // Reset so the statement is usable again and the error is reported once.
        sqlite3_reset(handle)
        try check(rc, database.handle, "step", sql: sql)
        return false
    }

    /// Binds, runs to completion, and resets: for INSERT/UPDATE/DELETE.
    public func run(_ values: [SQLValue] = []) throws {
        try bind(values)
        while try step() {}
        sqlite3_reset(handle)
    }

    public var columnCount: Int { Int(sqlite3_column_count(handle)) }
    public func columnName(_ i: Int) -> String { String(cString: sqlite3_column_name(handle, Int32(i))) }

    public func column(_ i: Int) -> SQLValue {
        let idx = Int32(i)
        switch sqlite3_column_type(handle, idx) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, idx))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, idx))
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(handle, idx)))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(handle, idx))
            guard n > 0, let p = sqlite3_column_blob(handle, idx) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default: return .null
        }
    }

    public func row() -> [SQLValue] { (0..<columnCount).map(column) }
}
