import Foundation

/// Why a frame was not turned into a detection.
public enum RejectReason: String, Sendable, CaseIterable {
    case malformed        // does not parse
    case wrongSize        // parses but has the wrong number of values or dimensions
    case nonFinite        // NaN or Inf
    case tooLarge         // over limits.max_payload_bytes
    case unrouted         // no pipeline owns the topic
    case inferenceFailed  // the model raised an error
    case unsupported      // well-formed, but a variant vigil does not read (stereo, 24-bit, P2, another sample rate)
    case outOfOrder       // a sensor reading older than the newest one already in its window
    case redelivered      // the broker sent a message again that vigild had already taken (Intake/RedeliveryFilter)
    case badTimestamp     // a payload `ts` further ahead of the gateway's clock than limits.max_clock_skew_s
}

/// Live counters for STATUS=, /metrics and tests. Cheap to bump from any thread.
public final class Counters: @unchecked Sendable {
    // @unchecked Sendable: all state is guarded by `lock`.
    private let lock = NSLock()
    private var received: [String: Int] = [:]
    private var processed: [String: Int] = [:]
    private var rejected: [String: [RejectReason: Int]] = [:]
    private var dropped: [String: Int] = [:]
    private var stored = 0
    private var storeErrors = 0
    private var storeFailing = false
    private var notStored = 0
    private var storeProblem: String?
    private var storeCopying = false
    /// Everything else /metrics shows (latency histograms, alerts, actions, sync): see Service/Metrics.swift.
    public let metrics = MetricsRegistry()

    public init() { Counters.describeServiceMetrics(metrics) }

    public func frameReceived(_ pipeline: String) { lock.withLock { received[pipeline, default: 0] += 1 } }
    public func frameProcessed(_ pipeline: String) { lock.withLock { processed[pipeline, default: 0] += 1 } }
    public func frameRejected(_ pipeline: String, _ reason: RejectReason) {
        lock.withLock { rejected[pipeline, default: [:]][reason, default: 0] += 1 }
    }
    public func framesDropped(_ pipeline: String, _ n: Int = 1) { lock.withLock { dropped[pipeline, default: 0] += n } }
    public func rowsStored(_ n: Int) { lock.withLock { stored += n; storeFailing = false } }
    public func storeFailed() { lock.withLock { storeErrors += 1; storeFailing = true } }
    /// True when the last commit attempt failed (for /healthz).
    public var isStoreFailing: Bool { lock.withLock { storeFailing } }
    /// Rows that never reached the file: dropped from memory while it refused writes, or
    /// still waiting when vigild stopped. With `stored`, every row is accounted for.
    public func rowsNotStored(_ n: Int) { if n > 0 { lock.withLock { notStored += n } } }
    /// What is wrong with the log file right now (deleted, read-only, cannot be opened), for /healthz.
    public func setStoreProblem(_ p: String?) { lock.withLock { storeProblem = p } }
    public var currentStoreProblem: String? { lock.withLock { storeProblem } }
    /// True while the store copies a deleted file's rows out: its writer is busy, not hung.
    public func setStoreCopying(_ on: Bool) { lock.withLock { storeCopying = on } }
    public var isStoreCopying: Bool { lock.withLock { storeCopying } }

    public struct Snapshot: Sendable {
        public var received: [String: Int]
        public var processed: [String: Int]
        public var rejected: [String: [RejectReason: Int]]
        public var dropped: [String: Int]
        public var stored: Int
        public var storeErrors: Int
        public var notStored: Int

        public var totalReceived: Int { received.values.reduce(0, +) }
        public var totalProcessed: Int { processed.values.reduce(0, +) }
        public var totalRejected: Int { rejected.values.flatMap(\.values).reduce(0, +) }
        public var totalDropped: Int { dropped.values.reduce(0, +) }
        public func rejected(_ reason: RejectReason) -> Int { rejected.values.compactMap { $0[reason] }.reduce(0, +) }
    }

    public func snapshot() -> Snapshot {
        lock.withLock {
            Snapshot(received: received, processed: processed, rejected: rejected, dropped: dropped,
                     stored: stored, storeErrors: storeErrors, notStored: notStored)
        }
    }
}
