import Foundation
import SQLite

/// The size cap and the full-disk policy. Both surface as SQLITE_FULL on a commit
/// (`max_page_count` is the cap), and both are answered the same way: the oldest detections
/// are deleted, alerts only once no detection is left, and every dropped row is counted in
/// `meta` and logged. Everything here runs on the writer's queue.
extension LogWriter {
    /// Sets the cap for this connection. A file already over it (the cap was lowered) is
    /// trimmed by the same policy and vacuumed, so the cap holds from the start.
    func applyCap() throws {
        let pages = db.scalarInt("PRAGMA page_count") ?? 0
        if pages > capPages {
            log.warning("store \(path): \(pages * pageSize / 1_048_576) MB is over storage.max_size_mb (\(settings.maxSizeMB) MB); dropping the oldest rows")
            let rows = (db.scalarInt("SELECT count(*) FROM detections") ?? 0) + (db.scalarInt("SELECT count(*) FROM alerts") ?? 0)
            let rowsPerPage = max(1, rows / max(1, usedPages()))
            var rounds = 0
            while usedPages() > capPages * 9 / 10, rounds < 100 {
                let excess = usedPages() - capPages * 9 / 10
                if try dropOldest(rows: Int(max(100, excess * rowsPerPage)), why: "storage.max_size_mb lowered") == 0 { break }
                rounds += 1
            }
            do {
                try db.execute("VACUUM")
            } catch {
                log.warning("store \(path): cannot VACUUM to give the space back: \(error)")
            }
        }
        limitPages = capPages
        _ = try db.query("PRAGMA max_page_count = \(capPages)")
        // The WAL must stay well inside the free-space margin, so that it can always be
        // checkpointed into the file when the margin is reached (watchFreeSpace).
        let walPages = settings.minFreeMB > 0
            ? min(1000, max(16, Int64(settings.minFreeMB * 1_048_576) / 4 / pageSize)) : 1000
        _ = try db.query("PRAGMA wal_autocheckpoint = \(walPages)")
        _ = try db.query("PRAGMA journal_size_limit = \(walPages * pageSize)")
        watchFreeSpace()
    }

    static func mb(_ bytes: Int64) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }

    /// Bytes free for this user on the log's file system, nil when unknown.
    func freeBytes() -> Int64? { LogWriter.freeBytes(directory) }

    /// The log may always grow to this (or to the cap, when that is smaller), whatever
    /// `min_free_mb` says: a file system smaller than the margin (an SD card, a small
    /// partition) must still hold a working log, not a file stuck at its first few pages
    /// where every commit fails. It takes at most half of the space still free.
    static let minWorkingBytes: Int64 = 4 << 20

    /// Runs after each commit. With less than `min_free_mb` left on the file system, the log
    /// stops growing: the page limit becomes the file's current size (at least the minimum
    /// working size), so new rows take the place of the oldest, as at the cap. This matters on
    /// a really full disk: a WAL whose pages lie past the end of the file cannot be
    /// checkpointed there, and then not even a delete can commit. A file that no longer grows
    /// can always take its WAL back, and the WAL can then be cut to free the space a delete
    /// needs. With twice the margin free again, the cap is back. Each change of state is
    /// logged once (rate-limited, should it flap), never per commit.
    func watchFreeSpace() {
        guard settings.minFreeMB > 0, let free = freeBytes() else { return }
        let margin = Int64(settings.minFreeMB * 1_048_576)
        let pages = db.scalarInt("PRAGMA page_count") ?? 0
        // The minimum working size, but never more than half of what is still free: the other
        // half stays the margin a full disk needs.
        let floor = min(capPages, max(16, min(LogWriter.minWorkingBytes / pageSize, pages + free / 2 / pageSize)))
        if free < margin, limitPages == capPages {
            let limit = min(capPages, max(pages, floor))
            guard limit < capPages else { return }   // the cap is smaller than the minimum: nothing to hold back
            limitPages = limit
            _ = try? db.query("PRAGMA max_page_count = \(limitPages)")
            _ = try? db.query("PRAGMA wal_checkpoint(PASSIVE)")
            let growth = pages < floor
                ? "the log may still grow to its minimum working size, \(LogWriter.mb(limitPages * pageSize)) MB,"
                : "the log stops growing at \(LogWriter.mb(limitPages * pageSize)) MB"
            log.limited(.warning, key: "store-low-space",
                        "store \(path): \(LogWriter.mb(free)) MB left on the disk, under storage.min_free_mb (\(settings.minFreeMB) MB): \(growth) and then new rows take the place of the oldest; "
                        + "free space on that disk or lower storage.min_free_mb")
        } else if free >= 2 * margin, limitPages < capPages {
            limitPages = capPages
            _ = try? db.query("PRAGMA max_page_count = \(capPages)")
            log.limited(.notice, key: "store-low-space", "store \(path): \(LogWriter.mb(free)) MB free on the disk again: the log may grow to storage.max_size_mb (\(settings.maxSizeMB) MB)")
        }
    }

    /// Pages holding data (the file less its free list).
    func usedPages() -> Int64 {
        (db.scalarInt("PRAGMA page_count") ?? 0) - (db.scalarInt("PRAGMA freelist_count") ?? 0)
    }

    /// Answers SQLITE_FULL: deletes about `rows` rows by policy. Returns how many went, and
    /// whether the disk (rather than the cap) is full.
    func makeRoom(rows: Int, cause: SQLiteError) -> (made: Int, diskFull: Bool) {
        let pages = db.scalarInt("PRAGMA page_count") ?? 0
        // The failed commit was rolled back, so the file can be a little short of the cap.
        let atCap = pages + max(8, limitPages / 20) >= limitPages
        let why = !atCap ? "disk full (\(cause.message))"
            : limitPages < capPages ? "disk nearly full (storage.min_free_mb)"
            : "storage.max_size_mb (\(settings.maxSizeMB) MB) reached"
        if atCap {
            do {
                return (try dropOldest(rows: rows, why: why, routine: limitPages == capPages), false)
            } catch {
                log.limited(.error, key: "store-drop-failed", "store \(path): \(why), and cannot delete rows to make room: \(error)")
                return (0, false)
            }
        }
        // The disk filled faster than watchFreeSpace could see. A delete needs WAL space, and
        // touches a page of every index per row: cut the WAL back when it can be checkpointed
        // and delete in small slices, cutting it back after each.
        var made = 0
        let rows = min(rows, 100 << 3)
        while made < rows {
            _ = try? db.query("PRAGMA wal_checkpoint(TRUNCATE)")
            do {
                let n = try dropOldest(rows: min(100, rows - made), why: why)
                if n == 0 { break }
                made += n
            } catch {
                // On a really full disk even a small delete may not fit: rows wait in memory.
                log.limited(.error, key: "store-drop-failed", "store \(path): \(why), and cannot delete rows to make room: \(error)")
                break
            }
        }
        _ = try? db.query("PRAGMA wal_checkpoint(TRUNCATE)")
        return (made, true)
    }

    /// Deletes up to `rows` oldest detections, or oldest alerts when no detection is left.
    /// `routine`: the drop is the cap doing its job (a local-only log lives at its cap), said
    /// as a warning at most once per `CapReport.interval`; any other drop is an error.
    @discardableResult
    func dropOldest(rows: Int, why: String, routine: Bool = false) throws -> Int {
        let (d, neverSynced, a) = try db.transaction { () -> (Int, Int, Int) in
            let limit: [SQLValue] = [.integer(Int64(rows))]
            let unsynced = Int(try db.scalar("""
                SELECT count(*) FROM (SELECT synced_at FROM detections ORDER BY ts, id LIMIT ?) WHERE synced_at IS NULL
                """, limit).int ?? 0)
            _ = try db.query("DELETE FROM detections WHERE id IN (SELECT id FROM detections ORDER BY ts, id LIMIT ?)", limit)
            let d = db.changes
            var a = 0, alertsUnsynced = 0
            if d == 0 {
                alertsUnsynced = Int(try db.scalar("""
                    SELECT count(*) FROM (SELECT synced_at FROM alerts ORDER BY ts, id LIMIT ?) WHERE synced_at IS NULL
                    """, limit).int ?? 0)
                _ = try db.query("DELETE FROM alerts WHERE id IN (SELECT id FROM alerts ORDER BY ts, id LIMIT ?)", limit)
                a = db.changes
            }
            try db.setMeta(MetaKey.droppedDetections, String(droppedDetectionsTotal + d))
            try db.setMeta(MetaKey.droppedAlerts, String(droppedAlertsTotal + a))
            return (d, unsynced + alertsUnsynced, a)
        }
        droppedDetectionsTotal += d
        droppedAlertsTotal += a
        guard d + a > 0 else { return 0 }
        let totals = "dropped so far: \(droppedDetectionsTotal) detections, \(droppedAlertsTotal) alerts"
        if routine {
            if let said = capReport.add(detections: d, alerts: a, neverSynced: neverSynced, now: HealthMonitor.now()) {
                log.warning("store \(path): \(why): dropped the \(said.detections) oldest detections and \(said.alerts) alerts"
                            + "\(said.span) (\(said.neverSynced) never synced); \(totals) (said at most every \(Int(CapReport.interval)) s)")
            }
        } else {
            log.limited(.error, key: "store-drop",
                        "store \(path): \(why): dropped the \(d) oldest detections and \(a) alerts (\(neverSynced) never synced); \(totals)")
        }
        return d + a
    }

    /// Writes the drop totals when rows were dropped from memory since the last commit.
    /// Runs inside the insert transaction, so the count and the rows land together.
    func recordMemoryDropsOnQueue() throws {
        guard unrecordedDrops.detections + unrecordedDrops.alerts > 0 else { return }
        try db.setMeta(MetaKey.droppedDetections, String(droppedDetectionsTotal))
        try db.setMeta(MetaKey.droppedAlerts, String(droppedAlertsTotal))
        unrecordedDrops = (0, 0)
    }
}

/// Drops at the cap, summed between log lines: the first drop is said at once, later ones at
/// most once per `interval` with what went since. A local-only log lives at its cap (issue 19:
/// 170 MB a day from one camera fills 1 GiB in 6 days), and a line per commit, every 100 ms,
/// would be most of the journal.
struct CapReport {
    static let interval = 600.0
    private var lastSaid = -Double.infinity
    private var waiting = (detections: 0, alerts: 0, neverSynced: 0)

    /// Adds a drop; returns what to say now (and forgets it), or nil while the interval runs.
    mutating func add(detections: Int, alerts: Int, neverSynced: Int, now: Double)
        -> (detections: Int, alerts: Int, neverSynced: Int, span: String)? {
        waiting.detections += detections
        waiting.alerts += alerts
        waiting.neverSynced += neverSynced
        guard now - lastSaid >= CapReport.interval else { return nil }
        let span = lastSaid.isFinite ? " in the last \(Int(now - lastSaid)) s" : ""
        defer { waiting = (0, 0, 0); lastSaid = now }
        return (waiting.detections, waiting.alerts, waiting.neverSynced, span)
    }
}
