import Foundation
import VigilCore

/// A bad command line: printed with the subcommand's usage, exit status 2.
struct UsageError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// A runtime failure with the exit status it maps to (see docs/vigilctl.md).
struct Failure: Error, CustomStringConvertible {
    let message: String
    let status: Int32
    init(_ message: String, status: Int32 = ExitCode.failure) { self.message = message; self.status = status }
    var description: String { message }
}

enum ExitCode {
    static let ok: Int32 = 0
    /// The command ran and found a problem (invalid config, a model off contract, messages not delivered).
    static let failure: Int32 = 1
    /// Bad command line: unknown subcommand or option, missing or malformed value.
    static let usage: Int32 = 2
    /// The database is missing, unreadable or not a Vigil log.
    static let database: Int32 = 3
    /// The broker could not be reached.
    static let broker: Int32 = 4
}

/// One option a subcommand accepts. `value` is the placeholder shown in help; nil for a flag.
struct Option: Sendable {
    let name: String
    var short: String? = nil
    var value: String? = nil
    let help: String
    var repeatable = false
}

/// A subcommand: its options, help and body (which returns the exit status).
struct Command: Sendable {
    let name: String
    let summary: String
    /// Positional arguments as shown in usage, e.g. "[FILE]".
    var positionals = ""
    var positionalRange = 0...0
    let options: [Option]
    var details = ""
    let run: @Sendable (Arguments) throws -> Int32

    var usage: String {
        var s = "usage: vigilctl \(name)\(options.isEmpty ? "" : " [options]")\(positionals.isEmpty ? "" : " " + positionals)\n\n\(summary)\n"
        if !options.isEmpty {
            s += "\noptions:\n"
            let labels = options.map { o -> String in
                var l = (o.short.map { "\($0), " } ?? "") + o.name
                if let v = o.value { l += " " + v }
                return l
            }
            let w = min(30, labels.map(\.count).max() ?? 0)
            for (o, l) in zip(options, labels) {
                let pad = l.count <= w ? String(repeating: " ", count: w - l.count) : "\n" + String(repeating: " ", count: w + 2)
                s += "  \(l)\(pad)  \(o.help)\n"
            }
            s += "  -h, --help" + String(repeating: " ", count: max(0, w - 10)) + "  show this help\n"
        }
        if !details.isEmpty { s += "\n" + details + "\n" }
        return s
    }

    /// Splits `args` into options and positionals; `--name=value` and `--name value` both work.
    func parse(_ args: [String]) throws -> Arguments {
        var values: [String: [String]] = [:]
        var positionals: [String] = []
        var i = 0
        var onlyPositionals = false
        while i < args.count {
            let arg = args[i]
            i += 1
            if onlyPositionals || !arg.hasPrefix("-") || arg == "-" {
                positionals.append(arg)
                continue
            }
            if arg == "--" { onlyPositionals = true; continue }
            if arg == "--help" || arg == "-h" { values["--help"] = [""]; continue }
            var name = arg
            var inline: String?
            if let eq = arg.firstIndex(of: "="), arg.hasPrefix("--") {
                name = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            guard let option = options.first(where: { $0.name == name || $0.short == name }) else {
                var msg = "unknown option \(name)"
                if let close = Command.closest(name, options.map(\.name)) { msg += " (did you mean \(close)?)" }
                throw UsageError(msg)
            }
            if option.value != nil {
                let v: String
                if let inline { v = inline } else {
                    guard i < args.count else { throw UsageError("\(option.name) needs a value (\(option.value!))") }
                    v = args[i]
                    i += 1
                }
                if !option.repeatable, values[option.name] != nil {
                    throw UsageError("\(option.name) given twice")
                }
                values[option.name, default: []].append(v)
            } else {
                guard inline == nil else { throw UsageError("\(option.name) takes no value") }
                values[option.name] = [""]
            }
        }
        if values["--help"] == nil, !positionalRange.contains(positionals.count) {
            if positionals.count > positionalRange.upperBound {
                throw UsageError("unexpected argument \(positionals[positionalRange.upperBound])")
            }
            throw UsageError("missing \(self.positionals)")
        }
        return Arguments(values: values, positionals: positionals)
    }

    /// The known name within edit distance 2, for "did you mean".
    static func closest(_ word: String, _ candidates: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for (i, ca) in a.enumerated() {
                var prev = row[0]
                row[0] = i + 1
                for (j, cb) in b.enumerated() {
                    let cur = row[j + 1]
                    row[j + 1] = min(row[j] + 1, row[j + 1] + 1, prev + (ca == cb ? 0 : 1))
                    prev = cur
                }
            }
            return row[b.count]
        }
        let scored = candidates.map { ($0, distance(Array(word), Array($0))) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }
}

/// Parsed options with typed getters whose errors name the option and the bad value.
struct Arguments: Sendable {
    let values: [String: [String]]
    let positionals: [String]

    func flag(_ name: String) -> Bool { values[name] != nil }
    func string(_ name: String) -> String? { values[name]?.last }

    /// Every value of a repeatable option, with comma-separated lists split.
    func list(_ name: String) -> [String] {
        (values[name] ?? []).flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { !$0.isEmpty }
    }

    func int(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s), range.contains(v) else {
            throw UsageError("\(name): expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(s)\"")
        }
        return v
    }

    func double(_ name: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let s = string(name) else { return nil }
        guard let v = Double(s), v.isFinite, range.contains(v) else {
            throw UsageError("\(name): expected a number from \(fmt(range.lowerBound)) to \(fmt(range.upperBound)), got \"\(s)\"")
        }
        return v
    }

    /// `--since`/`--until`: a duration back from now, ISO-8601 or @EPOCH.
    func instant(_ name: String, now: Double) throws -> Double? {
        guard let s = string(name) else { return nil }
        guard let t = TimeSpec.instant(s, now: now) else {
            throw UsageError("\(name): expected a duration back from now (15m, 2h, 7d), an ISO-8601 time (2026-11-29T14:00:00Z) or @EPOCH, got \"\(s)\"")
        }
        return t
    }

    /// Seconds: `30`, `90s`, `15m`, `2h`.
    func seconds(_ name: String) throws -> Double? {
        guard let s = string(name) else { return nil }
        if let v = Double(s), v.isFinite, v >= 0 { return v }
        guard let d = TimeSpec.duration(s) else {
            throw UsageError("\(name): expected seconds or a duration (30, 90s, 15m, 2h), got \"\(s)\"")
        }
        return d
    }

    func choice(_ name: String, _ allowed: [String]) throws -> String? {
        guard let s = string(name) else { return nil }
        guard allowed.contains(s) else {
            throw UsageError("\(name): expected one of \(allowed.joined(separator: ", ")), got \"\(s)\"")
        }
        return s
    }
}

func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)" }
