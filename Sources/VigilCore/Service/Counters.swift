import Foundation
import Synchronization

/// Why a frame was not turned into a detection.
public enum RejectReason: String, Sendable, CaseIterable {
    case malformed        // does not parse
    case wrongSize        // parses but has the wrong number of values or dimensions
    case nonFinite        // NaN or Inf
    case tooLarge         // over limits.max_payload_bytes
    case unrouted         // no pipeline owns the topic
    case inferenceFailed  // the model raised an error
    case unsupported      // well-formed, but a variant vigil does not read (A-law WAV, P2, another sample rate)
    case outOfOrder       // a sensor reading older than the newest one already in its window
    case redelivered      // the broker sent a message again that vigild had already taken (Intake/RedeliveryFilter)
    case badTimestamp     // a payload `ts` further ahead of the gateway's clock than limits.max_clock_skew_s
}

/// The typed face of vigild's one counter system: each stage bumps what it owns through a
/// method here (`frameReceived`, `alert`, `actionRun`, ...), and every count lives in one
/// registry of named metrics (`MetricsRegistry`, Service/Metrics.swift) that /metrics renders,
/// STATUS= and /healthz read through `snapshot()`. Besides the counts, the store's health
/// flags for /healthz. Cheap to bump from any thread.
public final class Counters: Sendable {
    public let metrics = MetricsRegistry()
    private let storeState = Mutex(StoreState())

    struct StoreState {
        var failing = false
        var problem: String?
        var copying = false
    }

    public init() { Counters.describeServiceMetrics(metrics) }

    /// A frame routed to `pipeline`; with its device, the device's last-seen time (`at`, the arrival).
    public func frameReceived(_ pipeline: String, device: String? = nil, at: Double = Date().timeIntervalSince1970) {
        metrics.add(MetricName.framesReceived, [.init("pipeline", pipeline)])
        if let device { lastFrame(pipeline: pipeline, device: device, at: at) }
    }
    public func frameProcessed(_ pipeline: String) { metrics.add(MetricName.framesProcessed, [.init("pipeline", pipeline)]) }
    public func frameRejected(_ pipeline: String, _ reason: RejectReason) {
        metrics.add(MetricName.framesRejected, [.init("pipeline", pipeline), .init("reason", reason.rawValue)])
    }
    public func framesDropped(_ pipeline: String, _ n: Int = 1) {
        metrics.add(MetricName.framesDropped, [.init("pipeline", pipeline)], Double(n))
    }
    /// `n` rows committed in one go, `alerts` of them alert rows (the rest are detections).
    public func rowsStored(_ n: Int, alerts: Int) {
        metrics.add(MetricName.rowsStored, [], Double(n))
        metrics.add(MetricName.detectionsStored, [], Double(n - alerts))
        storeState.withLock { $0.failing = false }
    }
    public func storeFailed() {
        metrics.add(MetricName.storeErrors)
        storeState.withLock { $0.failing = true }
    }
    /// True when the last commit attempt failed (for /healthz).
    public var isStoreFailing: Bool { storeState.withLock { $0.failing } }
    /// Rows that never reached the file: dropped from memory while it refused writes, or
    /// still waiting when vigild stopped. With `stored`, every row is accounted for.
    public func rowsNotStored(_ n: Int) { if n > 0 { metrics.add(MetricName.rowsNotStored, [], Double(n)) } }
    /// What is wrong with the log file right now (deleted, read-only, cannot be opened), for /healthz.
    public func setStoreProblem(_ p: String?) { storeState.withLock { $0.problem = p } }
    public var currentStoreProblem: String? { storeState.withLock { $0.problem } }
    /// True while the store copies a deleted file's rows out: its writer is busy, not hung.
    public func setStoreCopying(_ on: Bool) { storeState.withLock { $0.copying = on } }
    public var isStoreCopying: Bool { storeState.withLock { $0.copying } }

    /// Series of `vigil_last_frame_timestamp_seconds` at most: one per pipeline and device,
    /// so a flood of made-up device names cannot grow /metrics (or Prometheus) without bound.
    /// Past it, a device not listed yet gets no series; its frames are counted in
    /// `vigil_last_frame_untracked_total`. A device silent for `limits.device_ttl_s` leaves the
    /// gauge (`expireLastFrames`), which makes room again.
    public static let lastFrameDeviceCap = 1000

    func lastFrame(pipeline: String, device: String, at: Double) {
        if !metrics.set(MetricName.lastFrame, [.init("pipeline", pipeline), .init("device", device)], at,
                        cap: Counters.lastFrameDeviceCap) {
            metrics.add(MetricName.lastFrameUntracked, [.init("pipeline", pipeline)])
            log.limited(.warning, key: "last-frame-cap", "pipeline \(pipeline): device \(Logger.clip(device)) has no last-seen series: vigil_last_frame_timestamp_seconds already lists \(Counters.lastFrameDeviceCap) devices (counted in vigil_last_frame_untracked_total)")
        }
    }

    /// Drops the last-seen series of devices silent for `ttl` seconds (at each scrape).
    public func expireLastFrames(olderThan ttl: Double, now: Double = Date().timeIntervalSince1970) {
        metrics.remove(MetricName.lastFrame) { $0 < now - ttl }
    }

    public struct Snapshot: Sendable {
        public var received: [String: Int]
        public var processed: [String: Int]
        public var rejected: [String: [RejectReason: Int]]
        public var dropped: [String: Int]
        /// Rows committed: detections and alerts.
        public var stored: Int
        /// Of `stored`, the detections: what the log's `detections` table and vigilctl count.
        public var storedDetections: Int
        public var storeErrors: Int
        public var notStored: Int

        public var totalReceived: Int { received.values.reduce(0, +) }
        public var totalProcessed: Int { processed.values.reduce(0, +) }
        public var totalRejected: Int { rejected.values.flatMap(\.values).reduce(0, +) }
        public var totalDropped: Int { dropped.values.reduce(0, +) }
        public func rejected(_ reason: RejectReason) -> Int { rejected.values.compactMap { $0[reason] }.reduce(0, +) }
    }

    /// The frame and row counts, read from the registry.
    public func snapshot() -> Snapshot {
        func perPipeline(_ name: String) -> [String: Int] {
            var out: [String: Int] = [:]
            for (labels, v) in metrics.series(name) where v > 0 {
                if let p = labels.first(where: { $0.name == "pipeline" })?.value { out[p, default: 0] += Int(v) }
            }
            return out
        }
        var rejected: [String: [RejectReason: Int]] = [:]
        for (labels, v) in metrics.series(MetricName.framesRejected) where v > 0 {
            guard let p = labels.first(where: { $0.name == "pipeline" })?.value,
                  let r = labels.first(where: { $0.name == "reason" }).flatMap({ RejectReason(rawValue: $0.value) }) else { continue }
            rejected[p, default: [:]][r, default: 0] += Int(v)
        }
        return Snapshot(received: perPipeline(MetricName.framesReceived), processed: perPipeline(MetricName.framesProcessed),
                        rejected: rejected, dropped: perPipeline(MetricName.framesDropped),
                        stored: Int(metrics.total(MetricName.rowsStored)),
                        storedDetections: Int(metrics.total(MetricName.detectionsStored)), storeErrors: Int(metrics.total(MetricName.storeErrors)),
                        notStored: Int(metrics.total(MetricName.rowsNotStored)))
    }
}
