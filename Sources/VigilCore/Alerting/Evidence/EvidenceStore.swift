import Foundation
import Sockets
import SQLite

/// Keeps each raised alert's evidence: one archive per alert (`<uuid>.tar`, EvidenceFormats.swift)
/// in the evidence folder, indexed by a row in the log's `evidence` table.
///
/// Why files beside the log, not blobs in it: the log has its own cap (`max_size_mb`) whose
/// policy drops detections first, and evidence must neither crowd out rows nor be deleted
/// by them; a file is also what `GET /evidence/UUID` and `vigilctl evidence` hand out as is.
///
/// Order of writes, so no half-written file is ever referenced: the archive is written to
/// `.<uuid>.tmp` (0640; `fdatasync` at `durability: "power"`), renamed to `<uuid>.tar` (then
/// the folder is synced at `power`), and only then its row is committed. Eviction deletes the
/// row first, then the file. What a crash leaves between two steps (a temp file, a file
/// without a row, a row without a file) is cleaned up at the next start.
///
/// Bounded: the archives together stay within `storage.evidence_mb`; the oldest alerts' evidence
/// goes first, counted in `meta.dropped_evidence` (in the same transaction as the delete) and logged.
/// Idempotent by alert uuid: a replayed frame raises the same alert, whose evidence is kept once.
/// All work runs on its own serial queue, never on a lane.
///
/// Written at most once, also across restarts: an alert whose capture a kill caught is
/// captured again from the journal (`raisedWithoutEvidence`), but one whose evidence was
/// evicted or dropped must not be. Eviction goes oldest first, so one time in `meta`
/// (`evidence_dropped_through`: the newest alert whose evidence was dropped, evicted or found
/// gone, saved in the same transaction as the drop) tells them apart without a row per drop.
public final class EvidenceStore: @unchecked Sendable {
    // @unchecked Sendable: `index`, `known`, `total`, `droppedTotal`, `droppedThrough` and `keptListener` are used only on `queue` (asserted in reconcile, writeOnQueue, evict); `waiting`
    // under `waitingLock`; the rest is immutable.
    public let directory: String
    public let capBytes: Int
    let durability: Durability
    let store: Store
    let counters: Counters?
    let queue = DispatchQueue(label: "vigil.evidence", qos: .utility)
    struct Entry { let uuid: String; let ts: Double; let bytes: Int }
    /// Every kept archive, oldest alert first.
    private var index: [Entry] = []
    private var known: Set<String> = []
    private var total = 0
    private var droppedTotal = 0
    /// The newest alert time whose evidence was dropped, evicted or found gone (0: none).
    private var droppedThrough = 0.0
    public static let droppedKey = "dropped_evidence"
    public static let droppedThroughKey = "evidence_dropped_through"

    public init(settings: StorageSettings, store: Store, counters: Counters? = nil) {
        directory = settings.evidenceDirectory
        capBytes = Int(settings.evidenceMB * 1024 * 1024)
        durability = settings.durability
        self.store = store
        self.counters = counters
        // Evidence never stops the daemon: a folder that cannot be made now (a read-only or full
        // disk) is tried again with each capture, whose failure is counted and logged.
        if let e = makeDirectory() {
            log.error("evidence \(directory): cannot create the folder (\(e)); alerts keep no evidence until it can be made")
        }
        queue.sync { reconcile() }
    }

    /// Creates the folder (0750: camera frames are private, the owner's and the vigil group's only); the error, if any.
    private func makeDirectory() -> Error? {
        let fm = FileManager.default
        do {
            if !fm.fileExists(atPath: directory) {
                try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            }
            try? fm.setAttributes([.posixPermissions: 0o750], ofItemAtPath: directory)
            return nil
        } catch {
            return error
        }
    }

    /// Matches folder and table after a crash or a changed cap: temp files and files without a
    /// row go, rows without a file go, and the oldest go while the total is over the cap.
    private func reconcile() {
        dispatchPrecondition(condition: .onQueue(queue))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let read: [[SQLValue]]? = store.withDatabase { db in
            try? db.query("SELECT alert_uuid, ts, bytes FROM evidence ORDER BY ts, alert_uuid")
        }
        // A log that cannot be read now (Store/StoreHealth.swift) says nothing about the files:
        // delete none. They are indexed again, and stray ones removed, at a later start.
        guard let rows = read else {
            log.warning("evidence \(directory): the log's evidence index cannot be read now; the files are left as they are")
            return
        }
        let files = Set(names.filter { $0.hasSuffix(".tar") && !$0.hasPrefix(".") })
        var gone: [String] = []
        var goneThrough = 0.0
        for r in rows {
            guard let uuid = r[0].string, let ts = r[1].double, let bytes = r[2].int else { continue }
            if files.contains(uuid + ".tar") {
                index.append(Entry(uuid: uuid, ts: ts, bytes: Int(bytes)))
                known.insert(uuid)
                total += Int(bytes)
            } else {
                gone.append(uuid)
                goneThrough = max(goneThrough, ts)
            }
        }
        droppedThrough = store.withDatabase { db in
            Double((try? db.scalar("SELECT value FROM meta WHERE key = ?", [.text(EvidenceStore.droppedThroughKey)]))?.string ?? "") ?? 0
        }
        if !gone.isEmpty {
            let through = max(droppedThrough, goneThrough)
            store.withDatabase { db in
                try? db.transaction {
                    for u in gone { _ = try db.query("DELETE FROM evidence WHERE alert_uuid = ?", [.text(u)]) }
                    try EvidenceStore.setMeta(db, EvidenceStore.droppedThroughKey, through)
                }
            }
            droppedThrough = through
            log.warning("evidence \(directory): \(gone.count) rows named files that are gone (deleted by hand?); rows removed")
        }
        var stray = 0
        for n in names where n.hasPrefix(".") && n.hasSuffix(".tmp") || (n.hasSuffix(".tar") && !known.contains(String(n.dropLast(4)))) {
            try? FileManager.default.removeItem(atPath: directory + "/" + n)
            stray += 1
        }
        if stray > 0 { log.info("evidence \(directory): removed \(stray) files a stop or crash left half done") }
        droppedTotal = store.withDatabase { db in Int((try? db.scalar("SELECT value FROM meta WHERE key = ?", [.text(EvidenceStore.droppedKey)]))?.string ?? "") ?? 0 }
        if total > capBytes { evict(need: 0, reason: "storage.evidence_mb (\(mb(capBytes))) is below what was kept") }
        publishGauges()
    }

    /// Captures handed in and not written yet: each holds its frames, so an alert storm that
    /// outruns the disk must not pile them up in memory.
    private let waitingLock = NSLock()
    private var waiting = 0
    /// At most this many captures wait; more are dropped (counted, logged) rather than queued.
    public static let maxWaiting = 64

    /// Told of each archive kept (on the evidence queue: return quickly): the Home Assistant snapshot.
    private var keptListener: (@Sendable (AlertEvent, [Tar.Entry]) -> Void)?
    public func onKept(_ listener: @escaping @Sendable (AlertEvent, [Tar.Entry]) -> Void) {
        queue.sync { keptListener = listener }
    }

    /// Encodes and keeps a capture (returns at once; the work runs on the evidence queue).
    public func write(_ c: EvidenceCapture) {
        let admitted = waitingLock.withLock { () -> Bool in
            guard waiting < EvidenceStore.maxWaiting else { return false }
            waiting += 1
            return true
        }
        guard admitted else {
            let uuid = c.alert.uuid, ts = c.alert.ts
            queue.async { [self] in
                droppedTotal += 1
                saveDropped(ts: ts)
                counters?.metrics.add(MetricName.evidenceDropped)
                log.limited(.error, key: "evidence-backlog", "evidence \(directory): \(EvidenceStore.maxWaiting) alerts' evidence waiting to be written (an alert storm faster than the disk): the evidence of alert \(uuid) is not kept; dropped so far: \(droppedTotal)")
            }
            return
        }
        queue.async { [self] in
            writeOnQueue(c)
            waitingLock.withLock { waiting -= 1 }
        }
    }

    /// Waits for every write handed in so far (tests, stop).
    public func flush() { queue.sync {} }

    public func contains(_ uuid: String) -> Bool { queue.sync { known.contains(uuid) } }

    public var usage: (alerts: Int, bytes: Int, dropped: Int) { queue.sync { (index.count, total, droppedTotal) } }

    func writeOnQueue(_ c: EvidenceCapture) {
        dispatchPrecondition(condition: .onQueue(queue))
        let uuid = c.alert.uuid
        guard !known.contains(uuid), RowID.isUUID(uuid) else { return }
        let (entries, items) = EvidenceBundle.make(c)
        let archive = Tar.archive(entries, mtime: c.alert.ts)
        guard archive.count <= capBytes else {
            droppedTotal += 1
            saveDropped(ts: c.alert.ts)
            counters?.metrics.add(MetricName.evidenceDropped)
            log.limited(.error, key: "evidence-drop", "evidence of alert \(uuid) (\(mb(archive.count))) is larger than storage.evidence_mb (\(mb(capBytes))): not kept; dropped so far: \(droppedTotal)")
            return
        }
        if total + archive.count > capBytes {
            evict(need: archive.count, reason: "storage.evidence_mb (\(mb(capBytes))) reached")
        }
        let final = directory + "/" + uuid + ".tar"
        let temp = directory + "/." + uuid + ".tmp"
        do {
            if let e = makeDirectory() { throw e }
            try? FileManager.default.removeItem(atPath: temp)
            let f = try AppendFile(path: temp)
            try f.append(archive)
            if durability == .power { try f.syncData() }
            try AppendFile.rename(temp, to: final)
            if durability == .power { try AppendFile.syncDirectory(directory) }
            try store.withDatabase { db in
                _ = try db.query("""
                    INSERT OR IGNORE INTO evidence(alert_uuid, ts, pipeline, device, kind, file, bytes, items)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(uuid), .real(c.alert.ts), .text(c.alert.pipeline), .text(c.alert.device), .text(c.kind.rawValue),
                          .text(final), .integer(Int64(archive.count)), .text(EvidenceBundle.itemsJSON(entries, items))])
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            try? FileManager.default.removeItem(atPath: final)
            counters?.metrics.add(MetricName.evidenceFailed)
            log.limited(.error, key: "evidence-write", "evidence \(directory): cannot keep the evidence of alert \(uuid): \(error)")
            return
        }
        let entry = Entry(uuid: uuid, ts: c.alert.ts, bytes: archive.count)
        // Alerts come in time order almost always; a replayed one may be older than the newest.
        let at = index.lastIndex { $0.ts <= entry.ts }.map { $0 + 1 } ?? 0
        index.insert(entry, at: at)
        known.insert(uuid)
        total += archive.count
        counters?.metrics.add(MetricName.evidenceWritten)
        publishGauges()
        keptListener?(c.alert, entries)
    }

    /// Deletes the oldest archives until `need` more bytes fit under the cap: rows first (with the
    /// count, in one transaction), then the files.
    private func evict(need: Int, reason: String) {
        dispatchPrecondition(condition: .onQueue(queue))
        var victims: [Entry] = []
        var freed = 0
        while total - freed + need > capBytes, victims.count < index.count {
            let e = index[victims.count]
            victims.append(e)
            freed += e.bytes
        }
        guard !victims.isEmpty else { return }
        let dropped = droppedTotal + victims.count
        let through = victims.reduce(droppedThrough) { max($0, $1.ts) }
        do {
            try store.withDatabase { db in
                try db.transaction {
                    for v in victims { _ = try db.query("DELETE FROM evidence WHERE alert_uuid = ?", [.text(v.uuid)]) }
                    try EvidenceStore.setMeta(db, EvidenceStore.droppedKey, Double(dropped))
                    try EvidenceStore.setMeta(db, EvidenceStore.droppedThroughKey, through)
                }
            }
        } catch {
            log.limited(.error, key: "evidence-evict", "evidence \(directory): cannot delete the oldest evidence to make room: \(error)")
            return
        }
        for v in victims { try? FileManager.default.removeItem(atPath: directory + "/" + v.uuid + ".tar") }
        index.removeFirst(victims.count)
        for v in victims { known.remove(v.uuid) }
        total -= freed
        droppedTotal = dropped
        droppedThrough = through
        counters?.metrics.add(MetricName.evidenceDropped, [], Double(victims.count))
        log.limited(.error, key: "evidence-evict", "evidence \(directory): \(reason): dropped the evidence of the \(victims.count) oldest alerts (\(mb(freed))); dropped so far: \(dropped)")
    }

    /// Counts a dropped capture of the alert at `ts`, in one transaction with the time a restart re-captures nothing at or before.
    private func saveDropped(ts: Double) {
        let n = droppedTotal
        droppedThrough = max(droppedThrough, ts)
        let through = droppedThrough
        store.withDatabase { db in
            try? db.transaction {
                try EvidenceStore.setMeta(db, EvidenceStore.droppedKey, Double(n))
                try EvidenceStore.setMeta(db, EvidenceStore.droppedThroughKey, through)
            }
        }
    }

    private static func setMeta(_ db: Database, _ key: String, _ value: Double) throws {
        _ = try db.query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         [.text(key), .text(JSONValue.format(value))])
    }

    /// The raised alerts of `pipelines` among the newest `scan` alerts that are committed without
    /// evidence and newer than any dropped: those whose capture a kill caught (or whose write
    /// failed). Read once at start, before the journal is replayed, so history can capture them.
    public func raisedWithoutEvidence(pipelines: [String], scan: Int = 10_000) -> Set<String> {
        guard !pipelines.isEmpty else { return [] }
        return queue.sync {
            let rows: [[SQLValue]]? = store.withDatabase { db in
                try? db.query("""
                    SELECT uuid FROM (SELECT uuid, ts, pipeline, state FROM alerts ORDER BY ts DESC LIMIT ?) a
                    WHERE state = 'raised' AND ts > ? AND pipeline IN (\(pipelines.map { _ in "?" }.joined(separator: ", ")))
                      AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.alert_uuid = a.uuid)
                    """, [.integer(Int64(scan)), .real(droppedThrough)] + pipelines.map { .text($0) })
            }
            return Set((rows ?? []).compactMap { $0.first?.string }.filter { !known.contains($0) })
        }
    }

    private func publishGauges() {
        counters?.metrics.set(MetricName.evidenceBytes, [], Double(total))
        counters?.metrics.set(MetricName.evidenceAlerts, [], Double(index.count))
    }

    /// The archive of an alert's evidence, or nil when it has none (never had, or evicted).
    public func archive(_ uuid: String) -> [UInt8]? {
        guard RowID.isUUID(uuid), contains(uuid) else { return nil }
        return FileManager.default.contents(atPath: directory + "/" + uuid + ".tar").map { Array($0) }
    }

    func mb(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }
}
