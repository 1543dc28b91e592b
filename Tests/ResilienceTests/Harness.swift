import Foundation
import SQLite
import TestSupport
import XCTest

/// What every resilience scenario shares: a temp dir, vigild started on a config, a reader
/// on its SQLite file, paced publishing, and `[resilience]` report lines.
class ResilienceCase: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-res") }
    override func tearDown() {
        // VIGIL_RES_KEEP=1 keeps each scenario's directory (vigild's log, the database) to look at.
        if ProcessInfo.processInfo.environment["VIGIL_RES_KEEP"] == "1" { report("kept \(dir.path)") } else { dir.remove() }
    }

    var dbPath: String { dir.file("vigil.db") }

    /// One line of figures in the test output (`make resilience | grep resilience`).
    func report(_ line: String) {
        print("[resilience] \(line)")
        fflush(nil)   // all streams: XCTest buffers when piped
    }

    func startDaemon(_ configPath: String, log: String = "vigild.log") throws -> ChildProcess {
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", configPath], outputPath: dir.file(log))
        XCTAssertTrue(waitUntil(timeout: 15) { d.output.contains("ready") || !d.isRunning }, d.output)
        XCTAssertTrue(d.waitSubscribed(), d.output)
        return d
    }

    /// A read-only query on the daemon's file; nothing (not a failure) while the file is not there yet.
    func query(_ sql: String, db path: String? = nil) -> [[SQLValue]] {
        let p = path ?? dbPath
        guard FileManager.default.fileExists(atPath: p), let db = try? Database(path: p, mode: .readOnly) else { return [] }
        return (try? db.query(sql)) ?? []
    }

    func int(_ sql: String, db path: String? = nil) -> Int {
        guard let v = query(sql, db: path).first?.first else { return 0 }
        if let i = v.int { return Int(i) }
        if let s = v.string { return Int(s) ?? 0 }
        return 0
    }

    func rowCount(db path: String? = nil) -> Int { int("SELECT count(*) FROM detections", db: path) }

    /// Waits until every frame in `frames` (device names) has a detection; returns the devices
    /// that have rows, and asserts with the missing ones named when some never arrive.
    @discardableResult
    /// Waits until every frame in `frames` has a row. Gives up after `timeout` seconds in which
    /// no new frame got its row (a lost frame never arrives, so the wait ends as a stall), or
    /// after four times `timeout` in all: a loaded machine that is still catching up (measured:
    /// 3,000 rows behind after 90 s at load 15 on 2 cores) is not a loss.
    func waitForRows(of frames: Set<String>, timeout: Double, _ context: @autoclosure () -> String = "",
                     file: StaticString = #filePath, line: UInt = #line) -> Set<String> {
        var devices = Set<String>()
        var found = -1
        var lastProgress = Date()
        let all = waitUntil(timeout: 4 * timeout, interval: 0.1) {
            devices = Set(self.query("SELECT DISTINCT device FROM detections").compactMap { $0.first?.string })
            let now = devices.intersection(frames).count
            if now > found { found = now; lastProgress = Date() }
            return frames.isSubset(of: devices) || Date().timeIntervalSince(lastProgress) > timeout
        }
        let missing = frames.subtracting(devices)
        XCTAssertTrue(all && missing.isEmpty,
                      "\(missing.count) acknowledged frames have no row, e.g. \(missing.sorted().prefix(10))\n\(context())",
                      file: file, line: line)
        return devices
    }

    func integrity(db path: String? = nil) -> String { query("PRAGMA integrity_check", db: path).first?.first?.string ?? "(no answer)" }

    /// Calls `body(i)` for i in 0..<count at `rate` per second (on average; it catches up after a stall).
    static func paced(rate: Double, count: Int, stop: StopFlag? = nil, _ body: (Int) -> Void) {
        let start = Date()
        for i in 0..<count {
            if stop?.isSet == true { return }
            let due = start.addingTimeInterval(Double(i) / rate)
            let wait = due.timeIntervalSinceNow
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }   // the point: the offered rate
            body(i)
        }
    }

    /// The figures of vigild's last line at SIGTERM: `stopped: frames N, detections M, rejected R, dropped D, ...`.
    func stoppedLine(_ output: String) -> [String: Int]? {
        guard let line = output.split(separator: "\n").last(where: { $0.contains("stopped: frames") }) else { return nil }
        var out: [String: Int] = [:]
        let tail = line[line.range(of: "stopped: ")!.upperBound...]
        for part in tail.split(separator: ",") {
            let words = part.split(separator: " ")
            guard let last = words.last, let n = Int(last) else { continue }
            out[words.dropLast().joined(separator: " ")] = n
        }
        return out
    }
}

/// A flag one thread sets and another polls.
final class StopFlag: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// Runs a closure on its own thread; `join()` waits for it.
final class Worker: @unchecked Sendable {
    // @unchecked Sendable: `done` is a semaphore; the closure runs once on the thread.
    private let done = DispatchSemaphore(value: 0)
    init(_ body: @escaping @Sendable () -> Void) {
        let done = self.done
        Thread { body(); done.signal() }.start()
    }
    @discardableResult
    func join(timeout: Double = 120) -> Bool { done.wait(timeout: .now() + timeout) == .success }
}

func median(_ xs: [Double]) -> Double { percentile(xs, 0.5) }
func percentile(_ xs: [Double], _ p: Double) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    return s[min(s.count - 1, Int(Double(s.count - 1) * p + 0.5))]
}
func fmt(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
