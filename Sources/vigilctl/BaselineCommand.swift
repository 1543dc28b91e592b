import Foundation
import VigilCore

/// `baseline`: each device's learned baseline (stateful anomaly models), and `baseline reset`.
enum BaselineCommand {
    static let command = Command(
        name: "baseline", summary: "Show each device's learned baseline (warm-up, alert threshold, stuck fields), or reset devices' baselines.",
        positionals: "[reset]", positionalRange: 0...1,
        options: [Shared.pipeline, Shared.device, Shared.format] + Shared.tableOptions + [Shared.db, Shared.config],
        details: """
            Devices of pipelines whose model takes a baseline (the shipped anomaly model) keep one,
            learned over baseline.horizon_s and saved in the log every baseline.snapshot_s; no alert
            is raised while a device warms up. `reset` makes vigild forget the matching devices'
            baselines (within 2 s while it runs, else at its next start): each warms up again.
            examples:
              vigilctl baseline --pipeline environment
              vigilctl baseline reset --device boiler-3
            """,
        run: run)

    static func run(_ a: Arguments) throws -> Int32 {
        if let verb = a.positionals.first {
            guard verb == "reset" else { throw UsageError("expected reset or nothing, got \"\(verb)\"") }
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
        if format == .table, table.rows.isEmpty {
            warn("no baselines (none of the pipelines has a model that takes one, or no device has sent readings yet)")
            return ExitCode.ok
        }
        out(table.render(format, style: Shared.style(a)))
        return ExitCode.ok
    }
}
