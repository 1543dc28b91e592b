import CSQLite
import Foundation

/// What a long-lived connection needs to know about the file under it: whether it is still
/// the file at its path, whether it can be written, and whether its pages are sound.
extension Database {
    /// True when the file this connection opened was deleted, renamed or replaced since
    /// (`SQLITE_FCNTL_HAS_MOVED`: SQLite's unix VFS does a `stat` of the path, and answers yes
    /// when nothing is there or another inode is). Writes to a deleted file still succeed in
    /// WAL mode, into a file nobody will ever open again, so only this question reveals it.
    public var fileHasMoved: Bool {
        var moved: Int32 = 0
        let rc = sqlite3_file_control(handle, "main", SQLITE_FCNTL_HAS_MOVED, &moved)
        return rc == SQLITE_OK && moved != 0
    }

    /// True when the connection can only read (a read-only file or file system: SQLite
    /// silently opens such a file read-only even when asked for read-write).
    public var isReadOnly: Bool { sqlite3_db_readonly(handle, "main") == 1 }

    /// `PRAGMA quick_check(maxErrors)`: `["ok"]` for a sound file, else what is wrong (a
    /// damaged page, a broken b-tree). Reads every page, O(size); it skips only the check
    /// that index entries match their rows (`integrity_check` does that too).
    public func quickCheck(maxErrors: Int = 5) throws -> [String] {
        try query("PRAGMA quick_check(\(maxErrors))").compactMap { $0.first?.string }
    }

    /// Writes a compacted copy of the whole database (WAL included) to `path`: `VACUUM INTO`.
    /// It reads through this connection, so it still works when the file was deleted under it.
    public func copy(to path: String) throws {
        try execute("VACUUM INTO '\(path.replacingOccurrences(of: "'", with: "''"))'")
    }
}
