import Foundation
import VigilCore
import VigilTools

/// `vigilctl baseline cameras`, and the camera part of `vigilctl baseline`'s table: the
/// saved camera states (motion-state/ beside the log) with their age and size.
enum CameraStatesView {
    static func table(_ a: Arguments) throws -> ResultTable {
        CameraStateQuery.table(directory: CameraStateQuery.directory(forDatabase: try Shared.databasePath(a)),
                               pipelines: a.list("--pipeline"), devices: a.list("--device"))
    }

    /// `baseline cameras`: the states alone, in any format.
    static func run(_ a: Arguments) throws -> Int32 {
        let format = try Shared.format(a)
        let states = try table(a)
        if format == .table, states.rows.isEmpty {
            warn("no saved camera states (no camera pipeline with a background model has run long enough, or none matches)")
            return ExitCode.ok
        }
        out(states.render(format, style: Shared.style(a)))
        return ExitCode.ok
    }

    /// Under the anomaly baselines in table form: a titled section, or nothing when empty.
    static func section(_ states: ResultTable, style: TableStyle) -> String {
        guard !states.rows.isEmpty else { return "" }
        let kb = states.rows.reduce(Int64(0)) { $0 + ($1[3].int ?? 0) }
        return "\ncamera states (motion-state/, \(states.rows.count) files, \(kb) KB; capped by storage.motion_state_mb):\n"
            + states.render(.table, style: style)
    }
}
