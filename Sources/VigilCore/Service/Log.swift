import Foundation
import Sockets

/// Writes log lines to stderr. Under journald (`JOURNAL_STREAM` set) each line starts with
/// the syslog priority `<N>` so journalctl shows levels; elsewhere with a timestamp and level.
/// Repeated messages under one key are rate-limited: the first few pass, the rest are
/// counted and summarised once the interval ends, so a flood of bad payloads cannot fill a disk.
public final class Logger: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is guarded by `lock`.
    public static let shared = Logger()

    private let lock = NSLock()
    private var level: LogLevel = .info
    private let journald: Bool
    private var limits: [String: (windowStart: Double, passed: Int, suppressed: Int)] = [:]
    /// Per key: this many lines per window, then silence with a count.
    public var burst = 5
    public var window = 10.0

    /// Where finished lines go; nil writes them to stderr (tests pass a collector).
    private let sink: (@Sendable (String) -> Void)?

    public init(journald: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil,
                sink: (@Sendable (String) -> Void)? = nil) {
        self.journald = journald
        self.sink = sink
    }

    public func setLevel(_ l: LogLevel) { lock.withLock { level = l } }

    public func enabled(_ l: LogLevel) -> Bool { lock.withLock { l <= level } }

    public func log(_ l: LogLevel, _ message: @autoclosure () -> String) {
        guard enabled(l) else { return }
        write(l, message())
    }

    public func error(_ m: @autoclosure () -> String) { log(.error, m()) }
    public func warning(_ m: @autoclosure () -> String) { log(.warning, m()) }
    public func notice(_ m: @autoclosure () -> String) { log(.notice, m()) }
    public func info(_ m: @autoclosure () -> String) { log(.info, m()) }
    public func debug(_ m: @autoclosure () -> String) { log(.debug, m()) }

    /// Logs at most `burst` lines per `window` seconds for `key`; the rest are counted and
    /// reported in one line when the next message for that key passes.
    public func limited(_ l: LogLevel, key: String, _ message: @autoclosure () -> String) {
        guard enabled(l) else { return }
        let now = Date().timeIntervalSince1970
        let (pass, suppressedBefore): (Bool, Int) = lock.withLock {
            var e = limits[key] ?? (now, 0, 0)
            var reported = 0
            if now - e.windowStart >= window {
                reported = e.suppressed
                e = (now, 0, 0)
            }
            let pass = e.passed < burst
            if pass { e.passed += 1 } else { e.suppressed += 1 }
            limits[key] = e
            return (pass, reported)
        }
        if suppressedBefore > 0 {
            write(l, "\(suppressedBefore) similar messages suppressed (\(key))")
        }
        if pass { write(l, message()) }
    }

    /// Reports the count of every key whose window has ended with messages suppressed, so a
    /// flood that stops is still accounted for (the watchdog's tick calls this every second).
    public func flushSuppressed(now: Double = Date().timeIntervalSince1970) {
        let due: [(String, Int)] = lock.withLock {
            var out: [(String, Int)] = []
            for (key, e) in limits where e.suppressed > 0 && now - e.windowStart >= window {
                out.append((key, e.suppressed))
                limits[key] = (now, 0, 0)
            }
            return out
        }
        for (key, n) in due.sorted(by: { $0.0 < $1.0 }) {
            write(.warning, "\(n) similar messages suppressed (\(key))")
        }
    }

    /// Longest message written, in bytes; past it the line is cut and says how long it was.
    /// A device name or topic level may be 64 KB (MQTT allows it), and one line per such
    /// message would fill a journal fast.
    public static let maxMessageBytes = 1024

    /// A name for a log line: a device or topic longer than `max` characters is cut, with
    /// its length, so the line stays readable and short.
    public static func clip(_ name: String, _ max: Int = 120) -> String {
        guard name.utf8.count > max else { return name }
        return "\(name.prefix(max))...(\(name.utf8.count) bytes)"
    }

    private func write(_ l: LogLevel, _ whole: String) {
        let message = whole.utf8.count <= Logger.maxMessageBytes ? whole
            : String(decoding: whole.utf8.prefix(Logger.maxMessageBytes), as: UTF8.self) + "...(line of \(whole.utf8.count) bytes cut)"
        let line: String
        if journald {
            line = "<\(l.rawValue)>\(message)\n"
        } else {
            line = "\(Logger.timestamp()) \(l.name.uppercased()) \(message)\n"
        }
        if let sink {
            lock.withLock { sink(line) }
            return
        }
        let bytes = Array(line.utf8)
        lock.withLock {
            // Under the lock, so lines from several threads never interleave; a short write (a
            // full pipe to journald) is finished, not cut. A failing stderr has nowhere to be told.
            try? FileDescriptor.writeAll(FileDescriptor.standardError, bytes)
        }
    }

    static func timestamp() -> String { UTCTimestamp.string(Date().timeIntervalSince1970) }
}

/// `2026-12-02T14:52:04.123Z` for epoch seconds, worked out by hand (days to a civil date by
/// Howard Hinnant's `civil_from_days`): no formatter object to share between threads, no libc.
public enum UTCTimestamp {
    public static func string(_ seconds: Double) -> String {
        let ms = Int64((seconds * 1000).rounded(.down))
        let msOfDay = ((ms % 86_400_000) + 86_400_000) % 86_400_000
        let c = civil(days: (ms - msOfDay) / 86_400_000)
        let s = msOfDay / 1000
        return String(format: "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ",
                      c.year, c.month, c.day, s / 3600, s / 60 % 60, s % 60, msOfDay % 1000)
    }

    /// Year, month (1-12) and day (1-31) of a day counted from 1970-01-01.
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097                                          // [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365    // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)                    // [0, 365]
        let mp = (5 * doy + 2) / 153                                         // [0, 11], from March
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

public let log = Logger.shared
