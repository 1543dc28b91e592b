import Foundation

/// Whether the daemon does its job, and if not, why (each reason one short phrase).
public struct Health: Sendable, Equatable {
    public var reasons: [String] = []
    public var ok: Bool { reasons.isEmpty }
    public init(reasons: [String] = []) { self.reasons = reasons }
}

/// Two questions about a running daemon:
/// - `liveness()`: is the pipeline itself healthy? Frames waiting are being finished (or a
///   lane is on a frame younger than `limits.frameAllowance`: one long payload is work, not a
///   stall) and the store's writer answers. Only then does the watchdog pet systemd, so a
///   wedged worker or a hung SD card gets the process restarted. A missing broker is not a liveness failure:
///   a restart would not bring it back.
/// - `readiness()`: /healthz. Live, connected to the broker, the last commit succeeded, and
///   the log file is sound (not deleted, not read-only: Store/StoreHealth.swift).
public final class HealthMonitor: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is guarded by `lock`.
    private let daemon: Daemon
    private let lock = NSLock()
    private var stall = StallWatch()
    private var probeSentAt: Double?
    private var lastLiveness = Health()
    /// A check that sees the same queue and no progress for this long calls the pipeline stalled.
    public let stallAfter: Double

    public init(daemon: Daemon, stallAfter: Double = 10) {
        self.daemon = daemon
        self.stallAfter = stallAfter
    }

    /// Frames the workers finished. Drops and the rejections made on the broker thread do not
    /// count: they keep coming while a wedged worker holds its queue.
    static func finishedFrames(_ s: Counters.Snapshot) -> Int {
        s.totalProcessed + s.totalRejected - s.rejected(.unrouted) - s.rejected(.tooLarge)
    }

    /// Call periodically (the watchdog does, at half its interval).
    public func liveness(now: Double = HealthMonitor.now()) -> Health {
        var reasons: [String] = []
        let finished = HealthMonitor.finishedFrames(daemon.counters.snapshot())
        let engine = daemon.engine
        let queued = engine.queuedFrames, busySince = engine.busySince
        let allowance = daemon.config.limits.frameAllowance
        let stalledFor = lock.withLock {
            stall.look(finished: finished, queued: queued, busySince: busySince, allowance: allowance, now: now)
        }
        if let t = stalledFor, t >= stallAfter {
            reasons.append("pipeline stalled: \(queued) frames waiting, none finished for \(Int(t)) s")
        }
        // The store's writer queue must answer; a probe still pending since the last check means it hangs.
        let pendingFor: Double? = lock.withLock {
            if let sent = probeSentAt { return now - sent }
            probeSentAt = now
            return nil
        }
        if let t = pendingFor {
            // Copying a deleted file's rows out holds the writer as long as the copy takes; a
            // restart then would lose them for good.
            if t >= stallAfter && !daemon.counters.isStoreCopying {
                reasons.append("store writer has not answered for \(Int(t)) s")
            }
        } else {
            let store = daemon.store
            DispatchQueue.global().async { [weak self] in
                store.withDatabase { _ in }
                self?.lock.withLock { self?.probeSentAt = nil }
            }
        }
        let h = Health(reasons: reasons)
        lock.withLock { lastLiveness = h }
        return h
    }

    /// The last liveness result plus broker and store state: what /healthz answers.
    public func readiness() -> Health {
        var reasons = lock.withLock { lastLiveness.reasons }
        if !daemon.isConnected { reasons.insert("not connected to broker \(daemon.config.mqtt.address)", at: 0) }
        if let problem = daemon.counters.currentStoreProblem { reasons.append(problem) }
        if daemon.counters.isStoreFailing { reasons.append("store \(daemon.store.path): the last commit failed") }
        return Health(reasons: reasons)
    }

    /// Monotonic seconds: Dispatch's uptime clock (Inference/Engine.swift's `monotonicSeconds`,
    /// CLOCK_MONOTONIC on Linux, as the `clock_gettime` call here was).
    public static func now() -> Double { monotonicSeconds() }
}

/// Whether the pipeline is stalled, from successive looks at it: frames are waiting, none was
/// finished since the last look, and no lane is on a frame it began less than `allowance`
/// seconds ago. One long payload (~8 s for a 4 MiB one, against ~45 s from a stall to a
/// restart with the shipped unit) keeps its lane busy without finishing anything: that is work.
struct StallWatch {
    private var lastFinished = -1
    private var stalledSince: Double?

    /// How long the pipeline has looked stalled (nil: it does not).
    mutating func look(finished: Int, queued: Int, busySince: [Double], allowance: Double, now: Double) -> Double? {
        defer { lastFinished = finished }
        let working = busySince.contains { now - $0 < allowance }
        if queued > 0 && finished == lastFinished && !working {
            if stalledSince == nil { stalledSince = now }
        } else {
            stalledSince = nil
        }
        return stalledSince.map { now - $0 }
    }
}
