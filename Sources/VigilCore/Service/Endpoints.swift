import Foundation

/// What the HTTP listener answers: `/healthz`, `/metrics`, and a one-line index at `/`.
public struct Endpoints: Sendable {
    let daemon: Daemon
    let health: HealthMonitor

    public init(daemon: Daemon, health: HealthMonitor) {
        self.daemon = daemon
        self.health = health
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case "/healthz":
            let h = health.readiness()
            return h.ok ? HTTPResponse(200, "ok\n") : HTTPResponse(503, h.reasons.joined(separator: "\n") + "\n")
        case "/metrics":
            return HTTPResponse(200, metrics(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/":
            return HTTPResponse(200, "vigild \(VigilVersion.string): /healthz /metrics /evidence/UUID\n")
        case let p where p.hasPrefix("/evidence/"):
            return EvidenceEndpoint(store: daemon.evidence, tokenFile: daemon.config.http?.tokenFile).handle(request)
        default:
            return HTTPResponse(404, "not found: \(request.path) (try /healthz or /metrics)\n")
        }
    }

    /// The Prometheus text exposition: frame counters per pipeline from `Counters`, then the
    /// registry (latency histograms, alerts, actions, sync, store gauges), then process state.
    public func metrics() -> String {
        let c = daemon.counters
        let s = c.snapshot()
        let pipelines = daemon.config.pipelines.map(\.name)
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ rows: [(String, Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, v) in rows { out += "\(name)\(labels) \(MetricsRegistry.number(v))\n" }
        }
        func label(_ pairs: (String, String)...) -> String {
            MetricsRegistry.format(pairs.map { MetricsRegistry.Label($0.0, $0.1) })
        }
        // Every configured pipeline appears, at 0 before its first frame, so rate() works from the start.
        let names = Array(Set(pipelines).union(s.received.keys).union(s.dropped.keys).union(s.processed.keys)).sorted()
        family("vigil_frames_received_total", "counter", "Frames routed to a pipeline.",
               names.map { (label(("pipeline", $0)), Double(s.received[$0] ?? 0)) })
        family("vigil_frames_processed_total", "counter", "Frames turned into detections.",
               names.map { (label(("pipeline", $0)), Double(s.processed[$0] ?? 0)) })
        var rejected: [(String, Double)] = []
        for p in Set(names).union(s.rejected.keys).sorted() {
            for r in RejectReason.allCases {
                if let n = s.rejected[p]?[r] { rejected.append((label(("pipeline", p), ("reason", r.rawValue)), Double(n))) }
            }
        }
        family("vigil_frames_rejected_total", "counter",
               "Frames rejected, per pipeline (\"-\" for unrouted topics) and reason.", rejected)
        family("vigil_frames_dropped_total", "counter", "Frames dropped because a pipeline fell behind (queue full).",
               names.map { (label(("pipeline", $0)), Double(s.dropped[$0] ?? 0)) })
        family("vigil_queued_frames", "gauge", "Frames waiting for inference.", [("", Double(daemon.engine.queuedFrames))])
        family("vigil_rows_stored_total", "counter", "Rows committed to the SQLite log.", [("", Double(s.stored))])
        family("vigil_store_errors_total", "counter", "Failed commits to the SQLite log (rows are kept and retried).",
               [("", Double(s.storeErrors))])
        family("vigil_store_rows_not_stored_total", "counter",
               "Rows that never reached the SQLite log (dropped from memory while it refused writes, or unwritten at stop).",
               [("", Double(s.notStored))])
        family("vigil_store_pending_rows", "gauge", "Rows waiting for the next commit.", [("", Double(daemon.store.pendingCount))])
        if c.metrics.total(MetricName.alerts) == 0 {
            // Before the first transition the family still appears, at zero, so dashboards and alerts on it work.
            let a = daemon.alerts.counts
            family(MetricName.alerts, "counter", "Alert transitions by state (raised, cleared).",
                   [(label(("state", "raised")), Double(a.raised)), (label(("state", "cleared")), Double(a.cleared))])
        }
        c.metrics.render(into: &out)
        family("vigil_broker_connected", "gauge", "1 while connected to the MQTT broker.",
               [("", daemon.isConnected ? 1 : 0)])
        family("vigil_up", "gauge", "1 when /healthz would answer 200.", [("", health.readiness().ok ? 1 : 0)])
        family("vigil_start_time_seconds", "gauge", "When vigild started (Unix time).",
               [("", daemon.startedAt.timeIntervalSince1970.rounded())])
        family("vigil_build_info", "gauge", "The running version.", [(label(("version", VigilVersion.string)), 1)])
        return out
    }
}
