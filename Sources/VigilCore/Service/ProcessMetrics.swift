import Foundation
import Sockets

/// The standard `process_*` metrics of Prometheus' client libraries, read from /proc at each
/// scrape (Foundation reads the files; the clock tick comes from the Sockets module).
enum ProcessMetrics {
    static let cpuSeconds = "process_cpu_seconds_total"
    static let residentBytes = "process_resident_memory_bytes"
    static let virtualBytes = "process_virtual_memory_bytes"
    static let openFDs = "process_open_fds"
    static let maxFDs = "process_max_fds"
    static let startTime = "process_start_time_seconds"

    static func describe(_ m: MetricsRegistry) {
        m.describe(cpuSeconds, .counter, "Total user and system CPU time spent in seconds.")
        m.describe(residentBytes, .gauge, "Resident memory size in bytes.")
        m.describe(virtualBytes, .gauge, "Virtual memory size in bytes.")
        m.describe(openFDs, .gauge, "Number of open file descriptors.")
        m.describe(maxFDs, .gauge, "Maximum number of open file descriptors.")
        m.describe(startTime, .gauge, "Start time of the process since unix epoch in seconds.")
    }

    /// Sets each metric /proc answers for; one that cannot be read is left out (not 0).
    static func update(_ m: MetricsRegistry, proc: String = "/proc") {
        let tick = ProcessClock.ticksPerSecond
        if let stat = read(proc + "/self/stat"), let fields = statFields(stat), fields.count > 21 {
            // After "pid (comm)": field 3 is [0]; utime 14, stime 15, starttime 22, vsize 23, rss 24 (pages).
            if let u = Double(fields[11]), let s = Double(fields[12]) { m.set(cpuSeconds, [], (u + s) / tick) }
            if let start = Double(fields[19]), let boot = bootTime(proc) { m.set(startTime, [], boot + start / tick) }
            if let v = Double(fields[20]) { m.set(virtualBytes, [], v) }
        }
        if let status = read(proc + "/self/status"), let kb = statusValue(status, "VmRSS:") { m.set(residentBytes, [], kb * 1024) }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: proc + "/self/fd") { m.set(openFDs, [], Double(fds.count)) }
        if let limits = read(proc + "/self/limits"),
           let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }),
           let soft = line.dropFirst("Max open files".count).split(separator: " ").first.flatMap({ Double($0) }) {
            m.set(maxFDs, [], soft)
        }
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// The fields after `(comm)`: the command name may hold spaces and parentheses, so split after the last ')'.
    static func statFields(_ stat: String) -> [Substring]? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
    }

    static func statusValue(_ status: String, _ key: String) -> Double? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        // "VmRSS:\t   5120 kB": a tab, then spaces.
        return line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Double($0) }
    }

    /// When the machine booted (Unix time): `btime` in /proc/stat.
    static func bootTime(_ proc: String) -> Double? {
        read(proc + "/stat").flatMap { statusValue($0, "btime") }
    }
}
