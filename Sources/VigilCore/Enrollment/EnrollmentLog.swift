import Foundation
import SQLite

/// The `enrollments` table (schema step 6) and the change counter in `meta` that tells a
/// running vigild to load it again (polled every 2 s, Service/Daemon.swift). vigilctl
/// writes through its own connection; vigild reads on the store's queue.
public enum EnrollmentLog {
    /// `meta` key bumped by every write, so vigild picks changes up without a signal.
    public static let changeKey = "enrollments_changed"

    static let columns = "uuid, created, pipeline, label, kind, model_version, dim, prototypes, threshold, source"

    public static func hasTable(_ db: Database) throws -> Bool {
        try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'enrollments'").isEmpty
    }

    public static func changeCounter(_ db: Database) throws -> Int64 {
        Int64(try db.scalar("SELECT value FROM meta WHERE key = ?", [.text(changeKey)]).string ?? "") ?? 0
    }

    static func bump(_ db: Database) throws {
        _ = try db.query("""
            INSERT INTO meta(key, value) VALUES (?, '1')
            ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)
            """, [.text(changeKey)])
    }

    /// Inserts (or, for a uuid already there, keeps: sync is at-least-once) with its kept clips
    /// when given and the log has their table, and bumps the counter; returns whether the clips
    /// were kept.
    @discardableResult
    public static func insert(_ e: Enrollment, into db: Database, kept: KeptClips? = nil) throws -> Bool {
        let keep = try kept != nil && hasClipTable(db)
        try db.transaction {
            try write(e, keep ? kept : nil, db)
            try bump(db)
        }
        return keep
    }

    /// `new` (with its clips) in place of `old`, in one transaction: a model upgrade's
    /// re-enrollment, or clips added with `vigilctl enroll --add`.
    public static func replace(_ old: [String], with new: Enrollment, kept: KeptClips?, in db: Database) throws {
        let clips = try hasClipTable(db)
        try db.transaction {
            try write(new, clips ? kept : nil, db)
            for uuid in old { try remove(uuid, clipTable: clips, db) }
            try bump(db)
        }
    }

    /// The rows of one enrollment, inside the caller's transaction.
    private static func write(_ e: Enrollment, _ kept: KeptClips?, _ db: Database) throws {
        _ = try db.query("INSERT OR IGNORE INTO enrollments(\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            .text(e.uuid), .real(e.created), .text(e.pipeline), .text(e.label), .text(e.kind.rawValue),
            .text(e.modelVersion), .integer(Int64(e.prototypes.first?.count ?? 0)), .blob(e.prototypeBytes),
            .real(e.threshold), .text(e.source)])
        if let kept {
            _ = try db.query("INSERT OR REPLACE INTO enrollment_clips(enrollment_uuid, margin, clips) VALUES (?, ?, ?)",
                             [.text(e.uuid), .real(kept.margin), .blob(kept.archive())])
        }
    }

    /// One enrollment's rows, its kept clips with it, inside the caller's transaction.
    private static func remove(_ uuid: String, clipTable: Bool, _ db: Database) throws {
        _ = try db.query("DELETE FROM enrollments WHERE uuid = ?", [.text(uuid)])
        if clipTable { _ = try db.query("DELETE FROM enrollment_clips WHERE enrollment_uuid = ?", [.text(uuid)]) }
    }

    static func hasClipTable(_ db: Database) throws -> Bool {
        try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'enrollment_clips'").isEmpty
    }

    /// The clips kept for an enrollment, or nil (none kept: older vigilctl, or too long to keep).
    public static func keptClips(_ uuid: String, in db: Database) throws -> KeptClips? {
        guard try hasClipTable(db),
              let row = try db.query("SELECT margin, clips FROM enrollment_clips WHERE enrollment_uuid = ?", [.text(uuid)]).first,
              let margin = row[0].double, case .blob(let bytes) = row[1], let entries = Tar.entries(bytes), !entries.isEmpty
        else { return nil }
        return KeptClips(margin: margin, clips: entries.map { ($0.name, $0.bytes) })
    }

    /// How many clips are kept per enrollment uuid (absent: none).
    public static func keptCounts(_ db: Database) throws -> [String: Int] {
        guard try hasClipTable(db) else { return [:] }
        var out: [String: Int] = [:]
        for r in try db.query("SELECT enrollment_uuid, clips FROM enrollment_clips") {
            if let uuid = r[0].string, case .blob(let bytes) = r[1] { out[uuid] = Tar.entries(bytes)?.count ?? 0 }
        }
        return out
    }

    /// Every enrollment, oldest first; a row that cannot be read is skipped and named in `bad`.
    public static func all(_ db: Database) throws -> (enrollments: [Enrollment], bad: [String]) {
        guard try hasTable(db) else { return ([], []) }
        var out: [Enrollment] = [], bad: [String] = []
        for r in try db.query("SELECT \(columns) FROM enrollments ORDER BY created, id") {
            guard let uuid = r[0].string else { continue }
            guard let created = r[1].double, let pipeline = r[2].string, let label = r[3].string,
                  let kind = r[4].string.flatMap(Enrollment.Kind.init), let version = r[5].string, let dim = r[6].int,
                  case .blob(let bytes) = r[7], let protos = Enrollment.prototypes(from: bytes, dim: Int(dim)),
                  let threshold = r[8].double, let source = r[9].string else {
                bad.append(uuid)
                continue
            }
            out.append(Enrollment(uuid: uuid, created: created, pipeline: pipeline, label: label, kind: kind, modelVersion: version,
                                  prototypes: protos, threshold: threshold, source: source))
        }
        return (out, bad)
    }

    /// The enrollments whose uuid or label is `key`, else the one whose uuid starts with it (8+
    /// characters; `AmbiguousKey` when several do), within `pipeline` when given.
    public static func matching(_ key: String, pipeline: String?, in db: Database) throws -> [Enrollment] {
        let all = try all(db).enrollments.filter { pipeline == nil || $0.pipeline == pipeline }
        let k = key.lowercased()
        var found = all.filter { $0.uuid == k || $0.label == key }
        if found.isEmpty, k.count >= 8 {
            // A uuid's first 8 characters are its creation time to ~65 s (UUIDv7): enrollments made
            // in the same minute share them, so a prefix must name one, as git's short ids do.
            found = all.filter { $0.uuid.hasPrefix(k) }
            if found.count > 1 { throw AmbiguousKey(key: key, matches: found) }
        }
        return found
    }

    /// Deletes the enrollments `matching` names; returns what was deleted.
    public static func delete(_ key: String, pipeline: String?, from db: Database) throws -> [Enrollment] {
        let gone = try matching(key, pipeline: pipeline, in: db)
        guard !gone.isEmpty else { return [] }
        let clips = try hasClipTable(db)
        try db.transaction {
            for e in gone { try remove(e.uuid, clipTable: clips, db) }
            try bump(db)
        }
        return gone
    }
}

extension EnrollmentLog {
    /// An enrollment's clips as the pipeline heard them (16 kHz PCM16 WAVs, or whatever rate the
    /// model takes) and the margin it was calibrated with: what enrolling it again needs.
    public struct KeptClips: Sendable {
        /// At most this many bytes of WAV per enrollment (about 65 s at 16 kHz): clips are a
        /// few seconds each; a longer recording is not kept, and says so.
        public static let maxBytes = 2 << 20
        /// Why an enrollment may have none kept.
        public static let whyNoneKept = "enrolled by an older vigilctl, or longer than \(maxBytes >> 20) MB as heard"
        public var margin: Double
        public var clips: [(name: String, wav: [UInt8])]
        public init(margin: Double, clips: [(name: String, wav: [UInt8])]) { self.margin = margin; self.clips = clips }
        public var bytes: Int { clips.reduce(0) { $0 + $1.wav.count } }
        /// The clips as one tar (clip-1.wav, clip-2.wav, ...): what is stored, and what
        /// `vigilctl enrolled --clips` writes out.
        public func archive() -> [UInt8] {
            Tar.archive(clips.enumerated().map { Tar.Entry(name: "clip-\($0.offset + 1).wav", bytes: $0.element.wav) }, mtime: 0)
        }
    }

    /// `unenroll` with a uuid prefix that more than one enrollment starts with: nothing is removed.
    public struct AmbiguousKey: Error, CustomStringConvertible, Sendable {
        public let key: String
        public let matches: [Enrollment]
        public var description: String {
            "uuid prefix \(key) matches \(matches.count) enrollments (" + matches.map { "\($0.uuid) \"\($0.label)\"" }.joined(separator: ", ")
                + "): give more of the uuid; nothing removed"
        }
    }
}

extension Store {
    /// The log's change counter and every enrollment (vigild, at start and when the counter moves).
    public func loadEnrollments() throws -> (version: Int64, enrollments: [Enrollment], bad: [String]) {
        try withDatabase { db in
            let v = try EnrollmentLog.changeCounter(db)
            let (all, bad) = try EnrollmentLog.all(db)
            return (v, all, bad)
        }
    }

    public func enrollmentChangeCounter() throws -> Int64 {
        try withDatabase { db in try EnrollmentLog.changeCounter(db) }
    }
}

/// Each device's online calibration of each enrollment (`DeviceCalibration`), kept across
/// restarts in the `meta` table under one key, so a restarted vigild does not relearn a home's
/// everyday sound (and raise on it again meanwhile). A JSON array of
/// `[pipeline, device, enrollment uuid, level or null]`, with two more elements when the
/// device remembers near misses: `dim, base64 of their Float32 little-endian values, oldest
/// first`. Saved with the anomaly baselines' cadence (`baseline.snapshot_s`) and at stop,
/// read at start.
extension EnrollmentLog {
    public static let calibrationKey = "enrollment_calibration"

    public static func encodeCalibrations(_ all: [EnrollmentBook.Key: DeviceCalibration]) -> String {
        let rows: [(key: EnrollmentBook.Key, text: String)] = all.compactMap { k, c in
            // JSON has no infinity or NaN: one such level would fail the whole array.
            let level = c.level.flatMap { $0.isFinite ? $0 : nil }
            let misses = c.nearMissesOldestFirst
            let dim = misses.first?.count ?? 0
            let keep = dim > 0 && misses.allSatisfy { $0.count == dim }
            guard level != nil || keep,
                  let head = try? JSONSerialization.data(withJSONObject: [k.pipeline, k.device, k.uuid, level.map { $0 as Any } ?? NSNull()])
            else { return nil }
            var text = String(decoding: head, as: UTF8.self)
            if keep {
                // Base64 needs no JSON escaping: appended as text, since JSONSerialization
                // escapes its 22 KB a device character by character (1 s for the budget's 11 MB).
                text.removeLast()
                text += ",\(dim),\"" + Data(Enrollment.littleEndianBytes(misses)).base64EncodedString() + "\"]"
            }
            return (k, text)
        }.sorted { ($0.key.pipeline, $0.key.device, $0.key.uuid) < ($1.key.pipeline, $1.key.device, $1.key.uuid) }
        return "[" + rows.map(\.text).joined(separator: ",") + "]"
    }

    /// Rows that do not parse are skipped (a device then starts afresh).
    public static func decodeCalibrations(_ text: String) -> [EnrollmentBook.Key: DeviceCalibration] {
        guard let rows = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [Any] else { return [:] }
        var out: [EnrollmentBook.Key: DeviceCalibration] = [:]
        for row in rows {
            guard let r = row as? [Any], r.count == 4 || r.count == 6, let p = r[0] as? String, let d = r[1] as? String,
                  let u = r[2] as? String else { continue }
            let level = (r[3] as? NSNumber)?.doubleValue
            guard level?.isFinite ?? (r[3] is NSNull) else { continue }
            var misses: [[Float]] = []
            if r.count == 6 {
                guard let dim = (r[4] as? NSNumber)?.intValue, let b64 = r[5] as? String, let data = Data(base64Encoded: b64),
                      let rows = Enrollment.prototypes(from: [UInt8](data), dim: dim),
                      rows.allSatisfy({ $0.allSatisfy(\.isFinite) }) else { continue }
                misses = rows
            }
            guard level != nil || !misses.isEmpty else { continue }
            out[EnrollmentBook.Key(pipeline: p, device: d, uuid: u)] = DeviceCalibration(level: level, nearMisses: misses)
        }
        return out
    }

    public static func calibrations(_ db: Database) throws -> [EnrollmentBook.Key: DeviceCalibration] {
        try db.meta(calibrationKey).map(decodeCalibrations) ?? [:]
    }
}

extension Store {
    /// Saves what `book` holds if it changed since the last save (a failed save is tried again next time).
    public func saveEnrollmentCalibrations(of book: EnrollmentBook) {
        guard let all = book.calibrationsIfChanged(), !all.isEmpty else { return }
        let text = EnrollmentLog.encodeCalibrations(all)
        do {
            try withDatabase { db in try db.setMeta(EnrollmentLog.calibrationKey, text) }
        } catch {
            book.markChanged()
            log.limited(.warning, key: "enrollment-calibration", "store \(path): cannot save the enrollments' device calibrations: \(error)")
        }
    }

    public func loadEnrollmentCalibrations() -> [EnrollmentBook.Key: DeviceCalibration] {
        (try? withDatabase { db in try EnrollmentLog.calibrations(db) }) ?? [:]
    }
}
