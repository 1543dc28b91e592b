import Foundation

/// The one command-line parser of vigild and vigilctl (issue 20: each had its own).
/// A `Command` lists its options; `parse` turns argv into `Arguments`, whose typed getters
/// throw a `UsageError` that names the option and the bad value. Help text is wrapped to
/// 80 columns (issue 19: `--help` fits a default terminal).

/// A bad command line: printed with the command's usage, exit status 2.
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One option a command accepts. `value` is the placeholder shown in help; nil for a flag.
public struct Option: Sendable {
    public let name: String
    public var short: String?
    public var value: String?
    public let help: String
    public var repeatable: Bool

    public init(name: String, short: String? = nil, value: String? = nil, help: String, repeatable: Bool = false) {
        self.name = name; self.short = short; self.value = value; self.help = help; self.repeatable = repeatable
    }
}

/// A command (a vigilctl subcommand, or vigild itself): its options, help and body, which
/// returns the exit status.
public struct Command: Sendable {
    /// The program as typed (`vigilctl`, `vigild`).
    public let program: String
    /// The subcommand; empty for a program without subcommands.
    public let name: String
    public let summary: String
    /// Positional arguments as shown in usage, e.g. "[FILE]".
    public var positionals: String
    public var positionalRange: ClosedRange<Int>
    public let options: [Option]
    public var details: String
    public let run: @Sendable (Arguments) throws -> Int32

    /// Help lines are wrapped to this many columns.
    public static let helpWidth = 80

    public init(program: String = "vigilctl", name: String, summary: String, positionals: String = "", positionalRange: ClosedRange<Int> = 0...0,
                options: [Option], details: String = "", run: @escaping @Sendable (Arguments) throws -> Int32) {
        self.program = program; self.name = name; self.summary = summary; self.positionals = positionals
        self.positionalRange = positionalRange; self.options = options; self.details = details; self.run = run
    }

    /// `vigilctl NAME` or `vigild`: how errors and usage name the command.
    public var invocation: String { name.isEmpty ? program : "\(program) \(name)" }

    public var usage: String {
        var s = "usage: \(invocation)\(options.isEmpty ? "" : " [options]")\(positionals.isEmpty ? "" : " " + positionals)\n\n"
        s += Command.wrap(summary, width: Command.helpWidth, indent: 0) + "\n"
        if !options.isEmpty {
            s += "\noptions:\n"
            let all = options + [Option(name: "--help", short: "-h", help: "show this help")]
            let labels = all.map { o -> String in
                var l = (o.short.map { "\($0), " } ?? "    ") + o.name
                if let v = o.value { l += " " + v }
                return l
            }
            // Help starts in one column for all; a label longer than that gets a line of its own.
            let w = min(24, labels.map(\.count).max() ?? 0)
            let helpColumn = 2 + w + 2
            for (o, l) in zip(all, labels) {
                let help = Command.wrap(o.help, width: Command.helpWidth, indent: helpColumn)
                let body = help.dropFirst(helpColumn)
                if l.count <= w {
                    s += "  " + l + String(repeating: " ", count: w - l.count + 2) + body + "\n"
                } else {
                    s += "  " + l + "\n" + help + "\n"
                }
            }
        }
        if !details.isEmpty { s += "\n" + Command.reflow(details, width: Command.helpWidth) + "\n" }
        return s
    }

    /// Help text written as source paragraphs (often wider than a terminal) laid out in `width`
    /// columns: consecutive unindented lines are one paragraph, wrapped as a whole; a line
    /// ending in ":" ends its paragraph, and a one-word one ("examples:") stands alone; blank
    /// lines stay; indented lines (examples) keep their spacing, and only a too-wide one is
    /// wrapped, its rest 4 columns deeper.
    static func reflow(_ text: String, width: Int) -> String {
        var out: [String] = []
        var paragraph: [Substring] = []
        func flush() {
            if !paragraph.isEmpty { out.append(wrap(paragraph.joined(separator: " "), width: width, indent: 0)) }
            paragraph = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let indent = line.prefix { $0 == " " }.count
            if line.isEmpty || indent > 0 {
                flush()
                // A too-wide example goes on with a deeper indent, so it does not read as two.
                out.append(line.count > width ? String(wrap(String(line.dropFirst(indent)), width: width, indent: indent + 4).dropFirst(4))
                                              : String(line))
                continue
            }
            if line.hasSuffix(":") && !line.contains(" ") {   // a heading ("examples:") stands alone
                flush()
                out.append(String(line))
                continue
            }
            paragraph.append(line)
            if line.hasSuffix(":") { flush() }
        }
        flush()
        return out.joined(separator: "\n")
    }

    /// `text` broken at spaces into lines of at most `width` columns, each indented by `indent`
    /// (a single word longer than the line stays whole).
    public static func wrap(_ text: String, width: Int, indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, indent + line.count + 1 + word.count > width {
                lines.append(pad + line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        lines.append(pad + line)
        return lines.joined(separator: "\n")
    }

    /// Splits `args` into options and positionals; `--name=value` and `--name value` both work.
    public func parse(_ args: [String]) throws -> Arguments {
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
            if let placeholder = option.value {
                let v: String
                if let inline { v = inline } else {
                    // The next word is the value even when it starts with "-": `--since -1h`.
                    guard i < args.count else { throw UsageError("\(option.name) needs a value (\(placeholder))") }
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
    public static func closest(_ word: String, _ candidates: [String]) -> String? {
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
public struct Arguments: Sendable {
    public let values: [String: [String]]
    public let positionals: [String]

    public init(values: [String: [String]], positionals: [String]) { self.values = values; self.positionals = positionals }

    public func flag(_ name: String) -> Bool { values[name] != nil }
    public func string(_ name: String) -> String? { values[name]?.last }

    /// Every value of a repeatable option, with comma-separated lists split.
    public func list(_ name: String) -> [String] {
        (values[name] ?? []).flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { !$0.isEmpty }
    }

    public func int(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s), range.contains(v) else {
            throw UsageError("\(name): expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(s)\"")
        }
        return v
    }

    public func double(_ name: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let s = string(name) else { return nil }
        guard let v = Double(s), v.isFinite, range.contains(v) else {
            throw UsageError("\(name): expected a number from \(fmt(range.lowerBound)) to \(fmt(range.upperBound)), got \"\(s)\"")
        }
        return v
    }

    public func choice(_ name: String, _ allowed: [String]) throws -> String? {
        guard let s = string(name) else { return nil }
        guard allowed.contains(s) else {
            throw UsageError("\(name): expected one of \(allowed.joined(separator: ", ")), got \"\(s)\"")
        }
        return s
    }
}

/// `3` for 3.0, `0.5` for 0.5: numbers in messages as people write them.
public func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)" }
