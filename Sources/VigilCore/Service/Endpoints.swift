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

    /// The Prometheus text exposition: the gauges read at scrape time are set into the one
    /// registry (Service/Metrics.swift), which renders everything.
    public func metrics() -> String {
        let m = daemon.counters.metrics
        m.set(MetricName.queuedFrames, [], Double(daemon.engine.queuedFrames))
        m.set(MetricName.storePendingRows, [], Double(daemon.store.pendingCount))
        daemon.counters.expireLastFrames(olderThan: daemon.config.limits.deviceTTL)
        m.set(MetricName.brokerConnected, [], daemon.isConnected ? 1 : 0)
        m.set(MetricName.up, [], health.readiness().ok ? 1 : 0)
        m.set(MetricName.startTime, [], daemon.startedAt.timeIntervalSince1970.rounded())
        m.set(MetricName.buildInfo, [.init("version", VigilVersion.string)], 1)
        ProcessMetrics.update(m)
        var out = ""
        m.render(into: &out)
        return out
    }
}
