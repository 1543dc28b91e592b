import Foundation

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
            // One write(2) per line: lines from several threads never interleave.
            bytes.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
        }
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, Int(tv.tv_usec / 1000))
    }
}

public let log = Logger.shared
