import SQLite
import VigilCore

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
