import Foundation
import Sockets

/// systemd's notify protocol (sd_notify(3)) without libsystemd: newline-separated
/// `KEY=value` assignments in one datagram to the Unix socket named by `NOTIFY_SOCKET`
/// (a path, or an abstract name starting with '@'). Outside systemd every call is a no-op.
public final class SdNotify: Sendable {
    /// The socket, or nil when not run by systemd with `Type=notify`.
    public let socketPath: String?
    /// How often systemd expects `WATCHDOG=1` (from `WATCHDOG_USEC`), when the watchdog is on for this process.
    public let watchdogInterval: Double?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                pid: Int32 = ProcessInfo.processInfo.processIdentifier) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        // WATCHDOG_PID, when set, names the process the watchdog is meant for (sd_watchdog_enabled(3)).
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0,
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == pid }) ?? true {
            watchdogInterval = Double(usec) / 1_000_000
        } else {
            watchdogInterval = nil
        }
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Sends the assignments in one datagram. Errors are logged (rate-limited), never thrown:
    /// a missing notify socket must not stop the daemon.
    @discardableResult
    public func send(_ assignments: [String]) -> Bool {
        guard let socketPath else { return false }
        do {
            try UnixDatagram.send(assignments.joined(separator: "\n") + "\n", to: socketPath)
            return true
        } catch {
            log.limited(.warning, key: "sd-notify", "sd_notify \(assignments.first ?? ""): \(error)")
            return false
        }
    }

    public func ready(status: String? = nil) {
        send(["READY=1"] + (status.map { ["STATUS=\(SdNotify.oneLine($0))"] } ?? []) + ["MAINPID=\(ProcessInfo.processInfo.processIdentifier)"])
    }

    public func status(_ text: String) { send(["STATUS=\(SdNotify.oneLine(text))"]) }
    public func watchdog() { send(["WATCHDOG=1"]) }

    /// Reload started; systemd ≥ 253 (`Type=notify-reload`) also wants the monotonic time.
    public func reloading() {
        send(["RELOADING=1", "MONOTONIC_USEC=\(SdNotify.monotonicMicroseconds())", "STATUS=reloading configuration"])
    }

    public func stopping(status: String = "stopping: draining frames and flushing the store") {
        send(["STOPPING=1", "STATUS=\(SdNotify.oneLine(status))"])
    }

    static func oneLine(_ s: String) -> String { s.replacingOccurrences(of: "\n", with: " ") }

    static func monotonicMicroseconds() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds / 1000
    }
}
