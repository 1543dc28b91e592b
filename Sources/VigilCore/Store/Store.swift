import Foundation
import SQLite

/// The single writer of the SQLite log. Callers on any thread append rows; a serial queue
/// owns the connection and commits what is waiting in one transaction every
/// `commitIntervalMs` or as soon as `commitRows` are waiting (mosquitto's persist-sqlite
/// does the same). A crash loses at most the rows of the last open window.
///
/// The file never grows past `max_size_mb`: SQLite's `max_page_count` is set to the cap, so
/// a commit that would pass it fails with SQLITE_FULL exactly as a full disk does, and both
/// are handled the same way (StoreCap.swift): the oldest detections are deleted, alerts only
/// when no detection is left, the drop is counted in `meta`, and the commit is retried.
/// Retention and sync bookkeeping also run here, on the one writer (StoreSync.swift).
public final class Store: @unchecked Sendable {
    // @unchecked Sendable: `db`, statements, limits, drop totals and change marks are used only
    // on `queue`; `pending*` and `flushScheduled` (appended from any thread) under `lock`.
    public let path: String
    let directory: String
    let settings: StorageSettings
    let queue = DispatchQueue(label: "vigil.store")
    /// The connection; replaced when the file was deleted under it (Store/StoreHealth.swift).
    var db: Database
    /// The commit's statements on `db`; nil while there is no file to write to.
    var inserts: StoreInserts?
    let lock = NSLock()
    var pendingDetections: [Detection] = []
    var pendingAlerts: [AlertRecord] = []
    /// Intake journal entries whose rows are appended above: their marks commit with those rows.
    var pendingRetired: [UInt64] = []
    /// Told the journal entries a commit retired (on the writer's queue).
    private var retireListener: (@Sendable ([UInt64]) -> Void)?
    private var timer: DispatchSourceTimer?
    private var maintenanceTimer: DispatchSourceTimer?
    private var fileTimer: DispatchSourceTimer?
    private var flushScheduled = false
    let counters: Counters?
    /// Rows kept in memory while the database refuses writes; beyond it the oldest detections go.
    let maxPending: Int
    var lastError: String?
    /// What is wrong with the file right now (deleted, read-only, cannot be opened), for /healthz.
    var problem: String? { didSet { counters?.setStoreProblem(problem.map { "store \(path): \($0)" }) } }
    /// True while the file must be opened again (after it was deleted, or could not be opened).
    var needsReopen = false
    /// When to try again to copy a deleted file's rows out, and the wait after that (doubling:
    /// each try copies the whole file).
    var rewriteRetry = (at: 0.0, delay: 1.0)
    /// Pages the cap allows (`max_size_mb` / page size).
    let capPages: Int64
    /// The page limit in force: the cap, or the file's size when the disk ran low (StoreCap.swift).
    var limitPages: Int64 = 0
    let pageSize: Int64
    /// Totals of rows dropped by the size cap or a full disk (also in `meta`).
    var droppedDetectionsTotal = 0
    var droppedAlertsTotal = 0
    /// Rows dropped from memory that `meta` does not count yet (written with the next commit).
    var unrecordedDrops = (detections: 0, alerts: 0)
    /// Told when alerts were committed (sync sends them without waiting for its tick).
    private var alertListener: (@Sendable () -> Void)?
    /// Alerts rewritten after insert, by the change's sequence number (StoreSync.swift).
    var alertChanges: [String: Int] = [:]
    var changeSeq = 0

    public init(settings: StorageSettings, counters: Counters? = nil, maxPending: Int = 100_000) throws {
        path = settings.path
        self.settings = settings
        self.counters = counters
        self.maxPending = maxPending
        let dir = URL(fileURLWithPath: settings.path).deletingLastPathComponent().path
        directory = dir
        if !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        // A corrupt file is moved aside and a fresh log started; anything else that stops the
        // file from opening throws an error naming the file and the remedy (Store/StoreHealth.swift).
        var unavailable: StoreError?
        do {
            db = try Store.openLog(path: settings.path, durability: settings.durability)
        } catch let e as StoreError where e.retryable {
            db = Store.detachedConnection()
            unavailable = e
        }
        pageSize = max(512, db.scalarInt("PRAGMA page_size") ?? 4096)
        capPages = max(16, Int64(settings.maxSizeMB * 1024 * 1024) / pageSize)
        if let unavailable {
            startDetached(unavailable)
        } else {
            inserts = try StoreInserts(db)
            checkWritable()
            droppedDetectionsTotal = Int(try metaOnQueue(MetaKey.droppedDetections) ?? "") ?? 0
            droppedAlertsTotal = Int(try metaOnQueue(MetaKey.droppedAlerts) ?? "") ?? 0
            try applyCap()
        }

        let t = DispatchSource.makeTimerSource(queue: queue)
        let interval = DispatchTimeInterval.milliseconds(settings.commitIntervalMs)
        t.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(max(1, settings.commitIntervalMs / 10)))
        t.setEventHandler { [weak self] in self?.flushOnQueue() }
        t.resume()
        timer = t
        // Retention runs once at start and then on a slow tick: it only deletes old synced rows.
        let m = DispatchSource.makeTimerSource(queue: queue)
        let every = DispatchTimeInterval.milliseconds(Int(settings.maintenanceIntervalSeconds * 1000))
        m.schedule(deadline: .now(), repeating: every, leeway: .seconds(1))
        m.setEventHandler { [weak self] in self?.retentionOnQueue(now: Date().timeIntervalSince1970) }
        m.resume()
        maintenanceTimer = m
        // The file is looked at every second: deleted under us, or to be opened again.
        let f = DispatchSource.makeTimerSource(queue: queue)
        f.schedule(deadline: .now() + Store.fileCheckInterval, repeating: Store.fileCheckInterval, leeway: .milliseconds(100))
        f.setEventHandler { [weak self] in self?.checkFileOnQueue() }
        f.resume()
        fileTimer = f
    }

    deinit {
        timer?.cancel()
        maintenanceTimer?.cancel()
        fileTimer?.cancel()
    }

    static func configure(_ db: Database, durability: Durability = .process) throws {
        try db.execute("PRAGMA journal_mode = WAL")
        // NORMAL in WAL mode: a committed transaction survives a process crash (SIGKILL);
        // only a power cut can lose the last commits, never corrupt the file. FULL syncs the
        // WAL at every commit, so a commit (and the journal entries it retires) survives one.
        try db.execute(durability == .power ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
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

    /// An intake journal entry whose rows were appended before this call: its mark goes into
    /// the same commit as those rows (or a later one), never an earlier one.
    public func appendRetired(_ seq: UInt64) {
        let n = lock.withLock { () -> Int in
            pendingRetired.append(seq)
            return pendingDetections.count + pendingAlerts.count + pendingRetired.count
        }
        if n >= settings.commitRows { scheduleFlush() }
    }

    /// Sets what to call with the journal entries each commit retired (on the writer's queue: return quickly).
    public func onRetired(_ listener: @escaping @Sendable ([UInt64]) -> Void) {
        lock.withLock { retireListener = listener }
    }

    /// The journal's sequence numbers from `first` on whose rows are committed (replay at start).
    public func retiredIntakeSeqs(from first: UInt64) throws -> Set<UInt64> {
        try withDatabase { db in
            Set(try db.query("SELECT seq FROM intake_retired WHERE seq >= ?", [.integer(Int64(bitPattern: first))]).compactMap { $0.first?.int.map { UInt64(bitPattern: $0) } })
        }
    }

    /// Forgets the marks of journal entries below `seq` (their segments are deleted).
    public func pruneRetired(below seq: UInt64) {
        queue.async { [self] in
            do { _ = try db.query("DELETE FROM intake_retired WHERE seq < ?", [.integer(Int64(bitPattern: seq))]) } catch {
                log.limited(.warning, key: "store-prune", "store \(path): cannot prune intake marks: \(error)")
            }
        }
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
            // A batch read before this change must not mark the row synced when its ack comes.
            noteAlertChangedOnQueue(uuid)
            do {
                _ = try db.query("UPDATE alerts SET actions = ?, synced_at = NULL WHERE uuid = ?", [.text(json), .text(uuid)])
            } catch {
                log.limited(.error, key: "store-write", "store \(path): cannot record the outcome of alert \(uuid)'s actions: \(error)")
            }
        }
    }

    /// Sets what to call after alerts were committed (on the writer's queue: return quickly).
    public func onAlertsCommitted(_ listener: @escaping @Sendable () -> Void) {
        lock.withLock { alertListener = listener }
    }

    /// Commits everything waiting, and returns when it is on disk (or failed).
    public func flush() { queue.sync { flushOnQueue() } }

    /// Runs `body` on the writer's queue with the connection (for maintenance, tests and tools).
    public func withDatabase<T>(_ body: (Database) throws -> T) rethrows -> T {
        try queue.sync { try body(db) }
    }

    /// Rows not in the database yet (waiting for the window, or for the disk).
    public var pendingCount: Int {
        // On the queue, so that rows a flush has taken out and may put back are counted.
        queue.sync { lock.withLock { pendingDetections.count + pendingAlerts.count } }
    }

    private func flushOnQueue() {
        let (detections, alerts, retired) = lock.withLock { () -> ([Detection], [AlertRecord], [UInt64]) in
            flushScheduled = false
            defer {
                pendingDetections.removeAll(keepingCapacity: true)
                pendingAlerts.removeAll(keepingCapacity: true)
                pendingRetired.removeAll(keepingCapacity: true)
            }
            return (pendingDetections, pendingAlerts, pendingRetired)
        }
        guard !detections.isEmpty || !alerts.isEmpty || !retired.isEmpty else { return }
        // Held back by a nearly full disk: see first whether space came back.
        if limitPages < capPages { watchFreeSpace() }
        // Normally one transaction. On SQLITE_FULL room is made by policy and the rows are
        // tried again; while the disk (not the cap) is full, in slices small enough for the
        // WAL space a full disk leaves. The journal marks go with the last slice.
        var restAlerts = alerts[...], restDetections = detections[...]
        var restRetired = retired
        var slice = Int.max
        var attempt = 0
        var stored = 0
        while !restAlerts.isEmpty || !restDetections.isEmpty || !restRetired.isEmpty {
            let a = restAlerts.prefix(slice)
            let d = restDetections.prefix(max(0, slice - a.count))
            let last = a.count == restAlerts.count && d.count == restDetections.count
            do {
                try insert(a, d, last ? restRetired : [])
                restAlerts = restAlerts.dropFirst(a.count)
                restDetections = restDetections.dropFirst(d.count)
                if last { restRetired = [] }
                stored += a.count + d.count
                attempt = 0
            } catch let e as SQLiteError where e.isFull && attempt < 8 {
                attempt += 1
                let room = makeRoom(rows: (a.count + d.count + (last ? restRetired.count : 0)) << attempt, cause: e)
                if room.diskFull { slice = 50 }
                if room.made == 0 {
                    fail(e, Array(restDetections), Array(restAlerts), restRetired)
                    break
                }
            } catch {
                fail(error, Array(restDetections), Array(restAlerts), restRetired)
                break
            }
        }
        if !retired.isEmpty && restRetired.isEmpty, let listener = lock.withLock({ retireListener }) { listener(retired) }
        guard stored > 0 else { return }
        counters?.rowsStored(stored)
        if alerts.count > restAlerts.count, let listener = lock.withLock({ alertListener }) { listener() }
        watchFreeSpace()
        if lastError != nil && restAlerts.isEmpty && restDetections.isEmpty {
            log.notice("store \(path): writing again")
            lastError = nil
        }
        if problem != nil && restAlerts.isEmpty && restDetections.isEmpty { problem = nil }
    }

    private func insert(_ alerts: ArraySlice<AlertRecord>, _ detections: ArraySlice<Detection>, _ retired: [UInt64]) throws {
        guard let inserts else { throw StoreError.noFile(path, problem) }
        try db.transaction {
            for a in alerts {
                try inserts.alert.run([.text(a.uuid), .real(a.ts), .text(a.pipeline), .text(a.device), .text(a.state),
                                     .text(a.label), .real(a.score), .text(a.severity), .text(a.actions)])
            }
            for d in detections {
                try inserts.detection.run([.text(d.uuid), .real(d.ts), .text(d.pipeline), .text(d.device), .text(d.model),
                                         .text(d.label), .real(d.score), .text(d.scoresJSON), .real(d.latencyMs)])
            }
            for seq in retired { try inserts.retired.run([.integer(Int64(bitPattern: seq))]) }
            try recordMemoryDropsOnQueue()
        }
    }

    private func fail(_ error: Error, _ detections: [Detection], _ alerts: [AlertRecord], _ retired: [UInt64] = []) {
        // Keep the rows and try again on the next tick; the daemon goes on.
        counters?.storeFailed()
        lastError = "\(error)"
        log.limited(.error, key: "store-write", "store \(path): cannot write \(detections.count + alerts.count) rows: \(error)")
        requeue(detections, alerts, retired)
    }

    private func requeue(_ detections: [Detection], _ alerts: [AlertRecord], _ retired: [UInt64] = []) {
        let dropped = lock.withLock { () -> (Int, Int) in
            pendingDetections.insert(contentsOf: detections, at: 0)
            pendingAlerts.insert(contentsOf: alerts, at: 0)
            // The marks are kept whole: rows dropped below are counted (dropped_*), so each frame is stored or counted.
            pendingRetired.insert(contentsOf: retired, at: 0)
            var over = pendingDetections.count + pendingAlerts.count - maxPending
            guard over > 0 else { return (0, 0) }
            // Same policy as on disk: oldest detections first, alerts last.
            let d = min(over, pendingDetections.count)
            pendingDetections.removeFirst(d)
            over -= d
            let a = min(over, pendingAlerts.count)
            pendingAlerts.removeFirst(a)
            droppedDetectionsTotal += d
            droppedAlertsTotal += a
            unrecordedDrops.detections += d
            unrecordedDrops.alerts += a
            return (d, a)
        }
        counters?.rowsNotStored(dropped.0 + dropped.1)
        if dropped.0 + dropped.1 > 0 {
            log.limited(.error, key: "store-drop-memory",
                        "store \(path): dropped \(dropped.0) detections and \(dropped.1) alerts held in memory while the database refused writes (over \(maxPending) rows waiting)")
        }
    }

    /// Commits what is waiting and stops the ticks.
    public func close() {
        timer?.cancel()
        maintenanceTimer?.cancel()
        fileTimer?.cancel()
        flush()
        countUnwritten()
        // Fold the WAL back into the database so a stopped daemon leaves one self-contained
        // file (copyable, readable by sqlite3 without write access). Best effort: a reader
        // holding a snapshot only makes this partial.
        withDatabase { db in
            do { try db.execute("PRAGMA wal_checkpoint(TRUNCATE)") } catch {
                log.info("store \(path): final checkpoint incomplete: \(error)")
            }
        }
    }
}

/// Keys of the `meta` table that the store and sync keep (read by `vigilctl sync`).
public enum MetaKey {
    /// Totals of rows deleted by the size cap or a full disk, never synced or not.
    public static let droppedDetections = "dropped_detections"
    public static let droppedAlerts = "dropped_alerts"
    /// Epoch seconds of the last batch the cloud acknowledged.
    public static let lastSyncAt = "last_sync_at"
    /// The last sync failure, empty after a success.
    public static let lastSyncError = "last_sync_error"
}

extension Database {
    func scalarInt(_ sql: String, _ bindings: [SQLValue] = []) -> Int64? {
        (try? scalar(sql, bindings))?.int
    }
}
