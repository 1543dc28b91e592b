import Foundation
import Sockets
import VigilCore

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
    static let format = Option(name: "--format", short: "-f", value: "FMT", help: "table, jsonl or csv (default: table on a terminal, else jsonl)")
    static let since = Option(name: "--since", value: "WHEN", help: "from this time: 15m, 2h, 7d back from now, ISO-8601 (UTC unless an offset is given) or @EPOCH")
    static let until = Option(name: "--until", value: "WHEN", help: "before this time (same forms as --since)")
    static let pipeline = Option(name: "--pipeline", short: "-p", value: "NAME", help: "only these pipelines (repeat or comma-separate; * and ? glob)", repeatable: true)
    static let device = Option(name: "--device", short: "-d", value: "NAME", help: "only these devices (repeat or comma-separate; * and ? glob)", repeatable: true)
    static let label = Option(name: "--label", short: "-l", value: "NAME", help: "only these labels (repeat or comma-separate; * and ? glob)", repeatable: true)
    static let minScore = Option(name: "--min-score", value: "X", help: "only rows scoring at least X (0 to 1)")
    static let filters = [since, until, pipeline, device, label, minScore]

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
        guard let data = FileManager.default.contents(atPath: file) else {
            if explicit != nil {
                throw Failure("cannot read config \(file): " + (FileManager.default.fileExists(atPath: file) ? "permission denied" : "no such file"))
            }
            return nil
        }
        do {
            var parser = JSONParser(relaxed: true)
            return (file, try parser.parse(Array(data)))
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
        guard let s = try a.choice("--format", OutputFormat.allCases.map(\.rawValue)) else { return d }
        return OutputFormat(rawValue: s)!
    }

    static func filter(_ a: Arguments, now: Double = Date().timeIntervalSince1970, defaultSince: Double? = nil) throws -> RowFilter {
        var f = RowFilter()
        f.since = try a.instant("--since", now: now) ?? defaultSince.map { now - $0 }
        f.until = try a.instant("--until", now: now)
        if let s = f.since, let u = f.until, u <= s {
            throw UsageError("--until (\(TimeSpec.format(u))) must be after --since (\(TimeSpec.format(s)))")
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
