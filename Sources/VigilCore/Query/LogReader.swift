import Foundation
import SQLite

/// Why the log could not be read, in words that say what to do.
public struct QueryError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Which rows a query returns. Lists match any of their values; a value with `*` or `?`
/// is a glob (`--device 'cam-*'`).
public struct RowFilter: Sendable, Equatable {
    public var since: Double?
    public var until: Double?
    public var pipelines: [String] = []
    public var devices: [String] = []
    public var labels: [String] = []
    public var minScore: Double?
    /// Alerts only: raised | cleared.
    public var states: [String] = []
    /// Rows with a larger id (tail).
    public var afterID: Int64?

    public init() {}

    /// The WHERE clause (empty or starting with " WHERE") and its bindings.
    func sql(states useStates: Bool) -> (String, [SQLValue]) {
        var terms: [String] = []
        var values: [SQLValue] = []
        if let since { terms.append("ts >= ?"); values.append(.real(since)) }
        if let until { terms.append("ts < ?"); values.append(.real(until)) }
        func list(_ column: String, _ items: [String]) {
            guard !items.isEmpty else { return }
            let parts = items.map { $0.contains(where: { $0 == "*" || $0 == "?" }) ? "\(column) GLOB ?" : "\(column) = ?" }
            terms.append("(" + parts.joined(separator: " OR ") + ")")
            values += items.map { .text($0) }
        }
        list("pipeline", pipelines)
        list("device", devices)
        list("label", labels)
        if useStates { list("state", states) }
        if let minScore { terms.append("score >= ?"); values.append(.real(minScore)) }
        if let afterID { terms.append("id > ?"); values.append(.integer(afterID)) }
        return (terms.isEmpty ? "" : " WHERE " + terms.joined(separator: " AND "), values)
    }
}

/// Read-only access to the daemon's SQLite log. A WAL reader never blocks the writer, and
/// each query is one short read transaction, so checkpoints are never held up for long.
public final class LogReader {
    public let path: String
    let db: Database

    public static let detectionColumns: [Column] = [
        Column("id", .integer, inTable: false),
        Column("ts", .time),
        Column("pipeline", .text),
        Column("device", .text),
        Column("model", .text, inTable: false),
        Column("label", .text),
        Column("score", .real(decimals: 3)),
        Column("latency_ms", .real(decimals: 2)),
        Column("scores", .json, inTable: false),
        Column("uuid", .text, inTable: false),
        Column("synced_at", .time, inTable: false),
    ]

    public static let alertColumns: [Column] = [
        Column("id", .integer, inTable: false),
        Column("ts", .time),
        Column("pipeline", .text),
        Column("device", .text),
        Column("state", .text),
        Column("label", .text),
        Column("score", .real(decimals: 3)),
        Column("severity", .text),
        Column("actions", .json, maxWidth: 60),
        Column("uuid", .text, inTable: false),
        Column("synced_at", .time, inTable: false),
    ]

    /// Opens `path` read-only. A missing file, an unreadable one and a file that is not a
    /// Vigil log each get their own message.
    public init(path: String) throws {
        self.path = path
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw QueryError("no database at \(path): vigild creates it on first start (set --db, or storage.path in --config)")
        }
        guard !isDir.boolValue else { throw QueryError("\(path) is a directory, not a database") }
        guard fm.isReadableFile(atPath: path) else {
            throw QueryError("cannot read \(path): permission denied (run as the vigil user, or with sudo)")
        }
        do {
            db = try LogReader.open(path)
        } catch let e as QueryError {
            throw e
        } catch {
            throw QueryError("cannot open \(path): \(error)")
        }
        let version = db.userVersion
        let tables = Set(((try? db.query("SELECT name FROM sqlite_master WHERE type = 'table'")) ?? []).compactMap { $0.first?.string })
        guard version >= 1, tables.contains("detections"), tables.contains("alerts") else {
            throw QueryError("\(path) is not a Vigil log (no detections/alerts tables, schema version \(version))")
        }
        if version > Schema.migrator.latestVersion {
            // Newer daemon: the columns read here are a stable contract, so carry on.
            log.debug("\(path): schema version \(version) is newer than this vigilctl knows (\(Schema.migrator.latestVersion))")
        }
    }

    /// A read-only WAL connection needs the -shm file, which the daemon keeps while it runs.
    /// When the daemon is stopped and this user cannot create -shm in the folder, the file
    /// is opened immutable instead: safe because without a -wal file nothing is uncommitted.
    static func open(_ path: String) throws -> Database {
        let db = try Database(path: path, mode: .readOnly)
        do {
            _ = try db.scalar("SELECT count(*) FROM sqlite_master")
            return db
        } catch let e as SQLiteError where e.isCantOpen || e.isReadOnly {
            let wal = path + "-wal"
            let walSize = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? nil
            if walSize == nil || walSize == 0 {
                let uri = "file:" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path) + "?immutable=1"
                let im = try Database(path: uri, mode: .readOnly)
                _ = try im.scalar("SELECT count(*) FROM sqlite_master")
                return im
            }
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            throw QueryError("cannot read \(path): its write-ahead log needs \(path)-shm, which \(dir) does not let this user create (run as the vigil user, or with sudo): \(e.message)")
        }
    }

    // MARK: rows

    /// Matching detections, oldest first. With a limit, the newest `limit` rows, and whether more matched.
    public func detections(_ filter: RowFilter, limit: Int?) throws -> (ResultTable, more: Bool) {
        try rows(table: "detections", columns: LogReader.detectionColumns, filter: filter, states: false, limit: limit)
    }

    public func alerts(_ filter: RowFilter, limit: Int?) throws -> (ResultTable, more: Bool) {
        // --min-score reads the alert row's own score (the one that raised or cleared it).
        try rows(table: "alerts", columns: LogReader.alertColumns, filter: filter, states: true, limit: limit)
    }

    func rows(table: String, columns: [Column], filter: RowFilter, states: Bool, limit: Int?) throws -> (ResultTable, more: Bool) {
        let (clause, values) = filter.sql(states: states)
        let names = columns.map(\.name).joined(separator: ", ")
        var sql = "SELECT \(names) FROM \(table)\(clause)"
        if let limit {
            // Newest first to cut at the limit, then turned back to time order.
            sql += " ORDER BY id DESC LIMIT \(limit + 1)"
        } else {
            sql += " ORDER BY id"
        }
        var rows = try query(sql, values)
        var more = false
        if let limit {
            if rows.count > limit { more = true; rows.removeLast(rows.count - limit) }
            rows.reverse()
        }
        return (ResultTable(columns: columns, rows: rows), more)
    }

    /// Streams matching rows in id order to `body` without holding them all (export).
    public func each(table: String, _ filter: RowFilter, _ body: ([SQLValue]) throws -> Void) throws -> ResultTable {
        let isAlerts = table == "alerts"
        let columns = isAlerts ? LogReader.alertColumns : LogReader.detectionColumns
        let (clause, values) = filter.sql(states: isAlerts)
        let st = try db.prepare("SELECT \(columns.map(\.name).joined(separator: ", ")) FROM \(table)\(clause) ORDER BY id")
        try st.bind(values)
        while try st.step() { try body(st.row()) }
        return ResultTable(columns: columns)
    }

    public func maxID(_ table: String) throws -> Int64 {
        try query("SELECT coalesce(max(id), 0) FROM \(table)").first?.first?.int ?? 0
    }

    func query(_ sql: String, _ values: [SQLValue] = []) throws -> [[SQLValue]] {
        do {
            return try db.query(sql, values)
        } catch let e as SQLiteError {
            throw QueryError("cannot read \(path): \(e.message)")
        }
    }

    // MARK: stats

    /// Per pipeline and device over the filter's range: detections, labels, latency percentiles, alerts.
    public func stats(_ filter: RowFilter) throws -> (groups: [GroupStats], total: GroupStats) {
        var groups: [GroupKey: GroupStats] = [:]
        var latencies: [GroupKey: [Double]] = [:]
        var labelCounts: [GroupKey: [String: Int]] = [:]
        let (clause, values) = filter.sql(states: false)
        let st = try db.prepare("SELECT pipeline, device, label, latency_ms, ts FROM detections\(clause)")
        try st.bind(values)
        do {
            while try st.step() {
                let key = GroupKey(pipeline: st.column(0).string ?? "", device: st.column(1).string ?? "")
                let ts = st.column(4).double ?? 0
                var g = groups[key] ?? GroupStats(pipeline: key.pipeline, device: key.device)
                g.detections += 1
                g.first = min(g.first ?? ts, ts)
                g.last = max(g.last ?? ts, ts)
                groups[key] = g
                if let l = st.column(3).double { latencies[key, default: []].append(l) }
                labelCounts[key, default: [:]][st.column(2).string ?? "", default: 0] += 1
            }
        } catch let e as SQLiteError {
            throw QueryError("cannot read \(path): \(e.message)")
        }
        // Alerts: the label/min-score filters describe detections, so only range, pipeline and device apply.
        var alertFilter = RowFilter()
        alertFilter.since = filter.since; alertFilter.until = filter.until
        alertFilter.pipelines = filter.pipelines; alertFilter.devices = filter.devices
        let (aClause, aValues) = alertFilter.sql(states: false)
        let raisedClause = aClause.isEmpty ? " WHERE state = 'raised'" : aClause + " AND state = 'raised'"
        for row in try query("SELECT pipeline, device, count(*) FROM alerts\(raisedClause) GROUP BY pipeline, device", aValues) {
            let key = GroupKey(pipeline: row[0].string ?? "", device: row[1].string ?? "")
            groups[key, default: GroupStats(pipeline: key.pipeline, device: key.device)].alerts = Int(row[2].int ?? 0)
        }
        func finish(_ g: inout GroupStats, _ latencies: [Double], _ labels: [String: Int]) {
            let sorted = latencies.sorted()
            g.p50 = Percentile.nearestRank(sorted, 50)
            g.p95 = Percentile.nearestRank(sorted, 95)
            g.p99 = Percentile.nearestRank(sorted, 99)
            g.maxLatency = sorted.last
            g.labels = labels.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        var total = GroupStats(pipeline: "(all)", device: "")
        var allLabels: [String: Int] = [:]
        for (key, var g) in groups {
            finish(&g, latencies[key] ?? [], labelCounts[key] ?? [:])
            groups[key] = g
            total.detections += g.detections
            total.alerts += g.alerts
            if let f = g.first { total.first = min(total.first ?? f, f) }
            if let l = g.last { total.last = max(total.last ?? l, l) }
            for (l, c) in labelCounts[key] ?? [:] { allLabels[l, default: 0] += c }
        }
        finish(&total, latencies.values.flatMap { $0 }, allLabels)
        return (groups.values.sorted { ($0.pipeline, $0.device) < ($1.pipeline, $1.device) }, total)
    }

    // MARK: sync

    /// What the uplink has left to do and how it last went (the `meta` keys the store writes).
    public func syncStatus(now: Double = Date().timeIntervalSince1970) throws -> SyncStatus {
        var s = SyncStatus()
        s.detections = Int(try query("SELECT count(*) FROM detections").first?.first?.int ?? 0)
        s.alerts = Int(try query("SELECT count(*) FROM alerts").first?.first?.int ?? 0)
        s.unsyncedDetections = Int(try query("SELECT count(*) FROM detections WHERE synced_at IS NULL").first?.first?.int ?? 0)
        s.unsyncedAlerts = Int(try query("SELECT count(*) FROM alerts WHERE synced_at IS NULL").first?.first?.int ?? 0)
        let oldest = try query("""
            SELECT min(t) FROM (SELECT min(ts) AS t FROM detections WHERE synced_at IS NULL
                                UNION ALL SELECT min(ts) FROM alerts WHERE synced_at IS NULL)
            """)
        s.oldestUnsynced = oldest.first?.first?.double
        var meta: [String: String] = [:]
        if (try? db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").int) == 1 {
            for row in try query("SELECT key, value FROM meta") {
                if let k = row[0].string { meta[k] = row[1].string ?? row[1].double.map { "\($0)" } }
            }
        }
        s.lastSyncAt = meta["last_sync_at"].flatMap(SyncStatus.parseTime)
        s.lastSyncError = meta["last_sync_error"].flatMap { $0.isEmpty ? nil : $0 }
        s.droppedDetections = meta["dropped_detections"].flatMap { Int($0) ?? Double($0).map { Int($0) } } ?? 0
        s.droppedAlerts = meta["dropped_alerts"].flatMap { Int($0) ?? Double($0).map { Int($0) } } ?? 0
        let pageSize = try query("PRAGMA page_size").first?.first?.int ?? 0
        let pages = try query("PRAGMA page_count").first?.first?.int ?? 0
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? nil
        s.databaseBytes = Int(pageSize * pages) + (wal ?? 0)
        s.now = now
        return s
    }
}

struct GroupKey: Hashable { let pipeline: String; let device: String }

/// Nearest-rank percentiles: the p-th percentile of N sorted values is the value at rank
/// ceil(p/100 × N) (1-based), so it is always one of the observed values.
public enum Percentile {
    public static func nearestRank(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}

/// One pipeline and device in `vigilctl stats`.
public struct GroupStats: Sendable {
    public var pipeline: String
    public var device: String
    public var detections = 0
    public var labels: [(String, Int)] = []
    public var p50: Double?
    public var p95: Double?
    public var p99: Double?
    public var maxLatency: Double?
    public var alerts = 0
    public var first: Double?
    public var last: Double?

    public init(pipeline: String, device: String) { self.pipeline = pipeline; self.device = device }

    public static let columns: [Column] = [
        Column("pipeline", .text), Column("device", .text), Column("detections", .integer),
        Column("labels", .json, maxWidth: 60),
        Column("p50_ms", .real(decimals: 2)), Column("p95_ms", .real(decimals: 2)), Column("p99_ms", .real(decimals: 2)),
        Column("max_ms", .real(decimals: 2), inTable: false),
        Column("alerts", .integer),
        Column("first", .time, inTable: false), Column("last", .time, inTable: false),
    ]

    /// `motion 40 (40%), still 60 (60%)` for tables; a JSON object elsewhere.
    public var labelSummary: String {
        labels.map { "\($0.0) \($0.1) (\(detections > 0 ? Int((Double($0.1) * 100 / Double(detections)).rounded()) : 0)%)" }
            .joined(separator: ", ")
    }

    public func row(forTable: Bool) -> [SQLValue] {
        func real(_ d: Double?) -> SQLValue { d.map { .real($0) } ?? .null }
        let labelsValue: SQLValue = forTable ? .text(labelSummary)
            : .text(JSONValue.object(labels.map { ($0.0, .number(Double($0.1))) }).serialized)
        return [.text(pipeline), .text(device), .integer(Int64(detections)), labelsValue,
                real(p50), real(p95), real(p99), real(maxLatency), .integer(Int64(alerts)), real(first), real(last)]
    }
}

/// `vigilctl sync`: backlog and the uplink's last outcome.
public struct SyncStatus: Sendable {
    public var detections = 0
    public var alerts = 0
    public var unsyncedDetections = 0
    public var unsyncedAlerts = 0
    public var oldestUnsynced: Double?
    public var lastSyncAt: Double?
    public var lastSyncError: String?
    public var droppedDetections = 0
    public var droppedAlerts = 0
    public var databaseBytes = 0
    public var now = 0.0
    /// Where sync sends, from the config (`mqtt host:port`, `http URL`, `not configured`); nil when no config was read.
    public var uplink: String?

    public init() {}

    /// `last_sync_at` as epoch seconds or ISO-8601.
    static func parseTime(_ s: String) -> Double? { Double(s) ?? TimeSpec.iso8601(s) }

    /// `key: value` lines for people.
    public var text: String {
        func when(_ t: Double?) -> String { t.map { "\(TimeSpec.format($0)) (\(TimeSpec.age(now - $0)) ago)" } ?? "never" }
        var rows: [(String, String)] = uplink.map { [("uplink", $0)] } ?? []
        rows += [
            ("backlog", "\(unsyncedDetections + unsyncedAlerts) rows (\(unsyncedDetections) detections, \(unsyncedAlerts) alerts)"),
            ("oldest unsynced", oldestUnsynced.map { when($0) } ?? "none"),
            ("last sync", when(lastSyncAt)),
            ("last sync error", lastSyncError ?? "none"),
            ("dropped by size cap", "\(droppedDetections) detections, \(droppedAlerts) alerts"),
            ("rows stored", "\(detections) detections, \(alerts) alerts"),
            ("database size", String(format: "%.1f MB", Double(databaseBytes) / 1_048_576)),
        ]
        let w = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0 + ":" + String(repeating: " ", count: w - $0.0.count + 2) + $0.1 }.joined(separator: "\n") + "\n"
    }

    public var json: JSONValue {
        func num(_ d: Double?) -> JSONValue { d.map { .number($0) } ?? .null }
        func time(_ d: Double?) -> JSONValue { d.map { .string(TimeSpec.format($0)) } ?? .null }
        return .object((uplink.map { [("uplink", JSONValue.string($0))] } ?? []) + [
            ("backlog", .number(Double(unsyncedDetections + unsyncedAlerts))),
            ("unsynced_detections", .number(Double(unsyncedDetections))),
            ("unsynced_alerts", .number(Double(unsyncedAlerts))),
            ("oldest_unsynced_ts", num(oldestUnsynced)), ("oldest_unsynced_time", time(oldestUnsynced)),
            ("last_sync_ts", num(lastSyncAt)), ("last_sync_time", time(lastSyncAt)),
            ("last_sync_error", lastSyncError.map { .string($0) } ?? .null),
            ("dropped_detections", .number(Double(droppedDetections))),
            ("dropped_alerts", .number(Double(droppedAlerts))),
            ("detections", .number(Double(detections))), ("alerts", .number(Double(alerts))),
            ("database_bytes", .number(Double(databaseBytes))),
        ])
    }
}
