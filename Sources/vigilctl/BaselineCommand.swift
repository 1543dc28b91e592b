import Foundation
import VigilCore
import VigilTools

/// `baseline`: each device's learned baseline (stateful anomaly models), and `baseline reset`.
enum BaselineCommand {
    static let command = Command(
        name: "baseline", summary: "Show each device's learned baseline (warm-up, alert threshold, stuck fields), or reset devices' baselines.",
        positionals: "[reset|cameras]", positionalRange: 0...1,
        options: [Shared.pipeline, Shared.device, Shared.format] + Shared.tableOptions + [Shared.db, Shared.config],
        details: """
            Devices of pipelines whose model takes a baseline (the shipped anomaly model) keep one,
            learned over baseline.horizon_s and saved in the log every baseline.snapshot_s; no alert
            is raised while a device warms up. `reset` makes vigild forget the matching devices'
            baselines (within 2 s while it runs, else at its next start): each warms up again.
            Camera pipelines whose model keeps a background save each device's state in
            motion-state/ beside the log; the table lists them after the baselines, with their
            age and size, and `cameras` lists them alone (in any --format).
            examples:
              vigilctl baseline --pipeline environment
              vigilctl baseline reset --device boiler-3
              vigilctl baseline cameras --pipeline doorcam
            """,
        run: run)

    static func run(_ a: Arguments) throws -> Int32 {
        if let verb = a.positionals.first {
            if verb == "cameras" { return try CameraStatesView.run(a) }
            guard verb == "reset" else { throw UsageError("expected reset, cameras or nothing, got \"\(verb)\"") }
            let devices = a.list("--device"), pipelines = a.list("--pipeline")
            guard !devices.isEmpty || !pipelines.isEmpty else {
                throw UsageError("reset needs --device or --pipeline (use --device '*' to reset every device)")
            }
            let path = try Shared.databasePath(a)
            let marked = try BaselineReset.request(path: path, pipelines: pipelines, devices: devices)
            guard !marked.isEmpty else {
                warn("no baseline matches (vigilctl baseline lists them)")
                return ExitCode.failure
            }
            for m in marked { out("reset asked: pipeline \(m.pipeline), device \(m.device)\n") }
            return ExitCode.ok
        }
        let format = try Shared.format(a)
        var filter = RowFilter()
        filter.pipelines = a.list("--pipeline")
        filter.devices = a.list("--device")
        let table = try Shared.openLog(a).baselines(filter)
        let cameras = format == .table ? CameraStatesView.section(try CameraStatesView.table(a), style: Shared.style(a)) : ""
        if format == .table, table.rows.isEmpty {
            guard cameras.isEmpty else { out("no anomaly baselines\n" + cameras); return ExitCode.ok }
            warn("no baselines (none of the pipelines has a model that takes one, or no device has sent readings yet)")
            return ExitCode.ok
        }
        out(table.render(format, style: Shared.style(a)) + cameras)
        return ExitCode.ok
    }
}
