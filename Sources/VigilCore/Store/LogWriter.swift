import Foundation
import SQLite
import Synchronization

/// The single writer of the SQLite log. Callers on any thread append rows; a serial queue
/// owns the connection and commits what is waiting in one transaction every
/// `commitIntervalMs` or as soon as `commitRows` are waiting (mosquitto's persist-sqlite
/// does the same). A crash loses at most the rows of the last open window.
///
/// The file never grows past `max_size_mb`: SQLite's `max_page_count` is set to the cap, so
/// a commit that would pass it fails with SQLITE_FULL exactly as a full disk does, and both
/// are handled the same way (LogWriterCap.swift): the oldest detections are deleted, alerts only
/// when no detection is left, the drop is counted in `meta`, and the commit is retried.
/// Retention runs here too, on a slow tick. What sync needs (unsynced rows, marks) lives in
/// `Outbox` (Sync/Outbox.swift), which reads and writes through `withDatabase`/`write` and
/// hears of commits through `observe`: the writer never calls sync.
public final class LogWriter: @unchecked Sendable {
    // @unchecked Sendable: the connection, its statements, limits, drop totals and timers are
    // used only on `queue` (checked: `db` and `inserts` assert it, as GRDB's SerializedDatabase
    // does); `pending` and `listeners` are Mutexes. The one unchecked class of the log.
    public let path: String
    let directory: String
    let settings: StorageSettings
    let queue = DispatchQueue(label: "vigil.store")
    /// Where this writer's lines go (tests pass a collecting Logger).
    let log: Logger
    /// Without sync (a local-only log) retention deletes old rows whatever `synced_at` says;
    /// with sync, only rows the cloud acknowledged (issue 19).
    let keepsUnsynced: Bool
    private var connection: Database
    private var statements: StoreInserts?
    /// The connection; replaced when the file was deleted under it (Store/LogWriterHealth.swift).
    var db: Database {
        get { dispatchPrecondition(condition: .onQueue(queue)); return connection }
        set { dispatchPrecondition(condition: .onQueue(queue)); connection = newValue }
    }
    /// The commit's statements on `db`; nil while there is no file to write to.
    var inserts: StoreInserts? {
        get { dispatchPrecondition(condition: .onQueue(queue)); return statements }
        set { dispatchPrecondition(condition: .onQueue(queue)); statements = newValue }
    }

    /// Rows appended from any thread, waiting for the next commit.
    struct Pending {
        var detections: [Detection] = []
        var alerts: [AlertRecord] = []
        /// Intake journal entries whose rows are appended above: their marks commit with those rows.
        var retired: [UInt64] = []
        var flushScheduled = false
        var rows: Int { detections.count + alerts.count }
    }
    let pending = Mutex(Pending())

    /// What a commit (or a change to a committed row) tells the writer's observers.
    public enum Event: Sendable {
        /// Rows committed: how many, how many of them alerts, and the journal entries retired.
        case committed(rows: Int, alerts: Int, retired: [UInt64])
        /// An alert row was rewritten after its insert (its actions' outcomes came in).
        case alertRewritten(uuid: String)
    }
    private let listeners = Mutex<[@Sendable (Event) -> Void]>([])
    private var timer: DispatchSourceTimer?
    private var maintenanceTimer: DispatchSourceTimer?
    private var fileTimer: DispatchSourceTimer?
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
    /// The page limit in force: the cap, or the file's size when the disk ran low (LogWriterCap.swift).
    var limitPages: Int64 = 0
    let pageSize: Int64
    /// Totals of rows dropped by the size cap or a full disk (also in `meta`).
    var droppedDetectionsTotal = 0
    var droppedAlertsTotal = 0
    /// Rows dropped from memory that `meta` does not count yet (written with the next commit).
    var unrecordedDrops = (detections: 0, alerts: 0)
    /// Drops at the cap not yet said in the log (said at most once per `capReportInterval`).
    var capReport = CapReport()

    public init(settings: StorageSettings, counters: Counters? = nil, maxPending: Int = 100_000,
                keepsUnsynced: Bool = true, logger: Logger = Logger.shared) throws {
        path = settings.path
        self.settings = settings
        self.counters = counters
        self.maxPending = maxPending
        self.keepsUnsynced = keepsUnsynced
        self.log = logger
        let dir = URL(fileURLWithPath: settings.path).deletingLastPathComponent().path
        directory = dir
        if !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        // A corrupt file is moved aside and a fresh log started; anything else that stops the
        // file from opening throws an error naming the file and the remedy (Store/LogWriterHealth.swift).
        var unavailable: StoreError?
        do {
            connection = try LogWriter.openLog(path: settings.path, durability: settings.durability, log: logger)
        } catch let e as StoreError where e.retryable {
            connection = LogWriter.detachedConnection()
            unavailable = e
        }
        pageSize = max(512, connection.scalarInt("PRAGMA page_size") ?? 4096)
        capPages = max(16, Int64(settings.maxSizeMB * 1024 * 1024) / pageSize)
        try queue.sync {
            if let unavailable {
                startDetached(unavailable)
            } else {
                inserts = try StoreInserts(db)
                checkWritable()
                droppedDetectionsTotal = Int(try db.meta(MetaKey.droppedDetections) ?? "") ?? 0
                droppedAlertsTotal = Int(try db.meta(MetaKey.droppedAlerts) ?? "") ?? 0
                try applyCap()
            }
        }

        let t = DispatchSource.makeTimerSource(queue: queue)
        let interval = DispatchTimeInterval.milliseconds(settings.commitIntervalMs)
        t.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(max(1, settings.commitIntervalMs / 10)))
        t.setEventHandler { [weak self] in self?.flushOnQueue() }
        t.resume()
        timer = t
        // Retention runs once at start and then on a slow tick.
        let m = DispatchSource.makeTimerSource(queue: queue)
        let every = DispatchTimeInterval.milliseconds(Int(settings.maintenanceIntervalSeconds * 1000))
        m.schedule(deadline: .now(), repeating: every, leeway: .seconds(1))
        m.setEventHandler { [weak self] in self?.retentionOnQueue(now: Date().timeIntervalSince1970) }
        m.resume()
        maintenanceTimer = m
        // The file is looked at every second: deleted under us, or to be opened again.
        let f = DispatchSource.makeTimerSource(queue: queue)
        f.schedule(deadline: .now() + LogWriter.fileCheckInterval, repeating: LogWriter.fileCheckInterval, leeway: .milliseconds(100))
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
        let n = pending.withLock { p -> Int in
            p.detections.append(d)
            return p.rows
        }
        if n >= settings.commitRows { scheduleFlush() }
    }

    public func append(_ a: AlertRecord) {
        pending.withLock { $0.alerts.append(a) }
        // Alerts are rare and matter: commit them without waiting for the tick.
        scheduleFlush()
    }

    /// An intake journal entry whose rows were appended before this call: its mark goes into
    /// the same commit as those rows (or a later one), never an earlier one.
    public func appendRetired(_ seq: UInt64) {
        let n = pending.withLock { p -> Int in
            p.retired.append(seq)
            return p.rows + p.retired.count
        }
        if n >= settings.commitRows { scheduleFlush() }
    }

    /// Adds an observer of commits and rewritten rows. It runs on the writer's queue, right
    /// after the change it reports and before the queue runs anything else: return quickly,
    /// and never call back into the writer synchronously.
    public func observe(_ listener: @escaping @Sendable (Event) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    private func announce(_ event: Event) {
        for l in listeners.withLock({ $0 }) { l(event) }
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
        let go = pending.withLock { p -> Bool in
            if p.flushScheduled { return false }
            p.flushScheduled = true
            return true
        }
        if go { queue.async { self.flushOnQueue() } }
    }

    /// Rewrites an alert's `actions` column once its actions have finished (alerts hook).
    /// Goes through the writer queue after any pending insert of that alert; clears
    /// `synced_at` so sync sends the final row again (the cloud de-duplicates by uuid), and
    /// tells the observers first, so that a batch read before the change is not marked synced
    /// when its acknowledgement comes (Sync/Outbox.swift).
    public func updateAlertActions(uuid: String, json: String) {
        queue.async { [self] in
            flushOnQueue()
            let patchedInMemory = pending.withLock { p -> Bool in
                guard let i = p.alerts.firstIndex(where: { $0.uuid == uuid }) else { return false }
                p.alerts[i].actions = json   // the insert failed and waits for a retry
                return true
            }
            if patchedInMemory { return }
            announce(.alertRewritten(uuid: uuid))
            do {
                _ = try db.query("UPDATE alerts SET actions = ?, synced_at = NULL WHERE uuid = ?", [.text(json), .text(uuid)])
            } catch {
                log.limited(.error, key: "store-write", "store \(path): cannot record the outcome of alert \(uuid)'s actions: \(error)")
            }
        }
    }

    /// Commits everything waiting, and returns when it is on disk (or failed).
    public func flush() { queue.sync { flushOnQueue() } }

    /// Runs `body` on the writer's queue with the connection (reads, maintenance, tests and tools).
    public func withDatabase<T>(_ body: (Database) throws -> T) rethrows -> T {
        try queue.sync { try body(db) }
    }

    /// Runs `body` on the writer's queue in one transaction. A write refused for room
    /// (SQLITE_FULL: the cap or a full disk) gets about `rows` rows made by the cap's policy
    /// and one more try: an UPDATE needs a little room too (`synced_at` grows a row by 8 bytes).
    public func write<T>(rows: Int, _ body: (Database) throws -> T) throws -> T {
        try queue.sync {
            do {
                return try db.transaction { try body(db) }
            } catch let e as SQLiteError where e.isFull {
                _ = makeRoom(rows: max(64, rows), cause: e)
                return try db.transaction { try body(db) }
            }
        }
    }

    /// Runs `body` on the writer's queue later (a write nobody waits for).
    public func async(_ body: @escaping @Sendable (Database) -> Void) {
        queue.async { [self] in body(db) }
    }

    /// Rows not in the database yet (waiting for the window, or for the disk).
    public var pendingCount: Int {
        // On the queue, so that rows a flush has taken out and may put back are counted.
        queue.sync { pending.withLock { $0.rows } }
    }

    /// Rows dropped so far by the size cap or a full disk (cheap: no query; for STATUS= and /metrics).
    public var dropped: (detections: Int, alerts: Int) {
        queue.sync { (droppedDetectionsTotal, droppedAlertsTotal) }
    }

    /// Bytes of the database file (its pages; the WAL comes on top) and of the cap.
    public var sizes: (file: Int64, cap: Int64) {
        queue.sync { ((db.scalarInt("PRAGMA page_count") ?? 0) * pageSize, capPages * pageSize) }
    }

    private func flushOnQueue() {
        let (detections, alerts, retired) = pending.withLock { p -> ([Detection], [AlertRecord], [UInt64]) in
            p.flushScheduled = false
            defer {
                p.detections.removeAll(keepingCapacity: true)
                p.alerts.removeAll(keepingCapacity: true)
                p.retired.removeAll(keepingCapacity: true)
            }
            return (p.detections, p.alerts, p.retired)
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
        let retiredDone = !retired.isEmpty && restRetired.isEmpty
        let storedAlerts = alerts.count - restAlerts.count   // alerts go first in every slice
        if stored > 0 || retiredDone {
            announce(.committed(rows: stored, alerts: storedAlerts, retired: retiredDone ? retired : []))
        }
        guard stored > 0 else { return }
        counters?.rowsStored(stored, alerts: storedAlerts)
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
        let (d, a) = pending.withLock { p -> (Int, Int) in
            p.detections.insert(contentsOf: detections, at: 0)
            p.alerts.insert(contentsOf: alerts, at: 0)
            // The marks are kept whole: rows dropped below are counted (dropped_*), so each frame is stored or counted.
            p.retired.insert(contentsOf: retired, at: 0)
            var over = p.rows - maxPending
            guard over > 0 else { return (0, 0) }
            // Same policy as on disk: oldest detections first, alerts last.
            let d = min(over, p.detections.count)
            p.detections.removeFirst(d)
            over -= d
            let a = min(over, p.alerts.count)
            p.alerts.removeFirst(a)
            return (d, a)
        }
        droppedDetectionsTotal += d
        droppedAlertsTotal += a
        unrecordedDrops.detections += d
        unrecordedDrops.alerts += a
        counters?.rowsNotStored(d + a)
        if d + a > 0 {
            log.limited(.error, key: "store-drop-memory",
                        "store \(path): dropped \(d) detections and \(a) alerts held in memory while the database refused writes (over \(maxPending) rows waiting)")
        }
    }

    /// Deletes rows older than `retention_days`: only those the cloud acknowledged while sync
    /// is configured, every old row without it (a local-only log). Returns how many went.
    @discardableResult
    public func runRetention(now: Double = Date().timeIntervalSince1970) -> (detections: Int, alerts: Int) {
        queue.sync { retentionOnQueue(now: now) }
    }

    @discardableResult
    func retentionOnQueue(now: Double) -> (detections: Int, alerts: Int) {
        // retention_days 0 deletes synced rows at once; without sync it would be every row, so
        // there it means "keep rows until the cap".
        guard keepsUnsynced || settings.retentionDays > 0 else { return (0, 0) }
        let cutoff = now - settings.retentionDays * 86_400
        let onlySynced = keepsUnsynced ? " AND synced_at IS NOT NULL" : ""
        var deleted = (detections: 0, alerts: 0)
        do {
            for table in ["detections", "alerts"] {
                // In slices, so a large first pass does not hold the writer for long.
                while true {
                    _ = try db.query("""
                        DELETE FROM \(table) WHERE id IN
                        (SELECT id FROM \(table) WHERE ts < ?\(onlySynced) LIMIT 5000)
                        """, [.real(cutoff)])
                    let n = db.changes
                    if table == "detections" { deleted.detections += n } else { deleted.alerts += n }
                    if n < 5000 { break }
                }
            }
        } catch {
            log.limited(.warning, key: "store-retention", "store \(path): retention failed: \(error)")
        }
        if deleted.detections + deleted.alerts > 0 {
            let which = keepsUnsynced ? "synced more than" : "older than"
            log.info("store \(path): retention deleted \(deleted.detections) detections and \(deleted.alerts) alerts \(which) \(JSONValue.format(settings.retentionDays)) days ago")
        }
        return deleted
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

    /// A value of the `meta` table.
    func meta(_ key: String) throws -> String? {
        try scalar("SELECT value FROM meta WHERE key = ?", [.text(key)]).string
    }

    /// Sets (or, with nil, deletes) a value of the `meta` table.
    func setMeta(_ key: String, _ value: String?) throws {
        if let value {
            _ = try query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          [.text(key), .text(value)])
        } else {
            _ = try query("DELETE FROM meta WHERE key = ?", [.text(key)])
        }
    }
}
