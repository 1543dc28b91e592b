import SQLite
import VigilCore

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
