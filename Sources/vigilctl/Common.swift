import Foundation
import Sockets
import VigilCore
import VigilTools

/// Buffered standard output: one write(2) per 64 KiB rather than per row, flushed on demand
/// (tail flushes after each poll so a pipe sees rows as they come).
final class Output {
    nonisolated(unsafe) static let shared = Output()   // vigilctl writes from its main thread only
    private var buffer: [UInt8] = []

    func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 65536 { flush() }
    }

    func flush() {
        // EPIPE and friends: the reader went away; nothing useful left to do.
        try? FileDescriptor.writeAll(FileDescriptor.standardOutput, buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

func out(_ s: String) { Output.shared.write(s) }

func warn(_ s: String) {
    Output.shared.flush()
    FileHandle.standardError.write(Data("vigilctl: \(s)\n".utf8))
}

/// Options shared by the commands that read the log.
enum Shared {
    static let defaultDatabase = "/var/lib/vigil/vigil.db"
    static let db = Option(name: "--db", value: "PATH", help: "the SQLite log (default: storage.path of --config, else /var/lib/vigil/vigil.db)")
    static let config = Option(name: "--config", short: "-c", value: "FILE", help: "vigild's config, for storage.path (default \(Config.defaultPath))")
    // -o is the output as in journalctl (-o json); -f means --follow wherever it exists (tail).
    static let format = Option(name: "--format", short: "-o", value: "FMT", help: "table, jsonl (or json) or csv (default: table on a terminal, else jsonl)")
    static let since = Option(name: "--since", value: "WHEN", help: "from this time: 15m or -15m, 2h, 7d back from now, today, yesterday, 2026-11-29 14:00 (local time; UTC with --utc), RFC 3339 (2026-11-29T14:00:00Z) or @EPOCH")
    static let until = Option(name: "--until", value: "WHEN", help: "before this time (same forms as --since)")
    static let utc = Option(name: "--utc", help: "show and read times in UTC (default: local time in tables)")
    static let wide = Option(name: "--wide", short: "-w", help: "every column, uncut (default: the main columns, cut to the terminal's width)")
    static let pipeline = Option(name: "--pipeline", short: "-p", value: "NAME", help: "only these pipelines (repeat or comma-separate; * and ? glob)", repeatable: true)
    static let device = Option(name: "--device", short: "-d", value: "NAME", help: "only these devices (repeat or comma-separate; * and ? glob)", repeatable: true)
    static let label = Option(name: "--label", short: "-l", value: "NAME", help: "only these labels (repeat or comma-separate; * and ? glob)", repeatable: true)
    static let minScore = Option(name: "--min-score", value: "X", help: "only rows scoring at least X (0 to 1)")
    static let filters = [since, until, pipeline, device, label, minScore]
    /// How tables look: `--utc`, `--wide`, and the width to fit.
    static let tableOptions = [utc, wide]

    /// A file the user named (a clip, a config), or a Failure saying why it cannot be read.
    static func readFile(_ file: String, what: String = "") throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory)
        guard exists, !isDirectory.boolValue, let data = FileManager.default.contents(atPath: file) else {
            throw Failure("cannot read \(what)\(file): " + (!exists ? "no such file" : isDirectory.boolValue ? "is a directory" : "permission denied"))
        }
        return Array(data)
    }

    /// `--db`, else `storage.path` of the config (read without validating the rest, so a
    /// config holding secrets this user cannot read still names the database), else the default.
    static func databasePath(_ a: Arguments) throws -> String {
        if let db = a.string("--db") { return db }
        guard let (file, root) = try rawConfig(a), let p = root["storage"]?["path"]?.string else { return defaultDatabase }
        if p.hasPrefix("/") { return p }
        return URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(p).standardizedFileURL.path
    }

    /// The config as plain JSON (not validated), or nil when the default config is absent.
    static func rawConfig(_ a: Arguments) throws -> (file: String, root: JSONValue)? {
        let explicit = a.string("--config")
        let file = explicit ?? Config.defaultPath
        let data: [UInt8]
        if explicit != nil {
            data = try readFile(file, what: "config ")
        } else {
            guard let d = FileManager.default.contents(atPath: file) else { return nil }
            data = Array(d)
        }
        do {
            var parser = JSONParser(relaxed: true)
            return (file, try parser.parse(data))
        } catch {
            throw Failure("config \(file): \(error)")
        }
    }

    static func openLog(_ a: Arguments) throws -> LogReader {
        let path = try databasePath(a)
        do {
            return try LogReader(path: path)
        } catch let e as QueryError {
            throw Failure(e.message, status: ExitCode.database)
        }
    }

    static func format(_ a: Arguments, default d: OutputFormat = .automatic()) throws -> OutputFormat {
        if a.string("--format") == "json" { return .jsonl }   // journalctl's -o json
        guard let s = try a.choice("--format", OutputFormat.allCases.map(\.rawValue)) else { return d }
        return OutputFormat(rawValue: s)!
    }

    /// Tables show local time, as journalctl does, also when piped (`| less`, `| grep` see what
    /// the terminal sees); JSON lines and CSV always carry epoch seconds and UTC.
    static func zone(_ a: Arguments) -> TimeSpec.Zone { a.flag("--utc") ? .utc : .local }

    static func style(_ a: Arguments) -> TableStyle {
        TableStyle(zone: zone(a), wide: a.flag("--wide"), width: ProcessInfo.processInfo.environment["COLUMNS"] == nil
                   ? terminalColumns() ?? TableStyle.terminalWidth() : TableStyle.terminalWidth())
    }

    /// The width of the terminal on stdout (bash does not export COLUMNS); nil when not a terminal.
    static func terminalColumns() -> Int? {
        var size = winsize()
        guard isatty(1) == 1, ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 40 else { return nil }
        return Int(size.ws_col)
    }

    static func filter(_ a: Arguments, now: Double = Date().timeIntervalSince1970, defaultSince: Double? = nil) throws -> RowFilter {
        var f = RowFilter()
        f.since = try a.instant("--since", now: now, zone: zone(a)) ?? defaultSince.map { now - $0 }
        f.until = try a.instant("--until", now: now, zone: zone(a))
        if let s = f.since, let u = f.until, u <= s {
            throw UsageError("--until (\(TimeSpec.short(u, zone: zone(a)))) must be after --since (\(TimeSpec.short(s, zone: zone(a))))")
        }
        f.pipelines = a.list("--pipeline")
        f.devices = a.list("--device")
        f.labels = a.list("--label")
        f.minScore = try a.double("--min-score", in: 0...1)
        return f
    }
}

/// SIGINT/SIGTERM stop a long-running command cleanly: the handler only sets a flag, on a
/// queue other than the main thread (which is busy in the command's loop).
func stopOnSignals() -> StopFlag {
    let flag = StopFlag()
    for sig in [SIGINT, SIGTERM] {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { flag.set() }
        source.resume()
        SignalSources.keep(source)
    }
    return flag
}

/// Keeps signal sources alive for the process's life.
enum SignalSources {
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []   // appended on the main thread only
    static func keep(_ s: any DispatchSourceSignal) { sources.append(s) }
}
