import Foundation
import SQLite
import Synchronization

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
    /// The record the cloud receives: `type`, `uuid`, `node` and the row's columns (built from
    /// the `Cloud*` records of Sync/CloudRecord.swift).
    public var record: JSONValue
    /// The outbox's change sequence when the row was read (see `markSynced`).
    public var readSeq: Int = 0
}

/// Where a sync session has read up to, per table (rows with a larger id are not sent yet).
public struct SyncCursor: Sendable, Equatable {
    public var alerts: Int64 = 0
    public var detections: Int64 = 0
    /// The `evidence` table's rowid.
    public var evidence: Int64 = 0
    /// The `enrollments` table's id.
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

/// What sync needs of the log: the rows the cloud has not acknowledged, marking rows synced,
/// the alerts rewritten since a batch was read, and `meta.last_sync_*`. It reads and writes
/// through the log's one writer (`LogWriter.withDatabase`/`write`) and hears of rewritten
/// alerts through `LogWriter.observe`; the writer knows nothing of it.
public final class Outbox: Sendable {
    let writer: LogWriter
    /// Alerts rewritten after insert, by the change's sequence number. Changed by the writer's
    /// announcement and read while a batch is read or marked, all on the writer's queue; the
    /// Mutex makes that checked rather than assumed.
    private let changes = Mutex(AlertChanges())

    struct AlertChanges {
        var seq = 0
        var byUUID: [String: Int] = [:]
    }

    public init(writer: LogWriter) {
        self.writer = writer
        writer.observe { [weak self] event in
            guard case .alertRewritten(let uuid) = event else { return }
            self?.changes.withLock { c in
                c.seq += 1
                c.byUUID[uuid] = c.seq
            }
        }
    }

    /// Up to `limit` unsynced rows past `cursor`, alerts before detections, oldest first.
    /// `detections: false`: alerts only (evidence waits to go between the two).
    public func unsynced(limit: Int, after cursor: SyncCursor = .start, node: String, detections: Bool = true) throws -> [SyncRow] {
        try writer.withDatabase { db in
            let seq = changes.withLock { $0.seq }
            var rows = try db.fetch(OutboxRow<CloudAlert>.self, """
                SELECT id, 'alert' AS type, uuid, ? AS node, ts, pipeline, device, state, label, score, severity, actions
                FROM alerts WHERE synced_at IS NULL AND id > ? ORDER BY id LIMIT ?
                """, [.text(node), .integer(cursor.alerts), .integer(Int64(limit))]).map { r in
                SyncRow(table: .alerts, id: r.id, uuid: r.record.uuid, ts: r.record.ts, record: try JSONValue(encoding: r.record), readSeq: seq)
            }
            if rows.count < limit, try EnrollmentLog.hasTable(db) {
                // Enrollments (few, small) after alerts and before detections (issue 18).
                rows += try db.fetch(OutboxRow<CloudEnrollment>.self, """
                    SELECT id, 'enrollment' AS type, uuid, ? AS node, created AS ts, pipeline, label, kind, model_version, dim,
                           threshold, source, hex(prototypes) AS prototypes
                    FROM enrollments WHERE synced_at IS NULL AND id > ? ORDER BY id LIMIT ?
                    """, [.text(node), .integer(cursor.enrollments), .integer(Int64(limit - rows.count))]).map { r in
                    var record = r.record
                    record.prototypes = Data(hex: record.prototypes).base64EncodedString()
                    return SyncRow(table: .enrollments, id: r.id, uuid: record.uuid, ts: record.ts, record: try JSONValue(encoding: record), readSeq: seq)
                }
            }
            guard rows.count < limit, detections else { return rows }
            rows += try db.fetch(OutboxRow<CloudDetection>.self, """
                SELECT id, 'detection' AS type, uuid, ? AS node, ts, pipeline, device, model, label, score, scores, latency_ms
                FROM detections WHERE synced_at IS NULL AND id > ? ORDER BY id LIMIT ?
                """, [.text(node), .integer(cursor.detections), .integer(Int64(limit - rows.count))]).map { r in
                SyncRow(table: .detections, id: r.id, uuid: r.record.uuid, ts: r.record.ts, record: try JSONValue(encoding: r.record), readSeq: seq)
            }
            return rows
        }
    }

    /// Whether any alert past the cursor waits for the cloud (evidence goes only after alerts).
    public func hasUnsyncedAlerts(after cursor: SyncCursor) throws -> Bool {
        try writer.withDatabase { db in
            try !db.query("SELECT 1 FROM alerts WHERE synced_at IS NULL AND id > ? LIMIT 1", [.integer(cursor.alerts)]).isEmpty
        }
    }

    /// Whether any evidence past the cursor waits for the cloud.
    public func hasUnsyncedEvidence(after cursor: SyncCursor) throws -> Bool {
        try writer.withDatabase { db in
            guard try Outbox.hasEvidenceTable(db) else { return false }
            return try !db.query("SELECT 1 FROM evidence WHERE synced_at IS NULL AND rowid > ? LIMIT 1", [.integer(cursor.evidence)]).isEmpty
        }
    }

    private static func hasEvidenceTable(_ db: Database) throws -> Bool {
        try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evidence'").isEmpty
    }

    /// Unsynced evidence past the cursor, oldest first, as records holding the archive in base64
    /// (`archive`: the `<uuid>.tar` as kept), up to `budget` bytes of archives; at least one, so
    /// an archive larger than the budget goes alone. An archive evicted meanwhile is skipped.
    public func unsyncedEvidence(after cursor: SyncCursor, budget: Int, node: String) throws -> [SyncRow] {
        let rows = try writer.withDatabase { db -> [OutboxRow<CloudEvidence>] in
            guard try Outbox.hasEvidenceTable(db) else { return [] }
            return try db.fetch(OutboxRow<CloudEvidence>.self, """
                SELECT rowid AS id, file, bytes, 'evidence' AS type, alert_uuid AS uuid, ? AS node, ts, pipeline, device, kind, items,
                       NULL AS archive
                FROM evidence WHERE synced_at IS NULL AND rowid > ? ORDER BY rowid LIMIT 1000
                """, [.text(node), .integer(cursor.evidence)])
        }
        var out: [SyncRow] = []
        var used = 0
        for r in rows {
            if !out.isEmpty && used + (r.bytes ?? 0) > budget { break }
            // Read off the writer's queue: the file is complete under its name (Evidence/EvidenceStore.swift).
            guard let file = r.file, let data = FileManager.default.contents(atPath: file) else { continue }
            used += data.count
            var record = r.record
            record.body.archive = data.base64EncodedString()
            out.append(SyncRow(table: .evidence, id: r.id, uuid: record.uuid, ts: record.ts, record: try JSONValue(encoding: record)))
        }
        return out
    }

    /// Marks rows the cloud acknowledged, records the time in `meta`, and clears the last
    /// sync error, in one transaction. Returns how many rows changed. An alert rewritten
    /// since its batch was read (`readSeq`) stays unsynced, so its final form is sent too.
    @discardableResult
    public func markSynced(_ rows: [(table: SyncTable, uuid: String)], readSeq: Int = .max,
                           at time: Double = Date().timeIntervalSince1970) throws -> Int {
        try writer.write(rows: rows.count) { db in
            var changed = 0
            for table in [SyncTable.alerts, .detections, .evidence, .enrollments] {
                var uuids = rows.filter { $0.table == table }.map(\.uuid)
                if uuids.isEmpty { continue }
                if table == .alerts {
                    uuids = changes.withLock { c in
                        guard !c.byUUID.isEmpty else { return uuids }
                        return uuids.filter { u in
                            guard let seq = c.byUUID[u] else { return true }
                            if seq > readSeq { return false }
                            c.byUUID[u] = nil
                            return true
                        }
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
            try db.setMeta(MetaKey.lastSyncAt, String(time))
            try db.setMeta(MetaKey.lastSyncError, "")
            return changed
        }
    }

    /// Keeps the last sync failure in `meta` (written only when it changes).
    public func recordSyncError(_ message: String) {
        let path = writer.path
        writer.async { db in
            do {
                if try db.meta(MetaKey.lastSyncError) != message {
                    try db.setMeta(MetaKey.lastSyncError, message)
                }
            } catch {
                log.limited(.warning, key: "store-meta", "store \(path): cannot record the sync error: \(error)")
            }
        }
    }

    /// Counts for `vigilctl sync`, /metrics and tests: rows, the backlog, drops, the last sync.
    public func stats() throws -> StoreStats {
        let dropped = writer.dropped
        let bytes = writer.sizes
        return try writer.withDatabase { db in
            func int(_ sql: String) throws -> Int { Int(try db.scalar(sql).int ?? 0) }
            let oldest = [try db.scalar("SELECT min(ts) FROM alerts WHERE synced_at IS NULL").double,
                          try db.scalar("SELECT min(ts) FROM detections WHERE synced_at IS NULL").double].compactMap { $0 }.min()
            let lastError = try db.meta(MetaKey.lastSyncError)
            return StoreStats(
                detections: try int("SELECT count(*) FROM detections"),
                alerts: try int("SELECT count(*) FROM alerts"),
                unsyncedDetections: try int("SELECT count(*) FROM detections WHERE synced_at IS NULL"),
                unsyncedAlerts: try int("SELECT count(*) FROM alerts WHERE synced_at IS NULL"),
                oldestUnsyncedTs: oldest,
                droppedDetections: dropped.detections, droppedAlerts: dropped.alerts,
                lastSyncAt: try db.meta(MetaKey.lastSyncAt).flatMap(Double.init),
                lastSyncError: lastError?.isEmpty == false ? lastError : nil,
                fileBytes: bytes.file, capBytes: bytes.cap)
        }
    }
}
