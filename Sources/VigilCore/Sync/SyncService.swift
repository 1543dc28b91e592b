import Foundation

/// What the syncer is doing, for STATUS=, /metrics and tests.
public struct SyncServiceStatus: Sendable {
    public var target: String
    public var ready: Bool
    public var batchesInFlight: Int
    /// Rows the cloud acknowledged since start.
    public var rowsAcknowledged: Int
    public var batchesSent: Int
    public var lastSyncAt: Double?
    public var lastError: String?
}

/// Forwards the log to the cloud, at least once. It reads unsynced rows from the outbox (through
/// the log's one writer (alerts before detections, oldest first), sends them as JSON-array batches,
/// and marks rows synced only when the cloud acknowledged their batch. Up to
/// `max_inflight` batches wait for acknowledgement at once; a cursor keeps the next read
/// from repeating rows in flight. When the link drops, whatever was in flight is forgotten
/// and read again later (the cloud de-duplicates by uuid). A restart starts from the rows
/// still unsynced on disk, so nothing is lost and little is repeated.
public final class SyncService: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is used only on `queue` (pump and the transport's
    // events check it with dispatchPrecondition).
    let settings: SyncSettings
    let node: String
    let outbox: Outbox
    /// Rows acknowledged, for /metrics.
    let counters: Counters?
    let queue = DispatchQueue(label: "vigil.sync")
    private let transport: SyncTransport
    private var cursor = SyncCursor.start
    private var inFlight = 0
    /// Bumped when in-flight batches are abandoned, so their late answers only mark rows.
    private var generation = 0
    private var backoff: Backoff
    private var retryAt = 0.0
    private var retryScheduled = false
    private var timer: DispatchSourceTimer?
    private var stopped = false
    private var started = false
    private var acknowledged = 0
    private var sent = 0
    private var lastSyncAt: Double?
    private var lastError: String?

    public init(settings: SyncSettings, node: String, store: Store, counters: Counters? = nil) {
        self.counters = counters
        self.settings = settings
        self.node = node
        self.outbox = store.outbox
        backoff = Backoff(min: settings.backoffMinSeconds, max: settings.backoffMaxSeconds)
        if let m = settings.mqtt {
            transport = MQTTSyncTransport(settings: m, sync: settings, queue: queue)
        } else {
            transport = HTTPSyncTransport(settings: settings.http!, queue: queue)
        }
    }

    public func start() {
        queue.async { [self] in
            guard !started else { return }
            started = true
            log.info("sync: forwarding the log to \(transport.target) in batches of \(settings.batch)")
            transport.start(SyncTransportEvents(
                ready: { [weak self] in self?.transportReady() },
                lost: { [weak self] reason, retryIn in self?.transportLost(reason, retryIn: retryIn) }))
            let t = DispatchSource.makeTimerSource(queue: queue)
            let every = DispatchTimeInterval.milliseconds(Int(settings.intervalSeconds * 1000))
            t.schedule(deadline: .now() + every, repeating: every, leeway: .milliseconds(50))
            t.setEventHandler { [weak self] in
                self?.transport.tick()
                self?.pump()
            }
            t.resume()
            timer = t
        }
    }

    /// Stops sending. Waits up to `drainSeconds` for acknowledgements of batches in flight;
    /// any still unacknowledged stay unsynced and go again after a restart.
    public func stop(drainSeconds: Double = 2) {
        queue.sync { draining = true }
        let deadline = Date().addingTimeInterval(drainSeconds)
        while queue.sync(execute: { inFlight > 0 && transport.isReady }), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        queue.sync {
            stopped = true
            timer?.cancel()
            transport.stop()
        }
    }

    /// Set by `stop`: no new batches, acknowledgements still count.
    private var draining = false

    public var status: SyncServiceStatus {
        queue.sync {
            SyncServiceStatus(target: transport.target, ready: transport.isReady, batchesInFlight: inFlight,
                       rowsAcknowledged: acknowledged, batchesSent: sent, lastSyncAt: lastSyncAt, lastError: lastError)
        }
    }

    /// Sends a batch now if there is room (for tests and after an alert).
    public func kick() { queue.async { self.pump() } }

    private func transportReady() {
        dispatchPrecondition(condition: .onQueue(queue))
        retryAt = 0
        backoff.reset()
        pump()
    }

    private func transportLost(_ reason: String, retryIn: Double) {
        dispatchPrecondition(condition: .onQueue(queue))
        abandonInFlight()
        noteError(reason, retryIn: retryIn)
    }

    private func abandonInFlight() {
        generation += 1
        inFlight = 0
        cursor = .start
    }

    private func noteError(_ message: String, retryIn: Double) {
        lastError = message
        log.limited(.warning, key: "sync-error", "sync: \(message); rows stay unsynced, retrying in \(String(format: "%.1f", retryIn)) s")
        outbox.recordSyncError(message)
    }

    /// Whether a new batch may go now. Checked before each one: a send can fail at once
    /// (a token file that cannot be read), and that failure sets the retry time.
    private var maySend: Bool {
        !stopped && !draining && transport.isReady && Date().timeIntervalSince1970 >= retryAt
            && inFlight < transport.maxInFlight
    }

    private func pump() {
        dispatchPrecondition(condition: .onQueue(queue))
        while maySend {
            var rows: [SyncRow]
            do {
                rows = try nextBatch()
            } catch {
                log.limited(.error, key: "sync-read", "sync: cannot read unsynced rows: \(error)")
                return
            }
            if rows.isEmpty {
                // Nothing past the cursor: once nothing is in flight, read from the start again,
                // so a row the cursor skipped (an id reused after a delete) is not left behind.
                if inFlight == 0 { cursor = .start }
                return
            }
            for r in rows {
                switch r.table {
                case .alerts: cursor.alerts = max(cursor.alerts, r.id)
                case .detections: cursor.detections = max(cursor.detections, r.id)
                case .evidence: cursor.evidence = max(cursor.evidence, r.id)
                case .enrollments: cursor.enrollments = max(cursor.enrollments, r.id)
                }
            }
            let payload = Array(JSONValue.array(rows.map(\.record)).serialized.utf8)
            let keys = rows.map { (table: $0.table, uuid: $0.uuid) }
            let readSeq = rows[0].readSeq
            let gen = generation
            inFlight += 1
            sent += 1
            transport.send(payload) { [weak self] result in
                self?.finished(gen, keys, readSeq, result)
            }
        }
    }

    /// The next rows to send: alerts first, then (with `sync.evidence`) evidence in batches of
    /// its own within `evidence_batch_kb`, then detections.
    private func nextBatch() throws -> [SyncRow] {
        if settings.evidence, try outbox.hasUnsyncedEvidence(after: cursor) {
            if try outbox.hasUnsyncedAlerts(after: cursor) {
                return try outbox.unsynced(limit: settings.batch, after: cursor, node: node, detections: false)
            }
            let rows = try outbox.unsyncedEvidence(after: cursor, budget: settings.evidenceBatchKB << 10, node: node)
            if let big = rows.first, rows.count == 1, (big.record["archive"]?.string?.count ?? 0) / 4 * 3 > settings.evidenceBatchKB << 10 {
                log.limited(.warning, key: "sync-evidence-big", "sync: the evidence of alert \(big.uuid) is larger than sync.evidence_batch_kb (\(settings.evidenceBatchKB) KB); sent alone in one batch (a cloud broker with a smaller message limit refuses it)")
            }
            if !rows.isEmpty { return rows }
        }
        return try outbox.unsynced(limit: settings.batch, after: cursor, node: node)
    }

    private func finished(_ gen: Int, _ keys: [(table: SyncTable, uuid: String)], _ readSeq: Int,
                          _ result: Result<Void, SyncFailure>) {
        dispatchPrecondition(condition: .onQueue(queue))
        switch result {
        case .success:
            // An acknowledgement is an acknowledgement, even for a batch given up on.
            let now = Date().timeIntervalSince1970
            do {
                try outbox.markSynced(keys, readSeq: readSeq, at: now)
                acknowledged += keys.count
                for (table, n) in Dictionary(grouping: keys, by: { $0.table }).mapValues(\.count) {
                    counters?.rowsSynced(n, table: table.rawValue)
                }
                lastSyncAt = now
            } catch {
                log.limited(.error, key: "sync-mark", "sync: the cloud has \(keys.count) rows but they cannot be marked synced (they will be sent again): \(error)")
            }
            guard gen == generation else { return }
            inFlight -= 1
            backoff.reset()
            if lastError != nil {
                log.notice("sync: delivering to \(transport.target) again")
                lastError = nil
            }
            pump()
        case .failure(let f):
            guard gen == generation else { return }
            abandonInFlight()
            guard !stopped else { return }
            let delay = backoff.next()
            retryAt = Date().timeIntervalSince1970 + delay
            noteError(f.message, retryIn: delay)
            if !retryScheduled {
                retryScheduled = true
                queue.asyncAfter(deadline: .now() + delay) { [weak self] in
                    self?.retryScheduled = false
                    self?.pump()
                }
            }
        }
    }
}
