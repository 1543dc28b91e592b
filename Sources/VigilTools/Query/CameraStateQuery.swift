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
                    .real(e.written), .text(TimeSpec.age(now - e.written)), .real(max(0, now - e.written)),
                    e.frameTime.map(SQLValue.real) ?? .null, .text(e.path)]
        }
        return ResultTable(columns: columns, rows: rows)
    }
}
