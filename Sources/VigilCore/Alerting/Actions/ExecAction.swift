import Foundation
import Sockets

/// Runs a program with templated arguments: no shell, no PATH lookup (argv[0] is absolute).
///
/// - Each templated value stays inside its one argument, and one that would start an
///   argument with '-' is refused (`AlertTemplate.argument`).
/// - The environment is PATH plus `VIGIL_*` (node, pipeline, device, label, score, state,
///   severity, uuid, ts, and the alert as JSON): nothing else of the daemon's leaks.
/// - At `timeout_s` the process group gets SIGTERM, one second later SIGKILL (Foundation
///   starts each child as its own process-group leader, so helpers it forked go too).
/// - At most `max_concurrent` runs at once; a run over that is `skipped`, never queued.
/// - Output (stdout and stderr) goes to the log, line by line, at most `maxLogLines` a run.
public final class ExecAction: AlertAction, @unchecked Sendable {
    // @unchecked Sendable: `running` is guarded by `lock`; the rest is immutable.
    public let name: String
    public var type: String { "exec" }
    let argv: [String]
    let timeoutSeconds: Double
    let maxConcurrent: Int
    let onClear: Bool
    let killGrace = 1.0
    let maxLogLines = 20
    private let lock = NSLock()
    private var running = 0

    public init(name: String, argv: [String], timeoutSeconds: Double, maxConcurrent: Int, onClear: Bool) {
        self.name = name; self.argv = argv; self.timeoutSeconds = timeoutSeconds
        self.maxConcurrent = maxConcurrent; self.onClear = onClear
    }

    public var runsOnClear: Bool { onClear }
    public var bound: Double { timeoutSeconds + killGrace + 1 }

    public var runningCount: Int { lock.withLock { running } }

    static func environment(_ values: [String: String]) -> [String: String] {
        var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        for (k, v) in values where !v.utf8.contains(0) { env["VIGIL_" + k.uppercased()] = v }
        return env
    }

    public func run(_ alert: AlertEvent, done: @escaping @Sendable (ActionOutcome) -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        let base = ActionOutcome(action: name, type: type, status: .ok)
        @Sendable func finish(_ status: ActionOutcome.Status, _ detail: String?) {
            var o = base
            o.status = status
            o.detail = detail
            o.durationMs = elapsedMs(since: start)
            done(o)
        }
        let values = AlertTemplate.values(alert)
        let args: [String]
        do {
            args = try argv.dropFirst().map { try AlertTemplate.argument($0, values) }
        } catch {
            log.limited(.warning, key: "exec-refused-\(name)", "action \(name): refused to run \(argv[0]): \(error)")
            return finish(.error, "refused: \(error)")
        }
        let admitted = lock.withLock { () -> Bool in
            guard running < maxConcurrent else { return false }
            running += 1
            return true
        }
        guard admitted else {
            log.limited(.warning, key: "exec-skipped-\(name)", "action \(name): \(maxConcurrent) runs already going (max_concurrent); this run skipped")
            return finish(.skipped, "\(maxConcurrent) runs already going (max_concurrent)")
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = args
        process.environment = ExecAction.environment(values)
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let run = ExecRun()
        process.terminationHandler = { [self] p in
            let timedOut = run.finish()
            lock.withLock { running -= 1 }
            if timedOut {
                finish(.timeout, "killed after \(timeoutSeconds) s (timeout_s)")
            } else if p.terminationReason == .uncaughtSignal {
                finish(.error, "killed by signal \(p.terminationStatus)")
            } else if p.terminationStatus != 0 {
                finish(.error, "exit status \(p.terminationStatus)")
            } else {
                finish(.ok, nil)
            }
        }
        do {
            try process.run()
        } catch {
            lock.withLock { running -= 1 }
            log.limited(.error, key: "exec-start-\(name)", "action \(name): cannot start \(argv[0]): \(error)")
            return finish(.error, "cannot start \(argv[0]): \(error)")
        }
        try? pipe.fileHandleForWriting.close()
        let pid = process.processIdentifier
        let (name, limit) = (self.name, maxLogLines)
        // The output reader: one thread per run, bounded by max_concurrent.
        DispatchQueue.global().async {
            var lines = 0
            var partial = Data()
            let reader = pipe.fileHandleForReading
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                partial.append(chunk)
                while let nl = partial.firstIndex(of: 0x0A) {
                    let line = String(decoding: partial[partial.startIndex..<nl], as: UTF8.self)
                    partial = Data(partial[partial.index(after: nl)...])
                    lines += 1
                    if lines <= limit { log.info("action \(name) [\(pid)]: \(line)") }
                }
                // A program that never writes a newline cannot make the buffer grow without end.
                if partial.count > 4096 { partial.removeAll(); lines += 1 }
            }
            if !partial.isEmpty, lines < limit { log.info("action \(name) [\(pid)]: \(String(decoding: partial, as: UTF8.self))") }
            if lines > limit { log.info("action \(name) [\(pid)]: \(lines - limit) more output lines not logged") }
            try? reader.close()
        }
        let (timeout, grace, program) = (timeoutSeconds, killGrace, argv[0])
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
            guard run.markTimedOut() else { return }
            log.warning("action \(name): \(program) still running after \(timeout) s (timeout_s): killing process group \(pid)")
            Signals.sendToGroup(pid, SIGTERM)
            // Whatever of the group ignored SIGTERM (the program, or helpers it forked) goes now.
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) { Signals.sendToGroup(pid, SIGKILL) }
        }
    }
}

/// One run's state shared by its termination handler and its timer. It holds no
/// reference to the Process, so the handler does not keep the Process alive in a cycle.
final class ExecRun: @unchecked Sendable {
    // @unchecked Sendable: the flags are guarded by `lock`.
    private let lock = NSLock()
    private var exited = false
    private var timedOut = false

    /// Marks the exit; returns whether the timer had fired.
    func finish() -> Bool { lock.withLock { exited = true; return timedOut } }

    /// Returns false when the process had already exited (nothing to kill).
    func markTimedOut() -> Bool { lock.withLock { if exited { return false }; timedOut = true; return true } }
}
