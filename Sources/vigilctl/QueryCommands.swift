import Foundation
import VigilCore
import VigilTools

enum QueryCommands {
    static let limit = Option(name: "--limit", short: "-n", value: "N", help: "print the newest N rows (default 100; 0 for all)")
    static let state = Option(name: "--state", value: "STATE", help: "alerts only: raised or cleared", repeatable: true)

    static let detections = Command(
        name: "detections", summary: "List detections from the local log, oldest first.",
        options: Shared.filters + [limit, Shared.format] + Shared.tableOptions + [Shared.db, Shared.config],
        details: """
            examples:
              vigilctl detections --since 15m --pipeline camera --min-score 0.8
              vigilctl detections --since yesterday --until today -o csv
              vigilctl detections --since 2026-11-29T06:00:00Z --until 2026-11-29T07:00:00Z
            """,
        run: { try list($0, alerts: false) })

    static let alerts = Command(
        name: "alerts", summary: "List alert transitions (raised, cleared) from the local log, oldest first.",
        options: Shared.filters + [state, limit, Shared.format] + Shared.tableOptions + [Shared.db, Shared.config],
        details: """
            examples:
              vigilctl alerts --since 7d --state raised
              vigilctl alerts --device 'door-*' -o json
              vigilctl alerts --wide    # severity, uuid and the actions' full outcomes
            """,
        run: { try list($0, alerts: true) })

    static let export = Command(
        name: "export", summary: "Write every matching detection or alert, streamed, as JSON lines (default) or CSV.",
        positionals: "[detections|alerts]", positionalRange: 0...1,
        options: Shared.filters + [state, Shared.format, Shared.utc, Shared.db, Shared.config],
        details: """
            Without detections or alerts, exports detections.
            examples:
              vigilctl export detections --since 7d --format csv > week.csv
              vigilctl export alerts --since 2026-11-01 -o json
            """,
        run: exportRows)

    static func list(_ a: Arguments, alerts: Bool) throws -> Int32 {
        let format = try Shared.format(a)
        var filter = try Shared.filter(a)
        if alerts { filter.states = try states(a) }
        let n = try a.int("--limit", in: 0...Int(Int32.max)) ?? 100
        let reader = try Shared.openLog(a)
        let (table, more) = try alerts ? reader.alerts(filter, limit: n == 0 ? nil : n)
                                       : reader.detections(filter, limit: n == 0 ? nil : n)
        if format == .table, table.rows.isEmpty {
            warn("no \(alerts ? "alerts" : "detections") match")
            return ExitCode.ok
        }
        out(table.render(format, style: Shared.style(a)))
        if more { warn("showing the newest \(n) rows; more match (--limit 0 for all, or narrow with --since)") }
        return ExitCode.ok
    }

    static func states(_ a: Arguments) throws -> [String] {
        let states = a.list("--state")
        for s in states where s != "raised" && s != "cleared" {
            throw UsageError("--state: expected raised or cleared, got \"\(s)\"")
        }
        return states
    }

    static func exportRows(_ a: Arguments) throws -> Int32 {
        let table = a.positionals.first ?? "detections"
        guard table == "detections" || table == "alerts" else {
            throw UsageError("export: expected detections or alerts, got \"\(table)\"")
        }
        let format = try Shared.format(a, default: .jsonl)
        guard format != .table else { throw UsageError("--format: export writes jsonl or csv, not table") }
        var filter = try Shared.filter(a)
        if table == "alerts" { filter.states = try states(a) }
        else if a.string("--state") != nil { throw UsageError("--state: only alerts have a state") }
        let reader = try Shared.openLog(a)
        var count = 0
        let shape = ResultTable(columns: table == "alerts" ? LogReader.alertColumns : LogReader.detectionColumns)
        if format == .csv { out(shape.csvLine(shape.csvHeader) + "\n") }
        _ = try reader.each(table: table, filter) { row in
            count += 1
            out(format == .csv ? shape.csvLine(shape.csvCells(row)) + "\n" : shape.jsonLine(row) + "\n")
        }
        Output.shared.flush()
        warn("exported \(count) \(table)")
        return ExitCode.ok
    }

    // MARK: stats and sync

    static let stats = Command(
        name: "stats", summary: "Per pipeline and device: detections, label distribution, latency p50/p95/p99 and alerts raised.",
        options: [Option(name: "--since", value: "WHEN", help: "from this time (default 24h; same forms as detections --since)"),
                  Shared.until, Shared.pipeline, Shared.device, Shared.label, Shared.minScore, Shared.format]
            + Shared.tableOptions + [Shared.db, Shared.config],
        details: """
            Latency percentiles are nearest-rank over latency_ms: the p-th percentile of N values
            is the value at rank ceil(p/100 × N) in ascending order, so it is always a latency
            that was measured. Alerts count raised transitions in the same range.
            """,
        run: runStats)

    static func runStats(_ a: Arguments) throws -> Int32 {
        let format = try Shared.format(a)
        let now = Date().timeIntervalSince1970
        let filter = try Shared.filter(a, now: now, defaultSince: 86400)
        let reader = try Shared.openLog(a)
        let groups: [GroupStats], total: GroupStats
        do { (groups, total) = try reader.stats(filter) } catch let e as QueryError { throw Failure(e.message, status: ExitCode.database) }
        var table = ResultTable(columns: GroupStats.columns)
        table.rows = groups.map { $0.row(forTable: format == .table) }
        if format == .table {
            let when = { (t: Double) in TimeSpec.short(t, zone: Shared.zone(a)) }
            let range = "from \(filter.since.map(when) ?? "the start") to \(filter.until.map(when) ?? "now")"
            if groups.isEmpty {
                warn("no detections or alerts \(range)")
                return ExitCode.ok
            }
            if groups.count > 1 { table.rows.append(total.row(forTable: true)) }
            out("\(range)\n")
        }
        out(table.render(format, style: Shared.style(a)))
        return ExitCode.ok
    }

    static let sync = Command(
        name: "sync", summary: "Cloud sync state: backlog, oldest unsynced row, last successful sync, rows dropped by the size cap.",
        options: [Shared.format, Shared.utc, Shared.db, Shared.config],
        details: "Reads the meta keys the store writes (last_sync_at, last_sync_error, dropped_detections, dropped_alerts); missing keys print as never/0.",
        run: runSync)

    static func runSync(_ a: Arguments) throws -> Int32 {
        let format = try Shared.format(a)
        let reader = try Shared.openLog(a)
        var s: SyncStatus
        do { s = try reader.syncStatus() } catch let e as QueryError { throw Failure(e.message, status: ExitCode.database) }
        // Whether there is an uplink at all: a backlog that only grows is expected without one.
        if let (file, root) = try? Shared.rawConfig(a) {
            if let sync = root["sync"], sync != .null {
                if let m = sync["mqtt"], m != .null {
                    let port = m["port"]?.double.map { String(Int($0)) } ?? "1883"
                    s.uplink = "mqtt \(m["host"]?.string ?? "?"):\(port)"
                } else if let url = sync["http"]?["url"]?.string {
                    s.uplink = "http \(url)"
                } else {
                    s.uplink = "configured in \(file)"
                }
            } else {
                s.uplink = "not configured (no sync in \(file))"
            }
        }
        switch format {
        case .table: out(s.text(zone: Shared.zone(a)))
        case .jsonl: out(s.json.serialized + "\n")
        case .csv:
            guard case .object(let members) = s.json else { return ExitCode.failure }
            let t = ResultTable(columns: [])
            out(t.csvLine(members.map(\.0)) + "\n")
            out(t.csvLine(members.map { m in
                switch m.1 {
                case .null: return ""
                case .string(let s): return s
                default: return m.1.serialized
                }
            }) + "\n")
        }
        return ExitCode.ok
    }
}
