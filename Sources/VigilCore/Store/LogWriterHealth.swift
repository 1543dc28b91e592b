import Foundation
import SQLite

/// The two statements every commit runs, prepared once per connection.
struct StoreInserts {
    let detection: Statement
    let alert: Statement
    /// Marks intake journal entries retired (Intake/IntakeJournal.swift).
    let retired: Statement

    init(_ db: Database) throws {
        detection = try db.prepare("""
            INSERT OR IGNORE INTO detections(uuid, ts, pipeline, device, model, label, score, scores, latency_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        alert = try db.prepare("""
            INSERT OR IGNORE INTO alerts(uuid, ts, pipeline, device, state, label, score, severity, actions)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        retired = try db.prepare("INSERT OR IGNORE INTO intake_retired(seq) VALUES (?)")
    }
}

/// Storage trouble the user has to act on: the message names the file and what to do.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// The disk's fault (full, read-only, missing, failing), not the file's: it may pass, so
    /// vigild runs on and tries again, rather than stopping in a restart loop.
    public var retryable = false

    /// No file to write to right now (it was deleted and cannot be written again yet).
    static func noFile(_ path: String, _ why: String?) -> StoreError {
        StoreError(description: "no database file to write to (\(why ?? "it could not be opened")); trying again every second")
    }

    /// Why `path` could not be opened, and the remedy for that cause.
    static func cannotOpen(_ path: String, _ error: Error) -> StoreError {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var remedy = "point storage.path at a file vigild can write"
        var retryable = false
        if let e = error as? SQLiteError {
            switch e.result {
            case .full:
                retryable = true
                let free = LogWriter.freeBytes(dir).map { "\(LogWriter.mb($0)) MB free" } ?? "free space unknown"
                remedy = "the file system holding \(dir) is full (\(free)): free space there, or point storage.path at a larger disk"
            case .cantOpen, .readOnly, .permission, .authorization:
                retryable = true
                let what = !FileManager.default.fileExists(atPath: dir) ? "\(dir) does not exist"
                    : !FileManager.default.isWritableFile(atPath: dir) ? "\(dir) is not writable (a read-only file system, or its owner and mode)"
                    : "the file or its -wal/-shm cannot be opened for writing"
                remedy = "\(what): make \(dir) writable by the user vigild runs as (the unit's StateDirectory=vigil makes /var/lib/vigil), or point storage.path elsewhere"
            case .ioError:
                retryable = true
                remedy = "the disk answered with an I/O error: check it (dmesg), or point storage.path at another disk"
            default:
                break
            }
        }
        return StoreError(description: "store \(path): cannot open the log: \(error); \(remedy)", retryable: retryable)
    }
}

/// A file that opened but is not a sound database (not a database at all, truncated, a damaged page).
struct CorruptLog: Error { let detail: String }

/// The log file's own health: checked at start (`quick_check`; a corrupt file is moved
/// aside and a fresh log started, so alerts keep being recorded), and watched while the
/// daemon runs (a file deleted under the connection is written again at its path from the
/// connection, which still holds the deleted file's pages). Runs on the store's queue.
extension LogWriter {
    /// How often the file is looked at: a deleted log is noticed within this.
    static let fileCheckInterval = DispatchTimeInterval.seconds(1)

    /// Opens the log at `path`: WAL, schema up to date, `quick_check` ok. A corrupt file is
    /// moved aside (`<path>.corrupt-<time>`, with its -wal and -shm, so `sqlite3` still reads
    /// it as it was) and a fresh log is started; any other failure throws a `StoreError`
    /// naming the file and the remedy.
    static func openLog(path: String, durability: Durability = .process, log: Logger = Logger.shared) throws -> Database {
        do {
            return try openChecked(path, durability: durability)
        } catch let corrupt as CorruptLog {
            let aside = try moveAside(path, suffix: "corrupt")
            log.error("store \(path): the database is corrupt (\(corrupt.detail)); moved it aside as \(aside) and started a fresh log. "
                      + "Rows not yet synced are only in that file: `sqlite3 \(aside) .recover | sqlite3 rescued.db` saves what is readable")
            do { return try openChecked(path, durability: durability) } catch let again as CorruptLog {
                throw StoreError(description: "store \(path): a fresh log is corrupt too (\(again.detail)): check the disk (dmesg)")
            }
        }
    }

    /// Opens, configures, migrates and checks; throws `CorruptLog` or a `StoreError`.
    private static func openChecked(_ path: String, durability: Durability) throws -> Database {
        do {
            let db = try Database(path: path)
            try configure(db, durability: durability)
            try Schema.migrator.migrate(db)
            // Reads every page once: a damaged page found now costs a moved file, found later a
            // failing commit at an unknown time.
            let check = try db.quickCheck()
            if check != ["ok"] { throw CorruptLog(detail: "quick_check: " + check.joined(separator: "; ")) }
            return db
        } catch let e as SQLiteError where e.isCorrupt {
            throw CorruptLog(detail: e.message)
        } catch let e as SQLiteError {
            throw StoreError.cannotOpen(path, e)
        }
    }

    /// Renames `path` (and its -wal and -shm) to `<path>.<suffix>-<UTC time>`; returns the new name.
    static func moveAside(_ path: String, suffix: String) throws -> String {
        let aside = asideName(path, suffix)
        do {
            try FileManager.default.moveItem(atPath: path, toPath: aside)
        } catch {
            throw StoreError(description: "store \(path): it is corrupt and cannot be moved aside to \(aside): \(error); move or delete it by hand")
        }
        for side in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + side) {
            try? FileManager.default.moveItem(atPath: path + side, toPath: aside + side)
        }
        return aside
    }

    /// Bytes free for this user on the file system holding `directory`, nil when unknown.
    static func freeBytes(_ directory: String) -> Int64? {
        (try? FileManager.default.attributesOfFileSystem(forPath: directory)[.systemFreeSize] as? NSNumber)?.int64Value
    }

    /// Called at start when the file cannot be opened for a reason that may pass (a full or
    /// read-only disk): vigild runs on without it, rows wait in memory, and the file is
    /// tried again every second (checkFileOnQueue).
    func startDetached(_ error: StoreError) {
        needsReopen = true
        limitPages = capPages   // applyCap runs once the file is open
        problem = "cannot open the database file"
        log.error("\(error). vigild runs on without it: rows wait in memory (up to \(maxPending), then the oldest detections are dropped, counted), "
                  + "and the file is tried again every second")
    }

    /// A connection that SQLite opened read-only (a read-only file or file system) cannot
    /// take a row: say so once, with the remedy, and keep the rows in memory (counted when
    /// they must go).
    func checkWritable() {
        guard db.isReadOnly else { return }
        problem = "the database is read-only"
        log.error("store \(path): the database is read-only (a read-only file or file system): no row can be stored; rows wait in memory "
                  + "(up to \(maxPending), then the oldest are dropped and counted). Make it writable by the user vigild runs as "
                  + "(it is opened again within a second), or point storage.path elsewhere and restart vigild")
    }

    /// Every second: was the file deleted (or replaced) under the connection? Then its rows
    /// are written to a new file at the path and the connection moves there.
    func checkFileOnQueue() {
        if needsReopen { reopenOnQueue(); return }
        // SQLite keeps a connection it opened read-only that way: once the user has fixed the
        // file, it is opened again, and the rows waiting in memory go in with the next commit.
        if inserts != nil, db.isReadOnly, FileManager.default.isWritableFile(atPath: path) {
            log.notice("store \(path): the database is writable now: opening it again")
            inserts = nil
            db = LogWriter.detachedConnection()
            reopenOnQueue()
            return
        }
        guard db.fileHasMoved else { return }
        let now = HealthMonitor.now()
        guard now >= rewriteRetry.at else { return }
        let replaced = FileManager.default.fileExists(atPath: path)
        problem = replaced ? "the database file was replaced while vigild ran" : "the database file was deleted while vigild ran"
        log.limited(.error, key: "store-moved", "store \(path): \(problem!); writing the rows of the open connection to "
                    + (replaced ? "\(path).replaced-<time> and moving to the file now at the path" : "a new file at the same path"))
        if rewriteOnQueue(replaced: replaced) {
            rewriteRetry = (0, 1)
        } else {
            rewriteRetry = (now + rewriteRetry.delay, min(60, rewriteRetry.delay * 2))
        }
    }

    /// Copies the deleted file's rows (they are still readable through the connection) to
    /// the path, or beside a file someone put there, then reopens the path.
    /// Returns false when the copy failed (and the old connection goes on).
    private func rewriteOnQueue(replaced: Bool) -> Bool {
        let target = replaced ? LogWriter.asideName(path, "replaced") : path + ".rewriting"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: target)
            counters?.setStoreCopying(true)
            defer { counters?.setStoreCopying(false) }
            try db.copy(to: target)
        } catch {
            // The old connection keeps working (into the deleted file, whose rows stay readable
            // while vigild runs); a later check tries again. A partial copy only takes space.
            try? FileManager.default.removeItem(atPath: target)
            log.limited(.error, key: "store-rewrite", "store \(path): cannot write the open connection's rows to \(target): \(error); "
                        + "trying again in \(Int(rewriteRetry.delay)) s (rows are kept until vigild stops: do not stop it before this succeeds)")
            return false
        }
        // Close the old connection first: it checkpoints into the deleted file and removes its
        // own -wal and -shm, which must not be read as the new file's.
        inserts = nil
        db = LogWriter.detachedConnection()
        if !replaced {
            do { try FileManager.default.moveItem(atPath: target, toPath: path) } catch {
                log.error("store \(path): the rows of the deleted file are in \(target), which cannot take its place: \(error)")
            }
        } else {
            log.error("store \(path): the rows of the file that was replaced are kept in \(target)")
        }
        reopenOnQueue()
        return true
    }

    /// Opens the path again and makes it the connection; on failure the rows wait in memory
    /// and the next check tries again.
    func reopenOnQueue() {
        do {
            let fresh = try LogWriter.openLog(path: path, durability: settings.durability, log: log)
            let statements = try StoreInserts(fresh)
            db = fresh
            inserts = statements
            // The file's totals, plus what was dropped from memory meanwhile (written with the next commit).
            droppedDetectionsTotal = (Int(try db.meta(MetaKey.droppedDetections) ?? "") ?? 0) + unrecordedDrops.detections
            droppedAlertsTotal = (Int(try db.meta(MetaKey.droppedAlerts) ?? "") ?? 0) + unrecordedDrops.alerts
            try applyCap()
            needsReopen = false
            let rows = (db.scalarInt("SELECT count(*) FROM detections") ?? 0) + (db.scalarInt("SELECT count(*) FROM alerts") ?? 0)
            log.notice("store \(path): writing to the file at the path again (\(rows) rows in it)")
            checkWritable()
        } catch {
            needsReopen = true
            problem = "cannot open the database file"
            log.limited(.error, key: "store-reopen", "\(error); trying again every second, rows wait in memory (up to \(maxPending))")
        }
    }

    static func asideName(_ path: String, _ suffix: String) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        f.timeZone = TimeZone(identifier: "UTC")
        return "\(path).\(suffix)-\(f.string(from: Date()))"
    }

    /// Stands in for the connection while there is no file: an empty in-memory log, so that
    /// sync, retention and the gauges find nothing instead of failing. Commits never reach it
    /// (`inserts` is nil), so no row is taken for stored.
    static func detachedConnection() -> Database {
        // In memory, with the schema every build carries: failing here is a programmer error.
        let db = try! Database(path: ":memory:")
        try! Schema.migrator.migrate(db)
        return db
    }

    /// At close: rows that never reached the file are counted and said, never silently lost.
    func countUnwritten() {
        let (d, a) = pending.withLock { p -> (Int, Int) in
            defer { p.detections.removeAll(); p.alerts.removeAll() }
            return (p.detections.count, p.alerts.count)
        }
        guard d + a > 0 else { return }
        counters?.rowsNotStored(d + a)
        log.error("store \(path): \(d) detections and \(a) alerts could not be written and are lost (\(lastError ?? "never written")); "
                  + (problem.map { "\($0): " } ?? "") + "see the errors above for the file and the remedy")
    }
}
