import SQLite
import VigilCore

/// vigilctl's side of the `enrollments` table (EnrollmentLog, in VigilCore, is what vigild
/// also reads): each call opens the log at `path` for the one change or read.
extension EnrollmentLog {
    @discardableResult
    public static func insert(_ e: Enrollment, path: String, kept: KeptClips? = nil) throws -> Bool {
        try insert(e, into: try open(path: path), kept: kept)
    }
    public static func all(path: String) throws -> [Enrollment] { try all(try open(path: path)).enrollments }
    public static func matching(_ key: String, pipeline: String?, path: String) throws -> [Enrollment] {
        try matching(key, pipeline: pipeline, in: try open(path: path))
    }
    public static func keptCounts(path: String) throws -> [String: Int] { try keptCounts(try open(path: path)) }
    public static func keptClips(_ uuid: String, path: String) throws -> KeptClips? { try keptClips(uuid, in: try open(path: path)) }
    public static func replace(_ old: [String], with new: Enrollment, kept: KeptClips?, path: String) throws {
        try replace(old, with: new, kept: kept, in: try open(path: path))
    }
    /// Each device's calibration as vigild last saved it (`baseline.snapshot_s`, and at stop).
    public static func calibrations(path: String) throws -> [EnrollmentBook.Key: DeviceCalibration] { try calibrations(try open(path: path)) }
    public static func delete(_ key: String, pipeline: String?, path: String) throws -> [Enrollment] {
        try delete(key, pipeline: pipeline, from: try open(path: path))
    }

    /// Opens the log for writing (vigilctl), with the same checks and messages as every query.
    static func open(path: String) throws -> Database {
        _ = try LogReader(path: path)
        let db: Database
        do { db = try Database(path: path) } catch {
            throw QueryError("cannot write to \(path) (run as the vigil user, or with sudo): \(error)")
        }
        guard try hasTable(db) else {
            throw QueryError("\(path) has no enrollments table: start this version of vigild once to upgrade the log")
        }
        return db
    }
}

extension LogReader {
    /// The label an alert was raised on (for `vigilctl enroll --from-alert`); nil when no such alert.
    public func alertLabel(_ uuid: String) throws -> String? {
        try query("SELECT label FROM alerts WHERE uuid = ? AND state = 'raised'", [.text(uuid.lowercased())]).first?.first?.string
    }
}
