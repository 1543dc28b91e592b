import Foundation
import SQLite

/// The SQLite log as the daemon uses it: its one writer (`LogWriter`: appends, the commit
/// tick, the cap, the full disk, retention, the file's health) and the sync outbox built on
/// it (`Outbox`: unsynced rows, marks, `meta.last_sync_*`). Holds no state of its own; the
/// methods below only forward, so call sites say `store.append` rather than
/// `store.writer.append`.
public final class Store: Sendable {
    public let writer: LogWriter
    public let outbox: Outbox

    /// `keepsUnsynced`: sync is configured, so retention deletes only rows the cloud
    /// acknowledged; false for a local-only log (issue 19). `logger`: tests collect lines.
    public init(settings: StorageSettings, counters: Counters? = nil, maxPending: Int = 100_000,
                keepsUnsynced: Bool = true, logger: Logger = Logger.shared) throws {
        writer = try LogWriter(settings: settings, counters: counters, maxPending: maxPending,
                               keepsUnsynced: keepsUnsynced, logger: logger)
        outbox = Outbox(writer: writer)
    }

    public var path: String { writer.path }
}

// The writer's side.
extension Store {
    public func append(_ d: Detection) { writer.append(d) }
    public func append(_ a: AlertRecord) { writer.append(a) }
    public func appendRetired(_ seq: UInt64) { writer.appendRetired(seq) }
    public func updateAlertActions(uuid: String, json: String) { writer.updateAlertActions(uuid: uuid, json: json) }
    public func flush() { writer.flush() }
    public func close() { writer.close() }
    public var pendingCount: Int { writer.pendingCount }
    public var dropped: (detections: Int, alerts: Int) { writer.dropped }
    public func withDatabase<T>(_ body: (Database) throws -> T) rethrows -> T { try writer.withDatabase(body) }
    public func meta(_ key: String) -> String? { writer.withDatabase { try? $0.meta(key) } }
    @discardableResult
    public func runRetention(now: Double = Date().timeIntervalSince1970) -> (detections: Int, alerts: Int) {
        writer.runRetention(now: now)
    }
    public func retiredIntakeSeqs(from first: UInt64) throws -> Set<UInt64> { try writer.retiredIntakeSeqs(from: first) }
    public func pruneRetired(below seq: UInt64) { writer.pruneRetired(below: seq) }
    public func saveBaselines(_ rows: [(key: BaselineBook.Key, snapshot: BaselineSnapshot)], now: Double = Date().timeIntervalSince1970) {
        writer.saveBaselines(rows, now: now)
    }
    public func loadBaselines() -> [(key: BaselineBook.Key, snapshot: BaselineSnapshot)] { writer.loadBaselines() }
    public func takeBaselineResets(into book: BaselineBook) { writer.takeBaselineResets(into: book) }

    /// Calls `listener` with the journal entries each commit retired (on the writer's queue: return quickly).
    public func onRetired(_ listener: @escaping @Sendable ([UInt64]) -> Void) {
        writer.observe { event in
            if case .committed(_, _, let retired) = event, !retired.isEmpty { listener(retired) }
        }
    }

    /// Calls `listener` after alerts were committed (on the writer's queue: return quickly).
    public func onAlertsCommitted(_ listener: @escaping @Sendable () -> Void) {
        writer.observe { event in
            if case .committed(_, let alerts, _) = event, alerts > 0 { listener() }
        }
    }
}

// The outbox's side.
extension Store {
    public func unsynced(limit: Int, after cursor: SyncCursor = .start, node: String, detections: Bool = true) throws -> [SyncRow] {
        try outbox.unsynced(limit: limit, after: cursor, node: node, detections: detections)
    }
    @discardableResult
    public func markSynced(_ rows: [(table: SyncTable, uuid: String)], readSeq: Int = .max,
                           at time: Double = Date().timeIntervalSince1970) throws -> Int {
        try outbox.markSynced(rows, readSeq: readSeq, at: time)
    }
    public func unsyncedEvidence(after cursor: SyncCursor, budget: Int, node: String) throws -> [SyncRow] {
        try outbox.unsyncedEvidence(after: cursor, budget: budget, node: node)
    }
    public func hasUnsyncedEvidence(after cursor: SyncCursor) throws -> Bool { try outbox.hasUnsyncedEvidence(after: cursor) }
    public func recordSyncError(_ message: String) { outbox.recordSyncError(message) }
    public func stats() throws -> StoreStats { try outbox.stats() }
}
