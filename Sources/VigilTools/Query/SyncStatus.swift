import Foundation
import VigilCore

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

    /// `key: value` lines for people, times in `zone`.
    public func text(zone: TimeSpec.Zone = .utc) -> String {
        func when(_ t: Double?) -> String { t.map { "\(TimeSpec.short($0, zone: zone)) (\(TimeSpec.age(now - $0)) ago)" } ?? "never" }
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
