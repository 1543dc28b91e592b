import Foundation
import SQLite
import VigilCore

/// Why the log could not be read, in words that say what to do.
public struct QueryError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One row of the `evidence` table.
public struct EvidenceRow: Sendable {
    public struct Item: Sendable { public var name: String; public var bytes: Int; public var role: String? }
    public var uuid: String
    public var ts: Double
    public var pipeline: String
    public var device: String
    public var kind: String
    /// The archive (ustar) holding the items.
    public var file: String
    public var bytes: Int
    public var items: [Item]

    /// The items as rows: name, bytes, role (trigger, reference).
    public var itemTable: ResultTable {
        ResultTable(columns: [Column("name", .text), Column("bytes", .integer), Column("role", .text)],
                    rows: items.map { [.text($0.name), .integer(Int64($0.bytes)), $0.role.map { .text($0) } ?? .null] })
    }
}

/// Read-only access to the daemon's SQLite log. A WAL reader never blocks the writer, and
/// each query is one short read transaction, so checkpoints are never held up for long.
public final class LogReader {
    public let path: String
    let db: Database
    /// Whether the log has the `evidence` table (schema 4 on); an older log reads as having none.
    public private(set) var hasEvidence = false

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
        Column("severity", .text, inTable: false),
        Column("actions", .outcomes, maxWidth: 60),
        // Bytes of evidence kept for the alert (Evidence/); empty when none (`vigilctl evidence UUID` writes it out).
        Column("evidence", .integer, select: "(SELECT bytes FROM evidence WHERE alert_uuid = alerts.uuid)"),
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
            // /var/lib/vigil is 0750 vigil:vigil: to anyone else the log looks absent (issue 19).
            if let closed = LogReader.closedFolder(above: path) {
                throw QueryError("cannot read \(path): \(LogReader.permissionDenied) (\(closed) is closed to this user)")
            }
            throw QueryError("no database at \(path): vigild creates it on first start (set --db, or storage.path in --config)")
        }
        guard !isDir.boolValue else { throw QueryError("\(path) is a directory, not a database") }
        guard fm.isReadableFile(atPath: path) else {
            throw QueryError("cannot read \(path): \(LogReader.permissionDenied)")
        }
        do {
            db = try LogReader.open(path)
        } catch let e as QueryError {
            throw e
        } catch let e as SQLiteError where e.isCorrupt {
            throw QueryError("\(path) is not a SQLite database (or is damaged): \(e.message)")
        } catch {
            throw QueryError("cannot open \(path): \(error)")
        }
        let version = db.userVersion
        let tables = Set(((try? db.query("SELECT name FROM sqlite_master WHERE type = 'table'")) ?? []).compactMap { $0.first?.string })
        guard version >= 1, tables.contains("detections"), tables.contains("alerts") else {
            throw QueryError("\(path) is not a Vigil log (no detections/alerts tables, schema version \(version))")
        }
        hasEvidence = tables.contains("evidence")
        if version > Schema.migrator.latestVersion {
            // Newer daemon: the columns read here are a stable contract, so carry on.
            log.debug("\(path): schema version \(version) is newer than this vigilctl knows (\(Schema.migrator.latestVersion))")
        }
    }

    /// What to do about a log this user may not read: the package makes the log group vigil's.
    public static let permissionDenied = "permission denied: add yourself to group vigil (sudo adduser $USER vigil, then log in again) or use sudo"

    /// The nearest existing folder above `path` that this user cannot search (enter), if any.
    static func closedFolder(above path: String) -> String? {
        var dir = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
        while true {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) {
                return isDir.boolValue && !FileManager.default.isExecutableFile(atPath: dir.path) ? dir.path : nil
            }
            if dir.path == "/" { return nil }
            dir = dir.deletingLastPathComponent()
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
        let names = selectList(columns)
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
        let st = try db.prepare("SELECT \(selectList(columns)) FROM \(table)\(clause) ORDER BY id")
        try st.bind(values)
        while try st.step() { try body(st.row()) }
        return ResultTable(columns: columns)
    }

    func selectList(_ columns: [Column]) -> String {
        columns.map { c in c.select.map { (hasEvidence ? $0 : "NULL") + " AS " + c.name } ?? c.name }.joined(separator: ", ")
    }

    /// The evidence kept for an alert: where its archive is, and what it holds; nil when none.
    public func evidence(_ uuid: String) throws -> EvidenceRow? {
        guard hasEvidence else { return nil }
        guard let r = try query("SELECT alert_uuid, ts, pipeline, device, kind, file, bytes, items FROM evidence WHERE alert_uuid = ?",
                                [.text(uuid.lowercased())]).first else { return nil }
        var items: [EvidenceRow.Item] = []
        if case .array(let list)? = try? JSONParser.parse(Array((r[7].string ?? "[]").utf8)) {
            for v in list {
                guard let name = v["name"]?.string else { continue }
                items.append(EvidenceRow.Item(name: name, bytes: Int(v["bytes"]?.double ?? 0), role: v["role"]?.string))
            }
        }
        var file = r[5].string ?? ""
        // A log copied elsewhere with its evidence folder: the archive beside it.
        let beside = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("evidence/\(uuid.lowercased()).tar").path
        if !FileManager.default.fileExists(atPath: file), FileManager.default.fileExists(atPath: beside) { file = beside }
        return EvidenceRow(uuid: r[0].string ?? uuid, ts: r[1].double ?? 0, pipeline: r[2].string ?? "", device: r[3].string ?? "",
                           kind: r[4].string ?? "", file: file, bytes: Int(r[6].int ?? 0), items: items)
    }

    public func alertExists(_ uuid: String) throws -> Bool {
        try !query("SELECT 1 FROM alerts WHERE uuid = ?", [.text(uuid)]).isEmpty
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
    ///
    /// A summary row (`store: "events"`, Inference/EventGate.swift) counts every detection of
    /// its period; the event rows inside a summarised period are in its counts already, so
    /// they add their latency but not a second count. Latency percentiles are those of the
    /// stored rows; a summary adds its period's slowest to `max_ms`.
    public func stats(_ filter: RowFilter) throws -> (groups: [GroupStats], total: GroupStats) {
        var groups: [GroupKey: GroupStats] = [:]
        var latencies: [GroupKey: [Double]] = [:]
        var labelCounts: [GroupKey: [String: Int]] = [:]
        var rows: [GroupKey: [(ts: Double, label: String)]] = [:]
        var periods: [GroupKey: [(start: Double, end: Double)]] = [:]
        func seen(_ key: GroupKey, _ ts: Double) {
            var g = groups[key] ?? GroupStats(pipeline: key.pipeline, device: key.device)
            g.first = min(g.first ?? ts, ts)
            g.last = max(g.last ?? ts, ts)
            groups[key] = g
        }
        let (clause, values) = filter.sql(states: false)
        let st = try db.prepare("SELECT pipeline, device, label, latency_ms, ts, scores FROM detections\(clause)")
        try st.bind(values)
        do {
            while try st.step() {
                let key = GroupKey(pipeline: st.column(0).string ?? "", device: st.column(1).string ?? "")
                let ts = st.column(4).double ?? 0
                let label = st.column(2).string ?? ""
                seen(key, ts)
                if label == EventGate.summaryLabel, case .object(let members)? = try? JSONParser.parse(st.column(5).string ?? "") {
                    var period = 0.0
                    for (name, value) in members {
                        guard case .number(let n) = value else { continue }
                        if name == EventGate.periodKey { period = n; continue }
                        labelCounts[key, default: [:]][name, default: 0] += Int(n)
                        groups[key]!.detections += Int(n)
                    }
                    periods[key, default: []].append((ts, ts + period))
                    if let l = st.column(3).double { groups[key]!.maxLatency = max(groups[key]!.maxLatency ?? l, l) }
                    continue
                }
                rows[key, default: []].append((ts, label))
                if let l = st.column(3).double { latencies[key, default: []].append(l) }
            }
        } catch let e as SQLiteError {
            throw QueryError("cannot read \(path): \(e.message)")
        }
        for (key, list) in rows {
            let covered = periods[key] ?? []
            for row in list where !covered.contains(where: { $0.start <= row.ts && row.ts < $0.end }) {
                groups[key]!.detections += 1
                labelCounts[key, default: [:]][row.label, default: 0] += 1
            }
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
            g.maxLatency = max(g.maxLatency ?? sorted.last ?? -.infinity, sorted.last ?? -.infinity).nilIfInfinite
            g.labels = labels.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        var total = GroupStats(pipeline: "(all)", device: "")
        var allLabels: [String: Int] = [:]
        for (key, var g) in groups {
            finish(&g, latencies[key] ?? [], labelCounts[key] ?? [:])
            groups[key] = g
            total.detections += g.detections
            total.alerts += g.alerts
            if let m = g.maxLatency { total.maxLatency = max(total.maxLatency ?? m, m) }
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

extension Double {
    var nilIfInfinite: Double? { isFinite ? self : nil }
}
