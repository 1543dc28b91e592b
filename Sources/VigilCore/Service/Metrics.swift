import Foundation

/// Named counters, gauges and histograms with labels, rendered in the Prometheus text
/// format (version 0.0.4). Every stage bumps what it owns through the `Counters`
/// extension below (`counters.alertRaised(...)`, `counters.actionRun(...)`, ...); the
/// registry itself knows nothing about Vigil.
public final class MetricsRegistry: @unchecked Sendable {
    // @unchecked Sendable: all state is guarded by `lock`.
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    struct Family {
        var kind: Kind
        var help: String
        var buckets: [Double] = []
        var values: [[Label]: Double] = [:]
        var histograms: [[Label]: Histogram] = [:]
    }

    public struct Label: Hashable, Sendable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    struct Histogram {
        var counts: [Int]   // per bucket, not cumulative; the last one is +Inf
        var sum = 0.0
        var count = 0
    }

    private let lock = NSLock()
    private var families: [String: Family] = [:]
    private var order: [String] = []

    public init() {}

    /// Declares a metric once; later declarations of the same name are ignored.
    public func describe(_ name: String, _ kind: Kind, _ help: String, buckets: [Double] = []) {
        lock.withLock {
            guard families[name] == nil else { return }
            families[name] = Family(kind: kind, help: help, buckets: buckets.sorted())
            order.append(name)
        }
    }

    public func add(_ name: String, _ labels: [Label] = [], _ value: Double = 1) {
        lock.withLock { families[name, default: Family(kind: .counter, help: "")].values[labels, default: 0] += value }
        ensureListed(name)
    }

    public func set(_ name: String, _ labels: [Label] = [], _ value: Double) {
        lock.withLock { families[name, default: Family(kind: .gauge, help: "")].values[labels] = value }
        ensureListed(name)
    }

    public func observe(_ name: String, _ labels: [Label] = [], _ value: Double) {
        lock.withLock {
            var f = families[name] ?? Family(kind: .histogram, help: "", buckets: MetricsRegistry.latencyBuckets)
            var h = f.histograms[labels] ?? Histogram(counts: Array(repeating: 0, count: f.buckets.count + 1))
            let i = f.buckets.firstIndex { value <= $0 } ?? f.buckets.count
            h.counts[i] += 1
            h.sum += value
            h.count += 1
            f.histograms[labels] = h
            families[name] = f
        }
        ensureListed(name)
    }

    /// The current value of a counter or gauge (tests, STATUS=).
    public func value(_ name: String, _ labels: [Label] = []) -> Double? {
        lock.withLock { families[name]?.values[labels] }
    }

    /// Sum over every label set of a counter or gauge.
    public func total(_ name: String) -> Double {
        lock.withLock { families[name]?.values.values.reduce(0, +) ?? 0 }
    }

    /// Observations so far of a histogram, over every label set.
    public func observations(_ name: String) -> Int {
        lock.withLock { families[name]?.histograms.values.reduce(0) { $0 + $1.count } ?? 0 }
    }

    private func ensureListed(_ name: String) {
        lock.withLock { if !order.contains(name) { order.append(name) } }
    }

    /// Seconds: 0.5 ms to 10 s, roughly doubling (a Pi runs a small model in 1-50 ms).
    public static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]
    /// Finer at the low end, where "does the pipeline add under 2 ms?" is answered.
    public static let frameBuckets: [Double] = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]

    /// The text exposition format. Families appear in declaration order, label sets sorted.
    public func render(into out: inout String) {
        lock.withLock {
            for name in order {
                guard let f = families[name] else { continue }
                if f.values.isEmpty && f.histograms.isEmpty { continue }
                if !f.help.isEmpty { out += "# HELP \(name) \(MetricsRegistry.escapeHelp(f.help))\n" }
                out += "# TYPE \(name) \(f.kind.rawValue)\n"
                for (labels, v) in f.values.sorted(by: { MetricsRegistry.key($0.key) < MetricsRegistry.key($1.key) }) {
                    out += "\(name)\(MetricsRegistry.format(labels)) \(MetricsRegistry.number(v))\n"
                }
                for (labels, h) in f.histograms.sorted(by: { MetricsRegistry.key($0.key) < MetricsRegistry.key($1.key) }) {
                    var cumulative = 0
                    for (i, le) in f.buckets.enumerated() {
                        cumulative += h.counts[i]
                        out += "\(name)_bucket\(MetricsRegistry.format(labels + [Label("le", MetricsRegistry.number(le))])) \(cumulative)\n"
                    }
                    out += "\(name)_bucket\(MetricsRegistry.format(labels + [Label("le", "+Inf")])) \(h.count)\n"
                    out += "\(name)_sum\(MetricsRegistry.format(labels)) \(MetricsRegistry.number(h.sum))\n"
                    out += "\(name)_count\(MetricsRegistry.format(labels)) \(h.count)\n"
                }
            }
        }
    }

    static func key(_ labels: [Label]) -> String { labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",") }

    public static func format(_ labels: [Label]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.name)=\"\(escapeValue($0.value))\"" }.joined(separator: ",") + "}"
    }

    static func escapeValue(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    public static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
}

/// Names of the metrics other stages report through `Counters`. Documented in docs/service.md.
public enum MetricName {
    public static let inferenceSeconds = "vigil_inference_duration_seconds"
    public static let frameSeconds = "vigil_frame_latency_seconds"
    public static let alerts = "vigil_alerts_total"
    public static let actions = "vigil_actions_total"
    public static let unsyncedRows = "vigil_unsynced_rows"
    public static let syncLag = "vigil_sync_lag_seconds"
    public static let syncedRows = "vigil_synced_rows_total"
    public static let databaseBytes = "vigil_database_bytes"
    public static let reloads = "vigil_reloads_total"
    public static let brokerConnects = "vigil_broker_connects_total"
    public static let intakeWaits = "vigil_intake_waits_total"
    public static let intakePending = "vigil_intake_pending_frames"
    public static let intakeBytes = "vigil_intake_journal_bytes"
    public static let baselineDevices = "vigil_baseline_devices"
    public static let baselineStuckFields = "vigil_baseline_stuck_fields"
    public static let evidenceWritten = "vigil_evidence_written_total"
    public static let evidenceDropped = "vigil_evidence_dropped_total"
    public static let evidenceFailed = "vigil_evidence_failed_total"
    public static let evidenceBytes = "vigil_evidence_bytes"
    public static let evidenceAlerts = "vigil_evidence_alerts"
    public static let motionStatesDropped = "vigil_motion_states_dropped_total"
}

/// What the rules, actions, sync and store stages report. Each call is cheap and thread-safe.
extension Counters {
    /// One inference by `model` that took `ms` milliseconds (the latency histogram per model).
    public func inferenceFinished(model: String, ms: Double) {
        metrics.observe(MetricName.inferenceSeconds, [.init("model", model)], ms / 1000)
    }

    /// A detection handed to the store, `seconds` after its message arrived: time waiting in
    /// the queue, decoding, inference and rules; broker and network not included.
    public func detectionMade(pipeline: String, seconds: Double) {
        metrics.observe(MetricName.frameSeconds, [.init("pipeline", pipeline)], seconds)
    }

    /// An alert transition: `state` is "raised" or "cleared".
    public func alert(_ pipeline: String, state: String = "raised") {
        metrics.add(MetricName.alerts, [.init("pipeline", pipeline), .init("state", state)])
    }

    public func alertRaised(_ pipeline: String) { alert(pipeline, state: "raised") }

    /// An action ran; `outcome` is a short word: ok, failed, timeout, skipped...
    public func actionRun(_ action: String, outcome: String) {
        metrics.add(MetricName.actions, [.init("action", action), .init("outcome", outcome)])
    }

    /// Rows the cloud acknowledged.
    public func rowsSynced(_ n: Int, table: String = "detections") {
        metrics.add(MetricName.syncedRows, [.init("table", table)], Double(n))
    }

    /// Age in seconds of the oldest row not yet acknowledged by the cloud (0 when caught up).
    public func setSyncLag(_ seconds: Double) { metrics.set(MetricName.syncLag, [], seconds) }

    /// Rows waiting for the cloud.
    public func setUnsyncedRows(_ n: Int) { metrics.set(MetricName.unsyncedRows, [], Double(n)) }

    public func setDatabaseBytes(_ n: Int) { metrics.set(MetricName.databaseBytes, [], Double(n)) }

    /// Devices with a baseline (stateful anomaly pipelines) by status, and their stuck fields.
    public func setBaselines(_ all: [(key: BaselineBook.Key, snapshot: BaselineSnapshot)]) {
        var ready: [String: Int] = [:], warming: [String: Int] = [:], stuck: [String: Int] = [:]
        for (k, s) in all {
            if s.warm { ready[k.pipeline, default: 0] += 1 } else { warming[k.pipeline, default: 0] += 1 }
            stuck[k.pipeline, default: 0] += s.stuckFields.count
        }
        for p in Set(all.map(\.key.pipeline)) {
            metrics.set(MetricName.baselineDevices, [.init("pipeline", p), .init("status", "ready")], Double(ready[p] ?? 0))
            metrics.set(MetricName.baselineDevices, [.init("pipeline", p), .init("status", "warming")], Double(warming[p] ?? 0))
            metrics.set(MetricName.baselineStuckFields, [.init("pipeline", p)], Double(stuck[p] ?? 0))
        }
    }

    public var unsyncedRows: Int? { metrics.value(MetricName.unsyncedRows).map { Int($0) } }

    public var alertsRaised: Int { Int(metrics.total(MetricName.alerts)) }

    static func describeServiceMetrics(_ m: MetricsRegistry) {
        m.describe(MetricName.inferenceSeconds, .histogram, "Time one model run took, per model.",
                   buckets: MetricsRegistry.latencyBuckets)
        m.describe(MetricName.frameSeconds, .histogram,
                   "From a message's arrival to its detection, per pipeline: queue wait, decoding, inference and rules.",
                   buckets: MetricsRegistry.frameBuckets)
        m.describe(MetricName.alerts, .counter, "Alert transitions per pipeline and state (raised, cleared).")
        m.describe(MetricName.actions, .counter, "Actions run, per action and outcome.")
        m.describe(MetricName.databaseBytes, .gauge, "Size of the SQLite log (main file plus WAL).")
        m.describe(MetricName.unsyncedRows, .gauge, "Rows (detections and alerts) not yet acknowledged by the cloud.")
        m.describe(MetricName.syncLag, .gauge, "Age of the oldest row not yet acknowledged by the cloud.")
        m.describe(MetricName.syncedRows, .counter, "Rows acknowledged by the cloud, per table.")
        m.describe(MetricName.reloads, .counter, "Configuration reloads (SIGHUP) by result.")
        m.describe(MetricName.brokerConnects, .counter, "Successful connections to the MQTT broker (1 + reconnects).")
        m.describe(MetricName.intakeWaits, .counter, "Times reading from the broker waited for a full pipeline queue (back-pressure instead of dropping).")
        m.describe(MetricName.intakePending, .gauge, "Journaled frames whose rows are not committed yet.")
        m.describe(MetricName.intakeBytes, .gauge, "Bytes of the intake journal's segment files.")
        m.describe(MetricName.baselineDevices, .gauge, "Devices with an anomaly baseline, per pipeline and status (warming: no alerts yet; ready).")
        m.describe(MetricName.baselineStuckFields, .gauge, "Fields of those devices that are stuck (a constant value for longer than their change rate makes plausible).")
        m.describe(MetricName.evidenceWritten, .counter, "Alerts whose evidence (frames, audio, readings) was kept.")
        m.describe(MetricName.evidenceDropped, .counter, "Alerts whose evidence was deleted to stay under storage.evidence_mb, or was larger than it.")
        m.describe(MetricName.evidenceFailed, .counter, "Evidence that could not be written (disk full, permissions).")
        m.describe(MetricName.evidenceBytes, .gauge, "Bytes of evidence kept on disk.")
        m.describe(MetricName.evidenceAlerts, .gauge, "Alerts with evidence kept on disk.")
        m.describe(MetricName.motionStatesDropped, .counter, "Saved camera states deleted to stay under storage.motion_state_mb.")
    }
}
