import Foundation
import SQLite

/// Which table a synced row lives in.
public enum SyncTable: String, Sendable {
    case alerts, detections, evidence, enrollments

    /// The column that holds a row's uuid (evidence rows are keyed by their alert's).
    var uuidColumn: String { self == .evidence ? "alert_uuid" : "uuid" }
}

/// One unsynced row, ready to send: its table, id, uuid and cloud record.
public struct SyncRow: Sendable {
    public var table: SyncTable
    public var id: Int64
    public var uuid: String
    public var ts: Double
    /// The record the cloud receives: `type`, `uuid`, `node` and the row's columns.
    public var record: JSONValue
    /// The store's change sequence when the row was read (see `markSynced`).
    public var readSeq: Int = 0
}

/// Where a sync session has read up to, per table (rows with a larger id are not sent yet).
public struct SyncCursor: Sendable, Equatable {
    public var alerts: Int64 = 0
    public var detections: Int64 = 0
    /// The `evidence` table's rowid.
    public var evidence: Int64 = 0
    public var enrollments: Int64 = 0
    public init(alerts: Int64 = 0, detections: Int64 = 0, evidence: Int64 = 0, enrollments: Int64 = 0) {
        self.alerts = alerts; self.detections = detections; self.evidence = evidence; self.enrollments = enrollments
    }
    public static let start = SyncCursor()
}

/// What `vigilctl sync`, /metrics and tests show about the log.
public struct StoreStats: Sendable {
    public var detections: Int
    public var alerts: Int
    public var unsyncedDetections: Int
    public var unsyncedAlerts: Int
    /// `ts` of the oldest row the cloud has not acknowledged (sync lag = now - this).
    public var oldestUnsyncedTs: Double?
    public var droppedDetections: Int
    public var droppedAlerts: Int
    public var lastSyncAt: Double?
    public var lastSyncError: String?
    /// Bytes of the database file (the WAL comes on top).
    public var fileBytes: Int64
    public var capBytes: Int64

    public func syncLag(now: Double = Date().timeIntervalSince1970) -> Double {
        oldestUnsyncedTs.map { max(0, now - $0) } ?? 0
    }
}

/// Sync and retention through the one writer: reads of unsynced rows, marks, meta, stats.
extension Store {
    /// Up to `limit` unsynced rows past `cursor`, alerts before detections, oldest first.
    /// `detections: false`: alerts only (evidence waits to go between the two).
    public func unsynced(limit: Int, after cursor: SyncCursor = .start, node: String, detections: Bool = true) throws -> [SyncRow] {
        try queue.sync {
            var rows: [SyncRow] = []
            for r in try db.query("""
                SELECT id, uuid, ts, pipeline, device, state, label, score, severity, actions FROM alerts
                WHERE synced_at IS NULL AND id > ? ORDER BY id LIMIT ?
                """, [.integer(cursor.alerts), .integer(Int64(limit))]) {
                let uuid = r[1].string ?? ""
                let record = JSONValue.object([
                    ("type", .string("alert")), ("uuid", .string(uuid)), ("node", .string(node)),
                    ("ts", .number(r[2].double ?? 0)), ("pipeline", .string(r[3].string ?? "")),
                    ("device", .string(r[4].string ?? "")), ("state", .string(r[5].string ?? "")),
                    ("label", r[6].string.map(JSONValue.string) ?? .null), ("score", r[7].double.map(JSONValue.number) ?? .null),
                    ("severity", r[8].string.map(JSONValue.string) ?? .null), ("actions", Store.embedded(r[9].string)),
                ])
                rows.append(SyncRow(table: .alerts, id: r[0].int ?? 0, uuid: uuid, ts: r[2].double ?? 0, record: record, readSeq: changeSeq))
            }
            if rows.count < limit {
                rows += try unsyncedEnrollmentsOnQueue(limit: limit - rows.count, after: cursor.enrollments, node: node)
            }
            guard rows.count < limit, detections else { return rows }
            for r in try db.query("""
                SELECT id, uuid, ts, pipeline, device, model, label, score, scores, latency_ms FROM detections
                WHERE synced_at IS NULL AND id > ? ORDER BY id LIMIT ?
                """, [.integer(cursor.detections), .integer(Int64(limit - rows.count))]) {
                let uuid = r[1].string ?? ""
                let record = JSONValue.object([
                    ("type", .string("detection")), ("uuid", .string(uuid)), ("node", .string(node)),
                    ("ts", .number(r[2].double ?? 0)), ("pipeline", .string(r[3].string ?? "")),
                    ("device", .string(r[4].string ?? "")), ("model", .string(r[5].string ?? "")),
                    ("label", .string(r[6].string ?? "")), ("score", .number(r[7].double ?? 0)),
                    ("scores", Store.embedded(r[8].string)), ("latency_ms", r[9].double.map(JSONValue.number) ?? .null),
                ])
                rows.append(SyncRow(table: .detections, id: r[0].int ?? 0, uuid: uuid, ts: r[2].double ?? 0, record: record, readSeq: changeSeq))
            }
            return rows
        }
    }

    /// Whether any alert past the cursor waits for the cloud (evidence goes only after alerts).
    public func hasUnsyncedAlerts(after cursor: SyncCursor) throws -> Bool {
        try queue.sync { try !db.query("SELECT 1 FROM alerts WHERE synced_at IS NULL AND id > ? LIMIT 1", [.integer(cursor.alerts)]).isEmpty }
    }

    /// Whether any evidence past the cursor waits for the cloud.
    public func hasUnsyncedEvidence(after cursor: SyncCursor) throws -> Bool {
        try queue.sync {
            guard try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evidence'").isEmpty else { return false }
            return try !db.query("SELECT 1 FROM evidence WHERE synced_at IS NULL AND rowid > ? LIMIT 1", [.integer(cursor.evidence)]).isEmpty
        }
    }

    /// Unsynced evidence past the cursor, oldest first, as records holding the archive in base64
    /// (`archive`: the `<uuid>.tar` as kept), up to `budget` bytes of archives; at least one, so
    /// an archive larger than the budget goes alone. An archive evicted meanwhile is skipped.
    public func unsyncedEvidence(after cursor: SyncCursor, budget: Int, node: String) throws -> [SyncRow] {
        let rows: [[SQLValue]] = try queue.sync {
            guard try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evidence'").isEmpty else { return [] }
            return try db.query("""
                SELECT rowid, alert_uuid, ts, pipeline, device, kind, file, bytes, items FROM evidence
                WHERE synced_at IS NULL AND rowid > ? ORDER BY rowid LIMIT 1000
                """, [.integer(cursor.evidence)])
        }
        var out: [SyncRow] = []
        var used = 0
        for r in rows {
            let bytes = Int(r[7].int ?? 0)
            if !out.isEmpty && used + bytes > budget { break }
            // Read off the writer's queue: the file is complete under its name (Evidence/EvidenceStore.swift).
            guard let file = r[6].string, let data = FileManager.default.contents(atPath: file) else { continue }
            used += data.count
            let uuid = r[1].string ?? ""
            let record = JSONValue.object([
                ("type", .string("evidence")), ("uuid", .string(uuid)), ("node", .string(node)),
                ("ts", .number(r[2].double ?? 0)), ("pipeline", .string(r[3].string ?? "")),
                ("device", .string(r[4].string ?? "")), ("kind", .string(r[5].string ?? "")),
                ("items", Store.embedded(r[8].string)), ("archive", .string(data.base64EncodedString())),
            ])
            out.append(SyncRow(table: .evidence, id: r[0].int ?? 0, uuid: uuid, ts: r[2].double ?? 0, record: record))
        }
        return out
    }

    /// A JSON column as JSON (it was written as JSON); text that does not parse goes as a string.
    static func embedded(_ text: String?) -> JSONValue {
        guard let text else { return .null }
        return (try? JSONParser.parse(text)) ?? .string(text)
    }

    /// Notes that an alert row changed after insert (its actions' outcomes came in).
    func noteAlertChangedOnQueue(_ uuid: String) {
        changeSeq += 1
        alertChanges[uuid] = changeSeq
    }

    /// Marks rows the cloud acknowledged, records the time in `meta`, and clears the last
    /// sync error, in one transaction. Returns how many rows changed. An alert rewritten
    /// since its batch was read (`readSeq`) stays unsynced, so its final form is sent too.
    @discardableResult
    public func markSynced(_ rows: [(table: SyncTable, uuid: String)], readSeq: Int = .max,
                           at time: Double = Date().timeIntervalSince1970) throws -> Int {
        try queue.sync {
            do {
                return try markSyncedOnQueue(rows, readSeq: readSeq, at: time)
            } catch let e as SQLiteError where e.isFull {
                // The UPDATE needs a little room too (synced_at grows each row by 8 bytes).
                _ = makeRoom(rows: max(64, rows.count), cause: e)
                return try markSyncedOnQueue(rows, readSeq: readSeq, at: time)
            }
        }
    }

    private func markSyncedOnQueue(_ rows: [(table: SyncTable, uuid: String)], readSeq: Int, at time: Double) throws -> Int {
        try db.transaction {
            var changed = 0
            for table in [SyncTable.alerts, .detections, .evidence, .enrollments] {
                var uuids = rows.filter { $0.table == table }.map(\.uuid)
                if uuids.isEmpty { continue }
                if table == .alerts, !alertChanges.isEmpty {
                    uuids = uuids.filter { u in
                        guard let seq = alertChanges[u] else { return true }
                        if seq > readSeq { return false }
                        alertChanges[u] = nil
                        return true
                    }
                }
                var start = 0
                while start < uuids.count {
                    let chunk = uuids[start..<min(uuids.count, start + 500)]
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                    _ = try db.query("UPDATE \(table.rawValue) SET synced_at = ? WHERE synced_at IS NULL AND \(table.uuidColumn) IN (\(marks))",
                                     [.real(time)] + chunk.map { .text($0) })
                    changed += db.changes
                    start += chunk.count
                }
            }
            try setMetaOnQueue(MetaKey.lastSyncAt, String(time))
            try setMetaOnQueue(MetaKey.lastSyncError, "")
            return changed
        }
    }

    /// Keeps the last sync failure in `meta` (written only when it changes).
    public func recordSyncError(_ message: String) {
        queue.async { [self] in
            do {
                if try metaOnQueue(MetaKey.lastSyncError) != message {
                    try setMetaOnQueue(MetaKey.lastSyncError, message)
                }
            } catch {
                log.limited(.warning, key: "store-meta", "store \(path): cannot record the sync error: \(error)")
            }
        }
    }

    /// Rows dropped so far by the size cap or a full disk (cheap: no query; for STATUS= and /metrics).
    public var dropped: (detections: Int, alerts: Int) {
        queue.sync { (droppedDetectionsTotal, droppedAlertsTotal) }
    }

    public func meta(_ key: String) -> String? {
        queue.sync { try? metaOnQueue(key) }
    }

    public func stats() throws -> StoreStats {
        try queue.sync {
            func int(_ sql: String) throws -> Int { Int(try db.scalar(sql).int ?? 0) }
            let oldest = [try db.scalar("SELECT min(ts) FROM alerts WHERE synced_at IS NULL").double,
                          try db.scalar("SELECT min(ts) FROM detections WHERE synced_at IS NULL").double].compactMap { $0 }.min()
            let lastError = try metaOnQueue(MetaKey.lastSyncError)
            return StoreStats(
                detections: try int("SELECT count(*) FROM detections"),
                alerts: try int("SELECT count(*) FROM alerts"),
                unsyncedDetections: try int("SELECT count(*) FROM detections WHERE synced_at IS NULL"),
                unsyncedAlerts: try int("SELECT count(*) FROM alerts WHERE synced_at IS NULL"),
                oldestUnsyncedTs: oldest,
                droppedDetections: droppedDetectionsTotal, droppedAlerts: droppedAlertsTotal,
                lastSyncAt: try metaOnQueue(MetaKey.lastSyncAt).flatMap(Double.init),
                lastSyncError: lastError?.isEmpty == false ? lastError : nil,
                fileBytes: (db.scalarInt("PRAGMA page_count") ?? 0) * pageSize,
                capBytes: capPages * pageSize)
        }
    }

    /// Deletes synced rows older than `retention_days`; returns how many went per table.
    @discardableResult
    public func runRetention(now: Double = Date().timeIntervalSince1970) -> (detections: Int, alerts: Int) {
        queue.sync { retentionOnQueue(now: now) }
    }

    @discardableResult
    func retentionOnQueue(now: Double) -> (detections: Int, alerts: Int) {
        let cutoff = now - settings.retentionDays * 86_400
        var deleted = (detections: 0, alerts: 0)
        do {
            for table in [SyncTable.detections, .alerts] {
                // In slices, so a large first pass does not hold the writer for long.
                while true {
                    _ = try db.query("""
                        DELETE FROM \(table.rawValue) WHERE id IN
                        (SELECT id FROM \(table.rawValue) WHERE ts < ? AND synced_at IS NOT NULL LIMIT 5000)
                        """, [.real(cutoff)])
                    let n = db.changes
                    if table == .detections { deleted.detections += n } else { deleted.alerts += n }
                    if n < 5000 { break }
                }
            }
        } catch {
            log.limited(.warning, key: "store-retention", "store \(path): retention failed: \(error)")
        }
        if deleted.detections + deleted.alerts > 0 {
            log.info("store \(path): retention deleted \(deleted.detections) detections and \(deleted.alerts) alerts synced more than \(settings.retentionDays) days ago")
        }
        return deleted
    }
}
