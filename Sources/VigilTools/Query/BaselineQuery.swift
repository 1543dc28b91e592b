import Foundation
import SQLite
import VigilCore

/// `vigilctl baseline`: each device's learned baseline, read from the `baselines` table.
extension LogReader {
    public static let baselineColumns: [Column] = [
        Column("pipeline", .text),
        Column("device", .text),
        Column("status", .text),
        Column("readings", .integer),
        Column("threshold", .real(decimals: 3)),
        Column("stuck", .text),
        Column("updated_at", .time),
        Column("state", .json, inTable: false),
    ]

    /// Baselines of the devices the filter's pipelines and devices match (other filters do not apply).
    public func baselines(_ filter: RowFilter) throws -> ResultTable {
        guard try hasBaselines() else { return ResultTable(columns: LogReader.baselineColumns) }
        var f = RowFilter()
        f.pipelines = filter.pipelines
        f.devices = filter.devices
        let (clause, values) = f.sql(states: false)
        let rows = try query("""
            SELECT pipeline, device,
                   CASE WHEN reset_at IS NOT NULL THEN 'reset asked'
                        WHEN warm = 1 THEN 'ready'
                        ELSE printf('warming %d%%', CAST(warmup * 100 AS INTEGER)) END,
                   readings, threshold, stuck, updated_at, state
            FROM baselines\(clause) ORDER BY pipeline, device
            """, values)
        return ResultTable(columns: LogReader.baselineColumns, rows: rows)
    }

    func hasBaselines() throws -> Bool {
        try !query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'baselines'").isEmpty
    }
}

/// `vigilctl baseline reset`: asks vigild to forget devices' baselines. The one write vigilctl
/// makes: a running vigild reads the request within 2 s, resets the device (a warm-up
/// follows) and clears it; a stopped one deletes the row at its next start.
public enum BaselineReset {
    /// Marks the matching rows; returns the (pipeline, device) pairs marked.
    public static func request(path: String, pipelines: [String], devices: [String],
                               now: Double = Date().timeIntervalSince1970) throws -> [(pipeline: String, device: String)] {
        _ = try LogReader(path: path)   // the same checks and messages as every query
        let db: Database
        do { db = try Database(path: path) } catch {
            throw QueryError("cannot write to \(path) (run as the vigil user, or with sudo): \(error)")
        }
        guard try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'baselines'").isEmpty else { return [] }
        var f = RowFilter()
        f.pipelines = pipelines
        f.devices = devices
        let (clause, values) = f.sql(states: false)
        return try db.transaction {
            let rows = try db.query("SELECT pipeline, device FROM baselines\(clause)", values)
            _ = try db.query("UPDATE baselines SET reset_at = ?\(clause)", [.real(now)] + values)
            return rows.compactMap { r in r[0].string.flatMap { p in r[1].string.map { (p, $0) } } }
        }
    }
}
