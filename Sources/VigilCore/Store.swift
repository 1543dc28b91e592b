import Foundation
import SQLite

/// An alert transition as stored in `alerts`.
public struct AlertRecord: Sendable, Equatable {
    public var uuid: String
    public var ts: Double
    public var pipeline: String
    public var device: String
    public var state: String          // raised | cleared
    public var label: String
    public var score: Double
    public var severity: String
    /// JSON: each action and its outcome.
    public var actions: String

    public init(uuid: String = Detection.newUUID(), ts: Double, pipeline: String, device: String, state: String,
                label: String, score: Double, severity: String, actions: String = "[]") {
        self.uuid = uuid; self.ts = ts; self.pipeline = pipeline; self.device = device; self.state = state
        self.label = label; self.score = score; self.severity = severity; self.actions = actions
    }
}

/// The single writer of the SQLite log. Callers on any thread append rows; a serial queue
/// owns the connection and commits what is waiting in one transaction every
/// `commitIntervalMs` or as soon as `commitRows` are waiting (mosquitto's persist-sqlite
/// does the same). A crash loses at most the rows of the last open window.
public final class Store: @unchecked Sendable {
    // @unchecked Sendable: `db` and statements are used only on `queue`; `pending` under `lock`.
    public let path: String
    let settings: StorageSettings
    private let queue = DispatchQueue(label: "vigil.store")
    private let db: Database
    private let insertDetection: Statement
    private let insertAlert: Statement
    private let lock = NSLock()
    private var pendingDetections: [Detection] = []
    private var pendingAlerts: [AlertRecord] = []
    private var timer: DispatchSourceTimer?
    private var flushScheduled = false
    private let counters: Counters?
    /// Rows kept in memory while the database refuses writes; beyond it the oldest detections go.
    let maxPending = 100_000
    private var lastError: String?

    public init(settings: StorageSettings, counters: Counters? = nil) throws {
        path = settings.path
        self.settings = settings
        self.counters = counters
        let dir = URL(fileURLWithPath: settings.path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        db = try Database(path: settings.path)
        try Store.configure(db)
        try Schema.migrator.migrate(db)
        insertDetection = try db.prepare("""
            INSERT OR IGNORE INTO detections(uuid, ts, pipeline, device, model, label, score, scores, latency_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        insertAlert = try db.prepare("""
            INSERT OR IGNORE INTO alerts(uuid, ts, pipeline, device, state, label, score, severity, actions)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let t = DispatchSource.makeTimerSource(queue: queue)
        let interval = DispatchTimeInterval.milliseconds(settings.commitIntervalMs)
        t.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(max(1, settings.commitIntervalMs / 10)))
        t.setEventHandler { [weak self] in self?.flushOnQueue() }
        t.resume()
        timer = t
    }

    deinit { timer?.cancel() }

    static func configure(_ db: Database) throws {
        try db.execute("PRAGMA journal_mode = WAL")
        // NORMAL in WAL mode: a committed transaction survives a process crash (SIGKILL);
        // only a power cut can lose the last commits, never corrupt the file.
        try db.execute("PRAGMA synchronous = NORMAL")
        try db.execute("PRAGMA foreign_keys = ON")
    }

    public func append(_ d: Detection) {
        let n = lock.withLock { () -> Int in
            pendingDetections.append(d)
            return pendingDetections.count + pendingAlerts.count
        }
        if n >= settings.commitRows { scheduleFlush() }
    }

    public func append(_ a: AlertRecord) {
        lock.withLock { pendingAlerts.append(a) }
        // Alerts are rare and matter: commit them without waiting for the tick.
        scheduleFlush()
    }

    private func scheduleFlush() {
        let go = lock.withLock { () -> Bool in
            if flushScheduled { return false }
            flushScheduled = true
            return true
        }
        if go { queue.async { self.flushOnQueue() } }
    }

    /// Rewrites an alert's `actions` column once its actions have finished (alerts hook).
    /// Goes through the writer queue after any pending insert of that alert; clears
    /// `synced_at` so sync sends the final row again (the cloud de-duplicates by uuid).
    public func updateAlertActions(uuid: String, json: String) {
        queue.async { [self] in
            flushOnQueue()
            let patchedInMemory = lock.withLock { () -> Bool in
                guard let i = pendingAlerts.firstIndex(where: { $0.uuid == uuid }) else { return false }
                pendingAlerts[i].actions = json   // the insert failed and waits for a retry
                return true
            }
            if patchedInMemory { return }
            do {
                _ = try db.query("UPDATE alerts SET actions = ?, synced_at = NULL WHERE uuid = ?", [.text(json), .text(uuid)])
            } catch {
                log.limited(.error, key: "store-write", "store \(path): cannot record the outcome of alert \(uuid)'s actions: \(error)")
            }
        }
    }

    /// Commits everything waiting, and returns when it is on disk (or failed).
    public func flush() { queue.sync { flushOnQueue() } }

    /// Runs `body` on the writer's queue with the connection (for maintenance: retention, sync marks).
    public func withDatabase<T>(_ body: (Database) throws -> T) rethrows -> T {
        try queue.sync { try body(db) }
    }

    public var pendingCount: Int { lock.withLock { pendingDetections.count + pendingAlerts.count } }

    private func flushOnQueue() {
        let (detections, alerts) = lock.withLock { () -> ([Detection], [AlertRecord]) in
            flushScheduled = false
            defer { pendingDetections.removeAll(keepingCapacity: true); pendingAlerts.removeAll(keepingCapacity: true) }
            return (pendingDetections, pendingAlerts)
        }
        guard !detections.isEmpty || !alerts.isEmpty else { return }
        do {
            try db.transaction {
                for a in alerts {
                    try insertAlert.run([.text(a.uuid), .real(a.ts), .text(a.pipeline), .text(a.device), .text(a.state),
                                         .text(a.label), .real(a.score), .text(a.severity), .text(a.actions)])
                }
                for d in detections {
                    try insertDetection.run([.text(d.uuid), .real(d.ts), .text(d.pipeline), .text(d.device), .text(d.model),
                                             .text(d.label), .real(d.score), .text(d.scoresJSON), .real(d.latencyMs)])
                }
            }
            counters?.rowsStored(detections.count + alerts.count)
            if lastError != nil {
                log.notice("store \(path): writing again")
                lastError = nil
            }
        } catch {
            // Keep the rows and try again on the next tick; the daemon goes on.
            counters?.storeFailed()
            lastError = "\(error)"
            log.limited(.error, key: "store-write", "store \(path): cannot write \(detections.count + alerts.count) rows: \(error)")
            requeue(detections, alerts)
        }
    }

    private func requeue(_ detections: [Detection], _ alerts: [AlertRecord]) {
        lock.withLock {
            pendingDetections.insert(contentsOf: detections, at: 0)
            pendingAlerts.insert(contentsOf: alerts, at: 0)
            let over = pendingDetections.count + pendingAlerts.count - maxPending
            if over > 0 {
                // Oldest detections go first; alerts are kept.
                let n = min(over, pendingDetections.count)
                pendingDetections.removeFirst(n)
                log.limited(.error, key: "store-drop", "store \(path): dropped \(n) detections held in memory while the database refused writes")
            }
        }
    }

    /// Commits what is waiting and stops the tick.
    public func close() {
        timer?.cancel()
        flush()
    }
}
