import Foundation
import SQLite
import VigilCore

/// `vigilctl baseline`'s camera half: the saved camera states (background, activity) in
/// `motion-state/` beside the log, with their age and size. Read from the files, not the log:
/// vigild keeps them there so a restart resumes each camera.
public enum CameraStateQuery {
    public static let columns: [Column] = [
        Column("pipeline", .text),
        Column("device", .text),
        Column("frame", .text),
        Column("kb", .integer),
        Column("saved_at", .time),
        Column("age", .text),
        Column("view_px", .text),
        Column("view_x", .real(decimals: 2), inTable: false),
        Column("view_y", .real(decimals: 2), inTable: false),
        Column("age_s", .real(decimals: 0), inTable: false),
        Column("last_frame", .time, inTable: false),
        Column("path", .text, inTable: false),
    ]

    /// The folder beside a log file.
    public static func directory(forDatabase path: String) -> String {
        URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("motion-state").path
    }

    /// The states whose pipeline and device match the filter's lists (globs allowed, as
    /// elsewhere), oldest first. A file of another format shows with an empty pipeline.
    public static func table(directory: String, pipelines: [String] = [], devices: [String] = [],
                             now: Double = Date().timeIntervalSince1970) -> ResultTable {
        func matches(_ value: String?, _ patterns: [String]) -> Bool {
            patterns.isEmpty || patterns.contains { fnmatch($0, value ?? "", 0) == 0 }
        }
        let rows: [ResultTable.Row] = CameraStateFolder.list(directory: directory).compactMap { e in
            guard matches(e.pipeline, pipelines), matches(e.device, devices) else { return nil }
            return [e.pipeline.map(SQLValue.text) ?? .null, e.device.map(SQLValue.text) ?? .null,
                    .text(e.width > 0 ? "\(e.width)x\(e.height)" : "?"), .integer(Int64((e.bytes + 1023) / 1024)),
                    .real(e.written), .text(TimeSpec.age(now - e.written)), e.viewOffset.map { .text(view($0)) } ?? .null,
                    e.viewOffset.map { .real($0.x) } ?? .null, e.viewOffset.map { .real($0.y) } ?? .null,
                    .real(max(0, now - e.written)), e.frameTime.map(SQLValue.real) ?? .null, .text(e.path)]
        }
        return ResultTable(columns: columns, rows: rows)
    }

    /// How far a camera has crept: the shift vigild applies to its frames to put them back on the
    /// learnt view (x right, y down, px at the model's frame size; a view that slid right reads
    /// x < 0), flagged within a pixel of where the aligner stops following: re-aim the camera.
    static func view(_ o: (y: Double, x: Double)) -> String {
        let text = String(format: "x%+.2f y%+.2f", o.x, o.y)
        return max(abs(o.x), abs(o.y)) >= CameraStateFolder.viewReach - 1
            ? text + String(format: " (limit %g)", CameraStateFolder.viewReach) : text
    }
}
