import Foundation
import VigilCore
import VigilTools

/// `vigilctl tail`: the last rows, then new detections and alerts as vigild commits them.
/// Polls by id (a WAL reader never blocks the writer), so a poll costs one indexed query.
enum TailCommand {
    static let command = Command(
        name: "tail", summary: "Print the newest detections and alerts, then follow new ones as they are written (Ctrl-C stops).",
        options: [Option(name: "--lines", short: "-n", value: "N", help: "print the newest N rows first (default 10)"),
                  Option(name: "--follow", short: "-f", help: "follow new rows (the default; -f as in tail -f)"),
                  Option(name: "--no-follow", help: "print the newest rows and exit"),
                  Option(name: "--only", value: "KIND", help: "detections or alerts (default both)"),
                  Option(name: "--interval", value: "MS", help: "poll every MS milliseconds (default 200)"),
                  Shared.pipeline, Shared.device, Shared.label, Shared.minScore,
                  Shared.format, Shared.utc, Shared.db, Shared.config],
        details: "Table rows show kind, and for detections the model latency, for alerts the state and severity.",
        run: run)

    static func run(_ a: Arguments) throws -> Int32 {
        let format = try Shared.format(a)
        let lines = try a.int("--lines", in: 0...1_000_000) ?? 10
        let interval = try a.int("--interval", in: 10...60_000) ?? 200
        let only = try a.choice("--only", ["detections", "alerts"])
        if a.flag("--follow"), a.flag("--no-follow") { throw UsageError("--follow and --no-follow contradict each other") }
        var filter = try Shared.filter(a)
        let stop = stopOnSignals()
        let reader = try Shared.openLog(a)
        let printer = TailPrinter(format: format, zone: Shared.zone(a))
        let wantDetections = only != "alerts", wantAlerts = only != "detections"

        func fetch(_ f: RowFilter, limit: Int?) throws -> [TailRow] {
            var rows: [TailRow] = []
            if wantDetections {
                let (t, _) = try reader.detections(f, limit: limit)
                rows += t.rows.map { TailRow(alert: false, table: t, values: $0) }
            }
            if wantAlerts {
                let (t, _) = try reader.alerts(f, limit: limit)
                rows += t.rows.map { TailRow(alert: true, table: t, values: $0) }
            }
            return rows.sorted { ($0.ts, $0.alert ? 1 : 0, $0.id) < ($1.ts, $1.alert ? 1 : 0, $1.id) }
        }

        var lastDetection = try wantDetections ? reader.maxID("detections") : 0
        var lastAlert = try wantAlerts ? reader.maxID("alerts") : 0
        // Rows committed between reading the max ids and the fetch are printed now, so the
        // follow loop must start after them too: never print a row twice.
        func advance(past rows: [TailRow]) {
            for r in rows {
                if r.alert { lastAlert = max(lastAlert, r.id) } else { lastDetection = max(lastDetection, r.id) }
            }
        }
        if lines > 0 {
            let rows = Array(try fetch(filter, limit: lines).suffix(lines))
            advance(past: rows)
            printer.print(rows)
        } else {
            printer.print([])
        }
        Output.shared.flush()
        if a.flag("--no-follow") { return ExitCode.ok }

        while !stop.isSet {
            // Sleep in short steps so Ctrl-C is answered at once.
            var slept = 0
            while slept < interval && !stop.isSet { usleep(UInt32(min(50, interval - slept)) * 1000); slept += 50 }
            if stop.isSet { break }
            var newRows: [TailRow] = []
            do {
                // A smaller max id means the log was replaced (restored, recreated): start over from its end.
                let maxD = wantDetections ? try reader.maxID("detections") : 0
                let maxA = wantAlerts ? try reader.maxID("alerts") : 0
                if maxD < lastDetection || maxA < lastAlert {
                    warn("the log was replaced; following the new one")
                    lastDetection = maxD; lastAlert = maxA
                    continue
                }
                if maxD <= lastDetection && maxA <= lastAlert { continue }
                if wantDetections, maxD > lastDetection {
                    filter.afterID = lastDetection
                    let (t, _) = try reader.detections(filter, limit: nil)
                    newRows += t.rows.map { TailRow(alert: false, table: t, values: $0) }
                    lastDetection = maxD
                }
                if wantAlerts, maxA > lastAlert {
                    filter.afterID = lastAlert
                    let (t, _) = try reader.alerts(filter, limit: nil)
                    newRows += t.rows.map { TailRow(alert: true, table: t, values: $0) }
                    lastAlert = maxA
                }
                filter.afterID = nil
            } catch let e as QueryError {
                // A busy or briefly unavailable file is retried; the daemon's rows are not lost.
                warn("\(e.message); retrying")
                continue
            }
            advance(past: newRows)
            printer.print(newRows.sorted { ($0.ts, $0.alert ? 1 : 0, $0.id) < ($1.ts, $1.alert ? 1 : 0, $1.id) })
            Output.shared.flush()
        }
        Output.shared.flush()
        return ExitCode.ok
    }
}

/// One detection or alert, as the JSON object JSON lines print.
struct TailRow {
    let alert: Bool
    let object: JSONValue

    init(alert: Bool, table: ResultTable, values: ResultTable.Row) {
        self.alert = alert
        object = table.jsonObject(values)
    }

    func value(_ name: String) -> JSONValue { object[name] ?? .null }
    var ts: Double { value("ts").double ?? 0 }
    var id: Int64 { Int64(value("id").double ?? 0) }
}

/// Prints tail rows: one table whose columns grow as wider values arrive, or JSON lines
/// and CSV with a `kind` field first.
final class TailPrinter {
    let format: OutputFormat
    let zone: TimeSpec.Zone
    var widths = [19, 9, 8, 8, 8, 5, 0]
    var headerDone = false
    static let csvColumns = ["kind", "id", "ts", "time", "pipeline", "device", "label", "score", "detail", "uuid"]

    init(format: OutputFormat, zone: TimeSpec.Zone) { self.format = format; self.zone = zone }

    func print(_ rows: [TailRow]) {
        switch format {
        case .table:
            if !headerDone { line(["TIME", "KIND", "PIPELINE", "DEVICE", "LABEL", "SCORE", "DETAIL"]); headerDone = true }
            for r in rows {
                let score = r.value("score").double.map { String(format: "%.3f", $0) } ?? "-"
                line([TimeSpec.short(r.ts, zone: zone), r.alert ? "alert" : "detection", r.value("pipeline").string ?? "-",
                      r.value("device").string ?? "-", r.value("label").string ?? "-", score, detail(r)])
            }
        case .jsonl:
            for r in rows {
                guard case .object(let members) = r.object else { continue }
                out(JSONValue.object([("kind", .string(r.alert ? "alert" : "detection"))] + members).serialized + "\n")
            }
        case .csv:
            if !headerDone { out(ResultTable(columns: []).csvLine(TailPrinter.csvColumns) + "\n"); headerDone = true }
            for r in rows {
                let cells = [r.alert ? "alert" : "detection", "\(r.id)", "\(r.ts)", TimeSpec.format(r.ts),
                             r.value("pipeline").string ?? "", r.value("device").string ?? "", r.value("label").string ?? "",
                             r.value("score").double.map { "\($0)" } ?? "", detail(r), r.value("uuid").string ?? ""]
                out(ResultTable(columns: []).csvLine(cells) + "\n")
            }
        }
    }

    func detail(_ r: TailRow) -> String {
        if r.alert {
            return [r.value("state").string, r.value("severity").string].compactMap { $0 }.joined(separator: " ")
        }
        return r.value("latency_ms").double.map { String(format: "%.2f ms", $0) } ?? ""
    }

    func line(_ cells: [String]) {
        var s = ""
        for (i, c) in cells.enumerated() {
            widths[i] = max(widths[i], c.count)
            let last = i == cells.count - 1
            let pad = String(repeating: " ", count: widths[i] - c.count)
            s += i == 5 ? pad + c : c + (last ? "" : pad)
            if !last { s += "  " }
        }
        out(s + "\n")
    }
}
