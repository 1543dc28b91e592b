import Foundation
import SQLite
import VigilCore

/// How `vigilctl` prints rows: an aligned table for people, JSON lines or CSV for programs.
public enum OutputFormat: String, Sendable, CaseIterable {
    case table, jsonl, csv

    /// Table on a terminal, JSON lines when piped (a pipe is a program reading).
    public static func automatic(isTTY: Bool = isatty(1) != 0) -> OutputFormat { isTTY ? .table : .jsonl }
}

/// One column of a result: its name, how its values print, and whether the table view shows it.
public struct Column: Sendable {
    public enum Kind: Sendable {
        case integer
        /// A number printed with this many decimals in tables (full precision elsewhere).
        case real(decimals: Int)
        case text
        /// Epoch seconds, printed as ISO-8601 UTC.
        case time
        /// Text holding JSON: embedded as JSON in JSON lines.
        case json
        /// JSON list of action outcomes (`alerts.actions`): embedded as JSON, shown in tables
        /// as `siren:ok led:error`.
        case outcomes
    }
    public let name: String
    public let kind: Kind
    public let inTable: Bool
    /// Table cells longer than this are cut with an ellipsis.
    public let maxWidth: Int
    /// An SQL expression read as this column (nil: the table's column of that name).
    public let select: String?

    public init(_ name: String, _ kind: Kind, inTable: Bool = true, maxWidth: Int = 48, select: String? = nil) {
        self.name = name; self.kind = kind; self.inTable = inTable; self.maxWidth = maxWidth; self.select = select
    }

    var isNumeric: Bool {
        switch kind { case .integer, .real: true; default: false }
    }
}

/// How a table prints for people: which clock, all columns or the ones that fit, how wide.
public struct TableStyle: Sendable, Equatable {
    public var zone: TimeSpec.Zone
    /// Every column, uncut (`--wide`); otherwise the table columns, cut to fit `width`.
    public var wide: Bool
    /// Columns of the terminal (vigilctl asks the terminal; else `COLUMNS`, else 80).
    public var width: Int

    public init(zone: TimeSpec.Zone = .utc, wide: Bool = false, width: Int = 80) {
        self.zone = zone; self.wide = wide; self.width = width
    }

    /// `COLUMNS` when the shell exports it, else 80: tables fit a default terminal.
    public static func terminalWidth(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        env["COLUMNS"].flatMap { Int($0) }.flatMap { (40...1000).contains($0) ? $0 : nil } ?? 80
    }
}

/// Rows with named, typed columns, and the three ways to print them.
public struct ResultTable: Sendable {
    public typealias Row = [SQLValue]
    public var columns: [Column]
    public var rows: [[SQLValue]]

    public init(columns: [Column], rows: [[SQLValue]] = []) {
        self.columns = columns; self.rows = rows
    }

    public func column(named name: String) -> Int? { columns.firstIndex { $0.name == name } }

    public func render(_ format: OutputFormat, header: Bool = true, style: TableStyle = TableStyle()) -> String {
        switch format {
        case .table: return renderTable(header: header, style: style)
        case .jsonl: return rows.map { jsonLine($0) + "\n" }.joined()
        case .csv: return (header ? csvLine(csvHeader) + "\n" : "") + rows.map { csvLine(csvCells($0)) + "\n" }.joined()
        }
    }

    // MARK: table

    public func tableCell(_ value: SQLValue, _ c: Column, style: TableStyle = TableStyle()) -> String {
        let s: String
        switch (c.kind, value) {
        case (_, .null): s = "-"
        case (.time, _): s = value.double.map { TimeSpec.short($0, zone: style.zone) } ?? "-"
        case (.outcomes, _) where !style.wide: s = Self.outcomeSummary(Self.text(value))
        case (.real(let d), _): s = value.double.map { String(format: "%.\(d)f", $0) } ?? "-"
        case (.integer, _): s = value.int.map { String($0) } ?? "-"
        default: s = Self.text(value)
        }
        let flat = s.replacingOccurrences(of: "\n", with: " ")
        return !style.wide && flat.count > c.maxWidth ? Self.cut(flat, c.maxWidth) : flat
    }

    /// The narrowest `values` can be cut to (at least `lowest`) and still be told apart: two
    /// devices "sim-001" and "sim-002" cut to 6 both read "sim-0…", so they are not cut at all.
    /// A table that cannot fit its width otherwise is left wider: readable beats narrow.
    static func narrowest(_ values: [String], from lowest: Int, full: Int) -> Int {
        let distinct = Array(Set(values))
        var w = min(lowest, full)
        while w < full, Set(distinct.map { cut($0, w) }).count < distinct.count { w += 1 }
        return w
    }

    static func cut(_ s: String, _ width: Int) -> String { s.count > width ? String(s.prefix(max(0, width - 1))) + "…" : s }

    /// `siren:ok led:error` from `[{"action":"siren","status":"ok"},...]`.
    static func outcomeSummary(_ json: String) -> String {
        guard case .array(let list)? = try? JSONParser.parse(json) else { return json }
        return list.map { "\($0["action"]?.string ?? "?"):\($0["status"]?.string ?? "?")" }.joined(separator: " ")
    }

    func renderTable(header: Bool, style: TableStyle) -> String {
        let shown = columns.indices.filter { style.wide || columns[$0].inTable }
        var cells = rows.map { row in shown.map { tableCell(row[$0], columns[$0], style: style) } }
        let names = shown.map { columns[$0].name == "ts" ? "TIME" : columns[$0].name.uppercased() }
        var widths = names.map { header ? $0.count : 0 }
        for r in cells { for (k, c) in r.enumerated() { widths[k] = max(widths[k], c.count) } }
        if !style.wide {
            // Too wide for the terminal: narrow the widest text column, one column at a time, down
            // to its header, and never so far that two of its values read alike (times and
            // numbers are never cut: a cut number reads as another number).
            let cuttable = shown.indices.filter { k in
                switch columns[shown[k]].kind { case .text, .json, .outcomes: true; default: false }
            }
            var total = widths.reduce(0, +) + 2 * max(0, widths.count - 1)
            // Only a table that is too wide pays for the floors (a set of cut values per column).
            var floors = widths
            if total > style.width {
                for k in cuttable { floors[k] = Self.narrowest(cells.map { $0[k] }, from: max(6, header ? names[k].count : 0), full: widths[k]) }
            }
            while total > style.width,
                  let k = cuttable.filter({ widths[$0] > floors[$0] }).max(by: { widths[$0] < widths[$1] }) {
                widths[k] -= 1
                total -= 1
            }
            for r in cells.indices { for k in cuttable where cells[r][k].count > widths[k] { cells[r][k] = Self.cut(cells[r][k], widths[k]) } }
        }
        func line(_ values: [String]) -> String {
            var out = ""
            for (k, v) in values.enumerated() {
                let pad = String(repeating: " ", count: max(0, widths[k] - v.count))
                let last = k == values.count - 1
                if columns[shown[k]].isNumeric { out += pad + v } else { out += v + (last ? "" : pad) }
                if !last { out += "  " }
            }
            return out
        }
        var out = header ? line(names) + "\n" : ""
        for r in cells { out += line(r) + "\n" }
        return out
    }

    // MARK: JSON lines

    public func jsonObject(_ row: [SQLValue]) -> JSONValue {
        var members: [(String, JSONValue)] = []
        for (c, v) in zip(columns, row) {
            members.append((c.name, Self.json(v, c)))
            if case .time = c.kind {
                members.append((c.name == "ts" ? "time" : c.name + "_time", v.double.map { .string(TimeSpec.format($0)) } ?? .null))
            }
        }
        return .object(members)
    }

    public func jsonLine(_ row: [SQLValue]) -> String { jsonObject(row).serialized }

    static func json(_ v: SQLValue, _ c: Column) -> JSONValue {
        switch v {
        case .null: return .null
        case .integer(let i): return .number(Double(i))
        case .real(let d): return .number(d)
        case .blob(let b): return .string(b.map { String(format: "%02x", $0) }.joined())
        case .text(let s):
            switch c.kind {
            case .json, .outcomes: if let parsed = try? JSONParser.parse(s) { return parsed }
            default: break
            }
            return .string(s)
        }
    }

    // MARK: CSV (RFC 4180)

    /// Time columns print as epoch seconds, each followed by its ISO-8601 form (as in JSON lines).
    public var csvHeader: [String] {
        columns.flatMap { c -> [String] in
            if case .time = c.kind { return [c.name, c.name == "ts" ? "time" : c.name + "_time"] }
            return [c.name]
        }
    }

    public func csvCells(_ row: [SQLValue]) -> [String] {
        zip(columns, row).flatMap { c, v -> [String] in
            let raw: String
            switch v {
            case .null: raw = ""
            case .real(let d): raw = "\(d)"
            default: raw = Self.text(v)
            }
            if case .time = c.kind { return [raw, v.double.map(TimeSpec.format) ?? ""] }
            return [raw]
        }
    }

    public func csvLine(_ cells: [String]) -> String {
        cells.map { s in
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }.joined(separator: ",")
    }

    static func text(_ v: SQLValue) -> String {
        switch v {
        case .null: return ""
        case .integer(let i): return String(i)
        case .real(let d): return "\(d)"
        case .text(let s): return s
        case .blob(let b): return b.map { String(format: "%02x", $0) }.joined()
        }
    }
}
