import Foundation
import TestSupport
@testable import VigilCore
import XCTest

/// Actions against real processes, a real HTTP server (Python's http.server in a child
/// process), a real broker and real files.
final class RulesActionsTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-actions") }
    override func tearDown() { dir.remove() }

    func event(device: String = "cam1", state: AlertEvent.State = .raised) -> AlertEvent {
        AlertEvent(ts: 1_700_000_000.5, node: "gw", pipeline: "camera", device: device, state: state, label: "motion",
                   score: 0.875, severity: "critical")
    }

    /// Runs an action and waits for its outcome.
    func outcome(_ a: any AlertAction, _ e: AlertEvent, timeout: Double = 20) throws -> ActionOutcome {
        let box = OutcomeBox()
        a.run(e) { box.set($0) }
        XCTAssertTrue(waitUntil(timeout: timeout) { box.value != nil }, "action \(a.name) did not finish")
        return try XCTUnwrap(box.value)
    }

    func script(_ name: String, _ body: String) -> String {
        let p = dir.write(name, "#!/bin/sh\n" + body + "\n")
        chmod(p, 0o755)
        return p
    }

    /// Alive and not a zombie (a container's init may not reap orphans).
    func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    func pid(_ file: String) -> Int32? {
        (try? String(contentsOfFile: dir.file(file), encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    // MARK: exec

    func testExecPassesArgvAndEnvironmentWithoutAShell() throws {
        let s = script("args.sh", #"for a in "$@"; do printf '%s\n' "$a"; done > "$OUT"; env | grep '^VIGIL_' | sort > "$OUT.env""#)
        // $OUT is not in the child's environment (only PATH and VIGIL_*), so pass the file by argument.
        let s2 = script("wrap.sh", #"OUT="$1"; shift; export OUT; exec "\#(s)" "$@""#)
        let a = ExecAction(name: "notify", argv: [s2, dir.file("out"), "{pipeline}", "{device}", "score={score}", "{label}"],
                           timeoutSeconds: 10, maxConcurrent: 2, onClear: false)
        let o = try outcome(a, event(device: "a b; touch \(dir.file("pwned")) $(id) `id` *"))
        XCTAssertEqual(o.status, .ok, o.detail ?? "")
        let args = try String(contentsOfFile: dir.file("out"), encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(args, ["camera", "a b; touch \(dir.file("pwned")) $(id) `id` *", "score=0.8750", "motion", ""],
                       "a device name with spaces and shell syntax stays one literal argument")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("pwned")))
        let env = try String(contentsOfFile: dir.file("out.env"), encoding: .utf8)
        XCTAssertTrue(env.contains("VIGIL_DEVICE=a b; touch"), env)
        XCTAssertTrue(env.contains("VIGIL_STATE=raised"), env)
        XCTAssertTrue(env.contains("VIGIL_SEVERITY=critical"), env)
        XCTAssertTrue(env.contains("VIGIL_ALERT={\"uuid\""), env)
    }

    func testADeviceNameCannotInjectAnOption() throws {
        let s = script("args.sh", #"printf '%s\n' "$@" > \#(dir.file("out"))"#)
        let a = ExecAction(name: "notify", argv: [s, "{device}", "{label}"], timeoutSeconds: 10, maxConcurrent: 2, onClear: false)
        for device in ["--output=/etc/passwd", "-rf"] {
            let o = try outcome(a, event(device: device))
            XCTAssertEqual(o.status, .error)
            XCTAssertTrue(o.detail?.contains("starts with '-'") ?? false, o.detail ?? "")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("out")), "the program never ran with an option from a topic")
        // Attached to a fixed option, the same value is plain data.
        let b = ExecAction(name: "notify2", argv: [s, "--device={device}"], timeoutSeconds: 10, maxConcurrent: 2, onClear: false)
        XCTAssertEqual(try outcome(b, event(device: "-rf")).status, .ok)
        XCTAssertEqual(try String(contentsOfFile: dir.file("out"), encoding: .utf8), "--device=-rf\n")
    }

    func testExecTimeoutKillsTheWholeProcessGroupEvenWhenItIgnoresSIGTERM() throws {
        let s = script("hang.sh", """
            trap '' TERM
            sleep 60 &
            echo $! > \(dir.file("child.pid"))
            echo $$ > \(dir.file("main.pid"))
            wait
            """)
        let a = ExecAction(name: "hang", argv: [s], timeoutSeconds: 0.5, maxConcurrent: 1, onClear: false)
        let o = try outcome(a, event())
        XCTAssertEqual(o.status, .timeout)
        XCTAssertTrue(o.detail?.contains("timeout_s") ?? false, o.detail ?? "")
        let main = try XCTUnwrap(pid("main.pid")), child = try XCTUnwrap(pid("child.pid"))
        XCTAssertTrue(waitUntil(timeout: 5) { !self.alive(main) && !self.alive(child) }, "the script and the sleep it forked are gone")
        XCTAssertEqual(a.runningCount, 0)
    }

    /// A script that runs until the test creates `gate` (no timing assumptions).
    func gated(_ name: String) -> String { script(name, "while [ ! -f \(dir.file("gate")) ]; do sleep 0.02; done") }
    func openGate() { _ = dir.write("gate", "") }

    func testExecOverMaxConcurrentIsSkippedNotQueued() throws {
        let a = ExecAction(name: "slow", argv: [gated("slow.sh")], timeoutSeconds: 30, maxConcurrent: 1, onClear: false)
        let boxes = (0..<3).map { _ in OutcomeBox() }
        for b in boxes { a.run(event()) { b.set($0) } }
        XCTAssertTrue(waitUntil(timeout: 20) { boxes.filter { $0.value != nil }.count == 2 })
        openGate()
        XCTAssertTrue(waitUntil(timeout: 20) { boxes.allSatisfy { $0.value != nil } })
        let statuses = boxes.map { $0.value!.status }
        XCTAssertEqual(statuses.filter { $0 == .ok }.count, 1, "\(statuses)")
        XCTAssertEqual(statuses.filter { $0 == .skipped }.count, 2, "\(statuses)")
    }

    func testExecFailuresAreNamed() throws {
        let fails = ExecAction(name: "f", argv: [script("fail.sh", "exit 3")], timeoutSeconds: 10, maxConcurrent: 1, onClear: false)
        XCTAssertEqual(try outcome(fails, event()).detail, "exit status 3")
        let missing = ExecAction(name: "m", argv: [dir.file("nope")], timeoutSeconds: 10, maxConcurrent: 1, onClear: false)
        let o = try outcome(missing, event())
        XCTAssertEqual(o.status, .error)
        XCTAssertTrue(o.detail?.contains(dir.file("nope")) ?? false, o.detail ?? "")
        XCTAssertEqual(missing.runningCount, 0)
    }

    // MARK: webhook

    func testWebhookThatFailsTwiceThenSucceeds() throws {
        let server = try WebhookReceiver(in: dir, fail: 2)
        defer { server.stop() }
        let a = WebhookAction(name: "hook", url: URL(string: "http://127.0.0.1:\(server.port)/alerts")!, timeoutSeconds: 5, retries: 3,
                              headers: ["X-Token": "t0k"], onClear: false, baseBackoff: 0.2)
        let e = event()
        let o = try outcome(a, e)
        XCTAssertEqual(o.status, .ok, o.detail ?? "")
        XCTAssertEqual(o.attempts, 3)
        let r = server.requests
        XCTAssertEqual(r.count, 3)
        XCTAssertEqual(r.last?["type"] as? String, "application/json")
        XCTAssertEqual(r.last?["token"] as? String, "t0k")
        let body = try JSONSerialization.jsonObject(with: Data((r.last?["body"] as! String).utf8)) as! [String: Any]
        XCTAssertEqual(body["uuid"] as? String, e.uuid)
        XCTAssertEqual(body["device"] as? String, "cam1")
        XCTAssertEqual(body["state"] as? String, "raised")
    }

    func testWebhookGivesUpAfterItsRetriesAndDoesNotRetryA404() throws {
        let server = try WebhookReceiver(in: dir, fail: 100)
        let a = WebhookAction(name: "hook", url: URL(string: "http://127.0.0.1:\(server.port)/")!, timeoutSeconds: 5, retries: 2,
                              headers: [:], onClear: false, baseBackoff: 0.1)
        let o = try outcome(a, event())
        XCTAssertEqual(o.status, .error)
        XCTAssertEqual(o.detail, "HTTP 500")
        XCTAssertEqual(o.attempts, 3)
        server.stop()

        let s404 = try WebhookReceiver(in: dir, status: 404)
        defer { s404.stop() }
        let b = WebhookAction(name: "hook", url: URL(string: "http://127.0.0.1:\(s404.port)/")!, timeoutSeconds: 5, retries: 2,
                              headers: [:], onClear: false, baseBackoff: 0.1)
        let o2 = try outcome(b, event())
        XCTAssertEqual(o2.detail, "HTTP 404")
        XCTAssertEqual(o2.attempts, 1)
    }

    func testWebhookTimesOut() throws {
        let server = try WebhookReceiver(in: dir, sleep: 5)
        defer { server.stop() }
        let a = WebhookAction(name: "hook", url: URL(string: "http://127.0.0.1:\(server.port)/")!, timeoutSeconds: 0.5, retries: 0,
                              headers: [:], onClear: false)
        let o = try outcome(a, event())
        XCTAssertEqual(o.status, .timeout, o.detail ?? "")
        XCTAssertEqual(o.attempts, 1)
        XCTAssertGreaterThanOrEqual(o.durationMs, 400, "it waited for the answer before giving up")
        XCTAssertEqual(server.requests.count, 1, "the server got the request")
    }

    // MARK: file and mqtt

    func testFileActionWritesOnRaiseAndClear() throws {
        let path = dir.write("brightness", "0\n")
        let a = FileAction(name: "led", path: path, value: "255", clearValue: "0", onClear: false)
        XCTAssertTrue(a.runsOnClear)
        XCTAssertEqual(try outcome(a, event()).status, .ok)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "255")
        XCTAssertEqual(try outcome(a, event(state: .cleared)).status, .ok)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "0")
        let missing = FileAction(name: "gpio", path: dir.file("no/such/value"), value: "1", clearValue: nil, onClear: false)
        let o = try outcome(missing, event())
        XCTAssertEqual(o.status, .error)
        XCTAssertTrue(o.detail?.contains("no/such/value") ?? false, o.detail ?? "")
    }

    func testMQTTActionPublishesTemplatesToARealBroker() throws {
        let broker = try Broker()
        let sub = try TestClient(port: broker.port, subscribe: ["actuators/#"])
        defer { sub.close() }
        let outlet = MQTTOutlet()
        let a = MQTTAction(name: "siren", topic: "actuators/{device}/siren", payload: "ON {label} {score}", clearPayload: "OFF",
                           qos: 1, retain: false, onClear: false, outlet: outlet)
        XCTAssertEqual(try outcome(a, event()).status, .error, "no broker connection yet is an error, not a hang")
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        outlet.set(pub.client)
        XCTAssertEqual(try outcome(a, event()).status, .ok)
        XCTAssertEqual(try outcome(a, event(state: .cleared)).status, .ok)
        XCTAssertTrue(waitUntil { sub.messages.count == 2 })
        XCTAssertEqual(sub.messages.map(\.topic), ["actuators/cam1/siren", "actuators/cam1/siren"])
        XCTAssertEqual(sub.messages.map { String(decoding: $0.payload, as: UTF8.self) }, ["ON motion 0.8750", "OFF"])
        let bad = try outcome(a, event(device: "a+b"))
        XCTAssertEqual(bad.status, .error, "a device name cannot turn the topic into a wildcard")
    }

    // MARK: the set

    func testOneSlowActionDoesNotHoldTheOthers() throws {
        let path = dir.write("led", "0")
        let slow = ExecAction(name: "slow", argv: [gated("slow.sh")], timeoutSeconds: 30, maxConcurrent: 1, onClear: false)
        let led = FileAction(name: "led", path: path, value: "1", clearValue: nil, onClear: false)
        let set = ActionSet(actions: [slow, led])
        let all = OutcomesBox()
        set.run(set.selected(["slow", "led"], for: .raised), for: event()) { all.set($0) }
        // The LED is lit while the slow script still runs, and `run` returned long before.
        XCTAssertTrue(waitUntil(timeout: 5) { (try? String(contentsOfFile: path, encoding: .utf8)) == "1" })
        XCTAssertNil(all.value, "outcomes are reported once every action is done")
        XCTAssertEqual(slow.runningCount, 1)
        openGate()
        XCTAssertTrue(waitUntil(timeout: 15) { all.value != nil })
        XCTAssertEqual(all.value?.map(\.action), ["slow", "led"])
        XCTAssertEqual(all.value?.map(\.status), [.ok, .ok])
        XCTAssertEqual(set.selected(["slow", "led"], for: .cleared).count, 0, "neither runs on clear")
    }
}

final class OutcomeBox: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var _value: ActionOutcome?
    func set(_ o: ActionOutcome) { lock.withLock { _value = o } }
    var value: ActionOutcome? { lock.withLock { _value } }
}

final class OutcomesBox: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var _value: [ActionOutcome]?
    func set(_ o: [ActionOutcome]) { lock.withLock { _value = o } }
    var value: [ActionOutcome]? { lock.withLock { _value } }
}
