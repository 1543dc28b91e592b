import Foundation
import SQLite

/// The daemon's heartbeat, on its own queue: checks liveness every tick, pets systemd's
/// watchdog at half of `WATCHDOG_USEC` while the pipeline is healthy (and withholds it, with
/// a logged reason, while it is not), sends `STATUS=` with live counters, and refreshes the
/// store gauges (unsynced rows, sync lag, database size) for /metrics.
public final class Watchdog: @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched only on `queue` (beat and refreshGauges assert it).
    public let notify: SdNotify
    public let health: HealthMonitor
    private let daemon: Daemon
    private let queue = DispatchQueue(label: "vigil.watchdog")
    private var timer: DispatchSourceTimer?
    private var lastPet = -Double.infinity
    private var lastStatus = -Double.infinity
    private var lastGauges = -Double.infinity
    private var rate = RateMeter()
    private var withheld = false
    /// Store queries run here, so a hung database cannot stop the heartbeat.
    private let gaugeQueue = DispatchQueue(label: "vigil.gauges")
    private var gaugesRunning = false
    /// STATUS= and the store gauges are refreshed at most this often.
    public var statusInterval = 5.0
    public var gaugeInterval = 10.0

    public init(daemon: Daemon, notify: SdNotify, health: HealthMonitor) {
        self.daemon = daemon
        self.notify = notify
        self.health = health
    }

    /// Seconds between ticks: a quarter of the watchdog interval (so a ping lands well inside
    /// each half), at most one second.
    public var tick: Double { min(1, (notify.watchdogInterval ?? 4) / 4) }

    /// True while pings are withheld because the pipeline is not live.
    public var isWithholding: Bool { queue.sync { withheld } }

    public func start() {
        gaugeQueue.sync { readGauges() }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now(), repeating: tick, leeway: .milliseconds(50))
        t.setEventHandler { [weak self] in self?.beat() }
        t.resume()
        timer = t
    }

    public func stop() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }

    private func beat() {
        dispatchPrecondition(condition: .onQueue(queue))
        let now = HealthMonitor.now()
        let live = health.liveness(now: now)
        if let interval = notify.watchdogInterval {
            if live.ok {
                if withheld { log.notice("pipeline healthy again: resuming watchdog pings") }
                withheld = false
                if now - lastPet >= interval / 2 {
                    notify.watchdog()
                    lastPet = now
                }
            } else {
                if !withheld {
                    log.error("withholding the systemd watchdog ping: \(live.reasons.joined(separator: "; "))")
                }
                withheld = true
            }
        }
        if now - lastGauges >= gaugeInterval { refreshGauges(now: now) }
        log.flushSuppressed()
        daemon.alerts.expireDevices()
        if now - lastStatus >= statusInterval {
            lastStatus = now
            let line = statusLine(now: now)
            notify.status(line)
        }
    }

    /// What STATUS= says right now.
    public func currentStatus() -> String { queue.sync { statusLine(now: HealthMonitor.now()) } }

    /// The STATUS= text: frames/s, alerts, unsynced rows, and trouble if any. Runs on `queue`.
    func statusLine(now: Double) -> String {
        let s = daemon.counters.snapshot()
        let fps = rate.update(total: s.totalReceived, now: now)
        var parts = [String(format: "%.1f frames/s", fps), "frames \(s.totalReceived)",
                     "alerts \(daemon.alerts.counts.raised)"]
        if let u = daemon.counters.unsyncedRows { parts.append("unsynced \(u)") }
        if s.totalRejected > 0 { parts.append("rejected \(s.totalRejected)") }
        if s.totalDropped > 0 { parts.append("dropped \(s.totalDropped)") }
        if s.notStored > 0 { parts.append("rows not stored \(s.notStored)") }
        let h = health.readiness()
        if !h.ok { parts.append(h.reasons.joined(separator: "; ")) }
        return parts.joined(separator: ", ")
    }

    /// Starts a gauge refresh unless one is still running (on `queue`).
    func refreshGauges(now: Double) {
        dispatchPrecondition(condition: .onQueue(queue))
        lastGauges = now
        guard !gaugesRunning else { return }
        gaugesRunning = true
        gaugeQueue.async { [self] in
            readGauges()
            queue.async { self.gaugesRunning = false }
        }
    }

    /// Reads what only the database knows. The query runs on the store's queue and uses the
    /// partial indexes on unsynced rows, so it stays cheap.
    private func readGauges() {
        let store = daemon.store
        daemon.counters.setDatabaseBytes(Watchdog.fileBytes(store.path))
        let syncConfigured = daemon.config.sync != nil
        do {
            let (unsynced, oldest): (Int, Double?) = try store.withDatabase { db in
                let n = try db.scalar("""
                    SELECT (SELECT count(*) FROM detections WHERE synced_at IS NULL)
                         + (SELECT count(*) FROM alerts WHERE synced_at IS NULL)
                    """).int ?? 0
                let d = try db.scalar("SELECT ts FROM detections WHERE synced_at IS NULL ORDER BY id LIMIT 1").double
                let a = try db.scalar("SELECT ts FROM alerts WHERE synced_at IS NULL ORDER BY id LIMIT 1").double
                return (Int(n), [d, a].compactMap { $0 }.min())
            }
            daemon.counters.setUnsyncedRows(unsynced)
            if syncConfigured {
                daemon.counters.setSyncLag(oldest.map { max(0, Date().timeIntervalSince1970 - $0) } ?? 0)
            }
        } catch {
            log.limited(.warning, key: "gauges", "store \(store.path): cannot count unsynced rows: \(error)")
        }
    }

    /// The database file plus its WAL: what the log takes on disk.
    public static func fileBytes(_ path: String) -> Int {
        [path, path + "-wal"].reduce(0) { sum, p in
            sum + ((try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0)
        }
    }
}

/// Frames per second over the last few seconds.
struct RateMeter {
    private var last: (total: Int, at: Double)?
    private var value = 0.0

    mutating func update(total: Int, now: Double) -> Double {
        if let last, now - last.at >= 0.5 {
            value = Double(total - last.total) / (now - last.at)
            self.last = (total, now)
        } else if last == nil {
            last = (total, now)
        }
        return value
    }
}
