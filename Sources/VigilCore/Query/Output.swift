import Foundation
import SQLite

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

/// Rows with named, typed columns, and the three ways to print them.
public struct ResultTable: Sendable {
    public typealias Row = [SQLValue]
    public var columns: [Column]
    public var rows: [[SQLValue]]

    public init(columns: [Column], rows: [[SQLValue]] = []) {
        self.columns = columns; self.rows = rows
    }

    public func column(named name: String) -> Int? { columns.firstIndex { $0.name == name } }

    public func render(_ format: OutputFormat, header: Bool = true) -> String {
        switch format {
        case .table: return renderTable(header: header)
        case .jsonl: return rows.map { jsonLine($0) + "\n" }.joined()
        case .csv: return (header ? csvLine(csvHeader) + "\n" : "") + rows.map { csvLine(csvCells($0)) + "\n" }.joined()
        }
    }

    // MARK: table

    public func tableCell(_ value: SQLValue, _ c: Column) -> String {
        let s: String
        switch (c.kind, value) {
        case (_, .null): s = "-"
        case (.time, _): s = value.double.map(TimeSpec.format) ?? "-"
        case (.real(let d), _): s = value.double.map { String(format: "%.\(d)f", $0) } ?? "-"
        case (.integer, _): s = value.int.map { String($0) } ?? "-"
        default: s = Self.text(value)
        }
        let flat = s.replacingOccurrences(of: "\n", with: " ")
        return flat.count > c.maxWidth ? String(flat.prefix(c.maxWidth - 1)) + "…" : flat
    }

    func renderTable(header: Bool) -> String {
        let shown = columns.indices.filter { columns[$0].inTable }
        let cells = rows.map { row in shown.map { tableCell(row[$0], columns[$0]) } }
        let names = shown.map { columns[$0].name == "ts" ? "TIME" : columns[$0].name.uppercased() }
        var widths = names.map { header ? $0.count : 0 }
        for r in cells { for (k, c) in r.enumerated() { widths[k] = max(widths[k], c.count) } }
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
            if case .json = c.kind, let parsed = try? JSONParser.parse(s) { return parsed }
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
