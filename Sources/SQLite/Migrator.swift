/// Applies ordered schema migrations, recording progress in `PRAGMA user_version`.
/// Migration N (1-based) runs once, in its own transaction, when user_version < N.
public struct Migrator: Sendable {
    public let migrations: [String]

    public init(_ migrations: [String]) { self.migrations = migrations }

    public var latestVersion: Int { migrations.count }

    /// Brings `db` up to date; returns the versions applied.
    @discardableResult
    public func migrate(_ db: Database) throws -> [Int] {
        let current = db.userVersion
        if current > migrations.count {
            throw SQLiteError(code: 1, extendedCode: 1,
                              message: "database schema version \(current) is newer than this program knows (\(migrations.count))",
                              operation: "migrate \(db.path)", sql: nil)
        }
        var applied: [Int] = []
        for version in (current + 1)...max(current + 1, migrations.count) where version <= migrations.count {
            try db.transaction {
                try db.execute(migrations[version - 1])
                try db.setUserVersion(version)
            }
            applied.append(version)
        }
        return applied
    }
}
