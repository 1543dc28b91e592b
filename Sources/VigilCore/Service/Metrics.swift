import Foundation
import Synchronization

/// Named counters, gauges and histograms with labels, rendered in the Prometheus text
/// format (version 0.0.4): vigild's one registry of metrics. Every stage bumps what it owns
/// through `Counters` (Service/Counters.swift and the extension below); the registry itself
/// knows nothing about Vigil.
public final class MetricsRegistry: Sendable {
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

    struct State {
        var families: [String: Family] = [:]
        var order: [String] = []

        /// The family, created (and listed) on first use when it was not described.
        mutating func family(_ name: String, _ kind: Kind) -> Family {
            if let f = families[name] { return f }
            order.append(name)
            return Family(kind: kind, help: "", buckets: kind == .histogram ? MetricsRegistry.latencyBuckets : [])
        }
    }

    private let state = Mutex(State())

    public init() {}

    /// Declares a metric once; later declarations of the same name are ignored. An
    /// `unlabelled` counter or gauge is listed at 0 from the start (so `rate()` and alerts
    /// on it work before its first event); labelled ones get their zeros from `declare`.
    public func describe(_ name: String, _ kind: Kind, _ help: String, buckets: [Double] = [], unlabelled: Bool = false) {
        state.withLock { s in
            guard s.families[name] == nil else { return }
            var f = Family(kind: kind, help: help, buckets: buckets.sorted())
            if unlabelled, kind != .histogram { f.values[[]] = 0 }
            s.families[name] = f
            s.order.append(name)
        }
    }

    /// Lists a counter's label set at 0 unless it has a value already.
    public func declare(_ name: String, _ labels: [Label]) {
        state.withLock { s in
            var f = s.family(name, .counter)
            if f.values[labels] == nil { f.values[labels] = 0 }
            s.families[name] = f
        }
    }

    public func add(_ name: String, _ labels: [Label] = [], _ value: Double = 1) {
        state.withLock { s in
            var f = s.family(name, .counter)
            f.values[labels, default: 0] += value
            s.families[name] = f
        }
    }

    public func set(_ name: String, _ labels: [Label] = [], _ value: Double) {
        _ = set(name, labels, value, cap: .max)
    }

    /// Sets a gauge; a label set not listed yet is refused (false) once the family has `cap` of them.
    @discardableResult
    public func set(_ name: String, _ labels: [Label], _ value: Double, cap: Int) -> Bool {
        state.withLock { s in
            var f = s.family(name, .gauge)
            if f.values[labels] == nil, f.values.count >= cap { return false }
            f.values[labels] = value
            s.families[name] = f
            return true
        }
    }

    /// Removes the label sets of a counter or gauge whose value matches.
    public func remove(_ name: String, where match: (Double) -> Bool) {
        state.withLock { s in
            guard var f = s.families[name] else { return }
            f.values = f.values.filter { !match($0.value) }
            s.families[name] = f
        }
    }

    public func observe(_ name: String, _ labels: [Label] = [], _ value: Double) {
        state.withLock { s in
            var f = s.family(name, .histogram)
            var h = f.histograms[labels] ?? Histogram(counts: Array(repeating: 0, count: f.buckets.count + 1))
            let i = f.buckets.firstIndex { value <= $0 } ?? f.buckets.count
            h.counts[i] += 1
            h.sum += value
            h.count += 1
            f.histograms[labels] = h
            s.families[name] = f
        }
    }

    /// The current value of a counter or gauge (tests, STATUS=).
    public func value(_ name: String, _ labels: [Label] = []) -> Double? {
        state.withLock { $0.families[name]?.values[labels] }
    }

    /// Every label set of a counter or gauge with its value.
    public func series(_ name: String) -> [([Label], Double)] {
        state.withLock { s in (s.families[name]?.values ?? [:]).map { ($0.key, $0.value) } }
    }

    /// Sum over every label set of a counter or gauge.
    public func total(_ name: String) -> Double {
        state.withLock { $0.families[name]?.values.values.reduce(0, +) ?? 0 }
    }

    /// Observations so far of a histogram, over every label set.
    public func observations(_ name: String) -> Int {
        state.withLock { $0.families[name]?.histograms.values.reduce(0) { $0 + $1.count } ?? 0 }
    }

    /// Seconds: 0.5 ms to 10 s, roughly doubling (a Pi runs a small model in 1-50 ms).
    public static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]
    /// Finer at the low end, where "does the pipeline add under 2 ms?" is answered.
    public static let frameBuckets: [Double] = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]

    /// The text exposition format. Families appear in declaration order, label sets sorted.
    public func render(into out: inout String) {
        state.withLock { s in
            for name in s.order {
                guard let f = s.families[name] else { continue }
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
    public static let framesReceived = "vigil_frames_received_total"
    public static let framesProcessed = "vigil_frames_processed_total"
    public static let framesRejected = "vigil_frames_rejected_total"
    public static let framesDropped = "vigil_frames_dropped_total"
    public static let queuedFrames = "vigil_queued_frames"
    public static let rowsStored = "vigil_rows_stored_total"
    public static let detectionsStored = "vigil_detections_stored_total"
    public static let storeErrors = "vigil_store_errors_total"
    public static let rowsNotStored = "vigil_store_rows_not_stored_total"
    public static let storePendingRows = "vigil_store_pending_rows"
    public static let lastFrame = "vigil_last_frame_timestamp_seconds"
    public static let lastFrameUntracked = "vigil_last_frame_untracked_total"
    public static let brokerConnected = "vigil_broker_connected"
    public static let up = "vigil_up"
    public static let startTime = "vigil_start_time_seconds"
    public static let buildInfo = "vigil_build_info"
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

    /// Lists at 0 every labelled counter the config makes known, so each series exists from
    /// the start (Prometheus' `rate()` and `increase()` see the first event): frames per
    /// pipeline (and per reason rejected), alerts per alerting pipeline and state, actions per
    /// outcome, synced rows per table, reloads per result. Called at start and after a reload.
    public func declare(_ config: Config) {
        for p in config.pipelines {
            let pipeline = MetricsRegistry.Label("pipeline", p.name)
            for name in [MetricName.framesReceived, MetricName.framesProcessed, MetricName.framesDropped, MetricName.lastFrameUntracked] {
                metrics.declare(name, [pipeline])
            }
            for r in RejectReason.allCases where r != .unrouted { metrics.declare(MetricName.framesRejected, [pipeline, .init("reason", r.rawValue)]) }
            if p.alert != nil {
                for state in AlertEvent.State.allCases { metrics.declare(MetricName.alerts, [pipeline, .init("state", state.rawValue)]) }
            }
        }
        metrics.declare(MetricName.framesRejected, [.init("pipeline", "-"), .init("reason", RejectReason.unrouted.rawValue)])
        for a in config.actions {
            for o in [ActionOutcome.Status.ok, .error, .timeout, .skipped] {
                metrics.declare(MetricName.actions, [.init("action", a.name), .init("outcome", o.rawValue)])
            }
        }
        if config.sync != nil {
            for t in [SyncTable.alerts, .detections, .evidence] { metrics.declare(MetricName.syncedRows, [.init("table", t.rawValue)]) }
        }
        for result in ["ok", "failed"] { metrics.declare(MetricName.reloads, [.init("result", result)]) }
    }

    static func describeServiceMetrics(_ m: MetricsRegistry) {
        m.describe(MetricName.framesReceived, .counter, "Frames routed to a pipeline.")
        m.describe(MetricName.framesProcessed, .counter, "Frames turned into detections.")
        m.describe(MetricName.framesRejected, .counter, "Frames rejected, per pipeline (\"-\" for unrouted topics) and reason.")
        m.describe(MetricName.framesDropped, .counter, "Frames dropped because a pipeline fell behind (queue full).")
        m.describe(MetricName.queuedFrames, .gauge, "Frames waiting for inference.")
        m.describe(MetricName.rowsStored, .counter, "Rows committed to the SQLite log (detections and alerts).", unlabelled: true)
        m.describe(MetricName.detectionsStored, .counter, "Detection rows committed to the SQLite log (of vigil_rows_stored_total).",
                   unlabelled: true)
        m.describe(MetricName.storeErrors, .counter, "Failed commits to the SQLite log (rows are kept and retried).", unlabelled: true)
        m.describe(MetricName.rowsNotStored, .counter,
                   "Rows that never reached the SQLite log (dropped from memory while it refused writes, or unwritten at stop).",
                   unlabelled: true)
        m.describe(MetricName.storePendingRows, .gauge, "Rows waiting for the next commit.")
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
        m.describe(MetricName.brokerConnects, .counter, "Successful connections to the MQTT broker (1 + reconnects).", unlabelled: true)
        m.describe(MetricName.intakeWaits, .counter, "Times reading from the broker waited for a full pipeline queue (back-pressure instead of dropping).", unlabelled: true)
        m.describe(MetricName.intakePending, .gauge, "Journaled frames whose rows are not committed yet.")
        m.describe(MetricName.intakeBytes, .gauge, "Bytes of the intake journal's segment files.")
        m.describe(MetricName.baselineDevices, .gauge, "Devices with an anomaly baseline, per pipeline and status (warming: no alerts yet; ready).")
        m.describe(MetricName.baselineStuckFields, .gauge, "Fields of those devices that are stuck (a constant value for longer than their change rate makes plausible).")
        m.describe(MetricName.evidenceWritten, .counter, "Alerts whose evidence (frames, audio, readings) was kept.", unlabelled: true)
        m.describe(MetricName.evidenceDropped, .counter, "Alerts whose evidence was deleted to stay under storage.evidence_mb, or was larger than it.", unlabelled: true)
        m.describe(MetricName.evidenceFailed, .counter, "Evidence that could not be written (disk full, permissions).", unlabelled: true)
        m.describe(MetricName.evidenceBytes, .gauge, "Bytes of evidence kept on disk.")
        m.describe(MetricName.evidenceAlerts, .gauge, "Alerts with evidence kept on disk.")
        m.describe(MetricName.lastFrame, .gauge,
                   "When each device's last frame arrived (Unix time), per pipeline and device; at most \(Counters.lastFrameDeviceCap) devices, each until it is silent for limits.device_ttl_s.")
        m.describe(MetricName.lastFrameUntracked, .counter,
                   "Frames of devices left out of vigil_last_frame_timestamp_seconds because it lists \(Counters.lastFrameDeviceCap) devices already.")
        m.describe(MetricName.brokerConnected, .gauge, "1 while connected to the MQTT broker.")
        m.describe(MetricName.up, .gauge, "1 when /healthz would answer 200.")
        m.describe(MetricName.startTime, .gauge, "When vigild started (Unix time).")
        m.describe(MetricName.buildInfo, .gauge, "The running version.")
        ProcessMetrics.describe(m)
        m.describe(MetricName.motionStatesDropped, .counter, "Saved camera states deleted to stay under storage.motion_state_mb.")
    }
}
